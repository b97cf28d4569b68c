//! The session token cache that processes share: one JSON file per (auth host, VO, account,
//! auth type, identity) in a 0700 directory, rewritten atomically under a lock; and the token
//! file of the Rucio client itself (`/tmp/<user>/.rucio_<user>/auth_token_for_account_<account>`,
//! or `auth_token_file_path`), shared with it so that `rucio` and sciauth log in once between
//! them.
//!
//! It holds only a Rucio session token, which a login replaces at any time: a file that is
//! missing, corrupt, of another version or for another key counts as absent (and is
//! logged); a directory that cannot be used means logging in without the cache. Nothing
//! here fails a request.
//!
//! The Rucio client's file holds the bare token and nothing else: no expiry, no server, no
//! identity. Another process wrote it, so it is hostile input: read only when its directory
//! and the file are the user's own and others cannot write them, never through a symbolic
//! link, at most [`MAX_SHARED_TOKEN_LEN`] bytes of visible ASCII. A token found there that
//! sciauth did not write itself is [`Cached::Foreign`]: the session asks the server what it is
//! (`/auth/validate`) before using it. One sciauth wrote for another login (another identity
//! at the same account) is never used: the private record of who last wrote the file says.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sciauth_credentials::fs::{
    FileLock, TokenDir, check_private_file, check_token_dir, ensure_private_dir, read_owned_file,
    write_atomic,
};
use sciauth_credentials::time::later;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use sciauth_credentials::text::printable;

use crate::config::Environment;
use crate::login::SessionToken;

/// The version of the file format; a file of another version is ignored.
const VERSION: u32 = 1;

/// What a cached token is for. A file whose key differs (a hash collision, a hand-edited
/// file) is ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheKey {
    pub(crate) auth_host: String,
    pub(crate) vo: String,
    /// The account asked for; empty when the server picks the identity's default.
    pub(crate) account: String,
    pub(crate) auth_type: String,
    pub(crate) identity: String,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    #[serde(flatten)]
    key: CacheKey,
    token: String,
    /// Seconds since the Unix epoch.
    expires_at: Option<u64>,
    /// The account the server granted, when it said.
    granted_account: Option<String>,
}

impl CacheFile {
    /// The file that holds `token` for `key`, in this format version.
    fn of(key: CacheKey, token: &SessionToken) -> Self {
        CacheFile {
            version: VERSION,
            key,
            token: token.token.expose_secret().to_owned(),
            expires_at: token
                .expires_at
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            granted_account: token.account.clone(),
        }
    }

    /// The session the file holds, if its token is one a header can carry.
    fn session_token(self) -> Option<SessionToken> {
        let expires_at = self
            .expires_at
            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)));
        SessionToken::new(
            SecretString::from(self.token),
            expires_at,
            self.granted_account,
        )
        .ok()
    }
}

/// A private cache file as [`TokenCache::read`] reads it (any version), written back as
/// [`TokenCache::write`] writes it: a session that reads must read back the same.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_cache_file(data: &[u8]) {
    let Ok(parsed) = serde_json::from_slice::<CacheFile>(data) else {
        return;
    };
    let key = parsed.key.clone();
    let Some(token) = parsed.session_token() else {
        return;
    };
    let written = serde_json::to_vec_pretty(&CacheFile::of(key.clone(), &token))
        .expect("a cache file encodes");
    let back: CacheFile = serde_json::from_slice(&written).expect("a written cache file reads");
    assert!(
        back.key == key,
        "the cache key changed when written and read"
    );
    let again = back.session_token().expect("a written session reads back");
    assert!(
        again.token.expose_secret() == token.token.expose_secret()
            && again.account == token.account
            && again.expires_at == token.expires_at,
        "the cached session changed when written and read"
    );
}

/// The longest token read from the Rucio client's file: Rucio's own tokens are about 100
/// bytes, OIDC access tokens a few kilobytes.
pub(crate) const MAX_SHARED_TOKEN_LEN: u64 = 16 * 1024;

/// The Rucio client's token file (and the expiry file it writes beside it for OIDC tokens it
/// refreshes), shared with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedFiles {
    pub(crate) dir: PathBuf,
    pub(crate) token: PathBuf,
    pub(crate) exp: PathBuf,
}

