//! JWTs signed by the user's SSH key (UNICORE, UFTP Authserver) or a service's key.
//!
//! UNICORE verifies `Authorization: Bearer <JWT>` where the JWT has the header
//! `{"alg":..,"typ":"JWT"}` and exactly the claims
//! `{"etd":"false","sub":U,"iss":U,"iat":now,"exp":now+lifetime}`. pyunicore signs a new JWT
//! for every request; here a signed token is cached and re-signed only after half its
//! lifetime, so a request costs a clone of a ready header, not a signature.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::agent::{AgentKey, KeySelector, SshAgent};
use crate::clock::{Clock, SystemClock};
use crate::credential::{AuthHeader, Credential, Ready, Renewal};
use crate::error::Result;
use crate::key::{JwsAlgorithm, PrivateKey};

/// The lifetime of a signed JWT unless set otherwise: 300 s, as pyunicore and UNICORE use.
pub const DEFAULT_JWT_LIFETIME: Duration = Duration::from_secs(300);

/// A key that signs: a parsed private key, or a key held by an ssh-agent.
///
/// Both the JWT credentials here and Rucio's SSH challenge login sign through this type.
#[derive(Clone, Debug)]
pub enum SshSigner {
    /// A private key read from a file.
    Key(Arc<PrivateKey>),
    /// A key held by an ssh-agent.
    Agent(AgentKey),
}

impl SshSigner {
    /// The JWS algorithm of the key.
    pub fn algorithm(&self) -> JwsAlgorithm {
        match self {
            Self::Key(key) => key.algorithm(),
            Self::Agent(key) => key.algorithm(),
        }
    }

    /// Signs a JWS signing input this crate built (raw signature bytes, ES* as `r || s`).
    pub(crate) async fn sign_jws(&self, message: &[u8]) -> Result<Vec<u8>> {
        match self {
            Self::Key(key) => key.sign_jws(message),
            Self::Agent(key) => key.sign_jws(message).await,
        }
    }

    /// Signs a server's challenge as an SSH wire-format signature (RSA: `rsa-sha2-256`).
    /// A challenge that could be a JWS signing input (it holds a `.`) or anything but 1 to
    /// 256 bytes of printable ASCII fails with
    /// [`ErrorKind::RefusedToSign`](crate::ErrorKind::RefusedToSign), and nothing is signed:
    /// the same key signs JWTs, and a server must not get one signed by sending it as its
    /// challenge. The JWT credentials are the only way to have a JWS signed.
    pub async fn sign_ssh(&self, challenge: &[u8]) -> Result<Vec<u8>> {
        match self {
            Self::Key(key) => key.sign_ssh(challenge),
            Self::Agent(key) => key.sign_ssh(challenge).await,
        }
    }
}

impl From<PrivateKey> for SshSigner {
    fn from(key: PrivateKey) -> Self {
        Self::Key(Arc::new(key))
    }
}

impl From<AgentKey> for SshSigner {
    fn from(key: AgentKey) -> Self {
        Self::Agent(key)
    }
}

#[derive(Serialize)]
struct Header {
    alg: &'static str,
    typ: &'static str,
}

// Field order matches pyunicore's (PyJWT) output, so tokens compare byte for byte.
#[derive(Serialize)]
struct Claims<'a> {
    etd: &'static str,
    sub: &'a str,
    iss: &'a str,
    iat: u64,
    exp: u64,
}

struct Minted {
    header: AuthHeader,
    renew_at: SystemTime,
}

/// Signs JWTs and keeps the latest one while it is fresh.
struct Minter {
    signer: SshSigner,
    encoded_header: String,
    subject: String,
    issuer: String,
    etd: &'static str,
    lifetime: Duration,
    clock: Arc<dyn Clock>,
    current: ArcSwapOption<Minted>,
    minting: tokio::sync::Mutex<()>,
}

impl Minter {
    fn new(signer: SshSigner, subject: String, issuer: String, etd: bool) -> Self {
        let header = Header {
            alg: signer.algorithm().as_str(),
            typ: "JWT",
        };
        let header_json = serde_json::to_vec(&header).expect("a fixed struct serializes");
        Self {
            signer,
            encoded_header: URL_SAFE_NO_PAD.encode(header_json),
            subject,
            issuer,
            etd: if etd { "true" } else { "false" },
            lifetime: DEFAULT_JWT_LIFETIME,
            clock: Arc::new(SystemClock),
            current: ArcSwapOption::empty(),
            minting: tokio::sync::Mutex::new(()),
        }
    }

