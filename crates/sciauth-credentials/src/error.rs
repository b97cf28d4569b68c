//! The one error type of this crate.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::diagnosis::{Class, Diagnose, Diagnosis};

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for callers that react differently to different failures.
///
/// The [`Display`](fmt::Display) of [`Error`] carries the details and a hint; match on the
/// kind, print the error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A key file (or identity file) does not exist.
    KeyFileNotFound,
    /// A key file exists but could not be read (permissions, a directory, ...).
    KeyFileUnreadable,
    /// The key is encrypted and no passphrase was given.
    PassphraseRequired,
    /// The passphrase did not decrypt the key.
    WrongPassphrase,
    /// The key is of a type no server verifies JWTs with (DSA, SK keys, ...).
    UnsupportedKeyType,
    /// The key is too weak to use (RSA below 2048 bits).
    KeyTooSmall,
    /// The input is not a private key in any format this crate reads.
    MalformedKey,
    /// No SSH agent could be reached (`SSH_AUTH_SOCK` unset, or nothing listens there).
    AgentUnavailable,
    /// The SSH agent holds no key that matches the selection.
    KeyNotInAgent,
    /// The SSH agent answered, but not with what was asked (refused to sign, protocol error).
    Agent,
    /// Signing failed in the crypto backend.
    Signing,
    /// A message was refused for signing because it is not of the kind that signer signs:
    /// an SSH challenge that could be a JWT signing input (it holds a `.`), has bytes other
    /// than printable ASCII, or is too long. Nothing was signed.
    RefusedToSign,
    /// A value cannot go into an HTTP header (control characters, newlines, ...).
    InvalidHeaderValue,
    /// A value cannot be used as given (e.g. a username containing `:`).
    InvalidInput,
    /// The inputs do not describe a credential (e.g. neither a token nor a username).
    MissingInput,
    /// A credential implemented in another crate could not get or renew its header from the
    /// service that issues it (a token refresh or a Rucio login failed). The cause, in that
    /// crate's error type, is the [`source`](StdError::source).
    Renewal,
}

/// An error from building or using a credential.
///
/// The message says what failed and what to do about it. It never contains a secret: no
/// password, passphrase, token or key material is ever formatted into an error.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    path: Option<PathBuf>,
    source: Option<Box<dyn StdError + Send + Sync>>,
    /// For [`ErrorKind::Renewal`]: the judgement of the source, made by its own crate.
    renewal: Diagnosis,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                path: None,
                source: None,
                renewal: Diagnosis::default(),
            }),
        }
    }

    pub(crate) fn with_path(mut self, path: &Path) -> Self {
        self.inner.path = Some(path.to_owned());
        self
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// An [`ErrorKind::Renewal`] error, for credentials implemented outside this crate whose
    /// [`header`](crate::Credential::header) or [`rejected`](crate::Credential::rejected)
    /// failed because a login or refresh failed. `message` says what failed (it must not
    /// hold a secret); `source` is the cause, in its own crate's error type, whose
    /// [`Diagnosis`] this error keeps: [`needs_login`](Self::needs_login) and the other
    /// predicates of every layer above answer as the cause does.
    pub fn renewal_failed(
        message: impl Into<String>,
        source: impl StdError + Diagnose + Send + Sync + 'static,
    ) -> Self {
        let renewal = source.diagnosis();
        let mut error = Self::new(ErrorKind::Renewal, message).with_source(source);
        error.inner.renewal = renewal;
        error
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The key or identity file the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }
}

impl Diagnose for Error {
    fn diagnosis(&self) -> Diagnosis {
        let class = match self.inner.kind {
            ErrorKind::Renewal => return self.inner.renewal,
            // The agent is the user's session, not an input: it may come back.
            ErrorKind::AgentUnavailable | ErrorKind::KeyNotInAgent | ErrorKind::Agent => {
                Class::Other
            }
            ErrorKind::KeyFileNotFound
            | ErrorKind::KeyFileUnreadable
            | ErrorKind::PassphraseRequired
            | ErrorKind::WrongPassphrase
            | ErrorKind::UnsupportedKeyType
            | ErrorKind::KeyTooSmall
            | ErrorKind::MalformedKey
            | ErrorKind::Signing
            | ErrorKind::RefusedToSign
            | ErrorKind::InvalidHeaderValue
            | ErrorKind::InvalidInput
            | ErrorKind::MissingInput => Class::BadInput,
        };
        Diagnosis::new(class)
    }
}

crate::diagnosis_predicates!(Error);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.inner.path {
            write!(f, "{}: ", path.display())?;
        }
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(path) = &self.inner.path {
            d.field("path", path);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}
