//! Purging grants that hold nothing usable any more: by refresh-token expiry (DIRAC purges by
//! access-token expiry and so deletes refresh tokens that still work).

use std::time::SystemTime;

use sciauth_tokens::{DEFAULT_UNKNOWN_LIFETIME, Result, StoredGrant, TokenStore};

/// When `grant` stops holding anything usable: its refresh token's expiry; without a refresh
/// token, the expiry of its last access token. `None` (never) for a refresh token whose
/// expiry is unknown, since it may work for years.
pub(crate) fn purge_after(grant: &StoredGrant) -> Option<SystemTime> {
    if grant.refresh_token().is_some() {
        return grant.refresh_expires_at();
    }
    let last_access = grant
        .access_tokens()
        .iter()
        .map(|entry| {
            entry
                .expires_at()
                .unwrap_or(entry.issued_at() + DEFAULT_UNKNOWN_LIFETIME)
        })
        .max();
    Some(last_access.unwrap_or(grant.updated_at()))
}

/// Deletes the grants of `store` that hold nothing usable at `now`, each under its lock after
/// reading it again (a refresh elsewhere may have just renewed it). Returns how many.
pub(crate) async fn purge_store(store: &dyn TokenStore, now: SystemTime) -> Result<u64> {
    let mut purged = 0;
    for grant in store.list().await? {
        if purge_after(&grant).is_none_or(|at| at >= now) {
            continue;
        }
        let mut locked = store.lock(grant.key()).await?;
        let current = locked.get().await?;
        if current
            .as_ref()
            .and_then(purge_after)
            .is_some_and(|at| at < now)
        {
            locked.delete().await?;
            purged += 1;
        }
        locked.release().await?;
    }
    Ok(purged)
}
