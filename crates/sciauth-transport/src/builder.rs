//! [`TransportBuilder`]: every setting of a [`Transport`], with its default; `build` reads
//! the TLS files (`tls.rs`) and makes the reqwest client.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use rustls::pki_types::CertificateDer;
use sciauth_credentials::{Anonymous, Credential};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::preferences::Preferences;
use crate::tls::{self, ClientIdentity, IdentitySource, KeyDer, RootSource, Trust};
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
        let roots = tls::load_roots(&self.roots)?;
        if !self.platform_roots && roots.is_empty() && !self.accept_invalid_certs {
            return Err(Error::new(
                ErrorKind::Builder,
                "platform roots are turned off and no root CA was added, so no server could \
                 be trusted; add roots with root_ca_pem_file or root_ca_dir",
            ));
        }
        let identity = match &self.client_identity {
            None => None,
            Some(source) => Some(Arc::new(source.load()?)),
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
            let trust = Trust {
                roots: &self.root_ders,
                platform_roots: self.platform_roots,
                accept_invalid_certs: self.accept_invalid_certs,
            };
            builder = builder.tls_backend_preconfigured(tls::client_config(&trust, identity)?);
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

/// The innermost cause's message: what actually went wrong, without the wrappers' generic
/// "error sending request".
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
