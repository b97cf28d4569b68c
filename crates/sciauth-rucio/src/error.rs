//! The crate's one [`Error`], its [`ErrorKind`], and the Rucio exception it may carry.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use sciauth_credentials::text::printable;
use sciauth_credentials::{Class, Diagnose, Diagnosis};
use sciauth_transport::{HeaderMap, Response, StatusCode};
use serde::Deserialize;

/// What a [`Result`] of this crate fails with.
pub type Result<T, E = Error> = std::result::Result<T, E>;

type BoxError = Box<dyn StdError + Send + Sync>;

/// The kinds of [`Error`]. More may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The auth server refused the login (wrong password, unknown account, unregistered SSH
    /// key or DN). [`Error::rucio_exception`] holds Rucio's class and message, e.g.
    /// `CannotAuthenticate: Cannot authenticate to account root with given credentials`.
    LoginRefused,
    /// The identity maps to several accounts and none was named (HTTP 206):
    /// [`Error::accounts`] lists them; set the account to one of them.
    MultipleAccounts,
    /// The Rucio server answered an API call with an error (any status but a refused
    /// login); [`Error::rucio_exception`] holds Rucio's class and message when it sent one,
    /// [`Error::status`] the status.
    Server,
    /// The configuration is incomplete or invalid: no host, an unknown auth type, a missing
    /// username, an unreadable `rucio.cfg`.
    Config,
    /// What proves the identity could not be used: an unreadable SSH key, an ssh-agent
    /// without the key, no bearer token found, a token source that failed.
    Credential,
    /// The request did not get an answer: connection refused, timeout, TLS.
    /// [`source`](StdError::source) is the transport's error.
    Transport,
    /// The answer was not what Rucio sends (no token header, JSON of another shape).
    Decode,
    /// The auth host sent an SSH challenge that is not of Rucio's form
    /// (`challenge-<digits>-<account>-<digits>`), so it was not signed: the key also signs
    /// JWTs, and a host must not get one signed by sending it as a challenge.
    BadChallenge,
}

/// An exception as the Rucio server reports it: the `ExceptionClass` and `ExceptionMessage`
/// headers, or the same fields in the JSON body (which keeps long messages whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RucioException {
    class: String,
    message: String,
}

impl RucioException {
    /// An exception with this class and message.
    pub fn new(class: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            message: message.into(),
        }
    }

    /// The exception class, e.g. `CannotAuthenticate`, `IdentityError`, `AccountNotFound`.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The server's message, e.g. `Cannot authenticate to account root with given
    /// credentials`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Reads the exception from an error answer: the JSON body first (the headers cut long
    /// messages short), then the headers. `None` when the answer carries neither.
    pub(crate) fn from_response(headers: &HeaderMap, body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Body {
            #[serde(rename = "ExceptionClass")]
            class: String,
            #[serde(rename = "ExceptionMessage", default)]
            message: String,
        }
        if let Ok(parsed) = serde_json::from_slice::<Body>(body) {
            return Some(Self::new(parsed.class, parsed.message.trim_end()));
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let class = header("ExceptionClass")?;
        Some(Self::new(
            class,
            header("ExceptionMessage").unwrap_or_default(),
        ))
    }
}

impl fmt::Display for RucioException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.class)
        } else {
            write!(f, "{}: {}", self.class, self.message)
        }
    }
}

