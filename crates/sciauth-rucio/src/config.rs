//! `rucio.cfg` and the environment, read the way the Rucio client reads them.
//!
//! Precedence: explicit builder arguments > environment variables > `rucio.cfg`. The file
//! is `$RUCIO_CONFIG`, else the first that exists of `$RUCIO_HOME/etc/rucio.cfg`,
//! `$VIRTUAL_ENV/etc/rucio.cfg`, `$CONDA_PREFIX/etc/rucio.cfg`, `/opt/rucio/etc/rucio.cfg`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use sciauth_credentials::fs::{MAX_NAMED_FILE, read_limited_text};
use sciauth_credentials::text::printable;
use secrecy::SecretString;

use crate::error::{Error, ErrorKind, Result};

/// The environment a configuration is read from: variables, the effective user id and the
/// temporary directory.
///
/// [`Environment::from_process`] reads this process's; tests build one from a fixed set
/// with [`Environment::empty`] and [`var`](Self::var), so nothing mutates the process
/// environment.
#[derive(Clone)]
pub struct Environment {
    vars: BTreeMap<String, OsString>,
    uid: u32,
    tmp: PathBuf,
    /// The real user id whose name `/etc/passwd` gives when no variable names the user;
    /// `None`: no lookup (a fixed environment for tests).
    passwd_uid: Option<u32>,
}

/// Variables that may hold a secret (printed as `[redacted]` by `Debug`).
const SECRET_VARS: &[&str] = &["BEARER_TOKEN"];

