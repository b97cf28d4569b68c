//! [`PostgresStore`]: grants in PostgreSQL, shared by every replica of the service.

use std::fmt;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use sciauth_credentials::time::unix_seconds_i64 as unix;
use sciauth_tokens::{
    Error as TokensError, GrantKey, LockedGrant, Result as TokensResult, StoreErrorKind,
    StoredGrant, TokenStore,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls};

use crate::error::{Error, ErrorKind, Result};
use crate::purge::purge_after;

/// The migrations, applied in order at startup; each runs once per database.
const MIGRATIONS: &[(i32, &str, &str)] =
    &[(1, "grants", include_str!("../migrations/0001_grants.sql"))];

/// The advisory lock that serializes migrations of replicas starting together.
const MIGRATION_LOCK: i64 = 0x5C1A_0000_0000_0001;

/// The most connections held at once for grant locks, unless set otherwise.
pub const DEFAULT_MAX_LOCK_CONNECTIONS: usize = 16;

/// A token store in PostgreSQL, for a service with several replicas.
///
/// One row per grant in `sciauth_grants`: the key `(issuer, client_id, account)`, the grant as
/// the versioned JSON of [`StoredGrant`] (`jsonb`), and `refresh_expires_at`, `purge_after`,
/// `updated_at` (Unix seconds). The schema comes from the SQL files in `migrations/`, applied
/// by [`connect`](Self::connect) under an advisory lock, each once.
///
/// Reads and writes share one connection (tokio-postgres pipelines concurrent queries). A
/// grant's lock ([`TokenStore::lock`]) is a session-level advisory lock taken on a connection
/// of its own, held by the returned [`LockedGrant`]: released and the connection reused when
/// it is released, the connection closed (which frees the lock in the server) when it is
/// dropped. So a replica that dies mid-refresh never leaves a grant locked.
///
/// The connection carries no TLS: connect over a Unix socket or loopback, or through a
/// TLS-terminating proxy.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    shared: ArcSwapOption<Client>,
    reconnect: tokio::sync::Mutex<()>,
    idle: Mutex<Vec<Client>>,
    lock_connections: Arc<Semaphore>,
}

impl PostgresStore {
    /// Connects to the database `url` (a `postgresql://` URL or `key=value` pairs, as libpq
    /// takes them; `host` may be a Unix socket directory) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, None, DEFAULT_MAX_LOCK_CONNECTIONS).await
    }

    /// Like [`connect`](Self::connect), with a password kept apart from the URL and at most
    /// `max_lock_connections` connections holding grant locks at once.
    pub async fn connect_with(
        url: &str,
        password: Option<&secrecy::SecretString>,
        max_lock_connections: usize,
    ) -> Result<Self> {
        let mut config = Config::from_str(url).map_err(|e| {
            // The parser's message may quote the URL, which may hold a password.
            let _ = e;
            Error::config(
                "the PostgreSQL connection string cannot be parsed (use postgresql://user@host/db \
                 or host=... user=... dbname=...)",
            )
        })?;
        if let Some(password) = password {
            config.password(secrecy::ExposeSecret::expose_secret(password).as_bytes());
        }
        if config.get_application_name().is_none() {
            config.application_name("sciauth-server");
        }
        let store = Self {
            inner: Arc::new(Inner {
                config,
                shared: ArcSwapOption::empty(),
                reconnect: tokio::sync::Mutex::new(()),
                idle: Mutex::new(Vec::new()),
                lock_connections: Arc::new(Semaphore::new(max_lock_connections.max(1))),
            }),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations the database does not have yet, under an advisory lock.
    async fn migrate(&self) -> Result<()> {
        let client = self.inner.connect().await.map_err(Error::from)?;
        let step = |what: &'static str| {
            move |e: tokio_postgres::Error| {
                Error::new(
                    ErrorKind::Store,
                    format!("PostgreSQL migration: {what}: {e}"),
                )
                .with_source(e)
            }
        };
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(step("cannot take the migration lock"))?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS sciauth_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at bigint NOT NULL
                )",
            )
            .await
            .map_err(step("cannot create sciauth_migrations"))?;
        let applied: Vec<i32> = client
            .query("SELECT version FROM sciauth_migrations", &[])
            .await
            .map_err(step("cannot read sciauth_migrations"))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            let script = format!(
                "BEGIN;\n{sql}\nINSERT INTO sciauth_migrations (version, name, applied_at) \
                 VALUES ({version}, '{name}', {});\nCOMMIT;",
                unix(SystemTime::now())
            );
            client
                .batch_execute(&script)
                .await
                .map_err(step("a migration failed"))?;
            tracing::info!(version, name, "applied a database migration");
        }
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(step("cannot release the migration lock"))?;
        Ok(())
    }

    /// Whether the database answers (a query on the shared connection, connected again if
    /// it was lost).
    pub async fn check(&self) -> TokensResult<()> {
        let client = self.inner.shared().await?;
        client.simple_query("SELECT 1").await.map_err(backend)?;
        Ok(())
    }

    /// Deletes the grants that hold nothing usable at `now` (see `purge_after` in the
    /// schema) and returns how many.
    pub async fn purge(&self, now: SystemTime) -> TokensResult<u64> {
        let client = self.inner.shared().await?;
        client
            .execute(
                "DELETE FROM sciauth_grants WHERE purge_after IS NOT NULL AND purge_after < $1",
                &[&unix(now)],
            )
            .await
            .map_err(backend)
    }
}

