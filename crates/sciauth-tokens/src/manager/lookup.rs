//! The fast path: a token for a request from this process's snapshot of its grant (no lock,
//! no allocation), the rules that judge a stored token (scopes, audience, time left, refresh
//! ahead), and the snapshot kept after every read and write of a grant.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret as _;

use super::{ClientConfig, Goal, GrantState, Served, Snapshot, TokenManager, TokenRequest};
use crate::error::Result;
use crate::store::{GrantKey, StoredGrant};

/// A refresh ahead of expiry starts when less than this is left (or 10% of the lifetime,
/// whichever is more; at most half the lifetime).
const REFRESH_AHEAD_MIN: Duration = Duration::from_secs(60);

impl TokenManager {
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
    pub(super) fn cached(
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

    pub(super) fn satisfied(
        &self,
        state: &GrantState,
        request: &TokenRequest,
        goal: &Goal,
    ) -> Option<Served> {
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

    pub(super) fn remember(&self, state: &GrantState, grant: Option<StoredGrant>) {
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
}

impl Snapshot {
    /// The best access token for `request` that is valid now for the request's minimum time
    /// left, and whether it is due for a refresh ahead.
    pub(super) fn find(&self, request: &TokenRequest, now: SystemTime) -> Option<(usize, bool)> {
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
    pub(super) fn newest_for(&self, request: &TokenRequest) -> Option<usize> {
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

    pub(super) fn served(&self, index: usize, request: &TokenRequest) -> Served {
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
pub(super) fn refresh_ahead(lifetime: Duration, jitter: f64) -> Duration {
    let base = REFRESH_AHEAD_MIN.max(lifetime / 10);
    let jitter = jitter.clamp(0.0, 1.0);
    base.mul_f64(1.0 + 0.5 * jitter).min(lifetime / 2)
}

pub(super) fn key_of(config: &ClientConfig, request: &TokenRequest) -> GrantKey {
    GrantKey::new(config.issuer(), config.client_id(), request.account())
}
