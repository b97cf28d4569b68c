//! `sciauth token --service URL`: a token from the sciauth token service (`sciauth serve`),
//! for a user (`--user`) or a group (client credentials), printed like `sciauth token`.

use std::time::{Duration, SystemTime};

use sciauth::credentials::BearerToken;
use sciauth::credentials::time::later;
use sciauth::service::GetTokenRequest;
use sciauth::service::TokenServiceClient;

use crate::cli::TokenArgs;
use crate::context::{Context, Target, split_scopes, token_request};
use crate::failure::{CliResult, Failure};
use crate::output::{Printed, destination};

/// The variable whose bearer token authenticates the call instead of the profile's token
/// (for services and pilots without a profile).
const BEARER_VARIABLE: &str = "SCIAUTH_SERVICE_BEARER";

pub(crate) async fn run(context: &Context, args: TokenArgs, service: &str) -> CliResult {
    let destination = destination(args.json, args.write_discovery)?;
    let builder = TokenServiceClient::builder(service);
    let builder = match std::env::var(BEARER_VARIABLE) {
        Ok(bearer) => builder.credential(BearerToken::new(bearer.trim())?),
        Err(_) => match context.target()? {
            Target::Oidc {
                client, profile, ..
            } => {
                let request = token_request(&client, profile, &[], None, Duration::from_secs(60));
                builder.credential(client.manager().credential(request))
            }
            Target::Rucio { name, .. } => {
                return Err(Failure::config(format!(
                    "profile {name} is a Rucio profile, which cannot call the token service"
                ))
                .hint(format!(
                    "use an OIDC profile, or set {BEARER_VARIABLE} to a bearer token"
                )));
            }
        },
    };
    let client = builder.build()?;
    let request = GetTokenRequest {
        username: args.user.clone(),
        group: args.group.clone(),
        scope: split_scopes(&args.scopes),
        audience: args.audience.clone(),
        identity_provider: args.provider.clone(),
        required_time_left: args.min_valid,
    };
    let received = SystemTime::now();
    let token = client.get_token(&request).await?;
    Printed {
        token: &token.access_token,
        expires_at: token
            .expires_in
            .map(|seconds| later(received, Duration::from_secs(seconds))),
        scopes: split_scopes(std::slice::from_ref(&token.scope)),
        audience: token.audience.as_deref(),
        issuer: &token.issuer,
        profile: &token.provider,
    }
    .emit(destination)
}
