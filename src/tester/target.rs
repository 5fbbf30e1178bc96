//! What to probe: VIPs from a daemon config, from a running daemon's `ListFrontends`, or
//! from `--target` URLs. Everything is checked and resolved before the first probe.

use std::net::{IpAddr, SocketAddr};

use hyper::Uri;

use super::TesterError;

/// How a VIP is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    Tcp,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Tcp => "tcp",
        }
    }
}

/// One VIP to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The frontend name, or the URL as given.
    pub name: String,
    pub scheme: Scheme,
    pub addr: SocketAddr,
    /// Host header and TLS server name: the URL's host, or the VIP address.
    pub host: String,
    /// Request path (http/https).
    pub path: String,
}

impl Target {
    /// `http://192.0.2.1:80/`, `tcp://[2001:db8::1]:22`.
    pub fn url(&self) -> String {
        match self.scheme {
            Scheme::Tcp => format!("tcp://{}", self.addr),
            s => format!("{}://{}{}", s.as_str(), self.addr, self.path),
        }
    }
}

/// Which frontend ports speak HTTP or HTTPS (80 and 443 always do).
#[derive(Debug, Clone, Default)]
pub struct PortRules {
    pub http: Vec<u16>,
    pub https: Vec<u16>,
}

impl PortRules {
    fn scheme(&self, port: u16) -> Scheme {
        if port == 443 || self.https.contains(&port) {
            Scheme::Https
        } else if port == 80 || self.http.contains(&port) {
            Scheme::Http
        } else {
            Scheme::Tcp
        }
    }
}

/// One frontend as both sources describe it.
#[derive(Debug, Clone)]
pub struct FrontendVip<'a> {
    pub name: &'a str,
    pub addr: IpAddr,
    pub protocol: &'a str,
    pub port: u16,
}

/// The target of a frontend, or why it is skipped. A UDP frontend cannot be probed with a
/// connect; a frontend on all ports (0) is probed with HTTP on port 80.
pub fn frontend_target(f: &FrontendVip<'_>, rules: &PortRules) -> Result<Target, String> {
    if f.protocol == "udp" {
        return Err(format!(
            "frontend {}: udp cannot be probed, skipped",
            f.name
        ));
    }
    let port = if f.port == 0 { 80 } else { f.port };
    Ok(Target {
        name: f.name.to_string(),
        scheme: rules.scheme(port),
        addr: SocketAddr::new(f.addr, port),
        host: f.addr.to_string(),
        path: "/".to_string(),
    })
}

/// The frontends of a loaded config.
pub fn from_config(
    config: &crate::config::Config,
    rules: &PortRules,
) -> (Vec<Target>, Vec<String>) {
    let vips = config.frontends.values().map(|f| FrontendVip {
        name: &f.name,
        addr: f.address.addr,
        protocol: f.protocol.as_str(),
        port: f.port,
    });
    split(vips.map(|v| frontend_target(&v, rules)))
}

/// The frontends `ListFrontends` returned (address as a prefix, `192.0.2.1/32`).
pub fn from_frontends(
    frontends: &[crate::proto::Frontend],
    rules: &PortRules,
) -> Result<(Vec<Target>, Vec<String>), TesterError> {
    let mut results = Vec::new();
    for f in frontends {
        let text = f.address.split('/').next().unwrap_or_default();
        let addr: IpAddr = text.parse().map_err(|_| {
            TesterError::Usage(format!(
                "frontend {}: the daemon sent an address that is not an IP: {:?}",
                f.name, f.address
            ))
        })?;
        let port = u16::try_from(f.port).map_err(|_| {
            TesterError::Usage(format!("frontend {}: port {} out of range", f.name, f.port))
        })?;
        results.push(frontend_target(
            &FrontendVip {
                name: &f.name,
                addr,
                protocol: &f.protocol,
                port,
            },
            rules,
        ));
    }
    Ok(split(results.into_iter()))
}

fn split(results: impl Iterator<Item = Result<Target, String>>) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut notes = Vec::new();
    for r in results {
        match r {
            Ok(t) => targets.push(t),
            Err(n) => notes.push(n),
        }
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    (targets, notes)
}

/// A `--target` URL before its host is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    pub scheme: Scheme,
    /// Without IPv6 brackets.
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Parses `http://host[:port][/path]`, `https://...`, `tcp://host:port`.
pub fn parse_url(text: &str) -> Result<ParsedUrl, TesterError> {
    let bad = |why: &str| TesterError::Usage(format!("bad --target {text:?}: {why}"));
    let uri: Uri = text
        .parse()
        .map_err(|_| bad("use http://host[:port][/path], https://... or tcp://host:port"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        Some("tcp") => Scheme::Tcp,
        Some(other) => {
            return Err(bad(&format!(
                "unknown scheme {other:?} (use http, https or tcp)"
            )));
        }
        None => return Err(bad("no scheme (use http://, https:// or tcp://)")),
    };
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match (uri.port_u16(), scheme) {
        (Some(p), _) => p,
        (None, Scheme::Http) => 80,
        (None, Scheme::Https) => 443,
        (None, Scheme::Tcp) => return Err(bad("tcp:// needs a port")),
    };
    if port == 0 {
        return Err(bad("port 0"));
    }
    let path = match scheme {
        Scheme::Tcp => String::new(),
        _ => uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string()),
    };
    Ok(ParsedUrl {
        scheme,
        host,
        port,
        path: if path.is_empty() && scheme != Scheme::Tcp {
            "/".to_string()
        } else {
            path
        },
    })
}

