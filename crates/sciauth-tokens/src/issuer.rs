//! An issuer: its metadata (discovered or configured), its transport, its signing keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};
use sciauth_credentials::text::printable;
use sciauth_credentials::{Clock, SystemClock};
use sciauth_transport::Transport;

use crate::backoff::FailureBackoff;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, Http};
use crate::jwks::JwksCache;
use crate::metadata::{ProviderMetadata, discovery_urls, parse_issuer};
use crate::validate::Limits;

/// An OAuth 2.0 / OIDC provider, ready to be used by [`OAuthClient`](crate::OAuthClient)s.
///
/// Cloning is cheap (a reference count); clients of the same issuer share its transport and
/// its JWKS cache.
///
/// ```no_run
/// # async fn run() -> sciauth_tokens::Result<()> {
/// use sciauth_tokens::Issuer;
/// let issuer = Issuer::discover("https://cilogon.org").await?;
/// println!("token endpoint: {}", issuer.metadata().token_endpoint);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

struct Inner {
    metadata: ProviderMetadata,
    http: Http,
    clock: Arc<dyn Clock>,
    jwks: JwksCache,
    limits: Limits,
    plain_jwt_access_tokens: bool,
}

impl Issuer {
    /// Discovers the issuer with default settings; see [`IssuerBuilder`].
    pub async fn discover(issuer: &str) -> Result<Self> {
        Self::builder(issuer).build().await
    }

    /// A builder for the issuer identified by `issuer` (e.g. `https://cilogon.org`).
    pub fn builder(issuer: impl Into<String>) -> IssuerBuilder {
        IssuerBuilder::new(issuer)
    }

    /// The issuer identifier, as configured (and as the provider spells it).
    pub fn issuer(&self) -> &str {
        &self.inner.metadata.issuer
    }

    /// The provider's metadata.
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.inner.metadata
    }

    /// The clock that judges expiry.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub(crate) fn http(&self) -> &Http {
        &self.inner.http
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Whether access tokens typed `JWT` (or untyped) pass validation, besides `at+jwt`.
    pub(crate) fn accepts_plain_jwt_access_tokens(&self) -> bool {
        self.inner.plain_jwt_access_tokens
    }

    #[cfg(feature = "fuzzing")]
    pub(crate) fn jwks(&self) -> &JwksCache {
        &self.inner.jwks
    }

    pub(crate) async fn signing_key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey> {
        self.inner.jwks.key_for(&self.inner.http, kid, alg).await
    }

    /// The provider's signing keys that validation can use, fetched from its JWKS now: each
    /// key's `kid` and `alg` as the provider wrote them (untrusted text: escape it before
    /// showing it). Keys for encryption, of unknown types or that do not parse are left out;
    /// an empty list means no signature of this provider can be checked. For checking a
    /// provider (`sciauth check`); validation fetches keys by itself.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyInfo>> {
        Ok(self
            .inner
            .jwks
            .fetch_now(&self.inner.http)
            .await?
            .into_iter()
            .map(|(kid, alg)| SigningKeyInfo { kid, alg })
            .collect())
    }
}

/// A usable signing key of a provider, as [`Issuer::signing_keys`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigningKeyInfo {
    /// The key's `kid`, if it has one.
    pub kid: Option<String>,
    /// The key's `alg`, if it names one.
    pub alg: Option<String>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.inner.metadata.issuer)
            .field(
                "token_endpoint",
                &self.inner.metadata.token_endpoint.as_str(),
            )
            .finish_non_exhaustive()
    }
}

/// Configures an [`Issuer`]; [`build`](Self::build) discovers it unless metadata was given.
///
/// # Trailing slashes
///
/// The `issuer` in the discovery document must equal the configured issuer character for
/// character, as OIDC Discovery 4.3 requires; nothing is normalised, because ID tokens carry
/// the provider's spelling in `iss` and a lenient match here would only move the failure
/// there. The discovery URL itself is found with or without a trailing slash, and when the
/// two spellings differ only by one, the error says which spelling to configure.
pub struct IssuerBuilder {
    issuer: String,
    transport: Option<Transport>,
    clock: Arc<dyn Clock>,
    metadata: Option<ProviderMetadata>,
    jwks_refetch_interval: Duration,
    jwks_max_age: Duration,
    max_response_size: usize,
    limits: Limits,
    plain_jwt_access_tokens: bool,
}

