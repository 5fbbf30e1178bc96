//! Table-driven tests of the pure lb core: CLI text, desired state, actual state, diff.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use super::*;
use crate::checker::FrontendView;
use crate::config::{self, Config};
use crate::health::{BackendInput, PoolInput, State, frontend_weights};
use crate::vpp::client::LbAsEntry;
use crate::vpp::messages::lb::LbVipDetails;
use crate::vpp::wire::{IpDscp, IpProto, LbVip, SrvType};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(ip(a), l.parse().unwrap())
}

fn key(p: &str, protocol: u8, port: u16) -> VipKey {
    VipKey::new(pfx(p), protocol, port)
}

// ---------------------------------------------------------------- CLI text

const MASTER_TEXT: &str = "\
 ip4-gre4 [1] 192.0.2.1/32 src_ip_sticky
   new_size:1024
   protocol:6 port:80
   counters:
     packet from existing sessions: 0
     first session packet: 12
     untracked packet: 0
     no server configured: 0
   #as:3
     10.0.0.1 weight:100 buckets:512 flows:0 dpo:1 used
     10.0.0.2 weight:0 buckets:0 flows:3 dpo:2 used
     10.0.0.3 weight:50 buckets:0 flows:0 dpo:3 removed
 ip6-gre6 [2] 2001:db8::/64
   new_size:1024
   counters:
     packet from existing sessions: 0
     first session packet: 0
     untracked packet: 0
     no server configured: 0
   #as:0
";

const LEGACY_TEXT: &str = "ip4-gre4 [1] 192.0.2.1/32\r\n  new_size:1024\r\n  protocol:17 port:53\r\n  counters:\r\n    packet from existing sessions: 0\r\n    first session packet: 0\r\n    untracked packet: 0\r\n    no server configured: 0\r\n  #as:2\r\n    10.0.0.1 1024 buckets   0 flows  dpo:1 used\r\n    10.0.0.2 0 buckets   7 flows  dpo:2 removed\r\nip4-gre4 [2] 192.0.2.9/32 removed\r\n  new_size:1024\r\n  counters:\r\n  #as:0\r\n";

#[test]
fn cli_parses_the_master_format() {
    let vips = parse_show_lb_vips_verbose(MASTER_TEXT).unwrap();
    assert_eq!(vips.len(), 2);
    let v = &vips[0];
    assert_eq!(v.vip_type, "ip4-gre4");
    assert_eq!(v.index, 1);
    assert_eq!(v.prefix, pfx("192.0.2.1/32"));
    assert!(v.src_ip_sticky);
    assert!(!v.removed);
    assert_eq!(v.new_size, Some(1024));
    assert_eq!((v.protocol, v.port), (Some(6), Some(80)));
    assert_eq!(v.encap(), Some(EncapType::GRE4));
    assert_eq!(
        v.ases,
        vec![
            CliAs {
                address: ip("10.0.0.1"),
                weight: Some(100),
                buckets: Some(512),
                flows: Some(0),
                used: true
            },
            CliAs {
                address: ip("10.0.0.2"),
                weight: Some(0),
                buckets: Some(0),
                flows: Some(3),
                used: true
            },
            CliAs {
                address: ip("10.0.0.3"),
                weight: Some(50),
                buckets: Some(0),
                flows: Some(0),
                used: false
            },
        ]
    );
    let v6 = &vips[1];
    assert_eq!(v6.encap(), Some(EncapType::GRE6));
    assert_eq!(v6.prefix, pfx("2001:db8::/64"));
    assert_eq!((v6.protocol, v6.port), (None, None));
    assert!(v6.ases.is_empty());
}

#[test]
fn cli_parses_the_26_06_format() {
    let vips = parse_show_lb_vips_verbose(LEGACY_TEXT).unwrap();
    assert_eq!(vips.len(), 2);
    assert_eq!((vips[0].protocol, vips[0].port), (Some(17), Some(53)));
    assert!(!vips[0].src_ip_sticky);
    assert_eq!(vips[0].ases.len(), 2);
    assert_eq!(vips[0].ases[0].weight, None);
    assert_eq!(vips[0].ases[0].buckets, Some(1024));
    assert_eq!(vips[0].ases[1].flows, Some(7));
    assert!(!vips[0].ases[1].used);
    assert!(vips[1].removed);
    assert_eq!(vips[1].index, 2);
}

#[test]
fn cli_empty_output_is_no_vips() {
    assert_eq!(parse_show_lb_vips_verbose("").unwrap(), vec![]);
    assert_eq!(parse_show_lb_vips_verbose("\r\n").unwrap(), vec![]);
}