/// Where the Rucio client (rucio-clients 41, `BaseClient._get_auth_tokens`) keeps the token of
/// `account` at `vo`: `auth_token_file_path` if set (for every account), else
/// `<tmp>/<user>/.rucio_<user>[@<vo>]/auth_token_for_account_<account>` (or
/// `..._for_default_account` without an account), with `<tmp>` Python's temporary directory.
/// `None` when that cannot be said safely: no user name, a bare file name, or an account or
/// VO that would make a path of its own (`/`, `..`).
pub(crate) fn shared_files(
    token_file_setting: Option<&Path>,
    env: &Environment,
    account: Option<&str>,
    vo: Option<&str>,
) -> Option<SharedFiles> {
    let plain = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && text != "."
            && text != ".."
    };
    let suffix = match account {
        None => "for_default_account".to_owned(),
        Some(account) if plain(account) => format!("for_account_{account}"),
        Some(_) => return None,
    };
    if let Some(file) = token_file_setting {
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty())?;
        return Some(SharedFiles {
            dir: dir.to_owned(),
            token: file.to_owned(),
            exp: dir.join(format!("auth_token_exp_{suffix}")),
        });
    }
    let user = env.user_name().filter(|u| plain(u))?;
    let mut name = format!(".rucio_{user}");
    match vo {
        None | Some("def") => {}
        Some(vo) if plain(vo) => name = format!("{name}@{vo}"),
        Some(_) => return None,
    }
    let dir = env.python_temp_dir().join(&user).join(name);
    Some(SharedFiles {
        token: dir.join(format!("auth_token_{suffix}")),
        exp: dir.join(format!("auth_token_exp_{suffix}")),
        dir,
    })
}

impl SharedFiles {
    /// The token in the file, `Ok(None)` when there is none, or why the file or its
    /// directory is not safe to use.
    fn read_token(&self) -> std::result::Result<Option<SecretString>, String> {
        match check_token_dir(&self.dir) {
            Ok(TokenDir::Missing) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        let Some(bytes) =
            read_owned_file(&self.token, MAX_SHARED_TOKEN_LEN).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        parse_shared_token(&bytes).map(Some)
    }

    /// Writes the token as the Rucio client does (the bare token, 0600, atomically), and for
    /// an OIDC token the expiry file too. The directory is created 0700 when missing, mended
    /// to 0700 when it is ours, and left as it is when shared (sticky, like `/tmp`).
    fn write(&self, token: &SessionToken, with_expiry: bool) -> std::io::Result<()> {
        match check_token_dir(&self.dir)? {
            TokenDir::Missing | TokenDir::Private => {
                ensure_private_dir(&self.dir)?;
            }
            TokenDir::Shared => {}
        }
        write_atomic(&self.token, token.token.expose_secret().as_bytes())?;
        if with_expiry
            && let Some(at) = token
                .expires_at
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        {
            write_atomic(&self.exp, at.as_secs().to_string().as_bytes())?;
        }
        Ok(())
    }
}

/// The token in the Rucio client's file: its first line (the client writes no newline, and
/// reads the first line), 1 to [`MAX_SHARED_TOKEN_LEN`] bytes of visible ASCII and spaces
/// (x509 tokens hold the DN), not starting or ending with a space. The error never quotes it.
pub(crate) fn parse_shared_token(bytes: &[u8]) -> std::result::Result<SecretString, String> {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err("the file is empty".to_owned());
    }
    if !line.iter().all(|b| (0x20..0x7f).contains(b))
        || line.first() == Some(&b' ')
        || line.last() == Some(&b' ')
    {
        return Err("the file holds something that is not a Rucio token".to_owned());
    }
    // Visible ASCII: valid UTF-8.
    Ok(SecretString::from(
        String::from_utf8_lossy(line).into_owned(),
    ))
}

/// What the cache holds for a key.
#[derive(Debug)]
pub(crate) enum Cached {
    /// A token sciauth wrote (or took over), with its expiry and account.
    Known(SessionToken),
    /// A token the Rucio client wrote to the shared file: what it is for and when it expires
    /// are not known until the server says.
    Foreign(SecretString),
}

