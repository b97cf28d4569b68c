//! `PostgresStore` as a `TokenStore`: rows, locks across connections and stores, purge,
//! migrations applied once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sciauth_server::PostgresStore;
use sciauth_tokens::{GrantKey, StoredGrant, TokenStore};

use crate::postgres::cluster;

fn grant(account: &str, refresh_expires_at: Option<u64>, access_expires_at: u64) -> StoredGrant {
    let mut value = serde_json::json!({
        "version": 1, "issuer": "https://idp.example.test", "client_id": "svc",
        "account": account, "scopes": ["openid"], "updated_at": 1_700_000_000u64,
        "access_tokens": [{
            "access_token": format!("at-of-{account}"), "token_type": "Bearer",
            "issued_at": access_expires_at - 600, "expires_at": access_expires_at,
            "scopes": ["openid"]
        }],
    });
    if let Some(at) = refresh_expires_at {
        value["refresh_token"] = format!("rt-of-{account}").into();
        value["refresh_expires_at"] = at.into();
    }
    serde_json::from_value(value).unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_locks_and_purge() {
    let url = cluster().database().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    // Migrations are applied once: a second store on the same database finds them.
    let other = PostgresStore::connect(&url).await.unwrap();

    let now = unix_now();
    let alice = grant("alice", Some(now + 3600), now + 600);
    store.put(&alice).await.unwrap();
    let read = other.get(alice.key()).await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&read).unwrap(),
        serde_json::to_value(&alice).unwrap()
    );
    assert!(!format!("{store:?}").contains("host="), "{store:?}");
    assert!(!format!("{read:?}").contains("rt-of-alice"));

    // A lock excludes holders in other stores (other connections) until released.
    let held = Arc::new(AtomicBool::new(true));
    let mut first = store.lock(alice.key()).await.unwrap();
    let waiter = {
        let (other, key, held) = (other.clone(), alice.key().clone(), held.clone());
        tokio::spawn(async move {
            let mut second = other.lock(&key).await.unwrap();
            assert!(!held.load(Ordering::SeqCst), "the lock was shared");
            let grant = second.get().await.unwrap().unwrap();
            second.release().await.unwrap();
            grant
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut renewed = alice.clone();
    renewed = serde_json::from_value({
        let mut v = serde_json::to_value(&renewed).unwrap();
        v["refresh_token"] = "rt-rotated".into();
        v
    })
    .unwrap();
    first.put(&renewed).await.unwrap();
    held.store(false, Ordering::SeqCst);
    first.release().await.unwrap();
    let seen = waiter.await.unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(seen.refresh_token().unwrap()),
        "rt-rotated",
        "the waiter read what the holder wrote"
    );

    // A lock dropped without release (a replica that died mid-refresh) is freed too.
    let dropped = store.lock(alice.key()).await.unwrap();
    drop(dropped);
    let again = tokio::time::timeout(Duration::from_secs(30), other.lock(alice.key()))
        .await
        .expect("a dropped lock is freed")
        .unwrap();
    again.release().await.unwrap();

    // A locked grant refuses another key.
    let mut locked = store.lock(alice.key()).await.unwrap();
    assert!(locked.put(&grant("bob", None, now + 60)).await.is_err());
    locked.release().await.unwrap();

    // Purge: by refresh-token expiry; without a refresh token, by the last access token.
    let expired_refresh = grant("expired-rt", Some(now - 10), now + 600);
    let expired_access = grant("expired-at", None, now - 10);
    let valid_access = grant("valid-at", None, now + 600);
    for g in [&expired_refresh, &expired_access, &valid_access] {
        store.put(g).await.unwrap();
    }
    assert_eq!(store.list().await.unwrap().len(), 4);
    assert_eq!(store.purge(SystemTime::now()).await.unwrap(), 2);
    let left: Vec<String> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|g| g.key().account().to_owned())
        .collect();
    assert_eq!(left, ["alice", "valid-at"]);
    assert!(
        store
            .delete(&GrantKey::new(
                "https://idp.example.test",
                "svc",
                "valid-at"
            ))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete(&GrantKey::new(
                "https://idp.example.test",
                "svc",
                "valid-at"
            ))
            .await
            .unwrap()
    );
}
