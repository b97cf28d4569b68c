//! The one error type of this crate, and the OAuth 2.0 error codes servers answer with.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};

use sciauth_credentials::text::printable;
use sciauth_credentials::{Class, Diagnose, Diagnosis};
use sciauth_transport::StatusCode;
use url::Url;

use crate::mask::Secrets;
use crate::validate;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An OAuth 2.0 error code, as an authorization server sends it in the `error` field
/// (RFC 6749 5.2, RFC 8628 3.5, RFC 8693 2.2.2, RFC 8707 2, RFC 7009 2.2.1).
///
/// ```
/// use sciauth_tokens::OAuthErrorCode;
/// assert_eq!(OAuthErrorCode::parse("invalid_grant"), OAuthErrorCode::InvalidGrant);
/// assert_eq!(OAuthErrorCode::parse("consent_required").as_str(), "consent_required");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`: a parameter is missing, repeated or malformed.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (unknown client, wrong secret, bad
    /// assertion).
    InvalidClient,
    /// `invalid_grant`: the code, refresh token or device code is invalid, expired, revoked,
    /// already used, or was issued to another client; also a wrong PKCE verifier.
    InvalidGrant,
    /// `unauthorized_client`: this client may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`: the server does not know this grant.
    UnsupportedGrantType,
    /// `invalid_scope`: a requested scope is unknown, malformed or beyond what was granted.
    InvalidScope,
    /// `invalid_target`: the requested audience or resource is unknown or not allowed
    /// (RFC 8707, RFC 8693).
    InvalidTarget,
    /// `access_denied`: the user (or the server) refused.
    AccessDenied,
    /// `unsupported_response_type` at the authorization endpoint.
    UnsupportedResponseType,
    /// `server_error` at the authorization endpoint.
    ServerError,
    /// `temporarily_unavailable` at the authorization endpoint.
    TemporarilyUnavailable,
    /// `authorization_pending`: the device flow's user has not finished yet (RFC 8628).
    AuthorizationPending,
    /// `slow_down`: poll the device flow less often (RFC 8628).
    SlowDown,
    /// `expired_token`: the device code expired before the user finished (RFC 8628).
    ExpiredToken,
    /// `unsupported_token_type`: revocation or introspection of this kind of token is not
    /// supported (RFC 7009).
    UnsupportedTokenType,
    /// `invalid_token`: a protected resource (or userinfo) refused the token (RFC 6750).
    InvalidToken,
    /// Any other code, as the server spelled it.
    Other(String),
}

impl OAuthErrorCode {
    /// The code for the `error` value `code`.
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "invalid_target" => Self::InvalidTarget,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "authorization_pending" => Self::AuthorizationPending,
            "slow_down" => Self::SlowDown,
            "expired_token" => Self::ExpiredToken,
            "unsupported_token_type" => Self::UnsupportedTokenType,
            "invalid_token" => Self::InvalidToken,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code a server sent, with `secrets` masked and anything outside RFC 6749's
    /// characters for codes (printable ASCII but `"` and `\\`) escaped, at most 100 characters.
    pub(crate) fn parse_untrusted(code: &str, secrets: &Secrets) -> Self {
        let well_formed = !code.is_empty()
            && code.len() <= 100
            && code
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\');
        if well_formed && secrets.mask(code) == code {
            Self::parse(code)
        } else {
            // Masked again once escaped: `\r` + `t-...` shows as `\rt-...`.
            Self::Other(secrets.mask(&printable(&secrets.mask(code), 100)))
        }
    }

    /// The code as the server sends it, e.g. `invalid_grant`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidToken => "invalid_token",
            Self::Other(code) => code,
        }
    }

    /// A hint for the user, for the codes where one helps.
    fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Self::InvalidClient => "check the client id and its secret or key",
            Self::InvalidGrant => {
                "the code or refresh token is no longer valid (expired, revoked, already used, or \
                 rotated by another process); log in again"
            }
            Self::InvalidScope => "ask only for scopes this client may have",
            Self::InvalidTarget => "ask only for an audience or resource the provider knows",
            Self::UnauthorizedClient | Self::UnsupportedGrantType => {
                "this client is not registered for this grant at the provider"
            }
            Self::ExpiredToken => "the login took too long; start it again",
            _ => return None,
        })
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error an authorization server answered with: RFC 6749 5.2's `error`,
/// `error_description` and `error_uri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    code: OAuthErrorCode,
    description: Option<String>,
    uri: Option<String>,
}

