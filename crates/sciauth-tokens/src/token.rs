//! The [`Token`] every grant returns, and the [`Scopes`] it was granted.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use sciauth_credentials::BearerToken;

use crate::error::{Error, ErrorKind, Result};

/// A set of OAuth 2.0 scopes, kept sorted so that equal sets print (and key) equally.
///
/// ```
/// use sciauth_tokens::Scopes;
/// let granted: Scopes = "openid profile  offline_access".parse().unwrap();
/// assert_eq!(granted.to_string(), "offline_access openid profile");
/// assert!(granted.contains_all(&Scopes::from_iter(["openid"])));
/// ```
///
/// # Path scopes
///
/// [`contains`](Self::contains) and [`contains_all`](Self::contains_all) compare scopes as
/// strings. [`grants`](Self::grants), [`grants_all`](Self::grants_all) and
/// [`missing`](Self::missing) follow the WLCG JWT profile (and SciTokens) for path scopes:
/// `storage.read:/` grants `storage.read:/sub/dir`, `storage.read:/data` grants
/// `storage.read:/data/run1` but neither `storage.read:/database` nor `storage.read:/`. The
/// path scopes are those of `storage.read`, `storage.create`, `storage.modify`,
/// `storage.stage`, `read` and `write` with a path starting with `/`; a path with `.` or `..`
/// segments, `//`, `%`, `\`, `?`, `#` or control characters grants and is granted only
/// itself. Every other scope grants only itself.
///
/// ```
/// use sciauth_tokens::Scopes;
/// let grant: Scopes = "openid storage.read:/ storage.create:/home/alice".parse().unwrap();
/// assert!(grant.grants("storage.read:/data/run1"));
/// assert!(!grant.contains("storage.read:/data/run1"));
/// let wanted: Scopes = "storage.create:/home storage.read:/data".parse().unwrap();
/// assert_eq!(grant.missing(&wanted).to_string(), "storage.create:/home");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// No scopes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Splits a space-separated `scope` value (RFC 6749 3.3).
    pub fn parse(scope: &str) -> Self {
        Self(scope.split_ascii_whitespace().map(str::to_owned).collect())
    }

    /// Whether every scope in `other` is in this set.
    pub fn contains_all(&self, other: &Scopes) -> bool {
        other.0.is_subset(&self.0)
    }

    /// Whether `scope` is in this set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether a token with these scopes may do what `scope` allows: `scope` is in the set,
    /// or it is a path scope below one in the set ([path scopes](Self#path-scopes)).
    pub fn grants(&self, scope: &str) -> bool {
        self.0.contains(scope) || self.0.iter().any(|held| crate::wlcg::grants(held, scope))
    }

    /// Whether these scopes grant every scope in `requested` ([`grants`](Self::grants)).
    pub fn grants_all(&self, requested: &Scopes) -> bool {
        requested.iter().all(|scope| self.grants(scope))
    }

    /// The scopes of `requested` these scopes do not grant ([`grants`](Self::grants)).
    pub fn missing(&self, requested: &Scopes) -> Scopes {
        Self(
            requested
                .0
                .iter()
                .filter(|scope| !self.grants(scope))
                .cloned()
                .collect(),
        )
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: impl Into<String>) {
        self.0.insert(scope.into());
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scopes {
    /// The space-separated form a `scope` parameter carries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.0).finish()
    }
}

impl FromStr for Scopes {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

impl<S: Into<String>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(Into::into)
                .flat_map(|s: String| {
                    s.split_ascii_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect(),
        )
    }
}

