//! Domain -> proto mapping: the checker's state, the config, events and config errors as the
//! gRPC API shows them. Pure functions over borrowed state; the service calls them under
//! the checker's read lock and never holds it across an await.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::checker::{BackendSnapshot, FrontendView, HealthSnapshot};
use crate::config::{self, BodyMatch, Config, ConfigDiff, ConfigError, StatusRange};
use crate::events::{self, Event};
use crate::health::{FrontendState, ProbeResult, ResultCode, State, Transition};
use crate::proto;
use crate::vpp::lb::{encap_name, protocol_name};
use crate::vpp::{CountersSample, LbCountersView, LbStateView, VppInfo};

/// "a, b, c" for NOT_FOUND messages; "none" when there is nothing.
pub fn known_list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

pub fn duration(d: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d).ok()
}

pub fn backend_state(s: State) -> proto::BackendState {
    match s {
        State::Unknown => proto::BackendState::Unknown,
        State::Up => proto::BackendState::Up,
        State::Down => proto::BackendState::Down,
        State::Paused => proto::BackendState::Paused,
        State::Disabled => proto::BackendState::Disabled,
        State::Removed => proto::BackendState::Removed,
    }
}

pub fn frontend_state(s: FrontendState) -> proto::FrontendState {
    match s {
        FrontendState::Unknown => proto::FrontendState::Unknown,
        FrontendState::Up => proto::FrontendState::Up,
        FrontendState::Down => proto::FrontendState::Down,
    }
}

pub fn result_code(c: ResultCode) -> proto::ResultCode {
    match c {
        ResultCode::L4Ok => proto::ResultCode::L4ok,
        ResultCode::L4Tout => proto::ResultCode::L4tout,
        ResultCode::L4Con => proto::ResultCode::L4con,
        ResultCode::L6Ok => proto::ResultCode::L6ok,
        ResultCode::L6Tout => proto::ResultCode::L6tout,
        ResultCode::L6Rsp => proto::ResultCode::L6rsp,
        ResultCode::L7Ok => proto::ResultCode::L7ok,
        ResultCode::L7Tout => proto::ResultCode::L7tout,
        ResultCode::L7Rsp => proto::ResultCode::L7rsp,
        ResultCode::L7Sts => proto::ResultCode::L7sts,
        ResultCode::SockErr => proto::ResultCode::Sockerr,
    }
}

pub fn log_level(l: events::LogLevel) -> proto::LogLevel {
    match l {
        events::LogLevel::Trace => proto::LogLevel::Trace,
        events::LogLevel::Debug => proto::LogLevel::Debug,
        events::LogLevel::Info => proto::LogLevel::Info,
        events::LogLevel::Warn => proto::LogLevel::Warn,
        events::LogLevel::Error => proto::LogLevel::Error,
    }
}

/// The minimum level a watcher asked for; unspecified (or unknown) means info.
pub fn min_log_level(raw: i32) -> events::LogLevel {
    match proto::LogLevel::try_from(raw) {
        Ok(proto::LogLevel::Trace) => events::LogLevel::Trace,
        Ok(proto::LogLevel::Debug) => events::LogLevel::Debug,
        Ok(proto::LogLevel::Warn) => events::LogLevel::Warn,
        Ok(proto::LogLevel::Error) => events::LogLevel::Error,
        Ok(proto::LogLevel::Info | proto::LogLevel::Unspecified) | Err(_) => events::LogLevel::Info,
    }
}

pub fn probe_result(r: &ProbeResult) -> proto::ProbeResult {
    proto::ProbeResult {
        code: result_code(r.code) as i32,
        ok: r.ok(),
        detail: r.detail.clone(),
        at: Some(timestamp(r.at)),
        duration: duration(r.duration),
    }
}

pub fn transition(t: &Transition) -> proto::Transition {
    proto::Transition {
        from: backend_state(t.from) as i32,
        to: backend_state(t.to) as i32,
        at: Some(timestamp(t.at)),
        result: t.result.as_ref().map(probe_result),
        reason: t.reason.as_str().to_string(),
    }
}

/// One backend with its health, last result, history and the frontends using it.
pub fn backend(config: &Config, name: &str, e: &BackendSnapshot) -> proto::Backend {
    backend_in(name, e, &config.frontends_of(name))
}

