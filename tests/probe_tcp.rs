//! TCP connect probes against loopback listeners.

use std::net::IpAddr;
use std::time::Duration;

use maglev::config::model::CheckType;
use maglev::health::result::ResultCode;
use maglev::probe::{ProbeSpec, Prober};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(2);

fn spec(addr: &str, port: u16) -> ProbeSpec {
    ProbeSpec {
        kind: CheckType::Tcp,
        addr: addr.parse().unwrap(),
        port: Some(port),
        timeout: TIMEOUT,
        source: None,
        netns: None,
        http: None,
    }
}

#[tokio::test]
async fn tcp_up_and_closed_with_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 16];
        // The probe closes with linger 0: the server sees a reset, not an orderly EOF.
        conn.read(&mut buf).await
    });
    let r = Prober::new().probe(&spec("127.0.0.1", port)).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    let read = server.await.unwrap();
    let err = read.expect_err("expected a reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn tcp_down_on_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let r = Prober::new().probe(&spec("127.0.0.1", port)).await;
    assert_eq!(r.code, ResultCode::L4Con, "{r:?}");
    assert_eq!(r.detail, "connection refused");
}

#[tokio::test]
async fn tcp_source_address_is_used() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer.ip()) });
    let mut s = spec("127.0.0.1", port);
    s.source = Some("127.0.0.2".parse().unwrap());
    let r = Prober::new().probe(&s).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
    let peer = server.await.unwrap().unwrap();
    assert_eq!(peer, "127.0.0.2".parse::<IpAddr>().unwrap());
}

#[tokio::test]
async fn tcp_unusable_source_is_a_socket_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut s = spec("127.0.0.1", port);
    // TEST-NET-3: not assigned to any local interface.
    s.source = Some("203.0.113.77".parse().unwrap());
    let r = Prober::new().probe(&s).await;
    assert_eq!(r.code, ResultCode::SockErr, "{r:?}");
    assert!(r.detail.contains("203.0.113.77"), "{}", r.detail);
}

#[tokio::test]
async fn tcp_ipv6_loopback() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("skipped: IPv6 loopback not available");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let r = Prober::new().probe(&spec("::1", port)).await;
    assert_eq!(r.code, ResultCode::L4Ok, "{r:?}");
}
