//! `sciauth inspect [TOKEN | -]`: what a JWT says about itself (header, claims, times as
//! dates, lifetime left), unverified unless `--verify` checks it against the profile's
//! issuer (JWKS, `iss`, `aud`, times).
//!
//! A token is untrusted input: whoever made it chose every byte of its header and claims,
//! names included. Every name and value shown, in the table and in JSON, is escaped with
//! `printable` (control characters, bidirectional overrides, zero-width characters) and
//! bounded in length; nothing is interpreted beyond JSON.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use sciauth::credentials::secrecy::{ExposeSecret as _, SecretString};
use sciauth::credentials::text::printable;
use sciauth::tokens::{ErrorKind, Issuer};
use serde_json::{Map, Value, json};

use crate::cli::InspectArgs;
use crate::context::{Context, Target, token_request};
use crate::failure::{CliResult, Exit, Failure};

use super::MAX_TOKEN;
use crate::output::{duration, relative, rfc3339, unix};

/// The most characters of one value shown.
const MAX_VALUE: usize = 2000;
/// Claims that are times (seconds since the epoch).
const TIME_CLAIMS: &[&str] = &["exp", "iat", "nbf", "auth_time", "updated_at"];

pub(crate) async fn run(context: &Context, args: InspectArgs) -> CliResult {
    let token = match args.token.as_deref() {
        Some("-") => super::read_token_from_stdin()?,
        Some(given) => SecretString::from(given.trim().to_owned()),
        None => profile_token(context).await?,
    };
    let decoded = Decoded::parse(token.expose_secret())?;
    let verification = if args.verify {
        Some(verify(context, &args, token.expose_secret()).await?)
    } else {
        None
    };
    let now = SystemTime::now();
    if args.json {
        println!("{}", decoded.json(verification.as_ref(), now));
    } else {
        decoded.print_table(verification.as_ref(), now);
    }
    match verification {
        Some(Verification::Invalid(reason)) => Err(Failure::new(
            Exit::Refused,
            format!("the token does not verify: {reason}"),
        )),
        _ => Ok(()),
    }
}

/// The profile's access token, as `sciauth token` would print it.
async fn profile_token(context: &Context) -> CliResult<SecretString> {
    let Target::Oidc {
        profile, client, ..
    } = context.target()?
    else {
        return Err(Failure::config(
            "a Rucio token is not a JWT; give a token (or - for stdin) to inspect",
        ));
    };
    let request = token_request(&client, profile, &[], None, Duration::from_secs(10));
    Ok(client.manager().get(&request).await?.access_token().clone())
}

/// A JWT's header and claims, as the token states them.
pub(crate) struct Decoded {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
}

