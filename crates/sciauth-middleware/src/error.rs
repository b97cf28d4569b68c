//! The crate's one [`Error`] and its [`ErrorKind`].

use std::error::Error as StdError;
use std::fmt;

use sciauth_credentials::{Class, Diagnose, Diagnosis};

/// What a [`Result`] of this crate fails with.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kinds of [`Error`]. More may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting of [`AuthBuilder`](crate::AuthBuilder) is invalid: no origin, or one that is
    /// not an `http` or `https` URL with a host.
    Builder,
    /// The credential could not produce its header, or could not renew itself. The
    /// credential's error is the [`source`](StdError::source), and its judgement
    /// (`needs_login()`, `is_refused()`, ...) is this error's.
    Credential,
}

/// Why building an [`Auth`](crate::Auth) failed, or why a request could not be
/// authenticated.
///
/// In a `reqwest_middleware` stack it arrives as `reqwest_middleware::Error::Middleware`,
/// whose `anyhow::Error` downcasts to this type; in a tower stack as the service's boxed
/// error, which downcasts too. `Display` says what failed; it never holds a header value,
/// a token or a password.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<sciauth_credentials::Error>,
}

impl Error {
    pub(crate) fn builder(message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind: ErrorKind::Builder,
                message: message.into(),
                source: None,
            }),
        }
    }

    pub(crate) fn credential(doing: &str, source: sciauth_credentials::Error) -> Self {
        Self {
            inner: Box::new(Inner {
                kind: ErrorKind::Credential,
                message: format!("the credential failed while {doing}: {source}"),
                source: Some(source),
            }),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Whether a setting of the builder is invalid ([`ErrorKind::Builder`]).
    pub fn is_builder(&self) -> bool {
        self.inner.kind == ErrorKind::Builder
    }

    /// Whether the credential failed ([`ErrorKind::Credential`]).
    pub fn is_credential(&self) -> bool {
        self.inner.kind == ErrorKind::Credential
    }

    /// The credential's own error, if the credential failed.
    pub fn credential_error(&self) -> Option<&sciauth_credentials::Error> {
        self.inner.source.as_ref()
    }
}

impl Diagnose for Error {
    fn diagnosis(&self) -> Diagnosis {
        match (&self.inner.kind, &self.inner.source) {
            (ErrorKind::Credential, Some(source)) => source.diagnosis(),
            (ErrorKind::Builder, _) => Diagnosis::new(Class::BadInput),
            _ => Diagnosis::default(),
        }
    }
}

sciauth_credentials::diagnosis_predicates!(Error);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}
