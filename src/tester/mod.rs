//! `maglev tester` (`maglevt`): probes the VIPs from outside, as a client would, and measures
//! what a drain or failover costs: latency, failures, outages, which backend answered.
//!
//! - `args`: the flags; `target`: VIPs from a config, a daemon, or URLs;
//! - `probe`: one TCP connect or HTTP(S) request; `stats`: the pure figures of one VIP;
//! - `run`: the probe tasks and the loop that feeds the figures to an output;
//! - `report`: the per-second JSON records and the drill summary; `screen`: the live view.
//!
//! Exit codes: 0 done, 1 a VIP's longest outage exceeded `--max-outage`, 2 bad usage (bad
//! flags, bad targets, an invalid config, a daemon that cannot be asked): always before the
//! first probe.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use hyper::header::HeaderName;

pub mod args;
pub mod hostname;
pub mod probe;
pub mod report;
pub mod run;
pub mod screen;
pub mod stats;
pub mod target;

use args::HttpMethod;
pub use args::TesterArgs;
use target::{PortRules, Scheme, Target};

/// Why the tester stopped.
#[derive(Debug, thiserror::Error)]
pub enum TesterError {
    /// Bad flags or targets: exit 2, before any probe.
    #[error("{0}")]
    Usage(String),
    /// Trouble after the start (terminal, output): exit 1.
    #[error("{0}")]
    Local(String),
}

impl TesterError {
    pub fn exit_code(&self) -> u8 {
        match self {
            TesterError::Usage(_) => 2,
            TesterError::Local(_) => 1,
        }
    }
}

/// The flags, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub interval: Duration,
    pub timeout: Duration,
    pub window: Duration,
    pub duration: Option<Duration>,
    pub max_outage: Option<Duration>,
    pub json: bool,
    /// "config /etc/vpp-maglev/maglev.toml", "server 127.0.0.1:9090", "command line".
    pub source_label: String,
}

/// Entry point of the tester role.
pub fn main(args: TesterArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("maglevt: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(start(args)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("maglevt: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn start(args: TesterArgs) -> Result<u8, TesterError> {
    let settings = settings(&args)?;
    let targets = targets(&args).await?;
    let prober = prober(&args, &settings, &targets).await?;
    run::run(settings, targets, Arc::new(prober)).await
}

fn duration_flag(flag: &str, text: &str) -> Result<Duration, TesterError> {
    match crate::config::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(TesterError::Usage(format!("--{flag} must be more than 0"))),
        Err(e) => Err(TesterError::Usage(format!("--{flag}: {e}"))),
    }
}

pub fn settings(args: &TesterArgs) -> Result<Settings, TesterError> {
    let source_label = match (&args.config, &args.server) {
        (Some(path), _) => format!("config {}", path.display()),
        (None, Some(server)) => format!("server {server}"),
        (None, None) if !args.targets.is_empty() => "command line".to_string(),
        (None, None) => {
            return Err(TesterError::Usage(
                "no targets: give --config FILE, --server ADDR or --target URL".to_string(),
            ));
        }
    };
    if args.max_outage.is_some() && args.duration.is_none() {
        return Err(TesterError::Usage(
            "--max-outage needs --duration (the verdict comes with the summary)".to_string(),
        ));
    }
    Ok(Settings {
        interval: duration_flag("interval", &args.interval)?,
        timeout: duration_flag("timeout", &args.timeout)?,
        window: duration_flag("window", &args.window)?,
        duration: args
            .duration
            .as_deref()
            .map(|d| duration_flag("duration", d))
            .transpose()?,
        max_outage: args.max_outage.map(Duration::from_millis),
        json: args.json,
        source_label,
    })
}

/// The VIPs to probe, from whichever source was given, filtered by `--only`.
pub async fn targets(args: &TesterArgs) -> Result<Vec<Target>, TesterError> {
    let rules = PortRules {
        http: args.http_ports.clone(),
        https: args.https_ports.clone(),
    };
    let (targets, notes) = if let Some(path) = &args.config {
        let config = crate::config::load_file(path)
            .map_err(|e| TesterError::Usage(format!("invalid config {}:\n{e}", path.display())))?;
        target::from_config(&config, &rules)
    } else if let Some(server) = &args.server {
        from_server(args, server, &rules).await?
    } else {
        let mut out = Vec::new();
        for url in &args.targets {
            out.push(target::resolve(url, args.source).await?);
        }
        (out, Vec::new())
    };
    for note in notes {
        eprintln!("maglevt: {note}");
    }
    let targets = target::filter_only(targets, &args.only)?;
    if targets.is_empty() {
        return Err(TesterError::Usage("no VIP to probe".to_string()));
    }
    target::check_source(&targets, args.source)?;
    Ok(targets)
}

async fn from_server(
    args: &TesterArgs,
    server: &str,
    rules: &PortRules,
) -> Result<(Vec<Target>, Vec<String>), TesterError> {
    use crate::ctl::client::Client;
    let files = args.tls.clone();
    let asked = |e: crate::ctl::client::CtlError| TesterError::Usage(format!("--server: {e}"));
    let client = Client::connect(server, &files, Duration::from_secs(5))
        .await
        .map_err(asked)?;
    let mut rpc = client.rpc.clone();
    let reply = client
        .call(rpc.list_frontends(crate::proto::ListFrontendsRequest {}))
        .await
        .map_err(asked)?;
    target::from_frontends(&reply.frontends, rules)
}

async fn prober(
    args: &TesterArgs,
    settings: &Settings,
    targets: &[Target],
) -> Result<probe::Prober, TesterError> {
    let header = HeaderName::try_from(args.header.as_str()).map_err(|_| {
        TesterError::Usage(format!("--header {:?}: not a header name", args.header))
    })?;
    let tls = if targets.iter().any(|t| t.scheme == Scheme::Https) {
        let config = crate::probe::tls::TlsConfigs::default()
            .get(args.probe_ca.as_deref(), !args.insecure)
            .await
            .map_err(|e| TesterError::Usage(format!("https probes: {e}")))?;
        Some(config)
    } else {
        None
    };
    let method = match args.method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
    };
    Ok(probe::Prober::new(
        settings.timeout,
        args.source,
        method,
        header,
        tls,
    ))
}
