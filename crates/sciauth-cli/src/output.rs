//! How tokens and times are shown: the token alone on stdout (so `$(sciauth token)` works),
//! or JSON, or the WLCG discovery file; durations for people.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

pub(crate) fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

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
