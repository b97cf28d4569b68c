//! OAuth 2.0 and OpenID Connect tokens for research-computing services: every grant a
//! program or a person needs to get one from CILogon, INDIGO IAM, Keycloak or any other
//! provider.
//!
//! This crate sits above `sciauth-transport` (which carries its HTTP requests) and
//! `sciauth-credentials` (whose `Clock` judges expiry), and below the facade `sciauth`, which
//! is what most applications want: it wires the token manager of this crate to requests and
//! logins. Depend on this crate directly to run grants yourself, or to keep tokens with a
//! [`TokenManager`] over a [`TokenStore`] of your own.
//!
//! | what | how |
//! |---|---|
//! | find a provider | [`Issuer::discover`] (OIDC discovery, RFC 8414), or [`ProviderMetadata`] by hand |
//! | a client at it | [`OAuthClient::builder`] with [`ClientAuth`]: none, `client_secret_basic`, `client_secret_post`, `private_key_jwt` |
//! | log a person in | [`OAuthClient::code_login`] (browser, loopback redirect, or pasted code), [`OAuthClient::device_login`] |
//! | a service's own token | [`OAuthClient::client_credentials`] |
//! | keep going | [`OAuthClient::refresh`] (rotation-aware) |
//! | delegate, narrow, re-target | [`OAuthClient::exchange`] (RFC 8693) |
//! | end or inspect | [`OAuthClient::revoke`] (RFC 7009), [`OAuthClient::introspect`] (RFC 7662) |
//! | accept bearer tokens (a resource server) | [`Issuer::validate_access_token`] (JWT, RFC 9068) |
//! | keep tokens | [`TokenStore`]: [`FileStore`] (default), [`MemoryStore`], `SqliteStore` (feature `sqlite`) |
//! | a token that is simply there | [`TokenManager::get`] with a [`TokenRequest`] (scopes, audience, minimum time left): stored, refreshed ahead of expiry, single-flight across tasks and processes |
//! | renew on schedule (a long job's token file) | [`TokenManager::get_fresh`]: a token not yet due, and when it will be |
//! | WLCG path scopes | [`Scopes::grants`]: `storage.read:/` grants `storage.read:/sub/dir`; the manager refreshes for the narrower token |
//! | a provider that accepts only registered redirects | [`CodeLogin::redirect_uri`], [`CodeLogin::redirect_ports`] |
//! | log in, out, list | [`TokenManager::login`], [`TokenManager::logout`], [`TokenManager::list`]; DIRAC-style [`TokenManager::update`], [`TokenManager::delete`] |
//! | a transport's credential | [`TokenManager::credential`] (a [`TokenCredential`]) |
//! | answer from the store without discovery or TLS | [`ClientConfig::lazy`]: the client is built when a grant first needs it |
//! | log in once, keep tokens, hand out valid ones (fair-research-login) | [`NativeClient`] over a [`TokenManager`] |
//!
//! Every grant returns a [`Token`]: access token, refresh token, ID token, absolute expiry,
//! granted scopes, audience, issuer and client, in a versioned JSON shape a store can keep.
//! The token manager keeps them per grant (issuer, client, account) in a store, with one
//! refresh token per grant and one access token per audience and scope set; see
//! [`store`](crate::StoredGrant#storage-format) and [`TokenManager`] for the rules.
//!
//! # Example
//!
//! ```no_run
//! use sciauth_tokens::{ClientAuth, Issuer, OAuthClient};
//!
//! # async fn run() -> sciauth_tokens::Result<()> {
//! let issuer = Issuer::discover("https://iam.example.org/").await?;
//! let client = OAuthClient::builder(issuer, "my-cli").auth(ClientAuth::none()).build();
//! let token = client
//!     .device_login()
//!     .scopes(["openid", "offline_access", "storage.read:/"])
//!     .run()
//!     .await?;
//! let later = client.refresh(&token).send().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! - Redirects are never followed on OAuth endpoints (the transport is built with
//!   `follow_redirects(false)`): a redirected token request would carry secrets elsewhere.
//! - The code flow always uses PKCE S256, a fresh `state` (checked), a `nonce` with `openid`
//!   (checked in the ID token), and the RFC 9207 `iss` parameter when the provider sends it.
//!   The loopback server listens on 127.0.0.1 only.
//! - ID tokens are validated against the provider's JWKS: algorithm matching the key (never
//!   `none` or HMAC), `iss`, `aud`/`azp`, `exp` with a small skew, `nonce`.
//! - No secret (client secret, token, code, verifier, key) appears in `Debug`, `Display`,
//!   errors or logs.
//!
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

pub use crate::access_token::AccessTokenClaims;
pub use crate::client::{AudienceParameter, OAuthClient, OAuthClientBuilder};
pub use crate::client_auth::{ClientAuth, PrivateKeyJwt};
pub use crate::error::{Error, ErrorKind, OAuthError, OAuthErrorCode, Result, StoreErrorKind};
pub use crate::grant::client_credentials::ClientCredentials;
pub use crate::grant::code::{
    AuthorizationRequest, AuthorizationSession, CallbackMode, CodeLogin, is_ssh_session,
};
pub use crate::grant::device::{DeviceAuthorization, DeviceLogin, DeviceProgress};
pub use crate::grant::exchange::TokenExchange;
pub use crate::grant::refresh::Refresh;
pub use crate::grant::revocation::{Introspection, TokenTypeHint};
pub use crate::id_token::IdTokenClaims;
pub use crate::issuer::{Issuer, IssuerBuilder, LazyIssuer, SigningKeyInfo, is_cleartext_remote};
pub use crate::manager::request::DEFAULT_MIN_VALID;
pub use crate::manager::{
    ClientConfig, DEFAULT_UNKNOWN_LIFETIME, Logout, ManagerObserver, ProviderGrant,
    TokenCredential, TokenManager, TokenManagerBuilder, TokenRequest,
};
pub use crate::metadata::ProviderMetadata;
pub use crate::native::{Authorizer, LoginOptions, NativeClient, NativeClientBuilder};
pub use crate::pkce::PkceVerifier;
pub use crate::store::encryption::{DEFAULT_KEY_CACHE_TIMEOUT, KEY_FILE, KeyParams, StoreKey};
pub use crate::store::file::FileStore;
pub use crate::store::memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use crate::store::sqlite::SqliteStore;
pub use crate::store::{
    AccessTokenEntry, AccessTokenInfo, GrantKey, LockedGrant, StoredGrant, TokenInfo, TokenStore,
};
pub use crate::token::{Scopes, Token, token_type};

/// Re-exported because [`PrivateKeyJwt`] takes its `Algorithm`.
pub use jsonwebtoken::Algorithm;
/// Re-exported because [`Issuer`] and clients take a [`Clock`](sciauth_credentials::Clock).
pub use sciauth_credentials;
/// Re-exported because [`IssuerBuilder::transport`] takes a `Transport`.
pub use sciauth_transport;
/// Re-exported because secrets are passed as [`secrecy::SecretString`].
pub use secrecy;
/// Re-exported because endpoints are [`url::Url`]s.
pub use url;

mod access_token;
mod backoff;
mod client;
mod client_auth;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod grant;
mod http;
mod id_token;
mod issuer;
mod jwks;
mod loopback;
mod manager;
mod mask;
mod metadata;
pub mod native;
mod pkce;
mod sleep;
mod store;
mod token;
mod validate;
mod wlcg;

#[cfg(test)]
mod tests;
