//! Per-VIP counters end to end: the real daemon against the VPP API double and the stats
//! segment double, with a real loopback backend. Flows "sent" through the stats double
//! show up in GetVPPLBCounters (with the previous pass for rates), in `maglev ctl show
//! vpp lb counters` (text and --json) and in `/metrics`; a stats-only restart remaps the
//! segment without touching the API connection; a restart of both (VPP restarting) clears
//! the old run's counters; a stats failure or stats off is
//! UNAVAILABLE with the reason. Plus `ip_route_lookup` against the API double.
//!
//! The daemon reads counters every 5 s; these tests pass `--stats-interval 200ms`.

#[path = "support/daemon.rs"]
mod daemon_support;
mod support;

use std::net::IpAddr;
use std::path::Path;

use daemon_support::{Daemon, DaemonBuilder, UpBackend, eventually, free_port, http_get};
use maglev::proto::{GetVppInfoRequest, GetVpplbCountersRequest, VipCounters, VpplbCounters};
use maglev::vpp::client::{Client, ClientConfig};
use maglev::vpp::messages::lb::LbAddDelVipV2;
use maglev::vpp::wire::{EncapType, Prefix};
use serde_json::Value;
use support::scenario::{ConfigText, Timing};
use support::stats_double::StatsDouble;
use support::vpp_double::{ApiMode, VppDouble};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn pfx(s: &str) -> Prefix {
    Prefix::new(ip(s), 32)
}

fn config(port: u16) -> String {
    ConfigText::new()
        .vpp_lb("60s", "0s", "3s")
        .check("tcp", "tcp", port, Timing::QUICK)
        .backend("up", "127.0.0.2", "tcp")
        .frontend("web", "192.0.2.1", "tcp", 80)
        .pool("web", "primary", "up = {}")
        .build()
}

async fn start(double: &VppDouble, stats: Option<&Path>) -> (Daemon, UpBackend) {
    let up = UpBackend::start_on("127.0.0.2", free_port("127.0.0.2"));
    let d = DaemonBuilder::new(config(up.port()))
        .vpp(double.socket_path(), stats)
        .arg("--stats-interval")
        .arg("200ms")
        .log_level("info")
        .start()
        .await;
    (d, up)
}

/// The daemon against both doubles, with the web VIP programmed and its counters created in
/// the stats segment (what the lb plugin does on VIP add).
struct Rig {
    double: VppDouble,
    stats: StatsDouble,
    d: Daemon,
    /// The web VIP's pool index and its route's stats index.
    index: u32,
    route: u32,
    _up: UpBackend,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start(mode: ApiMode) -> Rig {
        let double = VppDouble::start(mode).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = StatsDouble::start(dir.path()).expect("stats double");
        let (d, up) = start(&double, Some(stats.socket_path())).await;
        let (index, route) = web_vip(&double).await;
        stats.add_vip(index as usize).expect("add vip counters");
        Rig {
            double,
            stats,
            d,
            index,
            route,
            _up: up,
            _dir: dir,
        }
    }
}

/// Waits until the double holds the web VIP; returns its pool index and route index.
async fn web_vip(double: &VppDouble) -> (u32, u32) {
    eventually("web VIP programmed", || async {
        let v = double.vip(pfx("192.0.2.1"), 80)?;
        v.ases.iter().any(|a| a.used).then_some(())?;
        Some((v.index, double.route_stats_index(pfx("192.0.2.1"))?))
    })
    .await
}

async fn counters(d: &Daemon) -> Result<VpplbCounters, tonic::Status> {
    d.client()
        .await
        .get_vpplb_counters(GetVpplbCountersRequest {})
        .await
        .map(tonic::Response::into_inner)
}

fn web_of(c: &VpplbCounters) -> Option<&VipCounters> {
    c.vips.iter().find(|v| v.frontend == "web")
}

/// Waits until GetVPPLBCounters shows web with these totals (and a previous pass).
async fn wait_counters(d: &Daemon, want: (u64, u64, u64, u64)) -> VpplbCounters {
    eventually(&format!("web counters {want:?}"), || async {
        let c = counters(d).await.ok()?;
        let w = web_of(&c)?;
        let got = (
            w.first_packet,
            w.next_packet,
            w.route_packets,
            w.route_bytes,
        );
        (got == want && c.previous.is_some()).then_some(c)
    })
    .await
}

