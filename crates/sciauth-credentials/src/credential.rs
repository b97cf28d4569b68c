//! The [`Credential`] trait and the header it hands out.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderName, HeaderValue};

use crate::error::{Error, ErrorKind, Result};

/// One authentication header: a name and a ready-made value marked sensitive.
///
/// Cloning is a reference-count bump: the value is built once, when the credential is made or
/// renewed, never per request.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthHeader {
    name: HeaderName,
    value: HeaderValue,
}

impl AuthHeader {
    /// A header with the given name and value. The value is marked sensitive, so HTTP
    /// libraries (hyper, reqwest, tower-http) keep it out of their logs and HPACK tables.
    pub fn new(name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        Self { name, value }
    }

    /// An `Authorization` header with the given value.
    pub fn authorization(value: HeaderValue) -> Self {
        Self::new(http::header::AUTHORIZATION, value)
    }

    /// Builds a header value from `scheme` and `secret`, e.g. `Bearer <token>`.
    ///
    /// Fails with [`ErrorKind::InvalidHeaderValue`] if the secret holds bytes that HTTP does
    /// not allow in a header (newlines, control characters). The error does not repeat the
    /// secret.
    pub(crate) fn with_scheme(name: HeaderName, scheme: &str, secret: &str) -> Result<Self> {
        let mut text =
            zeroize::Zeroizing::new(String::with_capacity(scheme.len() + 1 + secret.len()));
        if !scheme.is_empty() {
            text.push_str(scheme);
            text.push(' ');
        }
        text.push_str(secret);
        let value = HeaderValue::from_bytes(text.as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidHeaderValue,
                format!(
                    "the {name} credential contains characters that cannot be sent in an HTTP \
                     header (newline or other control character); check how the token or \
                     password was read, e.g. strip a trailing newline"
                ),
            )
        })?;
        Ok(Self::new(name, value))
    }

    /// The header name, e.g. `authorization` or `x-rucio-auth-token`.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The header value. It is sensitive: do not log it.
    pub fn value(&self) -> &HeaderValue {
        &self.value
    }

    /// Splits into name and value, e.g. to insert into a `HeaderMap`.
    pub fn into_parts(self) -> (HeaderName, HeaderValue) {
        (self.name, self.value)
    }
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeader")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// What [`Credential::ready_header`] found without doing any work.
#[derive(Clone, Debug)]
pub enum Ready {
    /// This header is valid now: send it.
    Header(AuthHeader),
    /// This credential adds no header at all ([`Anonymous`](crate::Anonymous)).
    NoHeader,
    /// Nothing is ready (not computed yet, or due for renewal): call [`Credential::header`].
    NotReady,
}

/// What a credential did when told that the server rejected it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// The credential now holds a different header: sending the request again may succeed.
    Renewed,
    /// Nothing changed (a fixed password or token): sending again would fail the same way.
    Unchanged,
}

/// Something that authenticates an HTTP request by adding one header, or none.
///
/// This is the seam between "what proves who I am" and "how requests travel": the transport
/// (`sciauth-transport`) asks a credential for its header on every request and tells it when
/// the server rejected it; the token store (`sciauth-tokens`) implements it for tokens that
/// renew themselves.
///
/// The request path is built for speed. A transport first calls [`ready_header`], which must
/// not block, do I/O, sign or allocate; only when that answers [`Ready::NotReady`] does it
/// await [`header`], which may do all of those (sign a JWT, ask an ssh-agent, refresh a token).
///
/// [`ready_header`]: Credential::ready_header
/// [`header`]: Credential::header
///
/// # Example
///
/// ```
/// use sciauth_credentials::{BearerToken, Credential, Ready};
///
/// # async fn run() -> Result<(), sciauth_credentials::Error> {
/// let credential = BearerToken::new("eyJhbGciOi...")?;
/// let header = credential.header().await?.expect("a bearer token always has a header");
/// assert_eq!(header.name(), "authorization");
/// assert!(matches!(credential.ready_header(), Ready::Header(_)));
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Credential: fmt::Debug + Send + Sync {
    /// The header to add to a request, computing or renewing it if needed. `None` means the
    /// request goes out without authentication.
    async fn header(&self) -> Result<Option<AuthHeader>>;

    /// The header if it is ready right now, without blocking, I/O, signing or allocation.
    ///
    /// The default answers [`Ready::NotReady`], which is always correct but sends every
    /// request through [`header`](Credential::header).
    fn ready_header(&self) -> Ready {
        Ready::NotReady
    }

    /// Tells the credential that the server rejected a request that carried `sent` (for
    /// example HTTP 401). A credential that can renew itself (re-sign, refresh) does so and
    /// answers [`Renewal::Renewed`]; a fixed one answers [`Renewal::Unchanged`] (the default).
    ///
    /// `sent` lets a credential see that it has already been renewed since that request went
    /// out (many requests in flight can be rejected at once), and then renew only once.
    async fn rejected(&self, sent: Option<&AuthHeader>) -> Result<Renewal> {
        let _ = sent;
        Ok(Renewal::Unchanged)
    }
}

#[async_trait]
impl<C: Credential + ?Sized> Credential for Arc<C> {
    async fn header(&self) -> Result<Option<AuthHeader>> {
        (**self).header().await
    }
    fn ready_header(&self) -> Ready {
        (**self).ready_header()
    }
    async fn rejected(&self, sent: Option<&AuthHeader>) -> Result<Renewal> {
        (**self).rejected(sent).await
    }
}

#[async_trait]
impl<C: Credential + ?Sized> Credential for Box<C> {
    async fn header(&self) -> Result<Option<AuthHeader>> {
        (**self).header().await
    }
    fn ready_header(&self) -> Ready {
        (**self).ready_header()
    }
    async fn rejected(&self, sent: Option<&AuthHeader>) -> Result<Renewal> {
        (**self).rejected(sent).await
    }
}
