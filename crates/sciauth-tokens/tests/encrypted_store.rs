//! The encrypted file store on its own: the key file and its passphrase, the kernel keyring
//! cache, sealed files that were changed or swapped, hostile key files, plain and encrypted
//! files in the wrong store. No provider needed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use sciauth_tokens::{
    DEFAULT_KEY_CACHE_TIMEOUT, ErrorKind, FileStore, KEY_FILE, KeyParams, StoreErrorKind, StoreKey,
    StoredGrant, TokenStore,
};
use secrecy::{ExposeSecret as _, SecretString};

const PASSPHRASE: &str = "correct horse battery staple";
const SECRET_AT: &str = "at-secret-0123456789";
const SECRET_RT: &str = "rt-secret-0123456789";
const SECRET_ID: &str = "id-secret-0123456789";

fn grant(account: &str) -> StoredGrant {
    serde_json::from_value(serde_json::json!({
        "version": 1,
        "issuer": "https://idp.example.test",
        "client_id": "native-app",
        "account": account,
        "refresh_token": SECRET_RT,
        "id_token": SECRET_ID,
        "scopes": ["openid", "offline_access"],
        "updated_at": 1_700_000_000u64,
        "access_tokens": [{
            "access_token": SECRET_AT,
            "token_type": "Bearer",
            "issued_at": 1_700_000_000u64,
            "expires_at": 1_700_003_600u64,
            "scopes": ["openid"],
        }],
    }))
    .unwrap()
}

fn passphrase() -> SecretString {
    SecretString::from(PASSPHRASE)
}

fn cheap() -> KeyParams {
    KeyParams {
        memory_kib: 1024,
        passes: 1,
        lanes: 1,
    }
}

fn encrypted(dir: &Path) -> FileStore {
    let key = StoreKey::create(dir, &passphrase(), cheap()).unwrap();
    FileStore::open_encrypted(dir, key).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn store_kind(error: &sciauth_tokens::Error) -> StoreErrorKind {
    match error.kind() {
        ErrorKind::Store(kind) => *kind,
        other => panic!("not a store error: {other:?}: {error}"),
    }
}

#[tokio::test]
async fn files_on_disk_hold_no_token_and_are_private() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("tokens");
    let store = encrypted(&dir);
    store.put(&grant("alice")).await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    assert_eq!(mode(&store.path_for("alice")), 0o600);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&text);
        for secret in [
            SECRET_AT,
            SECRET_RT,
            SECRET_ID,
            PASSPHRASE,
            "idp.example.test",
        ] {
            assert!(!text.contains(secret), "{secret} on disk: {text}");
        }
    }
    let sealed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.path_for("alice")).unwrap()).unwrap();
    assert_eq!(sealed["sealed"], "AES-256-GCM");
    // Two writes of the same grant differ (a fresh nonce each time).
    let before = std::fs::read(store.path_for("alice")).unwrap();
    store.put(&grant("alice")).await.unwrap();
    assert_ne!(before, std::fs::read(store.path_for("alice")).unwrap());
    let read = store
        .get_now(grant("alice").key())
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(read.refresh_token().unwrap().expose_secret(), SECRET_RT);
}

#[tokio::test]
async fn a_wrong_passphrase_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    encrypted(dir.path()).put(&grant("alice")).await.unwrap();
    let error = StoreKey::unlock(dir.path(), &SecretString::from("wrong")).unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::WrongPassphrase);
    assert!(error.to_string().contains("wrong passphrase"), "{error}");
    assert_eq!(error.path(), Some(dir.path().join(KEY_FILE).as_path()));
    assert!(!format!("{error:?}").contains("wrong\""));
    // A key of another store does not open this one.
    let other = tempfile::tempdir().unwrap();
    let key = StoreKey::create(other.path(), &passphrase(), cheap()).unwrap();
    let error = FileStore::open_encrypted(dir.path(), key).unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::WrongPassphrase);
    // The right one does.
    let key = StoreKey::unlock(dir.path(), &passphrase()).unwrap();
    let store = FileStore::open_encrypted(dir.path(), key).unwrap();
    assert!(store.get(grant("alice").key()).await.unwrap().is_some());
    // A second create is refused rather than making another key.
    assert!(StoreKey::create(dir.path(), &passphrase(), cheap()).is_err());
    assert!(StoreKey::create(other.path(), &SecretString::from(""), cheap()).is_err());
}

