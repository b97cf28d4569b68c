//! [`RucioClient`] and its builder: the Rucio client's configuration, a session, and the
//! authenticated transport.

// tidy: long, the client and its builder, whose precedence rules (explicit > environment > rucio.cfg) read best in one place

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use sciauth_credentials::{Clock, SystemClock};
use sciauth_transport::{HeaderValue, Method, RequestBuilder, Transport, TransportBuilder};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cache::{CacheKey, TokenCache, default_dir, dir_beside, shared_files};
use crate::config::{Environment, RucioConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::login::{ACCOUNT, AuthMethod, ClientIdentity, PassphrasePrompt, VO};
use crate::oidc::{OidcPrompt, RucioOidc};
use crate::session::{Inner, RucioSession, SessionInfo};

/// Where an `oidc` login (`auth_type = oidc`) gets its token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OidcTokenSource {
    /// The Rucio client's order: a token WLCG Bearer Token Discovery finds
    /// (`BEARER_TOKEN`, `BEARER_TOKEN_FILE`, `$XDG_RUNTIME_DIR/bt_u<uid>`, `/tmp/bt_u<uid>`),
    /// else the Rucio-brokered login.
    #[default]
    Default,
    /// The Rucio-brokered login only: the server runs the login with its identity provider.
    Rucio,
    /// WLCG Bearer Token Discovery only: the token an agent or `sciauth token
    /// --write-discovery` keeps fresh, sent as it is.
    Discovery,
}

/// The user agent unless set otherwise.
const DEFAULT_USER_AGENT: &str = concat!("sciauth-rucio/", env!("CARGO_PKG_VERSION"));
/// The Rucio client's request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The Rucio client's `request_retries`.
const DEFAULT_RETRIES: u32 = 3;
/// How long before its expiry a token is renewed.
const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(300);

/// A Rucio account, as `/accounts/whoami` describes it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// The account name, e.g. `root`.
    pub account: String,
    /// `USER`, `GROUP` or `SERVICE`.
    #[serde(default)]
    pub account_type: Option<String>,
    /// `ACTIVE`, `SUSPENDED` or `DELETED`.
    #[serde(default)]
    pub status: Option<String>,
    /// The account's email address, if set.
    #[serde(default)]
    pub email: Option<String>,
    /// Every other field the server sent (`created_at`, `updated_at`, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A client of one Rucio server: logs in as configured and sends authenticated requests.
///
/// Every request carries `X-Rucio-Auth-Token` (from the [`RucioSession`]), and `X-Rucio-VO`
/// and `X-Rucio-Account` when they are configured, as the Rucio client sends them. Cloning
/// is cheap; clones share the session and the connections.
///
/// # Example
///
/// ```no_run
/// use sciauth_rucio::RucioClient;
///
/// # async fn run() -> sciauth_rucio::Result<()> {
/// // rucio.cfg and RUCIO_* variables, as the Python client reads them.
/// let client = RucioClient::from_environment()?;
/// let me = client.whoami().await?;
/// println!("logged in to Rucio as {}", me.account);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RucioClient {
    api: Transport,
    session: RucioSession,
    rucio_hosts: Vec<String>,
    vo: Option<HeaderValue>,
    account: Option<HeaderValue>,
}

impl RucioClient {
    /// A builder with every setting at its default.
    pub fn builder() -> RucioClientBuilder {
        RucioClientBuilder::new()
    }

    /// A client configured as the Rucio client would be in this process: `rucio.cfg`
    /// (found through `RUCIO_CONFIG`, `RUCIO_HOME`, ...) under the `RUCIO_*` environment.
    pub fn from_environment() -> Result<Self> {
        let env = Environment::from_process();
        let config = RucioConfig::load(&env)?;
        Self::builder().environment(env).config(config).build()
    }

    /// The session: its token, its non-secret [`info`](RucioSession::info), and the
    /// credential to put on transports of your own.
    pub fn session(&self) -> &RucioSession {
        &self.session
    }

    /// The authenticated transport to the API host(s). Requests made on it directly carry
    /// the token but not `X-Rucio-VO` / `X-Rucio-Account`; [`request`](Self::request) adds
    /// those.
    pub fn transport(&self) -> &Transport {
        &self.api
    }

