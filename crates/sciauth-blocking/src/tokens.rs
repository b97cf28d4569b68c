//! [`TokenManager`] and [`NativeClient`]: `sciauth_tokens`'s, answering from the store on
//! the calling thread and waiting on the background runtime only for the provider.

use std::collections::BTreeMap;
use std::fmt;

use sciauth_tokens::{Authorizer, LoginOptions, Logout, Result, Token, TokenRequest};

use crate::runtime::{Runtime, refuse_inside_async};

/// A blocking [`sciauth_tokens::TokenManager`]: a valid access token per request (account,
/// scopes, audience, minimum time left), refreshed when needed, once for every thread and
/// process asking at the same time.
///
/// [`get`](Self::get) first asks the manager's synchronous
/// [`get_now`](sciauth_tokens::TokenManager::get_now) (its in-memory snapshot, else the
/// store read on the calling thread), so a cached token costs no thread switch; only when
/// the provider must be asked does the call wait for the background runtime. That runtime
/// also runs the manager's refreshes ahead of expiry between calls.
///
/// # Panics
///
/// [`get`](Self::get) panics when called inside an async runtime (even when the token is
/// cached, so that the mistake shows at once, not when the token expires); use
/// [`sciauth_tokens::TokenManager`] there.
#[derive(Clone)]
pub struct TokenManager {
    inner: sciauth_tokens::TokenManager,
    runtime: Runtime,
}

impl TokenManager {
    /// A blocking handle on `manager`, sharing its store, snapshots and refreshes.
    pub fn new(manager: sciauth_tokens::TokenManager) -> TokenManager {
        TokenManager {
            inner: manager,
            runtime: Runtime::shared(),
        }
    }

    /// The async manager underneath, for code that runs inside a runtime, or for what this
    /// handle does not wrap ([`credential`](sciauth_tokens::TokenManager::credential),
    /// [`list`](sciauth_tokens::TokenManager::list), ...).
    pub fn as_async(&self) -> &sciauth_tokens::TokenManager {
        &self.inner
    }

    /// An access token that covers `request`; fails as
    /// [`sciauth_tokens::TokenManager::get`] does (`needs_login()` when the user must log
    /// in).
    pub fn get(&self, request: &TokenRequest) -> Result<Token> {
        const WHAT: &str = "sciauth::blocking::TokenManager::get";
        refuse_inside_async(WHAT, "sciauth::tokens::TokenManager::get");
        if let Some(token) = self.inner.get_now(request) {
            return Ok(token);
        }
        let (manager, request) = (self.inner.clone(), request.clone());
        self.runtime
            .block_on(WHAT, "sciauth::tokens::TokenManager::get", async move {
                manager.get(&request).await
            })
    }
}

impl From<sciauth_tokens::TokenManager> for TokenManager {
    fn from(manager: sciauth_tokens::TokenManager) -> TokenManager {
        TokenManager::new(manager)
    }
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The manager's Debug holds no token.
        f.debug_tuple("TokenManager").field(&self.inner).finish()
    }
}

/// A blocking [`sciauth_tokens::NativeClient`] (fair-research-login's `NativeClient`): log
/// a person in once, keep the tokens, hand out valid ones.
///
/// Build the client as usual ([`sciauth_tokens::NativeClient::builder`]: building does no
/// network I/O) and wrap it. [`load_tokens`](Self::load_tokens) answers from the store on
/// the calling thread when the stored token is not due for a refresh, as
/// [`TokenManager::get`] does.
///
/// # Panics
///
/// Every method panics when called inside an async runtime; use
/// [`sciauth_tokens::NativeClient`] there.
///
/// ```no_run
/// use sciauth_blocking::NativeClient;
/// use sciauth_tokens::LoginOptions;
///
/// # fn run() -> sciauth_tokens::Result<()> {
/// let client = NativeClient::new(
///     sciauth_tokens::NativeClient::builder("https://iam.example.org/", "my-cli")
///         .app_name("my-app")
///         .build()?,
/// );
/// client.login(LoginOptions::new().device(true).scopes(["openid", "storage.read:/"]))?;
/// let token = client.load_tokens(["storage.read:/"])?; // refreshed if needed
/// # drop(token);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct NativeClient {
    inner: sciauth_tokens::NativeClient,
    runtime: Runtime,
}

