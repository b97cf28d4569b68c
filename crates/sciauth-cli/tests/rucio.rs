//! The `sciauth` binary with a rucio profile, against the real Rucio server
//! (`tests/peers/rucio`): the Rucio token, `rucio whoami`, `list`, `request`, `logout`.

use sciauth_test_support::rucio;
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::support::{Home, assert_quiet_trace, stderr};

#[tokio::test]
async fn a_rucio_profile_logs_in_once_and_shows_its_session_without_secrets() {
    let peer = rucio::Peer::start(&[], false);
    let home = Home::new();
    home.config(&format!(
        r#"
[profiles.grid]
kind = "rucio"
rucio_host = "{}"
account = "root"
auth_type = "userpass"
username = "{}"
password_env = "SCIAUTH_TEST_RUCIO_PASSWORD"
"#,
        peer.url(),
        peer.text("username"),
    ));
    let password = peer.text("password");
    let run = |args: &'static [&'static str]| {
        let mut command = home.command(args);
        command.env("SCIAUTH_TEST_RUCIO_PASSWORD", &password);
        async move { command.output().await.unwrap() }
    };

    // Nothing cached yet.
    let out = run(&["list"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("grid") && table.contains("none cached"),
        "{table}"
    );

    let out = run(&["token"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim_end().to_owned();
    assert!(token.starts_with("root-rucio-test-"), "{token}");
    assert_eq!(peer.logins("root"), 1);

    // The cached token serves the next processes: no second login.
    let out = run(&["rucio", "whoami"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let whoami = String::from_utf8(out.stdout).unwrap();
    assert!(whoami.contains("account     : root"), "{whoami}");
    assert!(whoami.contains("SERVICE"), "{whoami}");
    let out = run(&["request", "accounts/root"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let account: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(account["account"], "root");
    assert_eq!(peer.logins("root"), 1);

    let out = run(&["list"]).await;
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("userpass login") && table.contains("valid for"),
        "{table}"
    );
    let out = run(&["list", "--json"]).await;
    let listed = String::from_utf8(out.stdout).unwrap();
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows[0]["kind"], "rucio");
    assert_eq!(rows[0]["account"], "root");
    assert_eq!(rows[0]["logged_in"], true);
    for secret in [token.as_str(), password.as_str()] {
        assert!(!table.contains(secret) && !listed.contains(secret));
    }

    // Scopes mean nothing to Rucio; logout forgets the cached token.
    let out = run(&["token", "--scope", "x"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = run(&["logout"]).await;
    assert!(stderr(&out).contains("deleted"), "{}", stderr(&out));
    let out = run(&["list"]).await;
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("none cached")
    );

    // A wrong password: refused by Rucio (5).
    let mut command = home.command(&["rucio", "whoami"]);
    command.env("SCIAUTH_TEST_RUCIO_PASSWORD", "wrong");
    let out = command.output().await.unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("CannotAuthenticate"),
        "{}",
        stderr(&out)
    );
}

/// The official Rucio client (PyPI `rucio-clients`, pinned in tests/requirements.txt).
fn official_rucio() -> std::path::PathBuf {
    let path = rucio::workspace_root().join(".venv/bin/rucio");
    assert!(
        path.exists(),
        "the official Rucio client is not installed: run `cargo xtask setup`"
    );
    path
}

/// A rucio.cfg for userpass as root, the way a Rucio user has one.
fn write_rucio_cfg(path: &Path, peer: &rucio::Peer, extra: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!(
            "[client]\nrucio_host = {url}\nauth_host = {url}\nauth_type = userpass\n\
             username = {}\npassword = {}\naccount = root\n{extra}",
            peer.text("username"),
            peer.text("password"),
            url = peer.url(),
        ),
    )
    .unwrap();
}

/// Where the Rucio client keeps root's token for the isolated home (`<tmp>/<user>/.rucio_<user>`).
fn shared_token_file(home: &Home) -> PathBuf {
    home.path("tmp/tester/.rucio_tester/auth_token_for_account_root")
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test]
async fn rucio_cfg_alone_is_enough_and_the_official_client_shares_the_token() {
    let peer = rucio::Peer::start(&[], false);
    let home = Home::new();
    let cfg = home.path("rucio.cfg");
    write_rucio_cfg(&cfg, &peer, "");
    let rucio_cmd = |args: &'static [&'static str]| {
        let mut command = home.program(&official_rucio(), args);
        command.env("RUCIO_CONFIG", &cfg);
        command
    };
    let sciauth = |args: &'static [&'static str]| {
        let mut command = home.command(args);
        command.env("RUCIO_CONFIG", &cfg);
        command
    };
    assert!(!home.path("config/sciauth/config.toml").exists());

    // sciauth logs in; the official client takes its token without a login.
    let out = sciauth(&["rucio", "whoami"]).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("account     : root"));
    assert_eq!(peer.logins("root"), 1);
    let file = shared_token_file(&home);
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.starts_with("root-rucio-test-"), "{written}");
    assert!(
        !written.ends_with('\n'),
        "the Rucio client writes no newline"
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let out = rucio_cmd(&["whoami"]).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("root"));
    assert_eq!(peer.logins("root"), 1, "rucio whoami logged in again");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);

    // The other way round: the official client logs in, sciauth takes its token (checked
    // once with the server, which is no login).
    std::fs::remove_file(&file).unwrap();
    let out = rucio_cmd(&["whoami"]).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(peer.logins("root"), 2);
    let theirs = std::fs::read_to_string(&file).unwrap();
    assert_ne!(theirs, written);
    let out = sciauth(&["rucio", "whoami"]).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = sciauth(&["rucio", "token"]).output().await.unwrap();
    assert!(token.status.success(), "{}", stderr(&token));
    assert_eq!(String::from_utf8_lossy(&token.stdout).trim_end(), theirs);
    assert_eq!(
        peer.logins("root"),
        2,
        "sciauth logged in over the Rucio client's token"
    );

    // Once the server rejects it, each logs in again and the other follows.
    peer.expire_tokens("root");
    let out = sciauth(&["rucio", "whoami"]).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(peer.logins("root"), 3);
    let out = rucio_cmd(&["whoami"]).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(peer.logins("root"), 3);

    // Everything else of the Rucio client's interface, still without a sciauth config.
    let out = sciauth(&["rucio", "ping", "--json"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let ping: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ping["version"], "41.5.1");
    let out = sciauth(&["rucio", "token", "--json"])
        .output()
        .await
        .unwrap();
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(token["header"], "X-Rucio-Auth-Token");
    assert!(token["expires_in"].as_u64().unwrap() > 3000, "{token}");
    let out = sciauth(&["rucio", "whoami", "--json"])
        .output()
        .await
        .unwrap();
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me["account"], "root");
    let out = sciauth(&["rucio", "request", "GET", "/accounts/root/identities"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let identities: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        identities.to_string().contains("rucio-test"),
        "{identities}"
    );
    let out = sciauth(&["rucio", "request", "accounts/nosuch"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));
    assert!(stderr(&out).contains("AccountNotFound"), "{}", stderr(&out));
    assert_eq!(peer.logins("root"), 3);
}

