//! How a request finds its token: minimum time left, scopes, audiences.

use std::sync::Arc;
use std::time::Duration;

use sciauth_tokens::sciauth_credentials::{Clock as _, ManualClock};
use sciauth_tokens::{ErrorKind, TokenRequest};
use secrecy::ExposeSecret as _;

use crate::idp::{self, Idp};
use crate::{API, AT_TTL, OTHER, claims, login, manager, refreshes};

#[tokio::test]
async fn a_token_with_less_time_left_than_required_is_refreshed_and_one_with_more_is_not() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    let first = login(&manager, &request, &[]).await;
    idp.reset_counts().await;

    // 400 s left.
    clock.advance(Duration::from_secs(200));
    let enough = request.clone().min_valid(Duration::from_secs(300));
    let token = manager.get(&enough).await.unwrap();
    assert_eq!(
        token.access_token().expose_secret(),
        first.access_token().expose_secret()
    );
    assert_eq!(refreshes(&idp).await, 0);

    let more = request.clone().min_valid(Duration::from_secs(500));
    let token = manager.get(&more).await.unwrap();
    assert_ne!(
        token.access_token().expose_secret(),
        first.access_token().expose_secret()
    );
    assert_eq!(refreshes(&idp).await, 1);
    assert!(token.expires_in(clock.now()).unwrap() >= Duration::from_secs(500));

    // The new one has its whole lifetime: asking again costs nothing.
    let again = manager.get(&more).await.unwrap();
    assert_eq!(
        again.access_token().expose_secret(),
        token.access_token().expose_secret()
    );
    assert_eq!(refreshes(&idp).await, 1);

    // More than any token lives: the newest one is handed out, not refreshed forever.
    let impossible = request.clone().min_valid(AT_TTL * 2);
    let newest = manager.get(&impossible).await.unwrap();
    assert_eq!(refreshes(&idp).await, 2);
    assert!(!newest.is_expired_at(clock.now(), Duration::ZERO));
}

#[tokio::test]
async fn scopes_subset_is_found_superset_is_refused_other_audience_is_a_separate_token() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let login_request = TokenRequest::new("alice")
        .scopes([
            "openid",
            "offline_access",
            "api:read",
            "api:write",
            "other:read",
        ])
        .audience(API);
    let first = login(&manager, &login_request, &[OTHER]).await;
    assert_eq!(claims(first.access_token().expose_secret())["aud"], API);
    idp.reset_counts().await;

    // A subset of the scopes, same audience: the stored token.
    let subset = TokenRequest::new("alice")
        .scopes(["api:read"])
        .audience(API);
    let token = manager.get(&subset).await.unwrap();
    assert_eq!(
        token.access_token().expose_secret(),
        first.access_token().expose_secret()
    );

    // A scope the grant never had: refused without asking the provider.
    let superset = TokenRequest::new("alice")
        .scopes(["api:read", "profile"])
        .audience(API);
    let error = manager.get(&superset).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::ScopesMismatch, "{error}");
    assert!(error.to_string().contains("profile"), "{error}");
    assert_eq!(refreshes(&idp).await, 0);

    // Another audience: a separate token, refreshed for it, stored beside the first.
    let other = TokenRequest::new("alice")
        .scopes(["other:read"])
        .audience(OTHER);
    let other_token = manager.get(&other).await.unwrap();
    assert_eq!(refreshes(&idp).await, 1);
    assert_eq!(
        claims(other_token.access_token().expose_secret())["aud"],
        "other-api"
    );
    assert_eq!(other_token.audience(), Some(OTHER));
    let stored = manager.stored(&other).await.unwrap().unwrap();
    assert_eq!(stored.access_tokens().len(), 2);

    // Both are served from the store now, and the API one is still the first.
    let again = manager.get(&subset).await.unwrap();
    assert_eq!(
        again.access_token().expose_secret(),
        first.access_token().expose_secret()
    );
    let other_again = manager.get(&other).await.unwrap();
    assert_eq!(
        other_again.access_token().expose_secret(),
        other_token.access_token().expose_secret()
    );
    assert_eq!(refreshes(&idp).await, 1);

    // Listing shows both, without secrets.
    let list = manager.list().await.unwrap();
    assert_eq!(list.len(), 1);
    let audiences: Vec<_> = list[0]
        .access_tokens
        .iter()
        .map(|t| t.audience.clone())
        .collect();
    assert!(audiences.contains(&Some(API.to_owned())));
    assert!(audiences.contains(&Some(OTHER.to_owned())));
    let shown = format!("{list:?}");
    for secret in [
        first.access_token().expose_secret(),
        other_token.access_token().expose_secret(),
        first.refresh_token().unwrap().expose_secret(),
    ] {
        assert!(!shown.contains(secret));
    }
}

#[tokio::test]
async fn nothing_stored_means_login_required() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock).await;
    let error = manager.get(&TokenRequest::new("nobody")).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::NoSavedTokens, "{error}");
    assert!(error.to_string().contains("log in"), "{error}");
}

#[tokio::test]
async fn wlcg_paths_below_the_grant_refresh_for_a_narrower_token_kept_beside_the_wider() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let login_request = TokenRequest::new("alice").scopes([
        "openid",
        "offline_access",
        "storage.read:/",
        "storage.create:/home",
    ]);
    let wide = login(&manager, &login_request, &[]).await;
    assert!(
        wide.scopes().contains("storage.read:/"),
        "{:?}",
        wide.scopes()
    );
    idp.reset_counts().await;

    // Below the grant's path: one refresh, for a token with exactly that scope.
    let data = TokenRequest::new("alice").scopes(["storage.read:/data/run1"]);
    let narrow = manager.get(&data).await.unwrap();
    assert_eq!(narrow.scopes().to_string(), "storage.read:/data/run1");
    assert_ne!(
        narrow.access_token().expose_secret(),
        wide.access_token().expose_secret()
    );
    assert_eq!(refreshes(&idp).await, 1);

    // Both are kept, each for its own scopes.
    let again = manager.get(&data).await.unwrap();
    assert_eq!(
        again.access_token().expose_secret(),
        narrow.access_token().expose_secret()
    );
    let root = manager
        .get(&TokenRequest::new("alice").scopes(["storage.read:/"]))
        .await
        .unwrap();
    assert_eq!(
        root.access_token().expose_secret(),
        wide.access_token().expose_secret()
    );
    assert_eq!(refreshes(&idp).await, 1);

    // Wider than the grant: refused here, naming it, without asking the provider.
    let error = manager
        .get(&TokenRequest::new("alice").scopes(["storage.create:/"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::ScopesMismatch, "{error}");
    assert!(
        error
            .to_string()
            .contains("storage.create:/home covers only the paths below it"),
        "{error}"
    );
    assert_eq!(refreshes(&idp).await, 1);

    // The provider does the same check: a path beside the refresh token's is refused there
    // too (so the manager's refusal is not hiding something the provider would grant).
    let refreshed = idp::client()
        .post(format!("{}/token", idp.issuer()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "native-app"),
            (
                "refresh_token",
                manager
                    .stored(&data)
                    .await
                    .unwrap()
                    .unwrap()
                    .refresh_token()
                    .unwrap()
                    .expose_secret(),
            ),
            ("scope", "storage.create:/homework"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 400);
    let body: serde_json::Value = serde_json::from_str(&refreshed.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_scope");
}
