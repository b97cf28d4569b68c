//! [`RucioSession`]: the credential that logs in and puts `X-Rucio-Auth-Token` on requests.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use sciauth_credentials::{AuthHeader, Clock, Credential, Ready, Renewal};
use sciauth_transport::Transport;
use secrecy::{ExposeSecret as _, SecretString};

use crate::cache::{Cached, TokenCache, usable};
use crate::error::{Error, Result};
use crate::login::{AuthMethod, LoginTarget, SessionToken, validate};

/// A Rucio login session: a [`Credential`] whose header is `X-Rucio-Auth-Token`.
///
/// The first request logs in (or takes a token another process cached); later requests
/// clone the ready header. The token is renewed [`renew_before`] its expiry
/// (`X-Rucio-Auth-Token-Expires`), and when the server answers 401 the transport calls
/// [`Credential::rejected`]: the session logs in once more over fresh connections and the
/// request goes again, once. Only a 401 counts as "expired": a 500 from `/auth/validate`
/// does not.
///
/// Cloning is cheap and clones share the token. A [`RucioClient`](crate::RucioClient)
/// makes one; use [`RucioClient::session`](crate::RucioClient::session) to put it on a
/// transport of your own.
///
/// [`renew_before`]: crate::RucioClientBuilder::renew_before
#[derive(Clone)]
pub struct RucioSession {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) method: AuthMethod,
    pub(crate) auth: Transport,
    pub(crate) auth_host: String,
    pub(crate) account: Option<String>,
    pub(crate) vo: Option<String>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) renew_before: Duration,
    pub(crate) cache: Option<TokenCache>,
    pub(crate) current: ArcSwapOption<Current>,
    /// One login at a time in this process; the cache's file lock does the same across
    /// processes.
    pub(crate) login_lock: tokio::sync::Mutex<()>,
    pub(crate) logins: AtomicU64,
}

/// The token in use and when to renew it.
pub(crate) struct Current {
    token: SessionToken,
    renew_at: Option<SystemTime>,
}

/// What a session can tell without a secret: for `sciauth list`, logs and status lines.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The account asked for, else the one the server granted, if known yet.
    pub account: Option<String>,
    /// The VO asked for (`None`: the server's default, `def`).
    pub vo: Option<String>,
    /// The Rucio `auth_type`.
    pub auth_type: &'static str,
    /// The auth host (the first, when there are several).
    pub auth_host: String,
    /// When the current token expires, if there is one and the server said.
    pub expires_at: Option<SystemTime>,
    /// The token cache file, unless caching is off.
    pub cache_file: Option<std::path::PathBuf>,
    /// The Rucio client's token file this session shares, if any.
    pub shared_token_file: Option<std::path::PathBuf>,
}