impl<S: Into<String>> Extend<S> for Scopes {
    fn extend<I: IntoIterator<Item = S>>(&mut self, iter: I) {
        self.0.extend(Scopes::from_iter(iter).0);
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a String;
    type IntoIter = std::collections::btree_set::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// RFC 8693 token type URIs, for token exchange's `subject_token_type`,
/// `requested_token_type` and `issued_token_type`.
pub mod token_type {
    /// `urn:ietf:params:oauth:token-type:access_token`
    pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
    /// `urn:ietf:params:oauth:token-type:refresh_token`
    pub const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
    /// `urn:ietf:params:oauth:token-type:id_token`
    pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
    /// `urn:ietf:params:oauth:token-type:jwt`
    pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
}

/// What a grant returned: an access token and what is known about it.
///
/// Every grant of [`OAuthClient`](crate::OAuthClient) returns one. The expiry is absolute
/// ([`expires_at`](Token::expires_at)), computed when the response arrived from its
/// `expires_in` and the client's [`Clock`](sciauth_credentials::Clock), so a stored token can
/// be judged later without knowing when it was received.
///
/// # Storage format
///
/// `Token` serializes (serde) to a versioned, human-readable JSON object, the shape token
/// stores keep on disk:
///
/// ```json
/// {
///   "version": 1,
///   "issuer": "https://idp.example.org",
///   "client_id": "my-app",
///   "token_type": "Bearer",
///   "access_token": "eyJ...",
///   "refresh_token": "...",
///   "id_token": "eyJ...",
///   "issued_at": 1700000000,
///   "expires_at": 1700003600,
///   "scopes": ["offline_access", "openid"],
///   "audience": "https://api.example.org",
///   "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
///   "extra": {}
/// }
/// ```
///
/// Times are whole seconds since the Unix epoch. Absent values are left out. A `version`
/// other than 1 is refused with a clear error rather than misread. Serializing writes the
/// secrets in clear: it is for token stores, which protect the file.
///
/// # Secrets
///
/// Access, refresh and ID tokens are [`SecretString`]s, and `Debug` prints them as
/// `[redacted]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "TokenRepr", into = "TokenRepr")]
pub struct Token {
    // Shared: a clone is a reference count, so a token manager hands out its cached tokens
    // without copying a string (`TokenManager::get` allocates nothing on a hit).
    parts: Arc<TokenParts>,
}

/// What a [`Token`] holds; changed through [`Token::parts_mut`] (copy on write).
#[derive(Clone)]
pub(crate) struct TokenParts {
    pub(crate) access_token: SecretString,
    pub(crate) token_type: String,
    pub(crate) refresh_token: Option<SecretString>,
    pub(crate) id_token: Option<SecretString>,
    pub(crate) issued_at: SystemTime,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) scopes: Scopes,
    pub(crate) audience: Option<String>,
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) issued_token_type: Option<String>,
    pub(crate) extra: Map<String, Value>,
}

impl From<TokenParts> for Token {
    fn from(parts: TokenParts) -> Self {
        Self {
            parts: Arc::new(parts),
        }
    }
}

impl Token {
    pub(crate) fn parts(&self) -> &TokenParts {
        &self.parts
    }

    /// The parts to change, copied first if another clone shares them.
    pub(crate) fn parts_mut(&mut self) -> &mut TokenParts {
        Arc::make_mut(&mut self.parts)
    }

    /// The access token. It is a secret: do not log it.
    pub fn access_token(&self) -> &SecretString {
        &self.parts.access_token
    }

    /// The `token_type`, normally `Bearer`.
    pub fn token_type(&self) -> &str {
        &self.parts.token_type
    }

    /// The refresh token, if the provider issued one (or one was kept from before a refresh
    /// whose answer carried none).
    pub fn refresh_token(&self) -> Option<&SecretString> {
        self.parts.refresh_token.as_ref()
    }

    /// The ID token, if the provider issued one. When it came from a code or device login it
    /// was validated (signature, issuer, audience, expiry, nonce) before this token was
    /// returned.
    pub fn id_token(&self) -> Option<&SecretString> {
        self.parts.id_token.as_ref()
    }

    /// When the refresh token expires, if known: from the response's `refresh_expires_in`
    /// (Keycloak; `0` means an offline token that does not expire) or the `exp` of a JWT
    /// refresh token. `None` without a refresh token or when nothing says.
    pub fn refresh_expires_at(&self) -> Option<SystemTime> {
        crate::store::refresh_token_expiry(self)
    }

    /// When the response arrived, by the client's clock.
    pub fn issued_at(&self) -> SystemTime {
        self.parts.issued_at
    }