    fn set_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = lifetime.max(Duration::from_secs(1));
        self.current.store(None);
    }

    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
        self.current.store(None);
    }

    /// Signs a new JWT now: `header.claims.signature`, base64url without padding.
    async fn sign_new(&self) -> Result<(SecretString, u64)> {
        let iat = self.clock.unix_seconds();
        let claims = Claims {
            etd: self.etd,
            sub: &self.subject,
            iss: &self.issuer,
            iat,
            exp: iat.saturating_add(self.lifetime.as_secs()),
        };
        let claims_json = serde_json::to_vec(&claims).expect("a fixed struct serializes");
        let mut token =
            String::with_capacity(self.encoded_header.len() + 2 * claims_json.len() + 400);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims_json, &mut token);
        let signature = self.signer.sign_jws(token.as_bytes()).await?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok((SecretString::from(token), iat))
    }

    async fn mint(&self) -> Result<AuthHeader> {
        let (token, iat) = self.sign_new().await?;
        let header = AuthHeader::with_scheme(AUTHORIZATION, "Bearer", token.expose_secret())?;
        // Re-sign after half the lifetime, as UNICORE's Java client does: the token in use
        // always has at least half its lifetime (150 s by default) left, more than the
        // server's 60 s clock skew allowance.
        let renew_at = crate::time::later(crate::time::from_unix(iat), self.lifetime / 2);
        self.current.store(Some(Arc::new(Minted {
            header: header.clone(),
            renew_at,
        })));
        Ok(header)
    }

    fn fresh(&self) -> Option<AuthHeader> {
        let current = self.current.load();
        let minted = current.as_ref()?;
        (self.clock.now() < minted.renew_at).then(|| minted.header.clone())
    }

    async fn header(&self) -> Result<Option<AuthHeader>> {
        if let Some(header) = self.fresh() {
            return Ok(Some(header));
        }
        // One signer at a time: with an ssh-agent behind it, a burst of requests must not
        // turn into a burst of agent round trips.
        let _minting = self.minting.lock().await;
        if let Some(header) = self.fresh() {
            return Ok(Some(header));
        }
        self.mint().await.map(Some)
    }

    async fn rejected(&self, sent: Option<&AuthHeader>) -> Result<Renewal> {
        let _minting = self.minting.lock().await;
        let renewed_since = self
            .current
            .load()
            .as_ref()
            .is_some_and(|current| Some(&current.header) != sent);
        if !renewed_since {
            self.mint().await?;
        }
        Ok(Renewal::Renewed)
    }

    async fn token(&self) -> Result<SecretString> {
        let header = self
            .header()
            .await?
            .expect("a JWT credential always has a header");
        let value = header
            .value()
            .to_str()
            .expect("built from a base64url string");
        Ok(SecretString::from(
            value.trim_start_matches("Bearer ").to_owned(),
        ))
    }

    fn ready_header(&self) -> Ready {
        match self.fresh() {
            Some(header) => Ready::Header(header),
            None => Ready::NotReady,
        }
    }
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("algorithm", &self.signer.algorithm())
            .field("sub", &self.subject)
            .field("iss", &self.issuer)
            .field("etd", &self.etd)
            .field("lifetime", &self.lifetime)
            .field("signer", &self.signer)
            .finish()
    }
}

