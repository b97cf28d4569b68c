//! The configuration file: named profiles, each an OIDC provider and client (`kind =
//! "oidc"`, the default) or a Rucio server (`kind = "rucio"`).
//!
//! ```toml
//! default_profile = "iam"
//!
//! [profiles.iam]
//! issuer = "https://iam.example.org/"
//! client_id = "my-cli"
//! client_secret_file = "~/.config/sciauth/iam.secret"   # or client_secret_env = "VAR"
//! scopes = ["openid", "offline_access", "storage.read:/"]
//! audience = "https://se.example.org"
//! audience_parameter = "audience"                        # or "resource" (RFC 8707), "omit"
//!
//! encrypted = true                                       # tokens sealed with a passphrase's key
//!
//! [profiles.robot]                                       # a service account: no login
//! issuer = "https://iam.example.org/"
//! client_id = "fts-submitter"
//! grant = "client_credentials"
//! client_auth = "private_key_jwt"                        # or a secret, "basic" or "post"
//! client_key_file = "robot.pem"
//! client_key_alg = "ES256"
//!
//! [profiles.rucio]
//! kind = "rucio"
//! rucio_cfg = "/opt/rucio/etc/rucio.cfg"                 # optional; explicit keys override it
//! account = "alice"
//! ```
//!
//! Secrets never sit in the file by default: `client_secret` (and a Rucio `password`) is
//! refused unless the profile also says `allow_inline_secret = true`, and then a warning is
//! printed each time. Secret and key files are read only when a grant is about to run
//! ([`ClientAuthPlan`]). Unknown keys are errors, so that a typo does not pass silently;
//! keys that do not go together (a key file with a secret, login keys on a robot) are errors
//! when the file is read. Relative paths are relative to the file's directory; `~/` is the
//! home directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sciauth::credentials::fs::{MAX_NAMED_FILE, MAX_SECRET_FILE, read_limited_text};
use sciauth::credentials::secrecy::SecretString;
use sciauth::credentials::text::{line_column, printable, serde_message};
use sciauth::tokens::{Algorithm, ClientAuth, PrivateKeyJwt};
use serde::Deserialize;

use crate::failure::{CliResult, Failure};

/// A configuration file, read.
#[derive(Debug)]
pub(crate) struct Config {
    path: PathBuf,
    default_profile: Option<String>,
    profiles: BTreeMap<String, Profile>,
}

#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a configuration holds a handful of profiles, read once per run"
)]
pub(crate) enum Profile {
    Oidc(OidcProfile),
    Rucio(RucioProfile),
}

/// A profile of kind `oidc`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OidcProfile {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    client_secret_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    client_secret: Option<Inline>,
    #[serde(default)]
    allow_inline_secret: bool,
    /// How the client authenticates: with its secret, `basic` (client_secret_basic, the
    /// default) or `post`; or with its key, `private_key_jwt` (RFC 7523).
    #[serde(default)]
    pub(crate) client_auth: ClientAuthStyle,
    /// For `private_key_jwt`: the PEM private key, its algorithm (default RS256) and the
    /// `kid` the provider knows it by.
    client_key_file: Option<PathBuf>,
    client_key_alg: Option<String>,
    client_key_id: Option<String>,
    /// How tokens are got: a person logs in (`login`, the default), or the client gets its
    /// own (`client_credentials`: a robot or service account).
    #[serde(default)]
    pub(crate) grant: GrantStyle,
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    pub(crate) audience: Option<String>,
    #[serde(default)]
    pub(crate) audience_parameter: AudienceStyle,
    store_dir: Option<PathBuf>,
    /// Seal the token store's files with a key derived from a passphrase (`unlock.rs`).
    #[serde(default)]
    pub(crate) encrypted: bool,
    /// The variable holding the encrypted store's passphrase (after the kernel keyring's
    /// cached key and `SCIAUTH_STORE_PASSPHRASE_FILE`, before a prompt).
    pub(crate) passphrase_env: Option<String>,
    /// How long the kernel keyring keeps the store's unlocked key, in minutes (default 15;
    /// 0: not kept, every command asks).
    pub(crate) key_cache_minutes: Option<u64>,
    /// The account the tokens are stored under; by default the profile name.
    pub(crate) account: Option<String>,
    /// The login flow when the command line names none.
    pub(crate) login: Option<LoginFlow>,
    /// The redirect URI registered with the provider, for the browser flow.
    pub(crate) redirect_uri: Option<String>,
    /// Loopback ports registered with the provider, tried in order.
    #[serde(default)]
    pub(crate) redirect_ports: Vec<u16>,
    /// Extra parameters of the authorization request (CILogon's `idphint`, `skin`).
    #[serde(default)]
    pub(crate) login_params: BTreeMap<String, String>,
    /// Another oidc profile whose client runs `sciauth exchange` (FTS's own client).
    pub(crate) exchange_client: Option<String>,
}

