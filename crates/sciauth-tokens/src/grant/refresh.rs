//! The refresh token grant (RFC 6749 6), with rotation.

use secrecy::{ExposeSecret as _, SecretString};

use crate::client::{OAuthClient, TokenRequest};
use crate::client_auth::Form;
use crate::error::{Error, ErrorKind, Result};
use crate::token::{Scopes, Token};
use crate::validate::TokenRules;

impl OAuthClient {
    /// Refreshes `token` with its refresh token.
    ///
    /// The new token keeps what the response leaves out: the old refresh token when no new
    /// one came (no rotation), the old scopes when neither `scope` came back nor scopes were
    /// asked for, the old ID token and audience. When the provider rotates, the new refresh
    /// token is in the result and the old one is dead: store the result before using it.
    ///
    /// Fails with [`ErrorKind::NoRefreshToken`] if `token` has none.
    pub fn refresh(&self, token: &Token) -> Refresh {
        Refresh {
            client: self.clone(),
            refresh_token: token.refresh_token().cloned(),
            previous: Some(token.clone()),
            scopes: Scopes::new(),
            audience: None,
            resource: None,
        }
    }

    /// Refreshes with a bare refresh token (for example one handed over by another tool).
    pub fn refresh_with(&self, refresh_token: SecretString) -> Refresh {
        Refresh {
            client: self.clone(),
            refresh_token: Some(refresh_token),
            previous: None,
            scopes: Scopes::new(),
            audience: None,
            resource: None,
        }
    }
}

/// A refresh request; [`send`](Self::send) runs it.
#[derive(Debug)]
#[must_use = "a request does nothing until sent"]
pub struct Refresh {
    client: OAuthClient,
    refresh_token: Option<SecretString>,
    previous: Option<Token>,
    scopes: Scopes,
    audience: Option<String>,
    resource: Option<String>,
}

impl Refresh {
    /// Narrower scopes for the new access token (down-scoping). By default none, which means
    /// all the scopes of the grant.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes);
        self
    }

    /// The audience for the new access token (sent as the client's
    /// [`AudienceParameter`](crate::AudienceParameter)). By default none.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// An RFC 8707 `resource` for the new access token. By default none.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Runs the grant.
    pub async fn send(self) -> Result<Token> {
        let refresh_token = self.refresh_token.ok_or_else(|| {
            Error::new(
                ErrorKind::NoRefreshToken,
                "this token has no refresh token (ask for offline_access at login, or log in \
                 again)",
            )
        })?;
        let mut form = Form::new();
        form.push("grant_type", "refresh_token");
        form.push_secret("refresh_token", refresh_token.clone());
        if !self.scopes.is_empty() {
            form.push("scope", self.scopes.to_string());
        }
        let audience = self
            .client
            .audience_parameter()
            .add(&mut form, self.audience.as_deref())
            .or_else(|| self.resource.clone());
        form.push_opt("resource", self.resource.clone());
        let requested_scopes = match (&self.previous, self.scopes.is_empty()) {
            (Some(previous), true) => previous.scopes().clone(),
            _ => self.scopes,
        };
        let mut token = self
            .client
            .token_request(
                form,
                TokenRequest {
                    grant: "refresh_token",
                    requested_scopes,
                    audience,
                    rules: TokenRules::default(),
                },
            )
            .await?;
        if let Some(id_token) = token.id_token() {
            // A refreshed ID token has no nonce to check (OIDC Core 12.2), but must still be
            // the provider's and ours.
            self.client
                .validate_id_token(id_token.expose_secret(), None)
                .await?;
        }
        let parts = token.parts_mut();
        if parts.refresh_token.is_none() {
            parts.refresh_token = Some(refresh_token);
        }
        if let Some(previous) = self.previous {
            let previous = previous.parts();
            if parts.audience.is_none() {
                parts.audience.clone_from(&previous.audience);
            }
            if parts.id_token.is_none() {
                parts.id_token.clone_from(&previous.id_token);
            }
        }
        Ok(token)
    }
}
