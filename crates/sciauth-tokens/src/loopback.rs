//! The loopback redirect server of the native-app code flow (RFC 8252 7.3): listens on
//! 127.0.0.1 and a free port (or a port registered with the provider), receives the
//! browser's redirect, answers with a page.
//!
//! Any local process can connect to it, so it holds at most [`MAX_CONNECTIONS`] connections
//! at a time (more wait to be accepted), gives each [`HEADER_READ_TIMEOUT`] to send its
//! request and [`CONNECTION_TIMEOUT`] in all; and the login ignores redirects that do not
//! carry its `state` (see `grant/code.rs`).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

/// One redirect that reached the callback path: its query (holding the code, so kept
/// secret) and where to send the page the browser shows.
pub(crate) struct Callback {
    pub(crate) query: SecretString,
    pub(crate) respond: oneshot::Sender<Page>,
}

/// The page the browser shows after the redirect.
pub(crate) enum Page {
    Success,
    Failure(String),
    /// The redirect is not this login's (wrong `state`): it was ignored, the login goes on.
    Ignored,
}

/// Connections served at once; a browser needs one or two.
pub(crate) const MAX_CONNECTIONS: usize = 8;
/// The time a connection has to send its request head; a browser on the same machine needs
/// milliseconds.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The time a connection may last in all, including the wait for the page (which comes
/// after the code was redeemed).
pub(crate) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

/// How many connections the server takes at once, and for how long.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            connection_timeout: CONNECTION_TIMEOUT,
        }
    }
}

/// A running loopback server; stops accepting when dropped.
pub(crate) struct LoopbackServer {
    address: SocketAddr,
    path: String,
    callbacks: mpsc::Receiver<Callback>,
    accept_loop: JoinHandle<()>,
}

impl LoopbackServer {
    /// Listens on 127.0.0.1 and a port the OS picks; callbacks arrive at `path`.
    ///
    /// 127.0.0.1 rather than `localhost` (RFC 8252 8.3: `localhost` may resolve elsewhere or
    /// to IPv6 first) and never 0.0.0.0 (fair-research-login listened on every interface).
    pub(crate) async fn start(path: &str) -> std::io::Result<Self> {
        Self::start_on(0, path).await
    }

    /// Listens on 127.0.0.1 and `port` (one registered with the provider; 0 lets the OS
    /// pick); callbacks arrive at `path`.
    pub(crate) async fn start_on(port: u16, path: &str) -> std::io::Result<Self> {
        Self::start_with(port, path, Limits::default()).await
    }

    /// [`start_on`](Self::start_on) with other limits (tests use short ones).
    pub(crate) async fn start_with(port: u16, path: &str, limits: Limits) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let address = listener.local_addr()?;
        let (sender, callbacks) = mpsc::channel(4);
        let accept_loop = tokio::spawn(accept(listener, path.to_owned(), sender, limits));
        tracing::debug!(%address, "loopback redirect server listening");
        Ok(Self {
            address,
            path: path.to_owned(),
            callbacks,
            accept_loop,
        })
    }

    /// The redirect URI to register with the authorization request.
    pub(crate) fn redirect_uri(&self) -> String {
        format!("http://{}{}", self.address, self.path)
    }

    /// The next redirect, or `None` if the server stopped.
    pub(crate) async fn next(&mut self) -> Option<Callback> {
        self.callbacks.recv().await
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        // Connections already accepted finish their answer on their own tasks.
        self.accept_loop.abort();
    }
}

async fn accept(
    listener: TcpListener,
    path: String,
    sender: mpsc::Sender<Callback>,
    limits: Limits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        // Connections beyond the limit wait in the listen queue, not in memory here.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::debug!(error = %e, "loopback accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let path = path.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let path = path.clone();
                let sender = sender.clone();
                async move { Ok::<_, Infallible>(handle(request, &path, &sender).await) }
            });
            let connection = http1::Builder::new()
                .keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(limits.connection_timeout, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "loopback connection failed"),
                Err(_) => tracing::debug!("loopback connection took too long; closed"),
            }
            drop(slot);
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    path: &str,
    sender: &mpsc::Sender<Callback>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not here",
            "This address only receives the login's redirect.",
        );
    }
    if request.uri().path() != path {
        // Browsers also ask for /favicon.ico and the like: answer, and keep waiting.
        return page(
            StatusCode::NOT_FOUND,
            "Not here",
            "Nothing to see at this address.",
        );
    }
    let query = request.uri().query().unwrap_or("");
    let is_redirect =
        url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "code" || k == "error");
    if !is_redirect {
        return page(
            StatusCode::BAD_REQUEST,
            "Waiting for the login",
            "This address receives the login's redirect; this request carried none.",
        );
    }
    let (respond, answer) = oneshot::channel();
    let callback = Callback {
        query: SecretString::from(query.to_owned()),
        respond,
    };
    if sender.send(callback).await.is_err() {
        return page(
            StatusCode::GONE,
            "Login already finished",
            "This login is over. You may close this window.",
        );
    }
    match answer.await {
        Ok(Page::Success) => page(
            StatusCode::OK,
            "Login complete",
            "You are logged in. You may close this window and return to your terminal.",
        ),
        Ok(Page::Failure(reason)) => page(
            StatusCode::BAD_REQUEST,
            "Login failed",
            &format!(
                "{}\n\nYou may close this window; your terminal says more.",
                reason
            ),
        ),
        Ok(Page::Ignored) => page(
            StatusCode::BAD_REQUEST,
            "Not this login",
            "This redirect does not belong to the login in progress (its state is not the one \
             that login sent), so it was ignored; the login is still waiting.\n\nIf you \
             started a login, finish it in the window it opened.",
        ),
        Err(_) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Login failed",
            "The program that started this login stopped waiting. You may close this window.",
        ),
    }
}

fn page(status: StatusCode, title: &str, message: &str) -> Response<Full<Bytes>> {
    let paragraphs: String = message
        .split("\n\n")
        .map(|p| format!("<p>{}</p>", escape(p)))
        .collect();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;\
         padding:0 1em;color:#222}}h1{{font-size:1.4em}}</style></head>\
         <body><h1>{title}</h1>{paragraphs}<p><small>sciauth</small></p></body></html>\n",
        title = escape(title),
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    // The URL of this page holds the authorization code: never send it on as a Referer.
    headers.insert(
        hyper::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }

    /// A connection that sent half a request head and then nothing.
    async fn stalled(server: &LoopbackServer) -> TcpStream {
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        stream.write_all(b"GET /callback?co").await.unwrap();
        stream
    }

    #[tokio::test]
    async fn a_connection_that_stalls_is_closed() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let server = LoopbackServer::start_with(0, "/callback", limits)
            .await
            .unwrap();
        let mut stream = stalled(&server).await;
        let mut answer = Vec::new();
        // The server hangs up on it; the bound only keeps a broken server from hanging the
        // test.
        let closed =
            tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "the stalled connection was kept open");
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_a_free_one() {
        let limits = Limits {
            max_connections: 2,
            ..Limits::default()
        };
        let server = LoopbackServer::start_with(0, "/callback", limits)
            .await
            .unwrap();
        let holders = [stalled(&server).await, stalled(&server).await];
        let mut third = TcpStream::connect(server.address).await.unwrap();
        third
            .write_all(b"GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte)).await;
        assert!(early.is_err(), "a connection beyond the limit was served");

        drop(holders);
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), third.read_to_end(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 404"), "{answer:?}");
    }
}
