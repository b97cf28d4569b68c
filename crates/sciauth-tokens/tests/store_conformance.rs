//! What every token store must do, run against each of them: the memory store, the file
//! store plain and encrypted, and the SQLite store (feature `sqlite`).

use std::collections::BTreeSet;

use sciauth_tokens::{
    ErrorKind, FileStore, GrantKey, KeyParams, MemoryStore, StoreKey, StoredGrant, TokenStore,
};
use secrecy::{ExposeSecret as _, SecretString};

fn grant(account: &str, refresh: &str) -> StoredGrant {
    serde_json::from_value(serde_json::json!({
        "version": 1,
        "issuer": "https://idp.example.test",
        "client_id": "native-app",
        "account": account,
        "refresh_token": refresh,
        "scopes": ["openid", "offline_access"],
        "updated_at": 1_700_000_000u64,
        "access_tokens": [{
            "access_token": format!("at-of-{refresh}"),
            "token_type": "Bearer",
            "issued_at": 1_700_000_000u64,
            "expires_at": 1_700_003_600u64,
            "scopes": ["openid"],
        }],
    }))
    .unwrap()
}

fn refresh_of(grant: &StoredGrant) -> String {
    grant.refresh_token().unwrap().expose_secret().to_owned()
}

/// Cheap argon2id parameters for tests (the limits are checked the same way).
fn cheap() -> KeyParams {
    KeyParams {
        memory_kib: 1024,
        passes: 1,
        lanes: 1,
    }
}

/// An encrypted file store in `dir`, with a new key.
fn encrypted(dir: &std::path::Path) -> FileStore {
    let passphrase = SecretString::from("correct horse battery staple");
    let key = StoreKey::create(dir, &passphrase, cheap()).unwrap();
    FileStore::open_encrypted(dir, key).unwrap()
}

async fn conformance(store: &dyn TokenStore, same_process_reader: Option<&dyn TokenStore>) {
    let alice = grant("alice", "rt-alice-1");
    let bob = grant("bob", "rt-bob-1");
    let odd = grant("../odd name/%", "rt-odd-1");
    assert!(store.get(alice.key()).await.unwrap().is_none());
    assert!(store.list().await.unwrap().is_empty());

    store.put(&alice).await.unwrap();
    store.put(&bob).await.unwrap();
    store.put(&odd).await.unwrap();
    assert_eq!(
        refresh_of(&store.get(alice.key()).await.unwrap().unwrap()),
        "rt-alice-1"
    );
    let listed: BTreeSet<String> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|g| g.key().account().to_owned())
        .collect();
    assert_eq!(
        listed,
        ["alice", "bob", "../odd name/%"]
            .map(str::to_owned)
            .into_iter()
            .collect()
    );

    // Another grant of the same account, another client: kept apart.
    let other_client: StoredGrant = {
        let mut json = serde_json::to_value(grant("alice", "rt-other-1")).unwrap();
        json["client_id"] = "other-app".into();
        serde_json::from_value(json).unwrap()
    };
    store.put(&other_client).await.unwrap();
    assert_eq!(
        refresh_of(&store.get(alice.key()).await.unwrap().unwrap()),
        "rt-alice-1"
    );

    // Replace under the lock; another key is refused.
    {
        let mut locked = store.lock(alice.key()).await.unwrap();
        assert_eq!(
            refresh_of(&locked.get().await.unwrap().unwrap()),
            "rt-alice-1"
        );
        locked.put(&grant("alice", "rt-alice-2")).await.unwrap();
        let error = locked.put(&bob).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidInput);
        locked.release().await.unwrap();
    }
    assert_eq!(
        refresh_of(&store.get(alice.key()).await.unwrap().unwrap()),
        "rt-alice-2"
    );
    if let Some(Ok(now)) = store.get_now(alice.key()) {
        assert_eq!(refresh_of(&now.unwrap()), "rt-alice-2");
    }
    if let Some(reader) = same_process_reader {
        assert_eq!(
            refresh_of(&reader.get(alice.key()).await.unwrap().unwrap()),
            "rt-alice-2"
        );
    }

    assert!(store.delete(bob.key()).await.unwrap());
    assert!(!store.delete(bob.key()).await.unwrap());
    assert!(store.get(bob.key()).await.unwrap().is_none());
    assert_eq!(store.list().await.unwrap().len(), 3);
    let missing = GrantKey::new("https://idp.example.test", "native-app", "nobody");
    assert!(store.get(&missing).await.unwrap().is_none());
    let debug = format!("{store:?}");
    assert!(!debug.contains("rt-alice"), "{debug}");
}

#[tokio::test]
async fn the_memory_store() {
    conformance(&MemoryStore::new(), None).await;
}

#[tokio::test]
async fn the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let reader = FileStore::open(dir.path()).unwrap();
    conformance(&store, Some(&reader)).await;
}

#[tokio::test]
async fn the_encrypted_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = encrypted(dir.path());
    let passphrase = SecretString::from("correct horse battery staple");
    let reader = FileStore::open_encrypted(
        dir.path(),
        StoreKey::unlock(dir.path(), &passphrase).unwrap(),
    )
    .unwrap();
    assert!(store.is_encrypted());
    conformance(&store, Some(&reader)).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.sqlite");
    let store = sciauth_tokens::SqliteStore::open(&path).unwrap();
    let reader = sciauth_tokens::SqliteStore::open(&path).unwrap();
    conformance(&store, Some(&reader)).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_encrypted_sqlite_store() {
    use sciauth_tokens::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.sqlite");
    let passphrase = SecretString::from("correct horse battery staple");
    let key = StoreKey::create(&SqliteStore::key_dir(&path), &passphrase, cheap()).unwrap();
    let store = SqliteStore::open_encrypted(&path, key.clone()).unwrap();
    let reader = SqliteStore::open_encrypted(&path, key).unwrap();
    conformance(&store, Some(&reader)).await;
}
