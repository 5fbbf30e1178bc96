//! Probes (docs/design.md §6): ICMP echo, TCP connect, TCP half-open, HTTP and HTTPS.
//!
//! The daemon creates one [`Prober`] and calls [`Prober::probe`] with a [`ProbeSpec`] per
//! backend. Shared state (one ICMP socket per family, namespace threads, TLS configs) lives
//! inside the `Prober`, so cloning it is cheap.

mod bpf;
mod buffers;
mod connect_poll;
mod errors;
pub mod http;
pub mod icmp;
pub mod netns;
mod rawio;
mod shared_socket;
mod sockopt;
pub mod tcp;
pub mod tcp_syn;
mod timeouts;
pub mod tls;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::config::model::{CheckKind, CheckType, HealthCheck};
use crate::health::result::{ProbeResult, ResultCode};

/// Everything one probe needs to know, resolved from the config for one backend.
/// The check (port, HTTP and TLS parameters, a compiled body regex) is shared by every
/// backend of a health check: per backend there are only the address, source and netns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// What to probe, with its port and HTTP/TLS parameters. `from_config` shares one
    /// `Arc` among the specs of equal checks; `kind.into()` makes a lone one.
    pub check: Arc<CheckKind>,
    pub addr: IpAddr,
    /// The whole probe (socket, connect, TLS, response) finishes within this.
    pub timeout: Duration,
    /// Source address of the same family as `addr`.
    pub source: Option<IpAddr>,
    /// Network namespace name (under /run/netns); None = the daemon's own.
    pub netns: Option<String>,
}

impl ProbeSpec {
    /// The spec of `hc` for the backend at `addr`. `netns` is the namespace the check runs in
    /// (see `Config::netns_of`).
    pub fn from_config(hc: &HealthCheck, addr: IpAddr, netns: Option<String>) -> Self {
        let source = match addr {
            IpAddr::V4(_) => hc.probe_ipv4_src.map(IpAddr::V4),
            IpAddr::V6(_) => hc.probe_ipv6_src.map(IpAddr::V6),
        };
        ProbeSpec {
            check: shared_check(&hc.check),
            addr,
            timeout: hc.timeout,
            source,
            netns,
        }
    }

    pub fn kind(&self) -> CheckType {
        self.check.kind()
    }

    pub fn port(&self) -> Option<u16> {
        self.check.port()
    }
}

/// Checks handed out by `from_config`, one per distinct `CheckKind` still in use: the
/// backends of one health check share it, also across a reload that keeps the check.
static CHECKS: Mutex<Vec<Weak<CheckKind>>> = Mutex::new(Vec::new());

/// The shared `Arc` of a check equal to `kind`, made if none is alive. A daemon has a
/// handful of health checks, so a scan of the live ones is cheaper than hashing the key.
fn shared_check(kind: &CheckKind) -> Arc<CheckKind> {
    let Ok(mut checks) = CHECKS.lock() else {
        return Arc::new(kind.clone());
    };
    if let Some(live) = checks
        .iter()
        .filter_map(Weak::upgrade)
        .find(|c| **c == *kind)
    {
        return live;
    }
    checks.retain(|w| w.strong_count() > 0);
    let made = Arc::new(kind.clone());
    checks.push(Arc::downgrade(&made));
    made
}

/// What a probe found, before timing is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: ResultCode,
    pub detail: String,
}

impl Outcome {
    pub fn new(code: ResultCode, detail: impl Into<String>) -> Self {
        Outcome {
            code,
            detail: detail.into(),
        }
    }
}

/// The code a probe reports if its time runs out now. Each stage (connect, TLS, response)
/// moves it forward, so a timeout is blamed on the layer that was waiting.
#[derive(Debug)]
pub struct Stage(AtomicU8);

impl Stage {
    pub fn new(code: ResultCode) -> Self {
        Stage(AtomicU8::new(Self::index(code)))
    }

    pub fn set(&self, code: ResultCode) {
        self.0.store(Self::index(code), Ordering::Relaxed);
    }

