//! [`OAuthClient`]: one registered client at one issuer, and the token request every grant
//! shares.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use tracing::Instrument as _;
use url::Url;

use sciauth_credentials::Clock;
use sciauth_credentials::time::later;

use crate::client_auth::{ClientAuth, Form};
use crate::error::{Error, ErrorKind, Result};
use crate::id_token::{self, Expectations, IdTokenClaims};
use crate::issuer::Issuer;
use crate::mask::Secrets;
use crate::token::{Scopes, Token, TokenParts};
use crate::validate::{self, TokenFields, TokenRules};

/// How the audience of a token request is sent to the provider.
///
/// Providers disagree: CILogon, Keycloak and INDIGO IAM read `audience`; RFC 8707 (and
/// oidc-provider) read `resource`; some refuse either. Requests name an audience with
/// `.audience(..)`; this setting decides what goes on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudienceParameter {
    /// `audience=<value>` (CILogon, Keycloak, INDIGO IAM; RFC 8693 token exchange).
    #[default]
    Audience,
    /// `resource=<value>` (RFC 8707 resource indicators).
    Resource,
    /// Not sent at all (the CILogon report: "Audience parameter should be optional").
    Omit,
}

impl AudienceParameter {
    pub(crate) fn add(self, form: &mut Form, audience: Option<&str>) -> Option<String> {
        let audience = audience?;
        match self {
            Self::Audience => form.push("audience", audience),
            Self::Resource => form.push("resource", audience),
            Self::Omit => return None,
        }
        Some(audience.to_owned())
    }
}

/// A client registered at an issuer: its id, how it authenticates, and the grants it runs.
///
/// Every grant returns a [`Token`]:
///
/// | grant | method |
/// |---|---|
/// | authorization code + PKCE (browser, loopback redirect or pasted code) | [`code_login`](Self::code_login), or [`authorization_request`](Self::authorization_request) + [`redeem_code`](Self::redeem_code) |
/// | device authorization (RFC 8628) | [`device_login`](Self::device_login) |
/// | client credentials | [`client_credentials`](Self::client_credentials) |
/// | refresh token | [`refresh`](Self::refresh), [`refresh_with`](Self::refresh_with) |
/// | token exchange (RFC 8693) | [`exchange`](Self::exchange) |
///
/// plus [`revoke`](Self::revoke) (RFC 7009), [`introspect`](Self::introspect) (RFC 7662)
/// and [`validate_id_token`](Self::validate_id_token).
///
/// Cloning is cheap (a reference count).
///
/// ```no_run
/// # async fn run() -> sciauth_tokens::Result<()> {
/// use sciauth_tokens::{ClientAuth, Issuer, OAuthClient};
/// let issuer = Issuer::discover("https://iam.example.org/").await?;
/// let client = OAuthClient::builder(issuer, "rucio-admin")
///     .auth(ClientAuth::secret_basic("..."))
///     .build();
/// let token = client
///     .client_credentials()
///     .scopes(["storage.read:/", "storage.modify:/"])
///     .audience("https://se.example.org")
///     .send()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct OAuthClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) issuer: Issuer,
    pub(crate) client_id: String,
    pub(crate) auth: ClientAuth,
    pub(crate) audience_parameter: AudienceParameter,
    pub(crate) id_token_leeway: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

