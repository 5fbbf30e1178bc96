//! `--json` output: proto messages as `serde_json::Value`, written by hand (prost types do not
//! derive `Serialize`).
//!
//! Conventions, stable for scripts:
//! - field names are the proto's (`name`, `state`, `address`, `last_result`, ...);
//! - backend/frontend states, log levels and config error kinds are lowercase strings
//!   (`"up"`, `"disabled"`, `"warn"`, `"parse"`); probe result codes keep their HAProxy
//!   spelling (`"L7STS"`, `"SOCKERR"`); an unset enum is `"unspecified"`;
//! - timestamps are RFC 3339 strings in UTC, durations are seconds as floats; unset ones are
//!   `null`;
//! - events carry a `type` (`"backend"`, `"frontend"`, `"log"`, `"lost"`) beside `at`.

use prost_types::{Duration, Timestamp};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use crate::proto::{
    Backend, BackendState, ConfigErrorKind, ConfigResult, Event, Frontend, FrontendState,
    HealthCheck, LogLevel, ProbeResult, ResultCode, SyncVpplbStateResponse, Transition,
    VersionInfo, VppInfo, VpplbCounters, VpplbState, event,
};

/// `BACKEND_STATE_UP` -> `up`.
fn lower(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_lowercase()
}

pub fn backend_state(state: BackendState) -> String {
    lower(state.as_str_name(), "BACKEND_STATE_")
}

pub fn frontend_state(state: FrontendState) -> String {
    lower(state.as_str_name(), "FRONTEND_STATE_")
}

pub fn log_level(level: LogLevel) -> String {
    lower(level.as_str_name(), "LOG_LEVEL_")
}

pub fn config_error_kind(kind: ConfigErrorKind) -> String {
    lower(kind.as_str_name(), "CONFIG_ERROR_KIND_")
}

/// HAProxy spelling (`L7STS`); `unspecified` when unset.
pub fn result_code(code: ResultCode) -> String {
    match code {
        ResultCode::Unspecified => "unspecified".to_string(),
        other => other
            .as_str_name()
            .strip_prefix("RESULT_CODE_")
            .unwrap_or(other.as_str_name())
            .to_string(),
    }
}

/// The enum behind a raw i32 field, `Unspecified` for values this build does not know.
pub fn backend_state_of(raw: i32) -> BackendState {
    BackendState::try_from(raw).unwrap_or(BackendState::Unspecified)
}

pub fn frontend_state_of(raw: i32) -> FrontendState {
    FrontendState::try_from(raw).unwrap_or(FrontendState::Unspecified)
}

pub fn timestamp(ts: Option<&Timestamp>) -> Value {
    ts.map_or(Value::Null, |t| Value::String(t.to_string()))
}

pub fn seconds(d: Option<&Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(duration_secs(d)))
}

pub fn duration_secs(d: &Duration) -> f64 {
    d.seconds as f64 + f64::from(d.nanos) / 1e9
}

pub fn probe_result(r: Option<&ProbeResult>) -> Value {
    r.map_or(Value::Null, |r| to_value(&ProbeResultJson(r)))
}

pub fn transition(t: &Transition) -> Value {
    to_value(&TransitionJson(t))
}

pub fn backend(b: &Backend) -> Value {
    to_value(&BackendJson(b))
}

/// A `Value` from one of the serializers below; they cannot fail (no maps with non-string
/// keys, no I/O), so the `Null` is never seen.
fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

// The messages of `show backends` are serialized straight to the output: with 10,000
// backends, building `Value` trees (and freeing them) cost more than everything else in
// the command. Keys are written in sorted order, the order `Value`'s map prints them in,
// so both routes give the same bytes.

/// `{"backends": [...]}`, the document of `show backends`.
pub struct BackendsDoc<'a>(pub &'a [Backend]);

impl Serialize for BackendsDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("backends", &Each(self.0, BackendJson))?;
        m.end()
    }
}

/// A slice as a JSON array, each element through the wrapper `W`.
struct Each<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for Each<'a, T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(self.1))
    }
}