#[test]
fn cli_refuses_what_it_cannot_read() {
    for (text, what) in [
        ("ip4-gre4 1 192.0.2.1/32\n", "no index"),
        ("ip4-gre4 [1] 192.0.2.1\n", "no prefix length"),
        ("ip4-gre4 [1] 192.0.2.1/33\n", "length too long"),
        ("ip4-gre4 [1] 192.0.2.1/32 lameduck\n", "unknown flag"),
        (
            "ip4-gre4 [1] 192.0.2.1/32\n  #as:1\n    10.0.0.1 weight:x used\n",
            "bad weight",
        ),
        (
            "ip4-gre4 [1] 192.0.2.1/32\n  #as:1\n    10.0.0.1 weight:1 buckets:2\n",
            "no used/removed",
        ),
        ("ip4-gre4 [1] 192.0.2.1/32\n  protocol:6\n", "port missing"),
    ] {
        let e = parse_show_lb_vips_verbose(text).unwrap_err();
        assert!(e.line >= 1, "{what}: {e}");
    }
}

#[test]
fn cli_counter_lines_are_not_ases() {
    // Counter names contain words and colons; only lines after #as: are ASes.
    let text =
        "ip4-gre4 [3] 192.0.2.1/32\n  counters:\n    packet from existing sessions: 5\n  #as:0\n";
    let vips = parse_show_lb_vips_verbose(text).unwrap();
    assert_eq!(vips[0].ases, vec![]);
    assert_eq!(vips[0].index, 3);
}

// ---------------------------------------------------------------- desired state

const CONFIG: &str = r#"
[vpp.lb]
ipv4-src-address = "192.0.2.254"
ipv6-src-address = "2001:db8::fe"
sticky-buckets-per-core = 1024
flow-timeout = "40s"

[healthchecks.tcp]
type = "tcp"
port = 80

[backends.a]
address = "10.0.0.10"
healthcheck = "tcp"
[backends.b]
address = "10.0.0.9"
healthcheck = "tcp"
[backends.c]
address = "10.0.0.100"
healthcheck = "tcp"
[backends.v6a]
address = "2001:db8:1::2"
healthcheck = "tcp"
[backends.v6b]
address = "2001:db8:1::1"
healthcheck = "tcp"

[frontends.web]
address = "192.0.2.1"
protocol = "tcp"
port = 80
flush-on-down = true
  [[frontends.web.pools]]
  name = "primary"
  backends = { a = { weight = 70 }, b = {} }
  [[frontends.web.pools]]
  name = "fallback"
  backends = { c = {} }

[frontends.web6]
address = "2001:db8::1"
protocol = "any"
port = 0
src-ip-sticky = true
  [[frontends.web6.pools]]
  name = "all"
  backends = { v6a = {}, v6b = {} }
"#;

fn config() -> Config {
    config::load_str(CONFIG, Path::new("test.toml")).unwrap()
}

/// A view of `frontend` with backend states from `states` (default unknown).
fn view(cfg: &Config, frontend: &str, states: &[(&str, State)]) -> FrontendView {
    let fe = cfg.frontends[frontend].clone();
    let states: BTreeMap<&str, State> = states.iter().copied().collect();
    let inputs: Vec<PoolInput> = fe
        .pools
        .iter()
        .map(|p| PoolInput {
            name: p.name.clone(),
            backends: p
                .backends
                .iter()
                .map(|m| {
                    BackendInput::new(
                        m.backend.clone(),
                        m.weight,
                        states
                            .get(m.backend.as_str())
                            .copied()
                            .unwrap_or(State::Unknown),
                    )
                })
                .collect(),
        })
        .collect();
    let weights = frontend_weights(&inputs, fe.flush_on_down);
    FrontendView {
        frontend: fe,
        inputs,
        weights,
    }
}

fn das(backend: &str, weight: u8, flush: bool) -> DesiredAs {
    DesiredAs {
        backend: backend.into(),
        weight,
        flush,
    }
}

