//! Revocation (RFC 7009) and introspection (RFC 7662).

use std::time::SystemTime;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::client::OAuthClient;
use crate::client_auth::Form;
use crate::error::{Error, ErrorKind, Result};
use crate::token::{Scopes, Token};
use crate::validate;

/// Which kind of token is revoked or introspected (`token_type_hint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// An access token.
    AccessToken,
    /// A refresh token.
    RefreshToken,
}

impl TokenTypeHint {
    fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
        }
    }
}

impl OAuthClient {
    /// Revokes `token` at the provider (RFC 7009). Revoking a refresh token normally ends the
    /// whole grant, its access tokens included. An unknown or already revoked token is not an
    /// error (the RFC answers 200).
    pub async fn revoke(&self, token: &SecretString, hint: Option<TokenTypeHint>) -> Result<()> {
        let endpoint = self.endpoint(
            self.issuer().metadata().revocation_endpoint.as_ref(),
            "revocation",
        )?;
        let mut form = Form::new();
        form.push_secret("token", token.clone());
        form.push_opt("token_type_hint", hint.map(TokenTypeHint::as_str));
        self.post(&endpoint, "the revocation endpoint", form)
            .await?;
        tracing::debug!(issuer = %self.issuer().issuer(), ?hint, "token revoked");
        Ok(())
    }

    /// Revokes what ends `token`'s grant: its refresh token if it has one, else its access
    /// token.
    pub async fn revoke_token(&self, token: &Token) -> Result<()> {
        match token.refresh_token() {
            Some(refresh) => {
                self.revoke(refresh, Some(TokenTypeHint::RefreshToken))
                    .await
            }
            None => {
                self.revoke(token.access_token(), Some(TokenTypeHint::AccessToken))
                    .await
            }
        }
    }

    /// Asks the provider about `token` (RFC 7662): whether it is active, and its claims.
    pub async fn introspect(
        &self,
        token: &SecretString,
        hint: Option<TokenTypeHint>,
    ) -> Result<Introspection> {
        let endpoint = self.endpoint(
            self.issuer().metadata().introspection_endpoint.as_ref(),
            "introspection",
        )?;
        let mut form = Form::new();
        form.push_secret("token", token.clone());
        form.push_opt("token_type_hint", hint.map(TokenTypeHint::as_str));
        let body = self
            .post(&endpoint, "the introspection endpoint", form)
            .await?;
        parse_introspection(&body, &endpoint)
    }

    fn endpoint(&self, endpoint: Option<&Url>, name: &str) -> Result<Url> {
        endpoint.cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::MissingEndpoint,
                format!(
                    "the provider {} has no {name} endpoint in its metadata",
                    self.issuer().issuer()
                ),
            )
        })
    }
}

/// The introspection response `body` from `endpoint`.
pub(crate) fn parse_introspection(body: &[u8], endpoint: &Url) -> Result<Introspection> {
    validate::typed(body).map_err(|invalid| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!(
                "the introspection endpoint {endpoint} answered with something that is not an \
                 introspection response (it needs a boolean \"active\"): {}",
                invalid.0
            ),
        )
        .with_endpoint(endpoint)
    })
}

/// What the introspection endpoint said about a token (RFC 7662 2.2).
#[derive(Clone, Debug, Deserialize)]
pub struct Introspection {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl Introspection {
    /// Whether the token is active (valid, not expired, not revoked). The other fields are
    /// only meaningful when it is.
    pub fn active(&self) -> bool {
        self.active
    }
    /// The token's scopes.
    pub fn scopes(&self) -> Scopes {
        self.scope.as_deref().map(Scopes::parse).unwrap_or_default()
    }
    /// The client the token was issued to.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    /// A human-readable name of the resource owner.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }
    /// The token type, e.g. `Bearer`.
    pub fn token_type(&self) -> Option<&str> {
        self.token_type.as_deref()
    }
    /// When the token expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.exp.map(sciauth_credentials::time::from_unix)
    }
    /// When the token was issued.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.iat.map(sciauth_credentials::time::from_unix)
    }
    /// The subject.
    pub fn subject(&self) -> Option<&str> {
        self.sub.as_deref()
    }
    /// The issuer.
    pub fn issuer(&self) -> Option<&str> {
        self.iss.as_deref()
    }
    /// The audiences (`aud` may be a string or a list).
    pub fn audience(&self) -> Vec<String> {
        match &self.aud {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
    /// Every other field, as sent.
    pub fn other(&self) -> &Map<String, Value> {
        &self.other
    }
}
