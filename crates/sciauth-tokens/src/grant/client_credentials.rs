//! The client credentials grant (RFC 6749 4.4): a service's own token.

use crate::client::{OAuthClient, TokenRequest};
use crate::client_auth::Form;
use crate::error::Result;
use crate::token::{Scopes, Token};
use crate::validate::TokenRules;

impl OAuthClient {
    /// Requests a token for the client itself (a service account, Rucio's admin client).
    pub fn client_credentials(&self) -> ClientCredentials {
        ClientCredentials {
            client: self.clone(),
            scopes: Scopes::new(),
            audience: None,
            resource: None,
        }
    }
}

/// A client credentials request; [`send`](Self::send) runs it.
#[derive(Debug)]
#[must_use = "a request does nothing until sent"]
pub struct ClientCredentials {
    client: OAuthClient,
    scopes: Scopes,
    audience: Option<String>,
    resource: Option<String>,
}

impl ClientCredentials {
    /// Scopes to ask for. By default none (the provider's default scopes).
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes);
        self
    }

    /// The audience the token is for, sent as the client's
    /// [`AudienceParameter`](crate::AudienceParameter). By default none.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// An RFC 8707 `resource`, always sent as `resource=`, whatever the audience parameter.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Runs the grant.
    pub async fn send(self) -> Result<Token> {
        let mut form = Form::new();
        form.push("grant_type", "client_credentials");
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
                    grant: "client_credentials",
                    requested_scopes: self.scopes,
                    audience: audience.or(self.resource),
                    rules: TokenRules::default(),
                },
            )
            .await
    }
}