#[tokio::test]
async fn rucio_cfg_is_found_and_overridden_as_the_rucio_client_does() {
    let peer = rucio::Peer::start(&[], false);
    let home = Home::new();

    // No rucio.cfg anywhere: one line, exit 3.
    let out = home.run(&["rucio", "whoami"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.starts_with("sciauth: no Rucio host"), "{message}");
    assert_eq!(
        message
            .lines()
            .filter(|l| l.starts_with("sciauth:"))
            .count(),
        1
    );

    // $RUCIO_HOME/etc/rucio.cfg, then $VIRTUAL_ENV/etc/rucio.cfg.
    let rucio_home = home.path("rucio-home");
    write_rucio_cfg(&rucio_home.join("etc/rucio.cfg"), &peer, "");
    let venv = home.path("venv");
    std::fs::create_dir_all(venv.join("etc")).unwrap();
    std::fs::write(
        venv.join("etc/rucio.cfg"),
        format!(
            "[client]\nrucio_host = {}\nauth_type = userpass\nusername = u\npassword = p\n",
            rucio::refused_url()
        ),
    )
    .unwrap();
    let mut command = home.command(&["rucio", "whoami"]);
    command
        .env("RUCIO_HOME", &rucio_home)
        .env("VIRTUAL_ENV", &venv);
    let out = command.output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut command = home.command(&["rucio", "whoami"]);
    command.env("VIRTUAL_ENV", &venv);
    let out = command.output().await.unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));

    // The Rucio client's options and variables: -a/--account, -S, --vo, -u.
    let with_home = |args: &'static [&'static str]| {
        let mut command = home.command(args);
        command.env("RUCIO_HOME", &rucio_home);
        command
    };
    let out = with_home(&["rucio", "-a", "alice", "whoami"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("account     : alice"));
    let mut command = with_home(&["rucio", "whoami"]);
    command.env("RUCIO_ACCOUNT", "alice");
    let out = command.output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("account     : alice"));
    let out = with_home(&["rucio", "whoami", "--account", "nosuch"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("CannotAuthenticate"),
        "{}",
        stderr(&out)
    );
    let out = with_home(&["rucio", "-S", "kerberos", "whoami"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = with_home(&["rucio", "-S", "x509", "whoami"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("client_cert"), "{}", stderr(&out));
    let out = with_home(&["rucio", "--vo", "x/y", "whoami"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c != 0 && c != 101),
        "{}",
        stderr(&out)
    );

    // A rucio profile overrides rucio.cfg; an oidc profile as the default is not in the way.
    home.config(
        r#"
default_profile = "iam"

[profiles.iam]
issuer = "https://iam.example.org/"
client_id = "x"

[profiles.grid]
kind = "rucio"
account = "alice"
"#,
    );
    let out = with_home(&["rucio", "whoami"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("account     : root"));
    let out = with_home(&["--profile", "grid", "rucio", "whoami"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("account     : alice"));
    let out = with_home(&["--profile", "iam", "rucio", "whoami"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

/// Runs `sciauth rucio whoami` with a shared token file someone else prepared, and checks
/// that sciauth logged in itself (the file's token was not used) without failing.
async fn logs_in_past(home: &Home, cfg: &Path, peer: &rucio::Peer, why: &str) {
    let before = peer.logins("root");
    let mut command = home.command(&["rucio", "whoami"]);
    command.env("RUCIO_CONFIG", cfg);
    let out = command.output().await.unwrap();
    assert!(out.status.success(), "{why}: {}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("account     : root"),
        "{why}"
    );
    assert_eq!(
        peer.logins("root"),
        before + 1,
        "{why}: the planted token was used"
    );
}

#[tokio::test]
async fn a_shared_token_file_is_hostile_input() {
    let peer = rucio::Peer::start(&[], false);
    let home = Home::new();
    let cfg = home.path("rucio.cfg");
    write_rucio_cfg(&cfg, &peer, "");
    // alice's valid token, which must never be sent as root's.
    let alice = {
        let mut command = home.command(&["rucio", "-a", "alice", "token"]);
        command.env("RUCIO_CONFIG", &cfg);
        let out = command.output().await.unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    };
    let file = shared_token_file(&home);
    let dir = file.parent().unwrap().to_owned();
    std::fs::create_dir_all(&dir).unwrap();
    // Each case starts with no token of sciauth's own, so that a login is seen.
    let reset = || {
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_dir_all(home.path("runtime/sciauth"));
    };

    // A symbolic link to a token elsewhere is not followed, and what it points at is left alone.
    reset();
    let elsewhere = home.path("elsewhere");
    std::fs::write(&elsewhere, &alice).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    logs_in_past(&home, &cfg, &peer, "symlink").await;
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), alice);
    assert!(
        !std::fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A file others may write, a FIFO (which must not hang us), junk, a huge file, a token
    // with control characters: each is skipped.
    for (why, contents, file_mode) in [
        ("writable by others", alice.clone().into_bytes(), 0o666),
        (
            "control characters",
            b"root-x\x1b[31m-unknown-1".to_vec(),
            0o600,
        ),
        ("binary junk", vec![0xff, 0xfe, 0, 1], 0o600),
        ("empty", Vec::new(), 0o600),
        ("huge", vec![b'a'; 1 << 20], 0o600),
    ] {
        reset();
        std::fs::write(&file, &contents).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(file_mode)).unwrap();
        logs_in_past(&home, &cfg, &peer, why).await;
        assert_eq!(mode(&file), 0o600, "{why}");
    }
    reset();
    let status = std::process::Command::new("mkfifo")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    logs_in_past(&home, &cfg, &peer, "fifo").await;

    // A token the Rucio server does not take (another account's, or none at all) is checked
    // and replaced, never sent as root's.
    for (why, token) in [
        ("another account's token", alice.as_str()),
        ("made up", "root-x-unknown-0"),
    ] {
        reset();
        std::fs::write(&file, token).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        logs_in_past(&home, &cfg, &peer, why).await;
        assert_ne!(std::fs::read_to_string(&file).unwrap(), token, "{why}");
    }

    // A directory others may write, or one that is not ours: the file in it is not used.
    reset();
    std::fs::write(&file, &alice).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    logs_in_past(&home, &cfg, &peer, "world-writable directory").await;
    assert_eq!(mode(&dir), 0o777, "sciauth changed a directory it refused");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), alice);
    if rustix_is_root() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&file, Some(4242), Some(4242)).unwrap();
        let _ = std::fs::remove_dir_all(home.path("runtime/sciauth"));
        logs_in_past(&home, &cfg, &peer, "a file of another user").await;
        std::fs::remove_file(&file).unwrap();
        let _ = std::fs::remove_dir_all(home.path("runtime/sciauth"));
        std::os::unix::fs::chown(&dir, Some(4242), Some(4242)).unwrap();
        logs_in_past(&home, &cfg, &peer, "a directory of another user").await;
        assert!(
            !file.exists(),
            "sciauth wrote into another user's directory"
        );
    }
}

fn rustix_is_root() -> bool {
    // SAFETY-free: the id of this process from /proc.
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|ids| ids.split_whitespace().nth(1) == Some("0"))
}

#[tokio::test]
async fn the_cached_rucio_token_needs_no_thread_no_socket_and_no_key() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id_rsa");
    let status = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-N",
            "secret-passphrase",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let mut public = key.clone().into_os_string();
    public.push(".pub");
    let peer = rucio::Peer::start(&[Path::new(&public)], false);
    let home = Home::new();
    let cfg = home.path("rucio.cfg");
    std::fs::write(
        &cfg,
        format!(
            "[client]\nrucio_host = {}\nauth_type = ssh\naccount = root\nssh_private_key = {}\n",
            peer.url(),
            key.display()
        ),
    )
    .unwrap();
    let sciauth = |args: &'static [&'static str]| {
        let mut command = home.command(args);
        command.env("RUCIO_CONFIG", &cfg);
        command
    };

    // An encrypted key and no way to ask: one line saying how to give the passphrase.
    let out = sciauth(&["rucio", "token"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("RUCIO_SSH_PASSPHRASE"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("secret-passphrase"));
    let mut command = sciauth(&["rucio", "token", "--passphrase-env", "MY_PASS"]);
    command.env("MY_PASS", "wrong");
    let out = command.output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let mut command = sciauth(&["rucio", "token"]);
    command.env("RUCIO_SSH_PASSPHRASE", "secret-passphrase");
    let out = command.output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(token.starts_with("root-ssh:pubkey-"), "{token}");
    assert_eq!(peer.logins("root"), 1);

    for args in [&["rucio", "token"][..], &["rucio", "token", "--json"]] {
        let trace = home.path("trace");
        let mut command = home.traced(
            &trace,
            "clone,clone3,fork,vfork,socket,connect,openat",
            args,
        );
        command.env("RUCIO_CONFIG", &cfg);
        let out = command.output().await.unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(token.trim()),
            "{args:?}"
        );
        let calls = std::fs::read_to_string(&trace).unwrap();
        let private_key = format!("\"{}\"", key.display());
        assert_quiet_trace(&calls, &[&private_key], &format!("{args:?}"));
        assert!(calls.contains("auth_token_for_account_root"), "{calls}");
    }
    assert_eq!(peer.logins("root"), 1);

    // A token that must last longer than the server makes them takes the full path.
    let mut command = sciauth(&["rucio", "token", "--min-valid", "7200"]);
    command.env("RUCIO_SSH_PASSPHRASE", "secret-passphrase");
    let out = command.output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("less than --min-valid"),
        "{}",
        stderr(&out)
    );
    assert_eq!(peer.logins("root"), 2);
}

