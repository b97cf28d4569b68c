//! Validation of JWT access tokens (RFC 9068) by a resource server: a service that accepts
//! bearer tokens from its callers checks them against the issuer's JWKS.

use std::time::{Duration, SystemTime};

use jsonwebtoken::Validation;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::issuer::Issuer;

/// How much clock skew between the issuer and this machine a token's `exp`, `nbf` and `iat`
/// are allowed.
const LEEWAY: Duration = Duration::from_secs(30);

/// The claims of a validated JWT access token.
#[derive(Clone, Debug, Deserialize)]
pub struct AccessTokenClaims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    aud: Vec<String>,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl AccessTokenClaims {
    /// `iss`: the issuer, equal to the one that validated it.
    pub fn issuer(&self) -> &str {
        &self.iss
    }
    /// `sub`: the user, or for a client-credentials token usually the client.
    pub fn subject(&self) -> Option<&str> {
        self.sub.as_deref()
    }
    /// `aud`: the resource servers the token is for.
    pub fn audience(&self) -> &[String] {
        &self.aud
    }
    /// `exp`, as a time.
    pub fn expires_at(&self) -> SystemTime {
        sciauth_credentials::time::from_unix(self.exp)
    }
    /// `iat`, as a time, if present.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.iat.map(sciauth_credentials::time::from_unix)
    }
    /// `client_id` (RFC 9068): the client the token was issued to, if present.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    /// `scope`, split into scopes (empty when absent).
    pub fn scopes(&self) -> crate::Scopes {
        self.scope
            .as_deref()
            .map(crate::Scopes::parse)
            .unwrap_or_default()
    }
    /// Every other claim (`wlcg.groups`, `eduperson_entitlement`, `act`, ...).
    pub fn other(&self) -> &Map<String, Value> {
        &self.other
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidAccessToken, message)
}

impl Issuer {
    /// Validates a JWT access token presented to a resource server whose identifier is
    /// `audience`: the header's `typ` is `at+jwt` (RFC 9068 2.1, RFC 8725 3.11), the
    /// signature by a key from this issuer's JWKS with the algorithm that key is for (never
    /// `none`, never HMAC), `iss` equal to this issuer, `audience` among `aud`, `exp` (and
    /// `nbf`, `iat` when present) against this issuer's clock with 30 s of skew.
    ///
    /// The `typ` check keeps an ID token (`typ` `JWT`) issued to a client whose id equals
    /// `audience` from passing as an access token. Providers that send their access tokens
    /// as plain JWTs (typed `JWT`, or untyped: INDIGO IAM, Keycloak) need
    /// [`IssuerBuilder::plain_jwt_access_tokens`](crate::IssuerBuilder::plain_jwt_access_tokens);
    /// then `audience` must not be the client id of any client of that provider.
    ///
    /// Opaque (non-JWT) access tokens fail with [`ErrorKind::InvalidAccessToken`]; check
    /// those with [`OAuthClient::introspect`](crate::OAuthClient::introspect). The token
    /// never appears in an error.
    pub async fn validate_access_token(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<AccessTokenClaims> {
        let alg = crate::id_token::header_algorithm(token, "access token").map_err(invalid)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| invalid("the access token's header is malformed").with_source(e))?;
        check_type(
            header.typ.as_deref(),
            self.accepts_plain_jwt_access_tokens(),
        )?;
        let key = self
            .signing_key(header.kid.as_deref(), alg)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidIdToken => {
                    let message = e.to_string();
                    e.with_kind(ErrorKind::InvalidAccessToken, message)
                }
                _ => e,
            })?;
        let mut validation = Validation::new(alg);
        // Time and audience are checked below, against the injectable clock.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &validation)
            .map_err(|e| {
                invalid(
                    "the access token's signature does not verify with the issuer's key, or \
                     its claims are malformed (it needs iss and exp)",
                )
                .with_source(e)
            })?
            .claims;
        check_claims(&claims, self.issuer(), audience, self.clock().now())?;
        Ok(claims)
    }
}

