//! The file store (and the SQLite store) on their own: permissions, corrupt files, the
//! format on disk, secrets kept out of messages. No provider needed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use sciauth_tokens::{
    ErrorKind, FileStore, GrantKey, MemoryStore, StoreErrorKind, StoredGrant, TokenStore,
};
use secrecy::ExposeSecret as _;

use logs::logs;
use sciauth_test_support::logs;

const SECRET_AT: &str = "at-secret-0123456789";
const SECRET_RT: &str = "rt-secret-0123456789";

fn grant(account: &str) -> StoredGrant {
    serde_json::from_value(serde_json::json!({
        "version": 1,
        "issuer": "https://idp.example.test",
        "client_id": "native-app",
        "account": account,
        "refresh_token": SECRET_RT,
        "id_token": "id-secret-0123456789",
        "scopes": ["openid", "offline_access"],
        "updated_at": 1_700_000_000u64,
        "access_tokens": [{
            "access_token": SECRET_AT,
            "token_type": "Bearer",
            "issued_at": 1_700_000_000u64,
            "expires_at": 1_700_003_600u64,
            "scopes": ["openid"],
            "audience": "https://api.example.test",
        }],
    }))
    .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn files_are_0600_in_a_0700_directory_and_a_readable_file_is_repaired_with_a_warning() {
    let logs = logs();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/sciauth/tokens");
    let store = FileStore::open(&dir).unwrap();
    store.put(&grant("alice")).await.unwrap();
    let file = store.path_for("alice");
    assert_eq!(file, dir.join("alice.json"));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir.join("alice.lock")), 0o600);

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let read = store.get(grant("alice").key()).await.unwrap().unwrap();
    assert_eq!(read.refresh_token().unwrap().expose_secret(), SECRET_RT);
    assert_eq!(mode(&file), 0o600);
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logged.contains("WARN") && logged.contains("alice.json") && logged.contains("0600"),
        "{logged}"
    );

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    FileStore::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logged.contains("0700"), "{logged}");
    assert!(!logged.contains(SECRET_AT) && !logged.contains(SECRET_RT));
}

#[tokio::test]
async fn the_file_is_readable_versioned_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    store.put(&grant("alice")).await.unwrap();
    store.put(&grant("bob")).await.unwrap();
    let text = std::fs::read_to_string(store.path_for("alice")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["grants"][0]["account"], "alice");
    assert_eq!(
        json["grants"][0]["access_tokens"][0]["audience"],
        "https://api.example.test"
    );
    assert!(text.contains('\n'), "pretty-printed for people");

    assert_eq!(store.list().await.unwrap().len(), 2);
    assert!(store.delete(grant("bob").key()).await.unwrap());
    assert!(!store.path_for("bob").exists());
    assert!(!store.delete(grant("bob").key()).await.unwrap());
    // Odd account names stay inside the directory.
    let odd = grant("../../etc/passwd");
    store.put(&odd).await.unwrap();
    assert!(store.path_for("../../etc/passwd").starts_with(dir.path()));
    assert_eq!(
        store.get(odd.key()).await.unwrap().unwrap().key(),
        odd.key()
    );
}

#[tokio::test]
async fn a_corrupt_file_is_a_clear_error_naming_it_and_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let file = store.path_for("alice");
    let key = grant("alice").key().clone();

    for (content, says) in [
        (
            format!("{{\"version\": 1, \"grants\": [{{\"issuer\": \"{SECRET_AT}\""),
            "ends too early",
        ),
        ("not json".to_owned(), "not valid JSON"),
        (
            format!("{{\"version\": 1, \"grants\": [{{\"issued_at\": \"{SECRET_AT}\"}}]}}"),
            "not a token store file",
        ),
        (
            "{\"version\": 2, \"grants\": [{\"new\": true}]}".to_owned(),
            "newer sciauth",
        ),
    ] {
        std::fs::write(&file, &content).unwrap();
        let error = store.get(&key).await.unwrap_err();
        assert_eq!(
            error.kind(),
            &ErrorKind::Store(StoreErrorKind::Corrupt),
            "{error}"
        );
        assert_eq!(error.path(), Some(file.as_path()));
        let message = error.to_string();
        assert!(
            message.starts_with(&file.display().to_string()),
            "{message}"
        );
        assert!(message.contains(says), "{message}");
        assert!(!message.contains(SECRET_AT), "{message}");
        assert!(!format!("{error:?}").contains(SECRET_AT));

        let error = store.put(&grant("alice")).await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::Store(StoreErrorKind::Corrupt));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            content,
            "never overwritten"
        );
        assert!(store.list().await.is_err());
    }
}

#[tokio::test]
async fn stored_grants_never_show_their_secrets() {
    let grant = grant("alice");
    let debug = format!("{grant:?} {:?} {:?}", grant.access_tokens(), grant.info());
    for secret in [SECRET_AT, SECRET_RT, "id-secret-0123456789"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    let info = serde_json::to_string(&grant.info()).unwrap();
    assert!(
        !info.contains(SECRET_AT) && !info.contains(SECRET_RT),
        "{info}"
    );
    let store = MemoryStore::new();
    store.put(&grant).await.unwrap();
    assert!(!format!("{store:?}").contains(SECRET_AT));
    let key = GrantKey::new("https://idp.example.test", "native-app", "alice");
    let mut locked = store.lock(&key).await.unwrap();
    assert!(locked.get().await.unwrap().is_some());
    assert!(
        locked.put(&self::grant("bob")).await.is_err(),
        "another key"
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_sqlite_store_keeps_grants_in_a_private_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.sqlite");
    let store = sciauth_tokens::SqliteStore::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    store.put(&grant("alice")).await.unwrap();
    store.put(&grant("bob")).await.unwrap();
    let key = grant("alice").key().clone();
    let read = store.get(&key).await.unwrap().unwrap();
    assert_eq!(read.refresh_token().unwrap().expose_secret(), SECRET_RT);
    assert_eq!(store.list().await.unwrap().len(), 2);
    {
        let mut locked = store.lock(&key).await.unwrap();
        assert!(locked.delete().await.unwrap());
    }
    assert!(store.get(&key).await.unwrap().is_none());
    let journal: String = rusqlite_journal_mode(&path);
    assert_eq!(journal, "wal");
    // Another handle (as another process would) sees the same data.
    let again = sciauth_tokens::SqliteStore::open(&path).unwrap();
    assert_eq!(again.list().await.unwrap().len(), 1);
}

#[cfg(feature = "sqlite")]
fn rusqlite_journal_mode(path: &Path) -> String {
    let output = std::process::Command::new("sqlite3")
        .arg(path)
        .arg("PRAGMA journal_mode;")
        .output();
    match output {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        // Without the sqlite3 tool, read the header: WAL databases have 2 at bytes 18-19.
        _ => {
            let header = std::fs::read(path).unwrap();
            if header[18] == 2 && header[19] == 2 {
                "wal".into()
            } else {
                "other".into()
            }
        }
    }
}
