//! sciauth credentials for programs that already have an HTTP stack: a
//! [`reqwest_middleware`] middleware and a tower layer that add a [`Credential`]'s header
//! (a token, an SSH-key JWT, a token manager's token, a Rucio session) to each request for
//! one origin, and send a request once more when the server rejects the credential and it
//! renewed.
//!
//! This crate sits beside `sciauth-transport`, over `sciauth-credentials` only: it is the
//! seam for a `reqwest::Client` (through `reqwest-middleware`) or a hyper, tonic or axum
//! client (through tower) that the program keeps. Programs that want sciauth to make the
//! requests too (failover, retries, UNICORE sessions, redirects checked per origin) want
//! `sciauth-transport`'s `Transport`; most reach both through the facade `sciauth`
//! (`sciauth::middleware`, cargo features `reqwest-middleware` and `tower`).
//!
//! One [`Auth`] holds the credential, the one origin (scheme, host, port) that may receive
//! it, and the statuses that mean the server rejected it (401 by default). It hands out
//! [`AuthMiddleware`] ([`Auth::middleware`], cargo feature `reqwest-middleware`) and
//! [`AuthLayer`] / [`AuthService`] ([`Auth::layer`], cargo feature `tower`); both are on by
//! default.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use sciauth_middleware::Auth;
//! use sciauth_middleware::credentials::BearerToken;
//!
//! # #[cfg(all(feature = "reqwest-middleware", feature = "tower"))]
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let credential = Arc::new(BearerToken::new("eyJhbGciOi...")?);
//! let auth = Auth::builder(credential)
//!     .origin("https://api.example.org")
//!     .build()?;
//!
//! // reqwest-middleware: the credential goes to https://api.example.org only.
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(auth.middleware())
//!     .build();
//!
//! // tower: around any service of `http::Request`s (a hyper client, say).
//! let service = auth.layer();
//! # let _ = (client, service);
//! # Ok(())
//! # }
//! ```
//!
//! # Invariants
//!
//! - The credential goes only to the configured origin. A request to another one goes out
//!   untouched; so does a request with an `Authorization` header of its own. Neither
//!   integration follows redirects; reqwest's and hyper's own redirect handling is
//!   discussed at [`AuthMiddleware`].
//! - A request is sent at most twice: once, and once more after a rejected status when the
//!   credential renewed and the body can be cloned. No answer of the server makes it loop.
//! - No header value, token or password appears in `Debug`, `Display` or an [`Error`].
//!
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

// Without either integration an `Auth` can be built, but nothing uses what it knows.
#![cfg_attr(
    not(any(feature = "reqwest-middleware", feature = "tower")),
    allow(dead_code)
)]

pub use crate::auth::{Auth, AuthBuilder};
pub use crate::error::{Error, ErrorKind, Result};
#[cfg(feature = "tower")]
pub use crate::layer::{AuthLayer, AuthService, BoxError, ResponseFuture};
#[cfg(feature = "reqwest-middleware")]
pub use crate::middleware::AuthMiddleware;
pub use sciauth_credentials::Credential;

/// Re-exported: the version of `reqwest-middleware` that [`AuthMiddleware`] implements.
#[cfg(feature = "reqwest-middleware")]
pub use reqwest_middleware;
/// Re-exported: the credentials an [`Auth`] carries.
pub use sciauth_credentials as credentials;

mod auth;
mod error;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "reqwest-middleware")]
mod middleware;
