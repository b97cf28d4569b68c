//! [`NativeClient`]: fair-research-login's `NativeClient` for any OAuth 2.0 / OIDC provider:
//! log a person in once, keep the tokens, hand out valid ones. A thin layer over the
//! [`TokenManager`], so it lives beside it.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret as _;

use sciauth_credentials::{AuthHeader, BearerToken, Credential, Ready, Renewal};
use sciauth_transport::Transport;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::{
    AudienceParameter, CallbackMode, ClientAuth, ClientConfig, DeviceAuthorization, DeviceProgress,
    FileStore, Issuer, Logout, OAuthClient, Token, TokenCredential, TokenManager, TokenRequest,
    TokenStore,
};

/// The scopes [`NativeClient::login`] asks for when neither the options nor the builder
/// name any, as in fair-research-login.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email"];

/// A native application's login, in the shape of fair-research-login's `NativeClient`: log
/// in once (browser with a loopback redirect, a pasted code over SSH, or the device flow),
/// keep the tokens in a store, and hand out valid ones, refreshed as needed.
///
/// | fair-research-login | here |
/// |---|---|
/// | `NativeClient(client_id=, app_name=, default_scopes=, token_storage=)` | [`NativeClient::builder`] |
/// | `login(requested_scopes=, refresh_tokens=, force=, no_local_server=, no_browser=, query_params=)` | [`login`](Self::login) with [`LoginOptions`] |
/// | `load_tokens(requested_scopes)` | [`load_tokens`](Self::load_tokens) |
/// | `load_tokens_by_scope(requested_scopes)` | [`load_tokens_by_scope`](Self::load_tokens_by_scope) |
/// | `get_authorizers(requested_scopes)` | [`get_authorizers`](Self::get_authorizers) |
/// | `logout()` | [`logout`](Self::logout) |
/// | `NoSavedTokens`, `TokensExpired`, `ScopesMismatch` (`LoadError`) | the same [`ErrorKind`]s; [`Error::needs_login`] groups them |
///
/// Beyond it: any OIDC provider (not only Globus), the device flow, `state`/PKCE/`nonce`
/// checks, a loopback server on 127.0.0.1 only (on a registered redirect URI or port where
/// the provider demands one: [`LoginOptions::redirect_uri`], [`LoginOptions::redirect_ports`]),
/// robot accounts that need no login
/// ([`client_credentials`](NativeClientBuilder::client_credentials)), and a store that
/// processes share safely ([`FileStore`]: 0600 files, atomic writes, one refresh across
/// processes).
///
/// Building the client does no I/O beyond opening the store: the provider is discovered when
/// a grant first needs it, so [`load_tokens`](Self::load_tokens) answers from the store
/// without network (see [`ClientConfig::lazy`]).
///
/// ```no_run
/// use sciauth_tokens::{LoginOptions, NativeClient};
///
/// # async fn run() -> sciauth_tokens::Result<()> {
/// let client = NativeClient::builder("https://iam.example.org/", "my-cli")
///     .app_name("My Cool App")
///     .build()?;
/// client
///     .login(LoginOptions::new().scopes(["openid", "storage.read:/"]).refresh_tokens(true))
///     .await?;
/// // Later, in any process: a valid token, refreshed if needed.
/// let token = client.load_tokens(["storage.read:/"]).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct NativeClient {
    manager: TokenManager,
    config: ClientConfig,
    app_name: String,
    account: String,
    default_scopes: Vec<String>,
    audience: Option<String>,
}

/// Configures a [`NativeClient`]; made by [`NativeClient::builder`].
pub struct NativeClientBuilder {
    issuer: String,
    client_id: String,
    app_name: String,
    account: Option<String>,
    default_scopes: Vec<String>,
    audience: Option<String>,
    store: Option<Arc<dyn TokenStore>>,
    auth: AuthSource,
    audience_parameter: AudienceParameter,
    transport: Option<Transport>,
    client_credentials: bool,
}

type MakeAuth = dyn Fn() -> crate::Result<ClientAuth> + Send + Sync;

/// Where the client authentication comes from: given, or made when the first grant runs.
#[derive(Clone)]
enum AuthSource {
    Given(ClientAuth),
    Lazy(Arc<MakeAuth>),
}