/// `backend`, with the frontends that reference it already known.
fn backend_in(name: &str, e: &BackendSnapshot, frontends: &[&str]) -> proto::Backend {
    let h = &e.health;
    proto::Backend {
        name: name.to_string(),
        address: e.config.address.to_string(),
        healthcheck: e.config.healthcheck.clone(),
        // The runtime state is the truth: an operator may have enabled a backend the
        // config starts disabled (or the other way round).
        enabled: h.state() != State::Disabled,
        state: backend_state(h.state()) as i32,
        health: h.health(),
        rise: h.counter().rise(),
        fall: h.counter().fall(),
        last_result: e.last_result().as_ref().map(probe_result),
        history: h.history().iter().map(transition).collect(),
        frontends: frontends.iter().map(|f| (*f).to_string()).collect(),
        state_since: Some(timestamp(h.state_since())),
        next_interval: duration(e.next_delay()),
    }
}

/// Every backend, by name.
pub fn backends(st: &HealthSnapshot) -> Vec<proto::Backend> {
    let users = frontends_by_backend(&st.config);
    st.backends
        .iter()
        .map(|(name, e)| {
            let frontends = users.get(name.as_str()).map_or(&[][..], Vec::as_slice);
            backend_in(name, e, frontends)
        })
        .collect()
}

/// Backend name -> the frontends that reference it, in name order (as
/// `Config::frontends_of` gives them), in one pass over the pools: asking
/// `frontends_of` for each backend walks every pool every time, O(backends²) when
/// frontends hold most of them.
fn frontends_by_backend(config: &Config) -> HashMap<&str, Vec<&str>> {
    let mut users: HashMap<&str, Vec<&str>> = HashMap::new();
    for f in config.frontends.values() {
        for member in f.pools.iter().flat_map(|p| &p.backends) {
            let list = users.entry(member.backend.as_str()).or_default();
            // A backend sits in at most one pool of a frontend; listed once all the same.
            if list.last() != Some(&f.name.as_str()) {
                list.push(f.name.as_str());
            }
        }
    }
    users
}

/// One frontend as its view computes it right now.
pub fn frontend(st: &HealthSnapshot, view: &FrontendView) -> proto::Frontend {
    let f = &view.frontend;
    let active = view.weights.active_pool;
    let pools = view
        .inputs
        .iter()
        .enumerate()
        .map(|(index, input)| proto::Pool {
            name: input.name.clone(),
            active: active == Some(index),
            backends: input
                .backends
                .iter()
                .map(|b| {
                    let action = view.weights.action(&input.name, &b.name);
                    proto::PoolBackend {
                        name: b.name.clone(),
                        address: address_of(st, &b.name),
                        state: backend_state(b.state) as i32,
                        configured_weight: u32::from(b.configured_weight()),
                        effective_weight: action.map_or(0, |a| u32::from(a.weight())),
                        weight_overridden: b.override_weight.is_some(),
                        flush: action.is_some_and(|a| a.flush()),
                    }
                })
                .collect(),
        })
        .collect();
    proto::Frontend {
        name: f.name.clone(),
        description: f.description.clone(),
        address: f.address.to_string(),
        protocol: f.protocol.as_str().to_string(),
        port: u32::from(f.port),
        src_ip_sticky: f.src_ip_sticky,
        flush_on_down: f.flush_on_down,
        state: frontend_state(view.weights.state) as i32,
        pools,
        active_pool: active
            .and_then(|i| view.inputs.get(i))
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        fail: f.fail.as_str().to_string(),
        failed_open: view.weights.failed_open,
    }
}

fn address_of(st: &HealthSnapshot, backend: &str) -> String {
    st.backends
        .get(backend)
        .map(|e| e.config.address)
        .or_else(|| st.config.backends.get(backend).map(|b| b.address))
        .map(|a: IpAddr| a.to_string())
        .unwrap_or_default()
}

/// Every frontend, by name.
pub fn frontends(st: &HealthSnapshot) -> Vec<proto::Frontend> {
    st.config
        .frontends
        .keys()
        .filter_map(|name| st.frontend(name))
        .map(|view| frontend(st, view))
        .collect()
}

fn status_range(r: &StatusRange) -> String {
    if r.lo == r.hi {
        r.lo.to_string()
    } else {
        format!("{}-{}", r.lo, r.hi)
    }
}

