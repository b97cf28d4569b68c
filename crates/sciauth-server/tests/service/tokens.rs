//! updateToken, getToken for users and groups, and what is kept in PostgreSQL.

use sciauth_server::PostgresStore;
use sciauth_tokens::{GrantKey, OAuthErrorCode, TokenStore};
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::{API, CLIENT, Fixture, call, claims, http, logs, secrets, update};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_user_token_is_served_refreshed_and_replaced() {
    let logs = logs();
    let fixture = Fixture::start().await;
    let base = fixture.replica().await;
    let http = http();
    let alice = fixture.user_caller("alice").await;
    let first = fixture.user_token("alice").await;

    // updateToken answers what is kept, without secrets.
    let kept = call(
        &http,
        &base,
        "updateToken",
        Some(&alice),
        None,
        crate::update_body(&first, "alice"),
    )
    .await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    assert_eq!(kept.json[0]["username"], "alice");
    assert_eq!(kept.json[0]["userID"], "alice");
    assert_eq!(kept.json[0]["has_refresh_token"], true);
    for secret in secrets(&first) {
        assert!(!kept.text.contains(&secret), "{}", kept.text);
    }

    // getToken serves the kept access token without asking the provider.
    fixture.idp.reset_counts().await;
    let served = call(
        &http,
        &base,
        "getToken",
        Some(&alice),
        None,
        json!({"username": "alice"}),
    )
    .await;
    assert_eq!(served.status, 200, "{}", served.text);
    let access = served.json["access_token"].as_str().unwrap().to_owned();
    assert!(fixture.active(&access).await);
    assert_eq!(fixture.requests("refresh_token").await, 0);
    assert_eq!(served.json["provider"], "idp");
    assert_eq!(served.json["issuer"], fixture.idp.issuer());

    // More time left than the kept token has: one refresh; the rotated refresh token is in
    // the database before the access token comes back.
    let refreshed = call(
        &http,
        &base,
        "getToken",
        Some(&alice),
        None,
        json!({"username": "alice", "requiredTimeLeft": 3600}),
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let fresh = refreshed.json["access_token"].as_str().unwrap().to_owned();
    assert_ne!(fresh, access);
    assert!(fixture.active(&fresh).await);
    assert_eq!(fixture.requests("refresh_token").await, 1);
    let store = PostgresStore::connect(&fixture.database).await.unwrap();
    let key = GrantKey::new(fixture.idp.issuer(), CLIENT, "alice");
    let stored = store.get(&key).await.unwrap().unwrap();
    let rotated = stored.refresh_token().unwrap().expose_secret().to_owned();
    assert_ne!(rotated, first.refresh_token().unwrap().expose_secret());
    // And it is served again from the cache.
    let again = call(
        &http,
        &base,
        "getToken",
        Some(&alice),
        None,
        json!({"username": "alice"}),
    )
    .await;
    assert_eq!(again.json["access_token"], fresh.as_str());
    assert_eq!(fixture.requests("refresh_token").await, 1);

    // A second updateToken replaces the first: its refresh token is revoked at the provider.
    let second = fixture.user_token("alice").await;
    update(&http, &base, &alice, &second, "alice").await;
    let refused = fixture
        .client
        .refresh_with(secrecy::SecretString::from(rotated))
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
    assert!(
        !fixture.active(&fresh).await,
        "the replaced grant is revoked"
    );
    let stored = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token().unwrap().expose_secret(),
        second.refresh_token().unwrap().expose_secret()
    );
    let now_served = call(
        &http,
        &base,
        "getToken",
        Some(&alice),
        None,
        json!({"username": "alice"}),
    )
    .await;
    assert_eq!(
        now_served.json["access_token"],
        second.access_token().expose_secret()
    );

    // Info calls hold no secrets; logs (every level) hold no token.
    let info = call(
        &http,
        &base,
        "getUserTokensInfo",
        Some(&alice),
        None,
        json!({}),
    )
    .await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(info.json.as_array().unwrap().len(), 1);
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for token in [&first, &second] {
        for secret in secrets(token) {
            assert!(!info.text.contains(&secret));
            assert!(!logged.contains(&secret), "a token was logged");
        }
    }
    assert!(!logged.contains(&fresh));
    assert!(!logged.contains(&alice), "a caller's token was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_tokens_carry_the_requested_audience_and_are_cached() {
    let fixture = Fixture::start().await;
    let base = fixture.replica().await;
    let http = http();
    let pilot = fixture.pilot().await;
    fixture.idp.reset_counts().await;

    let answer = call(
        &http,
        &base,
        "getToken",
        Some(&pilot),
        None,
        json!({"group": "pilots", "audience": API, "requiredTimeLeft": 60}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let jwt = answer.json["access_token"].as_str().unwrap();
    let claims = claims(jwt);
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["sub"], CLIENT);
    assert!(claims["scope"].as_str().unwrap().contains("api:read"));
    assert_eq!(answer.json["audience"], API);
    fixture
        .issuer
        .validate_access_token(jwt, API)
        .await
        .expect("a valid token of the provider for the API");

    // The same request again: the kept token, no provider call.
    let again = call(
        &http,
        &base,
        "getToken",
        Some(&pilot),
        Some("pilots"),
        json!({"audience": API}),
    )
    .await;
    assert_eq!(again.json["access_token"], jwt);
    assert_eq!(fixture.requests("client_credentials").await, 1);

    // Another audience is another token; a scope the audience does not offer is the
    // caller's to fix (400), not a server error.
    let refused = call(
        &http,
        &base,
        "getToken",
        Some(&pilot),
        None,
        json!({"audience": "https://other.example.test", "scope": ["api:read"]}),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json["error"], "provider_refused");
}

/// A group's token carries at most the scopes the group's configuration lists, though the
/// service's client could get more (the API also offers `api:write`): asking for more is
/// refused before the provider is asked, whoever asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_tokens_are_bounded_by_the_groups_scopes() {
    let fixture = Fixture::start().await;
    let base = fixture.replica().await;
    let http = http();
    let (pilot, admin) = (fixture.pilot().await, fixture.admin().await);
    fixture.idp.reset_counts().await;

    for caller in [&pilot, &admin] {
        for scope in [
            json!(["api:write"]),
            json!(["api:read", "api:write"]),
            json!(["api:read api:write"]),
        ] {
            let refused = call(
                &http,
                &base,
                "getToken",
                Some(caller),
                None,
                json!({"group": "pilots", "audience": API, "scope": scope}),
            )
            .await;
            assert_eq!(refused.status, 403, "{}", refused.text);
            assert_eq!(refused.json["error"], "forbidden", "{}", refused.text);
            let message = refused.json["message"].as_str().unwrap();
            assert!(
                message.contains("api:write") && message.contains("(api:read)"),
                "{message}"
            );
        }
    }
    assert_eq!(fixture.requests("client_credentials").await, 0);

    // Within the bound: served, with the group's scope only.
    let allowed = call(
        &http,
        &base,
        "getToken",
        Some(&pilot),
        None,
        json!({"group": "pilots", "audience": API, "scope": ["api:read"]}),
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    let granted = claims(allowed.json["access_token"].as_str().unwrap())["scope"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(granted.split(' ').any(|s| s == "api:read"), "{granted}");
    assert!(!granted.split(' ').any(|s| s == "api:write"), "{granted}");
    // A group with no scopes configured gets none added by the caller.
    let none = call(
        &http,
        &base,
        "getToken",
        Some(&admin),
        None,
        json!({"group": "admins", "scope": ["openid"]}),
    )
    .await;
    assert_eq!(none.status, 403, "{}", none.text);
    assert!(
        none.json["message"].as_str().unwrap().contains("(none)"),
        "{}",
        none.text
    );
}
