//! [`AuthMethod`]: how a session logs in, and the login requests themselves.

// tidy: long, every Rucio login method (userpass, ssh, x509, x509 proxy, oidc) and its answer: one protocol, one file

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sciauth_credentials::fs::{MAX_NAMED_FILE, read_limited, read_limited_text};
use sciauth_credentials::text::printable;
use sciauth_credentials::time::later;
use sciauth_credentials::{AuthHeader, BearerTokenDiscovery, Credential, PrivateKey, SshSigner};
use sciauth_transport::{HeaderMap, HeaderName, HeaderValue, StatusCode, Transport};
use secrecy::{ExposeSecret as _, SecretString};
use ssh_key::HashAlg;

use crate::error::{Error, ErrorKind, Result};
use crate::oidc::RucioOidc;

pub(crate) const AUTH_TOKEN: &str = "x-rucio-auth-token";
const AUTH_TOKEN_EXPIRES: &str = "x-rucio-auth-token-expires";
const AUTH_ACCOUNT: &str = "x-rucio-auth-account";
const AUTH_ACCOUNTS: &str = "x-rucio-auth-accounts";
pub(crate) const ACCOUNT: &str = "x-rucio-account";
pub(crate) const VO: &str = "x-rucio-vo";

/// How a session proves who it is to the Rucio auth server: one of the Rucio client's
/// `auth_type`s.
///
/// | constructor | `auth_type` | what is sent |
/// |---|---|---|
/// | [`userpass`](Self::userpass) | `userpass` | `X-Rucio-Username`, `X-Rucio-Password` to `/auth/userpass` |
/// | [`ssh_key_file`](Self::ssh_key_file), [`ssh`](Self::ssh) | `ssh` | a signed challenge (`rsa-sha2-256`) to `/auth/ssh` |
/// | [`x509`](Self::x509) | `x509` | a TLS client certificate to `/auth/x509` |
/// | [`x509_proxy`](Self::x509_proxy) | `x509_proxy` | an X.509 proxy to `/auth/x509_proxy` |
/// | [`oidc_discovery`](Self::oidc_discovery), [`oidc_credential`](Self::oidc_credential) | `oidc` | the OIDC access token itself, as `X-Rucio-Auth-Token` |
///
/// `Debug` never shows the password or a token.
#[derive(Clone)]
pub struct AuthMethod {
    kind: Method,
}

#[derive(Clone)]
enum Method {
    UserPass {
        username: String,
        password: SecretString,
    },
    Ssh(SshSigner),
    /// A key file read at the first login (its passphrase asked for then), named in the
    /// cache by the fingerprint of its public half.
    SshFile(Arc<SshKeyFile>),
    X509 {
        cert: PathBuf,
        key: PathBuf,
    },
    X509Proxy(PathBuf),
    Oidc(OidcSource),
}

#[derive(Clone)]
enum OidcSource {
    Discovery(Arc<BearerTokenDiscovery>),
    Credential(Arc<dyn Credential>),
    Rucio(Arc<RucioOidc>),
    /// The official client's order: a token WLCG discovery finds, else the Rucio-brokered
    /// login.
    DiscoveryThenRucio(Arc<BearerTokenDiscovery>, Arc<RucioOidc>),
}

impl AuthMethod {
    /// Username and password (`userpass`).
    pub fn userpass(username: impl Into<String>, password: SecretString) -> Self {
        Self {
            kind: Method::UserPass {
                username: username.into(),
                password,
            },
        }
    }

    /// An SSH key in a file (`ssh`), read now. Rucio accepts RSA keys only; `passphrase`
    /// decrypts an encrypted key.
    pub fn ssh_key_file(path: impl AsRef<Path>, passphrase: Option<&SecretString>) -> Result<Self> {
        let key = PrivateKey::from_file(path.as_ref(), passphrase).map_err(|e| {
            Error::new(
                ErrorKind::Credential,
                format!("cannot use the SSH key for the Rucio login: {e}"),
            )
            .with_source(e)
        })?;
        Ok(Self::ssh(key))
    }

    /// An SSH key file (`ssh`) as the Rucio client takes it from `ssh_private_key`: nothing
    /// secret is read until a login needs the key, so a cached token needs neither the key
    /// nor its passphrase. The public half names the key in the cache: the `.pub` file
    /// beside it, else the public part of an OpenSSH key file; a PEM key without `.pub` is
    /// read now. An encrypted key is decrypted with `passphrase`, else the passphrase
    /// `ask` gives (a prompt, a variable); without either, the login fails with
    /// [`ErrorKind::Credential`] saying so.
    pub fn ssh_key_file_lazy(
        path: impl Into<PathBuf>,
        passphrase: Option<SecretString>,
        ask: Option<PassphrasePrompt>,
    ) -> Result<Self> {
        let path = path.into();
        let file = SshKeyFile {
            fingerprint: std::sync::OnceLock::new(),
            key: std::sync::Mutex::new(None),
            path,
            passphrase,
            ask,
        };
        let fingerprint = match public_fingerprint(&file.path) {
            Some(fingerprint) => fingerprint,
            None => {
                let key = file.load()?;
                key.public_key().fingerprint(HashAlg::Sha256).to_string()
            }
        };
        let _ = file.fingerprint.set(fingerprint);
        Ok(Self {
            kind: Method::SshFile(Arc::new(file)),
        })
    }