impl RucioSession {
    pub(crate) fn new(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The current token, logging in (or reading the cache) first if there is none or it
    /// is due for renewal. Print it only where the user asked for it (`sciauth token`).
    pub async fn token(&self) -> Result<SecretString> {
        Ok(self.valid().await?.token.clone())
    }

    /// Makes sure a valid token is at hand: logs in now instead of at the first request.
    pub async fn login(&self) -> Result<()> {
        self.valid().await.map(drop)
    }

    /// Non-secret facts about the session; does not log in.
    pub fn info(&self) -> SessionInfo {
        let current = self.inner.current.load();
        let token = current.as_ref().map(|c| &c.token);
        SessionInfo {
            account: self
                .inner
                .account
                .clone()
                .or_else(|| token.and_then(|t| t.account.clone())),
            vo: self.inner.vo.clone(),
            auth_type: self.inner.method.auth_type(),
            auth_host: self.inner.auth_host.clone(),
            expires_at: token.and_then(|t| t.expires_at),
            cache_file: self.inner.cache.as_ref().map(|c| c.file().to_owned()),
            shared_token_file: self
                .inner
                .cache
                .as_ref()
                .and_then(|c| c.shared_files())
                .map(|f| f.token.clone()),
        }
    }

    /// Takes the token another process cached, if it is still usable, without logging in;
    /// `true` if there was one. [`info`](Self::info) then knows its expiry (`sciauth list`).
    /// A token the Rucio client left (whose expiry only the server knows) does not count.
    pub fn load_cached(&self) -> bool {
        self.cached_token(Duration::ZERO).is_some()
    }

    /// The cached token if it stays valid at least `min_valid` longer, without logging in,
    /// without a lock and without the network: what `sciauth rucio token` prints from the
    /// cache before any async runtime exists. A token the Rucio client left (whose expiry
    /// only the server knows) does not count.
    pub fn cached_token(&self, min_valid: Duration) -> Option<SecretString> {
        let Some(Cached::Known(token)) = self.inner.cache.as_ref()?.read() else {
            return None;
        };
        if !usable(&token, self.inner.clock.now(), min_valid) {
            return None;
        }
        let secret = token.token.clone();
        self.install(token);
        Some(secret)
    }

    /// Deletes the cached token, here and in the Rucio client's token file (`sciauth
    /// logout`); `true` if there was one. A Rucio token cannot be revoked by its holder:
    /// forgetting it is all there is.
    pub fn forget(&self) -> std::io::Result<bool> {
        self.inner.current.store(None);
        match &self.inner.cache {
            Some(cache) => cache.forget(),
            None => Ok(false),
        }
    }

    /// How many times this session logged in at the server (cache hits not counted).
    pub fn login_count(&self) -> u64 {
        self.inner.logins.load(Ordering::Relaxed)
    }

    /// The token cache file, unless caching is off.
    pub fn cache_file(&self) -> Option<&Path> {
        self.inner.cache.as_ref().map(TokenCache::file)
    }

    fn fresh(&self) -> Option<Arc<Current>> {
        let current = self.inner.current.load_full()?;
        let now = self.inner.clock.now();
        current
            .renew_at
            .is_none_or(|at| now < at)
            .then_some(current)
    }

    async fn valid(&self) -> Result<SessionToken> {
        if let Some(current) = self.fresh() {
            return Ok(current.token.clone());
        }
        let _one_login = self.inner.login_lock.lock().await;
        if let Some(current) = self.fresh() {
            return Ok(current.token.clone());
        }
        self.obtain(None).await
    }

    /// Gets a token from the cache or a login, installs and returns it. `rejected` is a
    /// token the server refused: it is not taken from the cache again, and the login goes
    /// over new connections (a reused TLS session can lose the client DN, rucio#433).
    /// Call with `login_lock` held.
    // tidy: long, the login under the lock (cache, shared token file, login, write-back) in the one order that keeps one login per key
    async fn obtain(&self, rejected: Option<&SessionToken>) -> Result<SessionToken> {
        let inner = &*self.inner;
        if let Some(rejected) = rejected
            && let Some(renewed) = self.oidc_renewal(rejected).await
        {
            let token = renewed?;
            self.install(token.clone());
            return Ok(token);
        }
        let margin = inner.renew_before;
        let target = LoginTarget {
            host: &inner.auth_host,
            account: inner.account.as_deref(),
            vo: inner.vo.as_deref(),
        };
        // The Rucio client's `oidc` order: a discovered token comes before the cache.
        if let Some(found) = inner.method.discovered_first(rejected) {
            self.install(found.clone());
            return Ok(found);
        }
        let lock = match &inner.cache {
            Some(cache) => cache.lock().await.map(|lock| (cache, lock)),
            None => None,
        };
        if let Some((cache, _)) = &lock {
            let is_rejected = |token: &SecretString| {
                rejected.is_some_and(|r| r.token.expose_secret() == token.expose_secret())
            };
            let cached = match cache.read() {
                Some(Cached::Known(cached)) if !is_rejected(&cached.token) => Some(cached),
                Some(Cached::Foreign(token)) if !is_rejected(&token) => {
                    // The Rucio client's token: the server says what it is, once; the cache
                    // then knows it as ours.
                    match validate(&inner.auth, &target, &token, inner.clock.now()).await {
                        Ok(Some(adopted)) => {
                            tracing::debug!("using the token the Rucio client cached");
                            cache.write(&adopted);
                            Some(adopted)
                        }
                        Ok(None) => None,
                        Err(e) => {
                            tracing::debug!(error = %e, "cannot validate the Rucio client's token");
                            None
                        }
                    }
                }
                _ => None,
            };
            if let Some(cached) = cached {
                let now = inner.clock.now();
                if usable(&cached, now, margin) {
                    tracing::debug!(file = %cache.file().display(), "using the cached Rucio token");
                    self.install(cached.clone());
                    return Ok(cached);
                }
                // Due for renewal but still valid: a Rucio-brokered OIDC token is refreshed
                // by the server, without the user.
                if rejected.is_none()
                    && usable(&cached, now, Duration::ZERO)
                    && let Some(settings) = inner.method.rucio_oidc()
                    && settings.refresh_active
                {
                    match settings.refresh(&inner.auth, &target, &cached, now).await {
                        Ok(Some(refreshed)) => {
                            tracing::debug!("refreshed the Rucio OIDC token");
                            cache.write(&refreshed);
                            self.install(refreshed.clone());
                            return Ok(refreshed);
                        }
                        Ok(None) => tracing::debug!("the Rucio server had nothing to refresh"),
                        Err(e) => tracing::warn!(error = %e, "the Rucio OIDC token refresh failed"),
                    }
                    // Still valid: used to its end rather than asking the user now.
                    self.install(cached.clone());
                    return Ok(cached);
                }
            }
        }
        let fresh_transport;
        let auth = if rejected.is_some() {
            fresh_transport = inner.auth.with_fresh_connections().map_err(|e| {
                Error::from_transport("setting up new connections for the Rucio login", e)
            })?;
            &fresh_transport
        } else {
            &inner.auth
        };
        let mut token = inner.method.login(auth, &target, inner.clock.now()).await?;
        // A fresh OIDC token of the Rucio client's login is refreshed at once when the
        // client refreshes, as the Rucio client does: the server then knows to keep it
        // fresh, and the answer carries its expiry.
        if let Some(settings) = inner.method.rucio_oidc()
            && settings.refresh_active
        {
            match settings
                .refresh(auth, &target, &token, inner.clock.now())
                .await
            {
                Ok(Some(refreshed)) => token = refreshed,
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "no refresh right after the Rucio OIDC login")
                }
            }
        }
        inner.logins.fetch_add(1, Ordering::Relaxed);
        if let Some((cache, _)) = &lock {
            cache.write(&token);
        }
        drop(lock);
        self.install(token.clone());
        Ok(token)
    }

    async fn oidc_renewal(&self, rejected: &SessionToken) -> Option<Result<SessionToken>> {
        self.inner.method.oidc_rejected(rejected).await
    }

    fn install(&self, token: SessionToken) {
        // Renew `renew_before` ahead, but never earlier than half the time left: a server
        // handing out short tokens must not get a login per request.
        let now = self.inner.clock.now();
        let renew_at = token.expires_at.map(|at| {
            let left = at.duration_since(now).unwrap_or_default();
            let margin = self.inner.renew_before.min(left / 2);
            at.checked_sub(margin).unwrap_or(at)
        });
        self.inner
            .current
            .store(Some(Arc::new(Current { token, renew_at })));
    }

    fn as_credential_error(error: Error) -> sciauth_credentials::Error {
        sciauth_credentials::Error::renewal_failed(error.to_string(), error)
    }
}

