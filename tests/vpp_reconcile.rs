//! The real daemon binary against the in-process VPP test double, with real loopback
//! backends: weights follow health, pool failover, VIP re-creation on reload, stale VIP
//! removal, warmup after a daemon restart, VPP restarting empty, lb API 1.1.0 (legacy)
//! and `--dry-run`.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use maglev::vpp::client::{Client, ClientConfig};
use maglev::vpp::messages::lb::{LbAddDelAsV2, LbAddDelVipV2};
use maglev::vpp::wire::{EncapType, Prefix};
use support::vpp_double::{ApiMode, VipView, VppDouble, WriteRecord};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Generous: the test box is a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(25);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(ip(a), l.parse().unwrap())
}

// ---------------------------------------------------------------- backends

/// A TCP service on a loopback address: listening = up, closed = down.
struct Backend {
    addr: SocketAddr,
    /// Accept but never answer (an HTTP check times out on it).
    hang: bool,
    task: Option<JoinHandle<()>>,
}

impl Backend {
    async fn start(addr: SocketAddr, hang: bool) -> Backend {
        let mut b = Backend {
            addr,
            hang,
            task: None,
        };
        b.up().await;
        b
    }

    async fn up(&mut self) {
        let listener = bind(self.addr).await;
        let hang = self.hang;
        self.task = Some(tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                if hang {
                    held.push(conn);
                }
            }
        }));
    }

    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn bind(addr: SocketAddr) -> TcpListener {
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {addr}");
}

/// A port free on 127.0.0.1 (the same port is then used on 127.0.0.x).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

// ---------------------------------------------------------------- daemon