    /// A key that signs the SSH challenge (`ssh`): a [`PrivateKey`], or an
    /// [`AgentKey`](sciauth_credentials::AgentKey) held by an ssh-agent. Rucio accepts RSA
    /// keys only.
    pub fn ssh(signer: impl Into<SshSigner>) -> Self {
        Self {
            kind: Method::Ssh(signer.into()),
        }
    }

    /// A TLS client certificate and its unencrypted key, both PEM (`x509`).
    pub fn x509(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            kind: Method::X509 {
                cert: cert.into(),
                key: key.into(),
            },
        }
    }

    /// An X.509 proxy file: certificate, key and chain in one PEM (`x509_proxy`).
    pub fn x509_proxy(proxy: impl Into<PathBuf>) -> Self {
        Self {
            kind: Method::X509Proxy(proxy.into()),
        }
    }

    /// An OIDC access token found by WLCG Bearer Token Discovery (`oidc`), read anew at each
    /// login, so a token that `oidc-agent` or `htgettoken` replaced is picked up.
    pub fn oidc_discovery(discovery: BearerTokenDiscovery) -> Self {
        Self {
            kind: Method::Oidc(OidcSource::Discovery(Arc::new(discovery))),
        }
    }

    /// An OIDC access token from a credential whose header is `Authorization: Bearer
    /// <token>` (`oidc`): a token manager that refreshes it, or a fixed
    /// [`BearerToken`](sciauth_credentials::BearerToken). When Rucio rejects the token, the
    /// credential is told, so a token manager refreshes.
    pub fn oidc_credential(credential: Arc<dyn Credential>) -> Self {
        Self {
            kind: Method::Oidc(OidcSource::Credential(credential)),
        }
    }

    /// The Rucio-brokered OIDC login (`oidc`): the Rucio server runs the login with its
    /// identity provider, the user approves in a browser, and the server hands out the token
    /// (see [`RucioOidc`]). Its token is cached and shared with the Rucio client.
    pub fn oidc_rucio(settings: RucioOidc) -> Self {
        Self {
            kind: Method::Oidc(OidcSource::Rucio(Arc::new(settings))),
        }
    }

    /// The Rucio client's own `oidc` order: a token WLCG Bearer Token Discovery finds is sent
    /// as it is; without one, the Rucio-brokered login (see [`oidc_rucio`](Self::oidc_rucio)).
    pub fn oidc_discovery_then_rucio(discovery: BearerTokenDiscovery, settings: RucioOidc) -> Self {
        Self {
            kind: Method::Oidc(OidcSource::DiscoveryThenRucio(
                Arc::new(discovery),
                Arc::new(settings),
            )),
        }
    }

    /// The Rucio-brokered OIDC settings, if this login has them.
    pub(crate) fn rucio_oidc(&self) -> Option<&RucioOidc> {
        match &self.kind {
            Method::Oidc(OidcSource::Rucio(settings))
            | Method::Oidc(OidcSource::DiscoveryThenRucio(_, settings)) => Some(settings),
            _ => None,
        }
    }

    /// For the official client's order: the token discovery finds, if any, before the cache
    /// is looked at (never `rejected`, which the server just refused).
    pub(crate) fn discovered_first(&self, rejected: Option<&SessionToken>) -> Option<SessionToken> {
        let Method::Oidc(OidcSource::DiscoveryThenRucio(discovery, _)) = &self.kind else {
            return None;
        };
        let found = match discovery.discover() {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(error = %e, "WLCG bearer token discovery failed; using the Rucio login");
                return None;
            }
        };
        if rejected.is_some_and(|r| r.token.expose_secret() == found.token().expose_secret()) {
            return None;
        }
        let token = found.token().clone();
        let expires_at = jwt_expiry(token.expose_secret());
        SessionToken::new(token, expires_at, None).ok()
    }

    /// The Rucio `auth_type`: `userpass`, `ssh`, `x509`, `x509_proxy` or `oidc`.
    pub fn auth_type(&self) -> &'static str {
        match &self.kind {
            Method::UserPass { .. } => "userpass",
            Method::Ssh(_) | Method::SshFile(_) => "ssh",
            Method::X509 { .. } => "x509",
            Method::X509Proxy(_) => "x509_proxy",
            Method::Oidc(_) => "oidc",
        }
    }

    /// The client certificate the auth transport must present, if any: `(cert, key)` or
    /// `(proxy, proxy)`.
    pub(crate) fn client_identity(&self) -> Option<ClientIdentity<'_>> {
        match &self.kind {
            Method::X509 { cert, key } => Some(ClientIdentity::CertAndKey(cert, key)),
            Method::X509Proxy(proxy) => Some(ClientIdentity::Proxy(proxy)),
            _ => None,
        }
    }

    /// What names this identity in the token cache (never a secret): the username, the SSH
    /// key's fingerprint, the certificate's subject and issuer DN. `None` for OIDC, whose
    /// token lives in its own store and is never cached here, and for a certificate file
    /// that cannot be read (the login will say why).
    pub(crate) fn cache_identity(&self) -> Option<String> {
        match &self.kind {
            Method::UserPass { username, .. } => Some(username.clone()),
            Method::Ssh(SshSigner::Key(key)) => {
                Some(key.public_key().fingerprint(HashAlg::Sha256).to_string())
            }
            Method::Ssh(SshSigner::Agent(key)) => {
                Some(key.public_key().fingerprint(HashAlg::Sha256).to_string())
            }
            Method::SshFile(file) => file.fingerprint.get().cloned(),
            Method::X509 { cert, .. } => certificate_identity(cert),
            Method::X509Proxy(proxy) => certificate_identity(proxy),
            Method::Oidc(OidcSource::Rucio(settings))
            | Method::Oidc(OidcSource::DiscoveryThenRucio(_, settings)) => {
                Some(settings.cache_identity())
            }
            Method::Oidc(_) => None,
        }
    }

    /// Logs in at the auth host (through `auth`), or, for OIDC, fetches the access token.
    pub(crate) async fn login(
        &self,
        auth: &Transport,
        target: &LoginTarget<'_>,
        now: SystemTime,
    ) -> Result<SessionToken> {
        match &self.kind {
            Method::UserPass { username, password } => {
                let request = target
                    .request(auth, "auth/userpass")
                    .header("X-Rucio-Username", username.as_str())
                    .sensitive_header("X-Rucio-Password", password.expose_secret());
                login_answer(request.send().await, target, now, self.auth_type())
            }
            Method::SshFile(file) => {
                let signer = SshSigner::Key(file.load()?);
                self.ssh_login(&signer, auth, target, now).await
            }
            Method::Ssh(signer) => self.ssh_login(signer, auth, target, now).await,
            Method::X509 { .. } => {
                let request = target.request(auth, "auth/x509");
                login_answer(request.send().await, target, now, self.auth_type())
            }
            Method::X509Proxy(_) => {
                let request = target.request(auth, "auth/x509_proxy");
                login_answer(request.send().await, target, now, self.auth_type())
            }
            Method::Oidc(OidcSource::Rucio(settings))
            | Method::Oidc(OidcSource::DiscoveryThenRucio(_, settings)) => {
                let token = settings.login(auth, target).await?;
                // The answer says neither expiry nor account: the server's record does.
                validate(auth, target, &token, now).await?.ok_or_else(|| {
                    Error::new(
                        ErrorKind::LoginRefused,
                        format!(
                            "{}: the server does not accept the token it just handed out",
                            target.describe("oidc")
                        ),
                    )
                })
            }
            Method::Oidc(source) => source.token(None).await,
        }
    }

    /// For OIDC: tells the token's source that Rucio rejected it and takes its new token.
    /// Other methods log in again instead.
    pub(crate) async fn oidc_rejected(&self, sent: &SessionToken) -> Option<Result<SessionToken>> {
        match &self.kind {
            Method::Oidc(OidcSource::Rucio(_) | OidcSource::DiscoveryThenRucio(..)) => None,
            Method::Oidc(source) => Some(source.token(sent.source_header.as_ref()).await),
            _ => None,
        }
    }

    /// The ssh login: the challenge, checked to be Rucio's, signed with `signer`.
    async fn ssh_login(
        &self,
        signer: &SshSigner,
        auth: &Transport,
        target: &LoginTarget<'_>,
        now: SystemTime,
    ) -> Result<SessionToken> {
        let account = target.account.ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "the Rucio ssh login needs an account (account in rucio.cfg, \
                 RUCIO_ACCOUNT, or --account): the server asks for it with the challenge",
            )
        })?;
        let challenge = self.ssh_challenge(auth, target, account).await?;
        check_ssh_challenge(&challenge, account, target.host)?;
        let signature = signer.sign_ssh(challenge.as_bytes()).await.map_err(|e| {
            Error::new(
                ErrorKind::Credential,
                format!("signing the Rucio SSH challenge failed: {e}"),
            )
            .with_source(e)
        })?;
        let request = target
            .request(auth, "auth/ssh")
            .sensitive_header("X-Rucio-SSH-Signature", STANDARD.encode(signature));
        login_answer(request.send().await, target, now, self.auth_type())
    }

    async fn ssh_challenge(
        &self,
        auth: &Transport,
        target: &LoginTarget<'_>,
        account: &str,
    ) -> Result<String> {
        let what = format!(
            "the Rucio SSH challenge request to {} for account {account}",
            target.host
        );
        let response = target
            .request(auth, "auth/ssh_challenge_token")
            .send()
            .await
            .map_err(|e| Error::from_transport(&what, e))?;
        if !response.status().is_success() {
            return Err(Error::from_answer(
                refused_or_server(response.status()),
                &what,
                &response,
            ));
        }
        header_text(response.headers(), "x-rucio-ssh-challenge-token").ok_or_else(|| {
            Error::new(
                ErrorKind::Decode,
                format!("{what}: the answer has no X-Rucio-SSH-Challenge-Token header"),
            )
        })
    }
}

