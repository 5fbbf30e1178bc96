//! The README's "run it" command, as written there: the daemon on the shipped
//! `packaging/examples/local.toml`, VPP off, probing only loopback. Its log must show the
//! expected backends going up and the deliberately broken ones going down.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn ipv6_loopback() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

#[test]
fn readme_command_reports_expected_states() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md exists");
    let line = "cargo run -- daemon --config packaging/examples/local.toml --vpp-api-addr \"\"";
    assert!(readme.contains(line), "README must carry the run command: {line}");

    // Same arguments as the README; the binary is the one cargo built for this test.
    let child = Command::new(env!("CARGO_BIN_EXE_maglev"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["daemon", "--config", "packaging/examples/local.toml", "--vpp-api-addr", ""])
        .env("MAGLEV_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let mut child = KillOnDrop(child);
    let stderr = child.0.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut want: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        ("self-metrics", ("up", "L7OK")),
        ("self-grpc", ("up", "L4OK")),
        ("closed-port", ("down", "L4CON")),
        ("wrong-path", ("down", "L7STS")),
    ]);
    if is_root() {
        want.insert("lo-icmp4", ("up", "L4OK"));
        if ipv6_loopback() {
            want.insert("lo-icmp6", ("up", "L4OK"));
        } else {
            eprintln!("skip lo-icmp6: no IPv6 loopback here");
        }
    } else {
        eprintln!("skip ICMP backends: not root (raw sockets need CAP_NET_RAW)");
    }

    let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !want.keys().all(|b| seen.contains_key(*b)) {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        log.push(line.clone());
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let (Some(b), Some(to), Some(code)) = (
            v.get("backend").and_then(|x| x.as_str()),
            v.get("to").and_then(|x| x.as_str()),
            v.get("code").and_then(|x| x.as_str()),
        ) && v.get("from").is_some()
        {
            seen.insert(b.to_string(), (to.to_string(), code.to_string()));
        }
    }
    for (backend, (state, code)) in &want {
        match seen.get(*backend) {
            Some((s, c)) => {
                assert_eq!((s.as_str(), c.as_str()), (*state, *code), "{backend}\nlog:\n{}", log.join("\n"))
            }
            None => panic!("no transition for {backend} within 30 s\nlog:\n{}", log.join("\n")),
        }
    }
}