    /// When the access token expires: receipt time plus `expires_in`. `None` when the
    /// provider did not say (`expires_in` is optional in RFC 6749).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.parts.expires_at
    }

    /// The lifetime the provider gave the access token (`expires_in`), if it said.
    pub fn lifetime(&self) -> Option<Duration> {
        self.parts
            .expires_at
            .map(|at| at.duration_since(self.parts.issued_at).unwrap_or_default())
    }

    /// How long the access token stays valid after `now`: zero once expired, `None` if the
    /// expiry is unknown.
    pub fn expires_in(&self, now: SystemTime) -> Option<Duration> {
        self.parts
            .expires_at
            .map(|at| at.duration_since(now).unwrap_or_default())
    }

    /// Whether the access token is expired at `now`, or expires within `leeway` of it. A token
    /// whose expiry is unknown is never judged expired here (the resource server will say).
    pub fn is_expired_at(&self, now: SystemTime, leeway: Duration) -> bool {
        self.parts
            .expires_at
            .is_some_and(|at| sciauth_credentials::time::later(now, leeway) >= at)
    }

    /// The scopes granted: the response's `scope`, or, when the response left it out, the
    /// scopes requested (RFC 6749 5.1: then they were granted as asked).
    pub fn scopes(&self) -> &Scopes {
        &self.parts.scopes
    }

    /// Whether the token was granted every scope in `requested`.
    pub fn covers_scopes(&self, requested: &Scopes) -> bool {
        self.parts.scopes.contains_all(requested)
    }

    /// The audience (or RFC 8707 resource) the token was requested for, if any.
    pub fn audience(&self) -> Option<&str> {
        self.parts.audience.as_deref()
    }

    /// The issuer that issued the token.
    pub fn issuer(&self) -> &str {
        &self.parts.issuer
    }

    /// The client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.parts.client_id
    }

    /// RFC 8693's `issued_token_type`, for tokens from a token exchange.
    pub fn issued_token_type(&self) -> Option<&str> {
        self.parts.issued_token_type.as_deref()
    }

    /// Response fields this crate does not model, as the provider sent them (for example
    /// `refresh_expires_in` from Keycloak). Never holds the secrets above.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.parts.extra
    }

    /// A credential sending `Authorization: Bearer <access token>`, for a transport.
    ///
    /// It never renews; for a token that refreshes itself use the token manager.
    pub fn bearer_credential(&self) -> Result<BearerToken> {
        BearerToken::new(self.parts.access_token.expose_secret()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidResponse,
                "the access token cannot be sent in an HTTP header",
            )
            .with_source(e)
        })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { "[redacted]" } else { "none" };
        f.debug_struct("Token")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &redacted(self.parts.refresh_token.is_some()),
            )
            .field("id_token", &redacted(self.parts.id_token.is_some()))
            .field("token_type", &self.parts.token_type)
            .field("issued_at", &unix(self.parts.issued_at))
            .field("expires_at", &self.parts.expires_at.map(unix))
            .field("scopes", &self.parts.scopes)
            .field("audience", &self.parts.audience)
            .field("issuer", &self.parts.issuer)
            .field("client_id", &self.parts.client_id)
            .field("issued_token_type", &self.parts.issued_token_type)
            .field("extra", &RedactedValues(&self.parts.extra))
            .finish()
    }
}

/// A map's keys with every value shown as `[redacted]`: providers put other tokens in the
/// fields this crate does not model (`upstream_token`, `refresh_token_2`, ...), so no value
/// of `extra` is shown, whatever its name.
struct RedactedValues<'a>(&'a Map<String, Value>);

impl fmt::Debug for RedactedValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|key| (key, "[redacted]")))
            .finish()
    }
}

use sciauth_credentials::time::unix_seconds as unix;

/// The on-disk shape of [`Token`], version 1.
#[derive(Serialize, Deserialize)]
struct TokenRepr {
    version: u32,
    issuer: String,
    client_id: String,
    token_type: String,
    #[serde(with = "sciauth_credentials::secret_serde")]
    access_token: SecretString,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "sciauth_credentials::secret_serde::optional"
    )]
    refresh_token: Option<SecretString>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "sciauth_credentials::secret_serde::optional"
    )]
    id_token: Option<SecretString>,
    issued_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    #[serde(default)]
    scopes: Scopes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    extra: Map<String, Value>,
}

const FORMAT_VERSION: u32 = 1;

impl From<Token> for TokenRepr {
    fn from(token: Token) -> Self {
        let token = Arc::unwrap_or_clone(token.parts);
        Self {
            version: FORMAT_VERSION,
            issuer: token.issuer,
            client_id: token.client_id,
            token_type: token.token_type,
            access_token: token.access_token,
            refresh_token: token.refresh_token,
            id_token: token.id_token,
            issued_at: unix(token.issued_at),
            expires_at: token.expires_at.map(unix),
            scopes: token.scopes,
            audience: token.audience,
            issued_token_type: token.issued_token_type,
            extra: token.extra,
        }
    }
}

impl TryFrom<TokenRepr> for Token {
    type Error = String;
    fn try_from(repr: TokenRepr) -> std::result::Result<Self, String> {
        if repr.version != FORMAT_VERSION {
            return Err(format!(
                "token format version {} is not supported (this sciauth reads version \
                 {FORMAT_VERSION}); it was probably written by a newer sciauth",
                repr.version
            ));
        }
        let at = sciauth_credentials::time::from_unix;
        Ok(Self::from(TokenParts {
            access_token: repr.access_token,
            token_type: repr.token_type,
            refresh_token: repr.refresh_token,
            id_token: repr.id_token,
            issued_at: at(repr.issued_at),
            expires_at: repr.expires_at.map(at),
            scopes: repr.scopes,
            audience: repr.audience,
            issuer: repr.issuer,
            client_id: repr.client_id,
            issued_token_type: repr.issued_token_type,
            extra: repr.extra,
        }))
    }
}
