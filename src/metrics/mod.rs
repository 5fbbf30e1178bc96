//! The daemon's HTTP side door: `/metrics` (Prometheus text), `/livez`, `/readyz`.
//! Metric values are computed at scrape time from the same state the gRPC API shows, plus
//! the event counters the checker and the VPP side increment as things happen.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

mod families;
#[cfg(test)]
mod oracle;
mod text;

pub use families::Snapshot;
pub use text::{Format, Sink};

// What the tests below name through `use super::*`.
#[cfg(test)]
use crate::health::{ResultCode, State};
#[cfg(test)]
use crate::vpp::{CountersSnapshot, LbCountersView, VppInfo};

/// Bytes of one piece of a streamed `/metrics` body: whole lines, 64 KiB or a line more.
/// Below glibc's mmap threshold (128 KiB, `main.rs`), so the pieces come from and go back
/// to the arena instead of being mapped and unmapped one by one.
pub const CHUNK: usize = 64 * 1024;

/// Pieces waiting between the render and the connection (hyper queues a few more itself).
const PIECES_IN_FLIGHT: usize = 2;

/// What the HTTP side needs from the daemon.
pub trait MetricsSource: Send + Sync + 'static {
    /// The exposition in `format`, written directly (no conversion between formats) and
    /// handed to `sink` in pieces of about `chunk` bytes; stops feeding the sink once it
    /// returns false.
    fn render(&self, format: Format, chunk: usize, sink: &mut Sink<'_>);
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
                    async move { Ok::<_, Infallible>(handle(req, &source)) }
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

/// A `/metrics` body as it is rendered, a piece at a time.
type Streamed =
    StreamBody<tokio_stream::wrappers::ReceiverStream<Result<Frame<Bytes>, Infallible>>>;

/// A fixed answer, or the streamed exposition.
type Body = Either<Full<Bytes>, Streamed>;

/// The exposition in `format`, rendered on a blocking thread into a bounded channel: at
/// most `PIECES_IN_FLIGHT` pieces wait for the connection, so a render holds a few
/// pieces rather than the whole text, and a slow or vanished scraper stops the render
/// (the send fails) instead of letting it buffer.
fn stream(source: Arc<dyn MetricsSource>, format: Format) -> Streamed {
    let (tx, rx) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        source.render(format, CHUNK, &mut |piece: String| {
            tx.blocking_send(Ok(Frame::data(Bytes::from(piece))))
                .is_ok()
        });
    });
    StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn handle(req: Request<Incoming>, source: &Arc<dyn MetricsSource>) -> Response<Body> {
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
            let (format, content_type) = if openmetrics {
                (
                    Format::OpenMetrics,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
            } else {
                (Format::Classic, "text/plain; version=0.0.4; charset=utf-8")
            };
            // HEAD gets the headers only: no render for a body nobody reads.
            let mut resp = if req.method() == Method::HEAD {
                text(StatusCode::OK, String::new())
            } else {
                Response::new(Either::Right(stream(source.clone(), format)))
            };
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
/// labels and the other families are the same in both. The tests' reference for the
/// classic writer.
#[cfg(test)]
pub(crate) fn to_prometheus_text(openmetrics: &str) -> String {
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

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    if let Ok(v) = "text/plain; charset=utf-8".parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// The exposition of the daemon's state in `format`, read at scrape time from the
/// checker's published snapshot (the same state the gRPC API shows) and the VPP status,
/// handed to `sink` in pieces of about `chunk` bytes.
pub fn render(
    checker: &crate::checker::Checker,
    vpp: &crate::vpp::VppStatus,
    service: Option<&crate::vpp::VppService>,
    format: Format,
    chunk: usize,
    sink: &mut Sink<'_>,
) {
    let health = checker.snapshot();
    let mut snapshot = Snapshot::of(&health, vpp.get());
    let counters;
    let lb;
    if let Some(service) = service {
        counters = service.counters();
        lb = service.lb_counters().ok();
        snapshot = snapshot.with_vpp_side(&counters, lb.as_deref());
    }
    snapshot.stream(format, chunk, sink);
}

#[cfg(test)]
mod render_mem;
#[cfg(test)]
mod serve_tests;

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
