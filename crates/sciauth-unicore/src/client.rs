//! [`Client`]: who the server thinks you are (`access_info`), and server-issued tokens
//! (`issue_auth_token`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};

use sciauth_credentials::{AuthHeader, BearerToken, Credential, Ready};
use sciauth_transport::{Preferences, StatusCode, Transport, TransportBuilder};

use crate::error::{Error, Result};

/// A UNICORE site, reached through its REST base URL (e.g.
/// `https://host:8080/SITE/rest/core`).
///
/// ```no_run
/// use sciauth_credentials::UsernamePassword;
/// use sciauth_unicore::Client;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::builder("https://localhost:8080/DEMO-SITE/rest/core")
///     .credential(UsernamePassword::new("demouser", "test123")?)
///     .build()
///     .await?;
/// let info = client.access_info().await?;
/// println!("logged in as {} with role {}", info.dn, info.role.selected);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    transport: Transport,
}

/// Builds a [`Client`]; see [`Client::builder`].
#[derive(Debug)]
pub struct ClientBuilder {
    base_url: String,
    transport: TransportBuilder,
    credential: Option<Arc<dyn Credential>>,
    preferences: Option<Preferences>,
    check_authentication: bool,
}

impl Client {
    /// Starts building a client for the REST base URL `base_url`.
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            transport: Transport::builder(),
            credential: None,
            preferences: None,
            check_authentication: true,
        }
    }

    /// The transport, for any other REST call (it carries the credential, preferences and
    /// security session).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// A client for the same site with other user preferences (sharing the connections).
    pub fn with_preferences(&self, preferences: Preferences) -> Client {
        Client {
            transport: self.transport.with_preferences(preferences),
        }
    }

    /// What the server made of this client: `GET <base>`, the `client` section (DN, xlogin,
    /// role, authentication method).
    pub async fn access_info(&self) -> Result<AccessInfo> {
        #[derive(Deserialize)]
        struct Properties {
            client: AccessInfo,
        }
        let properties: Properties = self.transport.get_json("").await?;
        Ok(properties.client)
    }

    /// Asks the server to issue an authentication token (`GET <base>/token`), for automated
    /// workflows that should not hold the real credential. The token is a credential itself
    /// (`Authorization: Bearer <token>`).
    pub async fn issue_auth_token(&self, options: AuthTokenOptions) -> Result<IssuedToken> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(lifetime) = options.lifetime.filter(|l| !l.is_zero()) {
            query.push(("lifetime", lifetime.as_secs().max(1).to_string()));
        }
        if options.renewable {
            query.push(("renewable", "true".into()));
        }
        if options.limited {
            query.push(("limited", "true".into()));
        }
        let response = self
            .transport
            .get("token")
            .header("accept", "text/plain")
            .query(&query)
            .send()
            .await?
            .error_for_status()?;
        let text = response.text()?.trim();
        if text.is_empty() {
            return Err(Error::invalid_response(
                "the server answered GET token with an empty body instead of a token",
            ));
        }
        let token = SecretString::from(text.to_owned());
        let credential = BearerToken::new(token.expose_secret())?;
        Ok(IssuedToken { token, credential })
    }
}

impl ClientBuilder {
    /// The credential. By default, none: requests are anonymous, and the authentication check
    /// is skipped (as pyunicore does for `Anonymous`). A token manager from `sciauth-tokens`
    /// works here too.
    pub fn credential(mut self, credential: impl Credential + 'static) -> Self {
        self.credential = Some(Arc::new(credential));
        self
    }

