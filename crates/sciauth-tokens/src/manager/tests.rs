//! Unit tests of the token manager that need its insides: refresh-ahead arithmetic, what
//! cannot be refreshed, lazy clients, the observer.

use std::sync::atomic::Ordering;

use super::lookup::refresh_ahead;
use super::*;
use crate::metadata::ProviderMetadata;
use crate::store::memory::MemoryStore;
use crate::{Issuer, OAuthClient};
use sciauth_credentials::ManualClock;

#[test]
fn refresh_ahead_is_the_larger_of_a_minute_and_a_tenth_jittered_at_most_half() {
    let secs = Duration::from_secs;
    assert_eq!(refresh_ahead(secs(600), 0.0), secs(60));
    let most = refresh_ahead(secs(600), 0.999_999);
    assert!(most > secs(89) && most < secs(90), "{most:?}");
    assert_eq!(refresh_ahead(secs(3600), 0.0), secs(360));
    assert_eq!(refresh_ahead(secs(3600), 0.5), secs(450));
    assert_eq!(refresh_ahead(secs(60), 0.0), secs(30));
    assert_eq!(refresh_ahead(secs(100), 1.0), secs(50));
    assert_eq!(refresh_ahead(Duration::ZERO, 0.3), Duration::ZERO);
}

const NOW: u64 = 1_700_000_000;

/// An issuer no request reaches (its token endpoint is on a name that does not resolve),
/// judging time by `clock`.
async fn offline_issuer(clock: Arc<ManualClock>) -> Issuer {
    let url = "https://idp.example.test";
    let metadata = ProviderMetadata::new(url, url::Url::parse(&format!("{url}/token")).unwrap());
    Issuer::builder(url)
        .metadata(metadata)
        .clock(clock)
        .build()
        .await
        .unwrap()
}

/// A manager on a memory store holding `grant` (JSON), for a client no request reaches.
async fn offline_manager(grant: serde_json::Value) -> TokenManager {
    let issuer = offline_issuer(Arc::new(ManualClock::at_unix(NOW))).await;
    let store = MemoryStore::new();
    let grant: StoredGrant = serde_json::from_value(grant).unwrap();
    store.put(&grant).await.unwrap();
    TokenManager::builder(store)
        .client(OAuthClient::builder(issuer, "native-app").build())
        .build()
}

fn access_token(audience: Option<&str>, expires_at: u64) -> serde_json::Value {
    serde_json::json!({
        "access_token": "at", "token_type": "Bearer", "issued_at": expires_at - 600,
        "expires_at": expires_at, "scopes": ["read"], "audience": audience,
    })
}

