//! Rucio authentication: every login the Rucio client has, a session token shared by the
//! processes of a user, and the client's own configuration (`rucio.cfg`, `RUCIO_*`).
//!
//! This crate sits above `sciauth-transport` (HTTP) and `sciauth-tokens` (whose private,
//! lock-protected files hold the token cache) and below the facade `sciauth`, which
//! re-exports it as `sciauth::rucio`; most applications want the facade.
//!
//! - [`RucioClient`] logs in as configured and sends requests with `X-Rucio-Auth-Token`,
//!   `X-Rucio-VO` and `X-Rucio-Account`: [`ping`](RucioClient::ping),
//!   [`whoami`](RucioClient::whoami), [`get_json`](RucioClient::get_json), or any
//!   [`request`](RucioClient::request).
//! - [`RucioSession`] is the credential behind it: a `Credential` for any
//!   `sciauth-transport` transport. It logs in once, renews the token before
//!   `X-Rucio-Auth-Token-Expires`, and on a 401 logs in again over new connections and lets
//!   the request go once more.
//! - [`AuthMethod`]: `userpass`, `ssh` (key file or ssh-agent, `rsa-sha2-256`), `x509`,
//!   `x509_proxy`, and `oidc` (a token from WLCG discovery or from any credential, such as
//!   a token manager).
//! - The token cache: one JSON file per (auth host, VO, account, auth type, identity), 0600
//!   in a 0700 directory, written atomically under a lock, so that N processes starting at
//!   once log in once. A corrupt file is logged and replaced, never fatal.
//! - [`RucioConfig`] and [`Environment`]: `rucio.cfg` found and read as the Rucio client
//!   does, with explicit arguments > environment > file.
//!
//! # Example
//!
//! ```no_run
//! use sciauth_rucio::{AuthMethod, RucioClient};
//! use sciauth_rucio::secrecy::SecretString;
//!
//! # async fn run() -> sciauth_rucio::Result<()> {
//! let client = RucioClient::builder()
//!     .rucio_host("https://rucio.example.org")
//!     .account("alice")
//!     .auth(AuthMethod::userpass("alice", SecretString::from("secret")))
//!     .build()?;
//! println!("{}", client.whoami().await?.account);
//! println!("token expires at {:?}", client.info().expires_at);
//! # Ok(())
//! # }
//! ```
//!
//! # Errors and secrets
//!
//! Everything fails with one [`Error`]; [`Error::kind`] says what went wrong and
//! [`Error::rucio_exception`] keeps Rucio's own class and message
//! (`CannotAuthenticate: Cannot authenticate to account root with given credentials`).
//! Passwords and tokens never appear in `Debug`, `Display`, errors or logs; header values
//! carrying them are marked sensitive.
//!
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

pub use crate::client::{Account, OidcTokenSource, RucioClient, RucioClientBuilder};
pub use crate::config::{Environment, RucioConfig, find_config_file};
pub use crate::error::{Error, ErrorKind, Result, RucioException};
pub use crate::login::{AuthMethod, PassphrasePrompt};
pub use crate::oidc::{OidcPrompt, RucioOidc, StderrPrompt};
pub use crate::session::{RucioSession, SessionInfo};

/// Re-exported because [`AuthMethod`] takes its signers, clocks and credentials.
pub use sciauth_credentials as credentials;
/// Re-exported because [`RucioClient::request`] returns its `RequestBuilder`.
pub use sciauth_transport as transport;
/// Re-exported because secrets are passed as [`secrecy::SecretString`].
pub use secrecy;

mod cache;
mod client;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod login;
mod oidc;
mod session;
