//! Scale benchmarks of the checker against HAProxy (issue 9, parts 1, 4 and 5).
//!
//! `cargo bench --bench scale -- [--smoke] [--reps N] [--out DIR] [--maglev PATH]
//! [--only probe|ctl] [--case N:interval_ms] [--kinds tcp,http] [--settle SECS]`
//!
//! Every figure comes from /proc (CPU = user + system time, RSS = VmRSS) of processes
//! this harness starts; all traffic stays on 127.0.0.0/8. Results go to `DIR/scale.json`
//! (raw samples) and `DIR/scale.md` (the tables). `scale backend N PORT` is the fast
//! backend the harness starts as a child.

mod backend;
mod httpget;
mod procfs;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Tcp,
    Http,
    Icmp,
    TcpSyn,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Icmp => "icmp",
            Kind::TcpSyn => "tcp-syn",
        }
    }
    /// HAProxy runs beside maglev for the checks it has.
    fn haproxy(self) -> bool {
        matches!(self, Kind::Tcp | Kind::Http)
    }
}

struct Opts {
    smoke: bool,
    reps: usize,
    out: PathBuf,
    maglev: PathBuf,
    only: Option<String>,
    /// HAProxy is installed (the smoke run goes on without it).
    haproxy: bool,
    /// `--case N:interval_ms` (repeatable): only these configurations.
    cases: Vec<(usize, Duration)>,
    /// `--kinds tcp,http`: only these check types.
    kinds: Vec<Kind>,
    /// `--settle SECS`: how long the probe part waits after "all up" before its window
    /// (issue 14 asks for the RSS of 10,000 backends after 10 minutes).
    settle: Option<Duration>,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("backend") {
        let n = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(1);
        let port = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(8080);
        procfs::raise_nofile(65_536);
        if let Err(e) = backend::run(n, port) {
            eprintln!("backend: {e}");
            std::process::exit(1);
        }
        return;
    }
    let mut opts = Opts {
        smoke: false,
        reps: 3,
        out: PathBuf::from("target/perf"),
        maglev: PathBuf::from("target/release/maglev"),
        only: None,
        cases: Vec::new(),
        kinds: Vec::new(),
        settle: None,
        haproxy: Command::new("haproxy")
            .arg("-v")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => opts.smoke = true,
            "--reps" => opts.reps = it.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            "--out" => opts.out = it.next().map(PathBuf::from).unwrap_or(opts.out),
            "--maglev" => opts.maglev = it.next().map(PathBuf::from).unwrap_or(opts.maglev),
            "--only" => opts.only = it.next(),
            "--case" => {
                let v = it.next().unwrap_or_default();
                if let Some((n, ms)) = v.split_once(':')
                    && let (Ok(n), Ok(ms)) = (n.parse(), ms.parse())
                {
                    opts.cases.push((n, Duration::from_millis(ms)));
                } else {
                    eprintln!("scale: --case wants N:interval_ms, got {v:?}");
                }
            }
            "--settle" => {
                opts.settle = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .map(Duration::from_secs);
            }
            "--kinds" => {
                let v = it.next().unwrap_or_default();
                opts.kinds = [Kind::Tcp, Kind::Http, Kind::Icmp, Kind::TcpSyn]
                    .into_iter()
                    .filter(|k| v.split(',').any(|w| w == k.name()))
                    .collect();
            }
            other => eprintln!("scale: ignoring argument {other:?}"),
        }
    }
    if opts.smoke {
        opts.reps = 1;
    }
    if !opts.haproxy {
        if opts.smoke {
            eprintln!("scale: haproxy is not installed: maglev only");
        } else {
            eprintln!("scale: haproxy is not installed (apt-get install -y haproxy)");
            std::process::exit(1);
        }
    }
    procfs::raise_nofile(65_536);
    if let Err(e) = run(&opts) {
        eprintln!("scale: {e}");
        std::process::exit(1);
    }
}

fn run(opts: &Opts) -> Res<()> {
    std::fs::create_dir_all(&opts.out)?;
    let mut md = String::new();
    let want = |part: &str| opts.only.as_deref().is_none_or(|o| o == part);
    if want("probe") {
        let samples = probe_cost(opts)?;
        std::fs::write(
            opts.out.join("scale.json"),
            serde_json::to_string_pretty(&samples)?,
        )?;
        md.push_str(&probe_table(&samples));
    }
    if want("ctl") {
        md.push_str(&start_ctl_memory(opts)?);
    }
    std::fs::write(opts.out.join("scale.md"), &md)?;
    print!("{md}");
    Ok(())
}