    pub fn timeout_code(&self) -> ResultCode {
        let i = usize::from(self.0.load(Ordering::Relaxed));
        ResultCode::ALL
            .get(i)
            .copied()
            .unwrap_or(ResultCode::L4Tout)
    }

    fn index(code: ResultCode) -> u8 {
        // ALL has 11 entries, so the position always fits.
        code.index() as u8
    }
}

/// Runs probes. Create one per daemon and clone it freely.
#[derive(Clone, Default)]
pub struct Prober {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    sockets: netns::SocketFactory,
    connect: connect_poll::ConnectPoller,
    icmp: icmp::IcmpPool,
    tls: tls::TlsConfigs,
    http: http::HttpShared,
    syn: tcp_syn::SynPool,
    timeouts: timeouts::ProbeTimeouts,
}

impl Prober {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs one probe. Never panics and always returns within `spec.timeout` (plus
    /// scheduling slack).
    pub async fn probe(&self, spec: &ProbeSpec) -> ProbeResult {
        let started = Instant::now();
        let stage = Stage::new(ResultCode::L4Tout);
        let within = self
            .inner
            .timeouts
            .within(spec.timeout, self.run(spec, &stage));
        let outcome = match within.await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::new(
                stage.timeout_code(),
                format!("no answer within {:?}", spec.timeout),
            ),
        };
        ProbeResult::new(outcome.code, outcome.detail, started.elapsed())
    }

    /// ICMP echo replies (and TCP-SYN answers) seen that matched no outstanding probe.
    pub fn unmatched_replies(&self) -> u64 {
        self.inner.icmp.unmatched_replies() + self.inner.syn.unmatched_replies()
    }

    /// Forgets cached TLS client configs, so CA files are read again (e.g. on reload).
    pub fn clear_tls_cache(&self) {
        self.inner.tls.clear();
    }

