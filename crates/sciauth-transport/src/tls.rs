//! TLS setup, done once when a transport is built: extra root CAs from a PEM bundle or a
//! grid CA directory (each certificate checked on its own, so one unusable file is skipped
//! with a warning), and a client identity from a certificate and key, a decrypted key, or an
//! X.509 proxy file, with the rustls configuration that sends it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sciauth_credentials::fs::{MAX_NAMED_FILE, read_limited};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// Where extra root CAs come from.
#[derive(Debug)]
pub(crate) enum RootSource {
    File(PathBuf),
    Dir(PathBuf),
}

/// Where the client certificate and its key come from.
#[derive(Debug)]
pub(crate) enum IdentitySource {
    CertAndKey {
        cert: PathBuf,
        key: PathBuf,
    },
    /// A certificate file and a key already decrypted (PKCS#8 DER), never shown.
    CertAndKeyDer {
        cert: PathBuf,
        key: KeyDer,
    },
    Proxy(PathBuf),
}

/// A decrypted PKCS#8 key: zeroed when dropped, `[redacted]` in `Debug`.
pub(crate) struct KeyDer(pub(crate) Zeroizing<Vec<u8>>);

impl std::fmt::Debug for KeyDer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Every root CA of `sources`, each checked on its own (see [`load_root_dir`]).
pub(crate) fn load_roots(sources: &[RootSource]) -> Result<Vec<CertificateDer<'static>>> {
    let mut roots = Vec::new();
    for source in sources {
        match source {
            RootSource::File(path) => roots.extend(load_root_file(path)?),
            RootSource::Dir(path) => roots.extend(load_root_dir(path)?),
        }
    }
    Ok(roots)
}

impl IdentitySource {
    /// Reads the certificate chain and the key.
    pub(crate) fn load(&self) -> Result<ClientIdentity> {
        match self {
            Self::CertAndKey { cert, key } => load_cert_and_key(cert, key),
            Self::CertAndKeyDer { cert, key } => load_cert_with_key(cert, key),
            Self::Proxy(path) => load_proxy(path),
        }
    }
}

/// How servers are verified: the roots added, whether the platform's are trusted too, and
/// whether verification is off.
pub(crate) struct Trust<'a> {
    pub(crate) roots: &'a [CertificateDer<'static>],
    pub(crate) platform_roots: bool,
    pub(crate) accept_invalid_certs: bool,
}

/// The rustls configuration for a client certificate, made here rather than by reqwest:
/// reqwest's (rustls's `with_client_auth_cert`) parses the leaf certificate with webpki
/// to check that it matches the key, and webpki refuses the critical proxyCertInfo
/// extension (RFC 3820) that every grid proxy carries. The server verification is the
/// same as reqwest's: the platform verifier with our roots added, or our roots only.
pub(crate) fn client_config(
    trust: &Trust<'_>,
    identity: &ClientIdentity,
) -> Result<rustls::ClientConfig> {
    let failed = |what: &str, e: rustls::Error| {
        Error::new(
            ErrorKind::Builder,
            format!("could not set up TLS with the client certificate: {what}: {e}"),
        )
        .with_source(e)
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| failed("protocol versions", e))?;
    let builder = if trust.accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider.clone())))
    } else if trust.platform_roots {
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            trust.roots.iter().cloned(),
            provider.clone(),
        )
        .map_err(|e| failed("platform roots", e))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    } else {
        let mut store = rustls::RootCertStore::empty();
        for root in trust.roots {
            store.add(root.clone()).map_err(|e| failed("root CA", e))?;
        }
        builder.with_root_certificates(store)
    };
    let key = provider
        .key_provider
        .load_private_key(identity.key.clone_key())
        .map_err(|e| failed("private key", e))?;
    let certified = rustls::sign::CertifiedKey::new(identity.chain.clone(), key);
    // Only a real mismatch is an error; a leaf webpki cannot parse (a proxy) is not.
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        certified.keys_match()
    {
        return Err(Error::new(
            ErrorKind::Builder,
            format!(
                "the private key in {} does not belong to the client certificate",
                identity.origin.display()
            ),
        ));
    }
    let mut config =
        builder.with_client_cert_resolver(Arc::new(FixedClientCert(Arc::new(certified))));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    read_limited(path, MAX_NAMED_FILE).map_err(|e| {
        Error::new(
            ErrorKind::Builder,
            format!("cannot read {what} {}: {e}", path.display()),
        )
        .with_source(e)
    })
}

fn pem_certificates(pem: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))
}

/// Checks that a certificate can serve as a trust anchor, so that one bad file is reported
/// with its name instead of failing the whole TLS setup.
fn usable_root(cert: &CertificateDer<'static>) -> std::result::Result<(), String> {
    rustls::RootCertStore::empty()
        .add(cert.clone())
        .map_err(|e| format!("not usable as a root CA: {e}"))
}

fn load_root_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_file(path, "root CA file")?;
    let bad = |why: String| {
        Error::new(
            ErrorKind::Builder,
            format!("root CA file {}: {why}", path.display()),
        )
    };
    let certs = pem_certificates(&pem).map_err(bad)?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".to_owned()));
    }
    for cert in &certs {
        usable_root(cert).map_err(bad)?;
    }
    Ok(certs)
}

