//! The encoder `/metrics` used before issue 14's lean render: owned label rows per
//! backend, encoded by prometheus-client. Kept for tests as the reference the lean
//! writer's output is compared with, byte for byte.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::checker::HealthSnapshot;
use crate::checker::stats::DURATION_BUCKETS;
use crate::health::{FrontendState, ResultCode, State};
use crate::vpp::lb::protocol_name;
use crate::vpp::{CountersSnapshot, LbCountersView, VppInfo};

use super::families::connected_seconds;

type Labels = Vec<(&'static str, String)>;

/// Everything `/metrics` shows, copied out under the checker's read lock (so the lock is
/// never held while text is written).
#[derive(Debug, Clone, Default)]
pub struct Reference {
    backend_state: Vec<(Labels, i64)>,
    backend_health: Vec<(Labels, i64)>,
    backend_enabled: Vec<(Labels, i64)>,
    frontend_state: Vec<(Labels, i64)>,
    frontend_failed_open: Vec<(Labels, i64)>,
    pool_weight: Vec<(Labels, i64)>,
    probes: Vec<(Labels, u64)>,
    probe_duration: Vec<(Labels, Histogram)>,
    transitions: Vec<(Labels, u64)>,
    vpp: VppInfo,
    vpp_api: Vec<(Labels, u64)>,
    vpp_lbsync: Vec<(Labels, u64)>,
    vip_packets: Vec<(Labels, u64)>,
    vip_route_packets: Vec<(Labels, u64)>,
    vip_route_bytes: Vec<(Labels, u64)>,
    vpp_uptime: Option<f64>,
}

/// One probe-duration histogram: non-cumulative bucket counts (the encoder sums them).
#[derive(Debug, Clone, Default)]
struct Histogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl Reference {
    pub fn of(st: &HealthSnapshot, vpp: VppInfo) -> Reference {
        let mut s = Reference {
            vpp,
            ..Reference::default()
        };
        for (name, e) in &st.backends {
            let b = || ("backend", name.clone());
            let state = e.health.state();
            for candidate in State::ALL {
                s.backend_state.push((
                    vec![b(), ("state", candidate.as_str().to_string())],
                    i64::from(candidate == state),
                ));
            }
            s.backend_health
                .push((vec![b()], i64::from(e.health.health())));
            s.backend_enabled
                .push((vec![b()], i64::from(state != State::Disabled)));
            let kind = e.healthcheck.kind().as_str().to_string();
            let stats = e.stats.load();
            for code in ResultCode::ALL {
                let n = stats.count_of(code);
                if n > 0 {
                    let result = if code.is_ok() { "pass" } else { "fail" };
                    s.probes.push((
                        vec![
                            b(),
                            ("type", kind.clone()),
                            ("result", result.to_string()),
                            ("code", code.as_str().to_string()),
                        ],
                        n,
                    ));
                }
            }
            s.probe_duration.push((
                vec![b(), ("type", kind)],
                Histogram {
                    sum: stats.duration_sum,
                    count: stats.count,
                    buckets: DURATION_BUCKETS
                        .into_iter()
                        .zip(stats.duration_buckets)
                        .collect(),
                },
            ));
            for ((from, to), n) in &e.transitions {
                s.transitions.push((
                    vec![
                        b(),
                        ("from", from.as_str().to_string()),
                        ("to", to.as_str().to_string()),
                    ],
                    *n,
                ));
            }
        }
        for name in st.config.frontends.keys() {
            let Some(view) = st.frontend(name) else {
                continue;
            };
            for candidate in FrontendState::ALL {
                s.frontend_state.push((
                    vec![
                        ("frontend", name.clone()),
                        ("state", candidate.as_str().to_string()),
                    ],
                    i64::from(candidate == view.weights.state),
                ));
            }
            s.frontend_failed_open.push((
                vec![("frontend", name.clone())],
                i64::from(view.weights.failed_open),
            ));
            for pool in &view.inputs {
                for member in &pool.backends {
                    let labels = |kind: &str| {
                        vec![
                            ("frontend", name.clone()),
                            ("pool", pool.name.clone()),
                            ("backend", member.name.clone()),
                            ("kind", kind.to_string()),
                        ]
                    };
                    let effective = view
                        .weights
                        .action(&pool.name, &member.name)
                        .map_or(0, |a| a.weight());
                    s.pool_weight
                        .push((labels("configured"), i64::from(member.configured_weight())));
                    s.pool_weight
                        .push((labels("effective"), i64::from(effective)));
                }
            }
        }
        s
    }

    /// Adds the VPP side: API calls and syncs, and the last per-VIP counters pass.
    pub fn with_vpp_side(
        mut self,
        counters: &CountersSnapshot,
        lb: Option<&LbCountersView>,
    ) -> Self {
        let api_rows = |rows: &[(&str, &str, u64)], direction: &str| -> Vec<(Labels, u64)> {
            rows.iter()
                .map(|(msg, result, n)| {
                    (
                        vec![
                            ("msg", msg.to_string()),
                            ("direction", direction.to_string()),
                            ("result", result.to_string()),
                        ],
                        *n,
                    )
                })
                .collect()
        };
        self.vpp_api = api_rows(&counters.api, "send");
        self.vpp_api.extend(api_rows(&counters.api_replies, "recv"));
        self.vpp_lbsync = counters
            .lbsync
            .iter()
            .map(|(scope, kind, n)| {
                (
                    vec![("scope", scope.to_string()), ("kind", kind.to_string())],
                    *n,
                )
            })
            .collect();
        self.vpp_lbsync.extend(lbsync_op_rows(counters));
        let Some(lb) = lb else {
            return self;
        };
        self.vpp_uptime = lb.current.uptime.map(|u| u.as_secs_f64());
        for v in &lb.current.vips {
            let vip = || {
                vec![
                    ("frontend", v.frontend.clone().unwrap_or_default()),
                    ("prefix", v.key.prefix.to_string()),
                    ("protocol", protocol_name(v.key.protocol)),
                    ("port", v.key.port.to_string()),
                ]
            };
            let c = &v.counters;
            for (kind, n) in [
                ("next", c.next),
                ("first", c.first),
                ("untracked", c.untracked),
                ("no_server", c.no_server),
            ] {
                let mut labels = vip();
                labels.push(("kind", kind.to_string()));
                self.vip_packets.push((labels, n));
            }
            self.vip_route_packets.push((vip(), c.route_packets));
            self.vip_route_bytes.push((vip(), c.route_bytes));
        }
        self
    }

    /// OpenMetrics text, `# EOF` included.
    pub fn encode_text(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
            return "# EOF\n".to_string();
        }
        out
    }
}

