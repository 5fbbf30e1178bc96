//! The tester role's names and texts: `maglevt` (argv[0]) is `maglev tester`, its man page
//! (section 1) and its completion scripts under its own name.

#[path = "support/tester_vip.rs"]
mod tester_vip;

use std::path::PathBuf;
use std::process::Command;

use tester_vip::{Answer, Vip};

fn maglev() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_maglev"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maglevt_is_the_tester() {
    let vip = Vip::start("127.0.0.1:0", Answer::from(&["b0"]))
        .await
        .expect("bind");
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("maglevt");
    std::os::unix::fs::symlink(maglev(), &link).expect("symlink");
    let out = tokio::process::Command::new(&link)
        .args(["--target", &format!("http://{}/", vip.addr)])
        .args(["--json", "--duration", "300ms"])
        .output()
        .await
        .expect("run maglevt");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""record":"summary""#), "{stdout}");
    assert!(!vip.seen().is_empty(), "maglevt probed nothing");

    let help = Command::new(&link).arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in ["--target", "--max-outage", "--duration", "--json", "--only"] {
        assert!(text.contains(flag), "{flag}: {text}");
    }
}

#[test]
fn man_page_and_completions_of_maglevt() {
    let out = Command::new(maglev())
        .args(["man", "maglevt"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH maglevt 1"), "{page:.200}");
    assert!(page.contains("max\\-outage"), "{page:.2000}");
    assert!(page.contains("Exit codes: 0 done"), "{page}");
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(maglev())
            .args(["completions", shell, "maglevt"])
            .output()
            .expect("run");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("maglevt"), "{shell}: {script:.200}");
        assert!(script.contains("max-outage"), "{shell}");
    }
    // The maglev script knows the subcommand too.
    let out = Command::new(maglev())
        .args(["completions", "bash"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("tester"));
    let out = Command::new(maglev())
        .args(["completions", "bash", "bogus"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
