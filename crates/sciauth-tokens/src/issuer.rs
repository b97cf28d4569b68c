//! An issuer: its metadata (discovered or configured), its transport, its signing keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};
use sciauth_credentials::{Clock, SystemClock};
use sciauth_transport::Transport;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, Http};
use crate::jwks::JwksCache;
use crate::metadata::{ProviderMetadata, discovery_urls, parse_issuer};

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

    pub(crate) async fn signing_key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey> {
        self.inner.jwks.key_for(&self.inner.http, kid, alg).await
    }
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
        }
    }

    /// The transport to reach the provider with (for a proxy, CA file, client certificate or
    /// timeouts). It must be built with `follow_redirects(false)` and without a default
    /// credential. By default one is built that way, with a 30 s timeout.
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
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = max_age;
        self
    }

    /// Discovers the provider (unless metadata was given) and checks its issuer.
    pub async fn build(self) -> Result<Issuer> {
        let issuer_url = parse_issuer(&self.issuer)?;
        let http = Http::new(match self.transport {
            Some(transport) => transport,
            None => http::default_transport()?,
        });
        let metadata = match self.metadata {
            Some(metadata) => metadata,
            None => discover(&http, &issuer_url).await?,
        };
        check_issuer(&self.issuer, &metadata.issuer)?;
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
            .finish_non_exhaustive()
    }
}

async fn discover(http: &Http, issuer: &url::Url) -> Result<ProviderMetadata> {
    let mut last_error = None;
    for url in discovery_urls(issuer) {
        match http.get(&url, "the discovery endpoint").await {
            Ok(answer) => {
                return serde_json::from_slice(&answer.body).map_err(|e| {
                    Error::new(
                        ErrorKind::Discovery,
                        format!(
                            "the discovery document at {url} is not valid provider metadata \
                             (it needs at least issuer and token_endpoint)"
                        ),
                    )
                    .with_source(e)
                });
            }
            // Only a 404-like answer moves on to the RFC 8414 location; a network failure
            // would fail there too.
            Err(e) if e.kind() == &ErrorKind::Transport => {
                return Err(Error::new(
                    ErrorKind::Transport,
                    format!("cannot reach the provider to discover {issuer}"),
                )
                .with_source(e));
            }
            Err(e) => last_error = Some(e),
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

fn check_issuer(configured: &str, provider: &str) -> Result<()> {
    if configured == provider {
        return Ok(());
    }
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
    }
}