#[tokio::test]
async fn a_changed_byte_is_a_typed_error_and_the_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = encrypted(dir.path());
    store.put(&grant("alice")).await.unwrap();
    let path = store.path_for("alice");
    let good = std::fs::read(&path).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let data_at = text.find("\"data\": \"").unwrap() + 12;
    for at in [data_at, data_at + 5, text.rfind('"').unwrap() - 3] {
        let mut bad = good.clone();
        // Another base64 letter: still base64, other bytes.
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        std::fs::write(&path, &bad).unwrap();
        let error = store.get(grant("alice").key()).await.unwrap_err();
        assert_eq!(store_kind(&error), StoreErrorKind::Tampered, "{error}");
        assert_eq!(error.path(), Some(path.as_path()));
        let error = store.put(&grant("alice")).await.unwrap_err();
        assert_eq!(store_kind(&error), StoreErrorKind::Tampered);
        assert!(store.get_now(grant("alice").key()).unwrap().is_err());
        assert!(store.list().await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), bad, "never overwritten");
    }
    for garbage in [&b"not json"[..], b"", b"{\"version\": 1}"] {
        std::fs::write(&path, garbage).unwrap();
        let error = store.get(grant("alice").key()).await.unwrap_err();
        assert_eq!(store_kind(&error), StoreErrorKind::Corrupt, "{error}");
    }
}

#[tokio::test]
async fn a_file_copied_over_another_accounts_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = encrypted(dir.path());
    store.put(&grant("alice")).await.unwrap();
    store.put(&grant("mallory")).await.unwrap();
    std::fs::copy(store.path_for("mallory"), store.path_for("alice")).unwrap();
    let error = store.get(grant("alice").key()).await.unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::Tampered);
    assert!(error.to_string().contains("another account"), "{error}");
}

#[tokio::test]
async fn plain_and_encrypted_files_in_the_wrong_store_say_what_to_run() {
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = FileStore::open(plain_dir.path()).unwrap();
    plain.put(&grant("alice")).await.unwrap();
    let key = StoreKey::create(plain_dir.path(), &passphrase(), cheap()).unwrap();
    let sealed = FileStore::open_encrypted(plain_dir.path(), key).unwrap();
    let error = sealed.get(grant("alice").key()).await.unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::EncryptionMismatch);
    assert!(
        error.to_string().contains("sciauth store encrypt"),
        "{error}"
    );

    let dir = tempfile::tempdir().unwrap();
    encrypted(dir.path()).put(&grant("alice")).await.unwrap();
    let plain = FileStore::open(dir.path()).unwrap();
    let error = plain.get(grant("alice").key()).await.unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::EncryptionMismatch);
    assert!(error.to_string().contains("encrypted = true"), "{error}");
    assert!(
        plain.put(&grant("alice")).await.is_err(),
        "never overwritten"
    );

    // An encrypted store needs its key file.
    let empty = tempfile::tempdir().unwrap();
    let error = StoreKey::unlock(empty.path(), &passphrase()).unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::EncryptionMismatch);
}

#[test]
fn a_hostile_key_file_is_refused_before_anything_is_derived() {
    let dir = tempfile::tempdir().unwrap();
    StoreKey::create(dir.path(), &passphrase(), cheap()).unwrap();
    let path = dir.path().join(KEY_FILE);
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut file = good.clone();
        file[field] = value;
        serde_json::to_vec(&file).unwrap()
    };
    let hostile: Vec<(Vec<u8>, &str)> = vec![
        (with("memory_kib", (2u64 << 20).into()), "memory_kib"),
        (with("memory_kib", (4u64 << 30).into()), "not a key file"),
        (with("memory_kib", u32::MAX.into()), "memory_kib"),
        (with("passes", 1_000_000.into()), "passes"),
        (with("lanes", 64.into()), "lanes"),
        (with("lanes", 0.into()), "lanes"),
        (with("salt", "".into()), "salt"),
        (with("check", "AAAA".into()), "check"),
        (with("version", 2.into()), "newer"),
        (with("kdf", "scrypt".into()), "newer"),
        (b"garbage".to_vec(), "not a key file"),
        (vec![b' '; 10 << 20], "too long"),
    ];
    for (contents, says) in hostile {
        std::fs::write(&path, &contents).unwrap();
        let error = StoreKey::unlock(dir.path(), &passphrase()).unwrap_err();
        assert_eq!(store_kind(&error), StoreErrorKind::Corrupt, "{error}");
        assert!(error.to_string().contains(says), "{says}: {error}");
        assert_eq!(std::fs::read(&path).unwrap(), contents, "left as it is");
    }
}

#[test]
fn the_key_never_shows_itself_or_the_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let key = StoreKey::create(dir.path(), &passphrase(), cheap()).unwrap();
    let store = FileStore::open_encrypted(dir.path(), key.clone()).unwrap();
    let shown = format!("{key:?} {store:?}");
    assert!(shown.contains("redacted"), "{shown}");
    assert!(!shown.contains(PASSPHRASE), "{shown}");
    let error = StoreKey::unlock(dir.path(), &SecretString::from("hunter2-wrong")).unwrap_err();
    assert!(!format!("{error} {error:?}").contains("hunter2"));
}

