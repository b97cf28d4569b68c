//! The requests and answers of the sciauth token service, as serde types: the server
//! (`sciauth-server`) and [`TokenServiceClient`](crate::TokenServiceClient) both use them.
//!
//! Every method is `POST /v1/<method>` with a JSON body (the request type below) and answers
//! 200 with the answer type, or 4xx/5xx with an [`ErrorBody`] whose code is an
//! [`ErrorCode`]. Field names follow DIRAC's `TokenManager` parameters (`userID`,
//! `identityProvider`, `requiredTimeLeft`, `rt_expired_in`).
//!
//! [The crate docs](crate) list the methods with their request and answer types.
//!
//! Only `getToken` answers with a secret (the access token); the info calls never do.

use std::fmt;
use std::time::SystemTime;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use sciauth_credentials::time::unix_seconds;
use sciauth_tokens::{Scopes, Token};

use crate::code::ErrorCode;

/// The path prefix of every method: `POST {base}/v1/<method>`.
pub const API_PREFIX: &str = "/v1";

/// The header that picks which of the caller's groups (and so which properties) a request
/// acts as; without it, the caller's first group.
pub const GROUP_HEADER: &str = "x-sciauth-group";

/// `getToken`: an access token for a user (from the refresh token the service keeps for
/// them) or, without `username`, for a group (client credentials).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetTokenRequest {
    /// The user whose token is wanted; `None` for the group's own (client credentials) token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The group whose scopes (DIRAC's `IdPRole`) and VO (and so provider) apply. By
    /// default the user's first group, or for a group token the caller's group.
    #[serde(default, alias = "userGroup", skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Scopes wanted in addition to the group's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    /// The audience (or resource) the token is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The provider by name; by default the group's, else its VO's.
    #[serde(
        default,
        rename = "identityProvider",
        skip_serializing_if = "Option::is_none"
    )]
    pub identity_provider: Option<String>,
    /// The least time (seconds) the token must stay valid. Default 0 (the service still
    /// hands out nothing that expires within a few seconds).
    #[serde(default, rename = "requiredTimeLeft")]
    pub required_time_left: u64,
}

/// An access token handed out by `getToken`. `Debug` hides the token.
#[derive(Clone, Serialize, Deserialize)]
pub struct ServiceToken {
    /// The access token: a secret.
    #[serde(with = "sciauth_credentials::secret_serde")]
    pub access_token: SecretString,
    /// Normally `Bearer`.
    pub token_type: String,
    /// Seconds it stays valid after the answer was made (judge it by your own clock from
    /// receipt); `None` when the provider did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// When it expires, in Unix seconds by the service's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Its scopes, space-separated.
    #[serde(default)]
    pub scope: String,
    /// The audience it was requested for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The provider's name in the service's configuration.
    pub provider: String,
    /// The provider's issuer.
    pub issuer: String,
}

impl ServiceToken {
    /// The answer for `token` from `provider`, made at `now`.
    pub fn from_token(token: &Token, provider: &str, now: SystemTime) -> Self {
        Self {
            access_token: token.access_token().clone(),
            token_type: token.token_type().to_owned(),
            expires_in: token.expires_in(now).map(|d| d.as_secs()),
            expires_at: token.expires_at().map(unix_seconds),
            scope: token.scopes().to_string(),
            audience: token.audience().map(str::to_owned),
            provider: provider.to_owned(),
            issuer: token.issuer().to_owned(),
        }
    }

    /// Its scopes.
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope)
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceToken")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("provider", &self.provider)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// A token response as a provider's token endpoint returned it (`access_token`,
/// `token_type`, `expires_in` or `expires_at`, `refresh_token`, `id_token`, `scope`, ...),
/// handed to `updateToken`. `Debug` prints only the field names.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DelegatedToken(pub Map<String, Value>);

impl DelegatedToken {
    /// The response fields of `token`, with `expires_in` counted from `now`.
    pub fn from_token(token: &Token, now: SystemTime) -> Self {
        let mut fields = Map::new();
        let secret = |s: &SecretString| Value::from(s.expose_secret());
        fields.insert("access_token".into(), secret(token.access_token()));
        fields.insert("token_type".into(), token.token_type().into());
        if let Some(refresh) = token.refresh_token() {
            fields.insert("refresh_token".into(), secret(refresh));
        }
        if let Some(id) = token.id_token() {
            fields.insert("id_token".into(), secret(id));
        }
        if let Some(left) = token.expires_in(now) {
            fields.insert("expires_in".into(), left.as_secs().into());
        }
        if !token.scopes().is_empty() {
            fields.insert("scope".into(), token.scopes().to_string().into());
        }
        if let Some(at) = token.refresh_expires_at() {
            let left = at.duration_since(now).unwrap_or_default();
            fields.insert("refresh_expires_in".into(), left.as_secs().max(1).into());
        }
        Self(fields)
    }
}

