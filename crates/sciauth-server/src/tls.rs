//! The TLS setup of the API listener: its certificate and key, the CAs whose client
//! certificates it checks (a PEM bundle, or a grid CA directory where one unusable CA is
//! skipped with a warning), and ALPN. Made at start and again by every reload.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::error::{Error, ErrorKind, Result};

/// The TLS setup of the API listener: its certificate and key, client certificates from the
/// CAs of `client_ca` and `client_ca_dir`, and ALPN offering HTTP/2 (if `http2`) and
/// HTTP/1.1. Made at start and again by every reload (renewed certificates, updated CAs).
pub(crate) fn tls_acceptor(tls: &TlsConfig, http2: bool) -> Result<TlsAcceptor> {
    let tls_error = |what: String| Error::new(ErrorKind::Tls, what);
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&tls.certificate)
            .and_then(|certificates| certificates.collect())
            .map_err(|e| {
                tls_error(format!(
                    "{}: no usable certificate: {e}",
                    tls.certificate.display()
                ))
            })?;
    if certificates.is_empty() {
        return Err(tls_error(format!(
            "{} holds no certificate",
            tls.certificate.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| tls_error(format!("{}: no usable private key: {e}", tls.key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("TLS setup: {e}")))?;
    let builder = if tls.client_ca.is_none() && tls.client_ca_dir.is_none() {
        builder.with_no_client_auth()
    } else {
        let verifier = client_verifier(tls, provider)?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(certificates, key)
        .map_err(|e| tls_error(format!("the TLS certificate and key do not fit: {e}")))?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Client certificates issued by the CAs of `client_ca` (every one must be usable) and
/// `client_ca_dir` (its `*.pem` files; one that is unusable is skipped with a warning, as a
/// grid CA directory may hold a CA that rustls refuses) are checked when sent; a caller
/// without one may still authenticate with a bearer token.
fn client_verifier(
    tls: &TlsConfig,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &tls.client_ca {
        let certificates = CertificateDer::pem_file_iter(ca)
            .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::new(ErrorKind::Tls, format!("{}: {e}", ca.display())))?;
        for certificate in certificates {
            roots.add(certificate).map_err(|e| {
                Error::new(
                    ErrorKind::Tls,
                    format!("{}: a CA certificate is unusable: {e}", ca.display()),
                )
            })?;
        }
    }
    if let Some(dir) = &tls.client_ca_dir {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::new(
                ErrorKind::Tls,
                format!("server.tls.client_ca_dir {}: {e}", dir.display()),
            )
        })?;
        let mut files: Vec<_> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "pem"))
            .collect();
        files.sort();
        for file in files {
            let added = CertificateDer::pem_file_iter(&file)
                .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| e.to_string())
                .and_then(|certificates| {
                    certificates
                        .into_iter()
                        .try_for_each(|c| roots.add(c).map_err(|e| e.to_string()))
                });
            if let Err(error) = added {
                tracing::warn!(file = %file.display(), %error, "a CA certificate is skipped");
            }
        }
    }
    if roots.is_empty() {
        return Err(Error::new(
            ErrorKind::Tls,
            "client certificates: no usable CA certificate in server.tls.client_ca or \
             client_ca_dir",
        ));
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::new(ErrorKind::Tls, format!("client certificates: {e}")))
}
