//! The [`TokenManager`]: finds a stored token that covers a request, refreshes it ahead of
//! expiry, and shares each refresh among every task and process that asks at once.
//!
//! This file holds the manager's types and its API (get, login, update, logout, list). The
//! work is split by responsibility: `client_config.rs` (which client a grant belongs to,
//! built lazily), `lookup.rs` (the fast path from this process's snapshot, and the rules
//! that judge a stored token), `slow_path.rs` (one refresh per grant under the store's lock),
//! `background.rs` (refresh ahead of expiry), `failures.rs` (the errors that say to log in),
//! `credential.rs` (the manager as a transport's credential), `observer.rs` (metrics hooks).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use secrecy::{ExposeSecret, SecretString};

use sciauth_credentials::{Clock, SystemClock};

use crate::client::OAuthClient;
use crate::error::{Error, ErrorKind, Result};
use crate::grant::revocation::TokenTypeHint;
use crate::store::{GrantKey, StoredGrant, TokenInfo, TokenStore};
use crate::token::Token;

mod background;
mod client_config;
mod credential;
mod failures;
mod lookup;
mod observer;
pub(crate) mod request;
mod slow_path;
#[cfg(test)]
mod tests;

pub use client_config::ClientConfig;
use client_config::ClientSource;
pub use credential::TokenCredential;
use lookup::key_of;
pub use observer::{ManagerObserver, ProviderGrant};
pub use request::TokenRequest;

/// How long a token whose expiry the provider did not give is used before it is replaced,
/// unless set otherwise.
pub const DEFAULT_UNKNOWN_LIFETIME: Duration = Duration::from_secs(15 * 60);

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
                .is_none_or(|issuer| config.issuer() == issuer)
                && request
                    .requested_client_id()
                    .is_none_or(|id| config.client_id() == id)
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
                    .map(|c| format!("{} ({})", c.issuer(), c.client_id()))
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
            .position(|c| c.issuer() == key.issuer() && c.client_id() == key.client_id())
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