    /// The API hosts, as configured.
    pub fn rucio_hosts(&self) -> &[String] {
        &self.rucio_hosts
    }

    /// The current Rucio token, logging in first if needed (`sciauth token`).
    pub async fn token(&self) -> Result<SecretString> {
        self.session.token().await
    }

    /// Non-secret facts for listings: account, VO, auth type, auth host, token expiry.
    pub fn info(&self) -> SessionInfo {
        self.session.info()
    }

    /// Starts a request to the API host (a path like `accounts/root`, or an absolute URL)
    /// with the token, `X-Rucio-VO` and `X-Rucio-Account`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.api.request(method, path);
        if let Some(vo) = &self.vo {
            request = request.header(VO, vo.clone());
        }
        if let Some(account) = &self.account {
            request = request.header(ACCOUNT, account.clone());
        }
        request
    }

    /// GETs `path` and decodes the JSON answer; a non-2xx answer is an
    /// [`ErrorKind::Server`] error with Rucio's exception.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let what = format!("GET {path} on Rucio");
        let response = self
            .request(Method::GET, path)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| Error::from_transport(&what, e))?;
        if !response.status().is_success() {
            return Err(Error::from_answer(ErrorKind::Server, &what, &response));
        }
        response
            .json()
            .map_err(|e| Error::new(ErrorKind::Decode, format!("{what}: {e}")).with_source(e))
    }

    /// The server's version (`GET /ping`, which needs no login).
    pub async fn ping(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct Ping {
            version: String,
        }
        let what = "GET ping on Rucio";
        let response = self
            .api
            .get("ping")
            .no_credential()
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| Error::from_transport(what, e))?;
        if !response.status().is_success() {
            return Err(Error::from_answer(ErrorKind::Server, what, &response));
        }
        let ping: Ping = response
            .json()
            .map_err(|e| Error::new(ErrorKind::Decode, format!("{what}: {e}")).with_source(e))?;
        Ok(ping.version)
    }

    /// The account this client is logged in as (`GET /accounts/whoami`, which answers with
    /// a redirect to the account).
    pub async fn whoami(&self) -> Result<Account> {
        self.get_json("accounts/whoami").await
    }
}

/// Settings for a [`RucioClient`], made by [`RucioClient::builder`].
///
/// Explicit setters override the [`config`](Self::config), which holds `rucio.cfg` with the
/// environment laid over it, so the precedence is the Rucio client's: explicit arguments >
/// environment > file. Setters take and return the builder by value; nothing is read or
/// sent until [`build`](Self::build) (files) and the first request (the login).
#[derive(Debug)]
pub struct RucioClientBuilder {
    config: RucioConfig,
    env: Option<Environment>,
    rucio_hosts: Option<Vec<String>>,
    auth_hosts: Option<Vec<String>>,
    account: Option<String>,
    vo: Option<String>,
    auth: Option<AuthMethod>,
    ca_cert: Option<PathBuf>,
    user_agent: String,
    timeout: Duration,
    retries: Option<u32>,
    cache: CacheSetting,
    clock: Arc<dyn Clock>,
    renew_before: Duration,
    share: bool,
    oidc_source: OidcTokenSource,
    oidc_prompt: Option<Arc<dyn OidcPrompt>>,
    ssh_passphrase: Option<SecretString>,
    key_passphrase: Option<SecretString>,
    passphrase_prompt: Option<PassphrasePrompt>,
}

#[derive(Debug)]
enum CacheSetting {
    Default,
    Dir(PathBuf),
    Off,
}

impl Default for RucioClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RucioClientBuilder {
    /// A builder with every setting at its default. Same as [`RucioClient::builder`].
    pub fn new() -> Self {
        Self {
            config: RucioConfig::default(),
            env: None,
            rucio_hosts: None,
            auth_hosts: None,
            account: None,
            vo: None,
            auth: None,
            ca_cert: None,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            retries: None,
            cache: CacheSetting::Default,
            clock: Arc::new(SystemClock),
            renew_before: DEFAULT_RENEW_BEFORE,
            share: true,
            oidc_source: OidcTokenSource::Default,
            oidc_prompt: None,
            ssh_passphrase: None,
            key_passphrase: None,
            passphrase_prompt: None,
        }
    }

