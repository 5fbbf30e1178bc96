//! How the real daemon listens: TLS and mutual TLS (test CA made with rcgen), reached by a
//! tonic client and by `maglev ctl --server https://...`, the refusal of plaintext on a
//! non-loopback address, and the Unix socket (stale file replaced, mode 0660, removed on
//! shutdown).

#[path = "support/daemon.rs"]
mod daemon_support;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use daemon_support::{DaemonBuilder, Grpc, UpBackend, basic_config, free_port};
use maglev::proto::GetVersionRequest;
use maglev::proto::maglev_client::MaglevClient;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn make_pki() -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "maglev test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(names).expect("params");
        let cert = params.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca_cert.pem(),
        server: leaf(vec!["localhost".into(), "127.0.0.1".into()]),
        client: leaf(vec!["maglev-ctl".into()]),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write pem");
    p.display().to_string()
}

async fn version_over_tls(
    addr: &str,
    ca: &str,
    identity: Option<&(String, String)>,
) -> Result<String, String> {
    let mut tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(ca));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    MaglevClient::new(channel)
        .get_version(GetVersionRequest {})
        .await
        .map(|r| r.into_inner().version)
        .map_err(|s| format!("{s:?}"))
}

async fn plaintext_version(addr: &str) -> Result<String, String> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    MaglevClient::new(channel)
        .get_version(GetVersionRequest {})
        .await
        .map(|r| r.into_inner().version)
        .map_err(|s| format!("{s:?}"))
}