// ---------------------------------------------------------------- processes

/// A child process killed (and reaped) on drop.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn alive(&mut self) -> Res<()> {
        match self.child.try_wait()? {
            Some(s) => Err(format!("{} exited early: {s}", self.name).into()),
            None => Ok(()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Res<Option<T>>) -> Res<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if start.elapsed() > limit {
            return Err(format!("timed out after {limit:?} waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_backend(n: usize, port: u16) -> Res<Proc> {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["backend", &n.to_string(), &port.to_string()])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        std::io::BufReader::new(out).read_line(&mut line)?;
    }
    let p = Proc {
        child,
        name: "backend",
    };
    if line.trim() != "ready" {
        return Err("backend did not start".into());
    }
    Ok(p)
}

// ---------------------------------------------------------------- maglev

fn maglev_config(kind: Kind, n: usize, port: u16, interval: Duration) -> String {
    let timeout = interval.min(Duration::from_secs(1));
    let mut c = String::new();
    let _ = writeln!(c, "[healthchecks.hc]\ntype = \"{}\"", kind.name());
    if kind != Kind::Icmp {
        let _ = writeln!(c, "port = {port}");
    }
    let ms = interval.as_millis();
    let _ = writeln!(
        c,
        "interval = \"{ms}ms\"\nfast-interval = \"{ms}ms\"\ndown-interval = \"{ms}ms\"\n\
         timeout = \"{}ms\"\nrise = 2\nfall = 3",
        timeout.as_millis()
    );
    if kind == Kind::Http {
        c.push_str("[healthchecks.hc.params]\npath = \"/healthz\"\n");
    }
    for i in 0..n {
        let _ = writeln!(
            c,
            "[backends.b{i}]\naddress = \"{}\"\nhealthcheck = \"hc\"",
            backend::address(i)
        );
    }
    c
}

struct Maglev {
    proc: Proc,
    metrics: SocketAddr,
    grpc: SocketAddr,
}

fn start_maglev(opts: &Opts, dir: &Path, config: &str, notify: Option<&Path>) -> Res<Maglev> {
    let cfg = dir.join("maglev.toml");
    std::fs::write(&cfg, config)?;
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let log = std::fs::File::create(dir.join("maglev.log"))?;
    let mut cmd = Command::new(&opts.maglev);
    cmd.arg("daemon")
        .arg("--config")
        .arg(&cfg)
        .args(["--grpc-addr", &grpc.to_string()])
        .args(["--metrics-addr", &metrics.to_string()])
        .args(["--vpp-api-addr", ""])
        .args(["--log-format", "json", "--log-level", "warn"])
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(n) = notify {
        cmd.env("NOTIFY_SOCKET", n);
    }
    let child = cmd.spawn()?;
    Ok(Maglev {
        proc: Proc {
            child,
            name: "maglev",
        },
        metrics,
        grpc,
    })
}

/// (backends up, probes done so far) from /metrics.
fn maglev_status(m: &Maglev) -> Res<(usize, u64)> {
    let text = httpget::get(m.metrics, "/metrics")?;
    let mut up = 0;
    let mut probes = 0u64;
    for line in text.lines() {
        if line.starts_with("maglev_backend_state{") && line.contains("state=\"up\"} 1") {
            up += 1;
        } else if line.starts_with("maglev_probe_total{")
            && let Some(v) = line.rsplit(' ').next()
        {
            probes += v.parse::<f64>().unwrap_or(0.0) as u64;
        }
    }
    Ok((up, probes))
}

// ---------------------------------------------------------------- haproxy

fn haproxy_config(kind: Kind, n: usize, port: u16, interval: Duration, sock: &Path) -> Res<String> {
    let timeout = interval.min(Duration::from_secs(1)).as_millis();
    let mut c = String::new();
    let mode = if kind == Kind::Http { "http" } else { "tcp" };
    let _ = write!(
        c,
        "global\n  nbthread 1\n  maxconn 4000\n  stats socket {} mode 600 level admin\n\
         defaults\n  mode {mode}\n  timeout connect {timeout}ms\n  timeout check {timeout}ms\n\
         timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{}\n  default_backend be\n\
         backend be\n",
        sock.display(),
        free_port()?
    );
    if kind == Kind::Http {
        c.push_str("  option httpchk GET /healthz\n");
    }
    let ms = interval.as_millis();
    for i in 0..n {
        let _ = writeln!(
            c,
            "  server s{i} {}:{port} check inter {ms}ms rise 2 fall 3",
            backend::address(i)
        );
    }
    Ok(c)
}

fn start_haproxy(dir: &Path, config: &str) -> Res<Proc> {
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, config)?;
    let log = std::fs::File::create(dir.join("haproxy.log"))?;
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    Ok(Proc {
        child,
        name: "haproxy",
    })
}

/// Servers of backend `be` that HAProxy shows as UP.
fn haproxy_up(sock: &Path) -> Res<usize> {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return Ok(0);
    };
    s.write_all(b"show stat\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(px), Some(sv), Some(st)) = (col("pxname"), col("svname"), col("status")) else {
        return Ok(0);
    };
    Ok(lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| {
            f.get(px) == Some(&"be")
                && f.get(sv).is_some_and(|s| *s != "BACKEND")
                && f.get(st).is_some_and(|s| s.starts_with("UP"))
        })
        .count())
}

