//! The VPP RPCs of the real daemon against the in-process VPP double, with real loopback
//! backends: GetVPPLBState shows what the double holds (weights, flags, buckets, names),
//! SyncVPPLBState of one frontend and of all repairs drift, NOT_FOUND names the known
//! frontends, `--dry-run` returns the ops and writes nothing, and `maglev ctl show vpp
//! info|lb state` / `sync vpp lb state` show the same through the CLI.

#[path = "support/daemon.rs"]
mod daemon_support;
mod support;

use std::net::IpAddr;

use daemon_support::{Daemon, DaemonBuilder, UpBackend, eventually, free_port};
use maglev::proto::maglev_client::MaglevClient;
use maglev::proto::{
    GetVppInfoRequest, GetVpplbStateRequest, SyncVpplbStateRequest, SyncVpplbStateResponse, VppVip,
    VpplbState,
};
use maglev::vpp::client::{Client, ClientConfig};
use maglev::vpp::messages::lb::LbAsSetWeight;
use maglev::vpp::wire::Prefix;
use serde_json::Value;
use support::scenario::{ConfigText, Timing};
use support::vpp_double::{ApiMode, VipView, VppDouble};
use tonic::transport::Channel;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn pfx(s: &str, len: u8) -> Prefix {
    Prefix::new(ip(s), len)
}

/// Frontends `web` (tcp/80: up weight 80, down) and `dns` (udp/53: up), fast checks,
/// no warmup hold, full syncs far apart (the tests trigger their own).
fn config(port: u16) -> String {
    ConfigText::new()
        .vpp_lb("60s", "0s", "3s")
        .check("tcp", "tcp", port, Timing::QUICK)
        .backend("up", "127.0.0.2", "tcp")
        .backend("down", "127.0.0.3", "tcp")
        .frontend("web", "192.0.2.1", "tcp", 80)
        .pool("web", "primary", "up = { weight = 80 }, down = {}")
        .frontend("dns", "192.0.2.2", "udp", 53)
        .pool("dns", "primary", "up = {}")
        .build()
}

async fn start(double: &VppDouble, extra: &[&str]) -> (Daemon, UpBackend) {
    let up = UpBackend::start_on("127.0.0.2", free_port("127.0.0.2"));
    let mut b = DaemonBuilder::new(config(up.port()))
        .vpp(double.socket_path(), None)
        .log_level("info");
    for a in extra {
        b = b.arg(*a);
    }
    (b.start().await, up)
}

fn web(double: &VppDouble) -> Option<VipView> {
    double.vip(pfx("192.0.2.1", 32), 80)
}

fn weight_of(v: &VipView, addr: &str) -> Option<u8> {
    v.ases
        .iter()
        .find(|a| a.used && a.address == ip(addr))
        .map(|a| a.weight)
}

/// Waits until the double holds both VIPs with `up` at its configured weight.
async fn converged(d: &Daemon, double: &VppDouble) {
    eventually("VPP programmed (web up=80, dns up=100)", || async {
        let w = web(double)?;
        let dns = double.vip(pfx("192.0.2.2", 32), 53)?;
        (weight_of(&w, "127.0.0.2") == Some(80) && weight_of(&dns, "127.0.0.2") == Some(100))
            .then_some(())
    })
    .await;
    // And the daemon says the warmup is over (syncs are accepted).
    let c = d.client().await;
    eventually("warmup over", || {
        let mut c = c.clone();
        async move {
            let i = c
                .get_vpp_info(GetVppInfoRequest {})
                .await
                .ok()?
                .into_inner();
            i.warmup_done.then_some(())
        }
    })
    .await;
}

async fn lb_state(d: &Daemon) -> VpplbState {
    d.client()
        .await
        .get_vpplb_state(GetVpplbStateRequest {})
        .await
        .expect("GetVPPLBState")
        .into_inner()
}

fn vip_of<'a>(s: &'a VpplbState, prefix: &str, port: u32) -> &'a VppVip {
    s.vips
        .iter()
        .find(|v| v.prefix == prefix && v.port == port)
        .unwrap_or_else(|| panic!("no VIP {prefix} port {port} in {s:?}"))
}

