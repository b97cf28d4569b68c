//! What a failure means for the caller, the same questions for every layer's error.
//!
//! Every sciauth crate has one `Error`, and each answers the questions a caller has to
//! decide on (reqwest's `is_timeout()` / `status()` in spirit): must the user log in again
//! ([`Diagnosis::needs_login`]), did a server refuse the credential ([`Diagnosis::is_refused`]),
//! did the network fail ([`Diagnosis::is_network`]), is what the caller gave wrong
//! ([`Diagnosis::is_bad_input`]), and which HTTP status came back ([`Diagnosis::status`]).
//!
//! The answer covers the whole chain of causes: a token refresh that failed inside a
//! transport's credential says "log in" through the transport's error. Since a lower crate
//! cannot name an upper crate's error type, an error is judged where it is made, by the
//! crate that knows it ([`Diagnose`]), and the judgement travels up with it: a credential
//! implemented elsewhere hands its error to [`Error::renewal_failed`](crate::Error::renewal_failed),
//! which keeps the source's [`Diagnosis`] for everyone above.

use http::StatusCode;

/// The one judgement of a failure: what kind of remedy it calls for, and the HTTP status
/// that came back, if one did. `Default` is [`Class::Other`] without a status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Diagnosis {
    class: Class,
    status: Option<StatusCode>,
}

/// What a failure calls for. More may be added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Class {
    /// Only a new login gets past it: no tokens are stored, they expired for good, or they
    /// lack the scopes asked for.
    NeedsLogin,
    /// A server or identity provider refused the credential (a 401 or 403, an OAuth error,
    /// a refused Rucio login): check the credential, or log in again.
    Refused,
    /// The network failed: no connection, a timeout, a TLS failure, a connection cut off.
    Network,
    /// What the caller gave cannot be used: a configuration value, a key file, a URL, a
    /// setting of a builder. Fix the input.
    BadInput,
    /// Anything else (a server that answered nonsense, a local I/O failure).
    #[default]
    Other,
}

impl Diagnosis {
    /// A failure of `class`, without an HTTP status.
    pub const fn new(class: Class) -> Self {
        Self {
            class,
            status: None,
        }
    }

    /// The same judgement, with the HTTP status the failed answer had.
    pub const fn with_status(mut self, status: Option<StatusCode>) -> Self {
        self.status = status;
        self
    }

    /// What the failure calls for.
    pub fn class(&self) -> Class {
        self.class
    }

    /// Whether only a new login gets past the failure.
    pub fn needs_login(&self) -> bool {
        self.class == Class::NeedsLogin
    }

    /// Whether a server refused the credential.
    pub fn is_refused(&self) -> bool {
        self.class == Class::Refused
    }

    /// Whether the network failed.
    pub fn is_network(&self) -> bool {
        self.class == Class::Network
    }

    /// Whether what the caller gave cannot be used.
    pub fn is_bad_input(&self) -> bool {
        self.class == Class::BadInput
    }

    /// The HTTP status of the failed answer, anywhere in the chain of causes.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }
}

/// An error that can judge itself: implemented by every sciauth `Error`, and required of the
/// cause handed to [`Error::renewal_failed`](crate::Error::renewal_failed) so that the
/// judgement reaches the layers above.
pub trait Diagnose {
    /// What this failure means for the caller, through its whole chain of causes.
    fn diagnosis(&self) -> Diagnosis;
}

/// Adds the caller's questions to an error type that implements [`Diagnose`] as inherent
/// methods, so that callers need no trait in scope: `needs_login()`, `is_refused()`,
/// `is_network()`, `is_bad_input()` and `status()`. Used by every sciauth crate for its
/// `Error`; not an API of its own.
#[doc(hidden)]
#[macro_export]
macro_rules! diagnosis_predicates {
    ($error:ty) => {
        impl $error {
            /// Whether only a new login gets past this error: no tokens are stored, they
            /// expired for good, or they lack the scopes asked for. Looks through the whole
            /// chain of causes.
            pub fn needs_login(&self) -> bool {
                $crate::Diagnose::diagnosis(self).needs_login()
            }

            /// Whether a server or identity provider refused the credential (a 401 or 403,
            /// an OAuth error, a refused login). Looks through the whole chain of causes.
            pub fn is_refused(&self) -> bool {
                $crate::Diagnose::diagnosis(self).is_refused()
            }

            /// Whether the network failed: no connection, a timeout, TLS, a connection cut
            /// off. Looks through the whole chain of causes.
            pub fn is_network(&self) -> bool {
                $crate::Diagnose::diagnosis(self).is_network()
            }

            /// Whether what the caller gave cannot be used (a configuration value, a key
            /// file, a URL, a setting). Looks through the whole chain of causes.
            pub fn is_bad_input(&self) -> bool {
                $crate::Diagnose::diagnosis(self).is_bad_input()
            }

            /// The HTTP status of the failed answer, anywhere in the chain of causes (a
            /// token endpoint's 401 under a refresh under a request, too).
            pub fn status(&self) -> Option<$crate::http::StatusCode> {
                $crate::Diagnose::diagnosis(self).status()
            }
        }
    };
}
