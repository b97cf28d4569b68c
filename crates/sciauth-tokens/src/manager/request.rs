//! [`TokenRequest`]: what a caller needs a token for.

use std::time::Duration;

use crate::token::Scopes;

/// The minimum time left a requested token must have unless set otherwise: enough for a
/// request to reach the server, with some clock skew.
pub const DEFAULT_MIN_VALID: Duration = Duration::from_secs(10);

/// What a token is needed for: whose (account), from where (issuer, client), for what
/// (scopes, audience), and for how long at least (DIRAC's `requiredTimeLeft`).
///
/// ```
/// use std::time::Duration;
/// use sciauth_tokens::TokenRequest;
/// let request = TokenRequest::new("alice")
///     .scopes(["storage.read:/data", "openid"])
///     .audience("https://se.example.org")
///     .min_valid(Duration::from_secs(3600));
/// assert_eq!(request.account(), "alice");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    account: String,
    issuer: Option<String>,
    client_id: Option<String>,
    scopes: Scopes,
    audience: Option<String>,
    min_valid: Duration,
}

impl TokenRequest {
    /// A request for `account`'s token (a profile, a user, or a service's own name).
    pub fn new(account: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            issuer: None,
            client_id: None,
            scopes: Scopes::new(),
            audience: None,
            min_valid: DEFAULT_MIN_VALID,
        }
    }

    /// Which issuer's client to use. By default, the manager's first client (or the first
    /// with the given client id).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Which client to use. By default, the manager's first client (or the first at the
    /// given issuer).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Scopes the token must have (added to those already set). By default none: any token
    /// of the grant for the audience will do, and a refresh asks for all the grant's scopes.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes);
        self
    }

    /// The audience (or RFC 8707 resource) the token is for, sent as the client's
    /// [`AudienceParameter`](crate::AudienceParameter). By default none, which is a
    /// different token from any audience's.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The least time the token must stay valid (DIRAC's `requiredTimeLeft`). By default,
    /// [`DEFAULT_MIN_VALID`] (10 s).
    pub fn min_valid(mut self, min_valid: Duration) -> Self {
        self.min_valid = min_valid;
        self
    }

    /// The account.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The issuer named, if any.
    pub fn requested_issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The client id named, if any.
    pub fn requested_client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The scopes asked for.
    pub fn requested_scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// The audience asked for.
    pub fn requested_audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The minimum time left.
    pub fn required_time_left(&self) -> Duration {
        self.min_valid
    }
}
