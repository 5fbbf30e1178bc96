//! Where and how the gRPC server listens: `--grpc-addr` parsing, the rule that plaintext
//! is only served on loopback or a Unix socket (unless `--grpc-insecure`), TLS material,
//! and the Unix socket's file (stale one removed, mode 0660).

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::cli::DaemonArgs;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "--grpc-addr {0:?}: expected host:port (e.g. 127.0.0.1:9090, [::1]:9090) or unix:/path"
    )]
    BadAddress(String),
    #[error(
        "refusing plaintext gRPC on non-loopback address {0}: pass --grpc-tls-cert and \
         --grpc-tls-key (and --grpc-client-ca for mutual TLS), or --grpc-insecure"
    )]
    InsecureBind(SocketAddr),
    #[error("--grpc-tls-cert and --grpc-tls-key go together")]
    HalfTls,
    #[error("--grpc-client-ca needs --grpc-tls-cert and --grpc-tls-key")]
    ClientCaWithoutTls,
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} exists and is not a socket; refusing to replace it", .0.display())]
    NotASocket(PathBuf),
    #[error("cannot prepare unix socket {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

pub fn parse_addr(text: &str) -> Result<ListenAddr, ListenError> {
    if let Some(path) = text.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(ListenError::BadAddress(text.to_string()));
        }
        return Ok(ListenAddr::Unix(PathBuf::from(path)));
    }
    text.parse()
        .map(ListenAddr::Tcp)
        .map_err(|_| ListenError::BadAddress(text.to_string()))
}

/// TLS files from the flags, checked for consistency (not read yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Where to listen and with what TLS, or why not: the whole policy, pure.
pub fn plan(args: &DaemonArgs) -> Result<(ListenAddr, Option<TlsFiles>), ListenError> {
    let addr = parse_addr(&args.grpc_addr)?;
    let tls = match (&args.grpc_tls_cert, &args.grpc_tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.grpc_client_ca.clone(),
        }),
        (None, None) if args.grpc_client_ca.is_some() => {
            return Err(ListenError::ClientCaWithoutTls);
        }
        (None, None) => None,
        _ => return Err(ListenError::HalfTls),
    };
    if let ListenAddr::Tcp(a) = &addr
        && !a.ip().is_loopback()
        && tls.is_none()
        && !args.grpc_insecure
    {
        return Err(ListenError::InsecureBind(*a));
    }
    Ok((addr, tls))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, ListenError> {
    std::fs::read(path).map_err(|source| ListenError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the PEM files into tonic's TLS config (client certificates required with a CA).
pub fn tls_config(files: &TlsFiles) -> Result<ServerTlsConfig, ListenError> {
    let identity = Identity::from_pem(
        read("--grpc-tls-cert", &files.cert)?,
        read("--grpc-tls-key", &files.key)?,
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &files.client_ca {
        config = config.client_ca_root(Certificate::from_pem(read("--grpc-client-ca", ca)?));
    }
    Ok(config)
}

/// Removes a stale socket file left by an earlier run; anything else at the path stays.
pub fn remove_stale_socket(path: &Path) -> Result<(), ListenError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|source| ListenError::Socket {
                path: path.to_path_buf(),
                source,
            })
        }
        Ok(_) => Err(ListenError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ListenError::Socket {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Owner and group may connect, nobody else.
pub fn restrict_socket(path: &Path) -> Result<(), ListenError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(|source| {
        ListenError::Socket {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn args(extra: &[&str]) -> DaemonArgs {
        let mut argv = vec!["maglev", "daemon"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv) {
            Ok(crate::cli::Cli {
                command: crate::cli::Command::Daemon(a),
            }) => a,
            other => panic!("bad test args: {other:?}"),
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("127.0.0.1:9090").ok(),
            Some(ListenAddr::Tcp(
                "127.0.0.1:9090".parse().unwrap_or_else(|_| unreachable!())
            ))
        );
        assert!(matches!(parse_addr("[::1]:1"), Ok(ListenAddr::Tcp(a)) if a.ip().is_loopback()));
        assert_eq!(
            parse_addr("unix:/run/maglev.sock").ok(),
            Some(ListenAddr::Unix("/run/maglev.sock".into()))
        );
        assert!(parse_addr("unix:").is_err());
        assert!(parse_addr("localhost").is_err());
        assert!(parse_addr("9090").is_err());
    }

    #[test]
    fn plaintext_only_on_loopback_or_unix_unless_insecure() {
        // The default is loopback, plaintext.
        assert!(matches!(plan(&args(&[])), Ok((ListenAddr::Tcp(_), None))));
        assert!(plan(&args(&["--grpc-addr", "[::1]:9090"])).is_ok());
        assert!(plan(&args(&["--grpc-addr", "unix:/tmp/x.sock"])).is_ok());
        let e = plan(&args(&["--grpc-addr", "0.0.0.0:9090"]));
        assert!(matches!(e, Err(ListenError::InsecureBind(_))));
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("--grpc-tls-cert") && msg.contains("--grpc-insecure"),
            "{msg}"
        );
        assert!(plan(&args(&["--grpc-addr", "192.0.2.1:9090", "--grpc-insecure"])).is_ok());
        let tls = plan(&args(&[
            "--grpc-addr",
            "0.0.0.0:9090",
            "--grpc-tls-cert",
            "c.pem",
            "--grpc-tls-key",
            "k.pem",
            "--grpc-client-ca",
            "ca.pem",
        ]));
        let Ok((_, Some(files))) = tls else {
            panic!("TLS plan expected: {tls:?}")
        };
        assert_eq!(files.client_ca, Some(PathBuf::from("ca.pem")));
    }

    #[test]
    fn tls_flags_must_be_complete() {
        assert!(matches!(
            plan(&args(&["--grpc-tls-cert", "c.pem"])),
            Err(ListenError::HalfTls)
        ));
        assert!(matches!(
            plan(&args(&["--grpc-client-ca", "ca.pem"])),
            Err(ListenError::ClientCaWithoutTls)
        ));
        let missing = TlsFiles {
            cert: "/nonexistent/c.pem".into(),
            key: "/nonexistent/k.pem".into(),
            client_ca: None,
        };
        let e = tls_config(&missing).err().map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("--grpc-tls-cert /nonexistent/c.pem")));
    }

    #[test]
    fn stale_socket_goes_other_files_stay() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let sock = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock);
        assert!(listener.is_ok());
        drop(listener);
        assert!(remove_stale_socket(&sock).is_ok());
        assert!(!sock.exists());
        assert!(remove_stale_socket(&sock).is_ok(), "nothing there is fine");
        let file = dir.path().join("plain");
        assert!(std::fs::write(&file, "keep me").is_ok());
        assert!(matches!(
            remove_stale_socket(&file),
            Err(ListenError::NotASocket(_))
        ));
        assert!(file.exists());
    }
}