/// The longest challenge Rucio makes: `challenge-` (10), a random number up to
/// `sys.maxsize` (19 digits), the account (at most 29 characters with a multi-VO schema), the
/// expiry in Unix seconds (at most 20 digits), three dashes.
const MAX_RUCIO_CHALLENGE_LEN: usize = 10 + 19 + 29 + 20 + 3;

/// Checks that the auth host's SSH challenge is one Rucio makes for `account` before it is
/// signed: `challenge-<digits>-<account>-<digits>`, ASCII, at most
/// [`MAX_RUCIO_CHALLENGE_LEN`] bytes (Rucio's `core/authentication.py`,
/// `get_ssh_challenge_token`: `f'challenge-{crypto_rand}-{account}-{expiration_unix}'`).
///
/// The key that signs the challenge also signs JWTs (UNICORE, UFTP); signing whatever a host
/// sends would let a malicious one get a JWT in the user's name signed. The signer itself
/// refuses anything that could be a JWS signing input; this check refuses everything that is
/// not a Rucio challenge, for a clear error before the key is touched.
fn check_ssh_challenge(challenge: &str, account: &str, host: &str) -> Result<()> {
    let digits = |s: &str| (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = challenge.len() <= MAX_RUCIO_CHALLENGE_LEN
        && challenge
            .strip_prefix("challenge-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(random, rest)| Some((random, rest.strip_prefix(account)?)))
            .and_then(|(random, rest)| Some((random, rest.strip_prefix('-')?)))
            .is_some_and(|(random, expiry)| digits(random) && digits(expiry));
    if well_formed {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::BadChallenge,
        format!(
            "the Rucio auth host {host} sent an SSH challenge that is not of Rucio's form \
             (challenge-<number>-{account}-<number>); nothing was signed. A Rucio server does \
             not send this: check that auth_host points at your Rucio server"
        ),
    ))
}

impl fmt::Debug for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AuthMethod");
        d.field("auth_type", &self.auth_type());
        match &self.kind {
            Method::UserPass { username, .. } => d
                .field("username", username)
                .field("password", &"[redacted]"),
            Method::Ssh(signer) => d.field("signer", signer),
            Method::SshFile(file) => d
                .field("key_file", &file.path)
                .field("fingerprint", &file.fingerprint.get()),
            Method::X509 { cert, key } => d.field("cert", cert).field("key", key),
            Method::X509Proxy(proxy) => d.field("proxy", proxy),
            Method::Oidc(OidcSource::Discovery(discovery)) => d.field("discovery", discovery),
            Method::Oidc(OidcSource::Credential(credential)) => d.field("credential", credential),
            Method::Oidc(OidcSource::Rucio(settings)) => d.field("rucio", settings),
            Method::Oidc(OidcSource::DiscoveryThenRucio(discovery, settings)) => {
                d.field("discovery", discovery).field("rucio", settings)
            }
        };
        d.finish()
    }
}