impl NativeClient {
    /// A blocking handle on `client`, sharing its store and token manager.
    pub fn new(client: sciauth_tokens::NativeClient) -> NativeClient {
        NativeClient {
            inner: client,
            runtime: Runtime::shared(),
        }
    }

    /// The async client underneath, for code that runs inside a runtime.
    pub fn as_async(&self) -> &sciauth_tokens::NativeClient {
        &self.inner
    }

    /// The token manager underneath, as a blocking handle on the same runtime, for
    /// requests with an audience or a minimum time left of their own (start from
    /// [`sciauth_tokens::NativeClient::request`]).
    pub fn manager(&self) -> TokenManager {
        TokenManager {
            inner: self.inner.manager().clone(),
            runtime: self.runtime.clone(),
        }
    }

    /// Logs the user in (browser with a loopback redirect, a pasted code, or the device
    /// flow, as `options` say) and stores the tokens, unless stored tokens already cover the
    /// scopes; see [`sciauth_tokens::NativeClient::login`]. The options' callbacks
    /// ([`on_user_code`](LoginOptions::on_user_code), ...) run on the background thread.
    pub fn login(&self, options: LoginOptions) -> Result<Token> {
        let client = self.inner.clone();
        self.runtime.block_on(
            "sciauth::blocking::NativeClient::login",
            "sciauth::NativeClient::login",
            async move { client.login(options).await },
        )
    }

    /// A valid access token with the requested scopes, refreshed if needed; fails as
    /// [`sciauth_tokens::NativeClient::load_tokens`] does (`NoSavedTokens`,
    /// `TokensExpired`, `ScopesMismatch`: `needs_login()`).
    pub fn load_tokens<S: Into<String>>(
        &self,
        requested_scopes: impl IntoIterator<Item = S>,
    ) -> Result<Token> {
        const WHAT: &str = "sciauth::blocking::NativeClient::load_tokens";
        refuse_inside_async(WHAT, "sciauth::NativeClient::load_tokens");
        // What the async load_tokens asks its manager, so that the fast path applies.
        let request = self.inner.request().scopes(requested_scopes);
        self.manager().get(&request)
    }

    /// Like [`load_tokens`](Self::load_tokens), keyed by each requested scope; see
    /// [`sciauth_tokens::NativeClient::load_tokens_by_scope`].
    pub fn load_tokens_by_scope<S: Into<String>>(
        &self,
        requested_scopes: impl IntoIterator<Item = S>,
    ) -> Result<BTreeMap<String, Token>> {
        let (client, requested) = (self.inner.clone(), collect(requested_scopes));
        self.runtime.block_on(
            "sciauth::blocking::NativeClient::load_tokens_by_scope",
            "sciauth::NativeClient::load_tokens_by_scope",
            async move { client.load_tokens_by_scope(requested).await },
        )
    }

    /// A credential for requests with the stored tokens (refreshing itself when the grant
    /// has a refresh token), for a [`Transport`](crate::Transport) or
    /// [`Credential`](crate::Credential); see
    /// [`sciauth_tokens::NativeClient::get_authorizers`].
    pub fn get_authorizers<S: Into<String>>(
        &self,
        requested_scopes: impl IntoIterator<Item = S>,
    ) -> Result<Authorizer> {
        let (client, requested) = (self.inner.clone(), collect(requested_scopes));
        self.runtime.block_on(
            "sciauth::blocking::NativeClient::get_authorizers",
            "sciauth::NativeClient::get_authorizers",
            async move { client.get_authorizers(requested).await },
        )
    }

    /// Revokes the stored tokens at the provider and deletes them; see
    /// [`sciauth_tokens::NativeClient::logout`].
    pub fn logout(&self) -> Result<Logout> {
        let client = self.inner.clone();
        self.runtime.block_on(
            "sciauth::blocking::NativeClient::logout",
            "sciauth::NativeClient::logout",
            async move { client.logout().await },
        )
    }
}

fn collect<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Vec<String> {
    scopes.into_iter().map(Into::into).collect()
}

impl From<sciauth_tokens::NativeClient> for NativeClient {
    fn from(client: sciauth_tokens::NativeClient) -> NativeClient {
        NativeClient::new(client)
    }
}

impl fmt::Debug for NativeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's Debug holds no token or secret.
        f.debug_tuple("NativeClient").field(&self.inner).finish()
    }
}
