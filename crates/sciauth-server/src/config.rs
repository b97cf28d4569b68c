//! The service's configuration: a TOML file (see `docs/sciauth-server.md` and
//! `crates/sciauth-server/example.toml`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sciauth_credentials::fs::{MAX_NAMED_FILE, read_limited_text};
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::{Error, Result};

mod sections;

/// The DIRAC properties this service acts on; others may be listed (DIRAC has many) and are
/// shown by `whoami`, but grant nothing here.
pub mod properties {
    /// getToken for any user or group, and group (client credentials) tokens.
    pub const FULL_DELEGATION: &str = "FullDelegation";
    /// Like `FullDelegation` (DIRAC flags the token "limited" and then ignores the flag).
    pub const LIMITED_DELEGATION: &str = "LimitedDelegation";
    /// getToken only for oneself, in a group that has this property too; never group tokens.
    pub const PRIVATE_LIMITED_DELEGATION: &str = "PrivateLimitedDelegation";
    /// getUsersTokensInfo, and getTokensByUserID, deleteToken and updateToken for others.
    pub const PROXY_MANAGEMENT: &str = "ProxyManagement";
    /// `GET /metrics` on the service's own listener (a separate `[metrics]` listener needs
    /// none).
    pub const SERVICE_ADMINISTRATOR: &str = "ServiceAdministrator";
}

/// The largest request body accepted unless configured otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// How often expired grants are purged unless configured otherwise.
pub const DEFAULT_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// The address listened on unless configured otherwise (DIRAC's TokenManager port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9181";

/// How long a client may take to send a request's headers (counted from its first byte, or
/// from the connection's start for its first request, after the TLS handshake, which has as
/// long) unless configured otherwise.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's body unless configured otherwise.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection may stay open without a request (after an answer) unless configured
/// otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How many connections are served at once unless configured otherwise; past it, new ones are
/// closed as soon as they are accepted.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How long requests under way get to finish after SIGTERM unless configured otherwise.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest any of the timeouts may be configured (a day): longer ones are mistakes.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The most connections that may be configured.
const MAX_MAX_CONNECTIONS: usize = 1_000_000;

/// The whole configuration, checked: every name it refers to exists.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, which SIGHUP reads again.
    pub(crate) source: Option<PathBuf>,
    pub(crate) listen: SocketAddr,
    pub(crate) metrics_listen: Option<SocketAddr>,
    pub(crate) log_format: LogFormat,
    pub(crate) drain_timeout: Duration,
    /// HTTP/2 on the TLS listener (offered by ALPN).
    pub(crate) http2: bool,
    /// HTTP/2 with prior knowledge (h2c) on a plain listener.
    pub(crate) h2c: bool,
    pub(crate) max_body_bytes: usize,
    pub(crate) purge_interval: Duration,
    pub(crate) limits: ConnectionLimits,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) store: StoreConfig,
    pub(crate) callers: Option<CallersConfig>,
    pub(crate) providers: BTreeMap<String, ProviderConfig>,
    pub(crate) vos: BTreeMap<String, VoConfig>,
    pub(crate) groups: BTreeMap<String, GroupConfig>,
    pub(crate) users: BTreeMap<String, UserConfig>,
}

/// How the service writes its log (on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LogFormat {
    /// Lines for people (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What one connection may take: time for headers, for a body, between requests; and how
/// many connections are served at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ConnectionLimits {
    pub(crate) header_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// TLS for the listener, and client certificates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TlsConfig {
    pub(crate) certificate: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) client_ca: Option<PathBuf>,
    /// A directory of CA certificates (`*.pem`), as a grid CA directory
    /// (`/etc/grid-security/certificates`) has them.
    pub(crate) client_ca_dir: Option<PathBuf>,
}

/// Where the grants are kept.
#[derive(Clone)]
pub(crate) enum StoreConfig {
    Postgres {
        url: SecretString,
        password: Option<SecretString>,
        max_lock_connections: usize,
    },
    Sqlite {
        path: PathBuf,
    },
    File {
        dir: PathBuf,
    },
    Memory,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The URL may hold a password.
            Self::Postgres { .. } => f.write_str("Postgres { .. }"),
            Self::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            Self::File { dir } => f.debug_struct("File").field("dir", dir).finish(),
            Self::Memory => f.write_str("Memory"),
        }
    }
}

/// How bearer tokens of callers are checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallersConfig {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    /// Also accept callers' tokens typed `JWT` or untyped, not only `at+jwt` (RFC 9068).
    pub(crate) plain_jwt_access_tokens: bool,
}

/// One identity provider and the service's client there.
#[derive(Clone)]
pub(crate) struct ProviderConfig {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) client_auth: ClientAuthMethod,
    pub(crate) audience_parameter: sciauth_tokens::AudienceParameter,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("client_auth", &self.client_auth)
            .field("audience_parameter", &self.audience_parameter)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