// ---------------------------------------------------------------- part 1

#[derive(Debug, Clone, Serialize)]
struct Sample {
    tool: &'static str,
    kind: Kind,
    n: usize,
    interval_ms: u128,
    rep: usize,
    window_s: f64,
    checks: f64,
    cpu_us: f64,
    us_per_check: f64,
    rss_kib: u64,
    backend_us_per_check: f64,
    all_up: bool,
    loadavg: f64,
}

fn cases(smoke: bool) -> Vec<(usize, Duration)> {
    if smoke {
        return vec![(200, Duration::from_millis(100))];
    }
    // N and the interval giving about 2,000 and 10,000 checks/s.
    vec![
        (1_000, Duration::from_millis(500)),
        (1_000, Duration::from_millis(100)),
        (5_000, Duration::from_millis(2_500)),
        (5_000, Duration::from_millis(500)),
        (10_000, Duration::from_millis(5_000)),
        (10_000, Duration::from_millis(1_000)),
    ]
}

fn probe_cost(opts: &Opts) -> Res<Vec<Sample>> {
    let kinds = if !opts.kinds.is_empty() {
        opts.kinds.clone()
    } else if opts.smoke {
        vec![Kind::Tcp, Kind::Http]
    } else {
        vec![Kind::Tcp, Kind::Http, Kind::Icmp, Kind::TcpSyn]
    };
    let cases = if opts.cases.is_empty() {
        cases(opts.smoke)
    } else {
        opts.cases.clone()
    };
    let mut samples = Vec::new();
    for rep in 0..opts.reps {
        for &(n, interval) in &cases {
            let port = free_port()?;
            let mut be = start_backend(n, port)?;
            for &kind in &kinds {
                match one_run(opts, &mut be, kind, n, interval, port, rep) {
                    Ok(mut s) => {
                        for x in &s {
                            eprintln!(
                                "scale: rep {rep} {} {} n={n} every {interval:?}: {:.1} µs/check, \
                                 RSS {} KiB, up={} (load {:.2})",
                                x.tool,
                                kind.name(),
                                x.us_per_check,
                                x.rss_kib,
                                x.all_up,
                                x.loadavg
                            );
                        }
                        samples.append(&mut s);
                    }
                    Err(e) => eprintln!("scale: {} n={n} {interval:?}: FAILED: {e}", kind.name()),
                }
            }
        }
    }
    Ok(samples)
}

