//! `sciauth rucio ...`: the Rucio client's authentication, as a drop-in.
//!
//! No sciauth configuration is needed: `rucio.cfg` is found and read as the Rucio client
//! reads it (`RUCIO_CONFIG`, `$RUCIO_HOME/etc`, `$VIRTUAL_ENV/etc`, `$CONDA_PREFIX/etc`,
//! `/opt/rucio/etc`), the `RUCIO_*` variables lie over it, and the Rucio client's own options
//! (`-a/--account`, `-S/--auth-strategy`, `--vo`, `-H/--host`, ...) over those. A rucio
//! profile of `config.toml`, when one is chosen (`--profile`, or the file's default), lies
//! between the file and the options. The token is shared with the Rucio client through its
//! token file, so `rucio` and `sciauth rucio` log in once between them.
//!
//! `sciauth rucio token` with a cached token is answered by [`answer_now`] before any async
//! runtime exists: the configuration and one cache file, no thread, no socket, no key.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use sciauth::credentials::secrecy::{ExposeSecret as _, SecretString};
use sciauth::credentials::text::printable;
use sciauth::rucio::{
    AuthMethod, Environment, OidcTokenSource, PassphrasePrompt, RucioClient, RucioClientBuilder,
    RucioConfig,
};
use sciauth::tokens::DEFAULT_MIN_VALID;
use sciauth::transport::Method;

use crate::config::{Config, Profile, RucioPath, RucioProfile};
use crate::context::{Context, native_client, token_request};
use crate::failure::{CliResult, Exit, Failure};
use crate::output::{duration, unix};

/// `sciauth rucio [OPTIONS] COMMAND`.
#[derive(Debug, Args)]
pub(crate) struct RucioArgs {
    #[command(flatten)]
    pub(crate) options: RucioOptions,

    #[command(subcommand)]
    pub(crate) command: RucioCommand,
}

/// The Rucio client's global options, with its names.
#[derive(Debug, Default, Args)]
pub(crate) struct RucioOptions {
    /// The Rucio account (default: RUCIO_ACCOUNT, else account in rucio.cfg).
    #[arg(short = 'a', long = "account", visible_alias = "issuer", global = true)]
    account: Option<String>,

