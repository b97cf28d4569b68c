//! Token responses: wrong types, missing fields, hostile values, numbers that do not fit.

use std::time::{Duration, SystemTime};

use sciauth_tokens::ErrorKind;
use sciauth_tokens::secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;

use crate::hostile::{HostileIdp, Reply};
use crate::{assert_refused, bounded, client, client_credentials, refresh};

/// The provider answers the token request with `reply`; the grant must refuse it as an
/// invalid response, naming `field`.
async fn refused_naming(reply: Reply, field: &str) {
    let idp = HostileIdp::start().await;
    idp.set("/token", reply);
    let error = client_credentials(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &["planted-secret"]);
    assert!(error.to_string().contains(field), "{error}");
}

#[tokio::test]
async fn expires_in_beyond_the_clock_is_clamped_not_a_panic() {
    for expires_in in [json!(u64::MAX), json!(1e300), json!("99999999999999999999")] {
        let idp = HostileIdp::start().await;
        idp.set(
            "/token",
            Reply::token("at", json!({"expires_in": expires_in})),
        );
        let token = client_credentials(&idp).await.unwrap();
        let lifetime = token.lifetime().unwrap();
        assert_eq!(
            lifetime,
            Duration::from_secs(10 * 365 * 24 * 3600),
            "{expires_in}"
        );
        assert!(token.expires_at().unwrap() > SystemTime::now());
    }
}

#[tokio::test]
async fn expires_in_as_a_string_and_lowercase_bearer_are_legal_quirks() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::json(
            200,
            json!({"access_token": "at", "token_type": "bearer", "expires_in": "3600"}),
        ),
    );
    let token = client_credentials(&idp).await.unwrap();
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn negative_expires_in_is_refused() {
    refused_naming(
        Reply::token("planted-secret", json!({"expires_in": -1})),
        "expires_in",
    )
    .await;
}

#[tokio::test]
async fn non_numeric_expires_in_is_refused() {
    refused_naming(
        Reply::token("planted-secret", json!({"expires_in": {"seconds": 5}})),
        "expires_in",
    )
    .await;
}

#[tokio::test]
async fn a_mac_token_is_refused() {
    refused_naming(
        Reply::json(
            200,
            json!({"access_token": "planted-secret", "token_type": "mac"}),
        ),
        "token_type",
    )
    .await;
}

#[tokio::test]
async fn a_dpop_token_is_refused() {
    refused_naming(
        Reply::json(
            200,
            json!({"access_token": "planted-secret", "token_type": "DPoP"}),
        ),
        "token_type",
    )
    .await;
}

#[tokio::test]
async fn a_token_type_carrying_escapes_is_refused_and_not_echoed_raw() {
    refused_naming(
        Reply::json(
            200,
            json!({"access_token": "planted-secret", "token_type": "x\u{1b}]0;pwned\u{7}"}),
        ),
        "token_type",
    )
    .await;
}

#[tokio::test]
async fn an_empty_access_token_is_refused() {
    refused_naming(Reply::token("", json!({})), "access_token").await;
}

#[tokio::test]
async fn a_missing_access_token_is_refused() {
    refused_naming(
        Reply::json(200, json!({"token_type": "Bearer", "expires_in": 60})),
        "access_token",
    )
    .await;
}

#[tokio::test]
async fn an_access_token_of_the_wrong_type_is_refused() {
    refused_naming(
        Reply::json(
            200,
            json!({"access_token": ["planted-secret"], "token_type": "Bearer"}),
        ),
        "access_token",
    )
    .await;
}

#[tokio::test]
async fn an_access_token_with_crlf_is_refused() {
    refused_naming(
        Reply::token("planted-secret\r\nX-Injected: 1", json!({})),
        "access_token",
    )
    .await;
}

#[tokio::test]
async fn an_access_token_with_terminal_escapes_is_refused() {
    refused_naming(
        Reply::token(
            "planted-secret\u{1b}[2J\u{1b}]52;c;cHduZWQ=\u{7}",
            json!({}),
        ),
        "access_token",
    )
    .await;
}

#[tokio::test]
async fn an_access_token_of_a_mebibyte_is_refused() {
    // Under the 1 MiB answer limit, over the 64 KiB token limit.
    refused_naming(
        Reply::token(&"A".repeat(1000 * 1000), json!({})),
        "access_token",
    )
    .await;
}

#[tokio::test]
async fn an_empty_refresh_token_is_refused() {
    refused_naming(
        Reply::token("planted-secret", json!({"refresh_token": ""})),
        "refresh_token",
    )
    .await;
}

#[tokio::test]
async fn a_scope_with_control_characters_is_refused() {
    refused_naming(
        Reply::token(
            "planted-secret",
            json!({"scope": "openid\nX-Forged: log line"}),
        ),
        "scope",
    )
    .await;
}

#[tokio::test]
async fn a_json_array_is_not_a_token_response() {
    refused_naming(Reply::json_text(200, r#"["planted-secret"]"#), "array").await;
}

#[tokio::test]
async fn json_nested_deeper_than_the_parser_goes_is_refused() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    refused_naming(Reply::json_text(200, &deep), "not JSON").await;
}

#[tokio::test]
async fn garbage_bytes_with_status_200_are_refused() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::Http {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: (0u8..=255).cycle().take(4096).collect(),
        },
    );
    let error = client_credentials(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &[]);
}

#[tokio::test]
async fn an_html_page_with_status_200_is_refused() {
    refused_naming(
        Reply::Http {
            status: 200,
            headers: vec![("content-type".into(), "text/html".into())],
            body: b"<html><body>Login</body></html>".to_vec(),
        },
        "not JSON",
    )
    .await;
}

#[tokio::test]
async fn a_refresh_answer_without_token_type_is_refused_and_the_refresh_token_not_echoed() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::json(
            200,
            json!({"access_token": "at", "refresh_token": REFRESH_TOKEN_ECHO}),
        ),
    );
    let error = refresh(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &[REFRESH_TOKEN_ECHO]);
}

const REFRESH_TOKEN_ECHO: &str = "rotated-refresh-Qm42";

#[tokio::test]
async fn a_garbage_id_token_in_a_refresh_answer_is_refused() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::token("at", json!({"id_token": "not.a.jwt"})),
    );
    let error = refresh(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidIdToken, &[]);
}

#[tokio::test]
async fn introspection_times_beyond_the_clock_saturate_and_wrong_types_are_refused() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/introspect",
        Reply::json(
            200,
            json!({"active": true, "exp": u64::MAX, "iat": u64::MAX}),
        ),
    );
    let client = client(&idp).await;
    let token = SecretString::from("planted-secret".to_owned());
    let introspection = bounded(client.introspect(&token, None)).await.unwrap();
    assert!(introspection.expires_at().unwrap() > SystemTime::now());
    assert!(introspection.issued_at().is_some());

    idp.set("/introspect", Reply::json(200, json!({"active": "yes"})));
    let error = bounded(client.introspect(&token, None)).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &["planted-secret"]);
    assert!(token.expose_secret() == "planted-secret");
}