fn one_run(
    opts: &Opts,
    be: &mut Proc,
    kind: Kind,
    n: usize,
    interval: Duration,
    port: u16,
    rep: usize,
) -> Res<Vec<Sample>> {
    let dir = tempfile::tempdir()?;
    let mut m = start_maglev(
        opts,
        dir.path(),
        &maglev_config(kind, n, port, interval),
        None,
    )?;
    let sock = dir.path().join("haproxy.sock");
    let mut h = if kind.haproxy() && opts.haproxy {
        Some(start_haproxy(
            dir.path(),
            &haproxy_config(kind, n, port, interval, &sock)?,
        )?)
    } else {
        None
    };
    let limit = interval * 4 + Duration::from_secs(30);
    wait_for("every backend up in maglev", limit, || {
        m.proc.alive()?;
        Ok(maglev_status(&m)
            .ok()
            .and_then(|(up, _)| (up == n).then_some(())))
    })?;
    if let Some(h) = &mut h {
        wait_for("every server up in HAProxy", limit, || {
            h.alive()?;
            Ok((haproxy_up(&sock)? == n).then_some(()))
        })?;
    }
    // Let both settle into their steady rhythm (the first round is spread out).
    std::thread::sleep(if opts.smoke {
        Duration::from_millis(300)
    } else {
        opts.settle
            .unwrap_or_else(|| interval.max(Duration::from_secs(1)))
    });
    let window = if opts.smoke {
        Duration::from_secs(1)
    } else {
        (interval * 2).max(Duration::from_secs(6))
    };
    let (_, probes0) = maglev_status(&m)?;
    let t0 = Instant::now();
    let m0 = procfs::cpu_time(m.proc.pid()).unwrap_or_default();
    let h0 = h
        .as_ref()
        .and_then(|h| procfs::cpu_time(h.pid()))
        .unwrap_or_default();
    let b0 = procfs::cpu_time(be.pid()).unwrap_or_default();
    // HAProxy has no check counter: count its connect() calls over the window instead.
    let h_connects = h
        .as_ref()
        .and_then(|h| ConnectCount::start(h.pid(), window));
    std::thread::sleep(window);
    let m1 = procfs::cpu_time(m.proc.pid()).unwrap_or_default();
    let h1 = h
        .as_ref()
        .and_then(|h| procfs::cpu_time(h.pid()))
        .unwrap_or_default();
    let b1 = procfs::cpu_time(be.pid()).unwrap_or_default();
    let elapsed = t0.elapsed().as_secs_f64();
    let load = procfs::loadavg();
    let (m_up, probes1) = maglev_status(&m)?;
    let m_rss = procfs::rss_kib(m.proc.pid()).unwrap_or(0);
    let h_up = if h.is_some() { haproxy_up(&sock)? } else { 0 };
    let h_rss = h
        .as_ref()
        .and_then(|h| procfs::rss_kib(h.pid()))
        .unwrap_or(0);
    // On a loaded machine a checker falls behind its schedule: the nominal rate is only the
    // fallback when connect() could not be counted.
    let nominal = n as f64 * elapsed / interval.as_secs_f64();
    let h_checks = h_connects
        .and_then(ConnectCount::finish)
        .map_or(nominal, |c| c as f64);
    let m_checks = (probes1 - probes0) as f64;
    let b_cpu = (b1 - b0).as_secs_f64() * 1e6;
    // The backend serves both checkers at once: its cost is per check received.
    let b_checks = m_checks + if h.is_some() { h_checks } else { 0.0 };
    let sample = |tool, cpu: f64, checks: f64, rss, up| Sample {
        tool,
        kind,
        n,
        interval_ms: interval.as_millis(),
        rep,
        window_s: elapsed,
        checks,
        cpu_us: cpu,
        us_per_check: cpu / checks.max(1.0),
        rss_kib: rss,
        backend_us_per_check: b_cpu / b_checks.max(1.0),
        all_up: up,
        loadavg: load,
    };
    let mut out = vec![sample(
        "maglev",
        (m1 - m0).as_secs_f64() * 1e6,
        m_checks,
        m_rss,
        m_up == n,
    )];
    if h.is_some() {
        out.push(sample(
            "haproxy",
            (h1 - h0).as_secs_f64() * 1e6,
            h_checks,
            h_rss,
            h_up == n,
        ));
    }
    be.alive()?;
    Ok(out)
}

/// `perf stat` counting the connect() system calls of a process for a while.
struct ConnectCount {
    child: Child,
}

