//! The crate's one [`Error`]: the service refused (with an [`ErrorCode`]), answered something
//! unusable, or could not be reached.

use std::error::Error as StdError;
use std::fmt;

use http::StatusCode;
use sciauth_credentials::{Class, Diagnose, Diagnosis};

use crate::code::ErrorCode;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is. More may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The service answered with an error: [`Error::code`] and [`Error::status`] say which.
    Refused,
    /// The service answered something this client cannot use.
    InvalidResponse,
    /// The request failed (connect, TLS, timeout, a transport setting); the transport's error
    /// is the [`source`](StdError::source).
    Transport,
}

/// An error from calling the token service. `Display` says what failed and what to do; no
/// token (the caller's or the service's) ever appears in it.
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    code: Option<ErrorCode>,
    status: Option<StatusCode>,
    transport: Option<sciauth_transport::Error>,
}

impl Error {
    fn new(kind: ErrorKind, message: String) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message,
                code: None,
                status: None,
                transport: None,
            }),
        }
    }

    /// The service's refusal: its status, its code and its message (already escaped and
    /// masked by the caller).
    pub(crate) fn refused(status: StatusCode, code: ErrorCode, message: String) -> Self {
        let mut error = Self::new(
            ErrorKind::Refused,
            format!(
                "the token service refused ({} {code}): {message}",
                status.as_u16()
            ),
        );
        error.inner.code = Some(code);
        error.inner.status = Some(status);
        error
    }

    pub(crate) fn invalid_response(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidResponse, message.into())
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The service's error code, for [`ErrorKind::Refused`].
    pub fn code(&self) -> Option<&ErrorCode> {
        self.inner.code.as_ref()
    }
}

impl From<sciauth_transport::Error> for Error {
    fn from(error: sciauth_transport::Error) -> Self {
        let mut ours = Self::new(ErrorKind::Transport, error.to_string());
        ours.inner.transport = Some(error);
        ours
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // A transport error is this error's message already; its own cause is the source.
        match &self.inner.transport {
            Some(transport) => transport.source(),
            None => None,
        }
    }
}

/// [`needs_login`](Error::needs_login): `no_saved_tokens`, `tokens_expired`,
/// `scopes_mismatch`; [`is_refused`](Error::is_refused): the service answered 401 or 403.
impl Diagnose for Error {
    fn diagnosis(&self) -> Diagnosis {
        if let Some(transport) = &self.inner.transport {
            return transport.diagnosis();
        }
        let status = self.inner.status;
        let class = match &self.inner.code {
            Some(code) if code.needs_login() => Class::NeedsLogin,
            Some(ErrorCode::Unauthenticated | ErrorCode::Forbidden) => Class::Refused,
            _ => Class::Other,
        };
        Diagnosis::new(class).with_status(status)
    }
}

sciauth_credentials::diagnosis_predicates!(Error);