#[tokio::test]
async fn what_cannot_be_refreshed_fails_with_the_reason_without_asking_anyone() {
    let base = |refresh: Option<&str>, refresh_exp: Option<u64>, tokens: serde_json::Value| {
        serde_json::json!({
            "version": 1, "issuer": "https://idp.example.test", "client_id": "native-app",
            "account": "alice", "refresh_token": refresh, "refresh_expires_at": refresh_exp,
            "scopes": ["read"], "updated_at": NOW, "access_tokens": tokens,
        })
    };
    let request = TokenRequest::new("alice");

    // Expired, no refresh token.
    let manager = offline_manager(base(
        None,
        None,
        serde_json::json!([access_token(None, NOW - 1)]),
    ))
    .await;
    let error = manager.get(&request).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::TokensExpired, "{error}");

    // Valid, but for less time than asked, no refresh token.
    let manager = offline_manager(base(
        None,
        None,
        serde_json::json!([access_token(None, NOW + 100)]),
    ))
    .await;
    assert!(manager.get(&request).await.is_ok());
    let error = manager
        .get(&request.clone().min_valid(Duration::from_secs(200)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::TokensExpired, "{error}");

    // Another audience, no refresh token.
    let error = manager
        .get(&request.clone().audience("https://other.example.test"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::ScopesMismatch, "{error}");

    // A refresh token known to have expired.
    let manager = offline_manager(base(
        Some("rt"),
        Some(NOW - 1),
        serde_json::json!([access_token(None, NOW - 1)]),
    ))
    .await;
    let error = manager.get(&request).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::TokensExpired, "{error}");

    // A scope the grant does not have: refused before any request.
    let manager = offline_manager(base(Some("rt"), None, serde_json::json!([]))).await;
    let error = manager
        .get(&request.clone().scopes(["write"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::ScopesMismatch, "{error}");
    assert!(error.to_string().contains("write"), "{error}");

    // Nothing for another account.
    let error = manager.get(&TokenRequest::new("bob")).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::NoSavedTokens, "{error}");
    assert!(error.needs_login());
    let error = manager.get(&TokenRequest::new("")).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidInput, "{error}");
    assert!(!error.needs_login());
    let error = manager
        .get(&TokenRequest::new("alice").issuer("https://elsewhere.example.test"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidInput, "{error}");
}

/// A lazy configuration of native-app whose builds are counted; the client it builds
/// reaches nothing (port 9 refuses), or is for `client_id`.
fn counted_lazy(client_id: &'static str, builds: Arc<AtomicU64>) -> ClientConfig {
    ClientConfig::lazy("https://idp.example.test", "native-app", move || {
        builds.fetch_add(1, Ordering::SeqCst);
        async move {
            let url = "https://idp.example.test";
            let token_endpoint = url::Url::parse("http://127.0.0.1:9/token").unwrap();
            let issuer = Issuer::builder(url)
                .metadata(ProviderMetadata::new(url, token_endpoint))
                .build()
                .await?;
            Ok(OAuthClient::builder(issuer, client_id).build())
        }
    })
}

#[tokio::test]
async fn a_lazy_client_is_built_only_when_a_grant_must_run() {
    let builds = Arc::new(AtomicU64::new(0));
    let store = MemoryStore::new();
    let grant = |expires_at: u64| {
        serde_json::from_value::<StoredGrant>(serde_json::json!({
            "version": 1, "issuer": "https://idp.example.test", "client_id": "native-app",
            "account": "alice", "refresh_token": "rt", "scopes": ["read"],
            "updated_at": NOW, "access_tokens": [access_token(None, expires_at)],
        }))
        .unwrap()
    };
    store.put(&grant(NOW + 600)).await.unwrap();
    let manager = TokenManager::builder(store)
        .client(counted_lazy("native-app", builds.clone()))
        .clock(Arc::new(ManualClock::at_unix(NOW)))
        .build();
    let request = TokenRequest::new("alice");

    // From the store: the key needs no client.
    let token = manager.get(&request).await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "at");
    assert_eq!(builds.load(Ordering::SeqCst), 0);
    assert!(manager.inner.clients[0].built_client().is_none());

    // A refresh needs the client: built once, then kept.
    let needs_refresh = request.clone().min_valid(Duration::from_secs(3600));
    let error = manager.get(&needs_refresh).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Transport, "{error}");
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    manager.get(&needs_refresh).await.unwrap_err();
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert!(manager.inner.clients[0].built_client().is_some());

    // A build that makes another client than the one named fails the grant, and is
    // tried again next time.
    let wrong_builds = Arc::new(AtomicU64::new(0));
    let store = MemoryStore::new();
    store.put(&grant(NOW - 1)).await.unwrap();
    let manager = TokenManager::builder(store)
        .client(counted_lazy("someone-else", wrong_builds.clone()))
        .clock(Arc::new(ManualClock::at_unix(NOW)))
        .build();
    for expected_builds in [1, 2] {
        let error = manager.get(&request).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidInput, "{error}");
        assert!(error.to_string().contains("someone-else"), "{error}");
        assert_eq!(wrong_builds.load(Ordering::SeqCst), expected_builds);
    }
    assert!(format!("{:?}", manager.inner.clients[0]).contains("built: false"));
}

/// Counts what a manager reports.
#[derive(Debug, Default)]
struct Counting {
    hits: AtomicU64,
    misses: AtomicU64,
    provider_requests: AtomicU64,
}

