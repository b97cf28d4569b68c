//! `sciauth check`: how well the profile's identity provider fits what sciauth (and WLCG
//! storage, FTS, Rucio) expect, one line per check with pass, warn, fail or skip, as FTS's
//! `fts-token-compliance` does: discovery and issuer, JWKS, grants, PKCE, the access token
//! (JWT or opaque, its audience), refresh-token rotation, token exchange, revocation and
//! introspection. Exit code 1 when a check fails, else 0.
//!
//! The token checks use the profile's own token: a robot profile gets one; a login profile
//! needs a stored login (else they are skipped, saying so), and the rotation check refreshes
//! it once. Everything the provider says is escaped before it is shown.

use std::time::Duration;

use sciauth::NativeClient;
use sciauth::credentials::secrecy::{ExposeSecret as _, SecretString};
use sciauth::credentials::text::printable;
use sciauth::tokens::{ErrorKind, Issuer, ProviderMetadata, StoredGrant, TokenRequest};
use serde_json::{Value, json};

use super::inspect::Decoded;
use crate::cli::CheckArgs;
use crate::config::{LoginFlow, OidcProfile};
use crate::context::{Context, token_request};
use crate::failure::{CliResult, Exit, Failure};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// The results so far.
#[derive(Default)]
struct Report {
    lines: Vec<(&'static str, Status, String)>,
}

impl Report {
    fn add(&mut self, check: &'static str, status: Status, detail: impl Into<String>) {
        // The details carry the provider's words: escaped, one line.
        self.lines
            .push((check, status, printable(&detail.into(), 1000)));
    }

