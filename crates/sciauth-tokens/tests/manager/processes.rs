//! Several OS processes on one file store. The children are this test binary run again
//! with `SCIAUTH_TEST_CHILD` set, which makes [`child_process`] do a child's work (and
//! nothing when the variable is unset, as in a normal run).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sciauth_tokens::sciauth_credentials::ManualClock;
use sciauth_tokens::{
    FileStore, GrantKey, KeyParams, StoreKey, StoredGrant, TokenRequest, TokenStore as _,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::idp::Idp;
use crate::{AT_TTL, login, manager_on, native_app, refreshes};

const CHILD: &str = "SCIAUTH_TEST_CHILD";
/// Set (to the passphrase) when the children open an encrypted store.
const PASSPHRASE: &str = "SCIAUTH_TEST_PASSPHRASE";

/// The store in `dir`: encrypted (a new key on first use, with cheap argon2id parameters)
/// when `passphrase` is given.
fn open_store(dir: &Path, passphrase: Option<&str>) -> FileStore {
    let Some(passphrase) = passphrase else {
        return FileStore::open(dir).unwrap();
    };
    let passphrase = SecretString::from(passphrase);
    let key = if StoreKey::exists(dir) {
        StoreKey::unlock(dir, &passphrase).unwrap()
    } else {
        let cheap = KeyParams {
            memory_kib: 1024,
            passes: 1,
            lanes: 1,
        };
        StoreKey::create(dir, &passphrase, cheap).unwrap()
    };
    FileStore::open_encrypted(dir, key).unwrap()
}

/// The child's store, as the parent made it.
fn child_store(dir: &str) -> FileStore {
    open_store(Path::new(dir), std::env::var(PASSPHRASE).ok().as_deref())
}

/// Runs this test binary as a child doing `mode`, with `env`.
fn spawn_child(mode: &str, env: &[(&str, String)]) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "processes::child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    match mode.as_str() {
        "refresh" => {
            // The parent's clock: far enough ahead that the stored access token has expired.
            let clock = Arc::new(ManualClock::starting_now());
            clock.advance(Duration::from_secs(var("CLOCK_AHEAD").parse().unwrap()));
            let store_dir = var("STORE");
            let manager = manager_on(&var("ISSUER"), child_store(&store_dir), clock).await;
            // Start together, to contend.
            let go = Path::new(&store_dir).join("go");
            for _ in 0..3000 {
                if go.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let token = manager.get(&TokenRequest::new("alice")).await.unwrap();
            // On a line of its own: libtest has already written "test ... " without a newline.
            println!("\nTOKEN={}", token.access_token().expose_secret());
        }
        "writer" => {
            let store = child_store(&var("STORE"));
            let start: u64 = var("START").parse().unwrap();
            for n in start..start + 200 {
                store.put(&numbered_grant(n)).await.unwrap();
            }
            println!("DONE");
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_on_one_file_store_cause_one_refresh_with_rotation() {
    one_refresh_among_eight_processes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_on_one_encrypted_store_cause_one_refresh_with_rotation() {
    one_refresh_among_eight_processes(Some("eight processes, one key")).await;
}

async fn one_refresh_among_eight_processes(passphrase: Option<&str>) {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let store = open_store(dir.path(), passphrase);
    let parent = manager_on(idp.issuer(), store, clock.clone()).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    let first = login(&parent, &request, &[]).await;
    idp.reset_counts().await;

    let ahead = (AT_TTL + Duration::from_secs(5)).as_secs().to_string();
    let mut env = vec![
        ("ISSUER", idp.issuer().to_owned()),
        ("STORE", dir.path().display().to_string()),
        ("CLOCK_AHEAD", ahead),
    ];
    env.extend(passphrase.map(|p| (PASSPHRASE, p.to_owned())));
    let children: Vec<_> = (0..8).map(|_| spawn_child("refresh", &env)).collect();
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut tokens = Vec::new();
    for output in &outputs {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "a child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let token = stdout
            .lines()
            .find_map(|line| line.split_once("TOKEN=").map(|(_, token)| token.trim()))
            .expect("the child printed its token")
            .to_owned();
        tokens.push(token);
    }

    assert_eq!(refreshes(&idp).await, 1, "{}", idp.counts().await);
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    assert_ne!(tokens[0], first.access_token().expose_secret());
    // The token every child got is the stored one, and the provider says it is valid.
    clock.advance(AT_TTL + Duration::from_secs(5));
    let stored = parent.get(&request).await.unwrap();
    assert_eq!(stored.access_token().expose_secret(), tokens[0]);
    let issuer = crate::issuer(idp.issuer(), clock).await;
    assert!(crate::active(&native_app(&issuer), &stored).await);
    assert_eq!(refreshes(&idp).await, 1);
}

/// A grant whose access and refresh tokens both carry `n`, so that a torn write would show.
fn numbered_grant(n: u64) -> StoredGrant {
    serde_json::from_value(serde_json::json!({
        "version": 1,
        "issuer": "https://idp.example.test",
        "client_id": "native-app",
        "account": "writer",
        "refresh_token": format!("rt-{n}"),
        "scopes": ["openid", "offline_access"],
        "updated_at": 1_700_000_000u64 + n,
        "access_tokens": [{
            "access_token": format!("at-{n}"),
            "token_type": "Bearer",
            "issued_at": 1_700_000_000u64 + n,
            "expires_at": 1_700_003_600u64 + n,
            "scopes": ["openid"],
        }],
    }))
    .unwrap()
}

/// The `n` of a numbered grant, checking that its tokens agree.
fn number_of(grant: &StoredGrant) -> u64 {
    let rt = grant.refresh_token().unwrap().expose_secret();
    let at = grant.access_tokens()[0].access_token().expose_secret();
    let n: u64 = rt.strip_prefix("rt-").unwrap().parse().unwrap();
    assert_eq!(at, format!("at-{n}"), "the file mixes two writes");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_write_leaves_the_old_or_the_new_file() {
    killed_writers(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_write_leaves_the_old_or_the_new_encrypted_file() {
    killed_writers(Some("killed mid-write")).await;
}

async fn killed_writers(passphrase: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), passphrase);
    let key = GrantKey::new("https://idp.example.test", "native-app", "writer");
    store.put(&numbered_grant(0)).await.unwrap();
    let mut last = 0;
    let mut interrupted = 0;
    for round in 1..=20u64 {
        let start = round * 1000;
        let mut env = vec![
            ("STORE", dir.path().display().to_string()),
            ("START", start.to_string()),
        ];
        env.extend(passphrase.map(|p| (PASSPHRASE, p.to_owned())));
        let mut child = spawn_child("writer", &env);
        // Kill it once it is writing: after its first write of this round shows, plus a
        // little more (a different amount each round).
        for _ in 0..6000 {
            let n = number_of(&store.get(&key).await.unwrap().unwrap());
            if n >= start {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..40))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let grant = store
            .get(&key)
            .await
            .expect("the file always parses")
            .expect("the file is never lost");
        let n = number_of(&grant);
        assert!(n >= last, "round {round}: went back from {last} to {n}");
        assert!(n < start + 200, "round {round}: {n} was never written");
        last = n;
        if n < start + 199 {
            interrupted += 1;
        }
        // The next writer reads and rewrites the same file under its lock.
        assert!(
            store.list().await.unwrap().len() == 1,
            "leftover temporary files are not grants"
        );
    }
    assert!(interrupted > 0, "no writer was killed before it finished");
}
