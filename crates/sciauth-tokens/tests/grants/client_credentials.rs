//! The client credentials grant, with every client authentication method, and its errors.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sciauth_tokens::{
    Algorithm, AudienceParameter, ClientAuth, ErrorKind, OAuthClient, OAuthErrorCode,
    PrivateKeyJwt, Scopes,
};
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::idp::Idp;
use crate::{API, OTHER, cc_basic, claims, issuer};

#[tokio::test]
async fn client_secret_basic_with_scope_and_resource_gives_a_jwt_for_that_audience() {
    let idp = Idp::start().await;
    let issuer = issuer(&idp).await;
    let token = cc_basic(&issuer)
        .client_credentials()
        .scopes(["api:read"])
        .audience(API)
        .send()
        .await
        .unwrap();
    let at = claims(token.access_token().expose_secret());
    assert_eq!(at["aud"], API);
    assert_eq!(at["sub"], "cc-basic");
    assert_eq!(at["scope"], "api:read");
    assert_eq!(token.scopes(), &Scopes::parse("api:read"));
    assert_eq!(token.audience(), Some(API));
    assert_eq!(token.client_id(), "cc-basic");
    assert_eq!(token.issuer(), idp.issuer());
    assert_eq!(token.lifetime().unwrap().as_secs(), 600);
    assert!(token.refresh_token().is_none());
}

#[tokio::test]
async fn client_secret_post_works() {
    let idp = Idp::start().await;
    let client = OAuthClient::builder(issuer(&idp).await, "cc-post")
        .auth(ClientAuth::secret_post("cc-post-secret"))
        .audience_parameter(AudienceParameter::Resource)
        .build();
    let token = client
        .client_credentials()
        .scopes(["other:read"])
        .audience(OTHER)
        .send()
        .await
        .unwrap();
    let at = claims(token.access_token().expose_secret());
    assert_eq!(at["aud"], "other-api");
    assert_eq!(at["client_id"], "cc-post");
}

#[tokio::test]
async fn an_omitted_audience_parameter_is_not_sent() {
    let idp = Idp::start().await;
    let client = OAuthClient::builder(issuer(&idp).await, "cc-basic")
        .auth(ClientAuth::secret_basic("cc-basic-secret"))
        .audience_parameter(AudienceParameter::Omit)
        .build();
    // Were `resource` sent, api:read would be granted with a JWT; without it the provider
    // refuses the resource scope, which proves nothing went out.
    let token = client
        .client_credentials()
        .audience(API)
        .send()
        .await
        .unwrap();
    assert_eq!(token.audience(), None);
    assert!(
        !token.access_token().expose_secret().contains('.'),
        "opaque token"
    );
}

#[tokio::test]
async fn private_key_jwt_works() {
    let key = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "test-key", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]});
    let dir = tempfile::tempdir().unwrap();
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(key.as_ref())
    );
    let key_file = dir.path().join("client.pem");
    std::fs::write(&key_file, pem).unwrap();

    let idp = Idp::start_with(&[("PKJWT_JWKS_FILE", jwks_file.to_str().unwrap())]).await;
    let client = OAuthClient::builder(issuer(&idp).await, "pkjwt-client")
        .auth(ClientAuth::private_key_jwt(
            PrivateKeyJwt::from_pem_file(&key_file, Algorithm::ES256)
                .unwrap()
                .key_id("test-key"),
        ))
        .audience_parameter(AudienceParameter::Resource)
        .build();
    // Twice: each request needs a fresh assertion (a replayed jti is refused).
    for _ in 0..2 {
        let token = client
            .client_credentials()
            .scopes(["api:write"])
            .audience(API)
            .send()
            .await
            .unwrap();
        assert_eq!(
            claims(token.access_token().expose_secret())["sub"],
            "pkjwt-client"
        );
    }
    assert!(!format!("{client:?}").contains("PRIVATE"));
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client() {
    let idp = Idp::start().await;
    let client = OAuthClient::builder(issuer(&idp).await, "cc-basic")
        .auth(ClientAuth::secret_basic("not-the-secret"))
        .build();
    let error = client.client_credentials().send().await.unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidClient)
    );
    assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
    assert!(error.to_string().contains("invalid_client"), "{error}");
    assert!(!format!("{error} {error:?}").contains("not-the-secret"));
}

#[tokio::test]
async fn a_scope_the_resource_does_not_offer_is_invalid_scope() {
    let idp = Idp::start().await;
    let error = cc_basic(&issuer(&idp).await)
        .client_credentials()
        .scopes(["other:read"])
        .audience(API)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidScope)
    );
}

#[tokio::test]
async fn an_unknown_audience_is_invalid_target() {
    let idp = Idp::start().await;
    let error = cc_basic(&issuer(&idp).await)
        .client_credentials()
        .audience("https://unknown.example.test")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidTarget)
    );
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
    assert!(error.to_string().contains("/token"), "{error}");
}
