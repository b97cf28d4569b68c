//! The facade's one error type: the lower crates' errors, plus what only the facade knows.

use std::error::Error as StdError;
use std::fmt;

/// A `Result` whose error is the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Building or using a credential failed (a key, a passphrase, an agent); see the source,
    /// a `sciauth_credentials::Error`.
    Credentials,
    /// An HTTP request failed (connect, TLS, timeout, an error status); see the source, a
    /// `sciauth_transport::Error`.
    Transport,
    /// Getting or keeping an OAuth token failed; see the source, a `sciauth_tokens::Error`.
    Tokens,
    /// A Rucio login or request failed; see [`Error::rucio_error`] for Rucio's own
    /// exception.
    Rucio,
    /// The server did not accept the credential.
    AuthenticationFailed,
    /// The server answered something this client cannot use.
    InvalidResponse,
    /// The token service (`sciauth serve`) refused; see [`Error::service_error`] for its
    /// status and error code.
    Service,
}

/// An error from the facade. `Display` says what failed and, where it can, what to do;
/// no secret ever appears in it.
pub struct Error {
    kind: ErrorKind,
    message: Option<String>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    pub(crate) fn authentication_failed(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::AuthenticationFailed,
            message: Some(message.into()),
            source: None,
        }
    }

    pub(crate) fn service(error: crate::token_service::ServiceError) -> Self {
        let kind = if matches!(error.status(), 401 | 403) {
            ErrorKind::AuthenticationFailed
        } else {
            ErrorKind::Service
        };
        Self {
            kind,
            message: Some(error.to_string()),
            source: Some(Box::new(error)),
        }
    }

    /// The token service's refusal, if the failure was one.
    pub fn service_error(&self) -> Option<&crate::token_service::ServiceError> {
        self.source.as_deref()?.downcast_ref()
    }

    pub(crate) fn invalid_response(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidResponse,
            message: Some(message.into()),
            source: None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The transport error underneath, if the failure was an HTTP one (to read its status).
    pub fn transport_error(&self) -> Option<&crate::transport::Error> {
        self.source.as_deref()?.downcast_ref()
    }

    /// The token error underneath, if getting a token failed (to read its OAuth error code).
    pub fn tokens_error(&self) -> Option<&crate::tokens::Error> {
        self.source.as_deref()?.downcast_ref()
    }

    /// The Rucio error underneath, if a Rucio login or request failed (to read its kind,
    /// Rucio's exception, or the accounts of a 206).
    pub fn rucio_error(&self) -> Option<&crate::rucio::Error> {
        self.source.as_deref()?.downcast_ref()
    }

    /// Whether only a new login gets past this error: no tokens are stored, they expired for
    /// good, or they lack the scopes asked for (the token errors `NoSavedTokens`,
    /// `TokensExpired`, `ScopesMismatch`; fair-research-login's `LoadError`).
    pub fn needs_login(&self) -> bool {
        self.tokens_error()
            .is_some_and(crate::tokens::Error::needs_login)
    }

    /// The HTTP status, if the server answered with an error status.
    pub fn status(&self) -> Option<crate::transport::StatusCode> {
        self.transport_error().and_then(|e| e.status())
    }
}

macro_rules! from_lower {
    ($($ty:path => $kind:ident),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Self { kind: ErrorKind::$kind, message: None, source: Some(Box::new(e)) }
            }
        }
    )*};
}

from_lower!(
    crate::credentials::Error => Credentials,
    crate::transport::Error => Transport,
    crate::tokens::Error => Tokens,
    crate::rucio::Error => Rucio
);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.message, &self.source) {
            (Some(message), _) => f.write_str(message),
            (None, Some(source)) => fmt::Display::fmt(source, f),
            (None, None) => write!(f, "{:?}", self.kind),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.to_string())
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // A wrapped lower error is shown as this error's message, so it is not repeated as a
        // source; its own source (the cause) is.
        match (&self.message, &self.source) {
            (None, Some(source)) => source.source(),
            (_, source) => source.as_deref().map(|s| s as &(dyn StdError + 'static)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rucio::{Environment, RucioClient};

    #[test]
    fn rucio_errors_keep_their_kind_and_message() {
        let rucio = RucioClient::builder()
            .environment(Environment::empty())
            .build()
            .unwrap_err();
        let error = Error::from(rucio);
        assert_eq!(error.kind(), ErrorKind::Rucio);
        assert_eq!(
            error.rucio_error().unwrap().kind(),
            crate::rucio::ErrorKind::Config
        );
        assert!(error.to_string().contains("no Rucio host"), "{error}");
    }
}