impl IssuerBuilder {
    fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            transport: None,
            clock: Arc::new(SystemClock),
            metadata: None,
            jwks_refetch_interval: Duration::from_secs(60),
            jwks_max_age: Duration::from_secs(3600),
            max_response_size: http::DEFAULT_MAX_RESPONSE_SIZE,
            limits: Limits::default(),
            plain_jwt_access_tokens: false,
        }
    }

    /// The transport to reach the provider with (for a proxy, CA file, client certificate or
    /// timeouts). Whatever it is set to, requests to the provider's endpoints never follow a
    /// redirect (a redirected token request would carry secrets elsewhere), never send the
    /// transport's own credential, and read at most
    /// [`max_response_size`](Self::max_response_size). By default one is built with a 30 s
    /// timeout.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The clock that judges expiry. By default the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses these endpoints instead of discovery, for providers without it. The metadata's
    /// `issuer` must equal the configured issuer.
    pub fn metadata(mut self, metadata: ProviderMetadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// After an unknown `kid` fetched the JWKS again, further unknown keys fetch it again at
    /// most this often (the first unknown key always fetches at once). By default 60 s.
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = interval;
        self
    }

    /// The JWKS is fetched again when older than this, so removed keys stop being trusted. By
    /// default 1 h.
    ///
    /// While the provider cannot be reached (or answers with an error), the last keys it sent
    /// stay in use, and it is asked again only after a backoff: 1 s after the first failed
    /// fetch, doubling up to 60 s. Without keys yet, validations fail at once during the
    /// backoff with a transient error.
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = max_age;
        self
    }

    /// The largest answer read from any of the provider's endpoints (discovery, JWKS, token,
    /// device, revocation, introspection); a larger one is refused with
    /// [`ErrorKind::InvalidResponse`], and a streamed one is cut off there. By default 1 MiB.
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// The largest access, refresh, ID token or device code accepted from the provider; a
    /// larger one is refused with [`ErrorKind::InvalidResponse`]. By default 64 KiB (JWTs
    /// with many groups run to a few KiB).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.limits.max_token_size = bytes;
        self
    }

    /// Whether [`Issuer::validate_access_token`] also accepts JWT access tokens whose header
    /// says `typ: JWT` or has no `typ`, as some providers send them (INDIGO IAM, Keycloak).
    /// By default `false`: only `at+jwt` (RFC 9068), so that an ID token, typed `JWT`, cannot
    /// pass as an access token. With `true`, the resource server's audience must not be the
    /// client id of any client of this provider, since that client's ID tokens would carry
    /// it as their `aud`.
    pub fn plain_jwt_access_tokens(mut self, yes: bool) -> Self {
        self.plain_jwt_access_tokens = yes;
        self
    }

    /// Discovers the provider (unless metadata was given) and checks its issuer.
    pub async fn build(self) -> Result<Issuer> {
        let issuer_url = parse_issuer(&self.issuer)?;
        let http = Http::new(
            match self.transport {
                Some(transport) => transport,
                None => http::default_transport()?,
            },
            self.max_response_size,
        );
        let metadata = match self.metadata {
            Some(metadata) => metadata,
            None => discover(&http, &issuer_url).await?,
        };
        check_issuer(&self.issuer, &metadata.issuer)?;
        check_endpoints(&issuer_url, &metadata)?;
        warn_if_cleartext("issuer", &issuer_url);
        warn_if_cleartext("token endpoint", &metadata.token_endpoint);
        tracing::debug!(issuer = %metadata.issuer, "issuer ready");
        let jwks = JwksCache::new(
            metadata.jwks_uri.clone(),
            self.jwks_refetch_interval,
            self.jwks_max_age,
        );
        Ok(Issuer {
            inner: Arc::new(Inner {
                metadata,
                http,
                clock: self.clock,
                jwks,
                limits: self.limits,
                plain_jwt_access_tokens: self.plain_jwt_access_tokens,
            }),
        })
    }
}

impl fmt::Debug for IssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerBuilder")
            .field("issuer", &self.issuer)
            .field("metadata", &self.metadata.is_some())
            .field("jwks_refetch_interval", &self.jwks_refetch_interval)
            .field("jwks_max_age", &self.jwks_max_age)
            .field("max_response_size", &self.max_response_size)
            .field("max_token_size", &self.limits.max_token_size)
            .field("plain_jwt_access_tokens", &self.plain_jwt_access_tokens)
            .finish_non_exhaustive()
    }
}