impl Decoded {
    /// The header and claims of `token`, or why it has none to show (not a JWT, encrypted,
    /// not base64url or JSON objects).
    pub(crate) fn parse(token: &str) -> CliResult<Self> {
        if token.len() > MAX_TOKEN {
            return Err(Failure::config(format!(
                "the token is longer than {} KiB; no token is",
                MAX_TOKEN / 1024
            )));
        }
        let parts: Vec<&str> = token.split('.').collect();
        match parts.len() {
            3 => {}
            5 => {
                return Err(Failure::config(
                    "this is an encrypted JWT (JWE): only its recipient can read it",
                ));
            }
            _ => {
                return Err(Failure::config(
                    "this is not a JWT (three base64url parts separated by dots): an opaque \
                     token says nothing about itself; the provider's introspection endpoint \
                     knows what it is",
                ));
            }
        }
        let part = |index: usize, what: &str| -> CliResult<Map<String, Value>> {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[index].trim_end_matches('='))
                .map_err(|_| Failure::config(format!("the JWT's {what} is not base64url")))?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                // serde's message could quote the token's bytes: say where, not what.
                Ok(_) | Err(_) => Err(Failure::config(format!(
                    "the JWT's {what} is not a JSON object"
                ))),
            }
        };
        Ok(Self {
            header: part(0, "header")?,
            claims: part(1, "payload")?,
        })
    }

    fn time(&self, claim: &str) -> Option<SystemTime> {
        let seconds = match self.claims.get(claim)? {
            Value::Number(n) => n.as_u64().or_else(|| {
                // A float time (allowed by RFC 7519's NumericDate): whole seconds.
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f.min(u64::MAX as f64) as u64)
            })?,
            _ => return None,
        };
        Some(sciauth::credentials::time::from_unix(seconds))
    }

    fn lifetime(&self) -> Option<Duration> {
        let (issued, expires) = (self.time("iat")?, self.time("exp")?);
        expires.duration_since(issued).ok()
    }

    fn print_table(&self, verification: Option<&Verification>, now: SystemTime) {
        let mut rows: Vec<(String, String)> = vec![("header".to_owned(), String::new())];
        for (name, value) in &self.header {
            rows.push((format!("  {}", printable(name, 100)), shown(value)));
        }
        rows.push(("claims".to_owned(), String::new()));
        for (name, value) in &self.claims {
            let mut text = shown(value);
            if TIME_CLAIMS.contains(&name.as_str())
                && let Some(at) = self.time(name)
            {
                text = format!("{text}  {} ({})", rfc3339(at), relative(at, now));
            }
            rows.push((format!("  {}", printable(name, 100)), text));
        }
        let left = match self.time("exp") {
            None => "no exp: the token states no expiry".to_owned(),
            Some(exp) => match exp.duration_since(now) {
                Ok(left) => format!("{} left", duration(left)),
                Err(past) => format!("expired {} ago", duration(past.duration())),
            },
        };
        let life = self
            .lifetime()
            .map_or_else(String::new, |l| format!(" of {} (iat to exp)", duration(l)));
        rows.push(("lifetime".to_owned(), format!("{left}{life}")));
        rows.push((
            "signature".to_owned(),
            match verification {
                None => "not verified (--verify checks it against the profile's issuer)".to_owned(),
                Some(Verification::Valid { issuer, audience }) => format!(
                    "verified: signed by {issuer}'s key, for audience {}",
                    printable(audience, 500)
                ),
                Some(Verification::Invalid(reason)) => {
                    format!("NOT VALID: {}", printable(reason, MAX_VALUE))
                }
            },
        ));
        let width = rows
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        for (name, value) in rows {
            let line = format!("{name:<width$}  {value}");
            println!("{}", line.trim_end());
        }
    }

    fn json(&self, verification: Option<&Verification>, now: SystemTime) -> Value {
        let times: Map<String, Value> = TIME_CLAIMS
            .iter()
            .filter_map(|claim| {
                let at = self.time(claim)?;
                Some((
                    (*claim).to_owned(),
                    json!({"unix": unix(at), "utc": rfc3339(at)}),
                ))
            })
            .collect();
        let expires = self.time("exp");
        let (verified, verification_error) = match verification {
            None => (Value::Null, Value::Null),
            Some(Verification::Valid { .. }) => (Value::Bool(true), Value::Null),
            Some(Verification::Invalid(reason)) => (
                Value::Bool(false),
                Value::String(printable(reason, MAX_VALUE)),
            ),
        };
        json!({
            "header": escaped(&Value::Object(self.header.clone())),
            "claims": escaped(&Value::Object(self.claims.clone())),
            "times": times,
            "expires_in": expires.map(|at| at.duration_since(now).map_or(0, |d| d.as_secs())),
            "expired": expires.map(|at| at <= now),
            "lifetime": self.lifetime().map(|l| l.as_secs()),
            "verified": verified,
            "verification_error": verification_error,
        })
    }
}

/// A value for the table: a string as it is, anything else as compact JSON; escaped.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => printable(text, MAX_VALUE),
        other => printable(&escaped(other).to_string(), MAX_VALUE),
    }
}

/// `value` with every string in it (object keys too) escaped and bounded.
fn escaped(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(printable(text, MAX_VALUE)),
        Value::Array(items) => Value::Array(items.iter().map(escaped).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (printable(key, 200), escaped(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

enum Verification {
    Valid { issuer: String, audience: String },
    Invalid(String),
}

/// Checks the token against the profile's issuer: its JWKS, `iss`, the audience, the times.
/// A token that fails is [`Verification::Invalid`]; a provider that cannot be asked is an
/// error.
async fn verify(context: &Context, args: &InspectArgs, token: &str) -> CliResult<Verification> {
    let (_, profile) = context.selected()?;
    let crate::config::Profile::Oidc(profile) = profile else {
        return Err(Failure::config(
            "--verify checks a token against an oidc profile's issuer; this is a Rucio profile",
        ));
    };
    let Some(audience) = args.audience.as_ref().or(profile.audience.as_ref()) else {
        return Err(Failure::config(
            "--verify needs the audience the token is for: the profile names none; add \
             --audience",
        ));
    };
    // Only the issuer's keys are needed: no client, no secret.
    let issuer = Issuer::builder(&profile.issuer)
        .plain_jwt_access_tokens(args.plain_jwt)
        .build()
        .await?;
    match issuer.validate_access_token(token, audience).await {
        Ok(_) => Ok(Verification::Valid {
            issuer: profile.issuer.clone(),
            audience: audience.clone(),
        }),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidAccessToken
                    | ErrorKind::UnknownSigningKey
                    | ErrorKind::InvalidIdToken
            ) =>
        {
            Ok(Verification::Invalid(e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}
