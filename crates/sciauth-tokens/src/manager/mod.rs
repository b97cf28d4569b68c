//! The [`TokenManager`]: finds a stored token that covers a request, refreshes it ahead of
//! expiry, and shares each refresh among every task and process that asks at once.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use secrecy::{ExposeSecret, SecretString};

use sciauth_credentials::{Clock, SystemClock};

use crate::client::OAuthClient;
use crate::error::{Error, ErrorKind, OAuthErrorCode, Result};
use crate::grant::revocation::TokenTypeHint;
use crate::store::{GrantKey, LockedGrant, StoredGrant, TokenInfo, TokenStore};
use crate::token::{Token, token_type};

mod credential;
mod observer;
pub(crate) mod request;

pub use credential::TokenCredential;
pub use observer::{ManagerObserver, ProviderGrant};
pub use request::TokenRequest;

/// How long a token whose expiry the provider did not give is used before it is replaced,
/// unless set otherwise.
pub const DEFAULT_UNKNOWN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// A refresh ahead of expiry starts when less than this is left (or 10% of the lifetime,
/// whichever is more; at most half the lifetime).
const REFRESH_AHEAD_MIN: Duration = Duration::from_secs(60);

/// After a failed background refresh, the next one waits this long (the token in hand is
/// still valid; a provider that is down should not get a refresh per request).
const BACKGROUND_RETRY_AFTER: Duration = Duration::from_secs(30);

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
    client: ClientSource,
    client_credentials: bool,
    token_exchange: bool,
}

type BuildClient =
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<OAuthClient>> + Send>> + Send + Sync;

#[derive(Clone)]
enum ClientSource {
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
    /// [`TokenManagerBuilder::clock`] says otherwise.
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

type Jitter = Arc<dyn Fn() -> f64 + Send + Sync>;

/// Keeps tokens in a [`TokenStore`] and hands out one that covers each request: stored,
/// refreshed, or from a grant the configuration allows.
///
/// # How a request finds a token
///
/// A [`TokenRequest`] names an account, optionally the issuer and client (by default the
/// first client configured), scopes, an audience and a minimum time left. The grant of
/// (issuer, client, account) is looked up, then among its access tokens one whose audience
/// equals the request's (`None` matches only `None`), whose scopes include every requested
/// scope (as strings: a token is kept per exact scope set), and that stays valid for at
/// least the minimum time left. If none does:
///
/// 1. the grant's refresh token gets one, with the request's scopes (down-scoping) and
///    audience; a scope the grant does not [grant](crate::Scopes::grants) fails with
///    [`ErrorKind::ScopesMismatch`], naming it, before the provider is asked. A WLCG path
///    scope below one of the grant's (`storage.read:/data` on a grant of `storage.read:/`)
///    is granted: the refresh asks for the narrower token, which is kept beside the wider
///    one under its own scopes;
/// 2. else, where the [`ClientConfig`] allows, a token exchange of a stored access token, or
///    the client credentials grant;
/// 3. else the request fails: [`ErrorKind::NoSavedTokens`] (nothing stored: log in),
///    [`ErrorKind::TokensExpired`] (stored but expired and not refreshable),
///    [`ErrorKind::ScopesMismatch`] (stored, but not for these scopes or this audience).
///
/// # Refresh ahead, single flight
///
/// A token with less than max(60 s, 10% of its lifetime) left (plus up to half that again,
/// at random, so that many clients do not refresh at once) is still handed out while it is
/// valid for the request, and refreshed in the background; a caller waits only when no
/// stored token is valid for it. Concurrent callers for one grant share one refresh: in this
/// process through a per-grant async mutex (a cached hit takes no lock at all), across
/// processes through the store's lock: lock, re-read, refresh only if still needed, write,
/// unlock. The new refresh token is written to the store before the new access token is
/// handed out. If the provider answers `invalid_grant`, the store is read once more, since
/// another process may have rotated the refresh token.
///
/// Cloning is cheap and shares everything.
///
/// ```no_run
/// # async fn run(client: sciauth_tokens::OAuthClient) -> sciauth_tokens::Result<()> {
/// use std::time::Duration;
/// use sciauth_tokens::{FileStore, TokenManager, TokenRequest};
///
/// let manager = TokenManager::builder(FileStore::open_default()?).client(client).build();
/// let request = TokenRequest::new("default")
///     .scopes(["storage.read:/"])
///     .audience("https://se.example.org")
///     .min_valid(Duration::from_secs(600));
/// let token = manager.get(&request).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn TokenStore>,
    clients: Vec<ClientConfig>,
    clock: Arc<dyn Clock>,
    jitter: Jitter,
    unknown_lifetime: Duration,
    /// Per client (same order as `clients`), the grants by account: a cached `get` finds
    /// its state with the request's account as it is, without building a `GrantKey`.
    grants: Vec<ArcSwap<HashMap<String, Arc<GrantState>>>>,
    observer: Option<Arc<dyn ManagerObserver>>,
}

/// What this process knows about one grant, and the single-flight gate of its refreshes.
#[derive(Default)]
struct GrantState {
    /// The grant as last read or written; read without locking.
    snapshot: ArcSwapOption<Snapshot>,
    /// Held while fetching a new token for this grant.
    refreshing: tokio::sync::Mutex<()>,
    /// Whether a background refresh runs.
    background: AtomicBool,
    /// Unix seconds before which no background refresh starts (after a failed one).
    background_not_before: AtomicU64,
}

struct Snapshot {
    grant: StoredGrant,
    /// Each access token (same order) as the `Token` handed out, made once: a hit clones a
    /// reference count.
    tokens: Vec<Token>,
    /// When each access token (same order) is due for a refresh ahead of expiry.
    refresh_at: Vec<SystemTime>,
    /// When each access token stops being usable.
    usable_until: Vec<SystemTime>,
}

/// What a caller waits for.
#[derive(Clone)]
pub(crate) enum Goal {
    /// A token valid for the request (possibly due for a refresh ahead).
    Valid,
    /// A token not yet due for a refresh ahead (a background refresh).
    NotDue,
    /// A token other than this one, which a server rejected.
    Replace(SecretString),
}

/// A token handed out, and until when it may be handed out again without asking.
pub(crate) struct Served {
    pub(crate) token: Token,
    pub(crate) fresh_until: SystemTime,
}

/// What [`TokenManager::logout`] did.
#[derive(Debug)]
pub struct Logout {
    found: bool,
    revocation_error: Option<Error>,
}

impl Logout {
    /// Whether a grant was stored (and is now deleted).
    pub fn found(&self) -> bool {
        self.found
    }

