//! A resource server validating JWT access tokens against the provider's JWKS.

use sciauth_tokens::ErrorKind;
use secrecy::ExposeSecret as _;

use crate::idp::Idp;
use crate::{API, OTHER, cc_basic, issuer, native_app, transport, user_token};

#[tokio::test]
async fn a_jwt_access_token_is_valid_for_its_audience_only() {
    let idp = Idp::start().await;
    let issuer = issuer(&idp).await;
    let token = cc_basic(&issuer)
        .client_credentials()
        .scopes(["api:read"])
        .audience(API)
        .send()
        .await
        .unwrap();
    let jwt = token.access_token().expose_secret();
    let claims = issuer.validate_access_token(jwt, API).await.unwrap();
    assert_eq!(claims.subject(), Some("cc-basic"));
    assert_eq!(claims.client_id(), Some("cc-basic"));
    assert!(claims.scopes().contains("api:read"));
    assert_eq!(claims.issuer(), idp.issuer());

    let error = issuer.validate_access_token(jwt, OTHER).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidAccessToken);
    assert!(!error.to_string().contains(jwt));

    // A tampered payload, an opaque token and garbage are refused, never echoed.
    let mut parts: Vec<&str> = jwt.split('.').collect();
    let other_payload = jwt.split('.').nth(1).unwrap().replace('A', "B");
    parts[1] = &other_payload;
    let tampered = parts.join(".");
    for bad in [tampered.as_str(), "opaque-token-value", ""] {
        let error = issuer.validate_access_token(bad, API).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidAccessToken, "{error}");
        if !bad.is_empty() {
            assert!(!error.to_string().contains(bad));
        }
    }
}

#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    let idp = Idp::start().await;
    let issuer = issuer(&idp).await;
    // An ID token of a client whose id a service might use as its audience: signed by the
    // issuer, `aud` = the client id, unexpired. Only its `typ` (none here) tells it apart.
    let token = user_token(&native_app(&issuer), &["openid"], None).await;
    let id_token = token.id_token().unwrap().expose_secret();
    assert_eq!(crate::claims(id_token)["aud"], "native-app");

    let error = issuer
        .validate_access_token(id_token, "native-app")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidAccessToken);
    assert!(error.to_string().contains("not \"at+jwt\""), "{error}");
    assert!(!error.to_string().contains(id_token));

    // The provider's own access tokens are typed at+jwt and pass, with the opt-out too.
    let lenient = sciauth_tokens::Issuer::builder(idp.issuer())
        .transport(transport())
        .plain_jwt_access_tokens(true)
        .build()
        .await
        .unwrap();
    let access = cc_basic(&issuer)
        .client_credentials()
        .scopes(["api:read"])
        .audience(API)
        .send()
        .await
        .unwrap();
    let access = access.access_token().expose_secret();
    issuer.validate_access_token(access, API).await.unwrap();
    lenient.validate_access_token(access, API).await.unwrap();
    // The opt-out accepts untyped tokens: here, that very ID token. Hence its rule that
    // the service's audience is no client's id.
    lenient
        .validate_access_token(id_token, "native-app")
        .await
        .unwrap();
}
