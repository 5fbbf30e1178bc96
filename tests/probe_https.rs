//! HTTPS probes against an in-test rustls server with an rcgen-made CA.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use maglev::config::model::{HttpParams, TlsParams};
use maglev::health::result::ResultCode;
use maglev::probe::{ProbeSpec, Prober};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[path = "support/http_probe.rs"]
mod http_probe;
use http_probe::{http_params, https_spec};

const TIMEOUT: Duration = Duration::from_millis(1500);
const SERVER_NAME: &str = "backend.test";

/// A CA (as a PEM file) and a server config holding a cert for backend.test signed by it.
struct Pki {
    ca_file: tempfile::NamedTempFile,
    server: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![SERVER_NAME.to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();

    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(ca_cert.pem().as_bytes()).unwrap();

    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Pki {
        ca_file,
        server: Arc::new(server),
    }
}

/// Serves one TLS connection with a 200, yielding the SNI the client sent (None if the
/// handshake failed or no SNI was sent).
async fn serve_tls_once(config: Arc<rustls::ServerConfig>) -> (u16, JoinHandle<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(conn).await.ok()?;
        let sni = tls.get_ref().1.server_name().map(str::to_string);
        let mut buf = [0u8; 2048];
        let _ = tls.read(&mut buf).await;
        let body = "secure";
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tls.write_all(resp.as_bytes()).await;
        let _ = tls.shutdown().await;
        sni
    });
    (port, task)
}

fn spec(port: u16, tls: TlsParams) -> ProbeSpec {
    spec_with(port, params(), tls)
}

fn spec_with(port: u16, http: HttpParams, tls: TlsParams) -> ProbeSpec {
    https_spec(port, TIMEOUT, http, tls)
}

fn params() -> HttpParams {
    HttpParams {
        path: "/".into(),
        ..http_params()
    }
}

fn tls() -> TlsParams {
    TlsParams {
        sni: Some(SERVER_NAME.into()),
        ..TlsParams::default()
    }
}

#[tokio::test]
async fn https_with_ca_file_is_up_and_sends_sni() {
    let pki = pki();
    let (port, server) = serve_tls_once(pki.server.clone()).await;
    let p = TlsParams {
        ca_file: Some(pki.ca_file.path().to_path_buf()),
        ..tls()
    };
    let r = Prober::new().probe(&spec(port, p.clone())).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    assert_eq!(server.await.unwrap(), p.sni);
}

#[tokio::test]
async fn https_sni_defaults_to_host() {
    let pki = pki();
    let (port, server) = serve_tls_once(pki.server.clone()).await;
    let http = HttpParams {
        host: Some(SERVER_NAME.into()),
        ..params()
    };
    let p = TlsParams {
        sni: None,
        ca_file: Some(pki.ca_file.path().to_path_buf()),
        ..tls()
    };
    let r = Prober::new().probe(&spec_with(port, http, p)).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    assert_eq!(server.await.unwrap().as_deref(), Some(SERVER_NAME));
}

#[tokio::test]
async fn https_unknown_issuer_against_system_store() {
    let pki = pki();
    let (port, _server) = serve_tls_once(pki.server.clone()).await;
    let r = Prober::new().probe(&spec(port, tls())).await;
    assert_eq!(r.code, ResultCode::L6Rsp, "{r:?}");
    assert!(r.detail.contains("UnknownIssuer"), "{}", r.detail);
}

#[tokio::test]
async fn https_wrong_name_fails_verification() {
    let pki = pki();
    let (port, _server) = serve_tls_once(pki.server.clone()).await;
    let p = TlsParams {
        sni: Some("other.test".into()),
        ca_file: Some(pki.ca_file.path().to_path_buf()),
        ..tls()
    };
    let r = Prober::new().probe(&spec(port, p)).await;
    assert_eq!(r.code, ResultCode::L6Rsp, "{r:?}");
    assert!(r.detail.contains("not valid for name"), "{}", r.detail);
}

#[tokio::test]
async fn https_without_verification_is_up() {
    let pki = pki();
    let (port, server) = serve_tls_once(pki.server.clone()).await;
    let p = TlsParams {
        verify: false,
        ..tls()
    };
    let r = Prober::new().probe(&spec(port, p)).await;
    assert_eq!(r.code, ResultCode::L7Ok, "{r:?}");
    // The handshake really happened: the server saw our SNI.
    assert_eq!(server.await.unwrap().as_deref(), Some(SERVER_NAME));
}

#[tokio::test]
async fn https_silent_server_is_a_tls_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        // Read the ClientHello and then say nothing until the probe hangs up.
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    let p = TlsParams {
        verify: false,
        ..tls()
    };
    let r = Prober::new().probe(&spec(port, p)).await;
    assert_eq!(r.code, ResultCode::L6Tout, "{r:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn https_plain_http_server_is_a_tls_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf).await;
        let _ = conn
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
    });
    let p = TlsParams {
        verify: false,
        ..tls()
    };
    let r = Prober::new().probe(&spec(port, p)).await;
    assert_eq!(r.code, ResultCode::L6Rsp, "{r:?}");
}