    /// How to log in (default: RUCIO_AUTH_TYPE, else auth_type in rucio.cfg).
    #[arg(short = 'S', long = "auth-strategy", global = true,
          value_parser = ["userpass", "x509", "x509_proxy", "ssh", "oidc"])]
    auth_strategy: Option<String>,

    /// The VO (default: RUCIO_VO, else vo in rucio.cfg; the server's is `def`).
    #[arg(long, global = true)]
    vo: Option<String>,

    /// The Rucio API host (default: rucio_host in rucio.cfg).
    #[arg(short = 'H', long = "host", visible_alias = "hostname", global = true)]
    host: Option<String>,

    /// The Rucio authentication host (default: auth_host in rucio.cfg, else the API host).
    #[arg(long = "auth-host", global = true)]
    auth_host: Option<String>,

    /// The username for userpass (default: username in rucio.cfg). The password comes from
    /// rucio.cfg or the profile, never from the command line.
    #[arg(short = 'u', long = "user", global = true)]
    user: Option<String>,

    /// The client certificate for x509 (default: RUCIO_CLIENT_CERT, else client_cert).
    #[arg(long, global = true, value_name = "FILE")]
    certificate: Option<PathBuf>,

    /// The client key for x509 (default: RUCIO_CLIENT_KEY, else client_key).
    #[arg(long = "client-key", global = true, value_name = "FILE")]
    client_key: Option<PathBuf>,

    /// CA certificates to trust: a PEM file or a directory (default: X509_CERT_DIR, else
    /// ca_cert).
    #[arg(long = "ca-certificate", global = true, value_name = "PATH")]
    ca_certificate: Option<PathBuf>,

    /// The scope of the Rucio-brokered OIDC login (default: oidc_scope, else `openid
    /// profile`).
    #[arg(long = "oidc-scope", global = true)]
    oidc_scope: Option<String>,

    /// The audience of the Rucio-brokered OIDC login (default: oidc_audience).
    #[arg(long = "oidc-audience", global = true)]
    oidc_audience: Option<String>,

    /// Which of the server's identity providers the OIDC login uses (default: oidc_issuer).
    #[arg(long = "oidc-issuer", global = true)]
    oidc_issuer: Option<String>,

    /// Poll the server for the OIDC token instead of asking for the code the browser shows.
    #[arg(long = "oidc-polling", global = true)]
    oidc_polling: bool,

    /// Hours the server keeps refreshing the OIDC token (default: oidc_refresh_lifetime).
    #[arg(long = "oidc-refresh-lifetime", global = true, value_name = "HOURS")]
    oidc_refresh_lifetime: Option<u32>,

    /// Seconds one request may take (default: 600).
    #[arg(short = 'T', long, global = true, value_name = "SECONDS")]
    timeout: Option<f64>,

    /// The variable holding the passphrase of the encrypted SSH key or x509 client key
    /// (default: RUCIO_SSH_PASSPHRASE for the SSH key, else a prompt on a terminal).
    #[arg(long = "passphrase-env", global = true, value_name = "VAR")]
    passphrase_env: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RucioCommand {
    /// Print the account the session logs in as (`rucio whoami`).
    Whoami {
        /// Print the account as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the server's version (`rucio ping`); needs no login.
    Ping {
        /// Print `{"version": ...}`.
        #[arg(long)]
        json: bool,
    },
    /// Print a valid X-Rucio-Auth-Token on stdout and nothing else (logging in or refreshing
    /// first if needed), for curl and scripts.
    Token {
        /// Print the token with its expiry, account, VO and auth type as JSON.
        #[arg(long)]
        json: bool,

        /// The token must stay valid at least this long; a shorter-lived one is renewed.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        min_valid: u64,
    },
    /// Make an HTTP request to the Rucio server with the session (X-Rucio-Auth-Token,
    /// X-Rucio-VO, X-Rucio-Account), like curl; the path is relative to the Rucio host.
    Request {
        /// HTTP method (GET if omitted; POST when --data is given).
        #[arg(value_name = "METHOD_OR_PATH")]
        method_or_path: String,

        /// The path, when a method comes first.
        #[arg(value_name = "PATH")]
        path: Option<String>,

        /// Request body: a string, or @FILE to read it from a file (@- for stdin).
        #[arg(long, short = 'd', value_name = "DATA")]
        data: Option<String>,

        /// Extra header, `Name: value` (repeatable).
        #[arg(long = "header", value_name = "HEADER")]
        headers: Vec<String>,

        /// Print the response status and headers on stderr.
        #[arg(long, short = 'I')]
        include: bool,
    },
}

/// The cached path of `sciauth rucio token`, before any async runtime exists: the
/// configuration and one cache file, and the token printed, or `None` when a login, a
/// refresh or a check with the server is needed (or an error must be reported by the full
/// path). No thread, no socket, no key or password file.
pub(crate) fn answer_now(context: &Context, args: &RucioArgs) -> Option<CliResult> {
    let RucioCommand::Token { json, min_valid } = &args.command else {
        return None;
    };
    let (name, builder) = builder(context, &args.options).ok()?;
    let (token, expires_at) = builder
        .cached_token(Duration::from_secs(*min_valid))
        .ok()??;
    Some(print_token(&token, expires_at, *json, name.as_deref()))
}

pub(crate) async fn run(context: &Context, args: RucioArgs) -> CliResult {
    let (name, builder) = builder(context, &args.options)?;
    let client = builder.build()?;
    match args.command {
        RucioCommand::Whoami { json } => whoami(&client, json).await,
        RucioCommand::Ping { json } => {
            let version = client.ping().await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "version": printable(&version, 100) })
                );
            } else {
                println!("{}", printable(&version, 100));
            }
            Ok(())
        }
        RucioCommand::Token { json, min_valid } => {
            let min_valid = Duration::from_secs(min_valid);
            let mut token = client.token().await?;
            let mut info = client.info();
            if let Some(at) = info.expires_at
                && at.duration_since(SystemTime::now()).unwrap_or_default() < min_valid
            {
                // Forget the one that is too short-lived, once: the next is a fresh login.
                client.session().forget().ok();
                token = client.token().await?;
                info = client.info();
                if let Some(left) = info
                    .expires_at
                    .and_then(|at| at.duration_since(SystemTime::now()).ok())
                    && left < min_valid
                {
                    eprintln!(
                        "sciauth: warning: the Rucio server's tokens live {}, less than \
                         --min-valid {}",
                        duration(left),
                        duration(min_valid)
                    );
                }
            }
            print_token(&token, info.expires_at, json, name.as_deref())
        }
        RucioCommand::Request {
            method_or_path,
            path,
            data,
            headers,
            include,
        } => request(&client, method_or_path, path, data, headers, include).await,
    }
}

