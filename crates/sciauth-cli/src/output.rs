//! How tokens and times are shown: the token alone on stdout (so `$(sciauth token)` works),
//! or JSON, or the WLCG discovery file; durations for people.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sciauth::credentials::secrecy::{ExposeSecret as _, SecretString};
use sciauth::{BearerTokenDiscovery, write_bearer_token_file};

use crate::failure::{CliResult, Exit, Failure};

/// A token as `token` and `exchange` print it.
pub(crate) struct Printed<'a> {
    pub(crate) token: &'a SecretString,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) scopes: Vec<String>,
    pub(crate) audience: Option<&'a str>,
    pub(crate) issuer: &'a str,
    pub(crate) profile: &'a str,
}

/// Where a token goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Destination {
    Stdout,
    Json,
    Discovery,
}

impl Printed<'_> {
    pub(crate) fn emit(&self, destination: Destination) -> CliResult {
        match destination {
            Destination::Stdout => println!("{}", self.token.expose_secret()),
            Destination::Json => {
                let now = SystemTime::now();
                let value = serde_json::json!({
                    "access_token": self.token.expose_secret(),
                    "token_type": "Bearer",
                    "expires_at": self.expires_at.map(unix),
                    "expires_in": self.expires_at.map(|at| at.duration_since(now).map_or(0, |d| d.as_secs())),
                    "scopes": self.scopes,
                    "audience": self.audience,
                    "issuer": self.issuer,
                    "profile": self.profile,
                });
                println!("{value}");
            }
            Destination::Discovery => {
                let path: PathBuf = BearerTokenDiscovery::from_env().write_path();
                write_bearer_token_file(&path, self.token)?;
                eprintln!(
                    "sciauth: token written to {} ({})",
                    path.display(),
                    validity(self.expires_at)
                );
            }
        }
        Ok(())
    }
}

pub(crate) fn destination(json: bool, discovery: bool) -> CliResult<Destination> {
    match (json, discovery) {
        (true, true) => Err(Failure::new(
            Exit::BadConfig,
            "--json and --write-discovery do not go together",
        )),
        (true, false) => Ok(Destination::Json),
        (false, true) => Ok(Destination::Discovery),
        (false, false) => Ok(Destination::Stdout),
    }
}

pub(crate) use sciauth::credentials::time::unix_seconds as unix;

/// "valid for 9m 58s", "expired", "expiry unknown".
pub(crate) fn validity(expires_at: Option<SystemTime>) -> String {
    match expires_at {
        None => "expiry unknown".to_owned(),
        Some(at) => match at.duration_since(SystemTime::now()) {
            Ok(left) => format!("valid for {}", duration(left)),
            Err(_) => "expired".to_owned(),
        },
    }
}

/// `1h 5m`, `9m 58s`, `42s`, `3d 2h`.
pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// `2025-05-01T12:00:00Z`: a time in UTC as RFC 3339 says, to the second.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let secs = unix(at);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// "in 9m 58s" or "3m 2s ago", relative to `now`.
pub(crate) fn relative(at: SystemTime, now: SystemTime) -> String {
    match at.duration_since(now) {
        Ok(left) => format!("in {}", duration(left)),
        Err(past) => format!("{} ago", duration(past.duration())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc() {
        let at = |secs| sciauth::credentials::time::from_unix(secs);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_700_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(at(253_402_300_799)), "9999-12-31T23:59:59Z");
        // Beyond what from_unix keeps: saturated, never a panic.
        assert_eq!(rfc3339(at(u64::MAX)), "9999-12-31T23:59:59Z");
        let now = at(1_000);
        assert_eq!(relative(at(1_090), now), "in 1m 30s");
        assert_eq!(relative(at(990), now), "10s ago");
    }
}
