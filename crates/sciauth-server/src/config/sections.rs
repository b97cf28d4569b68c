//! The configuration file's shape (serde) and its reading, one section per function:
//! `[server]` and `[metrics]`, `[store]`, `[callers]`, `[providers.*]`, `[vos.*]`,
//! `[groups.*]`, `[users.*]`, each checked against the sections before it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sciauth_credentials::fs::{MAX_SECRET_FILE, read_limited_text};
use sciauth_credentials::text::{line_column, serde_message};
use secrecy::SecretString;
use serde::Deserialize;

use super::*;
use crate::error::{Error, Result};

/// Reads and checks the whole file, one section at a time; every name a section refers to
/// must be configured in the sections read before it.
pub(super) fn parse(text: &str, base: &Path, env: Env<'_>) -> Result<Config> {
    let file = parse_toml(text)?;
    let paths = Paths(base);
    let (listen, metrics_listen) = listen_addresses(&file.server, file.metrics.as_ref())?;
    let timing = server_timing(&file.server)?;
    let tls = file.server.tls.map(|tls| paths.tls(tls));
    let store = store_section(file.store, &paths, env)?;
    let callers = file.callers.map(|c| CallersConfig {
        issuer: c.issuer,
        audience: c.audience,
        plain_jwt_access_tokens: c.plain_jwt_access_tokens,
    });
    let providers = provider_sections(file.providers, &paths, env)?;
    let vos = vo_sections(file.vos, &providers)?;
    let groups = group_sections(file.groups, &vos, &providers)?;
    let users = user_sections(file.users, &groups, &providers)?;
    Ok(Config {
        source: None,
        listen,
        metrics_listen,
        log_format: file.server.log_format.unwrap_or_default(),
        drain_timeout: timing.drain_timeout,
        http2: file.server.http2.unwrap_or(true),
        h2c: file.server.h2c.unwrap_or(false),
        max_body_bytes: file.server.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        purge_interval: timing.purge_interval,
        limits: timing.limits,
        tls,
        store,
        callers,
        providers,
        vos,
        groups,
        users,
    })
}

/// The TOML as the file's shape. TOML's Display quotes the offending line, and serde's
/// messages quote values; either may be a secret: say where and what kind of problem only.
fn parse_toml(text: &str) -> Result<File> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let (line, column) = line_column(text, span.start);
                format!(" (line {line}, column {column})")
            })
            .unwrap_or_default();
        Error::config(format!(
            "the configuration is not valid{at}: {}",
            serde_message(e.message())
        ))
    })
}

/// Paths in the file are relative to the file's directory.
struct Paths<'a>(&'a Path);

impl Paths<'_> {
    fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.0.join(path)
        }
    }

    fn tls(&self, tls: TlsSection) -> TlsConfig {
        TlsConfig {
            certificate: self.resolve(&tls.certificate),
            key: self.resolve(&tls.key),
            client_ca: tls.client_ca.as_deref().map(|p| self.resolve(p)),
            client_ca_dir: tls.client_ca_dir.as_deref().map(|p| self.resolve(p)),
        }
    }
}

/// `server.listen` and `metrics.listen`.
fn listen_addresses(
    server: &ServerSection,
    metrics: Option<&MetricsSection>,
) -> Result<(SocketAddr, Option<SocketAddr>)> {
    let listen = server
        .listen
        .as_deref()
        .unwrap_or(DEFAULT_LISTEN)
        .parse()
        .map_err(|_| {
            Error::config("server.listen must be an address with a port, like 127.0.0.1:9181")
        })?;
    let metrics_listen = metrics
        .map(|metrics| {
            metrics.listen.parse().map_err(|_| {
                Error::config("metrics.listen must be an address with a port, like 127.0.0.1:9182")
            })
        })
        .transpose()?;
    Ok((listen, metrics_listen))
}

/// The `[server]` settings that are times and counts.
struct ServerTiming {
    purge_interval: Duration,
    limits: ConnectionLimits,
    drain_timeout: Duration,
}

