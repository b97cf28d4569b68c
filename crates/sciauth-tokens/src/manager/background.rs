//! Refresh ahead of expiry, in the background: the caller gets the token in hand while a task
//! gets the next one, at most one per grant at a time, and not again for a while after a
//! failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use sciauth_credentials::time::unix_seconds;

use super::{ClientConfig, Goal, GrantState, TokenManager, TokenRequest};
use crate::store::StoredGrant;

/// After a failed background refresh, the next one waits this long (the token in hand is
/// still valid; a provider that is down should not get a refresh per request).
const BACKGROUND_RETRY_AFTER: Duration = Duration::from_secs(30);

impl TokenManager {
    pub(super) fn refresh_in_background(
        &self,
        config: &ClientConfig,
        state: &Arc<GrantState>,
        grant: &StoredGrant,
        request: &TokenRequest,
        now: SystemTime,
    ) {
        let can =
            grant.is_refreshable_at(now) || config.client_credentials || config.token_exchange;
        let now_secs = unix_seconds(now);
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
