//! Token stores: where the [`TokenManager`](crate::TokenManager) keeps grants between runs
//! and shares them with other processes.
//!
//! # What a key holds
//!
//! A refresh token belongs to a *grant*: one login of one account at one issuer with one
//! client. So the store is keyed by [`GrantKey`] = (issuer, client id, account), and one key
//! holds one [`StoredGrant`]: the refresh token (with its expiry when known), the ID token,
//! the scopes the grant has, and any number of access tokens obtained from it, each an
//! [`AccessTokenEntry`] with its own audience, scopes and expiry. The refresh token is kept
//! once per grant, never per access token, so rotating it while getting a token for one
//! audience updates it for every audience.
//!
//! A client-credentials token is a grant without a refresh token, keyed by an account name
//! the caller chooses (often the client id). DIRAC's rule "one token per user per provider"
//! is "one grant per (issuer, client, account)".
//!
//! # Locking
//!
//! [`TokenStore::lock`] takes an exclusive lock on one key, across processes, and returns a
//! [`LockedGrant`] whose `get`/`put`/`delete` act on that key under the lock; dropping it
//! unlocks. The manager refreshes as: lock, re-read, refresh only if still needed, write,
//! unlock. A backend on a database implements it with an advisory or row lock.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::token::{Scopes, Token, TokenParts};

pub(crate) mod encryption;
pub(crate) mod file;
pub(crate) mod memory;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// The most access tokens one grant keeps; beyond it, the ones that expire first go.
const MAX_ACCESS_TOKENS: usize = 32;

/// Which grant: the issuer, the client and the account (a profile name, a user, or a
/// service's own name).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GrantKey {
    issuer: String,
    client_id: String,
    account: String,
}

impl GrantKey {
    /// The key of `account`'s grant at `issuer` with `client_id`.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        account: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            account: account.into(),
        }
    }

    /// The issuer, as configured.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The account.
    pub fn account(&self) -> &str {
        &self.account
    }
}

impl fmt::Display for GrantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "account {:?} at {} (client {})",
            self.account, self.issuer, self.client_id
        )
    }
}

impl fmt::Debug for GrantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantKey")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("account", &self.account)
            .finish()
    }
}

/// One access token of a grant, for one audience and set of scopes.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccessTokenEntry {
    #[serde(with = "sciauth_credentials::secret_serde")]
    access_token: SecretString,
    token_type: String,
    #[serde(with = "unix_seconds")]
    issued_at: SystemTime,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_unix_seconds"
    )]
    expires_at: Option<SystemTime>,
    #[serde(default)]
    scopes: Scopes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<String>,
}

impl AccessTokenEntry {
    /// The access token of `token`, recorded under `scopes` (what it was granted) and
    /// `audience` (what it was asked for; `None` when none was).
    pub fn new(token: &Token, scopes: Scopes, audience: Option<String>) -> Self {
        Self {
            access_token: token.parts().access_token.clone(),
            token_type: token.parts().token_type.clone(),
            issued_at: token.parts().issued_at,
            expires_at: token.parts().expires_at,
            scopes,
            audience,
            issued_token_type: token.parts().issued_token_type.clone(),
        }
    }

    /// The access token. It is a secret: do not log it.
    pub fn access_token(&self) -> &SecretString {
        &self.access_token
    }

    /// The `token_type`, normally `Bearer`.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When it was issued, by the receiving client's clock.
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// When it expires, if the provider said.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The scopes it was granted.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// The audience (or resource) it was requested for; `None` when none was requested.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// RFC 8693's `issued_token_type`, for a token from a token exchange.
    pub fn issued_token_type(&self) -> Option<&str> {
        self.issued_token_type.as_deref()
    }

    /// The end of its usable life: its expiry, or, when the provider did not say,
    /// `unknown_lifetime` after it was issued.
    pub(crate) fn usable_until(&self, unknown_lifetime: Duration) -> SystemTime {
        self.expires_at
            .unwrap_or_else(|| sciauth_credentials::time::later(self.issued_at, unknown_lifetime))
    }