#[tokio::test]
async fn the_kernel_keyring_keeps_the_key_until_it_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let key = StoreKey::create(dir.path(), &passphrase(), cheap()).unwrap();
    assert!(StoreKey::from_keyring(dir.path()).is_none());
    key.remember(dir.path(), DEFAULT_KEY_CACHE_TIMEOUT).unwrap();
    let cached = StoreKey::from_keyring(dir.path()).expect("the key is cached");
    let store = FileStore::open_encrypted(dir.path(), cached).unwrap();
    store.put(&grant("alice")).await.unwrap();
    // Another store's key is another entry.
    let other = tempfile::tempdir().unwrap();
    assert!(StoreKey::from_keyring(other.path()).is_none());
    assert!(StoreKey::forget(dir.path()).unwrap());
    assert!(StoreKey::from_keyring(dir.path()).is_none());
    assert!(!StoreKey::forget(dir.path()).unwrap());
}

#[tokio::test]
async fn files_are_encrypted_and_decrypted_in_place_and_a_second_run_completes_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let plain = FileStore::open(dir.path()).unwrap();
    plain.put(&grant("alice")).await.unwrap();
    plain.put(&grant("bob")).await.unwrap();
    let bob_plain = std::fs::read(plain.path_for("bob")).unwrap();

    let key = StoreKey::create(dir.path(), &passphrase(), cheap()).unwrap();
    let sealed = FileStore::open_encrypted(dir.path(), key).unwrap();
    assert_eq!(sealed.encrypt_files().unwrap(), 2);
    assert_eq!(sealed.encrypt_files().unwrap(), 0, "nothing left to do");
    assert_eq!(sealed.list().await.unwrap().len(), 2);
    assert!(plain.list().await.is_err());
    // A run interrupted after alice: bob is still plain; the next run seals bob only.
    std::fs::write(plain.path_for("bob"), &bob_plain).unwrap();
    assert_eq!(sealed.encrypt_files().unwrap(), 1);
    for account in ["alice", "bob"] {
        let text = std::fs::read_to_string(sealed.path_for(account)).unwrap();
        assert!(!text.contains(SECRET_RT), "{text}");
    }

    assert_eq!(sealed.decrypt_files().unwrap(), 2);
    assert!(!dir.path().join(KEY_FILE).exists());
    let grants = plain.list().await.unwrap();
    assert_eq!(grants.len(), 2);
    assert_eq!(
        grants[0].refresh_token().unwrap().expose_secret(),
        SECRET_RT
    );
    // Converting needs the key.
    assert!(plain.encrypt_files().is_err());
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_rows_are_sealed_bound_to_their_key_and_checked() {
    use sciauth_tokens::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.sqlite");
    let key = StoreKey::create(&SqliteStore::key_dir(&path), &passphrase(), cheap()).unwrap();
    let store = SqliteStore::open_encrypted(&path, key).unwrap();
    store.put(&grant("alice")).await.unwrap();
    store.put(&grant("mallory")).await.unwrap();
    assert!(format!("{store:?}").contains("encrypted: true"));
    drop(store);
    let db = rusqlite::Connection::open(&path).unwrap();
    let sealed: String = db
        .query_row(
            "SELECT grant_json FROM grants WHERE account = 'alice'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        sealed.contains("AES-256-GCM") && !sealed.contains(SECRET_RT),
        "{sealed}"
    );
    // Everything the file holds: no token (the WAL included).
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains(SECRET_RT));
        }
    }

    // A wrong key, a plain reader, a row copied over another's, a changed row.
    let other = tempfile::tempdir().unwrap();
    let wrong = StoreKey::create(other.path(), &passphrase(), cheap()).unwrap();
    let error = SqliteStore::open_encrypted(&path, wrong).unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::WrongPassphrase);
    let plain = SqliteStore::open(&path).unwrap();
    let error = plain.get(grant("alice").key()).await.unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::EncryptionMismatch);
    db.execute(
        "UPDATE grants SET grant_json = (SELECT grant_json FROM grants WHERE account = \
         'mallory') WHERE account = 'alice'",
        [],
    )
    .unwrap();
    let key = StoreKey::unlock(&SqliteStore::key_dir(&path), &passphrase()).unwrap();
    let store = SqliteStore::open_encrypted(&path, key).unwrap();
    let error = store.get(grant("alice").key()).await.unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::Tampered, "{error}");
    let flipped = sealed.replacen("\"data\": \"", "\"data\": \"A", 1);
    db.execute(
        "UPDATE grants SET grant_json = ?1 WHERE account = 'alice'",
        [&flipped],
    )
    .unwrap();
    let error = store.get(grant("alice").key()).await.unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::Tampered, "{error}");
    assert!(store.list().await.is_err());
    // A plain row in the encrypted store.
    plain_row(&db);
    let error = store.get(grant("plain").key()).await.unwrap_err();
    assert_eq!(store_kind(&error), StoreErrorKind::EncryptionMismatch);
}

#[cfg(feature = "sqlite")]
fn plain_row(db: &rusqlite::Connection) {
    let json = serde_json::to_string(&grant("plain")).unwrap();
    db.execute(
        "INSERT INTO grants (issuer, client_id, account, grant_json, updated_at) \
         VALUES ('https://idp.example.test', 'native-app', 'plain', ?1, 0)",
        [&json],
    )
    .unwrap();
}
