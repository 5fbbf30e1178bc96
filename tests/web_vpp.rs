//! `maglev web` over a daemon that programs the VPP double: the VPP badge (version, lb API
//! generation), bucket counts from GetVPPLBState that follow a transition, and the admin's
//! "sync VPP" action answered with the daemon's reply.

#[path = "support/daemon.rs"]
mod daemon_support;
mod support;
#[path = "support/web.rs"]
mod web_support;

use daemon_support::{DaemonBuilder, UpBackend, free_port};
use maglev::proto::BackendActionRequest;
use serde_json::Value;
use support::scenario::{ConfigText, Timing};
use support::vpp_double::{ApiMode, VppDouble};
use web_support::{Web, users_file};

fn row<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["frontends"][0]["pools"][0]["backends"]
        .as_array()?
        .iter()
        .find(|b| b["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_badge_buckets_and_sync() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let up = UpBackend::start_on("127.0.0.2", free_port("127.0.0.2"));
    let config = ConfigText::new()
        .vpp_lb("60s", "0s", "3s")
        .check("tcp", "tcp", up.port(), Timing::QUICK)
        .backend("up", "127.0.0.2", "tcp")
        .backend("also", "127.0.0.5", "tcp")
        .frontend("web", "192.0.2.1", "tcp", 80)
        .pool("web", "primary", "up = {}, also = {}")
        .build();
    let d = DaemonBuilder::with_vpp(config, double.socket_path())
        .start()
        .await;
    let mut c = d.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let users = users_file(dir.path());
    let web = Web::start(
        &[format!("{}=lb1", d.grpc_addr)],
        &["--users", users.to_str().expect("path")],
    )
    .await;

    // The badge and the buckets: `up` holds every bucket of the VIP once it is programmed.
    let v = web
        .wait_json("/view/api/state/lb1", "buckets of up", |v| {
            let b = row(v, "up")?;
            (b["state"] == "up" && b["buckets"].as_u64()? > 0).then(|| v.clone())
        })
        .await;
    assert_eq!(v["vpp"]["connected"], true, "{v}");
    assert_eq!(v["vpp"]["api_generation"], "1.2.0");
    assert_eq!(v["vpp"]["legacy"], false);
    assert!(
        v["vpp"]["version"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    let total = row(&v, "up")
        .and_then(|b| b["buckets"].as_u64())
        .unwrap_or(0);
    assert_eq!(
        row(&v, "also").map(|b| &b["buckets"]),
        Some(&Value::from(0)),
        "{v}"
    );

    // A transition (pause) is followed by a fresh lb-state fetch: up's buckets go.
    c.pause_backend(BackendActionRequest { name: "up".into() })
        .await
        .expect("pause");
    web.wait_json(
        "/view/api/state/lb1",
        "up's buckets gone after pause",
        |v| {
            let b = row(v, "up")?;
            (b["state"] == "paused" && b["buckets"].as_u64()? < total).then_some(())
        },
    )
    .await;

    // Sync from the admin side: the daemon's reply comes back as the message.
    let (cookie, csrf) = web.login().await;
    let auth = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let sync = serde_json::json!({"action": "sync", "daemon": "lb1"}).to_string();
    let r = web
        .request("POST", "/admin/api/action", &auth, Some(&sync))
        .await
        .expect("answer");
    assert_eq!(r.status, 200, "{}", r.body);
    let reply: Value = serde_json::from_str(&r.body).expect("json");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("synced all frontends: "), "{message}");
    let one =
        serde_json::json!({"action": "sync", "daemon": "lb1", "frontend": "nosuch"}).to_string();
    let r = web
        .request("POST", "/admin/api/action", &auth, Some(&one))
        .await
        .expect("answer");
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("nosuch"), "{}", r.body);
}

/// Seconds since midnight of a log line's RFC 3339 timestamp (`...T19:00:10.585660Z ...`).
fn log_time(line: &str) -> Option<f64> {
    let t = line
        .split_whitespace()
        .next()?
        .split_once('T')?
        .1
        .trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_state_fetches_are_at_least_a_second_apart() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let up = UpBackend::start_on("127.0.0.2", free_port("127.0.0.2"));
    let config = ConfigText::new()
        .vpp_lb("60s", "0s", "3s")
        .check("tcp", "tcp", up.port(), Timing::QUICK)
        .backend("up", "127.0.0.2", "tcp")
        .frontend("web", "192.0.2.1", "tcp", 80)
        .pool("web", "primary", "up = {}")
        .build();
    let d = DaemonBuilder::with_vpp(config, double.socket_path())
        .start()
        .await;
    let mut c = d.client().await;
    let web = Web::start(std::slice::from_ref(&d.grpc_addr), &[]).await;
    web.wait_json("/view/api/daemons", "reachable", |v| {
        (v[0]["reachable"] == true).then_some(())
    })
    .await;
    let fetches = |log: &str| -> Vec<f64> {
        log.lines()
            .filter(|l| l.contains("fetched VPP lb state"))
            .filter_map(log_time)
            .collect()
    };
    let before = fetches(&web.log()).len();
    // A burst of 20 transitions within ~2 s, each a trigger.
    for i in 0..20 {
        let req = BackendActionRequest { name: "up".into() };
        if i % 2 == 0 {
            c.pause_backend(req).await.expect("pause");
        } else {
            c.resume_backend(req).await.expect("resume");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let times = fetches(&web.log());
    let burst = &times[before..];
    eprintln!("20 triggers in ~2 s -> {} lb-state fetches", burst.len());
    assert!(
        burst.len() >= 2,
        "the transitions triggered fetches: {burst:?}"
    );
    assert!(
        burst.len() <= 8,
        "debounced: {} fetches for 20 triggers",
        burst.len()
    );
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= 0.99,
            "fetches {:.3} s apart: {times:?}",
            w[1] - w[0]
        );
    }
}
