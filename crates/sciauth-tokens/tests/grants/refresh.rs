//! The refresh token grant: rotation, down-scoping, and keeping a refresh token that is not
//! rotated.

use sciauth_tokens::{ErrorKind, OAuthErrorCode, Scopes};
use secrecy::ExposeSecret as _;

use crate::idp::Idp;
use crate::{API, claims, issuer, native_app, user_token};

#[tokio::test]
async fn rotation_returns_the_new_refresh_token_and_the_old_one_is_rejected() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let first = user_token(&client, &["openid", "offline_access"], None).await;
    let second = client.refresh(&first).send().await.unwrap();
    let (old_rt, new_rt) = (
        first.refresh_token().unwrap().expose_secret(),
        second.refresh_token().unwrap().expose_secret(),
    );
    assert_ne!(old_rt, new_rt, "the provider rotates");
    assert_ne!(
        first.access_token().expose_secret(),
        second.access_token().expose_secret()
    );
    assert_eq!(second.scopes(), first.scopes());
    assert!(second.id_token().is_some());

    // The old refresh token is dead now.
    let error = client.refresh(&first).send().await.unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidGrant)
    );
    assert!(error.to_string().contains("log in again"), "{error}");
}

#[tokio::test]
async fn without_rotation_the_refresh_token_stays_usable() {
    let idp = Idp::start_with(&[("ROTATE_REFRESH_TOKEN", "0")]).await;
    let client = native_app(&issuer(&idp).await);
    let first = user_token(&client, &["openid", "offline_access"], None).await;
    let second = client.refresh(&first).send().await.unwrap();
    assert_eq!(
        first.refresh_token().unwrap().expose_secret(),
        second.refresh_token().unwrap().expose_secret()
    );
    let third = client.refresh(&second).send().await.unwrap();
    assert!(third.refresh_token().is_some());
    assert_eq!(idp.counts().await["success"]["refresh_token"], 2);
}

#[tokio::test]
async fn refresh_can_narrow_scopes_but_not_widen_them() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let token = user_token(
        &client,
        &["openid", "offline_access", "api:read", "api:write"],
        Some(API),
    )
    .await;
    let narrower = client
        .refresh(&token)
        .scopes(["api:read"])
        .audience(API)
        .send()
        .await
        .unwrap();
    assert_eq!(narrower.scopes(), &Scopes::parse("api:read"));
    let at = claims(narrower.access_token().expose_secret());
    assert_eq!(at["aud"], API);
    assert_eq!(at["scope"], "api:read");
    assert_eq!(narrower.audience(), Some(API));

    let error = client
        .refresh(&narrower)
        .scopes(["profile"])
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidScope)
    );
}

#[tokio::test]
async fn a_token_without_refresh_token_says_so() {
    let idp = Idp::start().await;
    let client = crate::cc_basic(&issuer(&idp).await);
    let token = client.client_credentials().send().await.unwrap();
    let error = client.refresh(&token).send().await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::NoRefreshToken);
}
