//! VPP-side benchmarks (issue 9, parts 2 and 3) against the in-process VPP double.
//!
//! `cargo bench --bench vpp -- [--smoke] [--reps N] [--out DIR] [--full-sync-only]`
//! (`--full-sync-only`: only the full syncs, for profiling; writes no report.)
//!
//! - Detection to dataplane: a scripted probe turns one backend down; the time from the
//!   moment that probe returns its failing result to the moment the double receives the
//!   `lb_as_set_weight` that sets the AS to 0 (the daemon's whole path: checker, event
//!   bus, reconciler, VPP client, socket). Over many failures, rotating over 100 VIPs.
//! - Sync throughput: a full sync (read, diff, write) of 1,000 VIPs x 64 ASes into an empty
//!   double, and per-VIP syncs of one changed AS in that full table, through the same
//!   `lb_io` and `diff` calls the reconciler makes: a per-VIP sync diffs that VIP's desired
//!   state against the mirror of VPP and reads nothing (issue 13); the double counts the
//!   reads to prove it.

// The test support files carry unit tests of their own that a bench does not run.
#[allow(unused_imports)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use maglev::checker::{Checker, Probe};
use maglev::cli::{Cli, Command};
use maglev::config::{self, Config};
use maglev::daemon::Daemon;
use maglev::events::EventBus;
use maglev::health::{ProbeResult, ResultCode, State};
use maglev::probe::ProbeSpec;
use maglev::vpp::client::{Client, ClientConfig};
use maglev::vpp::counters::VppCounters;
use maglev::vpp::lb::{ActualState, DesiredState, Scope, desired_now, desired_of, diff};
use maglev::vpp::lb_io;
use support::vpp_double::{ApiMode, VppDouble};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Probe results decided by the bench: an address in `down` fails.
#[derive(Default)]
struct Scripted {
    state: Mutex<ScriptState>,
}

#[derive(Default)]
struct ScriptState {
    down: HashSet<IpAddr>,
    /// When the first failing result of each down address was returned.
    failed_at: HashMap<IpAddr, Instant>,
}

impl Scripted {
    fn lock(&self) -> std::sync::MutexGuard<'_, ScriptState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Probe for Scripted {
    fn probe<'a>(
        &'a self,
        spec: &'a ProbeSpec,
    ) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>> {
        Box::pin(async move {
            let mut st = self.lock();
            if st.down.contains(&spec.addr) {
                st.failed_at.entry(spec.addr).or_insert_with(Instant::now);
                ProbeResult::new(ResultCode::L4Con, "scripted down", Duration::ZERO)
            } else {
                ProbeResult::new(ResultCode::L4Ok, "scripted up", Duration::ZERO)
            }
        })
    }
}

fn vip_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8))
}

fn backend_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 20, (i / 250) as u8, (i % 250 + 1) as u8))
}

/// `frontends` VIPs; VIP i holds the backends `members(i)`.
fn config_text(
    frontends: usize,
    backends: usize,
    interval: &str,
    members: impl Fn(usize) -> Vec<usize>,
) -> String {
    let mut c = format!(
        "[vpp.lb]\nsync-interval = \"1h\"\nipv4-src-address = \"192.0.2.254\"\n\
         startup-min-delay = \"0s\"\nstartup-max-delay = \"0s\"\n\n\
         [healthchecks.hc]\ntype = \"tcp\"\nport = 80\ninterval = \"{interval}\"\n\
         fast-interval = \"{interval}\"\ndown-interval = \"{interval}\"\ntimeout = \"{interval}\"\n\
         rise = 1\nfall = 1\n\n"
    );
    for b in 0..backends {
        let _ = writeln!(
            c,
            "[backends.b{b}]\naddress = \"{}\"\nhealthcheck = \"hc\"",
            backend_addr(b)
        );
    }
    for f in 0..frontends {
        let list: Vec<String> = members(f).iter().map(|b| format!("b{b} = {{}}")).collect();
        let _ = writeln!(
            c,
            "[frontends.f{f}]\naddress = \"{}\"\nprotocol = \"tcp\"\nport = 80\n\
             [[frontends.f{f}.pools]]\nname = \"primary\"\nbackends = {{ {} }}",
            vip_addr(f),
            list.join(", ")
        );
    }
    c
}

