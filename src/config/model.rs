//! The validated configuration: what the rest of the daemon sees. Built from the TOML
//! schema by `load`; every value here has passed the semantic rules of docs/design.md §4.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What VPP gets when every backend of a frontend is down (a weight-table concept).
pub use crate::health::weight::FailPolicy;

/// A whole, valid configuration. Maps are ordered by name so output is deterministic.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was loaded from (for messages).
    pub path: PathBuf,
    pub healthchecker: HealthCheckerConfig,
    pub vpp: VppConfig,
    pub healthchecks: BTreeMap<String, HealthCheck>,
    pub backends: BTreeMap<String, Backend>,
    pub frontends: BTreeMap<String, Frontend>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckerConfig {
    /// Transitions kept per backend (>= 1). Default 5.
    pub transition_history: usize,
    /// Network namespace (name under /run/netns) for all probes; None = the daemon's own.
    pub netns: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VppConfig {
    pub lb: VppLbConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VppLbConfig {
    /// Periodic full reconcile. Default 30s.
    pub sync_interval: Duration,
    /// GRE4 source; required if any frontend has IPv4 backends.
    pub ipv4_src_address: Option<std::net::Ipv4Addr>,
    /// GRE6 source; required if any frontend has IPv6 backends.
    pub ipv6_src_address: Option<std::net::Ipv6Addr>,
    /// Power of two. Default 65536.
    pub sticky_buckets_per_core: u32,
    /// 1s..120s. Default 40s.
    pub flow_timeout: Duration,
    /// Warmup: no VPP writes at all before this. Default 5s.
    pub startup_min_delay: Duration,
    /// Warmup: final full sync at this point. Default 30s.
    pub startup_max_delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckType {
    Icmp,
    Tcp,
    TcpSyn,
    Http,
    Https,
}

impl CheckType {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckType::Icmp => "icmp",
            CheckType::Tcp => "tcp",
            CheckType::TcpSyn => "tcp-syn",
            CheckType::Http => "http",
            CheckType::Https => "https",
        }
    }

    /// tcp, tcp-syn, http and https need a port.
    pub fn needs_port(self) -> bool {
        !matches!(self, CheckType::Icmp)
    }
}

/// An inclusive range of acceptable HTTP status codes ("200", "200-299").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    pub fn contains(&self, code: u16) -> bool {
        self.lo <= code && code <= self.hi
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyMatch {
    Substring(String),
    /// Compiled during validation, so a probe never compiles (or fails to compile) it.
    Regex(BodyRegex),
}

impl BodyMatch {
    /// A regex body match; Err if `src` does not compile.
    pub fn regex(src: &str) -> Result<Self, regex::Error> {
        BodyRegex::new(src).map(BodyMatch::Regex)
    }

    /// Whether a response body satisfies this match.
    pub fn matches(&self, body: &[u8]) -> bool {
        match self {
            BodyMatch::Substring(s) => {
                let needle = s.as_bytes();
                needle.is_empty() || body.windows(needle.len()).any(|w| w == needle)
            }
            BodyMatch::Regex(re) => re.is_match(body),
        }
    }
}

/// A compiled body regex, shared by every probe spec made from its check. It matches
/// bytes (a body need not be UTF-8) and compares and prints as its source.
#[derive(Clone)]
pub struct BodyRegex(Arc<regex::bytes::Regex>);

impl BodyRegex {
    /// Compiles `src` with the syntax of `regex::Regex`, so what validates is exactly what
    /// text regexes accept.
    pub fn new(src: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(src)?;
        regex::bytes::Regex::new(src).map(|re| BodyRegex(Arc::new(re)))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_match(&self, body: &[u8]) -> bool {
        self.0.is_match(body)
    }
}

impl PartialEq for BodyRegex {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for BodyRegex {}

impl std::fmt::Debug for BodyRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BodyRegex({:?})", self.as_str())
    }
}

/// The HTTP part of an http or https check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpParams {
    /// Request path. Default "/".
    pub path: String,
    /// Host header; None = the backend address.
    pub host: Option<String>,
    /// Default [200-399].
    pub expect_status: Vec<StatusRange>,
    pub expect_body: Option<BodyMatch>,
}

/// The TLS part of an https check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    /// None = host (or the address when no host).
    pub sni: Option<String>,
    /// Default true.
    pub verify: bool,
    /// None = the system CA store.
    pub ca_file: Option<PathBuf>,
}

impl Default for TlsParams {
    fn default() -> Self {
        TlsParams {
            sni: None,
            verify: true,
            ca_file: None,
        }
    }
}

/// What a check does, with exactly the data that kind of check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    Icmp,
    Tcp {
        port: u16,
    },
    TcpSyn {
        port: u16,
    },
    Http {
        port: u16,
        params: HttpParams,
    },
    Https {
        port: u16,
        params: HttpParams,
        tls: TlsParams,
    },
}

impl CheckKind {
    pub fn kind(&self) -> CheckType {
        match self {
            CheckKind::Icmp => CheckType::Icmp,
            CheckKind::Tcp { .. } => CheckType::Tcp,
            CheckKind::TcpSyn { .. } => CheckType::TcpSyn,
            CheckKind::Http { .. } => CheckType::Http,
            CheckKind::Https { .. } => CheckType::Https,
        }
    }

