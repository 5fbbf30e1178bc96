//! The real daemon's HTTP side: `/livez`, `/readyz` (ready with VPP off once started), and
//! `/metrics` after some transitions, parsed line by line (names, labels, values).

#[path = "support/daemon.rs"]
mod daemon_support;

use std::collections::BTreeMap;

use daemon_support::{DaemonBuilder, UpBackend, basic_config, eventually, http_get};
use maglev::proto::{BackendActionRequest, SetFrontendPoolBackendWeightRequest};

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition (label values here never contain `,` `"` or `}`).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("k=v");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().expect("number"),
            };
            Sample {
                name: name.to_string(),
                labels,
                value,
            }
        })
        .collect()
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livez_readyz_and_metrics_after_transitions() {
    let backend = UpBackend::start("127.0.0.2");
    let d = DaemonBuilder::new(basic_config(backend.port()))
        .start()
        .await;

    let live = http_get(&d.metrics_url("/livez")).await;
    assert_eq!(live, Some((200, "ok\n".to_string())));
    let ready = eventually("readyz", || async {
        http_get(&d.metrics_url("/readyz"))
            .await
            .filter(|(code, _)| *code == 200)
    })
    .await;
    assert_eq!(ready.1, "ready\n");
    assert_eq!(
        http_get(&d.metrics_url("/nope")).await.map(|r| r.0),
        Some(404)
    );

    // Settle, then pause `up` and override a weight.
    let metrics = || async {
        let (code, body) = http_get(&d.metrics_url("/metrics")).await?;
        (code == 200).then(|| parse(&body))
    };
    eventually("up is up and down is down", || async {
        let m = metrics().await?;
        let up = value(
            &m,
            "maglev_backend_state",
            &[("backend", "up"), ("state", "up")],
        );
        let down = value(
            &m,
            "maglev_backend_state",
            &[("backend", "down"), ("state", "down")],
        );
        (up == Some(1.0) && down == Some(1.0)).then_some(())
    })
    .await;
    let mut c = d.client().await;
    c.pause_backend(BackendActionRequest { name: "up".into() })
        .await
        .expect("pause");
    c.set_frontend_pool_backend_weight(SetFrontendPoolBackendWeightRequest {
        frontend: "web".into(),
        pool: "primary".into(),
        backend: "up".into(),
        weight: 40,
    })
    .await
    .expect("weight");

    let m = metrics().await.expect("metrics");
    let (code, body) = http_get(&d.metrics_url("/metrics")).await.expect("metrics");
    assert_eq!(code, 200);
    // Without an OpenMetrics Accept header: the classic text format (no `# EOF`).
    assert!(!body.contains("# EOF"), "{body}");
    assert!(body.contains("# TYPE maglev_probe_total counter"), "{body}");

    // Backend state: one 1 per backend, across all six states.
    for b in ["up", "down", "off"] {
        let ones: f64 = m
            .iter()
            .filter(|s| s.name == "maglev_backend_state" && s.labels["backend"] == b)
            .map(|s| s.value)
            .sum();
        let count = m
            .iter()
            .filter(|s| s.name == "maglev_backend_state" && s.labels["backend"] == b)
            .count();
        assert_eq!((ones, count), (1.0, 6), "backend {b}");
    }
    let state =
        |b: &str, s: &str| value(&m, "maglev_backend_state", &[("backend", b), ("state", s)]);
    assert_eq!(state("up", "paused"), Some(1.0));
    assert_eq!(state("down", "down"), Some(1.0));
    assert_eq!(state("off", "disabled"), Some(1.0));
    assert_eq!(
        value(&m, "maglev_backend_enabled", &[("backend", "off")]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "maglev_backend_enabled", &[("backend", "up")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "maglev_backend_health", &[("backend", "down")]),
        Some(0.0)
    );

    // Paused `up` left no backend taking traffic: the frontend is down.
    let fe = |s: &str| {
        value(
            &m,
            "maglev_frontend_state",
            &[("frontend", "web"), ("state", s)],
        )
    };
    assert_eq!(
        (fe("down"), fe("up"), fe("unknown")),
        (Some(1.0), Some(0.0), Some(0.0))
    );
    let weight = |b: &str, kind: &str| {
        value(
            &m,
            "maglev_frontend_pool_backend_weight",
            &[
                ("frontend", "web"),
                ("pool", "primary"),
                ("backend", b),
                ("kind", kind),
            ],
        )
    };
    assert_eq!(weight("up", "configured"), Some(40.0), "the override");
    assert_eq!(weight("up", "effective"), Some(0.0), "paused");
    assert_eq!(weight("down", "configured"), Some(100.0));

    // Probes and their durations.
    let passes = value(
        &m,
        "maglev_probe_total",
        &[
            ("backend", "up"),
            ("type", "tcp"),
            ("result", "pass"),
            ("code", "L4OK"),
        ],
    );
    assert!(passes.is_some_and(|n| n >= 1.0), "{passes:?}");
    let fails = value(
        &m,
        "maglev_probe_total",
        &[
            ("backend", "down"),
            ("type", "tcp"),
            ("result", "fail"),
            ("code", "L4CON"),
        ],
    );
    assert!(fails.is_some_and(|n| n >= 1.0), "{fails:?}");
    let count = value(
        &m,
        "maglev_probe_duration_seconds_count",
        &[("backend", "down"), ("type", "tcp")],
    );
    let inf = value(
        &m,
        "maglev_probe_duration_seconds_bucket",
        &[("backend", "down"), ("type", "tcp"), ("le", "+Inf")],
    );
    assert!(count.is_some_and(|c| c >= 1.0));
    assert_eq!(count, inf, "+Inf bucket holds every probe");
    assert!(
        value(
            &m,
            "maglev_probe_duration_seconds_count",
            &[("backend", "off"), ("type", "tcp")]
        ) == Some(0.0)
    );

    // Transitions.
    let tr = |b: &str, from: &str, to: &str| {
        value(
            &m,
            "maglev_backend_transitions_total",
            &[("backend", b), ("from", from), ("to", to)],
        )
    };
    assert_eq!(tr("up", "unknown", "up"), Some(1.0));
    assert_eq!(tr("up", "up", "paused"), Some(1.0));
    assert_eq!(tr("down", "unknown", "down"), Some(1.0));

    // VPP is off; the build is described.
    assert_eq!(value(&m, "maglev_vpp_connected", &[]), Some(0.0));
    assert!(!m.iter().any(|s| s.name == "maglev_vpp_info"));
    let build = m
        .iter()
        .find(|s| s.name == "maglev_build_info")
        .expect("build info");
    assert_eq!(build.labels["version"], env!("CARGO_PKG_VERSION"));
    assert!(!build.labels["commit"].is_empty());
    assert_eq!(build.value, 1.0);
}
