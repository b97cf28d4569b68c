//! Tokens encrypted at rest: the [`StoreKey`] of an encrypted [`FileStore`](crate::FileStore),
//! its key file (`store.key`: argon2id parameters, salt and a key check value), its cache in
//! the Linux kernel keyring, and the sealed form of an account file (AES-256-GCM from
//! aws-lc-rs, a random nonce per write, the file's name as associated data).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result, StoreErrorKind};
use sciauth_credentials::fs::{check_private_file, ensure_private_dir, read_limited, write_atomic};

/// The name of the key file in an encrypted store's directory.
pub const KEY_FILE: &str = "store.key";

/// How long the kernel keyring keeps an unlocked key by default: 15 minutes.
pub const DEFAULT_KEY_CACHE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

const KEY_LEN: usize = 32;
const KEY_FILE_VERSION: u32 = 1;
const SEALED_VERSION: u32 = 1;
const SEALED_ALGORITHM: &str = "AES-256-GCM";
/// A key file is a few hundred bytes; anything past this is not one.
const MAX_KEY_FILE: u64 = 4096;
/// What a key file may ask argon2id for: a hostile file cannot make an unlock take minutes
/// or all memory.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_PASSES: u32 = 16;
const MAX_LANES: u32 = 8;
const SALT_LEN: usize = 16;
const CHECK_LABEL: &[u8] = b"sciauth store key check v1";

/// The argon2id cost of deriving a store key, written into the key file when a store's key
/// is created and read back from it on every unlock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyParams {
    /// Memory in KiB; by default 65536 (64 MiB), at most 1 GiB.
    pub memory_kib: u32,
    /// Passes over the memory; by default 3, at most 16.
    pub passes: u32,
    /// Lanes (parallelism); by default 1, at most 8.
    pub lanes: u32,
}

impl Default for KeyParams {
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 1,
        }
    }
}

impl KeyParams {
    /// Why these parameters are refused, if they are.
    fn problem(&self) -> Option<String> {
        if !(1..=MAX_LANES).contains(&self.lanes) {
            return Some(format!(
                "lanes must be 1 to {MAX_LANES}, not {}",
                self.lanes
            ));
        }
        if !(1..=MAX_PASSES).contains(&self.passes) {
            return Some(format!(
                "passes must be 1 to {MAX_PASSES}, not {}",
                self.passes
            ));
        }
        let least = 8 * self.lanes;
        if !(least..=MAX_MEMORY_KIB).contains(&self.memory_kib) {
            return Some(format!(
                "memory_kib must be {least} to {MAX_MEMORY_KIB}, not {}",
                self.memory_kib
            ));
        }
        None
    }
}

/// The key of an encrypted token store: 256 bits derived from a passphrase with argon2id.
///
/// Derive it once with [`unlock`](Self::unlock) (or [`create`](Self::create) for a new
/// store), [`remember`](Self::remember) it in the kernel keyring for the session, and later
/// processes take it from there with [`from_keyring`](Self::from_keyring) without paying
/// argon2 again; [`forget`](Self::forget) drops it (`sciauth lock`). The bytes are wiped
/// when dropped and never shown by `Debug`.
#[derive(Clone)]
pub struct StoreKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey([redacted])")
    }
}

/// `store.key`: how the key is derived, and a value that tells the right key from a wrong one
/// without revealing it (HMAC-SHA256 of a fixed label under the key).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    kdf: String,
    memory_kib: u32,
    passes: u32,
    lanes: u32,
    salt: String,
    check: String,
}