impl fmt::Debug for DelegatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DelegatedToken")
            .field(&self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `updateToken`: keep a user's token (one per user per provider), replacing and revoking
/// the one kept before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTokenRequest {
    /// The token response, with a refresh token.
    pub token: DelegatedToken,
    /// The user's ID at the provider (DIRAC's `userID`), as the service's configuration
    /// lists it for the user.
    #[serde(rename = "userID")]
    pub user_id: String,
    /// The provider's name.
    pub provider: String,
    /// The refresh token's lifetime (seconds) when neither the response
    /// (`refresh_expires_in`) nor the refresh token (a JWT's `exp`) says. Default: unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rt_expired_in: Option<u64>,
}

/// `deleteToken`: forget a user's tokens (at one provider, or at all).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteTokenRequest {
    /// The user's ID at the provider, or the user's name.
    #[serde(rename = "userID")]
    pub user_id: String,
    /// Only this provider's token; by default every provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// What `deleteToken` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteTokenResponse {
    /// How many stored grants were deleted.
    pub deleted: u32,
}

/// `getTokensByUserID`: one user, by ID at a provider (or by name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserIdRequest {
    /// The user's ID at a provider, or the user's name.
    #[serde(rename = "userID")]
    pub user_id: String,
}

/// `getUsersTokensInfo`: several users, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersRequest {
    /// The users' names.
    pub users: Vec<String>,
}

/// What the service keeps for one user (or group) at one provider, without any secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokenInfo {
    /// The user's name, for a user's grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The group's name, for a group's (client credentials) grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The user's ID at the provider, when configured.
    #[serde(rename = "userID", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The provider's name.
    pub provider: String,
    /// The provider's issuer.
    pub issuer: String,
    /// The client the tokens were issued to.
    pub client_id: String,
    /// The grant's scopes.
    pub scopes: Scopes,
    /// Whether a refresh token is kept.
    pub has_refresh_token: bool,
    /// When the refresh token expires (Unix seconds), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_at: Option<u64>,
    /// When the grant was last written (Unix seconds).
    pub updated_at: u64,
    /// The access tokens kept (without the tokens).
    pub access_tokens: Vec<AccessTokenSummary>,
}

/// One access token the service keeps, without the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenSummary {
    /// The audience it was requested for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Its scopes.
    pub scopes: Scopes,
    /// When it expires (Unix seconds), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// `whoami`: who the service takes the caller for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The caller's user name in the service's configuration.
    pub username: String,
    /// The group the request acts as.
    pub group: String,
    /// Every group of the caller.
    pub groups: Vec<String>,
    /// The properties of `group` (`FullDelegation`, `ProxyManagement`, ...).
    pub properties: Vec<String>,
    /// How the caller authenticated: `token` or `certificate`.
    pub authenticated_by: String,
    /// The token's `sub`, or the certificate's subject DN.
    pub identity: String,
    /// The group's VO, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vo: Option<String>,
}

/// `ping`: the service is up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// `sciauth-server`.
    pub service: String,
    /// Its version.
    pub version: String,
    /// Its clock, Unix seconds.
    pub time: u64,
}

/// Every error answer: a stable code and a message that says what to do. Never holds a
/// secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code; its HTTP status is [`ErrorCode::status`].
    pub error: ErrorCode,
    /// What failed and what to do.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirac_names_on_the_wire_and_no_secret_in_debug() {
        let request: GetTokenRequest = serde_json::from_str(
            r#"{"username": "alice", "userGroup": "dteam_user", "scope": ["a"],
                "identityProvider": "iam", "requiredTimeLeft": 600}"#,
        )
        .unwrap();
        assert_eq!(request.group.as_deref(), Some("dteam_user"));
        assert_eq!(request.required_time_left, 600);
        let back = serde_json::to_value(&request).unwrap();
        assert_eq!(back["identityProvider"], "iam");
        assert!(serde_json::from_str::<GetTokenRequest>(r#"{"scope": "a"}"#).is_err());
        assert!(serde_json::from_str::<GetTokenRequest>(r#"{"bogus": 1}"#).is_err());

        let token: ServiceToken = serde_json::from_str(
            r#"{"access_token": "at-secret", "token_type": "Bearer", "expires_in": 5,
                "scope": "a b", "provider": "iam", "issuer": "https://idp"}"#,
        )
        .unwrap();
        assert!(!format!("{token:?}").contains("at-secret"));
        let delegated: DelegatedToken =
            serde_json::from_str(r#"{"access_token": "at-secret", "refresh_token": "rt-secret"}"#)
                .unwrap();
        let debug = format!("{delegated:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("refresh_token"), "{debug}");
    }
}
