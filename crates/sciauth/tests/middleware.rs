//! `sciauth::middleware` (cargo features `reqwest-middleware` and `tower`): there, and its
//! errors convert into the facade's `Error` with `?`, from the builder and from a request.
#![cfg(feature = "reqwest-middleware")]

use std::sync::Arc;

use async_trait::async_trait;
use sciauth::credentials::{AuthHeader, BearerToken, Credential, Error as CredentialError};
use sciauth::middleware::reqwest_middleware::{self, ClientBuilder, reqwest};
use sciauth::middleware::{Auth, ErrorKind};

fn auth(origin: Option<&str>) -> sciauth::Result<Auth> {
    let credential = Arc::new(BearerToken::new("a-token")?);
    let builder = Auth::builder(credential);
    let builder = match origin {
        Some(origin) => builder.origin(origin),
        None => builder,
    };
    Ok(builder.build()?)
}

#[test]
fn a_builder_error_is_the_facades() {
    assert!(auth(Some("https://api.example.org")).is_ok());
    let error = auth(None).unwrap_err();
    assert_eq!(error.kind(), sciauth::ErrorKind::Middleware);
    assert!(error.is_bad_input(), "{error}");
    let middleware = error.middleware_error().unwrap();
    assert_eq!(middleware.kind(), ErrorKind::Builder);
}

/// A credential that cannot make its header.
#[derive(Debug)]
struct Expired;

#[async_trait]
impl Credential for Expired {
    async fn header(&self) -> Result<Option<AuthHeader>, CredentialError> {
        // A token that cannot go into a header: a credentials error of bad input.
        Err(BearerToken::new("line\nbreak").unwrap_err())
    }
}

async fn fetch(origin: &str) -> sciauth::Result<reqwest::Response> {
    let auth = Auth::builder(Arc::new(Expired)).origin(origin).build()?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth.middleware())
        .build();
    match client.get(format!("{origin}/x")).send().await {
        Ok(response) => Ok(response),
        Err(reqwest_middleware::Error::Middleware(error)) => {
            match error.downcast::<sciauth::middleware::Error>() {
                Ok(error) => Err(error.into()),
                Err(other) => panic!("not the middleware's error: {other:?}"),
            }
        }
        Err(other) => panic!("not a middleware error: {other:?}"),
    }
}

#[tokio::test]
async fn a_credential_error_in_a_request_is_the_facades() {
    // The credential fails before anything is sent, so nothing needs to listen.
    let error = fetch("http://127.0.0.1:9").await.unwrap_err();
    assert_eq!(error.kind(), sciauth::ErrorKind::Middleware);
    let middleware = error.middleware_error().unwrap();
    assert!(middleware.is_credential(), "{error}");
    assert!(error.is_bad_input(), "{error}");
}