impl OAuthError {
    /// An error with this code and optional description.
    pub fn new(code: OAuthErrorCode, description: Option<String>) -> Self {
        Self {
            code,
            description: description.map(|d| sanitize(&d)),
            uri: None,
        }
    }

    /// Parses an error body; `None` if it is not a JSON object with a string `error`. The
    /// server's words have `secrets` (what the request sent) masked and control characters
    /// escaped before they are kept.
    pub(crate) fn from_body(body: &[u8], secrets: &Secrets) -> Option<Self> {
        let mut map = validate::object(body).ok()?;
        let code = validate::string(&mut map, "error").ok()?;
        let text = |name: &str, map: &mut serde_json::Map<String, serde_json::Value>| {
            // A description of the wrong type is dropped, not fatal: the code is what counts.
            validate::optional_string(map, name)
                .ok()
                .flatten()
                .map(|text| secrets.mask(&sanitize(&secrets.mask(&text))))
        };
        let description = text("error_description", &mut map);
        let uri = text("error_uri", &mut map);
        Some(Self {
            code: OAuthErrorCode::parse_untrusted(&code, secrets),
            description,
            uri,
        })
    }

    /// The `error` code.
    pub fn code(&self) -> &OAuthErrorCode {
        &self.code
    }

    /// The `error_description`, if the server sent one (control characters removed, cut to
    /// a sensible length).
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The `error_uri`, if the server sent one.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())?;
        if let Some(description) = &self.description {
            write!(f, " ({description})")?;
        }
        if let Some(uri) = &self.uri {
            write!(f, ", see {uri}")?;
        }
        Ok(())
    }
}

/// Server text goes into messages and terminals: control characters escaped (a newline could
/// forge a log line, an escape sequence rewrite the terminal), and no more than a screenful.
fn sanitize(text: &str) -> String {
    printable(text, validate::MAX_SHOWN_TEXT)
}

/// What went wrong, for callers that react differently to different failures.
///
/// The [`Display`](fmt::Display) of [`Error`] carries the details (which endpoint, which
/// status, what the server said) and a hint; match on the kind, print the error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The authorization server refused with an OAuth 2.0 error: at the token endpoint, the
    /// device authorization, revocation or introspection endpoint, or in the redirect back
    /// from the authorization endpoint. [`Error::oauth_error`] has the description.
    OAuth(OAuthErrorCode),
    /// The server answered with an unexpected HTTP status and no OAuth error body (an empty
    /// body, an HTML page, a redirect). [`Error::status`] and [`Error::endpoint`] say which.
    HttpStatus,
    /// The request did not get an answer: connection refused, DNS, TLS, timeout. The
    /// transport's error is the [`source`](StdError::source).
    Transport,
    /// The server answered 2xx with something that is not what the protocol says (not JSON,
    /// a required field missing).
    InvalidResponse,
    /// OIDC discovery failed, or the discovered metadata is unusable (for example its
    /// `issuer` differs from the configured issuer).
    Discovery,
    /// The provider's metadata has no endpoint for what was asked (no device authorization
    /// endpoint, no revocation endpoint, ...).
    MissingEndpoint,
    /// The `state` in the redirect back to this program is not the one sent: the response
    /// belongs to another login, or was forged.
    StateMismatch,
    /// The `iss` parameter in the redirect back names another issuer (RFC 9207 mix-up
    /// defence).
    IssuerMismatch,
    /// An ID token failed validation (signature, issuer, audience, expiry, nonce, algorithm).
    InvalidIdToken,
    /// A JWT access token presented to a resource server failed validation (signature,
    /// issuer, audience, expiry, algorithm), or is not a JWT.
    InvalidAccessToken,
    /// No key in the provider's JWKS matches the token's `kid`, even after fetching it again.
    UnknownSigningKey,
    /// The user did not finish the login in time (code flow or device flow).
    Timeout,
    /// The token has no refresh token, so it cannot be refreshed.
    NoRefreshToken,
    /// A value given to this crate cannot be used (a malformed URL, an unreadable key, ...).
    InvalidInput,
    /// Local I/O failed: binding the loopback server, reading the pasted code.
    Io,
    /// The token store holds nothing for this account at this issuer and client, and no
    /// grant the configuration allows can get a token without the user: log in.
    NoSavedTokens,
    /// The stored tokens have expired (or expire sooner than asked) and cannot be refreshed:
    /// there is no refresh token, it has expired, or the provider no longer accepts it
    /// (`invalid_grant`, then [`Error::oauth_code`] says so). Log in again.
    TokensExpired,
    /// The request asks for scopes (or an audience) the stored grant does not have. Log in
    /// again asking for them.
    ScopesMismatch,
    /// The token store failed; [`StoreErrorKind`] says how, [`Error::path`] names the file.
    Store(StoreErrorKind),
}

