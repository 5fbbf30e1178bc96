//! The real daemon binary against the in-process VPP test double, with real loopback
//! backends: weights follow health, pool failover, VIP re-creation on reload, stale VIP
//! removal (by a full sync, never by a per-VIP one), warmup after a daemon restart, VPP
//! restarting empty, lb API 1.1.0 (legacy) and `--dry-run`.

mod support;

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use daemon_support::DaemonBuilder;
use loopback::{TcpBackend, free_port, sock};
use maglev::proto::maglev_client::MaglevClient;
use maglev::proto::{GetVppInfoRequest, SyncVpplbStateRequest};
use maglev::vpp::client::{Client, ClientConfig};
use maglev::vpp::messages::lb::{LbAddDelAsV2, LbAddDelVipV2};
use maglev::vpp::wire::{EncapType, Prefix};
use support::scenario::{ConfigText, Timing, live_ases};
use support::vpp_double::{ApiMode, VipView, VppDouble, WriteRecord};
use tonic::transport::Channel;

/// Generous: the test box is a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(25);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(ip(a), l.parse().unwrap())
}

// ---------------------------------------------------------------- daemon

/// The daemon against the double, logging text (the tests look for log lines).
fn daemon(config: &str, double: &VppDouble) -> DaemonBuilder {
    DaemonBuilder::with_vpp(config, double.socket_path()).log_format("text")
}

// ---------------------------------------------------------------- config

