//! Shared helpers for tests that run the real `maglev daemon`: a temp config, free
//! loopback ports, real loopback backends, waiting for conditions (never fixed sleeps),
//! a gRPC client, signals, and kill-on-drop.
//!
//! Included with `#[path = "support/daemon.rs"] mod daemon_support;`; not every test file
//! uses every helper.
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use maglev::proto::maglev_client::MaglevClient;
use maglev::proto::{BackendState, ListBackendsRequest};
use tonic::transport::{Channel, Endpoint};

/// Generous: the suite runs on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

// Each helper file is included on its own by the tests that need it, so each carries ports.rs.
#[allow(clippy::duplicate_mod)]
#[path = "ports.rs"]
mod ports;

/// A port that was free on `ip` a moment ago (outside the ephemeral range: see ports.rs).
pub fn free_port(ip: &str) -> u16 {
    ports::free_port(ip)
}

/// Polls `f` every 50 ms until it returns Some, or panics with `what` after `DEADLINE`.
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Async flavour of `wait_until`.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `up` is up and `down` is down: `basic_config` settled.
pub async fn wait_up_and_down(c: &MaglevClient<Channel>) {
    eventually("up is up and down is down", || {
        let mut c = c.clone();
        async move {
            let list = c
                .list_backends(ListBackendsRequest {})
                .await
                .ok()?
                .into_inner()
                .backends;
            let state = |n: &str| list.iter().find(|b| b.name == n).map(|b| b.state());
            (state("up") == Some(BackendState::Up) && state("down") == Some(BackendState::Down))
                .then_some(())
        }
    })
    .await;
}

/// `basic_config` with `up` listening on 127.0.0.2, run by the daemon `builder` makes of it
/// (`DaemonBuilder::new` for the defaults); returns once `up` is up and `down` is down.
pub async fn start_settled(
    builder: impl FnOnce(String) -> DaemonBuilder,
) -> (Daemon, UpBackend, MaglevClient<Channel>) {
    let backend = UpBackend::start("127.0.0.2");
    let d = builder(basic_config(backend.port())).start().await;
    let c = d.client().await;
    wait_up_and_down(&c).await;
    (d, backend, c)
}

