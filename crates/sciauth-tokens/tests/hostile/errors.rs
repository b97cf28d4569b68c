//! Error bodies: secrets echoed back, escapes, codes that are not codes, bodies that are not
//! errors.

use sciauth_tokens::{ClientAuth, ErrorKind, OAuthErrorCode};
use serde_json::json;

use crate::hostile::{HostileIdp, Reply};
use crate::{
    CLIENT_SECRET, REFRESH_TOKEN, assert_refused, bounded, client_credentials, client_with, refresh,
};

#[tokio::test]
async fn a_client_secret_echoed_in_error_description_is_masked() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::json(
            401,
            json!({"error": "invalid_client",
                   "error_description": format!("client_secret={CLIENT_SECRET} is wrong"),
                   "error_uri": format!("https://idp.example.org/help?secret={CLIENT_SECRET}")}),
        ),
    );
    let error = client_credentials(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::OAuth(OAuthErrorCode::InvalidClient), &[]);
    let description = error.oauth_error().unwrap().description().unwrap();
    assert_eq!(description, "client_secret=[redacted] is wrong");
    assert!(
        !error
            .oauth_error()
            .unwrap()
            .uri()
            .unwrap()
            .contains(CLIENT_SECRET)
    );
}

#[tokio::test]
async fn a_basic_authorization_echoed_in_error_description_is_masked() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::json(401, json!({"error": "invalid_client"})),
    );
    let client = client_with(&idp, ClientAuth::secret_basic(CLIENT_SECRET)).await;
    // First learn what the client sends, then have the provider echo exactly that.
    let _ = bounded(client.client_credentials().send()).await;
    let sent = idp.requests().last().unwrap().text.clone();
    let authorization = sent
        .lines()
        .find_map(|l| l.strip_prefix("authorization: "))
        .expect("a Basic header")
        .trim()
        .to_owned();
    let credentials = authorization.strip_prefix("Basic ").unwrap().to_owned();
    idp.set(
        "/token",
        Reply::json(
            401,
            json!({"error": "invalid_client",
                   "error_description": format!("bad header {authorization} ({credentials})")}),
        ),
    );
    let error = bounded(client.client_credentials().send())
        .await
        .unwrap_err();
    assert_refused(
        &error,
        ErrorKind::OAuth(OAuthErrorCode::InvalidClient),
        &[&credentials],
    );
}

#[tokio::test]
async fn a_refresh_token_echoed_in_error_description_is_masked() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::json(
            400,
            json!({"error": "invalid_grant",
                   "error_description": format!("refresh_token {REFRESH_TOKEN} was revoked; \
                        sent refresh_token={REFRESH_TOKEN}&client_secret={CLIENT_SECRET}")}),
        ),
    );
    let error = refresh(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::OAuth(OAuthErrorCode::InvalidGrant), &[]);
    assert!(error.to_string().contains("[redacted]"), "{error}");
}

#[tokio::test]
async fn escapes_and_newlines_in_error_description_are_escaped() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::json(
            400,
            json!({"error": "invalid_request",
                   "error_description": "bad\r\n2026-01-01 INFO forged log line\u{1b}[2J\u{1b}]52;c;eA==\u{7}\u{202e}"}),
        ),
    );
    let error = client_credentials(&idp).await.unwrap_err();
    assert_refused(
        &error,
        ErrorKind::OAuth(OAuthErrorCode::InvalidRequest),
        &[],
    );
    assert!(error.to_string().contains("\\x1b[2J"), "{error}");
}

#[tokio::test]
async fn an_error_code_carrying_escapes_is_kept_as_other_and_escaped() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::json(
            400,
            json!({"error": format!("evil\u{1b}[31m{CLIENT_SECRET}")}),
        ),
    );
    let error = client_credentials(&idp).await.unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::OAuth(OAuthErrorCode::Other(_))),
        "{error:?}"
    );
    assert_refused(&error, error.kind().clone(), &[]);
}

#[tokio::test]
async fn a_description_of_a_mebibyte_is_cut_to_a_screenful() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::json(
            400,
            json!({"error": "invalid_request", "error_description": "x".repeat(1000 * 1000)}),
        ),
    );
    let error = client_credentials(&idp).await.unwrap_err();
    assert_refused(
        &error,
        ErrorKind::OAuth(OAuthErrorCode::InvalidRequest),
        &[],
    );
    assert!(
        error.to_string().len() < 2000,
        "{}",
        error.to_string().len()
    );
}

#[tokio::test]
async fn an_error_field_of_the_wrong_type_is_not_an_oauth_error() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::json(400, json!({"error": {"nested": CLIENT_SECRET}})),
    );
    let error = client_credentials(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::HttpStatus, &[]);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
}

#[tokio::test]
async fn a_500_html_page_is_an_http_status_error() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::Http {
            status: 500,
            headers: vec![("content-type".into(), "text/html".into())],
            body: format!("<pre>\u{1b}[2J{CLIENT_SECRET}</pre>").into_bytes(),
        },
    );
    let error = client_credentials(&idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::HttpStatus, &[]);
    assert!(error.is_transient());
}
