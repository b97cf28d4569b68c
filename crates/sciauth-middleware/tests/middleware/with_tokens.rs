//! A `TokenManager`'s `TokenCredential` in `AuthMiddleware`: the API's 401 makes the manager
//! refresh at the token endpoint, once, and the request goes out again with the new token.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::StatusCode;
use reqwest_middleware::ClientBuilder;
use sciauth_middleware::Auth;
use sciauth_tokens::url::Url;
use sciauth_tokens::{
    Issuer, MemoryStore, OAuthClient, ProviderMetadata, StoredGrant, TokenManager, TokenRequest,
    TokenStore,
};
use serde_json::json;

use crate::support::{TestServer, json, status};

#[tokio::test]
async fn a_token_managers_credential_is_refreshed_after_a_401_and_sent_again() {
    let provider = TestServer::start(|_, _| {
        json(json!({
            "access_token": "access-2",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": "refresh-2",
        }))
    })
    .await;
    let api = TestServer::start(|seen, _| match seen.authorization() {
        Some("Bearer access-2") => status(200),
        _ => status(401),
    })
    .await;

    let issuer_url = provider.origin();
    let metadata = ProviderMetadata::new(&issuer_url, Url::parse(&provider.url("/token")).unwrap());
    let issuer = Issuer::builder(&issuer_url)
        .metadata(metadata)
        .build()
        .await
        .unwrap();
    let client = OAuthClient::builder(issuer, "native-app").build();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let store = MemoryStore::new();
    let grant: StoredGrant = serde_json::from_value(json!({
        "version": 1,
        "issuer": issuer_url,
        "client_id": "native-app",
        "account": "alice",
        "refresh_token": "refresh-1",
        "updated_at": now,
        "access_tokens": [{
            "access_token": "access-1",
            "token_type": "Bearer",
            "issued_at": now,
            "expires_at": now + 3600,
        }],
    }))
    .unwrap();
    store.put(&grant).await.unwrap();
    let manager = TokenManager::builder(store).client(client).build();
    let credential = Arc::new(manager.credential(TokenRequest::new("alice")));

    let auth = Auth::builder(credential)
        .origin(api.origin())
        .build()
        .unwrap();
    let http = ClientBuilder::new(reqwest::Client::new())
        .with(auth.middleware())
        .build();
    let response = http.get(api.url("/v1/me")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        api.log.authorizations(),
        [
            Some("Bearer access-1".to_owned()),
            Some("Bearer access-2".to_owned())
        ]
    );
    let refreshes = provider.log.all();
    assert_eq!(refreshes.len(), 1);
    let body = String::from_utf8_lossy(&refreshes[0].body);
    assert!(body.contains("grant_type=refresh_token"), "{body}");
    // The provider never saw the API's token, nor the API the refresh token.
    assert!(
        refreshes[0]
            .authorization()
            .is_none_or(|a| !a.contains("access-"))
    );
    assert!(
        api.log
            .all()
            .iter()
            .all(|seen| !format!("{seen:?}").contains("refresh-"))
    );
}