/// A TCP backend that is up: accepts and drops connections on `ip:port` from a thread.
pub struct UpBackend {
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl UpBackend {
    /// Listens on `ip` at a free port (use `port()` in the healthcheck).
    pub fn start(ip: &str) -> UpBackend {
        Self::start_on(ip, 0)
    }

    pub fn start_on(ip: &str, port: u16) -> UpBackend {
        let listener = StdTcpListener::bind((ip, port)).expect("bind backend");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => drop(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        UpBackend { addr, stop }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for UpBackend {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A config with one tcp healthcheck on `port` (fast: 200 ms, rise 2, fall 2), backends
/// `up` (127.0.0.2, listening) and `down` (127.0.0.3, nothing listens), `off` (disabled),
/// and frontend `web` with pools `primary` (up, down) and `backup` (off).
pub fn basic_config(port: u16) -> String {
    format!(
        r#"
[healthchecker]
transition-history = 5

[vpp.lb]
ipv4-src-address = "192.0.2.254"

[healthchecks.tcp]
type = "tcp"
port = {port}
interval = "200ms"
timeout = "150ms"
rise = 2
fall = 2

[backends.up]
address = "127.0.0.2"
healthcheck = "tcp"

[backends.down]
address = "127.0.0.3"
healthcheck = "tcp"

[backends.off]
address = "127.0.0.4"
healthcheck = "tcp"
enabled = false

[frontends.web]
description = "test VIP"
address = "192.0.2.1"
protocol = "tcp"
port = 80
  [[frontends.web.pools]]
  name = "primary"
  backends = {{ up = {{ weight = 80 }}, down = {{}} }}
  [[frontends.web.pools]]
  name = "backup"
  backends = {{ off = {{}} }}
"#
    )
}

/// How the daemon listens for gRPC.
#[derive(Debug, Clone)]
pub enum Grpc {
    /// 127.0.0.1 at a free port.
    Loopback,
    /// `unix:<dir>/maglev.sock`.
    Unix,
}

/// A running `maglev daemon`, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// `host:port` or `unix:/path`, as `--grpc-addr` got it.
    pub grpc_addr: String,
    pub metrics_addr: SocketAddr,
    /// Just before the process was spawned.
    pub started: Instant,
    log: PathBuf,
}

/// Builder for a daemon run.
pub struct DaemonBuilder {
    config: String,
    grpc: Grpc,
    extra: Vec<String>,
    grpc_addr: Option<String>,
    log_level: String,
    log_format: String,
    vpp_api_addr: String,
    vpp_stats_addr: Option<String>,
    env: Vec<(String, String)>,
}

impl DaemonBuilder {
    pub fn new(config: impl Into<String>) -> Self {
        DaemonBuilder {
            config: config.into(),
            grpc: Grpc::Loopback,
            extra: Vec::new(),
            grpc_addr: None,
            log_level: "debug".to_string(),
            log_format: "json".to_string(),
            vpp_api_addr: String::new(),
            vpp_stats_addr: None,
            env: Vec::new(),
        }
    }

    /// A daemon programming VPP through the API socket `api` (stats off), logging at info:
    /// how the tests against the VPP double run it.
    pub fn with_vpp(config: impl Into<String>, api: &std::path::Path) -> Self {
        Self::new(config).vpp_api(api).log_level("info")
    }

    pub fn grpc(mut self, grpc: Grpc) -> Self {
        self.grpc = grpc;
        self
    }

    /// Overrides `--grpc-addr` entirely.
    pub fn grpc_addr(mut self, addr: impl Into<String>) -> Self {
        self.grpc_addr = Some(addr.into());
        self
    }

    /// `--log-level` of the daemon's own output (default debug).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_string();
        self
    }

    /// `--log-format` of the daemon's own output (default json).
    pub fn log_format(mut self, format: &str) -> Self {
        self.log_format = format.to_string();
        self
    }

    /// Turns VPP on: `--vpp-api-addr api` and, if given, `--vpp-stats-addr stats` (else
    /// the stats are off). Default: VPP off.
    pub fn vpp(mut self, api: &std::path::Path, stats: Option<&std::path::Path>) -> Self {
        self.vpp_api_addr = api.display().to_string();
        self.vpp_stats_addr = Some(stats.map(|p| p.display().to_string()).unwrap_or_default());
        self
    }

    /// An environment variable of the daemon process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// `--vpp-api-addr` with the stats segment off, so that the API sees only what the
    /// reconciler sends (tests that count messages rely on it).
    pub fn vpp_api(self, path: &std::path::Path) -> Self {
        self.vpp(path, None)
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.extra.push(a.into());
        self
    }

    /// Starts the process (does not wait for it to listen).
    pub fn spawn(self) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("maglev.toml");
        std::fs::write(&config, &self.config).expect("write config");
        let grpc_addr = match (self.grpc_addr, &self.grpc) {
            (Some(a), _) => a,
            (None, Grpc::Loopback) => format!("127.0.0.1:{}", free_port("127.0.0.1")),
            (None, Grpc::Unix) => format!("unix:{}", dir.path().join("maglev.sock").display()),
        };
        let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
            .parse()
            .expect("addr");
        let log = dir.path().join("daemon.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let started = Instant::now();
        let child = Command::new(assert_cmd::cargo::cargo_bin("maglev"))
            .arg("daemon")
            .arg("--config")
            .arg(&config)
            .args(["--grpc-addr", &grpc_addr])
            .args(["--metrics-addr", &metrics_addr.to_string()])
            .args(["--vpp-api-addr", &self.vpp_api_addr])
            .args(
                self.vpp_stats_addr
                    .iter()
                    .flat_map(|s| ["--vpp-stats-addr", s.as_str()]),
            )
            .args(["--log-format", &self.log_format])
            .args(["--log-level", &self.log_level])
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .env_remove("MAGLEV_GRPC_INSECURE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn maglev daemon");
        Daemon {
            child,
            dir,
            config,
            grpc_addr,
            metrics_addr,
            started,
            log,
        }
    }

    /// Starts the daemon and waits until gRPC answers.
    pub async fn start(self) -> Daemon {
        let mut d = self.spawn();
        d.wait_grpc().await;
        d
    }
}

impl Daemon {
    /// Everything the daemon logged so far (JSON lines).
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Polls `f` every 50 ms until it returns Some; after `limit` panics with `what` and
    /// the tail of the daemon's log.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            if start.elapsed() > limit {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "timed out waiting for {what}; daemon log tail (newest first):\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to `limit` until the daemon's log contains `needle`.
    /// [`Daemon::wait_for`] with an async check (a gRPC call, a scrape).
    pub async fn wait_for_async<T, F, Fut>(&self, what: &str, limit: Duration, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if start.elapsed() > limit {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "timed out waiting for {what}; daemon log tail (newest first):\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_log(&self, needle: &str, limit: Duration) {
        self.wait_for(&format!("log line {needle:?}"), limit, || {
            self.log().contains(needle).then_some(())
        })
        .await;
    }

    pub fn socket_path(&self) -> Option<PathBuf> {
        self.grpc_addr.strip_prefix("unix:").map(PathBuf::from)
    }

    /// Waits until a GetVersion call succeeds (panics with the log if the daemon died).
    pub async fn wait_grpc(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("daemon exited early ({status}):\n{}", self.log());
            }
            if let Ok(mut c) = self.try_client().await
                && c.get_version(maglev::proto::GetVersionRequest {})
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "gRPC never answered on {}:\n{}",
                self.grpc_addr,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn try_client(&self) -> Result<MaglevClient<Channel>, tonic::transport::Error> {
        let channel = match self.socket_path() {
            Some(path) => unix_channel(path).await?,
            None => {
                Endpoint::from_shared(format!("http://{}", self.grpc_addr))?
                    .connect_timeout(Duration::from_secs(5))
                    .connect()
                    .await?
            }
        };
        Ok(MaglevClient::new(channel))
    }

    /// A connected plaintext client.
    pub async fn client(&self) -> MaglevClient<Channel> {
        self.try_client().await.expect("connect to the daemon")
    }

    /// Runs `maglev ctl` against this daemon (20 s timeout, no colour).
    pub fn ctl(&self, words: &[&str]) -> std::process::Output {
        Command::new(assert_cmd::cargo::cargo_bin("maglev"))
            .args(["ctl", "--server", &self.grpc_addr, "--timeout", "20s"])
            .args(words)
            .env_remove("MAGLEV_SERVER")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run maglev ctl")
    }

    /// `ctl`, which must exit 0; its stdout.
    pub fn ctl_ok(&self, words: &[&str]) -> String {
        let o = self.ctl(words);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(
            o.status.code(),
            Some(0),
            "ctl {words:?}\nstdout: {out}\nstderr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    pub fn metrics_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.metrics_addr)
    }

    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the daemon (`/proc/<pid>/fd`).
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, ...), or a count field
    /// (`Threads`).
    pub fn status_field(&self, field: &str) -> u64 {
        proc_status_field(self.pid(), field)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Replaces the config file atomically (write + rename), so a concurrent reload
    /// never reads half a file.
    pub fn write_config_atomic(&self, text: &str) {
        let tmp = self.dir.path().join("maglev.toml.new");
        std::fs::write(&tmp, text).expect("write new config");
        std::fs::rename(&tmp, &self.config).expect("rename config");
    }

    /// Replaces the config file and sends SIGHUP.
    pub fn reload(&self, text: &str) {
        self.write_config(text);
        self.signal(libc::SIGHUP);
    }

    /// Replaces the config file (for reload tests).
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("rewrite config");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A channel over a Unix socket (the URI is a placeholder; the connector ignores it).
pub async fn unix_channel(path: PathBuf) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
}

/// GET on the metrics listener: (status, body).
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    let uri: hyper::Uri = url.parse().ok()?;
    let authority = uri.authority()?.to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.ok()?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(conn);
    let req = hyper::Request::get(uri.path())
        .header(hyper::header::HOST, authority)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .ok()?;
    let resp = sender.send_request(req).await.ok()?;
    let status = resp.status().as_u16();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .ok()?
        .to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A numeric field of `/proc/<pid>/status` (the first number after `field:`), 0 if absent.
pub fn proc_status_field(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Path helper for tests writing files next to the daemon's.
pub fn in_dir(d: &Daemon, name: &str) -> PathBuf {
    d.dir.path().join(name)
}
