//! Token exchange (RFC 8693): trade a token for another, narrower or for another audience,
//! or (as FTS does) an access token for a refresh token.

use secrecy::SecretString;

use crate::client::{OAuthClient, TokenRequest};
use crate::client_auth::Form;
use crate::error::Result;
use crate::token::{Scopes, Token, token_type};
use crate::validate::TokenRules;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl OAuthClient {
    /// Exchanges `subject_token`, of type `subject_token_type` (one of [`token_type`], e.g.
    /// [`token_type::ACCESS_TOKEN`]), for a new token.
    ///
    /// ```no_run
    /// # async fn run(client: sciauth_tokens::OAuthClient, user_token: sciauth_tokens::Token)
    /// # -> sciauth_tokens::Result<()> {
    /// use sciauth_tokens::token_type;
    /// // What FTS asks for: a refresh token it can keep using on the user's behalf.
    /// let delegated = client
    ///     .exchange(user_token.access_token().clone(), token_type::ACCESS_TOKEN)
    ///     .requested_token_type(token_type::REFRESH_TOKEN)
    ///     .scopes(["openid", "offline_access"])
    ///     .send()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn exchange(
        &self,
        subject_token: SecretString,
        subject_token_type: impl Into<String>,
    ) -> TokenExchange {
        TokenExchange {
            client: self.clone(),
            subject_token,
            subject_token_type: subject_token_type.into(),
            requested_token_type: None,
            actor: None,
            scopes: Scopes::new(),
            audience: None,
            resource: None,
        }
    }

    /// Exchanges `token`'s access token; see [`exchange`](Self::exchange).
    pub fn exchange_access_token(&self, token: &Token) -> TokenExchange {
        self.exchange(token.access_token().clone(), token_type::ACCESS_TOKEN)
    }
}

/// A token exchange request; [`send`](Self::send) runs it.
#[derive(Debug)]
#[must_use = "a request does nothing until sent"]
pub struct TokenExchange {
    client: OAuthClient,
    subject_token: SecretString,
    subject_token_type: String,
    requested_token_type: Option<String>,
    actor: Option<(SecretString, String)>,
    scopes: Scopes,
    audience: Option<String>,
    resource: Option<String>,
}

impl TokenExchange {
    /// The kind of token wanted, e.g. [`token_type::REFRESH_TOKEN`] (FTS). By default none:
    /// the provider decides (normally an access token).
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into());
        self
    }

    /// The party acting on the subject's behalf (`actor_token`, `actor_token_type`). By
    /// default none.
    pub fn actor(mut self, actor_token: SecretString, actor_token_type: impl Into<String>) -> Self {
        self.actor = Some((actor_token, actor_token_type.into()));
        self
    }

    /// Scopes for the new token. By default none (the provider decides, usually the
    /// subject's).
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes);
        self
    }

    /// The audience of the new token, sent as the client's
    /// [`AudienceParameter`](crate::AudienceParameter) (`audience=` by default, as RFC 8693
    /// names it). By default none.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// An RFC 8707 `resource` for the new token, always sent as `resource=`. By default none.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Runs the grant.
    pub async fn send(self) -> Result<Token> {
        let mut form = Form::new();
        form.push("grant_type", GRANT_TYPE);
        form.push_secret("subject_token", self.subject_token);
        form.push("subject_token_type", self.subject_token_type);
        // RFC 8693 2.2.1: what is not an access token comes with token_type N_A.
        let rules = TokenRules {
            allow_not_applicable: self
                .requested_token_type
                .as_deref()
                .is_some_and(|t| t != token_type::ACCESS_TOKEN),
        };
        form.push_opt("requested_token_type", self.requested_token_type);
        if let Some((actor_token, actor_token_type)) = self.actor {
            form.push_secret("actor_token", actor_token);
            form.push("actor_token_type", actor_token_type);
        }
        if !self.scopes.is_empty() {
            form.push("scope", self.scopes.to_string());
        }
        let audience = self
            .client
            .audience_parameter()
            .add(&mut form, self.audience.as_deref());
        form.push_opt("resource", self.resource.clone());
        self.client
            .token_request(
                form,
                TokenRequest {
                    grant: "token-exchange",
                    requested_scopes: self.scopes,
                    audience: audience.or(self.resource),
                    rules,
                },
            )
            .await
    }
}