impl ConnectCount {
    fn start(pid: u32, window: Duration) -> Option<ConnectCount> {
        let child = Command::new("perf")
            .args(["stat", "-x,", "-e", "syscalls:sys_enter_connect", "-p"])
            .arg(pid.to_string())
            .args(["--", "sleep"])
            .arg(format!("{:.3}", window.as_secs_f64()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        Some(ConnectCount { child })
    }

    /// The count, once perf has finished; None if perf is missing or not permitted.
    fn finish(self) -> Option<u64> {
        let out = self.child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stderr);
        let line = text.lines().find(|l| l.contains("sys_enter_connect"))?;
        let count = line.split(',').next()?.trim().parse().ok();
        if count.is_none() {
            eprintln!("scale: perf could not count connect(): {line}");
        }
        count
    }
}

/// (median, min, max).
fn stats(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((v[v.len() / 2], v[0], v[v.len() - 1]))
}

fn fmt_stats(s: Option<(f64, f64, f64)>, digits: usize) -> String {
    match s {
        Some((med, lo, hi)) => format!("{med:.digits$} ({lo:.digits$}–{hi:.digits$})"),
        None => "–".into(),
    }
}

fn probe_table(samples: &[Sample]) -> String {
    let mut md = String::new();
    md.push_str(
        "### 1. Probe cost at scale\n\n\
         CPU-µs per check of the checker process (median of the runs, min–max in brackets); \
         RSS in MiB at the end of the window. HAProxy runs the same checks against the same \
         backends at the same time (it has no ICMP or half-open check: those rows compare \
         with its TCP check of the same N and rate). `up` = every backend was up in both \
         checkers at the start and the end of every window.\n\n\
         `done/s` is the rate each checker actually kept up over the window (maglev: its \
         probe counter; HAProxy: its connect() calls counted with `perf stat`), which falls \
         short of the nominal rate when the machine is overloaded.\n\n\
         | N | checks/s | check | maglev µs/check | HAProxy µs/check | ratio | target | \
         maglev RSS MiB | HAProxy RSS MiB | RSS ratio | maglev % of a core | done/s maglev / HAProxy | backend µs/check | up | load |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut keys: Vec<(usize, u128, Kind)> = Vec::new();
    for s in samples {
        let k = (s.n, s.interval_ms, s.kind);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let order = |k: &Kind| {
        [Kind::Tcp, Kind::Http, Kind::Icmp, Kind::TcpSyn]
            .iter()
            .position(|x| x == k)
    };
    keys.sort_by_key(|(n, i, k)| (*n, std::cmp::Reverse(*i), order(k)));
    for (n, interval_ms, kind) in keys {
        let pick = |tool: &str, kind: Kind| -> Vec<&Sample> {
            samples
                .iter()
                .filter(|s| {
                    s.tool == tool && s.n == n && s.interval_ms == interval_ms && s.kind == kind
                })
                .collect()
        };
        let mg = pick("maglev", kind);
        let hk = if kind.haproxy() { kind } else { Kind::Tcp };
        let hp = pick("haproxy", hk);
        let med = |v: &[&Sample], f: fn(&Sample) -> f64| stats(v.iter().map(|s| f(s)).collect());
        let m_cpu = med(&mg, |s| s.us_per_check);
        let h_cpu = med(&hp, |s| s.us_per_check);
        let m_rss = med(&mg, |s| s.rss_kib as f64 / 1024.0);
        let h_rss = med(&hp, |s| s.rss_kib as f64 / 1024.0);
        let core = med(&mg, |s| s.cpu_us / s.window_s / 1e4);
        let b = med(&mg, |s| s.backend_us_per_check);
        let m_rate = med(&mg, |s| s.checks / s.window_s);
        let h_rate = med(&hp, |s| s.checks / s.window_s);
        let ratio = |a: Option<(f64, f64, f64)>, b: Option<(f64, f64, f64)>| match (a, b) {
            (Some(a), Some(b)) if b.0 > 0.0 => format!("{:.2}", a.0 / b.0),
            _ => "–".into(),
        };
        let target = match kind {
            Kind::Tcp | Kind::Http => "≤ 1.0",
            Kind::TcpSyn => "≤ 0.5 (vs TCP)",
            Kind::Icmp => "(vs TCP)",
        };
        let up = mg.iter().chain(hp.iter()).all(|s| s.all_up) && !mg.is_empty();
        let load = stats(mg.iter().map(|s| s.loadavg).collect());
        let _ = writeln!(
            md,
            "| {n} | {:.0} | {} | {} | {} | {} | {target} | {} | {} | {} | {} | {} / {} | {} | {} | {} |",
            n as f64 * 1000.0 / interval_ms as f64,
            kind.name(),
            fmt_stats(m_cpu, 1),
            fmt_stats(h_cpu, 1),
            ratio(m_cpu, h_cpu),
            fmt_stats(m_rss, 1),
            fmt_stats(h_rss, 1),
            ratio(m_rss, h_rss),
            fmt_stats(core, 1),
            m_rate.map_or("–".into(), |r| format!("{:.0}", r.0)),
            h_rate.map_or("–".into(), |r| format!("{:.0}", r.0)),
            fmt_stats(b, 1),
            if up { "yes" } else { "NO" },
            fmt_stats(load, 1),
        );
    }
    md.push('\n');
    md
}

// ---------------------------------------------------------------- parts 4 and 5

fn start_ctl_memory(opts: &Opts) -> Res<String> {
    let n = if opts.smoke { 500 } else { 10_000 };
    let interval = Duration::from_secs(1);
    let reps = if opts.smoke { 1 } else { opts.reps };
    let port = free_port()?;
    let _be = start_backend(n, port)?;
    let mut ready = Vec::new();
    let mut all_up = Vec::new();
    let mut ctl_text = Vec::new();
    let mut ctl_json = Vec::new();
    let mut rss_late = Vec::new();
    let mut cpu_late = Vec::new();
    let settle = if opts.smoke {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(90)
    };
    for rep in 0..reps {
        let dir = tempfile::tempdir()?;
        let notify_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path)?;
        notify.set_read_timeout(Some(Duration::from_secs(60)))?;
        let t0 = Instant::now();
        let mut m = start_maglev(
            opts,
            dir.path(),
            &maglev_config(Kind::Tcp, n, port, interval),
            Some(&notify_path),
        )?;
        let mut buf = [0u8; 256];
        loop {
            let len = notify.recv(&mut buf)?;
            if String::from_utf8_lossy(&buf[..len]).contains("READY=1") {
                break;
            }
        }
        ready.push(t0.elapsed().as_secs_f64() * 1e3);
        wait_for("every backend up", Duration::from_secs(60), || {
            m.proc.alive()?;
            Ok(maglev_status(&m)
                .ok()
                .and_then(|(up, _)| (up == n).then_some(())))
        })?;
        all_up.push(t0.elapsed().as_secs_f64() * 1e3);
        for (json, into) in [(false, &mut ctl_text), (true, &mut ctl_json)] {
            for _ in 0..3 {
                let mut cmd = Command::new(&opts.maglev);
                cmd.arg("ctl").args(["--server", &m.grpc.to_string()]);
                if json {
                    cmd.arg("--json");
                }
                let t = Instant::now();
                let out = cmd
                    .args(["show", "backends"])
                    .env("NO_COLOR", "1")
                    .stdin(Stdio::null())
                    .output()?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let lines = out.stdout.iter().filter(|b| **b == b'\n').count();
                if !out.status.success() || (!json && lines < n) {
                    return Err(format!(
                        "ctl show backends failed ({} lines): {}",
                        lines,
                        String::from_utf8_lossy(&out.stderr)
                    )
                    .into());
                }
                into.push(ms);
            }
        }
        // The long wait for the late RSS and CPU only once.
        if rep == 0 {
            let left = settle.saturating_sub(t0.elapsed());
            let c0 = procfs::cpu_time(m.proc.pid()).unwrap_or_default();
            let w0 = Instant::now();
            std::thread::sleep(left.max(Duration::from_secs(2)));
            let c1 = procfs::cpu_time(m.proc.pid()).unwrap_or_default();
            cpu_late.push((c1 - c0).as_secs_f64() / w0.elapsed().as_secs_f64() * 100.0);
            rss_late.push(procfs::rss_kib(m.proc.pid()).unwrap_or(0) as f64 / 1024.0);
        }
        eprintln!(
            "scale: rep {rep} start: ready {:.0} ms, all up {:.0} ms, RSS {:?} MiB at {:?}",
            ready[rep],
            all_up[rep],
            rss_late.last(),
            t0.elapsed()
        );
    }
    let mut md = String::new();
    let _ = write!(
        md,
        "### 4. ctl one-shot with {n} backends\n\n\
         Wall time of `maglev ctl show backends` as a new process (start, connect, call, \
         render, exit), 3 calls per daemon start, all runs pooled.\n\n\
         | command | ms | target |\n|---|---|---|\n\
         | `maglev ctl show backends` | {} | < 100 |\n\
         | `maglev ctl --json show backends` | {} | < 100 |\n\n\
         ### 5. Start and memory with {n} backends (TCP, every 1 s)\n\n\
         | figure | value |\n|---|---|\n\
         | start to READY=1 (sd_notify), ms | {} |\n\
         | start to every backend up, ms | {} |\n\
         | RSS after {:?} (first start), MiB (target < 32) | {} |\n\
         | CPU, % of one core, steady state (TCP, every 1 s) | {} |\n\n",
        fmt_stats(stats(ctl_text), 1),
        fmt_stats(stats(ctl_json), 1),
        fmt_stats(stats(ready), 1),
        fmt_stats(stats(all_up), 0),
        settle,
        fmt_stats(stats(rss_late), 1),
        fmt_stats(stats(cpu_late), 1),
    );
    Ok(md)
}