impl OAuthClient {
    /// A builder for the client `client_id` at `issuer`.
    pub fn builder(issuer: Issuer, client_id: impl Into<String>) -> OAuthClientBuilder {
        OAuthClientBuilder {
            clock: issuer.clock().clone(),
            issuer,
            client_id: client_id.into(),
            auth: ClientAuth::none(),
            audience_parameter: AudienceParameter::default(),
            id_token_leeway: Duration::from_secs(60),
        }
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.inner.issuer
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// How this client sends audiences.
    pub fn audience_parameter(&self) -> AudienceParameter {
        self.inner.audience_parameter
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// Validates an ID token issued to this client: signature (JWKS), `iss`, `aud`/`azp`,
    /// `exp` with the configured clock skew, and `nonce` if `nonce` is given.
    pub async fn validate_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<IdTokenClaims> {
        id_token::validate(
            &self.inner.issuer,
            id_token,
            Expectations {
                client_id: &self.inner.client_id,
                nonce,
                now: self.now(),
                leeway: self.inner.id_token_leeway,
            },
        )
        .await
    }

    /// A [`Token`] from a token response this client's grant produced elsewhere, as if it
    /// had arrived now: another program logged the user in and hands the result over (DIRAC's
    /// `updateToken`). `body` is the token endpoint's JSON (`access_token`, `token_type`,
    /// `expires_in`, `refresh_token`, `id_token`, `scope`, ...); the token is recorded as
    /// issued by this client's issuer to this client. Nothing is checked with the provider.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] when `body` is not a token response; the
    /// message never quotes it.
    pub fn token_from_response(&self, body: &[u8]) -> Result<Token> {
        let fields = validate::token_response(
            body,
            self.inner.issuer.limits(),
            TokenRules::default(),
        )
        .map_err(|invalid| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "not a usable token response (it needs access_token and token_type): {}",
                    invalid.0
                ),
            )
        })?;
        Ok(self.token_from_fields(fields, Scopes::new(), None))
    }

    fn token_from_fields(
        &self,
        fields: TokenFields,
        requested_scopes: Scopes,
        audience: Option<String>,
    ) -> Token {
        let issued_at = self.now();
        Token::from(TokenParts {
            access_token: fields.access_token,
            token_type: fields.token_type,
            refresh_token: fields.refresh_token,
            id_token: fields.id_token,
            issued_at,
            expires_at: fields.expires_in.map(|lifetime| later(issued_at, lifetime)),
            // RFC 6749 5.1: without `scope`, the scopes were granted as asked.
            scopes: fields
                .scope
                .as_deref()
                .map_or(requested_scopes, Scopes::parse),
            audience,
            issuer: self.inner.issuer.issuer().to_owned(),
            client_id: self.inner.client_id.clone(),
            issued_token_type: fields.issued_token_type,
            extra: fields.extra,
        })
    }

    /// Adds client authentication to `form`; returns the `Authorization` value, if any.
    pub(crate) fn authenticate(&self, form: &mut Form) -> Result<Option<SecretString>> {
        let audience = &self.inner.issuer.metadata().token_endpoint;
        self.inner.auth.apply(
            &self.inner.client_id,
            audience,
            self.inner.clock.as_ref(),
            form,
        )
    }

    /// Posts `form` (with client authentication) to `endpoint` and returns the 2xx body. An
    /// error answer has every secret the request carried masked out of what it says.
    pub(crate) async fn post(
        &self,
        endpoint: &Url,
        what: &str,
        mut form: Form,
    ) -> Result<sciauth_transport::Bytes> {
        let authorization = self.authenticate(&mut form)?;
        let answer = self
            .inner
            .issuer
            .http()
            .post_form(endpoint, what, &form, authorization.as_ref())
            .await?;
        if answer.is_success() {
            Ok(answer.body)
        } else {
            let mut secrets = Secrets::new();
            form.secrets().for_each(|secret| secrets.add(secret));
            if let Some(authorization) = &authorization {
                secrets.add(authorization);
            }
            if let Some(client_secret) = self.inner.auth.secret() {
                secrets.add(client_secret);
            }
            Err(answer.error(what, endpoint, &secrets))
        }
    }

    /// The token request every grant ends in: POST to the token endpoint, then parse.
    pub(crate) async fn token_request(
        &self,
        form: Form,
        request: TokenRequest<'_>,
    ) -> Result<Token> {
        let endpoint = self.inner.issuer.metadata().token_endpoint.clone();
        let span = tracing::debug_span!(
            "token_request",
            issuer = %self.inner.issuer.issuer(),
            client_id = %self.inner.client_id,
            grant = request.grant,
        );
        async move {
            let body = self.post(&endpoint, "the token endpoint", form).await?;
            let token = self.parse_token(&body, &endpoint, &request)?;
            tracing::debug!(
                expires_in = token.lifetime().map(|d| d.as_secs()),
                scopes = %token.scopes(),
                refresh_token = token.refresh_token().is_some(),
                "token received"
            );
            Ok(token)
        }
        .instrument(span)
        .await
    }

    pub(crate) fn parse_token(
        &self,
        body: &[u8],
        endpoint: &Url,
        request: &TokenRequest<'_>,
    ) -> Result<Token> {
        let fields = validate::token_response(body, self.inner.issuer.limits(), request.rules)
            .map_err(|invalid| {
                Error::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "the token endpoint {endpoint} answered a {} request with a token \
                         response that cannot be used: {}",
                        request.grant, invalid.0
                    ),
                )
                .with_endpoint(endpoint)
            })?;
        Ok(self.token_from_fields(
            fields,
            request.requested_scopes.clone(),
            request.audience.clone(),
        ))
    }
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("issuer", &self.inner.issuer.issuer())
            .field("client_id", &self.inner.client_id)
            .field("auth", &self.inner.auth)
            .field("audience_parameter", &self.inner.audience_parameter)
            .finish_non_exhaustive()
    }
}

/// What a grant asked for, to fill in what the response leaves out.
pub(crate) struct TokenRequest<'a> {
    pub(crate) grant: &'a str,
    /// Granted when the response has no `scope` (RFC 6749 5.1).
    pub(crate) requested_scopes: Scopes,
    /// The audience or resource sent, recorded on the token.
    pub(crate) audience: Option<String>,
    /// What the answer may hold beyond a Bearer token.
    pub(crate) rules: TokenRules,
}

/// Configures an [`OAuthClient`].
pub struct OAuthClientBuilder {
    issuer: Issuer,
    client_id: String,
    auth: ClientAuth,
    audience_parameter: AudienceParameter,
    id_token_leeway: Duration,
    clock: Arc<dyn Clock>,
}

impl OAuthClientBuilder {
    /// How the client authenticates. By default [`ClientAuth::none`] (a public client).
    pub fn auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// How audiences are sent. By default [`AudienceParameter::Audience`].
    pub fn audience_parameter(mut self, parameter: AudienceParameter) -> Self {
        self.audience_parameter = parameter;
        self
    }

    /// The clock skew allowed when checking an ID token's `exp` and `iat`. By default 60 s.
    pub fn id_token_leeway(mut self, leeway: Duration) -> Self {
        self.id_token_leeway = leeway;
        self
    }

    /// The clock for expiry and assertions. By default the issuer's.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The client.
    pub fn build(self) -> OAuthClient {
        OAuthClient {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                client_id: self.client_id,
                auth: self.auth,
                audience_parameter: self.audience_parameter,
                id_token_leeway: self.id_token_leeway,
                clock: self.clock,
            }),
        }
    }
}

impl fmt::Debug for OAuthClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientBuilder")
            .field("issuer", &self.issuer.issuer())
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("audience_parameter", &self.audience_parameter)
            .field("id_token_leeway", &self.id_token_leeway)
            .finish_non_exhaustive()
    }
}