impl Environment {
    /// This process's environment, effective user id and temporary directory.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
                .collect(),
            uid: rustix::process::geteuid().as_raw(),
            tmp: std::env::temp_dir(),
            passwd_uid: Some(rustix::process::getuid().as_raw()),
        }
    }

    /// No variables, this process's effective user id, and `/tmp`.
    pub fn empty() -> Self {
        Self {
            vars: BTreeMap::new(),
            uid: rustix::process::geteuid().as_raw(),
            tmp: PathBuf::from("/tmp"),
            passwd_uid: None,
        }
    }

    /// Sets a variable.
    pub fn var(mut self, name: impl Into<String>, value: impl Into<OsString>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Removes a variable.
    pub fn without(mut self, name: &str) -> Self {
        self.vars.remove(name);
        self
    }

    /// Sets the effective user id (it names `/tmp/x509up_u<uid>`, `/tmp/bt_u<uid>`).
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = uid;
        self
    }

    /// Sets the temporary directory that stands for `/tmp`.
    pub fn tmp(mut self, dir: impl Into<PathBuf>) -> Self {
        self.tmp = dir.into();
        self
    }

    /// A variable's value, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&OsString> {
        self.vars.get(name).filter(|v| !v.is_empty())
    }

    fn get_str(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string_lossy().into_owned())
    }

    pub(crate) fn get_path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }

    /// The effective user id.
    pub fn user_id(&self) -> u32 {
        self.uid
    }

    /// The directory standing for `/tmp`.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The user name the Rucio client uses (Python's `getpass.getuser()`): `LOGNAME`, `USER`,
    /// `LNAME` or `USERNAME`, else the name of the real user id in `/etc/passwd`.
    pub fn user_name(&self) -> Option<String> {
        ["LOGNAME", "USER", "LNAME", "USERNAME"]
            .into_iter()
            .find_map(|name| self.get_str(name))
            .or_else(|| self.passwd_uid.and_then(passwd_name))
    }

    /// The temporary directory the Rucio client uses (Python's `tempfile.gettempdir()`):
    /// the first of `TMPDIR`, `TEMP` and `TMP` that is a directory, else the directory
    /// standing for `/tmp`.
    pub fn python_temp_dir(&self) -> PathBuf {
        ["TMPDIR", "TEMP", "TMP"]
            .into_iter()
            .filter_map(|name| self.get_path(name))
            .find(|dir| dir.is_dir())
            .map(|dir| std::path::absolute(&dir).unwrap_or(dir))
            .unwrap_or_else(|| self.tmp.clone())
    }

    /// WLCG bearer token discovery over these variables.
    pub(crate) fn bearer_token_discovery(&self) -> sciauth_credentials::BearerTokenDiscovery {
        let vars = ["BEARER_TOKEN", "BEARER_TOKEN_FILE", "XDG_RUNTIME_DIR"]
            .into_iter()
            .filter_map(|name| self.get(name).map(|v| (name, v.clone())));
        sciauth_credentials::BearerTokenDiscovery::with_vars(vars, self.uid, &self.tmp)
    }

    /// Expands a leading `~` (to `$HOME`) and `$VAR` / `${VAR}`, as the Rucio client does
    /// for key and certificate paths. Unknown variables stay as written.
    pub(crate) fn expand(&self, path: &str) -> PathBuf {
        let mut text = path.to_owned();
        if let Some(rest) = text.strip_prefix('~')
            && (rest.is_empty() || rest.starts_with('/'))
            && let Some(home) = self.get_str("HOME")
        {
            text = format!("{home}{rest}");
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '$' {
                out.push(c);
                continue;
            }
            let rest = &text[i + 1..];
            let (name, consumed) = if let Some(inner) = rest.strip_prefix('{') {
                match inner.find('}') {
                    Some(end) => (&inner[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], end)
            };
            match self.get_str(name).filter(|_| !name.is_empty()) {
                Some(value) => {
                    out.push_str(&value);
                    for _ in 0..consumed {
                        chars.next();
                    }
                }
                None => out.push('$'),
            }
        }
        PathBuf::from(out)
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vars: BTreeMap<&str, String> = self
            .vars
            .iter()
            .filter(|(k, _)| k.starts_with("RUCIO_") || k.starts_with("X509_"))
            .chain(
                self.vars
                    .iter()
                    .filter(|(k, _)| SECRET_VARS.contains(&k.as_str())),
            )
            .map(|(k, v)| {
                let shown = if SECRET_VARS.contains(&k.as_str()) {
                    "[redacted]".to_owned()
                } else {
                    v.to_string_lossy().into_owned()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("Environment")
            .field("vars", &vars)
            .field("uid", &self.uid)
            .field("tmp", &self.tmp)
            .finish()
    }
}

/// The Rucio client configuration: `rucio.cfg` `[client]` with the environment laid over it.
///
/// Every field is public and optional, so a program can also fill one by hand; the
/// [`RucioClientBuilder`](crate::RucioClientBuilder) takes it with
/// [`config`](crate::RucioClientBuilder::config) and its own setters override it.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RucioConfig {
    /// The file this was read from, if any.
    pub file: Option<PathBuf>,
    /// `rucio_host`: the API server(s); several, separated by commas, are replicas chosen at
    /// random with failover.
    pub rucio_hosts: Vec<String>,
    /// `auth_host`: the auth server(s), like `rucio_hosts`. Defaults to `rucio_hosts`.
    pub auth_hosts: Vec<String>,
    /// `auth_type` (`RUCIO_AUTH_TYPE`): `userpass`, `ssh`, `x509`, `x509_proxy` or `oidc`.
    pub auth_type: Option<String>,
    /// `account` (`RUCIO_ACCOUNT`).
    pub account: Option<String>,
    /// `vo` (`RUCIO_VO`); the server's default is `def`.
    pub vo: Option<String>,
    /// `username`, for userpass.
    pub username: Option<String>,
    /// `password`, for userpass.
    pub password: Option<SecretString>,
    /// `ssh_private_key`, for ssh (Rucio's default: `~/.ssh/id_rsa`).
    pub ssh_private_key: Option<PathBuf>,
    /// `client_cert` (`RUCIO_CLIENT_CERT`), for x509.
    pub client_cert: Option<PathBuf>,
    /// `client_key` (`RUCIO_CLIENT_KEY`), for x509.
    pub client_key: Option<PathBuf>,
    /// The proxy file for x509_proxy, in Rucio's order: `RUCIO_CLIENT_PROXY`, then
    /// `client_x509_proxy`, then `X509_USER_PROXY`, then `/tmp/x509up_u<uid>`.
    pub client_x509_proxy: Option<PathBuf>,
    /// Trust roots: `X509_CERT_DIR` over `ca_cert` (a PEM file or a CA directory).
    pub ca_cert: Option<PathBuf>,
    /// `request_retries`: retries of a request after a connect error or 502/503/504.
    pub request_retries: Option<u32>,
    /// `auth_token_file_path`: where the Python client keeps its token, for every account;
    /// by default `<tmp>/<user>/.rucio_<user>[@<vo>]/auth_token_for_account_<account>`. The
    /// token is shared with the Python client there.
    pub auth_token_file_path: Option<PathBuf>,
    /// `oidc_scope`, for the Rucio-brokered OIDC login (Rucio's default: `openid profile`).
    pub oidc_scope: Option<String>,
    /// `oidc_audience`, for the Rucio-brokered OIDC login (the server's default when unset).
    pub oidc_audience: Option<String>,
    /// `oidc_issuer`: which of the server's identity providers (a key of its
    /// `idpsecrets.json`) the Rucio-brokered OIDC login uses.
    pub oidc_issuer: Option<String>,
    /// `oidc_polling`: the Rucio-brokered OIDC login polls the server for the token instead
    /// of asking for the code the browser shows.
    pub oidc_polling: Option<bool>,
    /// `oidc_refresh_lifetime`: hours the server keeps refreshing the token.
    pub oidc_refresh_lifetime: Option<u32>,
    /// `oidc_auto`: the login that sent the identity provider's password to the Rucio server;
    /// removed from Rucio (and refused by sciauth, which never hands that password on).
    pub oidc_auto: Option<bool>,
    /// `auth_oidc_refresh_active`: renew a Rucio-brokered OIDC token at
    /// `/auth/oidc_refresh` before it expires.
    pub auth_oidc_refresh_active: Option<bool>,
    /// `auth_oidc_refresh_before_exp`: how many minutes before expiry that renewal starts
    /// (Rucio's default: 20).
    pub auth_oidc_refresh_before_exp: Option<u32>,
}

impl fmt::Debug for RucioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RucioConfig")
            .field("file", &self.file)
            .field("rucio_hosts", &self.rucio_hosts)
            .field("auth_hosts", &self.auth_hosts)
            .field("auth_type", &self.auth_type)
            .field("account", &self.account)
            .field("vo", &self.vo)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("ssh_private_key", &self.ssh_private_key)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("client_x509_proxy", &self.client_x509_proxy)
            .field("ca_cert", &self.ca_cert)
            .field("request_retries", &self.request_retries)
            .field("auth_token_file_path", &self.auth_token_file_path)
            .field("oidc_scope", &self.oidc_scope)
            .field("oidc_audience", &self.oidc_audience)
            .field("oidc_issuer", &self.oidc_issuer)
            .field("oidc_polling", &self.oidc_polling)
            .field("oidc_refresh_lifetime", &self.oidc_refresh_lifetime)
            .field("oidc_auto", &self.oidc_auto)
            .field("auth_oidc_refresh_active", &self.auth_oidc_refresh_active)
            .field(
                "auth_oidc_refresh_before_exp",
                &self.auth_oidc_refresh_before_exp,
            )
            .finish()
    }
}

