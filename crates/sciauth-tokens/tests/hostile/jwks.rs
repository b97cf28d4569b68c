//! Key sets and ID tokens: garbage, floods, redirects, hostile headers. An ID token in a
//! refresh answer makes the client fetch the JWKS.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sciauth_tokens::ErrorKind;
use serde_json::json;

use crate::hostile::{HostileIdp, Recorder, Reply};
use crate::{assert_refused, refresh};

/// A JWT with this header, some claims, and a signature that is not one.
fn jwt(header: serde_json::Value) -> String {
    let part = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        part(header),
        part(json!({"iss": "x", "sub": "y", "aud": "hostile-client", "exp": u64::MAX, "iat": 0})),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

/// A provider whose refresh answers carry `id_token` and whose JWKS answers `jwks`.
async fn provider(id_token: &str, jwks: Reply) -> HostileIdp {
    let idp = HostileIdp::start().await;
    idp.set("/token", Reply::token("at", json!({"id_token": id_token})));
    idp.set("/jwks", jwks);
    idp
}

fn rs256() -> String {
    jwt(json!({"alg": "RS256", "kid": "key-1"}))
}

#[tokio::test]
async fn a_jwks_that_is_garbage_fails_the_id_token_check() {
    let idp = provider(&rs256(), Reply::json_text(200, "\u{1b}[2J{{{ not json")).await;
    let error = refresh(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &[]);
}

#[tokio::test]
async fn a_jwks_with_keys_of_the_wrong_shape_matches_no_key() {
    let keys: Vec<_> = (0..10_000)
        .map(|i| json!({"kty": "RSA", "kid": format!("k{i}"), "n": 5, "e": [1]}))
        .collect();
    let idp = provider(&rs256(), Reply::json(200, json!({"keys": keys}))).await;
    let error = refresh(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::UnknownSigningKey, &[]);
}

#[tokio::test]
async fn a_redirected_jwks_is_not_followed() {
    let recorder = Recorder::start().await;
    let idp = provider(
        &rs256(),
        Reply::redirect(302, &format!("{}/evil-keys", recorder.url())),
    )
    .await;
    let error = refresh(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::HttpStatus, &[]);
    assert!(recorder.requests().is_empty(), "{:?}", recorder.requests());
}

#[tokio::test]
async fn a_key_id_carrying_escapes_is_escaped_in_the_error() {
    let token = jwt(json!({"alg": "RS256", "kid": "k\u{1b}[2J\u{1b}]52;c;eA==\u{7}"}));
    let idp = provider(&token, Reply::json(200, json!({"keys": []}))).await;
    let error = refresh(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::UnknownSigningKey, &[]);
}

#[tokio::test]
async fn an_unsigned_id_token_is_refused() {
    let token = jwt(json!({"alg": "none"}));
    let idp = provider(&token, Reply::json(200, json!({"keys": []}))).await;
    let error = refresh(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidIdToken, &[]);
}

#[tokio::test]
async fn an_hmac_id_token_is_refused() {
    let token = jwt(json!({"alg": "HS256", "kid": "key-1"}));
    let idp = provider(
        &token,
        Reply::json(
            200,
            json!({"keys": [{"kty": "oct", "kid": "key-1", "k": "c2VjcmV0"}]}),
        ),
    )
    .await;
    let error = refresh(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidIdToken, &[]);
}
