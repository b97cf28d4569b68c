//! How a client proves who it is to the token, revocation and introspection endpoints.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString, zeroize::Zeroizing};
use serde::Serialize;
use url::Url;
use url::form_urlencoded::byte_serialize;

use sciauth_credentials::Clock;

use crate::error::{Error, ErrorKind, Result};
use crate::pkce::random_url_safe;

/// How the client authenticates (OIDC Core 9, RFC 6749 2.3, RFC 7523).
///
/// ```
/// use sciauth_tokens::ClientAuth;
/// let auth = ClientAuth::secret_basic("s3cret");
/// assert_eq!(format!("{auth:?}"), "ClientAuth::SecretBasic([redacted])");
/// ```
#[derive(Clone)]
pub struct ClientAuth {
    method: Method,
}

#[derive(Clone)]
enum Method {
    None,
    SecretBasic(SecretString),
    SecretPost(SecretString),
    PrivateKeyJwt(Arc<PrivateKeyJwt>),
}

impl ClientAuth {
    /// A public client (`none`): only `client_id` is sent. Native apps and CLIs are public
    /// clients; they rely on PKCE.
    pub fn none() -> Self {
        Self {
            method: Method::None,
        }
    }

    /// `client_secret_basic`: `Authorization: Basic base64(id:secret)`, where id and secret are
    /// form-urlencoded first, as RFC 6749 2.3.1 requires (a secret with `:` or `%` works).
    pub fn secret_basic(secret: impl Into<SecretString>) -> Self {
        Self {
            method: Method::SecretBasic(secret.into()),
        }
    }

    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    pub fn secret_post(secret: impl Into<SecretString>) -> Self {
        Self {
            method: Method::SecretPost(secret.into()),
        }
    }

    /// `private_key_jwt` (RFC 7523): a short-lived JWT signed with the client's key.
    pub fn private_key_jwt(key: PrivateKeyJwt) -> Self {
        Self {
            method: Method::PrivateKeyJwt(Arc::new(key)),
        }
    }

    /// The method's name as discovery metadata spells it, e.g. `client_secret_basic`.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::None => "none",
            Method::SecretBasic(_) => "client_secret_basic",
            Method::SecretPost(_) => "client_secret_post",
            Method::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }

    /// The client secret, for masking it out of what a server says back.
    pub(crate) fn secret(&self) -> Option<&SecretString> {
        match &self.method {
            Method::SecretBasic(secret) | Method::SecretPost(secret) => Some(secret),
            Method::None | Method::PrivateKeyJwt(_) => None,
        }
    }

    /// Adds the authentication to a request to `audience` (the token endpoint): form fields,
    /// and maybe an `Authorization` header value, returned.
    pub(crate) fn apply(
        &self,
        client_id: &str,
        audience: &Url,
        clock: &dyn Clock,
        form: &mut Form,
    ) -> Result<Option<SecretString>> {
        match &self.method {
            Method::None => {
                form.push("client_id", client_id);
                Ok(None)
            }
            Method::SecretBasic(secret) => {
                let mut plain = Zeroizing::new(String::new());
                plain.extend(byte_serialize(client_id.as_bytes()));
                plain.push(':');
                plain.extend(byte_serialize(secret.expose_secret().as_bytes()));
                let value = format!("Basic {}", STANDARD.encode(plain.as_bytes()));
                Ok(Some(SecretString::from(value)))
            }
            Method::SecretPost(secret) => {
                form.push("client_id", client_id);
                form.push_secret("client_secret", secret.clone());
                Ok(None)
            }
            Method::PrivateKeyJwt(key) => {
                let assertion = key.assertion(client_id, audience, clock)?;
                form.push("client_id", client_id);
                form.push(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                );
                form.push_secret("client_assertion", assertion);
                Ok(None)
            }
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.method {
            Method::None => f.write_str("ClientAuth::None"),
            Method::SecretBasic(_) => f.write_str("ClientAuth::SecretBasic([redacted])"),
            Method::SecretPost(_) => f.write_str("ClientAuth::SecretPost([redacted])"),
            Method::PrivateKeyJwt(key) => write!(f, "ClientAuth::PrivateKeyJwt({key:?})"),
        }
    }
}

/// A client's private key for `private_key_jwt` client authentication (RFC 7523 2.2).
///
/// Each request gets a fresh assertion: `iss` = `sub` = the client id, `aud` = the token
/// endpoint URL (OIDC Core 9; providers accept it for introspection and revocation too),
/// a random `jti`, `iat`, and `exp` = `iat` + the lifetime (60 s by default). Assertions are
/// not reused: providers refuse a replayed `jti`.
pub struct PrivateKeyJwt {
    key: EncodingKey,
    algorithm: Algorithm,
    key_id: Option<String>,
    lifetime: Duration,
}