    fn failed(&self) -> bool {
        self.lines
            .iter()
            .any(|(_, status, _)| *status == Status::Fail)
    }
}

pub(crate) async fn run(context: &Context, args: CheckArgs) -> CliResult {
    let (name, profile, client) = context.oidc_target(
        "sciauth check checks an OAuth 2.0 / OIDC provider; this is a Rucio profile",
    )?;
    let mut report = Report::default();
    check_provider(&mut report, name, profile, &client).await;
    if args.json {
        let lines: Vec<Value> = report
            .lines
            .iter()
            .map(|(check, status, detail)| {
                json!({"check": check, "status": status.as_str(), "detail": detail})
            })
            .collect();
        println!(
            "{}",
            json!({"profile": name, "issuer": profile.issuer, "checks": lines, "ok": !report.failed()})
        );
    } else {
        println!(
            "Checking {} (profile {name}):",
            printable(&profile.issuer, 500)
        );
        let width = report
            .lines
            .iter()
            .map(|(check, _, _)| check.len())
            .max()
            .unwrap_or(0);
        for (check, status, detail) in &report.lines {
            println!("{:<4}  {check:<width$}  {detail}", status.as_str());
        }
    }
    if report.failed() {
        let failed = report
            .lines
            .iter()
            .filter(|(_, status, _)| *status == Status::Fail)
            .count();
        return Err(Failure::new(
            Exit::Failure,
            format!("{failed} check(s) of {} failed", profile.issuer),
        ));
    }
    Ok(())
}

// tidy: long, the provider checks in the order they are reported, one line each
async fn check_provider(
    report: &mut Report,
    name: &str,
    profile: &OidcProfile,
    client: &NativeClient,
) {
    // Discovery with an issuer of its own: the checks before the token ones need no client
    // authentication (no secret or key is read for them).
    let issuer = match Issuer::builder(&profile.issuer).build().await {
        Ok(issuer) => issuer,
        Err(e) => {
            report.add("discovery", Status::Fail, e.to_string());
            report.add(
                "remaining checks",
                Status::Skip,
                "they need the provider's metadata",
            );
            return;
        }
    };
    let metadata = issuer.metadata();
    let cleartext = sciauth::tokens::url::Url::parse(&profile.issuer)
        .is_ok_and(|url| sciauth::tokens::is_cleartext_remote(&url));
    report.add(
        "discovery",
        if cleartext {
            Status::Warn
        } else {
            Status::Pass
        },
        format!(
            "the discovery document names the issuer {} exactly{}",
            metadata.issuer,
            if cleartext {
                "; but over plain http:// to another host, where tokens can be read on the way"
            } else {
                ""
            }
        ),
    );
    check_jwks(report, &issuer).await;
    check_grants(report, profile, metadata);
    check_pkce(report, profile, metadata);

    // The token checks: the profile's own token, through its client.
    let request = token_request(client, profile, &[], None, Duration::from_secs(10));
    let token = match client.manager().get(&request).await {
        Ok(token) => Some(token),
        Err(e) => {
            let (status, why) = if e.needs_login() {
                (
                    Status::Skip,
                    format!("no usable token: log in first (sciauth --profile {name} login): {e}"),
                )
            } else {
                (Status::Fail, format!("cannot get a token: {e}"))
            };
            report.add("access token", status, why);
            None
        }
    };
    let jwt_claims = token
        .as_ref()
        .and_then(|token| check_access_token(report, token.access_token(), &issuer));
    if let Some(token) = &token {
        check_audience(
            report,
            profile,
            jwt_claims.as_ref(),
            &issuer,
            token.access_token(),
        )
        .await;
        check_rotation(report, profile, client, &request).await;
    } else {
        for check in ["audience", "refresh rotation"] {
            report.add(check, Status::Skip, "no token to check");
        }
    }
    report.add(
        "token exchange",
        if metadata
            .grant_types_supported
            .iter()
            .any(|g| g == TOKEN_EXCHANGE)
        {
            Status::Pass
        } else {
            Status::Warn
        },
        if metadata
            .grant_types_supported
            .iter()
            .any(|g| g == TOKEN_EXCHANGE)
        {
            "RFC 8693 token exchange is advertised (sciauth exchange, FTS delegation)".to_owned()
        } else {
            "token exchange is not advertised: sciauth exchange and FTS delegation will not work"
                .to_owned()
        },
    );
    match &metadata.revocation_endpoint {
        Some(url) => report.add(
            "revocation",
            Status::Pass,
            format!("revocation endpoint {url} (sciauth logout revokes there)"),
        ),
        None => report.add(
            "revocation",
            Status::Warn,
            "no revocation endpoint: sciauth logout can only forget tokens, which stay valid \
             until they expire",
        ),
    }
    check_introspection(
        report,
        metadata,
        client,
        token.as_ref().map(|t| t.access_token()),
    )
    .await;
}

async fn check_jwks(report: &mut Report, issuer: &Issuer) {
    match issuer.signing_keys().await {
        Ok(keys) if keys.is_empty() => report.add(
            "jwks",
            Status::Fail,
            "the JWKS has no usable signing key: no token of this provider can be verified",
        ),
        Ok(keys) => {
            let listed: Vec<String> = keys
                .iter()
                .map(|key| {
                    format!(
                        "{} ({})",
                        key.kid.as_deref().unwrap_or("no kid"),
                        key.alg.as_deref().unwrap_or("alg unspecified")
                    )
                })
                .collect();
            report.add(
                "jwks",
                Status::Pass,
                format!("{} signing key(s): {}", keys.len(), listed.join(", ")),
            );
        }
        Err(e) => report.add("jwks", Status::Fail, e.to_string()),
    }
}

fn check_grants(report: &mut Report, profile: &OidcProfile, metadata: &ProviderMetadata) {
    let advertised = &metadata.grant_types_supported;
    if advertised.is_empty() {
        report.add(
            "grants",
            Status::Warn,
            "grant_types_supported is not advertised (RFC 8414 then means authorization_code \
             and implicit only)",
        );
        return;
    }
    let has = |grant: &str| advertised.iter().any(|g| g == grant);
    let needed: Vec<&str> = if profile.is_robot() {
        vec!["client_credentials"]
    } else {
        let login = match profile.login {
            Some(LoginFlow::Device) => DEVICE_CODE,
            Some(LoginFlow::Browser) => "authorization_code",
            None if has(DEVICE_CODE) => DEVICE_CODE,
            None => "authorization_code",
        };
        vec![login, "refresh_token"]
    };
    let missing: Vec<&str> = needed.iter().copied().filter(|g| !has(g)).collect();
    let shown: Vec<String> = advertised.iter().map(|g| short_grant(g)).collect();
    if missing.is_empty() {
        report.add(
            "grants",
            Status::Pass,
            format!("advertised: {}", shown.join(", ")),
        );
    } else {
        let missing: Vec<String> = missing.iter().map(|g| short_grant(g)).collect();
        report.add(
            "grants",
            Status::Fail,
            format!(
                "the profile needs {}, which is not advertised (advertised: {})",
                missing.join(", "),
                shown.join(", ")
            ),
        );
    }
}

/// `device_code` for the device grant's URN, and so on.
fn short_grant(grant: &str) -> String {
    grant
        .strip_prefix("urn:ietf:params:oauth:grant-type:")
        .unwrap_or(grant)
        .to_owned()
}

fn check_pkce(report: &mut Report, profile: &OidcProfile, metadata: &ProviderMetadata) {
    if profile.is_robot() {
        report.add(
            "pkce",
            Status::Skip,
            "a robot account uses no browser login",
        );
        return;
    }
    let methods = &metadata.code_challenge_methods_supported;
    if methods.iter().any(|m| m == "S256") {
        report.add(
            "pkce",
            Status::Pass,
            format!("S256 is offered ({})", methods.join(", ")),
        );
    } else if methods.is_empty() {
        report.add(
            "pkce",
            Status::Warn,
            "code_challenge_methods_supported is not advertised; sciauth sends S256 anyway",
        );
    } else {
        report.add(
            "pkce",
            Status::Fail,
            format!(
                "S256 is not offered (only {}): the browser login's PKCE will be refused",
                methods.join(", ")
            ),
        );
    }
}

/// The token's kind; its claims when it is a JWT.
fn check_access_token(
    report: &mut Report,
    token: &SecretString,
    issuer: &Issuer,
) -> Option<serde_json::Map<String, Value>> {
    let Ok(decoded) = Decoded::parse(token.expose_secret()) else {
        report.add(
            "access token",
            Status::Warn,
            "opaque: resource servers must introspect it; WLCG storage and FTS expect JWT \
             access tokens",
        );
        return None;
    };
    let text = |map: &serde_json::Map<String, Value>, key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_owned()
    };
    let typ = text(&decoded.header, "typ");
    let alg = text(&decoded.header, "alg");
    let iss = text(&decoded.claims, "iss");
    let mut problems = Vec::new();
    if iss != issuer.issuer() {
        problems.push(format!("its iss is {iss}, not the issuer"));
    }
    if !decoded.claims.contains_key("exp") {
        problems.push("it has no exp".to_owned());
    }
    let status = if !problems.is_empty() {
        Status::Fail
    } else if typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt") {
        Status::Pass
    } else {
        problems.push(format!(
            "typed {typ}, not at+jwt (RFC 9068): verifiers must accept plain JWTs for it \
             (sciauth inspect --verify --plain-jwt)"
        ));
        Status::Warn
    };
    report.add(
        "access token",
        status,
        if problems.is_empty() {
            format!("JWT (typ {typ}, alg {alg})")
        } else {
            format!("JWT (typ {typ}, alg {alg}): {}", problems.join("; "))
        },
    );
    Some(decoded.claims)
}