    fn same_secret(&self, other: &AccessTokenEntry) -> bool {
        self.access_token.expose_secret() == other.access_token.expose_secret()
    }
}

impl fmt::Debug for AccessTokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenEntry")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("issued_at", &unix(self.issued_at))
            .field("expires_at", &self.expires_at.map(unix))
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("issued_token_type", &self.issued_token_type)
            .finish()
    }
}

/// What a store keeps for one [`GrantKey`]: the grant's refresh token and the access tokens
/// obtained from it.
///
/// # Storage format
///
/// Serializes (serde) to a versioned, human-readable JSON object; the file store writes a
/// list of them, a database backend can keep one per row:
///
/// ```json
/// {
///   "version": 1,
///   "issuer": "https://idp.example.org",
///   "client_id": "my-app",
///   "account": "default",
///   "refresh_token": "...",
///   "refresh_expires_at": 1700086400,
///   "id_token": "eyJ...",
///   "scopes": ["offline_access", "openid", "storage.read:/"],
///   "updated_at": 1700000000,
///   "access_tokens": [
///     {"access_token": "eyJ...", "token_type": "Bearer", "issued_at": 1700000000,
///      "expires_at": 1700003600, "scopes": ["storage.read:/"],
///      "audience": "https://se.example.org"}
///   ]
/// }
/// ```
///
/// Times are whole seconds since the Unix epoch; absent values are left out. A `version`
/// other than 1 is refused rather than misread.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "GrantRepr", into = "GrantRepr")]
pub struct StoredGrant {
    key: GrantKey,
    refresh_token: Option<SecretString>,
    refresh_expires_at: Option<SystemTime>,
    id_token: Option<SecretString>,
    scopes: Scopes,
    access_tokens: Vec<AccessTokenEntry>,
    updated_at: SystemTime,
}

impl StoredGrant {
    /// A grant with no tokens yet.
    pub fn new(key: GrantKey) -> Self {
        Self {
            key,
            refresh_token: None,
            refresh_expires_at: None,
            id_token: None,
            scopes: Scopes::new(),
            access_tokens: Vec::new(),
            updated_at: UNIX_EPOCH,
        }
    }

    /// The grant a login (or any grant) returned: `token`'s refresh and ID token, its access
    /// token recorded for `audience`, and as the grant's scopes those requested at login
    /// together with those granted.
    pub fn from_token(
        key: GrantKey,
        token: &Token,
        requested_scopes: &Scopes,
        audience: Option<String>,
    ) -> Self {
        let mut grant = Self::new(key);
        grant.scopes = requested_scopes.clone();
        grant.scopes.extend(token.scopes().iter());
        grant.refresh_token = token.parts().refresh_token.clone();
        grant.refresh_expires_at = refresh_token_expiry(token);
        grant.id_token = token.parts().id_token.clone();
        grant.updated_at = token.parts().issued_at;
        let scopes = if token.parts().scopes.is_empty() {
            grant.scopes.clone()
        } else {
            token.parts().scopes.clone()
        };
        grant
            .access_tokens
            .push(AccessTokenEntry::new(token, scopes, audience));
        grant
    }

    /// Which grant this is.
    pub fn key(&self) -> &GrantKey {
        &self.key
    }

    /// The refresh token, if the grant has one. It is a secret: do not log it.
    pub fn refresh_token(&self) -> Option<&SecretString> {
        self.refresh_token.as_ref()
    }

    /// When the refresh token expires, when that is known (Keycloak's `refresh_expires_in`,
    /// or the `exp` of a JWT refresh token).
    pub fn refresh_expires_at(&self) -> Option<SystemTime> {
        self.refresh_expires_at
    }

    /// The latest ID token, if any. It is a secret: do not log it.
    pub fn id_token(&self) -> Option<&SecretString> {
        self.id_token.as_ref()
    }

    /// The scopes of the grant: what a refresh may ask for.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// The access tokens obtained from this grant.
    pub fn access_tokens(&self) -> &[AccessTokenEntry] {
        &self.access_tokens
    }

    /// When the grant was last written.
    pub fn updated_at(&self) -> SystemTime {
        self.updated_at
    }

