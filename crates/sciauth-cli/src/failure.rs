//! Errors as the command reports them: one line (and a hint) on stderr, and an exit code
//! that says what kind of failure it was, so that scripts can react.

use std::fmt;

use std::process::ExitCode;

use sciauth::credentials::text::printable;
use sciauth::credentials::{Class, Diagnose, Diagnosis};

/// Exit codes; documented in `sciauth --help` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Anything not covered below.
    Failure = 1,
    /// The configuration or the command line is wrong (clap uses 2 for usage errors too).
    BadConfig = 3,
    /// No usable token is stored: run `sciauth login`.
    LoginRequired = 4,
    /// The identity provider or the server refused (bad credentials, invalid_grant, 401/403).
    Refused = 5,
    /// The network failed: connection refused, DNS, TLS, timeout.
    Network = 6,
}

/// A failure of a command: what happened, what to do, and the exit code.
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

pub(crate) type CliResult<T = ()> = Result<T, Failure>;

impl Failure {
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(Exit::BadConfig, message)
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prints `sciauth: <message>` and the hint, and gives the exit code. Both are escaped
    /// once more on the way out: whatever server words an error carries, no control character
    /// reaches the terminal, whichever layer forgot.
    pub(crate) fn report(&self) -> ExitCode {
        eprintln!("sciauth: {}", printable(&self.message, 4000));
        if let Some(hint) = &self.hint {
            eprintln!("hint: {}", printable(hint, 1000));
        }
        ExitCode::from(self.exit as u8)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.exit, self.message)
    }
}

/// The exit code of a failure, from what the error answers through its whole chain of
/// causes: a login needed (a refresh inside a request's credential included), a refusal, the
/// network, the caller's input.
fn exit_for(diagnosis: Diagnosis) -> Exit {
    match diagnosis.class() {
        Class::NeedsLogin => Exit::LoginRequired,
        Class::Refused => Exit::Refused,
        Class::Network => Exit::Network,
        Class::BadInput => Exit::BadConfig,
        _ => Exit::Failure,
    }
}

/// The failure for any sciauth error: its message, its exit code, and the hint that goes with
/// the code.
fn failure_of(error: &(impl Diagnose + fmt::Display)) -> Failure {
    let exit = exit_for(error.diagnosis());
    let failure = Failure::new(exit, error.to_string());
    match exit {
        Exit::Network => failure.hint("check the URL, the network, and the CA certificates"),
        Exit::Refused => {
            failure.hint("the server refused the credential; check it, or log in again")
        }
        Exit::LoginRequired => failure.hint("log in with `sciauth login` (and --profile NAME)"),
        _ => failure,
    }
}

macro_rules! from_sciauth_errors {
    ($($ty:path),*) => {$(
        impl From<$ty> for Failure {
            fn from(e: $ty) -> Self {
                failure_of(&e)
            }
        }
    )*};
}

from_sciauth_errors!(
    sciauth::Error,
    sciauth::credentials::Error,
    sciauth::transport::Error,
    sciauth::tokens::Error,
    sciauth::service::Error
);

impl From<sciauth::rucio::Error> for Failure {
    fn from(e: sciauth::rucio::Error) -> Self {
        let failure = failure_of(&e);
        match e.kind() {
            sciauth::rucio::ErrorKind::MultipleAccounts => failure.hint(format!(
                "this identity has several Rucio accounts ({}); set account in the profile",
                e.accounts().join(", ")
            )),
            _ => failure,
        }
    }
}
