//! OpenID Connect ID token validation (OIDC Core 3.1.3.7).

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::issuer::Issuer;

/// The claims of a validated ID token.
#[derive(Clone, Debug, Deserialize)]
pub struct IdTokenClaims {
    iss: String,
    sub: String,
    #[serde(deserialize_with = "one_or_many")]
    aud: Vec<String>,
    exp: u64,
    iat: u64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    auth_time: Option<u64>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl IdTokenClaims {
    /// `iss`: the issuer, equal to the configured one.
    pub fn issuer(&self) -> &str {
        &self.iss
    }
    /// `sub`: the user's identifier at this issuer.
    pub fn subject(&self) -> &str {
        &self.sub
    }
    /// `aud`: the clients the token is meant for (this client among them).
    pub fn audience(&self) -> &[String] {
        &self.aud
    }
    /// `exp`, as a time.
    pub fn expires_at(&self) -> SystemTime {
        sciauth_credentials::time::from_unix(self.exp)
    }
    /// `iat`, as a time.
    pub fn issued_at(&self) -> SystemTime {
        sciauth_credentials::time::from_unix(self.iat)
    }
    /// `nonce`, if the token has one.
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }
    /// `azp`, the authorized party, if present.
    pub fn authorized_party(&self) -> Option<&str> {
        self.azp.as_deref()
    }
    /// `auth_time`, when the user authenticated, if present.
    pub fn auth_time(&self) -> Option<SystemTime> {
        self.auth_time.map(sciauth_credentials::time::from_unix)
    }
    /// Every other claim (`email`, `name`, `preferred_username`, `eduperson_*`, ...).
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
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidIdToken, message)
}

/// What the ID token must satisfy beyond its signature.
pub(crate) struct Expectations<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) now: SystemTime,
    pub(crate) leeway: Duration,
}

/// Validates `token`: signature by a key from the issuer's JWKS, with the algorithm that key
/// is for (never `none`, never HMAC); then `iss`, `aud`/`azp`, `exp` (with `leeway`), `iat`,
/// and `nonce` when one was sent.
pub(crate) async fn validate(
    issuer: &Issuer,
    token: &str,
    expect: Expectations<'_>,
) -> Result<IdTokenClaims> {
    let alg = header_algorithm(token, "ID token").map_err(invalid)?;
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| invalid("the ID token's header is malformed").with_source(e))?;
    let key = issuer.signing_key(header.kid.as_deref(), alg).await?;
    let mut validation = Validation::new(alg);
    // Time and audience are checked below, against the injectable clock and with azp.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<IdTokenClaims>(token, &key, &validation)
        .map_err(|e| {
            invalid(
                "the ID token's signature does not verify with the provider's key, or its \
                 claims are malformed",
            )
            .with_source(e)
        })?
        .claims;

    if claims.iss != issuer.issuer() {
        return Err(invalid(format!(
            "the ID token was issued by {:?}, not by the configured issuer {:?}",
            claims.iss,
            issuer.issuer()
        )));
    }
    if !claims.aud.iter().any(|a| a == expect.client_id) {
        return Err(invalid(format!(
            "the ID token is for {:?}, not for this client {:?}",
            claims.aud, expect.client_id
        )));
    }
    match claims.azp.as_deref() {
        Some(azp) if azp != expect.client_id => {
            return Err(invalid(format!(
                "the ID token's authorized party (azp) is {azp:?}, not this client"
            )));
        }
        None if claims.aud.len() > 1 => {
            return Err(invalid(
                "the ID token has several audiences but no authorized party (azp)",
            ));
        }
        _ => {}
    }
    let now = sciauth_credentials::time::unix_seconds(expect.now);
    let leeway = expect.leeway.as_secs();
    if now >= claims.exp.saturating_add(leeway) {
        return Err(invalid(format!(
            "the ID token expired {} s ago (allowed clock skew {leeway} s)",
            now - claims.exp
        )));
    }
    if claims.iat > now.saturating_add(leeway) {
        return Err(invalid(format!(
            "the ID token was issued {} s in the future; check this machine's clock",
            claims.iat - now
        )));
    }
    if let Some(expected) = expect.nonce
        && claims.nonce.as_deref() != Some(expected)
    {
        return Err(invalid(
            "the ID token's nonce is not the one this login sent (a replayed or injected token)",
        ));
    }
    Ok(claims)
}

/// The header's `alg`, read before anything else so that `none` and HMAC are refused with a
/// clear message (jsonwebtoken would only say it cannot parse them). `what` names the token
/// in the message ("ID token", "access token").
pub(crate) fn header_algorithm(token: &str, what: &str) -> std::result::Result<Algorithm, String> {
    let header = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .ok_or_else(|| format!("the {what} is not a JWT"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    match alg {
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "PS256" => Ok(Algorithm::PS256),
        "PS384" => Ok(Algorithm::PS384),
        "PS512" => Ok(Algorithm::PS512),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        "EdDSA" => Ok(Algorithm::EdDSA),
        "none" | "" => Err(format!(
            "the {what} is unsigned (alg none); unsigned tokens are refused"
        )),
        other => Err(format!(
            "the {what} is signed with {other:?}, which is not accepted (RS*, PS*, ES256, \
             ES384, EdDSA are)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        )
    }

    #[test]
    fn alg_none_and_hmac_are_refused_before_any_key_lookup() {
        let none = header_algorithm(&jwt(r#"{"alg":"none"}"#), "ID token").unwrap_err();
        assert!(none.contains("alg none"), "{none}");
        let hmac = header_algorithm(&jwt(r#"{"alg":"HS256"}"#), "ID token").unwrap_err();
        assert!(hmac.contains("HS256"), "{hmac}");
        assert_eq!(
            header_algorithm(&jwt(r#"{"alg":"RS256","kid":"k"}"#), "ID token").unwrap(),
            Algorithm::RS256
        );
        assert!(header_algorithm("not a jwt", "ID token").is_err());
    }
}
