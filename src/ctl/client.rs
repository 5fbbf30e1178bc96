//! Connecting to the daemon and mapping failures to ctl's exit codes.
//!
//! Server forms: `host:port`, `http://host:port`, `https://host:port` (TLS with `--ca`, or the
//! webpki roots; mutual TLS with `--cert` and `--key`), `unix:/path`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use crate::proto::maglev_client::MaglevClient;

/// Why a ctl command failed; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Bad command line or flags: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The command words do not parse: exit 2, shown pointed at the word.
    #[error("{error}")]
    Parse {
        line: String,
        error: super::grammar::ParseError,
    },
    /// The daemon answered with an error: exit 1.
    #[error("{0}")]
    Refused(String),
    /// The daemon could not be reached (or did not answer in time): exit 3.
    #[error("cannot reach maglev daemon at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// A local failure (terminal, output): exit 1.
    #[error("{0}")]
    Local(String),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Refused(_) | CtlError::Local(_) => 1,
            CtlError::Usage(_) | CtlError::Parse { .. } => 2,
            CtlError::Unreachable { .. } => 3,
        }
    }

    /// A gRPC status as a ctl error: a transport failure means unreachable, anything the
    /// server said is a refusal, shown by its message alone.
    pub fn from_status(server: &str, status: &tonic::Status) -> CtlError {
        use std::error::Error as _;
        let transport = status.source().is_some();
        match status.code() {
            Code::Unavailable | Code::Unknown | Code::Cancelled if transport => {
                CtlError::Unreachable {
                    server: server.to_string(),
                    reason: root_cause(status),
                }
            }
            Code::DeadlineExceeded => CtlError::Unreachable {
                server: server.to_string(),
                reason: "no answer in time".to_string(),
            },
            _ if status.message().is_empty() => {
                CtlError::Refused(format!("{:?}", status.code()).to_lowercase())
            }
            _ => CtlError::Refused(status.message().to_string()),
        }
    }
}

/// The innermost error message of a chain ("Connection refused (os error 111)").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// A parsed `--server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Plaintext HTTP/2: the URI (`http://host:port`).
    Http(String),
    /// TLS: the URI and the host name to verify.
    Https {
        uri: String,
        host: String,
    },
    Unix(PathBuf),
}

/// Parses the `--server` forms.
pub fn parse_server(server: &str) -> Result<Target, CtlError> {
    let bad = |why: &str| CtlError::Usage(format!("bad --server {server:?}: {why}"));
    if let Some(path) = server.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(bad("empty socket path"));
        }
        return Ok(Target::Unix(PathBuf::from(path)));
    }
    let (tls, rest) = if let Some(rest) = server.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = server.strip_prefix("http://") {
        (false, rest)
    } else if server.contains("://") {
        return Err(bad("use host:port, http://, https:// or unix:/path"));
    } else {
        (false, server)
    };
    let authority = rest.trim_end_matches('/');
    let uri: Uri = format!("{}://{authority}", if tls { "https" } else { "http" })
        .parse()
        .map_err(|_| bad("not a host:port"))?;
    let host = uri.host().unwrap_or_default().to_string();
    if host.is_empty() || uri.port_u16().is_none() {
        return Err(bad("expected host:port"));
    }
    let uri = uri.to_string().trim_end_matches('/').to_string();
    Ok(if tls {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Target::Https { uri, host }
    } else {
        Target::Http(uri)
    })
}

/// Parses `--timeout`: `500ms`, `5s`, `1m`, or bare seconds (`2.5`).
pub fn parse_timeout(text: &str) -> Result<Duration, CtlError> {
    let bad = || CtlError::Usage(format!("bad --timeout {text:?}: use e.g. 500ms, 5s or 1m"));
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(bad());
    }
    Duration::try_from_secs_f64(value * scale).map_err(|_| bad())
}

/// PEM files for TLS to a daemon: the `--ca/--cert/--key` flags that ctl, web and tester
/// share (flattened into each role's arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsFiles {
    /// CA (PEM) to verify an https:// daemon.
    #[arg(long, env = "MAGLEV_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS with the daemon.
    #[arg(long, env = "MAGLEV_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS with the daemon.
    #[arg(long, env = "MAGLEV_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path)
        .map_err(|e| CtlError::Usage(format!("cannot read {what} {}: {e}", path.display())))
}

fn tls_config(host: &str, files: &TlsFiles) -> Result<ClientTlsConfig, CtlError> {
    let mut config = ClientTlsConfig::new().domain_name(host);
    config = match &files.ca {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read_pem(ca, "--ca")?)),
        None => config.with_webpki_roots(),
    };
    match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => Ok(config.identity(Identity::from_pem(
            read_pem(cert, "--cert")?,
            read_pem(key, "--key")?,
        ))),
        (None, None) => Ok(config),
        _ => Err(CtlError::Usage(
            "--cert and --key go together (mutual TLS)".to_string(),
        )),
    }
}

/// The largest answer ctl accepts. `show backends` is about 160 bytes a backend plus 65 a
/// remembered state change: tonic's default of 4 MiB is under 10,000 backends once each
/// has the default five changes, and a large daemon must not become unlistable.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// A connected client with the per-request timeout.
#[derive(Debug, Clone)]
pub struct Client {
    pub rpc: MaglevClient<Channel>,
    pub server: String,
    pub timeout: Duration,
}