/// An RFC 3339 string, or `null`; written without an intermediate `String`.
struct TimestampJson<'a>(Option<&'a Timestamp>);

impl Serialize for TimestampJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; RFC3339_MAX];
        match self.0 {
            Some(t) => match rfc3339(t, &mut buf) {
                Some(text) => s.serialize_str(text),
                None => s.collect_str(t),
            },
            None => s.serialize_none(),
        }
    }
}

/// `9999-12-31T23:59:59.999999999Z`.
const RFC3339_MAX: usize = 30;

/// The text of `Timestamp`'s `Display` for years 1970 to 9999, written by hand: that
/// `Display` was a fifth of `--json show backends` (four timestamps a backend). `None`
/// outside that range (and for denormal nanos): the caller falls back to `Display`.
fn rfc3339<'b>(t: &Timestamp, buf: &'b mut [u8; RFC3339_MAX]) -> Option<&'b str> {
    const LAST_SECOND_OF_9999: i64 = 253_402_300_799;
    if !(0..=LAST_SECOND_OF_9999).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    let (days, secs) = (t.seconds / 86_400, t.seconds % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm, days >= 0).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut at = 0;
    let mut put = |value: i64, digits: u32, after: u8| {
        for i in (0..digits).rev() {
            buf[at] = b'0' + (value / 10_i64.pow(i) % 10) as u8;
            at += 1;
        }
        buf[at] = after;
        at += 1;
    };
    put(year, 4, b'-');
    put(month, 2, b'-');
    put(day, 2, b'T');
    put(secs / 3_600, 2, b':');
    put(secs / 60 % 60, 2, b':');
    let nanos = i64::from(t.nanos);
    match nanos {
        0 => put(secs % 60, 2, b'Z'),
        _ => {
            put(secs % 60, 2, b'.');
            if nanos % 1_000_000 == 0 {
                put(nanos / 1_000_000, 3, b'Z');
            } else if nanos % 1_000 == 0 {
                put(nanos / 1_000, 6, b'Z');
            } else {
                put(nanos, 9, b'Z');
            }
        }
    }
    std::str::from_utf8(&buf[..at]).ok()
}

/// Seconds as a float, or `null`.
fn seconds_of(d: Option<&Duration>) -> Option<f64> {
    d.map(duration_secs)
}

struct ProbeResultJson<'a>(&'a ProbeResult);

impl Serialize for ProbeResultJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("at", &TimestampJson(r.at.as_ref()))?;
        m.serialize_entry("code", &result_code(r.code()))?;
        m.serialize_entry("detail", &r.detail)?;
        m.serialize_entry("duration", &seconds_of(r.duration.as_ref()))?;
        m.serialize_entry("ok", &r.ok)?;
        m.end()
    }
}

struct TransitionJson<'a>(&'a Transition);

impl Serialize for TransitionJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("at", &TimestampJson(t.at.as_ref()))?;
        m.serialize_entry("from", &backend_state(backend_state_of(t.from)))?;
        m.serialize_entry("reason", &t.reason)?;
        m.serialize_entry("result", &t.result.as_ref().map(ProbeResultJson))?;
        m.serialize_entry("to", &backend_state(backend_state_of(t.to)))?;
        m.end()
    }
}

struct BackendJson<'a>(&'a Backend);

impl Serialize for BackendJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.0;
        let mut m = s.serialize_map(Some(13))?;
        m.serialize_entry("address", &b.address)?;
        m.serialize_entry("enabled", &b.enabled)?;
        m.serialize_entry("fall", &b.fall)?;
        m.serialize_entry("frontends", &b.frontends)?;
        m.serialize_entry("health", &b.health)?;
        m.serialize_entry("healthcheck", &b.healthcheck)?;
        m.serialize_entry("history", &Each(&b.history, TransitionJson))?;
        m.serialize_entry("last_result", &b.last_result.as_ref().map(ProbeResultJson))?;
        m.serialize_entry("name", &b.name)?;
        m.serialize_entry("next_interval", &seconds_of(b.next_interval.as_ref()))?;
        m.serialize_entry("rise", &b.rise)?;
        m.serialize_entry("state", &backend_state(b.state()))?;
        m.serialize_entry("state_since", &TimestampJson(b.state_since.as_ref()))?;
        m.end()
    }
}

