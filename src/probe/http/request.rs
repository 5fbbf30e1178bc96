//! The check's request: a fixed HTTP/1.1 GET with Host, User-Agent and `Connection: close`.

use std::net::IpAddr;
use std::sync::OnceLock;

use crate::config::model::HttpParams;

/// Why no request can be made from the check's parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("path {0:?} is not an origin-form request target")]
    Path(String),
    #[error("host {0:?} cannot be sent in a header")]
    Host(String),
}

/// The Host header: the configured host, else the address; with the port unless default.
pub fn host_header(params: &HttpParams, addr: IpAddr, port: u16, https: bool) -> String {
    let mut out = Vec::new();
    push_host(&mut out, params, addr, port, https);
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes the request into `out` (cleared first). Built per probe into a reused buffer:
/// that costs less than looking it up in a cache, and keeps no bytes per backend.
pub fn write(
    out: &mut Vec<u8>,
    params: &HttpParams,
    addr: IpAddr,
    port: u16,
    https: bool,
) -> Result<(), BadRequest> {
    check(params)?;
    write_valid(out, params, addr, port, https);
    Ok(())
}

/// `write` for parameters that passed [`check`] (the check runs once per probe).
pub fn write_valid(out: &mut Vec<u8>, params: &HttpParams, addr: IpAddr, port: u16, https: bool) {
    out.clear();
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(params.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    push_host(out, params, addr, port, https);
    out.extend_from_slice(b"\r\nUser-Agent: ");
    out.extend_from_slice(user_agent().as_bytes());
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
}

/// Why `write` would fail for these parameters, without writing: a check can refuse a
/// bad request before it connects, and take a buffer only once it can send.
pub fn check(params: &HttpParams) -> Result<(), BadRequest> {
    let path = params.path.as_bytes();
    // Visible ASCII, starting with '/': nothing that could end the request line early.
    if path.first() != Some(&b'/') || !path.iter().all(|b| b.is_ascii_graphic()) {
        return Err(BadRequest::Path(params.path.clone()));
    }
    if let Some(h) = &params.host
        && (h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(BadRequest::Host(h.clone()));
    }
    Ok(())
}

fn push_host(out: &mut Vec<u8>, params: &HttpParams, addr: IpAddr, port: u16, https: bool) {
    use std::io::Write as _;
    // Writes into a Vec cannot fail.
    let _ = match (&params.host, addr) {
        (Some(h), _) => out.write_all(h.as_bytes()),
        (None, IpAddr::V4(a)) => write!(out, "{a}"),
        (None, IpAddr::V6(a)) => write!(out, "[{a}]"),
    };
    let default_port = if https { 443 } else { 80 };
    if port != default_port {
        let _ = write!(out, ":{port}");
    }
}

fn user_agent() -> &'static str {
    static UA: OnceLock<String> = OnceLock::new();
    UA.get_or_init(crate::version::user_agent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::StatusRange;

    fn params() -> HttpParams {
        HttpParams {
            path: "/healthz".into(),
            host: None,
            expect_status: vec![StatusRange { lo: 200, hi: 399 }],
            expect_body: None,
        }
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
    fn the_whole_request() {
        let mut out = b"left over".to_vec();
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        write(&mut out, &params(), addr, 8080, false).unwrap();
        let expected = format!(
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: {}\r\n\
             Connection: close\r\n\r\n",
            crate::version::user_agent()
        );
        assert_eq!(String::from_utf8_lossy(&out), expected);
    }

    #[test]
    fn nothing_can_break_out_of_the_request_line_or_host() {
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        let mut out = Vec::new();
        for path in ["", "healthz", "/a b", "/a\r\nX: y", "/é"] {
            let p = HttpParams {
                path: path.into(),
                ..params()
            };
            assert!(
                matches!(
                    write(&mut out, &p, addr, 80, false),
                    Err(BadRequest::Path(_))
                ),
                "{path:?}"
            );
            assert_eq!(check(&p), Err(BadRequest::Path(path.into())));
        }
        for host in ["", "a\r\nX: y", "a b"] {
            let p = HttpParams {
                host: Some(host.into()),
                ..params()
            };
            assert!(
                matches!(
                    write(&mut out, &p, addr, 80, false),
                    Err(BadRequest::Host(_))
                ),
                "{host:?}"
            );
            assert_eq!(check(&p), Err(BadRequest::Host(host.into())));
        }
        let query = HttpParams {
            path: "/status?full=1&x=%20".into(),
            ..params()
        };
        assert!(write(&mut out, &query, addr, 80, false).is_ok());
        assert_eq!(check(&query), Ok(()));
    }
}
