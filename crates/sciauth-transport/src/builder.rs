//! [`TransportBuilder`]: every setting of a [`Transport`], with its default.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sciauth_credentials::{Anonymous, Credential};
use url::Url;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::preferences::Preferences;
use crate::transport::{PreferencesHeader, Settings, Transport};

/// The user agent sent unless [`TransportBuilder::user_agent`] says otherwise.
const DEFAULT_USER_AGENT: &str = concat!("sciauth/", env!("CARGO_PKG_VERSION"));
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RESPONSE_SIZE: usize = 16 * 1024 * 1024;
const DEFAULT_RETRIES: u32 = 2;

/// Settings for a [`Transport`], made by [`Transport::builder`].
///
/// Setters take and return the builder by value. A bad input (an unparsable URL, say) is
/// kept and reported by [`build`](Self::build), the first one only. Files (certificates,
/// keys) are read by `build`.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use sciauth_transport::{StatusCode, Transport};
/// use sciauth_transport::credentials::BearerToken;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = Transport::builder()
///     .base_url("https://unicore.example.org:8080/SITE/rest/core")
///     .credential(BearerToken::new("eyJhbGciOi...")?)
///     .rejected_statuses(&[StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN])
///     .root_ca_dir("/etc/grid-security/certificates")
///     .timeout(Duration::from_secs(120))
///     .build()?;
/// # drop(transport);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TransportBuilder {
    credential: Arc<dyn Credential>,
    base_urls: Vec<Url>,
    user_agent: HeaderValue,
    timeout: Duration,
    connect_timeout: Duration,
    roots: Vec<RootSource>,
    platform_roots: bool,
    client_identity: Option<IdentitySource>,
    accept_invalid_certs: bool,
    proxy_from_env: bool,
    max_response_size: usize,
    retries: u32,
    retry_non_idempotent: bool,
    rejected_statuses: Vec<StatusCode>,
    security_sessions: bool,
    follow_redirects: bool,
    preferences: Option<Preferences>,
    error: Option<Error>,
}

#[derive(Debug)]
enum RootSource {
    File(PathBuf),
    Dir(PathBuf),
}

#[derive(Debug)]
enum IdentitySource {
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
struct KeyDer(zeroize::Zeroizing<Vec<u8>>);

impl std::fmt::Debug for KeyDer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Default for TransportBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TransportBuilder {
    /// A builder with every setting at its default. Same as [`Transport::builder`].
    pub fn new() -> Self {
        Self {
            credential: Arc::new(Anonymous),
            base_urls: Vec::new(),
            user_agent: HeaderValue::from_static(DEFAULT_USER_AGENT),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            roots: Vec::new(),
            platform_roots: true,
            client_identity: None,
            accept_invalid_certs: false,
            proxy_from_env: true,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            retries: DEFAULT_RETRIES,
            retry_non_idempotent: false,
            rejected_statuses: vec![StatusCode::UNAUTHORIZED],
            security_sessions: true,
            follow_redirects: true,
            preferences: None,
            error: None,
        }
    }

    /// What authenticates each request.
    ///
    /// By default, [`Anonymous`]: no auth header.
    pub fn credential(self, credential: impl Credential + 'static) -> Self {
        self.shared_credential(Arc::new(credential))
    }

    /// Like [`credential`](Self::credential), for a credential shared with other code (a
    /// token store that other transports use too).
    pub fn shared_credential(mut self, credential: Arc<dyn Credential>) -> Self {
        self.credential = credential;
        self
    }

    /// The URL that relative request targets are resolved against.
    ///
    /// A missing trailing `/` is added, so `base_url("https://host/rucio")` and
    /// `get("accounts/whoami")` reach `https://host/rucio/accounts/whoami`. A target starting
    /// with `/` replaces the whole path (`/ping` reaches `https://host/ping`).
    ///
    /// By default, there is none and every target must be an absolute URL.
    pub fn base_url(self, url: &str) -> Self {
        self.hosts([url])
    }

