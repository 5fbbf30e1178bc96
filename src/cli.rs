//! Command-line definitions of both roles (clap derive). `main.rs` only dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Health checker and gRPC control plane for the VPP lb (Maglev) plugin.
#[derive(Debug, Parser)]
#[command(name = "maglev", version = crate::version::VERSION, long_version = long_version(), propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

fn long_version() -> &'static str {
    // clap wants a 'static str; leaking one small string once is fine.
    Box::leak(crate::version::long().into_boxed_str())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the health checker and VPP control plane (also: argv[0] = maglevd).
    Daemon(DaemonArgs),
    /// Talk to a running daemon: interactive shell, or one command (also: argv[0] = maglevc).
    Ctl(CtlArgs),
    /// Probe the VIPs from outside; measure what a failover costs clients (also: argv[0] = maglevt).
    Tester(crate::tester::TesterArgs),
    /// Live dashboard and admin page over one or many daemons (also: argv[0] = maglevd-frontend).
    Web(crate::web::WebArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        /// The command it completes: maglev, or maglevt (the tester's own name).
        #[arg(default_value = "maglev")]
        command: String,
    },
    /// Config file tools: `config import OLD.yaml` converts the Go tool's YAML.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the man page (roff) of maglev, or of one role.
    Man {
        /// maglev, maglevd, maglevc, maglevt or maglevd-frontend
        #[arg(default_value = "maglev")]
        page: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Convert the Go tool's YAML config to TOML, then validate it as `daemon --check` does.
    Import(ImportArgs),
}

/// Flags of `maglev config import` (docs/migrating.md).
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The Go tool's YAML config (e.g. /etc/vpp-maglev/maglev.yaml).
    pub input: PathBuf,
    /// Where to write the TOML; default: standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite --output if it exists.
    #[arg(long)]
    pub force: bool,
    /// Validate as for a daemon run with VPP off (--vpp-api-addr ""): missing GRE source
    /// addresses are then warnings instead of errors.
    #[arg(long)]
    pub no_vpp: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

/// The one log level type (`--log-level`, log events, `watch events log level`).
pub use crate::events::LogLevel;

/// `--log-level` values, listed from the quietest as the help has always shown them.
impl ValueEnum for LogLevel {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
            LogLevel::Trace,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// Flags of `maglev daemon` (docs/design.md §2). Each has an environment variable; the flag wins.
#[derive(Debug, Clone, Args)]
#[command(name = "maglevd", version = crate::version::VERSION, long_version = long_version())]
pub struct DaemonArgs {
    /// Config file (TOML).
    #[arg(
        long,
        env = "MAGLEV_CONFIG",
        default_value = "/etc/vpp-maglev/maglev.toml"
    )]
    pub config: PathBuf,
    /// gRPC listen address: host:port or unix:/path.
    #[arg(long, env = "MAGLEV_GRPC_ADDR", default_value = "127.0.0.1:9090")]
    pub grpc_addr: String,
    /// TLS certificate (PEM) for the gRPC listener.
    #[arg(long, env = "MAGLEV_GRPC_TLS_CERT")]
    pub grpc_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the gRPC listener.
    #[arg(long, env = "MAGLEV_GRPC_TLS_KEY")]
    pub grpc_tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to: enables mutual TLS.
    #[arg(long, env = "MAGLEV_GRPC_CLIENT_CA")]
    pub grpc_client_ca: Option<PathBuf>,
    /// Allow plaintext gRPC on a non-loopback address.
    #[arg(long, env = "MAGLEV_GRPC_INSECURE")]
    pub grpc_insecure: bool,
    /// HTTP listener for /metrics, /livez, /readyz; empty disables it.
    #[arg(long, env = "MAGLEV_METRICS_ADDR", default_value = "127.0.0.1:9091")]
    pub metrics_addr: String,
    /// VPP binary API socket; empty disables VPP (health checking only).
    #[arg(long, env = "MAGLEV_VPP_API_ADDR", default_value = "/run/vpp/api.sock")]
    pub vpp_api_addr: String,
    /// VPP stats segment socket; empty disables the lb counters.
    #[arg(
        long,
        env = "MAGLEV_VPP_STATS_ADDR",
        default_value = "/run/vpp/stats.sock"
    )]
    pub vpp_stats_addr: String,
    /// How often the per-VIP counters are read from the stats segment (50ms..10m).
    #[arg(
        long,
        env = "MAGLEV_STATS_INTERVAL",
        default_value = "5s",
        value_parser = crate::vpp::counters_poller::parse_interval
    )]
    pub stats_interval: std::time::Duration,
    /// Connect to VPP and read, but log each write instead of sending it.
    #[arg(long, env = "MAGLEV_DRY_RUN")]
    pub dry_run: bool,
    /// Log level.
    #[arg(long, env = "MAGLEV_LOG_LEVEL", value_enum, default_value = "info")]
    pub log_level: LogLevel,
    /// Log format: auto = text on a TTY, json otherwise.
    #[arg(long, env = "MAGLEV_LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// Validate the config and exit: 0 ok, 1 parse error, 2 semantic error.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorMode {
    Auto,
    Always,
    Never,
}

/// Flags of `maglev ctl` (docs/design.md §2, §9).
#[derive(Debug, Clone, Args)]
#[command(name = "maglevc", version = crate::version::VERSION, long_version = long_version())]
pub struct CtlArgs {
    /// Daemon address: host:port, http://host:port, https://host:port or unix:/path.
    #[arg(long, env = "MAGLEV_SERVER", default_value = "127.0.0.1:9090")]
    pub server: String,
    /// Colour: auto (only on a terminal, honours NO_COLOR), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorMode,
    /// Machine output: one JSON document per command (JSON lines for `watch events`).
    #[arg(long)]
    pub json: bool,
    /// Timeout of one request, e.g. 5s.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    #[command(flatten)]
    pub tls: crate::ctl::client::TlsFiles,
    /// A command to run once (for scripts); none starts the interactive shell.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

/// argv[0]-selected roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Maglev,
    Daemon,
    Ctl,
    Tester,
    Web,
}

