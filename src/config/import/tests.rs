use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{BodyMatch, Config, LoadOptions, Protocol, StatusRange, load_str_with};

/// The example of issue 17, as the Go tool's README has it.
const ISSUE_EXAMPLE: &str = "\
maglev:
  healthchecks:
    http: { type: http, port: 80, params: { path: /.well-known/ipng/healthz },
            interval: 2s, timeout: 3s, rise: 2, fall: 3 }
  backends:
    nginx0-ams: { address: 192.0.2.10, healthcheck: http }
  frontends:
    web: { address: 192.0.2.1, protocol: tcp, port: 80,
           pools: [ { name: primary, backends: { nginx0-ams: {} } } ] }
";

fn import_ok(yaml: &str) -> Imported {
    match import_str(yaml, Path::new("old.yaml")) {
        Ok(i) => i,
        Err(e) => panic!("expected an import, got:\n{e}"),
    }
}

/// The TOML loads (VPP on or off as asked); returns the config and the warnings.
fn load(toml: &str, vpp: bool) -> (Config, Vec<String>) {
    match load_str_with(toml, Path::new("new.toml"), &LoadOptions { vpp }) {
        Ok(l) => (l.config, l.warnings.iter().map(|w| w.to_string()).collect()),
        Err(e) => panic!("imported TOML does not validate:\n{e}\n---\n{toml}"),
    }
}

fn errors(yaml: &str) -> Vec<String> {
    match import_str(yaml, Path::new("old.yaml")) {
        Ok(i) => panic!("expected errors, got:\n{}", i.toml),
        Err(e) => e.0.iter().map(|d| d.to_string()).collect(),
    }
}

fn one_error(yaml: &str, want: &str) {
    assert_eq!(errors(yaml), vec![want.to_string()], "{yaml}");
}

#[test]
fn the_issue_example_imports_and_validates() {
    let imported = import_ok(ISSUE_EXAMPLE);
    assert!(imported.mapped.is_empty(), "{:?}", imported.mapped);
    // No [vpp.lb] source address: fine with VPP off (a warning), and timeout 3s > interval
    // 2s is a warning as well.
    let (c, warnings) = load(&imported.toml, false);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("timeout (3s) is longer than interval (2s)"));
    assert!(warnings[1].contains("ipv4-src-address"));
    let hc = &c.healthchecks["http"];
    assert_eq!(hc.port(), Some(80));
    assert_eq!(hc.interval, Duration::from_secs(2));
    assert_eq!(hc.timeout, Duration::from_secs(3));
    assert_eq!((hc.rise, hc.fall), (2, 3));
    assert_eq!(
        hc.http().map(|h| h.path.as_str()),
        Some("/.well-known/ipng/healthz")
    );
    assert_eq!(c.backends["nginx0-ams"].address.to_string(), "192.0.2.10");
    let web = &c.frontends["web"];
    assert_eq!(web.address.to_string(), "192.0.2.1/32");
    assert_eq!((web.protocol, web.port), (Protocol::Tcp, 80));
    assert_eq!(web.pools.len(), 1);
    assert_eq!(web.pools[0].name, "primary");
    assert_eq!(web.pools[0].backends[0].backend, "nginx0-ams");
    assert_eq!(web.pools[0].backends[0].weight, 100);
    // With VPP on, the missing GRE source is the error --check reports.
    let strict = load_str_with(
        &imported.toml,
        Path::new("new.toml"),
        &LoadOptions::default(),
    );
    let lines = strict.err().map(|e| e.lines()).unwrap_or_default();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("an error because VPP is on"), "{lines:?}");
}