    /// Whether the grant can get new access tokens: it has a refresh token not known to
    /// have expired at `now`.
    pub fn is_refreshable_at(&self, now: SystemTime) -> bool {
        self.refresh_token.is_some() && self.refresh_expires_at.is_none_or(|at| now < at)
    }

    /// A summary without secrets, for listings.
    pub fn info(&self) -> TokenInfo {
        TokenInfo {
            key: self.key.clone(),
            scopes: self.scopes.clone(),
            has_refresh_token: self.refresh_token.is_some(),
            refresh_expires_at: self.refresh_expires_at,
            updated_at: self.updated_at,
            access_tokens: self
                .access_tokens
                .iter()
                .map(|entry| AccessTokenInfo {
                    audience: entry.audience.clone(),
                    scopes: entry.scopes.clone(),
                    token_type: entry.token_type.clone(),
                    issued_at: entry.issued_at,
                    expires_at: entry.expires_at,
                })
                .collect(),
        }
    }

    /// The [`Token`] for one of this grant's access tokens, with the grant's refresh and ID
    /// token.
    pub fn token(&self, entry: &AccessTokenEntry) -> Token {
        Token::from(TokenParts {
            access_token: entry.access_token.clone(),
            token_type: entry.token_type.clone(),
            refresh_token: self.refresh_token.clone(),
            id_token: self.id_token.clone(),
            issued_at: entry.issued_at,
            expires_at: entry.expires_at,
            scopes: entry.scopes.clone(),
            audience: entry.audience.clone(),
            issuer: self.key.issuer.clone(),
            client_id: self.key.client_id.clone(),
            issued_token_type: entry.issued_token_type.clone(),
            extra: serde_json::Map::new(),
        })
    }

    /// Records what a refresh (or another grant) returned: a rotated refresh token replaces
    /// the old one, a new ID token the old one, and the access token is added for
    /// `audience`, replacing the tokens for that audience it makes redundant. Access tokens
    /// that expired before `now` are dropped.
    pub(crate) fn record(
        &mut self,
        token: &Token,
        scopes: Scopes,
        audience: Option<String>,
        now: SystemTime,
        unknown_lifetime: Duration,
    ) {
        if let Some(refresh) = &token.parts().refresh_token {
            let rotated = self
                .refresh_token
                .as_ref()
                .is_none_or(|old| old.expose_secret() != refresh.expose_secret());
            if rotated {
                self.refresh_token = Some(refresh.clone());
                self.refresh_expires_at = refresh_token_expiry(token);
            }
        }
        if token.parts().id_token.is_some() {
            self.id_token = token.parts().id_token.clone();
        }
        let entry = AccessTokenEntry::new(token, scopes, audience);
        // A token for the same audience with no more scopes than the new one is redundant;
        // an expired one is useless.
        self.access_tokens.retain(|old| {
            let redundant =
                old.audience == entry.audience && entry.scopes.contains_all(&old.scopes);
            !redundant && !old.same_secret(&entry) && old.usable_until(unknown_lifetime) > now
        });
        self.access_tokens.push(entry);
        if self.access_tokens.len() > MAX_ACCESS_TOKENS {
            self.access_tokens
                .sort_by_key(|e| std::cmp::Reverse(e.usable_until(unknown_lifetime)));
            self.access_tokens.truncate(MAX_ACCESS_TOKENS);
        }
        self.updated_at = now;
    }
}

impl fmt::Debug for StoredGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { "[redacted]" } else { "none" };
        f.debug_struct("StoredGrant")
            .field("key", &self.key)
            .field("refresh_token", &redacted(self.refresh_token.is_some()))
            .field("refresh_expires_at", &self.refresh_expires_at.map(unix))
            .field("id_token", &redacted(self.id_token.is_some()))
            .field("scopes", &self.scopes)
            .field("access_tokens", &self.access_tokens)
            .field("updated_at", &unix(self.updated_at))
            .finish()
    }
}

