//! What goes into a request's authentication header, for research-computing services.
//!
//! This is the bottom layer of sciauth. It knows credentials and nothing about HTTP clients,
//! token endpoints or storage: a [`Credential`] hands out one ready-made, sensitive header
//! (or none) and can be told that a server rejected it.
//!
//! | credential | header |
//! |---|---|
//! | [`UsernamePassword`] | `Authorization: Basic base64(user:pass)` |
//! | [`BasicToken`] | `Authorization: Basic <token>` |
//! | [`BearerToken`] | `Authorization: Bearer <token>` (an OIDC access token) |
//! | [`Anonymous`] | none |
//! | [`SshKeyJwt`] | `Authorization: Bearer <JWT signed with your SSH key>` (UNICORE, UFTP) |
//! | [`SshAgentJwt`] | the same JWT, signed by a key in `ssh-agent` |
//! | [`ServiceJwt`] | a "trusted service" JWT signed with a server key (`etd: "true"`) |
//!
//! [`create_credential`] picks one from what the user has, as pyunicore does, and
//! [`discover_bearer_token`] finds a token where grid tools look for one (WLCG Bearer Token
//! Discovery).
//!
//! This crate is also the bottom home of what every layer shares: [`fs`] (private files and
//! directories, atomic writes, locks across processes: the token store's and the Rucio
//! cache's), [`time`] (time arithmetic on outside numbers that saturates instead of
//! panicking), [`text`] (server text made safe to print), [`secret_serde`] (the few formats
//! that must write a secret), and [`Diagnosis`] (what any layer's error means for the
//! caller).
//!
//! Most applications want the facade crate `sciauth`, which combines these credentials with
//! an HTTP transport (`sciauth-transport`) and self-refreshing OAuth tokens
//! (`sciauth-tokens`). Depend on this crate directly to implement a credential of your own.
//!
//! # Example
//!
//! ```
//! use sciauth_credentials::{Credential, UsernamePassword};
//!
//! # async fn run() -> Result<(), sciauth_credentials::Error> {
//! let credential = UsernamePassword::new("demouser", "test123")?;
//! let header = credential.header().await?.unwrap();
//! assert_eq!(header.value(), "Basic ZGVtb3VzZXI6dGVzdDEyMw==");
//! assert!(header.value().is_sensitive());
//! # Ok(())
//! # }
//! ```
//!
//! # Secrets
//!
//! No secret appears in `Debug`, `Display` or errors: passwords, tokens, passphrases and keys
//! print as `[redacted]` or not at all, and header values are marked sensitive.
//!
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

pub use crate::agent::{AgentKey, KeySelector, SshAgent};
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::create::{CredentialOptions, create_credential, resolve_identity};
pub use crate::credential::{AuthHeader, Credential, Ready, Renewal};
pub use crate::diagnosis::{Class, Diagnose, Diagnosis};
pub use crate::discovery::{
    BearerTokenDiscovery, DiscoveredToken, TokenSource, discover_bearer_token,
    write_bearer_token_file,
};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::fixed::{Anonymous, BasicToken, BearerToken, UsernamePassword};
pub use crate::jwt::{DEFAULT_JWT_LIFETIME, ServiceJwt, SshAgentJwt, SshKeyJwt, SshSigner};
pub use crate::key::{JwsAlgorithm, PrivateKey, decrypt_tls_key};

/// Re-exported because [`AuthHeader`] is made of its types.
pub use http;
/// Re-exported because secrets are passed as [`secrecy::SecretString`].
pub use secrecy;

mod agent;
mod clock;
mod create;
mod credential;
mod diagnosis;
mod discovery;
mod error;
mod fixed;
pub mod fs;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod jwt;
mod key;
pub mod secret_serde;
pub mod text;
pub mod time;

#[cfg(test)]
mod tests;