/// One cache file and its lock.
#[derive(Debug, Clone)]
pub(crate) struct TokenCache {
    dir: PathBuf,
    file: PathBuf,
    lock: PathBuf,
    /// Which key's file last wrote the shared token file (the file stem; no secret).
    owner: Option<PathBuf>,
    stem: String,
    key: CacheKey,
    shared: Option<SharedFiles>,
    /// Whether the expiry goes to the Rucio client's `auth_token_exp_...` file too (OIDC
    /// tokens it refreshes).
    shared_expiry: bool,
}

impl TokenCache {
    pub(crate) fn new(dir: PathBuf, key: CacheKey) -> Self {
        let account = if key.account.is_empty() {
            "default"
        } else {
            &key.account
        };
        let vo = if key.vo.is_empty() { "def" } else { &key.vo };
        let stem = format!(
            "{}@{}-{}-{:016x}",
            file_safe(account),
            file_safe(vo),
            file_safe(&key.auth_type),
            fnv1a(&[
                &key.auth_host,
                &key.vo,
                &key.account,
                &key.auth_type,
                &key.identity
            ])
        );
        Self {
            file: dir.join(format!("{stem}.json")),
            lock: dir.join(format!("{stem}.lock")),
            owner: None,
            dir,
            stem,
            key,
            shared: None,
            shared_expiry: false,
        }
    }

    /// Shares the token with the Rucio client through `files`; `with_expiry` writes the
    /// expiry file it keeps for refreshed OIDC tokens too.
    pub(crate) fn shared(mut self, files: SharedFiles, with_expiry: bool) -> Self {
        self.owner = Some(self.dir.join(format!(
            "shared-{:016x}.owner",
            fnv1a(&[&files.token.to_string_lossy()])
        )));
        self.shared = Some(files);
        self.shared_expiry = with_expiry;
        self
    }

    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// The Rucio client's token file this cache shares, if any.
    pub(crate) fn shared_files(&self) -> Option<&SharedFiles> {
        self.shared.as_ref()
    }

