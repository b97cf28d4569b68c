//! Time arithmetic that never panics, for numbers that come from outside.
//!
//! `SystemTime + Duration` and `Instant + Duration` panic when the result does not fit, and an
//! identity provider, a server or a file decides how large `expires_in`, `exp` or
//! `requiredTimeLeft` is. Every sum or conversion of a time with an outside number in the
//! workspace goes through these helpers, which saturate at [`far_future`] (the end of the year
//! 9999) and at the Unix epoch; `cargo xtask tidy` refuses the bare operators elsewhere.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use sciauth_credentials::time::{far_future, from_unix, later, unix_seconds};
//!
//! assert_eq!(from_unix(u64::MAX), far_future());
//! assert_eq!(later(far_future(), Duration::MAX), far_future());
//! assert_eq!(unix_seconds(from_unix(1_700_000_000)), 1_700_000_000);
//! assert_eq!(unix_seconds(UNIX_EPOCH), 0);
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// [`far_future`] in seconds since the Unix epoch: 9999-12-31T23:59:59Z.
pub const FAR_FUTURE_SECONDS: u64 = 253_402_300_799;

/// The latest time these helpers produce: 9999-12-31T23:59:59Z. Every later time is clamped
/// to it, so times stay printable as dates and storable as seconds in an `i64`.
pub fn far_future() -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(FAR_FUTURE_SECONDS))
        // Platforms whose clock ends in 2038 clamp there instead.
        .or_else(|| UNIX_EPOCH.checked_add(Duration::from_secs(i32::MAX as u64)))
        .unwrap_or(UNIX_EPOCH)
}

/// The time `seconds` after the Unix epoch, at most [`far_future`].
pub fn from_unix(seconds: u64) -> SystemTime {
    later(UNIX_EPOCH, Duration::from_secs(seconds))
}

/// The time `seconds` after the Unix epoch for a signed number (a database column, a JSON
/// number): the epoch for negative values, at most [`far_future`].
pub fn from_unix_signed(seconds: i64) -> SystemTime {
    from_unix(u64::try_from(seconds).unwrap_or(0))
}

/// Whole seconds since the Unix epoch; 0 for times before it.
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whole seconds since the Unix epoch as the signed number databases keep (SQLite,
/// PostgreSQL `bigint`): [`unix_seconds`], at most `i64::MAX`.
pub fn unix_seconds_i64(time: SystemTime) -> i64 {
    i64::try_from(unix_seconds(time)).unwrap_or(i64::MAX)
}

/// `time + by`, at most [`far_future`] (and never a panic).
pub fn later(time: SystemTime, by: Duration) -> SystemTime {
    let end = far_future();
    match time.checked_add(by) {
        Some(sum) if sum <= end => sum,
        Some(_) | None => end.max(time),
    }
}

/// `time - by`, at least the Unix epoch (and never a panic).
pub fn earlier(time: SystemTime, by: Duration) -> SystemTime {
    match time.checked_sub(by) {
        Some(difference) if difference >= UNIX_EPOCH => difference,
        Some(_) | None => UNIX_EPOCH.min(time),
    }
}

/// `instant + by`, or `None` when that is not representable (then there is no deadline worth
/// waiting for).
pub fn instant_later(instant: Instant, by: Duration) -> Option<Instant> {
    instant.checked_add(by)
}

/// A duration of `seconds` from a floating-point number from outside: `None` for negative,
/// NaN or infinite values; saturating at `max`.
pub fn seconds_f64(seconds: f64, max: Duration) -> Option<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    if seconds >= max.as_secs_f64() {
        return Some(max);
    }
    Duration::try_from_secs_f64(seconds)
        .ok()
        .map(|d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_saturate_instead_of_panicking() {
        let now = from_unix(1_700_000_000);
        assert_eq!(later(now, Duration::MAX), far_future());
        assert_eq!(later(now, Duration::from_secs(u64::MAX)), far_future());
        assert_eq!(
            later(now, Duration::from_secs(60)),
            from_unix(1_700_000_060)
        );
        assert_eq!(earlier(now, Duration::MAX), UNIX_EPOCH);
        assert_eq!(
            earlier(now, Duration::from_secs(60)),
            from_unix(1_699_999_940)
        );
        assert_eq!(from_unix_signed(-5), UNIX_EPOCH);
        assert_eq!(from_unix_signed(i64::MAX), far_future());
        assert_eq!(unix_seconds(far_future()), FAR_FUTURE_SECONDS);
        assert!(instant_later(Instant::now(), Duration::MAX).is_none());
    }

    #[test]
    fn floating_point_seconds_from_outside_are_checked() {
        let cap = Duration::from_secs(3600);
        assert_eq!(seconds_f64(-1.0, cap), None);
        assert_eq!(seconds_f64(f64::NAN, cap), None);
        assert_eq!(seconds_f64(f64::INFINITY, cap), None);
        assert_eq!(seconds_f64(1e300, cap), Some(cap));
        assert_eq!(seconds_f64(1.5, cap), Some(Duration::from_millis(1500)));
    }
}