/// Changes a weight behind the daemon's back.
async fn tamper(double: &VppDouble, vip: &str, protocol: u8, port: u16, weight: u8) {
    let c = Client::connect(ClientConfig {
        socket_path: double.socket_path().to_path_buf(),
        client_name: "tamper".into(),
        ..ClientConfig::default()
    })
    .await
    .expect("connect to the double");
    c.lb_as_set_weight(&LbAsSetWeight {
        pfx: pfx(vip, 32),
        protocol,
        port,
        as_address: ip("127.0.0.2"),
        weight,
        is_flush: false,
    })
    .await
    .expect("set weight");
    c.disconnect().await;
}

/// SyncVPPLBState of `frontend` (empty: all).
async fn sync(
    c: &mut MaglevClient<Channel>,
    frontend: &str,
) -> Result<SyncVpplbStateResponse, tonic::Status> {
    c.sync_vpplb_state(SyncVpplbStateRequest {
        frontend: frontend.into(),
    })
    .await
    .map(tonic::Response::into_inner)
}

fn ctl_json(d: &Daemon, words: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(words);
    let out = d.ctl_ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{words:?}: not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_state_shows_what_vpp_holds_with_names() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let (d, _up) = start(&double, &[]).await;
    converged(&d, &double).await;
    // `down` is probed down: wait until VPP carries it at weight 0 (or not at all).
    eventually("down at weight 0", || async {
        let w = web(&double)?;
        (weight_of(&w, "127.0.0.3").unwrap_or(0) == 0).then_some(())
    })
    .await;

    let state = lb_state(&d).await;
    let conf = state.conf.clone().expect("lb conf on API 1.2.0");
    assert_eq!(conf.ip4_src_address, "192.0.2.254");
    // Every VIP of the double, field by field.
    let held = double.vips();
    let live: Vec<&VipView> = held.iter().filter(|v| v.used).collect();
    assert!(!live.is_empty(), "the double holds no VIP: {held:?}");
    assert_eq!(state.vips.len(), live.len(), "{state:?}");
    for v in live {
        let p = vip_of(&state, &v.prefix.to_string(), u32::from(v.port));
        assert_eq!(p.pool_index, v.index);
        assert_eq!(p.flow_table_length, v.table_len);
        assert_eq!(p.src_ip_sticky, v.src_ip_sticky);
        assert_eq!(p.ases.len(), v.ases.len(), "{p:?} vs {v:?}");
        for a in &v.ases {
            let pa = p
                .ases
                .iter()
                .find(|x| x.address == a.address.to_string())
                .unwrap_or_else(|| panic!("AS {} missing in {p:?}", a.address));
            assert_eq!(pa.weight, u32::from(a.weight), "{pa:?}");
            assert_eq!(pa.num_buckets, a.num_buckets, "{pa:?}");
            assert_eq!(pa.flags & 1 == 1, a.used, "{pa:?}");
        }
    }
    let w = vip_of(&state, "192.0.2.1/32", 80);
    assert_eq!((w.frontend.as_str(), w.protocol.as_str()), ("web", "tcp"));
    assert_eq!(w.encap, "gre4");
    let up = w
        .ases
        .iter()
        .find(|a| a.address == "127.0.0.2")
        .expect("up in web");
    assert_eq!((up.backend.as_str(), up.weight), ("up", 80));
    assert!(up.num_buckets > 0, "{up:?}");
    let dns = vip_of(&state, "192.0.2.2/32", 53);
    assert_eq!(
        (dns.frontend.as_str(), dns.protocol.as_str()),
        ("dns", "udp")
    );

    // The CLI shows the same.
    let text = d.ctl_ok(&["show", "vpp", "lb", "state"]);
    assert!(text.contains("frontend web"), "{text}");
    assert!(text.contains("127.0.0.2") && text.contains("up"), "{text}");
    let j = ctl_json(&d, &["show", "vpp", "lb", "state"]);
    let web_json = j["vips"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["frontend"] == "web"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(web_json["prefix"], "192.0.2.1/32", "{j}");
    assert!(
        web_json["ases"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["backend"] == "up" && a["weight"] == 80)),
        "{j}"
    );

    // show vpp info: the double's version, pid and lb API generation.
    let text = d.ctl_ok(&["show", "vpp", "info"]);
    assert!(text.contains("26.10-rc0~42-gdouble"), "{text}");
    assert!(text.contains(&double.pid().to_string()), "{text}");
    assert!(text.contains("1.2.0"), "{text}");
    let j = ctl_json(&d, &["show", "vpp", "info"]);
    assert_eq!(j["connected"], true, "{j}");
    assert_eq!(j["version"], "26.10-rc0~42-gdouble", "{j}");
    // From the supervisor's handshake (`show_version` is asked once per connect).
    assert_eq!(j["build_date"], "2026-08-01T00:00:00", "{j}");
    assert_eq!(j["pid"], double.pid(), "{j}");
    assert_eq!(j["api_generation"], "1.2.0", "{j}");
    assert_eq!(j["legacy"], false, "{j}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_one_frontend_all_and_unknown() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let (d, _up) = start(&double, &[]).await;
    converged(&d, &double).await;
    let mut c = d.client().await;

    // In sync: nothing to do.
    let r = sync(&mut c, "web").await.expect("sync web");
    assert!(r.operations.is_empty(), "{r:?}");
    assert!(!r.dry_run);

    // Drift on both VIPs; a sync of `web` repairs only web.
    tamper(&double, "192.0.2.1", 6, 80, 7).await;
    tamper(&double, "192.0.2.2", 17, 53, 9).await;
    let r = sync(&mut c, "web").await.expect("sync web");
    assert_eq!(r.operations.len(), 1, "{r:?}");
    assert!(r.operations[0].contains("127.0.0.2"), "{r:?}");
    let w = web(&double).expect("web VIP");
    assert_eq!(weight_of(&w, "127.0.0.2"), Some(80));
    let dns = double.vip(pfx("192.0.2.2", 32), 53).expect("dns VIP");
    assert_eq!(weight_of(&dns, "127.0.0.2"), Some(9), "dns left alone");

    // A full sync (the CLI, empty frontend) repairs the rest.
    let text = d.ctl_ok(&["sync", "vpp", "lb", "state"]);
    assert!(text.starts_with("written"), "{text}");
    assert!(text.contains("127.0.0.2"), "{text}");
    let dns = double.vip(pfx("192.0.2.2", 32), 53).expect("dns VIP");
    assert_eq!(weight_of(&dns, "127.0.0.2"), Some(100));
    let r = sync(&mut c, "").await.expect("full sync");
    assert!(r.operations.is_empty(), "{r:?}");

    // Unknown frontend: NOT_FOUND naming the known ones; VPP untouched.
    let writes = double.writes().len();
    let e = sync(&mut c, "nope").await.expect_err("unknown frontend");
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    assert!(e.message().contains("\"nope\""), "{}", e.message());
    assert!(e.message().contains("dns, web"), "{}", e.message());
    assert_eq!(double.writes().len(), writes);
    let o = d.ctl(&["sync", "vpp", "lb", "state", "nope"]);
    assert_ne!(o.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sync_returns_the_ops_and_writes_nothing() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let (d, _up) = start(&double, &["--dry-run"]).await;
    let mut c = d.client().await;
    // Once the warmup is over the daemon would program both VIPs; it must not.
    let r = eventually("a dry-run sync with ops", || {
        let mut c = c.clone();
        async move {
            let r = sync(&mut c, "").await.ok()?;
            (r.operations.len() >= 4).then_some(r)
        }
    })
    .await;
    assert!(r.dry_run);
    let text = r.operations.join("\n");
    assert!(text.contains("192.0.2.1/32"), "{text}");
    assert!(text.contains("192.0.2.2/32"), "{text}");
    let one = sync(&mut c, "dns").await.expect("dry-run sync of dns");
    assert!(one.dry_run);
    assert!(!one.operations.is_empty());
    assert!(
        one.operations.iter().all(|o| !o.contains("192.0.2.1/32")),
        "{one:?}"
    );
    let out = d.ctl_ok(&["sync", "vpp", "lb", "state", "web"]);
    assert!(out.starts_with("dry run: would write"), "{out}");
    let j = ctl_json(&d, &["sync", "vpp", "lb", "state", "web"]);
    assert_eq!(j["dry_run"], true, "{j}");

    assert!(double.writes().is_empty(), "{:?}", double.writes());
    assert!(double.vips().is_empty());
    // The state read still works and shows an empty VPP.
    let state = lb_state(&d).await;
    assert!(state.vips.is_empty(), "{state:?}");
}
