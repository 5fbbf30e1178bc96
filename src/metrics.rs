//! The daemon's HTTP side door: `/metrics` (Prometheus text), `/livez`, `/readyz`.
//! Metric values are computed at scrape time from the same state the gRPC API shows, plus
//! the event counters the checker and the VPP side increment as things happen.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::checker::HealthSnapshot;
use crate::checker::stats::DURATION_BUCKETS;
use crate::health::{FrontendState, ResultCode, State};
use crate::vpp::lb::protocol_name;
use crate::vpp::{CountersSnapshot, LbCountersView, VppInfo};

/// What the HTTP side needs from the daemon.
pub trait MetricsSource: Send + Sync + 'static {
    /// Prometheus text exposition (OpenMetrics-compatible text).
    fn render(&self) -> String;
    /// Ready once the config is loaded and, with VPP on, the warmup is over.
    fn ready(&self) -> Result<(), String>;
}

/// Binds `addr` and serves until the returned handle is dropped or aborted.
pub async fn serve(
    addr: SocketAddr,
    source: Arc<dyn MetricsSource>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let source = source.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let source = source.clone();
                    async move { Ok::<_, Infallible>(handle(req, &*source)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc);
                // Scrapers hang up when they like; that is not worth a log line.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn).await;
            });
        }
    });
    Ok((local, task))
}

