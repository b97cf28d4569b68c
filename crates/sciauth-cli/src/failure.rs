//! Errors as the command reports them: one line (and a hint) on stderr, and an exit code
//! that says what kind of failure it was, so that scripts can react.

use std::fmt;

use sciauth::credentials::text::printable;
use std::process::ExitCode;

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

impl From<sciauth::credentials::Error> for Failure {
    fn from(e: sciauth::credentials::Error) -> Self {
        use sciauth::credentials::ErrorKind as K;
        let exit = match e.kind() {
            K::AgentUnavailable | K::KeyNotInAgent | K::Agent => Exit::Failure,
            _ => Exit::BadConfig,
        };
        Failure::new(exit, e.to_string())
    }
}

/// The exit code for a transport failure.
fn transport_exit(e: &sciauth::transport::Error) -> Exit {
    use sciauth::transport::ErrorKind as K;
    match e.kind() {
        K::Timeout | K::Connect | K::Tls => Exit::Network,
        K::Status if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) => Exit::Refused,
        K::Credential => {
            // A token manager's or Rucio session's failure lies underneath.
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                if let Some(tokens) = cause.downcast_ref::<sciauth::tokens::Error>() {
                    return tokens_exit(tokens);
                }
                if let Some(rucio) = cause.downcast_ref::<sciauth::rucio::Error>() {
                    return rucio_exit(rucio);
                }
                source = cause.source();
            }
            Exit::LoginRequired
        }
        K::InvalidPreference | K::Builder => Exit::BadConfig,
        // A connection reset or closed mid-answer: the network, not the request.
        K::Request if has_io_cause(e) => Exit::Network,
        _ => Exit::Failure,
    }
}

/// Whether an I/O error (a reset, a broken pipe) lies under `e`.
fn has_io_cause(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = e.source();
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

fn with_hint(exit: Exit, message: String) -> Failure {
    let failure = Failure::new(exit, message);
    match exit {
        Exit::Network => failure.hint("check the URL, the network, and the CA certificates"),
        Exit::Refused => {
            failure.hint("the server refused the credential; check it, or log in again")
        }
        Exit::LoginRequired => failure.hint("log in with `sciauth login` (and --profile NAME)"),
        _ => failure,
    }
}

impl From<sciauth::transport::Error> for Failure {
    fn from(e: sciauth::transport::Error) -> Self {
        with_hint(transport_exit(&e), e.to_string())
    }
}

impl From<sciauth::Error> for Failure {
    fn from(e: sciauth::Error) -> Self {
        if let Some(tokens) = e.tokens_error() {
            return with_hint(tokens_exit(tokens), e.to_string());
        }
        if let Some(service) = e.service_error() {
            let exit = if service.needs_login() {
                Exit::LoginRequired
            } else if matches!(service.status(), 401 | 403) {
                Exit::Refused
            } else {
                Exit::Failure
            };
            return with_hint(exit, e.to_string());
        }
        if let Some(rucio) = e.rucio_error() {
            return with_hint(rucio_exit(rucio), e.to_string());
        }
        let exit = match (e.transport_error(), e.kind()) {
            (Some(transport), _) => transport_exit(transport),
            (None, sciauth::ErrorKind::AuthenticationFailed) => Exit::Refused,
            (None, sciauth::ErrorKind::Credentials) => Exit::BadConfig,
            (None, _) => Exit::Failure,
        };
        with_hint(exit, e.to_string())
    }
}

/// The exit code for a failure to get or keep an OAuth token.
fn tokens_exit(e: &sciauth::tokens::Error) -> Exit {
    use sciauth::tokens::ErrorKind as K;
    if e.needs_login() {
        return Exit::LoginRequired;
    }
    match e.kind() {
        K::OAuth(_) | K::HttpStatus => Exit::Refused,
        K::Transport => {
            // The transport's own error says whether it was the network.
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                if let Some(transport) = cause.downcast_ref::<sciauth::transport::Error>() {
                    return transport_exit(transport);
                }
                source = cause.source();
            }
            Exit::Network
        }
        K::Discovery | K::MissingEndpoint | K::InvalidInput => Exit::BadConfig,
        K::Store(sciauth::tokens::StoreErrorKind::Corrupt) => Exit::BadConfig,
        _ => Exit::Failure,
    }
}

/// The exit code for a Rucio failure.
fn rucio_exit(e: &sciauth::rucio::Error) -> Exit {
    use sciauth::rucio::ErrorKind as K;
    match e.kind() {
        K::LoginRefused => Exit::Refused,
        K::Server if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) => Exit::Refused,
        K::Config | K::MultipleAccounts | K::Credential => Exit::BadConfig,
        K::Transport => Exit::Network,
        _ => Exit::Failure,
    }
}

impl From<sciauth::tokens::Error> for Failure {
    fn from(e: sciauth::tokens::Error) -> Self {
        with_hint(tokens_exit(&e), e.to_string())
    }
}

impl From<sciauth::rucio::Error> for Failure {
    fn from(e: sciauth::rucio::Error) -> Self {
        let exit = rucio_exit(&e);
        let failure = with_hint(exit, e.to_string());
        match e.kind() {
            sciauth::rucio::ErrorKind::MultipleAccounts => failure.hint(format!(
                "this identity has several Rucio accounts ({}); set account in the profile",
                e.accounts().join(", ")
            )),
            _ => failure,
        }
    }
}