/// A healthcheck's full definition, with the backends that use it.
pub fn healthcheck(config: &Config, hc: &config::HealthCheck) -> proto::HealthCheck {
    let tls = hc.tls().cloned().unwrap_or_default();
    let http = hc.http().map(|p| {
        let (expect_body, regex) = match &p.expect_body {
            Some(BodyMatch::Substring(s)) => (s.clone(), String::new()),
            Some(BodyMatch::Regex(r)) => (String::new(), r.as_str().to_string()),
            None => (String::new(), String::new()),
        };
        proto::HttpParams {
            path: p.path.clone(),
            host: p.host.clone().unwrap_or_default(),
            expect_status: p.expect_status.iter().map(status_range).collect(),
            expect_body,
            regex,
            sni: tls.sni.clone().unwrap_or_default(),
            verify: tls.verify,
            ca_file: tls
                .ca_file
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
        }
    });
    proto::HealthCheck {
        name: hc.name.clone(),
        r#type: hc.kind().as_str().to_string(),
        port: hc.port().map_or(0, u32::from),
        interval: duration(hc.interval),
        fast_interval: duration(hc.fast_interval),
        down_interval: duration(hc.down_interval),
        timeout: duration(hc.timeout),
        rise: hc.rise,
        fall: hc.fall,
        probe_ipv4_src: hc.probe_ipv4_src.map(|a| a.to_string()).unwrap_or_default(),
        probe_ipv6_src: hc.probe_ipv6_src.map(|a| a.to_string()).unwrap_or_default(),
        // The namespace the probes really run in (the check's own, else the global one).
        netns: config.netns_of(hc).unwrap_or_default(),
        http,
        backends: config
            .backends
            .values()
            .filter(|b| b.healthcheck == hc.name)
            .map(|b| b.name.clone())
            .collect(),
    }
}

pub fn healthchecks(config: &Config) -> Vec<proto::HealthCheck> {
    config
        .healthchecks
        .values()
        .map(|hc| healthcheck(config, hc))
        .collect()
}

pub fn config_diff(d: &ConfigDiff) -> proto::ConfigDiffSummary {
    proto::ConfigDiffSummary {
        backends_added: d.backends_added.clone(),
        backends_removed: d.backends_removed.clone(),
        backends_changed: d.backends_changed.clone(),
        healthchecks_added: d.healthchecks_added.clone(),
        healthchecks_removed: d.healthchecks_removed.clone(),
        healthchecks_changed: d.healthchecks_changed.clone(),
        frontends_added: d.frontends_added.clone(),
        frontends_removed: d.frontends_removed.clone(),
        frontends_changed: d.frontends_changed.clone(),
    }
}

/// A config that loaded: ok, with its diff against the running one.
pub fn config_ok(path: &std::path::Path, diff: &ConfigDiff, applied: bool) -> proto::ConfigResult {
    proto::ConfigResult {
        ok: true,
        kind: proto::ConfigErrorKind::None as i32,
        errors: Vec::new(),
        path: path.display().to_string(),
        diff: Some(config_diff(diff)),
        applied,
    }
}

/// A config that did not load: the kind of failure and every located problem.
pub fn config_error(path: &std::path::Path, e: &ConfigError) -> proto::ConfigResult {
    let (kind, errors) = match e {
        ConfigError::Io { path, source } => (
            proto::ConfigErrorKind::Io,
            vec![proto::ConfigError {
                file: path.display().to_string(),
                message: format!("cannot read config: {source}"),
                ..proto::ConfigError::default()
            }],
        ),
        ConfigError::Parse(d) => (proto::ConfigErrorKind::Parse, diagnostics(d)),
        ConfigError::Semantic(d) => (proto::ConfigErrorKind::Semantic, diagnostics(d)),
    };
    proto::ConfigResult {
        ok: false,
        kind: kind as i32,
        errors,
        path: path.display().to_string(),
        diff: None,
        applied: false,
    }
}

fn diagnostics(d: &[config::Diagnostic]) -> Vec<proto::ConfigError> {
    d.iter()
        .map(|d| proto::ConfigError {
            file: d.file.display().to_string(),
            line: d.line,
            column: d.column,
            key: d.key.clone(),
            message: d.message.clone(),
        })
        .collect()
}