    /// The passphrase of an encrypted x509 `client_key` (encrypted PKCS#8, `BEGIN ENCRYPTED
    /// PRIVATE KEY`), decrypted when the client is built.
    ///
    /// By default, the [`passphrase_prompt`](Self::passphrase_prompt)'s answer; without
    /// either, an encrypted key fails the build, saying how to give one.
    pub fn client_key_passphrase(mut self, passphrase: SecretString) -> Self {
        self.key_passphrase = Some(passphrase);
        self
    }

    /// Whether the token is shared with the Rucio client through its token file
    /// (`auth_token_file_path`, else `<tmp>/<user>/.rucio_<user>[@<vo>]/auth_token_for_account_<account>`),
    /// so that `rucio` and this client log in once between them. The file is read as
    /// hostile input (see the crate documentation); a token found there that this crate did not
    /// write is checked with the server (`/auth/validate`) before it is used.
    ///
    /// By default, true (when the cache is on and a user name is known).
    pub fn share_with_rucio_client(mut self, yes: bool) -> Self {
        self.share = yes;
        self
    }

    /// Where an `oidc` login from the config gets its token.
    ///
    /// By default, [`OidcTokenSource::Default`]: the Rucio client's order.
    pub fn oidc_token_source(mut self, source: OidcTokenSource) -> Self {
        self.oidc_source = source;
        self
    }

    /// Where the Rucio-brokered OIDC login shows its URL and reads its code.
    ///
    /// By default, [`StderrPrompt`](crate::StderrPrompt).
    pub fn oidc_prompt(mut self, prompt: Arc<dyn OidcPrompt>) -> Self {
        self.oidc_prompt = Some(prompt);
        self
    }

    /// The passphrase of the config's encrypted `ssh_private_key`.
    ///
    /// By default, `RUCIO_SSH_PASSPHRASE` if set, else the
    /// [`passphrase_prompt`](Self::passphrase_prompt)'s answer.
    pub fn ssh_passphrase(mut self, passphrase: SecretString) -> Self {
        self.ssh_passphrase = Some(passphrase);
        self
    }

    /// Asks for the passphrase of the config's encrypted `ssh_private_key` when a login needs
    /// the key and no passphrase was given (a prompt on a terminal).
    ///
    /// By default, none: an encrypted key without a passphrase fails the login, saying how to
    /// give one.
    pub fn passphrase_prompt(mut self, prompt: PassphrasePrompt) -> Self {
        self.passphrase_prompt = Some(prompt);
        self
    }

    /// The configuration the other settings fall back on, usually
    /// [`RucioConfig::load`]'s.
    ///
    /// By default, an empty one: everything must be set explicitly.
    pub fn config(mut self, config: RucioConfig) -> Self {
        self.config = config;
        self
    }

    /// The environment for WLCG token discovery (`oidc` from the config) and the default
    /// cache directory.
    ///
    /// By default, this process's ([`Environment::from_process`]).
    pub fn environment(mut self, env: Environment) -> Self {
        self.env = Some(env);
        self
    }

    /// The API server, e.g. `https://rucio.example.org`.
    ///
    /// By default, the config's `rucio_host`.
    pub fn rucio_host(self, url: impl Into<String>) -> Self {
        self.rucio_hosts([url.into()])
    }

