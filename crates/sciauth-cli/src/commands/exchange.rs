//! `sciauth exchange`: trades the profile's access token for one with fewer scopes or for
//! another audience (RFC 8693 token exchange), to hand to a service. The result is printed,
//! not stored: `sciauth token --audience` keeps per-audience tokens.

use std::time::Duration;

use crate::cli::ExchangeArgs;
use crate::context::{Context, Target, split_scopes, token_request};
use crate::failure::{CliResult, Failure};
use crate::output::{Printed, destination};

pub(crate) async fn run(context: &Context, args: ExchangeArgs) -> CliResult {
    let destination = destination(args.json, false)?;
    let Target::Oidc {
        name,
        profile,
        client,
    } = context.target()?
    else {
        return Err(Failure::config(
            "token exchange needs an oidc profile; this is a Rucio profile",
        ));
    };
    let subject = client
        .manager()
        .get(&token_request(&client, &[], None, Duration::from_secs(60)))
        .await?;
    let mut exchange = client.oauth_client().await?.exchange_access_token(&subject);
    let scopes = split_scopes(&args.scopes);
    if !scopes.is_empty() {
        exchange = exchange.scopes(scopes);
    }
    if let Some(audience) = &args.audience {
        exchange = exchange.audience(audience);
    }
    let token = exchange.send().await?;
    Printed {
        token: token.access_token(),
        expires_at: token.expires_at(),
        scopes: token.scopes().iter().map(str::to_owned).collect(),
        audience: token.audience().or(args.audience.as_deref()),
        issuer: &profile.issuer,
        profile: name,
    }
    .emit(destination)
}
