//! Entry points for the fuzz targets (`crates/sciauth-fuzz`, `fuzz/`), behind the cargo
//! feature `fuzzing`; not an API.
//!
//! Each function takes the bytes an identity provider or a file could hold and runs them
//! through the same functions production parses them with, against a fixed issuer, client
//! and clock, with no network: an unknown signing key or a missing endpoint fails before any
//! request. Results are ignored; what counts is that nothing panics, hangs or misbehaves.
//! A few properties are asserted where the code promises them (a stored grant reads back as
//! it was written; an OAuth error description holds no control characters).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use sciauth_credentials::{Clock, ManualClock};
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

use crate::client::TokenRequest;
use crate::http::Answer;
use crate::issuer::check_issuer;
use crate::jwks::JwksCache;
use crate::mask::Secrets;
use crate::store::{GrantKey, StoredGrant};
use crate::validate::TokenRules;
use crate::{Issuer, OAuthClient, ProviderMetadata, Scopes, Token};

/// The issuer every target talks to.
const ISSUER: &str = "https://idp.example.org";
/// The client the targets are.
const CLIENT_ID: &str = "fuzz-client";
/// The audience access tokens are checked for.
const AUDIENCE: &str = "https://api.example.org";
/// The nonce ID tokens are checked for.
const NONCE: &str = "n-0S6_WzA2Mj";
/// The fixed time of the fixture's clock (2023-11-14), so that every run judges expiry alike.
const NOW: u64 = 1_700_000_000;

/// The issuer's signing keys: what its JWKS endpoint would answer.
const JWKS: &str = r#"{"keys": [{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": "uQPwczoRtdKOTaoQkqQOmQWBQklGwh51nM-1GiXfIboV5M8xX7LFLowJY_pRlqaT2PmI6O1KVtFYHdOJnThG0CsspMR8NnmNKG4WK7HfylrUxOgCua6OS2xJXoEARo1tfIumfipme_tu88fYX4WWYIhR2a-byIcp-NVg6yBcs4L5wlBISWOoodAbQFhJNSNdvNdSlBUB9NMmdGau0fxBxjSkKdFA2XPo557jF76Grst3j2QI9_BxbC75cyohbeD88hHFxGdkgaH6lB7F9bplrRgS8-j-70my4NK7YnHaUR1BJfQWe8DTqDJSLJOo-wilZh89Wej8pJy_Wpn4muBkPQ", "e": "AQAB"}, {"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256", "x": "abkKu3K9jKrveHbK1jdCQ9qxmWFonQcKlsQlWm75x-8", "y": "6tgpQhf14DHxofP86jxW1vuzdN2olr-fNPeXA_rx1n0"}, {"kty": "OKP", "kid": "ed-1", "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "x": "QV9SCb6ou-LytIeSMmdAVnb4dJLZu-j1b5-QOlRaJ2Y"}]}"#;

