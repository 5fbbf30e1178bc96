//! TLS client configs for HTTPS probes (rustls with the ring provider), cached per
//! (CA file, verify) so CA bundles are read once.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::errors::errno_text;

/// The Debian/Ubuntu system CA bundle.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read CA file {path}: {reason}")]
    ReadCa { path: String, reason: String },
    #[error("CA file {0} holds no usable certificate")]
    NoCertificates(String),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A cached config: CA file (None = system store, and always None when not verifying),
/// verify, the config.
type Entry = (Option<PathBuf>, bool, Arc<ClientConfig>);

/// Cache of client configs. A daemon has a handful (one per CA file and verify mode), so
/// a probe finds its own with a scan that compares paths in place: no key is built (and
/// no path copied) per probe.
#[derive(Default)]
pub struct TlsConfigs {
    cache: Mutex<Vec<Entry>>,
}

impl TlsConfigs {
    /// The config verifying against `ca_file` (None = system store), or accepting any
    /// certificate when `verify` is false.
    pub async fn get(
        &self,
        ca_file: Option<&Path>,
        verify: bool,
    ) -> Result<Arc<ClientConfig>, TlsConfigError> {
        let ca_file = if verify { ca_file } else { None };
        if let Some(cfg) = self.lookup(ca_file, verify) {
            return Ok(cfg);
        }
        let cfg = Arc::new(build(ca_file, verify).await?);
        if let Ok(mut cache) = self.cache.lock()
            && find(&cache, ca_file, verify).is_none()
        {
            cache.push((ca_file.map(Path::to_path_buf), verify, cfg.clone()));
        }
        Ok(cfg)
    }

    pub fn clear(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    fn lookup(&self, ca_file: Option<&Path>, verify: bool) -> Option<Arc<ClientConfig>> {
        find(&self.cache.lock().ok()?, ca_file, verify).cloned()
    }
}

/// The cached config for (CA file, verify), compared in place.
fn find<'a>(
    cache: &'a [Entry],
    ca_file: Option<&Path>,
    verify: bool,
) -> Option<&'a Arc<ClientConfig>> {
    cache
        .iter()
        .find(|(p, v, _)| p.as_deref() == ca_file && *v == verify)
        .map(|(_, _, cfg)| cfg)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn build(ca_file: Option<&Path>, verify: bool) -> Result<ClientConfig, TlsConfigError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let cfg = if verify {
        builder
            .with_root_certificates(roots(ca_file).await?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    };
    Ok(cfg)
}

/// Roots from `ca_file`, else the system bundle, else the compiled-in webpki roots.
async fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsConfigError> {
    let path = match ca_file {
        Some(p) => p.to_path_buf(),
        None if Path::new(SYSTEM_CA_BUNDLE).exists() => PathBuf::from(SYSTEM_CA_BUNDLE),
        None => {
            return Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            });
        }
    };
    let shown = path.display().to_string();
    let pem = tokio::fs::read(&path)
        .await
        .map_err(|e| TlsConfigError::ReadCa {
            path: shown.clone(),
            reason: errno_text(&e),
        })?;
    let certs = parse_pem_certs(&pem).map_err(|reason| TlsConfigError::ReadCa {
        path: shown.clone(),
        reason,
    })?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsConfigError::NoCertificates(shown));
    }
    Ok(store)
}

fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut reader = BufReader::new(pem);
    rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))
}

/// verify = false: any certificate is accepted, but the handshake (and the server's proof
/// that it holds the key of the certificate it sent) still happens.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_parsing_skips_non_certificates() {
        assert!(parse_pem_certs(b"").unwrap().is_empty());
        assert!(parse_pem_certs(b"garbage\n").unwrap().is_empty());
    }

    #[tokio::test]
    async fn configs_are_cached_per_key() {
        let c = TlsConfigs::default();
        let a = c.get(None, false).await.unwrap();
        let b = c
            .get(Some(Path::new("/ignored/when/not/verifying")), false)
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        c.clear();
        let d = c.get(None, false).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &d));
    }

    #[tokio::test]
    async fn missing_ca_file_is_an_error() {
        let c = TlsConfigs::default();
        let err = c
            .get(Some(Path::new("/nonexistent/maglev-ca.pem")), true)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("No such file or directory"),
            "{err}"
        );
    }
}
