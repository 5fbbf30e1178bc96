//! HTTP and HTTPS checks: one HTTP/1.1 GET over our own TCP connection (TLS-wrapped for
//! https), written and read by hand: the request is built into a pooled buffer, the
//! response head is parsed with `httparse`, and the body is read only when a body match
//! needs it, and then at most [`BODY_CAP`] bytes of it.

mod request;
pub mod response;

use std::io;
use std::net::{IpAddr, SocketAddr};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::model::{HttpParams, StatusRange, TlsParams};
use crate::health::result::ResultCode;

use super::buffers::{BufferPool, Pooled};
use super::errors::errno_text;
use super::netns::SocketFactory;
use super::tls::TlsConfigs;
use super::{Outcome, ProbeSpec, Stage, tcp};
pub use request::host_header;
use response::{Body, Head, Malformed};

/// At most this much of the body is read and matched.
pub const BODY_CAP: usize = 64 * 1024;

/// Used when a check lists no expected status.
const DEFAULT_STATUS: StatusRange = StatusRange { lo: 200, hi: 399 };

/// A read asks the socket for at least this much: the rest of the probe buffer (1 KiB
/// fresh: a check's response head fits), which doubles when less is left.
const MIN_READ: usize = 512;

/// What the HTTP checks of one `Prober` share.
#[derive(Default)]
pub struct HttpShared {
    pub buffers: BufferPool,
}

/// The https-specific part of a probe spec.
#[derive(Debug, Clone, Copy)]
pub struct HttpsCheck<'a> {
    pub port: u16,
    pub params: &'a HttpParams,
    pub tls: &'a TlsParams,
}

/// The `http` check. A future of its own (not the https one with a plain branch), so
/// the state it keeps per probe in flight is not sized by the TLS handshake's.
pub async fn probe(
    sockets: &SocketFactory,
    shared: &HttpShared,
    spec: &ProbeSpec,
    port: u16,
    params: &HttpParams,
    stage: &Stage,
) -> Outcome {
    // A bad request fails before connecting; the buffer is taken once connected, so a
    // probe waiting for its handshake holds none.
    if let Err(e) = request::check(params) {
        return bad_request(&e);
    }
    stage.set(ResultCode::L4Tout);
    let addr = SocketAddr::new(spec.addr, port);
    let mut stream = match tcp::connect(sockets, spec.netns.as_deref(), addr, spec.source).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    stage.set(ResultCode::L7Tout);
    let request = request(shared, spec, port, params, false);
    if let Err(e) = send(&mut stream, &request.buf).await {
        return io_failure("send request", &e);
    }
    // While the server answers the probe holds no buffer: it goes back to the pool and
    // one is taken again when the response is there, so the probes waiting (thousands
    // when backends are slow) cost only their future.
    drop(request);
    if let Err(e) = stream.readable().await {
        return io_failure("read response", &e);
    }
    let mut buf = shared.buffers.take();
    judge(&mut stream, &mut buf.buf, params, shared).await
}

/// The `https` check: the same exchange over TLS.
pub async fn probe_tls(
    sockets: &SocketFactory,
    tls: &TlsConfigs,
    shared: &HttpShared,
    spec: &ProbeSpec,
    check: HttpsCheck<'_>,
    stage: &Stage,
) -> Outcome {
    let HttpsCheck {
        port,
        params,
        tls: tls_params,
    } = check;
    if let Err(e) = request::check(params) {
        return bad_request(&e);
    }
    let mut buf = request(shared, spec, port, params, true);
    stage.set(ResultCode::L4Tout);
    let addr = SocketAddr::new(spec.addr, port);
    let stream = match tcp::connect(sockets, spec.netns.as_deref(), addr, spec.source).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    stage.set(ResultCode::L6Tout);
    let config = match tls
        .get(tls_params.ca_file.as_deref(), tls_params.verify)
        .await
    {
        Ok(c) => c,
        Err(e) => return Outcome::new(ResultCode::SockErr, e.to_string()),
    };
    let name = match server_name(params, tls_params, spec.addr) {
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
    exchange(tls_stream, &mut buf.buf, params, shared).await
}

/// The probe's buffer, holding its request (`params` passed `request::check`); https
/// reads the response into it after sending (plain http gives it back while the server
/// answers).
fn request<'a>(
    shared: &'a HttpShared,
    spec: &ProbeSpec,
    port: u16,
    params: &HttpParams,
    https: bool,
) -> Pooled<'a> {
    let mut buf = shared.buffers.take();
    request::write_valid(&mut buf.buf, params, spec.addr, port, https);
    buf
}

fn bad_request(e: &request::BadRequest) -> Outcome {
    Outcome::new(ResultCode::SockErr, format!("invalid HTTP request: {e}"))
}