const EVERY_SECTION: &str = "\
maglev:
  healthchecker:
    transition-history: 10
    netns: dataplane
  vpp:
    lb:
      sync-interval: 1m30s
      ipv4-src-address: 192.0.2.254
      ipv6-src-address: 2001:db8::fe
      sticky-buckets-per-core: 1024
      flow-timeout: 40s
      startup-min-delay: 500ms
      startup-max-delay: 10s
  healthchecks:
    ping:
      type: icmp
      interval: 1s
      fast-interval: 250ms
      down-interval: 5s
      timeout: 500ms
      rise: 3
      fall: 2
      probe-ipv6-src: 2001:db8::fe
    dns:
      type: tcp
      port: 53
      probe-ipv4-src: 192.0.2.254
    secure:
      type: https
      port: 443
      params:
        path: /healthz
        host-header: www.example.com
        response-code: [200, \"300-399\"]
        response-regexp: '^ok$'
        server-name: tls.example.com
        insecure-skip-verify: true
  backends:
    a: { address: 192.0.2.10, healthcheck: secure }
    b: { address: 192.0.2.11, healthcheck: dns, enabled: false }
    c: { address: 2001:db8::10, healthcheck: ping }
    d: { address: 192.0.2.12, healthcheck: dns }
  frontends:
    web:
      description: the web site
      address: 192.0.2.1
      protocol: tcp
      port: 443
      src-ip-sticky: true
      flush-on-down: false
      pools:
        - name: primary
          backends:
            a: { weight: 50 }
            d:
        - name: fallback
          backends: { b: {} }
    v6:
      address: 2001:db8:100::/64
      protocol: udp
      pools: [ { name: only, backends: { c: {} } } ]
";

#[test]
fn every_section_and_key_is_carried_over() {
    let imported = import_ok(EVERY_SECTION);
    let (c, warnings) = load(&imported.toml, true);
    assert!(warnings.is_empty(), "{warnings:?}");

    assert_eq!(c.healthchecker.transition_history, 10);
    assert_eq!(c.healthchecker.netns.as_deref(), Some("dataplane"));
    let lb = &c.vpp.lb;
    assert_eq!(lb.sync_interval, Duration::from_secs(90));
    assert_eq!(
        lb.ipv4_src_address.map(|a| a.to_string()).as_deref(),
        Some("192.0.2.254")
    );
    assert_eq!(
        lb.ipv6_src_address.map(|a| a.to_string()).as_deref(),
        Some("2001:db8::fe")
    );
    assert_eq!(lb.sticky_buckets_per_core, 1024);
    assert_eq!(lb.flow_timeout, Duration::from_secs(40));
    assert_eq!(lb.startup_min_delay, Duration::from_millis(500));
    assert_eq!(lb.startup_max_delay, Duration::from_secs(10));

    let ping = &c.healthchecks["ping"];
    assert_eq!(ping.fast_interval, Duration::from_millis(250));
    assert_eq!(ping.down_interval, Duration::from_secs(5));
    assert_eq!(ping.timeout, Duration::from_millis(500));
    assert_eq!((ping.rise, ping.fall), (3, 2));
    assert!(ping.probe_ipv6_src.is_some());
    assert!(c.healthchecks["dns"].probe_ipv4_src.is_some());

    let http = c.healthchecks["secure"]
        .http()
        .cloned()
        .unwrap_or_else(|| panic!("no params"));
    let tls = c.healthchecks["secure"]
        .tls()
        .cloned()
        .unwrap_or_else(|| panic!("no tls params"));
    assert_eq!(http.path, "/healthz");
    assert_eq!(http.host.as_deref(), Some("www.example.com"));
    assert_eq!(
        http.expect_status,
        vec![
            StatusRange { lo: 200, hi: 200 },
            StatusRange { lo: 300, hi: 399 }
        ]
    );
    assert_eq!(http.expect_body, Some(BodyMatch::regex("^ok$").unwrap()));
    assert_eq!(tls.sni.as_deref(), Some("tls.example.com"));
    assert!(
        !tls.verify,
        "insecure-skip-verify: true means verify = false"
    );

    assert!(!c.backends["b"].enabled);
    assert!(c.backends["a"].enabled);

    let web = &c.frontends["web"];
    assert_eq!(web.description, "the web site");
    assert!(web.src_ip_sticky);
    assert!(!web.flush_on_down);
    let names: Vec<&str> = web.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["primary", "fallback"], "pool order is kept");
    let primary: Vec<(&str, u8)> = web.pools[0]
        .backends
        .iter()
        .map(|m| (m.backend.as_str(), m.weight))
        .collect();
    assert_eq!(primary, [("a", 50), ("d", 100)]);
    assert_eq!(c.frontends["v6"].address.to_string(), "2001:db8:100::/64");
    assert_eq!(c.frontends["v6"].protocol, Protocol::Udp);

    assert_eq!(
        imported.mapped,
        [
            "maglev.healthchecks.secure.params.host-header -> host",
            "maglev.healthchecks.secure.params.response-code -> expect-status",
            "maglev.healthchecks.secure.params.response-regexp -> regex",
            "maglev.healthchecks.secure.params.server-name -> sni",
            "maglev.healthchecks.secure.params.insecure-skip-verify -> verify (inverted)",
        ]
    );
}