/// What is stored for one grant, without secrets: for `list`, tables and JSON output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Issuer, client and account.
    #[serde(flatten)]
    pub key: GrantKey,
    /// The grant's scopes.
    pub scopes: Scopes,
    /// Whether a refresh token is stored.
    pub has_refresh_token: bool,
    /// When the refresh token expires, if known.
    #[serde(with = "optional_unix_seconds")]
    pub refresh_expires_at: Option<SystemTime>,
    /// When the grant was last written.
    #[serde(with = "unix_seconds")]
    pub updated_at: SystemTime,
    /// Its access tokens.
    pub access_tokens: Vec<AccessTokenInfo>,
}

/// One access token, without the token: for listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessTokenInfo {
    /// The audience it was requested for.
    pub audience: Option<String>,
    /// Its scopes.
    pub scopes: Scopes,
    /// Its type, normally `Bearer`.
    pub token_type: String,
    /// When it was issued.
    #[serde(with = "unix_seconds")]
    pub issued_at: SystemTime,
    /// When it expires, if known.
    #[serde(with = "optional_unix_seconds")]
    pub expires_at: Option<SystemTime>,
}

/// Storage for grants, shared by threads, tasks and (for the file and SQLite stores)
/// processes.
///
/// Implement it for another backend (PostgreSQL, a keyring) and give it to
/// [`TokenManager::builder`](crate::TokenManager::builder). `put` and `delete` outside a lock
/// must still be atomic (a reader sees the old grant or the new one); `lock` must exclude
/// every other holder of the same key, in this process and in others, until the
/// [`LockedGrant`] is dropped or released.
#[async_trait]
pub trait TokenStore: fmt::Debug + Send + Sync {
    /// The grant stored under `key`, if any.
    async fn get(&self, key: &GrantKey) -> Result<Option<StoredGrant>>;

    /// Stores `grant` under its key, replacing what was there.
    async fn put(&self, grant: &StoredGrant) -> Result<()>;

    /// Deletes the grant under `key`; `true` if there was one.
    async fn delete(&self, key: &GrantKey) -> Result<bool>;

    /// Every stored grant.
    async fn list(&self) -> Result<Vec<StoredGrant>>;

    /// Waits for the exclusive lock on `key` and returns it.
    async fn lock(&self, key: &GrantKey) -> Result<Box<dyn LockedGrant>>;

    /// The grant stored under `key`, read without waiting on anything asynchronous, for
    /// [`TokenManager::get_now`](crate::TokenManager::get_now) (a command answering from the
    /// store before it starts an async runtime). `None` when this store cannot answer that
    /// way (a database); by default, `None`. A local file read counts as not waiting.
    fn get_now(&self, key: &GrantKey) -> Option<Result<Option<StoredGrant>>> {
        let _ = key;
        None
    }
}

/// The exclusive lock on one key of a [`TokenStore`], with access to that key. Dropping it
/// unlocks.
///
/// The manager calls [`release`](Self::release) when it is done and simply drops the lock on
/// an error path, so both must unlock: a database backend whose unlock is async can end the
/// connection's session (which frees a session-level advisory lock) or spawn the unlock in
/// `Drop`.
#[async_trait]
pub trait LockedGrant: fmt::Debug + Send {
    /// The locked key.
    fn key(&self) -> &GrantKey;

    /// The grant stored under the key, read now.
    async fn get(&mut self) -> Result<Option<StoredGrant>>;

    /// Stores `grant`, whose key must be the locked key.
    async fn put(&mut self, grant: &StoredGrant) -> Result<()>;

    /// Deletes the grant; `true` if there was one.
    async fn delete(&mut self) -> Result<bool>;

