//! Revocation (RFC 7009) and introspection (RFC 7662).

use sciauth_tokens::{ErrorKind, OAuthErrorCode, TokenTypeHint};

use crate::idp::Idp;
use crate::{cc_basic, issuer, native_app, user_token};

#[tokio::test]
async fn a_revoked_refresh_token_cannot_refresh_and_introspects_inactive() {
    let idp = Idp::start().await;
    let issuer = issuer(&idp).await;
    let client = native_app(&issuer);
    let token = user_token(&client, &["openid", "offline_access"], None).await;
    let rt = token.refresh_token().unwrap();

    let before = client
        .introspect(rt, Some(TokenTypeHint::RefreshToken))
        .await
        .unwrap();
    assert!(before.active());
    assert_eq!(before.client_id(), Some("native-app"));
    assert!(before.scopes().contains("offline_access"));
    // A confidential client may introspect any token.
    let by_service = cc_basic(&issuer)
        .introspect(token.access_token(), Some(TokenTypeHint::AccessToken))
        .await
        .unwrap();
    assert!(by_service.active());

    client.revoke_token(&token).await.unwrap();

    let error = client.refresh(&token).send().await.unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidGrant)
    );
    let after = client
        .introspect(rt, Some(TokenTypeHint::RefreshToken))
        .await
        .unwrap();
    assert!(!after.active());
    // Revoking the refresh token ended the grant, its access token included.
    let at = client.introspect(token.access_token(), None).await.unwrap();
    assert!(!at.active());
    let counts = idp.counts().await;
    assert_eq!(counts["revocation"], 1);
    assert_eq!(counts["introspection"], 4);
}

#[tokio::test]
async fn revoking_an_access_token_and_an_unknown_one() {
    let idp = Idp::start().await;
    let client = cc_basic(&issuer(&idp).await);
    let token = client.client_credentials().send().await.unwrap();
    client
        .revoke(token.access_token(), Some(TokenTypeHint::AccessToken))
        .await
        .unwrap();
    assert!(
        !client
            .introspect(token.access_token(), None)
            .await
            .unwrap()
            .active()
    );
    // An unknown token: RFC 7009 answers 200.
    client
        .revoke(&"no-such-token".to_owned().into(), None)
        .await
        .unwrap();
}