    /// Several equivalent base URLs (replicas of one service, as in Rucio's client
    /// configuration). Each request picks one at random and fails over to the next when it
    /// cannot connect, or when it times out and may be retried (a POST that timed out may
    /// have been processed, so it is not sent elsewhere). Nothing is remembered between
    /// requests.
    ///
    /// By default, there are none (see [`base_url`](Self::base_url)).
    pub fn hosts<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut base_urls = Vec::new();
        for url in urls {
            match parse_base_url(url.as_ref()) {
                Ok(url) => base_urls.push(url),
                Err(error) => return self.fail(error),
            }
        }
        if base_urls.is_empty() {
            return self.fail(Error::new(ErrorKind::Builder, "the list of hosts is empty"));
        }
        self.base_urls = base_urls;
        self
    }

    /// The `User-Agent` header.
    ///
    /// By default, `sciauth/<version of this crate>`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        match HeaderValue::try_from(user_agent.into()) {
            Ok(value) => self.user_agent = value,
            Err(_) => {
                return self.fail(Error::new(
                    ErrorKind::Builder,
                    "the user agent contains characters that cannot be sent in an HTTP header",
                ));
            }
        }
        self
    }

    /// How long one attempt may take: connecting, sending, and reading the whole response.
    /// A retry or a failover to another host gets the same time again; the wait before a
    /// retry is not counted. [`RequestBuilder::timeout`](crate::RequestBuilder::timeout)
    /// overrides it for one request.
    ///
    /// By default, 60 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long connecting (TCP and TLS handshake) may take.
    ///
    /// By default, 10 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Trusts the CA certificates in this PEM file (a bundle of one or more certificates), in
    /// addition to the platform's roots (see [`platform_roots`](Self::platform_roots)).
    /// Can be called several times.
    ///
    /// By default, only the platform's roots are trusted.
    pub fn root_ca_pem_file(mut self, path: impl AsRef<Path>) -> Self {
        self.roots.push(RootSource::File(path.as_ref().to_owned()));
        self
    }

    /// Trusts every CA certificate in this directory, as grid middleware does with
    /// `/etc/grid-security/certificates`: files named `*.pem`, `*.crt`, `*.cer` and OpenSSL
    /// hash links (`1d879c6c.0`). Signing policies, namespaces and CRLs are skipped, and so
    /// (with a warning) are files that do not parse; a directory without any certificate is
    /// an error. Can be called several times.
    ///
    /// By default, only the platform's roots are trusted.
    pub fn root_ca_dir(mut self, path: impl AsRef<Path>) -> Self {
        self.roots.push(RootSource::Dir(path.as_ref().to_owned()));
        self
    }

    /// Whether the platform's roots are trusted besides those added with
    /// [`root_ca_pem_file`](Self::root_ca_pem_file) and [`root_ca_dir`](Self::root_ca_dir).
    /// On Linux these are the system's CA certificates (`/etc/ssl/certs`, or the files named
    /// by `SSL_CERT_FILE` / `SSL_CERT_DIR`); on macOS and Windows the operating system
    /// verifies. Turn it off to trust only your own roots, as grid tools trusting only IGTF
    /// CAs do.
    ///
    /// By default, true.
    pub fn platform_roots(mut self, yes: bool) -> Self {
        self.platform_roots = yes;
        self
    }

    /// Authenticates with a client certificate: `cert` holds the certificate (and any chain,
    /// leaf first) and `key` the unencrypted private key (PKCS#8, PKCS#1 or SEC1), both PEM.
    ///
    /// By default, no client certificate is sent.
    pub fn client_cert_pem_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.client_identity = Some(IdentitySource::CertAndKey {
            cert: cert.as_ref().to_owned(),
            key: key.as_ref().to_owned(),
        });
        self
    }

    /// Authenticates with a client certificate whose key was encrypted and is given here
    /// decrypted, as PKCS#8 DER (see `sciauth_credentials::decrypt_tls_key`): `cert` holds
    /// the certificate (and any chain, leaf first), PEM.
    ///
    /// By default, no client certificate is sent.
    pub fn client_cert_pem_file_with_key(
        mut self,
        cert: impl AsRef<Path>,
        pkcs8_key: zeroize::Zeroizing<Vec<u8>>,
    ) -> Self {
        self.client_identity = Some(IdentitySource::CertAndKeyDer {
            cert: cert.as_ref().to_owned(),
            key: KeyDer(pkcs8_key),
        });
        self
    }

    /// Authenticates with an X.509 proxy certificate file, as `voms-proxy-init` writes it
    /// (`/tmp/x509up_u<uid>`, or `$X509_USER_PROXY`): the proxy certificate, its unencrypted
    /// private key and the chain up to the user certificate, in one PEM file.
    ///
    /// By default, no client certificate is sent.
    pub fn client_proxy_pem_file(mut self, path: impl AsRef<Path>) -> Self {
        self.client_identity = Some(IdentitySource::Proxy(path.as_ref().to_owned()));
        self
    }

    /// Accepts any server certificate, even an expired, self-signed or misnamed one. Anyone
    /// on the network path can then read and change the traffic, credentials included; use
    /// it only against a test server. `build` logs a warning when this is on.
    ///
    /// By default, false: certificates are verified.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.accept_invalid_certs = yes;
        self
    }

    /// Whether to use the proxy named by `HTTPS_PROXY`, `HTTP_PROXY` or `ALL_PROXY` (and
    /// their lowercase forms), except for hosts listed in `NO_PROXY`.
    ///
    /// By default, true.
    pub fn proxy_from_env(mut self, yes: bool) -> Self {
        self.proxy_from_env = yes;
        self
    }

    /// The largest response body accepted. A larger one fails with
    /// [`ErrorKind::BodyTooLarge`] without being read to the end: a `Content-Length` over the
    /// limit is refused before any of the body is read.
    ///
    /// By default, 16 MiB.
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// How many times a request is retried after a connect error or HTTP 502, 503 or 504,
    /// with exponential backoff and jitter, or after the time a `Retry-After` header asks
    /// for. Only idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS) are retried unless
    /// [`retry_non_idempotent`](Self::retry_non_idempotent) or
    /// [`RequestBuilder::retry`](crate::RequestBuilder::retry) allows it. A `Retry-After`
    /// longer than the timeout is not waited for: the response is returned instead.
    ///
    /// By default, 2.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Whether POST and PATCH requests are retried too. The server may have acted on the
    /// first attempt already, so turn this on only for services where that is harmless.
    ///
    /// By default, false.
    pub fn retry_non_idempotent(mut self, yes: bool) -> Self {
        self.retry_non_idempotent = yes;
        self
    }

    /// The statuses that mean "the server rejected the credential". On one of them the
    /// transport tells the credential ([`Credential::rejected`]); if it renewed itself, the
    /// request is sent once more with the new header. UNICORE answers a bad credential with
    /// 403, so UNICORE transports use `&[StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN]`.
    ///
    /// By default, `[401]`.
    pub fn rejected_statuses(mut self, statuses: &[StatusCode]) -> Self {
        self.rejected_statuses = statuses.to_vec();
        self
    }

    /// Whether UNICORE security sessions are used: the `X-UNICORE-SecuritySession` a server
    /// hands out is remembered (per server, shared by the clones of this transport) and sent
    /// back, so the server skips authentication; on HTTP 432 (session expired) it is dropped
    /// and the request sent once more without it. Requests with their own credential or
    /// preferences never use a session, and [`Transport::with_credential`] and
    /// [`Transport::with_preferences`] start without sessions, since a session stands for
    /// one identity.
    ///
    /// By default, true.
    pub fn security_sessions(mut self, yes: bool) -> Self {
        self.security_sessions = yes;
        self
    }

    /// Whether redirects are followed, at most 10 in a row. The credential and the security
    /// session are sent only to the origin (scheme, host and port) of the original request;
    /// 301, 302 and 303 turn the request into a body-less GET, 307 and 308 repeat it.
    /// Clients of token endpoints turn this off (a redirect there is never legitimate).
    ///
    /// By default, true.
    pub fn follow_redirects(mut self, yes: bool) -> Self {
        self.follow_redirects = yes;
        self
    }

    /// The UNICORE user preferences sent with every request
    /// ([`RequestBuilder::preferences`](crate::RequestBuilder::preferences) overrides them
    /// for one request).
    ///
    /// By default, none: no `X-UNICORE-User-Preferences` header.
    pub fn preferences(mut self, preferences: Preferences) -> Self {
        self.preferences = Some(preferences);
        self
    }

    /// Makes the transport: reads certificate and key files and sets up TLS.
    ///
    /// Fails with the first bad input given to a setter, with [`ErrorKind::InvalidPreference`]
    /// for unsendable preferences, and with [`ErrorKind::Builder`] for unreadable or invalid
    /// certificate and key files.
    pub fn build(self) -> Result<Transport> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let preferences = PreferencesHeader::new(self.preferences)?;
        let mut roots = Vec::new();
        for source in &self.roots {
            match source {
                RootSource::File(path) => roots.extend(load_root_file(path)?),
                RootSource::Dir(path) => roots.extend(load_root_dir(path)?),
            }
        }
        if !self.platform_roots && roots.is_empty() && !self.accept_invalid_certs {
            return Err(Error::new(
                ErrorKind::Builder,
                "platform roots are turned off and no root CA was added, so no server could \
                 be trusted; add roots with root_ca_pem_file or root_ca_dir",
            ));
        }
        let identity = match &self.client_identity {
            None => None,
            Some(IdentitySource::CertAndKey { cert, key }) => {
                Some(Arc::new(load_cert_and_key(cert, key)?))
            }
            Some(IdentitySource::CertAndKeyDer { cert, key }) => {
                Some(Arc::new(load_cert_with_key(cert, key)?))
            }
            Some(IdentitySource::Proxy(path)) => Some(Arc::new(load_proxy(path)?)),
        };
        if self.accept_invalid_certs {
            tracing::warn!(
                "TLS certificate verification is turned off (danger_accept_invalid_certs): \
                 credentials sent over HTTPS can be read by anyone on the network path"
            );
        }
        let recipe = ClientRecipe {
            user_agent: self.user_agent,
            connect_timeout: self.connect_timeout,
            roots: roots
                .iter()
                .map(|der| reqwest::Certificate::from_der(der))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| {
                    Error::new(ErrorKind::Builder, "invalid root CA certificate")
                        .with_source(e.without_url())
                })?,
            root_ders: roots,
            platform_roots: self.platform_roots,
            identity,
            accept_invalid_certs: self.accept_invalid_certs,
            proxy_from_env: self.proxy_from_env,
        };
        let client = recipe.client()?;
        let settings = Settings {
            base_urls: self.base_urls,
            timeout: self.timeout,
            max_response_size: self.max_response_size,
            retries: self.retries,
            retry_non_idempotent: self.retry_non_idempotent,
            rejected_statuses: self.rejected_statuses,
            security_sessions: self.security_sessions,
            follow_redirects: self.follow_redirects,
            recipe,
        };
        Ok(Transport::new(
            client,
            Arc::new(settings),
            self.credential,
            preferences,
        ))
    }

    fn fail(mut self, error: Error) -> Self {
        if self.error.is_none() {
            self.error = Some(error);
        }
        self
    }
}