async fn check_audience(
    report: &mut Report,
    profile: &OidcProfile,
    claims: Option<&serde_json::Map<String, Value>>,
    issuer: &Issuer,
    token: &SecretString,
) {
    let Some(wanted) = &profile.audience else {
        report.add("audience", Status::Skip, "the profile asks for no audience");
        return;
    };
    let Some(claims) = claims else {
        report.add(
            "audience",
            Status::Skip,
            "an opaque token shows no aud; introspection may",
        );
        return;
    };
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !aud.contains(&wanted.as_str()) {
        report.add(
            "audience",
            Status::Fail,
            format!(
                "asked for {wanted}, the token's aud is {}",
                if aud.is_empty() {
                    "missing".to_owned()
                } else {
                    aud.join(", ")
                }
            ),
        );
        return;
    }
    // The provider's own keys must verify the token for that audience.
    let plain_jwt = Issuer::builder(issuer.issuer())
        .metadata(issuer.metadata().clone())
        .plain_jwt_access_tokens(true)
        .build()
        .await;
    let verified = match plain_jwt {
        Ok(verifier) => verifier
            .validate_access_token(token.expose_secret(), wanted)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match verified {
        Ok(()) => report.add(
            "audience",
            Status::Pass,
            format!(
                "aud is {} as asked, and the signature verifies",
                aud.join(", ")
            ),
        ),
        Err(e) => report.add(
            "audience",
            Status::Fail,
            format!("aud is as asked, but the token does not verify: {e}"),
        ),
    }
}

async fn check_rotation(
    report: &mut Report,
    profile: &OidcProfile,
    client: &NativeClient,
    request: &TokenRequest,
) {
    if profile.is_robot() {
        report.add(
            "refresh rotation",
            Status::Skip,
            "a robot account has no refresh token (it asks again with its credentials)",
        );
        return;
    }
    let refresh_token = |grant: &Option<StoredGrant>| {
        grant
            .as_ref()
            .and_then(StoredGrant::refresh_token)
            .map(|t| t.expose_secret().to_owned())
    };
    let before = match client.manager().stored(request).await {
        Ok(grant) => refresh_token(&grant),
        Err(e) => {
            report.add("refresh rotation", Status::Fail, e.to_string());
            return;
        }
    };
    if before.is_none() {
        report.add(
            "refresh rotation",
            Status::Warn,
            "the login gave no refresh token (ask for offline_access): tokens end with the \
             first access token",
        );
        return;
    }
    if let Err(e) = client.manager().refresh(request).await {
        report.add(
            "refresh rotation",
            Status::Fail,
            format!("a refresh failed: {e}"),
        );
        return;
    }
    let after = match client.manager().stored(request).await {
        Ok(grant) => refresh_token(&grant),
        Err(e) => {
            report.add("refresh rotation", Status::Fail, e.to_string());
            return;
        }
    };
    if after != before {
        report.add(
            "refresh rotation",
            Status::Pass,
            "a refresh issues a new refresh token (rotation; sciauth keeps the newest)",
        );
    } else {
        report.add(
            "refresh rotation",
            Status::Warn,
            "refresh tokens are not rotated: a stolen one stays usable until it expires",
        );
    }
}

async fn check_introspection(
    report: &mut Report,
    metadata: &ProviderMetadata,
    client: &NativeClient,
    token: Option<&SecretString>,
) {
    let Some(url) = &metadata.introspection_endpoint else {
        report.add(
            "introspection",
            Status::Warn,
            "no introspection endpoint: services cannot check opaque tokens",
        );
        return;
    };
    let Some(token) = token else {
        report.add(
            "introspection",
            Status::Pass,
            format!("introspection endpoint {url} (no token to try it with)"),
        );
        return;
    };
    let oauth = match client.oauth_client().await {
        Ok(oauth) => oauth,
        Err(e) => {
            report.add("introspection", Status::Fail, e.to_string());
            return;
        }
    };
    match oauth.introspect(token, None).await {
        Ok(answer) if answer.active() => report.add(
            "introspection",
            Status::Pass,
            format!("{url} says the token is active"),
        ),
        Ok(_) => report.add(
            "introspection",
            Status::Warn,
            format!("{url} says the token is not active (not this client's to introspect?)"),
        ),
        Err(e) if e.kind() == &ErrorKind::InvalidInput => {
            report.add("introspection", Status::Fail, e.to_string());
        }
        Err(e) => report.add(
            "introspection",
            Status::Warn,
            format!("{url} did not introspect the token: {e}"),
        ),
    }
}
