//! Token exchange (RFC 8693): narrower scope, another audience, a refresh token for FTS.

use sciauth_tokens::{ErrorKind, OAuthErrorCode, Scopes, token_type};
use secrecy::ExposeSecret as _;

use crate::idp::Idp;
use crate::{API, OTHER, cc_basic, claims, issuer, native_app, user_token};

#[tokio::test]
async fn exchange_yields_narrower_scope_and_another_audience() {
    let idp = Idp::start().await;
    let issuer = issuer(&idp).await;
    let user = user_token(
        &native_app(&issuer),
        &["openid", "api:read", "api:write"],
        Some(API),
    )
    .await;
    let service = cc_basic(&issuer);

    // Narrower: the same audience, one scope of two. Sent as RFC 8707 `resource`.
    let narrow = service
        .exchange_access_token(&user)
        .scopes(["api:read"])
        .audience(API)
        .send()
        .await
        .unwrap();
    let at = claims(narrow.access_token().expose_secret());
    assert_eq!(at["scope"], "api:read");
    assert_eq!(at["aud"], API);
    assert_eq!(at["client_id"], "cc-basic");
    assert_eq!(narrow.scopes(), &Scopes::parse("api:read"));
    assert_eq!(narrow.issued_token_type(), Some(token_type::ACCESS_TOKEN));

    // Another audience, as an RFC 8707 resource indicator.
    let other = service
        .exchange(user.access_token().clone(), token_type::ACCESS_TOKEN)
        .scopes(["other:read"])
        .resource(OTHER)
        .send()
        .await
        .unwrap();
    let at = claims(other.access_token().expose_secret());
    assert_eq!(at["aud"], "other-api");
    assert_eq!(at["scope"], "other:read");
    assert_eq!(
        at["sub"],
        claims(user.access_token().expose_secret())["sub"]
    );
    assert_eq!(other.audience(), Some(OTHER));
}

#[tokio::test]
async fn exchange_by_audience_parameter_and_with_an_actor() {
    let idp = Idp::start().await;
    let issuer = issuer(&idp).await;
    let user = user_token(&native_app(&issuer), &["openid", "api:read"], Some(API)).await;
    let service = sciauth_tokens::OAuthClient::builder(issuer.clone(), "cc-post")
        .auth(sciauth_tokens::ClientAuth::secret_post("cc-post-secret"))
        .build();
    let actor = service.client_credentials().send().await.unwrap();
    let token = service
        .exchange_access_token(&user)
        .audience("other-api")
        .scopes(["other:read"])
        .actor(actor.access_token().clone(), token_type::ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    let at = claims(token.access_token().expose_secret());
    assert_eq!(at["aud"], "other-api");
    assert_eq!(at["act"]["sub"], "cc-post");
}

#[tokio::test]
async fn exchange_for_a_refresh_token_as_fts_does_then_refresh_with_it() {
    let idp = Idp::start().await;
    let issuer = issuer(&idp).await;
    let user = user_token(&native_app(&issuer), &["openid", "api:read"], Some(API)).await;
    let fts = cc_basic(&issuer);
    let delegated = fts
        .exchange_access_token(&user)
        .requested_token_type(token_type::REFRESH_TOKEN)
        .scopes(["api:read"])
        .audience(API)
        .send()
        .await
        .unwrap();
    assert!(
        delegated.refresh_token().is_some(),
        "FTS needs the refresh token"
    );
    // Phase 2 of the FTS compliance check: the refresh token works (CILogon failed here).
    let refreshed = fts.refresh(&delegated).send().await.unwrap();
    let at = claims(refreshed.access_token().expose_secret());
    assert_eq!(at["aud"], API);
    assert_eq!(at["client_id"], "cc-basic");
}

#[tokio::test]
async fn a_bad_subject_token_is_invalid_grant() {
    let idp = Idp::start().await;
    let error = cc_basic(&issuer(&idp).await)
        .exchange("not-a-token".to_owned().into(), token_type::ACCESS_TOKEN)
        .audience(API)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidGrant)
    );
}
