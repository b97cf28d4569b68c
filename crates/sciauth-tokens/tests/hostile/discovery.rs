//! Discovery documents: issuer mix-up, endpoints that would leak, wrong types, escapes,
//! redirects, sizes.

use sciauth_tokens::ErrorKind;
use serde_json::json;

use crate::hostile::{HostileIdp, Recorder, Reply};
use crate::{assert_refused, issuer};

const DISCOVERY: &str = "/.well-known/openid-configuration";

/// The provider's discovery document with `field` replaced by `value`.
async fn discovery_with(field: &str, value: serde_json::Value) -> HostileIdp {
    let idp = HostileIdp::start().await;
    let mut document = idp.discovery();
    document[field] = value;
    idp.set(DISCOVERY, Reply::json(200, document));
    idp
}

async fn refused(idp: &HostileIdp) -> sciauth_tokens::Error {
    let error = issuer(idp).await.unwrap_err();
    assert_refused(&error, ErrorKind::Discovery, &[]);
    error
}

#[tokio::test]
async fn an_issuer_mix_up_is_refused() {
    let idp = discovery_with("issuer", json!("https://other-idp.example.org")).await;
    let error = refused(&idp).await;
    assert!(
        error.to_string().contains("other-idp.example.org"),
        "{error}"
    );
}

#[tokio::test]
async fn an_issuer_carrying_terminal_escapes_is_refused_and_escaped() {
    let idp = HostileIdp::start().await;
    let issuer = format!("{}\u{1b}[2J\u{1b}]0;owned\u{7}", idp.issuer());
    let mut document = idp.discovery();
    document["issuer"] = json!(issuer);
    idp.set(DISCOVERY, Reply::json(200, document));
    refused(&idp).await;
}

#[tokio::test]
async fn a_token_endpoint_of_another_scheme_is_refused() {
    for scheme in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://idp.example.org/token",
    ] {
        let idp = discovery_with("token_endpoint", json!(scheme)).await;
        let error = refused(&idp).await;
        assert!(error.to_string().contains("token_endpoint"), "{error}");
    }
}

#[tokio::test]
async fn a_missing_token_endpoint_is_refused() {
    let idp = HostileIdp::start().await;
    let mut document = idp.discovery();
    document.as_object_mut().unwrap().remove("token_endpoint");
    idp.set(DISCOVERY, Reply::json(200, document));
    let error = refused(&idp).await;
    assert!(error.to_string().contains("token_endpoint"), "{error}");
}

#[tokio::test]
async fn an_endpoint_of_the_wrong_type_is_refused_naming_the_field() {
    let idp = discovery_with("jwks_uri", json!({"url": "planted-value"})).await;
    let error = refused(&idp).await;
    assert!(error.to_string().contains("jwks_uri"), "{error}");
    assert!(!error.to_string().contains("planted-value"), "{error}");
}

#[tokio::test]
async fn a_document_that_is_not_an_object_is_refused() {
    let idp = HostileIdp::start().await;
    idp.set(DISCOVERY, Reply::json_text(200, "\"just a string\""));
    refused(&idp).await;
}

#[tokio::test]
async fn a_redirected_discovery_is_not_followed() {
    let idp = HostileIdp::start().await;
    let recorder = Recorder::start().await;
    idp.set(
        DISCOVERY,
        Reply::redirect(302, &format!("{}/evil-discovery", recorder.url())),
    );
    idp.set(
        "/.well-known/oauth-authorization-server",
        Reply::redirect(302, &format!("{}/evil-discovery", recorder.url())),
    );
    let error = refused(&idp).await;
    assert!(error.to_string().contains("not followed"), "{error}");
    assert!(recorder.requests().is_empty(), "{:?}", recorder.requests());
}

#[tokio::test]
async fn a_discovery_document_of_five_megabytes_is_refused() {
    let idp = discovery_with("padding", json!("p".repeat(5 * 1000 * 1000))).await;
    let error = refused(&idp).await;
    assert!(error.to_string().contains("1048576 bytes"), "{error}");
}
