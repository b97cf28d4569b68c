//! [`Auth`], its builder, and what both integrations share: which requests get the
//! credential, its header, and its renewal.

use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use sciauth_credentials::{AuthHeader, Credential, Ready, Renewal};
use url::Url;

use crate::error::{Error, Result};

/// A credential bound to the one origin that may receive it, and the statuses that mean the
/// server rejected it. Hands out the integrations: [`middleware`](Auth::middleware)
/// (reqwest-middleware) and [`layer`](Auth::layer) (tower).
///
/// Cloning is a reference-count bump; every middleware and layer made from one `Auth` shares
/// its credential.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    credential: Arc<dyn Credential>,
    origin: Origin,
    rejected: Vec<StatusCode>,
}

/// Builds an [`Auth`]: `Auth::builder(credential).origin(url).build()`.
#[must_use]
pub struct AuthBuilder {
    credential: Arc<dyn Credential>,
    origin: Option<Result<Origin>>,
    rejected: Vec<StatusCode>,
}

impl Auth {
    /// A builder for the given credential. [`origin`](AuthBuilder::origin) must be set.
    pub fn builder(credential: Arc<dyn Credential>) -> AuthBuilder {
        AuthBuilder {
            credential,
            origin: None,
            rejected: vec![StatusCode::UNAUTHORIZED],
        }
    }

    /// The credential.
    pub fn credential(&self) -> &Arc<dyn Credential> {
        &self.inner.credential
    }

    /// Whether a request to this scheme, host and port (the port `None` for the scheme's
    /// default) may carry the credential.
    pub(crate) fn is_origin(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let origin = &self.inner.origin;
        let port = port.or_else(|| default_port(scheme));
        scheme.eq_ignore_ascii_case(&origin.scheme)
            && port == Some(origin.port)
            && unbracketed(host).eq_ignore_ascii_case(&origin.host)
    }

    /// Whether the request to `url` may carry the credential.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn is_origin_of(&self, url: &Url) -> bool {
        url.host_str()
            .is_some_and(|host| self.is_origin(url.scheme(), host, url.port()))
    }

    /// Whether the server rejected the credential with `status`.
    pub(crate) fn is_rejected(&self, status: StatusCode) -> bool {
        self.inner.rejected.contains(&status)
    }

    /// The credential's header: the ready one if there is one, else the one it computes.
    pub(crate) async fn header(&self) -> Result<Option<AuthHeader>> {
        match self.inner.credential.ready_header() {
            Ready::Header(header) => Ok(Some(header)),
            Ready::NoHeader => Ok(None),
            Ready::NotReady => (self.inner.credential.header().await)
                .map_err(|e| Error::credential("getting its header", e)),
        }
    }

    /// Tells the credential the server rejected `sent`; the new header if it renewed.
    pub(crate) async fn renew(&self, sent: &AuthHeader) -> Result<Option<AuthHeader>> {
        let renewal = (self.inner.credential.rejected(Some(sent)).await)
            .map_err(|e| Error::credential("renewing after the server rejected it", e))?;
        match renewal {
            Renewal::Renewed => self.header().await,
            Renewal::Unchanged => Ok(None),
        }
    }
}

impl AuthBuilder {
    /// The one origin (scheme, host and port) whose requests get the credential; a request
    /// to any other origin goes out untouched. Only the origin of `url` counts, its path is
    /// ignored: `https://api.example.org/v1/` is `https://api.example.org:443`.
    ///
    /// There is no default: [`build`](Self::build) fails without an origin, or with one that
    /// is not an `http` or `https` URL with a host.
    pub fn origin(mut self, url: impl AsRef<str>) -> Self {
        self.origin = Some(Origin::parse(url.as_ref()));
        self
    }

    /// The statuses that mean the server rejected the credential: the credential is told
    /// (so that one that can renew itself does) and the request is sent once more with the
    /// new header. By default, `[401]`; UNICORE also answers 403 to an expired token.
    pub fn rejected_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.rejected = statuses.into_iter().collect();
        self
    }

    /// The [`Auth`], or an [`ErrorKind::Builder`](crate::ErrorKind::Builder) error naming the
    /// setting that is wrong.
    pub fn build(self) -> Result<Auth> {
        let origin = self.origin.unwrap_or_else(|| {
            Err(Error::builder(
                "no origin: set the one origin that may receive the credential with \
                 `Auth::builder(credential).origin(\"https://api.example.org\")`",
            ))
        })?;
        Ok(Auth {
            inner: Arc::new(Inner {
                credential: self.credential,
                origin,
                rejected: self.rejected,
            }),
        })
    }
}

/// Scheme, host and port, lowercase, the port always explicit.
#[derive(Debug)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(text: &str) -> Result<Self> {
        // The URL may hold user info or a query: no part of it but the origin is repeated.
        let url = Url::parse(text)
            .map_err(|e| Error::builder(format!("the origin is not a valid URL: {e}")))?;
        let scheme = url.scheme();
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(Error::builder(format!(
                "the origin must be an http or https URL with a host, not a {scheme} URL \
                 without one"
            )));
        };
        if scheme != "http" && scheme != "https" {
            return Err(Error::builder(format!(
                "the origin must be an http or https URL, not {scheme}"
            )));
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            host: unbracketed(host).to_ascii_lowercase(),
            port,
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else {
        None
    }
}

/// An IPv6 host without its brackets, as `url` and `http` may spell it differently.
fn unbracketed(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Auth")
            .field("credential", &inner.credential)
            .field("origin", &inner.origin)
            .field("rejected_statuses", &inner.rejected)
            .finish()
    }
}

impl fmt::Debug for AuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthBuilder")
            .field("credential", &self.credential)
            .field("origin", &self.origin.as_ref().map(|o| o.as_ref().ok()))
            .field("rejected_statuses", &self.rejected)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sciauth_credentials::BearerToken;

    fn for_origin(origin: &str) -> Result<Auth> {
        let credential = Arc::new(BearerToken::new("a-secret-token").unwrap());
        Auth::builder(credential).origin(origin).build()
    }

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        let auth = for_origin("https://API.example.org/v1/?x=1").unwrap();
        assert!(auth.is_origin("https", "api.example.org", None));
        assert!(auth.is_origin("HTTPS", "Api.Example.Org", Some(443)));
        assert!(!auth.is_origin("http", "api.example.org", None));
        assert!(!auth.is_origin("https", "api.example.org", Some(8443)));
        assert!(!auth.is_origin("https", "api.example.org.evil", None));
        assert!(!auth.is_origin("ftp", "api.example.org", None));

        let v6 = for_origin("http://[::1]:8080").unwrap();
        assert!(v6.is_origin("http", "[::1]", Some(8080)));
        assert!(v6.is_origin("http", "::1", Some(8080)));
        assert!(!v6.is_origin("http", "[::1]", None));
    }

    #[test]
    fn a_missing_or_unusable_origin_is_a_builder_error() {
        let credential = Arc::new(BearerToken::new("a-secret-token").unwrap());
        let error = Auth::builder(credential).build().unwrap_err();
        assert!(error.is_builder() && error.is_bad_input(), "{error}");
        for bad in ["not a url", "ftp://example.org/", "unix:/run/socket"] {
            let error = for_origin(bad).unwrap_err();
            assert!(error.is_builder(), "{bad}: {error}");
        }
        let debug = format!("{:?}", for_origin("https://example.org").unwrap());
        assert!(!debug.contains("a-secret-token"), "{debug}");
    }
}