/// The writes of syncs under the Go tool's kind names, every scope and kind present (at 0
/// until the first write) so dashboards see the series from the start.
fn lbsync_op_rows(counters: &CountersSnapshot) -> Vec<(Labels, u64)> {
    use crate::vpp::counters::{LBSYNC_OP_KINDS, LBSYNC_SCOPES};
    let mut rows = Vec::new();
    for scope in LBSYNC_SCOPES {
        for (op, kind) in LBSYNC_OP_KINDS {
            let n = counters
                .scoped_writes
                .iter()
                .filter(|(s, o, _)| *s == scope && *o == op)
                .map(|(_, _, n)| n)
                .sum();
            rows.push((
                vec![("scope", scope.to_string()), ("kind", kind.to_string())],
                n,
            ));
        }
    }
    rows
}

fn gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

/// `name` without `_total`: the encoder appends it to counters.
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for Reference {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let build = vec![(
            vec![
                ("version", crate::version::VERSION.to_string()),
                ("commit", crate::version::GIT_COMMIT.to_string()),
            ],
            1,
        )];
        gauges(
            e,
            "maglev_build_info",
            "Build of the running daemon.",
            &build,
        )?;
        gauges(
            e,
            "maglev_backend_state",
            "1 for the backend's current state, 0 for the others.",
            &self.backend_state,
        )?;
        gauges(
            e,
            "maglev_backend_health",
            "HAProxy health counter of the backend (0..rise+fall-1).",
            &self.backend_health,
        )?;
        gauges(
            e,
            "maglev_backend_enabled",
            "1 unless the backend is disabled.",
            &self.backend_enabled,
        )?;
        gauges(
            e,
            "maglev_frontend_state",
            "1 for the frontend's current state, 0 for the others.",
            &self.frontend_state,
        )?;
        gauges(
            e,
            "maglev_frontend_failed_open",
            "1 while a fail = \"open\" frontend is failed open (every backend down, the first pool keeps its weights).",
            &self.frontend_failed_open,
        )?;
        gauges(
            e,
            "maglev_frontend_pool_backend_weight",
            "Weight of a backend in a pool: configured (or overridden) and effective (what VPP should carry).",
            &self.pool_weight,
        )?;
        counters(
            e,
            "maglev_probe",
            "Probes run, by result and HAProxy-style code.",
            &self.probes,
        )?;
        {
            let mut metric = e.encode_descriptor(
                "maglev_probe_duration_seconds",
                "How long probes took.",
                None,
                MetricType::Histogram,
            )?;
            for (labels, h) in &self.probe_duration {
                metric
                    .encode_family(labels)?
                    .encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
            }
        }
        counters(
            e,
            "maglev_backend_transitions",
            "Backend state transitions.",
            &self.transitions,
        )?;
        gauges(
            e,
            "maglev_vpp_connected",
            "1 while connected to VPP's binary API.",
            &[(Vec::new(), i64::from(self.vpp.connected))],
        )?;
        {
            let metric = e.encode_descriptor(
                "maglev_vpp_connected_seconds",
                "Seconds since the current VPP API connection was made (absent while disconnected).",
                None,
                MetricType::Gauge,
            )?;
            if let Some(secs) = connected_seconds(&self.vpp, std::time::SystemTime::now()) {
                ConstGauge::new(secs).encode(metric)?;
            }
        }
        let info: Vec<(Labels, i64)> = if self.vpp.version.is_empty() {
            Vec::new()
        } else {
            vec![(
                vec![
                    ("version", self.vpp.version.clone()),
                    ("build_date", self.vpp.build_date.clone()),
                    ("pid", self.vpp.pid.to_string()),
                ],
                1,
            )]
        };
        gauges(
            e,
            "maglev_vpp_info",
            "Version, build date and pid of the connected VPP.",
            &info,
        )?;
        counters(
            e,
            "maglev_vpp_api",
            "VPP binary API messages, by message, direction (send: requests, recv: replies) and result.",
            &self.vpp_api,
        )?;
        counters(
            e,
            "maglev_vpp_lbsync",
            "VPP lb syncs by scope (all, vip) and outcome (noop, applied, error, dry_run), and their writes by kind (vip_added, vip_removed, as_added, as_removed, as_weight_updated).",
            &self.vpp_lbsync,
        )?;
        counters(
            e,
            "maglev_vip_packets",
            "Packets seen by the lb plugin per VIP, by kind (next, first, untracked, no_server).",
            &self.vip_packets,
        )?;
        counters(
            e,
            "maglev_vip_route_packets",
            "Packets through the FIB entry of the VIP's prefix (/net/route/to).",
            &self.vip_route_packets,
        )?;
        counters(
            e,
            "maglev_vip_route_bytes",
            "Bytes through the FIB entry of the VIP's prefix (/net/route/to).",
            &self.vip_route_bytes,
        )?;
        {
            let metric = e.encode_descriptor(
                "maglev_vpp_uptime_seconds",
                "Time since VPP booted (from its stats segment).",
                None,
                MetricType::Gauge,
            )?;
            if let Some(up) = self.vpp_uptime {
                ConstGauge::new(up).encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::Reference;
    use crate::checker::CheckerState;
    use crate::health::{ProbeResult, ResultCode, State};
    use crate::metrics::{Format, Snapshot, to_prometheus_text};
    use crate::vpp::lb::VipKey;
    use crate::vpp::stats::VipCounters;
    use crate::vpp::wire::Prefix;
    use crate::vpp::{CountersSample, CountersSnapshot, LbCountersView, VipCountersView, VppInfo};

    const CONFIG: &str = r#"
[vpp.lb]
ipv4-src-address = "192.0.2.254"
ipv6-src-address = "2001:db8::fe"

[healthchecks.tcp]
type = "tcp"
port = 80
[healthchecks.web]
type = "http"
port = 8080
[backends.a]
address = "192.0.2.10"
healthcheck = "tcp"
[backends.b]
address = "192.0.2.11"
healthcheck = "web"
enabled = false
[backends.c]
address = "192.0.2.12"
healthcheck = "web"
[frontends.vip]
address = "192.0.2.1"
protocol = "tcp"
port = 80
  [[frontends.vip.pools]]
  name = "primary"
  backends = { a = { weight = 60 }, b = {} }
  [[frontends.vip.pools]]
  name = "backup"
  backends = { c = {} }
[frontends.other]
address = "2001:db8::1"
protocol = "udp"
port = 53
  [[frontends.other.pools]]
  name = "p"
  backends = { c = {} }
"#;

    /// The pieces of a streamed render, each checked: not empty, whole lines, and no
    /// bigger than `chunk` plus the lines written after the buffer reached it (one sample
    /// line, or a family's HELP and TYPE, or one histogram's lines).
    fn streamed(lean: &Snapshot<'_>, format: Format, chunk: usize) -> Vec<String> {
        let mut pieces = Vec::new();
        lean.stream(format, chunk, &mut |piece: String| {
            pieces.push(piece);
            true
        });
        for p in &pieces {
            assert!(p.ends_with('\n'), "{p:?}");
            if chunk < usize::MAX {
                assert!(
                    p.len() < chunk + 2_000,
                    "{} bytes for chunk {chunk}",
                    p.len()
                );
            }
        }
        if chunk == 1 {
            // Every line (or histogram / family header) goes as soon as it is written.
            assert!(pieces.len() > 50, "{} pieces", pieces.len());
        }
        pieces
    }

    #[test]
    fn lean_writer_matches_prometheus_client_byte_for_byte() {
        let config = match crate::config::load_str(CONFIG, Path::new("t.toml")) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("{e}"),
        };
        let mut st = CheckerState::new(config, SystemTime::UNIX_EPOCH);
        let names: Vec<String> = st.backends.keys().cloned().collect();
        for name in names {
            let Some(e) = st.backends.get_mut(&name) else {
                continue;
            };
            let fail = if name == "c" {
                ResultCode::L7Sts
            } else {
                ResultCode::L4Con
            };
            for (code, us) in [
                (ResultCode::L4Ok, 300),
                (fail, 12_345),
                (ResultCode::L4Ok, 7_000_001),
            ] {
                let r = ProbeResult::new(code, "", Duration::from_micros(us));
                e.stats.observe(&r);
                let _ = e.health.record(r);
            }
            e.transitions.count(State::Unknown, State::Up);
            e.transitions.count(State::Up, State::Down);
        }
        let counters = CountersSnapshot {
            api: vec![("lb_vip_dump", "ok", 3), ("lb_as_set_weight", "error", 1)],
            api_replies: vec![("lb_vip_dump", "ok", 2)],
            lbsync: vec![("all", "applied", 2), ("vip", "noop", 7)],
            writes: vec![("add_as", 3)],
            scoped_writes: vec![("all", "add_as", 2), ("vip", "set_weight", 1)],
        };
        let vip = |frontend: Option<&str>, addr: &str, len: u8, protocol: u8| VipCountersView {
            key: VipKey::new(Prefix::new(addr.parse().unwrap(), len), protocol, 80),
            frontend: frontend.map(str::to_string),
            pool_index: 1,
            route_stats_index: Some(9),
            counters: VipCounters {
                vip_index: 1,
                next: 90,
                first: 10,
                untracked: 0,
                no_server: 2,
                route_packets: u64::MAX,
                route_bytes: 6400,
            },
        };
        let lb = LbCountersView {
            current: CountersSample {
                at: SystemTime::UNIX_EPOCH,
                uptime: Some(Duration::from_nanos(90_500_000_123)),
                vips: vec![
                    vip(Some("vip"), "192.0.2.1", 32, 6),
                    vip(None, "2001:db8::1", 128, 17),
                ],
            },
            previous: None,
        };
        let snap = st.full_snapshot();
        for vpp in [
            VppInfo::default(),
            VppInfo {
                enabled: true,
                connected: true,
                version: "25.06-rc0~\"x\"".into(),
                build_date: "2025-06-25T10:00:00".into(),
                pid: 4242,
                ..VppInfo::default()
            },
        ] {
            for lb in [None, Some(&lb)] {
                let reference = Reference::of(&snap, vpp.clone())
                    .with_vpp_side(&counters, lb)
                    .encode_text();
                let lean = Snapshot::of(&snap, vpp.clone()).with_vpp_side(&counters, lb);
                assert_eq!(lean.encode(Format::OpenMetrics, 0), reference);
                assert_eq!(
                    lean.encode(Format::Classic, 7),
                    to_prometheus_text(&reference)
                );
                // Streamed in pieces: the same bytes, cut only at line ends.
                for chunk in [1, 64, 1000, usize::MAX] {
                    assert_eq!(
                        streamed(&lean, Format::OpenMetrics, chunk).concat(),
                        reference,
                        "chunk {chunk}"
                    );
                    assert_eq!(
                        streamed(&lean, Format::Classic, chunk).concat(),
                        to_prometheus_text(&reference),
                        "chunk {chunk}"
                    );
                }
            }
            let reference = Reference::of(&snap, vpp.clone()).encode_text();
            assert_eq!(Snapshot::of(&snap, vpp).encode_text(), reference);
        }
    }
}
