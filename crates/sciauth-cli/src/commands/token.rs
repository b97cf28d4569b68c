//! `sciauth token`: a valid access token on stdout and nothing else, so that
//! `$(sciauth token)` works; refreshed first if it would not last `--min-valid` (for a robot
//! profile, a new one from the client credentials grant). `--watch` is `watch.rs`.
//!
//! The cached path ([`answer_now`]) reads the configuration and one store file, before any
//! async runtime exists: no thread, no OIDC discovery, no TLS client, no secret file. Only
//! when a grant must run does `main` start a (current-thread) runtime for [`run`].

use std::time::{Duration, SystemTime};

use crate::cli::TokenArgs;
use crate::context::{Context, Target, token_request};
use crate::failure::{CliResult, Failure};
use crate::output::{Printed, destination, duration};

/// The cached path, before any async runtime exists: the configuration, one store file, and
/// the token printed, or `None` when a grant must run (or an error must be reported by the
/// full path). No thread, no socket, no secret file.
pub(crate) fn answer_now(context: &Context, args: &TokenArgs) -> Option<CliResult> {
    if args.service.is_some() || args.watch {
        return None;
    }
    let destination = destination(args.json, args.write_discovery).ok()?;
    let Ok(Some(Target::Oidc {
        name,
        profile,
        client,
    })) = context.store_target()
    else {
        return None;
    };
    let min_valid = Duration::from_secs(args.min_valid);
    let request = token_request(
        &client,
        profile,
        &args.scopes,
        args.audience.as_deref(),
        min_valid,
    );
    let token = client.manager().get_now(&request)?;
    Some(
        Printed {
            token: token.access_token(),
            expires_at: token.expires_at(),
            scopes: token.scopes().iter().map(str::to_owned).collect(),
            audience: token.audience(),
            issuer: &profile.issuer,
            profile: name,
        }
        .emit(destination),
    )
}

pub(crate) async fn run(context: &Context, args: TokenArgs) -> CliResult {
    if let Some(service) = args.service.clone() {
        return super::service_token::run(context, args, &service).await;
    }
    if args.watch {
        return super::watch::run(context, args).await;
    }
    let destination = destination(args.json, args.write_discovery)?;
    match context.target()? {
        Target::Oidc {
            name,
            profile,
            client,
        } => {
            let min_valid = Duration::from_secs(args.min_valid);
            let request = token_request(
                &client,
                profile,
                &args.scopes,
                args.audience.as_deref(),
                min_valid,
            );
            let token = client.manager().get(&request).await?;
            if let Some(left) = token.expires_in(SystemTime::now())
                && left < min_valid
            {
                // The manager hands out the newest token rather than refresh forever.
                eprintln!(
                    "sciauth: warning: the provider's tokens live {}, less than --min-valid {}",
                    duration(left),
                    duration(min_valid)
                );
            }
            Printed {
                token: token.access_token(),
                expires_at: token.expires_at(),
                scopes: token.scopes().iter().map(str::to_owned).collect(),
                audience: token.audience(),
                issuer: &profile.issuer,
                profile: name,
            }
            .emit(destination)
        }
        Target::Rucio { name, client } => {
            if !args.scopes.is_empty() || args.audience.is_some() {
                return Err(Failure::config(format!(
                    "profile {name} is a Rucio profile: its tokens have no scopes or audience"
                )));
            }
            let token = client.token().await?;
            let info = client.info();
            Printed {
                token: &token,
                expires_at: info.expires_at,
                scopes: Vec::new(),
                audience: None,
                issuer: &info.auth_host,
                profile: name,
            }
            .emit(destination)
        }
    }
}
