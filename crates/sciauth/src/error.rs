//! The facade's one error type: any layer's error, for programs that call several layers and
//! want one `?`.

use std::error::Error as StdError;
use std::fmt;

use crate::credentials::{Diagnose, Diagnosis};

/// A `Result` whose error is the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which layer an [`Error`] came from. More may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Building or using a credential failed: [`Error::credentials_error`].
    Credentials,
    /// An HTTP request failed: [`Error::transport_error`].
    Transport,
    /// Getting or keeping an OAuth token failed: [`Error::tokens_error`].
    Tokens,
    /// A Rucio login or request failed: [`Error::rucio_error`].
    Rucio,
    /// A UNICORE call failed: [`Error::unicore_error`].
    Unicore,
    /// A call to the token service failed: [`Error::service_error`].
    Service,
    /// The middleware or tower layer could not authenticate a request, or could not be
    /// built (cargo features `reqwest-middleware`, `tower`): `Error::middleware_error`.
    Middleware,
}

/// An error from any layer of sciauth. `Display` is the layer's own message (what failed,
/// what to do; never a secret), and the questions a caller decides on are answered through
/// the whole chain of causes: [`needs_login`](Self::needs_login),
/// [`is_refused`](Self::is_refused), [`is_network`](Self::is_network),
/// [`is_bad_input`](Self::is_bad_input), [`status`](Self::status).
pub struct Error {
    kind: ErrorKind,
    diagnosis: Diagnosis,
    source: Box<dyn StdError + Send + Sync>,
}

impl Error {
    /// Which layer the error came from.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn layer<E: StdError + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref()
    }

    /// The credentials error, if a credential failed.
    pub fn credentials_error(&self) -> Option<&crate::credentials::Error> {
        self.layer()
    }

    /// The transport error, if an HTTP request failed.
    pub fn transport_error(&self) -> Option<&crate::transport::Error> {
        self.layer()
    }

    /// The token error, if getting a token failed (to read its OAuth error code).
    pub fn tokens_error(&self) -> Option<&crate::tokens::Error> {
        self.layer()
    }

    /// The Rucio error, if a Rucio login or request failed (to read Rucio's exception, or the
    /// accounts of a 206).
    pub fn rucio_error(&self) -> Option<&crate::rucio::Error> {
        self.layer()
    }

    /// The UNICORE error, if a UNICORE call failed.
    pub fn unicore_error(&self) -> Option<&crate::unicore::Error> {
        self.layer()
    }

    /// The token service's error, if a call to it failed (to read its error code).
    pub fn service_error(&self) -> Option<&crate::service::Error> {
        self.layer()
    }

    /// The middleware's error, if the middleware or tower layer failed.
    #[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
    pub fn middleware_error(&self) -> Option<&crate::middleware::Error> {
        self.layer()
    }
}

impl Diagnose for Error {
    fn diagnosis(&self) -> Diagnosis {
        self.diagnosis
    }
}

crate::credentials::diagnosis_predicates!(Error);

macro_rules! from_layer {
    ($($ty:path => $kind:ident),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Self { kind: ErrorKind::$kind, diagnosis: e.diagnosis(), source: Box::new(e) }
            }
        }
    )*};
}

from_layer!(
    crate::credentials::Error => Credentials,
    crate::transport::Error => Transport,
    crate::tokens::Error => Tokens,
    crate::rucio::Error => Rucio,
    crate::unicore::Error => Unicore,
    crate::service::Error => Service
);

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
from_layer!(crate::middleware::Error => Middleware);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.source, f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // The layer's error is this error's message, so it is not repeated as a source; its
        // own cause is.
        self.source.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rucio::{Environment, RucioClient};

    #[test]
    fn a_layers_error_keeps_its_message_its_kind_and_its_answers() {
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
        assert!(error.is_bad_input() && !error.needs_login() && !error.is_network());
    }
}