fn load_root_dir(dir: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::new(
            ErrorKind::Builder,
            format!("cannot read root CA directory {}: {e}", dir.display()),
        )
        .with_source(e)
    })?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| is_certificate_file_name(path))
        .collect();
    paths.sort();
    let mut certs: Vec<CertificateDer<'static>> = Vec::new();
    for path in paths {
        // Grid CA directories hold the same CA as `name.pem` and as a hash link; a stale
        // link or an odd file must not make the whole directory unusable.
        let loaded = read_limited(&path, MAX_NAMED_FILE)
            .map_err(|e| e.to_string())
            .and_then(|pem| pem_certificates(&pem));
        match loaded {
            Ok(found) => {
                for cert in found {
                    if let Err(why) = usable_root(&cert) {
                        tracing::warn!(file = %path.display(), "skipping a root CA: {why}");
                    } else if !certs.contains(&cert) {
                        certs.push(cert);
                    }
                }
            }
            Err(why) => tracing::warn!(file = %path.display(), "skipping a root CA file: {why}"),
        }
    }
    if certs.is_empty() {
        return Err(Error::new(
            ErrorKind::Builder,
            format!(
                "root CA directory {} holds no usable certificate (looked at *.pem, *.crt, \
                 *.cer and hash links like 1d879c6c.0)",
                dir.display()
            ),
        ));
    }
    tracing::debug!(dir = %dir.display(), count = certs.len(), "loaded root CAs");
    Ok(certs)
}

/// `*.pem`, `*.crt`, `*.cer`, or an OpenSSL hash link: 8 hex digits, a dot, a number.
pub(crate) fn is_certificate_file_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if let Some((stem, extension)) = name.rsplit_once('.') {
        if matches!(extension, "pem" | "crt" | "cer") {
            return true;
        }
        return stem.len() == 8
            && stem.bytes().all(|b| b.is_ascii_hexdigit())
            && !extension.is_empty()
            && extension.bytes().all(|b| b.is_ascii_digit());
    }
    false
}

/// The file at `path` (a `what`) and the certificate chain in it, leaf first; `empty` says
/// what to do when it holds none.
fn load_chain(
    path: &Path,
    what: &str,
    empty: &str,
) -> Result<(Zeroizing<Vec<u8>>, Vec<CertificateDer<'static>>)> {
    let pem = read_file(path, what)?;
    let chain = pem_certificates(&pem).map_err(|why| {
        Error::new(
            ErrorKind::Builder,
            format!("{what} {}: {why}", path.display()),
        )
    })?;
    if chain.is_empty() {
        return Err(Error::new(
            ErrorKind::Builder,
            format!("{what} {} holds no {empty}", path.display()),
        ));
    }
    Ok((pem, chain))
}

/// The certificate chain in a client certificate file, leaf first.
fn load_client_chain(cert_path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let (_, chain) = load_chain(cert_path, "client certificate file", "PEM certificate")?;
    Ok(chain)
}

fn load_cert_and_key(cert_path: &Path, key_path: &Path) -> Result<ClientIdentity> {
    let chain = load_client_chain(cert_path)?;
    let key = read_file(key_path, "client key file")?;
    check_private_key(&key, key_path)?;
    client_identity(chain, &key, key_path)
}

fn load_cert_with_key(cert_path: &Path, key: &KeyDer) -> Result<ClientIdentity> {
    let chain = load_client_chain(cert_path)?;
    let key = PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(key.0.to_vec()));
    Ok(ClientIdentity {
        chain,
        key,
        origin: cert_path.to_owned(),
    })
}

fn load_proxy(path: &Path) -> Result<ClientIdentity> {
    let (pem, certs) = load_chain(
        path,
        "X.509 proxy file",
        "certificate; make a proxy with voms-proxy-init or grid-proxy-init",
    )?;
    check_private_key(&pem, path)?;
    client_identity(certs, &pem, path)
}

/// A client certificate chain (leaf first, as in the file) and its key.
pub(crate) struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    origin: PathBuf,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain.len())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

fn client_identity(
    chain: Vec<CertificateDer<'static>>,
    key_pem: &[u8],
    key_path: &Path,
) -> Result<ClientIdentity> {
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        Error::new(
            ErrorKind::Builder,
            format!(
                "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                key_path.display()
            ),
        )
    })?;
    Ok(ClientIdentity {
        chain,
        key,
        origin: key_path.to_owned(),
    })
}

/// Hands the one client certificate to every server that asks.
#[derive(Debug)]
struct FixedClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `danger_accept_invalid_certs` for the TLS setup made here: any certificate is accepted,
/// but the handshake signatures are still checked.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn check_private_key(pem: &[u8], path: &Path) -> Result<()> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(Error::new(
            ErrorKind::Builder,
            format!(
                "the private key in {} is encrypted; give an unencrypted key (for grid \
                 certificates, a proxy made by voms-proxy-init has one)",
                path.display()
            ),
        ));
    }
    PrivateKeyDer::from_pem_slice(pem).map(drop).map_err(|_| {
        Error::new(
            ErrorKind::Builder,
            format!(
                "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                path.display()
            ),
        )
    })
}
