//! Unit tests that need no provider: the token model, its storage format, redaction.

use std::time::{Duration, UNIX_EPOCH};

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, json};

use crate::*;

fn sample_token() -> Token {
    let issued_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut extra = Map::new();
    extra.insert("refresh_expires_in".into(), json!(1800));
    Token::from(crate::token::TokenParts {
        access_token: SecretString::from("at-secret-value"),
        token_type: "Bearer".into(),
        refresh_token: Some(SecretString::from("rt-secret-value")),
        id_token: Some(SecretString::from("id-secret-value")),
        issued_at,
        expires_at: Some(issued_at + Duration::from_secs(600)),
        scopes: Scopes::parse("openid offline_access"),
        audience: Some("https://api.example.test".into()),
        issuer: "https://idp.example.test".into(),
        client_id: "native-app".into(),
        issued_token_type: None,
        extra,
    })
}

#[test]
fn token_debug_is_redacted() {
    let mut token = sample_token();
    // Providers put other tokens among the fields nobody modelled.
    token.parts_mut().extra.insert(
        "upstream".into(),
        json!({"access_token": "upstream-secret-value"}),
    );
    let debug = format!("{token:?}");
    for secret in [
        "at-secret-value",
        "rt-secret-value",
        "id-secret-value",
        "upstream-secret-value",
        "1800",
    ] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert_eq!(
        debug,
        "Token { access_token: \"[redacted]\", refresh_token: \"[redacted]\", id_token: \
         \"[redacted]\", token_type: \"Bearer\", issued_at: 1700000000, expires_at: \
         Some(1700000600), scopes: {\"offline_access\", \"openid\"}, audience: \
         Some(\"https://api.example.test\"), issuer: \"https://idp.example.test\", client_id: \
         \"native-app\", issued_token_type: None, extra: {\"refresh_expires_in\": \"[redacted]\", \
         \"upstream\": \"[redacted]\"} }"
    );
}

#[test]
fn token_serializes_to_the_documented_versioned_shape_and_back() {
    let token = sample_token();
    let value = serde_json::to_value(&token).unwrap();
    assert_eq!(
        value,
        json!({
            "version": 1,
            "issuer": "https://idp.example.test",
            "client_id": "native-app",
            "token_type": "Bearer",
            "access_token": "at-secret-value",
            "refresh_token": "rt-secret-value",
            "id_token": "id-secret-value",
            "issued_at": 1_700_000_000,
            "expires_at": 1_700_000_600,
            "scopes": ["offline_access", "openid"],
            "audience": "https://api.example.test",
            "extra": {"refresh_expires_in": 1800}
        })
    );
    let back: Token = serde_json::from_value(value).unwrap();
    assert_eq!(back.access_token().expose_secret(), "at-secret-value");
    assert_eq!(
        back.refresh_token().unwrap().expose_secret(),
        "rt-secret-value"
    );
    assert_eq!(back.expires_at(), token.expires_at());
    assert_eq!(back.scopes(), token.scopes());
    assert_eq!(back.extra(), token.extra());
}

#[test]
fn minimal_and_future_formats() {
    let minimal: Token = serde_json::from_value(json!({
        "version": 1, "issuer": "i", "client_id": "c", "token_type": "Bearer",
        "access_token": "a", "issued_at": 5
    }))
    .unwrap();
    assert!(minimal.refresh_token().is_none());
    assert!(minimal.expires_at().is_none());
    assert!(minimal.scopes().is_empty());
    let future = serde_json::from_value::<Token>(json!({
        "version": 2, "issuer": "i", "client_id": "c", "token_type": "Bearer",
        "access_token": "a", "issued_at": 5
    }))
    .unwrap_err();
    assert!(future.to_string().contains("newer sciauth"), "{future}");
}

#[test]
fn times_in_a_stored_token_beyond_the_clock_saturate_instead_of_panicking() {
    let huge: Token = serde_json::from_value(json!({
        "version": 1, "issuer": "i", "client_id": "c", "token_type": "Bearer",
        "access_token": "a", "refresh_token": "r", "issued_at": u64::MAX,
        "expires_at": u64::MAX, "extra": {"refresh_expires_in": u64::MAX}
    }))
    .unwrap();
    let end = sciauth_credentials::time::far_future();
    assert_eq!(huge.issued_at(), end);
    assert_eq!(huge.expires_at(), Some(end));
    assert_eq!(huge.refresh_expires_at(), Some(end));
    assert!(!huge.is_expired_at(UNIX_EPOCH, Duration::from_secs(60)));
    assert!(huge.is_expired_at(UNIX_EPOCH, Duration::MAX));
}

#[test]
fn expiry_helpers() {
    let token = sample_token();
    let issued = token.issued_at();
    assert_eq!(token.lifetime(), Some(Duration::from_secs(600)));
    assert_eq!(
        token.expires_in(issued + Duration::from_secs(100)),
        Some(Duration::from_secs(500))
    );
    assert_eq!(
        token.expires_in(issued + Duration::from_secs(1000)),
        Some(Duration::ZERO)
    );
    assert!(!token.is_expired_at(issued, Duration::from_secs(60)));
    assert!(token.is_expired_at(issued + Duration::from_secs(540), Duration::from_secs(60)));
    assert!(token.is_expired_at(issued + Duration::from_secs(600), Duration::ZERO));
    assert!(token.covers_scopes(&Scopes::parse("openid")));
    assert!(!token.covers_scopes(&Scopes::parse("openid profile")));
}

#[test]
fn error_display_names_code_and_hint_but_never_a_secret() {
    let error = Error::oauth(
        "the token endpoint https://idp.example.test/token",
        OAuthError::new(
            OAuthErrorCode::InvalidGrant,
            Some("grant request is invalid\nFAKE LOG LINE".into()),
        ),
    );
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidGrant)
    );
    let text = error.to_string();
    assert!(text.contains("invalid_grant"), "{text}");
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("log in again"), "{text}");
}

#[test]
fn client_secrets_and_verifiers_are_redacted() {
    assert_eq!(
        format!("{:?}", ClientAuth::secret_basic("hunter2")),
        "ClientAuth::SecretBasic([redacted])"
    );
    assert_eq!(
        format!("{:?}", PkceVerifier::generate()),
        "PkceVerifier([redacted])"
    );
}

#[test]
fn a_secret_is_masked_even_where_escaping_makes_it() {
    // Found by the oauth_error fuzz target: a carriage return before `t-...` is shown as
    // `\r`, which with `t-...` spells the refresh token `rt-...`.
    let mut secrets = crate::mask::Secrets::new();
    secrets.add(&secrecy::SecretString::from("rt-Refresh-42"));
    let body = br#"{"error":"x\rt-Refresh-42","error_description":"y\rt-Refresh-42"}"#;
    let oauth = OAuthError::from_body(body, &secrets).expect("an OAuth error");
    let shown = format!(
        "{} {}",
        oauth.code().as_str(),
        oauth.description().unwrap_or("")
    );
    assert!(!shown.contains("rt-Refresh-42"), "{shown}");
}
