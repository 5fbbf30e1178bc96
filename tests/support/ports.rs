//! Free loopback ports for tests, picked below the kernel's ephemeral range (32768–60999
//! by default). A port from `bind(0)` comes from that range, and between its release and
//! the daemon's own bind, any outgoing connection of a test running in parallel may take
//! it ("Address already in use"); ports outside it meet only each other, at random.
#![allow(dead_code)]

/// A port that was free on `ip` a moment ago, in 20000..32000.
pub fn free_port(ip: &str) -> u16 {
    for _ in 0..500 {
        let port: u16 = rand::random_range(20000..32000);
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    // The whole band busy: take the kernel's choice rather than fail.
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
