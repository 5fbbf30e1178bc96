//! One probe of one VIP: a TCP connect, or an HTTP(S) request on a new connection (a new
//! client is what a failover hurts), classified for the statistics.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{CONNECTION, HOST, HeaderName, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use crate::health::result::ResultCode;
use crate::probe::netns::SocketFactory;

use super::stats::{ErrorClass, Outcome};
use super::target::{Scheme, Target};

/// Bodies are read to the end (a client gets the whole page), but at most this much.
const BODY_CAP: usize = 1 << 20;

/// What every probe of a run shares.
pub struct Prober {
    sockets: SocketFactory,
    pub timeout: Duration,
    pub source: Option<IpAddr>,
    pub method: Method,
    /// The header naming the backend that answered.
    pub header: HeaderName,
    /// For https targets (None when there are none).
    pub tls: Option<Arc<ClientConfig>>,
}

impl Prober {
    pub fn new(
        timeout: Duration,
        source: Option<IpAddr>,
        method: Method,
        header: HeaderName,
        tls: Option<Arc<ClientConfig>>,
    ) -> Prober {
        Prober {
            sockets: SocketFactory::default(),
            timeout,
            source,
            method,
            header,
            tls,
        }
    }

    /// Probes once; returns how long it took and what it found. Never longer than the
    /// timeout (the connection is dropped when it runs out).
    pub async fn probe(&self, target: &Target) -> (Duration, Outcome) {
        let start = Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, self.attempt(target)).await {
            Ok(o) => o,
            Err(_) => fail(
                ErrorClass::Timeout,
                format!("no answer in {} ms", self.timeout.as_millis()),
            ),
        };
        (start.elapsed(), outcome)
    }

    async fn attempt(&self, target: &Target) -> Outcome {
        let stream =
            match crate::probe::tcp::connect(&self.sockets, None, target.addr, self.source).await {
                Ok(s) => s,
                Err(o) if matches!(o.code, ResultCode::L4Tout) => {
                    return fail(ErrorClass::Timeout, o.detail);
                }
                Err(o) => return fail(ErrorClass::NetErr, o.detail),
            };
        match target.scheme {
            Scheme::Tcp => Outcome::Ok {
                status: None,
                backend: None,
            },
            Scheme::Http => self.exchange(stream, target).await,
            Scheme::Https => {
                let Some(config) = &self.tls else {
                    return fail(ErrorClass::NetErr, "no TLS config".to_string());
                };
                let name = match ServerName::try_from(target.host.clone()) {
                    Ok(n) => n,
                    Err(e) => return fail(ErrorClass::NetErr, format!("TLS server name: {e}")),
                };
                match TlsConnector::from(Arc::clone(config))
                    .connect(name, stream)
                    .await
                {
                    Ok(tls) => self.exchange(tls, target).await,
                    Err(e) => fail(ErrorClass::NetErr, format!("TLS: {e}")),
                }
            }
        }
    }

    /// Request, status, backend header, body. The connection is driven here, not spawned,
    /// so a timeout that drops this future closes it.
    async fn exchange<S>(&self, io: S, target: &Target) -> Outcome
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let request = match Request::builder()
            .method(self.method.clone())
            .uri(target.path.as_str())
            .header(HOST, host_header(target))
            .header(USER_AGENT, format!("maglevt/{}", crate::version::VERSION))
            .header(CONNECTION, "close")
            .body(Empty::<Bytes>::new())
        {
            Ok(r) => r,
            Err(e) => return fail(ErrorClass::HttpErr, format!("bad request: {e}")),
        };
        let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(io)).await
        {
            Ok(pair) => pair,
            Err(e) => return hyper_failure(&e),
        };
        let mut conn = std::pin::pin!(conn);
        let mut answer = std::pin::pin!(async {
            let resp = sender.send_request(request).await?;
            let status = resp.status().as_u16();
            let backend = resp
                .headers()
                .get(&self.header)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            let mut body = resp.into_body();
            let mut read = 0usize;
            while read < BODY_CAP {
                let Some(frame) = body.frame().await else {
                    break;
                };
                if let Ok(data) = frame?.into_data() {
                    read += data.len();
                }
            }
            Ok::<_, hyper::Error>((status, backend))
        });
        let result = tokio::select! {
            biased;
            r = &mut answer => r,
            c = &mut conn => match c {
                // The server closed after a complete answer: it is in the buffer.
                Ok(()) => answer.await,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok((status, _)) if status >= 500 => fail(ErrorClass::HttpErr, format!("HTTP {status}")),
            Ok((status, backend)) => Outcome::Ok {
                status: Some(status),
                backend,
            },
            Err(e) => hyper_failure(&e),
        }
    }
}

fn host_header(target: &Target) -> String {
    let default = match target.scheme {
        Scheme::Https => 443,
        _ => 80,
    };
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    if target.addr.port() == default {
        host
    } else {
        format!("{host}:{}", target.addr.port())
    }
}

fn fail(class: ErrorClass, detail: String) -> Outcome {
    Outcome::Fail { class, detail }
}

/// A malformed answer is `http-err`; a connection closed or reset before the answer was
/// complete (a backend going away mid-request) is `net-err`, like a refused connect.
fn hyper_failure(e: &hyper::Error) -> Outcome {
    if e.is_parse() || e.is_parse_status() {
        return fail(ErrorClass::HttpErr, format!("bad answer: {e}"));
    }
    if e.is_incomplete_message() {
        return fail(ErrorClass::NetErr, "closed before answering".to_string());
    }
    let mut last: &dyn std::error::Error = e;
    while let Some(next) = last.source() {
        last = next;
    }
    let text = match last.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
            "connection reset".to_string()
        }
        _ => last.to_string(),
    };
    fail(ErrorClass::NetErr, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(scheme: Scheme, addr: &str, host: &str) -> Target {
        Target {
            name: "t".into(),
            scheme,
            addr: addr.parse().expect("addr"),
            host: host.into(),
            path: "/".into(),
        }
    }

    #[test]
    fn host_headers() {
        assert_eq!(
            host_header(&target(Scheme::Http, "192.0.2.1:80", "192.0.2.1")),
            "192.0.2.1"
        );
        assert_eq!(
            host_header(&target(Scheme::Https, "[2001:db8::1]:8443", "2001:db8::1")),
            "[2001:db8::1]:8443"
        );
        assert_eq!(
            host_header(&target(Scheme::Https, "192.0.2.1:443", "www.example")),
            "www.example"
        );
    }

    #[tokio::test]
    async fn refused_connect_is_a_net_error() {
        // Bind then drop: a loopback port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let prober = Prober::new(
            Duration::from_secs(2),
            None,
            Method::GET,
            HeaderName::from_static("x-ipng-frontend"),
            None,
        );
        let t = target(Scheme::Http, &format!("127.0.0.1:{port}"), "127.0.0.1");
        let (_, outcome) = prober.probe(&t).await;
        match outcome {
            Outcome::Fail { class, detail } => {
                assert_eq!(class, ErrorClass::NetErr);
                assert!(detail.contains("refused"), "{detail}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
