//! `maglev tester` target sources: the daemon's config (`--config`) and a running daemon
//! (`--server`, `ListFrontends`) give the same VIP list as the daemon itself reports, with
//! the probe picked by port (`--http PORT` for HTTP, else a TCP connect) and a UDP frontend
//! skipped with a note. Every VIP is on loopback, so every probe stays on this machine.

#[path = "support/daemon.rs"]
mod daemon_support;
#[path = "support/tester_vip.rs"]
mod tester_vip;

use daemon_support::{DaemonBuilder, free_port};
use maglev::proto::ListFrontendsRequest;
use serde_json::Value;
use tester_vip::{Answer, Vip};

fn config(http_port: u16, tcp_port: u16, check_port: u16) -> String {
    format!(
        r#"
[vpp.lb]
ipv4-src-address = "192.0.2.254"

[healthchecks.tcp]
type = "tcp"
port = {check_port}
interval = "1s"
timeout = "500ms"

[backends.b1]
address = "127.0.0.2"
healthcheck = "tcp"

[frontends.web]
address = "127.0.0.1"
protocol = "tcp"
port = {http_port}
  [[frontends.web.pools]]
  name = "p"
  backends = {{ b1 = {{}} }}

[frontends.ssh]
address = "127.0.0.1/32"
protocol = "tcp"
port = {tcp_port}
  [[frontends.ssh.pools]]
  name = "p"
  backends = {{ b1 = {{}} }}

[frontends.dns]
address = "127.0.0.1"
protocol = "udp"
port = 53
  [[frontends.dns.pools]]
  name = "p"
  backends = {{ b1 = {{}} }}
"#
    )
}

/// Runs the tester for 800 ms with `source` flags; returns the summary's (vip, url, ok %)
/// and stderr.
async fn vips(source: &[&str], http_port: u16) -> (Vec<(String, String, f64)>, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_maglev"))
        .arg("tester")
        .args(source)
        .args(["--http", &http_port.to_string()])
        .args(["--json", "--duration", "800ms"])
        .env_remove("MAGLEV_CA")
        .output()
        .await
        .expect("run maglev tester");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{source:?}: {stderr}");
    let summary: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["record"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {stdout}"));
    let list = summary["vips"]
        .as_array()
        .expect("vips")
        .iter()
        .map(|v| {
            (
                v["vip"].as_str().unwrap_or_default().to_string(),
                v["url"].as_str().unwrap_or_default().to_string(),
                v["ok_pct"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    (list, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_and_server_sources_list_the_daemons_vips() {
    let web = Vip::start("127.0.0.1:0", Answer::from(&["nginx0"]))
        .await
        .expect("bind");
    let ssh = Vip::start("127.0.0.1:0", Answer::from(&[]))
        .await
        .expect("bind");
    let (http_port, tcp_port) = (web.addr.port(), ssh.addr.port());
    let daemon = DaemonBuilder::new(config(http_port, tcp_port, free_port("127.0.0.2")))
        .start()
        .await;

    // What the daemon itself serves.
    let mut client = daemon.client().await;
    let mut served: Vec<(String, String, u32, String)> = client
        .list_frontends(ListFrontendsRequest {})
        .await
        .expect("ListFrontends")
        .into_inner()
        .frontends
        .into_iter()
        .map(|f| (f.name, f.address, f.port, f.protocol))
        .collect();
    served.sort();
    assert_eq!(served.len(), 3, "{served:?}");

    let config_path = daemon.config.display().to_string();
    let (from_config, config_err) = vips(&["--config", &config_path], http_port).await;
    let (from_server, server_err) = vips(&["--server", &daemon.grpc_addr], http_port).await;

    let want = vec![
        (
            "ssh".to_string(),
            format!("tcp://127.0.0.1:{tcp_port}"),
            100.0,
        ),
        (
            "web".to_string(),
            format!("http://127.0.0.1:{http_port}/"),
            100.0,
        ),
    ];
    assert_eq!(from_config, want, "--config");
    assert_eq!(from_server, want, "--server");
    // The same names as the daemon's, but for the UDP one, skipped with a note.
    let probed: Vec<&str> = want.iter().map(|(n, _, _)| n.as_str()).collect();
    let daemons: Vec<&str> = served
        .iter()
        .filter(|(_, _, _, proto)| proto != "udp")
        .map(|(n, _, _, _)| n.as_str())
        .collect();
    assert_eq!(probed, daemons);
    for err in [&config_err, &server_err] {
        assert!(err.contains("frontend dns: udp cannot be probed"), "{err}");
    }
    // The HTTP VIP really got HTTP requests, and --only picks one VIP.
    assert!(web.seen().iter().all(|s| s.method == "GET") && !web.seen().is_empty());
    let (only, _) = vips(&["--server", &daemon.grpc_addr, "--only", "ssh"], http_port).await;
    assert_eq!(only, want[..1].to_vec());
}