/// The private halves of [`JWKS`], made for these targets only (openssl genpkey), to sign
/// the header and claims a JWT target is given.
const RSA_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC5A/BzOhG10o5N
qhCSpA6ZBYFCSUbCHnWcz7UaJd8huhXkzzFfssUujAlj+lGWppPY+Yjo7UpW0Vgd
04mdOEbQKyykxHw2eY0obhYrsd/KWtTE6AK5ro5LbElegQBGjW18i6Z+KmZ7+27z
x9hfhZZgiFHZr5vIhyn41WDrIFyzgvnCUEhJY6ih0BtAWEk1I12811KUFQH00yZ0
Zq7R/EHGNKQp0UDZc+jnnuMXvoauy3ePZAj38HFsLvlzKiFt4PzyEcXEZ2SBofqU
HsX1umWtGBLz6P7vSbLg0rticdpRHUEl9BZ7wNOoMlIsk6j7CKVmHz1Z6PyknL9a
mfia4GQ9AgMBAAECggEAKsSf2SsDvAmbrpVQ9mzpGPNeUWHZ8vaSjnivLwexID1B
YV6J1crf7OYfJ5bONGp2Q9JPFTUBGbeTzHVBWvAO4oEQdVgcNIV9nWpxQpGAH2lG
xOuy8ZRJvWKfRTLByw1XUVKA3qpTfXZ+S+kW+eHKBK+OaClBdCXWjHhayo91DmOk
VFSyiBk0qlevej2oVA/xGSR0DbWkezQc47zC+vXPoMgOivlH25o5ONnUCOwy0wtH
u+7xJ62fj7mMY0NWXuMtYI+t3KRdRt0mwwt8wk+nCVwNXidZnGF7FrXEVGsjYWSb
KD4xzqevD5mAisj7cZ19PGZHdjA/z0aq+2ReDNzrqwKBgQDbvUiFFcx9J08SBqcc
r0wu6f2FXQcCjmvkCgrgisEWoYswX5gI+Bmt8cHc/RqKsj2+eSx8Pmi83UbmHepV
Z8agVC3E+VQRk+3I+OiBE7qVdS7o4c2Cc03eNJ7VU68aVqZk/ZL1lPwfUFwb44OC
LfCjaqnIXX83rZiAWYNRRTzIzwKBgQDXi8SeoPOzPybG703AfRUr4cVkx/iCIKD/
ycfMfeIyoKh7zsFWJaMMPnLuHN4AEmJmTp7QOy+GtRhAIil43R+49i7a7WRaN11T
gmJeTRoTZ9dXXxeUC4Y6WKBeKtIhdr4go/NKACH+/IAsF0Whcm1n0kk2FTMHDbPu
zd0vBggtMwKBgCuDlkLUiEQYbq4RJzKk/B8mMxAf1e2Jqo/j9Td2Arqqjterdn4A
M4WgpFVQwdrJZTS85jRMX41W/F1Be1AiVtEVGmMxRJaehq4PrGszLvW92OZBIOM+
ViM0pGd2ROygUB8bn+iF8k95KGRVb4tt8YNK8gg9i53JALQaBckoPts9AoGADDY1
+IrD49bjGog6TnqHtYnABjqyIKU6meNTt4k2RIoHoaQQHhJZz3rGRilKhpSEEKnJ
o6CGy8n8yr1kvh1BC9iexPaIJfhXCEEt04vou0q5z5BqpI+Wlj2pMEyaxRyWHwFK
6llhk7G4jUbwQfpaqnQmg7LlxjOHizMMofpkgjMCgYBNCh+Dx6g88UmV528xwPId
jxD07NblFfL71ff9DDWn/xENsSumyIut+whvZXxlVUQJ7ZMEe4v9gXnu9nuHIRwr
qcFDONpvScb5xfPgMFKIpb7wugEB79kH1CJnziphym8ecCplDQvC2hvfw+1/Pkpp
5F4KDa8ms2tS4d9u/jQnuA==
-----END PRIVATE KEY-----";
const EC_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgK9icCDvj0FQHTUi/
V53w62n8bNOa8+nSif9QkuiWrv6hRANCAARpuQq7cr2Mqu94dsrWN0JD2rGZYWid
BwqWxCVabvnH7+rYKUIX9eAx8aHz/Oo8Vtb7s3TdqJa/nzT3lwP68dZ9
-----END PRIVATE KEY-----";
const ED_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIA6cR66PntmN+yYVFAPQHJey+EOaDp2DtoybRVIKCmHb
-----END PRIVATE KEY-----";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    transport: sciauth_transport::Transport,
    issuer: Issuer,
    client: OAuthClient,
    rsa: EncodingKey,
    ec: EncodingKey,
    ed: EncodingKey,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_unix(NOW));
        let transport = crate::http::default_transport().expect("the transport");
        let metadata = ProviderMetadata {
            device_authorization_endpoint: Some(url("https://idp.example.org/device")),
            introspection_endpoint: Some(url("https://idp.example.org/introspect")),
            // No jwks_uri: the keys are installed below, and an unknown key fails without
            // a request.
            ..ProviderMetadata::new(ISSUER, url("https://idp.example.org/token"))
        };
        let issuer = runtime
            .block_on(
                Issuer::builder(ISSUER)
                    .metadata(metadata)
                    .transport(transport.clone())
                    .clock(clock.clone())
                    .jwks_max_age(Duration::MAX)
                    .jwks_refetch_interval(Duration::MAX)
                    .build(),
            )
            .expect("the fixed issuer");
        issuer
            .jwks()
            .install(JWKS.as_bytes(), &url("https://idp.example.org/jwks"))
            .expect("the fixed JWKS");
        let client = OAuthClient::builder(issuer.clone(), CLIENT_ID)
            .clock(clock)
            .build();
        Fixture {
            runtime,
            transport,
            issuer,
            client,
            rsa: EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).expect("the RSA key"),
            ec: EncodingKey::from_ec_pem(EC_KEY.as_bytes()).expect("the EC key"),
            ed: EncodingKey::from_ed_pem(ED_KEY.as_bytes()).expect("the Ed25519 key"),
        }
    })
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("a fixed URL")
}