/// Asks for the passphrase of an encrypted key file (a prompt on a terminal); its answer is
/// `None` when there is no way to get one.
#[derive(Clone)]
pub struct PassphrasePrompt(Arc<AskPassphrase>);

/// The function behind a [`PassphrasePrompt`].
type AskPassphrase = dyn Fn(&Path) -> Option<SecretString> + Send + Sync;

impl PassphrasePrompt {
    /// A prompt that calls `ask` with the key file's path.
    pub fn new(ask: impl Fn(&Path) -> Option<SecretString> + Send + Sync + 'static) -> Self {
        Self(Arc::new(ask))
    }

    pub(crate) fn ask(&self, path: &Path) -> Option<SecretString> {
        (self.0)(path)
    }
}

impl fmt::Debug for PassphrasePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PassphrasePrompt")
    }
}

/// An SSH key file, read at the first login.
pub(crate) struct SshKeyFile {
    path: PathBuf,
    fingerprint: std::sync::OnceLock<String>,
    passphrase: Option<SecretString>,
    ask: Option<PassphrasePrompt>,
    key: std::sync::Mutex<Option<Arc<PrivateKey>>>,
}

impl SshKeyFile {
    /// The key, read (and decrypted) once.
    fn load(&self) -> Result<Arc<PrivateKey>> {
        let mut slot = self
            .key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(key) = &*slot {
            return Ok(key.clone());
        }
        let failed = |e: sciauth_credentials::Error| {
            Error::new(
                ErrorKind::Credential,
                format!("cannot use the SSH key for the Rucio login: {e}"),
            )
            .with_source(e)
        };
        let key = match PrivateKey::from_file(&self.path, self.passphrase.as_ref()) {
            Err(e) if e.kind() == sciauth_credentials::ErrorKind::PassphraseRequired => {
                let typed = self.ask.as_ref().and_then(|ask| ask.ask(&self.path));
                match typed {
                    Some(passphrase) => {
                        PrivateKey::from_file(&self.path, Some(&passphrase)).map_err(failed)?
                    }
                    None => {
                        return Err(Error::new(
                            ErrorKind::Credential,
                            format!(
                                "the SSH key {} is encrypted: set its passphrase in \
                                 RUCIO_SSH_PASSPHRASE (or name a variable with \
                                 --passphrase-env), run on a terminal to be asked, or load \
                                 it into ssh-agent",
                                self.path.display()
                            ),
                        ));
                    }
                }
            }
            other => other.map_err(failed)?,
        };
        let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
        if let Some(expected) = self.fingerprint.get()
            && *expected != fingerprint
        {
            return Err(Error::new(
                ErrorKind::Credential,
                format!(
                    "the public key beside {} does not belong to it; fix or remove the .pub file",
                    self.path.display()
                ),
            ));
        }
        let key = Arc::new(key);
        *slot = Some(key.clone());
        Ok(key)
    }
}

/// The fingerprint of a key file's public half without reading anything secret: the `.pub`
/// file beside it, else the unencrypted public part of an OpenSSH key file.
fn public_fingerprint(path: &Path) -> Option<String> {
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    if let Ok(text) = read_limited_text(pub_path.as_ref(), MAX_NAMED_FILE)
        && let Ok(public) = ssh_key::PublicKey::from_openssh(text.trim())
    {
        return Some(public.fingerprint(HashAlg::Sha256).to_string());
    }
    let text = read_limited_text(path, MAX_NAMED_FILE).ok()?;
    if !text
        .trim_start()
        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    {
        return None;
    }
    let key = ssh_key::PrivateKey::from_openssh(text.trim()).ok()?;
    Some(key.public_key().fingerprint(HashAlg::Sha256).to_string())
}

