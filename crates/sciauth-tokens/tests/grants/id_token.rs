//! ID token validation: nonce, JWKS rotation (unknown kid), and the refetch rate limit.

use std::time::Duration;

use sciauth_tokens::{ErrorKind, Issuer};
use secrecy::ExposeSecret as _;

use crate::idp::Idp;
use crate::{issuer, native_app, transport, user_token};

#[tokio::test]
async fn an_id_token_with_a_wrong_nonce_is_refused() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let token = user_token(&client, &["openid"], None).await;
    let id_token = token.id_token().unwrap().expose_secret();
    let nonce = crate::claims(id_token)["nonce"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = client
        .validate_id_token(id_token, Some(&nonce))
        .await
        .unwrap();
    assert_eq!(claims.subject(), "test-user");
    assert_eq!(claims.issuer(), idp.issuer());
    let error = client
        .validate_id_token(id_token, Some("another-nonce"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidIdToken);
    assert!(error.to_string().contains("nonce"), "{error}");
}

#[tokio::test]
async fn an_id_token_for_another_client_or_tampered_is_refused() {
    let idp = Idp::start().await;
    let issuer = issuer(&idp).await;
    let token = user_token(&native_app(&issuer), &["openid"], None).await;
    let id_token = token.id_token().unwrap().expose_secret();
    let other = crate::cc_basic(&issuer);
    let error = other.validate_id_token(id_token, None).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidIdToken);
    assert!(error.to_string().contains("not for this client"), "{error}");

    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    // Another first character of the signature (replacing an `A` with `A` would change
    // nothing, one time in 64).
    let other_char = if parts[2].starts_with('A') { 'B' } else { 'A' };
    parts[2] = format!("{other_char}{}", &parts[2][1..]);
    let tampered = parts.join(".");
    let error = native_app(&issuer)
        .validate_id_token(&tampered, None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidIdToken);
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_once_then_is_rate_limited() {
    let idp = Idp::start().await;
    // One issuer for the whole test: its JWKS cache holds the first key.
    let issuer = Issuer::builder(idp.issuer())
        .transport(transport())
        .jwks_refetch_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let client = native_app(&issuer);
    let first = user_token(&client, &["openid"], None).await;
    let first_kid = kid(first.id_token().unwrap().expose_secret());

    // Same port, same issuer, new key with a new kid.
    let idp = idp.restart().await;
    let second = user_token(&client, &["openid"], None).await;
    let second_id = second.id_token().unwrap().expose_secret().to_owned();
    assert_ne!(kid(&second_id), first_kid);
    // Many validations at once, all served from the refetched key set without failing on
    // the cache's lock.
    let checks: Vec<_> = (0..32)
        .map(|_| {
            let client = client.clone();
            let id = second_id.clone();
            tokio::spawn(async move { client.validate_id_token(&id, None).await })
        })
        .collect();
    for check in checks {
        check.await.unwrap().unwrap();
    }

    // Rotated again within the refetch interval: this kid is not fetched, so it is unknown.
    let idp = idp.restart().await;
    let fresh = Issuer::builder(idp.issuer())
        .transport(transport())
        .build()
        .await
        .unwrap();
    let third = user_token(&native_app(&fresh), &["openid"], None).await;
    let error = client
        .validate_id_token(third.id_token().unwrap().expose_secret(), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::UnknownSigningKey);
    assert!(
        error
            .to_string()
            .contains(&kid(third.id_token().unwrap().expose_secret()))
    );
}

fn kid(jwt: &str) -> String {
    use base64::Engine as _;
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}