macro_rules! jwt_credential {
    ($ty:ident) => {
        impl $ty {
            /// How long each signed JWT is valid (`exp - iat`). By default, this is 300 s
            /// ([`DEFAULT_JWT_LIFETIME`]). A JWT is re-signed when half of it has passed.
            /// Values below one second count as one second.
            pub fn lifetime(mut self, lifetime: Duration) -> Self {
                self.minter.set_lifetime(lifetime);
                self
            }

            /// The clock for `iat`, `exp` and renewal. By default, this is the system clock;
            /// tests pass a [`ManualClock`](crate::ManualClock).
            pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
                self.minter.set_clock(clock);
                self
            }

            /// The JWS algorithm, from the key type.
            pub fn algorithm(&self) -> JwsAlgorithm {
                self.minter.signer.algorithm()
            }

            /// The current JWT (compact form), signing one if none is fresh.
            pub async fn token(&self) -> Result<SecretString> {
                self.minter.token().await
            }

            /// Signs a new JWT now, ignoring and not touching the cache.
            pub async fn sign_new(&self) -> Result<SecretString> {
                self.minter.sign_new().await.map(|(token, _)| token)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($ty)).field(&self.minter).finish()
            }
        }

        #[async_trait]
        impl Credential for $ty {
            async fn header(&self) -> Result<Option<AuthHeader>> {
                self.minter.header().await
            }
            fn ready_header(&self) -> Ready {
                self.minter.ready_header()
            }
            async fn rejected(&self, sent: Option<&AuthHeader>) -> Result<Renewal> {
                self.minter.rejected(sent).await
            }
        }
    };
}

/// A JWT signed with the user's SSH private key, read from a file: UNICORE's and the UFTP
/// Authserver's SSH-key login.
///
/// Claims are `{"etd":"false","sub":user,"iss":user,"iat":now,"exp":now+300}`. The key is
/// parsed (and decrypted) once; a signed token is reused until half its lifetime has passed.
///
/// ```no_run
/// use sciauth_credentials::{SshKeyJwt, resolve_identity};
/// let credential = SshKeyJwt::from_file("demouser", resolve_identity("id_uftp"), None)?;
/// # Ok::<(), sciauth_credentials::Error>(())
/// ```
pub struct SshKeyJwt {
    minter: Minter,
}

impl SshKeyJwt {
    /// A credential for `username` signing with `key`.
    pub fn new(username: impl Into<String>, key: PrivateKey) -> Self {
        let username = username.into();
        Self {
            minter: Minter::new(key.into(), username.clone(), username, false),
        }
    }

    /// Reads the key at `path` (OpenSSH or PEM; `passphrase` for encrypted keys).
    pub fn from_file(
        username: impl Into<String>,
        path: impl AsRef<Path>,
        passphrase: Option<&SecretString>,
    ) -> Result<Self> {
        Ok(Self::new(
            username,
            PrivateKey::from_file(path, passphrase)?,
        ))
    }
}

jwt_credential!(SshKeyJwt);

/// The same JWT as [`SshKeyJwt`], signed by a key held in a running ssh-agent, so the private
/// key never leaves the agent.
///
/// Ed25519 and RSA keys work with any agent (RSA is asked for `rsa-sha2-256`); ECDSA
/// signatures are converted to JWS's `r || s`.
pub struct SshAgentJwt {
    minter: Minter,
}

impl SshAgentJwt {
    /// A credential for `username` signing with `key`.
    pub fn new(username: impl Into<String>, key: AgentKey) -> Self {
        let username = username.into();
        Self {
            minter: Minter::new(key.into(), username.clone(), username, false),
        }
    }

    /// Finds the key in the agent named by `SSH_AUTH_SOCK`.
    pub async fn from_env(username: impl Into<String>, selector: &KeySelector) -> Result<Self> {
        let key = SshAgent::from_env()?.find(selector).await?;
        Ok(Self::new(username, key))
    }
}

jwt_credential!(SshAgentJwt);

/// A "trusted service" JWT: a service signs with its own (server certificate) private key to
/// act for a user: `{"etd":"true","sub":user DN,"iss":service DN,...}`.
///
/// The UNICORE server must trust the service's certificate for this to be accepted.
pub struct ServiceJwt {
    minter: Minter,
}

impl ServiceJwt {
    /// A credential acting for `user_dn`, issued by `service_dn`, signed with `key`.
    pub fn new(user_dn: impl Into<String>, service_dn: impl Into<String>, key: PrivateKey) -> Self {
        Self {
            minter: Minter::new(key.into(), user_dn.into(), service_dn.into(), true),
        }
    }

    /// Reads the service key from a PEM (or OpenSSH) file.
    pub fn from_file(
        user_dn: impl Into<String>,
        service_dn: impl Into<String>,
        path: impl AsRef<Path>,
        passphrase: Option<&SecretString>,
    ) -> Result<Self> {
        Ok(Self::new(
            user_dn,
            service_dn,
            PrivateKey::from_file(path, passphrase)?,
        ))
    }
}

jwt_credential!(ServiceJwt);
