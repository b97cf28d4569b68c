//! `sciauth_service_api::TokenServiceClient` against the service: its cache honours
//! requiredTimeLeft, and the service's refusals arrive with their message.

use sciauth_credentials::BearerToken;
use sciauth_service_api::GetTokenRequest;
use sciauth_service_api::{ErrorCode, TokenServiceClient};
use secrecy::ExposeSecret as _;

use crate::{API, Fixture, http, update};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_cache_answers_while_the_token_has_time_left() {
    let fixture = Fixture::start().await;
    let (base, stop) = fixture.stoppable_replica().await;
    let alice = fixture.user_caller("alice").await;
    let kept = fixture.user_token("alice").await;
    update(&http(), &base, &alice, &kept, "alice").await;
    let client = TokenServiceClient::builder(&base)
        .credential(BearerToken::new(&alice).unwrap())
        .build()
        .unwrap();

    let me = client.whoami().await.unwrap();
    assert_eq!(me.username, "alice");
    assert_eq!(client.ping().await.unwrap().service, "sciauth-server");
    let request = GetTokenRequest {
        username: Some("alice".into()),
        required_time_left: 60,
        ..Default::default()
    };
    let token = client.get_token(&request).await.unwrap();
    assert_eq!(
        token.access_token.expose_secret(),
        kept.access_token().expose_secret()
    );
    assert!(!format!("{token:?} {client:?}").contains(kept.access_token().expose_secret()));
    let info = client.user_tokens_info().await.unwrap();
    assert_eq!(info[0].username.as_deref(), Some("alice"));

    // Refusals carry the service's code and message.
    let refused = client
        .get_token(&GetTokenRequest {
            username: Some("bob".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(refused.is_refused(), "{refused:?}");
    assert_eq!(refused.code(), Some(&ErrorCode::Forbidden));
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(403));
    assert!(
        refused.to_string().contains("only your own tokens"),
        "{refused}"
    );

    // With the service gone, a cached token still answers, unless more time is asked for
    // than it has.
    drop(stop);
    let _ = http().get(format!("{base}/v1/ping")).send().await;
    let cached = client.get_token(&request).await.unwrap();
    assert_eq!(
        cached.access_token.expose_secret(),
        token.access_token.expose_secret()
    );
    let longer = GetTokenRequest {
        required_time_left: 3600,
        ..request.clone()
    };
    assert!(client.get_token(&longer).await.is_err());
    // Another audience is another key.
    let other = GetTokenRequest {
        audience: Some(API.into()),
        ..request
    };
    assert!(client.get_token(&other).await.is_err());
}

/// A user named like a group: the user's token and the group's client-credentials token are
/// cached apart, so asking for the group's token is never answered with the user's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_cache_keeps_a_users_and_a_groups_token_apart() {
    let fixture = Fixture::start().await;
    let base = fixture
        .replica_with(
            r#"
[groups.atlas]
vo = "test"

[users.atlas]
groups = ["atlas"]
subjects = ["atlas"]
ids = { idp = "atlas" }
"#,
        )
        .await;
    let atlas = fixture.user_caller("atlas").await;
    let kept = fixture.user_token("atlas").await;
    update(&http(), &base, &atlas, &kept, "atlas").await;
    let pilot = fixture.pilot().await;
    let client = TokenServiceClient::builder(&base)
        .credential(BearerToken::new(&pilot).unwrap())
        .build()
        .unwrap();
    fixture.idp.reset_counts().await;

    let users = client
        .get_token(&GetTokenRequest {
            username: Some("atlas".into()),
            group: Some("atlas".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        users.access_token.expose_secret(),
        kept.access_token().expose_secret()
    );
    let groups = client
        .get_token(&GetTokenRequest {
            group: Some("atlas".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_ne!(
        groups.access_token.expose_secret(),
        users.access_token.expose_secret(),
        "the group's token request was answered with the user's cached token"
    );
    assert_eq!(fixture.requests("client_credentials").await, 1);
    // Each is now cached under its own key.
    let again = client
        .get_token(&GetTokenRequest {
            username: Some("atlas".into()),
            group: Some("atlas".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        again.access_token.expose_secret(),
        users.access_token.expose_secret()
    );
}