fn load(text: &str) -> Res<Arc<Config>> {
    config::load_str(text, Path::new("bench.toml"))
        .map(Arc::new)
        .map_err(|e| format!("bench config invalid: {}", e.lines().join("; ")).into())
}

async fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> Res<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > limit {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// (p50, p99, max) of `v` (sorted in place).
fn percentiles(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

// ---------------------------------------------------------------- part 2

async fn detection(failures: usize) -> Res<Vec<f64>> {
    const VIPS: usize = 100;
    let anchor = VIPS; // one always-up backend in every VIP keeps the VIPs up
    let text = config_text(VIPS, VIPS + 1, "20ms", |f| vec![f, anchor]);
    let cfg = load(&text)?;
    let double = VppDouble::start(ApiMode::V1_2).await;
    let sock = double.socket_path().to_string_lossy().to_string();
    let cli = Cli::parse_from(["maglev", "daemon", "--vpp-api-addr", &sock]);
    let Command::Daemon(args) = cli.command else {
        return Err("not the daemon role".into());
    };
    let probe = Arc::new(Scripted::default());
    let bus = EventBus::new(4096);
    let checker = Checker::start(cfg.clone(), probe.clone(), bus.clone());
    let daemon = Arc::new(Daemon::new(args, checker, bus, cfg));
    let service = daemon.start_vpp()?;
    let weight_of = |f: usize| {
        let v = double.vip(maglev::vpp::wire::Prefix::new(vip_addr(f), 32), 80)?;
        v.ases
            .iter()
            .find(|a| a.address == backend_addr(f))
            .map(|a| a.weight)
    };
    wait_for(
        "every AS in the double at 100",
        Duration::from_secs(30),
        || (0..VIPS).all(|f| weight_of(f) == Some(100)).then_some(()),
    )
    .await?;
    wait_for("warmup over", Duration::from_secs(30), || {
        daemon.vpp.get().warmup_done.then_some(())
    })
    .await?;
    let mut lat = Vec::with_capacity(failures);
    for k in 0..failures {
        let f = k % VIPS;
        let addr = backend_addr(f);
        // Its previous failure must be over (weight back at 100) first.
        wait_for("AS back up", Duration::from_secs(10), || {
            (weight_of(f) == Some(100)).then_some(())
        })
        .await?;
        let seen = double.writes().len();
        let sets = double.requests("lb_as_set_weight");
        {
            let mut st = probe.lock();
            st.failed_at.remove(&addr);
            st.down.insert(addr);
        }
        let at = wait_for("lb_as_set_weight 0", Duration::from_secs(10), || {
            // Cheap check first: copying the whole write log on every poll would compete
            // with the double for its lock.
            if double.requests("lb_as_set_weight") == sets {
                return None;
            }
            double.writes()[seen..]
                .iter()
                .find(|w| {
                    w.msg == "lb_as_set_weight" && w.address == Some(addr) && w.weight == Some(0)
                })
                .map(|w| w.at)
        })
        .await?;
        let failed = {
            let mut st = probe.lock();
            st.down.remove(&addr);
            st.failed_at.remove(&addr)
        };
        if let Some(t) = failed {
            lat.push(at.saturating_duration_since(t).as_secs_f64() * 1e3);
        }
    }
    service.stop();
    daemon.checker.stop();
    Ok(lat)
}

// ---------------------------------------------------------------- part 3

/// A VPP double on a thread and runtime of its own, so that its CPU time can be told
/// apart from the daemon side's (the bench's runtime). Stops when dropped.
struct OwnThreadDouble {
    double: Option<VppDouble>,
    /// Linux thread id of the double's thread (for `/proc/self/task/<tid>/schedstat`).
    tid: i32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OwnThreadDouble {
    fn start(mode: ApiMode) -> Res<OwnThreadDouble> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("vpp-double".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let double = VppDouble::start(mode).await;
                    // "/proc/thread-self" -> "<pid>/task/<tid>".
                    let tid = std::fs::read_link("/proc/thread-self")
                        .ok()
                        .and_then(|p| p.file_name()?.to_str()?.parse::<i32>().ok())
                        .unwrap_or(0);
                    let _ = tx.send(Ok((double, tid)));
                    let _ = stopped.await;
                });
            })?;
        let (double, tid) = rx.recv()??;
        Ok(OwnThreadDouble {
            double: Some(double),
            tid,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn get(&self) -> &VppDouble {
        // Only taken in drop.
        self.double.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// CPU time the double's thread used so far, in ms (ns precision, from schedstat).
    fn cpu_ms(&self) -> f64 {
        schedstat_ms(&format!("/proc/self/task/{}/schedstat", self.tid))
    }
}

impl Drop for OwnThreadDouble {
    fn drop(&mut self) {
        // Stop the double's tasks on its own runtime, then the runtime.
        drop(self.double.take());
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The first field of a schedstat file (ns on CPU), in ms; 0 if unreadable.
fn schedstat_ms(path: &str) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e6)
}

/// CPU time of the whole bench process so far, in ms (every thread, from schedstat).
fn process_cpu_ms() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    // Threads that ended are not listed: the bench's threads live for the whole run, and
    // the double's thread is read before it ends.
    dir.flatten()
        .map(|e| schedstat_ms(&format!("{}/schedstat", e.path().display())))
        .sum()
}

/// One full sync: wall time, and CPU of the double's thread and of the rest.
struct FullSync {
    wall_ms: f64,
    double_cpu_ms: f64,
    daemon_cpu_ms: f64,
    writes: usize,
}

struct Table {
    _double: OwnThreadDouble,
    client: Client,
    checker: Checker,
    counters: VppCounters,
    /// VPP as last read or written (the reconciler's mirror).
    mirror: ActualState,
}

fn desired(checker: &Checker) -> DesiredState {
    checker.read(desired_now)
}

/// A full sync as the reconciler does it: desired state, read VPP (it becomes the
/// mirror), diff, write (`lb_io::apply_all`, as the reconciler's writer).
async fn full_sync(t: &mut Table) -> Res<usize> {
    let desired = desired(&t.checker);
    let mode = lb_io::weight_mode(&t.client)?;
    t.mirror = lb_io::read_actual(&t.client, &t.counters, None).await?;
    write(t, &desired, Scope::All, mode).await
}

/// A per-VIP sync as the reconciler does it: that frontend's desired state, diffed
/// against the mirror; no read.
async fn vip_sync(t: &mut Table, frontend: &str) -> Res<usize> {
    let desired = t.checker.read(|st| desired_of(st, &[frontend.to_string()]));
    let key = desired.vip_of(frontend).ok_or("unknown VIP")?.key;
    let mode = lb_io::weight_mode(&t.client)?;
    write(t, &desired, Scope::Vip(key), mode).await
}

async fn write(
    t: &mut Table,
    desired: &DesiredState,
    scope: Scope,
    mode: maglev::vpp::lb::WeightMode,
) -> Res<usize> {
    let ops = diff(desired, &t.mirror, scope, mode).ops;
    let results = lb_io::apply_all(&t.client, &t.counters, &ops, mode, window()).await;
    for (op, r) in ops.iter().zip(results) {
        r.ok_or("a write was skipped")??;
        t.mirror.apply(op, mode);
    }
    Ok(ops.len())
}

/// VIPs in flight in a full sync: the reconciler's [`lb_io::WRITE_WINDOW`], or
/// `MAGLEV_BENCH_WINDOW` (to compare windows without rebuilding the daemon).
fn window() -> usize {
    std::env::var("MAGLEV_BENCH_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(lb_io::WRITE_WINDOW)
}

/// A fresh double, and a checker with `vips` x `per_vip` ASes, every backend up.
async fn full_table(vips: usize, per_vip: usize) -> Res<(Table, FullSync)> {
    let text = config_text(vips, per_vip, "1s", |_| (0..per_vip).collect());
    let cfg = load(&text)?;
    let checker = Checker::start(cfg, Arc::new(Scripted::default()), EventBus::new(4096));
    wait_for("every backend up", Duration::from_secs(30), || {
        checker
            .read(|st| st.backends.values().all(|e| e.health.state() == State::Up))
            .then_some(())
    })
    .await?;
    let double = OwnThreadDouble::start(ApiMode::V1_2)?;
    let client = Client::connect(ClientConfig {
        socket_path: PathBuf::from(double.get().socket_path()),
        client_name: "maglev-bench".into(),
        ..ClientConfig::default()
    })
    .await?;
    let mut t = Table {
        _double: double,
        client,
        checker,
        counters: VppCounters::default(),
        mirror: ActualState::default(),
    };
    let (cpu0, double0) = (process_cpu_ms(), t._double.cpu_ms());
    let start = Instant::now();
    let ops = full_sync(&mut t).await?;
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    let (cpu1, double1) = (process_cpu_ms(), t._double.cpu_ms());
    let sync = FullSync {
        wall_ms,
        double_cpu_ms: double1 - double0,
        daemon_cpu_ms: (cpu1 - cpu0) - (double1 - double0),
        writes: ops,
    };
    let vips_seen = t._double.get().vips();
    let ases: usize = vips_seen.iter().map(|v| v.ases.len()).sum();
    if vips_seen.len() != vips || ases != vips * per_vip {
        return Err(format!(
            "full sync left {} VIPs / {ases} ASes in the double ({ops} ops)",
            vips_seen.len()
        )
        .into());
    }
    Ok((t, sync))
}

/// The double's read requests so far (dumps, CLI, conf).
fn reads(double: &VppDouble) -> u64 {
    [
        "lb_vip_dump",
        "lb_as_v2_dump",
        "lb_as_dump",
        "cli_inband",
        "lb_conf_get",
    ]
    .iter()
    .map(|m| double.requests(m))
    .sum()
}

/// Latencies of `count` per-VIP syncs, and the reads the double saw during them.
async fn per_vip(t: &mut Table, vips: usize, per_vip: usize, count: usize) -> Res<(Vec<f64>, u64)> {
    let reads_before = reads(t._double.get());
    let mut lat = Vec::with_capacity(count);
    for k in 0..count {
        let f = format!("f{}", k % vips);
        let b = format!("b{}", (k / vips) % per_vip);
        let weight = if (k / (vips * per_vip)).is_multiple_of(2) {
            50
        } else {
            100
        };
        t.checker.set_weight(&f, "primary", &b, weight)?;
        let start = Instant::now();
        let ops = vip_sync(t, &f).await?;
        lat.push(start.elapsed().as_secs_f64() * 1e3);
        if ops != 1 {
            return Err(format!("per-VIP sync of {f} made {ops} writes, expected 1").into());
        }
    }
    Ok((lat, reads(t._double.get()) - reads_before))
}

// ---------------------------------------------------------------- main

fn main() {
    let mut smoke = false;
    let mut full_only = false;
    let mut reps = 3;
    let mut out = PathBuf::from("target/perf");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--smoke" => smoke = true,
            "--full-sync-only" => full_only = true,
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            "--out" => out = args.next().map(PathBuf::from).unwrap_or(out),
            _ => {}
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vpp bench: {e}");
            std::process::exit(1);
        }
    };
    if full_only {
        let (vips, per) = if smoke { (20, 64) } else { (1000, 64) };
        let r = rt.block_on(async {
            for _ in 0..reps {
                let (_, s) = full_table(vips, per).await?;
                eprintln!(
                    "vpp: full sync {:.0} ms wall, CPU double {:.0} ms, daemon side {:.0} ms",
                    s.wall_ms, s.double_cpu_ms, s.daemon_cpu_ms
                );
            }
            Res::Ok(())
        });
        if let Err(e) = r {
            eprintln!("vpp bench: {e}");
            std::process::exit(1);
        }
        return;
    }
    match rt.block_on(run(smoke, reps, &out)) {
        Ok(md) => print!("{md}"),
        Err(e) => {
            eprintln!("vpp bench: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(smoke: bool, reps: usize, out: &Path) -> Res<String> {
    std::fs::create_dir_all(out)?;
    let (failures, vips, per, changes, reps) = if smoke {
        (50, 20, 64, 20, 1)
    } else {
        // Per-VIP syncs read nothing back any more (the mirror): 1,000 of them.
        (1000, 1000, 64, 1000, reps)
    };
    let mut md = String::new();

    let mut det = detection(failures).await?;
    let (p50, p99, max) = percentiles(&mut det);
    eprintln!("vpp: detection p50 {p50:.3} ms p99 {p99:.3} ms max {max:.3} ms");
    let _ = write!(
        md,
        "### 2. Detection to dataplane\n\n\
         From the failing probe result to the `lb_as_set_weight` (weight 0) arriving at the \
         VPP double, through the daemon's own checker, dirty-frontend set, reconciler and VPP client; \
         {n} failures rotating over 100 VIPs.\n\n\
         | p50 ms | p99 ms | max ms | target p99 |\n|---|---|---|---|\n\
         | {p50:.3} | {p99:.3} | {max:.3} | < 2 ms |\n\n",
        n = det.len()
    );

    let mut full = Vec::new();
    let mut double_cpu = Vec::new();
    let mut daemon_cpu = Vec::new();
    let mut per_write_us = Vec::new();
    let mut vip_lat = Vec::new();
    let mut vip_reads = 0;
    for rep in 0..reps {
        let (mut table, s) = full_table(vips, per).await?;
        let us_per_write = s.daemon_cpu_ms * 1e3 / s.writes.max(1) as f64;
        eprintln!(
            "vpp: rep {rep}: full sync of {vips} x {per} ASes: {:.0} ms wall, CPU: double {:.0} ms, \
             daemon side {:.0} ms ({us_per_write:.1} µs per write, {} writes); load {}",
            s.wall_ms,
            s.double_cpu_ms,
            s.daemon_cpu_ms,
            s.writes,
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        full.push(s.wall_ms);
        double_cpu.push(s.double_cpu_ms);
        daemon_cpu.push(s.daemon_cpu_ms);
        per_write_us.push(us_per_write);
        if rep == 0 {
            (vip_lat, vip_reads) = per_vip(&mut table, vips, per, changes).await?;
        }
    }
    full.sort_by(f64::total_cmp);
    let (double_med, _, _) = percentiles(&mut double_cpu);
    let (daemon_med, _, _) = percentiles(&mut daemon_cpu);
    let (per_write_med, _, _) = percentiles(&mut per_write_us);
    let (v50, v99, vmax) = percentiles(&mut vip_lat);
    eprintln!("vpp: per-VIP sync p50 {v50:.3} ms p99 {v99:.3} ms, {vip_reads} reads");
    let _ = write!(
        md,
        "### 3. Sync throughput\n\n\
         A full sync reads VPP, diffs and writes; a per-VIP sync diffs against the mirror \
         (no read), as the reconciler does, against the VPP double (which runs in the \
         bench process, on a thread of its own, and shares the 2 cores). CPU is per thread \
         from schedstat: the double's thread, and the rest of the process (the daemon side: \
         desired state, diff, client, socket).\n\n\
         | figure | value | target |\n|---|---|---|\n\
         | full sync, {vips} VIPs x {per} ASes into an empty double, ms (median of {reps}, min–max) | {:.0} ({:.0}–{:.0}) | < 2000 |\n\
         | CPU of that sync, ms (median): the double / the daemon side; daemon side per write | {double_med:.0} / {daemon_med:.0}; {per_write_med:.1} µs | – |\n\
         | per-VIP sync of one changed AS in that table, p50 / p99 / max ms ({} syncs) | {v50:.2} / {v99:.2} / {vmax:.2} | p99 < 1 |\n\
         | reads (dumps, cli_inband, conf) the double saw during those syncs | {vip_reads} | 0 |\n\n",
        full[full.len() / 2],
        full[0],
        full[full.len() - 1],
        vip_lat.len(),
    );
    std::fs::write(out.join("vpp.md"), &md)?;
    std::fs::write(
        out.join("vpp.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "detection_ms": det,
            "full_sync_ms": full,
            "full_sync_double_cpu_ms": double_cpu,
            "full_sync_daemon_cpu_ms": daemon_cpu,
            "full_sync_daemon_cpu_us_per_write": per_write_us,
            "per_vip_sync_ms": vip_lat,
            "per_vip_sync_reads": vip_reads,
        }))?,
    )?;
    Ok(md)
}