#[test]
fn desired_follows_effective_weights() {
    let cfg = config();
    let views = [
        view(
            &cfg,
            "web",
            &[("a", State::Up), ("b", State::Down), ("c", State::Up)],
        ),
        view(&cfg, "web6", &[("v6a", State::Up), ("v6b", State::Paused)]),
    ];
    let d = desired_state(&cfg, &views);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(
        d.conf,
        LbConfValues {
            ip4_src_address: "192.0.2.254".parse().unwrap(),
            ip6_src_address: "2001:db8::fe".parse().unwrap(),
            sticky_buckets_per_core: 1024,
            flow_timeout: 40,
        }
    );
    let web = d.vip_of("web").unwrap();
    assert_eq!(web.key, key("192.0.2.1/32", 6, 80));
    assert_eq!(web.encap, EncapType::GRE4);
    assert!(!web.src_ip_sticky);
    assert!(!web.has_unknown);
    let ases: Vec<(IpAddr, DesiredAs)> = web.ases.clone().into_iter().collect();
    // Numeric order, not string order: .9 < .10 < .100.
    assert_eq!(
        ases,
        vec![
            (ip("10.0.0.9"), das("b", 0, true)),
            (ip("10.0.0.10"), das("a", 70, false)),
            (ip("10.0.0.100"), das("c", 0, false)),
        ]
    );
    let web6 = d.vip_of("web6").unwrap();
    assert_eq!(web6.key, key("2001:db8::1/128", 255, 0));
    assert_eq!(web6.encap, EncapType::GRE6);
    assert!(web6.src_ip_sticky);
    assert_eq!(web6.ases[&ip("2001:db8:1::1")], das("v6b", 0, false));
    assert_eq!(web6.ases[&ip("2001:db8:1::2")], das("v6a", 100, false));
    // IPv4 VIP before IPv6 VIP.
    let keys: Vec<VipKey> = d.vips.keys().copied().collect();
    assert_eq!(keys, vec![web.key, web6.key]);
}

#[test]
fn desired_marks_unknown_backends_and_fails_over() {
    let cfg = config();
    let d = desired_state(&cfg, &[view(&cfg, "web", &[("a", State::Up)])]);
    assert!(d.vip_of("web").unwrap().has_unknown);
    // Primary all down: the fallback pool is active.
    let d = desired_state(
        &cfg,
        &[view(
            &cfg,
            "web",
            &[("a", State::Down), ("b", State::Disabled), ("c", State::Up)],
        )],
    );
    let web = d.vip_of("web").unwrap();
    assert_eq!(web.ases[&ip("10.0.0.10")], das("a", 0, true));
    assert_eq!(web.ases[&ip("10.0.0.9")], das("b", 0, true));
    assert_eq!(web.ases[&ip("10.0.0.100")], das("c", 100, false));
}

#[test]
fn desired_merges_a_backend_listed_in_two_pools() {
    // The config check refuses this; the merge keeps the desired state sane anyway.
    let mut cfg = config();
    if let Some(fe) = cfg.frontends.get_mut("web") {
        fe.pools[1].backends.push(config::PoolMember {
            backend: "a".into(),
            weight: 100,
        });
    }
    // a up in primary (70) and in the standby fallback (0): the active weight wins.
    let d = desired_state(
        &cfg,
        &[view(&cfg, "web", &[("a", State::Up), ("b", State::Up)])],
    );
    assert_eq!(
        d.vip_of("web").unwrap().ases[&ip("10.0.0.10")],
        das("a", 70, false)
    );
    // Down everywhere: flush as the policy says.
    let d = desired_state(&cfg, &[view(&cfg, "web", &[("a", State::Down)])]);
    assert_eq!(
        d.vip_of("web").unwrap().ases[&ip("10.0.0.10")],
        das("a", 0, true)
    );
}

#[test]
fn desired_skips_addresses_vpp_mistakes_for_ipv4() {
    let mut cfg = config();
    if let Some(b) = cfg.backends.get_mut("v6b") {
        b.address = ip("::192.0.2.5");
    }
    let d = desired_state(&cfg, &[view(&cfg, "web6", &[])]);
    let web6 = d.vip_of("web6").unwrap();
    assert!(!web6.ases.contains_key(&ip("::192.0.2.5")));
    assert!(web6.ases.contains_key(&ip("2001:db8:1::2")));
    assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
}

#[test]
fn desired_ignores_views_of_unknown_frontends_and_absent_sources() {
    let mut cfg = config();
    cfg.vpp.lb.ipv4_src_address = None;
    let d = desired_state(&cfg, &[]);
    assert_eq!(d.conf.ip4_src_address, std::net::Ipv4Addr::BROADCAST);
    let mut v = view(&cfg, "web", &[]);
    v.frontend.name = "gone".into();
    assert!(desired_state(&cfg, &[v]).vips.is_empty());
}

// ---------------------------------------------------------------- actual state

fn vip_details(p: &str, protocol: u8, port: u16, encap: u32, len: u16) -> LbVipDetails {
    LbVipDetails {
        vip: LbVip {
            pfx: pfx(p),
            protocol: IpProto(protocol),
            port,
        },
        encap: EncapType(encap),
        dscp: IpDscp(0),
        srv_type: SrvType::CLUSTERIP,
        target_port: 0,
        flow_table_length: len,
    }
}

fn as_entry(
    p: &str,
    protocol: u8,
    port: u16,
    addr: &str,
    weight: Option<u8>,
    used: bool,
) -> LbAsEntry {
    LbAsEntry {
        vip: LbVip {
            pfx: pfx(p),
            protocol: IpProto(protocol),
            port,
        },
        address: ip(addr),
        used,
        in_use_since: 0,
        weight,
        num_buckets: weight.map(u32::from),
    }
}