/// An [`Issuer`] built (discovered) on first use and kept, for a service that must start
/// while its provider is down.
///
/// A failed build is remembered: for a backoff of 1 s after the first failure, doubling with
/// each further one up to 60 s, [`get`](Self::get) fails at once with an error like the last
/// one (transient if it was) instead of asking the provider again. So while the provider is
/// down, callers get a quick answer and the provider one discovery per backoff period, not
/// one per caller queued behind the last one's timeout.
///
/// ```no_run
/// # async fn run() -> sciauth_tokens::Result<()> {
/// use sciauth_tokens::{Issuer, LazyIssuer};
/// let issuer = LazyIssuer::new(|| Ok(Issuer::builder("https://iam.example.org/")));
/// let claims = issuer.get().await?.validate_access_token("eyJ...", "https://api").await?;
/// # drop(claims);
/// # Ok(())
/// # }
/// ```
pub struct LazyIssuer {
    builder: Box<dyn Fn() -> Result<IssuerBuilder> + Send + Sync>,
    issuer: tokio::sync::OnceCell<Issuer>,
    failures: std::sync::Mutex<FailureBackoff>,
}

impl LazyIssuer {
    /// An issuer that `builder` makes the builder of, each time one must be built.
    pub fn new(builder: impl Fn() -> Result<IssuerBuilder> + Send + Sync + 'static) -> Self {
        Self {
            builder: Box::new(builder),
            issuer: tokio::sync::OnceCell::new(),
            failures: std::sync::Mutex::new(FailureBackoff::default()),
        }
    }

    /// The issuer, built now if it was not yet and no recent failure says the provider is
    /// still unreachable.
    pub async fn get(&self) -> Result<&Issuer> {
        self.issuer
            .get_or_try_init(|| async {
                self.lock_failures().check()?;
                let built = match (self.builder)() {
                    Ok(builder) => builder.build().await,
                    Err(error) => Err(error),
                };
                match built {
                    Ok(issuer) => {
                        self.lock_failures().succeeded();
                        Ok(issuer)
                    }
                    Err(error) => {
                        let backoff = self.lock_failures().failed(&error);
                        tracing::warn!(%error, ?backoff, "cannot discover the issuer; not trying again before the backoff");
                        Err(error)
                    }
                }
            })
            .await
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, FailureBackoff> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for LazyIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyIssuer")
            .field("issuer", &self.issuer.get())
            .finish_non_exhaustive()
    }
}

async fn discover(http: &Http, issuer: &url::Url) -> Result<ProviderMetadata> {
    let mut last_error = None;
    for url in discovery_urls(issuer) {
        match http.get(&url, "the discovery endpoint").await {
            Ok(answer) => {
                return ProviderMetadata::from_discovery(&answer.body).map_err(|invalid| {
                    Error::new(
                        ErrorKind::Discovery,
                        format!(
                            "the discovery document at {url} is not valid provider metadata: \
                             {}",
                            invalid.0
                        ),
                    )
                });
            }
            // Only a 4xx answer (no document here) moves on to the RFC 8414 location; a
            // network failure would fail there too, and a redirect, a 5xx or an answer too
            // large is what this provider does.
            Err(e) if e.kind() == &ErrorKind::Transport => {
                return Err(Error::new(
                    ErrorKind::Transport,
                    format!("cannot reach the provider to discover {issuer}"),
                )
                .with_judged_source(e));
            }
            Err(e)
                if e.kind() == &ErrorKind::HttpStatus
                    && e.own_status().is_some_and(|s| (400..500).contains(&s)) =>
            {
                last_error = Some(e);
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Discovery,
                    format!("discovering {issuer} failed: {e}"),
                ));
            }
        }
    }
    let mut error = Error::new(
        ErrorKind::Discovery,
        format!(
            "no discovery document for {issuer} (tried /.well-known/openid-configuration and \
             /.well-known/oauth-authorization-server); configure the endpoints with \
             IssuerBuilder::metadata"
        ),
    );
    if let Some(last) = last_error {
        error = error.with_source(last);
    }
    Err(error)
}