/// A profile of kind `rucio`: a `rucio.cfg` (the file named, else the one the Rucio client
/// finds) with these keys laid over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RucioProfile {
    rucio_cfg: Option<PathBuf>,
    pub(crate) rucio_host: Option<String>,
    pub(crate) auth_host: Option<String>,
    pub(crate) account: Option<String>,
    pub(crate) vo: Option<String>,
    pub(crate) auth_type: Option<String>,
    pub(crate) username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    password: Option<Inline>,
    #[serde(default)]
    allow_inline_secret: bool,
    ssh_private_key: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    client_x509_proxy: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    /// For `auth_type = "oidc"`: the sciauth profile whose token logs in.
    pub(crate) oidc_profile: Option<String>,
    /// For `auth_type = "oidc"`: `rucio` (the Rucio-brokered login), `profile` (the token of
    /// `oidc_profile`) or `discovery` (WLCG bearer token discovery); by default `profile` with
    /// an `oidc_profile`, else the Rucio client's order (discovery, then the brokered login).
    pub(crate) oidc_token_source: Option<String>,
    /// rucio.cfg's `oidc_scope`, `oidc_audience`, `oidc_issuer`, `oidc_polling`.
    pub(crate) oidc_scope: Option<String>,
    pub(crate) oidc_audience: Option<String>,
    pub(crate) oidc_issuer: Option<String>,
    pub(crate) oidc_polling: Option<bool>,
    /// The variable holding the passphrase of the encrypted `ssh_private_key` or `client_key`.
    pub(crate) passphrase_env: Option<String>,
}

/// A secret written in the file itself; never shown.
struct Inline(SecretString);

