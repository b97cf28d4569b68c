//! The `sciauth` binary on an encrypted token store, against the real identity provider
//! (`tests/idp`, oidc-provider): a device login into the store, `sciauth token` answered
//! with the key the kernel keyring cached, `sciauth lock`, a wrong passphrase, and `sciauth
//! store encrypt` / `decrypt`.

use sciauth_test_support::idp;
mod support;

use crate::idp::Idp;
use crate::support::{Home, assert_quiet_trace, stderr};

const PASSPHRASE_VAR: &str = "TEST_STORE_PASSPHRASE";
const PASSPHRASE: &str = "a long and secret store passphrase";

/// A profile `demo` for the confidential client `code-secret`, its store encrypted or not.
fn configure(home: &Home, idp: &Idp, encrypted: bool) {
    let secret = home.path("config/sciauth/demo.secret");
    std::fs::write(&secret, "code-secret-secret\n").unwrap();
    home.config(&format!(
        r#"
default_profile = "demo"

[profiles.demo]
issuer = "{}"
client_id = "code-secret"
client_secret_file = "demo.secret"
scopes = ["openid", "offline_access", "api:read"]
audience = "https://api.example.test"
audience_parameter = "resource"
encrypted = {encrypted}
passphrase_env = "{PASSPHRASE_VAR}"
"#,
        idp.issuer()
    ));
}

/// `sciauth login --device` with the passphrase in its variable, approved at the provider.
async fn device_login(home: &Home, idp: &Idp) {
    let mut command = home.command(&["login", "--device"]);
    command.env(PASSPHRASE_VAR, PASSPHRASE);
    support::device_login(command, idp.issuer()).await;
}

/// `sciauth token` with `passphrase` in the profile's variable (none: unset).
async fn token(home: &Home, passphrase: Option<&str>) -> std::process::Output {
    let mut command = home.command(&["token"]);
    if let Some(passphrase) = passphrase {
        command.env(PASSPHRASE_VAR, passphrase);
    }
    command.output().await.unwrap()
}

async fn refreshes(idp: &Idp) -> u64 {
    idp.counts().await["requests"]["refresh_token"]
        .as_u64()
        .unwrap_or(0)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

#[tokio::test]
async fn a_login_into_an_encrypted_store_then_cached_tokens_lock_and_a_wrong_passphrase() {
    let idp = Idp::start().await;
    let home = Home::new();
    configure(&home, &idp, true);
    device_login(&home, &idp).await;
    let store_dir = home.path("data/sciauth/tokens");
    assert!(store_dir.join("store.key").exists());

    // The key is in the kernel keyring: no passphrase needed, no grant at the provider.
    idp.reset_counts().await;
    let out = token(&home, None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let access = stdout(&out);
    assert_eq!(access.lines().count(), 1);
    assert_eq!(refreshes(&idp).await, 0);

    // Nothing on disk holds a token.
    let file = std::fs::read_to_string(home.store_file("demo")).unwrap();
    assert!(file.contains("AES-256-GCM"), "{file}");
    for entry in std::fs::read_dir(&store_dir).unwrap() {
        let text =
            String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap()).into_owned();
        assert!(!text.contains(&access), "the access token is on disk");
        assert!(!text.contains("refresh_token") && !text.contains(PASSPHRASE));
    }

    // Locked: without a passphrase (and no terminal), one line, bad input (3).
    let out = home.run(&["lock"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("locked"), "{}", stderr(&out));
    let out = token(&home, None).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("sciauth: "), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("encrypted and locked"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());

    // A wrong passphrase: one line, bad input (3), and the store is unchanged.
    let out = token(&home, Some("not the passphrase")).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(!stderr(&out).contains("not the passphrase"));

    // The right one, from a file: the same token; and it is cached again.
    let passphrase_file = home.path("config/sciauth/passphrase");
    std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
    let out = home
        .command(&["token"])
        .env("SCIAUTH_STORE_PASSPHRASE_FILE", &passphrase_file)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), access);
    let out = token(&home, None).await;
    assert_eq!(stdout(&out), access, "{}", stderr(&out));

    // A refresh writes the rotated grant sealed.
    let out = home.run(&["token", "--min-valid", "3600"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(refreshes(&idp).await, 1);
    let file = std::fs::read_to_string(home.store_file("demo")).unwrap();
    assert!(!file.contains(&stdout(&out)));
    home.run(&["lock"]).await;
}

#[tokio::test]
async fn a_plain_store_is_encrypted_and_decrypted_in_place() {
    let idp = Idp::start().await;
    let home = Home::new();
    configure(&home, &idp, false);
    device_login(&home, &idp).await;
    let access = home.ok(&["token"]).await.trim_end().to_owned();
    assert!(
        std::fs::read_to_string(home.store_file("demo"))
            .unwrap()
            .contains(&access)
    );

    // Encrypt (twice: the second finds nothing to do); the plain profile is now refused.
    for _ in 0..2 {
        let out = home
            .command(&["store", "encrypt"])
            .env(PASSPHRASE_VAR, PASSPHRASE)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(
        !std::fs::read_to_string(home.store_file("demo"))
            .unwrap()
            .contains(&access)
    );
    let out = token(&home, None).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("encrypted = true"),
        "{}",
        stderr(&out)
    );
    configure(&home, &idp, true);
    let out = token(&home, None).await;
    assert_eq!(stdout(&out), access, "{}", stderr(&out));

    // Decrypt: plain again, the key file gone, the plain profile works.
    let out = home.run(&["store", "decrypt"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!home.path("data/sciauth/tokens/store.key").exists());
    configure(&home, &idp, false);
    assert_eq!(home.ok(&["token"]).await.trim_end(), access);
}

/// The largest `mmap` in an strace log: argon2id's 64 MiB of memory shows as one.
fn largest_mmap(calls: &str) -> u64 {
    calls
        .lines()
        .filter_map(|line| line.split_once("mmap(")?.1.split(", ").nth(1)?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn the_cached_path_with_a_cached_key_runs_no_argon2_no_thread_and_no_socket() {
    let idp = Idp::start().await;
    let home = Home::new();
    configure(&home, &idp, true);
    device_login(&home, &idp).await;
    let token = home.ok(&["token"]).await;
    drop(idp);

    let trace = home.path("trace");
    let calls = "clone,clone3,fork,vfork,socket,connect,openat,keyctl,mmap";
    let out = home
        .traced(&trace, calls, &["token"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), token);
    let calls_made = std::fs::read_to_string(&trace).unwrap();
    assert_quiet_trace(&calls_made, &["demo.secret"], "sciauth token");
    assert!(calls_made.contains("tokens/demo.json"), "{calls_made}");
    assert!(calls_made.contains("keyctl("), "{calls_made}");
    let cached = largest_mmap(&calls_made);
    assert!(cached < 32 << 20, "an mmap of {cached} bytes: argon2id ran");

    // Locked, the same command derives the key: argon2id's 64 MiB shows.
    home.run(&["lock"]).await;
    let out = home
        .traced(&trace, calls, &["token"])
        .env(PASSPHRASE_VAR, PASSPHRASE)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let unlocked = largest_mmap(&std::fs::read_to_string(&trace).unwrap());
    assert!(
        unlocked >= 64 << 20,
        "the largest mmap was {unlocked} bytes"
    );
    home.run(&["lock"]).await;
}