/// Whether `url` is plain `http://` to a host other than this machine's loopback: what goes
/// there (codes, tokens, client secrets) can be read and changed on the way.
pub fn is_cleartext_remote(url: &url::Url) -> bool {
    url.scheme() == "http" && !is_loopback(url)
}

/// Logs a warning the first time this process meets `url` as a cleartext remote endpoint.
fn warn_if_cleartext(what: &str, url: &url::Url) {
    use std::collections::HashSet;
    use std::sync::{Mutex, PoisonError};
    /// Past this many, warnings repeat rather than the set growing.
    const REMEMBERED: usize = 256;
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    if !is_cleartext_remote(url) {
        return;
    }
    // Scheme, host, port and path: never a query, which might carry something secret.
    let shown = &url[..url::Position::AfterPath];
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    let warned = warned.get_or_insert_with(HashSet::new);
    if warned.contains(shown) {
        return;
    }
    if warned.len() < REMEMBERED {
        warned.insert(shown.to_owned());
    }
    tracing::warn!(
        "the {what} {shown} is plain http:// on a host other than this machine: tokens and \
         secrets sent there can be read on the way; use https://"
    );
}

pub(crate) fn check_issuer(configured: &str, provider: &str) -> Result<()> {
    if configured == provider {
        return Ok(());
    }
    let provider = printable(provider, 200);
    let hint = if configured.trim_end_matches('/') == provider.trim_end_matches('/') {
        format!("; the difference is the trailing slash: configure the issuer as {provider:?}")
    } else {
        String::new()
    };
    Err(Error::new(
        ErrorKind::Discovery,
        format!(
            "the provider calls itself {provider:?}, but the configured issuer is \
             {configured:?}; the two must be identical (OIDC Discovery 4.3){hint}"
        ),
    ))
}

/// Whether `url` names this machine: `localhost` or a loopback address.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Credentials go only where TLS protects them: an https issuer's endpoints must all be
/// https (or on this machine) (a discovery document naming an `http://` token endpoint would send the client
/// secret and refresh tokens in clear), and no endpoint may use another scheme.
fn check_endpoints(issuer: &url::Url, metadata: &ProviderMetadata) -> Result<()> {
    for (name, url) in metadata.endpoints() {
        let allowed = match url.scheme() {
            "https" => true,
            // A loopback endpoint never leaves the machine (test providers, local proxies).
            "http" => issuer.scheme() == "http" || is_loopback(url),
            _ => false,
        };
        if !allowed {
            return Err(Error::new(
                ErrorKind::Discovery,
                format!(
                    "the provider's {name} is a {} URL, but the issuer {issuer} is {}: refusing \
                     to send credentials there (every endpoint of an https issuer must be https)",
                    printable(url.scheme(), 20),
                    issuer.scheme()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_must_match_exactly_and_slash_mismatch_is_explained() {
        assert!(check_issuer("https://cilogon.org", "https://cilogon.org").is_ok());
        let e = check_issuer("https://cilogon.org/", "https://cilogon.org").unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Discovery);
        assert!(e.to_string().contains("trailing slash"), "{e}");
        let e = check_issuer("https://a.example.org", "https://b.example.org").unwrap_err();
        assert!(!e.to_string().contains("trailing slash"), "{e}");
        let e =
            check_issuer("https://a.example.org", "https://a.example.org\u{1b}[2J").unwrap_err();
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
    }

    #[test]
    fn endpoints_of_an_https_issuer_must_be_https() {
        let issuer: url::Url = "https://idp.example.org".parse().unwrap();
        let mut metadata = ProviderMetadata::new(
            "https://idp.example.org",
            "https://idp.example.org/token".parse().unwrap(),
        );
        assert!(check_endpoints(&issuer, &metadata).is_ok());
        metadata.token_endpoint = "http://idp.example.org/token".parse().unwrap();
        let e = check_endpoints(&issuer, &metadata).unwrap_err();
        assert!(e.to_string().contains("token_endpoint"), "{e}");
        let plain: url::Url = "http://127.0.0.1:8080".parse().unwrap();
        assert!(check_endpoints(&plain, &metadata).is_ok());
        metadata.token_endpoint = "http://127.0.0.1:8080/token".parse().unwrap();
        assert!(check_endpoints(&issuer, &metadata).is_ok());
        metadata.jwks_uri = Some("file:///etc/passwd".parse().unwrap());
        assert!(check_endpoints(&plain, &metadata).is_err());
    }
}