fn now() -> SystemTime {
    fixture().client.now()
}

/// A token endpoint's answer: the grants' parser (`OAuthClient::parse_token`) and the one
/// for a response handed over (`OAuthClient::token_from_response`); then what callers and
/// the store do with the token.
pub fn token_response(data: &[u8]) {
    let fixture = fixture();
    let endpoint = fixture.issuer.metadata().token_endpoint.clone();
    let request = TokenRequest {
        grant: "refresh_token",
        requested_scopes: Scopes::parse("openid offline_access"),
        audience: Some(AUDIENCE.to_owned()),
        rules: TokenRules::default(),
    };
    if let Ok(token) = fixture.client.parse_token(data, &endpoint, &request) {
        use_token(&token);
    }
    if let Ok(token) = fixture.client.token_from_response(data) {
        use_token(&token);
    }
}

/// The client secret and refresh token of the request an error answers: the error must
/// not show them, however the server echoes them.
const CLIENT_SECRET: &str = "s3cr3t-Client";
const REFRESH_TOKEN: &str = "rt-Refresh-42";

/// An error answer of any OAuth endpoint (`Answer::error`, `OAuthError::from_body`), as a
/// 400 with JSON, a 401 without a content type, a redirect and an HTML 503. What the error
/// shows must be printable and must not hold the request's secrets.
pub fn oauth_error(data: &[u8]) {
    let endpoint = url("https://idp.example.org/token?client_id=fuzz");
    let mut secrets = Secrets::new();
    secrets.add(&SecretString::from(CLIENT_SECRET));
    secrets.add(&SecretString::from(REFRESH_TOKEN));
    secrets.add(&SecretString::from(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    )));
    let answers = [
        (400, Some("application/json"), None),
        (401, None, None),
        (302, None, Some("https://elsewhere.example.org/login")),
        (503, Some("text/html; charset=utf-8"), None),
    ];
    for (status, content_type, location) in answers {
        let answer = Answer {
            status,
            content_type: content_type.map(str::to_owned),
            location: location.map(str::to_owned),
            body: sciauth_transport::Bytes::copy_from_slice(data),
        };
        let error = answer.error("the token endpoint", &endpoint, &secrets);
        let shown = error.to_string();
        let debug = format!("{error:?}");
        assert!(
            sciauth_credentials::text::is_all_printable(&shown),
            "an OAuth error shows a character a terminal would obey"
        );
        for secret in [CLIENT_SECRET, REFRESH_TOKEN] {
            assert!(
                !shown.contains(secret) && !debug.contains(secret),
                "an OAuth error shows a secret of the request it answers"
            );
        }
        let _ = (error.kind(), error.status(), error.endpoint());
        let _ = (
            error.needs_login(),
            error.is_transient(),
            error.oauth_code(),
        );
        if let Some(oauth) = error.oauth_error() {
            for text in [oauth.description(), oauth.uri()].into_iter().flatten() {
                assert!(
                    !text.chars().any(char::is_control),
                    "an OAuth error text kept a control character"
                );
            }
            let _ = (oauth.code().as_str(), oauth.to_string());
        }
    }
}

/// A discovery document (`ProviderMetadata::from_discovery`, what `Issuer::discover`
/// reads), then the issuer built on it
/// (`IssuerBuilder::metadata`, which checks the issuer) and a client of it.
pub fn discovery(data: &[u8]) {
    let fixture = fixture();
    let Ok(metadata) = ProviderMetadata::from_discovery(data) else {
        return;
    };
    let _ = format!("{metadata:?}");
    if check_issuer(ISSUER, &metadata.issuer).is_err() {
        return;
    }
    let built = fixture.runtime.block_on(
        Issuer::builder(ISSUER)
            .metadata(metadata)
            .transport(fixture.transport.clone())
            .build(),
    );
    if let Ok(issuer) = built {
        let client = OAuthClient::builder(issuer, CLIENT_ID).build();
        let _ = format!("{client:?}");
    }
}