/// The role implied by the program name (basename of argv[0]; a symlink's own name counts).
pub fn role_from_argv0(argv0: &str) -> Role {
    let base = std::path::Path::new(argv0)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or(argv0);
    match base {
        "maglevd" => Role::Daemon,
        "maglevc" => Role::Ctl,
        "maglevt" => Role::Tester,
        "maglevd-frontend" => Role::Web,
        _ => Role::Maglev,
    }
}

/// Go-style flags (`-color=false`, `-json`) rewritten to clap's form, for scripts written
/// against the Go maglevc.
pub fn normalize_go_flags(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.as_str() {
            "-color=false" | "--color=false" => "--color=never".to_string(),
            "-color=true" | "--color=true" => "--color=always".to_string(),
            "-json" => "--json".to_string(),
            _ if a.starts_with("-server=") => format!("-{a}"),
            _ => a,
        })
        .collect()
}

/// Writes the roff man page of `maglev`, `maglevd`, `maglevc` or `maglevt`.
pub fn render_man(page: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    let top = Cli::command();
    let cmd = match page {
        "maglev" => top,
        "maglevd" | "daemon" => top
            .find_subcommand("daemon")
            .cloned()
            .map(|c| c.name("maglevd"))
            .ok_or_else(|| std::io::Error::other("no daemon subcommand"))?,
        "maglevc" | "ctl" => top
            .find_subcommand("ctl")
            .cloned()
            .map(|c| c.name("maglevc"))
            .ok_or_else(|| std::io::Error::other("no ctl subcommand"))?,
        "maglevt" | "tester" => top
            .find_subcommand("tester")
            .cloned()
            .map(|c| c.name("maglevt"))
            .ok_or_else(|| std::io::Error::other("no tester subcommand"))?,
        "maglevd-frontend" | "web" => top
            .find_subcommand("web")
            .cloned()
            .map(|c| c.name("maglevd-frontend"))
            .ok_or_else(|| std::io::Error::other("no web subcommand"))?,
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "unknown page {other:?} (known: maglev, maglevd, maglevc, maglevt, maglevd-frontend)"
                ),
            ));
        }
    };
    // maglev and maglevd are system administration commands (section 8); maglevc and
    // maglevt are user commands (section 1).
    let section = if matches!(page, "maglevc" | "ctl" | "maglevt" | "tester") {
        "1"
    } else {
        "8"
    };
    clap_mangen::Man::new(cmd).section(section).render(out)
}

/// Writes the completion script of `maglev`, or of `maglevt` (the tester role's flags under
/// its own name).
pub fn render_completions(
    shell: clap_complete::Shell,
    command: &str,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use clap::CommandFactory;
    let mut cmd = match command {
        "maglev" => Cli::command(),
        "maglevt" => Cli::command()
            .find_subcommand("tester")
            .cloned()
            .map(|c| c.name("maglevt"))
            .ok_or_else(|| std::io::Error::other("no tester subcommand"))?,
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("unknown command {other:?} (known: maglev, maglevt)"),
            ));
        }
    };
    clap_complete::generate(shell, &mut cmd, command, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_from_program_name() {
        assert_eq!(role_from_argv0("/usr/sbin/maglevd"), Role::Daemon);
        assert_eq!(role_from_argv0("maglevc"), Role::Ctl);
        assert_eq!(role_from_argv0("/usr/bin/maglevt"), Role::Tester);
        assert_eq!(role_from_argv0("/usr/sbin/maglevd-frontend"), Role::Web);
        assert_eq!(role_from_argv0("/usr/sbin/maglev"), Role::Maglev);
        assert_eq!(role_from_argv0("./target/debug/maglev"), Role::Maglev);
    }

    #[test]
    fn go_style_flags() {
        let v = normalize_go_flags(vec![
            "-color=false".into(),
            "-server=x:1".into(),
            "show".into(),
        ]);
        assert_eq!(v, vec!["--color=never", "--server=x:1", "show"]);
    }

    #[test]
    fn stats_interval_flag_defaults_to_the_pollers_default() {
        use clap::Parser;
        let interval = |extra: &[&str]| match Cli::try_parse_from(
            ["maglev", "daemon"].iter().chain(extra).copied(),
        ) {
            Ok(Cli {
                command: Command::Daemon(a),
            }) => Ok(a.stats_interval),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.kind()),
        };
        assert_eq!(
            interval(&[]),
            Ok(crate::vpp::counters_poller::DEFAULT_INTERVAL)
        );
        assert_eq!(
            interval(&["--stats-interval", "200ms"]),
            Ok(std::time::Duration::from_millis(200))
        );
        assert_eq!(
            interval(&["--stats-interval", "1ms"]),
            Err(clap::error::ErrorKind::ValueValidation)
        );
    }

    #[test]
    fn log_level_flag_uses_the_one_log_level() {
        let names: Vec<String> = LogLevel::value_variants()
            .iter()
            .filter_map(|l| l.to_possible_value())
            .map(|v| v.get_name().to_string())
            .collect();
        assert_eq!(names, ["error", "warn", "info", "debug", "trace"]);
        assert_eq!(LogLevel::from_str("warn", false), Ok(LogLevel::Warn));
        assert!(LogLevel::from_str("loud", false).is_err());
        // The same type orders by verbosity for the event filter.
        assert!(LogLevel::Trace < LogLevel::Error);
    }

    #[test]
    fn clap_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