struct Daemon {
    child: Child,
    log: PathBuf,
    config: PathBuf,
    started: Instant,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn spawn(config: &str, socket: &Path, extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("maglev.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = dir.path().join("daemon.log");
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let grpc = format!("127.0.0.1:{}", free_port());
        let started = Instant::now();
        let child = Command::new(assert_cmd::cargo::cargo_bin("maglev"))
            .arg("daemon")
            .arg("--config")
            .arg(&config_path)
            .arg("--vpp-api-addr")
            .arg(socket)
            .args([
                "--vpp-stats-addr",
                "",
                "--metrics-addr",
                "",
                "--grpc-addr",
                &grpc,
            ])
            .args(["--log-format", "text", "--log-level", "info"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn maglev daemon");
        Daemon {
            child,
            log,
            config: config_path,
            started,
            _dir: dir,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Rewrites the config file and sends SIGHUP.
    fn reload(&self, config: &str) {
        std::fs::write(&self.config, config).expect("rewrite config");
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
        assert_eq!(rc, 0, "SIGHUP failed");
    }

    /// Polls `f` until it returns Some, or fails with the daemon's log.
    async fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > end {
                panic!(
                    "timed out waiting for {what}\n--- daemon log ---\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_log(&self, needle: &str) {
        self.wait_for(&format!("log line {needle:?}"), || {
            self.log_text().contains(needle).then_some(())
        })
        .await;
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- config

/// `[vpp.lb]` + a fast tcp check on `port` + extra text.
fn config(port: u16, min: &str, max: &str, rest: &str) -> String {
    format!(
        r#"
[vpp.lb]
sync-interval = "1s"
ipv4-src-address = "192.0.2.254"
ipv6-src-address = "2001:db8::fe"
startup-min-delay = "{min}"
startup-max-delay = "{max}"

[healthchecks.tcp]
type = "tcp"
port = {port}
interval = "200ms"
fast-interval = "100ms"
down-interval = "200ms"
timeout = "150ms"
rise = 1
fall = 1

[backends.a]
address = "127.0.0.2"
healthcheck = "tcp"
[backends.b]
address = "127.0.0.3"
healthcheck = "tcp"
{rest}
"#
    )
}

fn web(sticky: bool, pools: &str) -> String {
    format!(
        r#"
[frontends.web]
address = "192.0.2.1"
protocol = "tcp"
port = 80
src-ip-sticky = {sticky}
flush-on-down = true
{pools}
"#
    )
}

const ONE_POOL: &str = r#"
  [[frontends.web.pools]]
  name = "primary"
  backends = { a = {}, b = {} }
"#;

const TWO_POOLS: &str = r#"
  [[frontends.web.pools]]
  name = "primary"
  backends = { a = {} }
  [[frontends.web.pools]]
  name = "fallback"
  backends = { b = {} }
"#;

fn sock(port: u16, last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::from([127, 0, 0, last]), port)
}

// ---------------------------------------------------------------- double helpers

fn web_vip(double: &VppDouble) -> Option<VipView> {
    double.vip(pfx("192.0.2.1/32"), 80)
}

/// Live ASes of the web VIP and their weights.
fn weights(double: &VppDouble) -> Option<BTreeMap<IpAddr, u8>> {
    web_vip(double).map(|v| {
        v.ases
            .iter()
            .filter(|a| a.used)
            .map(|a| (a.address, a.weight))
            .collect()
    })
}

fn want(pairs: &[(&str, u8)]) -> BTreeMap<IpAddr, u8> {
    pairs.iter().map(|(a, w)| (ip(a), *w)).collect()
}

fn writes_for(double: &VppDouble, addr: &str) -> Vec<WriteRecord> {
    double
        .writes()
        .into_iter()
        .filter(|w| w.address == Some(ip(addr)))
        .collect()
}

async fn client_for(double: &VppDouble) -> Client {
    Client::connect(ClientConfig {
        socket_path: double.socket_path().to_path_buf(),
        client_name: "test-setup".into(),
        ..ClientConfig::default()
    })
    .await
    .expect("connect to the double")
}

/// What another (earlier) writer left in VPP: a VIP with weighted ASes.
async fn precreate(double: &VppDouble, vip: &str, port: u16, ases: &[(&str, u8)]) {
    let c = client_for(double).await;
    let p = pfx(vip);
    c.lb_add_del_vip_v2(&LbAddDelVipV2::add(p, 6, port, EncapType::GRE4))
        .await
        .expect("add vip");
    for (a, w) in ases {
        c.lb_add_del_as_v2(&LbAddDelAsV2 {
            pfx: p,
            protocol: 6,
            port,
            as_address: ip(a),
            weight: *w,
            is_del: false,
            is_flush: false,
        })
        .await
        .expect("add as");
    }
    c.disconnect().await;
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_follows_backend_health() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let _a = Backend::start(sock(port, 2), false).await;
    let mut b = Backend::start(sock(port, 3), false).await;
    let cfg = config(port, "0s", "3s", &web(false, ONE_POOL));
    let d = Daemon::spawn(&cfg, double.socket_path(), &[]);

    let full = want(&[("127.0.0.2", 100), ("127.0.0.3", 100)]);
    d.wait_for("both ASes at 100", || {
        (weights(&double)? == full).then_some(())
    })
    .await;
    let vip = web_vip(&double).unwrap();
    assert_eq!(vip.encap, EncapType::GRE4);
    assert_eq!(vip.table_len, 1024);

    b.down().await;
    let drained = want(&[("127.0.0.2", 100), ("127.0.0.3", 0)]);
    d.wait_for("b at weight 0", || {
        (weights(&double)? == drained).then_some(())
    })
    .await;
    // flush-on-down = true: the drain flushed b's flows.
    let last = writes_for(&double, "127.0.0.3").pop().unwrap();
    assert_eq!(
        (last.msg.as_str(), last.weight, last.is_flush),
        ("lb_as_set_weight", Some(0), true)
    );

    b.up().await;
    d.wait_for("b back at 100", || {
        (weights(&double)? == full).then_some(())
    })
    .await;
    assert_eq!(double.fatal_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_failover_and_back() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let mut a = Backend::start(sock(port, 2), false).await;
    let _b = Backend::start(sock(port, 3), false).await;
    let cfg = config(port, "0s", "3s", &web(false, TWO_POOLS));
    let d = Daemon::spawn(&cfg, double.socket_path(), &[]);

    let primary = want(&[("127.0.0.2", 100), ("127.0.0.3", 0)]);
    let fallback = want(&[("127.0.0.2", 0), ("127.0.0.3", 100)]);
    d.wait_for("primary active", || {
        (weights(&double)? == primary).then_some(())
    })
    .await;
    a.down().await;
    d.wait_for("fallback active", || {
        (weights(&double)? == fallback).then_some(())
    })
    .await;
    a.up().await;
    d.wait_for("primary active again", || {
        (weights(&double)? == primary).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn src_ip_sticky_flip_on_reload_recreates_the_vip() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let _a = Backend::start(sock(port, 2), false).await;
    let _b = Backend::start(sock(port, 3), false).await;
    let d = Daemon::spawn(
        &config(port, "0s", "3s", &web(false, ONE_POOL)),
        double.socket_path(),
        &[],
    );
    let full = want(&[("127.0.0.2", 100), ("127.0.0.3", 100)]);
    d.wait_for("VIP programmed", || {
        (weights(&double)? == full).then_some(())
    })
    .await;
    assert!(!web_vip(&double).unwrap().src_ip_sticky);
    let before = double.writes().len();

    d.reload(&config(port, "0s", "3s", &web(true, ONE_POOL)));
    d.wait_for("sticky VIP with its ASes", || {
        let v = web_vip(&double)?;
        (v.src_ip_sticky && weights(&double)? == full).then_some(())
    })
    .await;
    let after: Vec<WriteRecord> = double.writes().split_off(before);
    let vip_writes: Vec<bool> = after
        .iter()
        .filter(|w| w.msg == "lb_add_del_vip_v2")
        .map(|w| w.is_del)
        .collect();
    assert_eq!(vip_writes, vec![true, false], "delete then add: {after:?}");
    // The ASes were deleted with flush before the VIP went.
    assert!(
        after
            .iter()
            .filter(|w| w.msg == "lb_add_del_as_v2" && w.is_del)
            .all(|w| w.is_flush)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_removes_stale_vips() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    precreate(&double, "198.51.100.1/32", 443, &[("10.9.0.1", 100)]).await;
    let port = free_port();
    let _a = Backend::start(sock(port, 2), false).await;
    let _b = Backend::start(sock(port, 3), false).await;
    let d = Daemon::spawn(
        &config(port, "0s", "3s", &web(false, ONE_POOL)),
        double.socket_path(),
        &[],
    );
    d.wait_for("stale VIP gone, ours present", || {
        let stale = double.vip(pfx("198.51.100.1/32"), 443);
        (stale.is_none() && weights(&double)?.len() == 2).then_some(())
    })
    .await;
    let stale_as = writes_for(&double, "10.9.0.1").pop().unwrap();
    assert!(stale_as.is_del && stale_as.is_flush, "{stale_as:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_restart_warmup_never_drains_unknown_backends() {
    // VPP as the previous daemon left it: both ASes at 100.
    let double = VppDouble::start(ApiMode::V1_2).await;
    precreate(
        &double,
        "192.0.2.1/32",
        80,
        &[("127.0.0.2", 100), ("127.0.0.3", 100)],
    )
    .await;
    let setup_writes = double.writes().len();
    let port = free_port();
    let slow_port = free_port();
    let _a = Backend::start(sock(port, 2), false).await;
    // b answers TCP but never HTTP: it stays unknown until its first check times out.
    let _b = Backend::start(sock(slow_port, 3), true).await;
    let rest = format!(
        r#"
[healthchecks.slow]
type = "http"
port = {slow_port}
interval = "4s"
timeout = "3s"
rise = 1
fall = 1
{}
[frontends.api]
address = "192.0.2.2"
protocol = "tcp"
port = 80
  [[frontends.api.pools]]
  name = "only"
  backends = {{ a = {{}} }}
"#,
        web(false, ONE_POOL)
    );
    let cfg = config(port, "1s", "10s", &rest).replace(
        "[backends.b]\naddress = \"127.0.0.3\"\nhealthcheck = \"tcp\"",
        "[backends.b]\naddress = \"127.0.0.3\"\nhealthcheck = \"slow\"",
    );
    let min_delay = Duration::from_secs(1);
    let d = Daemon::spawn(&cfg, double.socket_path(), &[]);

    // b times out -> down -> drained with flush; then the warmup ends.
    let drained = want(&[("127.0.0.2", 100), ("127.0.0.3", 0)]);
    d.wait_for("b drained after its check failed", || {
        (weights(&double)? == drained).then_some(())
    })
    .await;
    d.wait_log("VPP warmup over").await;

    let writes = double.writes().split_off(setup_writes);
    assert!(!writes.is_empty());
    for w in &writes {
        assert!(
            w.at.duration_since(d.started) >= min_delay,
            "write before startup-min-delay: {w:?}"
        );
        if w.weight == Some(0) {
            // Only the down backend goes to 0, and that drain flushes: an unknown
            // backend would have been set to 0 without flush.
            assert_eq!(w.address, Some(ip("127.0.0.3")), "{w:?}");
            assert!(
                w.is_flush,
                "weight 0 without flush (unknown backend?): {w:?}"
            );
        }
    }
    assert!(
        writes_for(&double, "127.0.0.2")
            .iter()
            .all(|w| w.weight != Some(0))
    );
    // The api VIP (backends all known early) was released while web still waited for b.
    let api_added = writes
        .iter()
        .position(|w| w.prefix == Some(pfx("192.0.2.2/32")))
        .expect("api VIP written");
    let b_drained = writes
        .iter()
        .position(|w| w.address == Some(ip("127.0.0.3")))
        .expect("b drained");
    assert!(api_added < b_drained, "{writes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_restarted_empty_is_rebuilt() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    let port = free_port();
    let _a = Backend::start(sock(port, 2), false).await;
    let _b = Backend::start(sock(port, 3), false).await;
    let d = Daemon::spawn(
        &config(port, "0s", "3s", &web(true, TWO_POOLS)),
        double.socket_path(),
        &[],
    );
    let primary = want(&[("127.0.0.2", 100), ("127.0.0.3", 0)]);
    d.wait_for("VIP programmed", || {
        (weights(&double)? == primary).then_some(())
    })
    .await;
    let old_pid = double.pid();
    double.restart_empty();
    assert_ne!(double.pid(), old_pid);
    assert!(web_vip(&double).is_none());
    d.wait_for("VIP rebuilt after reconnect", || {
        (web_vip(&double)?.src_ip_sticky && weights(&double)? == primary).then_some(())
    })
    .await;
    // The conf came back too.
    assert!(double.writes().iter().any(|w| w.msg == "lb_conf"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_api_programs_the_same_vips() {
    let double = VppDouble::start(ApiMode::V1_1).await;
    let port = free_port();
    let _a = Backend::start(sock(port, 2), false).await;
    let mut b = Backend::start(sock(port, 3), false).await;
    // web6 has IPv6 backends (gre6, which 1.1.0 can only create through the CLI); its
    // only backend is disabled, so it is never probed and has no AS.
    let rest = format!(
        r#"
[backends.c]
address = "2001:db8:1::1"
healthcheck = "tcp"
enabled = false
{}
[frontends.web6]
address = "2001:db8::1"
protocol = "tcp"
port = 443
  [[frontends.web6.pools]]
  name = "all"
  backends = {{ c = {{}} }}
"#,
        web(false, ONE_POOL)
    );
    let d = Daemon::spawn(&config(port, "0s", "3s", &rest), double.socket_path(), &[]);

    let both = want(&[("127.0.0.2", 100), ("127.0.0.3", 100)]);
    d.wait_for("IPv4 VIP with both ASes", || {
        (weights(&double)? == both).then_some(())
    })
    .await;
    let v4 = web_vip(&double).unwrap();
    assert_eq!(v4.prefix, pfx("192.0.2.1/32"));
    assert_eq!(v4.encap, EncapType::GRE4);
    let v6 = d
        .wait_for("IPv6 gre6 VIP", || double.vip(pfx("2001:db8::1/128"), 443))
        .await;
    assert_eq!(v6.encap, EncapType::GRE6);
    assert!(v6.ases.is_empty());
    assert!(double.writes().iter().any(|w| w.msg
        == "cli_inband: lb vip 2001:db8::1/128 protocol tcp port 443 encap gre6 new_len 1024"));
    // No bogus `::/32` VIP from a forgotten +96.
    assert!(double.vips().iter().all(|v| v.prefix.addr != ip("::")));
    assert!(d.log_text().contains("LEGACY MODE"));

    // No weights: down = AS deleted (flushed, flush-on-down), up = AS added again.
    b.down().await;
    let only_a = want(&[("127.0.0.2", 100)]);
    d.wait_for("b deleted", || (weights(&double)? == only_a).then_some(()))
        .await;
    let del = writes_for(&double, "127.0.0.3").pop().unwrap();
    assert_eq!(
        (del.msg.as_str(), del.is_del, del.is_flush),
        ("lb_add_del_as", true, true)
    );
    b.up().await;
    d.wait_for("b added again", || {
        (weights(&double)? == both).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing() {
    let double = VppDouble::start(ApiMode::V1_2).await;
    precreate(&double, "198.51.100.1/32", 443, &[("10.9.0.1", 100)]).await;
    let setup_writes = double.writes().len();
    let port = free_port();
    let _a = Backend::start(sock(port, 2), false).await;
    let _b = Backend::start(sock(port, 3), false).await;
    let d = Daemon::spawn(
        &config(port, "0s", "3s", &web(false, ONE_POOL)),
        double.socket_path(),
        &["--dry-run"],
    );
    d.wait_log("dry-run: would del vip 198.51.100.1/32 tcp/443")
        .await;
    d.wait_log("dry-run: would add as 127.0.0.3 to vip 192.0.2.1/32 tcp/80 weight 100")
        .await;
    assert_eq!(double.writes().len(), setup_writes, "{:?}", double.writes());
    assert!(double.vip(pfx("198.51.100.1/32"), 443).is_some());
    assert!(web_vip(&double).is_none());
    // It did read.
    assert!(double.requests("lb_vip_dump") > 0);
}