fn conf() -> LbConfValues {
    config_conf(&config())
}

fn config_conf(cfg: &Config) -> LbConfValues {
    desired::desired_conf(&cfg.vpp.lb)
}

#[test]
fn actual_weighted_joins_dumps_and_cli() {
    let cli = parse_show_lb_vips_verbose(MASTER_TEXT).unwrap();
    let vips = [
        vip_details("192.0.2.1/32", 6, 80, 0, 1024),
        vip_details("2001:db8::/64", 255, 0, 1, 0),
    ];
    let ases = [
        as_entry("192.0.2.1/32", 6, 80, "10.0.0.1", Some(100), true),
        as_entry("192.0.2.1/32", 6, 80, "10.0.0.3", Some(50), false),
        // Another VIP's AS (same prefix, other port): filtered out client-side.
        as_entry("192.0.2.1/32", 6, 81, "10.0.0.7", Some(1), true),
    ];
    let a = ActualState::from_weighted(conf(), &vips, &ases, Some(&cli));
    assert_eq!(a.conf, Some(conf()));
    let v = &a.vips[&key("192.0.2.1/32", 6, 80)];
    assert_eq!(v.src_ip_sticky, Some(true));
    assert_eq!(v.index, Some(1));
    assert_eq!(v.encap, EncapType::GRE4);
    assert_eq!(v.ases.len(), 2);
    assert!(!v.ases[&ip("10.0.0.3")].used);
    let v6 = &a.vips[&key("2001:db8::/64", 255, 0)];
    assert_eq!(v6.src_ip_sticky, Some(false));
    assert_eq!(v6.flow_table_length, Some(1024));
    // Without the CLI text, stickiness is unknown (and never triggers a re-create).
    let a = ActualState::from_weighted(conf(), &vips[1..], &[], None);
    assert_eq!(a.vips[&key("2001:db8::/64", 255, 0)].src_ip_sticky, None);
    assert_eq!(
        a.vips[&key("2001:db8::/64", 255, 0)].flow_table_length,
        Some(65536)
    );
}

#[test]
fn actual_legacy_corrects_the_dump() {
    let cli = parse_show_lb_vips_verbose(LEGACY_TEXT).unwrap();
    // As 26.06 reports them: protocol 0, encap = internal type 3 (ip4-gre4), table 0,
    // the removed VIP listed too (prefix length already normalised by the client).
    let vips = [
        vip_details("192.0.2.1/32", 0, 53, 3, 0),
        vip_details("192.0.2.9/32", 0, 0, 3, 0),
    ];
    let a = ActualState::from_legacy(None, &vips, &cli).unwrap();
    assert_eq!(a.vips.len(), 1);
    let v = &a.vips[&key("192.0.2.1/32", 17, 53)];
    assert_eq!(v.encap, EncapType::GRE4);
    assert_eq!(v.src_ip_sticky, Some(false));
    assert_eq!(v.flow_table_length, Some(1024));
    assert!(v.ases[&ip("10.0.0.1")].used);
    assert_eq!(v.ases[&ip("10.0.0.1")].weight, None);
    assert!(!v.ases[&ip("10.0.0.2")].used);
}

#[test]
fn actual_legacy_pairs_same_port_vips_in_pool_order() {
    let text = "ip4-gre4 [1] 192.0.2.1/32\n  protocol:6 port:80\n  #as:1\n    10.0.0.1 1 buckets 0 flows dpo:1 used\n\
                ip4-gre4 [2] 192.0.2.1/32\n  protocol:17 port:80\n  #as:1\n    10.0.0.2 1 buckets 0 flows dpo:2 used\n";
    let cli = parse_show_lb_vips_verbose(text).unwrap();
    let vips = [
        vip_details("192.0.2.1/32", 0, 80, 3, 0),
        vip_details("192.0.2.1/32", 0, 80, 3, 0),
    ];
    let a = ActualState::from_legacy(None, &vips, &cli).unwrap();
    assert!(
        a.vips[&key("192.0.2.1/32", 6, 80)]
            .ases
            .contains_key(&ip("10.0.0.1"))
    );
    assert!(
        a.vips[&key("192.0.2.1/32", 17, 80)]
            .ases
            .contains_key(&ip("10.0.0.2"))
    );
}