/// What is needed to make a reqwest client, kept so that
/// [`Transport::with_fresh_connections`] can make another one.
#[derive(Debug)]
pub(crate) struct ClientRecipe {
    user_agent: HeaderValue,
    connect_timeout: Duration,
    roots: Vec<reqwest::Certificate>,
    /// The same roots, for the TLS setup made here when there is a client identity.
    root_ders: Vec<CertificateDer<'static>>,
    platform_roots: bool,
    identity: Option<Arc<ClientIdentity>>,
    accept_invalid_certs: bool,
    proxy_from_env: bool,
}

impl ClientRecipe {
    /// The rustls configuration for a client certificate, made here rather than by reqwest:
    /// reqwest's (rustls's `with_client_auth_cert`) parses the leaf certificate with webpki
    /// to check that it matches the key, and webpki refuses the critical proxyCertInfo
    /// extension (RFC 3820) that every grid proxy carries. The server verification is the
    /// same as reqwest's: the platform verifier with our roots added, or our roots only.
    fn tls_with_identity(&self, identity: &ClientIdentity) -> Result<rustls::ClientConfig> {
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
        let builder = if self.accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer(provider.clone())))
        } else if self.platform_roots {
            let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
                self.root_ders.iter().cloned(),
                provider.clone(),
            )
            .map_err(|e| failed("platform roots", e))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        } else {
            let mut store = rustls::RootCertStore::empty();
            for root in &self.root_ders {
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

    pub(crate) fn client(&self) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout)
            // Redirects are followed by the transport itself, which knows which headers are
            // secret (reqwest strips only `Authorization` and cookies on a cross-origin hop).
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(self.accept_invalid_certs);
        if !self.proxy_from_env {
            builder = builder.no_proxy();
        }
        if let Some(identity) = &self.identity {
            builder = builder.tls_backend_preconfigured(self.tls_with_identity(identity)?);
        } else if self.platform_roots {
            builder = builder.tls_certs_merge(self.roots.iter().cloned());
        } else {
            builder = builder.tls_certs_only(self.roots.iter().cloned());
        }
        builder.build().map_err(|e| {
            let hint = if self.platform_roots {
                " (if the system has no CA certificates, install them (Debian: ca-certificates), \
                 set SSL_CERT_FILE, or add roots with root_ca_pem_file)"
            } else {
                ""
            };
            Error::new(
                ErrorKind::Builder,
                format!("could not set up the HTTP client: {}{hint}", root_cause(&e)),
            )
            .with_source(e.without_url())
        })
    }
}