/// A JWKS document (`JwksCache::install`), then key lookups for tokens of every algorithm
/// family, with and without a key id (`JwksCache::key_for`; an unknown key fails without a
/// request, as the cache has no URI to fetch from).
pub fn jwks(data: &[u8]) {
    let fixture = fixture();
    let cache = JwksCache::new(None, Duration::MAX, Duration::MAX);
    if cache
        .install(data, &url("https://idp.example.org/jwks"))
        .is_err()
    {
        return;
    }
    let lookups = [
        (None, Algorithm::RS256),
        (Some("rsa-1"), Algorithm::RS256),
        (Some("rsa-1"), Algorithm::PS256),
        (None, Algorithm::ES256),
        (Some("ec-1"), Algorithm::ES256),
        (Some("ec-1"), Algorithm::ES384),
        (None, Algorithm::EdDSA),
        (Some("ed-1"), Algorithm::EdDSA),
        (Some(""), Algorithm::RS512),
    ];
    for (kid, alg) in lookups {
        let _ = fixture
            .runtime
            .block_on(cache.key_for(fixture.issuer.http(), kid, alg));
    }
}

/// A JWT, validated as an ID token (`OAuthClient::validate_id_token`) and as an access
/// token (`Issuer::validate_access_token`) against the fixed issuer and its JWKS.
///
/// `data` without a NUL byte is the compact JWT as it is. With one, it is `header NUL
/// claims`: both are base64url-encoded as they are (JSON or not) and signed with the
/// fixture's key for the header's `alg` (RSA for RS and PS, P-256 for ES, Ed25519 for
/// anything else), so that the claims checks behind the signature are reached.
pub fn jwt(data: &[u8]) {
    let fixture = fixture();
    let token = match data.iter().position(|&b| b == 0) {
        None => match std::str::from_utf8(data) {
            Ok(token) => token.to_owned(),
            Err(_) => return,
        },
        Some(split) => sign(&data[..split], &data[split + 1..]),
    };
    if let Ok(claims) = fixture
        .runtime
        .block_on(fixture.client.validate_id_token(&token, Some(NONCE)))
    {
        let _ = (claims.issuer(), claims.subject(), claims.audience());
        let _ = (claims.expires_at(), claims.issued_at(), claims.auth_time());
        let _ = (claims.nonce(), claims.authorized_party(), claims.other());
        let _ = format!("{claims:?}");
    }
    if let Ok(claims) = fixture
        .runtime
        .block_on(fixture.issuer.validate_access_token(&token, AUDIENCE))
    {
        let _ = (claims.issuer(), claims.subject(), claims.audience());
        let _ = (claims.expires_at(), claims.issued_at(), claims.client_id());
        let _ = (claims.scopes(), claims.other());
        let _ = format!("{claims:?}");
    }
}

/// `header.claims.signature`, signed with the fixture's key for the header's `alg`.
fn sign(header: &[u8], claims: &[u8]) -> String {
    let fixture = fixture();
    let alg = serde_json::from_slice::<Value>(header)
        .ok()
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let (key, alg) = match alg.as_str() {
        "RS256" => (&fixture.rsa, Algorithm::RS256),
        "RS384" => (&fixture.rsa, Algorithm::RS384),
        "RS512" => (&fixture.rsa, Algorithm::RS512),
        "PS256" => (&fixture.rsa, Algorithm::PS256),
        "PS384" => (&fixture.rsa, Algorithm::PS384),
        "PS512" => (&fixture.rsa, Algorithm::PS512),
        "ES256" | "ES384" => (&fixture.ec, Algorithm::ES256),
        _ => (&fixture.ed, Algorithm::EdDSA),
    };
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap_or_default();
    format!("{message}.{signature}")
}

/// A device authorization answer (`DeviceLogin::authorization`), and what is shown of it.
pub fn device_authorization(data: &[u8]) {
    let fixture = fixture();
    let endpoint = url("https://idp.example.org/device");
    let login = fixture
        .client
        .device_login()
        .scopes(["openid", "offline_access"]);
    if let Ok(authorization) = login.authorization(data, &endpoint, Some(AUDIENCE.to_owned())) {
        let _ = (authorization.user_code(), authorization.verification_uri());
        let _ = authorization.verification_uri_complete();
        let _ = (authorization.expires_at(), authorization.interval());
        let _ = format!("{authorization:?}");
    }
}