/// Resolves a `--target` URL to one address, of the source's family when `--source` is set.
pub async fn resolve(text: &str, source: Option<IpAddr>) -> Result<Target, TesterError> {
    let url = parse_url(text)?;
    let addrs: Vec<SocketAddr> = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        Err(_) => tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|e| {
                TesterError::Usage(format!(
                    "bad --target {text:?}: cannot resolve {:?}: {e}",
                    url.host
                ))
            })?
            .collect(),
    };
    let addr = addrs
        .iter()
        .find(|a| source.is_none_or(|s| s.is_ipv4() == a.is_ipv4()))
        .copied()
        .ok_or_else(|| match (addrs.is_empty(), source) {
            (false, Some(s)) => TesterError::Usage(format!(
                "bad --target {text:?}: no address of the family of --source {s}"
            )),
            _ => TesterError::Usage(format!(
                "bad --target {text:?}: {:?} has no address",
                url.host
            )),
        })?;
    Ok(Target {
        name: text.to_string(),
        scheme: url.scheme,
        addr,
        host: url.host,
        path: url.path,
    })
}

/// Keeps the targets named in `--only` (all when empty); an unknown name is a usage error.
pub fn filter_only(targets: Vec<Target>, only: &[String]) -> Result<Vec<Target>, TesterError> {
    if only.is_empty() {
        return Ok(targets);
    }
    if let Some(missing) = only.iter().find(|n| !targets.iter().any(|t| &t.name == *n)) {
        let known: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        return Err(TesterError::Usage(format!(
            "--only {missing:?}: no such VIP (known: {})",
            known.join(", ")
        )));
    }
    Ok(targets
        .into_iter()
        .filter(|t| only.contains(&t.name))
        .collect())
}

/// `--source` must match every target's address family.
pub fn check_source(targets: &[Target], source: Option<IpAddr>) -> Result<(), TesterError> {
    let Some(src) = source else {
        return Ok(());
    };
    match targets.iter().find(|t| t.addr.is_ipv4() != src.is_ipv4()) {
        Some(t) => Err(TesterError::Usage(format!(
            "--source {src} cannot reach {} ({}): another address family",
            t.name, t.addr
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let u = parse_url("http://192.0.2.1").expect("plain");
        assert_eq!((u.scheme, u.port, u.path.as_str()), (Scheme::Http, 80, "/"));
        let u = parse_url("https://[2001:db8::1]:8443/health?x=1").expect("v6");
        assert_eq!(u.host, "2001:db8::1");
        assert_eq!((u.scheme, u.port), (Scheme::Https, 8443));
        assert_eq!(u.path, "/health?x=1");
        let u = parse_url("tcp://lb.example:22").expect("tcp");
        assert_eq!(
            (u.scheme, u.port, u.host.as_str()),
            (Scheme::Tcp, 22, "lb.example")
        );
        for bad in [
            "ftp://x:1",
            "tcp://x",
            "192.0.2.1:80",
            "http://",
            "http://x:0",
        ] {
            let e = parse_url(bad).expect_err(bad);
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn frontend_ports_pick_the_probe() {
        let rules = PortRules {
            http: vec![8080],
            https: vec![8443],
        };
        let vip = |protocol, port| FrontendVip {
            name: "f",
            addr: "192.0.2.1".parse().expect("ip"),
            protocol,
            port,
        };
        let scheme = |p, port| frontend_target(&vip(p, port), &rules).map(|t| t.scheme);
        assert_eq!(scheme("tcp", 80), Ok(Scheme::Http));
        assert_eq!(scheme("tcp", 443), Ok(Scheme::Https));
        assert_eq!(scheme("tcp", 8080), Ok(Scheme::Http));
        assert_eq!(scheme("any", 8443), Ok(Scheme::Https));
        assert_eq!(scheme("tcp", 22), Ok(Scheme::Tcp));
        assert_eq!(scheme("any", 0), Ok(Scheme::Http));
        assert!(scheme("udp", 53).is_err());
    }

    #[tokio::test]
    async fn resolution() {
        let t = resolve("tcp://127.0.0.1:22", None).await.expect("literal");
        assert_eq!(t.addr, "127.0.0.1:22".parse().expect("addr"));
        let t = resolve(
            "http://localhost:8080/x",
            Some("127.0.0.1".parse().expect("ip")),
        )
        .await
        .expect("localhost");
        assert!(t.addr.is_ipv4());
        assert_eq!((t.host.as_str(), t.path.as_str()), ("localhost", "/x"));
        let e = resolve("http://no-such-host.invalid/", None)
            .await
            .expect_err(".invalid never resolves");
        assert!(e.to_string().contains("cannot resolve"), "{e}");
    }

    #[test]
    fn only_and_source() {
        let t = |name: &str, addr: &str| Target {
            name: name.into(),
            scheme: Scheme::Tcp,
            addr: addr.parse().expect("addr"),
            host: String::new(),
            path: String::new(),
        };
        let all = vec![t("a", "192.0.2.1:1"), t("b", "[2001:db8::1]:1")];
        let kept = filter_only(all.clone(), &["b".into()]).expect("b exists");
        assert_eq!(kept.len(), 1);
        assert!(filter_only(all.clone(), &["zz".into()]).is_err());
        assert!(check_source(&all, Some("192.0.2.9".parse().expect("ip"))).is_err());
        assert!(check_source(&kept, Some("2001:db8::9".parse().expect("ip"))).is_ok());
    }
}
