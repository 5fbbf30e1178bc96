//! Issue 13's outage, kept as a regression test: a daemon at the default log level
//! programs thousands of ASes into the VPP double (one INFO summary per sync, not one line
//! per write), and afterwards a backend that goes down still reaches VPP at once; no
//! "missed events", a log of bounded size.
//!
//! Size: `MAGLEV_LARGE_SYNC_VIPS` VIPs (default 120) × 50 backends (default 6,000 ASes:
//! twice the event bus's 4,096 slots that used to overflow). The 50 backends are shared by
//! every frontend, as in the deployment that failed.

mod support;

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/loopback.rs"]
mod loopback;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use daemon_support::{DaemonBuilder, eventually, http_get};
use loopback::{TcpBackend, free_port, sock};
use support::scenario::{ConfigText, Timing};
use support::vpp_double::{ApiMode, VppDouble};

const BACKENDS: u8 = 50;

fn vips() -> usize {
    std::env::var("MAGLEV_LARGE_SYNC_VIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

fn vip_addr(i: usize) -> String {
    format!("10.{}.{}.{}", 1 + i / 62_500, (i / 250) % 250, i % 250 + 1)
}

fn config(port: u16, vips: usize) -> String {
    let members: Vec<String> = (0..BACKENDS).map(|b| format!("b{b} = {{}}")).collect();
    let members = members.join(", ");
    let mut c =
        ConfigText::new()
            .vpp_lb("1h", "0s", "30s")
            .check("tcp", "tcp", port, Timing::QUICK);
    for b in 0..BACKENDS {
        c = c.backend(&format!("b{b}"), &format!("127.0.0.{}", 10 + b), "tcp");
    }
    for i in 0..vips {
        let name = format!("f{i}");
        c = c
            .frontend(&name, &vip_addr(i), "tcp", 80)
            .raw("flush-on-down = true")
            .pool(&name, "primary", &members);
    }
    c.build()
}

/// Live ASes at weight > 0 in the double.
fn weighted_ases(double: &VppDouble) -> usize {
    double
        .vips()
        .iter()
        .flat_map(|v| &v.ases)
        .filter(|a| a.used && a.weight > 0)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flap_after_a_large_sync_reaches_vpp_and_the_log_stays_small() {
    let vips = vips();
    let total = vips * usize::from(BACKENDS);
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let mut backends = Vec::new();
    for b in 0..BACKENDS {
        backends.push(TcpBackend::start(sock(10 + b, port)).await);
    }
    // The default log level of the daemon (info).
    let d = DaemonBuilder::with_vpp(config(port, vips), double.socket_path())
        .log_format("text")
        .log_level("info")
        .start()
        .await;

    let t0 = Instant::now();
    let limit = Duration::from_secs(120);
    loop {
        let n = weighted_ases(&double);
        if n == total {
            break;
        }
        assert!(
            t0.elapsed() < limit,
            "only {n} of {total} ASes programmed after {limit:?}:\n{}",
            tail(&d.log())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let synced = t0.elapsed();
    // The warmup ends with a full sync (which reads VPP); after it, per-VIP syncs read
    // nothing.
    let url = d.metrics_url("/metrics");
    eventually("the full sync that ends the warmup", || {
        let url = url.clone();
        async move {
            let (_, body) = http_get(&url).await?;
            // Every scope's lines are there from the start (at 0): wait for a count.
            body.lines()
                .filter(|l| {
                    l.starts_with("maglev_vpp_lbsync_total{scope=\"all\",kind=\"noop\"}")
                        || l.starts_with("maglev_vpp_lbsync_total{scope=\"all\",kind=\"applied\"}")
                })
                .any(|l| l.rsplit(' ').next().is_some_and(|n| n != "0"))
                .then_some(())
        }
    })
    .await;
    let reads = |double: &VppDouble| {
        ["lb_as_v2_dump", "lb_vip_dump", "cli_inband", "lb_conf_get"].map(|m| double.requests(m))
    };
    let reads_before = reads(&double);

    // One backend dies: every VIP's AS of it goes to 0 (with flush), soon.
    let victim: IpAddr = sock(10, port).ip();
    let writes_before = double.writes().len();
    backends[0].down().await;
    let down_at = Instant::now();
    let detect_limit = Duration::from_secs(10);
    let reached = loop {
        let zeroed = double.writes()[writes_before..]
            .iter()
            .filter(|w| {
                w.msg == "lb_as_set_weight" && w.address == Some(victim) && w.weight == Some(0)
            })
            .count();
        if zeroed == vips {
            break down_at.elapsed();
        }
        assert!(
            down_at.elapsed() < detect_limit,
            "{zeroed} of {vips} VIPs saw the failure of {victim} within {detect_limit:?}:\n{}",
            tail(&d.log())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        reads(&double),
        reads_before,
        "per-VIP syncs read nothing from VPP (dumps, cli_inband, conf):\n{}",
        tail(&d.log())
    );
    println!(
        "{total} ASes in {vips} VIPs: programmed in {synced:?}; a failure reached all VIPs in {reached:?}"
    );

    let log = d.log();
    for l in log
        .lines()
        .filter(|l| l.contains("VPP sync ("))
        .rev()
        .take(3)
    {
        println!("{l}");
    }
    assert!(!log.contains("missed events"), "{}", tail(&log));
    assert!(
        !log.contains(" WARN "),
        "no warnings expected:\n{}",
        tail(&log)
    );
    // A few lines per sync and per transition, never one per write: 64 bytes per AS is
    // far below one write line (~200 bytes) per AS.
    assert!(
        log.len() < 200_000 + total * 64,
        "{} bytes of log for {total} ASes:\n{}",
        log.len(),
        tail(&log)
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