impl NativeClient {
    /// A builder for the client `client_id` at `issuer` (e.g. `https://cilogon.org`).
    pub fn builder(issuer: impl Into<String>, client_id: impl Into<String>) -> NativeClientBuilder {
        NativeClientBuilder {
            issuer: issuer.into(),
            client_id: client_id.into(),
            app_name: "sciauth".to_owned(),
            account: None,
            default_scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            audience: None,
            store: None,
            auth: AuthSource::Given(ClientAuth::none()),
            audience_parameter: AudienceParameter::default(),
            transport: None,
            client_credentials: false,
        }
    }

    /// The app name.
    pub fn app_name(&self) -> &str {
        &self.app_name
    }

    /// The token manager underneath, for requests with an audience or a minimum time left of
    /// their own.
    pub fn manager(&self) -> &TokenManager {
        &self.manager
    }

    /// The request [`load_tokens`](Self::load_tokens) makes without scopes: this client's
    /// account and default audience. Add scopes, an audience or a minimum time left to it
    /// for [`manager`](Self::manager).
    pub fn request(&self) -> TokenRequest {
        let request = TokenRequest::new(&self.account);
        match &self.audience {
            Some(audience) => request.audience(audience),
            None => request,
        }
    }

    /// The OAuth client, discovering the provider now if no grant has run yet (for grants
    /// the manager does not run, such as a token exchange).
    pub async fn oauth_client(&self) -> Result<OAuthClient> {
        self.config.client().await
    }

    /// Logs the user in and stores the tokens, unless stored tokens already cover the
    /// requested scopes and [`force`](LoginOptions::force) is not set; returns the token.
    ///
    /// The browser flow (the default) opens the authorization URL and takes the code from a
    /// loopback redirect on 127.0.0.1; in an SSH session, or with
    /// [`no_local_server`](LoginOptions::no_local_server), the user pastes the address the
    /// browser ends on. [`device`](LoginOptions::device) runs the device flow instead.
    pub async fn login(&self, options: LoginOptions) -> Result<Token> {
        let mut scopes = options
            .requested_scopes
            .clone()
            .unwrap_or_else(|| self.default_scopes.clone());
        if options.refresh_tokens && !scopes.iter().any(|s| s == "offline_access") {
            scopes.push("offline_access".to_owned());
        }
        let audience = options.audience.clone().or_else(|| self.audience.clone());
        let mut request = TokenRequest::new(&self.account).scopes(scopes.iter());
        if let Some(audience) = &audience {
            request = request.audience(audience);
        }
        if !options.force {
            match self.manager.get(&request).await {
                Ok(token) => return Ok(token),
                Err(error) if error.needs_login() => {}
                Err(error) => return Err(error),
            }
        }
        let token = self
            .manager
            .login(&request, |client| async move {
                if options.device {
                    let mut login = client.device_login().scopes(scopes.iter());
                    if let Some(audience) = &audience {
                        login = login.audience(audience);
                    }
                    for (name, value) in &options.query_params {
                        login = login.param(name, value);
                    }
                    if let Some(show) = options.on_user_code {
                        login = login.on_user_code(move |code| show(code));
                    }
                    if let Some(progress) = options.on_progress {
                        login = login.on_progress(move |p| progress(p));
                    }
                    return login.run().await;
                }
                let mut login = client
                    .code_login()
                    .scopes(scopes.iter())
                    .no_browser(options.no_browser)
                    .callback(if options.no_local_server {
                        CallbackMode::Paste
                    } else {
                        CallbackMode::Auto
                    });
                if let Some(audience) = &audience {
                    login = login.audience(audience);
                }
                // Most providers (OIDC Core 11) issue a refresh token for offline_access
                // only after an explicit consent.
                if options.refresh_tokens {
                    login = login.prompt("consent");
                }
                for (name, value) in &options.query_params {
                    login = login.param(name, value);
                }
                if let Some(uri) = &options.redirect_uri {
                    login = login.redirect_uri(uri);
                } else if !options.redirect_ports.is_empty() {
                    login = login.redirect_ports(options.redirect_ports.iter().copied());
                }
                if let Some(open) = options.open_with {
                    login = login.open_with(move |url| open(url));
                }
                if let Some(timeout) = options.timeout {
                    login = login.timeout(timeout);
                }
                login.run().await
            })
            .await?;
        tracing::info!(app = %self.app_name, account = %self.account, "logged in");
        Ok(token)
    }

