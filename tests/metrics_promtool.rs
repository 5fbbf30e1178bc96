//! `/metrics` of the real daemon (connected to the VPP API double, with a sync written and
//! the stats segment double read) checked by `promtool check metrics`, Prometheus' own
//! linter. Debian's `prometheus` package ships promtool; `.ci/run` installs it. Without it
//! the test says why and passes, except in CI (`CI` set), where it must be there.

#[path = "support/daemon.rs"]
mod daemon_support;
mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use daemon_support::{DaemonBuilder, UpBackend, eventually, free_port, http_get};
use support::scenario::{ConfigText, Timing};
use support::stats_double::StatsDouble;
use support::vpp_double::{ApiMode, VppDouble};

fn promtool() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let ci = std::env::var_os("CI").is_some();
        assert!(
            !ci,
            "promtool is missing in CI (.ci/run installs Debian's prometheus package)"
        );
        eprintln!("skipped: promtool not found (apt-get install prometheus)");
    }
    found
}

/// Runs `promtool check metrics` on `text`; returns (success, its output).
fn check(promtool: &std::path::Path, text: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// GET with an Accept header; returns the Content-Type and the body.
async fn get_accepting(url: &str, accept: &str) -> Option<(String, String)> {
    let uri: hyper::Uri = url.parse().ok()?;
    let authority = uri.authority()?.to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.ok()?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(conn);
    let req = hyper::Request::get(uri.path())
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, accept)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .ok()?;
    let resp = sender.send_request(req).await.ok()?;
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .to_string();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .ok()?
        .to_bytes();
    Some((content_type, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_daemons_metrics() {
    let Some(promtool) = promtool() else { return };

    // A deliberately bad exposition must fail, or this test could not fail either.
    let (ok, said) = check(&promtool, "# TYPE x counter\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n");
    assert!(!ok, "promtool accepted a broken exposition: {said}");

    let double = VppDouble::start(ApiMode::V1_2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let stats = StatsDouble::start(dir.path()).expect("stats double");
    let up = UpBackend::start_on("127.0.0.2", free_port("127.0.0.2"));
    let config = ConfigText::new()
        .vpp_lb("60s", "0s", "3s")
        .check("tcp", "tcp", up.port(), Timing::QUICK)
        .backend("up", "127.0.0.2", "tcp")
        .frontend("web", "192.0.2.1", "tcp", 80)
        .pool("web", "primary", "up = {}")
        .build();
    let d = DaemonBuilder::new(config)
        .vpp(double.socket_path(), Some(stats.socket_path()))
        .env("MAGLEV_STATS_INTERVAL_MS", "200")
        .start()
        .await;

    // Wait until every family has samples: a sync wrote the VIP, probes ran.
    let body = eventually("a sync and probes in /metrics", || async {
        let (status, body) = http_get(&d.metrics_url("/metrics")).await?;
        let synced = body.lines().any(|l| {
            l.starts_with("maglev_vpp_lbsync_total{")
                && l.contains("kind=\"vip_added\"")
                && !l.ends_with(" 0")
        });
        (status == 200
            && synced
            && body.contains("maglev_probe_total{")
            && body.contains("maglev_vpp_connected_seconds "))
        .then_some(body)
    })
    .await;

    let (ok, said) = check(&promtool, &body);
    assert!(ok, "promtool check metrics failed:\n{said}\n---\n{body}");
    eprintln!(
        "promtool check metrics: ok ({} lines)",
        body.lines().count()
    );

    // What Prometheus itself asks for: OpenMetrics, same samples, `# EOF` at the end.
    let scrape = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (content_type, om) = get_accepting(&d.metrics_url("/metrics"), scrape)
        .await
        .expect("OpenMetrics scrape");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE maglev_probe counter"), "{om}");
    let (content_type, _) = get_accepting(&d.metrics_url("/metrics"), "text/plain")
        .await
        .expect("text scrape");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
}