    /// Several equivalent API servers: each request picks one at random and fails over to
    /// the next when it cannot connect.
    ///
    /// By default, the config's `rucio_host` (which may list several, comma-separated).
    pub fn rucio_hosts<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rucio_hosts = Some(urls.into_iter().map(Into::into).collect());
        self
    }

    /// The auth server.
    ///
    /// By default, the config's `auth_host`, else the API hosts.
    pub fn auth_host(self, url: impl Into<String>) -> Self {
        self.auth_hosts([url.into()])
    }

    /// Several equivalent auth servers, with random choice and failover.
    ///
    /// By default, the config's `auth_host`, else the API hosts.
    pub fn auth_hosts<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.auth_hosts = Some(urls.into_iter().map(Into::into).collect());
        self
    }

    /// The account to log in to.
    ///
    /// By default, the config's `account` (`RUCIO_ACCOUNT`), else none: the server picks
    /// the identity's default account, or answers with [`ErrorKind::MultipleAccounts`].
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// The VO.
    ///
    /// By default, the config's `vo` (`RUCIO_VO`), else none (the server's default, `def`).
    pub fn vo(mut self, vo: impl Into<String>) -> Self {
        self.vo = Some(vo.into());
        self
    }

    /// How to log in.
    ///
    /// By default, the config's `auth_type` (`RUCIO_AUTH_TYPE`) with its credentials:
    /// `username`/`password`, `ssh_private_key` (else `~/.ssh/id_rsa`),
    /// `client_cert`/`client_key`, the proxy, or WLCG token discovery for `oidc`.
    pub fn auth(mut self, method: AuthMethod) -> Self {
        self.auth = Some(method);
        self
    }

    /// Trusts these CAs besides the platform's: a PEM file, or a directory of CA
    /// certificates (`/etc/grid-security/certificates`).
    ///
    /// By default, the config's `X509_CERT_DIR` or `ca_cert`, else the platform's roots only.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// The `User-Agent` header.
    ///
    /// By default, `sciauth-rucio/<version>`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// How long one attempt of a request may take.
    ///
    /// By default, 600 s, as the Rucio client.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often a request is retried after a connect error or 502/503/504.
    ///
    /// By default, the config's `request_retries`, else 3.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Keeps the token cache in this directory (created 0700).
    ///
    /// By default, a private subdirectory `sciauth-<uid>/rucio` of the directory of the
    /// config's `auth_token_file_path` if set (never that directory itself, which may be
    /// `/tmp`), else
    /// `$XDG_RUNTIME_DIR/sciauth/rucio`, `$XDG_CACHE_HOME/sciauth/rucio`,
    /// `~/.cache/sciauth/rucio`, or `/tmp/sciauth-<uid>/rucio`.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache = CacheSetting::Dir(dir.into());
        self
    }

    /// Keeps the token in memory only: every process logs in itself.
    ///
    /// By default, the cache is on (OIDC tokens are never cached here: they live in
    /// their own store).
    pub fn no_cache(mut self) -> Self {
        self.cache = CacheSetting::Off;
        self
    }

    /// The clock that judges token expiry.
    ///
    /// By default, the system clock; tests pass a
    /// [`ManualClock`](sciauth_credentials::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long before its expiry a token is renewed (and a cached token no longer used).
    ///
    /// By default, 5 minutes.
    pub fn renew_before(mut self, margin: Duration) -> Self {
        self.renew_before = margin;
        self
    }

    /// Everything but the transports: hosts, account, VO, login method, cache.
    // tidy: long, every setting's precedence (explicit > environment > rucio.cfg), one after another
    fn prepare(self) -> Result<Prepared> {
        let env = self.env.unwrap_or_else(Environment::from_process);
        let config = self.config;
        let rucio_hosts = self.rucio_hosts.unwrap_or(config.rucio_hosts.clone());
        if rucio_hosts.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "no Rucio host: set rucio_host in [client] of rucio.cfg (found through \
                 RUCIO_CONFIG or RUCIO_HOME), or pass the host",
            ));
        }
        let auth_hosts = match self.auth_hosts {
            Some(hosts) if !hosts.is_empty() => hosts,
            _ if !config.auth_hosts.is_empty() => config.auth_hosts.clone(),
            _ => rucio_hosts.clone(),
        };
        let account = self.account.or(config.account.clone());
        let vo = self.vo.or(config.vo.clone());
        let method = match self.auth {
            Some(method) => method,
            None => {
                let passphrase = self.ssh_passphrase.clone().or_else(|| {
                    env.get("RUCIO_SSH_PASSPHRASE")
                        .map(|p| SecretString::from(p.to_string_lossy().into_owned()))
                });
                let settings = oidc_settings(&config, self.oidc_prompt.clone());
                method_from_config(
                    &config,
                    &env,
                    self.oidc_source,
                    settings,
                    passphrase,
                    self.passphrase_prompt.clone(),
                )?
            }
        };
        // A Rucio-brokered OIDC token is renewed only through the server's refresh; without
        // it, it is used to its end (a new login needs the user).
        let renew_before = match method.rucio_oidc() {
            Some(settings) => settings.renew_before(),
            None => self.renew_before,
        };
        let ca = self.ca_cert.or(config.ca_cert.clone());
        let retries = self
            .retries
            .or(config.request_retries)
            .unwrap_or(DEFAULT_RETRIES);

        let auth_host = {
            let mut sorted = auth_hosts.clone();
            sorted.sort();
            sorted.join(",")
        };
        let share = self.share;
        let cache = match (self.cache, method.cache_identity()) {
            (CacheSetting::Off, _) | (_, None) => None,
            (setting, Some(identity)) => {
                let dir = match setting {
                    CacheSetting::Dir(dir) => dir,
                    _ => match config.auth_token_file_path.as_deref() {
                        Some(token_file) => {
                            dir_beside(token_file, &env).unwrap_or_else(|| default_dir(&env))
                        }
                        None => default_dir(&env),
                    },
                };
                let cache = TokenCache::new(
                    dir,
                    CacheKey {
                        auth_host: auth_host.clone(),
                        vo: vo.clone().unwrap_or_default(),
                        account: account.clone().unwrap_or_default(),
                        auth_type: method.auth_type().to_owned(),
                        identity,
                    },
                );
                let shared = share
                    .then(|| {
                        shared_files(
                            config.auth_token_file_path.as_deref(),
                            &env,
                            account.as_deref(),
                            vo.as_deref(),
                        )
                    })
                    .flatten();
                Some(match shared {
                    Some(files) => {
                        let expiry = method.rucio_oidc().is_some_and(|s| s.refresh_active);
                        cache.shared(files, expiry)
                    }
                    None => cache,
                })
            }
        };
        Ok(Prepared {
            rucio_hosts,
            auth_hosts,
            account,
            vo,
            method,
            renew_before,
            ca,
            retries,
            cache,
            user_agent: self.user_agent,
            timeout: self.timeout,
            clock: self.clock,
            key_passphrase: self.key_passphrase,
            passphrase_prompt: self.passphrase_prompt,
        })
    }

    /// The token cached for this configuration (by this crate, or by the Rucio client and
    /// taken over since) if it stays valid at least `min_valid` longer, with its expiry:
    /// the configuration and one cache file read, and nothing else. No TLS setup, no key
    /// or certificate read (an SSH key is named by its public half), no network, no lock.
    /// `Ok(None)` when a login (or a check with the server) is needed.
    pub fn cached_token(
        self,
        min_valid: Duration,
    ) -> Result<Option<(SecretString, Option<std::time::SystemTime>)>> {
        let prepared = self.prepare()?;
        let Some(cache) = &prepared.cache else {
            return Ok(None);
        };
        let Some(crate::cache::Cached::Known(token)) = cache.read() else {
            return Ok(None);
        };
        if !crate::cache::usable(&token, prepared.clock.now(), min_valid) {
            return Ok(None);
        }
        Ok(Some((token.token, token.expires_at)))
    }

    /// Makes the client: reads key and certificate files and sets up TLS. Does not log in.
    ///
    /// Fails with [`ErrorKind::Config`] for a missing host or auth type or an unusable
    /// file, and [`ErrorKind::Credential`] for an unusable SSH key.
    // tidy: long, the two transports and the session, each made from the prepared settings
    pub fn build(self) -> Result<RucioClient> {
        let Prepared {
            rucio_hosts,
            auth_hosts,
            account,
            vo,
            method,
            renew_before,
            ca,
            retries,
            cache,
            user_agent,
            timeout,
            clock,
            key_passphrase,
            passphrase_prompt,
        } = self.prepare()?;
        let common = |builder: TransportBuilder| {
            let builder = builder
                .user_agent(user_agent.clone())
                .timeout(timeout)
                .retries(retries)
                .security_sessions(false);
            match &ca {
                Some(path) if path.is_dir() => builder.root_ca_dir(path),
                Some(path) => builder.root_ca_pem_file(path),
                None => builder,
            }
        };
        // Logins never follow redirects: the password or client certificate must go to
        // the configured auth host only.
        let mut auth = common(Transport::builder().hosts(&auth_hosts)).follow_redirects(false);
        auth = match method.client_identity() {
            Some(ClientIdentity::CertAndKey(cert, key)) => auth.client_cert_pem_files(cert, key),
            Some(ClientIdentity::Proxy(proxy)) => auth.client_proxy_pem_file(proxy),
            None => auth,
        };
        let auth = match method.client_identity() {
            Some(ClientIdentity::CertAndKey(cert, key)) => {
                match encrypted_key(key, key_passphrase.as_ref(), passphrase_prompt.as_ref())? {
                    Some(der) => auth.client_cert_pem_file_with_key(cert, der),
                    None => auth,
                }
            }
            _ => auth,
        };
        let auth = auth.build().map_err(|e| build_error("the auth host", e))?;

        let header = |text: &Option<String>, what: &str| -> Result<Option<HeaderValue>> {
            text.as_deref()
                .map(|t| {
                    HeaderValue::from_str(t).map_err(|_| {
                        Error::new(
                            ErrorKind::Config,
                            format!("the {what} holds characters that cannot be sent in HTTP"),
                        )
                    })
                })
                .transpose()
        };
        let vo_header = header(&vo, "VO")?;
        let account_header = header(&account, "account")?;

        let session = RucioSession::new(Inner {
            method,
            auth,
            auth_host: auth_hosts.first().cloned().unwrap_or_default(),
            account,
            vo,
            clock,
            renew_before,
            cache,
            current: ArcSwapOption::empty(),
            login_lock: tokio::sync::Mutex::new(()),
            logins: Default::default(),
        });
        let api = common(Transport::builder().hosts(&rucio_hosts))
            .shared_credential(Arc::new(session.clone()))
            .build()
            .map_err(|e| build_error("the Rucio host", e))?;
        Ok(RucioClient {
            api,
            session,
            rucio_hosts,
            vo: vo_header,
            account: account_header,
        })
    }
}

