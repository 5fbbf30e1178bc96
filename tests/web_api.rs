//! `maglev web` over HTTP against real daemons with loopback backends: the state JSON, the
//! event stream (replay by Last-Event-ID, resync, ping, headers), the admin side (login,
//! session cookie, CSRF, rate limit, an action reaching the daemon) and the listen policy.

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/web.rs"]
mod web_support;

use std::time::Duration;

use daemon_support::{DaemonBuilder, start_settled};
use maglev::proto::{BackendActionRequest, GetBackendRequest};
use serde_json::Value;
use web_support::{SseReader, Web, users_file};

const SECOND: Duration = Duration::from_secs(1);

fn backend<'a>(state: &'a Value, daemon: &str, name: &str) -> Option<&'a Value> {
    state["daemons"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == daemon)?["frontends"]
        .as_array()?
        .iter()
        .flat_map(|f| f["pools"].as_array().into_iter().flatten())
        .flat_map(|p| p["backends"].as_array().into_iter().flatten())
        .find(|b| b["name"] == name)
}

fn act(name: &str) -> BackendActionRequest {
    BackendActionRequest { name: name.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_json_pages_headers_and_an_unreachable_daemon() {
    let (d, _backend, _c) = start_settled(DaemonBuilder::new).await;
    // A second daemon that does not exist: it is marked unreachable, the first is not held up.
    let dead = format!("127.0.0.1:{}", daemon_support::free_port("127.0.0.1"));
    let web = Web::start(
        &[format!("{}=lb1", d.grpc_addr), format!("{dead}=ghost")],
        &[],
    )
    .await;

    let state = web
        .wait_json("/view/api/state", "lb1 settled in the state", |v| {
            let up = backend(v, "lb1", "up")?;
            let down = backend(v, "lb1", "down")?;
            (up["state"] == "up" && down["state"] == "down").then(|| v.clone())
        })
        .await;
    let lb1 = &state["daemons"][0];
    assert_eq!(lb1["reachable"], true, "{lb1}");
    assert_eq!(lb1["version"], maglev::version::VERSION);
    let web_fe = &lb1["frontends"][0];
    assert_eq!(web_fe["name"], "web");
    assert_eq!(web_fe["address"], "192.0.2.1/32");
    assert_eq!(
        (web_fe["protocol"].as_str(), web_fe["port"].as_u64()),
        (Some("tcp"), Some(80))
    );
    assert_eq!(web_fe["active_pool"], "primary");
    assert_eq!(
        web_fe["health"], "degraded",
        "one of two primary backends is down"
    );
    let up = backend(&state, "lb1", "up").expect("up");
    assert_eq!(up["configured_weight"], 80);
    assert_eq!(up["health_top"], 3, "rise 2 + fall 2 - 1");
    assert_eq!(up["last_code"], "L4OK");
    assert!(up["since_ms"].as_i64().is_some_and(|ms| ms > 0), "{up}");
    assert_eq!(up["buckets"], Value::Null, "VPP is off: buckets unknown");
    assert_eq!(
        backend(&state, "lb1", "off").expect("off")["state"],
        "disabled"
    );
    assert!(
        state["last_id"]
            .as_str()
            .is_some_and(|id| id.starts_with(&format!("{}-", state["epoch"])))
    );

    let ghost = &state["daemons"][1];
    assert_eq!(
        (ghost["name"].as_str(), ghost["reachable"].as_bool()),
        (Some("ghost"), Some(false))
    );
    assert!(
        ghost["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "{ghost}"
    );

    let one = web.json("/view/api/state/lb1").await;
    assert_eq!(one["name"], "lb1");
    assert_eq!(
        web.get("/view/api/state/nope").await.map(|r| r.status),
        Some(404)
    );
    let daemons = web.json("/view/api/daemons").await;
    assert_eq!(daemons.as_array().map(Vec::len), Some(2));
    assert_eq!(
        web.json("/view/api/version").await["version"],
        maglev::version::VERSION
    );

    // Pages, redirects, headers, ETags.
    let root = web.get("/").await.expect("/");
    assert_eq!((root.status, root.header("location")), (303, "/view/"));
    let page = web.get("/view/").await.expect("page");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/assets/app.js"));
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
            && !csp.contains("http"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("x-frame-options"), "DENY");
    let js = web.get("/assets/app.js").await.expect("js");
    assert!(js.header("content-type").starts_with("text/javascript"));
    let etag = js.header("etag").to_string();
    assert!(etag.starts_with('"'), "{etag}");
    let again = web
        .request("GET", "/assets/app.js", &[("if-none-match", &etag)], None)
        .await
        .expect("304");
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    assert_eq!(
        web.get("/assets/nope.js").await.map(|r| r.status),
        Some(404)
    );
    assert_eq!(web.get("/healthz").await.map(|r| r.status), Some(200));
    // No --users: the admin side does not exist.
    assert_eq!(web.get("/admin/").await.map(|r| r.status), Some(404));
    assert_eq!(
        web.request("POST", "/admin/api/login", &[], Some("{}"))
            .await
            .map(|r| r.status),
        Some(404)
    );

    // The daemon goes away: marked unreachable (its stream breaks at once).
    drop(d);
    web.wait_json("/view/api/state/lb1", "lb1 unreachable", |v| {
        (v["reachable"] == false).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_replays_by_last_event_id_and_resyncs() {
    let (d, _backend, mut c) = start_settled(DaemonBuilder::new).await;
    let web = Web::start(
        &[format!("{}=lb1", d.grpc_addr)],
        &["--replay-window", "3s"],
    )
    .await;
    web.wait_json("/view/api/state/lb1", "lb1 reachable", |v| {
        (v["reachable"] == true).then_some(())
    })
    .await;

    let resp = web
        .send("GET", "/view/api/events", &[], None)
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(
        h.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    assert_eq!(
        h.get("x-accel-buffering").and_then(|v| v.to_str().ok()),
        Some("no")
    );
    assert!(h.get("content-encoding").is_none_or(|v| v == "identity"));
    let mut s = SseReader::new(resp);
    let hello = s.next(5 * SECOND).await.expect("first frame");
    assert_eq!(hello.retry, "2000", "{hello:?}");
    let hello = if hello.kind.is_empty() {
        s.next(5 * SECOND).await.expect("hello")
    } else {
        hello
    };
    assert_eq!(hello.kind, "hello");
    let (epoch, _) = hello.id.split_once('-').expect("id is <epoch>-<seq>");

    // An operator action on the daemon: a transition in the panel and a new daemon view.
    // They come from two upstream streams (the event watch and the view refresh), so their
    // order is not promised: wait for both.
    c.pause_backend(act("up")).await.expect("pause");
    let is_view = |e: &web_support::Sse| e.kind == "daemon" && e.data.contains("\"paused\"");
    let is_log = |e: &web_support::Sse| {
        e.kind == "log" && e.data.contains("backend up [") && e.data.contains("paused")
    };
    let (first, mut seen) = s.until(10 * SECOND, |e| is_view(e) || is_log(e)).await;
    let first = first.unwrap_or_else(|| panic!("no transition nor daemon view; got {seen:?}"));
    let want_log = !is_log(&first);
    seen.push(first);
    let (second, more) = s
        .until(
            10 * SECOND,
            |e| if want_log { is_log(e) } else { is_view(e) },
        )
        .await;
    seen.extend(more);
    let second = second.unwrap_or_else(|| {
        panic!("the transition log and the paused daemon view both arrive; got {seen:?}")
    });
    seen.push(second);
    let seq = |e: &web_support::Sse| -> u64 {
        e.id.split_once('-')
            .and_then(|(_, s)| s.parse().ok())
            .expect("seq")
    };
    let ids: Vec<u64> = seen.iter().filter(|e| !e.id.is_empty()).map(seq).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let last_id = seen
        .iter()
        .rev()
        .find(|e| !e.id.is_empty())
        .map(|e| e.id.clone())
        .expect("an event with an id");

    // Reconnecting with the hello id replays exactly what came after it.
    let replayed = web
        .send(
            "GET",
            "/view/api/events",
            &[("last-event-id", &hello.id)],
            None,
        )
        .await
        .expect("replay");
    let mut r = SseReader::new(replayed);
    let (got, all) = r.until(5 * SECOND, |e| e.id == last_id).await;
    assert!(
        got.is_some(),
        "the replay reaches the last event seen: {all:?}"
    );
    let replayed_ids: Vec<u64> = all.iter().filter(|e| !e.id.is_empty()).map(seq).collect();
    assert_eq!(
        replayed_ids,
        ids[..ids.len() - 1],
        "the same events, in order"
    );
    assert!(
        all.iter().all(|e| e.kind != "resync" && e.kind != "hello"),
        "{all:?}"
    );

    // An id from another run of the web process: resync.
    let other = format!("{}-1", epoch.parse::<u64>().expect("epoch") - 1);
    let mut o = SseReader::new(
        web.send(
            "GET",
            "/view/api/events",
            &[("last-event-id", &other)],
            None,
        )
        .await
        .expect("other"),
    );
    let (e, _) = o.until(5 * SECOND, |e| !e.kind.is_empty()).await;
    assert_eq!(e.map(|e| e.kind), Some("resync".to_string()));

    // Older than the ring (3 s here): resync, also via the page's ?last= form.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    c.resume_backend(act("up")).await.expect("resume");
    let (_, _) = s
        .until(10 * SECOND, |e| {
            e.kind == "daemon" && !e.data.contains("\"paused\"")
        })
        .await;
    let mut old = SseReader::new(
        web.send(
            "GET",
            &format!("/view/api/events?last={}", hello.id),
            &[],
            None,
        )
        .await
        .expect("old"),
    );
    let (e, _) = old.until(5 * SECOND, |e| !e.kind.is_empty()).await;
    assert_eq!(e.map(|e| e.kind), Some("resync".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_pings_every_15_seconds() {
    let (d, _backend, _c) = start_settled(DaemonBuilder::new).await;
    let web = Web::start(std::slice::from_ref(&d.grpc_addr), &[]).await;
    let mut s = SseReader::new(
        web.send("GET", "/view/api/events", &[], None)
            .await
            .expect("events"),
    );
    let start = std::time::Instant::now();
    let (ping, _) = s.until(20 * SECOND, |e| e.kind == ":").await;
    assert_eq!(ping.map(|p| p.data), Some("ping".to_string()));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(14), "pinged after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_needs_login_csrf_and_actions_reach_the_daemon() {
    let (d, _backend, mut c) = start_settled(DaemonBuilder::new).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let users = users_file(dir.path());
    let users = users.to_str().expect("path");
    let web = Web::start(&[format!("{}=lb1", d.grpc_addr)], &["--users", users]).await;
    web.wait_json("/view/api/state/lb1", "lb1 reachable", |v| {
        (v["reachable"] == true).then_some(())
    })
    .await;
    let action =
        serde_json::json!({"action": "disable", "daemon": "lb1", "backend": "up"}).to_string();

    // Not logged in.
    let page = web.get("/admin/").await.expect("admin page");
    assert_eq!(
        (page.status, page.header("location")),
        (303, "/admin/login")
    );
    assert_eq!(web.get("/admin/login").await.map(|r| r.status), Some(200));
    assert_eq!(
        web.get("/admin/api/session").await.map(|r| r.status),
        Some(401)
    );
    let r = web
        .request("POST", "/admin/api/action", &[], Some(&action))
        .await
        .expect("answer");
    assert_eq!(r.status, 401, "{}", r.body);

    // A wrong password.
    let bad = serde_json::json!({"user": "ops", "password": "nope"}).to_string();
    let r = web
        .request("POST", "/admin/api/login", &[], Some(&bad))
        .await
        .expect("answer");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        web.log().contains("login failed"),
        "failed logins are logged"
    );

    let (cookie, csrf) = web.login().await;
    let session = web
        .request("GET", "/admin/api/session", &[("cookie", &cookie)], None)
        .await
        .expect("session");
    assert_eq!(session.status, 200);
    assert_eq!(
        web.request("GET", "/admin/", &[("cookie", &cookie)], None)
            .await
            .map(|r| r.status),
        Some(200)
    );

    // Wrong or missing CSRF token: 403, and the daemon is untouched.
    for token in ["", "0123", &csrf[..csrf.len() - 1]] {
        let r = web
            .request(
                "POST",
                "/admin/api/action",
                &[("cookie", &cookie), ("x-csrf-token", token)],
                Some(&action),
            )
            .await
            .expect("answer");
        assert_eq!(r.status, 403, "token {token:?}: {}", r.body);
    }
    // A POST from another origin, even with the right cookie and token.
    let r = web
        .request(
            "POST",
            "/admin/api/action",
            &[
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
                ("origin", "http://evil.example"),
            ],
            Some(&action),
        )
        .await
        .expect("answer");
    assert_eq!(r.status, 403, "{}", r.body);
    let b = c
        .get_backend(GetBackendRequest { name: "up".into() })
        .await
        .expect("get")
        .into_inner();
    assert!(b.enabled, "no action ran");

    // Two event streams: an anonymous one and the admin's (by its cookie).
    let mut public = SseReader::new(
        web.send("GET", "/view/api/events", &[], None)
            .await
            .expect("public events"),
    );
    let mut admin = SseReader::new(
        web.send("GET", "/view/api/events", &[("cookie", &cookie)], None)
            .await
            .expect("admin events"),
    );
    for s in [&mut public, &mut admin] {
        let (hello, _) = s.until(5 * SECOND, |e| e.kind == "hello").await;
        assert!(hello.is_some());
    }

    // The real token: the daemon disables the backend, the page's state follows.
    let auth = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = web
        .request("POST", "/admin/api/action", &auth, Some(&action))
        .await
        .expect("answer");
    assert_eq!(r.status, 200, "{}", r.body);
    let reply: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(reply["ok"], true);
    assert!(
        reply["message"]
            .as_str()
            .is_some_and(|m| m.contains("disabled")),
        "{reply}"
    );
    let b = c
        .get_backend(GetBackendRequest { name: "up".into() })
        .await
        .expect("get")
        .into_inner();
    assert!(!b.enabled, "the daemon reports the backend disabled");
    web.wait_json("/view/api/state", "disabled in the state", |v| {
        (backend(v, "lb1", "up")?["state"] == "disabled").then_some(())
    })
    .await;

    // The action's line reaches the admin's event panel, named by user; the anonymous stream
    // gets the transition and the new view, but no action or daemon log lines.
    let (line, _) = admin
        .until(10 * SECOND, |e| {
            e.kind == "log"
                && e.data
                    .contains("ops: disable backend up: backend up is now disabled")
        })
        .await;
    assert!(line.is_some(), "the admin sees the action");
    let (view, seen) = public
        .until(10 * SECOND, |e| {
            e.kind == "daemon" && e.data.contains("\"disabled\"")
        })
        .await;
    assert!(
        view.is_some(),
        "the anonymous stream gets the new view: {seen:?}"
    );
    let (_, more) = public.until(2 * SECOND, |_| false).await;
    let lines: Vec<_> = seen
        .iter()
        .chain(&more)
        .filter(|e| e.kind == "log")
        .collect();
    assert!(
        lines.iter().any(|e| e.data.contains("\"transition\"")),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(
            |e| !e.data.contains("\"kind\":\"action\"") && !e.data.contains("\"kind\":\"log\"")
        ),
        "{lines:?}"
    );

    // The weight editor's action, and the daemon's refusal shown as a clear message.
    let weight = serde_json::json!({"action": "set-weight", "daemon": "lb1", "frontend": "web", "pool": "primary", "backend": "down", "weight": 30}).to_string();
    let r = web
        .request("POST", "/admin/api/action", &auth, Some(&weight))
        .await
        .expect("answer");
    assert_eq!(r.status, 200, "{}", r.body);
    web.wait_json("/view/api/state", "weight 30", |v| {
        (backend(v, "lb1", "down")?["configured_weight"] == 30).then_some(())
    })
    .await;
    let nosuch =
        serde_json::json!({"action": "pause", "daemon": "lb1", "backend": "nosuch"}).to_string();
    let r = web
        .request("POST", "/admin/api/action", &auth, Some(&nosuch))
        .await
        .expect("answer");
    assert_eq!(r.status, 422, "{}", r.body);
    let reply: Value = serde_json::from_str(&r.body).expect("json");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("pause backend nosuch: ") && message.contains("nosuch"),
        "{message}"
    );
    let r = web
        .request(
            "POST",
            "/admin/api/action",
            &auth,
            Some("{\"action\":\"reboot\"}"),
        )
        .await
        .expect("answer");
    assert_eq!(r.status, 400, "{}", r.body);
    // A form post (not JSON) is refused even with the token.
    let r = web
        .request(
            "POST",
            "/admin/api/action",
            &[
                auth[0],
                auth[1],
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            None,
        )
        .await
        .expect("answer");
    assert_eq!(r.status, 415, "{}", r.body);

    // Failed logins are rate-limited per address: after 5, even the right password waits.
    for _ in 0..4 {
        let r = web
            .request("POST", "/admin/api/login", &[], Some(&bad))
            .await
            .expect("answer");
        assert_eq!(r.status, 401);
    }
    let good = serde_json::json!({"user": "ops", "password": web_support::PASSWORD}).to_string();
    let r = web
        .request("POST", "/admin/api/login", &[], Some(&good))
        .await
        .expect("answer");
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.header("retry-after")
            .parse::<u64>()
            .is_ok_and(|s| (1..=60).contains(&s)),
        "{:?}",
        r.headers
    );
    assert!(web.log().contains("too many failures"));

    // Logout ends the session.
    let r = web
        .request("POST", "/admin/api/logout", &auth, Some("{}"))
        .await
        .expect("logout");
    assert_eq!(r.status, 200);
    assert_eq!(
        web.request("GET", "/admin/api/session", &[("cookie", &cookie)], None)
            .await
            .map(|r| r.status),
        Some(401)
    );
}

#[test]
fn plain_http_on_a_public_address_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_maglev"))
        .args(["web", "--listen", "0.0.0.0:0", "--server", "127.0.0.1:1"])
        .env_remove("MAGLEV_WEB_INSECURE")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-cert") && err.contains("--insecure"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_daemon_is_marked_unreachable_and_comes_back() {
    let (d, _backend, _c) = start_settled(DaemonBuilder::new).await;
    let web = Web::start(&[format!("{}=lb1", d.grpc_addr)], &["--timeout", "1s"]).await;
    web.wait_json("/view/api/state/lb1", "lb1 reachable", |v| {
        (v["reachable"] == true).then_some(())
    })
    .await;
    // Stopped, not dead: the connection stays open; the next call (the 5 s health check at
    // the latest) gets no answer within --timeout.
    d.signal(libc::SIGSTOP);
    let stopped = std::time::Instant::now();
    let v = web
        .wait_json(
            "/view/api/state/lb1",
            "lb1 unreachable while stopped",
            |v| (v["reachable"] == false).then(|| v.clone()),
        )
        .await;
    let took = stopped.elapsed();
    d.signal(libc::SIGCONT);
    assert!(
        took <= Duration::from_secs(8),
        "5 s check + 1 s timeout, took {took:?}"
    );
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within 1s")),
        "{v}"
    );
    // Continued: reconnected, with its frontends.
    web.wait_json("/view/api/state/lb1", "lb1 back", |v| {
        (v["reachable"] == true && v["frontends"][0]["name"] == "web").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_end_when_their_clients_go() {
    let (d, _backend, _c) = start_settled(DaemonBuilder::new).await;
    let web = Web::start(std::slice::from_ref(&d.grpc_addr), &[]).await;
    web.wait_json("/view/api/daemons", "reachable", |v| {
        (v[0]["reachable"] == true).then_some(())
    })
    .await;
    let before = web.fd_count();
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut s = SseReader::new(
            web.send("GET", "/view/api/events", &[], None)
                .await
                .expect("events"),
        );
        s.next(5 * SECOND).await.expect("first frame");
        streams.push(s);
    }
    let during = web.fd_count();
    assert!(
        during >= before + 15,
        "20 open streams: {before} fds before, {during} with them"
    );
    drop(streams);
    // Gone within the ping interval at most (a write to a closed socket fails).
    web_support_wait("connections closed", Duration::from_secs(20), || {
        (web.fd_count() <= before + 2).then_some(())
    })
    .await;
}

async fn web_support_wait(what: &str, limit: Duration, mut f: impl FnMut() -> Option<()>) {
    let start = std::time::Instant::now();
    while f().is_none() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_serves_https_with_hsts_and_secure_cookies() {
    let (d, _backend, _c) = start_settled(DaemonBuilder::new).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let cert_pem = cert.cert.pem();
    std::fs::write(dir.path().join("web.pem"), &cert_pem).expect("write cert");
    std::fs::write(dir.path().join("web.key"), cert.signing_key.serialize_pem()).expect("key");
    let users = users_file(dir.path());
    let cert_path = dir.path().join("web.pem");
    let key_path = dir.path().join("web.key");
    let web = Web::spawn(
        std::slice::from_ref(&d.grpc_addr),
        &[
            "--tls-cert",
            cert_path.to_str().expect("path"),
            "--tls-key",
            key_path.to_str().expect("path"),
            "--users",
            users.to_str().expect("path"),
        ],
    );

    let mut roots = rustls::RootCertStore::empty();
    let der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .next()
        .expect("one cert")
        .expect("pem");
    roots.add(der).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let https = |path: &'static str, method: &'static str, body: String| {
        let connector = connector.clone();
        let addr = web.addr;
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").ok()?;
            let tls = connector.connect(name, tcp).await.ok()?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .ok()?;
            tokio::spawn(conn);
            let req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("host", addr.to_string())
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .ok()?;
            let resp = sender.send_request(req).await.ok()?;
            let headers = resp.headers().clone();
            let status = resp.status().as_u16();
            Some((status, headers))
        }
    };
    let start = std::time::Instant::now();
    let (status, headers) = loop {
        if let Some(r) = https("/healthz", "GET", String::new()).await {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no HTTPS:\n{}",
            web.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 200);
    assert!(
        headers
            .get("strict-transport-security")
            .is_some_and(|v| v.to_str().is_ok_and(|s| s.starts_with("max-age="))),
        "{headers:?}"
    );
    let login = serde_json::json!({"user": "ops", "password": web_support::PASSWORD}).to_string();
    let (status, headers) = https("/admin/api/login", "POST", login)
        .await
        .expect("login over TLS");
    assert_eq!(status, 200);
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP on the TLS port gets nothing useful.
    assert!(web.get("/healthz").await.is_none_or(|r| r.status != 200));
}
