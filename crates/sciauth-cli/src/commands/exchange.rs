//! `sciauth exchange`: trades an access token (the profile's, or one read from stdin) for
//! one with fewer scopes or for another audience, or for a refresh token that the
//! exchanging client keeps using on the user's behalf (FTS-style delegation): RFC 8693
//! token exchange. The exchanging client is the profile's own, or the one of the profile
//! its `exchange_client` names (FTS's client). The result is printed, not stored:
//! `sciauth token --audience` keeps per-audience tokens.

use std::time::{Duration, SystemTime};

use sciauth::credentials::secrecy::{ExposeSecret as _, SecretString};
use sciauth::tokens::token_type;
use serde_json::json;

use crate::cli::{ExchangeArgs, RequestedTokenType};
use crate::config::Profile;
use crate::context::{Context, native_client, split_scopes, token_request};
use crate::failure::{CliResult, Exit, Failure};
use crate::output::unix;

// tidy: long, one command from its options to its output, read top to bottom
pub(crate) async fn run(context: &Context, args: ExchangeArgs) -> CliResult {
    let (name, profile, client) =
        context.oidc_target("token exchange needs an oidc profile; this is a Rucio profile")?;
    let subject: SecretString = match args.subject_token.as_deref() {
        Some("-") => super::read_token_from_stdin()?,
        Some(_) => {
            return Err(Failure::config(
                "--subject-token takes only - (the token on stdin): a token on the command \
                 line is visible to every user of this machine",
            ));
        }
        None => client
            .manager()
            .get(&token_request(
                &client,
                profile,
                &[],
                None,
                Duration::from_secs(60),
            ))
            .await?
            .access_token()
            .clone(),
    };
    let (exchanger, exchanger_name) = match &profile.exchange_client {
        None => (client.oauth_client().await?, name),
        Some(other) => {
            let config = context.config()?;
            let (other_name, Profile::Oidc(other_profile)) = config.select(Some(other))? else {
                return Err(Failure::config(format!(
                    "profile {name}: exchange_client {other:?} is not an oidc profile"
                )));
            };
            if other_profile.issuer != profile.issuer {
                return Err(Failure::config(format!(
                    "profile {name}: exchange_client {other_name} is a client of {}, not of \
                     {}: a token is exchanged at the provider that issued it",
                    other_profile.issuer, profile.issuer
                )));
            }
            let other_client = native_client(config, other_name, other_profile)?;
            (other_client.oauth_client().await?, other_name)
        }
    };
    let mut exchange = exchanger.exchange(subject, token_type::ACCESS_TOKEN);
    let wants_refresh = args.requested_token_type == Some(RequestedTokenType::RefreshToken);
    match args.requested_token_type {
        Some(RequestedTokenType::RefreshToken) => {
            exchange = exchange.requested_token_type(token_type::REFRESH_TOKEN);
        }
        Some(RequestedTokenType::AccessToken) => {
            exchange = exchange.requested_token_type(token_type::ACCESS_TOKEN);
        }
        None => {}
    }
    let scopes = split_scopes(&args.scopes);
    if !scopes.is_empty() {
        exchange = exchange.scopes(scopes);
    }
    if let Some(audience) = &args.audience {
        exchange = exchange.audience(audience);
    }
    let token = exchange.send().await?;
    // RFC 8693 2.2.1: a refresh token comes as `refresh_token` beside an access token, or
    // (issued_token_type refresh_token) in `access_token` itself.
    let refresh_token = token.refresh_token().or_else(|| {
        (token.issued_token_type() == Some(token_type::REFRESH_TOKEN)).then(|| token.access_token())
    });
    if wants_refresh && refresh_token.is_none() {
        return Err(Failure::new(
            Exit::Refused,
            format!(
                "the provider exchanged the token but issued no refresh token to {}; it may \
                 not allow the client refresh tokens",
                exchanger.client_id()
            ),
        ));
    }
    if args.json {
        let now = SystemTime::now();
        let value = json!({
            "access_token": token.access_token().expose_secret(),
            "refresh_token": refresh_token.map(|t| t.expose_secret()),
            "issued_token_type": token.issued_token_type(),
            "token_type": token.token_type(),
            "expires_at": token.expires_at().map(unix),
            "expires_in": token.expires_at().map(|at| at.duration_since(now).map_or(0, |d| d.as_secs())),
            "scopes": token.scopes().iter().collect::<Vec<_>>(),
            "audience": token.audience().or(args.audience.as_deref()),
            "issuer": profile.issuer,
            "client_id": exchanger.client_id(),
            "profile": name,
            "exchange_client": exchanger_name,
        });
        println!("{value}");
    } else if let Some(refresh_token) = refresh_token.filter(|_| wants_refresh) {
        println!("{}", refresh_token.expose_secret());
    } else {
        println!("{}", token.access_token().expose_secret());
    }
    Ok(())
}