#[tokio::test]
async fn an_encrypted_userkey_pem_logs_in_with_its_passphrase() {
    let peer = rucio::Peer::start(&[], true);
    let home = Home::new();
    // The peer's client key, encrypted as grid CAs hand out userkey.pem.
    let userkey = home.path("userkey.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:grid-pass",
            "-in",
        ])
        .arg(peer.path("client_key"))
        .arg("-out")
        .arg(&userkey)
        .status()
        .unwrap();
    assert!(status.success());
    let cfg = home.path("rucio.cfg");
    std::fs::write(
        &cfg,
        format!(
            "[client]\nrucio_host = {url}\nauth_host = {url}\nauth_type = x509\naccount = root\n\
             client_cert = {}\nclient_key = {}\nca_cert = {}\n",
            peer.path("client_cert").display(),
            userkey.display(),
            peer.path("ca_cert").display(),
            url = peer.x509_url(),
        ),
    )
    .unwrap();
    let sciauth = |args: &'static [&'static str]| {
        let mut command = home.command(args);
        command.env("RUCIO_CONFIG", &cfg);
        command
    };
    let out = sciauth(&["rucio", "whoami"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--passphrase-env"),
        "{}",
        stderr(&out)
    );
    let mut command = sciauth(&["rucio", "--passphrase-env", "KEY_PASS", "whoami"]);
    command.env("KEY_PASS", "wrong");
    let out = command.output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("passphrase does not decrypt"),
        "{}",
        stderr(&out)
    );
    let mut command = sciauth(&["rucio", "--passphrase-env", "KEY_PASS", "whoami"]);
    command.env("KEY_PASS", "grid-pass");
    let out = command.output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("account     : root"));
    assert!(!stderr(&out).contains("grid-pass"));
    assert_eq!(peer.logins("root"), 1);
}