impl Inner {
    async fn connect(&self) -> TokensResult<Client> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| {
            TokensError::store(
                StoreErrorKind::Io,
                format!("cannot connect to PostgreSQL: {e}"),
            )
            .with_source(e)
        })?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "a PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// The shared connection, connected again if it was lost.
    async fn shared(&self) -> TokensResult<Arc<Client>> {
        if let Some(client) = self.shared.load_full().filter(|c| !c.is_closed()) {
            return Ok(client);
        }
        let _reconnecting = self.reconnect.lock().await;
        if let Some(client) = self.shared.load_full().filter(|c| !c.is_closed()) {
            return Ok(client);
        }
        let client = Arc::new(self.connect().await?);
        self.shared.store(Some(client.clone()));
        Ok(client)
    }

    async fn lock_connection(&self) -> TokensResult<Client> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle.filter(|c| !c.is_closed()) {
            Some(client) => Ok(client),
            None => self.connect().await,
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("hosts", &self.inner.config.get_hosts())
            .field("dbname", &self.inner.config.get_dbname())
            .field("user", &self.inner.config.get_user())
            .finish_non_exhaustive()
    }
}

fn backend(error: tokio_postgres::Error) -> TokensError {
    TokensError::store(
        StoreErrorKind::Backend,
        format!("the PostgreSQL token store failed: {error}"),
    )
    .with_source(error)
}

fn parse(key: &GrantKey, json: &str) -> TokensResult<StoredGrant> {
    // serde's message may quote a value, and values here are tokens: say only where.
    serde_json::from_str(json).map_err(|e| {
        TokensError::store(
            StoreErrorKind::Corrupt,
            format!(
                "the stored grant of {key} in PostgreSQL cannot be read (at line {} column {}); \
                 it was left as it is",
                e.line(),
                e.column()
            ),
        )
    })
}

/// The advisory lock id of `key`: the first 8 bytes of a SHA-256 of its parts.
fn lock_id(key: &GrantKey) -> i64 {
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    hasher.update(b"sciauth-grant\0");
    for part in [key.issuer(), key.client_id(), key.account()] {
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(first)
}

const SELECT_ONE: &str = "SELECT grant_json::text FROM sciauth_grants
     WHERE issuer = $1 AND client_id = $2 AND account = $3";
const UPSERT: &str = "INSERT INTO sciauth_grants
        (issuer, client_id, account, grant_json, refresh_expires_at, purge_after, updated_at)
     VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7)
     ON CONFLICT (issuer, client_id, account) DO UPDATE SET
        grant_json = excluded.grant_json,
        refresh_expires_at = excluded.refresh_expires_at,
        purge_after = excluded.purge_after,
        updated_at = excluded.updated_at";
const DELETE_ONE: &str =
    "DELETE FROM sciauth_grants WHERE issuer = $1 AND client_id = $2 AND account = $3";

async fn get(client: &Client, key: &GrantKey) -> TokensResult<Option<StoredGrant>> {
    let row = client
        .query_opt(
            SELECT_ONE,
            &[&key.issuer(), &key.client_id(), &key.account()],
        )
        .await
        .map_err(backend)?;
    row.map(|row| parse(key, row.get(0))).transpose()
}