/// A bus event as the stream sends it.
pub fn event(e: &Event) -> proto::Event {
    match e {
        Event::Backend(b) => proto::Event {
            at: Some(timestamp(b.transition.at)),
            kind: Some(proto::event::Kind::Backend(proto::BackendEvent {
                backend: b.backend.clone(),
                frontend: b.frontend.clone().unwrap_or_default(),
                address: b.address.to_string(),
                transition: Some(transition(&b.transition)),
            })),
        },
        Event::Frontend(f) => proto::Event {
            at: Some(timestamp(f.at)),
            kind: Some(proto::event::Kind::Frontend(proto::FrontendEvent {
                frontend: f.frontend.clone(),
                from: frontend_state(f.from) as i32,
                to: frontend_state(f.to) as i32,
                initial: false,
                snapshot: None,
            })),
        },
        Event::Log(l) => proto::Event {
            at: Some(timestamp(l.at)),
            kind: Some(proto::event::Kind::Log(proto::LogEvent {
                level: log_level(l.level) as i32,
                target: l.target.clone(),
                message: l.message.clone(),
                fields: l.fields.clone().into_iter().collect(),
            })),
        },
    }
}

/// The replayed current state of one frontend at subscription.
pub fn initial_frontend_event(snapshot: proto::Frontend, at: SystemTime) -> proto::Event {
    let state = snapshot.state;
    proto::Event {
        at: Some(timestamp(at)),
        kind: Some(proto::event::Kind::Frontend(proto::FrontendEvent {
            frontend: snapshot.name.clone(),
            from: state,
            to: state,
            initial: true,
            snapshot: Some(snapshot),
        })),
    }
}

pub fn lost_events(count: u64, at: SystemTime) -> proto::Event {
    proto::Event {
        at: Some(timestamp(at)),
        kind: Some(proto::event::Kind::Lost(proto::LostEvents { count })),
    }
}

pub fn vpp_info(i: &VppInfo, api_addr: &str, stats_addr: &str) -> proto::VppInfo {
    proto::VppInfo {
        enabled: i.enabled,
        connected: i.connected,
        version: i.version.clone(),
        build_date: i.build_date.clone(),
        pid: i.pid,
        connected_since: i.connected_since.map(timestamp),
        api_generation: i.api_generation.clone(),
        legacy: i.legacy,
        dry_run: i.dry_run,
        api_addr: api_addr.to_string(),
        stats_addr: stats_addr.to_string(),
        warmup_done: i.warmup_done,
        reconnects: i.reconnects,
        last_error: i.last_error.clone(),
    }
}

