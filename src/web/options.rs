//! `maglev web` flags turned into a plan: which daemons (address and display name), where to
//! listen, and the rule that plain HTTP is only served on loopback unless `--insecure`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::WebArgs;

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("--server {0:?}: {1}")]
    BadServer(String, String),
    #[error("two daemons are named {0:?}: give each a name with --server ADDR=NAME")]
    DuplicateName(String),
    #[error("--listen {0:?}: expected host:port, e.g. 127.0.0.1:9092 or [::]:9092")]
    BadListen(String),
    #[error(
        "refusing plain HTTP on non-loopback address {0}: pass --tls-cert and --tls-key, \
         or --insecure"
    )]
    InsecureListen(SocketAddr),
    #[error("--tls-cert and --tls-key go together")]
    HalfTls,
    #[error("{0}")]
    Bad(String),
}

/// One daemon to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The address as `maglev ctl --server` takes it.
    pub addr: String,
    /// Tab title and the `{daemon}` of `/view/api/state/{daemon}`.
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub servers: Vec<Server>,
    pub listen: SocketAddr,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub timeout: Duration,
    pub replay_window: Duration,
}

/// The whole policy, pure (files are read later).
pub fn plan(args: &WebArgs) -> Result<Plan, OptionsError> {
    let servers = parse_servers(&args.servers)?;
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|_| OptionsError::BadListen(args.listen.clone()))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => return Err(OptionsError::HalfTls),
    };
    if tls.is_none() && !listen.ip().is_loopback() && !args.insecure {
        return Err(OptionsError::InsecureListen(listen));
    }
    let timeout = crate::ctl::client::parse_timeout(&args.timeout)
        .map_err(|e| OptionsError::Bad(e.to_string()))?;
    let replay_window = crate::ctl::client::parse_timeout(&args.replay_window)
        .map_err(|e| OptionsError::Bad(e.to_string().replace("--timeout", "--replay-window")))?;
    Ok(Plan {
        servers,
        listen,
        tls,
        timeout,
        replay_window,
    })
}

/// `ADDR` or `ADDR=NAME` each (commas already split by clap); names unique.
pub fn parse_servers(items: &[String]) -> Result<Vec<Server>, OptionsError> {
    let mut out: Vec<Server> = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (addr, name) = match item.rsplit_once('=') {
            Some((addr, name)) => {
                if name.is_empty() || !name.chars().all(name_char) {
                    return Err(OptionsError::BadServer(
                        item.to_string(),
                        "a name is letters, digits, '.', '_', ':' or '-'".to_string(),
                    ));
                }
                (addr, name.to_string())
            }
            None => (item, default_name(item)),
        };
        crate::ctl::client::parse_server(addr)
            .map_err(|e| OptionsError::BadServer(item.to_string(), e.to_string()))?;
        if out.iter().any(|s| s.name == name) {
            return Err(OptionsError::DuplicateName(name));
        }
        out.push(Server {
            addr: addr.to_string(),
            name,
        });
    }
    if out.is_empty() {
        return Err(OptionsError::Bad("give at least one --server".to_string()));
    }
    Ok(out)
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// A name from the address: host:port without scheme, or a socket's file name.
fn default_name(addr: &str) -> String {
    let base = if let Some(path) = addr.strip_prefix("unix:") {
        std::path::Path::new(path)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or(path)
            .to_string()
    } else {
        addr.trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    };
    base.chars()
        .map(|c| if name_char(c) { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        web: WebArgs,
    }

    fn args(extra: &[&str]) -> WebArgs {
        T::parse_from(std::iter::once("web").chain(extra.iter().copied())).web
    }

    #[test]
    fn servers_repeated_or_comma_separated_with_names() {
        let a = args(&[
            "--server",
            "127.0.0.1:9090=lb1,https://lb2.example:9090",
            "--server",
            "unix:/run/vpp-maglev/grpc.sock",
        ]);
        let p = plan(&a).expect("plan");
        let names: Vec<_> = p.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["lb1", "lb2.example:9090", "grpc.sock"]);
        assert_eq!(p.servers[0].addr, "127.0.0.1:9090");
        assert_eq!(p.listen.to_string(), "127.0.0.1:9092");
    }

    #[test]
    fn bad_and_duplicate_servers() {
        assert!(matches!(
            parse_servers(&["a:1=x".into(), "b:2=x".into()]),
            Err(OptionsError::DuplicateName(n)) if n == "x"
        ));
        assert!(parse_servers(&["lb1".into()]).is_err());
        assert!(parse_servers(&["lb1:1=a b".into()]).is_err());
        assert!(parse_servers(&[]).is_err());
    }

    #[test]
    fn plain_http_only_on_loopback_unless_insecure() {
        assert!(matches!(
            plan(&args(&["--listen", "0.0.0.0:9092"])),
            Err(OptionsError::InsecureListen(_))
        ));
        assert!(plan(&args(&["--listen", "0.0.0.0:9092", "--insecure"])).is_ok());
        assert!(plan(&args(&["--listen", "[::1]:9092"])).is_ok());
        let tls = plan(&args(&[
            "--listen",
            "[::]:9092",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]))
        .expect("tls plan");
        assert!(tls.tls.is_some());
        assert!(matches!(
            plan(&args(&["--tls-cert", "c.pem"])),
            Err(OptionsError::HalfTls)
        ));
        assert!(matches!(
            plan(&args(&["--listen", "nonsense"])),
            Err(OptionsError::BadListen(_))
        ));
    }
}
