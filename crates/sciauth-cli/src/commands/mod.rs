//! One module per subcommand, plus what several of them share.

pub(crate) mod check;
pub(crate) mod exchange;
pub(crate) mod inspect;
pub(crate) mod jwt;
pub(crate) mod list;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod request;
pub(crate) mod rucio;
pub(crate) mod serve;
pub(crate) mod service_token;
pub(crate) mod store;
pub(crate) mod token;
pub(crate) mod watch;

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sciauth::credentials::secrecy::SecretString;
use sciauth::credentials::{
    ErrorKind, KeySelector, PrivateKey, SshAgent, SshAgentJwt, SshKeyJwt, resolve_identity,
};

use crate::cli::SshKeyArgs;
use crate::failure::{CliResult, Failure};

/// The largest token read from stdin or the command line (as
/// `IssuerBuilder::max_token_size`).
pub(crate) const MAX_TOKEN: usize = 64 * 1024;

/// A token from stdin (`inspect -`, `exchange --subject-token -`): trimmed, a leading
/// `Bearer ` (a pasted `Authorization` value) dropped, at most [`MAX_TOKEN`] bytes.
pub(crate) fn read_token_from_stdin() -> CliResult<SecretString> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_TOKEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::config(format!("cannot read the token from stdin: {e}")))?;
    if bytes.len() > MAX_TOKEN {
        return Err(Failure::config(format!(
            "the token on stdin is longer than {} KiB; no token is",
            MAX_TOKEN / 1024
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::config("the token on stdin is not text (UTF-8)"))?;
    let text = text.trim();
    let text = match text.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => text,
    };
    if text.is_empty() {
        return Err(Failure::config("no token on stdin"));
    }
    Ok(SecretString::from(text.to_owned()))
}

/// An SSH-key JWT from a key file or from ssh-agent.
pub(crate) enum SshJwt {
    Key(SshKeyJwt),
    Agent(SshAgentJwt),
}

impl SshJwt {
    pub(crate) async fn token(&self) -> CliResult<SecretString> {
        Ok(match self {
            Self::Key(jwt) => jwt.token().await?,
            Self::Agent(jwt) => jwt.token().await?,
        })
    }

    pub(crate) fn into_credential(self) -> Box<dyn sciauth::Credential> {
        match self {
            Self::Key(jwt) => Box::new(jwt),
            Self::Agent(jwt) => Box::new(jwt),
        }
    }
}

/// The key file as given if it exists, else resolved as pyunicore does (`~/...`, or a bare
/// name under `~/.uftp/`).
fn identity_path(given: &Path) -> PathBuf {
    if given.exists() {
        given.to_owned()
    } else {
        resolve_identity(given)
    }
}

/// Builds the JWT credential that `--identity/--user/--agent` describe, or `None` when no
/// identity was given.
pub(crate) async fn ssh_jwt(args: &SshKeyArgs, lifetime: Duration) -> CliResult<Option<SshJwt>> {
    let Some(user) = &args.user else {
        if args.identity.is_some() || args.agent {
            return Err(Failure::config(
                "an SSH-key JWT needs the username: add --user NAME",
            ));
        }
        return Ok(None);
    };
    if args.agent {
        let selector = match &args.identity {
            None => KeySelector::First,
            Some(given) => {
                let path = identity_path(given);
                let public = if path.extension().is_some_and(|e| e == "pub") {
                    path
                } else {
                    let mut name = path.into_os_string();
                    name.push(".pub");
                    PathBuf::from(name)
                };
                KeySelector::public_key_file(&public)?
            }
        };
        let key = SshAgent::from_env()?.find(&selector).await?;
        return Ok(Some(SshJwt::Agent(
            SshAgentJwt::new(user, key).lifetime(lifetime),
        )));
    }
    let Some(given) = &args.identity else {
        return Err(Failure::config(
            "an SSH-key JWT needs --identity KEY (or --agent)",
        ));
    };
    let path = identity_path(given);
    let passphrase = match &args.passphrase_env {
        Some(var) => Some(SecretString::from(std::env::var(var).map_err(|_| {
            Failure::config(format!("the passphrase variable {var} is not set"))
        })?)),
        None => None,
    };
    let key = match PrivateKey::from_file(&path, passphrase.as_ref()) {
        Err(e) if e.kind() == ErrorKind::PassphraseRequired && std::io::stdin().is_terminal() => {
            let prompt = format!("Passphrase for {}: ", path.display());
            let typed = rpassword::prompt_password(prompt)
                .map_err(|e| Failure::config(format!("cannot read the passphrase: {e}")))?;
            PrivateKey::from_file(&path, Some(&SecretString::from(typed)))?
        }
        other => other?,
    };
    Ok(Some(SshJwt::Key(
        SshKeyJwt::new(user, key).lifetime(lifetime),
    )))
}
