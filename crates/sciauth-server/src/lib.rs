//! A DIRAC-style token service for a fleet: it keeps users' refresh tokens centrally and
//! hands out access tokens to the services and pilots that act for them, over an HTTP JSON
//! API; several replicas share one PostgreSQL database.
//!
//! This crate sits above the facade `sciauth` and below the CLI, whose `sciauth serve
//! --config FILE` runs it. Clients talk to it with `sciauth_service_api::TokenServiceClient`; the
//! request and answer types, and its error codes, live in `sciauth-service-api`.
//!
//! | DIRAC method | route | who may |
//! |---|---|---|
//! | `getToken(username, group, scope, audience, identityProvider, requiredTimeLeft)` | `POST /v1/getToken` | FullDelegation, LimitedDelegation; PrivateLimitedDelegation for oneself |
//! | `updateToken(token, userID, provider, rt_expired_in)` | `POST /v1/updateToken` | the user, or ProxyManagement |
//! | `deleteToken(userID)` | `POST /v1/deleteToken` | the user, or ProxyManagement |
//! | `getTokensByUserID(userID)` | `POST /v1/getTokensByUserID` | the user, or ProxyManagement (DIRAC: anyone) |
//! | `getUserTokensInfo()` | `POST /v1/getUserTokensInfo` | any caller, for themselves |
//! | `getUsersTokensInfo(users)` | `POST /v1/getUsersTokensInfo` | ProxyManagement |
//! | `whoami()`, `ping()` | `/v1/whoami`, `/v1/ping` | any caller; anyone |
//!
//! The OpenAPI description is `openapi.json` in this crate, served at `GET /openapi.json`;
//! the configuration (TOML) is described in `docs/sciauth-server.md`, with an example in
//! `example.toml`.
//!
//! # How it keeps tokens
//!
//! The [`TokenManager`](sciauth_tokens::TokenManager) of `sciauth-tokens` does the work, over
//! a [`TokenStore`](sciauth_tokens::TokenStore): a user's grant is keyed (issuer, client, user
//! name), a group's (client credentials) grant (issuer, client, `group:<name>`). A cached
//! access token with more than `requiredTimeLeft` left is handed out without asking the
//! provider; otherwise one refresh per grant happens, across tasks through the manager and
//! across replicas through the store's lock ([`PostgresStore`]: an advisory lock), and the
//! rotated refresh token is stored before the access token is returned.
//!
//! # Running it
//!
//! [`Server::run`] binds the configured listeners and serves until SIGTERM or SIGINT, then
//! drains (stops accepting, finishes the requests under way within `drain_timeout_seconds`);
//! SIGHUP reloads the configuration file ([`ServerHandle::reload`] does it from code): a
//! configuration that cannot be read, or that changes what only a restart applies, is refused
//! and the running one kept. `GET /metrics` (Prometheus text, `prometheus-client`), `/healthz`
//! and `/readyz` are on the service's listener and, with `[metrics]`, on a listener of their
//! own; every request is logged in one line. HTTP/2 comes by ALPN on TLS, and with prior
//! knowledge (h2c) where configured. `docs/sciauth-server.md` has the details and a
//! deployment recipe.
//!
//! ```no_run
//! # async fn run() -> sciauth_server::Result<()> {
//! use sciauth_server::{Config, Server};
//! let config = Config::from_file("server.toml")?;
//! Server::new(config).await?.run().await
//! # }
//! ```

pub use crate::config::{
    Config, DEFAULT_BODY_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PURGE_INTERVAL, LogFormat, properties,
};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::http::OPENAPI;
pub use crate::postgres::{DEFAULT_MAX_LOCK_CONNECTIONS, PostgresStore};
pub use crate::server::{Server, ServerHandle};

mod api;
mod app;
mod caller;
mod config;
mod dn;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod metrics;
mod postgres;
mod purge;
mod server;
mod service;
mod tls;