fn server_timing(server: &ServerSection) -> Result<ServerTiming> {
    let purge_interval = match server.purge_interval_seconds {
        None => DEFAULT_PURGE_INTERVAL,
        Some(0) => {
            return Err(Error::config(
                "server.purge_interval_seconds must be at least 1",
            ));
        }
        Some(seconds) => Duration::from_secs(seconds),
    };
    let max_connections = match server.max_connections {
        None => DEFAULT_MAX_CONNECTIONS,
        Some(n) if (1..=MAX_MAX_CONNECTIONS).contains(&n) => n,
        Some(_) => {
            return Err(Error::config(format!(
                "server.max_connections must be between 1 and {MAX_MAX_CONNECTIONS}"
            )));
        }
    };
    let limits = ConnectionLimits {
        header_timeout: timeout(
            "server.header_timeout_seconds",
            server.header_timeout_seconds,
            DEFAULT_HEADER_TIMEOUT,
        )?,
        body_timeout: timeout(
            "server.body_timeout_seconds",
            server.body_timeout_seconds,
            DEFAULT_BODY_TIMEOUT,
        )?,
        idle_timeout: timeout(
            "server.idle_timeout_seconds",
            server.idle_timeout_seconds,
            DEFAULT_IDLE_TIMEOUT,
        )?,
        max_connections,
    };
    let drain_timeout = timeout(
        "server.drain_timeout_seconds",
        server.drain_timeout_seconds,
        DEFAULT_DRAIN_TIMEOUT,
    )?;
    Ok(ServerTiming {
        purge_interval,
        limits,
        drain_timeout,
    })
}

/// `[store]`: where the grants are kept, its secrets read now.
fn store_section(store: StoreSection, paths: &Paths<'_>, env: Env<'_>) -> Result<StoreConfig> {
    Ok(match store {
        StoreSection::Postgres {
            url,
            url_env,
            password_file,
            max_lock_connections,
        } => {
            let url = match (url, url_env) {
                (Some(url), None) => url,
                (None, Some(var)) => env(&var).ok_or_else(|| {
                    Error::config(format!("store.url_env names {var}, which is not set"))
                })?,
                _ => {
                    return Err(Error::config(
                        "store (postgres) needs exactly one of url and url_env",
                    ));
                }
            };
            let password = password_file
                .map(|p| read_secret(&paths.resolve(&p), "store.password_file"))
                .transpose()?;
            StoreConfig::Postgres {
                url: SecretString::from(url),
                password,
                max_lock_connections: max_lock_connections
                    .unwrap_or(crate::postgres::DEFAULT_MAX_LOCK_CONNECTIONS),
            }
        }
        StoreSection::Sqlite { path } => StoreConfig::Sqlite {
            path: paths.resolve(&path),
        },
        StoreSection::File { dir } => StoreConfig::File {
            dir: paths.resolve(&dir),
        },
        StoreSection::Memory => StoreConfig::Memory,
    })
}

/// `[providers.*]`.
fn provider_sections(
    sections: BTreeMap<String, ProviderSection>,
    paths: &Paths<'_>,
    env: Env<'_>,
) -> Result<BTreeMap<String, ProviderConfig>> {
    let mut providers = BTreeMap::new();
    for (name, section) in sections {
        check_name("provider", &name)?;
        let provider = provider_section(&name, section, paths, env)?;
        providers.insert(name, provider);
    }
    Ok(providers)
}

fn provider_section(
    name: &str,
    p: ProviderSection,
    paths: &Paths<'_>,
    env: Env<'_>,
) -> Result<ProviderConfig> {
    let client_secret = match (p.client_secret_file, p.client_secret_env) {
        (Some(_), Some(_)) => {
            return Err(Error::config(format!(
                "provider {name}: set client_secret_file or client_secret_env, not both"
            )));
        }
        (Some(path), None) => Some(read_secret(
            &paths.resolve(&path),
            &format!("providers.{name}.client_secret_file"),
        )?),
        (None, Some(var)) => Some(SecretString::from(env(&var).ok_or_else(|| {
            Error::config(format!(
                "provider {name}: client_secret_env names {var}, which is not set"
            ))
        })?)),
        (None, None) => None,
    };
    let client_auth = match (p.client_auth, &client_secret) {
        (Some(ClientAuthMethod::None), Some(_)) => {
            return Err(Error::config(format!(
                "provider {name}: client_auth = \"none\" but a client secret is configured"
            )));
        }
        (
            Some(
                method @ (ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost),
            ),
            None,
        ) => {
            return Err(Error::config(format!(
                "provider {name}: client_auth = {method:?} needs client_secret_file or \
                 client_secret_env"
            )));
        }
        (Some(method), _) => method,
        (None, Some(_)) => ClientAuthMethod::ClientSecretBasic,
        (None, None) => ClientAuthMethod::None,
    };
    let audience_parameter = match p.audience_parameter {
        None | Some(AudienceParameterName::Audience) => sciauth_tokens::AudienceParameter::Audience,
        Some(AudienceParameterName::Resource) => sciauth_tokens::AudienceParameter::Resource,
        Some(AudienceParameterName::Omit) => sciauth_tokens::AudienceParameter::Omit,
    };
    Ok(ProviderConfig {
        issuer: p.issuer,
        client_id: p.client_id,
        client_secret,
        client_auth,
        audience_parameter,
    })
}

