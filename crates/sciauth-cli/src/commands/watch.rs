//! `sciauth token --write-discovery --watch`: keeps the WLCG bearer token file fresh until
//! killed, for jobs that outlive a token (HTCondor jobs, xrootd/gfal/davix transfers,
//! notebooks), as htgettoken with condor credmon does.
//!
//! The token is renewed on the token manager's refresh-ahead schedule
//! ([`TokenManager::get_fresh`](sciauth::tokens::TokenManager::get_fresh)) and the file
//! rewritten atomically (0600, renamed into place), with one line on stderr per renewal.
//! A provider that cannot be reached (or answers 5xx) is asked again with a backoff of 1 s
//! doubling to a minute, while the token in the file is used as long as it is valid (and
//! the attempts go on after it expired: the provider may come back). Anything else (the
//! refresh token refused, the client's credentials refused, the store unreadable) ends the
//! command with its exit code and a message saying the file is no longer renewed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use sciauth::credentials::secrecy::{ExposeSecret as _, SecretString};
use sciauth::credentials::text::printable;
use sciauth::{BearerTokenDiscovery, write_bearer_token_file};

use crate::cli::TokenArgs;
use crate::context::{Context, token_request};
use crate::failure::{CliResult, Failure};
use crate::output::{duration, rfc3339};

/// The first wait after a failed renewal; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between attempts while the provider is down.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The shortest wait between renewals, for a provider whose tokens are due as soon as they
/// are issued (shorter-lived than --min-valid).
const MIN_RENEWAL_INTERVAL: Duration = Duration::from_secs(5);
/// Sleeps are cut into pieces this long and the wall clock looked at after each, so that a
/// machine that was suspended renews on waking instead of after the time it slept.
const CLOCK_CHECK: Duration = Duration::from_secs(30);

// tidy: long, the renewal loop with its outage backoff and wall-clock checks in one place
pub(crate) async fn run(context: &Context, args: TokenArgs) -> CliResult {
    let (name, profile, client) = context.oidc_target(
        "--watch keeps a WLCG bearer token fresh, which needs an oidc profile; a Rucio \
             token is not a bearer token for storage",
    )?;
    let path = BearerTokenDiscovery::from_env().write_path();
    let min_valid = Duration::from_secs(args.min_valid);
    let request = token_request(
        &client,
        profile,
        &args.scopes,
        args.audience.as_deref(),
        min_valid,
    );
    let mut written: Option<(SecretString, Option<SystemTime>)> = None;
    let mut backoff = FIRST_BACKOFF;
    let mut warned_short = false;
    loop {
        match client.manager().get_fresh(&request).await {
            Ok((token, renew_at)) => {
                backoff = FIRST_BACKOFF;
                let changed = written.as_ref().is_none_or(|(old, _)| {
                    old.expose_secret() != token.access_token().expose_secret()
                });
                let now = SystemTime::now();
                if changed {
                    write(&path, token.access_token())?;
                    log(&format!(
                        "token {} {}, {}; next renewal at {}",
                        if written.is_some() {
                            "renewed in"
                        } else {
                            "written to"
                        },
                        path.display(),
                        valid_until(token.expires_at(), now),
                        rfc3339(renew_at.max(now))
                    ));
                    written = Some((token.access_token().clone(), token.expires_at()));
                }
                let mut wait = renew_at.duration_since(now).unwrap_or_default();
                if wait < MIN_RENEWAL_INTERVAL {
                    // Due as soon as issued: the provider's tokens live less than
                    // --min-valid needs. Renew at half their life, not in a loop.
                    let left = token
                        .expires_at()
                        .and_then(|at| at.duration_since(now).ok())
                        .unwrap_or_default();
                    wait = (left / 2).max(MIN_RENEWAL_INTERVAL);
                    if !warned_short {
                        warned_short = true;
                        log(&format!(
                            "warning: profile {name}: the provider's tokens live {}, less than \
                             --min-valid {} plus the margin for renewing ahead; renewing every {}",
                            duration(left),
                            duration(min_valid),
                            duration(wait)
                        ));
                    }
                }
                sleep_until(sciauth::credentials::time::later(now, wait)).await;
            }
            Err(error) if error.is_transient() => {
                let now = SystemTime::now();
                let file = match &written {
                    None => "no token is written yet".to_owned(),
                    Some((_, expires_at)) => format!(
                        "the token in {} is {}",
                        path.display(),
                        valid_until(*expires_at, now)
                    ),
                };
                log(&format!(
                    "cannot renew the token: {}; {file}; trying again in {}",
                    printable(&error.to_string(), 500),
                    duration(backoff)
                ));
                sleep_until(sciauth::credentials::time::later(now, backoff)).await;
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            }
            Err(error) => {
                let failure = Failure::from(error);
                let message = format!("{}: no longer renewed: {}", path.display(), failure.message);
                return Err(Failure { message, ..failure });
            }
        }
    }
}

fn write(path: &Path, token: &SecretString) -> CliResult {
    write_bearer_token_file(path, token).map_err(|e| {
        let failure = Failure::from(e);
        let message = format!("{}: no longer renewed: {}", path.display(), failure.message);
        Failure { message, ..failure }
    })
}

/// "valid until 2025-05-01T13:00:00Z (59m 50s left)", "expired at ...", "expiry unknown".
fn valid_until(expires_at: Option<SystemTime>, now: SystemTime) -> String {
    match expires_at {
        None => "of unknown expiry".to_owned(),
        Some(at) => match at.duration_since(now) {
            Ok(left) => format!("valid until {} ({} left)", rfc3339(at), duration(left)),
            Err(_) => format!("expired since {}", rfc3339(at)),
        },
    }
}

/// One line on stderr, stamped with the time.
fn log(line: &str) {
    eprintln!("sciauth: {} {line}", rfc3339(SystemTime::now()));
}

/// Sleeps until the wall clock reaches `at`.
async fn sleep_until(at: SystemTime) {
    while let Ok(left) = at.duration_since(SystemTime::now()) {
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(CLOCK_CHECK)).await;
    }
}