    /// Whether the provider confirmed the revocation. `false` when nothing was stored or
    /// revocation failed (the tokens were deleted locally all the same).
    pub fn revoked(&self) -> bool {
        self.found && self.revocation_error.is_none()
    }

    /// Why revocation failed, if it did: the tokens may still be valid at the provider
    /// until they expire.
    pub fn revocation_error(&self) -> Option<&Error> {
        self.revocation_error.as_ref()
    }
}

/// Configures a [`TokenManager`].
pub struct TokenManagerBuilder {
    store: Arc<dyn TokenStore>,
    clients: Vec<ClientConfig>,
    clock: Option<Arc<dyn Clock>>,
    jitter: Jitter,
    unknown_lifetime: Duration,
    observer: Option<Arc<dyn ManagerObserver>>,
}

impl TokenManagerBuilder {
    /// Adds a client (an [`OAuthClient`], or a [`ClientConfig`] that allows more grants).
    /// The first one added is the default for requests that name neither issuer nor client.
    pub fn client(mut self, client: impl Into<ClientConfig>) -> Self {
        self.clients.push(client.into());
        self
    }

    /// The clock that judges expiry. By default, the first client's issuer clock (so that
    /// the manager and the grants agree), or the system clock when there is no client or the
    /// first is [lazy](ClientConfig::lazy).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Where the random part of the refresh-ahead margin comes from: a function returning a
    /// number in `[0, 1)`. By default, a fast non-cryptographic generator; tests pass a
    /// constant.
    pub fn jitter(mut self, jitter: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.jitter = Arc::new(jitter);
        self
    }

    /// How long an access token whose expiry the provider did not give is used. By default,
    /// [`DEFAULT_UNKNOWN_LIFETIME`] (15 minutes).
    pub fn unknown_lifetime(mut self, lifetime: Duration) -> Self {
        self.unknown_lifetime = lifetime;
        self
    }