    /// None for icmp only.
    pub fn port(&self) -> Option<u16> {
        match self {
            CheckKind::Icmp => None,
            CheckKind::Tcp { port }
            | CheckKind::TcpSyn { port }
            | CheckKind::Http { port, .. }
            | CheckKind::Https { port, .. } => Some(*port),
        }
    }

    /// Some for http and https.
    pub fn http(&self) -> Option<&HttpParams> {
        match self {
            CheckKind::Http { params, .. } | CheckKind::Https { params, .. } => Some(params),
            _ => None,
        }
    }

    /// Some for https.
    pub fn tls(&self) -> Option<&TlsParams> {
        match self {
            CheckKind::Https { tls, .. } => Some(tls),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub name: String,
    pub check: CheckKind,
    pub interval: Duration,
    /// Default interval / 4.
    pub fast_interval: Duration,
    /// Default interval.
    pub down_interval: Duration,
    /// <= interval.
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub probe_ipv4_src: Option<std::net::Ipv4Addr>,
    pub probe_ipv6_src: Option<std::net::Ipv6Addr>,
    /// Per-check namespace; overrides healthchecker.netns.
    pub netns: Option<String>,
}

impl HealthCheck {
    pub fn kind(&self) -> CheckType {
        self.check.kind()
    }

    pub fn port(&self) -> Option<u16> {
        self.check.port()
    }

    pub fn http(&self) -> Option<&HttpParams> {
        self.check.http()
    }

    pub fn tls(&self) -> Option<&TlsParams> {
        self.check.tls()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    pub address: IpAddr,
    pub healthcheck: String,
    /// Default true. false = starts `disabled`.
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Any,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Any => "any",
        }
    }

    /// IP protocol number as VPP wants it (255 = any).
    pub fn ip_proto(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Any => 255,
        }
    }
}

/// An address with a prefix length: the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMember {
    pub backend: String,
    /// 0..=100, default 100.
    pub weight: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    /// Ordered by backend name.
    pub backends: Vec<PoolMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    pub name: String,
    pub description: String,
    pub address: Prefix,
    pub protocol: Protocol,
    /// 0 = all ports.
    pub port: u16,
    pub src_ip_sticky: bool,
    /// Default true.
    pub flush_on_down: bool,
    /// What VPP gets when every backend is down. Default closed.
    pub fail: FailPolicy,
    /// In priority order: the first pool with a backend up is active.
    pub pools: Vec<Pool>,
}

impl Frontend {
    /// Every backend this frontend references, once, in pool order.
    pub fn backend_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.pools {
            for m in &p.backends {
                if !out.contains(&m.backend.as_str()) {
                    out.push(&m.backend);
                }
            }
        }
        out
    }
}

impl Config {
    /// Frontends that reference a backend, by name.
    pub fn frontends_of(&self, backend: &str) -> Vec<&str> {
        self.frontends
            .values()
            .filter(|f| {
                f.pools
                    .iter()
                    .any(|p| p.backends.iter().any(|m| m.backend == backend))
            })
            .map(|f| f.name.as_str())
            .collect()
    }

    /// The healthcheck of a backend (always present in a valid config).
    pub fn healthcheck_of(&self, backend: &str) -> Option<&HealthCheck> {
        self.backends
            .get(backend)
            .and_then(|b| self.healthchecks.get(&b.healthcheck))
    }

    /// The namespace a healthcheck's probes run in.
    pub fn netns_of(&self, hc: &HealthCheck) -> Option<String> {
        hc.netns
            .clone()
            .or_else(|| self.healthchecker.netns.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> HttpParams {
        HttpParams {
            path: "/".into(),
            host: None,
            expect_status: vec![StatusRange { lo: 200, hi: 399 }],
            expect_body: None,
        }
    }

    #[test]
    fn each_check_kind_carries_only_its_own_data() {
        let https = CheckKind::Https {
            port: 443,
            params: params(),
            tls: TlsParams::default(),
        };
        assert_eq!(https.kind(), CheckType::Https);
        assert_eq!(https.port(), Some(443));
        assert_eq!(https.http(), Some(&params()));
        assert!(https.tls().is_some_and(|t| t.verify && t.sni.is_none()));
        let http = CheckKind::Http {
            port: 80,
            params: params(),
        };
        assert_eq!((http.kind(), http.port()), (CheckType::Http, Some(80)));
        assert_eq!(http.tls(), None);
        let syn = CheckKind::TcpSyn { port: 22 };
        assert_eq!((syn.kind().as_str(), syn.port()), ("tcp-syn", Some(22)));
        assert_eq!(syn.http(), None);
        assert_eq!(
            (CheckKind::Icmp.kind(), CheckKind::Icmp.port()),
            (CheckType::Icmp, None)
        );
    }

    #[test]
    fn body_regexes_compare_by_source_and_match_bytes() {
        let a = BodyMatch::regex(r"^ok \d+$").unwrap();
        assert_eq!(a, BodyMatch::regex(r"^ok \d+$").unwrap());
        assert_ne!(a, BodyMatch::regex("^ok$").unwrap());
        assert_ne!(a, BodyMatch::Substring(r"^ok \d+$".into()));
        assert!(a.matches(b"ok 12"));
        assert!(!a.matches(b"ok \xff"));
        // A pattern only a bytes regex accepts is rejected, as validation always did.
        assert!(BodyMatch::regex(r"(?-u)\xff").is_err());
        assert!(BodyMatch::Substring(String::new()).matches(b""));
    }
}
