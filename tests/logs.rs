//! The daemon's stderr as an operator meets it: readable and coloured on a terminal (a real
//! pty), plain with NO_COLOR, JSON when not a terminal or with `--log-format json`; and the
//! DEBUG records per VPP API call and per probe, which the default level leaves out.

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/pty.rs"]
mod pty;
mod support;

use std::fs::File;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use daemon_support::{DaemonBuilder, UpBackend, free_port};
use maglev::proto::{LogLevel, WatchEventsRequest, event};
use serde_json::Value;
use support::scenario::{ConfigText, Timing};
use support::vpp_double::{ApiMode, VppDouble};
use tokio_stream::StreamExt;

/// A daemon that logs its start and then refuses a missing config: a few lines, then exit.
fn short_run(extra: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maglev"));
    cmd.args(["daemon", "--config", "/nonexistent/maglev.toml"])
        .args(["--metrics-addr", "", "--vpp-api-addr", ""])
        .args(extra)
        .env_remove("NO_COLOR")
        .env_remove("MAGLEV_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cmd` with stderr on a pty; returns what the terminal received.
fn stderr_on_tty(mut cmd: Command) -> Option<String> {
    let (master, slave) = match pty::open_pty(24, 200) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skipped: no pseudo-terminal ({e})");
            return None;
        }
    };
    let mut child = cmd.stderr(slave).spawn().expect("spawn maglev");
    // The Command holds our copy of the slave: drop it, or the read below never ends.
    drop(cmd);
    let mut master = File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO once the child (the last holder of the slave) is gone.
            Err(_) => break,
        }
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "a missing config fails the start");
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn stderr_on_pipe(mut cmd: Command) -> String {
    let out = cmd.stderr(Stdio::piped()).output().expect("run maglev");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn log_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("maglev daemon starting"))
        .collect()
}

#[test]
fn a_terminal_gets_coloured_readable_lines() {
    let Some(out) = stderr_on_tty(short_run(&[], &[])) else {
        return;
    };
    assert!(out.contains("\u{1b}["), "colour escapes expected:\n{out}");
    let starting = log_lines(&out);
    assert!(!starting.is_empty(), "{out}");
    assert!(
        starting.iter().all(|l| !l.trim_start().starts_with('{')),
        "{out}"
    );
    assert!(out.contains("INFO"), "{out}");
}

#[test]
fn no_color_keeps_readable_lines_without_escapes() {
    let Some(out) = stderr_on_tty(short_run(&[], &[("NO_COLOR", "1")])) else {
        return;
    };
    assert!(
        !out.contains('\u{1b}'),
        "no escapes with NO_COLOR:\n{out:?}"
    );
    assert!(out.contains("INFO"), "{out}");
    assert!(out.contains("maglev daemon starting"), "{out}");
    assert!(!out.contains("\"level\""), "text, not JSON:\n{out}");
}

#[test]
fn json_on_a_terminal_when_asked_and_on_a_pipe_by_default() {
    if let Some(out) = stderr_on_tty(short_run(&["--log-format", "json"], &[])) {
        let starting = log_lines(&out);
        assert!(!starting.is_empty(), "{out}");
        for l in starting {
            let v: Value = serde_json::from_str(l.trim()).unwrap_or_else(|e| panic!("{e}: {l:?}"));
            assert!(v["level"].is_string(), "{v}");
        }
    }
    let out = stderr_on_pipe(short_run(&[], &[]));
    let starting = log_lines(&out);
    assert!(!starting.is_empty(), "{out}");
    for l in starting {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
        assert_eq!(v["level"], "INFO", "{v}");
    }
    // --log-format text on a pipe: readable, and no escapes (not a terminal).
    let out = stderr_on_pipe(short_run(&["--log-format", "text"], &[]));
    assert!(out.contains("INFO"), "{out}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(!out.contains("\"level\""), "{out}");
}

fn records(log: &str, message: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

fn vpp_config(port: u16) -> String {
    ConfigText::new()
        .vpp_lb("60s", "0s", "1s")
        .check("tcp", "tcp", port, Timing::QUICK)
        .backend("up", "127.0.0.2", "tcp")
        .frontend("web", "192.0.2.1", "tcp", 80)
        .pool("web", "primary", "up = {}")
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_records_per_vpp_call_and_per_probe_only_at_debug() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let up = UpBackend::start_on("127.0.0.2", free_port("127.0.0.2"));
    let d = DaemonBuilder::new(vpp_config(up.port()))
        .vpp_api(double.socket_path())
        .log_level("debug")
        .start()
        .await;
    let limit = Duration::from_secs(15);
    d.wait_for("an lb write and a probe at debug", limit, || {
        let log = d.log();
        let wrote = records(&log, "VPP API call")
            .iter()
            .any(|r| r["msg"] == "lb_add_del_vip_v2");
        (wrote && !records(&log, "probe").is_empty()).then_some(())
    })
    .await;
    let log = d.log();
    let calls = records(&log, "VPP API call");
    let add = calls
        .iter()
        .find(|r| r["msg"] == "lb_add_del_vip_v2")
        .expect("the VIP add");
    assert_eq!(add["result"], "ok", "{add}");
    assert!(add["context"].as_u64().is_some_and(|c| c > 0), "{add}");
    assert!(
        add["duration"].as_str().is_some_and(|s| !s.is_empty()),
        "{add}"
    );
    let dump = calls
        .iter()
        .find(|r| r["msg"] == "lb_vip_dump")
        .expect("a dump");
    assert!(
        dump["result"]
            .as_str()
            .is_some_and(|s| s.starts_with("ok (")),
        "{dump}"
    );
    let probe = records(&log, "probe");
    let p = probe.first().expect("a probe record");
    assert_eq!(p["backend"], "up", "{p}");
    assert_eq!(p["check"], "tcp", "{p}");
    assert_eq!(p["code"], "L4OK", "{p}");
    assert!(p["duration"].as_str().is_some(), "{p}");
    assert!(
        p["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("maglev::records")),
        "{p}"
    );

    // They are for the log only: a watcher at trace level never gets them (they would never
    // let a `watch events log` go quiet), while other debug records still arrive.
    let mut watch = d
        .client()
        .await
        .watch_events(WatchEventsRequest {
            log: true,
            log_level: LogLevel::Trace as i32,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    let mut seen = Vec::new();
    while let Ok(Some(Ok(e))) = tokio::time::timeout_at(until, watch.next()).await {
        if let Some(event::Kind::Log(l)) = e.kind {
            seen.push((l.target, l.message));
        }
    }
    assert!(
        !seen
            .iter()
            .any(|(t, m)| t.starts_with("maglev::records") || m == "probe" || m == "VPP API call"),
        "{seen:?}"
    );
    drop(d);

    // At the default level (info) neither appears, with the same traffic.
    let double = VppDouble::start(ApiMode::V1_2).await;
    let d = DaemonBuilder::new(vpp_config(up.port()))
        .vpp_api(double.socket_path())
        .log_level("info")
        .start()
        .await;
    d.wait_for("the VIP written", limit, || {
        double.requests("lb_add_del_vip_v2").gt(&0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = d.log();
    assert!(records(&log, "VPP API call").is_empty(), "{log}");
    assert!(records(&log, "probe").is_empty(), "{log}");
}
