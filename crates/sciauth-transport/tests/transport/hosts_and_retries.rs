//! Host choice and failover, retries with backoff and `Retry-After`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use sciauth_transport::{ErrorKind, Method, StatusCode, Transport};

use crate::support::{TestServer, json_ok, recording, refused_url, respond};

#[tokio::test]
async fn requests_fail_over_when_a_host_refuses_connections() {
    let (router, log) = recording(|_, _| json_ok(r#"{"host": "live"}"#));
    let live = TestServer::http(router).await;
    // Three of four hosts are down, so nearly every request starts on a dead one (the
    // chance that 20 requests all pick the live host first is 4^-20).
    let hosts = [
        refused_url().await,
        refused_url().await,
        refused_url().await,
        live.url(""),
    ];
    let transport = Transport::builder().hosts(&hosts).build().unwrap();
    assert_eq!(transport.base_urls().len(), 4);

    for _ in 0..20 {
        let answer: serde_json::Value = transport.get_json("ping").await.unwrap();
        assert_eq!(answer["host"], "live");
    }
    assert_eq!(log.len(), 20);
    assert!(log.all().iter().all(|seen| seen.path == "/ping"));
}

#[tokio::test]
async fn requests_fail_over_when_a_host_times_out() {
    let slow_hits = Arc::new(AtomicUsize::new(0));
    let slow_router = {
        let hits = slow_hits.clone();
        Router::new().fallback(move || {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }
        })
    };
    let slow = TestServer::http(slow_router).await;
    let (router, log) = recording(|_, _| respond(200, &[], "in time"));
    let live = TestServer::http(router).await;
    let transport = Transport::builder()
        .hosts([slow.url("/"), live.url("/")])
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    // Each request picks its first host at random; go on until one has met the slow host.
    let mut requests = 0;
    while slow_hits.load(Ordering::SeqCst) == 0 && requests < 40 {
        let text = transport.get_text("x").await.unwrap();
        assert_eq!(text, "in time");
        requests += 1;
    }
    assert!(slow_hits.load(Ordering::SeqCst) > 0);
    assert_eq!(log.len(), requests);
}

#[tokio::test]
async fn when_every_host_is_down_the_error_says_so() {
    let transport = Transport::builder()
        .hosts([refused_url().await, refused_url().await])
        .retries(1)
        .build()
        .unwrap();

    let error = transport.get("ping?token=secret").send().await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Connect);
    assert!(error.is_connect());
    let message = error.to_string();
    assert!(message.starts_with("GET http://127.0.0.1:"), "{message}");
    assert!(message.contains("/ping: could not connect"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (router, log) = recording(|_, index| {
        if index == 0 {
            respond(503, &[("retry-after", "1")], "busy")
        } else {
            respond(200, &[], "done")
        }
    });
    let server = TestServer::http(router).await;
    let transport = Transport::builder().build().unwrap();

    let text = transport.get_text(&server.url("/")).await.unwrap();

    assert_eq!(text, "done");
    let seen = log.all();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
}

#[tokio::test]
async fn a_retry_after_longer_than_the_timeout_is_not_waited_for() {
    let (router, log) = recording(|_, _| respond(503, &[("retry-after", "3600")], "maintenance"));
    let server = TestServer::http(router).await;
    let transport = Transport::builder().build().unwrap();

    let response = transport.get(&server.url("/")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "3600");
    assert_eq!(log.len(), 1);
}

#[tokio::test]
async fn temporary_failures_are_retried_with_backoff_then_returned() {
    let (router, log) = recording(|_, _| respond(502, &[], "bad gateway"));
    let server = TestServer::http(router).await;
    let transport = Transport::builder().retries(2).build().unwrap();

    let error = transport.get_text(&server.url("/")).await.unwrap_err();

    assert_eq!(error.status(), Some(StatusCode::BAD_GATEWAY));
    assert_eq!(error.body(), Some("bad gateway"));
    let seen = log.all();
    assert_eq!(seen.len(), 3);
    // Backoff starts at 200 ms with half of it jitter, and doubles.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(100));
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(200));
}

#[tokio::test]
async fn post_is_retried_only_when_allowed() {
    let (router, log) = recording(|_, index| {
        if index % 2 == 0 {
            respond(503, &[("retry-after", "0")], "")
        } else {
            respond(200, &[], "")
        }
    });
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .build()
        .unwrap();

    let response = transport.post("submit").body("x").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(log.len(), 1);

    // The server alternates 503 and 200; this GET takes a 200, so the next POST meets a 503.
    transport.get("skip").send().await.unwrap();
    assert_eq!(log.len(), 2);

    let response = transport
        .post("submit")
        .body("x")
        .retry(true)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(log.len(), 4);

    let eager = Transport::builder()
        .base_url(&server.url("/"))
        .retry_non_idempotent(true)
        .build()
        .unwrap();
    let response = eager.request(Method::POST, "submit").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(log.len(), 6);

    // And a GET can be told not to retry.
    let response = transport.get("x").retry(false).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(log.len(), 7);
}