/// Fails unless `provider` is configured; `what` says who names it.
fn known_provider(
    providers: &BTreeMap<String, ProviderConfig>,
    what: &str,
    provider: &str,
) -> Result<()> {
    if providers.contains_key(provider) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{what} names the provider {provider:?}, which is not configured (providers: {})",
            names(providers.keys())
        )))
    }
}

/// `[vos.*]`: each names a configured provider.
fn vo_sections(
    sections: BTreeMap<String, VoSection>,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<BTreeMap<String, VoConfig>> {
    let mut vos = BTreeMap::new();
    for (name, vo) in sections {
        check_name("VO", &name)?;
        known_provider(providers, &format!("vos.{name}"), &vo.provider)?;
        vos.insert(
            name,
            VoConfig {
                provider: vo.provider,
            },
        );
    }
    Ok(vos)
}

/// `[groups.*]`: each names a configured VO and provider, if any.
fn group_sections(
    sections: BTreeMap<String, GroupSection>,
    vos: &BTreeMap<String, VoConfig>,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<BTreeMap<String, GroupConfig>> {
    let mut groups = BTreeMap::new();
    for (name, group) in sections {
        check_name("group", &name)?;
        if let Some(vo) = &group.vo
            && !vos.contains_key(vo)
        {
            return Err(Error::config(format!(
                "groups.{name} names the VO {vo:?}, which is not configured (vos: {})",
                names(vos.keys())
            )));
        }
        if let Some(provider) = &group.provider {
            known_provider(providers, &format!("groups.{name}"), provider)?;
        }
        groups.insert(
            name,
            GroupConfig {
                vo: group.vo,
                provider: group.provider,
                properties: group.properties.into_iter().collect(),
                scopes: group.scopes,
            },
        );
    }
    Ok(groups)
}

/// Who already claimed each DN, subject and provider ID: one user each.
#[derive(Default)]
struct Claims {
    dns: BTreeMap<String, String>,
    subjects: BTreeMap<String, String>,
    ids: BTreeMap<(String, String), String>,
}

/// `[users.*]`: each in configured groups, with DNs, subjects and provider IDs no other user
/// has.
fn user_sections(
    sections: BTreeMap<String, UserSection>,
    groups: &BTreeMap<String, GroupConfig>,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<BTreeMap<String, UserConfig>> {
    let mut users = BTreeMap::new();
    let mut claims = Claims::default();
    for (name, user) in sections {
        check_name("user", &name)?;
        if user.groups.is_empty() {
            return Err(Error::config(format!(
                "users.{name} has no groups; list at least one"
            )));
        }
        for group in &user.groups {
            if !groups.contains_key(group) {
                return Err(Error::config(format!(
                    "users.{name} is in the group {group:?}, which is not configured \
                     (groups: {})",
                    names(groups.keys())
                )));
            }
        }
        let dns = claims.claim(&name, &user, providers)?;
        users.insert(
            name,
            UserConfig {
                groups: user.groups,
                dns,
                subjects: user.subjects,
                ids: user.ids,
            },
        );
    }
    Ok(users)
}

impl Claims {
    /// Claims `user`'s DNs (in canonical form), subjects and IDs for `name`; answers the
    /// canonical DNs.
    fn claim(
        &mut self,
        name: &str,
        user: &UserSection,
        providers: &BTreeMap<String, ProviderConfig>,
    ) -> Result<Vec<String>> {
        // Compared in canonical form, so that a value holding a / or = cannot stand for
        // another DN (see dn.rs).
        let dns = user
            .dns
            .iter()
            .map(|dn| {
                crate::dn::canonical(dn)
                    .map_err(|what| Error::config(format!("users.{name}.dns: {dn:?}: {what}")))
            })
            .collect::<Result<Vec<_>>>()?;
        for dn in &dns {
            if let Some(other) = self.dns.insert(dn.clone(), name.to_owned()) {
                return Err(Error::config(format!(
                    "the DN {dn:?} belongs to both users.{other} and users.{name}"
                )));
            }
        }
        for subject in &user.subjects {
            if let Some(other) = self.subjects.insert(subject.clone(), name.to_owned()) {
                return Err(Error::config(format!(
                    "the subject {subject:?} belongs to both users.{other} and users.{name}"
                )));
            }
        }
        for (provider, id) in &user.ids {
            known_provider(providers, &format!("users.{name}.ids"), provider)?;
            if let Some(other) = self
                .ids
                .insert((provider.clone(), id.clone()), name.to_owned())
            {
                return Err(Error::config(format!(
                    "the ID {id:?} at {provider} belongs to both users.{other} and users.{name}"
                )));
            }
        }
        Ok(dns)
    }
}

/// A timeout in seconds (fractions allowed): more than zero, at most a day.
fn timeout(key: &str, seconds: Option<f64>, default: Duration) -> Result<Duration> {
    let Some(seconds) = seconds else {
        return Ok(default);
    };
    (seconds <= MAX_TIMEOUT.as_secs_f64())
        .then(|| sciauth_credentials::time::seconds_f64(seconds, MAX_TIMEOUT))
        .flatten()
        .filter(|timeout| !timeout.is_zero())
        .ok_or_else(|| {
            Error::config(format!(
                "{key} must be a number of seconds above 0 and at most {}",
                MAX_TIMEOUT.as_secs()
            ))
        })
}

/// Names become store accounts (`group:<name>`) and error messages: keep them plain.
fn check_name(what: &str, name: &str) -> Result<()> {
    let fine = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if fine {
        Ok(())
    } else {
        Err(Error::config(format!(
            "the {what} name {name:?} may hold only letters, digits and _ - . @"
        )))
    }
}

fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<&str> = names.map(String::as_str).collect();
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.join(", ")
    }
}

fn read_secret(path: &Path, what: &str) -> Result<SecretString> {
    let text = read_limited_text(path, MAX_SECRET_FILE)
        .map_err(|e| Error::config(format!("{what}: cannot read {}: {e}", path.display())))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(Error::config(format!(
            "{what}: {} is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(secret.to_owned()))
}

// The file's shape.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    metrics: Option<MetricsSection>,
    store: StoreSection,
    #[serde(default)]
    callers: Option<CallersSection>,
    #[serde(default)]
    providers: BTreeMap<String, ProviderSection>,
    #[serde(default)]
    vos: BTreeMap<String, VoSection>,
    #[serde(default)]
    groups: BTreeMap<String, GroupSection>,
    #[serde(default)]
    users: BTreeMap<String, UserSection>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    listen: Option<String>,
    max_body_bytes: Option<usize>,
    purge_interval_seconds: Option<u64>,
    header_timeout_seconds: Option<f64>,
    body_timeout_seconds: Option<f64>,
    idle_timeout_seconds: Option<f64>,
    max_connections: Option<usize>,
    log_format: Option<LogFormat>,
    drain_timeout_seconds: Option<f64>,
    http2: Option<bool>,
    h2c: Option<bool>,
    tls: Option<TlsSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    listen: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    certificate: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    client_ca_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum StoreSection {
    Postgres {
        url: Option<String>,
        url_env: Option<String>,
        password_file: Option<PathBuf>,
        max_lock_connections: Option<usize>,
    },
    Sqlite {
        path: PathBuf,
    },
    File {
        dir: PathBuf,
    },
    Memory,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallersSection {
    issuer: String,
    audience: String,
    #[serde(default)]
    plain_jwt_access_tokens: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderSection {
    issuer: String,
    client_id: String,
    client_secret_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    client_auth: Option<ClientAuthMethod>,
    audience_parameter: Option<AudienceParameterName>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum AudienceParameterName {
    Audience,
    Resource,
    Omit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoSection {
    provider: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSection {
    vo: Option<String>,
    provider: Option<String>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserSection {
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    ids: BTreeMap<String, String>,
}