pub fn frontend(f: &Frontend) -> Value {
    let pools: Vec<Value> = f
        .pools
        .iter()
        .map(|p| {
            let backends: Vec<Value> = p
                .backends
                .iter()
                .map(|b| {
                    json!({
                        "name": b.name,
                        "address": b.address,
                        "state": backend_state(b.state()),
                        "configured_weight": b.configured_weight,
                        "effective_weight": b.effective_weight,
                        "weight_overridden": b.weight_overridden,
                        "flush": b.flush,
                    })
                })
                .collect();
            json!({ "name": p.name, "active": p.active, "backends": backends })
        })
        .collect();
    json!({
        "name": f.name,
        "description": f.description,
        "address": f.address,
        "protocol": f.protocol,
        "port": f.port,
        "src_ip_sticky": f.src_ip_sticky,
        "flush_on_down": f.flush_on_down,
        "fail": f.fail,
        "failed_open": f.failed_open,
        "state": frontend_state(f.state()),
        "pools": pools,
        "active_pool": f.active_pool,
    })
}

pub fn healthcheck(h: &HealthCheck) -> Value {
    let http = h.http.as_ref().map_or(Value::Null, |p| {
        json!({
            "path": p.path,
            "host": p.host,
            "expect_status": p.expect_status,
            "expect_body": p.expect_body,
            "regex": p.regex,
            "sni": p.sni,
            "verify": p.verify,
            "ca_file": p.ca_file,
        })
    });
    json!({
        "name": h.name,
        "type": h.r#type,
        "port": h.port,
        "interval": seconds(h.interval.as_ref()),
        "fast_interval": seconds(h.fast_interval.as_ref()),
        "down_interval": seconds(h.down_interval.as_ref()),
        "timeout": seconds(h.timeout.as_ref()),
        "rise": h.rise,
        "fall": h.fall,
        "probe_ipv4_src": h.probe_ipv4_src,
        "probe_ipv6_src": h.probe_ipv6_src,
        "netns": h.netns,
        "http": http,
        "backends": h.backends,
    })
}

pub fn version(ctl: &str, daemon: &VersionInfo) -> Value {
    json!({
        "ctl": { "version": ctl },
        "daemon": {
            "version": daemon.version,
            "commit": daemon.commit,
            "build_date": daemon.build_date,
        },
    })
}

pub fn vpp_info(v: &VppInfo) -> Value {
    json!({
        "enabled": v.enabled,
        "connected": v.connected,
        "version": v.version,
        "build_date": v.build_date,
        "pid": v.pid,
        "connected_since": timestamp(v.connected_since.as_ref()),
        "api_generation": v.api_generation,
        "legacy": v.legacy,
        "dry_run": v.dry_run,
        "api_addr": v.api_addr,
        "stats_addr": v.stats_addr,
        "warmup_done": v.warmup_done,
        "reconnects": v.reconnects,
        "last_error": v.last_error,
    })
}

pub fn vpp_lb_state(s: &VpplbState) -> Value {
    let conf = s.conf.as_ref().map_or(Value::Null, |c| {
        json!({
            "ip4_src_address": c.ip4_src_address,
            "ip6_src_address": c.ip6_src_address,
            "sticky_buckets_per_core": c.sticky_buckets_per_core,
            "flow_timeout": c.flow_timeout,
        })
    });
    let vips: Vec<Value> = s
        .vips
        .iter()
        .map(|v| {
            let ases: Vec<Value> = v
                .ases
                .iter()
                .map(|a| {
                    json!({
                        "address": a.address,
                        "weight": a.weight,
                        "flags": a.flags,
                        "num_buckets": a.num_buckets,
                        "backend": a.backend,
                    })
                })
                .collect();
            json!({
                "prefix": v.prefix,
                "protocol": v.protocol,
                "port": v.port,
                "encap": v.encap,
                "src_ip_sticky": v.src_ip_sticky,
                "flow_table_length": v.flow_table_length,
                "pool_index": v.pool_index,
                "frontend": v.frontend,
                "ases": ases,
            })
        })
        .collect();
    json!({ "conf": conf, "vips": vips })
}