    /// A valid token that has every scope in `requested_scopes` (any stored token of the
    /// grant when there are none), refreshed if needed.
    ///
    /// Fails with [`NoSavedTokens`](crate::ErrorKind::NoSavedTokens) when nothing is
    /// stored, [`TokensExpired`](crate::ErrorKind::TokensExpired) when the tokens
    /// expired and cannot be refreshed, and
    /// [`ScopesMismatch`](crate::ErrorKind::ScopesMismatch) when the login did not
    /// ask for a requested scope.
    pub async fn load_tokens<S: Into<String>>(
        &self,
        requested_scopes: impl IntoIterator<Item = S>,
    ) -> Result<Token> {
        let request = self.request().scopes(requested_scopes);
        self.manager.get(&request).await
    }

    /// Like [`load_tokens`](Self::load_tokens), keyed by each requested scope (each key has
    /// a copy of the same token); without requested scopes, keyed by the token's scopes.
    pub async fn load_tokens_by_scope<S: Into<String>>(
        &self,
        requested_scopes: impl IntoIterator<Item = S>,
    ) -> Result<BTreeMap<String, Token>> {
        let requested: Vec<String> = requested_scopes.into_iter().map(Into::into).collect();
        let token = self.load_tokens(requested.iter().cloned()).await?;
        let keys: Vec<String> = if requested.is_empty() {
            token.scopes().iter().map(str::to_owned).collect()
        } else {
            requested
        };
        Ok(keys.into_iter().map(|s| (s, token.clone())).collect())
    }

    /// A credential for requests with the stored tokens: one that refreshes itself
    /// ([`Authorizer::Refreshing`], the manager's [`TokenCredential`]) when the grant has a
    /// refresh token, else the access token as it is ([`Authorizer::AccessToken`]). Fails
    /// as [`load_tokens`](Self::load_tokens) does.
    ///
    /// One authorizer, not one per Globus resource server: an OIDC login is one grant, and
    /// its tokens for other audiences come from [`manager`](Self::manager).
    pub async fn get_authorizers<S: Into<String>>(
        &self,
        requested_scopes: impl IntoIterator<Item = S>,
    ) -> Result<Authorizer> {
        let request = self.request().scopes(requested_scopes);
        let token = self.manager.get(&request).await?;
        if token.refresh_token().is_some() {
            return Ok(Authorizer::Refreshing(self.manager.credential(request)));
        }
        let credential = BearerToken::new(token.access_token().expose_secret()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidResponse,
                "the stored access token holds characters HTTP headers cannot carry; log in again",
            )
        })?;
        Ok(Authorizer::AccessToken(credential))
    }

    /// Revokes the stored tokens at the provider and deletes them; [`Logout`] says whether
    /// there were any and whether the provider confirmed. They are deleted even when
    /// revocation fails.
    pub async fn logout(&self) -> Result<Logout> {
        self.manager.logout(&self.request()).await
    }
}

