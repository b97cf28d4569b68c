//! The crate's one [`Error`]: the server did not accept the credential, answered something
//! unusable, or a request failed.

use std::error::Error as StdError;
use std::fmt;

use sciauth_credentials::{Class, Diagnose, Diagnosis};

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is. More may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server did not accept the credential (it treats the client as anonymous).
    AuthenticationFailed,
    /// The server answered something this client cannot use.
    InvalidResponse,
    /// An HTTP request failed (connect, TLS, timeout, an error status, a preference that
    /// cannot be sent): [`Error::transport_error`].
    Transport,
    /// A credential could not be made from what the server issued.
    Credentials,
}

/// An error from a UNICORE call. `Display` says what failed and what to do; no secret ever
/// appears in it.
pub struct Error {
    kind: ErrorKind,
    message: String,
    diagnosis: Diagnosis,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    fn new(kind: ErrorKind, class: Class, message: String) -> Self {
        Self {
            kind,
            message,
            diagnosis: Diagnosis::new(class),
            source: None,
        }
    }

    pub(crate) fn authentication_failed(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::AuthenticationFailed,
            Class::Refused,
            message.into(),
        )
    }

    pub(crate) fn invalid_response(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidResponse, Class::Other, message.into())
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The transport error, for [`ErrorKind::Transport`] (to read its kind and status).
    pub fn transport_error(&self) -> Option<&sciauth_transport::Error> {
        self.source.as_deref()?.downcast_ref()
    }
}

macro_rules! from_lower {
    ($($ty:path => $kind:ident),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Self {
                    kind: ErrorKind::$kind,
                    message: e.to_string(),
                    diagnosis: e.diagnosis(),
                    source: Some(Box::new(e)),
                }
            }
        }
    )*};
}

from_lower!(
    sciauth_transport::Error => Transport,
    sciauth_credentials::Error => Credentials
);

impl Diagnose for Error {
    fn diagnosis(&self) -> Diagnosis {
        self.diagnosis
    }
}

sciauth_credentials::diagnosis_predicates!(Error);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // A lower error is this error's message already; its own cause is the source.
        self.source.as_deref()?.source()
    }
}
