//! [`ManagerObserver`]: what a [`TokenManager`](super::TokenManager) reports as it works, for
//! a service's metrics. The manager calls it inline, so an observer does little (bumps a
//! counter) and never blocks.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// Which grant a request to the provider ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderGrant {
    /// `refresh_token`.
    RefreshToken,
    /// `client_credentials`.
    ClientCredentials,
    /// RFC 8693 token exchange.
    TokenExchange,
}

impl ProviderGrant {
    /// The grant's name as OAuth spells it (`refresh_token`, `client_credentials`,
    /// `token_exchange`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => "token_exchange",
        }
    }
}

/// Told by a [`TokenManager`](super::TokenManager) what it does, for metrics
/// ([`TokenManagerBuilder::observer`](super::TokenManagerBuilder::observer)). Every method
/// does nothing by default. Nothing passed to it holds a token.
pub trait ManagerObserver: Send + Sync + fmt::Debug {
    /// [`TokenManager::get`](super::TokenManager::get) (or a credential's header) was
    /// answered from memory (`true`), or had to take the slow path: the store, and perhaps
    /// the provider (`false`).
    fn lookup(&self, cached: bool) {
        let _ = cached;
    }

    /// A caller waited this long for another caller's fetch of the same grant to end (the
    /// single flight), instead of asking the provider itself.
    fn flight_wait(&self, waited: Duration) {
        let _ = waited;
    }

    /// A token request went to the provider of `issuer` for the client `client_id`: the
    /// grant it ran, how it ended, and how long it took (with the discovery of a lazy client
    /// the first time).
    fn provider_request(
        &self,
        issuer: &str,
        client_id: &str,
        grant: ProviderGrant,
        outcome: Result<(), &Error>,
        took: Duration,
    ) {
        let _ = (issuer, client_id, grant, outcome, took);
    }
}