/// Why a Rucio login, request or configuration failed.
///
/// `Display` says what failed, where, and Rucio's own words when the server sent an
/// exception. No password, token or key material ever appears in it, in `Debug` or in the
/// logs. Cloning is cheap, so that an error a session keeps can be handed to every request
/// that waited for the same login.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    exception: Option<RucioException>,
    status: Option<StatusCode>,
    accounts: Vec<String>,
    source: Option<BoxError>,
    /// For [`ErrorKind::Transport`]: the transport's judgement of its failure.
    transport: Option<Diagnosis>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::build(kind, message.into(), None, None, Vec::new(), None)
    }

    fn build(
        kind: ErrorKind,
        message: String,
        exception: Option<RucioException>,
        status: Option<StatusCode>,
        accounts: Vec<String>,
        source: Option<BoxError>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                message,
                exception,
                status,
                accounts,
                source,
                transport: None,
            }),
        }
    }

    pub(crate) fn with_source(self, source: impl Into<BoxError>) -> Self {
        let inner = self.into_inner();
        Self::build(
            inner.kind,
            inner.message,
            inner.exception,
            inner.status,
            inner.accounts,
            Some(source.into()),
        )
    }

    /// An error for a non-2xx answer: `what` names the call (`login to https://... as root`).
    /// Rucio's words have what the request sent (password, token) masked and control
    /// characters escaped.
    pub(crate) fn from_answer(kind: ErrorKind, what: &str, response: &Response) -> Self {
        let status = response.status();
        let exception =
            RucioException::from_response(response.headers(), response.bytes()).map(|raw| {
                RucioException {
                    class: printable(&response.mask_sent_secrets(&raw.class), 100),
                    message: printable(&response.mask_sent_secrets(&raw.message), 1000),
                }
            });
        let message = match &exception {
            Some(exception) => format!("{what} failed: {exception}"),
            None => format!("{what} failed: HTTP {status}"),
        };
        Self::build(kind, message, exception, Some(status), Vec::new(), None)
    }

    pub(crate) fn multiple_accounts(what: &str, accounts: Vec<String>) -> Self {
        let accounts: Vec<String> = accounts
            .iter()
            .take(100)
            .map(|account| printable(account, 100))
            .collect();
        let message = format!(
            "{what}: this identity has several accounts ({}) and none is its default; name \
             one (account in rucio.cfg, RUCIO_ACCOUNT, or --account)",
            accounts.join(", ")
        );
        Self::build(
            ErrorKind::MultipleAccounts,
            message,
            None,
            Some(StatusCode::PARTIAL_CONTENT),
            accounts,
            None,
        )
    }

    /// The transport's error as this crate's, or the Rucio error a session's login failed
    /// with if that is what stopped the request.
    pub(crate) fn from_transport(what: &str, error: sciauth_transport::Error) -> Self {
        if let Some(ours) = find_in_chain(&error) {
            return ours;
        }
        let judged = error.diagnosis();
        let mut ours =
            Self::new(ErrorKind::Transport, format!("{what} failed: {error}")).with_source(error);
        if let Some(inner) = Arc::get_mut(&mut ours.inner) {
            inner.transport = Some(judged);
        }
        ours
    }

    fn into_inner(self) -> Inner {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                kind: shared.kind,
                message: shared.message.clone(),
                exception: shared.exception.clone(),
                status: shared.status,
                accounts: shared.accounts.clone(),
                source: None,
                transport: shared.transport,
            },
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Rucio's exception (class and message), when the server sent one.
    pub fn rucio_exception(&self) -> Option<&RucioException> {
        self.inner.exception.as_ref()
    }

    /// For [`ErrorKind::MultipleAccounts`], the accounts the identity may use (in the
    /// server's order, which means nothing); empty otherwise.
    pub fn accounts(&self) -> &[String] {
        &self.inner.accounts
    }
}

/// A `sciauth_rucio::Error` somewhere in the causes of `error`: a session's login that
/// failed inside the transport arrives wrapped in the transport's and the credential's
/// errors.
fn find_in_chain(error: &(dyn StdError + 'static)) -> Option<Error> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(ours) = current.downcast_ref::<Error>() {
            return Some(ours.clone());
        }
        cause = current.source();
    }
    None
}

impl Diagnose for Error {
    fn diagnosis(&self) -> Diagnosis {
        let status = self.inner.status;
        let class = match self.inner.kind {
            ErrorKind::LoginRefused => Class::Refused,
            ErrorKind::Server
                if status.is_some_and(|s| {
                    s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN
                }) =>
            {
                Class::Refused
            }
            ErrorKind::Config | ErrorKind::MultipleAccounts | ErrorKind::Credential => {
                Class::BadInput
            }
            ErrorKind::Transport => {
                let transport = self
                    .inner
                    .transport
                    .unwrap_or(Diagnosis::new(Class::Network));
                return transport.with_status(status.or(transport.status()));
            }
            _ => Class::Other,
        };
        Diagnosis::new(class).with_status(status)
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
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(exception) = &self.inner.exception {
            d.field("exception", exception);
        }
        if let Some(status) = &self.inner.status {
            d.field("status", status);
        }
        if !self.inner.accounts.is_empty() {
            d.field("accounts", &self.inner.accounts);
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
