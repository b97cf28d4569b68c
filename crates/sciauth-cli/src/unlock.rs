//! The key of an encrypted token store (a profile with `encrypted = true`): from the kernel
//! keyring when this session unlocked the store within `key_cache_minutes`, so that a
//! cached `sciauth token` does not pay argon2; else derived from the passphrase in
//! `SCIAUTH_STORE_PASSPHRASE_FILE`, in the profile's `passphrase_env`, or typed at a
//! prompt, and kept in the keyring again. The first unlock of a store without a key file
//! creates one. Each store is unlocked at most once per process, whatever the outcome.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use sciauth::credentials::fs::{MAX_SECRET_FILE, read_limited_text};
use sciauth::credentials::secrecy::SecretString;
use sciauth::tokens::{DEFAULT_KEY_CACHE_TIMEOUT, FileStore, KeyParams, StoreKey};

use crate::config::{Config, OidcProfile};
use crate::failure::{CliResult, Exit, Failure};

/// The variable naming a file that holds the passphrase of encrypted token stores.
pub(crate) const PASSPHRASE_FILE_VAR: &str = "SCIAUTH_STORE_PASSPHRASE_FILE";

/// What this process found for each store it unlocked: the key, or the failure (exit code
/// and message), so that the cached path and the full path ask once.
type Unlocked = Vec<(PathBuf, Result<StoreKey, (Exit, String)>)>;
static UNLOCKED: Mutex<Unlocked> = Mutex::new(Vec::new());

/// The profile's token store: encrypted (unlocked) when it says `encrypted = true`; `None`
/// for a plain store in the default place (the client's default).
pub(crate) fn open_store(config: &Config, profile: &OidcProfile) -> CliResult<Option<FileStore>> {
    if !profile.encrypted {
        return Ok(profile.store_dir(config).map(FileStore::open).transpose()?);
    }
    let dir = profile.store_dir_or_default(config)?;
    let key = store_key(&dir, profile)?;
    Ok(Some(FileStore::open_encrypted(dir, key)?))
}

/// The key of the store in `dir`, unlocked once per process.
pub(crate) fn store_key(dir: &Path, profile: &OidcProfile) -> CliResult<StoreKey> {
    let mut unlocked = UNLOCKED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, found)) = unlocked.iter().find(|(d, _)| d == dir) {
        return found
            .clone()
            .map_err(|(exit, message)| Failure::new(exit, message));
    }
    let found = unlock(dir, profile);
    unlocked.push((
        dir.to_owned(),
        match &found {
            Ok(key) => Ok(key.clone()),
            Err(failure) => Err((failure.exit, failure.message.clone())),
        },
    ));
    found
}

fn unlock(dir: &Path, profile: &OidcProfile) -> CliResult<StoreKey> {
    if let Some(key) = StoreKey::from_keyring(dir) {
        if key.check(dir).is_ok() {
            return Ok(key);
        }
        // The store's key was made again since: ask.
        let _ = StoreKey::forget(dir);
    }
    let passphrase = passphrase(dir, profile)?;
    let key = if StoreKey::exists(dir) {
        StoreKey::unlock(dir, &passphrase)?
    } else {
        StoreKey::create(dir, &passphrase, KeyParams::default())?
    };
    let timeout = profile
        .key_cache_minutes
        .map_or(DEFAULT_KEY_CACHE_TIMEOUT, |minutes| {
            Duration::from_secs(minutes.saturating_mul(60))
        });
    if !timeout.is_zero()
        && let Err(e) = key.remember(dir, timeout)
    {
        eprintln!(
            "sciauth: warning: the unlocked token store key cannot be kept in the kernel \
             keyring ({e}); every command will ask for the passphrase"
        );
    }
    Ok(key)
}

/// The passphrase: from the file `SCIAUTH_STORE_PASSPHRASE_FILE` names, the profile's
/// `passphrase_env`, or a prompt on the terminal.
fn passphrase(dir: &Path, profile: &OidcProfile) -> CliResult<SecretString> {
    if let Some(path) = std::env::var_os(PASSPHRASE_FILE_VAR) {
        let path = PathBuf::from(path);
        let text = read_limited_text(&path, MAX_SECRET_FILE).map_err(|e| {
            Failure::config(format!(
                "{PASSPHRASE_FILE_VAR}: cannot read {}: {e}",
                path.display()
            ))
        })?;
        let line = text.strip_suffix('\n').unwrap_or(&text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        return Ok(SecretString::from(line));
    }
    // An unset (or empty) variable gives nothing: a prompt, if there is a terminal.
    if let Some(value) = profile
        .passphrase_env
        .as_ref()
        .and_then(|var| std::env::var(var).ok())
        .filter(|value| !value.is_empty())
    {
        return Ok(SecretString::from(value));
    }
    if std::io::stdin().is_terminal() {
        let typed = rpassword::prompt_password(format!(
            "Passphrase of the token store {}: ",
            dir.display()
        ))
        .map_err(|e| Failure::config(format!("cannot read the passphrase: {e}")))?;
        return Ok(SecretString::from(typed));
    }
    Err(Failure::config(format!(
        "the token store {} is encrypted and locked, and there is no terminal to ask for its \
         passphrase",
        dir.display()
    ))
    .hint(format!(
        "run a command in a terminal to unlock it for {} minutes, or give the passphrase in a \
         file named by {PASSPHRASE_FILE_VAR} or a variable named by the profile's \
         passphrase_env",
        DEFAULT_KEY_CACHE_TIMEOUT.as_secs() / 60
    )))
}
