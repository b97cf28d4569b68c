//! Real HTTP servers on 127.0.0.1, port 0, that record what they got, and credentials that
//! count what the middleware asks of them.
//!
//! Every server runs as a task that is aborted when its [`TestServer`] is dropped, so servers
//! stop when the test ends.

// Each test module uses some of these helpers, none uses all; `pub` reads better than
// `pub(crate)` in a module that exists only for the tests.
#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use sciauth_middleware::credentials::{
    AuthHeader, Class, Credential, Diagnose, Diagnosis, Renewal, Result,
};
use tokio::net::TcpListener;

/// A server running until dropped.
pub struct TestServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    pub log: Log,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A server that records every request and answers with `respond(request, index)`,
    /// where `index` counts requests from 0.
    pub async fn start<F>(respond: F) -> Self
    where
        F: Fn(&Seen, usize) -> Response + Send + Sync + 'static,
    {
        let log = Log::default();
        let respond = Arc::new(respond);
        let router = {
            let log = log.clone();
            Router::new().fallback(move |request: Request| {
                let log = log.clone();
                let respond = respond.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                    let seen = Seen {
                        path: parts.uri.path().to_owned(),
                        headers: parts.headers,
                        body,
                    };
                    let index = {
                        let mut log = log.0.lock().unwrap();
                        log.push(seen.clone());
                        log.len() - 1
                    };
                    respond(&seen, index)
                }
            })
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, task, log }
    }

    /// A server that answers each request with the next of `statuses`, then 200.
    pub async fn answering(statuses: &[u16]) -> Self {
        let statuses = statuses.to_vec();
        Self::start(move |_, index| status(statuses.get(index).copied().unwrap_or(200))).await
    }

    /// `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// This server's origin, `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// The `Authorization` header as text, if present.
    pub fn authorization(&self) -> Option<&str> {
        self.headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap())
    }
}

/// The requests a server saw, in order.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The `Authorization` headers of all requests, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        (self.all().iter())
            .map(|seen| seen.authorization().map(str::to_owned))
            .collect()
    }
}

/// An empty response with this status.
pub fn status(status: u16) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

/// A 302 to `location`.
pub fn redirect(location: &str) -> Response {
    let mut response = status(302);
    (response.headers_mut()).insert(
        http::header::LOCATION,
        HeaderValue::from_str(location).unwrap(),
    );
    response
}

/// A bearer token that renews on each rejection: `Bearer token-0`, `Bearer token-1`, ...
/// Never ready, so the middleware awaits `header`.
#[derive(Debug, Default)]
pub struct RenewingToken {
    generation: AtomicUsize,
    pub rejections: AtomicUsize,
}

impl RenewingToken {
    pub fn rejections(&self) -> usize {
        self.rejections.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Credential for RenewingToken {
    async fn header(&self) -> Result<Option<AuthHeader>> {
        let value = format!("Bearer token-{}", self.generation.load(Ordering::SeqCst));
        Ok(Some(AuthHeader::authorization(
            HeaderValue::try_from(value).unwrap(),
        )))
    }

    async fn rejected(&self, _sent: Option<&AuthHeader>) -> Result<Renewal> {
        self.rejections.fetch_add(1, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(Renewal::Renewed)
    }
}

/// The secret a [`FailingToken`] sends; no error may repeat it.
pub const SECRET: &str = "s3cr3t-t0k3n-value";

/// A token that is sent, but whose header (after `fail_header`) and renewal fail as a
/// refresh refused by the identity provider would.
#[derive(Debug)]
pub struct FailingToken {
    pub fail_header: bool,
}

#[async_trait]
impl Credential for FailingToken {
    async fn header(&self) -> Result<Option<AuthHeader>> {
        if self.fail_header {
            return Err(refused());
        }
        let value = HeaderValue::try_from(format!("Bearer {SECRET}")).unwrap();
        Ok(Some(AuthHeader::authorization(value)))
    }

    async fn rejected(&self, _sent: Option<&AuthHeader>) -> Result<Renewal> {
        Err(refused())
    }
}

fn refused() -> sciauth_middleware::credentials::Error {
    sciauth_middleware::credentials::Error::renewal_failed(
        "the token could not be refreshed",
        RefreshRefused,
    )
}

/// What a token endpoint's `invalid_grant` is, for the test.
#[derive(Debug)]
struct RefreshRefused;

impl fmt::Display for RefreshRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the identity provider refused the refresh token (invalid_grant)")
    }
}

impl std::error::Error for RefreshRefused {}

impl Diagnose for RefreshRefused {
    fn diagnosis(&self) -> Diagnosis {
        Diagnosis::new(Class::NeedsLogin)
    }
}

/// A 200 with this JSON body.
pub fn json(body: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    (response.headers_mut()).insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
