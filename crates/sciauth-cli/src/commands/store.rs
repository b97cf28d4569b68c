//! `sciauth lock` (the kernel keyring forgets the unlocked store keys) and `sciauth store
//! encrypt|decrypt` (the profile's token store converted in place, file by file, each under
//! its lock and atomically).

use std::path::PathBuf;

use sciauth::tokens::{FileStore, StoreKey};

use crate::cli::StoreCommand;
use crate::config::Profile;
use crate::context::Context;
use crate::failure::{CliResult, Failure};

/// Forgets the cached key of every encrypted store the configuration names.
pub(crate) fn lock(context: &Context) -> CliResult {
    let config = context.config()?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for profile in config.profiles().values() {
        if let Profile::Oidc(profile) = profile
            && profile.encrypted
        {
            let dir = profile.store_dir_or_default(config)?;
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    if dirs.is_empty() {
        eprintln!("No profile has an encrypted token store (encrypted = true): nothing to lock.");
    }
    for dir in dirs {
        let was_unlocked = StoreKey::forget(&dir)?;
        let state = if was_unlocked {
            "locked"
        } else {
            "already locked"
        };
        eprintln!("Token store {}: {state}.", dir.display());
    }
    Ok(())
}

/// Encrypts or decrypts the chosen profile's store.
pub(crate) fn run(context: &Context, command: StoreCommand) -> CliResult {
    let config = context.config()?;
    let (name, profile) = context.selected()?;
    let Profile::Oidc(profile) = profile else {
        return Err(Failure::config(format!(
            "profile {name} is a Rucio profile: it has no token store to convert"
        )));
    };
    let dir = profile.store_dir_or_default(config)?;
    match command {
        StoreCommand::Encrypt => {
            let key = crate::unlock::store_key(&dir, profile)?;
            let sealed = FileStore::open_encrypted(&dir, key)?.encrypt_files()?;
            eprintln!("Encrypted {sealed} token file(s) in {}.", dir.display());
            if !profile.encrypted {
                eprintln!("Now set `encrypted = true` in profile {name}.");
            }
        }
        StoreCommand::Decrypt => {
            if !StoreKey::exists(&dir) {
                eprintln!(
                    "The token store {} is not encrypted: nothing to do.",
                    dir.display()
                );
                return Ok(());
            }
            let key = crate::unlock::store_key(&dir, profile)?;
            let plain = FileStore::open_encrypted(&dir, key)?.decrypt_files()?;
            StoreKey::forget(&dir)?;
            eprintln!("Decrypted {plain} token file(s) in {}.", dir.display());
            if profile.encrypted {
                eprintln!("Now remove `encrypted = true` from profile {name}.");
            }
        }
    }
    Ok(())
}