/// `rucio whoami`: one `key: value` per line (server words escaped), or the JSON.
async fn whoami(client: &RucioClient, json: bool) -> CliResult {
    let me = client.whoami().await?;
    let mut fields = vec![
        ("account".to_owned(), me.account.clone()),
        (
            "account_type".to_owned(),
            me.account_type.clone().unwrap_or_default(),
        ),
        ("status".to_owned(), me.status.clone().unwrap_or_default()),
        ("email".to_owned(), me.email.clone().unwrap_or_default()),
    ];
    for (key, value) in &me.extra {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        fields.push((key.clone(), text));
    }
    if json {
        let object: serde_json::Map<String, serde_json::Value> = fields
            .into_iter()
            .map(|(k, v)| {
                (
                    printable(&k, 100),
                    serde_json::Value::String(printable(&v, 1000)),
                )
            })
            .collect();
        println!("{}", serde_json::Value::Object(object));
        return Ok(());
    }
    let width = fields
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0)
        .min(40);
    let mut out = String::new();
    for (key, value) in fields {
        let key = printable(&key, 100);
        out.push_str(&format!("{key:<width$}: {}\n", printable(&value, 1000)));
    }
    print!("{out}");
    Ok(())
}

/// The token alone on stdout, or with what is known about it as JSON.
fn print_token(
    token: &SecretString,
    expires_at: Option<SystemTime>,
    json: bool,
    profile: Option<&str>,
) -> CliResult {
    if json {
        let now = SystemTime::now();
        let value = serde_json::json!({
            "token": token.expose_secret(),
            "header": "X-Rucio-Auth-Token",
            "expires_at": expires_at.map(unix),
            "expires_in": expires_at.map(|at| at.duration_since(now).map_or(0, |d| d.as_secs())),
            "profile": profile,
        });
        println!("{value}");
    } else {
        println!("{}", token.expose_secret());
    }
    Ok(())
}