#[derive(Debug, Clone)]
pub(crate) struct VoConfig {
    pub(crate) provider: String,
}

#[derive(Debug, Clone)]
pub(crate) struct GroupConfig {
    pub(crate) vo: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) properties: BTreeSet<String>,
    pub(crate) scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct UserConfig {
    pub(crate) groups: Vec<String>,
    pub(crate) dns: Vec<String>,
    pub(crate) subjects: Vec<String>,
    /// Provider name → the user's ID there.
    pub(crate) ids: BTreeMap<String, String>,
}

/// Where secrets referred to by the file come from: the process environment, unless a test
/// gives its own.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Reads and checks the TOML file at `path`. Relative paths in it (TLS files, secret
    /// files, SQLite and file stores) are relative to the file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_limited_text(path, MAX_NAMED_FILE).map_err(|e| {
            Error::config(format!(
                "cannot read the configuration {}: {e}",
                path.display()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::parse(&text, base, &|name| std::env::var(name).ok())
            .map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Checks the TOML `text`; relative paths are relative to `base`, `*_env` settings read
    /// the process environment.
    pub fn from_toml(text: &str, base: impl AsRef<Path>) -> Result<Self> {
        Self::parse(text, base.as_ref(), &|name| std::env::var(name).ok())
    }

    pub(crate) fn parse(text: &str, base: &Path, env: Env<'_>) -> Result<Self> {
        sections::parse(text, base, env)
    }

    /// The address to listen on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The same configuration listening on `listen` (tests use port 0).
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// The address of the separate metrics listener (`[metrics] listen`), if configured.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics_listen
    }

    /// How the service writes its log (`server.log_format`; read once, at start).
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// The file this configuration was read from ([`from_file`](Self::from_file)); SIGHUP
    /// reads it again.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The settings that a reload cannot change (they are bound at start), which differ
    /// between `self` (running) and `new`: the keys' names.
    pub(crate) fn restart_only_changes(&self, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.listen != new.listen {
            changed.push("server.listen");
        }
        if self.metrics_listen != new.metrics_listen {
            changed.push("metrics.listen");
        }
        if self.log_format != new.log_format {
            changed.push("server.log_format");
        }
        if self.limits.max_connections != new.limits.max_connections {
            changed.push("server.max_connections");
        }
        if self.tls.is_some() != new.tls.is_some() {
            changed.push("server.tls (on or off)");
        }
        if !self.store.same_as(&new.store) {
            changed.push("store");
        }
        changed
    }
}

impl StoreConfig {
    /// Whether `other` names the same store, the same way.
    fn same_as(&self, other: &StoreConfig) -> bool {
        use secrecy::ExposeSecret as _;
        match (self, other) {
            (
                Self::Postgres {
                    url,
                    password,
                    max_lock_connections,
                },
                Self::Postgres {
                    url: other_url,
                    password: other_password,
                    max_lock_connections: other_max,
                },
            ) => {
                url.expose_secret() == other_url.expose_secret()
                    && password.as_ref().map(|p| p.expose_secret())
                        == other_password.as_ref().map(|p| p.expose_secret())
                    && max_lock_connections == other_max
            }
            (Self::Sqlite { path }, Self::Sqlite { path: other }) => path == other,
            (Self::File { dir }, Self::File { dir: other }) => dir == other,
            (Self::Memory, Self::Memory) => true,
            _ => false,
        }
    }
}

impl ProviderConfig {
    /// Whether `other` configures the same client at the same provider (secret included).
    pub(crate) fn same_as(&self, other: &ProviderConfig) -> bool {
        use secrecy::ExposeSecret as _;
        self.issuer == other.issuer
            && self.client_id == other.client_id
            && self.client_secret.as_ref().map(|s| s.expose_secret())
                == other.client_secret.as_ref().map(|s| s.expose_secret())
            && self.client_auth == other.client_auth
            && self.audience_parameter == other.audience_parameter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../example.toml");

    fn env(name: &str) -> Option<String> {
        match name {
            "SCIAUTH_TEST_SECRET" => Some("from-env-secret".into()),
            "SCIAUTH_TEST_DB" => Some("host=/tmp user=sciauth dbname=sciauth".into()),
            _ => None,
        }
    }

    #[test]
    fn a_configuration_error_escapes_what_the_file_says() {
        // Found by fuzzing (fuzz/artifacts/server_config/): an environment variable's name
        // with tabs in it reached the error, and the log, raw.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("iam-secret"), "file-secret\n").unwrap();
        let text = EXAMPLE.replace("SCIAUTH_DB_URL", "S\\t\\tCIAUTH\\u001b[2J_DB_URL");
        let err = Config::parse(&text, dir.path(), &env).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("S\\t\\tCIAUTH\\x1b[2J_DB_URL"), "{shown}");
        assert!(
            shown.chars().all(sciauth_credentials::text::is_printable),
            "{shown:?}"
        );
    }

