//! Remembering that a request to the provider failed, so that an outage costs one request
//! per backoff period instead of one per caller (each waiting up to the transport's timeout
//! behind the one before it).

use std::time::{Duration, Instant};

use url::Url;

use crate::error::{Error, ErrorKind, Result};

/// The wait after the first failure; it doubles with each further one.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Failures in a row of one kind of request (a JWKS fetch, a discovery), and until when not
/// to try again.
#[derive(Debug, Default)]
pub(crate) struct FailureBackoff {
    failures: u32,
    retry_at: Option<Instant>,
    last: Option<LastFailure>,
}

#[derive(Debug)]
struct LastFailure {
    kind: ErrorKind,
    status: Option<u16>,
    cause: Option<sciauth_credentials::Diagnosis>,
    endpoint: Option<Url>,
    message: String,
}

impl FailureBackoff {
    /// `Ok` when a request may be made now; while the backoff lasts, an error like the last
    /// failure's (same kind, status and endpoint, so `is_transient` answers alike) saying
    /// when the provider will be asked again.
    pub(crate) fn check(&self) -> Result<()> {
        let (Some(retry_at), Some(last)) = (self.retry_at, &self.last) else {
            return Ok(());
        };
        let Some(wait) = retry_at.checked_duration_since(Instant::now()) else {
            return Ok(());
        };
        let mut error = Error::new(
            last.kind.clone(),
            format!(
                "{} (failed {} time(s) in a row; not asked again for {} s)",
                last.message,
                self.failures,
                wait.as_secs().max(1)
            ),
        );
        error = error.with_cause_diagnosis(last.cause);
        if let Some(status) = last.status {
            error = error.with_status(status);
        }
        if let Some(endpoint) = &last.endpoint {
            error = error.with_endpoint(endpoint);
        }
        Err(error)
    }

    /// Records a failure; returns how long no request will be made.
    pub(crate) fn failed(&mut self, error: &Error) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(16);
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF);
        self.retry_at = Instant::now().checked_add(delay);
        self.last = Some(LastFailure {
            kind: error.kind().clone(),
            status: error.own_status(),
            cause: error.cause_diagnosis(),
            endpoint: error.endpoint().cloned(),
            message: error.to_string(),
        });
        delay
    }

    /// Records a success: the next failure starts the backoff afresh.
    pub(crate) fn succeeded(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_a_minute_and_a_success_resets_it() {
        let mut backoff = FailureBackoff::default();
        assert!(backoff.check().is_ok());
        let error = Error::new(ErrorKind::HttpStatus, "the JWKS endpoint answered HTTP 500")
            .with_status(500);
        let delays: Vec<u64> = (0..9).map(|_| backoff.failed(&error).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        let refused = backoff.check().unwrap_err();
        assert_eq!(refused.kind(), &ErrorKind::HttpStatus);
        assert_eq!(refused.own_status(), Some(500));
        assert!(refused.is_transient());
        assert!(refused.to_string().contains("HTTP 500"), "{refused}");
        assert!(
            refused.to_string().contains("9 time(s) in a row"),
            "{refused}"
        );
        for _ in 0..100 {
            backoff.failed(&error);
        }
        backoff.succeeded();
        assert!(backoff.check().is_ok());
        assert_eq!(backoff.failed(&error).as_secs(), 1);
    }
}
