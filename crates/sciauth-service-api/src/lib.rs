//! The sciauth token service's API: what its methods take and answer, its error codes, and
//! [`TokenServiceClient`], the client with DIRAC's client-side cache.
//!
//! The token service (`sciauth serve`, crate `sciauth-server`) keeps users' refresh tokens
//! and hands out access tokens to a fleet, as DIRAC's TokenManager does. This crate is the
//! contract between it and its callers, so both depend on it and on nothing of each other:
//! the request and answer types ([`GetTokenRequest`], [`ServiceToken`], ...), one
//! [`ErrorCode`] enum that the server answers with and the client reads, and the client.
//! Most applications reach it through the facade, `sciauth::service`.
//!
//! Every method is `POST {base}/v1/<method>` with a JSON body:
//!
//! | method | request | answer |
//! |---|---|---|
//! | `getToken` | [`GetTokenRequest`] | [`ServiceToken`] |
//! | `updateToken` | [`UpdateTokenRequest`] | `Vec<`[`StoredTokenInfo`]`>` (the user's tokens now) |
//! | `deleteToken` | [`DeleteTokenRequest`] | [`DeleteTokenResponse`] |
//! | `getTokensByUserID` | [`UserIdRequest`] | `Vec<`[`StoredTokenInfo`]`>` |
//! | `getUserTokensInfo` | `{}` | `Vec<`[`StoredTokenInfo`]`>` (the caller's) |
//! | `getUsersTokensInfo` | [`UsersRequest`] | `Vec<`[`StoredTokenInfo`]`>` |
//! | `whoami` | `{}` | [`WhoAmI`] |
//! | `ping` | `{}` | [`Ping`] |
//!
//! A failure answers 4xx or 5xx with an [`ErrorBody`]: an [`ErrorCode`] and a message that
//! says what to do. Only `getToken` answers with a secret (the access token).
//!
//! # Example
//!
//! ```no_run
//! use sciauth_credentials::BearerToken;
//! use sciauth_service_api::{GetTokenRequest, TokenServiceClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = TokenServiceClient::builder("https://tokens.example.org:9181")
//!     .credential(BearerToken::new("eyJ...")?)
//!     .build()?;
//! let token = client
//!     .get_token(&GetTokenRequest {
//!         group: Some("dteam_pilot".into()),
//!         required_time_left: 600,
//!         ..Default::default()
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

pub use crate::client::{TokenServiceClient, TokenServiceClientBuilder};
pub use crate::code::ErrorCode;
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::wire::{
    API_PREFIX, AccessTokenSummary, DelegatedToken, DeleteTokenRequest, DeleteTokenResponse,
    ErrorBody, GROUP_HEADER, GetTokenRequest, Ping, ServiceToken, StoredTokenInfo,
    UpdateTokenRequest, UserIdRequest, UsersRequest, WhoAmI,
};

mod client;
mod code;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod wire;
