//! Flags of `maglev tester` (also `maglevt`).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

const AFTER_HELP: &str = "\
Outage: from the send time of the first failed probe to the send time of the next successful \
one; accurate to one --interval plus the duration of the probe in flight on each edge.

Error classes: timeout (no complete answer within --timeout), http-err (status >= 500 or not \
HTTP), net-err (refused, reset, unreachable, closed, TLS), spike (a success slower than 5x \
the rolling p50).

Keys on the screen: q quit, r reset the figures, p pause probing.

Exit codes: 0 done; 1 a VIP's longest outage exceeded --max-outage; 2 bad usage (flags, \
targets, config, --server), always before the first probe.

See tester.md in the package documentation (docs/tester.md in the source) for drills and \
 the JSON formats.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HttpMethod {
    Get,
    Head,
}

/// Probe the VIPs from outside and measure what clients see (also: argv[0] = maglevt).
#[derive(Debug, Clone, Args)]
#[command(name = "maglevt", version = crate::version::VERSION, after_long_help = AFTER_HELP)]
pub struct TesterArgs {
    /// Targets: every frontend of this daemon config (TOML).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["server", "targets"])]
    pub config: Option<PathBuf>,
    /// Targets: the frontends of a running daemon (host:port, http(s)://host:port, unix:/path).
    #[arg(long, value_name = "ADDR", conflicts_with = "targets")]
    pub server: Option<String>,
    /// A target: http://host[:port][/path], https://host[:port][/path] or tcp://host:port.
    /// Repeat for more.
    #[arg(long = "target", value_name = "URL")]
    pub targets: Vec<String>,
    /// Probe only these VIPs (frontend names, or URLs as given); repeat or comma-separate.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Time between two probes of a VIP (a probe still running delays the next).
    #[arg(long, value_name = "D", default_value = "100ms")]
    pub interval: String,
    /// A probe with no (complete) answer by then is a timeout.
    #[arg(long, value_name = "D", default_value = "2s")]
    pub timeout: String,
    /// The rolling window of the latency figures.
    #[arg(long, value_name = "D", default_value = "60s")]
    pub window: String,
    /// HTTP method of the http/https probes.
    #[arg(long, value_enum, default_value = "get")]
    pub method: HttpMethod,
    /// A frontend port that speaks HTTP (80 always does); repeat for more.
    #[arg(long = "http", value_name = "PORT")]
    pub http_ports: Vec<u16>,
    /// A frontend port that speaks HTTPS (443 always does); repeat for more.
    #[arg(long = "https", value_name = "PORT")]
    pub https_ports: Vec<u16>,
    /// Source address of the probes.
    #[arg(long, value_name = "IP")]
    pub source: Option<IpAddr>,
    /// Response header that names the backend that answered.
    #[arg(long, value_name = "NAME", default_value = "X-IPng-Frontend")]
    pub header: String,
    /// No screen: one JSON line per VIP per second, and the summary as the last line.
    /// (Without a terminal and without --json, only the summary is printed.)
    #[arg(long)]
    pub json: bool,
    /// Run this long, print the drill summary and exit.
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Exit 1 when any VIP's longest outage is longer than this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub max_outage: Option<u64>,
    /// Do not verify the certificates of https VIPs.
    #[arg(long)]
    pub insecure: bool,
    /// CA (PEM) for the certificates of https VIPs (default: the system store).
    #[arg(long, value_name = "FILE")]
    pub probe_ca: Option<PathBuf>,
    #[command(flatten)]
    pub tls: crate::ctl::client::TlsFiles,
}
