//! The credential's header arrives, is renewed once when rejected, and stays home.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sciauth_transport::credentials::{BearerToken, Credential};
use sciauth_transport::{ErrorKind, StatusCode, Transport};

use crate::support::{HeaderToken, RenewingToken, TestServer, json_ok, recording, respond};

#[tokio::test]
async fn the_credentials_header_arrives_and_is_fetched_only_once() {
    let (router, log) = recording(|_, _| json_ok("{}"));
    let server = TestServer::http(router).await;
    let token = RenewingToken::new("t", false);
    let transport = Transport::builder()
        .base_url(&server.url("/api"))
        .shared_credential(token.clone())
        .build()
        .unwrap();

    for _ in 0..3 {
        let _: serde_json::Value = transport.get_json("me").await.unwrap();
    }

    let seen = log.all();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.path, "/api/me");
        assert_eq!(request.header("authorization"), Some("Bearer t-1"));
        assert_eq!(request.header("accept"), Some("application/json"));
        let agent = request.header("user-agent").unwrap();
        assert_eq!(agent, concat!("sciauth/", env!("CARGO_PKG_VERSION")));
    }
    // The first request computed the header; the others found it ready.
    assert_eq!(token.header_calls.load(Ordering::SeqCst), 1);
    assert_eq!(token.ready_calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_header_name_comes_from_the_credential() {
    let (router, log) = recording(|_, _| respond(200, &[], ""));
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .credential(HeaderToken::new("x-rucio-auth-token", "rucio-token"))
        .build()
        .unwrap();

    transport
        .get(&server.url("/accounts/whoami"))
        .send()
        .await
        .unwrap();

    let seen = log.last();
    assert_eq!(seen.header("x-rucio-auth-token"), Some("rucio-token"));
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn a_request_can_go_without_or_with_another_credential() {
    let (router, log) = recording(|_, _| respond(200, &[], ""));
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .credential(BearerToken::new("transport-token").unwrap())
        .build()
        .unwrap();

    transport
        .post("token")
        .no_credential()
        .send()
        .await
        .unwrap();
    assert_eq!(log.last().header("authorization"), None);

    let other: Arc<dyn Credential> = Arc::new(BearerToken::new("request-token").unwrap());
    transport.get("x").credential(other).send().await.unwrap();
    assert_eq!(
        log.last().header("authorization"),
        Some("Bearer request-token")
    );

    // A header the caller sets explicitly is not overwritten by the credential's.
    transport
        .post("token")
        .sensitive_header("authorization", "Basic Y2xpZW50OnNlY3JldA==")
        .send()
        .await
        .unwrap();
    assert_eq!(
        log.last().header("authorization"),
        Some("Basic Y2xpZW50OnNlY3JldA==")
    );

    let anonymous = Transport::builder().build().unwrap();
    anonymous.get(&server.url("/x")).send().await.unwrap();
    assert_eq!(log.last().header("authorization"), None);
}

#[tokio::test]
async fn a_rejected_credential_is_renewed_and_the_request_resent_once() {
    let (router, log) = recording(|seen, _| {
        if seen.header("authorization") == Some("Bearer t-2") {
            json_ok(r#"{"ok": true}"#)
        } else {
            respond(401, &[], "")
        }
    });
    let server = TestServer::http(router).await;
    let token = RenewingToken::new("t", true);
    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .shared_credential(token.clone())
        .build()
        .unwrap();

    // A POST: its body goes out again, unchanged.
    let answer: serde_json::Value = transport
        .post_json("jobs", &serde_json::json!({"executable": "date"}))
        .await
        .unwrap();

    assert_eq!(answer["ok"], true);
    let seen = log.all();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("authorization"), Some("Bearer t-1"));
    assert_eq!(seen[1].header("authorization"), Some("Bearer t-2"));
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(&seen[1].body[..], br#"{"executable":"date"}"#);
    assert_eq!(token.rejections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_second_rejection_is_returned_not_retried() {
    let (router, log) = recording(|_, _| {
        respond(
            401,
            &[("content-type", "application/json")],
            r#"{"error": "invalid_token", "error_description": "token revoked"}"#,
        )
    });
    let server = TestServer::http(router).await;
    let token = RenewingToken::new("t", true);
    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .shared_credential(token.clone())
        .build()
        .unwrap();

    let response = transport.get("x").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(log.len(), 2);

    let error = transport
        .get_json::<serde_json::Value>("x")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Status);
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(error.server_message(), Some("invalid_token: token revoked"));
    assert_eq!(log.len(), 4);
    assert_eq!(token.rejections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_credential_that_cannot_renew_is_not_resent() {
    let (router, log) = recording(|_, _| respond(401, &[], ""));
    let server = TestServer::http(router).await;
    let token = RenewingToken::new("t", false);
    let transport = Transport::builder()
        .shared_credential(token.clone())
        .build()
        .unwrap();

    let response = transport.get(&server.url("/")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(log.len(), 1);
    assert_eq!(token.rejections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unicore_rejects_with_403_when_configured() {
    let (router, log) = recording(|seen, _| {
        if seen.header("authorization") == Some("Bearer t-2") {
            respond(200, &[], "")
        } else {
            respond(403, &[], "")
        }
    });
    let server = TestServer::http(router).await;

    let default = Transport::builder()
        .shared_credential(RenewingToken::new("t", true))
        .build()
        .unwrap();
    let response = default.get(&server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(log.len(), 1);

    let unicore = Transport::builder()
        .shared_credential(RenewingToken::new("t", true))
        .rejected_statuses(&[StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN])
        .build()
        .unwrap();
    let response = unicore.get(&server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(log.len(), 3);
}

#[tokio::test]
async fn a_redirect_to_another_origin_does_not_carry_the_credential() {
    let (elsewhere_router, elsewhere_log) = recording(|_, _| respond(200, &[], "elsewhere"));
    let elsewhere = TestServer::http(elsewhere_router).await;
    let target = elsewhere.url("/landing");
    let (home_router, home_log) = recording(move |seen, _| match seen.path.as_str() {
        "/same" => respond(302, &[("location", "/final")], ""),
        "/away" => respond(307, &[("location", &target)], ""),
        _ => respond(200, &[], "home"),
    });
    let home = TestServer::http(home_router).await;
    let transport = Transport::builder()
        .base_url(&home.url("/"))
        .credential(HeaderToken::new("x-rucio-auth-token", "secret-token"))
        .build()
        .unwrap();

    let response = transport.get("same").send().await.unwrap();
    assert_eq!(response.text().unwrap(), "home");
    assert_eq!(home_log.last().path, "/final");
    assert_eq!(
        home_log.last().header("x-rucio-auth-token"),
        Some("secret-token")
    );

    let response = transport.get("away").send().await.unwrap();
    assert_eq!(response.text().unwrap(), "elsewhere");
    assert_eq!(response.url().as_str(), elsewhere.url("/landing"));
    let landed = elsewhere_log.last();
    assert_eq!(landed.method, "GET");
    assert_eq!(landed.header("x-rucio-auth-token"), None);
}