/// A builder's settings resolved against the configuration.
struct Prepared {
    rucio_hosts: Vec<String>,
    auth_hosts: Vec<String>,
    account: Option<String>,
    vo: Option<String>,
    method: AuthMethod,
    renew_before: Duration,
    ca: Option<PathBuf>,
    retries: u32,
    cache: Option<TokenCache>,
    user_agent: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    key_passphrase: Option<SecretString>,
    passphrase_prompt: Option<PassphrasePrompt>,
}

/// The x509 client key, decrypted, if it is an encrypted PKCS#8 key (`None`: the transport
/// reads it as it is). Its passphrase: `given`, else the prompt's answer.
fn encrypted_key(
    path: &std::path::Path,
    given: Option<&SecretString>,
    prompt: Option<&PassphrasePrompt>,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    use sciauth_credentials::{ErrorKind as K, decrypt_tls_key};
    let Ok(bytes) =
        sciauth_credentials::fs::read_limited(path, sciauth_credentials::fs::MAX_NAMED_FILE)
    else {
        // Unreadable: the transport says why.
        return Ok(None);
    };
    let failed = |e: sciauth_credentials::Error| {
        Error::new(
            ErrorKind::Credential,
            format!("cannot use the client key {}: {e}", path.display()),
        )
        .with_source(e)
    };
    match decrypt_tls_key(&bytes, given) {
        Err(e) if e.kind() == K::PassphraseRequired => {
            match prompt.and_then(|prompt| prompt.ask(path)) {
                Some(passphrase) => decrypt_tls_key(&bytes, Some(&passphrase)).map_err(failed),
                None => Err(Error::new(
                    ErrorKind::Credential,
                    format!(
                        "the client key {} is encrypted: name a variable holding its passphrase \
                         with --passphrase-env (passphrase_env in a profile), or run on a \
                         terminal to be asked",
                        path.display()
                    ),
                )),
            }
        }
        other => other.map_err(failed),
    }
}