/// An introspection answer (`revocation::parse_introspection`), and every accessor.
pub fn introspection(data: &[u8]) {
    let endpoint = url("https://idp.example.org/introspect");
    if let Ok(answer) = crate::grant::revocation::parse_introspection(data, &endpoint) {
        let _ = (answer.active(), answer.scopes(), answer.client_id());
        let _ = (answer.username(), answer.token_type(), answer.subject());
        let _ = (answer.expires_at(), answer.issued_at(), answer.issuer());
        let _ = (answer.audience(), answer.other());
        let _ = format!("{answer:?}");
    }
}

/// A token store file (`store::file::parse`, what `FileStore` reads), the grants in it used
/// as the manager uses them, and written back: what was read must read back the same.
pub fn token_store_file(data: &[u8]) {
    let path = Path::new("/fuzz/tokens/alice.json");
    let Ok(grants) = crate::store::file::parse(path, data) else {
        return;
    };
    for grant in &grants {
        use_grant(grant);
    }
    let written = crate::store::file::encode(grants).expect("grants serialize");
    let read = crate::store::file::parse(path, &written).expect("a written file reads back");
    let again = crate::store::file::encode(read).expect("grants serialize");
    assert!(
        written == again,
        "a token store file changed on a round trip"
    );
}

/// A SQLite store row's JSON (`store::sqlite::parse`, what `SqliteStore` reads), used and
/// written back like a file's grants.
pub fn token_store_row(data: &[u8]) {
    let path = Path::new("/fuzz/tokens.sqlite");
    let key = GrantKey::new(ISSUER, CLIENT_ID, "alice");
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(grant) = crate::store::sqlite::parse(path, &key, json) else {
        return;
    };
    use_grant(&grant);
    let written = serde_json::to_string(&grant).expect("a grant serializes");
    let read = crate::store::sqlite::parse(path, &key, &written).expect("a row reads back");
    let again = serde_json::to_string(&read).expect("a grant serializes");
    assert!(written == again, "a stored grant changed on a round trip");
}

/// What the manager and listings do with a stored grant.
fn use_grant(grant: &StoredGrant) {
    let now = now();
    let _ = (
        grant.info(),
        grant.is_refreshable_at(now),
        format!("{grant:?}"),
    );
    let _ = (
        grant.refresh_expires_at(),
        grant.updated_at(),
        grant.scopes(),
    );
    for entry in grant.access_tokens() {
        let token = grant.token(entry);
        let _ = (
            token.lifetime(),
            token.expires_in(now),
            token.refresh_expires_at(),
        );
        let _ = token.is_expired_at(now, Duration::from_secs(60));
        let _ = entry.usable_until(crate::DEFAULT_UNKNOWN_LIFETIME);
    }
    // A refresh recorded into it, as the manager does.
    if let Some(entry) = grant.access_tokens().first() {
        let token = grant.token(entry);
        let mut updated = grant.clone();
        updated.record(
            &token,
            token.scopes().clone(),
            token.audience().map(str::to_owned),
            now,
            crate::DEFAULT_UNKNOWN_LIFETIME,
        );
    }
}

/// What callers and the store do with a token a grant returned.
fn use_token(token: &Token) {
    let now = now();
    let _ = (
        token.lifetime(),
        token.expires_in(now),
        token.refresh_expires_at(),
    );
    let _ = (
        token.is_expired_at(now, Duration::from_secs(60)),
        token.bearer_credential(),
    );
    let _ = (token.scopes().to_string(), format!("{token:?}"));
    let key = GrantKey::new(ISSUER, CLIENT_ID, "alice");
    let requested = Scopes::parse("openid offline_access");
    let grant =
        StoredGrant::from_token(key, token, &requested, token.audience().map(str::to_owned));
    use_grant(&grant);
    let written = serde_json::to_string(&grant).expect("a grant serializes");
    let read: StoredGrant = serde_json::from_str(&written).expect("a stored token reads back");
    let again = serde_json::to_string(&read).expect("a grant serializes");
    assert!(written == again, "a stored token changed on a round trip");
}
