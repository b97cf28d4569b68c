//! `AuthMiddleware` in a `reqwest_middleware` client.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use sciauth_middleware::credentials::{BearerToken, Credential};
use sciauth_middleware::{Auth, ErrorKind};

use crate::support::{FailingToken, RenewingToken, SECRET, TestServer, redirect};

fn authed_client(credential: Arc<dyn Credential>, origin: &str) -> ClientWithMiddleware {
    let auth = Auth::builder(credential).origin(origin).build().unwrap();
    ClientBuilder::new(reqwest::Client::new())
        .with(auth.middleware())
        .build()
}

fn bearer(token: &str) -> Arc<dyn Credential> {
    Arc::new(BearerToken::new(token).unwrap())
}

#[tokio::test]
async fn the_header_goes_to_the_origin_only() {
    let server = TestServer::answering(&[]).await;
    let other = TestServer::answering(&[]).await;
    let client = authed_client(bearer("a-token"), &server.origin());

    let response = client.get(server.url("/api")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    client.get(other.url("/api")).send().await.unwrap();

    assert_eq!(
        server.log.authorizations(),
        [Some("Bearer a-token".to_owned())]
    );
    // The second listener (another port: another origin) got the request, without it.
    assert_eq!(other.log.authorizations(), [None]);
}

#[tokio::test]
async fn the_callers_own_authorization_is_kept() {
    let server = TestServer::answering(&[]).await;
    let credential = Arc::new(RenewingToken::default());
    let client = authed_client(credential.clone(), &server.origin());

    (client.get(server.url("/")))
        .header("authorization", "Basic bXk6b3du")
        .send()
        .await
        .unwrap();
    assert_eq!(
        server.log.authorizations(),
        [Some("Basic bXk6b3du".to_owned())]
    );
}

#[tokio::test]
async fn a_rejected_credential_is_renewed_and_the_request_sent_once_more() {
    let server = TestServer::answering(&[401]).await;
    let credential = Arc::new(RenewingToken::default());
    let client = authed_client(credential.clone(), &server.origin());

    let response = (client.post(server.url("/jobs")))
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server.log.authorizations(),
        [
            Some("Bearer token-0".to_owned()),
            Some("Bearer token-1".to_owned())
        ]
    );
    // The same body, twice.
    assert!(server.log.all().iter().all(|seen| seen.body == "the body"));
    assert_eq!(credential.rejections(), 1);
}

#[tokio::test]
async fn a_second_rejection_is_the_answer_without_a_loop() {
    let server = TestServer::answering(&[401, 401, 401]).await;
    let credential = Arc::new(RenewingToken::default());
    let client = authed_client(credential.clone(), &server.origin());

    let response = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.log.len(), 2);
    assert_eq!(credential.rejections(), 1);
}

#[tokio::test]
async fn the_rejected_statuses_are_the_configured_ones() {
    let server = TestServer::answering(&[403, 401]).await;
    let credential = Arc::new(RenewingToken::default());
    let auth = Auth::builder(credential.clone())
        .origin(server.origin())
        .rejected_statuses([StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN])
        .build()
        .unwrap();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth.middleware())
        .build();
    // 403, renewed, then 401: returned.
    let response = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.log.len(), 2);

    // By default a 403 is not a rejection of the credential.
    let server = TestServer::answering(&[403]).await;
    let credential = Arc::new(RenewingToken::default());
    let client = authed_client(credential.clone(), &server.origin());
    let response = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!((server.log.len(), credential.rejections()), (1, 0));
}

#[tokio::test]
async fn a_streaming_body_is_not_sent_again() {
    let server = TestServer::answering(&[401]).await;
    let credential = Arc::new(RenewingToken::default());
    let client = authed_client(credential.clone(), &server.origin());

    let body = reqwest::Body::wrap(http_body_util::Full::new(Bytes::from("streamed")));
    let response = client
        .put(server.url("/file"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.log.len(), 1);
    // The credential was told, so that the next request carries the renewed header.
    assert_eq!(credential.rejections(), 1);
    client.get(server.url("/")).send().await.unwrap();
    assert_eq!(
        server.log.authorizations()[1].as_deref(),
        Some("Bearer token-1")
    );
}

#[tokio::test]
async fn a_redirect_to_another_origin_carries_no_authorization() {
    let other = TestServer::answering(&[]).await;
    let target = other.url("/landing");
    let server = TestServer::start(move |_, _| redirect(&target)).await;
    // reqwest's default redirect policy, which follows the redirect.
    let client = authed_client(bearer("a-token"), &server.origin());

    let response = client.get(server.url("/start")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server.log.authorizations(),
        [Some("Bearer a-token".to_owned())]
    );
    assert_eq!(other.log.authorizations(), [None]);
}

#[tokio::test]
async fn a_failing_credential_is_a_typed_error_without_the_secret() {
    // The header fails.
    let server = TestServer::answering(&[]).await;
    let client = authed_client(
        Arc::new(FailingToken { fail_header: true }),
        &server.origin(),
    );
    let error = client.get(server.url("/")).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(error) = error else {
        panic!("not a middleware error: {error:?}");
    };
    let error = error.downcast_ref::<sciauth_middleware::Error>().unwrap();
    assert_eq!(error.kind(), ErrorKind::Credential);
    assert!(error.needs_login(), "{error}");
    assert_eq!(server.log.len(), 0);

    // The header is sent, rejected, and the renewal fails.
    let server = TestServer::answering(&[401]).await;
    let client = authed_client(
        Arc::new(FailingToken { fail_header: false }),
        &server.origin(),
    );
    let error = client.get(server.url("/")).send().await.unwrap_err();
    assert_eq!(server.log.len(), 1);
    for text in [
        format!("{error}"),
        format!("{error:?}"),
        format!("{error:#}"),
    ] {
        assert!(!text.contains(SECRET), "{text}");
    }
    let reqwest_middleware::Error::Middleware(error) = error else {
        panic!("not a middleware error: {error:?}");
    };
    let error = error.downcast::<sciauth_middleware::Error>().unwrap();
    assert!(error.is_credential() && error.needs_login(), "{error}");
    assert!(error.to_string().contains("refresh"), "{error}");
}
