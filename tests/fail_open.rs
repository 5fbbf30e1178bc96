//! `fail = "open"` end to end: the real daemon against the VPP API double. With every
//! backend down, the first pool's ASes keep their configured weights in VPP (a closed
//! frontend gets 0), the API, `ctl show frontends`, `/metrics` and a WARN line say so, and
//! the first backend to come back up ends it.

#[path = "support/daemon.rs"]
mod daemon_support;
mod support;

use std::net::IpAddr;
use std::time::Duration;

use daemon_support::{Daemon, DaemonBuilder, UpBackend, eventually, free_port, http_get};
use maglev::proto::GetFrontendRequest;
use maglev::vpp::wire::Prefix;
use support::scenario::{ConfigText, Timing};
use support::vpp_double::{ApiMode, VppDouble};

fn config(port: u16, fail: &str) -> String {
    ConfigText::new()
        .vpp_lb("60s", "0s", "1s")
        .check("tcp", "tcp", port, Timing::QUICK)
        .backend("a", "127.0.0.2", "tcp")
        .backend("b", "127.0.0.3", "tcp")
        .backend("c", "127.0.0.4", "tcp")
        .frontend("web", "192.0.2.1", "tcp", 80)
        .raw(&format!("fail = \"{fail}\""))
        .pool("web", "primary", "a = { weight = 60 }, b = {}")
        .pool("web", "fallback", "c = {}")
        .build()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// The weights VPP holds for a, b and c (None: no such AS).
fn weights(double: &VppDouble) -> Option<[Option<u8>; 3]> {
    let vip = double.vip(Prefix::new(ip("192.0.2.1"), 32), 80)?;
    let of = |a: &str| {
        vip.ases
            .iter()
            .find(|x| x.used && x.address == ip(a))
            .map(|x| x.weight)
    };
    Some([of("127.0.0.2"), of("127.0.0.3"), of("127.0.0.4")])
}

async fn frontend(d: &Daemon) -> maglev::proto::Frontend {
    d.client()
        .await
        .get_frontend(GetFrontendRequest { name: "web".into() })
        .await
        .expect("GetFrontend")
        .into_inner()
}

async fn failed_open_metric(d: &Daemon) -> Option<String> {
    let (_, body) = http_get(&d.metrics_url("/metrics")).await?;
    body.lines()
        .find(|l| l.starts_with("maglev_frontend_failed_open{frontend=\"web\"}"))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_down_keeps_the_first_pool_in_vpp_until_one_comes_back() {
    let port = free_port("127.0.0.2");
    let double = VppDouble::start(ApiMode::V1_2).await;
    let d = DaemonBuilder::new(config(port, "open"))
        .vpp_api(double.socket_path())
        .log_level("info")
        .start()
        .await;

    // Nothing listens: all three go down; a and b keep 60 and 100, c (fallback) gets 0.
    let got = eventually("the first pool failed open in VPP", || async {
        weights(&double).filter(|w| *w == [Some(60), Some(100), Some(0)])
    })
    .await;
    assert_eq!(got, [Some(60), Some(100), Some(0)]);

    let f = frontend(&d).await;
    assert_eq!((f.fail.as_str(), f.failed_open), ("open", true), "{f:?}");
    assert_eq!(f.state(), maglev::proto::FrontendState::Down);
    let list = d.ctl_ok(&["show", "frontends"]);
    assert!(list.contains("primary (failed open)"), "{list}");
    assert_eq!(
        failed_open_metric(&d).await.as_deref(),
        Some("maglev_frontend_failed_open{frontend=\"web\"} 1")
    );
    d.wait_log("FAILED OPEN", Duration::from_secs(5)).await;
    assert!(
        d.log()
            .lines()
            .any(|l| l.contains("FAILED OPEN") && l.contains("\"WARN\"")),
        "a WARN record"
    );

    // a comes back: normal weights again (a 60, b down 0), the policy is no longer in force.
    let _a = UpBackend::start_on("127.0.0.2", port);
    eventually("a up, b back to 0", || async {
        weights(&double).filter(|w| *w == [Some(60), Some(0), Some(0)])
    })
    .await;
    eventually("failed_open cleared", || async {
        (!frontend(&d).await.failed_open).then_some(())
    })
    .await;
    assert_eq!(
        failed_open_metric(&d).await.as_deref(),
        Some("maglev_frontend_failed_open{frontend=\"web\"} 0")
    );
    d.wait_log("no longer failed open", Duration::from_secs(5))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_frontend_gives_vpp_nothing() {
    let port = free_port("127.0.0.2");
    let double = VppDouble::start(ApiMode::V1_2).await;
    let d = DaemonBuilder::new(config(port, "closed"))
        .vpp_api(double.socket_path())
        .log_level("info")
        .start()
        .await;
    eventually("every backend down", || async {
        let f = frontend(&d).await;
        let down = f
            .pools
            .iter()
            .flat_map(|p| &p.backends)
            .all(|b| b.state() == maglev::proto::BackendState::Down);
        down.then_some(())
    })
    .await;
    // Let a sync run after the last transition, then look at VPP.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let w = weights(&double).expect("the VIP exists");
    assert!(w.iter().all(|x| x.is_none_or(|x| x == 0)), "{w:?}");
    let f = frontend(&d).await;
    assert_eq!((f.fail.as_str(), f.failed_open), ("closed", false));
    assert!(!d.log().contains("FAILED OPEN"));
}
