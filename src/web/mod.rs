//! `maglev web` (also argv[0] = `maglevd-frontend`): a live dashboard and admin page over one
//! or many daemons. It is a gRPC client of each daemon and serves browsers over HTTP/1.1.
//!
//! - `options`: `--server ADDR[=NAME]` and the listen/TLS policy (pure);
//! - `upstream`: one task per daemon: connection, WatchEvents, refreshes, health checks;
//! - `view`: the JSON shape of a daemon's state as the page shows it;
//! - `ring`: event ids `<epoch>-<seq>` and the replay ring behind `Last-Event-ID`;
//! - `http`/`sse`: routes, headers, the event stream; `assets`: the embedded page;
//! - `auth`: users file, sessions, CSRF, login rate limit; `actions`: admin actions;
//! - `tls`: rustls for the listener.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

pub mod actions;
pub mod assets;
pub mod auth;
pub mod http;
pub mod options;
pub mod ring;
pub mod sse;
pub mod tls;
pub mod upstream;
pub mod view;

/// Flags of `maglev web`.
#[derive(Debug, Clone, Args)]
#[command(
    name = "maglevd-frontend",
    version = crate::version::VERSION,
    args_conflicts_with_subcommands = true
)]
pub struct WebArgs {
    #[command(subcommand)]
    pub command: Option<WebCommand>,
    /// Daemon to show: ADDR or ADDR=NAME (ADDR as for `maglev ctl --server`: host:port,
    /// http://, https:// or unix:/path). Repeat it or separate by commas.
    #[arg(
        long = "server",
        env = "MAGLEV_WEB_SERVERS",
        value_delimiter = ',',
        default_value = "127.0.0.1:9090"
    )]
    pub servers: Vec<String>,
    /// HTTP listen address (host:port).
    #[arg(long, env = "MAGLEV_WEB_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: String,
    /// TLS certificate (PEM) of the web listener.
    #[arg(long, env = "MAGLEV_WEB_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the web listener.
    #[arg(long, env = "MAGLEV_WEB_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address.
    #[arg(long, env = "MAGLEV_WEB_INSECURE")]
    pub insecure: bool,
    /// Users file for /admin/ (lines `user:$argon2id$...`); without it /admin/ is off.
    #[arg(long, env = "MAGLEV_WEB_USERS")]
    pub users: Option<PathBuf>,
    #[command(flatten)]
    pub tls: crate::ctl::client::TlsFiles,
    /// Timeout of one request to a daemon, e.g. 5s.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// Minimum level of the daemons' log lines shown in the admin event panel.
    #[arg(
        long,
        env = "MAGLEV_WEB_EVENT_LOG_LEVEL",
        value_enum,
        default_value = "info"
    )]
    pub event_log_level: crate::cli::LogLevel,
    /// Log level of this process.
    #[arg(long, env = "MAGLEV_LOG_LEVEL", value_enum, default_value = "info")]
    pub log_level: crate::cli::LogLevel,
    /// How long the SSE replay ring keeps events (tests shorten it).
    #[arg(long, default_value = "30s", hide = true)]
    pub replay_window: String,
}

#[derive(Debug, Clone, Subcommand)]
pub enum WebCommand {
    /// Read a password from stdin (no echo on a terminal), print a users-file line
    /// `USER:$argon2id$...`.
    HashPassword {
        /// The user name of the line.
        #[arg(default_value = "admin")]
        user: String,
    },
}

/// Entry point of the web role.
pub fn main(args: WebArgs) -> ExitCode {
    if let Some(WebCommand::HashPassword { user }) = &args.command {
        return hash_password(user);
    }
    init_logging(args.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("maglev web: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("maglev web: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(level: crate::cli::LogLevel) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.as_str()));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn hash_password(user: &str) -> ExitCode {
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_whitespace) {
        eprintln!("maglev web hash-password: bad user name {user:?}");
        return ExitCode::from(2);
    }
    let mut line = String::new();
    if let Err(e) = read_password(&mut line) {
        eprintln!("maglev web hash-password: cannot read the password: {e}");
        return ExitCode::from(1);
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("maglev web hash-password: empty password (give it on stdin)");
        return ExitCode::from(2);
    }
    match auth::hash_password(password) {
        Ok(hash) => {
            println!("{user}:{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("maglev web hash-password: {e}");
            ExitCode::from(1)
        }
    }
}

/// One line from stdin; on a terminal with a prompt and without echo.
fn read_password(line: &mut String) -> std::io::Result<()> {
    use std::io::{IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return stdin.read_line(line).map(|_| ());
    }
    eprint!("Password: ");
    let _ = std::io::stderr().flush();
    // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios they fill in / we got back.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::tcgetattr(0, &mut saved) };
    let echo_off = got == 0 && {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: as above, with a copy of the settings minus ECHO.
        let set = unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
        set == 0
    };
    let result = stdin.read_line(line).map(|_| ());
    if echo_off {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
    }
    eprintln!();
    result
}

/// Wires everything: upstream tasks, users, the listener; runs until SIGINT/SIGTERM.
async fn run(args: WebArgs) -> anyhow::Result<()> {
    let plan = options::plan(&args)?;
    let users = match &args.users {
        Some(path) => Some(auth::Users::load(path)?),
        None => None,
    };
    let tls = match &plan.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let hub = Arc::new(ring::Hub::new(plan.replay_window));
    let files = args.tls.clone();
    let mut daemons = Vec::new();
    for server in &plan.servers {
        daemons.push(upstream::spawn(
            server.clone(),
            files.clone(),
            plan.timeout,
            args.event_log_level,
            hub.clone(),
        ));
    }
    let app = Arc::new(http::App {
        daemons,
        hub,
        auth: users.map(auth::Auth::new),
        secure_cookies: tls.is_some(),
        streams: Arc::default(),
    });
    let listener = tokio::net::TcpListener::bind(plan.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", plan.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(
        listen = %local,
        tls = tls.is_some(),
        admin = app.auth.is_some(),
        daemons = plan.servers.len(),
        "maglev web serving"
    );
    let server = tokio::spawn(http::serve(listener, tls, app));
    shutdown_signal().await;
    server.abort();
    tracing::info!("maglev web stopping");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
