//! [`MemoryStore`]: grants in this process's memory only.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::OwnedMutexGuard;

use crate::error::Result;
use crate::store::{GrantKey, LockedGrant, StoredGrant, TokenStore, check_locked_key};

/// A token store in memory: for tests, and for services that keep tokens only while they
/// run. Cloning shares the same store.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    grants: Mutex<HashMap<GrantKey, StoredGrant>>,
    locks: Mutex<HashMap<GrantKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Inner {
    fn get(&self, key: &GrantKey) -> Option<StoredGrant> {
        self.grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn put(&self, grant: &StoredGrant) {
        self.grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(grant.key().clone(), grant.clone());
    }

    fn delete(&self, key: &GrantKey) -> bool {
        self.grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
            .is_some()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grants = self
            .inner
            .grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("MemoryStore")
            .field("grants", &grants)
            .finish()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn get(&self, key: &GrantKey) -> Result<Option<StoredGrant>> {
        Ok(self.inner.get(key))
    }

    fn get_now(&self, key: &GrantKey) -> Option<Result<Option<StoredGrant>>> {
        Some(Ok(self.inner.get(key)))
    }

    async fn put(&self, grant: &StoredGrant) -> Result<()> {
        self.inner.put(grant);
        Ok(())
    }

    async fn delete(&self, key: &GrantKey) -> Result<bool> {
        Ok(self.inner.delete(key))
    }

    async fn list(&self) -> Result<Vec<StoredGrant>> {
        let mut grants: Vec<StoredGrant> = self
            .inner
            .grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        grants.sort_by(|a, b| a.key().cmp(b.key()));
        Ok(grants)
    }

    async fn lock(&self, key: &GrantKey) -> Result<Box<dyn LockedGrant>> {
        let mutex = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = mutex.lock_owned().await;
        Ok(Box::new(MemoryLock {
            key: key.clone(),
            store: self.inner.clone(),
            _guard: guard,
        }))
    }
}

struct MemoryLock {
    key: GrantKey,
    store: Arc<Inner>,
    _guard: OwnedMutexGuard<()>,
}

impl fmt::Debug for MemoryLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLock")
            .field("key", &self.key)
            .finish()
    }
}

#[async_trait]
impl LockedGrant for MemoryLock {
    fn key(&self) -> &GrantKey {
        &self.key
    }

    async fn get(&mut self) -> Result<Option<StoredGrant>> {
        Ok(self.store.get(&self.key))
    }

    async fn put(&mut self, grant: &StoredGrant) -> Result<()> {
        check_locked_key(&self.key, grant)?;
        self.store.put(grant);
        Ok(())
    }

    async fn delete(&mut self) -> Result<bool> {
        Ok(self.store.delete(&self.key))
    }
}