    /// Deletes the cached token here and in the Rucio client's file; `true` if there was one.
    pub(crate) fn forget(&self) -> std::io::Result<bool> {
        let mut found = false;
        let mut remove = |path: &Path| match std::fs::remove_file(path) {
            Ok(()) => {
                found = true;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        remove(&self.file)?;
        if let Some(shared) = &self.shared
            && check_token_dir(&shared.dir).is_ok()
        {
            remove(&shared.token)?;
            remove(&shared.exp)?;
        }
        Ok(found)
    }

    /// Takes the lock, creating the directory 0700 first. `None` (logged) when the
    /// directory or the lock cannot be had: the caller logs in without the cache.
    pub(crate) async fn lock(&self) -> Option<FileLock> {
        if let Err(e) = ensure_private_dir(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e,
                "cannot create the Rucio token cache directory; logging in without it");
            return None;
        }
        match FileLock::acquire_async(self.lock.clone()).await {
            Ok(lock) => Some(lock),
            Err(e) => {
                tracing::warn!(file = %self.lock.display(), error = %e,
                    "cannot lock the Rucio token cache; logging in without it");
                None
            }
        }
    }

    /// The cached token, if there is a readable one for this key. Call with the lock held.
    ///
    /// With a shared file, its token decides: none there (the user deleted it) means none;
    /// the token of this key's private file means [`Cached::Known`]; a token sciauth wrote
    /// for another key means none; any other is [`Cached::Foreign`]. A shared file that is
    /// not safe to use is skipped with a warning, and the private file alone answers.
    pub(crate) fn read(&self) -> Option<Cached> {
        let private = self.read_private();
        let Some(shared) = &self.shared else {
            return private.map(Cached::Known);
        };
        match shared.read_token() {
            Ok(None) => None,
            Err(why) => {
                tracing::warn!(file = %shared.token.display(), reason = %printable(&why, 300),
                    "not using the Rucio client's token file");
                private.map(Cached::Known)
            }
            Ok(Some(token)) => {
                if let Some(known) = private
                    && known.token.expose_secret() == token.expose_secret()
                {
                    return Some(Cached::Known(known));
                }
                if self.written_for_another_key(&token) {
                    tracing::info!(file = %shared.token.display(),
                        "the Rucio client's token file holds a token sciauth got for another \
                         login; logging in");
                    return None;
                }
                Some(Cached::Foreign(token))
            }
        }
    }

    /// Whether `token` is the one sciauth last wrote to the shared file for another key.
    fn written_for_another_key(&self, token: &SecretString) -> bool {
        let Some(owner) = &self.owner else {
            return false;
        };
        let Ok(Some(stem)) = read_owned_file(owner, 200) else {
            return false;
        };
        let stem = String::from_utf8_lossy(&stem).trim().to_owned();
        if stem == self.stem || stem.is_empty() || stem.contains('/') {
            return false;
        }
        let other = TokenCache::new(self.dir.clone(), self.key.clone());
        let other = TokenCache {
            file: self.dir.join(format!("{stem}.json")),
            ..other
        };
        other
            .read_file()
            .is_some_and(|file| file.token == *token.expose_secret())
    }

    fn read_private(&self) -> Option<SessionToken> {
        if let Err(e) = check_private_file(&self.file) {
            tracing::warn!(file = %self.file.display(), error = %e,
                "cannot check the Rucio token cache file's permissions; ignoring it");
            return None;
        }
        let parsed = self.read_file()?;
        if parsed.key != self.key {
            tracing::info!(file = %self.file.display(),
                "the Rucio token cache file is for another login; replacing it");
            return None;
        }
        let token = parsed.session_token();
        if token.is_none() {
            tracing::warn!(file = %self.file.display(),
                "the Rucio token cache file holds an unusable token; logging in again");
        }
        token
    }

    /// The private file, parsed, of this format version (whatever its key).
    fn read_file(&self) -> Option<CacheFile> {
        let bytes = match std::fs::read(&self.file) {
            Ok(bytes) => zeroize::Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(file = %self.file.display(), error = %e,
                    "cannot read the Rucio token cache file; logging in again");
                return None;
            }
        };
        let parsed: CacheFile = match serde_json::from_slice(&bytes) {
            Ok(parsed) => parsed,
            Err(e) => {
                // The serde message names a position, never the token.
                tracing::warn!(file = %self.file.display(), error = %e,
                    "the Rucio token cache file is corrupt; logging in again and replacing it");
                return None;
            }
        };
        if parsed.version != VERSION {
            tracing::info!(file = %self.file.display(), version = parsed.version,
                "the Rucio token cache file has another format version; replacing it");
            return None;
        }
        Some(parsed)
    }

    /// Writes `token` (atomically, 0600). Call with the lock held. A failure is logged:
    /// the token still serves this process.
    pub(crate) fn write(&self, token: &SessionToken) {
        let file = CacheFile::of(self.key.clone(), token);
        let bytes = match serde_json::to_vec_pretty(&file) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode the Rucio token cache file");
                return;
            }
        };
        if let Err(e) = write_atomic(&self.file, &bytes) {
            tracing::warn!(file = %self.file.display(), error = %e,
                "cannot write the Rucio token cache file; other processes will log in themselves");
        }
        if let Some(shared) = &self.shared {
            if let Err(e) = shared.write(token, self.shared_expiry) {
                tracing::warn!(file = %shared.token.display(), error = %e,
                    "cannot write the Rucio client's token file; it will log in itself");
                return;
            }
            if let Some(owner) = &self.owner
                && let Err(e) = write_atomic(owner, self.stem.as_bytes())
            {
                tracing::warn!(file = %owner.display(), error = %e,
                    "cannot record who wrote the Rucio client's token file");
            }
        }
    }
}

/// Where the cache lives unless configured: the user's runtime directory (a per-user
/// tmpfs, gone at logout, which suits tokens that live an hour), else the cache directory,
/// else a per-user directory under the temporary directory.
pub(crate) fn default_dir(env: &Environment) -> PathBuf {
    if let Some(dir) = env.get_path("XDG_RUNTIME_DIR") {
        return dir.join("sciauth/rucio");
    }
    if let Some(dir) = env.get_path("XDG_CACHE_HOME") {
        return dir.join("sciauth/rucio");
    }
    if let Some(home) = env.get_path("HOME") {
        return home.join(".cache/sciauth/rucio");
    }
    env.tmp_dir()
        .join(format!("sciauth-{}", env.user_id()))
        .join("rucio")
}