/// `[vpp.lb]` + a fast tcp check on `port` + backend a.
fn base(port: u16, min: &str, max: &str) -> ConfigText {
    ConfigText::new()
        .vpp_lb("1s", min, max)
        .raw(r#"ipv6-src-address = "2001:db8::fe""#)
        .check("tcp", "tcp", port, Timing::QUICK_FAST)
        .backend("a", "127.0.0.2", "tcp")
}

/// `base` + backend b (tcp check) + extra text.
fn config(port: u16, min: &str, max: &str, rest: &str) -> String {
    base(port, min, max)
        .backend("b", "127.0.0.3", "tcp")
        .raw(rest)
        .build()
}

fn web(sticky: bool, pools: &str) -> String {
    format!(
        r#"
[frontends.web]
address = "192.0.2.1"
protocol = "tcp"
port = 80
src-ip-sticky = {sticky}
flush-on-down = true
{pools}
"#
    )
}

const ONE_POOL: &str = r#"
  [[frontends.web.pools]]
  name = "primary"
  backends = { a = {}, b = {} }
"#;

const TWO_POOLS: &str = r#"
  [[frontends.web.pools]]
  name = "primary"
  backends = { a = {} }
  [[frontends.web.pools]]
  name = "fallback"
  backends = { b = {} }
"#;

// ---------------------------------------------------------------- double helpers

fn web_vip(double: &VppDouble) -> Option<VipView> {
    double.vip(pfx("192.0.2.1/32"), 80)
}

/// Live ASes of the web VIP and their weights.
fn weights(double: &VppDouble) -> Option<BTreeMap<IpAddr, u8>> {
    web_vip(double).map(|v| live_ases(&v).into_iter().collect())
}

fn want(pairs: &[(&str, u8)]) -> BTreeMap<IpAddr, u8> {
    pairs.iter().map(|(a, w)| (ip(a), *w)).collect()
}

fn writes_for(double: &VppDouble, addr: &str) -> Vec<WriteRecord> {
    double
        .writes()
        .into_iter()
        .filter(|w| w.address == Some(ip(addr)))
        .collect()
}

async fn client_for(double: &VppDouble) -> Client {
    Client::connect(ClientConfig {
        socket_path: double.socket_path().to_path_buf(),
        client_name: "test-setup".into(),
        ..ClientConfig::default()
    })
    .await
    .expect("connect to the double")
}

/// What another (earlier) writer left in VPP: a VIP with weighted ASes.
async fn precreate(double: &VppDouble, vip: &str, port: u16, ases: &[(&str, u8)]) {
    let c = client_for(double).await;
    let p = pfx(vip);
    c.lb_add_del_vip_v2(&LbAddDelVipV2::add(p, 6, port, EncapType::GRE4))
        .await
        .expect("add vip");
    for (a, w) in ases {
        c.lb_add_del_as_v2(&LbAddDelAsV2 {
            pfx: p,
            protocol: 6,
            port,
            as_address: ip(a),
            weight: *w,
            is_del: false,
            is_flush: false,
        })
        .await
        .expect("add as");
    }
    c.disconnect().await;
}

/// SyncVPPLBState of every frontend (a full sync); returns once it is done.
/// Waits until the daemon says its VPP warmup is over (gRPC `GetVPPInfo`).
async fn warmup_over(d: &daemon_support::Daemon) {
    let c = d.client().await;
    d.wait_for_async("the VPP warmup to end", DEADLINE, || {
        let mut c = c.clone();
        async move {
            let info = c
                .get_vpp_info(GetVppInfoRequest {})
                .await
                .ok()?
                .into_inner();
            info.warmup_done.then_some(())
        }
    })
    .await;
}

/// Waits until `/metrics` shows a line starting with `prefix`.
async fn metric_shows(d: &daemon_support::Daemon, prefix: &str) {
    let url = d.metrics_url("/metrics");
    d.wait_for_async(&format!("metric {prefix}"), DEADLINE, || {
        let url = url.clone();
        async move {
            let (_, body) = daemon_support::http_get(&url).await?;
            body.lines().any(|l| l.starts_with(prefix)).then_some(())
        }
    })
    .await;
}

async fn sync_all(c: &mut MaglevClient<Channel>) {
    c.sync_vpplb_state(SyncVpplbStateRequest {
        frontend: String::new(),
    })
    .await
    .expect("full sync");
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_follows_backend_health() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let _a = TcpBackend::start(sock(2, port)).await;
    let mut b = TcpBackend::start(sock(3, port)).await;
    let cfg = config(port, "0s", "3s", &web(false, ONE_POOL));
    let d = daemon(&cfg, &double).spawn();

    let full = want(&[("127.0.0.2", 100), ("127.0.0.3", 100)]);
    d.wait_for("both ASes at 100", DEADLINE, || {
        (weights(&double)? == full).then_some(())
    })
    .await;
    let vip = web_vip(&double).unwrap();
    assert_eq!(vip.encap, EncapType::GRE4);
    assert_eq!(vip.table_len, 1024);

    b.down().await;
    let drained = want(&[("127.0.0.2", 100), ("127.0.0.3", 0)]);
    d.wait_for("b at weight 0", DEADLINE, || {
        (weights(&double)? == drained).then_some(())
    })
    .await;
    // flush-on-down = true: the drain flushed b's flows.
    let last = writes_for(&double, "127.0.0.3").pop().unwrap();
    assert_eq!(
        (last.msg.as_str(), last.weight, last.is_flush),
        ("lb_as_set_weight", Some(0), true)
    );

    b.up().await;
    d.wait_for("b back at 100", DEADLINE, || {
        (weights(&double)? == full).then_some(())
    })
    .await;
    assert_eq!(double.fatal_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_failover_and_back() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let mut a = TcpBackend::start(sock(2, port)).await;
    let _b = TcpBackend::start(sock(3, port)).await;
    let cfg = config(port, "0s", "3s", &web(false, TWO_POOLS));
    let d = daemon(&cfg, &double).spawn();

    let primary = want(&[("127.0.0.2", 100), ("127.0.0.3", 0)]);
    let fallback = want(&[("127.0.0.2", 0), ("127.0.0.3", 100)]);
    d.wait_for("primary active", DEADLINE, || {
        (weights(&double)? == primary).then_some(())
    })
    .await;
    a.down().await;
    d.wait_for("fallback active", DEADLINE, || {
        (weights(&double)? == fallback).then_some(())
    })
    .await;
    a.up().await;
    d.wait_for("primary active again", DEADLINE, || {
        (weights(&double)? == primary).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn src_ip_sticky_flip_on_reload_recreates_the_vip() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let _a = TcpBackend::start(sock(2, port)).await;
    let _b = TcpBackend::start(sock(3, port)).await;
    let d = daemon(&config(port, "0s", "3s", &web(false, ONE_POOL)), &double).spawn();
    let full = want(&[("127.0.0.2", 100), ("127.0.0.3", 100)]);
    d.wait_for("VIP programmed", DEADLINE, || {
        (weights(&double)? == full).then_some(())
    })
    .await;
    assert!(!web_vip(&double).unwrap().src_ip_sticky);
    let before = double.writes().len();

    d.reload(&config(port, "0s", "3s", &web(true, ONE_POOL)));
    d.wait_for("sticky VIP with its ASes", DEADLINE, || {
        let v = web_vip(&double)?;
        (v.src_ip_sticky && weights(&double)? == full).then_some(())
    })
    .await;
    let after: Vec<WriteRecord> = double.writes().split_off(before);
    let vip_writes: Vec<bool> = after
        .iter()
        .filter(|w| w.msg == "lb_add_del_vip_v2")
        .map(|w| w.is_del)
        .collect();
    assert_eq!(vip_writes, vec![true, false], "delete then add: {after:?}");
    // The ASes were deleted with flush before the VIP went.
    assert!(
        after
            .iter()
            .filter(|w| w.msg == "lb_add_del_as_v2" && w.is_del)
            .all(|w| w.is_flush)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_removes_stale_vips() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    precreate(&double, "198.51.100.1/32", 443, &[("10.9.0.1", 100)]).await;
    let port = free_port();
    let _a = TcpBackend::start(sock(2, port)).await;
    let _b = TcpBackend::start(sock(3, port)).await;
    let d = daemon(&config(port, "0s", "3s", &web(false, ONE_POOL)), &double).spawn();
    d.wait_for("stale VIP gone, ours present", DEADLINE, || {
        let stale = double.vip(pfx("198.51.100.1/32"), 443);
        (stale.is_none() && weights(&double)?.len() == 2).then_some(())
    })
    .await;
    let stale_as = writes_for(&double, "10.9.0.1").pop().unwrap();
    assert!(stale_as.is_del && stale_as.is_flush, "{stale_as:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_vip_sync_leaves_stale_vips_to_the_full_sync() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let _a = TcpBackend::start(sock(2, port)).await;
    let mut b = TcpBackend::start(sock(3, port)).await;
    // A long sync-interval: no periodic full sync during the test.
    let cfg = ConfigText::new()
        .vpp_lb("600s", "0s", "3s")
        .raw(r#"ipv6-src-address = "2001:db8::fe""#)
        .check("tcp", "tcp", port, Timing::QUICK_FAST)
        .backend("a", "127.0.0.2", "tcp")
        .backend("b", "127.0.0.3", "tcp")
        .raw(&web(false, ONE_POOL))
        .build();
    let d = daemon(&cfg, &double).spawn();
    let full = want(&[("127.0.0.2", 100), ("127.0.0.3", 100)]);
    d.wait_for("both ASes at 100", DEADLINE, || {
        (weights(&double)? == full).then_some(())
    })
    .await;
    warmup_over(&d).await;
    // The reconciler handles one thing at a time: once a second full sync has answered,
    // the warmup's own full sync is over too.
    let mut c = d.client().await;
    for _ in 0..2 {
        sync_all(&mut c).await;
    }

    // Another writer adds a VIP; then b goes down: a per-VIP sync of web.
    precreate(&double, "198.51.100.1/32", 443, &[("10.9.0.1", 100)]).await;
    b.down().await;
    let drained = want(&[("127.0.0.2", 100), ("127.0.0.3", 0)]);
    d.wait_for("b at weight 0", DEADLINE, || {
        (weights(&double)? == drained).then_some(())
    })
    .await;
    assert!(
        double.vip(pfx("198.51.100.1/32"), 443).is_some(),
        "a per-VIP sync removed a VIP that is not its own"
    );
    assert!(
        writes_for(&double, "10.9.0.1").iter().all(|w| !w.is_del),
        "{:?}",
        double.writes()
    );

    // The next full sync removes it.
    sync_all(&mut c).await;
    assert!(double.vip(pfx("198.51.100.1/32"), 443).is_none());
    assert_eq!(weights(&double), Some(drained));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_restart_warmup_never_drains_unknown_backends() {
    // VPP as the previous daemon left it: both ASes at 100.
    let double = VppDouble::start(ApiMode::V1_2).await;
    precreate(
        &double,
        "192.0.2.1/32",
        80,
        &[("127.0.0.2", 100), ("127.0.0.3", 100)],
    )
    .await;
    let setup_writes = double.writes().len();
    let port = free_port();
    let slow_port = free_port();
    let _a = TcpBackend::start(sock(2, port)).await;
    // b answers TCP but never HTTP: it stays unknown until its first check times out.
    let _b = TcpBackend::start_hanging(sock(3, slow_port)).await;
    let rest = format!(
        r#"
[healthchecks.slow]
type = "http"
port = {slow_port}
interval = "4s"
timeout = "3s"
rise = 1
fall = 1
{}
[frontends.api]
address = "192.0.2.2"
protocol = "tcp"
port = 80
  [[frontends.api.pools]]
  name = "only"
  backends = {{ a = {{}} }}
"#,
        web(false, ONE_POOL)
    );
    let cfg = base(port, "1s", "10s")
        .backend("b", "127.0.0.3", "slow")
        .raw(&rest)
        .build();
    let min_delay = Duration::from_secs(1);
    let d = daemon(&cfg, &double).spawn();

    // b times out -> down -> drained with flush; then the warmup ends.
    let drained = want(&[("127.0.0.2", 100), ("127.0.0.3", 0)]);
    d.wait_for("b drained after its check failed", DEADLINE, || {
        (weights(&double)? == drained).then_some(())
    })
    .await;
    warmup_over(&d).await;

    let writes = double.writes().split_off(setup_writes);
    assert!(!writes.is_empty());
    for w in &writes {
        assert!(
            w.at.duration_since(d.started) >= min_delay,
            "write before startup-min-delay: {w:?}"
        );
        if w.weight == Some(0) {
            // Only the down backend goes to 0, and that drain flushes: an unknown
            // backend would have been set to 0 without flush.
            assert_eq!(w.address, Some(ip("127.0.0.3")), "{w:?}");
            assert!(
                w.is_flush,
                "weight 0 without flush (unknown backend?): {w:?}"
            );
        }
    }
    assert!(
        writes_for(&double, "127.0.0.2")
            .iter()
            .all(|w| w.weight != Some(0))
    );
    // The api VIP (backends all known early) was released while web still waited for b.
    let api_added = writes
        .iter()
        .position(|w| w.prefix == Some(pfx("192.0.2.2/32")))
        .expect("api VIP written");
    let b_drained = writes
        .iter()
        .position(|w| w.address == Some(ip("127.0.0.3")))
        .expect("b drained");
    assert!(api_added < b_drained, "{writes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_restarted_empty_is_rebuilt() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let _a = TcpBackend::start(sock(2, port)).await;
    let _b = TcpBackend::start(sock(3, port)).await;
    let d = daemon(&config(port, "0s", "3s", &web(true, TWO_POOLS)), &double).spawn();
    let primary = want(&[("127.0.0.2", 100), ("127.0.0.3", 0)]);
    d.wait_for("VIP programmed", DEADLINE, || {
        (weights(&double)? == primary).then_some(())
    })
    .await;
    let old_pid = double.pid();
    double.restart_empty();
    assert_ne!(double.pid(), old_pid);
    assert!(web_vip(&double).is_none());
    d.wait_for("VIP rebuilt after reconnect", DEADLINE, || {
        (web_vip(&double)?.src_ip_sticky && weights(&double)? == primary).then_some(())
    })
    .await;
    // The conf came back too.
    assert!(double.writes().iter().any(|w| w.msg == "lb_conf"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_api_programs_the_same_vips() {
    let double = VppDouble::start(ApiMode::V1_1).await;
    let port = free_port();
    let _a = TcpBackend::start(sock(2, port)).await;
    let mut b = TcpBackend::start(sock(3, port)).await;
    // web6 has IPv6 backends (gre6, which 1.1.0 can only create through the CLI); its
    // only backend is disabled, so it is never probed and has no AS.
    let rest = format!(
        r#"
[backends.c]
address = "2001:db8:1::1"
healthcheck = "tcp"
enabled = false
{}
[frontends.web6]
address = "2001:db8::1"
protocol = "tcp"
port = 443
  [[frontends.web6.pools]]
  name = "all"
  backends = {{ c = {{}} }}
"#,
        web(false, ONE_POOL)
    );
    let d = daemon(&config(port, "0s", "3s", &rest), &double).spawn();

    let both = want(&[("127.0.0.2", 100), ("127.0.0.3", 100)]);
    d.wait_for("IPv4 VIP with both ASes", DEADLINE, || {
        (weights(&double)? == both).then_some(())
    })
    .await;
    let v4 = web_vip(&double).unwrap();
    assert_eq!(v4.prefix, pfx("192.0.2.1/32"));
    assert_eq!(v4.encap, EncapType::GRE4);
    let v6 = d
        .wait_for("IPv6 gre6 VIP", DEADLINE, || {
            double.vip(pfx("2001:db8::1/128"), 443)
        })
        .await;
    assert_eq!(v6.encap, EncapType::GRE6);
    assert!(v6.ases.is_empty());
    assert!(double.writes().iter().any(|w| w.msg
        == "cli_inband: lb vip 2001:db8::1/128 protocol tcp port 443 encap gre6 new_len 1024"));
    // No bogus `::/32` VIP from a forgotten +96.
    assert!(double.vips().iter().all(|v| v.prefix.addr != ip("::")));
    assert!(d.log().contains("LEGACY MODE"));

    // No weights: down = AS deleted (flushed, flush-on-down), up = AS added again.
    b.down().await;
    let only_a = want(&[("127.0.0.2", 100)]);
    d.wait_for("b deleted", DEADLINE, || {
        (weights(&double)? == only_a).then_some(())
    })
    .await;
    let del = writes_for(&double, "127.0.0.3").pop().unwrap();
    assert_eq!(
        (del.msg.as_str(), del.is_del, del.is_flush),
        ("lb_add_del_as", true, true)
    );
    b.up().await;
    d.wait_for("b added again", DEADLINE, || {
        (weights(&double)? == both).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    precreate(&double, "198.51.100.1/32", 443, &[("10.9.0.1", 100)]).await;
    let setup_writes = double.writes().len();
    let port = free_port();
    let _a = TcpBackend::start(sock(2, port)).await;
    let _b = TcpBackend::start(sock(3, port)).await;
    let d = daemon(&config(port, "0s", "3s", &web(false, ONE_POOL)), &double)
        .arg("--dry-run")
        .spawn();
    // The reconciler's own full sync ran, in dry-run mode.
    metric_shows(
        &d,
        "maglev_vpp_lbsync_total{scope=\"all\",kind=\"dry_run\"}",
    )
    .await;
    // What it would write, as the API tells it.
    let mut c = d.client().await;
    let ops = c
        .sync_vpplb_state(SyncVpplbStateRequest {
            frontend: String::new(),
        })
        .await
        .expect("dry-run sync")
        .into_inner();
    assert!(ops.dry_run);
    for want in [
        "del vip 198.51.100.1/32 tcp/443",
        "add as 127.0.0.3 to vip 192.0.2.1/32 tcp/80 weight 100",
    ] {
        assert!(ops.operations.iter().any(|o| o == want), "{ops:?}");
    }
    assert_eq!(double.writes().len(), setup_writes, "{:?}", double.writes());
    assert!(double.vip(pfx("198.51.100.1/32"), 443).is_some());
    assert!(web_vip(&double).is_none());
    // It did read.
    assert!(double.requests("lb_vip_dump") > 0);
}
