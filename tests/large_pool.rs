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

/// CPU time (user + system) the process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the name.
    // SAFETY: sysconf only reads a constant.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz.max(1))
}

/// What it took until every one of the `n` backends was up.
struct Outcome {
    /// Wall time after start (None: not within 15 s).
    wall: Option<Duration>,
    /// The daemon's CPU time by then (start included).
    cpu: Duration,
    up: usize,
}

/// Starts a daemon on `config` and waits until every one of the `n` backends is up.
async fn all_up_after(config: String, n: usize) -> Outcome {
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
                return Outcome {
                    wall: Some(t0.elapsed()),
                    cpu: cpu_time(d.pid()),
                    up,
                };
            }
        }
        // Each scrape renders every backend under the checker's lock: not too often.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Outcome {
        wall: None,
        cpu: cpu_time(d.pid()),
        up,
    }
}

/// Raises the open-file limit to the hard limit (one listener per backend, and the
/// daemon inherits it for its probes); returns how many backends fit.
fn fit_fd_limit(want: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return want.min(500);
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    // Room for the test's own sockets and the daemon's probes in flight.
    let room = usize::try_from(lim.rlim_cur)
        .unwrap_or(usize::MAX)
        .saturating_sub(256)
        / 2;
    if room < want {
        println!(
            "open-file limit {}: {room} backends instead of {want}",
            lim.rlim_cur
        );
    }
    want.min(room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_of_a_large_pool_is_up_within_two_intervals() {
    let n = fit_fd_limit(size());
    let port = free_port();
    let _listeners = listeners(port, n).await;
    // The same backends without the frontend: what the probes alone cost on this box.
    let alone = all_up_after(config(port, n, false), n).await;
    let pooled = all_up_after(config(port, n, true), n).await;
    println!(
        "{n} backends all up: alone after {:?} ({:?} CPU), in one pool after {:?} ({:?} CPU)",
        alone.wall, alone.cpu, pooled.wall, pooled.cpu
    );
    let alone_wall = alone
        .wall
        .unwrap_or_else(|| panic!("without a frontend only {} of {n} up", alone.up));
    let pooled_wall = pooled
        .wall
        .unwrap_or_else(|| panic!("with a frontend only {} of {n} up", pooled.up));
    // Two 1 s intervals, plus a scrape and slack for the loaded 2-core test box (its load
    // average reaches 12 while other builds run: wall time alone would be a flaky test).
    assert!(
        pooled_wall < Duration::from_secs(2) + alone_wall.max(Duration::from_secs(2)),
        "{n} backends in one pool up after {pooled_wall:?} (alone: {alone_wall:?})"
    );
    // The pool adds no work that grows with it: the daemon's CPU time is that of the
    // probes alone, give or take (a quadratic start costs many times more).
    assert!(
        pooled.cpu < alone.cpu * 3 / 2 + Duration::from_millis(500),
        "{n} backends: {:?} CPU alone, {:?} CPU in one pool",
        alone.cpu,
        pooled.cpu
    );
}