impl fmt::Debug for NativeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeClient")
            .field("issuer", &self.config.issuer())
            .field("client_id", &self.config.client_id())
            .field("app_name", &self.app_name)
            .field("account", &self.account)
            .field("default_scopes", &self.default_scopes)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl NativeClientBuilder {
    /// The app's name, logged at login. By default `sciauth`.
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }

    /// The account the tokens are stored under (a profile name). By default the app name.
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// The scopes [`login`](NativeClient::login) asks for when its options name none. By
    /// default [`DEFAULT_SCOPES`] (`openid profile email`).
    pub fn default_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.default_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The audience tokens are asked for at login and loaded for. By default none.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Where tokens are kept. By default a [`FileStore`] in
    /// `$XDG_DATA_HOME/sciauth/tokens`.
    pub fn store(mut self, store: impl TokenStore + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// How the client authenticates at the token endpoint. By default not at all (a public
    /// native client).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = AuthSource::Given(auth);
        self
    }

    /// Like [`client_auth`](Self::client_auth), but made by `make` when the first grant
    /// runs (and again after it failed), not when the client is built: a client secret or
    /// private key file is then read only when a grant needs it, never by a run that
    /// answers from the store. `make` reports what is wrong with
    /// [`Error::invalid_input`](crate::Error::invalid_input). By default the
    /// authentication is given (none).
    pub fn client_auth_with(
        mut self,
        make: impl Fn() -> crate::Result<ClientAuth> + Send + Sync + 'static,
    ) -> Self {
        self.auth = AuthSource::Lazy(Arc::new(make));
        self
    }

    /// Whether the client is a robot (a service account) that gets its own tokens with the
    /// client credentials grant: then [`load_tokens`](NativeClient::load_tokens) and the
    /// manager run that grant when nothing stored covers a request, and no login is needed.
    /// The client needs authentication ([`client_auth`](Self::client_auth)). By default no.
    pub fn client_credentials(mut self, yes: bool) -> Self {
        self.client_credentials = yes;
        self
    }

    /// How audiences are sent to the provider. By default [`AudienceParameter::Audience`].
    pub fn audience_parameter(mut self, parameter: AudienceParameter) -> Self {
        self.audience_parameter = parameter;
        self
    }

    /// The transport to the provider (a proxy, CA certificates, timeouts). Whatever it is set
    /// to, requests to the provider never follow a redirect and read at most 1 MiB (see
    /// [`IssuerBuilder::transport`](crate::IssuerBuilder::transport)). By default the
    /// one [`Issuer`] builds.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The client. Opens the store (the default one is created if missing); the provider is
    /// discovered later, when a grant first needs it.
    pub fn build(self) -> Result<NativeClient> {
        let store = match self.store {
            Some(store) => store,
            None => Arc::new(FileStore::open_default()?),
        };
        let (issuer, client_id) = (self.issuer.clone(), self.client_id.clone());
        let (auth, parameter, transport) = (self.auth, self.audience_parameter, self.transport);
        let config = ClientConfig::lazy(&self.issuer, &self.client_id, move || {
            let mut builder = Issuer::builder(issuer.clone());
            if let Some(transport) = &transport {
                builder = builder.transport(transport.clone());
            }
            let (client_id, auth) = (client_id.clone(), auth.clone());
            async move {
                let auth = match auth {
                    AuthSource::Given(auth) => auth,
                    AuthSource::Lazy(make) => make()?,
                };
                let issuer = builder.build().await?;
                Ok(OAuthClient::builder(issuer, client_id)
                    .auth(auth)
                    .audience_parameter(parameter)
                    .build())
            }
        })
        .client_credentials(self.client_credentials);
        let manager = TokenManager::builder(store).client(config.clone()).build();
        Ok(NativeClient {
            manager,
            config,
            account: self.account.unwrap_or_else(|| self.app_name.clone()),
            app_name: self.app_name,
            default_scopes: self.default_scopes,
            audience: self.audience,
        })
    }
}

impl fmt::Debug for NativeClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeClientBuilder")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("app_name", &self.app_name)
            .field("account", &self.account)
            .field("default_scopes", &self.default_scopes)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

type OpenFn = Arc<dyn Fn(&Url) -> io::Result<()> + Send + Sync>;
type UserCodeFn = Arc<dyn Fn(&DeviceAuthorization) + Send + Sync>;
type ProgressFn = Arc<dyn Fn(&DeviceProgress) + Send + Sync>;

/// How [`NativeClient::login`] logs in: fair-research-login's `login` arguments, plus the
/// device flow. Every option is off or empty by default.
#[derive(Clone, Default)]
#[must_use = "options do nothing until passed to login"]
pub struct LoginOptions {
    requested_scopes: Option<Vec<String>>,
    refresh_tokens: bool,
    force: bool,
    no_local_server: bool,
    no_browser: bool,
    device: bool,
    audience: Option<String>,
    query_params: Vec<(String, String)>,
    redirect_uri: Option<String>,
    redirect_ports: Vec<u16>,
    timeout: Option<Duration>,
    open_with: Option<OpenFn>,
    on_user_code: Option<UserCodeFn>,
    on_progress: Option<ProgressFn>,
}

impl LoginOptions {
    /// Options with everything off: the builder's default scopes, browser flow.
    pub fn new() -> Self {
        Self::default()
    }

    /// The scopes to ask for (`requested_scopes`). By default the client's default scopes.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.requested_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Ask for a refresh token (`offline_access`, and `prompt=consent` in the browser flow),
    /// so that the login lasts beyond the first access token. By default no.
    pub fn refresh_tokens(mut self, yes: bool) -> Self {
        self.refresh_tokens = yes;
        self
    }

