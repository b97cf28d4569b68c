//! [`FileStore`]: one private JSON file per account, shared safely by processes.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, StoreErrorKind};
use crate::store::encryption::{self, Opened, StoreKey};
use crate::store::{
    GrantKey, LockedGrant, StoredGrant, TokenStore, check_locked_key, distinct_keys,
};
use sciauth_credentials::fs::{FileLock, check_private_file, ensure_private_dir, write_atomic};

const FORMAT_VERSION: u32 = 1;

/// The default token store: one human-readable JSON file per account (profile) in a private
/// directory, by default `$XDG_DATA_HOME/sciauth/tokens` (`~/.local/share/sciauth/tokens`).
///
/// - The directory is 0700 and the files 0600 from their creation. A file or directory that
///   others can read is repaired, with a warning (tracing), as ssh would refuse it.
/// - Every write replaces the whole file atomically (temporary file, fsync, rename, fsync of
///   the directory): a reader, or a process killed mid-write, sees the old file or the new
///   one, never a mix.
/// - Read-modify-write runs under a lock file next to the data (`<account>.lock`,
///   `std::fs::File::lock`), so processes never lose each other's updates.
/// - A file that cannot be read back (not JSON, cut short, a newer format) is an error that
///   names it, and is never overwritten.
///
/// File `alice.json`:
///
/// ```json
/// {
///   "version": 1,
///   "grants": [ { "version": 1, "issuer": "...", "client_id": "...", "account": "alice", ... } ]
/// }
/// ```
///
/// Each grant has the shape of [`StoredGrant`]. An account name becomes the file name as is
/// when it is made of letters, digits and `._-@+` (not starting with `.`); other bytes are
/// written `%XX`.
///
/// # Encrypted
///
/// [`open_encrypted`](Self::open_encrypted) seals every account file with AES-256-GCM under
/// a [`StoreKey`] (argon2id from a passphrase, see its key file `store.key`), with a fresh
/// random nonce per write and the file's name as associated data, so that a file copied over
/// another account's does not open. The file is then
/// `{"version": 1, "sealed": "AES-256-GCM", "nonce": "...", "data": "..."}`; its name (the
/// account) and times on disk stay visible. All the guarantees above hold as they are.
/// A plain file in an encrypted store, or the reverse, is
/// [`StoreErrorKind::EncryptionMismatch`]; a sealed file that does not open is
/// [`StoreErrorKind::Tampered`], and is never overwritten.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
    key: Option<Arc<StoreKey>>,
}

#[derive(Serialize, Deserialize)]
struct AccountFile {
    version: u32,
    grants: Vec<StoredGrant>,
}