#[test]
fn names_that_are_not_bare_toml_keys_are_quoted() {
    let yaml = ISSUE_EXAMPLE.replace("nginx0-ams", "nginx0.ams é");
    let (c, _) = load(&import_ok(&yaml).toml, false);
    assert!(c.backends.contains_key("nginx0.ams é"));
}

#[test]
fn unknown_keys_are_errors_with_line_and_column_in_every_section() {
    let cases: &[(&str, &str)] = &[
        (
            "maglev: {}\nextra: 1\n",
            "old.yaml:2:1: extra: unknown key \"extra\" (known: maglev)",
        ),
        (
            "maglev:\n  grpc: {}\n",
            "old.yaml:2:3: maglev.grpc: unknown key \"grpc\" (known: healthchecker, vpp, healthchecks, backends, frontends)",
        ),
        (
            "maglev:\n  healthchecker: { history: 3 }\n",
            "old.yaml:2:20: maglev.healthchecker.history: unknown key \"history\" (known: transition-history, netns)",
        ),
        (
            "maglev:\n  vpp: { api: x }\n",
            "old.yaml:2:10: maglev.vpp.api: unknown key \"api\" (known: lb)",
        ),
        (
            "maglev:\n  vpp:\n    lb:\n      buckets: 4\n",
            "old.yaml:4:7: maglev.vpp.lb.buckets: unknown key \"buckets\" (known: sync-interval, ipv4-src-address, ipv6-src-address, sticky-buckets-per-core, flow-timeout, startup-min-delay, startup-max-delay)",
        ),
        (
            "maglev:\n  healthchecks:\n    h: { type: icmp, retries: 3 }\n",
            "old.yaml:3:22: maglev.healthchecks.h.retries: unknown key \"retries\" (known: type, port, params, interval, fast-interval, down-interval, timeout, rise, fall, probe-ipv4-src, probe-ipv6-src, netns)",
        ),
        (
            "maglev:\n  backends:\n    b: { address: 192.0.2.1, healthcheck: h, weight: 3 }\n",
            "old.yaml:3:46: maglev.backends.b.weight: unknown key \"weight\" (known: address, healthcheck, enabled)",
        ),
        (
            "maglev:\n  frontends:\n    f: { address: 192.0.2.1, pools: [], vip: x }\n",
            "old.yaml:3:41: maglev.frontends.f.vip: unknown key \"vip\" (known: description, address, protocol, port, src-ip-sticky, flush-on-down, pools)",
        ),
        (
            "maglev:\n  frontends:\n    f: { address: 192.0.2.1, pools: [ { name: p, backends: {}, prio: 1 } ] }\n",
            "old.yaml:3:64: maglev.frontends.f.pools[0].prio: unknown key \"prio\" (known: name, backends)",
        ),
        (
            "maglev:\n  frontends:\n    f: { address: 192.0.2.1, pools: [ { name: p, backends: { b: { w: 1 } } } ] }\n",
            "old.yaml:3:67: maglev.frontends.f.pools[0].backends.b.w: unknown key \"w\" (known: weight)",
        ),
    ];
    for (yaml, want) in cases {
        one_error(yaml, want);
    }
    let params =
        errors("maglev:\n  healthchecks:\n    h: { type: http, port: 80, params: { pth: / } }\n");
    assert_eq!(params.len(), 1);
    assert!(
        params[0].starts_with("old.yaml:3:42: maglev.healthchecks.h.params.pth: unknown key \"pth\" (known: path, host,"),
        "{params:?}"
    );
}

#[test]
fn document_shape_errors() {
    one_error(
        "",
        "old.yaml:1:1: empty file (expected a top-level \"maglev:\" key)",
    );
    one_error("healthchecks: {}\n", "old.yaml:1:1: missing key \"maglev\"");
    one_error(
        "- maglev\n",
        "old.yaml:1:1: expected a mapping, found a list",
    );
    one_error(
        "maglev: 3\n",
        "old.yaml:1:9: maglev: expected a mapping, found the integer 3",
    );
    one_error(
        "maglev: {}\n---\nmaglev: {}\n",
        "old.yaml:3:1: more than one YAML document; the config is one document",
    );
    let syntax = errors("maglev:\n  backends: [\n");
    assert_eq!(syntax.len(), 1);
    assert!(
        syntax[0].starts_with("old.yaml:3:1: YAML syntax: "),
        "{syntax:?}"
    );
    let dup = errors("maglev:\n  backends: {}\n  backends: {}\n");
    assert_eq!(dup.len(), 1);
    assert!(dup[0].starts_with("old.yaml:3:"), "{dup:?}");
}

