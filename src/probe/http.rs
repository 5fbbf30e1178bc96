//! HTTP and HTTPS checks: one HTTP/1.1 GET over our own TCP connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::model::{BodyMatch, CheckType, HttpParams, StatusRange};
use crate::health::result::ResultCode;

use super::netns::SocketFactory;
use super::tls::TlsConfigs;
use super::{Outcome, ProbeSpec, Stage, tcp};

/// At most this much of the body is read and matched.
pub const BODY_CAP: usize = 64 * 1024;

/// Used when a check lists no expected status.
const DEFAULT_STATUS: StatusRange = StatusRange { lo: 200, hi: 399 };

/// The `http` / `https` check.
pub async fn probe(
    sockets: &SocketFactory,
    tls: &TlsConfigs,
    regexes: &BodyRegexes,
    spec: &ProbeSpec,
    port: u16,
    stage: &Stage,
) -> Outcome {
    let default_params;
    let params = match &spec.http {
        Some(p) => p,
        None => {
            default_params = default_params_value();
            &default_params
        }
    };
    let https = spec.kind == CheckType::Https;
    let request = match build_request(params, spec.addr, port, https) {
        Ok(r) => r,
        Err(o) => return o,
    };
    stage.set(ResultCode::L4Tout);
    let addr = SocketAddr::new(spec.addr, port);
    let stream = match tcp::connect(sockets, spec.netns.as_deref(), addr, spec.source).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if !https {
        stage.set(ResultCode::L7Tout);
        return exchange(stream, request, params, regexes).await;
    }
    stage.set(ResultCode::L6Tout);
    let config = match tls.get(params.ca_file.as_deref(), params.verify).await {
        Ok(c) => c,
        Err(e) => return Outcome::new(ResultCode::SockErr, e.to_string()),
    };
    let name = match server_name(params, spec.addr) {
        Ok(n) => n,
        Err(o) => return o,
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls_stream = match connector.connect(name, stream).await {
        Ok(s) => s,
        Err(e) => {
            return Outcome::new(ResultCode::L6Rsp, format!("TLS handshake failed: {e}"));
        }
    };
    stage.set(ResultCode::L7Tout);
    exchange(tls_stream, request, params, regexes).await
}

fn default_params_value() -> HttpParams {
    HttpParams {
        path: "/".into(),
        host: None,
        expect_status: vec![DEFAULT_STATUS],
        expect_body: None,
        sni: None,
        verify: true,
        ca_file: None,
    }
}

/// The Host header: the configured host, else the address; with the port unless default.
pub fn host_header(params: &HttpParams, addr: IpAddr, port: u16, https: bool) -> String {
    let host = match (&params.host, addr) {
        (Some(h), _) => h.clone(),
        (None, IpAddr::V4(a)) => a.to_string(),
        (None, IpAddr::V6(a)) => format!("[{a}]"),
    };
    let default_port = if https { 443 } else { 80 };
    if port == default_port {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// The TLS server name: sni, else host, else the address (rustls sends no SNI for an IP).
pub fn server_name(params: &HttpParams, addr: IpAddr) -> Result<ServerName<'static>, Outcome> {
    let Some(name) = params.sni.as_ref().or(params.host.as_ref()) else {
        return Ok(ServerName::IpAddress(addr.into()));
    };
    ServerName::try_from(name.clone()).map_err(|e| {
        Outcome::new(
            ResultCode::SockErr,
            format!("bad TLS server name {name:?}: {e}"),
        )
    })
}

fn build_request(
    params: &HttpParams,
    addr: IpAddr,
    port: u16,
    https: bool,
) -> Result<Request<Empty<Bytes>>, Outcome> {
    Request::get(params.path.as_str())
        .header(HOST, host_header(params, addr, port, https))
        .header(USER_AGENT, crate::version::user_agent())
        .header(CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| Outcome::new(ResultCode::SockErr, format!("invalid HTTP request: {e}")))
}

/// The HTTP exchange of a check over a stream that is already connected (and TLS-wrapped
/// for https): request, response, verdict. `probe` is the same request and exchange, with
/// the request built before connecting (a bad one fails without a connection) and a body
/// regex compiled once per `Prober`; fuzzing and the unit tests feed this in-memory streams.
pub async fn probe_stream<S>(
    io: S,
    params: &HttpParams,
    addr: IpAddr,
    port: u16,
    https: bool,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    match build_request(params, addr, port, https) {
        Ok(request) => exchange(io, request, params, &BodyRegexes::default()).await,
        Err(o) => o,
    }
}

/// Sends the request and judges the response. The connection is driven here (not spawned),
/// so dropping this future on timeout closes everything.
async fn exchange<S>(
    io: S,
    request: Request<Empty<Bytes>>,
    params: &HttpParams,
    regexes: &BodyRegexes,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(io)).await {
        Ok(pair) => pair,
        Err(e) => return hyper_failure(&e),
    };
    let mut conn = std::pin::pin!(conn);
    let mut response = std::pin::pin!(async {
        let resp = sender.send_request(request).await?;
        judge(resp, params, regexes).await
    });
    let result = tokio::select! {
        biased;
        r = &mut response => r,
        c = &mut conn => match c {
            // The connection finished on its own: the response is complete in the buffer.
            Ok(()) => response.await,
            Err(e) => Err(e),
        },
    };
    result.unwrap_or_else(|e| hyper_failure(&e))
}

async fn judge(
    resp: Response<Incoming>,
    params: &HttpParams,
    regexes: &BodyRegexes,
) -> Result<Outcome, hyper::Error> {
    let status = resp.status().as_u16();
    if !status_expected(&params.expect_status, status) {
        return Ok(Outcome::new(ResultCode::L7Sts, format!("HTTP {status}")));
    }
    let Some(expect) = &params.expect_body else {
        return Ok(Outcome::new(ResultCode::L7Ok, format!("HTTP {status}")));
    };
    let body = read_capped(resp.into_body(), BODY_CAP).await?;
    Ok(match regexes.body_matches(expect, &body) {
        Ok(true) => Outcome::new(ResultCode::L7Ok, format!("HTTP {status}")),
        Ok(false) => Outcome::new(ResultCode::L7Rsp, "body mismatch"),
        Err(e) => Outcome::new(ResultCode::SockErr, e),
    })
}

/// Reads at most `cap` bytes of the body; the rest is never read.
async fn read_capped(mut body: Incoming, cap: usize) -> Result<Vec<u8>, hyper::Error> {
    let mut out = Vec::new();
    while out.len() < cap {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            let take = data.len().min(cap - out.len());
            out.extend_from_slice(&data[..take]);
        }
    }
    Ok(out)
}

