//! A daemon's state as the page shows it (the JSON of `/view/api/state` and of the `daemon`
//! server-sent event), built from the daemon's gRPC answers, plus the frontend health icon.

use std::collections::HashMap;

use serde::Serialize;

use crate::proto;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DaemonView {
    pub name: String,
    pub addr: String,
    /// Bumped on every change, so that the page keeps the newest of a fetch and an event.
    pub rev: u64,
    pub reachable: bool,
    /// Why it is unreachable (or why the last refresh failed).
    pub error: String,
    pub version: String,
    pub vpp: Option<VppView>,
    pub frontends: Vec<FrontendView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VppView {
    pub enabled: bool,
    pub connected: bool,
    pub version: String,
    /// "1.2.0" (weights) or "1.1.0" (legacy, no weights).
    pub api_generation: String,
    pub legacy: bool,
    pub dry_run: bool,
    pub last_error: String,
    pub reconnects: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FrontendView {
    pub name: String,
    pub description: String,
    pub address: String,
    pub protocol: String,
    pub port: u32,
    pub state: String,
    pub active_pool: String,
    /// up | degraded | failover | down | unknown
    pub health: &'static str,
    pub pools: Vec<PoolView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PoolView {
    pub name: String,
    pub active: bool,
    pub backends: Vec<BackendRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackendRow {
    pub name: String,
    pub address: String,
    pub state: String,
    pub enabled: bool,
    /// HAProxy counter and its top, shown as `health/top`.
    pub health: u32,
    pub health_top: u32,
    pub configured_weight: u32,
    pub effective_weight: u32,
    pub weight_overridden: bool,
    /// Buckets VPP gave this AS of this VIP; None when unknown (VPP off or not fetched).
    pub buckets: Option<u32>,
    pub last_code: String,
    pub last_detail: String,
    /// When the backend entered its state (unix ms), if known.
    pub since_ms: Option<i64>,
}

/// `BACKEND_STATE_UP` -> `up`.
pub fn enum_word(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

fn backend_state(s: i32) -> String {
    proto::BackendState::try_from(s)
        .map(|s| enum_word(s.as_str_name(), "BACKEND_STATE_"))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn timestamp_ms(t: &prost_types::Timestamp) -> i64 {
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

/// Buckets per (frontend, backend name) from VPP's lb state.
pub fn buckets(lb: &proto::VpplbState) -> HashMap<(String, String), u32> {
    let mut map = HashMap::new();
    for vip in &lb.vips {
        if vip.frontend.is_empty() {
            continue;
        }
        for a in &vip.ases {
            if !a.backend.is_empty() {
                *map.entry((vip.frontend.clone(), a.backend.clone()))
                    .or_insert(0) += a.num_buckets;
            }
        }
    }
    map
}

/// The frontends of one daemon, joined with its backends (counter, last result, since) and
/// VPP's bucket counts.
pub fn frontends(
    fronts: &[proto::Frontend],
    backs: &[proto::Backend],
    buckets: Option<&HashMap<(String, String), u32>>,
) -> Vec<FrontendView> {
    let by_name: HashMap<&str, &proto::Backend> =
        backs.iter().map(|b| (b.name.as_str(), b)).collect();
    fronts
        .iter()
        .map(|f| {
            let pools: Vec<PoolView> = f
                .pools
                .iter()
                .map(|p| PoolView {
                    name: p.name.clone(),
                    active: p.active,
                    backends: p
                        .backends
                        .iter()
                        .map(|pb| {
                            let b = by_name.get(pb.name.as_str());
                            let last = b.and_then(|b| b.last_result.as_ref());
                            BackendRow {
                                name: pb.name.clone(),
                                address: pb.address.clone(),
                                state: backend_state(pb.state),
                                enabled: b.is_none_or(|b| b.enabled),
                                health: b.map_or(0, |b| b.health),
                                health_top: b.map_or(0, |b| (b.rise + b.fall).saturating_sub(1)),
                                configured_weight: pb.configured_weight,
                                effective_weight: pb.effective_weight,
                                weight_overridden: pb.weight_overridden,
                                buckets: buckets.map(|m| {
                                    m.get(&(f.name.clone(), pb.name.clone()))
                                        .copied()
                                        .unwrap_or(0)
                                }),
                                last_code: last
                                    .and_then(|r| proto::ResultCode::try_from(r.code).ok())
                                    .filter(|c| *c != proto::ResultCode::Unspecified)
                                    .map(|c| {
                                        enum_word(c.as_str_name(), "RESULT_CODE_").to_uppercase()
                                    })
                                    .unwrap_or_default(),
                                last_detail: last.map(|r| r.detail.clone()).unwrap_or_default(),
                                since_ms: b.and_then(|b| b.state_since.as_ref()).map(timestamp_ms),
                            }
                        })
                        .collect(),
                })
                .collect();
            let health = health_icon(&pools, &f.active_pool);
            FrontendView {
                name: f.name.clone(),
                description: f.description.clone(),
                address: f.address.clone(),
                protocol: f.protocol.clone(),
                port: f.port,
                state: proto::FrontendState::try_from(f.state)
                    .map(|s| enum_word(s.as_str_name(), "FRONTEND_STATE_"))
                    .unwrap_or_else(|_| "unknown".to_string()),
                active_pool: f.active_pool.clone(),
                health,
                pools,
            }
        })
        .collect()
}

/// The frontend's icon: `up` (every backend in service is up), `degraded` (some down),
/// `failover` (serving from a pool other than the first), `down` (none up) or `unknown`.
/// Paused and disabled backends are the operator's choice and do not count. While any
/// backend is still unknown (the daemon is settling) the worst verdict, `down`, is held
/// back as `unknown`.
pub fn health_icon(pools: &[PoolView], active_pool: &str) -> &'static str {
    let counted: Vec<&BackendRow> = pools
        .iter()
        .flat_map(|p| &p.backends)
        .filter(|b| matches!(b.state.as_str(), "up" | "down" | "unknown"))
        .collect();
    let up = counted.iter().filter(|b| b.state == "up").count();
    let unknown = counted.iter().filter(|b| b.state == "unknown").count();
    if counted.is_empty() || (up == 0 && unknown > 0) {
        return "unknown";
    }
    if up == 0 {
        return "down";
    }
    if pools.first().is_some_and(|p| p.name != active_pool) {
        return "failover";
    }
    if up < counted.len() { "degraded" } else { "up" }
}

impl VppView {
    pub fn from_info(i: &proto::VppInfo) -> VppView {
        VppView {
            enabled: i.enabled,
            connected: i.connected,
            version: i.version.clone(),
            api_generation: i.api_generation.clone(),
            legacy: i.legacy,
            dry_run: i.dry_run,
            last_error: i.last_error.clone(),
            reconnects: i.reconnects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: &str) -> BackendRow {
        BackendRow {
            name: name.into(),
            state: state.into(),
            ..BackendRow::default()
        }
    }

    fn pool(name: &str, rows: &[(&str, &str)]) -> PoolView {
        PoolView {
            name: name.into(),
            active: false,
            backends: rows.iter().map(|(n, s)| row(n, s)).collect(),
        }
    }

    #[test]
    fn health_icons() {
        let p =
            |a: &[(&str, &str)], b: &[(&str, &str)]| vec![pool("primary", a), pool("backup", b)];
        assert_eq!(
            health_icon(&p(&[("a", "up"), ("b", "up")], &[]), "primary"),
            "up"
        );
        assert_eq!(
            health_icon(&p(&[("a", "up"), ("b", "down")], &[]), "primary"),
            "degraded"
        );
        assert_eq!(
            health_icon(&p(&[("a", "down")], &[("c", "up")]), "backup"),
            "failover"
        );
        assert_eq!(
            health_icon(&p(&[("a", "down")], &[("c", "down")]), ""),
            "down"
        );
        // Settling: nothing up yet but something unknown is not "down".
        assert_eq!(
            health_icon(&p(&[("a", "down"), ("b", "unknown")], &[]), ""),
            "unknown"
        );
        // Operator choices do not count.
        assert_eq!(
            health_icon(
                &p(&[("a", "up"), ("b", "paused")], &[("c", "disabled")]),
                "primary"
            ),
            "up"
        );
        assert_eq!(health_icon(&p(&[("a", "disabled")], &[]), ""), "unknown");
        assert_eq!(health_icon(&[], ""), "unknown");
    }

    #[test]
    fn joins_backends_and_buckets() {
        let fronts = vec![proto::Frontend {
            name: "web".into(),
            address: "192.0.2.1/32".into(),
            protocol: "tcp".into(),
            port: 80,
            state: proto::FrontendState::Up as i32,
            active_pool: "primary".into(),
            pools: vec![proto::Pool {
                name: "primary".into(),
                active: true,
                backends: vec![proto::PoolBackend {
                    name: "a".into(),
                    address: "10.0.0.1".into(),
                    state: proto::BackendState::Up as i32,
                    configured_weight: 80,
                    effective_weight: 80,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        }];
        let backs = vec![proto::Backend {
            name: "a".into(),
            enabled: true,
            health: 3,
            rise: 2,
            fall: 2,
            last_result: Some(proto::ProbeResult {
                code: proto::ResultCode::L4ok as i32,
                ok: true,
                detail: "connected".into(),
                ..Default::default()
            }),
            state_since: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 5_000_000,
            }),
            ..Default::default()
        }];
        let lb = proto::VpplbState {
            conf: None,
            vips: vec![proto::VppVip {
                frontend: "web".into(),
                ases: vec![proto::VppAs {
                    backend: "a".into(),
                    num_buckets: 1024,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let b = buckets(&lb);
        let v = frontends(&fronts, &backs, Some(&b));
        let r = &v[0].pools[0].backends[0];
        assert_eq!(v[0].state, "up");
        assert_eq!(v[0].health, "up");
        assert_eq!((r.state.as_str(), r.health, r.health_top), ("up", 3, 3));
        assert_eq!(
            (r.last_code.as_str(), r.last_detail.as_str()),
            ("L4OK", "connected")
        );
        assert_eq!(r.buckets, Some(1024));
        assert_eq!(r.since_ms, Some(10_005));
        assert_eq!(
            frontends(&fronts, &backs, None)[0].pools[0].backends[0].buckets,
            None
        );
    }
}