impl ManagerObserver for Counting {
    fn lookup(&self, cached: bool) {
        let counter = if cached { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn provider_request(
        &self,
        _: &str,
        _: &str,
        _: ProviderGrant,
        _: std::result::Result<(), &Error>,
        _: Duration,
    ) {
        self.provider_requests.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn the_observer_is_told_of_hits_and_misses() {
    let issuer = offline_issuer(Arc::new(ManualClock::at_unix(NOW))).await;
    let store = MemoryStore::new();
    let grant: StoredGrant = serde_json::from_value(serde_json::json!({
        "version": 1, "issuer": "https://idp.example.test", "client_id": "native-app", "account": "alice",
        "updated_at": NOW, "access_tokens": [access_token(None, NOW + 500)],
    }))
    .unwrap();
    store.put(&grant).await.unwrap();
    let counting = Arc::new(Counting::default());
    let manager = TokenManager::builder(store)
        .client(OAuthClient::builder(issuer, "native-app").build())
        .observer(counting.clone())
        .build();
    let request = TokenRequest::new("alice");
    // First from the store (a miss), then from memory (a hit).
    manager.get(&request).await.unwrap();
    manager.get(&request).await.unwrap();
    // Nothing covers another audience, and nothing can be refreshed: a miss, no request.
    let other = TokenRequest::new("alice").audience("https://other.example.test");
    assert!(manager.get(&other).await.is_err());
    assert_eq!(counting.hits.load(Ordering::Relaxed), 1);
    assert_eq!(counting.misses.load(Ordering::Relaxed), 2);
    assert_eq!(counting.provider_requests.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn narrower_path_scopes_go_to_the_provider_and_wider_ones_are_named() {
    let builds = Arc::new(AtomicU64::new(0));
    let store = MemoryStore::new();
    let scopes = ["openid", "storage.read:/", "storage.create:/home/alice"];
    let grant: StoredGrant = serde_json::from_value(serde_json::json!({
        "version": 1, "issuer": "https://idp.example.test", "client_id": "native-app",
        "account": "alice", "refresh_token": "rt", "scopes": scopes, "updated_at": NOW,
        "access_tokens": [{
            "access_token": "wide", "token_type": "Bearer", "issued_at": NOW,
            "expires_at": NOW + 600, "scopes": scopes,
        }],
    }))
    .unwrap();
    store.put(&grant).await.unwrap();
    let manager = TokenManager::builder(store)
        .client(counted_lazy("native-app", builds.clone()))
        .clock(Arc::new(ManualClock::at_unix(NOW)))
        .build();
    let request = |scope: &str| TokenRequest::new("alice").scopes([scope]);

    // The grant's own scopes: the stored token.
    let token = manager.get(&request("storage.read:/")).await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "wide");
    assert_eq!(builds.load(Ordering::SeqCst), 0);

    // A path below the grant's: not the wider token, but a refresh for a narrower one
    // (this client reaches no provider, so the refresh fails on the network).
    for narrower in ["storage.read:/data", "storage.create:/home/alice/out"] {
        let error = manager.get(&request(narrower)).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::Transport, "{narrower}: {error}");
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1);

    // Wider paths, other authorizations, paths that could escape: refused before the
    // provider is asked, naming the missing scope.
    for (wider, why) in [
        (
            "storage.create:/home",
            Some("storage.create:/home/alice covers only"),
        ),
        (
            "storage.create:/",
            Some("storage.create:/home/alice covers only"),
        ),
        ("storage.modify:/home/alice", None),
        ("storage.read:/data/../etc", None),
        ("profile", None),
    ] {
        let error = manager.get(&request(wider)).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::ScopesMismatch, "{wider}: {error}");
        let message = error.to_string();
        assert!(message.contains(&format!("scopes {wider} (")), "{message}");
        if let Some(why) = why {
            assert!(message.contains(why), "{message}");
        }
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_longest_lived_matching_token_is_served() {
    let mut older = access_token(Some("https://api.example.test"), NOW + 300);
    older["access_token"] = "older".into();
    let mut newer = access_token(Some("https://api.example.test"), NOW + 500);
    newer["access_token"] = "newer".into();
    let manager = offline_manager(serde_json::json!({
        "version": 1, "issuer": "https://idp.example.test", "client_id": "native-app",
        "account": "alice", "updated_at": NOW, "access_tokens": [older, newer],
    }))
    .await;
    let token = manager
        .get(&TokenRequest::new("alice").audience("https://api.example.test"))
        .await
        .unwrap();
    assert_eq!(token.access_token().expose_secret(), "newer");
    assert_eq!(token.audience(), Some("https://api.example.test"));
}