#[test]
fn actual_legacy_refuses_disagreement() {
    let cli = parse_show_lb_vips_verbose(LEGACY_TEXT).unwrap();
    // A VIP in the dump that the CLI does not show.
    let vips = [
        vip_details("192.0.2.1/32", 0, 53, 3, 0),
        vip_details("192.0.2.9/32", 0, 0, 3, 0),
        vip_details("192.0.2.77/32", 0, 0, 3, 0),
    ];
    assert!(ActualState::from_legacy(None, &vips, &cli).is_err());
    // Shown but not dumped.
    assert!(ActualState::from_legacy(None, &vips[..1], &cli).is_err());
    // The dump says gre6 (type 2 = ip4-gre6), the CLI says ip4-gre4.
    let vips = [
        vip_details("192.0.2.1/32", 0, 53, 2, 0),
        vip_details("192.0.2.9/32", 0, 0, 3, 0),
    ];
    assert!(ActualState::from_legacy(None, &vips, &cli).is_err());
}

#[test]
fn legacy_vip_types_map_to_tunnels() {
    use actual::legacy_vip_type_encap as t;
    assert_eq!(t(0), Some(EncapType::GRE6));
    assert_eq!(t(1), Some(EncapType::GRE4));
    assert_eq!(t(2), Some(EncapType::GRE6));
    assert_eq!(t(3), Some(EncapType::GRE4));
    assert_eq!(t(4), Some(EncapType::L3DSR));
    assert_eq!(t(5), Some(EncapType::NAT4));
    assert_eq!(t(6), Some(EncapType::NAT6));
    assert_eq!(t(7), None);
}

// ---------------------------------------------------------------- diff

fn dvip(
    frontend: &str,
    k: VipKey,
    encap: EncapType,
    sticky: bool,
    ases: &[(&str, u8, bool)],
) -> DesiredVip {
    DesiredVip {
        frontend: frontend.into(),
        key: k,
        encap,
        src_ip_sticky: sticky,
        ases: ases
            .iter()
            .map(|(a, w, f)| (ip(a), das(a, *w, *f)))
            .collect(),
        has_unknown: false,
    }
}

fn avip(
    k: VipKey,
    encap: EncapType,
    sticky: Option<bool>,
    ases: &[(&str, Option<u8>, bool)],
) -> ActualVip {
    ActualVip {
        key: k,
        encap,
        src_ip_sticky: sticky,
        index: Some(1),
        flow_table_length: Some(1024),
        ases: ases
            .iter()
            .map(|(a, w, used)| {
                (
                    ip(a),
                    ActualAs {
                        weight: *w,
                        used: *used,
                        num_buckets: None,
                        flushed: false,
                    },
                )
            })
            .collect(),
    }
}

fn desired(vips: Vec<DesiredVip>) -> DesiredState {
    DesiredState {
        conf: conf(),
        vips: vips.into_iter().map(|v| (v.key, v)).collect(),
        problems: vec![],
    }
}

/// Only the gre4 VIP `web` is wanted.
fn desired_web(sticky: bool, ases: &[(&str, u8, bool)]) -> DesiredState {
    desired(vec![dvip("web", web(), EncapType::GRE4, sticky, ases)])
}

fn actual(vips: Vec<ActualVip>) -> ActualState {
    ActualState {
        conf: Some(conf()),
        vips: vips.into_iter().map(|v| (v.key, v)).collect(),
    }
}

fn web() -> VipKey {
    key("192.0.2.1/32", 6, 80)
}

fn web6() -> VipKey {
    key("2001:db8::1/128", 255, 0)
}

fn add_as(k: VipKey, a: &str, w: u8) -> LbOp {
    LbOp::AddAs {
        key: k,
        address: ip(a),
        weight: w,
    }
}

fn set_w(k: VipKey, a: &str, w: u8, flush: bool) -> LbOp {
    LbOp::SetWeight {
        key: k,
        address: ip(a),
        weight: w,
        flush,
    }
}

fn del_as(k: VipKey, a: &str, flush: bool) -> LbOp {
    LbOp::DelAs {
        key: k,
        address: ip(a),
        flush,
    }
}

fn add_vip(k: VipKey, encap: EncapType, sticky: bool) -> LbOp {
    LbOp::AddVip {
        key: k,
        encap,
        src_ip_sticky: sticky,
    }
}

struct Case {
    name: &'static str,
    desired: DesiredState,
    actual: ActualState,
    scope: Scope,
    mode: WeightMode,
    want: Vec<LbOp>,
}