impl StoreKey {
    /// Creates the key file of a new encrypted store in `dir` (with a fresh random salt and
    /// `params`) and returns the key `passphrase` derives. Fails if the store already has a
    /// key file: [`unlock`](Self::unlock) that one.
    pub fn create(dir: &Path, passphrase: &SecretString, params: KeyParams) -> Result<Self> {
        if passphrase.expose_secret().is_empty() {
            return Err(Error::invalid_input(
                "the passphrase of an encrypted token store cannot be empty",
            ));
        }
        if let Some(problem) = params.problem() {
            return Err(Error::invalid_input(format!(
                "argon2id parameters out of range: {problem}"
            )));
        }
        ensure_private_dir(dir).map_err(|e| io_error(dir, "cannot create the directory of", e))?;
        let path = key_file_path(dir);
        if path.exists() {
            return Err(Error::store(
                StoreErrorKind::Io,
                "the token store already has a key file; unlock it with its passphrase",
            )
            .with_path(&path));
        }
        let mut salt = [0u8; SALT_LEN];
        random(&mut salt)?;
        let key = derive(passphrase, &salt, params)?;
        let file = KeyFile {
            version: KEY_FILE_VERSION,
            kdf: "argon2id".to_owned(),
            memory_kib: params.memory_kib,
            passes: params.passes,
            lanes: params.lanes,
            salt: STANDARD.encode(salt),
            check: STANDARD.encode(key.check_value()),
        };
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| {
            Error::store(
                StoreErrorKind::Io,
                format!("cannot serialize the key file: {e}"),
            )
        })?;
        text.push(b'\n');
        write_atomic(&path, &text).map_err(|e| io_error(&path, "cannot write", e))?;
        Ok(key)
    }

    /// The key `passphrase` derives with the parameters of `dir`'s key file; a passphrase
    /// that does not match is [`StoreErrorKind::WrongPassphrase`]. A key file with
    /// parameters past the limits (1 GiB, 16 passes, 8 lanes) or that is not one is
    /// [`StoreErrorKind::Corrupt`], refused before anything is derived.
    pub fn unlock(dir: &Path, passphrase: &SecretString) -> Result<Self> {
        let (file, path) = read_key_file(dir)?;
        let key = derive(passphrase, &file.salt, file.params)?;
        if !key.matches(&file.check) {
            return Err(Error::store(
                StoreErrorKind::WrongPassphrase,
                "wrong passphrase for the encrypted token store",
            )
            .with_path(&path));
        }
        Ok(key)
    }

    /// Whether `dir` holds a key file (the store is, or is being made, encrypted).
    pub fn exists(dir: &Path) -> bool {
        key_file_path(dir).exists()
    }

    /// Fails unless this is the key of `dir`'s key file (a key cached for a store whose key
    /// was made again is [`StoreErrorKind::WrongPassphrase`]).
    pub fn check(&self, dir: &Path) -> Result<()> {
        let (file, path) = read_key_file(dir)?;
        if self.matches(&file.check) {
            Ok(())
        } else {
            Err(Error::store(
                StoreErrorKind::WrongPassphrase,
                "this key does not open the encrypted token store (its key file changed); \
                 unlock it again with its passphrase",
            )
            .with_path(&path))
        }
    }

    /// Keeps the key in the session's kernel keyring for `timeout` (see
    /// [`DEFAULT_KEY_CACHE_TIMEOUT`]), under a description naming `dir`, so that other
    /// processes of this session find it with [`from_keyring`](Self::from_keyring).
    /// Elsewhere than on Linux there is no kernel keyring: nothing is kept, and each
    /// process unlocks the store itself.
    pub fn remember(&self, dir: &Path, timeout: Duration) -> Result<()> {
        keyring::remember(&keyring_description(dir), &self.bytes[..], timeout)
    }

    /// The key of `dir` from the kernel keyring, if this session unlocked it and it has not
    /// timed out; `None` otherwise (also when the kernel has no keyring for us).
    pub fn from_keyring(dir: &Path) -> Option<Self> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        keyring::read(&keyring_description(dir), &mut bytes[..]).then_some(Self { bytes })
    }

    /// Drops the key of `dir` from the kernel keyring; `true` if it was there.
    pub fn forget(dir: &Path) -> Result<bool> {
        keyring::forget(&keyring_description(dir))
    }

    fn check_value(&self) -> hmac::Tag {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.bytes[..]);
        hmac::sign(&key, CHECK_LABEL)
    }

    fn matches(&self, check: &[u8]) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.bytes[..]);
        hmac::verify(&key, CHECK_LABEL, check).is_ok()
    }

    fn aead(&self) -> Result<LessSafeKey> {
        let key = UnboundKey::new(&AES_256_GCM, &self.bytes[..])
            .map_err(|_| Error::store(StoreErrorKind::Io, "cannot set up AES-256-GCM"))?;
        Ok(LessSafeKey::new(key))
    }
}

struct ParsedKeyFile {
    params: KeyParams,
    salt: Vec<u8>,
    check: Vec<u8>,
}

