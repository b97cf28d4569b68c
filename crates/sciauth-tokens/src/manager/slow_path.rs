//! The slow path: one caller per grant at a time gets a new token (refresh, exchange or
//! client credentials) under the store's lock, writes it, and only then hands it out.

use std::future::Future;
use std::time::SystemTime;

use secrecy::{ExposeSecret, SecretString};

use super::failures::{map_refresh_error, not_refreshable, refresh_refused, scopes_mismatch};
use super::{
    ClientConfig, Goal, GrantState, ManagerObserver, ProviderGrant, Served, TokenManager,
    TokenRequest,
};
use crate::error::{Error, ErrorKind, OAuthErrorCode, Result};
use crate::store::{GrantKey, LockedGrant, StoredGrant};
use crate::token::{Token, token_type};

/// What a refresh of the stored grant came to.
enum Refreshed {
    /// A new token, to record in the grant read under the lock.
    Token(Token),
    /// The refresh token had been rotated elsewhere: the grant read again, and the token its
    /// new refresh token got.
    Rotated(StoredGrant, Token),
    /// The refresh token had been rotated elsewhere, and the grant read again already serves
    /// the request.
    AlreadyThere(StoredGrant),
}

impl TokenManager {
    /// The slow path: one caller per grant at a time; re-check what others did in this
    /// process, then in the store, then under the store's lock, and only then ask the
    /// provider.
    pub(super) async fn obtain(
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
    /// anyone can use it: the grant's refresh token, else a token exchange or the client
    /// credentials grant where the configuration allows. Returns the grant as stored.
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
        let token = if let Some(grant) = stored.as_ref().filter(|g| g.is_refreshable_at(now)) {
            match self
                .refresh_stored(config, key, state, locked, grant, request, goal)
                .await?
            {
                Refreshed::Token(token) => token,
                Refreshed::Rotated(again, token) => {
                    return self.persist(locked, Some(again), token, request).await;
                }
                Refreshed::AlreadyThere(again) => return Ok(again),
            }
        } else if config.token_exchange
            && let Some(subject) = stored.as_ref().and_then(|g| best_subject(g, now, self))
        {
            let exchanged = self.exchange_for(config, subject, request);
            self.observed(config, ProviderGrant::TokenExchange, exchanged)
                .await?
        } else if config.client_credentials {
            let granted = self.client_credentials_for(config, request);
            self.observed(config, ProviderGrant::ClientCredentials, granted)
                .await?
        } else {
            return Err(not_refreshable(key, stored.as_ref(), request));
        };
        self.persist(locked, stored, token, request).await
    }

    /// The grant's refresh token gets a token for `request`. When the provider answers
    /// `invalid_grant`, the store is read once more: another process (or a tool that does
    /// not take our lock) may have rotated the refresh token since we read it.
    #[allow(
        clippy::too_many_arguments,
        reason = "the slow path's state, passed down rather than bundled"
    )]
    async fn refresh_stored(
        &self,
        config: &ClientConfig,
        key: &GrantKey,
        state: &GrantState,
        locked: &mut dyn LockedGrant,
        grant: &StoredGrant,
        request: &TokenRequest,
        goal: &Goal,
    ) -> Result<Refreshed> {
        // Path scopes below the grant's (`storage.read:/data` on `storage.read:/`) are a
        // refresh away: a down-scoped token, kept under its own scopes.
        if !grant.scopes().is_empty() && !grant.scopes().grants_all(request.requested_scopes()) {
            return Err(scopes_mismatch(key, grant, request));
        }
        let refreshed = self.observed(
            config,
            ProviderGrant::RefreshToken,
            self.refresh_grant(config, grant, request),
        );
        let error = match refreshed.await {
            Ok(token) => return Ok(Refreshed::Token(token)),
            Err(error) if error.oauth_code() == Some(&OAuthErrorCode::InvalidGrant) => error,
            Err(error) => return Err(map_refresh_error(key, grant, request, error)),
        };
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
            return again
                .map(Refreshed::AlreadyThere)
                .ok_or_else(|| refresh_refused(key, error));
        }
        let now = self.inner.clock.now();
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
        Ok(Refreshed::Rotated(again, token))
    }

    /// A token exchange of `subject` (RFC 8693) for the request's scopes and audience.
    async fn exchange_for(
        &self,
        config: &ClientConfig,
        subject: SecretString,
        request: &TokenRequest,
    ) -> Result<Token> {
        let client = config.client().await?;
        let mut exchange = client.exchange(subject, token_type::ACCESS_TOKEN);
        if !request.requested_scopes().is_empty() {
            exchange = exchange.scopes(request.requested_scopes().iter());
        }
        if let Some(audience) = request.requested_audience() {
            exchange = exchange.audience(audience);
        }
        exchange.send().await
    }

    /// The client credentials grant for the request's scopes and audience.
    async fn client_credentials_for(
        &self,
        config: &ClientConfig,
        request: &TokenRequest,
    ) -> Result<Token> {
        let client = config.client().await?;
        let mut grant = client.client_credentials();
        if !request.requested_scopes().is_empty() {
            grant = grant.scopes(request.requested_scopes().iter());
        }
        if let Some(audience) = request.requested_audience() {
            grant = grant.audience(audience);
        }
        grant.send().await
    }

    pub(super) fn observe(&self, tell: impl FnOnce(&dyn ManagerObserver)) {
        if let Some(observer) = &self.inner.observer {
            tell(observer.as_ref());
        }
    }

    /// Runs `request` (a grant at the provider of `config`) and tells the observer how it
    /// went.
    pub(super) async fn observed<T>(
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

    pub(super) async fn refresh_grant(
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
    pub(super) async fn persist(
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
}

/// A valid access token of `grant` to exchange: the one that lives longest.
pub(super) fn best_subject(
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