/// Waits until the TLS port accepts TCP (the plaintext readiness probe would fail there).
async fn wait_tcp(d: &mut daemon_support::Daemon) {
    let addr = d.grpc_addr.clone();
    let start = std::time::Instant::now();
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!("daemon exited ({status}):\n{}", d.log());
        }
        assert!(
            start.elapsed() < daemon_support::DEADLINE,
            "no listener:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `maglev ctl --server https://ADDR FLAGS... show backends`.
fn ctl_show_backends_over_tls(addr: &str, flags: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("maglev"))
        .args([
            "ctl",
            "--server",
            &format!("https://{addr}"),
            "--timeout",
            "20s",
        ])
        .args(flags)
        .args(["show", "backends"])
        .env_remove("MAGLEV_SERVER")
        .env_remove("MAGLEV_CA")
        .env_remove("MAGLEV_CERT")
        .env_remove("MAGLEV_KEY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run maglev ctl")
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_loopback() {
    let pki = make_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = write(dir.path(), "server.pem", &pki.server.0);
    let key = write(dir.path(), "server.key", &pki.server.1);
    let backend = UpBackend::start("127.0.0.2");
    let mut d = DaemonBuilder::new(basic_config(backend.port()))
        .arg("--grpc-tls-cert")
        .arg(cert)
        .arg("--grpc-tls-key")
        .arg(key)
        .spawn();
    wait_tcp(&mut d).await;
    let v = version_over_tls(&d.grpc_addr, &pki.ca_pem, None).await;
    assert_eq!(v.as_deref(), Ok(env!("CARGO_PKG_VERSION")));
    assert!(
        plaintext_version(&d.grpc_addr).await.is_err(),
        "plaintext is not served on a TLS port"
    );
    assert!(d.log().contains("(TLS)"), "{}", d.log());

    // `maglev ctl` over https: the test CA verifies the daemon...
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let o = ctl_show_backends_over_tls(&d.grpc_addr, &["--ca", &ca]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for name in ["up", "down", "off"] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "backend {name} listed: {out}"
        );
    }
    // ...without it the certificate is not trusted: unreachable, exit 3.
    let o = ctl_show_backends_over_tls(&d.grpc_addr, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", describe(&o));
    assert!(o.stdout.is_empty(), "{}", describe(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = make_pki();
    let other = make_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = write(dir.path(), "server.pem", &pki.server.0);
    let key = write(dir.path(), "server.key", &pki.server.1);
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let backend = UpBackend::start("127.0.0.2");
    let mut d = DaemonBuilder::new(basic_config(backend.port()))
        .arg("--grpc-tls-cert")
        .arg(cert)
        .arg("--grpc-tls-key")
        .arg(key)
        .arg("--grpc-client-ca")
        .arg(ca)
        .spawn();
    wait_tcp(&mut d).await;
    let ok = version_over_tls(&d.grpc_addr, &pki.ca_pem, Some(&pki.client)).await;
    assert_eq!(ok.as_deref(), Ok(env!("CARGO_PKG_VERSION")));
    let anonymous = version_over_tls(&d.grpc_addr, &pki.ca_pem, None).await;
    assert!(anonymous.is_err(), "no client certificate: refused");
    let stranger = version_over_tls(&d.grpc_addr, &pki.ca_pem, Some(&other.client)).await;
    assert!(stranger.is_err(), "a certificate from another CA: refused");
    assert!(d.log().contains("(mutual TLS)"), "{}", d.log());

    // `maglev ctl` with --cert/--key from the CA gets in; without them it does not.
    let client_cert = write(dir.path(), "client.pem", &pki.client.0);
    let client_key = write(dir.path(), "client.key", &pki.client.1);
    let server_ca = write(dir.path(), "server-ca.pem", &pki.ca_pem);
    let o = ctl_show_backends_over_tls(
        &d.grpc_addr,
        &[
            "--ca",
            &server_ca,
            "--cert",
            &client_cert,
            "--key",
            &client_key,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let o = ctl_show_backends_over_tls(&d.grpc_addr, &["--ca", &server_ca]);
    assert_ne!(o.status.code(), Some(0), "{}", describe(&o));
}

#[test]
fn plaintext_on_a_non_loopback_address_is_refused() {
    let backend = UpBackend::start("127.0.0.2");
    let port = free_port("127.0.0.1");
    let mut d = DaemonBuilder::new(basic_config(backend.port()))
        .grpc_addr(format!("0.0.0.0:{port}"))
        .spawn();
    let status = d
        .wait_exit(daemon_support::DEADLINE)
        .expect("the daemon refuses to start");
    assert!(!status.success(), "{status}");
    let log = d.log();
    assert!(
        log.contains("refusing plaintext gRPC on non-loopback address 0.0.0.0"),
        "{log}"
    );
    assert!(log.contains("--grpc-insecure"), "{log}");

    // Half the TLS flags: refused too, with the reason.
    let mut d = DaemonBuilder::new(basic_config(backend.port()))
        .arg("--grpc-tls-cert")
        .arg("/nonexistent.pem")
        .spawn();
    let status = d.wait_exit(daemon_support::DEADLINE).expect("refused");
    assert!(!status.success());
    assert!(
        d.log()
            .contains("--grpc-tls-cert and --grpc-tls-key go together")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_replaces_a_stale_one_and_is_group_only() {
    let backend = UpBackend::start("127.0.0.2");
    let mut d = DaemonBuilder::new(basic_config(backend.port()))
        .grpc(Grpc::Unix)
        .spawn();
    d.wait_grpc().await;
    let path = d.socket_path().expect("unix path");
    // Killed hard, the daemon leaves its socket file behind: the next run must replace it.
    let _ = d.child.kill();
    let _ = d.child.wait();
    assert!(path.exists(), "a stale socket file is left behind");
    assert!(
        std::os::unix::net::UnixStream::connect(&path).is_err(),
        "nobody listens on it"
    );

    let config = std::fs::read_to_string(&d.config).expect("config");
    let mut d2 = DaemonBuilder::new(config)
        .grpc_addr(format!("unix:{}", path.display()))
        .spawn();
    d2.wait_grpc().await;
    let meta = std::fs::metadata(&path).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let mut c = d2.client().await;
    let v = c.get_version(GetVersionRequest {}).await.expect("version");
    assert_eq!(v.into_inner().version, env!("CARGO_PKG_VERSION"));

    d2.signal(libc::SIGTERM);
    let status = d2.wait_exit(daemon_support::DEADLINE).expect("exit");
    assert!(status.success(), "{status}");
    assert!(!path.exists(), "the socket file is removed on shutdown");
}