pub(crate) enum ClientIdentity<'a> {
    CertAndKey(&'a Path, &'a Path),
    Proxy(&'a Path),
}

/// The identity of a certificate file in the token cache: the subject and issuer DN of the
/// end-entity certificate in it. For a proxy file (proxy, key, then the chain), that is the
/// user's certificate the proxies lead to, so a renewed proxy finds the session its
/// predecessor left, while a certificate of another DN written to the same path (a new
/// `x509up_u<uid>`) never does. A proxy whose chain is not in the file stands for itself.
fn certificate_identity(path: &Path) -> Option<String> {
    use x509_parser::pem::Pem;
    let bytes = match read_limited(path, MAX_NAMED_FILE) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::debug!(file = %path.display(), error = %e, "cannot read the certificate; no token cache");
            return None;
        }
    };
    // The file also holds the key: only CERTIFICATE blocks are parsed.
    let blocks: Vec<Pem> = Pem::iter_from_buffer(&bytes)
        .filter_map(|block| block.ok())
        .filter(|block| block.label == "CERTIFICATE")
        .collect();
    let certificates: Vec<_> = blocks
        .iter()
        .filter_map(|block| block.parse_x509().ok())
        .collect();
    let mut current = certificates.first()?;
    // Each step goes to a certificate issued higher up; a loop of proxies ends by the count.
    for _ in 0..certificates.len() {
        if !is_proxy(current) {
            break;
        }
        match certificates
            .iter()
            .find(|c| c.subject().as_raw() == current.issuer().as_raw())
        {
            Some(issuer) => current = issuer,
            None => break,
        }
    }
    Some(format!(
        "subject={}; issuer={}",
        current.subject(),
        current.issuer()
    ))
}

/// Whether `certificate` is a proxy: it has the RFC 3820 proxyCertInfo extension (or the
/// GSI 3 draft's), or its subject is its issuer's plus one CN (legacy Globus proxies).
fn is_proxy(certificate: &x509_parser::certificate::X509Certificate<'_>) -> bool {
    const PROXY_CERT_INFO: [&str; 2] = ["1.3.6.1.5.5.7.1.14", "1.3.6.1.4.1.3536.1.222"];
    let by_extension = certificate
        .extensions()
        .iter()
        .any(|e| PROXY_CERT_INFO.contains(&e.oid.to_id_string().as_str()));
    let subject = certificate.subject().to_string();
    let issuer = certificate.issuer().to_string();
    let extends_issuer = subject
        .strip_prefix(issuer.as_str())
        .and_then(|rest| rest.strip_prefix(", CN="))
        .is_some_and(|cn| !cn.contains(", "));
    by_extension || extends_issuer
}

/// Where a login goes and which account and VO it asks for.
pub(crate) struct LoginTarget<'a> {
    pub(crate) host: &'a str,
    pub(crate) account: Option<&'a str>,
    pub(crate) vo: Option<&'a str>,
}

impl LoginTarget<'_> {
    pub(crate) fn request(
        &self,
        auth: &Transport,
        path: &str,
    ) -> sciauth_transport::RequestBuilder {
        let mut request = auth.get(path).no_credential();
        if let Some(account) = self.account {
            request = request.header(ACCOUNT, account);
        }
        if let Some(vo) = self.vo {
            request = request.header(VO, vo);
        }
        request
    }

    pub(crate) fn describe(&self, auth_type: &str) -> String {
        match self.account {
            Some(account) => format!(
                "Rucio {auth_type} login at {} as account {account}",
                self.host
            ),
            None => format!("Rucio {auth_type} login at {}", self.host),
        }
    }
}

/// A Rucio session token, with the header made once for every request.
#[derive(Clone)]
pub(crate) struct SessionToken {
    pub(crate) token: SecretString,
    pub(crate) header: AuthHeader,
    pub(crate) expires_at: Option<SystemTime>,
    /// The account the server granted (`X-Rucio-Auth-Account`), when it said.
    pub(crate) account: Option<String>,
    /// For OIDC, the `Authorization` header the token came from, to tell its source.
    pub(crate) source_header: Option<AuthHeader>,
}

impl SessionToken {
    pub(crate) fn new(
        token: SecretString,
        expires_at: Option<SystemTime>,
        account: Option<String>,
    ) -> Result<Self> {
        let value = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
            Error::new(
                ErrorKind::Decode,
                "the Rucio token holds characters that cannot be sent in an HTTP header",
            )
        })?;
        Ok(Self {
            header: AuthHeader::new(HeaderName::from_static(AUTH_TOKEN), value),
            token,
            expires_at,
            account,
            source_header: None,
        })
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("account", &self.account)
            .finish()
    }
}

pub(crate) fn refused_or_server(status: StatusCode) -> ErrorKind {
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        ErrorKind::LoginRefused
    } else {
        ErrorKind::Server
    }
}

pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Turns the auth server's answer into a token, the 206 list of accounts, or Rucio's error.
fn login_answer(
    sent: sciauth_transport::Result<sciauth_transport::Response>,
    target: &LoginTarget<'_>,
    now: SystemTime,
    auth_type: &str,
) -> Result<SessionToken> {
    let what = target.describe(auth_type);
    let response = sent.map_err(|e| Error::from_transport(&what, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::from_answer(
            refused_or_server(status),
            &what,
            &response,
        ));
    }
    answer_to_token(
        status,
        response.headers(),
        response.bytes(),
        target,
        now,
        auth_type,
    )
}

