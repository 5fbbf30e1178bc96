//! The running daemon as the gRPC server, metrics and signal handlers see it: the checker,
//! the config (with one reload path shared by SIGHUP and the ReloadConfig RPC) and the VPP
//! side's status.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use tokio::sync::watch;

use super::notify::log_notify;
use crate::checker::Checker;
use crate::cli::DaemonArgs;
use crate::config::{self, Config, ConfigDiff, ConfigError};
use crate::events::EventBus;
use crate::vpp::VppStatus;

pub struct Daemon {
    pub args: DaemonArgs,
    pub checker: Checker,
    pub bus: EventBus,
    pub vpp: Arc<VppStatus>,
    pub started_at: SystemTime,
    config_tx: watch::Sender<Arc<Config>>,
    reload_lock: tokio::sync::Mutex<()>,
    started: AtomicBool,
}

impl Daemon {
    pub fn new(args: DaemonArgs, checker: Checker, bus: EventBus, config: Arc<Config>) -> Self {
        let (config_tx, _) = watch::channel(config);
        Daemon {
            vpp: Arc::new(VppStatus::new(!args.vpp_api_addr.is_empty(), args.dry_run)),
            args,
            checker,
            bus,
            started_at: SystemTime::now(),
            config_tx,
            reload_lock: tokio::sync::Mutex::new(()),
            started: AtomicBool::new(false),
        }
    }

    pub fn config_path(&self) -> &Path {
        &self.args.config
    }

    /// The running config.
    pub fn config(&self) -> Arc<Config> {
        self.config_tx.borrow().clone()
    }

    /// Sees every config that becomes the running one (the VPP reconciler syncs on change).
    pub fn subscribe_config(&self) -> watch::Receiver<Arc<Config>> {
        self.config_tx.subscribe()
    }

    /// Starts the VPP side with what it needs from the daemon (the caller hands it on to
    /// the gRPC server and `/metrics`).
    pub fn start_vpp(&self) -> anyhow::Result<Arc<crate::vpp::VppService>> {
        let service = crate::vpp::start(crate::vpp::Handles {
            vpp_api_addr: self.args.vpp_api_addr.clone(),
            vpp_stats_addr: self.args.vpp_stats_addr.clone(),
            stats_interval: self.args.stats_interval,
            dry_run: self.args.dry_run,
            checker: self.checker.clone(),
            status: self.vpp.clone(),
            config: self.subscribe_config(),
            started_at: self.started_at,
        })?;
        Ok(service)
    }

    pub(crate) fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// Validates a file (default: the daemon's own) and diffs it against the running config.
    /// Changes nothing.
    pub fn check_config(&self, path: Option<&Path>) -> Result<(Config, ConfigDiff), ConfigError> {
        let path: PathBuf = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.args.config.clone());
        self.checkable(&path)?;
        let new = config::load_file_with(&path, &super::load_options(&self.args))?.config;
        let diff = config::diff(&self.config(), &new);
        Ok((new, diff))
    }

    /// A gRPC client may check a candidate file, but only one beside the running config:
    /// error messages quote the file, so any other path would let a client read files the
    /// daemon can read.
    fn checkable(&self, path: &Path) -> Result<(), ConfigError> {
        let dir_of = |p: &Path| {
            p.canonicalize()
                .ok()
                .and_then(|c| c.parent().map(Path::to_path_buf))
        };
        let allowed = dir_of(&self.args.config);
        if path == self.args.config || (allowed.is_some() && dir_of(path) == allowed) {
            return Ok(());
        }
        let dir = allowed
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "the config's directory".to_string());
        Err(ConfigError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("only files in {dir} may be checked"),
            ),
        })
    }

    /// Reloads the config file: the one path for SIGHUP and the ReloadConfig RPC. A bad
    /// file is refused with its errors logged, and the running config stays.
    pub async fn reload(&self) -> Result<ConfigDiff, ConfigError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        log_notify("RELOADING=1");
        let result =
            match config::load_file_with(&self.args.config, &super::load_options(&self.args)) {
                Ok(loaded) => {
                    for w in &loaded.warnings {
                        tracing::warn!("{w}");
                    }
                    let new = Arc::new(loaded.config);
                    let diff = self.checker.reload(new.clone());
                    self.config_tx.send_replace(new);
                    Ok(diff)
                }
                Err(e) => {
                    tracing::error!(
                        config = %self.args.config.display(),
                        "reload refused, the running config stays: {} error(s)",
                        e.diagnostics().len().max(1)
                    );
                    for line in e.lines() {
                        tracing::error!("{line}");
                    }
                    Err(e)
                }
            };
        log_notify("READY=1");
        result
    }

    /// Ready once the config is loaded and, with VPP on, the warmup is over.
    pub fn ready(&self) -> Result<(), String> {
        if !self.started.load(Ordering::Acquire) {
            return Err("starting".into());
        }
        self.vpp.ready()
    }
}

impl crate::server::ConfigControl for Daemon {
    fn config(&self) -> Arc<Config> {
        Daemon::config(self)
    }

    fn config_path(&self) -> &Path {
        Daemon::config_path(self)
    }

    fn check_config(&self, path: Option<&Path>) -> Result<(Config, ConfigDiff), ConfigError> {
        Daemon::check_config(self, path)
    }

    fn reload(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<ConfigDiff, ConfigError>> + Send + '_>,
    > {
        Box::pin(Daemon::reload(self))
    }
}

/// What `/metrics` and `/readyz` read: the daemon (for readiness) and the VPP side.
pub struct MetricsView {
    pub daemon: Arc<Daemon>,
    pub vpp: Arc<crate::vpp::VppService>,
}

impl crate::metrics::MetricsSource for MetricsView {
    fn render(
        &self,
        format: crate::metrics::Format,
        chunk: usize,
        sink: &mut crate::metrics::Sink<'_>,
    ) {
        crate::metrics::render(
            &self.daemon.checker,
            &self.daemon.vpp,
            Some(&self.vpp),
            format,
            chunk,
            sink,
        )
    }

    fn ready(&self) -> Result<(), String> {
        self.daemon.ready()
    }
}