/// `sciauth rucio request [METHOD] PATH`.
// tidy: long, one command from its options to its output, read top to bottom
async fn request(
    client: &RucioClient,
    method_or_path: String,
    path: Option<String>,
    data: Option<String>,
    headers: Vec<String>,
    include: bool,
) -> CliResult {
    let (method, path) = match path {
        Some(path) => {
            let method = Method::from_bytes(method_or_path.to_ascii_uppercase().as_bytes())
                .map_err(|_| {
                    Failure::config(format!(
                        "{:?} is not an HTTP method",
                        printable(&method_or_path, 40)
                    ))
                })?;
            (method, path)
        }
        None if data.is_some() => (Method::POST, method_or_path),
        None => (Method::GET, method_or_path),
    };
    let path = path.trim_start_matches('/').to_owned();
    let mut request = client.request(method, &path);
    for header in &headers {
        let Some((name, value)) = header.split_once(':') else {
            return Err(Failure::config(format!(
                "header {:?} is not `Name: value`",
                printable(header, 100)
            )));
        };
        request = request.header(name.trim(), value.trim());
    }
    if let Some(data) = &data {
        request = request.body(read_data(data)?);
    }
    let response = request.send().await?;
    if include {
        eprintln!("HTTP {}", response.status());
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            eprintln!("{name}: {}", printable(&value, 8 * 1024));
        }
    }
    let mut stdout = std::io::stdout().lock();
    // On a terminal the server's words are escaped; into a pipe the body goes as it came.
    let written = if std::io::stdout().is_terminal() {
        let text = String::from_utf8_lossy(response.bytes());
        writeln!(stdout, "{}", printable(&text, usize::MAX))
    } else {
        stdout.write_all(response.bytes())
    };
    written
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(Exit::Failure, format!("cannot write the response: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let exception = response
        .headers()
        .get("ExceptionClass")
        .map(|v| {
            format!(
                " ({})",
                printable(&String::from_utf8_lossy(v.as_bytes()), 100)
            )
        })
        .unwrap_or_default();
    let exit = if matches!(status.as_u16(), 401 | 403) {
        Exit::Refused
    } else {
        Exit::Failure
    };
    Err(Failure::new(
        exit,
        format!(
            "Rucio answered HTTP {status}{exception} to {}",
            printable(path.split(['?', '#']).next().unwrap_or_default(), 200),
        ),
    ))
}

/// `@FILE` reads a file, `@-` standard input, anything else is the body itself.
fn read_data(data: &str) -> CliResult<Vec<u8>> {
    match data.strip_prefix('@') {
        Some("-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| Failure::config(format!("cannot read the body from stdin: {e}")))?;
            Ok(body)
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| Failure::config(format!("cannot read the body from {path}: {e}"))),
        None => Ok(data.as_bytes().to_vec()),
    }
}

/// The rucio profile that applies, if any: the one `--profile` names (which must be a rucio
/// profile), else the file's default (or only) profile if it is a rucio profile.
fn chosen_profile(context: &Context) -> CliResult<Option<(&Config, &str, &RucioProfile)>> {
    let Some(config) = context.config_file() else {
        if let Some(name) = context.profile_named() {
            return Err(Failure::config(format!(
                "--profile {} names a profile, but there is no configuration file; `sciauth \
                 rucio` needs none (rucio.cfg is enough): drop --profile",
                printable(name, 100)
            )));
        }
        return Ok(None);
    };
    let explicit = context.profile_named();
    if explicit.is_none() && !config.has_default() {
        return Ok(None);
    }
    let (name, profile) = config.select(explicit)?;
    match profile {
        Profile::Rucio(profile) => Ok(Some((config, name, profile))),
        Profile::Oidc(_) if explicit.is_some() => Err(Failure::config(format!(
            "profile {name} is an oidc profile; `sciauth rucio` takes a rucio profile (kind = \
             \"rucio\"), or none: rucio.cfg is enough"
        ))),
        Profile::Oidc(_) => Ok(None),
    }
}

/// The client builder for `sciauth rucio`: rucio.cfg and the environment, the chosen rucio
/// profile over them, the command line over that.
fn builder(
    context: &Context,
    options: &RucioOptions,
) -> CliResult<(Option<String>, RucioClientBuilder)> {
    let env = Environment::from_process();
    let (name, mut config, mut builder) = match chosen_profile(context)? {
        Some((config, name, profile)) => {
            // A strategy named on the command line replaces the profile's way in.
            let strategy_given = options.auth_strategy.is_some();
            let (rucio, builder) = profile_builder(config, name, profile, &env, strategy_given)?;
            (Some(name.to_owned()), rucio, builder)
        }
        None => (None, RucioConfig::load(&env)?, RucioClient::builder()),
    };
    let hosts = |text: &str| {
        text.split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>()
    };
    if let Some(host) = &options.host {
        config.rucio_hosts = hosts(host);
    }
    if let Some(host) = &options.auth_host {
        config.auth_hosts = hosts(host);
    }
    for (value, slot) in [
        (&options.account, &mut config.account),
        (&options.vo, &mut config.vo),
        (&options.auth_strategy, &mut config.auth_type),
        (&options.user, &mut config.username),
        (&options.oidc_scope, &mut config.oidc_scope),
        (&options.oidc_audience, &mut config.oidc_audience),
        (&options.oidc_issuer, &mut config.oidc_issuer),
    ] {
        if value.is_some() {
            slot.clone_from(value);
        }
    }
    if options.oidc_polling {
        config.oidc_polling = Some(true);
    }
    if let Some(hours) = options.oidc_refresh_lifetime {
        config.oidc_refresh_lifetime = Some(hours);
    }
    for (value, slot) in [
        (&options.certificate, &mut config.client_cert),
        (&options.client_key, &mut config.client_key),
        (&options.ca_certificate, &mut config.ca_cert),
    ] {
        if value.is_some() {
            slot.clone_from(value);
        }
    }
    if let Some(seconds) = options.timeout {
        let timeout = sciauth::credentials::time::seconds_f64(seconds, Duration::from_secs(86_400))
            .filter(|t| !t.is_zero())
            .ok_or_else(|| Failure::config("--timeout must be a positive number of seconds"))?;
        builder = builder.timeout(timeout);
    }
    if let Some(var) = &options.passphrase_env {
        let passphrase = passphrase_from(var)?;
        builder = builder
            .ssh_passphrase(passphrase.clone())
            .client_key_passphrase(passphrase);
    }
    builder = builder
        .environment(env)
        .config(config)
        .passphrase_prompt(terminal_prompt());
    Ok((name, builder))
}

/// The passphrase in the variable `var`.
fn passphrase_from(var: &str) -> CliResult<SecretString> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Ok(SecretString::from(value)),
        _ => Err(Failure::config(format!(
            "the passphrase variable {} is not set",
            printable(var, 100)
        ))),
    }
}

/// Asks for a key's passphrase on the terminal, when there is one.
fn terminal_prompt() -> PassphrasePrompt {
    PassphrasePrompt::new(|path: &Path| {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
            .ok()
            .map(SecretString::from)
    })
}