/// How a token store failed, in [`ErrorKind::Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// Reading, writing or locking failed (permissions, a full disk, a missing directory).
    Io,
    /// The stored data cannot be read back: not the store's format, cut short, or written by
    /// a newer sciauth. It is left as it is, never overwritten; move it away or fix it.
    Corrupt,
    /// The backend (a database, the kernel keyring) refused or failed.
    Backend,
    /// The passphrase (or a cached key) does not open the encrypted store's key file.
    WrongPassphrase,
    /// An encrypted store file does not open with the store's key: it was changed, moved
    /// from another account's file, or sealed with another key. It is left as it is.
    Tampered,
    /// A plain file in an encrypted store, an encrypted file in a plain store, or an
    /// encrypted store without its key file; the message says what to run.
    EncryptionMismatch,
}

/// An error from discovering an issuer or running a grant.
///
/// The message says what failed and what to do about it. It never contains a secret: no
/// client secret, token, code, code verifier or key material is formatted into an error, and
/// server descriptions are stripped of control characters.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    endpoint: Option<Url>,
    status: Option<u16>,
    oauth: Option<OAuthError>,
    path: Option<PathBuf>,
    source: Option<Box<dyn StdError + Send + Sync>>,
    /// The judgement of a sciauth error underneath (the transport's, for
    /// [`ErrorKind::Transport`]), made by its own crate.
    cause: Option<Diagnosis>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                endpoint: None,
                status: None,
                oauth: None,
                path: None,
                source: None,
                cause: None,
            }),
        }
    }

    /// An [`ErrorKind::Store`] error, for token store backends (including ones outside this
    /// crate, such as a PostgreSQL store). `message` says what failed and must not hold a
    /// secret; add the cause with [`with_source`](Self::with_source).
    pub fn store(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Store(kind), message)
    }

    /// An [`ErrorKind::InvalidInput`] error, for callers that make an input this crate
    /// needs when it needs it (a client secret or key read from a file when the first grant
    /// runs, see [`ClientConfig::lazy`](crate::ClientConfig::lazy)) and must report its
    /// failure through this crate. `message` says what is wrong and what to do, and must not
    /// hold a secret.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// The same error with the file it is about, which [`Display`](fmt::Display) names first.
    pub fn with_path(mut self, path: &Path) -> Self {
        self.inner.path = Some(path.to_owned());
        self
    }

    /// The same error with another kind, keeping message, OAuth error and source (the token
    /// manager turns a refresh's `invalid_grant` into [`ErrorKind::TokensExpired`]).
    pub(crate) fn with_kind(mut self, kind: ErrorKind, message: impl Into<String>) -> Self {
        self.inner.kind = kind;
        self.inner.message = message.into();
        self
    }

    /// An OAuth error answer from `what` (e.g. "the token endpoint").
    pub(crate) fn oauth(what: &str, error: OAuthError) -> Self {
        let mut message = format!("{what} refused: {error}");
        if let Some(hint) = error.code.hint() {
            message.push_str("; ");
            message.push_str(hint);
        }
        let mut e = Self::new(ErrorKind::OAuth(error.code.clone()), message);
        e.inner.oauth = Some(error);
        e
    }

    pub(crate) fn with_endpoint(mut self, endpoint: &Url) -> Self {
        let mut endpoint = endpoint.clone();
        // A URL never carries a secret into an error: drop any user info, query and fragment.
        let _ = endpoint.set_password(None);
        let _ = endpoint.set_username("");
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        self.inner.endpoint = Some(endpoint);
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// The same error with its underlying cause, reachable through
    /// [`source`](StdError::source).
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// The same error with a cause from sciauth (a transport error, or this crate's own),
    /// whose judgement [`Diagnose`] passes on for [`ErrorKind::Transport`].
    pub(crate) fn with_judged_source(
        mut self,
        source: impl StdError + Diagnose + Send + Sync + 'static,
    ) -> Self {
        self.inner.cause = Some(source.diagnosis());
        self.with_source(source)
    }

    /// The judgement of the cause, as [`with_judged_source`](Self::with_judged_source) kept
    /// it (for an error made again from a remembered one, as the backoff does).
    pub(crate) fn cause_diagnosis(&self) -> Option<Diagnosis> {
        self.inner.cause
    }

    pub(crate) fn with_cause_diagnosis(mut self, cause: Option<Diagnosis>) -> Self {
        self.inner.cause = cause;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The OAuth error code, when the server refused with one.
    pub fn oauth_code(&self) -> Option<&OAuthErrorCode> {
        self.inner.oauth.as_ref().map(OAuthError::code)
    }

    /// The server's OAuth error (code, description, URI), when it refused with one.
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        self.inner.oauth.as_ref()
    }

    /// The endpoint the failed request went to (without query or user info).
    pub fn endpoint(&self) -> Option<&Url> {
        self.inner.endpoint.as_ref()
    }

    /// The HTTP status of this failed answer (not of a cause), if there was one.
    pub(crate) fn own_status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The file the error is about (a token store's file), if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Whether retrying the same request later may succeed: a transport failure, a 5xx or
    /// 429 answer, or `temporarily_unavailable` / `server_error`.
    pub fn is_transient(&self) -> bool {
        match &self.inner.kind {
            ErrorKind::Transport => true,
            ErrorKind::HttpStatus => self.inner.status.is_some_and(|s| s >= 500 || s == 429),
            ErrorKind::OAuth(OAuthErrorCode::TemporarilyUnavailable)
            | ErrorKind::OAuth(OAuthErrorCode::ServerError) => true,
            _ => false,
        }
    }
}

/// [`needs_login`](Error::needs_login) is what fair-research-login calls `LoadError`: nothing
/// is stored ([`ErrorKind::NoSavedTokens`]), the stored tokens expired for good
/// ([`ErrorKind::TokensExpired`]), or they lack the scopes or audience asked for
/// ([`ErrorKind::ScopesMismatch`]). [`is_refused`](Error::is_refused): the provider answered
/// with an OAuth error or an unexpected status.
impl Diagnose for Error {
    fn diagnosis(&self) -> Diagnosis {
        let status = self.inner.status.and_then(|s| StatusCode::from_u16(s).ok());
        let class = match &self.inner.kind {
            ErrorKind::NoSavedTokens | ErrorKind::TokensExpired | ErrorKind::ScopesMismatch => {
                Class::NeedsLogin
            }
            ErrorKind::OAuth(_) | ErrorKind::HttpStatus => Class::Refused,
            ErrorKind::Transport => {
                // The transport's own error says whether it was the network; a remembered
                // failure without it was one.
                let cause = self.inner.cause.unwrap_or(Diagnosis::new(Class::Network));
                return cause.with_status(status.or(cause.status()));
            }
            ErrorKind::Discovery
            | ErrorKind::MissingEndpoint
            | ErrorKind::InvalidInput
            | ErrorKind::Store(
                StoreErrorKind::Corrupt
                | StoreErrorKind::WrongPassphrase
                | StoreErrorKind::Tampered
                | StoreErrorKind::EncryptionMismatch,
            ) => Class::BadInput,
            _ => Class::Other,
        };
        Diagnosis::new(class).with_status(status)
    }
}

sciauth_credentials::diagnosis_predicates!(Error);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.inner.path {
            write!(f, "{}: ", path.display())?;
        }
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(endpoint) = &self.inner.endpoint {
            d.field("endpoint", &endpoint.as_str());
        }
        if let Some(status) = self.inner.status {
            d.field("status", &status);
        }
        if let Some(path) = &self.inner.path {
            d.field("path", path);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}