    /// Who is told what the manager does (cache hits and misses, single-flight waits,
    /// requests to providers), for metrics. By default, nobody.
    pub fn observer(mut self, observer: Arc<dyn ManagerObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The manager.
    pub fn build(self) -> TokenManager {
        let clock = self.clock.unwrap_or_else(|| match self.clients.first() {
            Some(ClientConfig {
                client: ClientSource::Ready(client),
                ..
            }) => client.issuer().clock().clone(),
            _ => Arc::new(SystemClock),
        });
        let grants = self.clients.iter().map(|_| ArcSwap::default()).collect();
        TokenManager {
            inner: Arc::new(Shared {
                store: self.store,
                clients: self.clients,
                clock,
                jitter: self.jitter,
                unknown_lifetime: self.unknown_lifetime,
                grants,
                observer: self.observer,
            }),
        }
    }
}

impl fmt::Debug for TokenManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManagerBuilder")
            .field("store", &self.store)
            .field("clients", &self.clients)
            .field("unknown_lifetime", &self.unknown_lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// A builder for a manager keeping tokens in `store`.
    pub fn builder(store: impl TokenStore + 'static) -> TokenManagerBuilder {
        TokenManagerBuilder {
            store: Arc::new(store),
            clients: Vec::new(),
            clock: None,
            jitter: Arc::new(fastrand::f64),
            unknown_lifetime: DEFAULT_UNKNOWN_LIFETIME,
            observer: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The clock that judges expiry.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The key `request`'s grant is stored under.
    pub fn key(&self, request: &TokenRequest) -> Result<GrantKey> {
        let config = self.config(request)?;
        Ok(key_of(config, request))
    }

    /// An access token that covers `request`; see [how a request finds a
    /// token](Self#how-a-request-finds-a-token).
    pub async fn get(&self, request: &TokenRequest) -> Result<Token> {
        self.serve(request, Goal::Valid).await.map(|s| s.token)
    }

    /// The stored access token for `request` if one covers it and is not yet due for a
    /// refresh ahead of expiry, found without waiting on anything: from this manager's
    /// snapshot, else read from the store on the calling thread (for stores that can:
    /// [`TokenStore::get_now`]). No provider, no lock, no async runtime.
    ///
    /// `None` means [`get`](Self::get) must run: nothing stored covers the request, the token
    /// is due for a refresh, the store cannot answer synchronously, or reading it failed
    /// (then `get` reports the failure). A command line answers `$(sciauth token)` with this
    /// before it starts a runtime.
    pub fn get_now(&self, request: &TokenRequest) -> Option<Token> {
        let (client, config) = self.config_at(request).ok()?;
        let state = self.state_at(client, request.account());
        if state.snapshot.load().is_none() {
            let stored = self.inner.store.get_now(&key_of(config, request))?.ok()?;
            self.remember(&state, stored);
        }
        self.satisfied(&state, request, &Goal::NotDue)
            .map(|served| served.token)
    }

    /// A token for `request` that is not yet due for a refresh ahead of expiry, and the
    /// time it will be due: the stored one if it is not due yet, else a new one, which the
    /// caller waits for (one refresh for every task and process asking at once, as
    /// [`get`](Self::get) does).
    ///
    /// For long-running jobs that hand the token on (a WLCG token file that other programs
    /// read) and renew it on the manager's schedule: sleep until the time returned, call
    /// again. The time is the refresh-ahead point (max(60 s, 10% of the lifetime) before
    /// expiry, jittered) or the point where less than the request's minimum time would be
    /// left, whichever comes first; it may be now or past when the provider issues tokens
    /// shorter-lived than the request's minimum.
    pub async fn get_fresh(&self, request: &TokenRequest) -> Result<(Token, SystemTime)> {
        self.serve(request, Goal::NotDue)
            .await
            .map(|served| (served.token, served.fresh_until))
    }

    /// A new access token for `request` even if a stored one covers it (for example after a
    /// server rejected it). Concurrent callers still share one refresh.
    pub async fn refresh(&self, request: &TokenRequest) -> Result<Token> {
        let current = self.get(request).await?;
        self.serve(request, Goal::Replace(current.access_token().clone()))
            .await
            .map(|s| s.token)
    }

    /// A [`Credential`](sciauth_credentials::Credential) that sends `request`'s token as
    /// `Authorization: Bearer`, for a transport. Its `ready_header` reads a snapshot (no
    /// lock, no allocation); a rejected token is replaced once.
    pub fn credential(&self, request: TokenRequest) -> TokenCredential {
        TokenCredential::new(self.clone(), request)
    }

    /// Runs an interactive login with `request`'s client and stores the result as the
    /// account's grant, replacing (and revoking) what was stored.
    ///
    /// `run` gets the client and returns the token, for example from
    /// [`OAuthClient::device_login`] or [`OAuthClient::code_login`] with the request's
    /// scopes. The request's scopes are recorded as the grant's, together with those the
    /// provider granted; they are what later refreshes may ask for.
    pub async fn login<F, Fut>(&self, request: &TokenRequest, run: F) -> Result<Token>
    where
        F: FnOnce(OAuthClient) -> Fut,
        Fut: Future<Output = Result<Token>>,
    {
        let config = self.config(request)?;
        let token = run(config.client().await?).await?;
        self.replace(config, request, token).await
    }

    /// Stores `token`, obtained elsewhere (a login run by the caller), as the grant of
    /// `request`'s account, replacing (and revoking) what was stored. Like
    /// [`login`](Self::login) without running the grant.
    pub async fn save(&self, request: &TokenRequest, token: Token) -> Result<Token> {
        let config = self.config(request)?;
        self.replace(config, request, token).await
    }

    /// DIRAC's `updateToken`: stores a user's token as the one grant of `request`'s account,
    /// revoking the refresh token it replaces. Refuses a token without a refresh token or
    /// with one known to have expired ([`ErrorKind::InvalidInput`]).
    pub async fn update(&self, request: &TokenRequest, token: Token) -> Result<Token> {
        let config = self.config(request)?;
        let candidate = StoredGrant::from_token(
            key_of(config, request),
            &token,
            request.requested_scopes(),
            None,
        );
        if token.refresh_token().is_none() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the token has no refresh token, so it cannot be kept for later (log in with \
                 offline_access)",
            ));
        }
        if !candidate.is_refreshable_at(self.inner.clock.now()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the token's refresh token has already expired; log in again",
            ));
        }
        self.replace(config, request, token).await
    }

    /// Revokes `request`'s grant at the provider (its refresh token, which ends the grant,
    /// or else its access tokens), then deletes it from the store. It is deleted even when
    /// revocation fails; [`Logout::revocation_error`] says so.
    pub async fn logout(&self, request: &TokenRequest) -> Result<Logout> {
        let config = self.config(request)?;
        let key = key_of(config, request);
        let state = self.state(&key);
        let _flight = state.refreshing.lock().await;
        let mut locked = self.inner.store.lock(&key).await?;
        let Some(grant) = locked.get().await? else {
            state.snapshot.store(None);
            return Ok(Logout {
                found: false,
                revocation_error: None,
            });
        };
        let revocation = match config.client().await {
            Ok(client) => revoke(&client, &grant).await,
            Err(error) => Err(error),
        };
        locked.delete().await?;
        locked.release().await?;
        state.snapshot.store(None);
        let revocation_error = revocation.err();
        match &revocation_error {
            None => tracing::info!(%key, "logged out: tokens revoked and deleted"),
            Some(error) => tracing::warn!(
                %key,
                %error,
                "tokens deleted locally, but the provider did not confirm their revocation; \
                 they stay valid there until they expire"
            ),
        }
        Ok(Logout {
            found: true,
            revocation_error,
        })
    }

    /// DIRAC's `deleteToken`: deletes `request`'s grant from the store without telling the
    /// provider; `true` if there was one.
    pub async fn delete(&self, request: &TokenRequest) -> Result<bool> {
        let key = self.key(request)?;
        let state = self.state(&key);
        let _flight = state.refreshing.lock().await;
        let deleted = self.inner.store.delete(&key).await?;
        state.snapshot.store(None);
        Ok(deleted)
    }

    /// What is stored, without secrets: issuer, client, account, scopes, audiences, expiry.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        Ok(self
            .inner
            .store
            .list()
            .await?
            .iter()
            .map(StoredGrant::info)
            .collect())
    }

    /// The stored grant of `request`'s account, as the store has it now.
    pub async fn stored(&self, request: &TokenRequest) -> Result<Option<StoredGrant>> {
        let key = self.key(request)?;
        self.inner.store.get(&key).await
    }

    fn config(&self, request: &TokenRequest) -> Result<&ClientConfig> {
        self.config_at(request).map(|(_, config)| config)
    }

    /// The client for `request`, and its place among the manager's clients.
    fn config_at(&self, request: &TokenRequest) -> Result<(usize, &ClientConfig)> {
        if request.account().is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a token request needs an account name (a profile, user or service name)",
            ));
        }
        let matches = |config: &&ClientConfig| {
            request
                .requested_issuer()
                .is_none_or(|issuer| config.issuer == issuer)
                && request
                    .requested_client_id()
                    .is_none_or(|id| config.client_id == id)
        };
        self.inner
            .clients
            .iter()
            .enumerate()
            .find(|(_, c)| matches(c))
            .ok_or_else(|| {
                let configured: Vec<String> = self
                    .inner
                    .clients
                    .iter()
                    .map(|c| format!("{} ({})", c.issuer, c.client_id))
                    .collect();
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "no client is configured for issuer {} and client {}; configured: {}",
                        request.requested_issuer().unwrap_or("(any)"),
                        request.requested_client_id().unwrap_or("(any)"),
                        if configured.is_empty() {
                            "none".to_owned()
                        } else {
                            configured.join(", ")
                        }
                    ),
                )
            })
    }

    /// The state of `key`'s grant (its client is one of ours: keys are made from them).
    fn state(&self, key: &GrantKey) -> Arc<GrantState> {
        let client = self
            .inner
            .clients
            .iter()
            .position(|c| c.issuer == key.issuer() && c.client_id == key.client_id())
            .unwrap_or_default();
        self.state_at(client, key.account())
    }

    /// The state of the grant of `account` at the `client`th client.
    fn state_at(&self, client: usize, account: &str) -> Arc<GrantState> {
        let Some(grants) = self.inner.grants.get(client) else {
            return Arc::default();
        };
        if let Some(state) = grants.load().get(account) {
            return state.clone();
        }
        grants.rcu(|grants| {
            let mut grants = HashMap::clone(grants);
            grants
                .entry(account.to_owned())
                .or_insert_with(|| Arc::new(GrantState::default()));
            grants
        });
        grants.load().get(account).cloned().unwrap_or_default()
    }

    /// The token for `request`: from the snapshot if it is there, else through the slow
    /// path. Starts a background refresh when the one handed out is due.
    pub(crate) async fn serve(&self, request: &TokenRequest, goal: Goal) -> Result<Served> {
        let (client, config) = self.config_at(request)?;
        if matches!(goal, Goal::Valid) {
            if let Some(served) = self.cached(client, config, request) {
                self.observe(|o| o.lookup(true));
                return Ok(served);
            }
            self.observe(|o| o.lookup(false));
        }
        let state = self.state_at(client, request.account());
        let key = key_of(config, request);
        self.obtain(config, &key, &state, request, goal).await
    }

    /// A stored token valid for `request` from this process's snapshot, if there is one;
    /// starts a background refresh when it is due. Reads through `ArcSwap` guards: no lock,
    /// no reference count changed, no allocation.
    fn cached(
        &self,
        client: usize,
        config: &ClientConfig,
        request: &TokenRequest,
    ) -> Option<Served> {
        let grants = self.inner.grants.get(client)?.load();
        let state = grants.get(request.account())?;
        let snapshot = state.snapshot.load();
        let snapshot = snapshot.as_ref()?;
        let now = self.inner.clock.now();
        let (index, due) = snapshot.find(request, now)?;
        if due {
            self.refresh_in_background(config, state, &snapshot.grant, request, now);
        }
        Some(snapshot.served(index, request))
    }

    /// The slow path: one caller per grant at a time; re-check what others did in this
    /// process, then in the store, then under the store's lock, and only then ask the
    /// provider.
    async fn obtain(
        &self,
        config: &ClientConfig,
        key: &GrantKey,
        state: &GrantState,
        request: &TokenRequest,
        goal: Goal,
    ) -> Result<Served> {
        let _flight = match state.refreshing.try_lock() {
            Ok(flight) => flight,
            Err(_) => {
                let waiting = std::time::Instant::now();
                let flight = state.refreshing.lock().await;
                self.observe(|o| o.flight_wait(waiting.elapsed()));
                flight
            }
        };
        if let Some(served) = self.satisfied(state, request, &goal) {
            return Ok(served);
        }
        let stored = self.inner.store.get(key).await?;
        self.remember(state, stored);
        if let Some(served) = self.satisfied(state, request, &goal) {
            return Ok(served);
        }
        let mut locked = self.inner.store.lock(key).await?;
        let stored = locked.get().await?;
        self.remember(state, stored.clone());
        if let Some(served) = self.satisfied(state, request, &goal) {
            return Ok(served);
        }
        let grant = self
            .fetch(config, key, state, &mut *locked, stored, request, &goal)
            .await?;
        locked.release().await?;
        self.remember(state, Some(grant));
        self.satisfied(state, request, &Goal::Valid)
            .or_else(|| {
                // A provider that gives tokens shorter than the request's minimum: hand out the
                // newest one all the same rather than refresh forever.
                let snapshot = state.snapshot.load_full()?;
                let index = snapshot.newest_for(request)?;
                Some(snapshot.served(index, request))
            })
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidResponse,
                    format!("the token just obtained for {key} does not cover the request"),
                )
            })
    }

    /// Gets a new token from the provider and stores it (under the caller's lock) before
    /// anyone can use it. Returns the grant as stored.
    #[allow(
        clippy::too_many_arguments,
        reason = "the slow path's state, passed down rather than bundled"
    )]
    async fn fetch(
        &self,
        config: &ClientConfig,
        key: &GrantKey,
        state: &GrantState,
        locked: &mut dyn LockedGrant,
        stored: Option<StoredGrant>,
        request: &TokenRequest,
        goal: &Goal,
    ) -> Result<StoredGrant> {
        let now = self.inner.clock.now();
        if let Some(grant) = stored.as_ref().filter(|g| g.is_refreshable_at(now)) {
            // Path scopes below the grant's (`storage.read:/data` on `storage.read:/`) are a
            // refresh away: a down-scoped token, kept under its own scopes.
            if !grant.scopes().is_empty() && !grant.scopes().grants_all(request.requested_scopes())
            {
                return Err(scopes_mismatch(key, grant, request));
            }
            let refreshed = self.observed(
                config,
                ProviderGrant::RefreshToken,
                self.refresh_grant(config, grant, request),
            );
            let token = match refreshed.await {
                Ok(token) => token,
                Err(error) if error.oauth_code() == Some(&OAuthErrorCode::InvalidGrant) => {
                    // Another process (or a tool that does not take our lock) may have
                    // rotated the refresh token since we read it: read once more.
                    let again = locked.get().await?;
                    let rotated = again.as_ref().is_some_and(|again| {
                        again.refresh_token().map(ExposeSecret::expose_secret)
                            != grant.refresh_token().map(ExposeSecret::expose_secret)
                    });
                    if !rotated {
                        return Err(refresh_refused(key, error));
                    }
                    tracing::debug!(%key, "refresh token rotated elsewhere; using the new one");
                    self.remember(state, again.clone());
                    if self.satisfied(state, request, goal).is_some() {
                        return again.ok_or_else(|| refresh_refused(key, error));
                    }
                    let Some(again) = again.filter(|g| g.is_refreshable_at(now)) else {
                        return Err(refresh_refused(key, error));
                    };
                    let token = self
                        .observed(
                            config,
                            ProviderGrant::RefreshToken,
                            self.refresh_grant(config, &again, request),
                        )
                        .await
                        .map_err(|e| map_refresh_error(key, &again, request, e))?;
                    return self.persist(locked, Some(again), token, request).await;
                }
                Err(error) => return Err(map_refresh_error(key, grant, request, error)),
            };
            return self.persist(locked, stored, token, request).await;
        }
        if config.token_exchange
            && let Some(subject) = stored.as_ref().and_then(|g| best_subject(g, now, self))
        {
            let exchanged = async {
                let client = config.client().await?;
                let mut exchange = client.exchange(subject, token_type::ACCESS_TOKEN);
                if !request.requested_scopes().is_empty() {
                    exchange = exchange.scopes(request.requested_scopes().iter());
                }
                if let Some(audience) = request.requested_audience() {
                    exchange = exchange.audience(audience);
                }
                exchange.send().await
            };
            let token = self
                .observed(config, ProviderGrant::TokenExchange, exchanged)
                .await?;
            return self.persist(locked, stored, token, request).await;
        }
        if config.client_credentials {
            let granted = async {
                let client = config.client().await?;
                let mut grant = client.client_credentials();
                if !request.requested_scopes().is_empty() {
                    grant = grant.scopes(request.requested_scopes().iter());
                }
                if let Some(audience) = request.requested_audience() {
                    grant = grant.audience(audience);
                }
                grant.send().await
            };
            let token = self
                .observed(config, ProviderGrant::ClientCredentials, granted)
                .await?;
            return self.persist(locked, stored, token, request).await;
        }
        Err(not_refreshable(key, stored.as_ref(), request))
    }

    fn observe(&self, tell: impl FnOnce(&dyn ManagerObserver)) {
        if let Some(observer) = &self.inner.observer {
            tell(observer.as_ref());
        }
    }

    /// Runs `request` (a grant at the provider of `config`) and tells the observer how it
    /// went.
    async fn observed<T>(
        &self,
        config: &ClientConfig,
        grant: ProviderGrant,
        request: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(observer) = &self.inner.observer else {
            return request.await;
        };
        let started = std::time::Instant::now();
        let result = request.await;
        observer.provider_request(
            config.issuer(),
            config.client_id(),
            grant,
            result.as_ref().map(|_| ()),
            started.elapsed(),
        );
        result
    }

    async fn refresh_grant(
        &self,
        config: &ClientConfig,
        grant: &StoredGrant,
        request: &TokenRequest,
    ) -> Result<Token> {
        let refresh_token = grant.refresh_token().cloned().ok_or_else(|| {
            Error::new(ErrorKind::NoRefreshToken, "the grant has no refresh token")
        })?;
        let client = config.client().await?;
        let mut refresh = client.refresh_with(refresh_token);
        if !request.requested_scopes().is_empty() {
            refresh = refresh.scopes(request.requested_scopes().iter());
        }
        if let Some(audience) = request.requested_audience() {
            refresh = refresh.audience(audience);
        }
        tracing::debug!(key = %grant.key(), audience = request.requested_audience(), scopes = %request.requested_scopes(), "refreshing");
        refresh.send().await
    }

    /// Records `token` in the grant and writes it: the new refresh token reaches the store
    /// before the new access token reaches anyone.
    async fn persist(
        &self,
        locked: &mut dyn LockedGrant,
        stored: Option<StoredGrant>,
        token: Token,
        request: &TokenRequest,
    ) -> Result<StoredGrant> {
        let now = self.inner.clock.now();
        let mut grant = stored.unwrap_or_else(|| StoredGrant::new(locked.key().clone()));
        let scopes = if !token.scopes().is_empty() {
            // A provider that answers a down-scoping request with a wider path scope gives a
            // token good for the narrower one too: keep it under both, so that the next
            // request for the same scopes finds it instead of asking again.
            let mut granted = token.scopes().clone();
            for wanted in request.requested_scopes() {
                if !granted.contains(wanted) && token.scopes().grants(wanted) {
                    granted.insert(wanted.clone());
                }
            }
            granted
        } else if !request.requested_scopes().is_empty() {
            request.requested_scopes().clone()
        } else {
            grant.scopes().clone()
        };
        grant.record(
            &token,
            scopes,
            request.requested_audience().map(str::to_owned),
            now,
            self.inner.unknown_lifetime,
        );
        locked.put(&grant).await?;
        Ok(grant)
    }

    /// Replaces the account's grant with `token`'s, revoking a replaced refresh token.
    async fn replace(
        &self,
        config: &ClientConfig,
        request: &TokenRequest,
        token: Token,
    ) -> Result<Token> {
        let expected_issuer = config.issuer();
        if token.issuer() != expected_issuer || token.client_id() != config.client_id() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the token was issued by {} to client {}, not by {expected_issuer} to {}",
                    token.issuer(),
                    token.client_id(),
                    config.client_id()
                ),
            ));
        }
        let key = key_of(config, request);
        let state = self.state(&key);
        let _flight = state.refreshing.lock().await;
        let grant = StoredGrant::from_token(
            key.clone(),
            &token,
            request.requested_scopes(),
            request.requested_audience().map(str::to_owned),
        );
        let mut locked = self.inner.store.lock(&key).await?;
        let old = locked.get().await?;
        locked.put(&grant).await?;
        locked.release().await?;
        self.remember(&state, Some(grant.clone()));
        let replaced = old
            .as_ref()
            .and_then(StoredGrant::refresh_token)
            .filter(|old| {
                grant.refresh_token().map(ExposeSecret::expose_secret) != Some(old.expose_secret())
            });
        if let Some(old) = replaced {
            let revoked = match config.client().await {
                Ok(client) => client.revoke(old, Some(TokenTypeHint::RefreshToken)).await,
                Err(error) => Err(error),
            };
            if let Err(error) = revoked {
                tracing::warn!(%key, %error, "the replaced refresh token could not be revoked");
            }
        }
        tracing::info!(%key, scopes = %grant.scopes(), "tokens stored");
        Ok(grant.token(&grant.access_tokens()[0]))
    }

    fn remember(&self, state: &GrantState, grant: Option<StoredGrant>) {
        let snapshot = grant.map(|grant| {
            let (refresh_at, usable_until) = grant
                .access_tokens()
                .iter()
                .map(|entry| {
                    let until = entry.usable_until(self.inner.unknown_lifetime);
                    let lifetime = until.duration_since(entry.issued_at()).unwrap_or_default();
                    let ahead = refresh_ahead(lifetime, (self.inner.jitter)());
                    (until.checked_sub(ahead).unwrap_or(UNIX_EPOCH), until)
                })
                .unzip();
            let tokens = grant
                .access_tokens()
                .iter()
                .map(|entry| grant.token(entry))
                .collect();
            Arc::new(Snapshot {
                grant,
                tokens,
                refresh_at,
                usable_until,
            })
        });
        state.snapshot.store(snapshot);
    }

    fn satisfied(&self, state: &GrantState, request: &TokenRequest, goal: &Goal) -> Option<Served> {
        let snapshot = state.snapshot.load_full()?;
        let now = self.inner.clock.now();
        let (index, due) = snapshot.find(request, now)?;
        let ok = match goal {
            Goal::Valid => true,
            Goal::NotDue => !due,
            Goal::Replace(rejected) => {
                snapshot.grant.access_tokens()[index]
                    .access_token()
                    .expose_secret()
                    != rejected.expose_secret()
            }
        };
        ok.then(|| snapshot.served(index, request))
    }

    fn refresh_in_background(
        &self,
        config: &ClientConfig,
        state: &Arc<GrantState>,
        grant: &StoredGrant,
        request: &TokenRequest,
        now: SystemTime,
    ) {
        let can =
            grant.is_refreshable_at(now) || config.client_credentials || config.token_exchange;
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if !can
            || now_secs < state.background_not_before.load(Ordering::Relaxed)
            || state.background.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (manager, state, request) = (self.clone(), state.clone(), request.clone());
        let key = grant.key().clone();
        tokio::spawn(async move {
            let config = match manager.config(&request) {
                Ok(config) => config,
                Err(_) => {
                    state.background.store(false, Ordering::Release);
                    return;
                }
            };
            let result = manager
                .obtain(config, &key, &state, &request, Goal::NotDue)
                .await;
            if let Err(error) = result {
                let retry = now_secs + BACKGROUND_RETRY_AFTER.as_secs();
                state.background_not_before.store(retry, Ordering::Relaxed);
                tracing::warn!(%key, %error, "refresh ahead of expiry failed; the current token is used until it expires");
            }
            state.background.store(false, Ordering::Release);
        });
    }
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("store", &self.inner.store)
            .field("clients", &self.inner.clients)
            .field("unknown_lifetime", &self.inner.unknown_lifetime)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The best access token for `request` that is valid now for the request's minimum time
    /// left, and whether it is due for a refresh ahead.
    fn find(&self, request: &TokenRequest, now: SystemTime) -> Option<(usize, bool)> {
        let needed = sciauth_credentials::time::later(now, request.required_time_left());
        let mut best: Option<usize> = None;
        for (index, entry) in self.grant.access_tokens().iter().enumerate() {
            let covers = entry.audience() == request.requested_audience()
                && entry.scopes().contains_all(request.requested_scopes())
                && self.usable_until[index] > needed;
            if covers && best.is_none_or(|b| self.usable_until[index] > self.usable_until[b]) {
                best = Some(index);
            }
        }
        best.map(|index| (index, now >= self.refresh_at[index]))
    }

    /// The newest token for `request`'s audience and scopes, however short its life.
    fn newest_for(&self, request: &TokenRequest) -> Option<usize> {
        self.grant
            .access_tokens()
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.audience() == request.requested_audience()
                    && e.scopes().contains_all(request.requested_scopes())
            })
            .max_by_key(|(_, e)| e.issued_at())
            .map(|(index, _)| index)
    }

    fn served(&self, index: usize, request: &TokenRequest) -> Served {
        let until_min_valid = self.usable_until[index]
            .checked_sub(request.required_time_left())
            .unwrap_or(UNIX_EPOCH);
        Served {
            token: self.tokens[index].clone(),
            fresh_until: self.refresh_at[index].min(until_min_valid),
        }
    }
}

