//! Authorization server metadata: what OIDC discovery (or RFC 8414) says, or what the user
//! configured for a provider without discovery.

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::validate::{self, Invalid};

/// Where a provider's endpoints are and what it supports.
///
/// Usually filled in by discovery ([`Issuer::discover`](crate::Issuer::discover)); for a
/// provider without discovery, make one with [`ProviderMetadata::new`] and set the endpoints
/// it has:
///
/// ```
/// use sciauth_tokens::ProviderMetadata;
/// let mut metadata = ProviderMetadata::new(
///     "https://idp.example.org",
///     "https://idp.example.org/oauth/token".parse().unwrap(),
/// );
/// metadata.device_authorization_endpoint =
///     Some("https://idp.example.org/oauth/device".parse().unwrap());
/// ```
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer identifier, exactly as the provider spells it (compared character for
    /// character, trailing slash included).
    pub issuer: String,
    /// The authorization endpoint (code flow).
    #[serde(default)]
    pub authorization_endpoint: Option<Url>,
    /// The token endpoint. Every grant posts here.
    pub token_endpoint: Url,
    /// The device authorization endpoint (RFC 8628).
    #[serde(default)]
    pub device_authorization_endpoint: Option<Url>,
    /// The revocation endpoint (RFC 7009).
    #[serde(default)]
    pub revocation_endpoint: Option<Url>,
    /// The introspection endpoint (RFC 7662).
    #[serde(default)]
    pub introspection_endpoint: Option<Url>,
    /// The userinfo endpoint (OIDC).
    #[serde(default)]
    pub userinfo_endpoint: Option<Url>,
    /// Where the provider's signing keys are (needed to validate ID tokens).
    #[serde(default)]
    pub jwks_uri: Option<Url>,
    /// Scopes the provider advertises.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Grant types the provider advertises.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    /// PKCE methods the provider advertises.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Client authentication methods the token endpoint accepts.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// JWS algorithms the provider signs ID tokens with.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Whether the provider puts `iss` into authorization responses (RFC 9207). When true,
    /// a response without `iss` is refused.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// Every other field of the metadata document, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ProviderMetadata {
    /// Metadata for a provider without discovery: its issuer and token endpoint. Set the
    /// other endpoints it has on the result.
    pub fn new(issuer: impl Into<String>, token_endpoint: Url) -> Self {
        Self {
            issuer: issuer.into(),
            authorization_endpoint: None,
            token_endpoint,
            device_authorization_endpoint: None,
            revocation_endpoint: None,
            introspection_endpoint: None,
            userinfo_endpoint: None,
            jwks_uri: None,
            scopes_supported: Vec::new(),
            grant_types_supported: Vec::new(),
            code_challenge_methods_supported: Vec::new(),
            token_endpoint_auth_methods_supported: Vec::new(),
            id_token_signing_alg_values_supported: Vec::new(),
            authorization_response_iss_parameter_supported: false,
            other: Map::new(),
        }
    }
}

/// Checks that `issuer` can be an issuer identifier: an http(s) URL without query or
/// fragment (RFC 8414 2). Returns it parsed.
impl ProviderMetadata {
    /// Parses a discovery document (OIDC Discovery 3, RFC 8414 2): a JSON object with at least
    /// `issuer` and `token_endpoint`. Errors name the field, never quote the value.
    pub(crate) fn from_discovery(body: &[u8]) -> std::result::Result<Self, Invalid> {
        let metadata: Self = validate::typed(body)?;
        validate::text("issuer", metadata.issuer.clone(), 2048)?;
        Ok(metadata)
    }

    /// Every endpoint URL in the metadata, with its name.
    pub(crate) fn endpoints(&self) -> impl Iterator<Item = (&'static str, &Url)> {
        [
            (
                "authorization_endpoint",
                self.authorization_endpoint.as_ref(),
            ),
            ("token_endpoint", Some(&self.token_endpoint)),
            (
                "device_authorization_endpoint",
                self.device_authorization_endpoint.as_ref(),
            ),
            ("revocation_endpoint", self.revocation_endpoint.as_ref()),
            (
                "introspection_endpoint",
                self.introspection_endpoint.as_ref(),
            ),
            ("userinfo_endpoint", self.userinfo_endpoint.as_ref()),
            ("jwks_uri", self.jwks_uri.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, url)| url.map(|url| (name, url)))
    }
}

pub(crate) fn parse_issuer(issuer: &str) -> Result<Url> {
    let url = Url::parse(issuer).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("the issuer {issuer:?} is not a URL"),
        )
        .with_source(e)
    })?;
    if !matches!(url.scheme(), "https" | "http")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the issuer {issuer:?} must be an https (or http) URL without query or fragment"
            ),
        ));
    }
    Ok(url)
}

/// The discovery documents to try, in order.
///
/// 1. OIDC Discovery 1.0 section 4: the issuer with any trailing `/` removed, plus
///    `/.well-known/openid-configuration`. So `https://cilogon.org` and `https://cilogon.org/`
///    both find the document; the `issuer` inside must still equal the configured one.
/// 2. RFC 8414 section 3: `/.well-known/oauth-authorization-server` inserted between host and
///    path (the same as appending it for an issuer without a path).
pub(crate) fn discovery_urls(issuer: &Url) -> Vec<Url> {
    let mut urls = Vec::with_capacity(2);
    let path = issuer.path().trim_end_matches('/');
    let mut oidc = issuer.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    urls.push(oidc);
    let mut oauth = issuer.clone();
    oauth.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    urls.push(oauth);
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_follow_oidc_and_rfc8414() {
        let urls = |s: &str| -> Vec<String> {
            discovery_urls(&parse_issuer(s).unwrap())
                .into_iter()
                .map(String::from)
                .collect()
        };
        assert_eq!(
            urls("https://cilogon.org"),
            [
                "https://cilogon.org/.well-known/openid-configuration",
                "https://cilogon.org/.well-known/oauth-authorization-server"
            ]
        );
        assert_eq!(urls("https://cilogon.org/"), urls("https://cilogon.org"));
        assert_eq!(
            urls("https://kc.example.org/realms/wlcg/"),
            [
                "https://kc.example.org/realms/wlcg/.well-known/openid-configuration",
                "https://kc.example.org/.well-known/oauth-authorization-server/realms/wlcg"
            ]
        );
    }

    #[test]
    fn issuers_with_query_or_other_schemes_are_refused() {
        assert!(parse_issuer("https://idp.example.org?x=1").is_err());
        assert!(parse_issuer("ftp://idp.example.org").is_err());
        assert!(parse_issuer("idp.example.org").is_err());
    }
}