/// The client of a rucio profile (for `sciauth token`, `list`, `logout`, `request`).
pub(crate) fn profile_client(
    config: &Config,
    name: &str,
    profile: &RucioProfile,
) -> CliResult<RucioClient> {
    let env = Environment::from_process();
    let (rucio, builder) = profile_builder(config, name, profile, &env, false)?;
    Ok(builder
        .environment(env)
        .config(rucio)
        .passphrase_prompt(terminal_prompt())
        .build()?)
}

/// A rucio profile's configuration (its rucio.cfg, else the one the Rucio client finds, with
/// the profile's keys over it) and the builder settings it implies.
// tidy: long, every key of a rucio profile laid over rucio.cfg, one after another
fn profile_builder(
    config: &Config,
    name: &str,
    profile: &RucioProfile,
    env: &Environment,
    strategy_given: bool,
) -> CliResult<(RucioConfig, RucioClientBuilder)> {
    let mut rucio = match profile.rucio_cfg(config) {
        Some(path) => RucioConfig::from_file(&path, env)?,
        None => RucioConfig::load(env)?,
    };
    let hosts = |text: &str| {
        text.split(',')
            .map(|h| h.trim().to_owned())
            .collect::<Vec<_>>()
    };
    if let Some(host) = &profile.rucio_host {
        rucio.rucio_hosts = hosts(host);
    }
    if let Some(host) = &profile.auth_host {
        rucio.auth_hosts = hosts(host);
    }
    for (value, slot) in [
        (&profile.account, &mut rucio.account),
        (&profile.vo, &mut rucio.vo),
        (&profile.auth_type, &mut rucio.auth_type),
        (&profile.username, &mut rucio.username),
        (&profile.oidc_scope, &mut rucio.oidc_scope),
        (&profile.oidc_audience, &mut rucio.oidc_audience),
        (&profile.oidc_issuer, &mut rucio.oidc_issuer),
    ] {
        if value.is_some() {
            slot.clone_from(value);
        }
    }
    if profile.oidc_polling.is_some() {
        rucio.oidc_polling = profile.oidc_polling;
    }
    if let Some(password) = profile.password(config, name)? {
        rucio.password = Some(password);
    }
    for (which, slot) in [
        (RucioPath::SshPrivateKey, &mut rucio.ssh_private_key),
        (RucioPath::ClientCert, &mut rucio.client_cert),
        (RucioPath::ClientKey, &mut rucio.client_key),
        (RucioPath::ClientProxy, &mut rucio.client_x509_proxy),
        (RucioPath::CaCert, &mut rucio.ca_cert),
    ] {
        if let Some(path) = profile.path(config, which) {
            *slot = Some(path);
        }
    }
    let mut builder = RucioClient::builder();
    if let Some(dir) = profile.path(config, RucioPath::CacheDir) {
        builder = builder.cache_dir(dir);
    }
    if let Some(var) = &profile.passphrase_env {
        let passphrase = passphrase_from(var)?;
        builder = builder
            .ssh_passphrase(passphrase.clone())
            .client_key_passphrase(passphrase);
    }
    let source = match profile.oidc_token_source.as_deref() {
        None if profile.oidc_profile.is_some() => "profile",
        None => "default",
        Some(source) => source,
    };
    match source {
        _ if strategy_given && source == "profile" => {}
        "default" => {}
        "rucio" => builder = builder.oidc_token_source(OidcTokenSource::Rucio),
        "discovery" => builder = builder.oidc_token_source(OidcTokenSource::Discovery),
        "profile" => {
            let Some(oidc) = &profile.oidc_profile else {
                return Err(Failure::config(format!(
                    "profile {name}: oidc_token_source = \"profile\" needs oidc_profile, the \
                     sciauth profile whose token logs in"
                )));
            };
            // Rucio's oidc login with the token another profile keeps fresh.
            let Profile::Oidc(source) = config.select(Some(oidc))?.1 else {
                return Err(Failure::config(format!(
                    "profile {name}: oidc_profile {oidc:?} is not an oidc profile"
                )));
            };
            let native = native_client(config, oidc, source)?;
            let request = token_request(&native, source, &[], None, DEFAULT_MIN_VALID);
            let credential = native.manager().credential(request);
            builder = builder.auth(AuthMethod::oidc_credential(Arc::new(credential)));
        }
        other => {
            return Err(Failure::config(format!(
                "profile {name}: oidc_token_source must be \"rucio\", \"profile\" or \
                 \"discovery\", not {:?}",
                printable(other, 40)
            )));
        }
    }
    Ok((rucio, builder))
}
