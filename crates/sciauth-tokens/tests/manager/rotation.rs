//! Rotating refresh tokens shared by several managers on one store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sciauth_tokens::sciauth_credentials::ManualClock;
use sciauth_tokens::{
    FileStore, GrantKey, LockedGrant, Result, StoredGrant, TokenRequest, TokenStore,
};
use secrecy::ExposeSecret as _;

use crate::idp::Idp;
use crate::{AT_TTL, login, manager, manager_on, refreshes};

#[tokio::test]
async fn a_second_manager_uses_what_the_first_refreshed() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let first = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let second = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    login(&first, &request, &[]).await;
    // The second has seen the grant too (a snapshot of it in memory).
    second.get(&request).await.unwrap();

    clock.advance(AT_TTL);
    idp.reset_counts().await;
    let a = first.get(&request).await.unwrap();
    let b = second.get(&request).await.unwrap();
    assert_eq!(
        a.access_token().expose_secret(),
        b.access_token().expose_secret()
    );
    assert_eq!(refreshes(&idp).await, 1);
}

/// A store that, for its first reads, answers with an old copy of the grant: as if another
/// program had rotated the refresh token without taking the store's lock.
#[derive(Debug)]
struct Lagging {
    inner: FileStore,
    old: Mutex<Option<StoredGrant>>,
    stale_reads: Arc<AtomicUsize>,
}

impl Lagging {
    fn stale(&self) -> Option<StoredGrant> {
        let left = self.stale_reads.load(Ordering::SeqCst);
        if left == 0 {
            return None;
        }
        self.stale_reads.store(left - 1, Ordering::SeqCst);
        self.old.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct LaggingLock {
    inner: Box<dyn LockedGrant>,
    stale: Option<StoredGrant>,
}

#[async_trait]
impl TokenStore for Lagging {
    async fn get(&self, key: &GrantKey) -> Result<Option<StoredGrant>> {
        match self.stale() {
            Some(old) => Ok(Some(old)),
            None => self.inner.get(key).await,
        }
    }
    async fn put(&self, grant: &StoredGrant) -> Result<()> {
        self.inner.put(grant).await
    }
    async fn delete(&self, key: &GrantKey) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn list(&self) -> Result<Vec<StoredGrant>> {
        self.inner.list().await
    }
    async fn lock(&self, key: &GrantKey) -> Result<Box<dyn LockedGrant>> {
        Ok(Box::new(LaggingLock {
            inner: self.inner.lock(key).await?,
            stale: self.stale(),
        }))
    }
}

#[async_trait]
impl LockedGrant for LaggingLock {
    fn key(&self) -> &GrantKey {
        self.inner.key()
    }
    async fn get(&mut self) -> Result<Option<StoredGrant>> {
        match self.stale.take() {
            Some(old) => Ok(Some(old)),
            None => self.inner.get().await,
        }
    }
    async fn put(&mut self, grant: &StoredGrant) -> Result<()> {
        self.inner.put(grant).await
    }
    async fn delete(&mut self) -> Result<bool> {
        self.inner.delete().await
    }
}

#[tokio::test]
async fn on_invalid_grant_the_store_is_read_again_before_failing() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let first = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    login(&first, &request, &[]).await;
    let old = first.stored(&request).await.unwrap().unwrap();

    clock.advance(AT_TTL);
    idp.reset_counts().await;
    // The first manager refreshes: the provider rotates the refresh token.
    let rotated = first.get(&request).await.unwrap();

    // The second reads the old grant (twice: without and under the lock), sends the old
    // refresh token, gets invalid_grant, reads again and finds the first one's token.
    let lagging = Lagging {
        inner: FileStore::open(dir.path()).unwrap(),
        old: Mutex::new(Some(old)),
        stale_reads: Arc::new(AtomicUsize::new(2)),
    };
    let second = manager_on(idp.issuer(), lagging, clock.clone()).await;
    let token = second.get(&request).await.unwrap();
    assert_eq!(
        token.access_token().expose_secret(),
        rotated.access_token().expose_secret()
    );
    let counts = idp.counts().await;
    assert_eq!(counts["requests"]["refresh_token"], 2, "{counts}");
    assert_eq!(
        counts["failures"]["refresh_token"]["invalid_grant"], 1,
        "{counts}"
    );
}