#[async_trait]
impl Credential for RucioSession {
    async fn header(&self) -> sciauth_credentials::Result<Option<AuthHeader>> {
        self.valid()
            .await
            .map(|token| Some(token.header))
            .map_err(Self::as_credential_error)
    }

    fn ready_header(&self) -> Ready {
        match self.fresh() {
            Some(current) => Ready::Header(current.token.header.clone()),
            None => Ready::NotReady,
        }
    }

    async fn rejected(&self, sent: Option<&AuthHeader>) -> sciauth_credentials::Result<Renewal> {
        let _one_login = self.inner.login_lock.lock().await;
        let current = self.inner.current.load_full();
        // Many requests in flight can be rejected at once: only the first logs in again.
        if let Some(current) = &current
            && Some(&current.token.header) != sent
        {
            return Ok(Renewal::Renewed);
        }
        let Some(current) = current else {
            return Ok(Renewal::Unchanged);
        };
        tracing::debug!(
            auth_type = self.inner.method.auth_type(),
            "the Rucio server rejected the token; logging in again"
        );
        self.obtain(Some(&current.token))
            .await
            .map(|_| Renewal::Renewed)
            .map_err(Self::as_credential_error)
    }
}

impl fmt::Debug for RucioSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.info();
        f.debug_struct("RucioSession")
            .field("auth_type", &info.auth_type)
            .field("auth_host", &info.auth_host)
            .field("account", &info.account)
            .field("vo", &info.vo)
            .field("expires_at", &info.expires_at)
            .field("token", &"[redacted]")
            .field("method", &self.inner.method)
            .finish()
    }
}
