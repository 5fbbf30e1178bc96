//! The one binary's roles (argv[0] / subcommand) and `--check` exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn maglev() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_maglev"))
}

/// A symlink to the binary under another name, in a temp dir.
fn linked(dir: &Path, name: &str) -> PathBuf {
    let link = dir.join(name);
    std::os::unix::fs::symlink(maglev(), &link).expect("symlink in a fresh temp dir");
    link
}

const GOOD: &str = r#"
[healthchecks.ping]
type = "icmp"
[backends.a]
address = "127.0.0.1"
healthcheck = "ping"
"#;

const PARSE_ERROR: &str = "[healthchecks.ping\ntype = \"icmp\"\n";

const SEMANTIC_ERROR: &str = r#"
[healthchecks.web]
type = "http"
[backends.a]
address = "127.0.0.1"
healthcheck = "nope"
"#;

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write temp config");
    p
}

#[test]
fn check_exit_codes_are_0_1_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("good.toml", GOOD, 0),
        ("parse.toml", PARSE_ERROR, 1),
        ("semantic.toml", SEMANTIC_ERROR, 2),
    ];
    for (name, body, want) in cases {
        let path = write(dir.path(), name, body);
        let out = Command::new(maglev())
            .args(["daemon", "--check", "--config"])
            .arg(&path)
            .output()
            .expect("run maglev");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{name}: stderr: {stderr}");
        if want != 0 {
            // Every error names the file and a line:column.
            assert!(stderr.contains(&format!("{name}:")), "{name}: {stderr}");
        }
    }
    // The semantic error names the key and the known healthchecks.
    let out = Command::new(maglev())
        .args(["daemon", "--check", "--config"])
        .arg(dir.path().join("semantic.toml"))
        .output()
        .expect("run maglev");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("semantic.toml:6:"), "{stderr}");
    assert!(stderr.contains("backends.a.healthcheck"), "{stderr}");
    assert!(stderr.contains("web"), "known names listed: {stderr}");
    // A missing file is an I/O error: exit 1.
    let out = Command::new(maglev())
        .args(["daemon", "--check", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .expect("run maglev");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn maglevd_symlink_runs_the_daemon_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let maglevd = linked(dir.path(), "maglevd");
    let config = write(dir.path(), "good.toml", GOOD);
    // The daemon role's own flag, without the `daemon` subcommand.
    let out = Command::new(&maglevd)
        .arg("--check")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run maglevd");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
    // Environment variables stand in for flags.
    let out = Command::new(&maglevd)
        .arg("--check")
        .env("MAGLEV_CONFIG", &config)
        .output()
        .expect("run maglevd");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn version_names_commit_and_build_date() {
    let dir = tempfile::tempdir().expect("tempdir");
    for argv0 in [maglev(), linked(dir.path(), "maglevd")] {
        let out = Command::new(&argv0).arg("--version").output().expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
        assert!(text.contains("commit "), "{text}");
        assert!(text.contains("built "), "{text}");
    }
}

#[test]
fn maglevc_symlink_runs_the_ctl_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let maglevc = linked(dir.path(), "maglevc");
    // A usage error is decided locally: exit 2, no daemon needed.
    let out = Command::new(&maglevc).args(["show", "bogus"]).output().expect("run maglevc");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_and_completions_render() {
    for page in ["maglev", "maglevd", "maglevc"] {
        let out = Command::new(maglev()).args(["man", page]).output().expect("run");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}: {text:.80}");
        assert!(text.contains(page), "{page}");
    }
    let out = Command::new(maglev()).args(["man", "bogus"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(maglev()).args(["completions", "bash"]).output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("maglev"));
}