/// The daemon is connected to the VPP API and never had to reconnect.
async fn assert_api_connection_kept(d: &Daemon) {
    let info = d
        .client()
        .await
        .get_vpp_info(GetVppInfoRequest {})
        .await
        .expect("vpp info")
        .into_inner();
    assert!(info.connected);
    assert_eq!(info.reconnects, 0, "{info:?}");
}

fn metric_line(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_route_lookup_finds_the_vip_routes() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let c = Client::connect(ClientConfig {
        socket_path: double.socket_path().to_path_buf(),
        client_name: "t".into(),
        ..ClientConfig::default()
    })
    .await
    .expect("connect to the double");
    assert_eq!(
        c.ip_route_lookup(0, pfx("192.0.2.1")).await.ok(),
        Some(None)
    );
    for (p, port) in [("192.0.2.1", 80), ("192.0.2.1", 443), ("192.0.2.9", 80)] {
        c.lb_add_del_vip_v2(&LbAddDelVipV2::add(pfx(p), 6, port, EncapType::GRE4))
            .await
            .expect("add vip");
    }
    let a = c
        .ip_route_lookup(0, pfx("192.0.2.1"))
        .await
        .expect("lookup")
        .expect("route of 192.0.2.1");
    let b = c
        .ip_route_lookup(0, pfx("192.0.2.9"))
        .await
        .expect("lookup")
        .expect("route of 192.0.2.9");
    assert_eq!(
        Some(a.stats_index),
        double.route_stats_index(pfx("192.0.2.1"))
    );
    assert_eq!(
        Some(b.stats_index),
        double.route_stats_index(pfx("192.0.2.9"))
    );
    assert_ne!(a.stats_index, b.stats_index);
    assert_eq!(a.prefix.0, pfx("192.0.2.1"));
    // Another table has no such route.
    assert_eq!(
        c.ip_route_lookup(7, pfx("192.0.2.1")).await.ok(),
        Some(None)
    );
    // The route lives while any VIP of the prefix does.
    c.lb_add_del_vip_v2(&LbAddDelVipV2::delete(pfx("192.0.2.1"), 6, 80))
        .await
        .expect("del vip");
    assert!(matches!(
        c.ip_route_lookup(0, pfx("192.0.2.1")).await,
        Ok(Some(r)) if r.stats_index == a.stats_index
    ));
    c.lb_add_del_vip_v2(&LbAddDelVipV2::delete(pfx("192.0.2.1"), 6, 443))
        .await
        .expect("del vip");
    assert_eq!(
        c.ip_route_lookup(0, pfx("192.0.2.1")).await.ok(),
        Some(None)
    );
    c.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_show_in_grpc_ctl_and_metrics() {
    let rig = Rig::start(ApiMode::V1_2).await;
    let (d, stats, index) = (&rig.d, &rig.stats, rig.index);
    wait_counters(d, (0, 0, 0, 0)).await;
    let lookups = rig.double.requests("ip_route_lookup");
    assert!(lookups > 0);

    // 10 flows of 5 packets of 100 bytes on thread 0, 4 flows of 2 packets of 60 bytes on
    // thread 1, plus 3 packets without a backend.
    let (i, r) = (index as usize, rig.route as usize);
    stats.send_flows(i, r, 0, 10, 5, 100).expect("flows");
    stats.send_flows(i, r, 1, 4, 2, 60).expect("flows");
    stats
        .count_vip(i, 1, support::stats_double::VipCounter::NoServer, 3)
        .expect("no server");
    let want = (14, 40 + 4, 50 + 8, 5000 + 480);
    let c = wait_counters(d, want).await;
    // The VIP did not change: its route index was not looked up again pass after pass.
    assert_eq!(rig.double.requests("ip_route_lookup"), lookups);
    let w = web_of(&c).expect("web");
    assert_eq!(w.no_server, 3);
    assert_eq!(w.untracked_packet, 0);
    assert_eq!(
        (w.prefix.as_str(), w.protocol.as_str(), w.port),
        ("192.0.2.1/32", "tcp", 80)
    );
    assert_eq!(w.pool_index, index);
    assert!(c.vpp_uptime.is_some(), "{c:?}");
    let prev = c.previous.as_deref().expect("previous pass");
    let (now, before) = (c.at.expect("at"), prev.at.expect("previous at"));
    assert!(
        (now.seconds, now.nanos) > (before.seconds, before.nanos),
        "{now:?} vs {before:?}"
    );

    // ctl, text: totals (and rates, from the daemon's previous pass).
    let text = d.ctl_ok(&["show", "vpp", "lb", "counters"]);
    let row = text
        .lines()
        .find(|l| l.starts_with("web"))
        .unwrap_or_else(|| panic!("no web row: {text}"));
    for n in ["14", "44", "3", "58", "5480"] {
        assert!(
            row.split_whitespace().any(|c| c == n),
            "{n} missing: {text}"
        );
    }
    assert!(text.contains("NEXT/s"), "{text}");
    assert!(text.contains("rates over the last"), "{text}");
    // ctl, JSON.
    let out = d.ctl_ok(&["--json", "show", "vpp", "lb", "counters"]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let web = j["vips"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["frontend"] == "web"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(web["first_packet"], 14, "{j}");
    assert_eq!(web["next_packet"], 44, "{j}");
    assert_eq!(web["no_server"], 3, "{j}");
    assert_eq!(web["route_packets"], 58, "{j}");
    assert_eq!(web["route_bytes"], 5480, "{j}");
    assert!(j["previous"].is_object(), "{j}");

    // /metrics.
    let vip = r#"frontend="web",prefix="192.0.2.1/32",protocol="tcp",port="80""#;
    let body = eventually("VIP counters in /metrics", || async {
        let (status, body) = http_get(&d.metrics_url("/metrics")).await?;
        (status == 200
            && metric_line(
                &body,
                &format!("maglev_vip_packets_total{{{vip},kind=\"first\"}}"),
            ) == Some(14))
        .then_some(body)
    })
    .await;
    for (line, want) in [
        (
            format!("maglev_vip_packets_total{{{vip},kind=\"next\"}}"),
            44,
        ),
        (
            format!("maglev_vip_packets_total{{{vip},kind=\"untracked\"}}"),
            0,
        ),
        (
            format!("maglev_vip_packets_total{{{vip},kind=\"no_server\"}}"),
            3,
        ),
        (format!("maglev_vip_route_packets_total{{{vip}}}"), 58),
        (format!("maglev_vip_route_bytes_total{{{vip}}}"), 5480),
        ("maglev_vpp_connected".to_string(), 1),
        (
            format!(
                "maglev_vpp_info{{version=\"26.10-rc0~42-gdouble\",build_date=\"2026-08-01T00:00:00\",pid=\"{}\"}}",
                rig.double.pid()
            ),
            1,
        ),
    ] {
        assert_eq!(metric_line(&body, &line), Some(want), "{line}:\n{body}");
    }
    assert!(
        metric_line(&body, "maglev_vpp_uptime_seconds ").is_some(),
        "{body}"
    );
    assert!(
        metric_line(
            &body,
            "maglev_vpp_api_total{msg=\"ip_route_lookup\",direction=\"send\",result=\"ok\"}"
        )
        .is_some_and(|n| n > 0),
        "{body}"
    );
    assert!(
        metric_line(
            &body,
            "maglev_vpp_api_total{msg=\"ip_route_lookup\",direction=\"recv\",result=\"ok\"}"
        )
        .is_some_and(|n| n > 0),
        "{body}"
    );
    // The web VIP and its backend were added by a sync.
    let added: u64 = ["all", "vip"]
        .iter()
        .filter_map(|scope| {
            metric_line(
                &body,
                &format!("maglev_vpp_lbsync_total{{scope=\"{scope}\",kind=\"vip_added\"}}"),
            )
        })
        .sum();
    assert!(added >= 1, "{body}");
    assert!(
        metric_line(&body, "maglev_vpp_connected_seconds ").is_some(),
        "{body}"
    );
    assert!(
        metric_line(
            &body,
            "maglev_vpp_lbsync_total{scope=\"vip\",kind=\"applied\"}"
        )
        .is_some_and(|n| n > 0),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_restart_remaps_without_touching_the_api() {
    let rig = Rig::start(ApiMode::V1_2).await;
    let (d, stats, index, route) = (&rig.d, &rig.stats, rig.index, rig.route);
    stats
        .send_flows(index as usize, route as usize, 0, 5, 2, 10)
        .expect("flows");
    wait_counters(d, (5, 5, 10, 100)).await;
    let served = stats.served();

    // A new segment (new boot time, counters from zero) behind the same socket path.
    stats.restart().expect("restart stats");
    stats.add_vip(index as usize).expect("add vip counters");
    stats
        .send_flows(index as usize, route as usize, 0, 1, 1, 10)
        .expect("flows");
    wait_counters(d, (1, 0, 1, 10)).await;
    assert!(stats.served() > served, "the segment was mapped again");
    // The API answered with the same pid: its connection was kept.
    assert_api_connection_kept(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stats_is_unavailable_with_the_reason() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    // Stats off.
    let (d, _up) = start(&double, None).await;
    let e = counters(&d).await.expect_err("stats off");
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert_eq!(e.message(), "VPP stats are off (--vpp-stats-addr is empty)");
    drop(d);

    // A stats socket nobody serves: the reason, and the API connection is left alone.
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("stats.sock");
    let (d, _up) = start(&double, Some(&missing)).await;
    let e = eventually("a stats failure", || async {
        let e = counters(&d).await.err()?;
        e.message().contains("stats segment").then_some(e)
    })
    .await;
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(e.message().contains("stats.sock"), "{}", e.message());
    assert_api_connection_kept(&d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_vpp_has_counters_too() {
    // lb API 1.1.0: the pool index comes from the CLI listing there as well.
    let rig = Rig::start(ApiMode::V1_1).await;
    let (d, stats, index, route) = (&rig.d, &rig.stats, rig.index, rig.route);
    stats
        .send_flows(index as usize, route as usize, 1, 3, 4, 50)
        .expect("flows");
    let c = wait_counters(d, (3, 9, 12, 600)).await;
    assert_eq!(web_of(&c).map(|w| w.pool_index), Some(index));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_restart_clears_the_counters() {
    // VPP restarts: the API double comes back empty with a new pid, the stats double with a
    // new segment and boot time. The counters of the old run must not be served any more,
    // nor be used as the "previous" pass of the new run.
    let rig = Rig::start(ApiMode::V1_2).await;
    let (d, stats) = (&rig.d, &rig.stats);
    let old = (5, 5, 10, 100);
    stats
        .send_flows(rig.index as usize, rig.route as usize, 0, 5, 2, 10)
        .expect("flows");
    wait_counters(d, old).await;

    rig.double.restart_empty();
    stats.restart().expect("restart stats");
    // Before the lb plugin re-creates the VIP counters, nothing of the old run is left.
    eventually("old counters cleared", || async {
        let Ok(c) = counters(d).await else {
            return Some(());
        };
        let gone = web_of(&c).is_none_or(|w| w.first_packet == 0 && w.route_packets == 0);
        gone.then_some(())
    })
    .await;

    // The daemon reconnected to the new VPP and programmed the VIP again.
    let (index, route) = web_vip(&rig.double).await;
    let info = d
        .client()
        .await
        .get_vpp_info(GetVppInfoRequest {})
        .await
        .expect("vpp info")
        .into_inner();
    assert_eq!(info.pid, rig.double.pid(), "{info:?}");
    assert!(info.reconnects >= 1, "{info:?}");
    stats.add_vip(index as usize).expect("add vip counters");
    stats
        .send_flows(index as usize, route as usize, 0, 1, 1, 10)
        .expect("flows");
    let new = (1, 0, 1, 10);
    let c = wait_counters(d, new).await;
    // The previous pass is one of the new run (web is absent from it when it was read
    // before the VIP counters existed): no counter ran backwards.
    let prev = c.previous.as_deref().expect("previous pass");
    let from_old_run = web_of(prev).is_some_and(|w| {
        w.first_packet > new.0
            || w.next_packet > new.1
            || w.route_packets > new.2
            || w.route_bytes > new.3
    });
    assert!(
        !from_old_run,
        "previous pass from before the restart: {prev:?}"
    );
}