pub fn status_expected(ranges: &[StatusRange], status: u16) -> bool {
    if ranges.is_empty() {
        return DEFAULT_STATUS.contains(status);
    }
    ranges.iter().any(|r| r.contains(status))
}

/// Compiled body regexes by pattern, so a check's regex is compiled on its first probe
/// rather than on every one.
#[derive(Default)]
pub struct BodyRegexes {
    cache: Mutex<HashMap<String, Arc<regex::bytes::Regex>>>,
}

impl BodyRegexes {
    /// Patterns kept at most; past this the cache starts over (reloads can add patterns).
    const MAX: usize = 256;

    /// Whether `body` satisfies `expect`. Err only for a regex that does not compile
    /// (config validation should have caught it); such a pattern is not cached.
    pub fn body_matches(&self, expect: &BodyMatch, body: &[u8]) -> Result<bool, String> {
        match expect {
            BodyMatch::Substring(s) => {
                let needle = s.as_bytes();
                Ok(needle.is_empty() || body.windows(needle.len()).any(|w| w == needle))
            }
            BodyMatch::Regex(src) => Ok(self.compiled(src)?.is_match(body)),
        }
    }

    fn compiled(&self, src: &str) -> Result<Arc<regex::bytes::Regex>, String> {
        if let Some(re) = self.cache.lock().ok().and_then(|c| c.get(src).cloned()) {
            return Ok(re);
        }
        let re = regex::bytes::Regex::new(src)
            .map(Arc::new)
            .map_err(|e| format!("invalid body regex: {e}"))?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= Self::MAX {
                cache.clear();
            }
            cache.insert(src.to_owned(), Arc::clone(&re));
        }
        Ok(re)
    }
}