/// VPP's lb state, VIPs and ASes named after maglev's frontends and backends.
pub fn vpp_lb_state(v: &LbStateView) -> proto::VpplbState {
    proto::VpplbState {
        conf: v.conf.map(|c| proto::VpplbConf {
            ip4_src_address: c.ip4_src_address.to_string(),
            ip6_src_address: c.ip6_src_address.to_string(),
            sticky_buckets_per_core: c.sticky_buckets_per_core,
            flow_timeout: c.flow_timeout,
        }),
        vips: v
            .vips
            .iter()
            .map(|vip| proto::VppVip {
                prefix: vip.key.prefix.to_string(),
                protocol: protocol_name(vip.key.protocol),
                port: u32::from(vip.key.port),
                encap: encap_name(vip.encap),
                src_ip_sticky: vip.src_ip_sticky.unwrap_or(false),
                flow_table_length: vip.flow_table_length.unwrap_or(0),
                pool_index: vip.pool_index.unwrap_or(0),
                frontend: vip.frontend.clone().unwrap_or_default(),
                ases: vip
                    .ases
                    .iter()
                    .map(|a| proto::VppAs {
                        address: a.address.to_string(),
                        weight: u32::from(a.weight),
                        flags: a.flags,
                        num_buckets: a.num_buckets,
                        backend: a.backend.clone().unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The last counters pass, with the one before it as `previous` (for rates).
pub fn vpp_lb_counters(v: &LbCountersView) -> proto::VpplbCounters {
    let mut out = counters_sample(&v.current);
    out.previous = v.previous.as_ref().map(|p| Box::new(counters_sample(p)));
    out
}

fn counters_sample(s: &CountersSample) -> proto::VpplbCounters {
    proto::VpplbCounters {
        at: Some(timestamp(s.at)),
        vips: s
            .vips
            .iter()
            .map(|v| proto::VipCounters {
                frontend: v.frontend.clone().unwrap_or_default(),
                prefix: v.key.prefix.to_string(),
                protocol: protocol_name(v.key.protocol),
                port: u32::from(v.key.port),
                next_packet: v.counters.next,
                first_packet: v.counters.first,
                untracked_packet: v.counters.untracked,
                no_server: v.counters.no_server,
                route_packets: v.counters.route_packets,
                route_bytes: v.counters.route_bytes,
                pool_index: v.pool_index,
            })
            .collect(),
        previous: None,
        vpp_uptime: s.uptime.and_then(duration),
    }
}

pub fn version() -> proto::VersionInfo {
    proto::VersionInfo {
        version: crate::version::VERSION.to_string(),
        commit: crate::version::GIT_COMMIT.to_string(),
        build_date: crate::version::BUILD_DATE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::checker::CheckerState;
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::events::{BackendEvent, LogEvent};
    use crate::health::TransitionReason;

    const CONFIG: &str = r#"
[vpp.lb]
ipv4-src-address = "192.0.2.254"

[healthchecks.web]
type = "http"
port = 8080
interval = "2s"
timeout = "1s"
rise = 2
fall = 3
  [healthchecks.web.params]
  path = "/health"
  host = "example.org"
  expect-status = ["200", "300-302"]
  regex = "ok|fine"

[healthchecks.ping]
type = "icmp"
interval = "1s"
timeout = "500ms"

[backends.a]
address = "192.0.2.10"
healthcheck = "web"

[backends.b]
address = "192.0.2.11"
healthcheck = "web"
enabled = false

[backends.c]
address = "192.0.2.12"
healthcheck = "ping"

[frontends.vip]
description = "the VIP"
address = "192.0.2.1"
protocol = "tcp"
port = 80
  [[frontends.vip.pools]]
  name = "primary"
  backends = { a = { weight = 70 }, b = {} }
  [[frontends.vip.pools]]
  name = "fallback"
  backends = { c = {} }
"#;

    fn state() -> CheckerState {
        let config = match crate::config::load_str(CONFIG, Path::new("t.toml")) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("test config: {e}"),
        };
        CheckerState::new(config, SystemTime::UNIX_EPOCH)
    }

    fn record(st: &mut CheckerState, name: &str, code: ResultCode) {
        let r = ProbeResult::new_at(code, "detail", Duration::from_millis(3), SystemTime::now());
        if let Some(e) = st.backends.get_mut(name) {
            let _ = e.health.record(r);
        }
    }

    #[test]
    fn backend_carries_health_history_and_frontends() {
        let mut st = state();
        record(&mut st, "a", ResultCode::L7Ok);
        let list = backends(&st.full_snapshot());
        assert_eq!(
            list.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let a = &list[0];
        assert_eq!(a.address, "192.0.2.10");
        assert_eq!(a.healthcheck, "web");
        assert!(a.enabled);
        assert_eq!(a.state, proto::BackendState::Up as i32);
        // Going up jumps the counter to its max, rise + fall - 1.
        assert_eq!((a.health, a.rise, a.fall), (4, 2, 3));
        assert_eq!(a.frontends, ["vip"]);
        let last = a.last_result.as_ref().map(|r| (r.code, r.ok));
        assert_eq!(last, Some((proto::ResultCode::L7ok as i32, true)));
        assert_eq!(a.history.len(), 1);
        assert_eq!(a.history[0].from, proto::BackendState::Unknown as i32);
        assert_eq!(a.history[0].to, proto::BackendState::Up as i32);
        assert_eq!(a.history[0].reason, "probe");
        assert!(a.history[0].result.is_some());
        assert_eq!(a.next_interval, duration(Duration::from_secs(2)));

        let b = &list[1];
        assert!(!b.enabled);
        assert_eq!(b.state, proto::BackendState::Disabled as i32);
        assert!(b.last_result.is_none());
    }

    #[test]
    fn listed_frontends_match_frontends_of_for_every_backend() {
        // A second frontend sharing backends with the first: the one-pass index must give
        // what `Config::frontends_of` gives, backend by backend.
        let text = CONFIG.to_string()
            + r#"
[frontends.alt]
address = "192.0.2.2"
port = 443
  [[frontends.alt.pools]]
  name = "only"
  backends = { c = {}, a = {} }
"#;
        let config = match crate::config::load_str(&text, Path::new("t.toml")) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("test config: {e}"),
        };
        let st = CheckerState::new(Arc::clone(&config), SystemTime::UNIX_EPOCH);
        let list = backends(&st.full_snapshot());
        assert_eq!(list.len(), 3);
        for b in &list {
            assert_eq!(b.frontends, config.frontends_of(&b.name), "{}", b.name);
        }
        assert_eq!(list[0].frontends, ["alt", "vip"]);
        assert_eq!(list[1].frontends, ["vip"]);
        assert_eq!(list[2].frontends, ["alt", "vip"]);
    }

    #[test]
    fn frontend_shows_configured_and_effective_weights_and_the_active_pool() {
        let mut st = state();
        let f = &frontends(&st.full_snapshot())[0];
        assert_eq!(f.state, proto::FrontendState::Down as i32, "b is disabled");
        assert_eq!(f.active_pool, "");
        assert!(f.pools.iter().all(|p| !p.active));

        record(&mut st, "a", ResultCode::L7Ok);
        record(&mut st, "c", ResultCode::L4Ok);
        st.overrides
            .insert(("vip".into(), "primary".into(), "a".into()), 30);
        let f = &frontends(&st.full_snapshot())[0];
        assert_eq!(f.name, "vip");
        assert_eq!(f.description, "the VIP");
        assert_eq!(f.address, "192.0.2.1/32");
        assert_eq!((f.protocol.as_str(), f.port), ("tcp", 80));
        assert!(f.flush_on_down);
        assert_eq!(f.state, proto::FrontendState::Up as i32);
        assert_eq!(f.active_pool, "primary");
        assert!(f.pools[0].active && !f.pools[1].active);
        let a = &f.pools[0].backends[0];
        assert_eq!(a.address, "192.0.2.10");
        assert_eq!((a.configured_weight, a.effective_weight), (30, 30));
        assert!(a.weight_overridden);
        let b = &f.pools[0].backends[1];
        assert_eq!(b.state, proto::BackendState::Disabled as i32);
        assert_eq!((b.configured_weight, b.effective_weight), (100, 0));
        assert!(b.flush, "a disabled backend is flushed");
        let c = &f.pools[1].backends[0];
        assert_eq!(c.state, proto::BackendState::Up as i32);
        assert_eq!(
            (c.configured_weight, c.effective_weight),
            (100, 0),
            "standby"
        );
        assert!(!c.flush);
    }

    #[test]
    fn healthcheck_has_its_full_definition_and_users() {
        let st = state();
        let list = healthchecks(&st.config);
        assert_eq!(list.len(), 2);
        let web = list.iter().find(|h| h.name == "web");
        let Some(web) = web else {
            panic!("web missing: {list:?}")
        };
        assert_eq!((web.r#type.as_str(), web.port), ("http", 8080));
        assert_eq!(web.interval, duration(Duration::from_secs(2)));
        assert_eq!(web.fast_interval, duration(Duration::from_millis(500)));
        assert_eq!(web.timeout, duration(Duration::from_secs(1)));
        assert_eq!((web.rise, web.fall), (2, 3));
        assert_eq!(web.backends, ["a", "b"]);
        let http = web.http.clone().unwrap_or_default();
        assert_eq!(http.path, "/health");
        assert_eq!(http.host, "example.org");
        assert_eq!(http.expect_status, ["200", "300-302"]);
        assert_eq!(http.regex, "ok|fine");
        assert!(http.expect_body.is_empty());
        let ping = list.iter().find(|h| h.name == "ping");
        assert!(ping.is_some_and(|p| p.http.is_none() && p.port == 0 && p.backends == ["c"]));
    }

    #[test]
    fn config_errors_keep_kind_and_location() {
        let bad = crate::config::load_str("[backends.x]\naddress = 1\n", Path::new("bad.toml"));
        let Err(e) = bad else {
            panic!("expected an error")
        };
        let r = config_error(Path::new("bad.toml"), &e);
        assert!(!r.ok && !r.applied);
        assert_eq!(r.kind, proto::ConfigErrorKind::Parse as i32);
        assert!(!r.errors.is_empty());
        assert_eq!(r.errors[0].file, "bad.toml");
        assert!(r.errors[0].line >= 1 && r.errors[0].column >= 1);

        let semantic = CONFIG.replace("healthcheck = \"ping\"", "healthcheck = \"nope\"");
        let Err(e) = crate::config::load_str(&semantic, Path::new("s.toml")) else {
            panic!("expected a semantic error")
        };
        let r = config_error(Path::new("s.toml"), &e);
        assert_eq!(r.kind, proto::ConfigErrorKind::Semantic as i32);
        assert!(
            r.errors.iter().any(|e| e.key.contains("backends.c")),
            "{r:?}"
        );

        let io = ConfigError::Io {
            path: "/nope.toml".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let r = config_error(Path::new("/nope.toml"), &io);
        assert_eq!(r.kind, proto::ConfigErrorKind::Io as i32);
        assert_eq!(r.errors[0].file, "/nope.toml");

        let diff = ConfigDiff {
            backends_added: vec!["n".into()],
            ..ConfigDiff::default()
        };
        let r = config_ok(Path::new("ok.toml"), &diff, true);
        assert!(r.ok && r.applied);
        assert_eq!(r.kind, proto::ConfigErrorKind::None as i32);
        assert_eq!(
            r.diff.map(|d| d.backends_added),
            Some(vec!["n".to_string()])
        );
    }

    #[test]
    fn events_map_every_kind() {
        let t = Transition {
            from: State::Up,
            to: State::Paused,
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(5),
            result: None,
            reason: TransitionReason::Pause,
        };
        let e = event(&Event::Backend(BackendEvent {
            backend: "a".into(),
            frontend: None,
            address: "192.0.2.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            transition: t,
        }));
        assert_eq!(e.at.map(|t| t.seconds), Some(5));
        let Some(proto::event::Kind::Backend(b)) = e.kind else {
            panic!("backend event expected")
        };
        assert_eq!((b.backend.as_str(), b.frontend.as_str()), ("a", ""));
        let tr = b.transition.unwrap_or_default();
        assert_eq!(tr.to, proto::BackendState::Paused as i32);
        assert_eq!(tr.reason, "pause");
        assert!(tr.result.is_none());

        let mut fields = BTreeMap::new();
        fields.insert("k".to_string(), "v".to_string());
        let e = event(&Event::Log(LogEvent {
            at: SystemTime::now(),
            level: events::LogLevel::Warn,
            target: "maglev::x".into(),
            message: "hello".into(),
            fields,
        }));
        let Some(proto::event::Kind::Log(l)) = e.kind else {
            panic!("log event expected")
        };
        assert_eq!(l.level, proto::LogLevel::Warn as i32);
        assert_eq!(l.fields.get("k").map(String::as_str), Some("v"));

        let st = state();
        let snap = frontends(&st.full_snapshot()).remove(0);
        let e = initial_frontend_event(snap, SystemTime::now());
        let Some(proto::event::Kind::Frontend(f)) = e.kind else {
            panic!("frontend event expected")
        };
        assert!(f.initial);
        assert_eq!(f.from, f.to);
        assert_eq!(f.snapshot.map(|s| s.name), Some("vip".to_string()));

        let Some(proto::event::Kind::Lost(l)) = lost_events(7, SystemTime::now()).kind else {
            panic!("lost marker expected")
        };
        assert_eq!(l.count, 7);
    }

    #[test]
    fn log_level_defaults_to_info() {
        assert_eq!(min_log_level(0), events::LogLevel::Info);
        assert_eq!(min_log_level(99), events::LogLevel::Info);
        assert_eq!(
            min_log_level(proto::LogLevel::Debug as i32),
            events::LogLevel::Debug
        );
        assert_eq!(
            min_log_level(proto::LogLevel::Error as i32),
            events::LogLevel::Error
        );
    }

    #[test]
    fn vpp_lb_state_names_vips_and_ases() {
        use crate::vpp::lb::{LbConfValues, VipKey};
        use crate::vpp::wire::{EncapType, Prefix};
        use crate::vpp::{LbAsView, LbVipView};
        let key = VipKey::new(Prefix::new("192.0.2.1".parse().unwrap(), 32), 6, 80);
        let view = LbStateView {
            conf: Some(LbConfValues {
                ip4_src_address: "192.0.2.254".parse().unwrap(),
                ip6_src_address: "2001:db8::fe".parse().unwrap(),
                sticky_buckets_per_core: 1024,
                flow_timeout: 40,
            }),
            legacy: false,
            vips: vec![LbVipView {
                key,
                encap: EncapType::GRE4,
                src_ip_sticky: None,
                flow_table_length: Some(1024),
                pool_index: Some(3),
                frontend: Some("web".into()),
                ases: vec![
                    LbAsView {
                        address: "127.0.0.2".parse().unwrap(),
                        weight: 80,
                        flags: 1,
                        num_buckets: 900,
                        backend: Some("up".into()),
                    },
                    LbAsView {
                        address: "198.51.100.7".parse().unwrap(),
                        weight: 0,
                        flags: 0,
                        num_buckets: 0,
                        backend: None,
                    },
                ],
            }],
        };
        let p = vpp_lb_state(&view);
        let conf = p.conf.unwrap_or_default();
        assert_eq!(conf.ip4_src_address, "192.0.2.254");
        assert_eq!(conf.flow_timeout, 40);
        let v = &p.vips[0];
        assert_eq!(
            (
                v.prefix.as_str(),
                v.protocol.as_str(),
                v.port,
                v.encap.as_str()
            ),
            ("192.0.2.1/32", "tcp", 80, "gre4")
        );
        assert_eq!((v.pool_index, v.flow_table_length), (3, 1024));
        assert!(!v.src_ip_sticky);
        assert_eq!(v.frontend, "web");
        assert_eq!(
            (
                v.ases[0].address.as_str(),
                v.ases[0].weight,
                v.ases[0].flags
            ),
            ("127.0.0.2", 80, 1)
        );
        assert_eq!(
            (v.ases[0].num_buckets, v.ases[0].backend.as_str()),
            (900, "up")
        );
        assert_eq!((v.ases[1].backend.as_str(), v.ases[1].flags), ("", 0));
    }

    #[test]
    fn vpp_lb_counters_carry_the_previous_pass() {
        use crate::vpp::VipCountersView;
        use crate::vpp::lb::VipKey;
        use crate::vpp::stats::VipCounters;
        use crate::vpp::wire::Prefix;
        let sample = |secs: u64, next: u64| CountersSample {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            uptime: Some(Duration::from_secs(secs)),
            vips: vec![VipCountersView {
                key: VipKey::new(Prefix::new("2001:db8::1".parse().unwrap(), 128), 17, 53),
                frontend: None,
                pool_index: 1,
                route_stats_index: Some(4),
                counters: VipCounters {
                    vip_index: 1,
                    next,
                    first: 2,
                    untracked: 3,
                    no_server: 4,
                    route_packets: 5,
                    route_bytes: 600,
                },
            }],
        };
        let view = LbCountersView {
            current: sample(20, 100),
            previous: Some(sample(15, 40)),
        };
        let p = vpp_lb_counters(&view);
        assert_eq!(p.at.map(|t| t.seconds), Some(20));
        assert_eq!(p.vpp_uptime.map(|d| d.seconds), Some(20));
        let v = &p.vips[0];
        assert_eq!(
            (
                v.prefix.as_str(),
                v.protocol.as_str(),
                v.port,
                v.frontend.as_str()
            ),
            ("2001:db8::1/128", "udp", 53, "")
        );
        assert_eq!(
            (
                v.next_packet,
                v.first_packet,
                v.untracked_packet,
                v.no_server
            ),
            (100, 2, 3, 4)
        );
        assert_eq!((v.route_packets, v.route_bytes, v.pool_index), (5, 600, 1));
        let prev = p.previous.unwrap_or_default();
        assert_eq!(prev.at.map(|t| t.seconds), Some(15));
        assert_eq!(prev.vips[0].next_packet, 40);
        assert!(prev.previous.is_none());
        let first = vpp_lb_counters(&LbCountersView {
            current: sample(5, 1),
            previous: None,
        });
        assert!(first.previous.is_none());
    }
}