    #[test]
    fn the_example_parses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("iam-secret"), "file-secret\n").unwrap();
        let text = EXAMPLE.replace("SCIAUTH_DB_URL", "SCIAUTH_TEST_DB");
        let config = Config::parse(&text, dir.path(), &env).unwrap();
        assert!(config.providers.contains_key("iam"));
        // Callers' tokens must be typed at+jwt unless the configuration says otherwise.
        assert!(!config.callers.as_ref().unwrap().plain_jwt_access_tokens);
        let lenient = text.replace(
            "audience = \"https://tokens.example.org\"\n",
            "audience = \"https://tokens.example.org\"\nplain_jwt_access_tokens = true\n",
        );
        let lenient = Config::parse(&lenient, dir.path(), &env).unwrap();
        assert!(lenient.callers.unwrap().plain_jwt_access_tokens);
        assert!(
            config.users["alice"]
                .groups
                .contains(&"dteam_user".to_owned())
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("file-secret"), "{debug}");
        assert!(!debug.contains("host=/tmp"), "{debug}");
    }

    #[test]
    fn references_and_names_are_checked() {
        let base = Path::new("/");
        let error = |text: &str| Config::parse(text, base, &env).unwrap_err().to_string();
        let store = "[store]\nkind = \"memory\"\n";
        let e = error(&format!("{store}[vos.dteam]\nprovider = \"nope\"\n"));
        assert!(e.contains("\"nope\""), "{e}");
        let e = error(&format!(
            "{store}[groups.g]\nproperties = []\n[users.alice]\ngroups = [\"other\"]\n"
        ));
        assert!(e.contains("\"other\""), "{e}");
        let e = error(&format!("{store}[groups.\"a:b\"]\n"));
        assert!(e.contains("may hold only"), "{e}");
        let e = error(&format!(
            "{store}[providers.p]\nissuer = \"https://idp\"\nclient_id = \"c\"\n\
             client_secret_env = \"UNSET_VARIABLE\"\n"
        ));
        assert!(e.contains("UNSET_VARIABLE"), "{e}");
        // A syntax error says where, without quoting the line (which may hold a secret).
        let e = error("[store]\nkind = \"postgres\"\nurl = \"postgresql://u:hunter2@h/db\n");
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("line 3, column "), "{e}");
        // Nor a value of the wrong type.
        let e = error("[store]\nkind = \"postgres\"\nurl = 123454321\n");
        assert!(!e.contains("123454321"), "{e}");
        assert!(e.contains("expected a string"), "{e}");
        // A configured DN is read in canonical form; an unescaped / inside a value is an
        // error that says how to write it, and two spellings of one DN are one DN.
        let users = "[groups.g]\n[users.a]\ngroups = [\"g\"]\n";
        let e = error(&format!("{store}{users}dns = [\"/O=x/CN=host/node\"]\n"));
        assert!(e.contains("users.a.dns") && e.contains("\\/"), "{e}");
        let e = error(&format!(
            "{store}{users}dns = [\"/Email=a@b\"]\n[users.b]\ngroups = [\"g\"]\n\
             dns = [\"/emailAddress=a@b\"]\n"
        ));
        assert!(e.contains("belongs to both"), "{e}");
        // Timeouts and the connection limit are bounded; fractions of seconds are fine.
        for bad in [
            "header_timeout_seconds = 0",
            "body_timeout_seconds = -1",
            "idle_timeout_seconds = 1e300",
            "idle_timeout_seconds = nan",
            "max_connections = 0",
            "purge_interval_seconds = 0",
        ] {
            let e = error(&format!("[server]\n{bad}\n{store}"));
            let key = bad.split(' ').next().unwrap();
            assert!(e.contains(key), "{bad}: {e}");
        }
        let limits = Config::parse(
            &format!("[server]\nheader_timeout_seconds = 0.25\nmax_connections = 2\n{store}"),
            base,
            &env,
        )
        .unwrap()
        .limits;
        assert_eq!(limits.header_timeout, Duration::from_millis(250));
        assert_eq!(limits.body_timeout, DEFAULT_BODY_TIMEOUT);
        assert_eq!(limits.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        assert_eq!(limits.max_connections, 2);
        let e = error(&format!("{store}[bogus]\n"));
        assert!(e.contains("bogus"), "{e}");
        let ok = Config::parse(
            &format!(
                "{store}[providers.p]\nissuer = \"https://idp\"\nclient_id = \"c\"\n\
                 client_secret_env = \"SCIAUTH_TEST_SECRET\"\n"
            ),
            base,
            &env,
        )
        .unwrap();
        assert_eq!(
            ok.providers["p"].client_auth,
            ClientAuthMethod::ClientSecretBasic
        );
    }
}