impl PrivateKeyJwt {
    /// Reads a PEM private key and signs with `algorithm`: RS256/384/512 or PS256/384/512
    /// for an RSA key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8), ES256/ES384 for an EC key
    /// (PKCS#8 `PRIVATE KEY`), EdDSA for an Ed25519 key (PKCS#8).
    pub fn from_pem(pem: &[u8], algorithm: Algorithm) -> Result<Self> {
        let parsed = match algorithm {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "private_key_jwt needs an asymmetric algorithm (RS*, PS*, ES*, EdDSA); \
                     HMAC would be client_secret_jwt",
                ));
            }
        };
        let key = parsed.map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the private key is not a PEM key usable for {algorithm:?} (RSA keys: \
                     PKCS#1 or PKCS#8; EC and Ed25519 keys: PKCS#8)"
                ),
            )
            .with_source(e)
        })?;
        Ok(Self {
            key,
            algorithm,
            key_id: None,
            lifetime: Duration::from_secs(60),
        })
    }

    /// Reads a PEM private key file; see [`from_pem`](Self::from_pem).
    pub fn from_pem_file(path: impl AsRef<Path>, algorithm: Algorithm) -> Result<Self> {
        let path = path.as_ref();
        let pem = Zeroizing::new(
            sciauth_credentials::fs::read_limited(path, sciauth_credentials::fs::MAX_NAMED_FILE)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("cannot read the private key file {}", path.display()),
                    )
                    .with_source(e)
                })?,
        );
        Self::from_pem(&pem, algorithm)
    }

    /// Puts `kid` into the assertion's header, so the provider need not try every key it
    /// has registered for the client. By default there is none.
    pub fn key_id(mut self, kid: impl Into<String>) -> Self {
        self.key_id = Some(kid.into());
        self
    }

    /// How long each assertion is valid. By default 60 s.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    fn assertion(
        &self,
        client_id: &str,
        audience: &Url,
        clock: &dyn Clock,
    ) -> Result<SecretString> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            jti: String,
            iat: u64,
            exp: u64,
        }
        let now = clock.unix_seconds();
        let mut header = Header::new(self.algorithm);
        header.kid.clone_from(&self.key_id);
        let claims = Claims {
            iss: client_id,
            sub: client_id,
            aud: audience.as_str(),
            jti: random_url_safe(18),
            iat: now,
            exp: now.saturating_add(self.lifetime.as_secs().max(1)),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(SecretString::from)
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "signing the client assertion with {:?} failed",
                        self.algorithm
                    ),
                )
                .with_source(e)
            })
    }
}

impl fmt::Debug for PrivateKeyJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeyJwt")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// A form body under construction, whose secret fields stay secret until sent.
#[derive(Default)]
pub(crate) struct Form {
    fields: Vec<(Cow<'static, str>, FormValue)>,
}

enum FormValue {
    Plain(String),
    Secret(SecretString),
}

impl Form {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&mut self, name: &'static str, value: impl Into<String>) {
        self.fields
            .push((Cow::Borrowed(name), FormValue::Plain(value.into())));
    }

    /// A field whose name the caller chose (extra parameters).
    pub(crate) fn push_dynamic(&mut self, name: &str, value: &str) {
        self.fields.push((
            Cow::Owned(name.to_owned()),
            FormValue::Plain(value.to_owned()),
        ));
    }

    pub(crate) fn push_opt(&mut self, name: &'static str, value: Option<impl Into<String>>) {
        if let Some(value) = value {
            self.push(name, value);
        }
    }

    pub(crate) fn push_secret(&mut self, name: &'static str, value: SecretString) {
        self.fields
            .push((Cow::Borrowed(name), FormValue::Secret(value)));
    }

    /// The `application/x-www-form-urlencoded` body. It holds secrets: it goes into the
    /// request body and nowhere else.
    pub(crate) fn encode(&self) -> Zeroizing<String> {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.fields {
            let value = match value {
                FormValue::Plain(v) => v.as_str(),
                FormValue::Secret(v) => v.expose_secret(),
            };
            serializer.append_pair(name, value);
        }
        Zeroizing::new(serializer.finish())
    }

    /// The field names, for logs (values never).
    /// The secret values, for masking them out of what a server says back.
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.fields.iter().filter_map(|(_, value)| match value {
            FormValue::Secret(secret) => Some(secret),
            FormValue::Plain(_) => None,
        })
    }

    pub(crate) fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|(n, _)| n.as_ref()).collect()
    }
}

impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sciauth_credentials::ManualClock;

    #[test]
    fn basic_credentials_are_form_urlencoded_before_base64() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let endpoint: Url = "https://idp.example.org/token".parse().unwrap();
        let mut form = Form::new();
        let header = ClientAuth::secret_basic("s3:cr%t ü")
            .apply("my client", &endpoint, &clock, &mut form)
            .unwrap()
            .unwrap();
        let encoded = header.expose_secret().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "my+client:s3%3Acr%25t+%C3%BC");
        assert!(form.names().is_empty());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let mut form = Form::new();
        let clock = ManualClock::at_unix(1_700_000_000);
        let endpoint: Url = "https://idp.example.org/token".parse().unwrap();
        let auth = ClientAuth::secret_post("hunter2");
        auth.apply("app", &endpoint, &clock, &mut form).unwrap();
        assert_eq!(format!("{auth:?}"), "ClientAuth::SecretPost([redacted])");
        assert_eq!(format!("{form:?}"), r#"["client_id", "client_secret"]"#);
        assert_eq!(
            form.encode().as_str(),
            "client_id=app&client_secret=hunter2"
        );
    }
}
