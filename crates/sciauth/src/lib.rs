//! Authentication for research computing, in one dependency: UNICORE, Rucio, FTS, DIRAC and
//! any OAuth 2.0 / OpenID Connect protected API (CILogon, INDIGO IAM, Keycloak).
//!
//! This is the facade most applications use. It holds no code of its own: it re-exports the
//! crates that do the work (as ripgrep's `grep` crate does), the types most programs need at
//! its root, and one [`Error`] that any of them converts into:
//!
//! | module | crate | what it is for |
//! |---|---|---|
//! | [`credentials`] | `sciauth-credentials` | what goes into a request's auth header: passwords, tokens, SSH-key JWTs; private files, time and text helpers every layer shares |
//! | [`transport`] | `sciauth-transport` | HTTP carrying a credential and UNICORE user preferences |
//! | [`tokens`] | `sciauth-tokens` | OAuth 2.0 / OIDC grants, the token store and manager |
//! | [`native`] | `sciauth-tokens` | [`NativeClient`]: fair-research-login's login-once-keep-tokens client, for any OIDC provider |
//! | [`unicore`] | `sciauth-unicore` | a UNICORE REST client: who am I, server-issued tokens |
//! | [`rucio`] | `sciauth-rucio` | Rucio logins (userpass, ssh, x509, x509_proxy, oidc), a token cache shared by processes, `rucio.cfg` |
//! | [`service`] | `sciauth-service-api` | [`TokenServiceClient`] and the API of the token service (`sciauth serve`) |
//! | `middleware` (cargo features `reqwest-middleware`, `tower`) | `sciauth-middleware` | a credential for one origin in a `reqwest_middleware` client or a tower stack (hyper, tonic, axum) the program keeps: the header added, renewed and the request sent once more when rejected |
//! | `blocking` (cargo feature `blocking`) | `sciauth-blocking` | the same without an async runtime, as `reqwest::blocking`: `Transport`, `TokenManager`, `NativeClient` and `Credential` handles that wait on one background thread |
//!
//! A bearer token that grid tools left for each other (xrootd, gfal, davix, HTCondor) is a
//! credential too: [`discover_bearer_token`] looks where WLCG Bearer Token Discovery says, in
//! its order (`BEARER_TOKEN`, `BEARER_TOKEN_FILE`, `$XDG_RUNTIME_DIR/bt_u$UID`,
//! `/tmp/bt_u$UID`), and [`write_bearer_token_file`] leaves one there (0600, atomic).
//!
//! # Example
//!
//! ```no_run
//! use sciauth::credentials::{CredentialOptions, create_credential, resolve_identity};
//! use sciauth::unicore::Client;
//!
//! # async fn run() -> sciauth::Result<()> {
//! // An SSH-key JWT, as pyunicore's create_credential(username, identity) makes it. Every
//! // layer's error converts into `sciauth::Error`.
//! let credential = create_credential(
//!     CredentialOptions::default()
//!         .username("demouser")
//!         .identity(resolve_identity("id_uftp")),
//! )?;
//! let client = Client::builder("https://localhost:8080/DEMO-SITE/rest/core")
//!     .shared_credential(credential.into())
//!     .build()
//!     .await?;
//! println!("{:?}", client.access_info().await?);
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! Each crate has one `Error`, and each answers the questions a caller decides on through
//! the whole chain of causes: `needs_login()`, `is_refused()`, `is_network()`,
//! `is_bad_input()` and `status()` (see [`credentials::Diagnosis`]). [`Error`] answers the
//! same for whichever layer failed.
//!
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

#[cfg(feature = "blocking")]
pub use sciauth_blocking as blocking;
pub use sciauth_credentials as credentials;
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
pub use sciauth_middleware as middleware;
pub use sciauth_rucio as rucio;
pub use sciauth_service_api as service;
pub use sciauth_tokens as tokens;
pub use sciauth_tokens::native;
pub use sciauth_transport as transport;
pub use sciauth_unicore as unicore;

pub use crate::credentials::{
    BearerTokenDiscovery, Credential, create_credential, discover_bearer_token,
    write_bearer_token_file,
};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::native::{LoginOptions, NativeClient};
pub use crate::service::TokenServiceClient;
pub use crate::tokens::{Issuer, OAuthClient, Token};
pub use crate::transport::{Preferences, Transport};

mod error;