    /// Unlocks now, reporting a failure to unlock (dropping unlocks too, silently). By
    /// default, this drops the lock.
    async fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl<S: TokenStore + ?Sized> TokenStore for Arc<S> {
    async fn get(&self, key: &GrantKey) -> Result<Option<StoredGrant>> {
        (**self).get(key).await
    }
    async fn put(&self, grant: &StoredGrant) -> Result<()> {
        (**self).put(grant).await
    }
    async fn delete(&self, key: &GrantKey) -> Result<bool> {
        (**self).delete(key).await
    }
    async fn list(&self) -> Result<Vec<StoredGrant>> {
        (**self).list().await
    }
    fn get_now(&self, key: &GrantKey) -> Option<Result<Option<StoredGrant>>> {
        (**self).get_now(key)
    }
    async fn lock(&self, key: &GrantKey) -> Result<Box<dyn LockedGrant>> {
        (**self).lock(key).await
    }
}

/// Fails unless `grant` belongs under the locked `key`.
pub(crate) fn check_locked_key(locked: &GrantKey, grant: &StoredGrant) -> Result<()> {
    if locked == grant.key() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a grant for {} cannot be stored under the lock of {}",
                grant.key(),
                locked
            ),
        ))
    }
}

/// When `token`'s refresh token expires, if the response said (`refresh_expires_in`, as
/// Keycloak sends) or the refresh token is a JWT with an `exp`.
pub(crate) fn refresh_token_expiry(token: &Token) -> Option<SystemTime> {
    let refresh = token.parts().refresh_token.as_ref()?;
    if let Some(seconds) = token
        .extra()
        .get("refresh_expires_in")
        .and_then(Value::as_u64)
    {
        // Keycloak sends 0 for offline tokens, which do not expire.
        return (seconds > 0).then(|| {
            sciauth_credentials::time::later(token.parts().issued_at, Duration::from_secs(seconds))
        });
    }
    let payload = refresh.expose_secret().split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    Some(sciauth_credentials::time::from_unix(exp))
}

use sciauth_credentials::time::unix_seconds as unix;

const FORMAT_VERSION: u32 = 1;

/// The on-disk shape of [`StoredGrant`], version 1.
#[derive(Serialize, Deserialize)]
struct GrantRepr {
    version: u32,
    issuer: String,
    client_id: String,
    account: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "sciauth_credentials::secret_serde::optional"
    )]
    refresh_token: Option<SecretString>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_unix_seconds"
    )]
    refresh_expires_at: Option<SystemTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "sciauth_credentials::secret_serde::optional"
    )]
    id_token: Option<SecretString>,
    #[serde(default)]
    scopes: Scopes,
    #[serde(with = "unix_seconds")]
    updated_at: SystemTime,
    #[serde(default)]
    access_tokens: Vec<AccessTokenEntry>,
}

impl From<StoredGrant> for GrantRepr {
    fn from(grant: StoredGrant) -> Self {
        Self {
            version: FORMAT_VERSION,
            issuer: grant.key.issuer,
            client_id: grant.key.client_id,
            account: grant.key.account,
            refresh_token: grant.refresh_token,
            refresh_expires_at: grant.refresh_expires_at,
            id_token: grant.id_token,
            scopes: grant.scopes,
            updated_at: grant.updated_at,
            access_tokens: grant.access_tokens,
        }
    }
}

impl TryFrom<GrantRepr> for StoredGrant {
    type Error = String;
    fn try_from(repr: GrantRepr) -> std::result::Result<Self, String> {
        if repr.version != FORMAT_VERSION {
            return Err(format!(
                "stored grant format version {} is not supported (this sciauth reads version \
                 {FORMAT_VERSION}); it was probably written by a newer sciauth",
                repr.version
            ));
        }
        Ok(Self {
            key: GrantKey::new(repr.issuer, repr.client_id, repr.account),
            refresh_token: repr.refresh_token,
            refresh_expires_at: repr.refresh_expires_at,
            id_token: repr.id_token,
            scopes: repr.scopes,
            access_tokens: repr.access_tokens,
            updated_at: repr.updated_at,
        })
    }
}

/// The keys of `grants`, to check that a list holds each key once.
pub(crate) fn distinct_keys(grants: &[StoredGrant]) -> bool {
    let keys: BTreeSet<&GrantKey> = grants.iter().map(StoredGrant::key).collect();
    keys.len() == grants.len()
}

mod unix_seconds {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::unix(*time))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Ok(sciauth_credentials::time::from_unix(u64::deserialize(d)?))
    }
}

mod optional_unix_seconds {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        time: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => s.serialize_some(&super::unix(*time)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(sciauth_credentials::time::from_unix))
    }
}