impl FileStore {
    /// A store in `dir`, which is created (0700) if missing and made private if others can
    /// read it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        ensure_private_dir(&dir).map_err(|e| io_error(&dir, "cannot create", e))?;
        Ok(Self { dir, key: None })
    }

    /// An encrypted store in `dir` whose key is `key` (from [`StoreKey::unlock`],
    /// [`StoreKey::create`] or [`StoreKey::from_keyring`]); a key that is not the one of
    /// `dir`'s key file is [`StoreErrorKind::WrongPassphrase`].
    pub fn open_encrypted(dir: impl Into<PathBuf>, key: StoreKey) -> Result<Self> {
        let dir = dir.into();
        ensure_private_dir(&dir).map_err(|e| io_error(&dir, "cannot create", e))?;
        key.check(&dir)?;
        Ok(Self {
            dir,
            key: Some(Arc::new(key)),
        })
    }

    /// Whether this store seals its files.
    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// Seals every plain account file of this encrypted store in place (`sciauth store
    /// encrypt`), each under its account's lock and atomically: a reader sees the plain file
    /// or the sealed one. Files already sealed with this key are left as they are, so a
    /// second run, or one after an interrupted run, completes the work. Returns how many
    /// files were sealed. Blocking: it reads and writes files on the calling thread.
    pub fn encrypt_files(&self) -> Result<usize> {
        self.convert_files(Direction::Seal)
    }

    /// Opens every sealed account file of this encrypted store and writes it plain (`sciauth
    /// store decrypt`), the same way as [`encrypt_files`](Self::encrypt_files); when every
    /// file is plain, removes the key file. Afterwards, open the store with
    /// [`open`](Self::open). Returns how many files were written plain.
    pub fn decrypt_files(&self) -> Result<usize> {
        let converted = self.convert_files(Direction::Open)?;
        let key_file = self.dir.join(encryption::KEY_FILE);
        match std::fs::remove_file(&key_file) {
            Ok(()) => Ok(converted),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(converted),
            Err(e) => Err(io_error(&key_file, "cannot delete", e)),
        }
    }

    fn convert_files(&self, direction: Direction) -> Result<usize> {
        let Some(key) = self.key.as_deref() else {
            return Err(Error::invalid_input(
                "only an encrypted store (FileStore::open_encrypted) can convert its files",
            ));
        };
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, "cannot list", e))?;
        let mut converted = 0;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, "cannot list", e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(stem) = name
                .strip_suffix(".json")
                .filter(|_| !name.starts_with('.'))
            else {
                continue;
            };
            let lock_path = self.dir.join(format!("{stem}.lock"));
            let _lock = FileLock::acquire(&lock_path)
                .map_err(|e| io_error(&lock_path, "cannot lock", e))?;
            if convert_file(&entry.path(), key, direction)? {
                converted += 1;
            }
        }
        Ok(converted)
    }

    /// A store in [`default_dir`](Self::default_dir).
    pub fn open_default() -> Result<Self> {
        let dir = Self::default_dir().ok_or_else(|| {
            Error::store(
                StoreErrorKind::Io,
                "cannot find a place for the token store: neither XDG_DATA_HOME nor HOME is \
                 set; give the store a directory",
            )
        })?;
        Self::open(dir)
    }

    /// `$XDG_DATA_HOME/sciauth/tokens`, or `$HOME/.local/share/sciauth/tokens` when
    /// `XDG_DATA_HOME` is unset or not absolute (as the XDG Base Directory spec says).
    pub fn default_dir() -> Option<PathBuf> {
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .filter(|home| home.is_absolute())
                    .map(|home| home.join(".local/share"))
            })?;
        Some(data_home.join("sciauth/tokens"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `account`'s grants.
    pub fn path_for(&self, account: &str) -> PathBuf {
        self.dir.join(format!("{}.json", file_stem(account)))
    }

    fn lock_path_for(&self, account: &str) -> PathBuf {
        self.dir.join(format!("{}.lock", file_stem(account)))
    }
}

/// `account` as a file name: safe bytes as they are, others as `%XX` (so that distinct
/// accounts get distinct names).
fn file_stem(account: &str) -> String {
    let mut stem = String::with_capacity(account.len());
    for (i, byte) in account.bytes().enumerate() {
        let safe = byte.is_ascii_alphanumeric()
            || matches!(byte, b'_' | b'-' | b'@' | b'+')
            || (byte == b'.' && i > 0);
        if safe {
            stem.push(char::from(byte));
        } else {
            let _ = write!(stem, "%{byte:02X}");
        }
    }
    if stem.is_empty() {
        stem.push('%');
    }
    stem
}

fn io_error(path: &Path, what: &str, error: io::Error) -> Error {
    Error::store(
        StoreErrorKind::Io,
        format!("{what} the token store file: {error}"),
    )
    .with_path(path)
    .with_source(error)
}

fn corrupt(path: &Path, what: String) -> Error {
    Error::store(
        StoreErrorKind::Corrupt,
        format!(
            "the token store file cannot be read ({what}); it was left as it is: move it away \
             (or fix it) and log in again"
        ),
    )
    .with_path(path)
}

/// The key a store's files are sealed with, if they are.
type Key = Option<Arc<StoreKey>>;

/// Reads the grants in `path` (opening it with `key` when the store is encrypted); `None` if
/// the file does not exist.
fn read(path: &Path, key: Option<&StoreKey>) -> Result<Option<Vec<StoredGrant>>> {
    check_private_file(path).map_err(|e| io_error(path, "cannot check the permissions of", e))?;
    let bytes = match std::fs::read(path) {
        Ok(bytes) => zeroize::Zeroizing::new(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, "cannot read", e)),
    };
    let Some(key) = key else {
        return match parse(path, &bytes) {
            Err(e) if encryption::is_sealed(&bytes) => Err(mismatch(
                path,
                "the token store file is encrypted, and the store was opened without its key: \
                 set `encrypted = true` for the store (or run `sciauth store decrypt`)",
            )
            .with_source(e)),
            parsed => parsed.map(Some),
        };
    };
    match encryption::open(key, &file_name(path), &bytes)? {
        Opened::Plain(plain) => parse(path, &plain).map(Some),
        Opened::NotSealed if parse(path, &bytes).is_ok() => Err(mismatch(
            path,
            "the token store file is not encrypted, and the store is: encrypt the store's \
             files with `sciauth store encrypt`",
        )),
        Opened::NotSealed => Err(corrupt(
            path,
            "it is not an encrypted store file".to_owned(),
        )),
        Opened::Tampered => Err(Error::store(
            StoreErrorKind::Tampered,
            "the encrypted token store file does not open with the store's key: it was \
             changed, copied from another account's file, or sealed with another key; it was \
             left as it is: move it away and log in again",
        )
        .with_path(path)),
    }
}