impl<'de> Deserialize<'de> for Inline {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self(SecretString::from(s)))
    }
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ClientAuthStyle {
    #[default]
    Basic,
    Post,
    PrivateKeyJwt,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GrantStyle {
    #[default]
    Login,
    ClientCredentials,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AudienceStyle {
    #[default]
    Audience,
    Resource,
    Omit,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LoginFlow {
    Device,
    Browser,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, toml::Table>,
}

impl Config {
    /// `--config` / `SCIAUTH_CONFIG` if given, else `$XDG_CONFIG_HOME/sciauth/config.toml`
    /// (`~/.config/sciauth/config.toml`).
    pub(crate) fn default_path() -> Option<PathBuf> {
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
            .or_else(|| home().map(|home| home.join(".config")))?;
        Some(config_home.join("sciauth/config.toml"))
    }

    /// Reads the file; `Ok(None)` when it does not exist and was not named explicitly.
    pub(crate) fn load(explicit: Option<&Path>) -> CliResult<Option<Self>> {
        let path = match explicit {
            Some(path) => path.to_owned(),
            None => match Self::default_path() {
                Some(path) => path,
                None => return Ok(None),
            },
        };
        let text = match read_limited_text(&path, MAX_NAMED_FILE) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                return Ok(None);
            }
            Err(e) => {
                return Err(Failure::config(format!(
                    "cannot read the configuration {}: {e}",
                    path.display()
                )));
            }
        };
        Self::parse(&text, path).map(Some)
    }

    pub(crate) fn parse(text: &str, path: PathBuf) -> CliResult<Self> {
        let bad = |what: String| Failure::config(format!("{}: {what}", path.display()));
        let file: File = toml::from_str(text).map_err(|e| bad(syntax_error(text, &e)))?;
        let mut profiles = BTreeMap::new();
        for (name, mut table) in file.profiles {
            let kind = match table.remove("kind") {
                None => "oidc".to_owned(),
                Some(toml::Value::String(kind)) => kind,
                Some(other) => {
                    return Err(bad(format!(
                        "profile {name}: kind must be the string \"oidc\" or \"rucio\", not a {}",
                        other.type_str()
                    )));
                }
            };
            let wrong =
                |e: toml::de::Error| bad(format!("profile {name}: {}", serde_message(e.message())));
            let profile = match kind.as_str() {
                "oidc" => {
                    let profile: OidcProfile = table.try_into().map_err(wrong)?;
                    profile
                        .check()
                        .map_err(|what| bad(format!("profile {name}: {what}")))?;
                    Profile::Oidc(profile)
                }
                "rucio" => Profile::Rucio(table.try_into().map_err(wrong)?),
                other => {
                    return Err(bad(format!(
                        "profile {name}: kind must be \"oidc\" or \"rucio\", not {other:?}"
                    )));
                }
            };
            profiles.insert(name, profile);
        }
        if let Some(default) = &file.default_profile
            && !profiles.contains_key(default)
        {
            return Err(bad(format!("default_profile {default:?} is not a profile")));
        }
        for (name, profile) in &profiles {
            let Profile::Oidc(OidcProfile {
                exchange_client: Some(other),
                ..
            }) = profile
            else {
                continue;
            };
            match profiles.get(other) {
                Some(Profile::Oidc(_)) if other != name => {}
                _ => {
                    return Err(bad(format!(
                        "profile {name}: exchange_client {:?} must name another oidc profile",
                        printable(other, 200)
                    )));
                }
            }
        }
        Ok(Self {
            path,
            default_profile: file.default_profile,
            profiles,
        })
    }

    pub(crate) fn profiles(&self) -> &BTreeMap<String, Profile> {
        &self.profiles
    }

    /// The profile named, else the default, else the only one.
    pub(crate) fn select(&self, name: Option<&str>) -> CliResult<(&str, &Profile)> {
        let name = match name.or(self.default_profile.as_deref()) {
            Some(name) => name,
            None if self.profiles.len() == 1 => self
                .profiles
                .keys()
                .next()
                .map(String::as_str)
                .unwrap_or_default(),
            None => {
                return Err(Failure::config(format!(
                    "{} has {} profiles and no default_profile; choose one with --profile",
                    self.path.display(),
                    self.profiles.len()
                )));
            }
        };
        match self.profiles.get_key_value(name) {
            Some((name, profile)) => Ok((name, profile)),
            None => Err(Failure::config(format!(
                "no profile {name:?} in {} (it has: {})",
                self.path.display(),
                self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Whether a profile is chosen without the command line naming one.
    pub(crate) fn has_default(&self) -> bool {
        self.default_profile.is_some() || self.profiles.len() == 1
    }

    /// `path` as the file means it: `~/` from the home directory, relative to the file's
    /// directory.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        if let Ok(rest) = path.strip_prefix("~")
            && let Some(home) = home()
        {
            return home.join(rest);
        }
        match self.path.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        }
    }
}

/// The asymmetric algorithms `private_key_jwt` signs with.
const KEY_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl OidcProfile {
    /// Whether this is a robot (client credentials) profile, which needs no login.
    pub(crate) fn is_robot(&self) -> bool {
        self.grant == GrantStyle::ClientCredentials
    }

    /// The keys that must or must not go together, checked when the file is read (no file
    /// is opened): what is wrong, without the profile's name.
    fn check(&self) -> Result<(), String> {
        let has_secret = self.client_secret_file.is_some()
            || self.client_secret_env.is_some()
            || self.client_secret.is_some();
        let key_keys = [
            ("client_key_alg", self.client_key_alg.is_some()),
            ("client_key_id", self.client_key_id.is_some()),
        ];
        if self.client_auth == ClientAuthStyle::PrivateKeyJwt {
            if self.client_key_file.is_none() {
                return Err(
                    "client_auth = \"private_key_jwt\" needs client_key_file = \"PATH\" (a PEM \
                     private key)"
                        .to_owned(),
                );
            }
            if has_secret {
                return Err(
                    "client_auth = \"private_key_jwt\" signs with client_key_file; remove the \
                     client secret"
                        .to_owned(),
                );
            }
            if let Some(alg) = &self.client_key_alg
                && !KEY_ALGORITHMS.contains(&alg.as_str())
            {
                return Err(format!(
                    "client_key_alg {:?} is not one private_key_jwt signs with ({})",
                    printable(alg, 50),
                    KEY_ALGORITHMS.join(", ")
                ));
            }
        } else if let Some((key, _)) =
            std::iter::once(("client_key_file", self.client_key_file.is_some()))
                .chain(key_keys)
                .find(|(_, given)| *given)
        {
            return Err(format!(
                "{key} is for client_auth = \"private_key_jwt\"; add that, or remove {key}"
            ));
        }
        if self.is_robot() {
            if !has_secret && self.client_auth != ClientAuthStyle::PrivateKeyJwt {
                return Err(
                    "grant = \"client_credentials\" (a robot account) needs the client's \
                     credentials: client_secret_file, client_secret_env, or client_auth = \
                     \"private_key_jwt\" with client_key_file"
                        .to_owned(),
                );
            }
            let login_keys = [
                ("login", self.login.is_some()),
                ("redirect_uri", self.redirect_uri.is_some()),
                ("redirect_ports", !self.redirect_ports.is_empty()),
                ("login_params", !self.login_params.is_empty()),
            ];
            if let Some((key, _)) = login_keys.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{key} is for logins, and a grant = \"client_credentials\" profile never \
                     logs in; remove it"
                ));
            }
        }
        if self.redirect_uri.is_some() && !self.redirect_ports.is_empty() {
            return Err("give redirect_uri or redirect_ports, not both".to_owned());
        }
        if self.redirect_ports.contains(&0) {
            return Err("redirect_ports are ports from 1 to 65535".to_owned());
        }
        Ok(())
    }

    /// How the client will authenticate, checked now (an inline secret refused, a variable
    /// that is not set), read only when [`ClientAuthPlan::make`] runs; `None` for a public
    /// client.
    pub(crate) fn client_auth_plan(
        &self,
        config: &Config,
        name: &str,
    ) -> CliResult<Option<ClientAuthPlan>> {
        let profile = name.to_owned();
        if self.client_auth == ClientAuthStyle::PrivateKeyJwt {
            let Some(file) = &self.client_key_file else {
                return Ok(None);
            };
            let algorithm = self.client_key_alg.as_deref().unwrap_or("RS256");
            let algorithm = algorithm.parse::<Algorithm>().map_err(|_| {
                Failure::config(format!(
                    "profile {name}: client_key_alg {:?} is not an algorithm",
                    printable(algorithm, 50)
                ))
            })?;
            return Ok(Some(ClientAuthPlan {
                profile,
                how: How::Key {
                    path: config.resolve(file),
                    algorithm,
                    key_id: self.client_key_id.clone(),
                },
            }));
        }
        let source = secret_source(
            config,
            name,
            "client_secret",
            self.client_secret_file.as_deref(),
            self.client_secret_env.as_deref(),
            self.client_secret.as_ref(),
            self.allow_inline_secret,
        )?;
        Ok(source.map(|source| ClientAuthPlan {
            profile,
            how: How::Secret {
                source,
                post: self.client_auth == ClientAuthStyle::Post,
            },
        }))
    }

    /// The client secret from its file or variable, read now; `None` for a public client or
    /// one with a key.
    #[cfg(test)]
    pub(crate) fn client_secret(
        &self,
        config: &Config,
        name: &str,
    ) -> CliResult<Option<SecretString>> {
        let source = secret_source(
            config,
            name,
            "client_secret",
            self.client_secret_file.as_deref(),
            self.client_secret_env.as_deref(),
            self.client_secret.as_ref(),
            self.allow_inline_secret,
        )?;
        source
            .map(|s| s.read(name, "client_secret").map_err(Failure::config))
            .transpose()
    }

    /// The token store's directory, if the profile names one.
    pub(crate) fn store_dir(&self, config: &Config) -> Option<PathBuf> {
        self.store_dir.as_deref().map(|dir| config.resolve(dir))
    }

    /// The token store's directory: the profile's, else the default one.
    pub(crate) fn store_dir_or_default(&self, config: &Config) -> CliResult<PathBuf> {
        self.store_dir(config)
            .or_else(sciauth::tokens::FileStore::default_dir)
            .ok_or_else(|| {
                Failure::config(
                    "cannot find the token store: neither XDG_DATA_HOME nor HOME is set; give \
                     the profile a store_dir",
                )
            })
    }
}

impl RucioProfile {
    pub(crate) fn rucio_cfg(&self, config: &Config) -> Option<PathBuf> {
        self.rucio_cfg.as_deref().map(|p| config.resolve(p))
    }

    pub(crate) fn password(&self, config: &Config, name: &str) -> CliResult<Option<SecretString>> {
        let source = secret_source(
            config,
            name,
            "password",
            self.password_file.as_deref(),
            self.password_env.as_deref(),
            self.password.as_ref(),
            self.allow_inline_secret,
        )?;
        source
            .map(|s| s.read(name, "password").map_err(Failure::config))
            .transpose()
    }

    /// A path setting, resolved.
    pub(crate) fn path(&self, config: &Config, which: RucioPath) -> Option<PathBuf> {
        let path = match which {
            RucioPath::SshPrivateKey => &self.ssh_private_key,
            RucioPath::ClientCert => &self.client_cert,
            RucioPath::ClientKey => &self.client_key,
            RucioPath::ClientProxy => &self.client_x509_proxy,
            RucioPath::CaCert => &self.ca_cert,
            RucioPath::CacheDir => &self.cache_dir,
        };
        path.as_deref().map(|p| config.resolve(p))
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum RucioPath {
    SshPrivateKey,
    ClientCert,
    ClientKey,
    ClientProxy,
    CaCert,
    CacheDir,
}

/// How a profile's client will authenticate, with nothing read yet: made into a
/// `ClientAuth` by [`make`](Self::make) when a grant is about to run (the facade calls it
/// from the lazy client), so that a run answered from the store opens no secret or key file.
#[derive(Clone)]
pub(crate) struct ClientAuthPlan {
    profile: String,
    how: How,
}

#[derive(Clone)]
enum How {
    Secret {
        source: SecretSource,
        post: bool,
    },
    Key {
        path: PathBuf,
        algorithm: Algorithm,
        key_id: Option<String>,
    },
}

/// Where a secret is: a file (its first line, trimmed), a variable, or the configuration.
#[derive(Clone)]
enum SecretSource {
    File(PathBuf),
    Env(String),
    Inline(SecretString),
}

impl ClientAuthPlan {
    /// Reads the secret or the key and makes the client authentication.
    pub(crate) fn make(&self) -> sciauth::tokens::Result<ClientAuth> {
        let name = &self.profile;
        match &self.how {
            How::Secret { source, post } => {
                let secret = source
                    .read(name, "client_secret")
                    .map_err(sciauth::tokens::Error::invalid_input)?;
                Ok(if *post {
                    ClientAuth::secret_post(secret)
                } else {
                    ClientAuth::secret_basic(secret)
                })
            }
            How::Key {
                path,
                algorithm,
                key_id,
            } => {
                let key = PrivateKeyJwt::from_pem_file(path, *algorithm).map_err(|e| {
                    let mut message = format!("profile {name}: client_key_file: {e}");
                    let mut source = std::error::Error::source(&e);
                    while let Some(cause) = source {
                        message.push_str(&format!(": {cause}"));
                        source = cause.source();
                    }
                    sciauth::tokens::Error::invalid_input(message)
                })?;
                Ok(ClientAuth::private_key_jwt(match key_id {
                    Some(kid) => key.key_id(kid),
                    None => key,
                }))
            }
        }
    }
}

impl std::fmt::Debug for ClientAuthPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match &self.how {
            How::Secret { post: false, .. } => "client_secret_basic",
            How::Secret { post: true, .. } => "client_secret_post",
            How::Key { .. } => "private_key_jwt",
        };
        f.debug_struct("ClientAuthPlan")
            .field("profile", &self.profile)
            .field("how", &how)
            .finish_non_exhaustive()
    }
}

impl SecretSource {
    /// The secret, or what is wrong (without it).
    fn read(&self, profile: &str, key: &str) -> Result<SecretString, String> {
        match self {
            Self::File(path) => {
                let text = read_limited_text(path, MAX_SECRET_FILE).map_err(|e| {
                    format!(
                        "profile {profile}: cannot read {key}_file {}: {e}",
                        path.display()
                    )
                })?;
                let value = text.lines().next().unwrap_or_default().trim();
                if value.is_empty() {
                    return Err(format!(
                        "profile {profile}: {key}_file {} is empty",
                        path.display()
                    ));
                }
                Ok(SecretString::from(value.to_owned()))
            }
            Self::Env(var) => match std::env::var(var) {
                Ok(value) if !value.is_empty() => Ok(SecretString::from(value)),
                _ => Err(format!(
                    "profile {profile}: {key}_env names {var}, which is not set"
                )),
            },
            Self::Inline(value) => Ok(value.clone()),
        }
    }
}

/// Where a secret comes from: a file (first line, trimmed), an environment variable, or
/// (only when allowed, with a warning) the configuration itself. Nothing is read here; a
/// variable that is not set, or a secret written in the file, is refused now.
fn secret_source(
    config: &Config,
    profile: &str,
    key: &str,
    file: Option<&Path>,
    env: Option<&str>,
    inline: Option<&Inline>,
    allow_inline: bool,
) -> CliResult<Option<SecretSource>> {
    let given = [file.is_some(), env.is_some(), inline.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Failure::config(format!(
            "profile {profile}: give the {key} one way only: {key}_file or {key}_env"
        )));
    }
    if let Some(file) = file {
        return Ok(Some(SecretSource::File(config.resolve(file))));
    }
    if let Some(var) = env {
        return match std::env::var_os(var) {
            Some(value) if !value.is_empty() => Ok(Some(SecretSource::Env(var.to_owned()))),
            _ => Err(Failure::config(format!(
                "profile {profile}: {key}_env names {var}, which is not set"
            ))
            .hint(format!("export {var}=... before running sciauth"))),
        };
    }
    if let Some(Inline(value)) = inline {
        if !allow_inline {
            return Err(Failure::config(format!(
                "profile {profile}: {key} is written in {}; secrets belong in a file or a \
                 variable",
                config.path.display()
            ))
            .hint(format!(
                "use {key}_file = \"PATH\" (0600) or {key}_env = \"VAR\"; to keep it inline \
                 anyway, add allow_inline_secret = true"
            )));
        }
        eprintln!(
            "sciauth: warning: profile {profile} keeps its {key} in {}; anyone who can read \
             the file has it",
            config.path.display()
        );
        return Ok(Some(SecretSource::Inline(value.clone())));
    }
    Ok(None)
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|home| home.is_absolute())
}

