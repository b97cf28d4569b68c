//! The crate's one error type, for starting the service: configuration, store, listener, TLS.
//! Errors answered to callers are JSON bodies (`http.rs`), not this type.

use std::error::Error as StdError;
use std::fmt;

/// The longest configuration error message kept (a value quoted from the file is cut).
const MAX_CONFIG_MESSAGE_CHARS: usize = 1000;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration file cannot be read or says something unusable.
    Config,
    /// The token store (PostgreSQL, SQLite, files) cannot be opened or failed.
    Store,
    /// Binding the listener, reading a certificate or key file, or serving failed.
    Io,
    /// The TLS setup (certificate, key, client CA) is unusable.
    Tls,
}

/// An error from configuring or starting the service. `Display` says what failed and what
/// to do; no secret (client secret, database password, token) ever appears in it.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A configuration error. Its message names keys and values of the file (an
    /// environment variable's name, a path), so it is escaped for a terminal here, once for
    /// every caller (a tab in `url_env` reached the log raw, found by fuzzing).
    pub(crate) fn config(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            ErrorKind::Config,
            sciauth_credentials::text::printable(&message, MAX_CONFIG_MESSAGE_CHARS),
        )
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The token error underneath, if a store operation failed.
    pub fn tokens_error(&self) -> Option<&sciauth_tokens::Error> {
        self.source.as_deref()?.downcast_ref()
    }
}

impl From<sciauth_tokens::Error> for Error {
    fn from(error: sciauth_tokens::Error) -> Self {
        Self::new(ErrorKind::Store, error.to_string()).with_source(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}