fn key_file_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// Reads and checks `dir`'s key file, with a size cap and the parameters' limits.
fn read_key_file(dir: &Path) -> Result<(ParsedKeyFile, PathBuf)> {
    let path = key_file_path(dir);
    check_private_file(&path).map_err(|e| io_error(&path, "cannot check the permissions of", e))?;
    let bytes = match read_limited(&path, MAX_KEY_FILE) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::store(
                StoreErrorKind::EncryptionMismatch,
                "the token store has no key file, so it is not encrypted; encrypt it with \
                 `sciauth store encrypt`",
            )
            .with_path(&path));
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(bad_key_file(&path, "it is far too long"));
        }
        Err(e) => return Err(io_error(&path, "cannot read", e)),
    };
    let file: KeyFile = serde_json::from_slice(&bytes)
        .map_err(|e| bad_key_file(&path, &format!("not a key file, at line {}", e.line())))?;
    if file.version != KEY_FILE_VERSION || file.kdf != "argon2id" {
        return Err(bad_key_file(
            &path,
            "an unknown version or key derivation; it was probably written by a newer sciauth",
        ));
    }
    let params = KeyParams {
        memory_kib: file.memory_kib,
        passes: file.passes,
        lanes: file.lanes,
    };
    if let Some(problem) = params.problem() {
        return Err(bad_key_file(
            &path,
            &format!("its argon2id parameters are refused: {problem}"),
        ));
    }
    let salt = STANDARD
        .decode(&file.salt)
        .ok()
        .filter(|s| (SALT_LEN..=64).contains(&s.len()))
        .ok_or_else(|| bad_key_file(&path, "its salt is not 16 to 64 bytes of base64"))?;
    let check = STANDARD
        .decode(&file.check)
        .ok()
        .filter(|c| c.len() == 32)
        .ok_or_else(|| bad_key_file(&path, "its check value is not 32 bytes of base64"))?;
    Ok((
        ParsedKeyFile {
            params,
            salt,
            check,
        },
        path,
    ))
}