/// The TLS server name: sni, else host, else the address (rustls sends no SNI for an IP).
pub fn server_name(
    params: &HttpParams,
    tls: &TlsParams,
    addr: IpAddr,
) -> Result<ServerName<'static>, Outcome> {
    let Some(name) = tls.sni.as_ref().or(params.host.as_ref()) else {
        return Ok(ServerName::IpAddress(addr.into()));
    };
    ServerName::try_from(name.clone()).map_err(|e| {
        Outcome::new(
            ResultCode::SockErr,
            format!("bad TLS server name {name:?}: {e}"),
        )
    })
}

/// The HTTP exchange of a check over a stream that is already connected (and TLS-wrapped
/// for https): request, response, verdict. `probe` is the same request and exchange, with
/// the request built before connecting (a bad one fails without a connection) and shared
/// buffers; fuzzing and the unit tests feed this in-memory streams.
pub async fn probe_stream<S>(
    io: S,
    params: &HttpParams,
    addr: IpAddr,
    port: u16,
    https: bool,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    if let Err(e) = request::write(&mut buf, params, addr, port, https) {
        return bad_request(&e);
    }
    exchange(io, &mut buf, params, &HttpShared::default()).await
}

/// Sends the request in `buf` and judges the response, read into the same buffer.
/// Everything is driven here, so dropping this future on timeout closes the connection
/// and returns the buffers.
async fn exchange<S>(
    mut io: S,
    buf: &mut Vec<u8>,
    params: &HttpParams,
    shared: &HttpShared,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(e) = send(&mut io, buf).await {
        return io_failure("send request", &e);
    }
    buf.clear();
    judge(&mut io, buf, params, shared).await
}

/// Reads the response into `buf` (empty) and judges it.
async fn judge<S>(
    io: &mut S,
    buf: &mut Vec<u8>,
    params: &HttpParams,
    shared: &HttpShared,
) -> Outcome
where
    S: AsyncRead + Unpin,
{
    let head = match read_head(io, buf).await {
        Ok(h) => h,
        Err(o) => return o,
    };
    let status = head.status;
    if !status_expected(&params.expect_status, status) {
        return Outcome::new(ResultCode::L7Sts, format!("HTTP {status}"));
    }
    let Some(expect) = &params.expect_body else {
        return Outcome::new(ResultCode::L7Ok, format!("HTTP {status}"));
    };
    let mut body = shared.buffers.take();
    if let Err(o) = read_body(io, head, buf, &mut body.buf).await {
        return o;
    }
    if expect.matches(&body.buf) {
        Outcome::new(ResultCode::L7Ok, format!("HTTP {status}"))
    } else {
        Outcome::new(ResultCode::L7Rsp, "body mismatch")
    }
}

async fn send<S: AsyncWrite + Unpin>(io: &mut S, request: &[u8]) -> io::Result<()> {
    io.write_all(request).await?;
    // A no-op on TCP; pushes the TLS record out.
    io.flush().await
}

/// Reads until a final (non-1xx) head is complete; `raw` then starts with it.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S, raw: &mut Vec<u8>) -> Result<Head, Outcome> {
    loop {
        match response::parse_head(raw) {
            Ok(Some(head)) if head.is_interim() => {
                raw.drain(..head.len);
                continue;
            }
            Ok(Some(head)) => return Ok(head),
            Ok(None) => {}
            Err(e) => return Err(malformed(&e)),
        }
        match read_more(io, raw).await {
            Ok(0) => return Err(incomplete()),
            Ok(_) => {}
            Err(e) => return Err(io_failure("read response", &e)),
        }
    }
}

/// Reads the body after `head` (at the start of `raw`) into `out`, as far as the cap.
async fn read_body<S: AsyncRead + Unpin>(
    io: &mut S,
    head: Head,
    raw: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), Outcome> {
    let mut body = Body::new(head.framing, BODY_CAP);
    raw.drain(..head.len);
    loop {
        let used = body.feed(raw, out).map_err(|e| malformed(&e))?;
        raw.drain(..used);
        if body.is_done(out) {
            return Ok(());
        }
        let read = match read_more(io, raw).await {
            // TLS peers often close without close_notify; for a body that ends at the
            // close that is the end, as for plain TCP.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        };
        match read {
            Ok(0) if body.ends_at_close() => return Ok(()),
            Ok(0) => return Err(incomplete()),
            Ok(_) => {}
            Err(e) => return Err(io_failure("read body", &e)),
        }
    }
}

/// One read appended to `raw`, into the room it has (doubled when less than
/// [`MIN_READ`] is left); 0 at end of stream.
async fn read_more<S: AsyncRead + Unpin>(io: &mut S, raw: &mut Vec<u8>) -> io::Result<usize> {
    raw.reserve(MIN_READ);
    io.read_buf(raw).await
}

fn malformed(e: &Malformed) -> Outcome {
    Outcome::new(ResultCode::L7Rsp, format!("malformed HTTP response: {e}"))
}

fn incomplete() -> Outcome {
    Outcome::new(
        ResultCode::L7Rsp,
        "connection closed before a complete response",
    )
}

fn io_failure(what: &str, e: &io::Error) -> Outcome {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return incomplete();
    }
    Outcome::new(
        ResultCode::L7Rsp,
        format!("HTTP error: {what}: {}", errno_text(e)),
    )
}