impl Client {
    /// Connects now, so that an unreachable daemon is reported before anything else.
    pub async fn connect(
        server: &str,
        files: &TlsFiles,
        timeout: Duration,
    ) -> Result<Client, CtlError> {
        let target = parse_server(server)?;
        let unreachable = |e: tonic::transport::Error| CtlError::Unreachable {
            server: server.to_string(),
            reason: root_cause(&e),
        };
        let channel = match target {
            Target::Http(uri) => endpoint(&uri, timeout)?
                .connect()
                .await
                .map_err(unreachable)?,
            Target::Https { uri, host } => endpoint(&uri, timeout)?
                .tls_config(tls_config(&host, files)?)
                .map_err(|e| CtlError::Usage(format!("TLS setup: {}", root_cause(&e))))?
                .connect()
                .await
                .map_err(unreachable)?,
            Target::Unix(path) => {
                let path = Arc::new(path);
                // The URI is a placeholder: the connector ignores it and dials the socket.
                endpoint("http://localhost", timeout)?
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = Arc::clone(&path);
                        async move { UnixStream::connect(path.as_path()).await.map(TokioIo::new) }
                    }))
                    .await
                    .map_err(unreachable)?
            }
        };
        Ok(Client {
            rpc: MaglevClient::new(channel).max_decoding_message_size(MAX_ANSWER_BYTES),
            server: server.to_string(),
            timeout,
        })
    }

    /// Runs one unary call under the timeout and maps its failure.
    pub async fn call<T, F>(&self, fut: F) -> Result<T, CtlError>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(CtlError::from_status(&self.server, &status)),
            Err(_) => Err(CtlError::Unreachable {
                server: self.server.clone(),
                reason: format!("no answer within {:?}", self.timeout),
            }),
        }
    }
}

fn endpoint(uri: &str, timeout: Duration) -> Result<Endpoint, CtlError> {
    Endpoint::from_shared(uri.to_string())
        .map_err(|e| CtlError::Usage(format!("bad --server {uri:?}: {e}")))?
        .connect_timeout(timeout)
        .user_agent(format!("maglev-ctl/{}", crate::version::VERSION))
        .map_err(|e| CtlError::Usage(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_forms() {
        assert_eq!(
            parse_server("127.0.0.1:9090").ok(),
            Some(Target::Http("http://127.0.0.1:9090".into()))
        );
        assert_eq!(
            parse_server("http://lb1:9090/").ok(),
            Some(Target::Http("http://lb1:9090".into()))
        );
        assert_eq!(
            parse_server("https://lb1.example:443").ok(),
            Some(Target::Https {
                uri: "https://lb1.example:443".into(),
                host: "lb1.example".into()
            })
        );
        assert_eq!(
            parse_server("https://[::1]:9090").ok(),
            Some(Target::Https {
                uri: "https://[::1]:9090".into(),
                host: "::1".into()
            })
        );
        assert_eq!(
            parse_server("unix:/run/maglev.sock").ok(),
            Some(Target::Unix("/run/maglev.sock".into()))
        );
        assert_eq!(
            parse_server("unix:///run/maglev.sock").ok(),
            Some(Target::Unix("/run/maglev.sock".into()))
        );
        for bad in ["", "unix:", "lb1", "ftp://lb1:1", "http://:9090"] {
            let e = parse_server(bad).expect_err(bad);
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("5s").ok(), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_timeout("250ms").ok(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_timeout("1m").ok(), Some(Duration::from_secs(60)));
        assert_eq!(parse_timeout("2.5").ok(), Some(Duration::from_millis(2500)));
        for bad in ["", "0s", "-1s", "fast", "5h"] {
            assert!(parse_timeout(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        let refused = CtlError::from_status("x", &tonic::Status::not_found("no backend \"web9\""));
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(refused.to_string(), "no backend \"web9\"");
        // UNAVAILABLE from the server itself (VPP is off) is a refusal, not unreachability.
        let vpp_off = CtlError::from_status(
            "x",
            &tonic::Status::unavailable(crate::vpp::VppDisabled.to_string()),
        );
        assert_eq!(vpp_off.exit_code(), 1);
        let late = CtlError::from_status("x", &tonic::Status::deadline_exceeded("late"));
        assert_eq!(late.exit_code(), 3);
        let bare = CtlError::from_status("x", &tonic::Status::new(Code::PermissionDenied, ""));
        assert_eq!(bare.to_string(), "permissiondenied");
    }

    #[tokio::test]
    async fn unreachable_server_is_exit_3_with_the_os_reason() {
        // Port 1 on loopback: nothing listens there, the kernel refuses at once.
        let e = Client::connect("127.0.0.1:1", &TlsFiles::default(), Duration::from_secs(5))
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(e.exit_code(), 3);
        let text = e.to_string();
        assert!(
            text.starts_with("cannot reach maglev daemon at 127.0.0.1:1: "),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }

    #[tokio::test]
    async fn missing_unix_socket_is_exit_3() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("none.sock");
        let server = format!("unix:{}", sock.display());
        let e = Client::connect(&server, &TlsFiles::default(), Duration::from_secs(5))
            .await
            .expect_err("no socket");
        assert_eq!(e.exit_code(), 3, "{e}");
        assert!(e.to_string().contains("No such file"), "{e}");
    }

    #[test]
    fn cert_without_key_is_a_usage_error() {
        let files = TlsFiles {
            cert: Some("/nonexistent.pem".into()),
            ..TlsFiles::default()
        };
        let e = tls_config("lb1", &files).expect_err("cert alone");
        assert_eq!(e.exit_code(), 2);
    }
}