/// Which way [`FileStore::convert_files`] goes.
#[derive(Clone, Copy)]
enum Direction {
    Seal,
    Open,
}

/// Rewrites the account file `path` sealed or plain; `false` if it already was. The caller
/// holds its lock.
fn convert_file(path: &Path, key: &StoreKey, direction: Direction) -> Result<bool> {
    let is_plain = match read(path, Some(key)) {
        Ok(_) => false,
        Err(e) if e.kind() == &crate::ErrorKind::Store(StoreErrorKind::EncryptionMismatch) => true,
        Err(e) => return Err(e),
    };
    let (grants, target) = match (direction, is_plain) {
        (Direction::Seal, false) | (Direction::Open, true) => return Ok(false),
        (Direction::Seal, true) => (read(path, None)?, Some(key)),
        (Direction::Open, false) => (read(path, Some(key))?, None),
    };
    write(path, target, grants.unwrap_or_default())?;
    Ok(true)
}

/// The name of `path`'s file, which sealing binds the contents to.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn mismatch(path: &Path, message: &str) -> Error {
    Error::store(StoreErrorKind::EncryptionMismatch, message).with_path(path)
}

pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<StoredGrant>> {
    match serde_json::from_slice::<AccountFile>(bytes) {
        Ok(file) if file.version != FORMAT_VERSION => Err(unsupported(path, file.version)),
        Ok(file) if !distinct_keys(&file.grants) => {
            Err(corrupt(path, "it holds the same grant twice".to_owned()))
        }
        Ok(file) => Ok(file.grants),
        Err(e) => {
            // A newer format may not parse as this one: say so rather than "corrupt".
            #[derive(Deserialize)]
            struct Version {
                version: u32,
            }
            if let Ok(Version { version }) = serde_json::from_slice(bytes)
                && version != FORMAT_VERSION
            {
                return Err(unsupported(path, version));
            }
            // Only the position and the category: serde's message may quote a value, and
            // values here are tokens.
            let category = match e.classify() {
                serde_json::error::Category::Eof => "it ends too early",
                serde_json::error::Category::Syntax => "it is not valid JSON",
                serde_json::error::Category::Data => "it is JSON, but not a token store file",
                serde_json::error::Category::Io => "it could not be read",
            };
            Err(corrupt(
                path,
                format!("{category}, at line {} column {}", e.line(), e.column()),
            ))
        }
    }
}

fn unsupported(path: &Path, version: u32) -> Error {
    Error::store(
        StoreErrorKind::Corrupt,
        format!(
            "the token store file has format version {version}, and this sciauth reads version \
             {FORMAT_VERSION}: it was probably written by a newer sciauth, so it is left as it is"
        ),
    )
    .with_path(path)
}

fn write(path: &Path, key: Option<&StoreKey>, grants: Vec<StoredGrant>) -> Result<()> {
    if grants.is_empty() {
        return match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(path, "cannot delete", e)),
        };
    }
    let text = zeroize::Zeroizing::new(encode(grants).map_err(|e| {
        Error::store(
            StoreErrorKind::Io,
            format!("cannot serialize the token store file: {e}"),
        )
        .with_path(path)
    })?);
    let text = match key {
        Some(key) => zeroize::Zeroizing::new(
            encryption::seal(key, &file_name(path), &text).map_err(|e| e.with_path(path))?,
        ),
        None => text,
    };
    write_atomic(path, &text).map_err(|e| io_error(path, "cannot write", e))
}

/// The contents of an account file holding `grants`.
pub(crate) fn encode(grants: Vec<StoredGrant>) -> serde_json::Result<Vec<u8>> {
    let file = AccountFile {
        version: FORMAT_VERSION,
        grants,
    };
    let mut text = serde_json::to_vec_pretty(&file)?;
    text.push(b'\n');
    Ok(text)
}

/// Read-modify-write of one account file; the caller holds its lock.
fn update<T>(
    path: &Path,
    key: Option<&StoreKey>,
    change: impl FnOnce(&mut Vec<StoredGrant>) -> T,
) -> Result<T> {
    // A corrupt (or tampered) file fails here, before anything is written over it.
    let mut grants = read(path, key)?.unwrap_or_default();
    let before = grants.len();
    let result = change(&mut grants);
    if before == 0 && grants.is_empty() {
        return Ok(result);
    }
    write(path, key, grants)?;
    Ok(result)
}

