//! The `sciauth` binary against a deliberately broken identity provider
//! (`sciauth-tokens/tests/support/hostile.rs`): whatever the provider answers, the command
//! ends with a one-line error and the documented exit code, and neither a secret nor a
//! control character reaches the terminal (stdout or stderr).

use sciauth_test_support::hostile;
mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::json;

use crate::hostile::{HostileIdp, Recorder, Reply};
use crate::support::{Home, stderr};

const CLIENT_SECRET: &str = "cli-client-secret-Pq77";

/// A profile `hostile` for a confidential client at `idp`, its secret in a file.
fn configure(home: &Home, idp: &HostileIdp) {
    std::fs::write(home.path("config/sciauth/hostile.secret"), CLIENT_SECRET).unwrap();
    home.config(&format!(
        r#"
[profiles.hostile]
issuer = "{}"
client_id = "hostile-client"
client_secret_file = "hostile.secret"
scopes = ["openid", "offline_access"]
"#,
        idp.issuer()
    ));
}

/// A device authorization answer over sane defaults.
fn device(extra: serde_json::Value) -> Reply {
    let mut body = json!({
        "device_code": "device-code-Nb12",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://idp.example.org/device",
        "expires_in": 600,
        "interval": 1,
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    Reply::json(200, body)
}

/// Runs `sciauth args`, failing the test if it takes more than a minute.
async fn run(home: &Home, args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(60), home.run(args))
        .await
        .expect("sciauth hung")
}

/// Neither `secrets` (nor the client secret) nor a control character other than a newline
/// in what the command printed.
#[track_caller]
fn assert_clean(out: &Output, secrets: &[&str]) {
    for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(stream);
        for secret in std::iter::once(&CLIENT_SECRET).chain(secrets) {
            assert!(!text.contains(secret), "{secret:?} on {name}: {text}");
        }
        assert!(
            text.chars()
                .all(|c| c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c))),
            "a control character on {name}: {text:?}"
        );
    }
}

/// The command failed with `code`, printed nothing on stdout, and a clean error on stderr.
#[track_caller]
fn assert_failed(out: &Output, code: i32, secrets: &[&str]) {
    assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let error = stderr(out);
    let last = error
        .lines()
        .rev()
        .find(|l| !l.starts_with("hint: "))
        .unwrap_or_default();
    assert!(last.starts_with("sciauth: "), "{error}");
    assert_clean(out, secrets);
}

