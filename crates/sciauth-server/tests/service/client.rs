//! The facade's `TokenServiceClient` against the service: its cache honours
//! requiredTimeLeft, and the service's refusals arrive with their message.

use sciauth::TokenServiceClient;
use sciauth::credentials::BearerToken;
use sciauth::tokens::service::GetTokenRequest;
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
    assert_eq!(refused.kind(), sciauth::ErrorKind::AuthenticationFailed);
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