pub fn vpp_lb_counters(c: &VpplbCounters) -> Value {
    let vips: Vec<Value> = c
        .vips
        .iter()
        .map(|v| {
            json!({
                "frontend": v.frontend,
                "prefix": v.prefix,
                "protocol": v.protocol,
                "port": v.port,
                "next_packet": v.next_packet,
                "first_packet": v.first_packet,
                "untracked_packet": v.untracked_packet,
                "no_server": v.no_server,
                "route_packets": v.route_packets,
                "route_bytes": v.route_bytes,
                "pool_index": v.pool_index,
            })
        })
        .collect();
    let previous = c.previous.as_deref().map_or(Value::Null, vpp_lb_counters);
    let uptime = c
        .vpp_uptime
        .as_ref()
        .map_or(Value::Null, |d| json!(duration_secs(d)));
    json!({
        "at": timestamp(c.at.as_ref()),
        "vpp_uptime": uptime,
        "vips": vips,
        "previous": previous,
    })
}

pub fn sync_result(r: &SyncVpplbStateResponse) -> Value {
    json!({ "operations": r.operations, "dry_run": r.dry_run })
}

pub fn config_result(r: &ConfigResult) -> Value {
    let errors: Vec<Value> = r
        .errors
        .iter()
        .map(|e| {
            json!({
                "file": e.file,
                "line": e.line,
                "column": e.column,
                "key": e.key,
                "message": e.message,
            })
        })
        .collect();
    let diff = r.diff.as_ref().map_or(Value::Null, |d| {
        json!({
            "backends_added": d.backends_added,
            "backends_removed": d.backends_removed,
            "backends_changed": d.backends_changed,
            "healthchecks_added": d.healthchecks_added,
            "healthchecks_removed": d.healthchecks_removed,
            "healthchecks_changed": d.healthchecks_changed,
            "frontends_added": d.frontends_added,
            "frontends_removed": d.frontends_removed,
            "frontends_changed": d.frontends_changed,
        })
    });
    json!({
        "ok": r.ok,
        "kind": config_error_kind(r.kind()),
        "errors": errors,
        "path": r.path,
        "diff": diff,
        "applied": r.applied,
    })
}