async fn put(client: &Client, grant: &StoredGrant) -> TokensResult<()> {
    let json = serde_json::to_string(grant).map_err(|e| {
        TokensError::store(
            StoreErrorKind::Backend,
            format!("cannot serialize a grant: {:?}", e.classify()),
        )
    })?;
    let key = grant.key();
    let refresh_expires_at = grant.refresh_expires_at().map(unix);
    let purge_after = purge_after(grant).map(unix);
    let updated_at = unix(grant.updated_at());
    client
        .execute(
            UPSERT,
            &[
                &key.issuer(),
                &key.client_id(),
                &key.account(),
                &json,
                &refresh_expires_at,
                &purge_after,
                &updated_at,
            ],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

async fn delete(client: &Client, key: &GrantKey) -> TokensResult<bool> {
    let rows = client
        .execute(
            DELETE_ONE,
            &[&key.issuer(), &key.client_id(), &key.account()],
        )
        .await
        .map_err(backend)?;
    Ok(rows > 0)
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn get(&self, key: &GrantKey) -> TokensResult<Option<StoredGrant>> {
        get(&*self.inner.shared().await?, key).await
    }

    async fn put(&self, grant: &StoredGrant) -> TokensResult<()> {
        put(&*self.inner.shared().await?, grant).await
    }

    async fn delete(&self, key: &GrantKey) -> TokensResult<bool> {
        delete(&*self.inner.shared().await?, key).await
    }

    async fn list(&self) -> TokensResult<Vec<StoredGrant>> {
        let client = self.inner.shared().await?;
        let rows = client
            .query(
                "SELECT issuer, client_id, account, grant_json::text FROM sciauth_grants
                 ORDER BY issuer, client_id, account",
                &[],
            )
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let key = GrantKey::new(
                    row.get::<_, String>(0),
                    row.get::<_, String>(1),
                    row.get::<_, String>(2),
                );
                parse(&key, row.get(3))
            })
            .collect()
    }

    async fn lock(&self, key: &GrantKey) -> TokensResult<Box<dyn LockedGrant>> {
        let permit = self
            .inner
            .lock_connections
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| {
                TokensError::store(StoreErrorKind::Io, "the PostgreSQL store is shutting down")
            })?;
        let client = self.inner.lock_connection().await?;
        let id = lock_id(key);
        client
            .execute("SELECT pg_advisory_lock($1)", &[&id])
            .await
            .map_err(backend)?;
        Ok(Box::new(PostgresLock {
            key: key.clone(),
            id,
            client: Some(client),
            store: self.inner.clone(),
            _permit: permit,
        }))
    }
}

/// A grant's advisory lock, held on its own connection.
struct PostgresLock {
    key: GrantKey,
    id: i64,
    /// `None` once released.
    client: Option<Client>,
    store: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl PostgresLock {
    fn client(&self) -> TokensResult<&Client> {
        self.client.as_ref().ok_or_else(|| {
            TokensError::store(StoreErrorKind::Backend, "the grant lock was released")
        })
    }
}

impl fmt::Debug for PostgresLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLock")
            .field("key", &self.key)
            .field("id", &self.id)
            .finish()
    }
}

#[async_trait]
impl LockedGrant for PostgresLock {
    fn key(&self) -> &GrantKey {
        &self.key
    }

    async fn get(&mut self) -> TokensResult<Option<StoredGrant>> {
        get(self.client()?, &self.key).await
    }

    async fn put(&mut self, grant: &StoredGrant) -> TokensResult<()> {
        if grant.key() != &self.key {
            return Err(TokensError::store(
                StoreErrorKind::Backend,
                format!(
                    "a grant for {} cannot be stored under the lock of {}",
                    grant.key(),
                    self.key
                ),
            ));
        }
        put(self.client()?, grant).await
    }

    async fn delete(&mut self) -> TokensResult<bool> {
        delete(self.client()?, &self.key).await
    }

    async fn release(mut self: Box<Self>) -> TokensResult<()> {
        let Some(client) = self.client.take() else {
            return Ok(());
        };
        let unlocked: bool = client
            .query_one("SELECT pg_advisory_unlock($1)", &[&self.id])
            .await
            .map_err(backend)?
            .get(0);
        if unlocked {
            self.store
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(client);
        } else {
            // Not ours any more (the session was replaced?): close the connection, which
            // frees whatever it holds.
            tracing::warn!(key = %self.key, "the grant's advisory lock was not held at release");
        }
        Ok(())
    }
}

// Dropping a `PostgresLock` that was not released drops its `Client`: the connection task
// ends, the server ends the session, and the session's advisory lock is freed.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_differ_by_every_part_of_the_key() {
        let a = lock_id(&GrantKey::new("https://idp", "client", "alice"));
        assert_eq!(a, lock_id(&GrantKey::new("https://idp", "client", "alice")));
        assert_ne!(a, lock_id(&GrantKey::new("https://idp", "client", "bob")));
        assert_ne!(a, lock_id(&GrantKey::new("https://idp", "clien", "talice")));
        assert_ne!(
            a,
            lock_id(&GrantKey::new("https://idp2", "client", "alice"))
        );
    }
}
