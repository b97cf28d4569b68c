//! The `sciauth` binary with a rucio profile, against the real Rucio server
//! (`tests/peers/rucio`): the Rucio token, `rucio whoami`, `list`, `request`, `logout`.

#[path = "../../sciauth-rucio/tests/support/mod.rs"]
mod rucio;
mod support;

use crate::support::{Home, stderr};

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
