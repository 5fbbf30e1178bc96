//! Loopback backends for daemon tests: a TCP listener that can be taken down and brought
//! back on the same address (up = listening), and an HTTP backend whose answers follow a
//! script (pass/fail per probe) and which records when each probe arrived.
//!
//! Included with `#[path = "support/loopback.rs"] mod loopback;`.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

// Each helper file is included on its own by the tests that need it, so each carries ports.rs.
#[allow(clippy::duplicate_mod)]
#[path = "ports.rs"]
mod ports;

/// A port free on 127.0.0.1 a moment ago (the same port is then used on 127.0.0.x),
/// outside the ephemeral range (see ports.rs).
pub fn free_port() -> u16 {
    ports::free_port("127.0.0.1")
}

pub fn sock(last: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::from([127, 0, 0, last]), port)
}

async fn bind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr}");
}

/// A TCP backend: listening = up, closed = down. Records when connections arrived.
pub struct TcpBackend {
    pub addr: SocketAddr,
    /// Accept but never answer nor close (an HTTP check times out on it).
    hang: bool,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    task: Option<JoinHandle<()>>,
}

impl TcpBackend {
    pub async fn start(addr: SocketAddr) -> TcpBackend {
        Self::start_with(addr, false).await
    }

    /// Accepts connections and holds them, silent: up for TCP, a timeout for HTTP.
    pub async fn start_hanging(addr: SocketAddr) -> TcpBackend {
        Self::start_with(addr, true).await
    }

    async fn start_with(addr: SocketAddr, hang: bool) -> TcpBackend {
        let mut b = TcpBackend {
            addr,
            hang,
            arrivals: Arc::default(),
            task: None,
        };
        b.up().await;
        b
    }

    pub async fn up(&mut self) {
        if self.task.is_some() {
            return;
        }
        let listener = bind(self.addr).await;
        let arrivals = self.arrivals.clone();
        let hang = self.hang;
        self.task = Some(tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                arrivals
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(Instant::now());
                if hang {
                    held.push(conn);
                }
            }
        }));
    }

    pub async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// When each accepted connection (probe) arrived.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TcpBackend {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// TCP backends listening on `port` at 127.0.0.x for each x in `lasts`.
pub async fn tcp_backends(port: u16, lasts: std::ops::RangeInclusive<u8>) -> Vec<TcpBackend> {
    let mut v = Vec::new();
    for last in lasts {
        v.push(TcpBackend::start(sock(last, port)).await);
    }
    v
}

/// An HTTP backend answering each probe 200 or 503 as `script(n)` says (n = probe number
/// from 0), recording every probe's arrival and verdict.
pub struct HttpBackend {
    pub addr: SocketAddr,
    probes: Arc<Mutex<Vec<(Instant, bool)>>>,
    task: JoinHandle<()>,
}

impl HttpBackend {
    pub async fn start(
        addr: SocketAddr,
        script: impl Fn(usize) -> bool + Send + Sync + 'static,
    ) -> HttpBackend {
        let listener = bind(addr).await;
        let probes: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
        let script = Arc::new(script);
        let log = probes.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let log = log.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let pass = {
                        let mut log = log
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let pass = script(log.len());
                        log.push((Instant::now(), pass));
                        pass
                    };
                    let status = if pass {
                        "200 OK"
                    } else {
                        "503 Service Unavailable"
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        HttpBackend { addr, probes, task }
    }

    /// Every probe so far: when it arrived and whether it was answered 200.
    pub fn probes(&self) -> Vec<(Instant, bool)> {
        self.probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Resident set size of this test process in KiB.
pub fn self_rss_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of this test process.
pub fn self_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
