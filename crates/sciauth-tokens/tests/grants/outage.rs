//! A provider that goes down or answers 500: the JWKS and discovery are asked once per
//! backoff period, not once per validation, and the last good keys stay in use. The keys and
//! tokens are the real identity provider's; a small server on 127.0.0.1 stands in for its
//! JWKS and discovery endpoints, since no real provider can be made to fail on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use sciauth_tokens::secrecy::ExposeSecret as _;
use sciauth_tokens::{Issuer, LazyIssuer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::idp::Idp;
use crate::{API, cc_basic, issuer, transport};

const SERVE: u8 = 0;
const FAIL_500: u8 = 1;
const HANG_UP: u8 = 2;

/// Serves `body` (JSON) at every path while in mode [`SERVE`], answers 500 in [`FAIL_500`],
/// and closes the connection without a word in [`HANG_UP`]. Counts the connections.
struct Flaky {
    base: String,
    mode: Arc<AtomicU8>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Flaky {
    async fn start(body: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(SERVE));
        let requests = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(body);
        let task = {
            let (mode, requests, base) = (mode.clone(), requests.clone(), base.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        return;
                    };
                    requests.fetch_add(1, Ordering::SeqCst);
                    let mode = mode.load(Ordering::SeqCst);
                    let body = body(&base);
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 4096];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let response = match mode {
                            SERVE => format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            ),
                            FAIL_500 => "HTTP/1.1 500 Internal Server Error\r\n\
                                         content-length: 0\r\nconnection: close\r\n\r\n"
                                .to_owned(),
                            _ => String::new(),
                        };
                        let _ = stream.write_all(response.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                }
            })
        };
        Self {
            base,
            mode,
            requests,
            task,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Longer than the first backoff (1 s) and the second (2 s) after a failure.
async fn wait_out_backoff(failures: u32) {
    tokio::time::sleep(Duration::from_millis(1100 * (1 << (failures - 1)))).await;
}

#[tokio::test]
async fn a_failing_jwks_is_asked_once_per_backoff_and_the_last_keys_stay_in_use() {
    let idp = Idp::start().await;
    let real = issuer(&idp).await;
    let jwks_uri = real.metadata().jwks_uri.clone().unwrap();
    let jwks = reqwest::get(jwks_uri).await.unwrap().text().await.unwrap();
    let flaky = Flaky::start(move |_| jwks.clone()).await;
    let mut metadata = real.metadata().clone();
    metadata.jwks_uri = Some(format!("{}/jwks", flaky.base).parse().unwrap());
    // Keys are never fresh: every validation wants to fetch them again.
    let validator = Issuer::builder(idp.issuer())
        .transport(transport())
        .metadata(metadata)
        .jwks_max_age(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let token = cc_basic(&real)
        .client_credentials()
        .scopes(["api:read"])
        .audience(API)
        .send()
        .await
        .unwrap();
    let jwt = token.access_token().expose_secret();

    // Down before any key was fetched: one fetch, then quick transient failures.
    flaky.set(FAIL_500);
    for _ in 0..20 {
        let error = validator.validate_access_token(jwt, API).await.unwrap_err();
        assert!(error.is_transient(), "{error}");
    }
    assert_eq!(flaky.requests(), 1, "every validation fetched the JWKS");

    // Back up: after the backoff, the keys are fetched and used.
    flaky.set(SERVE);
    wait_out_backoff(1).await;
    validator.validate_access_token(jwt, API).await.unwrap();
    assert_eq!(flaky.requests(), 2);

    // Down again, with keys in hand: they keep validating; one failed fetch per backoff.
    for (mode, failures) in [(FAIL_500, 1), (HANG_UP, 2)] {
        flaky.set(mode);
        let before = flaky.requests();
        for _ in 0..20 {
            validator.validate_access_token(jwt, API).await.unwrap();
        }
        assert_eq!(flaky.requests(), before + 1, "mode {mode}");
        wait_out_backoff(failures).await;
    }
}

#[tokio::test]
async fn a_failing_discovery_is_asked_once_per_backoff() {
    let flaky = Flaky::start(|base| {
        serde_json::json!({
            "issuer": base,
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwks"),
        })
        .to_string()
    })
    .await;
    let base = flaky.base.clone();
    let issuer = LazyIssuer::new(move || Ok(Issuer::builder(base.clone()).transport(transport())));

    // One discovery request (a 500 does not move on to the RFC 8414 location), then quick
    // failures.
    flaky.set(FAIL_500);
    for _ in 0..20 {
        issuer.get().await.unwrap_err();
    }
    assert_eq!(flaky.requests(), 1, "every call discovered again");

    flaky.set(HANG_UP);
    wait_out_backoff(1).await;
    for _ in 0..20 {
        let error = issuer.get().await.unwrap_err();
        assert!(error.is_transient(), "{error}");
    }
    assert_eq!(flaky.requests(), 2);

    flaky.set(SERVE);
    wait_out_backoff(2).await;
    for _ in 0..20 {
        assert_eq!(issuer.get().await.unwrap().issuer(), flaky.base);
    }
    assert_eq!(flaky.requests(), 3);
}