fn parse_base_url(text: &str) -> Result<Url> {
    let mut url = Url::parse(text).map_err(|e| {
        let shown = text.split(['?', '#']).next().unwrap_or_default();
        Error::new(
            ErrorKind::Builder,
            format!("invalid base URL {shown:?}: {e}"),
        )
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(Error::new(
            ErrorKind::Builder,
            format!(
                "base URL {} must start with https:// or http://",
                crate::error::ShownUrl(&url)
            ),
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn read_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    std::fs::read(path).map(Zeroizing::new).map_err(|e| {
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
        let loaded = std::fs::read(&path)
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

fn load_cert_and_key(cert_path: &Path, key_path: &Path) -> Result<ClientIdentity> {
    let cert = read_file(cert_path, "client certificate file")?;
    let key = read_file(key_path, "client key file")?;
    let certs = pem_certificates(&cert).map_err(|why| {
        Error::new(
            ErrorKind::Builder,
            format!("client certificate file {}: {why}", cert_path.display()),
        )
    })?;
    if certs.is_empty() {
        return Err(Error::new(
            ErrorKind::Builder,
            format!(
                "client certificate file {} holds no PEM certificate",
                cert_path.display()
            ),
        ));
    }
    check_private_key(&key, key_path)?;
    client_identity(certs, &key, key_path)
}

fn load_cert_with_key(cert_path: &Path, key: &KeyDer) -> Result<ClientIdentity> {
    let cert = read_file(cert_path, "client certificate file")?;
    let chain = pem_certificates(&cert).map_err(|why| {
        Error::new(
            ErrorKind::Builder,
            format!("client certificate file {}: {why}", cert_path.display()),
        )
    })?;
    if chain.is_empty() {
        return Err(Error::new(
            ErrorKind::Builder,
            format!(
                "client certificate file {} holds no PEM certificate",
                cert_path.display()
            ),
        ));
    }
    let key = PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(key.0.to_vec()));
    Ok(ClientIdentity {
        chain,
        key,
        origin: cert_path.to_owned(),
    })
}

fn load_proxy(path: &Path) -> Result<ClientIdentity> {
    let pem = read_file(path, "X.509 proxy file")?;
    let certs = pem_certificates(&pem).map_err(|why| {
        Error::new(
            ErrorKind::Builder,
            format!("X.509 proxy file {}: {why}", path.display()),
        )
    })?;
    if certs.is_empty() {
        return Err(Error::new(
            ErrorKind::Builder,
            format!(
                "X.509 proxy file {} holds no certificate; make a proxy with voms-proxy-init \
                 or grid-proxy-init",
                path.display()
            ),
        ));
    }
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

/// The innermost cause's message: what actually went wrong, without the wrappers' generic
/// "error sending request".
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