fn build_error(what: &str, error: sciauth_transport::Error) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("cannot set up the connection to {what}: {error}"),
    )
    .with_source(error)
}

/// The Rucio-brokered OIDC settings of the config's `oidc_*` keys.
fn oidc_settings(config: &RucioConfig, prompt: Option<Arc<dyn OidcPrompt>>) -> RucioOidc {
    let mut settings = RucioOidc::new();
    if let Some(scope) = &config.oidc_scope {
        settings = settings.scope(scope);
    }
    if let Some(audience) = &config.oidc_audience {
        settings = settings.audience(audience);
    }
    if let Some(issuer) = &config.oidc_issuer {
        settings = settings.issuer(issuer);
    }
    if let Some(polling) = config.oidc_polling {
        settings = settings.polling(polling);
    }
    if let Some(hours) = config.oidc_refresh_lifetime {
        settings = settings.refresh_lifetime(hours);
    }
    if let Some(active) = config.auth_oidc_refresh_active {
        settings = settings.refresh_active(active);
    }
    if let Some(minutes) = config.auth_oidc_refresh_before_exp {
        settings = settings.refresh_before(Duration::from_secs(u64::from(minutes) * 60));
    }
    if let Some(prompt) = prompt {
        settings = settings.prompt(prompt);
    }
    settings
}

