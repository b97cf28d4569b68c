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
//! [profiles.rucio]
//! kind = "rucio"
//! rucio_cfg = "/opt/rucio/etc/rucio.cfg"                 # optional; explicit keys override it
//! account = "alice"
//! ```
//!
//! Secrets never sit in the file by default: `client_secret` (and a Rucio `password`) is
//! refused unless the profile also says `allow_inline_secret = true`, and then a warning is
//! printed each time. Unknown keys are errors, so that a typo does not pass silently.
//! Relative paths are relative to the file's directory; `~/` is the home directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sciauth::credentials::secrecy::SecretString;
use sciauth::credentials::text::{line_column, serde_message};
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
    /// How the secret is sent: `basic` (client_secret_basic, the default) or `post`.
    #[serde(default)]
    pub(crate) client_auth: ClientAuthStyle,
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    pub(crate) audience: Option<String>,
    #[serde(default)]
    pub(crate) audience_parameter: AudienceStyle,
    store_dir: Option<PathBuf>,
    /// The account the tokens are stored under; by default the profile name.
    pub(crate) account: Option<String>,
    /// The login flow when the command line names none.
    pub(crate) login: Option<LoginFlow>,
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
#[serde(rename_all = "lowercase")]
pub(crate) enum ClientAuthStyle {
    #[default]
    Basic,
    Post,
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
        let text = match std::fs::read_to_string(&path) {
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
                "oidc" => Profile::Oidc(table.try_into().map_err(wrong)?),
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

impl OidcProfile {
    /// The client secret from its file or variable; `None` for a public client.
    pub(crate) fn client_secret(
        &self,
        config: &Config,
        name: &str,
    ) -> CliResult<Option<SecretString>> {
        secret(
            config,
            name,
            "client_secret",
            self.client_secret_file.as_deref(),
            self.client_secret_env.as_deref(),
            self.client_secret.as_ref(),
            self.allow_inline_secret,
        )
    }

    /// The token store's directory, if the profile names one.
    pub(crate) fn store_dir(&self, config: &Config) -> Option<PathBuf> {
        self.store_dir.as_deref().map(|dir| config.resolve(dir))
    }
}

impl RucioProfile {
    pub(crate) fn rucio_cfg(&self, config: &Config) -> Option<PathBuf> {
        self.rucio_cfg.as_deref().map(|p| config.resolve(p))
    }

    pub(crate) fn password(&self, config: &Config, name: &str) -> CliResult<Option<SecretString>> {
        secret(
            config,
            name,
            "password",
            self.password_file.as_deref(),
            self.password_env.as_deref(),
            self.password.as_ref(),
            self.allow_inline_secret,
        )
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

/// A secret from a file (first line, trimmed), an environment variable, or (only when
/// allowed, with a warning) the configuration itself.
fn secret(
    config: &Config,
    profile: &str,
    key: &str,
    file: Option<&Path>,
    env: Option<&str>,
    inline: Option<&Inline>,
    allow_inline: bool,
) -> CliResult<Option<SecretString>> {
    let given = [file.is_some(), env.is_some(), inline.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Failure::config(format!(
            "profile {profile}: give the {key} one way only: {key}_file or {key}_env"
        )));
    }
    if let Some(file) = file {
        let path = config.resolve(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::config(format!(
                "profile {profile}: cannot read {key}_file {}: {e}",
                path.display()
            ))
        })?;
        let value = text.lines().next().unwrap_or_default().trim();
        if value.is_empty() {
            return Err(Failure::config(format!(
                "profile {profile}: {key}_file {} is empty",
                path.display()
            )));
        }
        return Ok(Some(SecretString::from(value.to_owned())));
    }
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(Some(SecretString::from(value))),
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
        return Ok(Some(value.clone()));
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
    fn paths_are_relative_to_the_file_and_the_home() {
        let config = parse("").unwrap();
        assert_eq!(config.resolve(Path::new("s")), Path::new("/etc/sciauth/s"));
        assert_eq!(config.resolve(Path::new("/abs")), Path::new("/abs"));
        if let Some(home) = home() {
            assert_eq!(config.resolve(Path::new("~/x")), home.join("x"));
        }
    }
}
