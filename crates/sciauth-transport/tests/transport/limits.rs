//! Timeouts and the response size limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use sciauth_transport::{ErrorKind, Transport};

use crate::support::{EndlessBody, SilentBody, TestServer, eventually, recording, respond};

#[tokio::test]
async fn a_slow_server_gives_a_timeout_error_in_time() {
    let router = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        "too late"
    });
    let server = TestServer::http(router).await;
    let timeout = Duration::from_millis(300);
    let transport = Transport::builder().timeout(timeout).build().unwrap();

    let started = Instant::now();
    let error = transport
        .get(&server.url("/slow"))
        .send()
        .await
        .unwrap_err();

    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < timeout + Duration::from_secs(1));
    assert!(
        error
            .to_string()
            .contains("/slow: no complete response within"),
        "{error}"
    );
}

#[tokio::test]
async fn a_request_can_have_its_own_timeout() {
    let router = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        "too late"
    });
    let server = TestServer::http(router).await;
    let transport = Transport::builder().build().unwrap();

    let started = Instant::now();
    let error = transport
        .get(&server.url("/"))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(200) + Duration::from_secs(1));
}

#[tokio::test]
async fn an_announced_body_over_the_limit_is_refused_before_reading_it() {
    // The body never sends a byte: only refusing on Content-Length avoids the timeout.
    let router = Router::new().fallback(|| async {
        let mut response = respond(200, &[], Body::new(SilentBody));
        response
            .headers_mut()
            .insert("content-length", (10u64 << 20).into());
        response
    });
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .max_response_size(1 << 20)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let error = transport.get(&server.url("/big")).send().await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::BodyTooLarge, "{error:?}");
    assert!(error.to_string().contains("10485760 bytes"), "{error}");
}

#[tokio::test]
async fn an_endless_body_is_cut_off_at_the_limit() {
    let sent = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let router = {
        let (sent, dropped) = (sent.clone(), dropped.clone());
        Router::new().fallback(move || {
            let body = EndlessBody::new(sent.clone(), dropped.clone());
            async move { respond(200, &[], Body::new(body)) }
        })
    };
    let server = TestServer::http(router).await;
    let limit = 1 << 20;
    let transport = Transport::builder()
        .max_response_size(limit)
        .build()
        .unwrap();

    let error = transport
        .get(&server.url("/endless"))
        .send()
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::BodyTooLarge, "{error:?}");
    // The server's body never ends by itself: it is dropped only because the client hung up.
    assert!(eventually(Duration::from_secs(10), || dropped.load(Ordering::Relaxed)).await);
    // What the server got out before noticing is the limit plus socket buffers, not more.
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent < 64 << 20, "the server sent {sent} bytes");
}

#[tokio::test]
async fn a_body_at_the_limit_is_accepted() {
    let (router, _) = recording(|_, _| respond(200, &[], vec![b'x'; 4096]));
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .max_response_size(4096)
        .build()
        .unwrap();

    let response = transport.get(&server.url("/")).send().await.unwrap();

    assert_eq!(response.bytes().len(), 4096);
}