async fn logged_in(idp: &HostileIdp) -> Home {
    let home = Home::new();
    configure(&home, idp);
    idp.set("/device", device(json!({})));
    let out = run(&home, &["--profile", "hostile", "login", "--device"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    home
}

#[tokio::test]
async fn a_user_code_carrying_terminal_escapes_never_reaches_the_terminal() {
    let idp = HostileIdp::start().await;
    let home = Home::new();
    configure(&home, &idp);
    idp.set(
        "/device",
        device(json!({"user_code": "AB\u{1b}[2J\u{1b}]52;c;cHduZWQ=\u{7}CD"})),
    );
    let out = run(&home, &["--profile", "hostile", "login", "--device"]).await;
    assert_failed(&out, 1, &["device-code-Nb12"]);
    assert!(stderr(&out).contains("user_code"), "{}", stderr(&out));
    assert_eq!(idp.hits("/token"), 0);
}

#[tokio::test]
async fn an_access_token_carrying_escapes_is_neither_stored_nor_printed() {
    let idp = HostileIdp::start().await;
    let home = Home::new();
    configure(&home, &idp);
    idp.set("/device", device(json!({})));
    idp.set("/token", Reply::token("tok\u{1b}[2Jen-Hx5", json!({})));
    let out = run(&home, &["--profile", "hostile", "login", "--device"]).await;
    assert_failed(&out, 1, &["en-Hx5", "device-code-Nb12"]);
    assert!(!home.store_file("default").exists());
    let out = run(&home, &["--profile", "hostile", "token"]).await;
    assert_failed(&out, 4, &[]);
}

#[tokio::test]
async fn interval_zero_is_a_legal_quirk_that_logs_in() {
    let idp = HostileIdp::start().await;
    let home = Home::new();
    configure(&home, &idp);
    idp.set("/device", device(json!({"interval": 0})));
    idp.once(
        "/token",
        Reply::json_text(400, r#"{"error":"authorization_pending"}"#),
    );
    let out = run(&home, &["--profile", "hostile", "login", "--device"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_clean(&out, &["device-code-Nb12"]);
    assert_eq!(idp.hits("/token"), 2);
    let token = home.ok(&["--profile", "hostile", "token"]).await;
    assert_eq!(token.trim(), "good-access-token");
}

#[tokio::test]
async fn lifetimes_beyond_the_clock_are_clamped_and_listed_without_a_panic() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/token",
        Reply::token(
            "long-lived-token",
            json!({"expires_in": u64::MAX, "refresh_token": "rt-Vv31",
                   "refresh_expires_in": u64::MAX}),
        ),
    );
    let home = logged_in(&idp).await;
    let token = home.ok(&["--profile", "hostile", "token", "--json"]).await;
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    assert_eq!(token["access_token"], "long-lived-token");
    assert!(token["expires_in"].as_u64().unwrap() > 300_000_000);
    let listed = home.ok(&["list"]).await;
    assert!(listed.contains("hostile"), "{listed}");
    assert!(!listed.contains("long-lived-token"), "{listed}");
}

#[tokio::test]
async fn secrets_echoed_by_a_refusing_refresh_never_reach_the_terminal() {
    let idp = HostileIdp::start().await;
    let home = logged_in(&idp).await;
    idp.set(
        "/token",
        Reply::json(
            400,
            json!({"error": "invalid_grant",
                   "error_description": format!(
                       "refresh_token=good-refresh-token client_secret={CLIENT_SECRET} \
                        \u{1b}[31mrevoked\u{1b}[0m")}),
        ),
    );
    let out = run(
        &home,
        &["--profile", "hostile", "token", "--min-valid", "999999"],
    )
    .await;
    assert_failed(&out, 4, &["good-refresh-token"]);
    assert!(stderr(&out).contains("[redacted]"), "{}", stderr(&out));
}

#[tokio::test]
async fn an_issuer_carrying_escapes_is_refused_cleanly() {
    let idp = HostileIdp::start().await;
    let home = Home::new();
    configure(&home, &idp);
    let mut document = idp.discovery();
    document["issuer"] = json!(format!(
        "{}\u{1b}]8;;https://evil.example\u{7}",
        idp.issuer()
    ));
    idp.set(
        "/.well-known/openid-configuration",
        Reply::json(200, document),
    );
    let out = run(&home, &["--profile", "hostile", "login", "--device"]).await;
    assert_failed(&out, 3, &[]);
}

#[tokio::test]
async fn a_redirecting_token_endpoint_gets_no_secret_through() {
    let idp = HostileIdp::start().await;
    let recorder = Recorder::start().await;
    let home = Home::new();
    configure(&home, &idp);
    idp.set("/device", device(json!({})));
    idp.set(
        "/token",
        Reply::redirect(307, &format!("{}/steal", recorder.url())),
    );
    let out = run(&home, &["--profile", "hostile", "login", "--device"]).await;
    assert_failed(&out, 5, &["device-code-Nb12"]);
    assert!(stderr(&out).contains("not followed"), "{}", stderr(&out));
    assert!(recorder.requests().is_empty(), "{:?}", recorder.requests());
}

#[tokio::test]
async fn a_ten_megabyte_token_answer_is_refused() {
    let idp = HostileIdp::start().await;
    let home = Home::new();
    configure(&home, &idp);
    idp.set("/device", device(json!({})));
    idp.set(
        "/token",
        Reply::token(&"A".repeat(10 * 1000 * 1000), json!({})),
    );
    let out = run(&home, &["--profile", "hostile", "login", "--device"]).await;
    assert_failed(&out, 1, &["AAAAAAAAAAAAAAAA"]);
}

#[tokio::test]
async fn a_reset_connection_is_a_network_failure() {
    let idp = HostileIdp::start().await;
    let home = Home::new();
    configure(&home, &idp);
    idp.set("/.well-known/openid-configuration", Reply::Reset);
    let out = run(&home, &["--profile", "hostile", "login", "--device"]).await;
    assert_failed(&out, 6, &[]);
}

#[tokio::test]
async fn a_garbage_answer_from_the_token_endpoint_is_refused_cleanly() {
    let idp = HostileIdp::start().await;
    let home = Home::new();
    configure(&home, &idp);
    idp.set("/device", device(json!({})));
    idp.set(
        "/token",
        Reply::Http {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"\x1b[2J\x00\xff\xfe{\"access_token\":".to_vec(),
        },
    );
    let out = run(&home, &["--profile", "hostile", "login", "--device"]).await;
    assert_failed(&out, 1, &[]);
}