fn cases() -> Vec<Case> {
    use EncapType as E;
    use WeightMode::{Legacy, Weighted};
    let gre4 = E::GRE4;
    let full_web = || {
        dvip(
            "web",
            web(),
            gre4,
            false,
            &[("10.0.0.9", 100, false), ("10.0.0.10", 70, false)],
        )
    };
    let live_web = || {
        avip(
            web(),
            gre4,
            Some(false),
            &[("10.0.0.9", Some(100), true), ("10.0.0.10", Some(70), true)],
        )
    };
    vec![
        Case {
            name: "nothing to do",
            desired: desired(vec![]),
            actual: actual(vec![]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![],
        },
        Case {
            name: "steady state writes nothing",
            desired: desired(vec![full_web()]),
            actual: actual(vec![live_web()]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![],
        },
        Case {
            name: "conf differs: pushed first",
            desired: desired(vec![full_web()]),
            actual: ActualState {
                conf: Some(LbConfValues {
                    flow_timeout: 10,
                    ..conf()
                }),
                ..actual(vec![live_web()])
            },
            scope: Scope::All,
            mode: Weighted,
            want: vec![LbOp::SetConf(conf())],
        },
        Case {
            name: "conf unknown (1.1.0): pushed",
            desired: desired(vec![]),
            actual: ActualState::default(),
            scope: Scope::All,
            mode: Legacy,
            want: vec![LbOp::SetConf(conf())],
        },
        Case {
            name: "missing VIP: added with ASes in numeric order",
            desired: desired_web(
                false,
                &[
                    ("10.0.0.100", 0, false),
                    ("10.0.0.9", 100, false),
                    ("10.0.0.10", 70, false),
                ],
            ),
            actual: actual(vec![]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![
                add_vip(web(), gre4, false),
                add_as(web(), "10.0.0.9", 100),
                add_as(web(), "10.0.0.10", 70),
                add_as(web(), "10.0.0.100", 0),
            ],
        },
        Case {
            name: "IPv4 VIP before IPv6 VIP, IPv6 ASes numeric",
            desired: desired(vec![
                dvip(
                    "web6",
                    web6(),
                    E::GRE6,
                    true,
                    &[
                        ("2001:db8:1::10", 100, false),
                        ("2001:db8:1::9", 100, false),
                    ],
                ),
                dvip("web", web(), gre4, false, &[("10.0.0.1", 100, false)]),
            ]),
            actual: actual(vec![]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![
                add_vip(web(), gre4, false),
                add_as(web(), "10.0.0.1", 100),
                add_vip(web6(), E::GRE6, true),
                add_as(web6(), "2001:db8:1::9", 100),
                add_as(web6(), "2001:db8:1::10", 100),
            ],
        },
        Case {
            name: "backend down: weight 0 with flush; weight change without flush",
            desired: desired_web(false, &[("10.0.0.9", 0, true), ("10.0.0.10", 100, false)]),
            actual: actual(vec![live_web()]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![
                set_w(web(), "10.0.0.9", 0, true),
                set_w(web(), "10.0.0.10", 100, false),
            ],
        },
        Case {
            name: "unknown/paused: weight 0, never flush",
            desired: desired_web(false, &[("10.0.0.9", 0, false), ("10.0.0.10", 70, false)]),
            actual: actual(vec![live_web()]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![set_w(web(), "10.0.0.9", 0, false)],
        },
        Case {
            name: "AS awaiting GC counts as absent: re-added (revived)",
            desired: desired(vec![full_web()]),
            actual: actual(vec![avip(
                web(),
                gre4,
                Some(false),
                &[
                    ("10.0.0.9", Some(100), false),
                    ("10.0.0.10", Some(70), true),
                ],
            )]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![add_as(web(), "10.0.0.9", 100)],
        },
        Case {
            name: "removed backend: AS deleted with flush; a dead AS is left to GC",
            desired: desired_web(false, &[("10.0.0.10", 70, false)]),
            actual: actual(vec![avip(
                web(),
                gre4,
                Some(false),
                &[
                    ("10.0.0.9", Some(100), true),
                    ("10.0.0.10", Some(70), true),
                    ("10.0.0.11", Some(0), false),
                ],
            )]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![del_as(web(), "10.0.0.9", true)],
        },
        Case {
            name: "full sync removes stale VIPs first",
            desired: desired(vec![full_web()]),
            actual: actual(vec![avip(
                key("198.51.100.1/32", 6, 443),
                gre4,
                Some(false),
                &[
                    ("10.9.0.2", Some(1), true),
                    ("10.9.0.1", Some(1), true),
                    ("10.9.0.3", Some(1), false),
                ],
            )]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![
                del_as(key("198.51.100.1/32", 6, 443), "10.9.0.1", true),
                del_as(key("198.51.100.1/32", 6, 443), "10.9.0.2", true),
                LbOp::DelVip {
                    key: key("198.51.100.1/32", 6, 443),
                },
                add_vip(web(), gre4, false),
                add_as(web(), "10.0.0.9", 100),
                add_as(web(), "10.0.0.10", 70),
            ],
        },
        Case {
            name: "per-VIP sync never removes other VIPs; pushes a differing conf",
            desired: desired_web(false, &[("10.0.0.9", 0, true), ("10.0.0.10", 70, false)]),
            actual: ActualState {
                conf: None,
                ..actual(vec![
                    live_web(),
                    avip(key("198.51.100.1/32", 6, 443), gre4, Some(false), &[]),
                ])
            },
            scope: Scope::Vip(web()),
            mode: Weighted,
            want: vec![LbOp::SetConf(conf()), set_w(web(), "10.0.0.9", 0, true)],
        },
        Case {
            name: "per-VIP sync of another VIP touches nothing here",
            desired: desired_web(false, &[("10.0.0.9", 0, true)]),
            actual: actual(vec![live_web()]),
            scope: Scope::Vip(web6()),
            mode: Weighted,
            want: vec![],
        },
        Case {
            name: "src-ip-sticky flip re-creates the VIP",
            desired: desired_web(true, &[("10.0.0.9", 100, false), ("10.0.0.10", 70, false)]),
            actual: actual(vec![live_web()]),
            scope: Scope::Vip(web()),
            mode: Weighted,
            want: vec![
                del_as(web(), "10.0.0.9", true),
                del_as(web(), "10.0.0.10", true),
                LbOp::DelVip { key: web() },
                add_vip(web(), gre4, true),
                add_as(web(), "10.0.0.9", 100),
                add_as(web(), "10.0.0.10", 70),
            ],
        },
        Case {
            name: "unknown stickiness never re-creates",
            desired: desired_web(true, &[("10.0.0.9", 100, false), ("10.0.0.10", 70, false)]),
            actual: actual(vec![avip(
                web(),
                gre4,
                None,
                &[("10.0.0.9", Some(100), true), ("10.0.0.10", Some(70), true)],
            )]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![],
        },
        Case {
            name: "encap change re-creates the VIP (all removals before adds)",
            desired: desired(vec![
                dvip(
                    "web",
                    web(),
                    E::GRE6,
                    false,
                    &[("2001:db8:1::1", 100, false)],
                ),
                dvip("web-tls", key("192.0.2.1/32", 6, 443), E::GRE6, false, &[]),
            ]),
            actual: actual(vec![
                avip(web(), gre4, Some(false), &[("10.0.0.9", Some(100), true)]),
                avip(key("192.0.2.1/32", 6, 443), gre4, Some(false), &[]),
            ]),
            scope: Scope::All,
            mode: Weighted,
            want: vec![
                del_as(web(), "10.0.0.9", true),
                LbOp::DelVip { key: web() },
                LbOp::DelVip {
                    key: key("192.0.2.1/32", 6, 443),
                },
                add_vip(web(), E::GRE6, false),
                add_as(web(), "2001:db8:1::1", 100),
                add_vip(key("192.0.2.1/32", 6, 443), E::GRE6, false),
            ],
        },
        Case {
            name: "legacy: weight 0 deletes (flush per policy), > 0 adds, weights otherwise ignored",
            desired: desired_web(
                false,
                &[
                    ("10.0.0.1", 0, true),
                    ("10.0.0.2", 0, false),
                    ("10.0.0.3", 50, false),
                    ("10.0.0.4", 0, false),
                    ("10.0.0.5", 100, false),
                ],
            ),
            actual: ActualState {
                conf: None,
                ..actual(vec![avip(
                    web(),
                    gre4,
                    Some(false),
                    &[
                        ("10.0.0.1", None, true),
                        ("10.0.0.2", None, true),
                        ("10.0.0.3", None, true),
                        ("10.0.0.5", None, false),
                    ],
                )])
            },
            scope: Scope::Vip(web()),
            mode: Legacy,
            want: vec![
                LbOp::SetConf(conf()),
                del_as(web(), "10.0.0.1", true),
                del_as(web(), "10.0.0.2", false),
                add_as(web(), "10.0.0.5", 100),
            ],
        },
        Case {
            name: "legacy: new VIP gets only the ASes with weight",
            desired: desired_web(false, &[("10.0.0.1", 0, false), ("10.0.0.2", 100, false)]),
            actual: ActualState {
                conf: Some(conf()),
                vips: BTreeMap::new(),
            },
            scope: Scope::All,
            mode: Legacy,
            want: vec![add_vip(web(), gre4, false), add_as(web(), "10.0.0.2", 100)],
        },
    ]
}

#[test]
fn diff_table() {
    for case in cases() {
        let got = diff(&case.desired, &case.actual, case.scope, case.mode);
        assert_eq!(got.ops, case.want, "case: {}", case.name);
    }
}

#[test]
fn diff_is_idempotent_once_applied() {
    // Applying a diff to the actual state (as VPP would) leaves nothing to do.
    for case in cases() {
        let mut state = case.actual.clone();
        let ops = diff(&case.desired, &state, case.scope, case.mode).ops;
        apply(&mut state, &ops, case.mode);
        let again = diff(&case.desired, &state, case.scope, case.mode);
        assert!(again.is_empty(), "case {}: {:?}", case.name, again.ops);
    }
}

/// VPP applying ops, as the reconciler's mirror models it.
fn apply(state: &mut ActualState, ops: &[LbOp], mode: WeightMode) {
    for op in ops {
        state.apply(op, mode);
    }
}

#[test]
fn ops_read_well() {
    assert_eq!(
        set_w(web(), "10.0.0.9", 0, true).to_string(),
        "set as 10.0.0.9 of vip 192.0.2.1/32 tcp/80 weight 0 flush"
    );
    assert_eq!(
        add_vip(web6(), EncapType::GRE6, true).to_string(),
        "add vip 2001:db8::1/128 all-ports encap gre6 src-ip-sticky"
    );
    assert_eq!(del_as(web(), "10.0.0.9", false).kind(), "del_as");
    assert_eq!(LbOp::SetConf(conf()).vip(), None);
}

#[test]
fn vip_key_normalises() {
    let k = VipKey::new(pfx("192.0.2.77/24"), 6, 0);
    assert_eq!(k.prefix, pfx("192.0.2.0/24"));
    assert_eq!(k.protocol, 255);
    assert!(is_unusable_as_address(ip("::1")));
    assert!(!is_unusable_as_address(ip("2001:db8::1")));
    assert!(!is_unusable_as_address(ip("10.0.0.1")));
}

#[test]
fn flush_is_an_edge_not_a_level() {
    use WeightMode::{Legacy, Weighted};
    let at_zero = || {
        actual(vec![avip(
            web(),
            EncapType::GRE4,
            Some(false),
            &[("10.0.0.9", Some(0), true)],
        )])
    };
    let disabled = desired_web(false, &[("10.0.0.9", 0, true)]);
    let standby = desired_web(false, &[("10.0.0.9", 0, false)]);

    // At 0 without a flush (standby, paused, override 0, down without flush-on-down),
    // then disabled: one flushing write although the weight is already 0.
    let mut mirror = at_zero();
    let ops = diff(&disabled, &mirror, Scope::Vip(web()), Weighted).ops;
    assert_eq!(ops, vec![set_w(web(), "10.0.0.9", 0, true)]);
    apply(&mut mirror, &ops, Weighted);
    // Disabled again (or any later sync): nothing.
    assert!(diff(&disabled, &mirror, Scope::All, Weighted).is_empty());
    // Back to standby and disabled again: the flows were flushed since it got to 0.
    assert!(diff(&standby, &mirror, Scope::All, Weighted).is_empty());
    assert!(diff(&disabled, &mirror, Scope::All, Weighted).is_empty());
    // Up, then down with flush: a new edge.
    let up = desired_web(false, &[("10.0.0.9", 100, false)]);
    let ops = diff(&up, &mirror, Scope::All, Weighted).ops;
    apply(&mut mirror, &ops, Weighted);
    assert_eq!(
        diff(&disabled, &mirror, Scope::All, Weighted).ops,
        vec![set_w(web(), "10.0.0.9", 0, true)]
    );
    // A policy without flush never flushes an AS at 0.
    assert!(diff(&standby, &at_zero(), Scope::All, Weighted).is_empty());

    // A fresh read keeps what the old mirror knew.
    let mut flushed = at_zero();
    apply(&mut flushed, &[set_w(web(), "10.0.0.9", 0, true)], Weighted);
    let mut read = at_zero();
    read.keep_flushed_from(&flushed);
    assert!(diff(&disabled, &read, Scope::All, Weighted).is_empty());
    let mut read = at_zero();
    read.keep_flushed_from(&at_zero());
    assert_eq!(diff(&disabled, &read, Scope::All, Weighted).ops.len(), 1);

    // Legacy (lb 1.1.0): weight 0 is a deleted AS; one deleted without flush has nothing
    // left to flush, so disabling it later writes nothing.
    let deleted = actual(vec![avip(
        web(),
        EncapType::GRE4,
        Some(false),
        &[("10.0.0.9", None, false)],
    )]);
    assert!(diff(&disabled, &deleted, Scope::All, Legacy).is_empty());
    // A live one is deleted with the policy's flush.
    let live = actual(vec![avip(
        web(),
        EncapType::GRE4,
        Some(false),
        &[("10.0.0.9", None, true)],
    )]);
    assert_eq!(
        diff(&disabled, &live, Scope::All, Legacy).ops,
        vec![del_as(web(), "10.0.0.9", true)]
    );
}
