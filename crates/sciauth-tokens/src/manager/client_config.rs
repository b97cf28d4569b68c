//! [`ClientConfig`]: which client a grant belongs to, built now or lazily, and which grants
//! the manager may run without the user.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::client::OAuthClient;
use crate::error::{Error, ErrorKind, Result};

/// Where a grant's tokens come from when none is stored: which grants the manager may run
/// without the user, for one client.
///
/// ```no_run
/// # fn run(client: sciauth_tokens::OAuthClient) {
/// use sciauth_tokens::ClientConfig;
/// let service = ClientConfig::new(client).client_credentials(true);
/// # }
/// ```
///
/// # Lazy clients
///
/// Answering from the store needs only the issuer and the client id, which make the
/// grant's key; the client itself (OIDC discovery, a TLS setup) is needed only when a grant
/// must run. [`ClientConfig::lazy`] names the issuer and client id and gives a function that
/// builds the client, called at most once (again after a failure), on the first refresh,
/// exchange, login or logout. A command that prints a cached token (`sciauth token`) so
/// never discovers the provider nor builds a TLS client.
///
/// ```no_run
/// # use sciauth_tokens::{ClientConfig, Issuer, OAuthClient};
/// let config = ClientConfig::lazy("https://iam.example.org/", "my-cli", || async {
///     let issuer = Issuer::discover("https://iam.example.org/").await?;
///     Ok(OAuthClient::builder(issuer, "my-cli").build())
/// });
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    issuer: String,
    client_id: String,
    pub(super) client: ClientSource,
    pub(super) client_credentials: bool,
    pub(super) token_exchange: bool,
}

type BuildClient =
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<OAuthClient>> + Send>> + Send + Sync;

#[derive(Clone)]
pub(super) enum ClientSource {
    Ready(OAuthClient),
    Lazy {
        build: Arc<BuildClient>,
        built: Arc<tokio::sync::OnceCell<OAuthClient>>,
    },
}

impl ClientConfig {
    /// A configuration for `client` that only refreshes what a login stored.
    pub fn new(client: OAuthClient) -> Self {
        Self {
            issuer: client.issuer().issuer().to_owned(),
            client_id: client.client_id().to_owned(),
            client: ClientSource::Ready(client),
            client_credentials: false,
            token_exchange: false,
        }
    }

    /// A configuration for the client `client_id` at `issuer` that `build` makes when a
    /// grant first needs it (see [lazy clients](Self#lazy-clients)). The client `build`
    /// returns must be that client at that issuer (spelled the same way), or the grant fails
    /// with [`ErrorKind::InvalidInput`]. The manager's clock is then the system clock unless
    /// [`TokenManagerBuilder::clock`](crate::TokenManagerBuilder::clock) says otherwise.
    pub fn lazy<F, Fut>(issuer: impl Into<String>, client_id: impl Into<String>, build: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<OAuthClient>> + Send + 'static,
    {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client: ClientSource::Lazy {
                build: Arc::new(move || Box::pin(build())),
                built: Arc::default(),
            },
            client_credentials: false,
            token_exchange: false,
        }
    }

    /// Whether a request that no stored token covers (and no refresh token can serve) runs
    /// the client credentials grant, storing the result under the request's account. By
    /// default, no.
    pub fn client_credentials(mut self, yes: bool) -> Self {
        self.client_credentials = yes;
        self
    }

    /// Whether a request for an audience or scopes no stored token covers, on a grant that
    /// cannot be refreshed, exchanges (RFC 8693) a valid stored access token of the same
    /// grant for one. By default, no.
    pub fn token_exchange(mut self, yes: bool) -> Self {
        self.token_exchange = yes;
        self
    }

    /// The issuer, as configured.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client, if it is built: always for [`new`](Self::new), after the first grant for
    /// [`lazy`](Self::lazy).
    pub fn built_client(&self) -> Option<&OAuthClient> {
        match &self.client {
            ClientSource::Ready(client) => Some(client),
            ClientSource::Lazy { built, .. } => built.get(),
        }
    }

    /// The client, building a lazy one now if it is not yet built.
    pub async fn client(&self) -> Result<OAuthClient> {
        let (build, built) = match &self.client {
            ClientSource::Ready(client) => return Ok(client.clone()),
            ClientSource::Lazy { build, built } => (build, built),
        };
        let client = built
            .get_or_try_init(|| async {
                let client = build().await?;
                if client.issuer().issuer() != self.issuer || client.client_id() != self.client_id {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "the client built for {} ({}) is {} ({}) instead",
                            self.issuer,
                            self.client_id,
                            client.issuer().issuer(),
                            client.client_id()
                        ),
                    ));
                }
                tracing::debug!(issuer = %self.issuer, client_id = %self.client_id, "client built");
                Ok(client)
            })
            .await?;
        Ok(client.clone())
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("built", &self.built_client().is_some())
            .field("client_credentials", &self.client_credentials)
            .field("token_exchange", &self.token_exchange)
            .finish()
    }
}

impl From<OAuthClient> for ClientConfig {
    fn from(client: OAuthClient) -> Self {
        Self::new(client)
    }
}
