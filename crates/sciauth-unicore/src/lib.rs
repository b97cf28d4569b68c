//! A client for the UNICORE REST API: who the server thinks you are, and server-issued
//! tokens.
//!
//! The equivalent of pyunicore's `Client(credential, base_url)`, built on
//! `sciauth-transport` (which already carries UNICORE user preferences and security sessions,
//! and treats 401 and 403 as a rejected credential for this client) and any credential of
//! `sciauth-credentials`, a token manager's `TokenCredential` included. It sits beside
//! `sciauth-rucio`: each is one service's client over the transport. Most applications reach
//! it through the facade, `sciauth::unicore`.
//!
//! # Example
//!
//! ```no_run
//! use sciauth_credentials::UsernamePassword;
//! use sciauth_unicore::Client;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("https://localhost:8080/DEMO-SITE/rest/core")
//!     .credential(UsernamePassword::new("demouser", "test123")?)
//!     .build()
//!     .await?;
//! let info = client.access_info().await?;
//! println!("logged in as {} with role {}", info.dn, info.role.selected);
//! # Ok(())
//! # }
//! ```
//!
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

pub use crate::client::{
    AccessInfo, AuthTokenOptions, Client, ClientBuilder, IssuedToken, Role, Xlogin,
};
pub use crate::error::{Error, ErrorKind, Result};

mod client;
mod error;
