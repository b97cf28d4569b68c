//! When to retry, and how long to wait first.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode, header};

/// The first backoff; each retry doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Methods that can be sent twice without changing the outcome (RFC 9110, 9.2.2).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Statuses that say "try again later": the request was not processed.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// The wait before retry number `retry` (0 for the first): exponential, with "equal jitter"
/// (half fixed, half random) so that many clients rejected at once do not return at once.
pub(crate) fn backoff(retry: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1 << retry.min(16))
        .min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(random_fraction())
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date (RFC 9110, 10.2.3).
/// A date in the past means no wait.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A number in `[0, 1)`, random enough for jitter and for picking a host.
///
/// The standard library's `RandomState` is seeded randomly per thread and per instance, so
/// hashing nothing with a fresh one gives a new random value without a dependency.
pub(crate) fn random_fraction() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A random index below `len` (which must not be 0).
pub(crate) fn random_index(len: usize) -> usize {
    ((random_fraction() * len as f64) as usize).min(len - 1)
}
