//! Spec builders and the request-head reader shared by the HTTP(S) probe tests.
#![allow(dead_code)]

use std::time::Duration;

use maglev::config::model::{CheckKind, HttpParams, StatusRange, TlsParams};
use maglev::probe::ProbeSpec;
use tokio::io::{AsyncRead, AsyncReadExt};

/// GET /healthz, expecting a 2xx, no body match.
pub fn http_params() -> HttpParams {
    HttpParams {
        path: "/healthz".into(),
        host: None,
        expect_status: vec![StatusRange { lo: 200, hi: 299 }],
        expect_body: None,
    }
}

/// An `http` check of 127.0.0.1:`port` in our own namespace.
pub fn http_spec(port: u16, timeout: Duration, params: HttpParams) -> ProbeSpec {
    spec_of(CheckKind::Http { port, params }, timeout)
}

/// An `https` check of 127.0.0.1:`port` in our own namespace.
pub fn https_spec(port: u16, timeout: Duration, params: HttpParams, tls: TlsParams) -> ProbeSpec {
    spec_of(CheckKind::Https { port, params, tls }, timeout)
}

fn spec_of(check: CheckKind, timeout: Duration) -> ProbeSpec {
    ProbeSpec {
        check: check.into(),
        addr: "127.0.0.1".parse().unwrap(),
        timeout,
        source: None,
        netns: None,
    }
}

/// Reads until the end of the request head (or EOF / error); yields what it read.
pub async fn read_head<S: AsyncRead + Unpin>(conn: &mut S) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}
