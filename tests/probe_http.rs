//! HTTP probes against a tiny in-test server writing raw responses.

use std::time::Duration;

use maglev::config::model::{BodyMatch, HttpParams};
use maglev::health::result::ResultCode;
use maglev::probe::{ProbeSpec, Prober};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[path = "support/http_probe.rs"]
mod http_probe;
use http_probe::{http_params as params, http_spec, read_head};

const TIMEOUT: Duration = Duration::from_millis(1500);

fn spec(port: u16, http: HttpParams) -> ProbeSpec {
    http_spec(port, TIMEOUT, http)
}

/// Serves one connection: reads the request head, answers `response` (None = never answer),
/// and yields the request head it got.
async fn serve_once(response: Option<String>) -> (u16, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let head = read_head(&mut conn).await;
        let mut buf = [0u8; 1024];
        match response {
            Some(text) => {
                let _ = conn.write_all(text.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
            // Hold the connection open, silent, until the probe gives up.
            None => {
                let _ = conn.read(&mut buf).await;
            }
        }
        String::from_utf8_lossy(&head).into_owned()
    });
    (port, task)
}

fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn http_200_is_up_with_probe_headers() {
    let (port, server) = serve_once(Some(response("200 OK", "fine"))).await;
    let r = Prober::new().probe(&spec(port, params())).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    assert_eq!(r.detail, "HTTP 200");
    let head = server.await.unwrap();
    assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains(&format!("host: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(
        lower.contains(&format!(
            "user-agent: {}\r\n",
            maglev::version::user_agent()
        )),
        "{head}"
    );
    assert!(lower.contains("connection: close\r\n"), "{head}");
}

#[tokio::test]
async fn http_configured_host_header() {
    let (port, server) = serve_once(Some(response("204 No Content", ""))).await;
    let p = HttpParams {
        host: Some("www.backend.test".into()),
        ..params()
    };
    let r = Prober::new().probe(&spec(port, p)).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    let head = server.await.unwrap().to_ascii_lowercase();
    assert!(
        head.contains(&format!("host: www.backend.test:{port}\r\n")),
        "{head}"
    );
}

#[tokio::test]
async fn http_503_is_a_status_failure() {
    let (port, _server) = serve_once(Some(response("503 Service Unavailable", "busy"))).await;
    let r = Prober::new().probe(&spec(port, params())).await;
    assert_eq!(r.code, ResultCode::L7Sts, "{r:?}");
    assert_eq!(r.detail, "HTTP 503");
}

#[tokio::test]
async fn http_wrong_body_is_a_response_failure() {
    let (port, _server) = serve_once(Some(response("200 OK", "status: degraded"))).await;
    let p = HttpParams {
        expect_body: Some(BodyMatch::Substring("status: ok".into())),
        ..params()
    };
    let r = Prober::new().probe(&spec(port, p)).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert_eq!(r.detail, "body mismatch");
}

#[tokio::test]
async fn http_body_substring_and_regex_match() {
    let (port, _server) = serve_once(Some(response("200 OK", "status: ok\nversion 7\n"))).await;
    let p = HttpParams {
        expect_body: Some(BodyMatch::Substring("status: ok".into())),
        ..params()
    };
    let r = Prober::new().probe(&spec(port, p)).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");

    let (port, _server) = serve_once(Some(response("200 OK", "status: ok\nversion 7\n"))).await;
    let p = HttpParams {
        expect_body: Some(BodyMatch::regex(r"(?m)^version \d+$").unwrap()),
        ..params()
    };
    let r = Prober::new().probe(&spec(port, p)).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");

    let (port, _server) = serve_once(Some(response("200 OK", "version seven"))).await;
    let p = HttpParams {
        expect_body: Some(BodyMatch::regex(r"(?m)^version \d+$").unwrap()),
        ..params()
    };
    let r = Prober::new().probe(&spec(port, p)).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
}

#[tokio::test]
async fn http_malformed_response() {
    let (port, _server) = serve_once(Some("this is not http\r\n\r\n".into())).await;
    let r = Prober::new().probe(&spec(port, params())).await;
    assert_eq!(r.code, ResultCode::L7Rsp, "{r:?}");
    assert!(r.detail.contains("malformed"), "{}", r.detail);
}

#[tokio::test]
async fn http_silent_server_times_out_within_the_timeout() {
    let (port, server) = serve_once(None).await;
    let r = Prober::new().probe(&spec(port, params())).await;
    assert_eq!(r.code, ResultCode::L7Tout, "{r:?}");
    // Dropping the probe closed the connection, so the silent server finishes too.
    let head = server.await.unwrap();
    assert!(head.starts_with("GET /healthz"), "{head}");
}

#[tokio::test]
async fn http_connect_refused_is_l4() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let r = Prober::new().probe(&spec(port, params())).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
}