/// How long before expiry a token of `lifetime` is refreshed: max(60 s, 10%), plus up to
/// half that again by `jitter` in `[0, 1)`, at most half the lifetime.
fn refresh_ahead(lifetime: Duration, jitter: f64) -> Duration {
    let base = REFRESH_AHEAD_MIN.max(lifetime / 10);
    let jitter = jitter.clamp(0.0, 1.0);
    base.mul_f64(1.0 + 0.5 * jitter).min(lifetime / 2)
}

fn key_of(config: &ClientConfig, request: &TokenRequest) -> GrantKey {
    GrantKey::new(config.issuer(), config.client_id(), request.account())
}

/// A valid access token of `grant` to exchange: the one that lives longest.
fn best_subject(
    grant: &StoredGrant,
    now: SystemTime,
    manager: &TokenManager,
) -> Option<SecretString> {
    grant
        .access_tokens()
        .iter()
        .filter(|e| e.usable_until(manager.inner.unknown_lifetime) > now)
        .max_by_key(|e| e.usable_until(manager.inner.unknown_lifetime))
        .map(|e| e.access_token().clone())
}

async fn revoke(client: &OAuthClient, grant: &StoredGrant) -> Result<()> {
    if let Some(refresh) = grant.refresh_token() {
        return client
            .revoke(refresh, Some(TokenTypeHint::RefreshToken))
            .await;
    }
    let mut first_error = None;
    for entry in grant.access_tokens() {
        if let Err(error) = client
            .revoke(entry.access_token(), Some(TokenTypeHint::AccessToken))
            .await
        {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn scopes_mismatch(key: &GrantKey, grant: &StoredGrant, request: &TokenRequest) -> Error {
    let missing = grant.scopes().missing(request.requested_scopes());
    // A path scope wider than the grant's: say which of the grant's paths fall short.
    let narrower: Vec<&str> = missing
        .iter()
        .filter_map(|wanted| crate::wlcg::path_scope(wanted))
        .flat_map(|(authz, _)| {
            grant
                .scopes()
                .iter()
                .filter(move |held| crate::wlcg::path_scope(held).is_some_and(|(a, _)| a == authz))
        })
        .collect();
    let hint = if narrower.is_empty() {
        String::new()
    } else {
        format!(
            "; the grant's {} covers only the paths below it",
            narrower.join(", ")
        )
    };
    Error::new(
        ErrorKind::ScopesMismatch,
        format!(
            "the stored grant of {key} does not have the scopes {missing} (it has: {}){hint}; \
             log in again asking for them",
            grant.scopes()
        ),
    )
}

fn refresh_refused(key: &GrantKey, error: Error) -> Error {
    let message = format!(
        "the provider no longer accepts the refresh token of {key} ({}): log in again",
        error
            .oauth_error()
            .map_or_else(|| error.to_string(), ToString::to_string)
    );
    error.with_kind(ErrorKind::TokensExpired, message)
}

fn map_refresh_error(
    key: &GrantKey,
    grant: &StoredGrant,
    request: &TokenRequest,
    error: Error,
) -> Error {
    match error.oauth_code() {
        Some(OAuthErrorCode::InvalidGrant) => refresh_refused(key, error),
        Some(OAuthErrorCode::InvalidScope) => {
            let message = format!(
                "the provider refused the scopes {} for {key} (the grant has {}): {error}",
                request.requested_scopes(),
                grant.scopes()
            );
            error.with_kind(ErrorKind::ScopesMismatch, message)
        }
        _ => error,
    }
}

fn not_refreshable(key: &GrantKey, stored: Option<&StoredGrant>, request: &TokenRequest) -> Error {
    let Some(grant) = stored else {
        return Error::new(
            ErrorKind::NoSavedTokens,
            format!("no tokens are stored for {key}: log in first"),
        );
    };
    let same_target = grant.access_tokens().iter().any(|e| {
        e.audience() == request.requested_audience()
            && e.scopes().contains_all(request.requested_scopes())
    });
    let why = if grant.refresh_token().is_some() {
        "its refresh token has expired"
    } else {
        "there is no refresh token"
    };
    if same_target || grant.refresh_token().is_some() {
        Error::new(
            ErrorKind::TokensExpired,
            format!(
                "the stored tokens of {key} have expired (or expire sooner than asked) and {why}: log in again"
            ),
        )
    } else {
        Error::new(
            ErrorKind::ScopesMismatch,
            format!(
                "no stored token of {key} is for audience {} with scopes {}, and {why} to get one: \
                 log in again asking for them",
                request.requested_audience().unwrap_or("(none)"),
                request.requested_scopes()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::ProviderMetadata;
    use crate::store::memory::MemoryStore;
    use crate::{Issuer, OAuthClient};
    use sciauth_credentials::ManualClock;

    #[test]
    fn refresh_ahead_is_the_larger_of_a_minute_and_a_tenth_jittered_at_most_half() {
        let secs = Duration::from_secs;
        assert_eq!(refresh_ahead(secs(600), 0.0), secs(60));
        let most = refresh_ahead(secs(600), 0.999_999);
        assert!(most > secs(89) && most < secs(90), "{most:?}");
        assert_eq!(refresh_ahead(secs(3600), 0.0), secs(360));
        assert_eq!(refresh_ahead(secs(3600), 0.5), secs(450));
        assert_eq!(refresh_ahead(secs(60), 0.0), secs(30));
        assert_eq!(refresh_ahead(secs(100), 1.0), secs(50));
        assert_eq!(refresh_ahead(Duration::ZERO, 0.3), Duration::ZERO);
    }

    const NOW: u64 = 1_700_000_000;

    /// A manager on a memory store holding `grant` (JSON), for a client no request reaches.
    async fn offline_manager(grant: serde_json::Value) -> TokenManager {
        let clock = Arc::new(ManualClock::at_unix(NOW));
        let url = "https://idp.example.test";
        let metadata =
            ProviderMetadata::new(url, url::Url::parse(&format!("{url}/token")).unwrap());
        let issuer = Issuer::builder(url)
            .metadata(metadata)
            .clock(clock)
            .build()
            .await
            .unwrap();
        let store = MemoryStore::new();
        let grant: StoredGrant = serde_json::from_value(grant).unwrap();
        store.put(&grant).await.unwrap();
        TokenManager::builder(store)
            .client(OAuthClient::builder(issuer, "native-app").build())
            .build()
    }

    fn access_token(audience: Option<&str>, expires_at: u64) -> serde_json::Value {
        serde_json::json!({
            "access_token": "at", "token_type": "Bearer", "issued_at": expires_at - 600,
            "expires_at": expires_at, "scopes": ["read"], "audience": audience,
        })
    }

    #[tokio::test]
    async fn what_cannot_be_refreshed_fails_with_the_reason_without_asking_anyone() {
        let base = |refresh: Option<&str>, refresh_exp: Option<u64>, tokens: serde_json::Value| {
            serde_json::json!({
                "version": 1, "issuer": "https://idp.example.test", "client_id": "native-app",
                "account": "alice", "refresh_token": refresh, "refresh_expires_at": refresh_exp,
                "scopes": ["read"], "updated_at": NOW, "access_tokens": tokens,
            })
        };
        let request = TokenRequest::new("alice");

        // Expired, no refresh token.
        let manager = offline_manager(base(
            None,
            None,
            serde_json::json!([access_token(None, NOW - 1)]),
        ))
        .await;
        let error = manager.get(&request).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::TokensExpired, "{error}");

        // Valid, but for less time than asked, no refresh token.
        let manager = offline_manager(base(
            None,
            None,
            serde_json::json!([access_token(None, NOW + 100)]),
        ))
        .await;
        assert!(manager.get(&request).await.is_ok());
        let error = manager
            .get(&request.clone().min_valid(Duration::from_secs(200)))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::TokensExpired, "{error}");

        // Another audience, no refresh token.
        let error = manager
            .get(&request.clone().audience("https://other.example.test"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::ScopesMismatch, "{error}");

        // A refresh token known to have expired.
        let manager = offline_manager(base(
            Some("rt"),
            Some(NOW - 1),
            serde_json::json!([access_token(None, NOW - 1)]),
        ))
        .await;
        let error = manager.get(&request).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::TokensExpired, "{error}");

        // A scope the grant does not have: refused before any request.
        let manager = offline_manager(base(Some("rt"), None, serde_json::json!([]))).await;
        let error = manager
            .get(&request.clone().scopes(["write"]))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::ScopesMismatch, "{error}");
        assert!(error.to_string().contains("write"), "{error}");

        // Nothing for another account.
        let error = manager.get(&TokenRequest::new("bob")).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::NoSavedTokens, "{error}");
        assert!(error.needs_login());
        let error = manager.get(&TokenRequest::new("")).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidInput, "{error}");
        assert!(!error.needs_login());
        let error = manager
            .get(&TokenRequest::new("alice").issuer("https://elsewhere.example.test"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidInput, "{error}");
    }

    /// A lazy configuration of native-app whose builds are counted; the client it builds
    /// reaches nothing (port 9 refuses), or is for `client_id`.
    fn counted_lazy(client_id: &'static str, builds: Arc<AtomicU64>) -> ClientConfig {
        ClientConfig::lazy("https://idp.example.test", "native-app", move || {
            builds.fetch_add(1, Ordering::SeqCst);
            async move {
                let url = "https://idp.example.test";
                let token_endpoint = url::Url::parse("http://127.0.0.1:9/token").unwrap();
                let issuer = Issuer::builder(url)
                    .metadata(ProviderMetadata::new(url, token_endpoint))
                    .build()
                    .await?;
                Ok(OAuthClient::builder(issuer, client_id).build())
            }
        })
    }

    #[tokio::test]
    async fn a_lazy_client_is_built_only_when_a_grant_must_run() {
        let builds = Arc::new(AtomicU64::new(0));
        let store = MemoryStore::new();
        let grant = |expires_at: u64| {
            serde_json::from_value::<StoredGrant>(serde_json::json!({
                "version": 1, "issuer": "https://idp.example.test", "client_id": "native-app",
                "account": "alice", "refresh_token": "rt", "scopes": ["read"],
                "updated_at": NOW, "access_tokens": [access_token(None, expires_at)],
            }))
            .unwrap()
        };
        store.put(&grant(NOW + 600)).await.unwrap();
        let manager = TokenManager::builder(store)
            .client(counted_lazy("native-app", builds.clone()))
            .clock(Arc::new(ManualClock::at_unix(NOW)))
            .build();
        let request = TokenRequest::new("alice");

        // From the store: the key needs no client.
        let token = manager.get(&request).await.unwrap();
        assert_eq!(token.access_token().expose_secret(), "at");
        assert_eq!(builds.load(Ordering::SeqCst), 0);
        assert!(manager.inner.clients[0].built_client().is_none());

        // A refresh needs the client: built once, then kept.
        let needs_refresh = request.clone().min_valid(Duration::from_secs(3600));
        let error = manager.get(&needs_refresh).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::Transport, "{error}");
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        manager.get(&needs_refresh).await.unwrap_err();
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(manager.inner.clients[0].built_client().is_some());

        // A build that makes another client than the one named fails the grant, and is
        // tried again next time.
        let wrong_builds = Arc::new(AtomicU64::new(0));
        let store = MemoryStore::new();
        store.put(&grant(NOW - 1)).await.unwrap();
        let manager = TokenManager::builder(store)
            .client(counted_lazy("someone-else", wrong_builds.clone()))
            .clock(Arc::new(ManualClock::at_unix(NOW)))
            .build();
        for expected_builds in [1, 2] {
            let error = manager.get(&request).await.unwrap_err();
            assert_eq!(error.kind(), &ErrorKind::InvalidInput, "{error}");
            assert!(error.to_string().contains("someone-else"), "{error}");
            assert_eq!(wrong_builds.load(Ordering::SeqCst), expected_builds);
        }
        assert!(format!("{:?}", manager.inner.clients[0]).contains("built: false"));
    }

    /// Counts what a manager reports.
    #[derive(Debug, Default)]
    struct Counting {
        hits: AtomicU64,
        misses: AtomicU64,
        provider_requests: AtomicU64,
    }

    impl ManagerObserver for Counting {
        fn lookup(&self, cached: bool) {
            let counter = if cached { &self.hits } else { &self.misses };
            counter.fetch_add(1, Ordering::Relaxed);
        }

        fn provider_request(
            &self,
            _: &str,
            _: &str,
            _: ProviderGrant,
            _: std::result::Result<(), &Error>,
            _: Duration,
        ) {
            self.provider_requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn the_observer_is_told_of_hits_and_misses() {
        let clock = Arc::new(ManualClock::at_unix(NOW));
        let url = "https://idp.example.test";
        let metadata =
            ProviderMetadata::new(url, url::Url::parse(&format!("{url}/token")).unwrap());
        let issuer = Issuer::builder(url)
            .metadata(metadata)
            .clock(clock)
            .build()
            .await
            .unwrap();
        let store = MemoryStore::new();
        let grant: StoredGrant = serde_json::from_value(serde_json::json!({
            "version": 1, "issuer": url, "client_id": "native-app", "account": "alice",
            "updated_at": NOW, "access_tokens": [access_token(None, NOW + 500)],
        }))
        .unwrap();
        store.put(&grant).await.unwrap();
        let counting = Arc::new(Counting::default());
        let manager = TokenManager::builder(store)
            .client(OAuthClient::builder(issuer, "native-app").build())
            .observer(counting.clone())
            .build();
        let request = TokenRequest::new("alice");
        // First from the store (a miss), then from memory (a hit).
        manager.get(&request).await.unwrap();
        manager.get(&request).await.unwrap();
        // Nothing covers another audience, and nothing can be refreshed: a miss, no request.
        let other = TokenRequest::new("alice").audience("https://other.example.test");
        assert!(manager.get(&other).await.is_err());
        assert_eq!(counting.hits.load(Ordering::Relaxed), 1);
        assert_eq!(counting.misses.load(Ordering::Relaxed), 2);
        assert_eq!(counting.provider_requests.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn narrower_path_scopes_go_to_the_provider_and_wider_ones_are_named() {
        let builds = Arc::new(AtomicU64::new(0));
        let store = MemoryStore::new();
        let scopes = ["openid", "storage.read:/", "storage.create:/home/alice"];
        let grant: StoredGrant = serde_json::from_value(serde_json::json!({
            "version": 1, "issuer": "https://idp.example.test", "client_id": "native-app",
            "account": "alice", "refresh_token": "rt", "scopes": scopes, "updated_at": NOW,
            "access_tokens": [{
                "access_token": "wide", "token_type": "Bearer", "issued_at": NOW,
                "expires_at": NOW + 600, "scopes": scopes,
            }],
        }))
        .unwrap();
        store.put(&grant).await.unwrap();
        let manager = TokenManager::builder(store)
            .client(counted_lazy("native-app", builds.clone()))
            .clock(Arc::new(ManualClock::at_unix(NOW)))
            .build();
        let request = |scope: &str| TokenRequest::new("alice").scopes([scope]);

        // The grant's own scopes: the stored token.
        let token = manager.get(&request("storage.read:/")).await.unwrap();
        assert_eq!(token.access_token().expose_secret(), "wide");
        assert_eq!(builds.load(Ordering::SeqCst), 0);

        // A path below the grant's: not the wider token, but a refresh for a narrower one
        // (this client reaches no provider, so the refresh fails on the network).
        for narrower in ["storage.read:/data", "storage.create:/home/alice/out"] {
            let error = manager.get(&request(narrower)).await.unwrap_err();
            assert_eq!(error.kind(), &ErrorKind::Transport, "{narrower}: {error}");
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);

        // Wider paths, other authorizations, paths that could escape: refused before the
        // provider is asked, naming the missing scope.
        for (wider, why) in [
            (
                "storage.create:/home",
                Some("storage.create:/home/alice covers only"),
            ),
            (
                "storage.create:/",
                Some("storage.create:/home/alice covers only"),
            ),
            ("storage.modify:/home/alice", None),
            ("storage.read:/data/../etc", None),
            ("profile", None),
        ] {
            let error = manager.get(&request(wider)).await.unwrap_err();
            assert_eq!(error.kind(), &ErrorKind::ScopesMismatch, "{wider}: {error}");
            let message = error.to_string();
            assert!(message.contains(&format!("scopes {wider} (")), "{message}");
            if let Some(why) = why {
                assert!(message.contains(why), "{message}");
            }
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_longest_lived_matching_token_is_served() {
        let mut older = access_token(Some("https://api.example.test"), NOW + 300);
        older["access_token"] = "older".into();
        let mut newer = access_token(Some("https://api.example.test"), NOW + 500);
        newer["access_token"] = "newer".into();
        let manager = offline_manager(serde_json::json!({
            "version": 1, "issuer": "https://idp.example.test", "client_id": "native-app",
            "account": "alice", "updated_at": NOW, "access_tokens": [older, newer],
        }))
        .await;
        let token = manager
            .get(&TokenRequest::new("alice").audience("https://api.example.test"))
            .await
            .unwrap();
        assert_eq!(token.access_token().expose_secret(), "newer");
        assert_eq!(token.audience(), Some("https://api.example.test"));
    }
}