/// The login method `rucio.cfg` and the environment describe.
// tidy: long, one match over rucio.cfg's auth types, each with the keys it needs
fn method_from_config(
    config: &RucioConfig,
    env: &Environment,
    oidc_source: OidcTokenSource,
    oidc: RucioOidc,
    ssh_passphrase: Option<SecretString>,
    passphrase_prompt: Option<PassphrasePrompt>,
) -> Result<AuthMethod> {
    let missing = |what: &str, auth_type: &str| {
        Error::new(
            ErrorKind::Config,
            format!("auth_type {auth_type} needs {what} in [client] of rucio.cfg"),
        )
    };
    match config.auth_type.as_deref() {
        None => Err(Error::new(
            ErrorKind::Config,
            "no Rucio auth_type: set auth_type in [client] of rucio.cfg or RUCIO_AUTH_TYPE \
             (userpass, ssh, x509, x509_proxy or oidc)",
        )),
        Some("userpass") => {
            let username = config
                .username
                .clone()
                .ok_or_else(|| missing("username", "userpass"))?;
            let password = config
                .password
                .clone()
                .ok_or_else(|| missing("password", "userpass"))?;
            Ok(AuthMethod::userpass(username, password))
        }
        Some("ssh") => {
            let key = config
                .ssh_private_key
                .clone()
                .unwrap_or_else(|| env.expand("~/.ssh/id_rsa"));
            AuthMethod::ssh_key_file_lazy(key, ssh_passphrase, passphrase_prompt)
        }
        Some("x509") => {
            let cert = config
                .client_cert
                .clone()
                .ok_or_else(|| missing("client_cert (or RUCIO_CLIENT_CERT)", "x509"))?;
            let key = config
                .client_key
                .clone()
                .ok_or_else(|| missing("client_key (or RUCIO_CLIENT_KEY)", "x509"))?;
            Ok(AuthMethod::x509(cert, key))
        }
        Some("x509_proxy") => {
            let proxy = config
                .client_x509_proxy
                .clone()
                .ok_or_else(|| missing("client_x509_proxy (or X509_USER_PROXY)", "x509_proxy"))?;
            Ok(AuthMethod::x509_proxy(proxy))
        }
        Some("oidc") if config.oidc_auto == Some(true) => Err(Error::new(
            ErrorKind::Config,
            "oidc_auto = true is not supported: it sent your identity provider's password to \
             the Rucio server, and Rucio removed it; set oidc_polling = true to log in in a \
             browser instead",
        )),
        Some("oidc") => Ok(match oidc_source {
            OidcTokenSource::Default => {
                AuthMethod::oidc_discovery_then_rucio(env.bearer_token_discovery(), oidc)
            }
            OidcTokenSource::Rucio => AuthMethod::oidc_rucio(oidc),
            OidcTokenSource::Discovery => AuthMethod::oidc_discovery(env.bearer_token_discovery()),
        }),
        Some(other @ ("gss" | "saml")) => Err(Error::new(
            ErrorKind::Config,
            format!(
                "auth_type {other} is not supported by sciauth (Rucio removed saml; gss needs \
                 Kerberos): use userpass, ssh, x509, x509_proxy or oidc"
            ),
        )),
        Some(other) => Err(Error::new(
            ErrorKind::Config,
            format!(
                "unknown Rucio auth_type {other:?}: use userpass, ssh, x509, x509_proxy or oidc"
            ),
        )),
    }
}
