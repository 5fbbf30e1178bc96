//! One frontend whose pool holds thousands of loopback TCP backends (issue 13): a
//! transition must not cost work in proportion to its pool, so a start is linear and every
//! backend is up within two check intervals.
//!
//! Size: `MAGLEV_LARGE_POOL` backends (default 4,000: what a debug build on a loaded 2-core
//! box checks within the interval; `benches/` runs 10,000 in release), each on its own
//! 127.x.0.y address with a listener of its own.

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/loopback.rs"]
mod loopback;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use daemon_support::{DaemonBuilder, http_get};
use loopback::free_port;

fn size() -> usize {
    std::env::var("MAGLEV_LARGE_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000)
}

fn addr(i: usize) -> IpAddr {
    IpAddr::from([127, 1 + (i / 250) as u8, 0, (i % 250 + 1) as u8])
}

fn config(port: u16, n: usize, frontend: bool) -> String {
    let mut c = format!(
        "[vpp.lb]\nipv4-src-address = \"192.0.2.254\"\n[healthchecks.tcp]\ntype = \"tcp\"\nport = {port}\ninterval = \"1s\"\ntimeout = \"800ms\"\nrise = 1\nfall = 1\n"
    );
    for i in 0..n {
        let _ = write!(
            c,
            "[backends.b{i}]\naddress = \"{}\"\nhealthcheck = \"tcp\"\n",
            addr(i)
        );
    }
    if !frontend {
        return c;
    }
    c.push_str(
        "\n[frontends.big]\naddress = \"192.0.2.1\"\nprotocol = \"tcp\"\nport = 80\n  [[frontends.big.pools]]\n  name = \"all\"\n  backends = { ",
    );
    let members: Vec<String> = (0..n).map(|i| format!("b{i} = {{}}")).collect();
    c.push_str(&members.join(", "));
    c.push_str(" }\n");
    c
}

/// Accepts and drops connections on each address (one listener per backend).
async fn listeners(port: u16, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let l = tokio::net::TcpListener::bind(SocketAddr::new(addr(i), port))
            .await
            .unwrap_or_else(|e| panic!("bind {}:{port}: {e}", addr(i)));
        tasks.push(tokio::spawn(async move {
            while let Ok((conn, _)) = l.accept().await {
                drop(conn);
            }
        }));
    }
    tasks
}

fn count_up(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("maglev_backend_state{") && l.ends_with("state=\"up\"} 1"))
        .count()
}

/// Starts a daemon on `config` and returns how long after start every one of the `n`
/// backends was up (None: not within 15 s).
async fn all_up_after(config: String, n: usize) -> (Option<Duration>, usize) {
    let mut d = DaemonBuilder::new(config).spawn();
    let url = d.metrics_url("/metrics");
    // From the first answer of the metrics listener: the config is loaded and the
    // checker started (a debug build takes a while to parse 10,000 backends).
    let spawned = Instant::now();
    let t0 = loop {
        if http_get(&url).await.is_some() {
            break Instant::now();
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(60) && d.alive(),
            "the daemon did not start:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut up = 0;
    while t0.elapsed() < Duration::from_secs(15) {
        if let Some((_, body)) = http_get(&url).await {
            up = count_up(&body);
            if up == n {
                return (Some(t0.elapsed()), up);
            }
        }
        // Each scrape renders every backend under the checker's lock: not too often.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (None, up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_of_a_large_pool_is_up_within_two_intervals() {
    let n = size();
    let port = free_port();
    let _listeners = listeners(port, n).await;
    // The same backends without the frontend: what the probes alone cost on this box.
    let (alone, up) = all_up_after(config(port, n, false), n).await;
    let alone = alone.unwrap_or_else(|| panic!("without a frontend only {up} of {n} up"));
    let (pooled, up) = all_up_after(config(port, n, true), n).await;
    let pooled = pooled.unwrap_or_else(|| panic!("with a frontend only {up} of {n} up"));
    println!("{n} backends all up after {alone:?} alone, {pooled:?} in one pool");
    // Two 1 s intervals, plus a scrape and slack for a loaded 2-core test box.
    assert!(
        pooled < Duration::from_millis(3_000),
        "{n} backends in one pool up after {pooled:?}"
    );
    // The pool adds no cost that grows with it.
    assert!(
        pooled < alone * 3 / 2 + Duration::from_millis(500),
        "{n} backends: {alone:?} alone, {pooled:?} in one pool"
    );
}
