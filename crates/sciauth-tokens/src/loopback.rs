//! The loopback redirect server of the native-app code flow (RFC 8252 7.3): listens on
//! 127.0.0.1 and a free port, receives the browser's redirect, answers with a page.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
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
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let (sender, callbacks) = mpsc::channel(4);
        let accept_loop = tokio::spawn(accept(listener, path.to_owned(), sender));
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

async fn accept(listener: TcpListener, path: String, sender: mpsc::Sender<Callback>) {
    loop {
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
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "loopback connection failed");
            }
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

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }
}