fn derive(passphrase: &SecretString, salt: &[u8], params: KeyParams) -> Result<StoreKey> {
    let argon = argon2::Params::new(
        params.memory_kib,
        params.passes,
        params.lanes,
        Some(KEY_LEN),
    )
    .map_err(|e| Error::invalid_input(format!("argon2id parameters refused: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon);
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, &mut *bytes)
        .map_err(|e| Error::store(StoreErrorKind::Io, format!("argon2id failed: {e}")))?;
    Ok(StoreKey { bytes })
}

/// Random bytes from the kernel (getrandom(2)), not aws-lc's generator: that one seeds itself
/// from CPU jitter on its first use in a process, which costs a `sciauth token` that refreshes
/// tens of milliseconds (measured: 55 ms on the bench VM).
fn random(out: &mut [u8]) -> Result<()> {
    getrandom::fill(out)
        .map_err(|_| Error::store(StoreErrorKind::Io, "the system's random generator failed"))
}

/// The session's kernel keyring (keyutils), where the key waits between processes.
#[cfg(target_os = "linux")]
mod keyring {
    use std::time::Duration;

    use linux_keyutils::{KeyError, KeyRing, KeyRingIdentifier};

    use crate::error::{Error, Result, StoreErrorKind};

    pub(super) fn remember(description: &str, secret: &[u8], timeout: Duration) -> Result<()> {
        let key = session()?.add_key(description, secret).map_err(refused)?;
        let seconds = usize::try_from(timeout.as_secs().max(1)).unwrap_or(usize::MAX);
        key.set_timeout(seconds).map_err(refused)
    }

    /// Fills `out` with the key named `description`; `false` if there is none of that size.
    pub(super) fn read(description: &str, out: &mut [u8]) -> bool {
        let Ok(ring) = session() else { return false };
        let Ok(key) = ring.search(description) else {
            return false;
        };
        let len = out.len();
        let mut buffer = out;
        key.read(&mut buffer).is_ok_and(|n| n == len)
    }

    pub(super) fn forget(description: &str) -> Result<bool> {
        match session()?.search(description) {
            Ok(key) => {
                key.invalidate().map_err(refused)?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    fn session() -> Result<KeyRing> {
        KeyRing::from_special_id(KeyRingIdentifier::Session, false).map_err(refused)
    }

    fn refused(e: KeyError) -> Error {
        Error::store(
            StoreErrorKind::Backend,
            format!("the kernel keyring refused: {e:?}"),
        )
    }
}

/// No kernel keyring: nothing is kept between processes.
#[cfg(not(target_os = "linux"))]
mod keyring {
    use std::time::Duration;

    use crate::error::Result;

    pub(super) fn remember(_: &str, _: &[u8], _: Duration) -> Result<()> {
        Ok(())
    }

    pub(super) fn read(_: &str, _: &mut [u8]) -> bool {
        false
    }

    pub(super) fn forget(_: &str) -> Result<bool> {
        Ok(false)
    }
}

/// `sciauth:store:<hex>`, the first 16 bytes of SHA-256 of the store's absolute path.
fn keyring_description(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let hash = digest::digest(&digest::SHA256, dir.as_os_str().as_encoded_bytes());
    let mut text = String::from("sciauth:store:");
    for byte in &hash.as_ref()[..16] {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn io_error(path: &Path, what: &str, error: io::Error) -> Error {
    Error::store(StoreErrorKind::Io, format!("{what} the key file: {error}"))
        .with_path(path)
        .with_source(error)
}

fn bad_key_file(path: &Path, why: &str) -> Error {
    Error::store(
        StoreErrorKind::Corrupt,
        format!("the token store's key file is refused ({why}); it was left as it is"),
    )
    .with_path(path)
}

/// An account file as an encrypted store writes it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedFile {
    version: u32,
    sealed: String,
    nonce: String,
    data: String,
}

/// What reading an account file through a key found.
pub(crate) enum Opened {
    /// The plain contents.
    Plain(Zeroizing<Vec<u8>>),
    /// The file is not sealed (a plain account file, or not one at all).
    NotSealed,
    /// It is sealed but does not open: changed, moved from another account, another key.
    Tampered,
}

/// The associated data of the file named `name`: a file moved to another name does not open.
fn aad(name: &str) -> Vec<u8> {
    format!("sciauth token store v{SEALED_VERSION} {name}").into_bytes()
}

/// `plain` sealed for the file named `name`, as the bytes to write.
pub(crate) fn seal(key: &StoreKey, name: &str, plain: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    let mut data = plain.to_vec();
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(name)),
            &mut data,
        )
        .map_err(|_| Error::store(StoreErrorKind::Io, "AES-256-GCM sealing failed"))?;
    let file = SealedFile {
        version: SEALED_VERSION,
        sealed: SEALED_ALGORITHM.to_owned(),
        nonce: STANDARD.encode(nonce),
        data: STANDARD.encode(&data),
    };
    let mut text = serde_json::to_vec_pretty(&file).map_err(|e| {
        Error::store(
            StoreErrorKind::Io,
            format!("cannot serialize a sealed file: {e}"),
        )
    })?;
    text.push(b'\n');
    Ok(text)
}

/// Whether `bytes` look like a sealed account file (to say so when a plain store meets one).
pub(crate) fn is_sealed(bytes: &[u8]) -> bool {
    serde_json::from_slice::<SealedFile>(bytes).is_ok()
}

/// Opens the sealed account file `bytes`, named `name`.
pub(crate) fn open(key: &StoreKey, name: &str, bytes: &[u8]) -> Result<Opened> {
    let Ok(file) = serde_json::from_slice::<SealedFile>(bytes) else {
        return Ok(Opened::NotSealed);
    };
    if file.version != SEALED_VERSION || file.sealed != SEALED_ALGORITHM {
        return Ok(Opened::Tampered);
    }
    let (Ok(nonce), Ok(data)) = (STANDARD.decode(&file.nonce), STANDARD.decode(&file.data)) else {
        return Ok(Opened::Tampered);
    };
    let Ok(nonce) = Nonce::try_assume_unique_for_key(&nonce) else {
        return Ok(Opened::Tampered);
    };
    let mut data = Zeroizing::new(data);
    let Ok(plain) = key
        .aead()?
        .open_in_place(nonce, Aad::from(aad(name)), &mut data)
    else {
        return Ok(Opened::Tampered);
    };
    let len = plain.len();
    data.truncate(len);
    Ok(Opened::Plain(data))
}
