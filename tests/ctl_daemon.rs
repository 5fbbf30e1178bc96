//! `maglev ctl` one-shot against the real daemon (TCP and Unix socket), text and `--json`:
//! every show command, backend actions, weights, config check/reload, `watch events num N`,
//! VPP with VPP off, and the exit codes 0 (ok), 1 (refused), 2 (usage), 3 (unreachable).

#[path = "support/daemon.rs"]
mod daemon_support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon_support::{Daemon, DaemonBuilder, Grpc, UpBackend, basic_config, start_settled};
use serde_json::Value;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command expecting `code`; returns stdout.
fn run(d: &Daemon, code: i32, words: &[&str]) -> String {
    let o = d.ctl(words);
    assert_eq!(
        o.status.code(),
        Some(code),
        "ctl {words:?}\nstdout: {}\nstderr: {}",
        text(&o),
        err(&o)
    );
    text(&o)
}

fn json(d: &Daemon, words: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(words);
    let out = run(d, 0, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{words:?}: not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_commands_text_and_json() {
    let (d, _backend, _) = start_settled(DaemonBuilder::new).await;

    let v = run(&d, 0, &["show", "version"]);
    assert!(
        v.contains(&format!("{} (commit ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let v = json(&d, &["show", "version"]);
    assert_eq!(v["daemon"]["version"], env!("CARGO_PKG_VERSION"), "{v}");

    let f = run(&d, 0, &["show", "frontends"]);
    assert!(
        f.starts_with("NAME") && f.contains("web") && f.contains("primary"),
        "{f}"
    );
    let f = run(&d, 0, &["sh", "fr", "web"]);
    assert!(f.contains("pool primary (active)"), "{f}");
    assert!(f.contains("192.0.2.1/32 tcp port 80"), "{f}");
    let f = json(&d, &["show", "frontends"]);
    assert_eq!(f["frontends"][0]["name"], "web", "{f}");
    let f = json(&d, &["show", "frontends", "web"]);
    assert_eq!(f["active_pool"], "primary", "{f}");

    let b = run(&d, 0, &["show", "backends"]);
    for line in ["down", "off", "up"] {
        assert!(b.lines().any(|l| l.starts_with(line)), "{b}");
    }
    assert!(b.contains("L4CON") && b.contains("L4OK"), "{b}");
    let b = run(&d, 0, &["show", "backends", "up"]);
    assert!(b.contains("127.0.0.2"), "{b}");
    let b = json(&d, &["show", "backends"]);
    assert_eq!(b["backends"].as_array().map(Vec::len), Some(3), "{b}");
    let b = json(&d, &["show", "backends", "down"]);
    assert_eq!(
        (b["state"].as_str(), b["last_result"]["code"].as_str()),
        (Some("down"), Some("L4CON")),
        "{b}"
    );

    let h = run(&d, 0, &["show", "healthchecks"]);
    assert!(h.contains("tcp"), "{h}");
    let h = run(&d, 0, &["show", "healthchecks", "tcp"]);
    assert!(h.contains("200ms"), "{h}");
    let h = json(&d, &["show", "healthchecks", "tcp"]);
    assert_eq!(
        h["backends"],
        serde_json::json!(["down", "off", "up"]),
        "{h}"
    );
    let h = json(&d, &["show", "healthchecks"]);
    assert_eq!(h["healthchecks"][0]["name"], "tcp", "{h}");

    // Unknown names are refusals: exit 1, the daemon's message only.
    let o = d.ctl(&["show", "backends", "ghost"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err(&o),
        "error: unknown backend \"ghost\" (known: down, off, up)\n"
    );

    // VPP is off: refused (exit 1), not unreachable.
    for words in [
        &["show", "vpp", "info"][..],
        &["show", "vpp", "lb", "state"][..],
        &["show", "vpp", "lb", "counters"][..],
        &["sync", "vpp", "lb", "state"][..],
    ] {
        let o = d.ctl(words);
        assert_eq!(o.status.code(), Some(1), "{words:?}");
        assert_eq!(
            err(&o),
            "error: VPP is disabled (--vpp-api-addr is empty)\n",
            "{words:?}"
        );
    }

    // Usage error against a live daemon: 2.
    let o = d.ctl(&["show", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_commands_and_config() {
    let (d, backend, _) = start_settled(DaemonBuilder::new).await;

    let out = run(&d, 0, &["set", "backend", "up", "pause"]);
    assert!(out.contains("paused"), "{out}");
    let out = json(&d, &["set", "backend", "up", "resume"]);
    assert!(
        matches!(out["state"].as_str(), Some("unknown" | "up")),
        "{out}"
    );
    let out = run(&d, 0, &["set", "backend", "down", "disable"]);
    assert!(out.contains("disabled"), "{out}");
    let o = d.ctl(&["set", "backend", "down", "pause"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("disabled; enable it first"), "{}", err(&o));
    let out = json(&d, &["set", "backend", "down", "enable"]);
    // Replied under the action's own lock: not yet probed.
    assert_eq!(out["state"], "unknown", "{out}");

    let out = run(
        &d,
        0,
        &[
            "set", "frontend", "web", "pool", "primary", "backend", "up", "weight", "30",
        ],
    );
    assert!(
        out.contains("30*") && out.contains("runtime weight override"),
        "{out}"
    );
    let o = d.ctl(&[
        "set", "frontend", "web", "pool", "nope", "backend", "up", "weight", "30",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("unknown pool \"nope\""), "{}", err(&o));

    let out = run(&d, 0, &["config", "check"]);
    assert!(
        out.contains("config ok") && out.contains("no changes"),
        "{out}"
    );
    let grown = basic_config(backend.port()).replace(
        "[frontends.web]",
        "[backends.extra]\naddress = \"127.0.0.5\"\nhealthcheck = \"tcp\"\n\n[frontends.web]",
    );
    d.write_config(&grown);
    let out = json(&d, &["config", "check"]);
    assert_eq!(out["ok"], true);
    assert_eq!(
        out["diff"]["backends_added"],
        serde_json::json!(["extra"]),
        "{out}"
    );
    let out = run(&d, 0, &["config", "reload"]);
    assert!(
        out.contains("config reloaded") && out.contains("extra"),
        "{out}"
    );

    d.write_config("[backends.broken\n");
    let out = run(&d, 1, &["config", "check"]);
    assert!(
        out.contains("config invalid") && out.contains("parse error"),
        "{out}"
    );
    assert!(out.contains(&format!("{}:1:", d.config.display())), "{out}");
    let out = run(&d, 1, &["--json", "config", "reload"]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        (v["ok"].as_bool(), v["applied"].as_bool()),
        (Some(false), Some(false)),
        "{v}"
    );
    let b = json(&d, &["show", "backends"]);
    assert_eq!(
        b["backends"].as_array().map(Vec::len),
        Some(4),
        "extra still runs: {b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_num_n_over_a_unix_socket_and_exit_3_when_gone() {
    let backend = UpBackend::start("127.0.0.2");
    let mut d = DaemonBuilder::new(basic_config(backend.port()))
        .grpc(Grpc::Unix)
        .start()
        .await;
    assert!(d.grpc_addr.starts_with("unix:"));
    let out = run(&d, 0, &["show", "version"]);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));

    // Backend events only, two of them: caused by pausing and resuming until ctl is done.
    let mut watch = Command::new(assert_cmd::cargo::cargo_bin("maglev"))
        .args([
            "ctl",
            "--server",
            &d.grpc_addr,
            "--json",
            "watch",
            "events",
            "num",
            "2",
            "backend",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ctl watch");
    let mut c = d.client().await;
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = watch.try_wait() {
            break s;
        }
        assert!(
            start.elapsed() < daemon_support::DEADLINE,
            "watch never ended"
        );
        let req = |n: &str| maglev::proto::BackendActionRequest { name: n.into() };
        let _ = c.pause_backend(req("up")).await;
        let _ = c.resume_backend(req("up")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let output = watch.wait_with_output().expect("ctl output");
    assert!(
        status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["type"], "backend", "{l}");
        assert_eq!(l["backend"]["backend"], "up", "{l}");
    }

    // Text watch with the default selection: the replay first, then one event.
    let mut watch = Command::new(assert_cmd::cargo::cargo_bin("maglev"))
        .args([
            "ctl",
            "--server",
            &d.grpc_addr,
            "watch",
            "events",
            "num",
            "1",
            "frontend",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ctl watch");
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = watch.try_wait() {
            break;
        }
        assert!(
            start.elapsed() < daemon_support::DEADLINE,
            "watch never ended"
        );
        let req = |n: &str| maglev::proto::BackendActionRequest { name: n.into() };
        let _ = c.pause_backend(req("up")).await;
        let _ = c.resume_backend(req("up")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = watch.wait_with_output().expect("ctl output");
    let out = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("frontend web:") && lines[0].contains("(current)"),
        "{out}"
    );
    assert!(
        lines[1].contains("frontend web:") && lines[1].contains("->"),
        "{out}"
    );

    // The daemon gone: exit 3.
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(daemon_support::DEADLINE).is_some());
    let o = d.ctl(&["show", "version"]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(
        err(&o).starts_with("error: cannot reach maglev daemon at unix:"),
        "{}",
        err(&o)
    );
}