pub fn event(e: &Event) -> Value {
    let mut out = Map::new();
    out.insert("at".into(), timestamp(e.at.as_ref()));
    let (kind, body) = match &e.kind {
        Some(event::Kind::Backend(b)) => (
            "backend",
            json!({
                "backend": b.backend,
                "frontend": b.frontend,
                "address": b.address,
                "transition": b.transition.as_ref().map_or(Value::Null, transition),
            }),
        ),
        Some(event::Kind::Frontend(f)) => (
            "frontend",
            json!({
                "frontend": f.frontend,
                "from": frontend_state(frontend_state_of(f.from)),
                "to": frontend_state(frontend_state_of(f.to)),
                "initial": f.initial,
                "snapshot": f.snapshot.as_ref().map_or(Value::Null, frontend),
            }),
        ),
        Some(event::Kind::Log(l)) => {
            // Sorted keys: stable output whatever the map's order.
            let fields: Map<String, Value> = l
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect();
            (
                "log",
                json!({
                    "level": log_level(l.level()),
                    "target": l.target,
                    "message": l.message,
                    "fields": fields,
                }),
            )
        }
        Some(event::Kind::Lost(l)) => ("lost", json!({ "count": l.count })),
        None => ("unknown", Value::Null),
    };
    out.insert("type".into(), Value::String(kind.to_string()));
    out.insert(kind.to_string(), body);
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{LogEvent, Pool, PoolBackend};

    fn ts(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn sample_backend() -> Backend {
        Backend {
            name: "web1".into(),
            address: "192.0.2.10".into(),
            healthcheck: "http".into(),
            enabled: true,
            state: BackendState::Down as i32,
            health: 0,
            rise: 2,
            fall: 3,
            last_result: Some(ProbeResult {
                code: ResultCode::L7sts as i32,
                ok: false,
                detail: "HTTP 503".into(),
                at: ts(1_800_000_000),
                duration: Some(Duration {
                    seconds: 0,
                    nanos: 12_500_000,
                }),
            }),
            history: vec![Transition {
                from: BackendState::Up as i32,
                to: BackendState::Down as i32,
                at: ts(1_800_000_000),
                result: None,
                reason: "probe".into(),
            }],
            frontends: vec!["vip1".into()],
            state_since: ts(1_800_000_000),
            next_interval: Some(Duration {
                seconds: 1,
                nanos: 500_000_000,
            }),
        }
    }

    #[test]
    fn streamed_backends_print_as_their_values_do() {
        // `show backends` streams; `show backends NAME` goes through `Value`: same bytes.
        let mut b = sample_backend();
        b.history.push(Transition {
            result: b.last_result.clone(),
            ..b.history[0].clone()
        });
        let list = vec![b, Backend::default()];
        let streamed = serde_json::to_string_pretty(&BackendsDoc(&list)).unwrap_or_default();
        let doc = json!({ "backends": list.iter().map(backend).collect::<Vec<_>>() });
        let from_values = serde_json::to_string_pretty(&doc).unwrap_or_default();
        assert!(streamed.contains("\"L7STS\""), "{streamed}");
        assert_eq!(streamed, from_values);
    }

    #[test]
    fn hand_written_timestamps_equal_display() {
        let mut buf = [0u8; RFC3339_MAX];
        let mut check = |seconds: i64, nanos: i32| {
            let t = Timestamp { seconds, nanos };
            let want = t.to_string();
            assert_eq!(
                rfc3339(&t, &mut buf),
                Some(want.as_str()),
                "{seconds}.{nanos}"
            );
        };
        // Edges: the epoch, leap days, century rules, the last second of 9999.
        for seconds in [
            0,
            59,
            86_399,
            86_400,
            951_782_400,
            951_868_799,
            4_107_542_399,
            4_107_542_400,
            253_402_300_799,
        ] {
            for nanos in [0, 1, 1_000, 1_000_000, 250_000_000, 999_999_999] {
                check(seconds, nanos);
            }
        }
        // A spread over the whole range, every fraction form.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let seconds = (x >> 11) as i64 % 253_402_300_800;
            let nanos = match x % 4 {
                0 => 0,
                1 => (x >> 40) as i32 % 1_000 * 1_000_000,
                2 => (x >> 34) as i32 % 1_000_000 * 1_000,
                _ => (x >> 30) as i32 % 1_000_000_000,
            };
            check(seconds, nanos.abs());
        }
        // Outside the fast range it declines, and the serializer uses Display.
        for (seconds, nanos) in [(-1, 0), (253_402_300_800, 0), (5, -1), (5, 1_000_000_000)] {
            let t = Timestamp { seconds, nanos };
            assert!(rfc3339(&t, &mut buf).is_none());
            let json = serde_json::to_string(&TimestampJson(Some(&t))).unwrap_or_default();
            assert_eq!(json, format!("\"{t}\""));
        }
    }

    #[test]
    fn enum_strings() {
        assert_eq!(backend_state(BackendState::Up), "up");
        assert_eq!(backend_state(BackendState::Disabled), "disabled");
        assert_eq!(backend_state(BackendState::Unspecified), "unspecified");
        assert_eq!(frontend_state(FrontendState::Down), "down");
        assert_eq!(log_level(LogLevel::Warn), "warn");
        assert_eq!(config_error_kind(ConfigErrorKind::Semantic), "semantic");
        assert_eq!(result_code(ResultCode::L7sts), "L7STS");
        assert_eq!(result_code(ResultCode::Sockerr), "SOCKERR");
        assert_eq!(result_code(ResultCode::Unspecified), "unspecified");
        // An enum value from a newer daemon does not break the output.
        assert_eq!(backend_state(backend_state_of(99)), "unspecified");
    }

    #[test]
    fn backend_keeps_proto_field_names_and_lowercase_states() {
        let v = backend(&sample_backend());
        assert_eq!(v["name"], "web1");
        assert_eq!(v["address"], "192.0.2.10");
        assert_eq!(v["state"], "down");
        assert_eq!(v["last_result"]["code"], "L7STS");
        assert_eq!(v["last_result"]["detail"], "HTTP 503");
        assert_eq!(v["last_result"]["duration"], 0.0125);
        assert_eq!(v["last_result"]["at"], "2027-01-15T08:00:00Z");
        assert_eq!(v["history"][0]["from"], "up");
        assert_eq!(v["history"][0]["to"], "down");
        assert_eq!(v["history"][0]["result"], Value::Null);
        assert_eq!(v["next_interval"], 1.5);
        assert_eq!(v["frontends"][0], "vip1");
        let keys: Vec<&String> = v
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 13, "every Backend field is present: {keys:?}");
    }

    #[test]
    fn frontend_pools_and_weights() {
        let f = Frontend {
            name: "vip1".into(),
            state: FrontendState::Up as i32,
            pools: vec![Pool {
                name: "primary".into(),
                active: true,
                backends: vec![PoolBackend {
                    name: "web1".into(),
                    state: BackendState::Up as i32,
                    configured_weight: 100,
                    effective_weight: 50,
                    weight_overridden: true,
                    ..PoolBackend::default()
                }],
            }],
            active_pool: "primary".into(),
            ..Frontend::default()
        };
        let v = frontend(&f);
        assert_eq!(v["state"], "up");
        assert_eq!(v["active_pool"], "primary");
        assert_eq!(v["pools"][0]["active"], true);
        assert_eq!(v["pools"][0]["backends"][0]["state"], "up");
        assert_eq!(v["pools"][0]["backends"][0]["configured_weight"], 100);
        assert_eq!(v["pools"][0]["backends"][0]["effective_weight"], 50);
        assert_eq!(v["fail"], "");
        assert_eq!(v["failed_open"], false);
    }

    #[test]
    fn frontend_shows_the_fail_policy_and_whether_it_is_in_force() {
        let f = Frontend {
            name: "vip1".into(),
            state: FrontendState::Down as i32,
            fail: "open".into(),
            failed_open: true,
            ..Frontend::default()
        };
        let v = frontend(&f);
        assert_eq!(v["fail"], "open");
        assert_eq!(v["failed_open"], true);
        assert_eq!(v["state"], "down");
        let closed = frontend(&Frontend {
            fail: "closed".into(),
            failed_open: false,
            ..f
        });
        assert_eq!(closed["fail"], "closed");
        assert_eq!(closed["failed_open"], false);
    }

    #[test]
    fn events_carry_their_type() {
        let e = Event {
            at: ts(0),
            kind: Some(event::Kind::Log(LogEvent {
                level: LogLevel::Error as i32,
                target: "vpp".into(),
                message: "disconnected".into(),
                fields: [
                    ("b".to_string(), "2".to_string()),
                    ("a".to_string(), "1".to_string()),
                ]
                .into_iter()
                .collect(),
            })),
        };
        let v = event(&e);
        assert_eq!(v["type"], "log");
        assert_eq!(v["at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["log"]["level"], "error");
        assert_eq!(v["log"]["fields"]["a"], "1");
        // One line per event for JSON lines.
        assert!(!serde_json::to_string(&v).unwrap_or_default().contains('\n'));
        let unset = event(&Event::default());
        assert_eq!(unset["at"], Value::Null);
    }
}
