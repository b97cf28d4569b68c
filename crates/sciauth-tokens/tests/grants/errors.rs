//! What no real provider does, from a tiny canned-answer server on 127.0.0.1: bare statuses
//! with empty or HTML bodies, redirects on the token endpoint, answers without optional
//! fields. And a provider that is not there at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sciauth_tokens::secrecy::{ExposeSecret as _, SecretString};
use sciauth_tokens::{ErrorKind, Issuer, OAuthClient, ProviderMetadata, Scopes};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::transport;

/// Answers every request with `response` (a whole HTTP/1.1 response) and counts requests.
async fn canned(response: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                // Read until the end of the headers; the small form body comes with them.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (base, count)
}

async fn client_at(base: &str) -> OAuthClient {
    let metadata = ProviderMetadata::new(base, format!("{base}/token").parse().unwrap());
    let issuer = Issuer::builder(base)
        .transport(transport())
        .metadata(metadata)
        .build()
        .await
        .unwrap();
    OAuthClient::builder(issuer, "app").build()
}

async fn error_for(response: &'static str) -> (String, sciauth_tokens::Error) {
    let (base, _) = canned(response).await;
    let error = client_at(&base)
        .await
        .client_credentials()
        .send()
        .await
        .unwrap_err();
    (base, error)
}

#[tokio::test]
async fn an_empty_400_names_the_endpoint_and_the_status() {
    let (base, error) =
        error_for("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    assert_eq!(error.kind(), &ErrorKind::HttpStatus);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(error.endpoint().unwrap().as_str(), format!("{base}/token"));
    let text = error.to_string();
    assert!(text.contains(&format!("{base}/token")), "{text}");
    assert!(text.contains("400 Bad Request"), "{text}");
    assert!(text.contains("empty body"), "{text}");
}

#[tokio::test]
async fn an_empty_403_names_the_endpoint_and_the_status() {
    let (base, error) =
        error_for("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
    assert_eq!(error.kind(), &ErrorKind::HttpStatus);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(403));
    let text = error.to_string();
    assert!(
        text.contains(&format!("the token endpoint {base}/token")),
        "{text}"
    );
    assert!(text.contains("403 Forbidden"), "{text}");
}

#[tokio::test]
async fn an_html_error_page_is_called_what_it_is() {
    let (_, error) = error_for(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: text/html\r\ncontent-length: 26\r\n\
         connection: close\r\n\r\n<html>Access denied</html>",
    )
    .await;
    assert_eq!(error.kind(), &ErrorKind::HttpStatus);
    assert!(error.to_string().contains("HTML page"), "{error}");
}

#[tokio::test]
async fn a_redirect_on_the_token_endpoint_is_not_followed() {
    let (target, hits) =
        canned("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}").await;
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}/elsewhere\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (_, error) = error_for(redirect).await;
    assert_eq!(error.kind(), &ErrorKind::HttpStatus);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(307));
    assert!(error.to_string().contains("not followed"), "{error}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the secret never went to the target"
    );
}

#[tokio::test]
async fn a_provider_that_is_not_there_is_a_transport_error() {
    // Bind and drop: nothing listens on this port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let error = client_at(&base)
        .await
        .client_credentials()
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Transport);
    assert!(std::error::Error::source(&error).is_some());
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_refresh_answer_without_refresh_token_or_scope_keeps_what_was_known() {
    let (base, _) = canned(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 63\r\n\
         connection: close\r\n\r\n{\"access_token\":\"new-at\",\"token_type\":\"Bearer\",\"expires_in\":60}",
    )
    .await;
    let token = client_at(&base)
        .await
        .refresh_with(SecretString::from("old-rt"))
        .scopes(["read", "write"])
        .send()
        .await
        .unwrap();
    assert_eq!(token.access_token().expose_secret(), "new-at");
    assert_eq!(token.refresh_token().unwrap().expose_secret(), "old-rt");
    // RFC 6749 5.1: no `scope` in the answer means the requested scopes were granted.
    assert_eq!(token.scopes(), &Scopes::parse("read write"));
    assert_eq!(token.lifetime().unwrap().as_secs(), 60);
}