    /// Every caller's future embeds this one at its largest variant, and a checker keeps
    /// one such future per probe in flight: so only the small TCP path is inline, the
    /// others are boxed for the probe's duration, each at its own size (see the
    /// `future_sizes` test: HTTP is apart from HTTPS, whose TLS handshake is the largest).
    async fn run(&self, spec: &ProbeSpec, stage: &Stage) -> Outcome {
        let inner = &*self.inner;
        match &*spec.check {
            CheckKind::Icmp => Box::pin(inner.icmp.probe(&inner.sockets, spec)).await,
            CheckKind::Tcp { port } => {
                tcp::probe(&inner.sockets, &inner.connect, spec, *port).await
            }
            CheckKind::TcpSyn { port } => {
                Box::pin(inner.syn.probe(&inner.sockets, spec, *port)).await
            }
            CheckKind::Http { port, params } => {
                let sh = (&inner.sockets, &inner.http);
                Box::pin(http::probe(sh.0, sh.1, spec, *port, params, stage)).await
            }
            CheckKind::Https { port, params, tls } => {
                let check = http::HttpsCheck {
                    port: *port,
                    params,
                    tls,
                };
                let sh = (&inner.sockets, &inner.tls, &inner.http);
                Box::pin(http::probe_tls(sh.0, sh.1, sh.2, spec, check, stage)).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn hc() -> HealthCheck {
        HealthCheck {
            name: "hc".into(),
            check: CheckKind::Tcp { port: 80 },
            interval: Duration::from_secs(2),
            fast_interval: Duration::from_millis(500),
            down_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            probe_ipv4_src: Some(Ipv4Addr::new(10, 0, 0, 1)),
            probe_ipv6_src: Some(Ipv6Addr::LOCALHOST),
            netns: None,
        }
    }

    #[test]
    fn spec_picks_source_of_the_backend_family() {
        let v4 = ProbeSpec::from_config(&hc(), "192.0.2.1".parse().unwrap(), None);
        assert_eq!(v4.source, Some("10.0.0.1".parse().unwrap()));
        let v6 = ProbeSpec::from_config(&hc(), "2001:db8::1".parse().unwrap(), Some("ns".into()));
        assert_eq!(v6.source, Some("::1".parse().unwrap()));
        assert_eq!(v6.netns.as_deref(), Some("ns"));
        assert_eq!(v6.port(), Some(80));
        assert_eq!(v6.timeout, Duration::from_secs(1));
    }

    #[test]
    fn specs_of_one_check_share_it() {
        let a = ProbeSpec::from_config(&hc(), "192.0.2.1".parse().unwrap(), None);
        let b = ProbeSpec::from_config(&hc(), "192.0.2.2".parse().unwrap(), None);
        assert!(Arc::ptr_eq(&a.check, &b.check));
        let other = HealthCheck {
            check: CheckKind::Tcp { port: 81 },
            ..hc()
        };
        let c = ProbeSpec::from_config(&other, "192.0.2.1".parse().unwrap(), None);
        assert!(!Arc::ptr_eq(&a.check, &c.check));
        assert_eq!(c.port(), Some(81));
        // Once no spec holds it, an equal check gets a fresh `Arc` (nothing kept alive).
        let weak = Arc::downgrade(&c.check);
        drop(c);
        assert!(weak.upgrade().is_none());
        let d = ProbeSpec::from_config(&other, "192.0.2.1".parse().unwrap(), None);
        assert_eq!(d.port(), Some(81));
    }

    /// What a probe in flight keeps boxed: the plain HTTP check's state apart from (and
    /// well under) the HTTPS one's, whose TLS handshake it no longer carries.
    #[test]
    fn future_sizes() {
        let prober = Prober::new();
        let inner = &*prober.inner;
        let stage = Stage::new(ResultCode::L4Tout);
        let spec = ProbeSpec::from_config(&hc(), "192.0.2.1".parse().unwrap(), None);
        let params = crate::config::model::HttpParams {
            path: "/".into(),
            host: None,
            expect_status: Vec::new(),
            expect_body: None,
        };
        let tls_params = crate::config::model::TlsParams::default();
        let plain = http::probe(&inner.sockets, &inner.http, &spec, 80, &params, &stage);
        let check = http::HttpsCheck {
            port: 443,
            params: &params,
            tls: &tls_params,
        };
        let tls = http::probe_tls(
            &inner.sockets,
            &inner.tls,
            &inner.http,
            &spec,
            check,
            &stage,
        );
        let (plain, tls) = (std::mem::size_of_val(&plain), std::mem::size_of_val(&tls));
        println!("http future {plain} bytes, https future {tls} bytes");
        assert!(plain * 2 < tls, "http {plain} B, https {tls} B");
    }

    /// A request that cannot be sent fails before any connection: against a port with no
    /// listener the verdict is the bad request, not a refused connect.
    #[tokio::test]
    async fn a_bad_http_request_fails_before_connecting() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let params = crate::config::model::HttpParams {
            path: "no-slash".into(),
            host: None,
            expect_status: Vec::new(),
            expect_body: None,
        };
        let spec = ProbeSpec {
            check: CheckKind::Http { port, params }.into(),
            addr: "127.0.0.1".parse().unwrap(),
            timeout: Duration::from_secs(1),
            source: None,
            netns: None,
        };
        let r = Prober::new().probe(&spec).await;
        assert_eq!(r.code, ResultCode::SockErr, "{r:?}");
        assert!(r.detail.starts_with("invalid HTTP request: path"), "{r:?}");
    }

    #[test]
    fn stage_remembers_the_timeout_code() {
        let s = Stage::new(ResultCode::L4Tout);
        assert_eq!(s.timeout_code(), ResultCode::L4Tout);
        s.set(ResultCode::L6Tout);
        assert_eq!(s.timeout_code(), ResultCode::L6Tout);
        s.set(ResultCode::L7Tout);
        assert_eq!(s.timeout_code(), ResultCode::L7Tout);
    }
}