/// Checks the header's `typ`: `at+jwt` (or its media type `application/at+jwt`, compared
/// without regard to case, RFC 7515 4.1.9), and with `plain_allowed` also `JWT` or none.
fn check_type(typ: Option<&str>, plain_allowed: bool) -> Result<()> {
    let typ_is = |name: &str| {
        typ.is_some_and(|t| {
            t.eq_ignore_ascii_case(name)
                || t.get(..12)
                    .is_some_and(|p| p.eq_ignore_ascii_case("application/"))
                    && t[12..].eq_ignore_ascii_case(name)
        })
    };
    if typ_is("at+jwt") || (plain_allowed && (typ.is_none() || typ_is("jwt"))) {
        return Ok(());
    }
    let shown = match typ {
        None => "no typ".to_owned(),
        Some(t) if t.len() <= 40 && t.bytes().all(|b| b.is_ascii_graphic()) => {
            format!("typ {t:?}")
        }
        Some(_) => "an unprintable typ".to_owned(),
    };
    Err(invalid(format!(
        "the token has {shown} in its header, not \"at+jwt\": it is not a JWT access token \
         (RFC 9068), perhaps an ID token. If this provider sends its access tokens as plain \
         JWTs, allow them with IssuerBuilder::plain_jwt_access_tokens (the token service: \
         [callers] plain_jwt_access_tokens = true)"
    )))
}

/// The checks after the signature: issuer, audience, time.
fn check_claims(
    claims: &AccessTokenClaims,
    issuer: &str,
    audience: &str,
    now: SystemTime,
) -> Result<()> {
    if claims.iss != issuer {
        return Err(invalid(format!(
            "the access token was issued by {:?}, not by {issuer:?}",
            claims.iss
        )));
    }
    if !claims.aud.iter().any(|a| a == audience) {
        return Err(invalid(format!(
            "the access token is for {:?}, not for {audience:?}",
            claims.aud
        )));
    }
    let now = sciauth_credentials::time::unix_seconds(now);
    let leeway = LEEWAY.as_secs();
    if now >= claims.exp.saturating_add(leeway) {
        return Err(invalid(format!(
            "the access token expired {} s ago",
            now - claims.exp
        )));
    }
    for (name, at) in [("nbf", claims.nbf), ("iat", claims.iat)] {
        if let Some(at) = at
            && at > now.saturating_add(leeway)
        {
            return Err(invalid(format!(
                "the access token's {name} is {} s in the future; check this machine's clock",
                at - now
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn only_access_token_types_pass() {
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/AT+JWT",
        ] {
            assert!(check_type(Some(typ), false).is_ok(), "{typ}");
            assert!(check_type(Some(typ), true).is_ok(), "{typ}");
        }
        for typ in [Some("JWT"), Some("jwt"), Some("application/jwt"), None] {
            let error = check_type(typ, false).unwrap_err();
            assert_eq!(error.kind(), &ErrorKind::InvalidAccessToken);
            assert!(
                error.to_string().contains("plain_jwt_access_tokens"),
                "{error}"
            );
            assert!(check_type(typ, true).is_ok(), "{typ:?}");
        }
        for typ in [
            "dpop+jwt",
            "logout+jwt",
            "at+jwt ",
            "application/",
            "x\u{1b}[31m",
            "\u{e9}",
        ] {
            let error = check_type(Some(typ), true).unwrap_err();
            assert!(!error.to_string().contains('\u{1b}'), "{error}");
        }
    }

    fn claims(value: Value) -> AccessTokenClaims {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn issuer_audience_and_time_are_checked() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let good = claims(serde_json::json!({
            "iss": "https://idp", "sub": "alice", "aud": ["https://svc", "other"],
            "exp": 1_700_000_100u64, "iat": 1_699_999_000u64, "scope": "a b"
        }));
        assert!(check_claims(&good, "https://idp", "https://svc", now).is_ok());
        assert_eq!(good.scopes().to_string(), "a b");
        let e = check_claims(&good, "https://elsewhere", "https://svc", now).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::InvalidAccessToken);
        assert!(e.to_string().contains("issued by"), "{e}");
        let e = check_claims(&good, "https://idp", "https://nope", now).unwrap_err();
        assert!(e.to_string().contains("not for"), "{e}");
        let later = now + Duration::from_secs(131);
        let e = check_claims(&good, "https://idp", "https://svc", later).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        // Within the skew allowance it is still valid.
        let skewed = now + Duration::from_secs(120);
        assert!(check_claims(&good, "https://idp", "https://svc", skewed).is_ok());
        let single = claims(serde_json::json!({
            "iss": "https://idp", "aud": "https://svc", "exp": 1_700_000_100u64,
            "nbf": 1_700_000_500u64
        }));
        let e = check_claims(&single, "https://idp", "https://svc", now).unwrap_err();
        assert!(e.to_string().contains("nbf"), "{e}");
        let none = claims(serde_json::json!({"iss": "https://idp", "exp": 1_700_000_100u64}));
        assert!(check_claims(&none, "https://idp", "https://svc", now).is_err());
    }
}