    /// The credential, already shared.
    pub fn shared_credential(mut self, credential: Arc<dyn Credential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// User preferences (uid, group, role) sent with every request. By default, none: the
    /// server picks.
    pub fn preferences(mut self, preferences: Preferences) -> Self {
        self.preferences = Some(preferences);
        self
    }

    /// Transport settings (timeouts, CA certificates, client certificate, retries). By
    /// default, [`Transport::builder()`]'s defaults. The client sets the base URL, the
    /// credential and the preferences itself, and treats 401 and 403 as a rejected
    /// credential (UNICORE answers a bad credential with 403).
    pub fn transport(mut self, transport: TransportBuilder) -> Self {
        self.transport = transport;
        self
    }

    /// Whether `build` checks that the server accepted the credential (the selected role is
    /// not `anonymous`), as pyunicore does. By default, it does, unless there is no
    /// credential.
    pub fn check_authentication(mut self, yes: bool) -> Self {
        self.check_authentication = yes;
        self
    }

    /// Builds the client, and unless turned off, checks the authentication.
    pub async fn build(self) -> Result<Client> {
        let base = if self.base_url.ends_with('/') {
            self.base_url
        } else {
            format!("{}/", self.base_url)
        };
        let mut builder = self
            .transport
            .base_url(&base)
            .rejected_statuses(&[StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN]);
        let check = self.check_authentication && self.credential.is_some();
        if let Some(credential) = self.credential {
            builder = builder.shared_credential(credential);
        }
        if let Some(preferences) = self.preferences {
            builder = builder.preferences(preferences);
        }
        let client = Client {
            transport: builder.build()?,
        };
        if check {
            let info = client.access_info().await?;
            if info.role.selected == "anonymous" {
                return Err(Error::authentication_failed(format!(
                    "the server at {base} did not accept the credential (it treats this client \
                     as anonymous); check the username, password, token or key"
                )));
            }
        }
        Ok(client)
    }
}

/// What the server knows about the client: the `client` section of `GET <base>`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccessInfo {
    /// The user's distinguished name.
    #[serde(default)]
    pub dn: String,
    /// The Unix login: selected and available uids and groups.
    #[serde(default)]
    pub xlogin: Xlogin,
    /// The selected and available roles.
    #[serde(default)]
    pub role: Role,
    /// How the server authenticated the client (`PASSWORD_FILE`, `SSHKEY`, `ETD`, `X509`).
    #[serde(default)]
    pub authentication_method: Option<String>,
    /// Everything else the server sent (queues, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The Unix login part of [`AccessInfo`].
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Xlogin {
    /// The selected uid.
    #[serde(rename = "UID", default)]
    pub uid: Option<String>,
    /// The uids this user may select.
    #[serde(rename = "availableUIDs", default)]
    pub available_uids: Vec<String>,
    /// The selected primary group.
    #[serde(default)]
    pub group: Option<String>,
    /// The groups this user may select.
    #[serde(default)]
    pub available_groups: Vec<String>,
    /// The selected supplementary groups.
    #[serde(default)]
    pub selected_supplementary_groups: Vec<String>,
}

/// The role part of [`AccessInfo`].
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Role {
    /// The selected role (`user`, `admin`, `anonymous`, ...).
    #[serde(default)]
    pub selected: String,
    /// The roles this user may select.
    #[serde(default)]
    pub available_roles: Vec<String>,
}

/// Options of [`Client::issue_auth_token`]; each is sent only when set.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthTokenOptions {
    /// Lifetime of the token. By default, the server's (300 s for UNICORE).
    pub lifetime: Option<Duration>,
    /// Whether the token may be used to issue a new token. By default, no.
    pub renewable: bool,
    /// Whether the token is valid only at the issuing server. By default, no (valid at every
    /// server that trusts it).
    pub limited: bool,
}

/// A token the UNICORE server issued, usable as a credential.
#[derive(Clone)]
pub struct IssuedToken {
    token: SecretString,
    credential: BearerToken,
}

impl IssuedToken {
    /// The token text, to store for later (`BearerToken::new(token)` makes it a credential).
    pub fn token(&self) -> &SecretString {
        &self.token
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedToken([redacted])")
    }
}

#[async_trait]
impl Credential for IssuedToken {
    async fn header(&self) -> sciauth_credentials::Result<Option<AuthHeader>> {
        self.credential.header().await
    }
    fn ready_header(&self) -> Ready {
        self.credential.ready_header()
    }
}