fn hyper_failure(e: &hyper::Error) -> Outcome {
    let detail = if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        format!("malformed HTTP response: {e}")
    } else if e.is_incomplete_message() {
        "connection closed before a complete response".to_string()
    } else {
        format!("HTTP error: {e}")
    };
    Outcome::new(ResultCode::L7Rsp, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> HttpParams {
        default_params_value()
    }

    #[test]
    fn host_header_variants() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(host_header(&params(), v4, 80, false), "192.0.2.1");
        assert_eq!(host_header(&params(), v4, 8080, false), "192.0.2.1:8080");
        assert_eq!(host_header(&params(), v4, 443, true), "192.0.2.1");
        assert_eq!(host_header(&params(), v4, 80, true), "192.0.2.1:80");
        assert_eq!(
            host_header(&params(), v6, 8080, false),
            "[2001:db8::1]:8080"
        );
        let named = HttpParams {
            host: Some("www.example.org".into()),
            ..params()
        };
        assert_eq!(host_header(&named, v4, 80, false), "www.example.org");
    }

    #[test]
    fn server_name_precedence() {
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(matches!(
            server_name(&params(), addr),
            Ok(ServerName::IpAddress(_))
        ));
        let host = HttpParams {
            host: Some("h.example".into()),
            ..params()
        };
        assert_eq!(
            server_name(&host, addr).unwrap(),
            ServerName::try_from("h.example").unwrap()
        );
        let sni = HttpParams {
            sni: Some("s.example".into()),
            ..host
        };
        assert_eq!(
            server_name(&sni, addr).unwrap(),
            ServerName::try_from("s.example").unwrap()
        );
    }

    #[test]
    fn status_ranges() {
        let ranges = [
            StatusRange { lo: 200, hi: 204 },
            StatusRange { lo: 301, hi: 301 },
        ];
        assert!(status_expected(&ranges, 200));
        assert!(status_expected(&ranges, 301));
        assert!(!status_expected(&ranges, 302));
        assert!(!status_expected(&ranges, 503));
        assert!(status_expected(&[], 302));
        assert!(!status_expected(&[], 404));
    }

    #[test]
    fn body_matching() {
        let regexes = BodyRegexes::default();
        let body_matches = |expect: &BodyMatch, body: &[u8]| regexes.body_matches(expect, body);
        let sub = BodyMatch::Substring("healthy".into());
        assert_eq!(body_matches(&sub, b"status: healthy\n"), Ok(true));
        assert_eq!(body_matches(&sub, b"status: sick\n"), Ok(false));
        assert_eq!(body_matches(&sub, b""), Ok(false));
        let re = BodyMatch::Regex(r"^ok \d+$".into());
        assert_eq!(body_matches(&re, b"ok 42"), Ok(true));
        assert_eq!(body_matches(&re, b"ok x"), Ok(false));
        assert!(body_matches(&BodyMatch::Regex("(".into()), b"").is_err());
    }

    #[test]
    fn a_body_regex_is_compiled_once() {
        let regexes = BodyRegexes::default();
        let first = regexes.compiled(r"^ok \d+$").unwrap();
        let again = regexes.compiled(r"^ok \d+$").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = regexes.compiled("^ok$").unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(regexes.compiled("(").is_err());
        assert_eq!(regexes.cache.lock().unwrap().len(), 2);
    }

    /// The fuzz entry point judges a response fed over an in-memory stream, and sends the
    /// same request as `probe`.
    #[tokio::test]
    async fn probe_stream_judges_an_in_memory_response() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        let cases = [
            (None, "200 OK", "ok 7", ResultCode::L7Ok),
            (None, "503 Unavailable", "", ResultCode::L7Sts),
            (
                Some(BodyMatch::Regex(r"^ok \d+$".into())),
                "200 OK",
                "ok 7",
                ResultCode::L7Ok,
            ),
            (
                Some(BodyMatch::Regex(r"^ok \d+$".into())),
                "200 OK",
                "ok x",
                ResultCode::L7Rsp,
            ),
        ];
        for (expect_body, status, body, code) in cases {
            let (client, mut server) = tokio::io::duplex(16 * 1024);
            let serve = async move {
                let mut head = [0u8; 1024];
                let n = server.read(&mut head).await.unwrap_or(0);
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = server.write_all(reply.as_bytes()).await;
                let _ = server.shutdown().await;
                String::from_utf8_lossy(&head[..n]).into_owned()
            };
            let p = HttpParams {
                expect_body,
                ..params()
            };
            let (head, outcome) = tokio::join!(serve, probe_stream(client, &p, addr, 8080, false));
            assert_eq!(outcome.code, code, "{status} {body:?}: {outcome:?}");
            assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head:?}");
            assert!(head.contains("host: 127.0.0.1:8080\r\n"), "{head:?}");
        }
    }

    #[test]
    fn request_has_the_probe_headers() {
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        let req = build_request(&params(), addr, 8080, false).unwrap();
        assert_eq!(req.uri(), "/");
        assert_eq!(req.headers()[HOST], "127.0.0.1:8080");
        assert_eq!(req.headers()[CONNECTION], "close");
        assert!(
            req.headers()[USER_AGENT]
                .to_str()
                .unwrap()
                .starts_with("maglev/")
        );
    }
}
