//! A cached token costs no allocation: `ready_header` on a `TokenCredential`, and
//! `TokenManager::get` / `get_now`,
//! counted by a counting global allocator (allocation-counter, which this test binary links;
//! it counts the current thread's allocations only).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sciauth_tokens::sciauth_credentials::{Credential, ManualClock, Ready};
use sciauth_tokens::url::Url;
use sciauth_tokens::{
    Issuer, MemoryStore, OAuthClient, ProviderMetadata, StoredGrant, TokenManager, TokenRequest,
    TokenStore,
};

#[tokio::test]
async fn a_header_from_a_valid_cached_token_allocates_nothing() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = Arc::new(ManualClock::at_unix(now));
    let issuer_url = "https://idp.example.test";
    let metadata = ProviderMetadata::new(
        issuer_url,
        Url::parse("https://idp.example.test/token").unwrap(),
    );
    let issuer = Issuer::builder(issuer_url)
        .metadata(metadata)
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let client = OAuthClient::builder(issuer, "native-app").build();
    let store = MemoryStore::new();
    let grant: StoredGrant = serde_json::from_value(serde_json::json!({
        "version": 1,
        "issuer": issuer_url,
        "client_id": "native-app",
        "account": "alice",
        "refresh_token": "rt",
        "updated_at": now,
        "access_tokens": [{
            "access_token": "a".repeat(1200),
            "token_type": "Bearer",
            "issued_at": now,
            "expires_at": now + 3600,
        }],
    }))
    .unwrap();
    store.put(&grant).await.unwrap();
    let manager = TokenManager::builder(store).client(client).build();
    let credential = manager.credential(TokenRequest::new("alice"));
    credential.header().await.unwrap().unwrap();

    // The counter counts: a boxed value is one allocation.
    let info = allocation_counter::measure(|| {
        std::hint::black_box(Box::new(1u64));
    });
    assert_eq!(info.count_total, 1);

    let mut headers = 0;
    let info = allocation_counter::measure(|| {
        for _ in 0..10_000 {
            if let Ready::Header(header) = credential.ready_header() {
                headers += 1;
                std::hint::black_box(header);
            }
        }
    });
    assert_eq!(headers, 10_000, "the cached header is ready");
    assert_eq!(info.count_total, 0, "{info:?}");

    // `TokenManager::get` and `get_now` on the cached token: a `Token` handed out is a
    // reference count, and the grant's state is found without building its key.
    let request = TokenRequest::new("alice");
    let mut served = 0;
    let info = allocation_counter::measure(|| {
        for _ in 0..10_000 {
            let mut get = std::pin::pin!(manager.get(&request));
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            if let std::task::Poll::Ready(Ok(token)) = get.as_mut().poll(&mut context) {
                served += 1;
                std::hint::black_box(token);
            }
            served += usize::from(manager.get_now(&request).is_some());
        }
    });
    assert_eq!(served, 20_000, "the cached token is ready at once");
    assert_eq!(info.count_total, 0, "{info:?}");

    // Past the refresh-ahead point the snapshot is not used (and still nothing allocates).
    clock.advance(Duration::from_secs(3600 - 30));
    let info = allocation_counter::measure(|| {
        assert!(matches!(credential.ready_header(), Ready::NotReady));
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}
