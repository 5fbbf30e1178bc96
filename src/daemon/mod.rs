//! Wiring of the daemon role: load the config, start the checker, the VPP side, the gRPC
//! server and the metrics listener, then handle signals until shutdown.

mod checker_runtime;
mod fail_open;
pub mod logging;
pub mod notify;
pub mod signals;
mod state;
mod trim;

use std::process::ExitCode;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::checker::Checker;
use crate::cli::DaemonArgs;
use crate::config::{self, ConfigError};
use crate::events::EventBus;
use crate::probe::Prober;

use notify::log_notify;
pub use signals::Request;
pub use state::Daemon;

/// At shutdown, how long a VPP sync in flight may take to finish its VIPs.
pub const SYNC_DEADLINE: Duration = Duration::from_secs(5);
/// After a stop signal, the process ends by then whatever it is doing.
const HARD_EXIT: Duration = Duration::from_secs(8);

/// Entry point of the daemon role.
pub fn main(args: DaemonArgs) -> ExitCode {
    if args.check {
        return check_only(&args);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("maglev")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("maglev daemon: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Signals are handled outside the daemon's runtime: a saturated runtime still stops.
    let requests = match signals::start(HARD_EXIT) {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("maglev daemon: cannot install the signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args, requests));
    // Whatever is still running (a hung task) does not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("maglev daemon: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--check`: 0 valid, 1 parse (or read) error, 2 semantic error.
fn check_only(args: &DaemonArgs) -> ExitCode {
    let opts = load_options(args);
    match config::load_file_with(&args.config, &opts) {
        Ok(config::Loaded {
            config: cfg,
            warnings,
        }) => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: ok ({} healthchecks, {} backends, {} frontends)",
                args.config.display(),
                cfg.healthchecks.len(),
                cfg.backends.len(),
                cfg.frontends.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            report_config_error(&e);
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

/// What the config is checked against: a daemon with these flags (VPP on or off).
pub(crate) fn load_options(args: &DaemonArgs) -> config::LoadOptions {
    config::LoadOptions {
        vpp: !args.vpp_api_addr.is_empty(),
    }
}

fn report_config_error(e: &ConfigError) {
    for line in e.lines() {
        eprintln!("{line}");
    }
}

/// The daemon until `requests` says stop (or closes): reloads on `Request::Reload`.
pub async fn run(
    args: DaemonArgs,
    mut requests: mpsc::UnboundedReceiver<Request>,
) -> anyhow::Result<()> {
    let bus = EventBus::new(4096);
    logging::init(args.log_level, args.log_format, bus.clone())?;
    tracing::info!(version = %crate::version::long(), config = %args.config.display(), "maglev daemon starting");
    // Refuse an unsafe or inconsistent gRPC listener before anything starts probing.
    crate::server::listen::plan(&args)?;

    let config = match config::load_file_with(&args.config, &load_options(&args)) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            Arc::new(loaded.config)
        }
        Err(e) => {
            for line in e.lines() {
                tracing::error!("{line}");
            }
            anyhow::bail!("cannot start: invalid config {}", args.config.display());
        }
    };
    let prober = Prober::new();
    let checker_rt =
        checker_runtime::CheckerRuntime::start().context("cannot start the checker runtime")?;
    let checker = Checker::start_on(
        checker_rt.handle(),
        config.clone(),
        Arc::new(prober),
        bus.clone(),
    );
    let daemon = Arc::new(Daemon::new(args.clone(), checker, bus, config));

    // The VPP side first: the server and /metrics get it handed in.
    let vpp = daemon.start_vpp()?;
    let metrics_view = Arc::new(state::MetricsView {
        daemon: daemon.clone(),
        vpp: vpp.clone(),
    });
    let metrics_task = if args.metrics_addr.is_empty() {
        tracing::info!("metrics listener disabled (--metrics-addr is empty)");
        None
    } else {
        let addr: SocketAddr = args.metrics_addr.parse().with_context(|| {
            format!("--metrics-addr {:?}: expected host:port", args.metrics_addr)
        })?;
        let (local, task) = crate::metrics::serve(addr, metrics_view)
            .await
            .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
        tracing::info!(addr = %local, "metrics listening on http://{local}/metrics");
        Some(task)
    };

    let server = crate::server::serve(Arc::new(crate::server::Handles {
        args: args.clone(),
        checker: daemon.checker.clone(),
        bus: daemon.bus.clone(),
        vpp_status: daemon.vpp.clone(),
        vpp: vpp.clone(),
        control: daemon.clone(),
    }))
    .await?;

    let fail_open_log = fail_open::spawn(daemon.clone());
    let trim_task = trim::spawn(trim::PERIOD);
    daemon.set_started();
    log_notify("READY=1");
    let watchdog = notify::watchdog_interval().map(|period| {
        tokio::spawn(async move {
            // Half the period, as sd_watchdog_enabled(3) recommends.
            let mut tick = tokio::time::interval(period / 2);
            loop {
                tick.tick().await;
                log_notify("WATCHDOG=1");
            }
        })
    });

    let why = loop {
        match requests.recv().await {
            Some(Request::Reload) => {
                tracing::info!("SIGHUP: reloading {}", daemon.config_path().display());
                let _ = daemon.reload().await;
            }
            Some(Request::Stop(name)) => break name,
            None => break "end of requests",
        }
    };
    tracing::info!("{why}: shutting down");

    // Leave VPP exactly as it is: tearing VIPs down on exit would black-hole traffic.
    // No new probes, no new syncs; a sync in flight finishes the VIPs it is writing.
    log_notify("STOPPING=1");
    daemon.checker.stop();
    vpp.shutdown(SYNC_DEADLINE).await;
    drop(checker_rt);
    server.shutdown().await;
    if let Some(t) = metrics_task {
        t.abort();
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    fail_open_log.abort();
    trim_task.abort();
    tracing::info!("maglev daemon stopped");
    Ok(())
}
