//! An HTTP transport that carries credentials and user preferences to research-computing
//! services: UNICORE, Rucio, FTS, DIRAC and OAuth 2.0 / OpenID Connect protected APIs.
//!
//! This is the layer above `sciauth-credentials` (what goes into the auth header) and below
//! `sciauth-tokens` (OAuth grants and self-refreshing tokens), and the one place in sciauth
//! that knows reqwest. Most applications want the facade crate `sciauth`, which puts the
//! layers together; depend on this crate to talk HTTP with a credential of your own.
//!
//! A [`Transport`] adds to every request:
//!
//! - the header of its [`Credential`](sciauth_credentials::Credential) (`Authorization`, or
//!   e.g. Rucio's `X-Rucio-Auth-Token`), marked sensitive; when the server rejects it (401,
//!   or whatever [`TransportBuilder::rejected_statuses`] says) and the credential renews
//!   itself, the request goes once more;
//! - UNICORE user [`Preferences`] (`X-UNICORE-User-Preferences: uid:x,group:g`), per transport
//!   or per request;
//! - UNICORE security sessions (`X-UNICORE-SecuritySession`), dropped on HTTP 432.
//!
//! It picks one of several equivalent hosts at random and fails over to the next, retries
//! idempotent requests on connect errors and 502/503/504 (honouring `Retry-After`), follows
//! redirects without taking secrets to other hosts, refuses response bodies over a size
//! limit, and verifies TLS with the platform's roots plus any you add (a grid CA directory,
//! say); client certificates and X.509 proxies work too. It speaks HTTP/1.1, which every
//! service in scope serves (no HTTP/2 stack to build).
//!
//! # Example
//!
//! ```no_run
//! use sciauth_transport::Transport;
//! use sciauth_transport::credentials::BearerToken;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let transport = Transport::builder()
//!     .base_url("https://api.example.org/v1")
//!     .credential(BearerToken::new("eyJhbGciOi...")?)
//!     .build()?;
//! let me: serde_json::Value = transport.get_json("me").await?;
//! # drop(me);
//! # Ok(())
//! # }
//! ```
//!
//! # Errors and secrets
//!
//! Everything fails with one [`Error`], whose [`kind`](Error::kind) says what went wrong.
//! Its `Display` names the method and the URL without query string; no header value,
//! credential or body ever appears in an error, in `Debug` output or in the logs.
//!
//! # Logging
//!
//! Each request runs in a `tracing` span `http_request` at DEBUG level, with the method, the
//! URL without query string, the final status, the time taken and the number of attempts;
//! retries, failovers, redirects and renewals are DEBUG events inside it.
//!
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

pub use bytes::Bytes;
pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
/// The credentials this transport carries, re-exported for convenience.
pub use sciauth_credentials as credentials;
pub use url::Url;

pub use crate::builder::TransportBuilder;
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::preferences::Preferences;
pub use crate::request::RequestBuilder;
pub use crate::response::Response;
pub use crate::transport::Transport;

mod builder;
mod error;
mod preferences;
mod request;
mod response;
mod retry;
mod send;
mod session;
mod tls;
mod transport;

#[cfg(test)]
mod tests;