fn handle(req: Request<Incoming>, source: &dyn MetricsSource) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
        );
    }
    match req.uri().path() {
        "/livez" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match source.ready() {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        "/metrics" => {
            // Prometheus asks for OpenMetrics; anything else (curl, promtool, older
            // scrapers, the Go tool's client_golang default) gets the classic text format.
            let openmetrics = req
                .headers()
                .get_all(hyper::header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("application/openmetrics-text"));
            let (body, content_type) = if openmetrics {
                (
                    source.render(),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
            } else {
                (
                    to_prometheus_text(&source.render()),
                    "text/plain; version=0.0.4; charset=utf-8",
                )
            };
            let mut resp = text(StatusCode::OK, body);
            if let Ok(v) = content_type.parse() {
                resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
            }
            resp
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4): a counter family is
/// named with its `_total` suffix in HELP and TYPE, and there is no `# EOF`. Samples,
/// labels and the other families are the same in both.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line).trim_end());
        out.push('\n');
    }
    out
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = "text/plain; charset=utf-8".parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Prometheus text of the daemon's state, read at scrape time from the checker (the same
/// state the gRPC API shows) and the VPP status.
pub fn render(
    checker: &crate::checker::Checker,
    vpp: &crate::vpp::VppStatus,
    service: Option<&crate::vpp::VppService>,
) -> String {
    let mut snapshot = checker.read(|st| Snapshot::of(st, vpp.get()));
    if let Some(service) = service {
        let lb = service.lb_counters().ok();
        snapshot = snapshot.with_vpp_side(&service.counters(), lb.as_deref());
    }
    snapshot.encode_text()
}

type Labels = Vec<(&'static str, String)>;

/// Everything `/metrics` shows, copied out under the checker's read lock (so the lock is
/// never held while text is written).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
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

impl Snapshot {
    pub fn of(st: &HealthSnapshot, vpp: VppInfo) -> Snapshot {
        let mut s = Snapshot {
            vpp,
            ..Snapshot::default()
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
            for code in ResultCode::ALL {
                let n = e.stats.count_of(code);
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
                    sum: e.stats.duration_sum,
                    count: e.stats.count,
                    buckets: DURATION_BUCKETS
                        .into_iter()
                        .zip(e.stats.duration_buckets)
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

/// Seconds since the current VPP API connection was made; None while disconnected.
fn connected_seconds(vpp: &VppInfo, now: std::time::SystemTime) -> Option<f64> {
    let since = vpp.connected_since.filter(|_| vpp.connected)?;
    Some(now.duration_since(since).map_or(0.0, |d| d.as_secs_f64()))
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

impl Collector for Snapshot {
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
    use crate::checker::CheckerState;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::health::ProbeResult;

    const CONFIG: &str = r#"
[vpp.lb]
ipv4-src-address = "192.0.2.254"

[healthchecks.tcp]
type = "tcp"
port = 80
interval = "1s"
timeout = "500ms"

[backends.a]
address = "192.0.2.10"
healthcheck = "tcp"

[backends.b]
address = "192.0.2.11"
healthcheck = "tcp"
enabled = false

[frontends.vip]
address = "192.0.2.1"
protocol = "tcp"
port = 80
  [[frontends.vip.pools]]
  name = "primary"
  backends = { a = { weight = 60 }, b = {} }
"#;

    fn text() -> String {
        let config = match crate::config::load_str(CONFIG, Path::new("t.toml")) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("{e}"),
        };
        let mut st = CheckerState::new(config, SystemTime::UNIX_EPOCH);
        if let Some(a) = st.backends.get_mut("a") {
            for (code, ms) in [
                (ResultCode::L4Ok, 1),
                (ResultCode::L4Ok, 30),
                (ResultCode::L4Con, 2),
            ] {
                let r = ProbeResult::new(code, "", Duration::from_millis(ms));
                a.stats.observe(&r);
                let _ = a.health.record(r);
            }
            a.transitions.insert((State::Unknown, State::Up), 1);
        }
        let vpp = VppInfo {
            enabled: true,
            connected: true,
            version: "25.06".into(),
            build_date: "2025-06-25T10:00:00".into(),
            pid: 4242,
            connected_since: Some(SystemTime::now() - Duration::from_secs(120)),
            ..VppInfo::default()
        };
        Snapshot::of(&st.full_snapshot(), vpp).encode_text()
    }

    #[test]
    fn classic_text_names_counter_families_with_total_and_has_no_eof() {
        let om = text();
        let classic = to_prometheus_text(&om);
        assert!(!classic.contains("# EOF"), "{classic}");
        assert!(
            has(&classic, "# TYPE maglev_probe_total counter"),
            "{classic}"
        );
        assert!(
            classic
                .lines()
                .any(|l| l.starts_with("# HELP maglev_probe_total Probes run")),
            "{classic}"
        );
        // Gauges and histograms keep their names; every sample line is unchanged.
        assert!(
            has(&classic, "# TYPE maglev_backend_state gauge"),
            "{classic}"
        );
        assert!(
            has(&classic, "# TYPE maglev_probe_duration_seconds histogram"),
            "{classic}"
        );
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(samples(&om), samples(&classic));
    }

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn families_labels_and_values() {
        let t = text();
        assert!(t.ends_with("# EOF\n"), "{t}");
        assert!(
            has(&t, "maglev_backend_state{backend=\"a\",state=\"up\"} 1"),
            "{t}"
        );
        assert!(
            has(&t, "maglev_backend_state{backend=\"a\",state=\"down\"} 0"),
            "{t}"
        );
        assert!(
            has(
                &t,
                "maglev_backend_state{backend=\"b\",state=\"disabled\"} 1"
            ),
            "{t}"
        );
        assert!(has(&t, "maglev_backend_enabled{backend=\"b\"} 0"), "{t}");
        assert!(has(&t, "maglev_backend_enabled{backend=\"a\"} 1"), "{t}");
        assert!(
            has(&t, "maglev_frontend_state{frontend=\"vip\",state=\"up\"} 1"),
            "{t}"
        );
        assert!(
            has(&t, "maglev_frontend_failed_open{frontend=\"vip\"} 0"),
            "{t}"
        );
        assert!(
            has(
                &t,
                "maglev_frontend_pool_backend_weight{frontend=\"vip\",pool=\"primary\",backend=\"a\",kind=\"configured\"} 60"
            ),
            "{t}"
        );
        assert!(
            has(
                &t,
                "maglev_frontend_pool_backend_weight{frontend=\"vip\",pool=\"primary\",backend=\"b\",kind=\"effective\"} 0"
            ),
            "{t}"
        );
        assert!(
            has(
                &t,
                "maglev_probe_total{backend=\"a\",type=\"tcp\",result=\"pass\",code=\"L4OK\"} 2"
            ),
            "{t}"
        );
        assert!(
            has(
                &t,
                "maglev_probe_total{backend=\"a\",type=\"tcp\",result=\"fail\",code=\"L4CON\"} 1"
            ),
            "{t}"
        );
        assert!(
            has(
                &t,
                "maglev_probe_duration_seconds_count{backend=\"a\",type=\"tcp\"} 3"
            ),
            "{t}"
        );
        // 1 ms and 2 ms are <= 2.5 ms; the 30 ms probe is not (the encoder cumulates).
        assert!(
            has(
                &t,
                "maglev_probe_duration_seconds_bucket{le=\"0.0025\",backend=\"a\",type=\"tcp\"} 2"
            ),
            "{t}"
        );
        assert!(
            t.lines()
                .any(|l| l.starts_with("maglev_probe_duration_seconds_bucket{")
                    && l.contains("+Inf")
                    && l.contains("backend=\"a\"")
                    && l.ends_with(" 3")),
            "{t}"
        );
        assert!(
            has(
                &t,
                "maglev_backend_transitions_total{backend=\"a\",from=\"unknown\",to=\"up\"} 1"
            ),
            "{t}"
        );
        assert!(has(&t, "maglev_vpp_connected 1"), "{t}");
        assert!(
            has(
                &t,
                "maglev_vpp_info{version=\"25.06\",build_date=\"2025-06-25T10:00:00\",pid=\"4242\"} 1"
            ),
            "{t}"
        );
        let connected: f64 = t
            .lines()
            .find_map(|l| l.strip_prefix("maglev_vpp_connected_seconds "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no maglev_vpp_connected_seconds in:\n{t}"));
        assert!((120.0..180.0).contains(&connected), "{connected}");
        assert!(t.contains("maglev_build_info{version=\""), "{t}");
    }

    #[test]
    fn vpp_side_families() {
        use crate::vpp::lb::VipKey;
        use crate::vpp::stats::VipCounters;
        use crate::vpp::wire::Prefix;
        use crate::vpp::{CountersSample, VipCountersView};
        let config = match crate::config::load_str(CONFIG, Path::new("t.toml")) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("{e}"),
        };
        let st = CheckerState::new(config, SystemTime::UNIX_EPOCH);
        let api = CountersSnapshot {
            api: vec![("lb_vip_dump", "ok", 3), ("lb_as_set_weight", "error", 1)],
            api_replies: vec![("lb_vip_dump", "ok", 2)],
            lbsync: vec![("all", "applied", 2)],
            writes: vec![("add_as", 3), ("set_weight", 1)],
            scoped_writes: vec![
                ("all", "add_as", 2),
                ("vip", "add_as", 1),
                ("vip", "set_weight", 1),
            ],
        };
        let lb = LbCountersView {
            current: CountersSample {
                at: SystemTime::UNIX_EPOCH,
                uptime: Some(Duration::from_millis(90_500)),
                vips: vec![VipCountersView {
                    key: VipKey::new(Prefix::new("192.0.2.1".parse().unwrap(), 32), 6, 80),
                    frontend: Some("vip".into()),
                    pool_index: 1,
                    route_stats_index: Some(9),
                    counters: VipCounters {
                        vip_index: 1,
                        next: 90,
                        first: 10,
                        untracked: 0,
                        no_server: 2,
                        route_packets: 100,
                        route_bytes: 6400,
                    },
                }],
            },
            previous: None,
        };
        let t = Snapshot::of(&st.full_snapshot(), VppInfo::default())
            .with_vpp_side(&api, Some(&lb))
            .encode_text();
        let vip = "frontend=\"vip\",prefix=\"192.0.2.1/32\",protocol=\"tcp\",port=\"80\"";
        for line in [
            "maglev_vpp_api_total{msg=\"lb_vip_dump\",direction=\"send\",result=\"ok\"} 3"
                .to_string(),
            "maglev_vpp_api_total{msg=\"lb_vip_dump\",direction=\"recv\",result=\"ok\"} 2"
                .to_string(),
            "maglev_vpp_api_total{msg=\"lb_as_set_weight\",direction=\"send\",result=\"error\"} 1"
                .to_string(),
            "maglev_vpp_lbsync_total{scope=\"all\",kind=\"applied\"} 2".to_string(),
            "maglev_vpp_lbsync_total{scope=\"all\",kind=\"as_added\"} 2".to_string(),
            "maglev_vpp_lbsync_total{scope=\"vip\",kind=\"as_added\"} 1".to_string(),
            "maglev_vpp_lbsync_total{scope=\"vip\",kind=\"as_weight_updated\"} 1".to_string(),
            "maglev_vpp_lbsync_total{scope=\"all\",kind=\"vip_removed\"} 0".to_string(),
            format!("maglev_vip_packets_total{{{vip},kind=\"next\"}} 90"),
            format!("maglev_vip_packets_total{{{vip},kind=\"first\"}} 10"),
            format!("maglev_vip_packets_total{{{vip},kind=\"untracked\"}} 0"),
            format!("maglev_vip_packets_total{{{vip},kind=\"no_server\"}} 2"),
            format!("maglev_vip_route_packets_total{{{vip}}} 100"),
            format!("maglev_vip_route_bytes_total{{{vip}}} 6400"),
            "maglev_vpp_uptime_seconds 90.5".to_string(),
            "maglev_vpp_connected 0".to_string(),
        ] {
            assert!(has(&t, &line), "{line} missing in:\n{t}");
        }

        assert!(
            !t.lines()
                .any(|l| l.starts_with("maglev_vpp_connected_seconds ")),
            "no connection, no sample: {t}"
        );
        assert!(
            !t.contains("msg=\"lb_as_set_weight\",direction=\"recv\""),
            "{t}"
        );

        // Without a counters pass there are no VIP or uptime samples.
        let t = Snapshot::of(&st.full_snapshot(), VppInfo::default())
            .with_vpp_side(&api, None)
            .encode_text();
        assert!(!t.contains("maglev_vip_packets_total{"), "{t}");
        assert!(
            !t.lines()
                .any(|l| l.starts_with("maglev_vpp_uptime_seconds ")),
            "{t}"
        );
        assert!(
            has(
                &t,
                "maglev_vpp_lbsync_total{scope=\"all\",kind=\"applied\"} 2"
            ),
            "{t}"
        );
    }
}
