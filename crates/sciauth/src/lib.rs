//! Authentication for research computing, in one dependency: UNICORE, Rucio, FTS, DIRAC and
//! any OAuth 2.0 / OpenID Connect protected API (CILogon, INDIGO IAM, Keycloak).
//!
//! This is the facade most applications use. It re-exports the layers below it and adds only
//! the glue that must know all of them:
//!
//! | module | what it is for |
//! |---|---|
//! | [`credentials`] | what goes into a request's auth header: passwords, tokens, SSH-key JWTs |
//! | [`transport`] | HTTP carrying a credential and UNICORE user preferences |
//! | [`tokens`] | OAuth 2.0 / OIDC grants: login, refresh, exchange, revoke |
//! | [`rucio`] | Rucio logins (userpass, ssh, x509, x509_proxy, oidc), a token cache shared by processes, `rucio.cfg` |
//! | [`unicore`] | a UNICORE REST client: who am I, server-issued tokens |
//! | [`native`] | [`NativeClient`]: fair-research-login's login-once-keep-tokens client, for any OIDC provider |
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
//! // An SSH-key JWT, as pyunicore's create_credential(username, identity) makes it.
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
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

pub use sciauth_credentials as credentials;
pub use sciauth_rucio as rucio;
pub use sciauth_tokens as tokens;
pub use sciauth_transport as transport;

pub use crate::credentials::{
    BearerTokenDiscovery, Credential, create_credential, discover_bearer_token,
    write_bearer_token_file,
};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::native::{LoginOptions, NativeClient};
pub use crate::token_service::TokenServiceClient;
pub use crate::tokens::{Issuer, OAuthClient, Token};
pub use crate::transport::{Preferences, Transport};

mod error;
pub mod native;
pub mod token_service;
pub mod unicore;