/// The token in a successful login answer (`status`, `headers`, `body`), or the 206 list
/// of accounts.
pub(crate) fn answer_to_token(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    target: &LoginTarget<'_>,
    now: SystemTime,
    auth_type: &str,
) -> Result<SessionToken> {
    let what = target.describe(auth_type);
    if status == StatusCode::PARTIAL_CONTENT {
        let mut accounts: Vec<String> = header_text(headers, AUTH_ACCOUNTS)
            .map(|list| crate::config::split_hosts(list.as_str()))
            .unwrap_or_default();
        if accounts.is_empty() {
            accounts = serde_json::from_slice(body).unwrap_or_default();
        }
        return Err(Error::multiple_accounts(&what, accounts));
    }
    let token = header_text(headers, AUTH_TOKEN).ok_or_else(|| {
        Error::new(
            ErrorKind::Decode,
            format!("{what}: HTTP {status} without an X-Rucio-Auth-Token header"),
        )
    })?;
    let expires_at = match header_text(headers, AUTH_TOKEN_EXPIRES) {
        Some(text) => match parse_expires(&text) {
            Some(at) => Some(at),
            None => {
                tracing::warn!(
                    value = %printable(&text, 100),
                    "cannot read X-Rucio-Auth-Token-Expires; assuming Rucio's 1 hour lifetime"
                );
                Some(later(now, DEFAULT_TOKEN_LIFETIME))
            }
        },
        None => Some(later(now, DEFAULT_TOKEN_LIFETIME)),
    };
    tracing::debug!(
        host = target.host,
        auth_type,
        account = target.account,
        "logged in to Rucio"
    );
    SessionToken::new(
        SecretString::from(token),
        expires_at,
        header_text(headers, AUTH_ACCOUNT),
    )
}

/// The Rucio server's token lifetime (fixed in Rucio 41), assumed when the answer does not
/// say.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Reads `X-Rucio-Auth-Token-Expires`: `%a, %d %b %Y %H:%M:%S UTC` (RFC 1123 with `UTC` for
/// `GMT`), or seconds since the epoch (the form `/auth/oidc_refresh` sends).
pub(crate) fn parse_expires(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return UNIX_EPOCH.checked_add(Duration::from_secs(seconds));
    }
    let gmt = match text.strip_suffix("UTC") {
        Some(stem) => format!("{}GMT", stem),
        None => text.to_owned(),
    };
    httpdate::parse_http_date(&gmt).ok()
}

impl OidcSource {
    /// The access token, from discovery or from the credential (told first that Rucio
    /// rejected `rejected`, if given).
    async fn token(&self, rejected: Option<&AuthHeader>) -> Result<SessionToken> {
        let (token, source_header) = match self {
            Self::Discovery(discovery) => {
                let found = discovery.discover().map_err(|e| {
                    Error::new(
                        ErrorKind::Credential,
                        format!("looking for a bearer token (WLCG discovery) failed: {e}"),
                    )
                    .with_source(e)
                })?;
                let found = found.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Credential,
                        "no bearer token for the Rucio oidc login: set BEARER_TOKEN or \
                         BEARER_TOKEN_FILE, or put one in $XDG_RUNTIME_DIR/bt_u<uid> or \
                         /tmp/bt_u<uid> (oidc-agent, htgettoken and `sciauth token` write there)",
                    )
                })?;
                (found.token().clone(), None)
            }
            Self::Rucio(_) | Self::DiscoveryThenRucio(..) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "the Rucio-brokered OIDC login has no token source of its own",
                ));
            }
            Self::Credential(credential) => {
                let failed = |e: sciauth_credentials::Error| {
                    Error::new(
                        ErrorKind::Credential,
                        format!("the OIDC token source for the Rucio login failed: {e}"),
                    )
                    .with_source(e)
                };
                if rejected.is_some() {
                    credential.rejected(rejected).await.map_err(failed)?;
                }
                let header = credential.header().await.map_err(failed)?.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Credential,
                        "the OIDC token source for the Rucio login gave no header",
                    )
                })?;
                let token = header
                    .value()
                    .to_str()
                    .ok()
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .map(|v| SecretString::from(v.trim().to_owned()))
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Credential,
                            "the OIDC token source for the Rucio login gave a header that is \
                             not `Bearer <token>`",
                        )
                    })?;
                (token, Some(header))
            }
        };
        let expires_at = jwt_expiry(token.expose_secret());
        let mut session = SessionToken::new(token, expires_at, None)?;
        session.source_header = source_header;
        Ok(session)
    }
}

/// Asks the auth server what `token` is (`GET /auth/validate`): for a token the Rucio client
/// wrote, or one the OIDC login just fetched, whose expiry and account nobody said.
/// `Ok(None)` when the server does not accept it (Rucio answers 401, or 500 for an expired
/// token), when it is for another account than `target`'s, or when it expired.
pub(crate) async fn validate(
    auth: &Transport,
    target: &LoginTarget<'_>,
    token: &SecretString,
    now: SystemTime,
) -> Result<Option<SessionToken>> {
    let what = format!("the Rucio token validation at {}", target.host);
    let mut request = auth
        .get("auth/validate")
        .no_credential()
        .sensitive_header("X-Rucio-Auth-Token", token.expose_secret());
    if let Some(vo) = target.vo {
        request = request.header(VO, vo);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::from_transport(&what, e))?;
    if !response.status().is_success() {
        tracing::debug!(status = %response.status(), "the Rucio server does not accept the token");
        return Ok(None);
    }
    let Some(validated) = parse_validation(response.bytes()) else {
        tracing::warn!("the Rucio token validation answer is not what Rucio sends; logging in");
        return Ok(None);
    };
    if target.account.is_some_and(|a| a != validated.account) {
        tracing::info!("the cached Rucio token is for another account; logging in");
        return Ok(None);
    }
    if validated.lifetime <= now {
        return Ok(None);
    }
    SessionToken::new(
        token.clone(),
        Some(validated.lifetime),
        Some(validated.account),
    )
    .map(Some)
}