impl RucioConfig {
    /// Finds `rucio.cfg` as the Rucio client does and lays the environment over it. No file
    /// found is not an error (everything may come from the environment and the builder);
    /// a file that is named by `$RUCIO_CONFIG` but missing, or that does not parse, is.
    pub fn load(env: &Environment) -> Result<Self> {
        match find_config_file(env)? {
            Some(path) => Self::from_file(&path, env),
            None => Ok(Self::from_env(Self::default(), env)),
        }
    }

    /// Reads this file and lays the environment over it.
    pub fn from_file(path: &Path, env: &Environment) -> Result<Self> {
        let text = read_limited_text(path, MAX_NAMED_FILE).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read the Rucio config file {}: {e}", path.display()),
            )
        })?;
        let mut config = Self::parse_file_text(&text, env).map_err(|why| {
            Error::new(
                ErrorKind::Config,
                format!("the Rucio config file {} {why}", path.display()),
            )
        })?;
        config.file = Some(path.to_owned());
        Ok(Self::from_env(config, env))
    }

    /// Parses the text of a `rucio.cfg`. `env` only expands `~` and `$VAR` in paths; it is
    /// not laid over the result (see [`from_env`](Self::from_env)).
    pub fn parse(text: &str, env: &Environment) -> Result<Self> {
        Self::parse_file_text(text, env)
            .map_err(|why| Error::new(ErrorKind::Config, format!("the Rucio config text {why}")))
    }

    fn parse_file_text(text: &str, env: &Environment) -> std::result::Result<Self, String> {
        let mut ini = configparser::ini::Ini::new();
        let mut defaults = ini.defaults();
        // As Python's configparser: `#` and `;` start comments only at the start of a line
        // (a password may hold them), indented lines continue a value, `[DEFAULT]` cascades.
        defaults.enable_inline_comments = false;
        defaults.multiline = true;
        defaults.default_section = "default".to_owned();
        defaults.cascade_defaults = true;
        ini.load_defaults(defaults);
        ini.read(text.to_owned())
            .map_err(|e| format!("is not valid INI: {e}"))?;
        let get = |key: &str| {
            ini.get("client", key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let path = |key: &str| get(key).map(|v| env.expand(&v));
        let hosts = |key: &str| get(key).map(|v| split_hosts(&v)).unwrap_or_default();
        let number = |key: &str| -> std::result::Result<Option<u32>, String> {
            match get(key) {
                None => Ok(None),
                Some(text) => text.parse::<u32>().map(Some).map_err(|_| {
                    format!(
                        "has {key} = {:?} in [client]; it must be a whole number",
                        printable(&text, 40)
                    )
                }),
            }
        };
        let boolean = |key: &str| -> std::result::Result<Option<bool>, String> {
            match get(key) {
                None => Ok(None),
                Some(text) => python_bool(&text).map(Some).ok_or_else(|| {
                    format!(
                        "has {key} = {:?} in [client]; it must be true or false",
                        printable(&text, 40)
                    )
                }),
            }
        };
        let request_retries = number("request_retries")?;
        Ok(Self {
            file: None,
            rucio_hosts: hosts("rucio_host"),
            auth_hosts: hosts("auth_host"),
            auth_type: get("auth_type"),
            account: get("account"),
            vo: get("vo"),
            username: get("username"),
            password: get("password").map(SecretString::from),
            ssh_private_key: path("ssh_private_key"),
            client_cert: path("client_cert"),
            client_key: path("client_key"),
            client_x509_proxy: path("client_x509_proxy"),
            ca_cert: path("ca_cert"),
            request_retries,
            auth_token_file_path: path("auth_token_file_path"),
            oidc_scope: get("oidc_scope"),
            oidc_audience: get("oidc_audience"),
            oidc_issuer: get("oidc_issuer"),
            oidc_polling: boolean("oidc_polling")?,
            oidc_refresh_lifetime: number("oidc_refresh_lifetime")?,
            oidc_auto: boolean("oidc_auto")?,
            auth_oidc_refresh_active: boolean("auth_oidc_refresh_active")?,
            auth_oidc_refresh_before_exp: number("auth_oidc_refresh_before_exp")?,
        })
    }

    /// Lays the environment over `config`, as the Rucio client ranks them.
    pub fn from_env(mut config: Self, env: &Environment) -> Self {
        if let Some(account) = env.get_str("RUCIO_ACCOUNT") {
            config.account = Some(account);
        }
        if let Some(vo) = env.get_str("RUCIO_VO") {
            config.vo = Some(vo);
        }
        if let Some(auth_type) = env.get_str("RUCIO_AUTH_TYPE") {
            config.auth_type = Some(auth_type);
        }
        if let Some(cert) = env.get_str("RUCIO_CLIENT_CERT") {
            config.client_cert = Some(env.expand(&cert));
        }
        if let Some(key) = env.get_str("RUCIO_CLIENT_KEY") {
            config.client_key = Some(env.expand(&key));
        }
        // The Rucio client's proxy order: RUCIO_CLIENT_PROXY > client_x509_proxy >
        // X509_USER_PROXY > /tmp/x509up_u<uid>.
        if let Some(proxy) = env.get_str("RUCIO_CLIENT_PROXY") {
            config.client_x509_proxy = Some(env.expand(&proxy));
        } else if config.client_x509_proxy.is_none() {
            config.client_x509_proxy = Some(match env.get_path("X509_USER_PROXY") {
                Some(proxy) => proxy,
                None => env.tmp_dir().join(format!("x509up_u{}", env.user_id())),
            });
        }
        // The Rucio client tries $X509_CERT_DIR before ca_cert.
        if let Some(dir) = env.get_path("X509_CERT_DIR") {
            config.ca_cert = Some(dir);
        }
        config
    }
}

/// The name of `uid` in `/etc/passwd` (the Rucio client's last resort for the user name).
fn passwd_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// Python configparser's `getboolean`: `1`, `yes`, `true`, `on` and `0`, `no`, `false`, `off`,
/// in any case.
fn python_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// Splits a host setting: one URL, or several separated by commas or spaces.
pub(crate) fn split_hosts(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `rucio.cfg` where the Rucio client looks for it.
pub fn find_config_file(env: &Environment) -> Result<Option<PathBuf>> {
    if let Some(path) = env.get_path("RUCIO_CONFIG") {
        if path.is_file() {
            return Ok(Some(path));
        }
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "RUCIO_CONFIG names {}, which is not a file; fix or unset it",
                path.display()
            ),
        ));
    }
    let candidates = ["RUCIO_HOME", "VIRTUAL_ENV", "CONDA_PREFIX"]
        .into_iter()
        .filter_map(|name| env.get_path(name))
        .chain([PathBuf::from("/opt/rucio")])
        .map(|dir| dir.join("etc/rucio.cfg"));
    for path in candidates {
        if path.is_file() {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn client_section_is_read_like_python_configparser() {
        let env = Environment::empty()
            .var("HOME", "/home/u")
            .var("KEYS", "/keys");
        let text = "\
[common]
loglevel = DEBUG

[client]
rucio_host = https://rucio-a.example.org:443, https://rucio-b.example.org
auth_host : https://auth.example.org
Auth_Type = userpass
account = root
username = alice
password = p#ss;word = x
ssh_private_key = ~/.ssh/id_rsa
client_cert = $KEYS/usercert.pem
client_key = ${KEYS}/userkey.pem
ca_cert = /etc/grid-security/certificates
request_retries = 5
# a comment
; another
";
        let config = RucioConfig::parse(text, &env).unwrap();
        assert_eq!(
            config.rucio_hosts,
            [
                "https://rucio-a.example.org:443",
                "https://rucio-b.example.org"
            ]
        );
        assert_eq!(config.auth_hosts, ["https://auth.example.org"]);
        assert_eq!(config.auth_type.as_deref(), Some("userpass"));
        assert_eq!(config.account.as_deref(), Some("root"));
        assert_eq!(
            config.password.as_ref().unwrap().expose_secret(),
            "p#ss;word = x"
        );
        assert_eq!(
            config.ssh_private_key.as_deref(),
            Some(Path::new("/home/u/.ssh/id_rsa"))
        );
        assert_eq!(
            config.client_cert.as_deref(),
            Some(Path::new("/keys/usercert.pem"))
        );
        assert_eq!(
            config.client_key.as_deref(),
            Some(Path::new("/keys/userkey.pem"))
        );
        assert_eq!(config.request_retries, Some(5));
        let shown = format!("{config:?}");
        assert!(!shown.contains("p#ss"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn environment_overrides_the_file_in_rucio_order() {
        let env = Environment::empty()
            .var("RUCIO_ACCOUNT", "alice")
            .var("RUCIO_VO", "atl")
            .var("RUCIO_AUTH_TYPE", "x509_proxy")
            .var("X509_USER_PROXY", "/env/proxy")
            .var("X509_CERT_DIR", "/env/certs")
            .uid(1234);
        let text = "[client]\nrucio_host = http://h\naccount = root\nvo = def\nauth_type = userpass\nclient_x509_proxy = /file/proxy\nca_cert = /file/ca.pem\n";
        let config = RucioConfig::from_env(RucioConfig::parse(text, &env).unwrap(), &env);
        assert_eq!(config.account.as_deref(), Some("alice"));
        assert_eq!(config.vo.as_deref(), Some("atl"));
        assert_eq!(config.auth_type.as_deref(), Some("x509_proxy"));
        // The file's proxy beats X509_USER_PROXY; RUCIO_CLIENT_PROXY beats both.
        assert_eq!(
            config.client_x509_proxy.as_deref(),
            Some(Path::new("/file/proxy"))
        );
        assert_eq!(config.ca_cert.as_deref(), Some(Path::new("/env/certs")));
        let env = env.var("RUCIO_CLIENT_PROXY", "/rucio/proxy");
        let config = RucioConfig::from_env(RucioConfig::parse(text, &env).unwrap(), &env);
        assert_eq!(
            config.client_x509_proxy.as_deref(),
            Some(Path::new("/rucio/proxy"))
        );
        let bare = RucioConfig::from_env(RucioConfig::default(), &Environment::empty().uid(7));
        assert_eq!(
            bare.client_x509_proxy.as_deref(),
            Some(Path::new("/tmp/x509up_u7"))
        );
    }

    #[test]
    fn the_file_is_found_where_the_rucio_client_looks() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let venv = dir.path().join("venv");
        for base in [&home, &venv] {
            std::fs::create_dir_all(base.join("etc")).unwrap();
            std::fs::write(base.join("etc/rucio.cfg"), "[client]\n").unwrap();
        }
        let env = Environment::empty()
            .var("VIRTUAL_ENV", &venv)
            .var("RUCIO_HOME", &home);
        assert_eq!(
            find_config_file(&env).unwrap(),
            Some(home.join("etc/rucio.cfg"))
        );
        let env = env.without("RUCIO_HOME");
        assert_eq!(
            find_config_file(&env).unwrap(),
            Some(venv.join("etc/rucio.cfg"))
        );
        let env = env.var("RUCIO_CONFIG", dir.path().join("missing.cfg"));
        assert_eq!(
            find_config_file(&env).unwrap_err().kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn bad_files_are_config_errors_not_panics() {
        let env = Environment::empty();
        for text in ["[client\nx", "[client]\nrequest_retries = many\n"] {
            let err = RucioConfig::parse(text, &env).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        }
    }
    #[test]
    fn oidc_keys_are_read_with_python_booleans() {
        let env = Environment::empty();
        let text = "[client]\nauth_type = oidc\noidc_scope = openid profile offline_access\n\
                    oidc_audience = rucio\noidc_issuer = wlcg\noidc_polling = Yes\n\
                    oidc_refresh_lifetime = 24\nauth_oidc_refresh_active = on\n\
                    auth_oidc_refresh_before_exp = 5\noidc_auto = 0\n";
        let config = RucioConfig::parse(text, &env).unwrap();
        assert_eq!(
            config.oidc_scope.as_deref(),
            Some("openid profile offline_access")
        );
        assert_eq!(config.oidc_audience.as_deref(), Some("rucio"));
        assert_eq!(config.oidc_issuer.as_deref(), Some("wlcg"));
        assert_eq!(config.oidc_polling, Some(true));
        assert_eq!(config.oidc_refresh_lifetime, Some(24));
        assert_eq!(config.auth_oidc_refresh_active, Some(true));
        assert_eq!(config.auth_oidc_refresh_before_exp, Some(5));
        assert_eq!(config.oidc_auto, Some(false));
        for bad in ["oidc_polling = maybe", "auth_oidc_refresh_before_exp = -1"] {
            let error = RucioConfig::parse(&format!("[client]\n{bad}\n"), &env).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        }
    }

    #[test]
    fn user_and_temporary_directory_are_pythons() {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment::empty()
            .var("USER", "u")
            .var("TMPDIR", dir.path().join("missing"))
            .var("TEMP", dir.path());
        assert_eq!(env.user_name().as_deref(), Some("u"));
        assert_eq!(env.var("LOGNAME", "l").user_name().as_deref(), Some("l"));
        // TMPDIR is skipped when it is not a directory, as gettempdir() does.
        assert_eq!(
            env_temp(&Environment::empty().var("TEMP", dir.path())),
            dir.path()
        );
        assert_eq!(Environment::empty().python_temp_dir(), Path::new("/tmp"));
        assert_eq!(Environment::empty().user_name(), None);
    }

    fn env_temp(env: &Environment) -> PathBuf {
        env.python_temp_dir()
    }
}