    /// Log in even when stored tokens cover the scopes. By default no.
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }

    /// No loopback server: the user pastes the address the browser ends on. By default a
    /// loopback server, except in an SSH session.
    pub fn no_local_server(mut self, yes: bool) -> Self {
        self.no_local_server = yes;
        self
    }

    /// Print the URL instead of opening a browser. By default the browser is opened.
    pub fn no_browser(mut self, yes: bool) -> Self {
        self.no_browser = yes;
        self
    }

    /// Use the device flow (RFC 8628): the user opens a URL on any device and enters a code.
    /// By default the browser flow.
    pub fn device(mut self, yes: bool) -> Self {
        self.device = yes;
        self
    }

    /// The audience to ask for. By default the client's.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// An extra parameter for the authorization (or device authorization) request
    /// (`query_params`), e.g. `idphint` for CILogon. By default none.
    pub fn query_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query_params.push((name.into(), value.into()));
        self
    }

    /// The redirect URI registered with the provider, for a provider that accepts no
    /// other (`http://127.0.0.1:8765/callback`): the browser flow listens on its port and
    /// sends it exactly; see [`CodeLogin::redirect_uri`](crate::CodeLogin::redirect_uri).
    /// By default none: any free loopback port.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Ports registered with the provider as `http://127.0.0.1:<port>/callback`, tried in
    /// order until one is free; see
    /// [`CodeLogin::redirect_ports`](crate::CodeLogin::redirect_ports). A
    /// [`redirect_uri`](Self::redirect_uri) wins over them. By default none.
    pub fn redirect_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.redirect_ports = ports.into_iter().collect();
        self
    }

    /// How long the browser flow waits for the user. By default 10 minutes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Called with the authorization URL instead of opening a browser (a GUI, or a test
    /// that logs in headlessly). By default none.
    pub fn open_with(
        mut self,
        open: impl Fn(&Url) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.open_with = Some(Arc::new(open));
        self
    }

    /// Shows the device flow's URL and code. By default they are printed to stderr.
    pub fn on_user_code(
        mut self,
        show: impl Fn(&DeviceAuthorization) + Send + Sync + 'static,
    ) -> Self {
        self.on_user_code = Some(Arc::new(show));
        self
    }

    /// Called after each poll of the device flow that did not end it (for a spinner). By
    /// default nothing.
    pub fn on_progress(
        mut self,
        progress: impl Fn(&DeviceProgress) + Send + Sync + 'static,
    ) -> Self {
        self.on_progress = Some(Arc::new(progress));
        self
    }
}

impl fmt::Debug for LoginOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginOptions")
            .field("requested_scopes", &self.requested_scopes)
            .field("refresh_tokens", &self.refresh_tokens)
            .field("force", &self.force)
            .field("no_local_server", &self.no_local_server)
            .field("no_browser", &self.no_browser)
            .field("device", &self.device)
            .field("audience", &self.audience)
            .field("query_params", &self.query_params)
            .field("redirect_uri", &self.redirect_uri)
            .field("redirect_ports", &self.redirect_ports)
            .finish_non_exhaustive()
    }
}

/// What [`NativeClient::get_authorizers`] hands out: globus-sdk's `RefreshTokenAuthorizer`
/// or `AccessTokenAuthorizer`, as a [`Credential`] for any transport.
#[derive(Debug)]
#[non_exhaustive]
pub enum Authorizer {
    /// The grant has a refresh token: a credential that refreshes ahead of expiry and after
    /// a rejection, sharing refreshes with every other task and process.
    Refreshing(TokenCredential),
    /// No refresh token: the access token as it is, until it expires.
    AccessToken(BearerToken),
}

#[async_trait]
impl Credential for Authorizer {
    async fn header(&self) -> sciauth_credentials::Result<Option<AuthHeader>> {
        match self {
            Self::Refreshing(credential) => credential.header().await,
            Self::AccessToken(credential) => credential.header().await,
        }
    }

    fn ready_header(&self) -> Ready {
        match self {
            Self::Refreshing(credential) => credential.ready_header(),
            Self::AccessToken(credential) => credential.ready_header(),
        }
    }

    async fn rejected(&self, sent: Option<&AuthHeader>) -> sciauth_credentials::Result<Renewal> {
        match self {
            Self::Refreshing(credential) => credential.rejected(sent).await,
            Self::AccessToken(credential) => credential.rejected(sent).await,
        }
    }
}