fn put_into(grants: &mut Vec<StoredGrant>, grant: &StoredGrant) {
    match grants.iter_mut().find(|g| g.key() == grant.key()) {
        Some(slot) => *slot = grant.clone(),
        None => grants.push(grant.clone()),
    }
}

fn delete_from(grants: &mut Vec<StoredGrant>, key: &GrantKey) -> bool {
    let before = grants.len();
    grants.retain(|g| g.key() != key);
    grants.len() != before
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        Error::store(
            StoreErrorKind::Io,
            format!("the token store's file task failed: {e}"),
        )
    })?
}

#[async_trait]
impl TokenStore for FileStore {
    async fn get(&self, key: &GrantKey) -> Result<Option<StoredGrant>> {
        let path = self.path_for(key.account());
        let (key, sealing) = (key.clone(), self.key.clone());
        blocking(move || {
            Ok(read(&path, sealing.as_deref())?
                .and_then(|grants| grants.into_iter().find(|g| g.key() == &key)))
        })
        .await
    }

    /// One small file, read on the calling thread: what the command line's cached path
    /// wants (no thread, no runtime).
    fn get_now(&self, key: &GrantKey) -> Option<Result<Option<StoredGrant>>> {
        let path = self.path_for(key.account());
        Some(
            read(&path, self.key.as_deref()).map(|grants| {
                grants.and_then(|grants| grants.into_iter().find(|g| g.key() == key))
            }),
        )
    }

    async fn put(&self, grant: &StoredGrant) -> Result<()> {
        let mut locked = self.lock(grant.key()).await?;
        locked.put(grant).await
    }

    async fn delete(&self, key: &GrantKey) -> Result<bool> {
        let mut locked = self.lock(key).await?;
        locked.delete().await
    }

    async fn list(&self) -> Result<Vec<StoredGrant>> {
        let (dir, sealing) = (self.dir.clone(), self.key.clone());
        blocking(move || {
            let entries = std::fs::read_dir(&dir).map_err(|e| io_error(&dir, "cannot list", e))?;
            let mut grants = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io_error(&dir, "cannot list", e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                // Temporary files of interrupted writes start with a dot.
                if name.starts_with('.') || !name.ends_with(".json") {
                    continue;
                }
                grants.extend(read(&entry.path(), sealing.as_deref())?.unwrap_or_default());
            }
            grants.sort_by(|a, b| a.key().cmp(b.key()));
            Ok(grants)
        })
        .await
    }

    async fn lock(&self, key: &GrantKey) -> Result<Box<dyn LockedGrant>> {
        let lock_path = self.lock_path_for(key.account());
        let lock = FileLock::acquire_async(lock_path.clone())
            .await
            .map_err(|e| io_error(&lock_path, "cannot lock", e))?;
        Ok(Box::new(FileGrantLock {
            key: key.clone(),
            path: self.path_for(key.account()),
            sealing: self.key.clone(),
            _lock: lock,
        }))
    }
}

#[derive(Debug)]
struct FileGrantLock {
    key: GrantKey,
    path: PathBuf,
    sealing: Key,
    _lock: FileLock,
}

#[async_trait]
impl LockedGrant for FileGrantLock {
    fn key(&self) -> &GrantKey {
        &self.key
    }

    async fn get(&mut self) -> Result<Option<StoredGrant>> {
        let (path, key, sealing) = (self.path.clone(), self.key.clone(), self.sealing.clone());
        blocking(move || {
            Ok(read(&path, sealing.as_deref())?
                .and_then(|grants| grants.into_iter().find(|g| g.key() == &key)))
        })
        .await
    }

    async fn put(&mut self, grant: &StoredGrant) -> Result<()> {
        check_locked_key(&self.key, grant)?;
        let (path, grant, sealing) = (self.path.clone(), grant.clone(), self.sealing.clone());
        blocking(move || update(&path, sealing.as_deref(), |grants| put_into(grants, &grant))).await
    }

    async fn delete(&mut self) -> Result<bool> {
        let (path, key, sealing) = (self.path.clone(), self.key.clone(), self.sealing.clone());
        blocking(move || {
            update(&path, sealing.as_deref(), |grants| {
                delete_from(grants, &key)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_become_distinct_safe_file_names() {
        assert_eq!(file_stem("alice"), "alice");
        assert_eq!(file_stem("alice@example.org"), "alice@example.org");
        assert_eq!(file_stem("../etc/passwd"), "%2E.%2Fetc%2Fpasswd");
        assert_eq!(file_stem("a b"), "a%20b");
        assert_eq!(file_stem("a%20b"), "a%2520b");
        assert_eq!(file_stem(""), "%");
        assert_eq!(file_stem(".hidden"), "%2Ehidden");
    }
}