/// Where the cache lives when `rucio.cfg` says where the Python client keeps its token
/// (`auth_token_file_path`): a subdirectory of the user's own beside that file,
/// `sciauth-<uid>/rucio`. Never the token file's directory itself: that is often `/tmp`,
/// which must not be made private (as root, it would be). `None` for a bare file name.
pub(crate) fn dir_beside(token_file: &Path, env: &Environment) -> Option<PathBuf> {
    let dir = token_file.parent().filter(|d| !d.as_os_str().is_empty())?;
    Some(dir.join(format!("sciauth-{}", env.user_id())).join("rucio"))
}

/// Keeps letters, digits, `-`, `_` and `.`; anything else becomes `_`.
fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms (unlike `DefaultHasher`), so
/// every process and every build names a key's file alike. Not a security boundary: the key
/// is checked again inside the file.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Whether `token` is good for use at `now`: it expires more than `margin` later (a token
/// without a known expiry is used until the server rejects it).
pub(crate) fn usable(token: &SessionToken, now: SystemTime, margin: Duration) -> bool {
    token.expires_at.is_none_or(|at| later(now, margin) < at)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn key() -> CacheKey {
        CacheKey {
            auth_host: "https://auth.example.org/".into(),
            vo: "def".into(),
            account: "root".into(),
            auth_type: "userpass".into(),
            identity: "alice".into(),
        }
    }

    fn token(text: &str) -> SessionToken {
        SessionToken::new(
            SecretString::from(text.to_owned()),
            Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000)),
            Some("root".into()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn round_trip_is_private_and_keyed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path().join("c"), key());
        let lock = cache.lock().await.unwrap();
        assert!(cache.read().is_none());
        cache.write(&token("root-alice-unknown-123"));
        let Some(Cached::Known(read)) = cache.read() else {
            panic!("no known token")
        };
        assert_eq!(read.token.expose_secret(), "root-alice-unknown-123");
        assert_eq!(read.account.as_deref(), Some("root"));
        drop(lock);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(cache.file()), 0o600);
        assert_eq!(mode(&dir.path().join("c")), 0o700);
        let name = cache
            .file()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("root@def-userpass-"), "{name}");

        // Another key never reads this file, even if it had the same name.
        let other = TokenCache {
            key: CacheKey {
                identity: "bob".into(),
                ..key()
            },
            ..cache.clone()
        };
        assert!(other.read().is_none());
    }

    #[tokio::test]
    async fn corrupt_files_count_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path().to_owned(), key());
        let _lock = cache.lock().await.unwrap();
        for junk in [
            &b""[..],
            b"{",
            b"\xff\xfe",
            b"[]",
            br#"{"version":2,"token":"x"}"#,
            br#"{"version":1,"auth_host":"h","vo":"def","account":"root","auth_type":"userpass","identity":"alice","token":"bad\nvalue","expires_at":1}"#,
        ] {
            std::fs::write(cache.file(), junk).unwrap();
            assert!(cache.read().is_none());
        }
        // A file others could read is mended to 0600 before it is used.
        cache.write(&token("t"));
        std::fs::set_permissions(cache.file(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(cache.read().is_some());
        assert_eq!(
            std::fs::metadata(cache.file())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }

    #[test]
    fn default_dir_prefers_the_runtime_dir() {
        let env = Environment::empty()
            .var("HOME", "/home/u")
            .var("XDG_RUNTIME_DIR", "/run/user/7");
        assert_eq!(default_dir(&env), Path::new("/run/user/7/sciauth/rucio"));
        let env = env.without("XDG_RUNTIME_DIR");
        assert_eq!(default_dir(&env), Path::new("/home/u/.cache/sciauth/rucio"));
        let env = Environment::empty().uid(7).tmp("/t");
        assert_eq!(default_dir(&env), Path::new("/t/sciauth-7/rucio"));
    }

    #[tokio::test]
    async fn auth_token_file_path_in_tmp_keeps_tmp_shared() {
        // rucio.cfg's `auth_token_file_path = /tmp/rucio_token`, with a sticky 1777
        // directory standing in for /tmp (the test may run as root, which owns /tmp).
        let root = tempfile::tempdir().unwrap();
        let tmp = root.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let env = Environment::empty().uid(1234);
        let dir = dir_beside(&tmp.join("rucio_token"), &env).unwrap();
        assert_eq!(dir, tmp.join("sciauth-1234/rucio"));

        let cache = TokenCache::new(dir.clone(), key());
        let lock = cache.lock().await.unwrap();
        cache.write(&token("root-alice-unknown-123"));
        assert!(cache.read().is_some());
        drop(lock);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&tmp), 0o1777, "the shared directory was changed");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(cache.file()), 0o600);

        // The shared directory itself is never taken over: the cache is skipped instead.
        let in_tmp = TokenCache::new(tmp.clone(), key());
        assert!(in_tmp.lock().await.is_none());
        assert_eq!(mode(&tmp), 0o1777, "the shared directory was changed");
        assert_eq!(dir_beside(Path::new("rucio_token"), &env), None);
    }

    #[test]
    fn the_file_name_hash_is_stable() {
        // Other processes and other builds must name the same file.
        assert_eq!(fnv1a(&["a", "b"]), 0xab40_d782_0d40_8076);
    }
    #[test]
    fn the_shared_file_is_where_rucio_clients_41_keep_it() {
        let tmp = tempfile::tempdir().unwrap();
        let env = Environment::empty()
            .var("USER", "alice")
            .var("TMPDIR", tmp.path());
        let files = shared_files(None, &env, Some("root"), None).unwrap();
        let dir = tmp.path().join("alice/.rucio_alice");
        assert_eq!(files.dir, dir);
        assert_eq!(files.token, dir.join("auth_token_for_account_root"));
        assert_eq!(files.exp, dir.join("auth_token_exp_for_account_root"));
        // LOGNAME first, as getpass.getuser(); a VO other than def gets its own directory.
        let env = env.var("LOGNAME", "bob");
        let files = shared_files(None, &env, None, Some("atl")).unwrap();
        assert_eq!(
            files.token,
            tmp.path()
                .join("bob/.rucio_bob@atl/auth_token_for_default_account")
        );
        // auth_token_file_path serves every account.
        let setting = Path::new("/data/token");
        let files = shared_files(Some(setting), &env, Some("root"), None).unwrap();
        assert_eq!(files.token, setting);
        assert_eq!(
            files.exp,
            Path::new("/data/auth_token_exp_for_account_root")
        );
        // Nothing that would make a path of its own, and no guess without a user name.
        for account in ["../x", "a/b", "..", ""] {
            assert_eq!(
                shared_files(None, &env, Some(account), None),
                None,
                "{account}"
            );
        }
        assert_eq!(shared_files(None, &env, None, Some("../v")), None);
        assert_eq!(
            shared_files(None, &Environment::empty(), Some("root"), None),
            None
        );
    }

    #[test]
    fn shared_tokens_are_visible_ascii_on_one_line() {
        let token = |bytes: &[u8]| parse_shared_token(bytes).map(|t| t.expose_secret().to_owned());
        assert_eq!(
            token(b"root-rucio-unknown-1").unwrap(),
            "root-rucio-unknown-1"
        );
        assert_eq!(
            token(b"root-x-unknown-1\nrest").unwrap(),
            "root-x-unknown-1"
        );
        assert_eq!(token(b"root-x-unknown-1\r\n").unwrap(), "root-x-unknown-1");
        assert_eq!(
            token(b"root-CN=Rucio Test Client,O=SciAuth-unknown-1").unwrap(),
            "root-CN=Rucio Test Client,O=SciAuth-unknown-1"
        );
        for bad in [
            &b""[..],
            b"\n",
            b" root",
            b"root ",
            b"ro\x1bot",
            b"r\xc3\xa9",
            b"a\tb",
        ] {
            let error = token(bad).unwrap_err();
            assert!(!error.contains("ro"), "{error}");
        }
    }
}
