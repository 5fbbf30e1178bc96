//! `maglev ctl` one-shot behaviour that needs no daemon: usage errors (exit 2, pointed),
//! an unreachable server (exit 3, one clean line), and the `--json` error shape.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn ctl() -> Command {
    let mut cmd = Command::cargo_bin("maglev").expect("the maglev binary is built");
    cmd.arg("ctl")
        .env_remove("MAGLEV_SERVER")
        .env_remove("NO_COLOR");
    cmd
}

#[test]
fn unknown_word_is_a_usage_error_pointing_at_it() {
    let out = ctl()
        .args(["sh", "bogus"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], "  sh bogus");
    assert_eq!(lines[1], "     ^", "caret under the unknown word");
    assert!(lines[2].starts_with("error: unknown word \"bogus\"; expected one of version,"));
    assert!(lines[2].contains("backends"));
}

#[test]
fn ambiguous_and_incomplete_commands_are_usage_errors() {
    ctl()
        .args(["s", "backends"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "\"s\" is ambiguous: show, sync, set",
        ));
    ctl()
        .args(["show", "vpp"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "incomplete command; expected one of info, lb",
        ));
    ctl()
        .args([
            "set", "frontend", "f", "pool", "p", "backend", "b", "weight", "200",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("0 to 100"));
}

#[test]
fn usage_errors_do_not_need_a_daemon() {
    // Port 1 refuses connections; a usage error must win before any connect.
    ctl()
        .args(["--server", "127.0.0.1:1", "show", "nothing"])
        .assert()
        .code(2);
    ctl()
        .args(["--timeout", "soon", "show", "version"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad --timeout"));
}

#[test]
fn unreachable_server_is_exit_3_with_one_clean_line() {
    let out = ctl()
        .args(["--server", "127.0.0.1:1", "show", "backends"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot reach maglev daemon at 127.0.0.1:1: "),
        "{stderr}"
    );
    assert!(
        !stderr.contains("transport error"),
        "no gRPC boilerplate: {stderr}"
    );
    assert!(!stderr.contains("status:"), "no gRPC boilerplate: {stderr}");
}

#[test]
fn unreachable_unix_socket_is_exit_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = format!("unix:{}", dir.path().join("absent.sock").display());
    ctl()
        .args(["--server", &server, "show", "version"])
        .assert()
        .code(3)
        .stderr(predicate::str::starts_with(format!(
            "error: cannot reach maglev daemon at {server}: "
        )));
}

#[test]
fn json_usage_error_shape() {
    let out = ctl()
        .args(["--json", "sh", "bogus"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(out.stdout.is_empty(), "errors go to stderr");
    let v: Value = serde_json::from_slice(&out.stderr).expect("stderr is one JSON document");
    let e = &v["error"];
    assert_eq!(e["kind"], "usage");
    assert_eq!(e["exit_code"], 2);
    assert_eq!(e["word"], "bogus");
    assert_eq!(e["position"], 3);
    let expected: Vec<&str> = e["expected"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        expected,
        ["version", "frontends", "backends", "healthchecks", "vpp"]
    );
    assert!(e["message"].as_str().unwrap_or_default().contains("bogus"));
}

#[test]
fn json_unreachable_shape_and_go_style_flag() {
    // `-json` is the Go maglevc spelling, rewritten by the CLI.
    let out = ctl()
        .args(["-json", "--server", "127.0.0.1:1", "show", "version"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let v: Value = serde_json::from_slice(&out.stderr).expect("JSON on stderr");
    assert_eq!(v["error"]["kind"], "unreachable");
    assert_eq!(v["error"]["exit_code"], 3);
    assert_eq!(v["error"]["server"], "127.0.0.1:1");
}

#[test]
fn help_needs_no_daemon_in_text_and_json() {
    ctl()
        .args(["--server", "127.0.0.1:1", "help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "set frontend <frontend> pool <pool> backend <backend> weight <0-100>",
        ));
    let out = ctl()
        .args(["--json", "--server", "127.0.0.1:1", "he"])
        .assert()
        .success()
        .get_output()
        .clone();
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert!(v["commands"].as_array().is_some_and(|a| a.len() == 16));
}

#[test]
fn maglevc_name_runs_ctl() {
    // argv[0] = maglevc selects the ctl role (symlink as packaged).
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("maglevc");
    let bin = assert_cmd::cargo::cargo_bin("maglev");
    std::os::unix::fs::symlink(&bin, &link).expect("symlink");
    Command::new(&link)
        .args(["sh", "bogus"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown word \"bogus\""));
}
