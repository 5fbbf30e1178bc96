//! Packaging of the web role: the hardened `vpp-maglev-frontend.service` (verified by
//! `systemd-analyze` when present), its entry in /etc/default/vpp-maglev naming every
//! variable `maglev web` reads, the man page, completions, and the argv[0] name.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const MAGLEV: &str = env!("CARGO_BIN_EXE_maglev");

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(MAGLEV)
        .args(args)
        .output()
        .expect("run maglev");
    assert!(
        out.status.success(),
        "maglev {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// (section, key, value) of a unit file.
fn directives(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line:?}"));
        out.push((section.clone(), k.to_string(), v.to_string()));
    }
    out
}

#[test]
fn frontend_unit_is_hardened() {
    let d = directives(&read("packaging/systemd/vpp-maglev-frontend.service"));
    let get = |key: &str| -> Vec<&str> {
        d.iter()
            .filter(|(s, k, _)| s == "Service" && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    };
    for (key, want) in [
        ("ExecStart", "/usr/sbin/maglevd-frontend"),
        ("EnvironmentFile", "-/etc/default/vpp-maglev"),
        ("User", "maglevd"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(get(key), vec![want], "[Service] {key}");
    }
    let filters = get("SystemCallFilter");
    assert_eq!(filters.first(), Some(&"@system-service"));
    assert!(
        filters[1..].iter().all(|f| f.starts_with('~')),
        "{filters:?}"
    );
}

#[test]
fn systemd_analyze_verifies_the_frontend_unit() {
    if !Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("skip: systemd-analyze is not installed");
        return;
    }
    let unit = read("packaging/systemd/vpp-maglev-frontend.service").replace(
        "\nExecStart=/usr/sbin/maglevd-frontend\n",
        &format!("\nExecStart={MAGLEV} web\n"),
    );
    assert!(unit.contains(&format!("ExecStart={MAGLEV} web")));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vpp-maglev-frontend.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display()))
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("vpp-maglev-frontend"))
        .collect();
    assert!(complaints.is_empty(), "systemd-analyze: {complaints:?}");
}

#[test]
fn default_file_names_every_web_variable() {
    let help = stdout_of(&["web", "--help"])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let vars: BTreeSet<String> = help
        .match_indices("[env: ")
        .filter_map(|(i, m)| {
            help[i + m.len()..]
                .split_once('=')
                .map(|(n, _)| n.to_string())
        })
        .collect();
    assert!(vars.contains("MAGLEV_WEB_SERVERS"), "{help}");
    let default = read("packaging/systemd/vpp-maglev.default");
    for var in &vars {
        assert!(
            default.contains(&format!("{var}=")),
            "{var} is not in vpp-maglev.default"
        );
    }
}

#[test]
fn man_page_completions_and_argv0() {
    let roff = stdout_of(&["man", "maglevd-frontend"]);
    assert!(
        roff.lines()
            .any(|l| l.starts_with(".TH maglevd-frontend 8")),
        "{roff}"
    );
    for word in [
        "\\-\\-server",
        "\\-\\-users",
        "\\-\\-listen",
        "hash\\-password",
    ] {
        assert!(roff.contains(word), "man page lacks {word}");
    }
    assert_eq!(stdout_of(&["man", "web"]), roff);
    if Command::new("groff").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("maglevd-frontend.8");
        std::fs::write(&file, &roff).expect("write");
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&file)
            .output()
            .expect("groff");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bash = stdout_of(&["completions", "bash"]);
    assert!(bash.contains("web") && bash.contains("hash-password") && bash.contains("--users"));

    // Called as maglevd-frontend, the binary is `maglev web`.
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("maglevd-frontend");
    std::os::unix::fs::symlink(MAGLEV, &link).expect("symlink");
    let out = Command::new(&link)
        .arg("--help")
        .output()
        .expect("run maglevd-frontend");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("--users") && text.contains("hash-password"),
        "{text}"
    );
}

#[test]
fn hash_password_refuses_bad_input() {
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut c = Command::new(MAGLEV)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        if let Some(mut s) = c.stdin.take() {
            let _ = s.write_all(stdin.as_bytes());
        }
        c.wait_with_output().expect("wait")
    };
    assert_eq!(
        run(&["web", "hash-password", "ops"], "\n").status.code(),
        Some(2),
        "empty password"
    );
    assert_eq!(
        run(&["web", "hash-password", "a:b"], "pw\n").status.code(),
        Some(2),
        "colon in name"
    );
    let ok = run(&["web", "hash-password", "ops"], "pw\n");
    let line = String::from_utf8_lossy(&ok.stdout);
    assert!(line.starts_with("ops:$argon2id$v=19$"), "{line}");
    // A fresh salt each time.
    let again = run(&["web", "hash-password", "ops"], "pw\n");
    assert_ne!(ok.stdout, again.stdout);
}