/// A TOML error as one line: what is wrong and where (line, column), never the source line
/// that toml's `Display` quotes, which may hold an inline secret.
fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let what = serde_message(error.message());
    match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: {what}")
        }
        None => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CliResult<Config> {
        Config::parse(text, PathBuf::from("/etc/sciauth/config.toml"))
    }

    #[test]
    fn profiles_default_to_oidc_and_select_by_name_default_or_the_only_one() {
        let config = parse(
            r#"
            default_profile = "b"
            [profiles.a]
            issuer = "https://a.example.org"
            client_id = "cli"
            scopes = ["openid"]
            audience_parameter = "resource"
            [profiles.b]
            kind = "rucio"
            rucio_host = "https://rucio.example.org"
            "#,
        )
        .unwrap();
        assert!(matches!(
            config.select(None).unwrap(),
            ("b", Profile::Rucio(_))
        ));
        let ("a", Profile::Oidc(a)) = config.select(Some("a")).unwrap() else {
            unreachable!("profile a is oidc")
        };
        assert_eq!(a.audience_parameter, AudienceStyle::Resource);
        assert!(config.select(Some("c")).is_err());

        let only = parse("[profiles.x]\nissuer = \"https://x\"\nclient_id = \"c\"\n").unwrap();
        assert_eq!(only.select(None).unwrap().0, "x");
        let two = parse(
            "[profiles.x]\nissuer = \"i\"\nclient_id = \"c\"\n[profiles.y]\nissuer = \"i\"\nclient_id = \"c\"\n",
        )
        .unwrap();
        assert!(two.select(None).unwrap_err().message.contains("--profile"));
    }

    #[test]
    fn typos_and_unknown_kinds_are_errors_naming_the_profile() {
        let error =
            parse("[profiles.x]\nissuer = \"i\"\nclient_id = \"c\"\nscope = []\n").unwrap_err();
        assert!(
            error.message.contains("profile x") && error.message.contains("scope"),
            "{error:?}"
        );
        let error = parse("[profiles.x]\nkind = \"ldap\"\n").unwrap_err();
        assert!(error.message.contains("ldap"), "{error:?}");
        let error = parse("default_profile = \"nope\"\n").unwrap_err();
        assert!(error.message.contains("nope"), "{error:?}");
    }

    #[test]
    fn inline_secrets_are_refused_unless_allowed_and_never_shown() {
        let refused = parse(
            "[profiles.x]\nissuer = \"i\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\n",
        )
        .unwrap();
        let (_, Profile::Oidc(profile)) = refused.select(None).unwrap() else {
            unreachable!("oidc")
        };
        let error = profile.client_secret(&refused, "x").unwrap_err();
        assert!(error.message.contains("client_secret"), "{error:?}");
        assert!(!format!("{error:?}{:?}", error.hint).contains("s3cret-value"));
        assert!(!format!("{refused:?}").contains("s3cret-value"));

        let allowed = parse(
            "[profiles.x]\nissuer = \"i\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nallow_inline_secret = true\n",
        )
        .unwrap();
        let (_, Profile::Oidc(profile)) = allowed.select(None).unwrap() else {
            unreachable!("oidc")
        };
        assert!(profile.client_secret(&allowed, "x").unwrap().is_some());
    }

    #[test]
    fn syntax_errors_say_where_without_quoting_the_line() {
        // An unterminated string on the secret's line: toml's Display would quote the line.
        let error = parse(
            "[profiles.x]\nissuer = \"i\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\nallow_inline_secret = true\n",
        )
        .unwrap_err();
        assert!(!error.message.contains("s3cret-value"), "{error:?}");
        assert!(error.message.contains("line 4, column "), "{error:?}");
        assert!(!error.message.contains('\n'), "{error:?}");
        // A secret of the wrong type: serde's message would quote the value.
        let error = parse(
            "[profiles.x]\nissuer = \"i\"\nclient_id = \"c\"\nclient_secret = 987654321\nallow_inline_secret = true\n",
        )
        .unwrap_err();
        assert!(!error.message.contains("987654321"), "{error:?}");
        assert!(error.message.contains("expected a string"), "{error:?}");
        // A key holding a terminal escape is named, escaped.
        let error = parse("[profiles.x]\nissuer = \"i\"\nclient_id = \"c\"\n\"k\\u001b[2J\" = 1\n")
            .unwrap_err();
        assert!(!error.message.contains('\u{1b}'), "{error:?}");
        assert!(error.message.contains("k\\x1b[2J"), "{error:?}");
    }

    #[test]
    fn robot_key_and_redirect_keys_must_go_together() {
        let profile = |keys: &str| {
            parse(&format!(
                "[profiles.r]\nissuer = \"https://i\"\nclient_id = \"c\"\n{keys}\n"
            ))
        };
        let refused = [
            (
                "grant = \"client_credentials\"",
                "needs the client's credentials",
            ),
            ("client_auth = \"private_key_jwt\"", "needs client_key_file"),
            (
                "client_auth = \"private_key_jwt\"\nclient_key_file = \"k.pem\"\nclient_secret_env = \"S\"",
                "remove the client secret",
            ),
            (
                "client_auth = \"private_key_jwt\"\nclient_key_file = \"k.pem\"\nclient_key_alg = \"HS256\"",
                "not one private_key_jwt signs with",
            ),
            (
                "client_key_file = \"k.pem\"",
                "is for client_auth = \"private_key_jwt\"",
            ),
            ("client_key_id = \"k1\"", "client_key_id is for"),
            (
                "grant = \"client_credentials\"\nclient_secret_env = \"S\"\nlogin = \"device\"",
                "login is for logins",
            ),
            (
                "grant = \"client_credentials\"\nclient_secret_env = \"S\"\nredirect_ports = [4242]",
                "redirect_ports is for logins",
            ),
            (
                "redirect_uri = \"http://127.0.0.1:1/cb\"\nredirect_ports = [4242]",
                "not both",
            ),
            ("redirect_ports = [0]", "from 1 to 65535"),
            (
                "grant = \"robot\"",
                "expected `login` or `client_credentials`",
            ),
            ("exchange_client = \"nope\"", "another oidc profile"),
            ("exchange_client = \"r\"", "another oidc profile"),
        ];
        for (keys, why) in refused {
            let error = profile(keys).unwrap_err();
            assert!(
                error.message.contains("profile r") && error.message.contains(why),
                "{keys}: {error:?}"
            );
        }
        for keys in [
            "grant = \"client_credentials\"\nclient_secret_file = \"s\"\nclient_auth = \"post\"",
            "grant = \"client_credentials\"\nclient_auth = \"private_key_jwt\"\nclient_key_file = \"k.pem\"\nclient_key_alg = \"ES256\"\nclient_key_id = \"k1\"",
            "redirect_ports = [4242, 8080]\nlogin_params = { idphint = \"https://idp.example.org\" }",
            "redirect_uri = \"http://127.0.0.1:8765/callback\"",
        ] {
            let config = profile(keys).unwrap_or_else(|e| panic!("{keys}: {e:?}"));
            let (_, Profile::Oidc(oidc)) = config.select(None).unwrap() else {
                unreachable!("oidc")
            };
            // No file is read when the plan is made.
            let plan = oidc.client_auth_plan(&config, "r").unwrap();
            assert_eq!(plan.is_some(), oidc.is_robot(), "{keys}");
        }
    }

    #[test]
    fn secrets_and_keys_are_read_when_made_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), "s3cret-value\n").unwrap();
        std::fs::write(dir.path().join("k.pem"), "not a key s3cret-value").unwrap();
        let config = Config::parse(
            "[profiles.a]\nissuer = \"https://i\"\nclient_id = \"c\"\nclient_secret_file = \"s\"\n\
             [profiles.b]\nissuer = \"https://i\"\nclient_id = \"c\"\nclient_auth = \"private_key_jwt\"\nclient_key_file = \"k.pem\"\n\
             [profiles.c]\nissuer = \"https://i\"\nclient_id = \"c\"\nclient_secret_file = \"missing\"\n",
            dir.path().join("config.toml"),
        )
        .unwrap();
        let plan = |name: &str| {
            let (_, Profile::Oidc(profile)) = config.select(Some(name)).unwrap() else {
                unreachable!("oidc")
            };
            profile.client_auth_plan(&config, name).unwrap().unwrap()
        };
        let auth = plan("a").make().unwrap();
        assert_eq!(auth.method_name(), "client_secret_basic");
        assert!(!format!("{auth:?}{:?}", plan("a")).contains("s3cret-value"));
        let error = plan("b").make().unwrap_err();
        assert!(
            error.to_string().contains("profile b: client_key_file"),
            "{error}"
        );
        assert!(!error.to_string().contains("s3cret-value"), "{error}");
        // A missing file is found when the plan is made, not before.
        let error = plan("c").make().unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
    }

    #[test]
    fn an_endless_secret_file_is_cut_off_at_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(
            "[profiles.z]\nissuer = \"https://i\"\nclient_id = \"c\"\nclient_secret_file = \"/dev/zero\"\n",
            dir.path().join("config.toml"),
        )
        .unwrap();
        let (_, Profile::Oidc(profile)) = config.select(Some("z")).unwrap() else {
            unreachable!("oidc")
        };
        let plan = profile.client_auth_plan(&config, "z").unwrap().unwrap();
        let error = plan.make().unwrap_err();
        assert!(
            error.to_string().contains("longer than the 65536 bytes"),
            "{error}"
        );
    }

    #[test]
    fn paths_are_relative_to_the_file_and_the_home() {
        let config = parse("").unwrap();
        assert_eq!(config.resolve(Path::new("s")), Path::new("/etc/sciauth/s"));
        assert_eq!(config.resolve(Path::new("/abs")), Path::new("/abs"));
        if let Some(home) = home() {
            assert_eq!(config.resolve(Path::new("~/x")), home.join("x"));
        }
    }
}