pub fn status_expected(ranges: &[StatusRange], status: u16) -> bool {
    if ranges.is_empty() {
        return DEFAULT_STATUS.contains(status);
    }
    ranges.iter().any(|r| r.contains(status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::BodyMatch;

    fn params() -> HttpParams {
        HttpParams {
            path: "/".into(),
            host: None,
            expect_status: vec![DEFAULT_STATUS],
            expect_body: None,
        }
    }

    #[test]
    fn server_name_precedence() {
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        let tls = TlsParams::default();
        assert!(matches!(
            server_name(&params(), &tls, addr),
            Ok(ServerName::IpAddress(_))
        ));
        let host = HttpParams {
            host: Some("h.example".into()),
            ..params()
        };
        assert_eq!(
            server_name(&host, &tls, addr).unwrap(),
            ServerName::try_from("h.example").unwrap()
        );
        let sni = TlsParams {
            sni: Some("s.example".into()),
            ..tls
        };
        assert_eq!(
            server_name(&host, &sni, addr).unwrap(),
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
        let sub = BodyMatch::Substring("healthy".into());
        assert!(sub.matches(b"status: healthy\n"));
        assert!(!sub.matches(b"status: sick\n"));
        assert!(!sub.matches(b""));
        let re = BodyMatch::regex(r"^ok \d+$").unwrap();
        assert!(re.matches(b"ok 42"));
        assert!(!re.matches(b"ok x"));
        assert!(BodyMatch::regex("(").is_err());
    }

    /// Answers one request with `reply` over an in-memory stream; returns the verdict.
    async fn verdict(reply: &'static [u8], expect_body: Option<BodyMatch>) -> Outcome {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut server) = tokio::io::duplex(16 * 1024);
        let serve = async move {
            let mut head = [0u8; 1024];
            let _ = server.read(&mut head).await;
            for piece in reply.chunks(7) {
                let _ = server.write_all(piece).await;
            }
            let _ = server.shutdown().await;
            let mut sink = [0u8; 256];
            while matches!(server.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let p = HttpParams {
            expect_body,
            ..params()
        };
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        tokio::join!(serve, probe_stream(client, &p, addr, 80, false)).1
    }

    #[tokio::test]
    async fn framings_interim_heads_and_truncation() {
        let ok = || Some(BodyMatch::Substring("ok".into()));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\n\r\n";
        assert_eq!(verdict(chunked, ok()).await.code, ResultCode::L7Ok);
        let until_close = b"HTTP/1.0 200 OK\r\n\r\nall ok";
        assert_eq!(verdict(until_close, ok()).await.code, ResultCode::L7Ok);
        let interim =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(verdict(interim, ok()).await.detail, "HTTP 200");
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok";
        let r = verdict(short, ok()).await;
        assert_eq!(r.code, ResultCode::L7Rsp);
        assert_eq!(r.detail, "connection closed before a complete response");
        // The status alone decides when there is no body match: the short body is not read.
        assert_eq!(verdict(short, None).await.code, ResultCode::L7Ok);
        let cut_head = b"HTTP/1.1 200 OK\r\nContent-Le";
        assert_eq!(verdict(cut_head, None).await.code, ResultCode::L7Rsp);
        let r = verdict(b"garbage\r\n\r\n", None).await;
        assert_eq!(r.code, ResultCode::L7Rsp);
        assert!(r.detail.starts_with("malformed HTTP response: "), "{r:?}");
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        let r = verdict(bad_chunk, ok()).await;
        assert_eq!(r.detail, "malformed HTTP response: invalid chunk size");
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
                Some(BodyMatch::regex(r"^ok \d+$").unwrap()),
                "200 OK",
                "ok 7",
                ResultCode::L7Ok,
            ),
            (
                Some(BodyMatch::regex(r"^ok \d+$").unwrap()),
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
            assert!(head.contains("Host: 127.0.0.1:8080\r\n"), "{head:?}");
        }
    }
}
