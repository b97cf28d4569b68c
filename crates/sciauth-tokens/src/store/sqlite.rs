//! [`SqliteStore`]: grants in one SQLite database (WAL mode), for applications with many.

use std::fmt;
use std::fmt::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::error::{Error, Result, StoreErrorKind};
use crate::store::encryption::{self, Opened, StoreKey};
use crate::store::{GrantKey, LockedGrant, StoredGrant, TokenStore, check_locked_key};
use sciauth_credentials::fs::{FileLock, check_private_file, ensure_private_dir};
use sciauth_credentials::time::unix_seconds_i64 as unix;

/// A token store in one SQLite database file, in WAL mode: for services and applications
/// that keep many grants. Behind the cargo feature `sqlite` (SQLite is compiled in).
///
/// One row per grant: the key columns `(issuer, client_id, account)`, the grant as the JSON
/// of [`StoredGrant`], and `refresh_expires_at` / `updated_at` for purging. The database
/// file is created 0600 (a readable one is repaired with a warning). The cross-process lock
/// of a key is a lock file in `<database>.locks/`, so that a refresh, which waits for the
/// provider, holds no database lock and blocks no other grant.
///
/// [`open_encrypted`](Self::open_encrypted) seals each row's grant as the encrypted
/// [`FileStore`](crate::FileStore) seals a file (AES-256-GCM under a [`StoreKey`], a fresh
/// nonce per write), bound to the row's key, so that a grant copied into another row does
/// not open; the key columns and times stay readable. Its key file is
/// [`key_dir`](Self::key_dir)`/store.key`.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    locks: PathBuf,
    connection: Arc<Mutex<Connection>>,
    key: Option<Arc<StoreKey>>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "cannot create", e))?;
        }
        // Created private before SQLite opens it; SQLite gives its -wal and -shm files the
        // same permissions.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error(&path, "cannot create", e))?;
        check_private_file(&path).map_err(|e| io_error(&path, "cannot check", e))?;
        let mut locks = path.clone().into_os_string();
        locks.push(".locks");
        let locks = PathBuf::from(locks);
        ensure_private_dir(&locks).map_err(|e| io_error(&locks, "cannot create", e))?;
        let connection = Connection::open(&path).map_err(|e| backend(&path, e))?;
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(|e| backend(&path, e))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| backend(&path, e))?;
        // Tokens must survive a power cut once written: fsync every commit.
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| backend(&path, e))?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS grants (
                    issuer TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    account TEXT NOT NULL,
                    grant_json TEXT NOT NULL,
                    refresh_expires_at INTEGER,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (issuer, client_id, account)
                )",
            )
            .map_err(|e| backend(&path, e))?;
        Ok(Self {
            path,
            locks,
            connection: Arc::new(Mutex::new(connection)),
            key: None,
        })
    }

    /// The private directory next to the database (`<database>.locks`) that holds the lock
    /// files and, for an encrypted store, the key file: give it to [`StoreKey::create`] and
    /// [`StoreKey::unlock`].
    pub fn key_dir(path: &Path) -> PathBuf {
        let mut locks = path.as_os_str().to_owned();
        locks.push(".locks");
        PathBuf::from(locks)
    }

    /// Opens the database at `path` as an encrypted store whose key is `key`; a key that is
    /// not the one of [`key_dir`](Self::key_dir)'s key file is
    /// [`StoreErrorKind::WrongPassphrase`].
    pub fn open_encrypted(path: impl Into<PathBuf>, key: StoreKey) -> Result<Self> {
        let mut store = Self::open(path)?;
        key.check(&store.locks)?;
        store.key = Some(Arc::new(key));
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection, off the async runtime.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &Db<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (connection, path, key) =
            (self.connection.clone(), self.path.clone(), self.key.clone());
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            work(
                &connection,
                &Db {
                    path: &path,
                    key: key.as_deref(),
                },
            )
        })
        .await
        .map_err(|e| {
            Error::store(
                StoreErrorKind::Io,
                format!("the token store's database task failed: {e}"),
            )
        })?
    }

    /// Runs `work` on the calling thread if the connection is free (`None` if another task
    /// holds it: the caller then takes the async path).
    fn with_now<T>(
        &self,
        work: impl FnOnce(&Connection, &Db<'_>) -> Result<T>,
    ) -> Option<Result<T>> {
        let connection = match self.connection.try_lock() {
            Ok(connection) => connection,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let db = Db {
            path: &self.path,
            key: self.key.as_deref(),
        };
        Some(work(&connection, &db))
    }

    fn lock_path(&self, key: &GrantKey) -> PathBuf {
        // A digest names the lock: keys hold URLs and any account name.
        let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [key.issuer(), key.client_id(), key.account()] {
            hasher.update(&(part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let mut name = String::with_capacity(70);
        for byte in &hasher.finish().as_ref()[..16] {
            let _ = write!(name, "{byte:02x}");
        }
        name.push_str(".lock");
        self.locks.join(name)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("encrypted", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path, what: &str, error: std::io::Error) -> Error {
    Error::store(
        StoreErrorKind::Io,
        format!("{what} the token database: {error}"),
    )
    .with_path(path)
    .with_source(error)
}

fn backend(path: &Path, error: rusqlite::Error) -> Error {
    Error::store(
        StoreErrorKind::Backend,
        format!("the token database failed: {error}"),
    )
    .with_path(path)
    .with_source(error)
}

/// The database a row belongs to, and the key its grants are sealed with, if they are.
struct Db<'a> {
    path: &'a Path,
    key: Option<&'a StoreKey>,
}

/// What a row's sealed grant is bound to: its key, each part with its length.
fn row_name(key: &GrantKey) -> String {
    let mut name = String::from("grant");
    for part in [key.issuer(), key.client_id(), key.account()] {
        let _ = write!(name, " {}:{part}", part.len());
    }
    name
}

/// The grant of a row, opened with the store's key when it is encrypted.
fn read_row(db: &Db<'_>, key: &GrantKey, json: &str) -> Result<StoredGrant> {
    let path = db.path;
    let Some(sealing) = db.key else {
        return match parse(path, key, json) {
            Err(_) if encryption::is_sealed(json.as_bytes()) => Err(Error::store(
                StoreErrorKind::EncryptionMismatch,
                format!(
                    "the stored grant of {key} is encrypted, and the store was opened without \
                     its key (SqliteStore::open_encrypted)"
                ),
            )
            .with_path(path)),
            parsed => parsed,
        };
    };
    match encryption::open(sealing, &row_name(key), json.as_bytes())? {
        Opened::Plain(plain) => {
            let text = std::str::from_utf8(&plain).map_err(|_| {
                Error::store(
                    StoreErrorKind::Corrupt,
                    format!("the stored grant of {key} is not UTF-8"),
                )
                .with_path(path)
            })?;
            parse(path, key, text)
        }
        Opened::NotSealed if parse(path, key, json).is_ok() => Err(Error::store(
            StoreErrorKind::EncryptionMismatch,
            format!("the stored grant of {key} is not encrypted, and the store is"),
        )
        .with_path(path)),
        Opened::NotSealed => parse(path, key, json),
        Opened::Tampered => Err(Error::store(
            StoreErrorKind::Tampered,
            format!(
                "the encrypted grant of {key} does not open with the store's key: it was \
                 changed, copied from another row, or sealed with another key; it was left as \
                 it is"
            ),
        )
        .with_path(path)),
    }
}

pub(crate) fn parse(path: &Path, key: &GrantKey, json: &str) -> Result<StoredGrant> {
    // serde's message may quote a value, and values here are tokens: say only where.
    serde_json::from_str(json).map_err(|e| {
        Error::store(
            StoreErrorKind::Corrupt,
            format!(
                "the stored grant of {key} cannot be read (at line {} column {}); it was \
                 left as it is: delete it and log in again",
                e.line(),
                e.column()
            ),
        )
        .with_path(path)
    })
}

fn get(connection: &Connection, db: &Db<'_>, key: &GrantKey) -> Result<Option<StoredGrant>> {
    let path = db.path;
    let json: Option<String> = connection
        .query_row(
            "SELECT grant_json FROM grants WHERE issuer = ?1 AND client_id = ?2 AND account = ?3",
            params![key.issuer(), key.client_id(), key.account()],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| backend(path, e))?;
    json.map(|json| read_row(db, key, &json)).transpose()
}

fn put(connection: &Connection, db: &Db<'_>, grant: &StoredGrant) -> Result<()> {
    let path = db.path;
    let json = zeroize::Zeroizing::new(serde_json::to_string(grant).map_err(|e| {
        Error::store(
            StoreErrorKind::Backend,
            format!("cannot serialize a grant: {e}"),
        )
    })?);
    let key = grant.key();
    let json = match db.key {
        Some(sealing) => {
            let sealed = encryption::seal(sealing, &row_name(key), json.as_bytes())?;
            // The sealed form is JSON: ASCII.
            zeroize::Zeroizing::new(String::from_utf8_lossy(&sealed).into_owned())
        }
        None => json,
    };
    connection
        .execute(
            "INSERT INTO grants (issuer, client_id, account, grant_json, refresh_expires_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (issuer, client_id, account) DO UPDATE SET
                grant_json = excluded.grant_json,
                refresh_expires_at = excluded.refresh_expires_at,
                updated_at = excluded.updated_at",
            params![
                key.issuer(),
                key.client_id(),
                key.account(),
                json.as_str(),
                grant.refresh_expires_at().map(unix),
                unix(grant.updated_at()),
            ],
        )
        .map_err(|e| backend(path, e))?;
    Ok(())
}

fn delete(connection: &Connection, db: &Db<'_>, key: &GrantKey) -> Result<bool> {
    let path = db.path;
    let rows = connection
        .execute(
            "DELETE FROM grants WHERE issuer = ?1 AND client_id = ?2 AND account = ?3",
            params![key.issuer(), key.client_id(), key.account()],
        )
        .map_err(|e| backend(path, e))?;
    Ok(rows > 0)
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn get(&self, key: &GrantKey) -> Result<Option<StoredGrant>> {
        let key = key.clone();
        self.with(move |connection, db| get(connection, db, &key))
            .await
    }

    fn get_now(&self, key: &GrantKey) -> Option<Result<Option<StoredGrant>>> {
        self.with_now(|connection, db| get(connection, db, key))
    }

    async fn put(&self, grant: &StoredGrant) -> Result<()> {
        let grant = grant.clone();
        self.with(move |connection, db| put(connection, db, &grant))
            .await
    }

    async fn delete(&self, key: &GrantKey) -> Result<bool> {
        let key = key.clone();
        self.with(move |connection, db| delete(connection, db, &key))
            .await
    }

    async fn list(&self) -> Result<Vec<StoredGrant>> {
        self.with(|connection, db| {
            let path = db.path;
            let mut statement = connection
                .prepare(
                    "SELECT issuer, client_id, account, grant_json FROM grants
                     ORDER BY issuer, client_id, account",
                )
                .map_err(|e| backend(path, e))?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        GrantKey::new(
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                        ),
                        row.get::<_, String>(3)?,
                    ))
                })
                .map_err(|e| backend(path, e))?;
            let mut grants = Vec::new();
            for row in rows {
                let (key, json) = row.map_err(|e| backend(path, e))?;
                grants.push(read_row(db, &key, &json)?);
            }
            Ok(grants)
        })
        .await
    }

    async fn lock(&self, key: &GrantKey) -> Result<Box<dyn LockedGrant>> {
        let lock_path = self.lock_path(key);
        let lock = FileLock::acquire_async(lock_path.clone())
            .await
            .map_err(|e| io_error(&lock_path, "cannot lock", e))?;
        Ok(Box::new(SqliteLock {
            key: key.clone(),
            store: self.clone(),
            _lock: lock,
        }))
    }
}

#[derive(Debug)]
struct SqliteLock {
    key: GrantKey,
    store: SqliteStore,
    _lock: FileLock,
}

#[async_trait]
impl LockedGrant for SqliteLock {
    fn key(&self) -> &GrantKey {
        &self.key
    }

    async fn get(&mut self) -> Result<Option<StoredGrant>> {
        self.store.get(&self.key).await
    }

    async fn put(&mut self, grant: &StoredGrant) -> Result<()> {
        check_locked_key(&self.key, grant)?;
        self.store.put(grant).await
    }

    async fn delete(&mut self) -> Result<bool> {
        self.store.delete(&self.key).await
    }
}
