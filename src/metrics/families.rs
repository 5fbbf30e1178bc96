//! What `/metrics` shows: every family, its help and its samples, written from the
//! checker's published snapshot (an `Arc`, so no lock is held while text is written) and
//! the VPP side's counters. Labels are borrowed from the snapshot; nothing is copied into
//! per-row label sets.

use crate::checker::HealthSnapshot;
use crate::checker::stats::DURATION_BUCKETS;
use crate::health::{FrontendState, ResultCode, State};
use crate::vpp::lb::protocol_name;
use crate::vpp::stats::VipCounters;
use crate::vpp::{CountersSnapshot, LbCountersView, VppInfo};

use super::text::{Format, Kind, Sink, Text, Value};

/// Everything one render reads, borrowed.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    health: &'a HealthSnapshot,
    vpp: VppInfo,
    counters: Option<&'a CountersSnapshot>,
    lb: Option<&'a LbCountersView>,
}

impl<'a> Snapshot<'a> {
    pub fn of(health: &'a HealthSnapshot, vpp: VppInfo) -> Snapshot<'a> {
        Snapshot {
            health,
            vpp,
            counters: None,
            lb: None,
        }
    }

    /// Adds the VPP side: API calls and syncs, and the last per-VIP counters pass.
    pub fn with_vpp_side(
        mut self,
        counters: &'a CountersSnapshot,
        lb: Option<&'a LbCountersView>,
    ) -> Self {
        self.counters = Some(counters);
        self.lb = lb;
        self
    }

    /// OpenMetrics text, `# EOF` included.
    pub fn encode_text(&self) -> String {
        self.encode(Format::OpenMetrics, 0)
    }

    /// The exposition in `format`, into a buffer of `capacity` bytes to start with.
    pub fn encode(&self, format: Format, capacity: usize) -> String {
        let mut t = Text::new(format, capacity);
        self.write(&mut t);
        t.finish()
    }

    /// The same exposition as [`Snapshot::encode`], handed to `sink` in pieces of about
    /// `chunk` bytes (whole lines) as it is written: the buffer is one piece, not the
    /// whole text (18 MB at 10,000 backends).
    pub fn stream(&self, format: Format, chunk: usize, sink: &mut Sink<'_>) {
        let mut t = Text::streaming(format, chunk, sink);
        self.write(&mut t);
        t.finish_stream();
    }

    fn write(&self, t: &mut Text<'_>) {
        self.backends(t);
        self.frontends(t);
        self.probes(t);
        self.vpp(t);
    }

    fn backends(&self, t: &mut Text<'_>) {
        t.family(
            "maglev_build_info",
            "Build of the running daemon.",
            Kind::Gauge,
        );
        t.sample(
            &[
                ("version", crate::version::VERSION),
                ("commit", crate::version::GIT_COMMIT),
            ],
            Value::Int(1),
        );
        let backends = &self.health.backends;
        t.family(
            "maglev_backend_state",
            "1 for the backend's current state, 0 for the others.",
            Kind::Gauge,
        );
        for (name, e) in backends {
            let state = e.health.state();
            for candidate in State::ALL {
                t.sample(
                    &[("backend", name), ("state", candidate.as_str())],
                    Value::Int(i64::from(candidate == state)),
                );
            }
        }
        t.family(
            "maglev_backend_health",
            "HAProxy health counter of the backend (0..rise+fall-1).",
            Kind::Gauge,
        );
        for (name, e) in backends {
            t.sample(
                &[("backend", name)],
                Value::Int(i64::from(e.health.health())),
            );
        }
        t.family(
            "maglev_backend_enabled",
            "1 unless the backend is disabled.",
            Kind::Gauge,
        );
        for (name, e) in backends {
            t.sample(
                &[("backend", name)],
                Value::Int(i64::from(e.health.state() != State::Disabled)),
            );
        }
    }

    fn frontends(&self, t: &mut Text<'_>) {
        let st = self.health;
        let views = || {
            st.config
                .frontends
                .keys()
                .filter_map(|name| Some((name, st.frontend(name)?)))
        };
        t.family(
            "maglev_frontend_state",
            "1 for the frontend's current state, 0 for the others.",
            Kind::Gauge,
        );
        for (name, view) in views() {
            for candidate in FrontendState::ALL {
                t.sample(
                    &[("frontend", name), ("state", candidate.as_str())],
                    Value::Int(i64::from(candidate == view.weights.state)),
                );
            }
        }
        t.family(
            "maglev_frontend_failed_open",
            "1 while a fail = \"open\" frontend is failed open (every backend down, the first pool keeps its weights).",
            Kind::Gauge,
        );
        for (name, view) in views() {
            t.sample(
                &[("frontend", name)],
                Value::Int(i64::from(view.weights.failed_open)),
            );
        }
        t.family(
            "maglev_frontend_pool_backend_weight",
            "Weight of a backend in a pool: configured (or overridden) and effective (what VPP should carry).",
            Kind::Gauge,
        );
        for (name, view) in views() {
            for pool in &view.inputs {
                for member in &pool.backends {
                    let effective = view
                        .weights
                        .action(&pool.name, &member.name)
                        .map_or(0, |a| a.weight());
                    for (kind, weight) in [
                        ("configured", member.configured_weight()),
                        ("effective", effective),
                    ] {
                        t.sample(
                            &[
                                ("frontend", name),
                                ("pool", &pool.name),
                                ("backend", &member.name),
                                ("kind", kind),
                            ],
                            Value::Int(i64::from(weight)),
                        );
                    }
                }
            }
        }
    }

    fn probes(&self, t: &mut Text<'_>) {
        let backends = &self.health.backends;
        t.family(
            "maglev_probe",
            "Probes run, by result and HAProxy-style code.",
            Kind::Counter,
        );
        for (name, e) in backends {
            let kind = e.healthcheck.kind().as_str();
            let stats = e.stats.load();
            for code in ResultCode::ALL {
                let n = stats.count_of(code);
                if n > 0 {
                    let result = if code.is_ok() { "pass" } else { "fail" };
                    t.sample(
                        &[
                            ("backend", name),
                            ("type", kind),
                            ("result", result),
                            ("code", code.as_str()),
                        ],
                        Value::Uint(n),
                    );
                }
            }
        }
        t.family(
            "maglev_probe_duration_seconds",
            "How long probes took.",
            Kind::Histogram,
        );
        for (name, e) in backends {
            let stats = e.stats.load();
            t.histogram(
                &[("backend", name), ("type", e.healthcheck.kind().as_str())],
                stats.duration_sum,
                stats.count,
                DURATION_BUCKETS.into_iter().zip(stats.duration_buckets),
            );
        }
        t.family(
            "maglev_backend_transitions",
            "Backend state transitions.",
            Kind::Counter,
        );
        for (name, e) in backends {
            for ((from, to), n) in &e.transitions {
                t.sample(
                    &[
                        ("backend", name),
                        ("from", from.as_str()),
                        ("to", to.as_str()),
                    ],
                    Value::Uint(*n),
                );
            }
        }
    }

    fn vpp(&self, t: &mut Text<'_>) {
        t.family(
            "maglev_vpp_connected",
            "1 while connected to VPP's binary API.",
            Kind::Gauge,
        );
        t.sample(&[], Value::Int(i64::from(self.vpp.connected)));
        t.family(
            "maglev_vpp_connected_seconds",
            "Seconds since the current VPP API connection was made (absent while disconnected).",
            Kind::Gauge,
        );
        if let Some(secs) = connected_seconds(&self.vpp, std::time::SystemTime::now()) {
            t.sample(&[], Value::Float(secs));
        }
        t.family(
            "maglev_vpp_info",
            "Version, build date and pid of the connected VPP.",
            Kind::Gauge,
        );
        if !self.vpp.version.is_empty() {
            t.sample(
                &[
                    ("version", &self.vpp.version),
                    ("build_date", &self.vpp.build_date),
                    ("pid", itoa::Buffer::new().format(self.vpp.pid)),
                ],
                Value::Int(1),
            );
        }
        t.family(
            "maglev_vpp_api",
            "VPP binary API messages, by message, direction (send: requests, recv: replies) and result.",
            Kind::Counter,
        );
        if let Some(c) = self.counters {
            for (rows, direction) in [(&c.api, "send"), (&c.api_replies, "recv")] {
                for (msg, result, n) in rows {
                    t.sample(
                        &[("msg", msg), ("direction", direction), ("result", result)],
                        Value::Uint(*n),
                    );
                }
            }
        }
        t.family(
            "maglev_vpp_lbsync",
            "VPP lb syncs by scope (all, vip) and outcome (noop, applied, error, dry_run), and their writes by kind (vip_added, vip_removed, as_added, as_removed, as_weight_updated).",
            Kind::Counter,
        );
        if let Some(c) = self.counters {
            for (scope, kind, n) in &c.lbsync {
                t.sample(&[("scope", scope), ("kind", kind)], Value::Uint(*n));
            }
            lbsync_ops(t, c);
        }
        self.vips(t);
        t.family(
            "maglev_vpp_uptime_seconds",
            "Time since VPP booted (from its stats segment).",
            Kind::Gauge,
        );
        if let Some(up) = self.lb.and_then(|lb| lb.current.uptime) {
            t.sample(&[], Value::Float(up.as_secs_f64()));
        }
    }

    /// The per-VIP families: a handful of VIPs, so their few formatted labels (prefix,
    /// protocol, port) are formatted once per VIP.
    fn vips(&self, t: &mut Text<'_>) {
        let vips = self.lb.map_or(&[][..], |lb| &lb.current.vips[..]);
        let labels: Vec<[String; 4]> = vips
            .iter()
            .map(|v| {
                [
                    v.frontend.clone().unwrap_or_default(),
                    v.key.prefix.to_string(),
                    protocol_name(v.key.protocol),
                    v.key.port.to_string(),
                ]
            })
            .collect();
        t.family(
            "maglev_vip_packets",
            "Packets seen by the lb plugin per VIP, by kind (next, first, untracked, no_server).",
            Kind::Counter,
        );
        for (v, l) in vips.iter().zip(&labels) {
            let c = &v.counters;
            let [f, p, proto, port] = vip_labels(l);
            for (kind, n) in [
                ("next", c.next),
                ("first", c.first),
                ("untracked", c.untracked),
                ("no_server", c.no_server),
            ] {
                t.sample(&[f, p, proto, port, ("kind", kind)], Value::Uint(n));
            }
        }
        let route: [(&str, &str, CounterOf); 2] = [
            (
                "maglev_vip_route_packets",
                "Packets through the FIB entry of the VIP's prefix (/net/route/to).",
                |c| c.route_packets,
            ),
            (
                "maglev_vip_route_bytes",
                "Bytes through the FIB entry of the VIP's prefix (/net/route/to).",
                |c| c.route_bytes,
            ),
        ];
        for (family, help, value) in route {
            t.family(family, help, Kind::Counter);
            for (v, l) in vips.iter().zip(&labels) {
                t.sample(&vip_labels(l), Value::Uint(value(&v.counters)));
            }
        }
    }
}

/// Reads one counter of a VIP.
type CounterOf = fn(&VipCounters) -> u64;

/// A VIP's label set from its formatted frontend, prefix, protocol and port.
fn vip_labels(l: &[String; 4]) -> [(&'static str, &str); 4] {
    [
        ("frontend", &l[0]),
        ("prefix", &l[1]),
        ("protocol", &l[2]),
        ("port", &l[3]),
    ]
}

/// The writes of syncs under the Go tool's kind names, every scope and kind present (at 0
/// until the first write) so dashboards see the series from the start.
fn lbsync_ops(t: &mut Text<'_>, counters: &CountersSnapshot) {
    use crate::vpp::counters::{LBSYNC_OP_KINDS, LBSYNC_SCOPES};
    for scope in LBSYNC_SCOPES {
        for (op, kind) in LBSYNC_OP_KINDS {
            let n = counters
                .scoped_writes
                .iter()
                .filter(|(s, o, _)| *s == scope && *o == op)
                .map(|(_, _, n)| n)
                .sum();
            t.sample(&[("scope", scope), ("kind", kind)], Value::Uint(n));
        }
    }
}

/// Seconds since the current VPP API connection was made; None while disconnected.
pub(super) fn connected_seconds(vpp: &VppInfo, now: std::time::SystemTime) -> Option<f64> {
    let since = vpp.connected_since.filter(|_| vpp.connected)?;
    Some(now.duration_since(since).map_or(0.0, |d| d.as_secs_f64()))
}