/// What `/auth/validate` says of a token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Validation {
    pub(crate) account: String,
    pub(crate) lifetime: SystemTime,
}

/// Reads the answer of `/auth/validate`, a Python `repr` of a dict, not JSON:
/// `{'account': 'root', 'identity': 'rucio-test', 'lifetime': datetime.datetime(2026, 11, 23,
/// 1, 30, 53, 541526), 'audience': None, 'authz_scope': None, 'vo': 'def'}`. Only the account
/// (a Rucio account name: letters, digits, `-`, `_`, at most 64) and the lifetime (UTC) are
/// taken; anything else makes it `None`.
pub(crate) fn parse_validation(body: &[u8]) -> Option<Validation> {
    let text = std::str::from_utf8(body).ok()?;
    if text.len() > 64 * 1024 {
        return None;
    }
    let account_start = text.find("'account': '")? + "'account': '".len();
    let account_len = text.get(account_start..)?.find('\'')?;
    let account = text.get(account_start..account_start + account_len)?;
    if account.is_empty()
        || account.len() > 64
        || !account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return None;
    }
    let lifetime_start =
        text.find("'lifetime': datetime.datetime(")? + "'lifetime': datetime.datetime(".len();
    let lifetime_len = text.get(lifetime_start..)?.find(')')?;
    let fields: Vec<u64> = text
        .get(lifetime_start..lifetime_start + lifetime_len)?
        .split(',')
        .map(|f| f.trim().parse::<u64>().ok())
        .collect::<Option<_>>()?;
    let (&[year, month, day], rest) = fields.split_first_chunk::<3>()?;
    let [hour, minute, second] = match rest {
        [h, m, s, ..] => [*h, *m, *s],
        [h, m] => [*h, *m, 0],
        [h] => [*h, 0, 0],
        [] => [0, 0, 0],
    };
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    let lifetime = UNIX_EPOCH.checked_add(Duration::from_secs(seconds))?;
    Some(Validation {
        account: account.to_owned(),
        lifetime,
    })
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (year 1970 or later;
/// Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The `exp` claim of a JWT, read without checking the signature (only to renew in time;
/// the server checks the token). `None` for anything else.
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: u64,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rucio_expiry_dates_parse() {
        let at = parse_expires("Mon, 23 Nov 2026 12:09:26 UTC").unwrap();
        assert_eq!(at, UNIX_EPOCH + Duration::from_secs(1_795_435_766));
        assert_eq!(
            parse_expires("1795435766"),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_435_766))
        );
        for bad in ["", "tomorrow", "Mon, 99 Nov 2026 12:09:26 UTC", "\u{fffd}"] {
            assert_eq!(parse_expires(bad), None, "{bad}");
        }
    }

    #[test]
    fn rucio_validation_answers_are_read_strictly() {
        let body = b"{'account': 'root', 'identity': 'rucio-test', 'lifetime': \
            datetime.datetime(2026, 11, 23, 12, 9, 26, 541526), 'audience': None, \
            'authz_scope': None, 'vo': 'def'}";
        assert_eq!(
            parse_validation(body),
            Some(Validation {
                account: "root".into(),
                lifetime: UNIX_EPOCH + Duration::from_secs(1_795_435_766),
            })
        );
        let leap = b"{'account': 'a_b-1', 'lifetime': datetime.datetime(2028, 2, 29, 0, 0)}";
        assert_eq!(
            parse_validation(leap).unwrap().lifetime,
            UNIX_EPOCH + Duration::from_secs(1_835_395_200)
        );
        for bad in [
            &b""[..],
            b"{'account': 'root'}",
            b"{'account': 'ro\x1bot', 'lifetime': datetime.datetime(2026, 1, 1, 0, 0, 0)}",
            b"{'account': '', 'lifetime': datetime.datetime(2026, 1, 1, 0, 0, 0)}",
            b"{'account': 'root', 'lifetime': datetime.datetime(2026, 13, 1, 0, 0, 0)}",
            b"{'account': 'root', 'lifetime': datetime.datetime(99999999999999999999, 1, 1)}",
            b"{'account': 'root', 'lifetime': datetime.datetime(2026, 1)}",
            b"{'account': 'root', 'lifetime': datetime.datetime(-1, 1, 1)}",
            b"{'account': 'root', 'lifetime': datetime.datetime(2026, 1, 1, 0, 0, 0",
            b"\xff\xfe",
        ] {
            assert_eq!(
                parse_validation(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn jwt_expiry_is_read_without_verifying() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"x","exp":1700000000}"#);
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
        assert_eq!(
            jwt_expiry(&token),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(jwt_expiry("root-rucio-test-unknown-abc"), None);
        assert_eq!(jwt_expiry("a.!!!.b"), None);
    }

    #[test]
    fn only_rucio_challenges_for_the_account_pass() {
        let host = "https://rucio-auth.example";
        // What Rucio's get_ssh_challenge_token makes: a random number up to sys.maxsize, the
        // account ([a-z0-9-_]+), the expiry in Unix seconds.
        for (challenge, account) in [
            ("challenge-3961782624705561423-root-1795393905", "root"),
            ("challenge-0-ddm-admin_1-1795393905", "ddm-admin_1"),
            ("challenge-9223372036854775807-a-99999999999", "a"),
        ] {
            check_ssh_challenge(challenge, account, host).unwrap();
        }
        for (challenge, account) in [
            (
                "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyb290In0",
                "root",
            ),
            ("challenge-1-alice-2", "root"),
            ("challenge-1-root-2.eyJ", "root"),
            ("challenge-1-root-2 ", "root"),
            ("challenge-1-root-", "root"),
            ("challenge--root-2", "root"),
            ("challenge-x1-root-2", "root"),
            ("challenge-1-root-2\n", "root"),
            ("challenge-1-root-\u{661}", "root"),
            ("challenge-123456789012345678901-root-2", "root"),
            ("CHALLENGE-1-root-2", "root"),
            ("", "root"),
        ] {
            let error = check_ssh_challenge(challenge, account, host).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::BadChallenge, "{challenge:?}");
            assert!(error.to_string().contains("nothing was signed"), "{error}");
        }
    }

    /// A test CA, and a user certificate from it as PEM (certificate then key), able to
    /// sign proxies.
    struct Pki {
        ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    }

    fn dn(names: &[(rcgen::DnType, &str)]) -> rcgen::CertificateParams {
        let mut params = rcgen::CertificateParams::default();
        for (kind, value) in names {
            params.distinguished_name.push(kind.clone(), *value);
        }
        params
    }

    impl Pki {
        fn new() -> Self {
            let mut params = dn(&[(rcgen::DnType::CommonName, "Test Grid CA")]);
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca =
                rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                    .unwrap();
            Self { ca }
        }

        fn user(&self, name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
            let params = dn(&[
                (rcgen::DnType::OrganizationName, "Grid"),
                (rcgen::DnType::CommonName, name),
            ]);
            rcgen::CertifiedIssuer::signed_by(params, rcgen::KeyPair::generate().unwrap(), &self.ca)
                .unwrap()
        }

        /// An x509up file: an RFC 3820 proxy of `user` (subject = the user's plus
        /// CN=`serial`, critical proxyCertInfo), its key, then the user's certificate.
        fn proxy_file(
            &self,
            user: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
            name: &str,
            serial: &str,
        ) -> String {
            let mut params = dn(&[
                (rcgen::DnType::OrganizationName, "Grid"),
                (rcgen::DnType::CommonName, name),
                (rcgen::DnType::CommonName, serial),
            ]);
            // ProxyCertInfo ::= SEQUENCE { SEQUENCE { id-ppl-inheritAll } }
            let inherit_all = [
                0x30, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x15, 0x01,
            ];
            let mut info = rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 14],
                inherit_all.to_vec(),
            );
            info.set_criticality(true);
            params.custom_extensions.push(info);
            let key = rcgen::KeyPair::generate().unwrap();
            let proxy = params.signed_by(&key, user).unwrap();
            format!("{}{}{}", proxy.pem(), key.serialize_pem(), user.pem())
        }
    }

    #[test]
    fn the_cache_identity_of_a_certificate_is_its_dn_not_its_path() {
        let pki = Pki::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x509up_u1000");
        let alice = pki.user("alice");
        let bob = pki.user("bob");

        std::fs::write(&path, pki.proxy_file(&alice, "alice", "1111")).unwrap();
        let first = AuthMethod::x509_proxy(&path).cache_identity().unwrap();
        assert!(first.contains("CN=alice"), "{first}");
        assert!(first.contains("issuer=CN=Test Grid CA"), "{first}");
        assert!(!first.contains("1111"), "the proxy's own CN: {first}");

        // A renewed proxy of the same user finds the same session.
        std::fs::write(&path, pki.proxy_file(&alice, "alice", "2222")).unwrap();
        assert_eq!(
            AuthMethod::x509_proxy(&path).cache_identity().unwrap(),
            first
        );

        // Another user's proxy at the same path does not.
        std::fs::write(&path, pki.proxy_file(&bob, "bob", "1111")).unwrap();
        let other = AuthMethod::x509_proxy(&path).cache_identity().unwrap();
        assert_ne!(other, first);
        assert!(other.contains("CN=bob"), "{other}");

        // A certificate and key in separate files, likewise.
        let cert = dir.path().join("usercert.pem");
        let key = dir.path().join("userkey.pem");
        std::fs::write(&cert, alice.pem()).unwrap();
        std::fs::write(&key, "not read for the identity").unwrap();
        assert_eq!(
            AuthMethod::x509(&cert, &key).cache_identity().unwrap(),
            first
        );
        std::fs::write(&cert, bob.pem()).unwrap();
        assert_eq!(
            AuthMethod::x509(&cert, &key).cache_identity().unwrap(),
            other
        );

        // Nothing readable, no identity (and no cache).
        std::fs::write(&cert, "garbage").unwrap();
        assert_eq!(AuthMethod::x509(&cert, &key).cache_identity(), None);
        assert_eq!(
            AuthMethod::x509_proxy(dir.path().join("missing")).cache_identity(),
            None
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let method = AuthMethod::userpass("alice", SecretString::from("hunter2-secret"));
        let shown = format!("{method:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice") && shown.contains("userpass"));
    }
}