#[test]
fn value_type_errors() {
    let hc = |body: &str| format!("maglev:\n  healthchecks:\n    h: {{ {body} }}\n");
    one_error(
        &hc("type: icmp, rise: two"),
        "old.yaml:3:28: maglev.healthchecks.h.rise: expected an integer, found the string \"two\"",
    );
    one_error(
        &hc("type: icmp, interval: 2"),
        "old.yaml:3:32: maglev.healthchecks.h.interval: expected a duration such as \"2s\", \"500ms\" or \"1m30s\", found the integer 2",
    );
    one_error(
        &hc("type: icmp, timeout: 2 s"),
        "old.yaml:3:31: maglev.healthchecks.h.timeout: unknown unit \" s\" in duration \"2 s\" (use ns, us, ms, s, m or h)",
    );
    one_error(
        &hc("type: [icmp]"),
        "old.yaml:3:16: maglev.healthchecks.h.type: expected a string, found a list",
    );
    one_error(
        &hc("type: http, port: 80, params: { path: /, response-code: 2.5 }"),
        "old.yaml:3:66: maglev.healthchecks.h.params.response-code: expected a status code such as 200 or \"200-299\"",
    );
    one_error(
        "maglev:\n  backends:\n    b: { address: 192.0.2.1, healthcheck: h, enabled: maybe }\n",
        "old.yaml:3:55: maglev.backends.b.enabled: expected true or false, found the string \"maybe\"",
    );
    one_error(
        "maglev:\n  frontends:\n    f: { address: 192.0.2.1, pools: { p: {} } }\n",
        "old.yaml:3:37: maglev.frontends.f.pools: expected a list, found a mapping",
    );
    one_error(
        "maglev:\n  vpp:\n    lb: { sticky-buckets-per-core: lots }\n",
        "old.yaml:3:36: maglev.vpp.lb.sticky-buckets-per-core: expected an integer, found the string \"lots\"",
    );
}

#[test]
fn required_keys_are_reported_where_their_mapping_starts() {
    one_error(
        "maglev:\n  healthchecks:\n    h: { port: 80 }\n",
        "old.yaml:3:8: maglev.healthchecks.h: missing key \"type\"",
    );
    assert_eq!(
        errors("maglev:\n  backends:\n    b: {}\n"),
        [
            "old.yaml:3:8: maglev.backends.b: missing key \"address\"",
            "old.yaml:3:8: maglev.backends.b: missing key \"healthcheck\"",
        ]
    );
    assert_eq!(
        errors("maglev:\n  frontends:\n    f: { pools: [ {} ] }\n"),
        [
            "old.yaml:3:8: maglev.frontends.f: missing key \"address\"",
            "old.yaml:3:19: maglev.frontends.f.pools[0]: missing key \"name\"",
            "old.yaml:3:19: maglev.frontends.f.pools[0]: missing key \"backends\"",
        ]
    );
}

#[test]
fn two_spellings_of_one_key_are_refused() {
    let e = errors(
        "maglev:\n  healthchecks:\n    h: { type: http, port: 80, params: { host: a, host-header: b } }\n",
    );
    assert_eq!(
        e,
        [
            "old.yaml:3:51: maglev.healthchecks.h.params.host-header: \"host-header\" and \"host\" both set host; keep one"
        ]
    );
    let e = errors(
        "maglev:\n  healthchecks:\n    h: { type: https, port: 443, params: { verify: true, skip-verify: true } }\n",
    );
    assert_eq!(
        e,
        [
            "old.yaml:3:52: maglev.healthchecks.h.params.verify: maglev.healthchecks.h.params.skip-verify already sets verify; keep one"
        ]
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let e = errors("maglev:\n  a: 1\n  b: 2\n  backends: { x: { address: 1.2.3.4 } }\n");
    assert_eq!(e.len(), 3, "{e:?}");
}
