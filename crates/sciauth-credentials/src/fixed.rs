//! Credentials whose header never changes: passwords, fixed tokens, and none at all.

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::AUTHORIZATION;

use crate::credential::{AuthHeader, Credential, Ready};
use crate::error::{Error, ErrorKind, Result};

/// HTTP Basic authentication with a username and a password:
/// `Authorization: Basic base64(username:password)`.
///
/// Username and password are encoded as UTF-8 before base64 (RFC 7617 `charset="UTF-8"`), so
/// non-ASCII names and passwords work with servers that decode UTF-8, as UNICORE does.
/// (pyunicore refuses non-ASCII input instead.)
///
/// The header is built once, here; the password is not kept anywhere else.
///
/// ```
/// use sciauth_credentials::UsernamePassword;
/// let credential = UsernamePassword::new("demouser", "test123")?;
/// assert_eq!(format!("{credential:?}"), r#"UsernamePassword { username: "demouser", password: "[redacted]" }"#);
/// # Ok::<(), sciauth_credentials::Error>(())
/// ```
#[derive(Clone)]
pub struct UsernamePassword {
    username: String,
    header: AuthHeader,
}

impl UsernamePassword {
    /// A Basic credential for `username` and `password`.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] if the username contains `:` or a control
    /// character: Basic authentication cannot carry those (RFC 7617).
    pub fn new(username: impl Into<String>, password: impl AsRef<str>) -> Result<Self> {
        let username = username.into();
        if username.contains(':') || username.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the username {username:?} contains ':' or a control character, which \
                     HTTP Basic authentication cannot carry"
                ),
            ));
        }
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(
            username.len() + 1 + password.as_ref().len(),
        ));
        plain.extend_from_slice(username.as_bytes());
        plain.push(b':');
        plain.extend_from_slice(password.as_ref().as_bytes());
        let encoded = zeroize::Zeroizing::new(STANDARD.encode(&*plain));
        let header = AuthHeader::with_scheme(AUTHORIZATION, "Basic", &encoded)?;
        Ok(Self { username, header })
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for UsernamePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsernamePassword")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A token sent verbatim after `Basic`: `Authorization: Basic <token>`.
///
/// For servers that hand out pre-encoded Basic tokens (pyunicore's `BasicToken`).
#[derive(Clone)]
pub struct BasicToken {
    header: AuthHeader,
}

impl BasicToken {
    /// A credential sending `Basic <token>`. Fails if the token contains a newline or another
    /// character HTTP headers cannot carry.
    pub fn new(token: impl AsRef<str>) -> Result<Self> {
        Ok(Self {
            header: AuthHeader::with_scheme(AUTHORIZATION, "Basic", token.as_ref())?,
        })
    }
}

impl fmt::Debug for BasicToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicToken([redacted])")
    }
}

/// An OAuth 2.0 / OIDC access token (or any bearer token, such as one a UNICORE server
/// issued): `Authorization: Bearer <token>`.
///
/// This token never renews. For tokens that refresh themselves, use the token manager in
/// `sciauth-tokens`, which implements [`Credential`] too.
#[derive(Clone)]
pub struct BearerToken {
    header: AuthHeader,
}

impl BearerToken {
    /// A credential sending `Bearer <token>`. Fails if the token contains a newline or another
    /// character HTTP headers cannot carry.
    pub fn new(token: impl AsRef<str>) -> Result<Self> {
        Ok(Self {
            header: AuthHeader::with_scheme(AUTHORIZATION, "Bearer", token.as_ref())?,
        })
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// No authentication at all: requests carry no `Authorization` header.
///
/// Servers treat this differently from a bad credential: UNICORE serves anonymous requests
/// with the `anonymous` role. Useful for health checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct Anonymous;

macro_rules! fixed_header_credential {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl Credential for $ty {
            async fn header(&self) -> Result<Option<AuthHeader>> {
                Ok(Some(self.header.clone()))
            }
            fn ready_header(&self) -> Ready {
                Ready::Header(self.header.clone())
            }
        }
    )*};
}

fixed_header_credential!(UsernamePassword, BasicToken, BearerToken);

#[async_trait]
impl Credential for Anonymous {
    async fn header(&self) -> Result<Option<AuthHeader>> {
        Ok(None)
    }
    fn ready_header(&self) -> Ready {
        Ready::NoHeader
    }
}
