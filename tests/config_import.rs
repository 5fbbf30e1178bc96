//! `maglev config import` run as a user would, and the two warnings of issue 17 as
//! `maglev daemon --check` reports them.

#[path = "support/daemon.rs"]
mod daemon_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use daemon_support::DaemonBuilder;

const ISSUE_EXAMPLE: &str = "\
maglev:
  healthchecks:
    http: { type: http, port: 80, params: { path: /.well-known/ipng/healthz },
            interval: 2s, timeout: 3s, rise: 2, fall: 3 }
  backends:
    nginx0-ams: { address: 192.0.2.10, healthcheck: http }
  frontends:
    web: { address: 192.0.2.1, protocol: tcp, port: 80,
           pools: [ { name: primary, backends: { nginx0-ams: {} } } ] }
";

fn maglev(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maglev"))
        .args(args)
        .env_remove("MAGLEV_VPP_API_ADDR")
        .output()
        .expect("run the maglev binary")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write temp file");
    p
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
fn the_issue_example_imports_to_a_file_that_check_accepts_with_vpp_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = write(dir.path(), "maglev.yaml", ISSUE_EXAMPLE);
    let toml = dir.path().join("maglev.toml");

    let out = maglev(&["config", "import", s(&yaml), "-o", s(&toml), "--no-vpp"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("timeout (3s) is longer than interval (2s)"),
        "{err}"
    );
    assert!(err.contains("a warning because VPP is off"), "{err}");
    assert!(
        err.contains("ok (1 healthchecks, 1 backends, 1 frontends)"),
        "{err}"
    );
    let written = std::fs::read_to_string(&toml).expect("output written");
    assert!(written.contains("[frontends.web]"), "{written}");

    // --check with VPP off: the same two warnings, exit 0.
    let check = maglev(&[
        "daemon",
        "--check",
        "--config",
        s(&toml),
        "--vpp-api-addr",
        "",
    ]);
    let err = text(&check.stderr);
    assert_eq!(check.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("warning: ").count(), 2, "{err}");
    assert!(err.contains("a warning because VPP is off"), "{err}");

    // --check with VPP on (the default): the missing GRE source is an error, and says so.
    let check = maglev(&["daemon", "--check", "--config", s(&toml)]);
    let err = text(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{err}");
    assert!(err.contains("an error because VPP is on"), "{err}");
}

#[test]
fn to_stdout_validates_with_vpp_on_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = write(dir.path(), "maglev.yaml", ISSUE_EXAMPLE);
    let out = maglev(&["config", "import", s(&yaml)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(text(&out.stdout).contains("[healthchecks.http]"));
    assert!(err.contains("<stdout>:"), "{err}");
    assert!(err.contains("written but does not validate"), "{err}");

    let fixed = ISSUE_EXAMPLE.replace(
        "maglev:\n",
        "maglev:\n  vpp: { lb: { ipv4-src-address: 192.0.2.254 } }\n",
    );
    let yaml = write(dir.path(), "fixed.yaml", &fixed);
    let out = maglev(&["config", "import", s(&yaml)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn uncertain_keys_are_reported_as_mapped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = write(
        dir.path(),
        "m.yaml",
        &ISSUE_EXAMPLE.replace(
            "params: { path: /.well-known/ipng/healthz }",
            "params: { path: /, host-header: a.example, response-code: 204 }",
        ),
    );
    let out = maglev(&["config", "import", s(&yaml), "--no-vpp"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("mapped: maglev.healthchecks.http.params.host-header -> host"),
        "{err}"
    );
    assert!(
        err.contains("mapped: maglev.healthchecks.http.params.response-code -> expect-status"),
        "{err}"
    );
    assert!(text(&out.stdout).contains("expect-status = [\"204\"]"));
}

#[test]
fn an_unknown_key_fails_with_line_and_column_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = write(
        dir.path(),
        "bad.yaml",
        &ISSUE_EXAMPLE.replace("rise: 2,", "rise: 2, retries: 5,"),
    );
    let toml = dir.path().join("out.toml");
    let out = maglev(&["config", "import", s(&yaml), "-o", s(&toml)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let want = format!(
        "{}:4:49: maglev.healthchecks.http.retries: unknown key \"retries\"",
        yaml.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(!toml.exists());
}

#[test]
fn refuses_to_overwrite_without_force_and_reports_unreadable_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = write(dir.path(), "m.yaml", ISSUE_EXAMPLE);
    let toml = write(dir.path(), "keep.toml", "# mine\n");
    let out = maglev(&["config", "import", s(&yaml), "-o", s(&toml)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("pass --force"));
    assert_eq!(
        std::fs::read_to_string(&toml).ok().as_deref(),
        Some("# mine\n")
    );

    let out = maglev(&[
        "config",
        "import",
        s(&yaml),
        "-o",
        s(&toml),
        "--force",
        "--no-vpp",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_ne!(
        std::fs::read_to_string(&toml).ok().as_deref(),
        Some("# mine\n")
    );

    let missing = dir.path().join("missing.yaml");
    let out = maglev(&["config", "import", s(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_with_vpp_off_starts_and_logs_both_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = write(dir.path(), "maglev.yaml", ISSUE_EXAMPLE);
    let out = maglev(&["config", "import", s(&yaml), "--no-vpp"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The imported config as is, run with VPP off (the builder's default).
    let d = DaemonBuilder::new(text(&out.stdout))
        .log_level("info")
        .start()
        .await;
    d.wait_log("is longer than interval", Duration::from_secs(5))
        .await;
    let warns: Vec<String> = d
        .log()
        .lines()
        .filter(|l| l.contains("\"WARN\""))
        .map(str::to_string)
        .collect();
    assert!(
        warns
            .iter()
            .any(|l| l.contains("timeout (3s) is longer than interval (2s)")),
        "{warns:?}"
    );
    assert!(
        warns
            .iter()
            .any(|l| l.contains("a warning because VPP is off")),
        "{warns:?}"
    );
}
