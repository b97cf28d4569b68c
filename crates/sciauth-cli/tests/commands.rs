//! The `sciauth` binary, driven as a user would: its output, its errors, its exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::any;
use base64::Engine as _;

fn sciauth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sciauth"))
        .args(args)
        .env_remove("BEARER_TOKEN")
        .env_remove("BEARER_TOKEN_FILE")
        // No profile: these commands run with what their arguments say, nothing else.
        .env_remove("SCIAUTH_CONFIG")
        .env_remove("SCIAUTH_PROFILE")
        .env("XDG_CONFIG_HOME", "/nonexistent/sciauth-test-config")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

fn claims(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn jwt_prints_a_unicore_token() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id");
    let out = sciauth(&[
        "jwt",
        "--identity",
        key.to_str().unwrap(),
        "--user",
        "demouser",
        "--lifetime",
        "60",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim_end();
    assert_eq!(token.split('.').count(), 3);
    let c = claims(token);
    assert_eq!(
        (c["sub"].as_str(), c["iss"].as_str(), c["etd"].as_str()),
        (Some("demouser"), Some("demouser"), Some("false"))
    );
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
}

#[test]
fn errors_are_one_line_with_a_distinct_exit_code() {
    let missing = sciauth(&["jwt", "--identity", "/nonexistent/key", "--user", "u"]);
    assert_eq!(missing.status.code(), Some(3));
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(
        stderr.starts_with("sciauth: /nonexistent/key: no such key file"),
        "{stderr}"
    );

    let refused = sciauth(&["request", "http://127.0.0.1:9/"]);
    assert_eq!(
        refused.status.code(),
        Some(6),
        "connection refused is a network failure"
    );

    let no_user = sciauth(&["jwt", "--identity", "/x"]);
    assert_eq!(no_user.status.code(), Some(3));
}

async fn echo_server() -> (
    String,
    Arc<Mutex<Vec<HeaderMap>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let app = Router::new().route(
        "/{*path}",
        any(move |headers: HeaderMap, body: String| {
            let recorder = recorder.clone();
            async move {
                recorder.lock().unwrap().push(headers.clone());
                if headers.get("authorization").is_none() {
                    return (
                        axum::http::StatusCode::UNAUTHORIZED,
                        "who are you?".to_owned(),
                    );
                }
                (
                    axum::http::StatusCode::OK,
                    format!("got {} bytes", body.len()),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen, task)
}

#[tokio::test]
async fn request_carries_the_credential_preferences_and_body() {
    let (url, seen, _server) = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id");
    let key = key.to_str().unwrap().to_owned();
    let target = format!("{url}/rest/core/jobs?x=1");
    let out = tokio::task::spawn_blocking(move || {
        sciauth(&[
            "request",
            "POST",
            &target,
            "-i",
            &key,
            "-u",
            "demouser",
            "--preferences",
            "group:p1,uid:me",
            "-d",
            "hello",
            "-H",
            "X-Extra: 1",
        ])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"got 5 bytes");
    let headers = seen.lock().unwrap().last().unwrap().clone();
    let auth = headers["authorization"].to_str().unwrap();
    assert_eq!(
        claims(auth.strip_prefix("Bearer ").unwrap())["sub"],
        "demouser"
    );
    assert_eq!(headers["x-unicore-user-preferences"], "uid:me,group:p1");
    assert_eq!(headers["x-extra"], "1");

    // No credential: the server's 401 is printed and the exit code says "refused".
    let target = format!("{url}/private");
    let out = tokio::task::spawn_blocking(move || sciauth(&["request", &target]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(out.stdout, b"who are you?");
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));
}

#[tokio::test]
async fn request_with_discovery_uses_the_wlcg_token() {
    let (url, seen, _server) = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bt");
    std::fs::write(&file, "discovered-token-value\n").unwrap();
    let target = format!("{url}/data");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sciauth"))
            .args(["request", &target, "--discovery"])
            .env_remove("BEARER_TOKEN")
            .env_remove("SCIAUTH_CONFIG")
            .env_remove("SCIAUTH_PROFILE")
            .env("XDG_CONFIG_HOME", "/nonexistent/sciauth-test-config")
            .env("BEARER_TOKEN_FILE", &file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        seen.lock().unwrap().last().unwrap()["authorization"],
        "Bearer discovered-token-value"
    );

    // A token file others may write is not used, and the user is told why.
    use std::os::unix::fs::PermissionsExt as _;
    let unsafe_file = dir.path().join("bt-shared");
    std::fs::write(&unsafe_file, "discovered-token-value\n").unwrap();
    std::fs::set_permissions(&unsafe_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    seen.lock().unwrap().clear();
    let target = format!("{url}/data");
    let empty_tmp = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sciauth"))
            .args(["request", &target, "--discovery"])
            .env_remove("BEARER_TOKEN")
            .env_remove("SCIAUTH_CONFIG")
            .env_remove("SCIAUTH_PROFILE")
            .env_remove("RUST_LOG")
            .env("XDG_CONFIG_HOME", "/nonexistent/sciauth-test-config")
            .env("XDG_RUNTIME_DIR", empty_tmp.path())
            .env("BEARER_TOKEN_FILE", &unsafe_file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("writable by group or others (mode 0666)"),
        "{stderr}"
    );
    assert!(!stderr.contains("discovered-token-value"), "{stderr}");
    // (Were there a /tmp/bt_u<uid> on this machine, it may have been sent; this one not.)
    let sent_it = seen.lock().unwrap().iter().any(|headers| {
        headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some("Bearer discovered-token-value")
    });
    assert!(!sent_it);
}

/// A server that records the headers of every request and answers with `answer`.
async fn recording_server(
    answer: impl Fn() -> axum::response::Response + Clone + Send + Sync + 'static,
) -> (
    String,
    Arc<Mutex<Vec<HeaderMap>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let app = Router::new().fallback(any(move |headers: HeaderMap| {
        recorder.lock().unwrap().push(headers);
        let answer = answer.clone();
        async move { answer() }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen, task)
}

#[tokio::test]
async fn request_does_not_carry_the_callers_authorization_across_a_redirect() {
    use axum::response::IntoResponse as _;
    let (landing, landed, _landing_server) = recording_server(|| "landed".into_response()).await;
    let location = format!("{landing}/landing");
    let (start, started, _start_server) = recording_server(move || {
        (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, location.clone())],
        )
            .into_response()
    })
    .await;

    let target = format!("{start}/start");
    let out = tokio::task::spawn_blocking(move || {
        sciauth(&[
            "request",
            &target,
            "-H",
            "Authorization: Bearer caller-secret-token",
            "-H",
            "Cookie: session=cookie-secret",
            "-H",
            "X-Plain: kept",
        ])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"landed");

    let first = started.lock().unwrap().last().unwrap().clone();
    assert_eq!(first["authorization"], "Bearer caller-secret-token");
    let second = landed.lock().unwrap().last().unwrap().clone();
    assert_eq!(second["x-plain"], "kept");
    assert!(second.get("authorization").is_none(), "{second:?}");
    assert!(second.get("cookie").is_none(), "{second:?}");
}

#[test]
fn completions_are_printed() {
    let out = sciauth(&["completions", "bash"]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("sciauth"));
}

/// A typo on the line of an inline secret (here an unterminated string): the error says where,
/// never what the line holds; for profiles and for the service's configuration alike.
#[test]
fn a_broken_configuration_line_is_located_but_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("config.toml");
    std::fs::write(
        &profiles,
        "[profiles.x]\nissuer = \"https://idp.example.org\"\nclient_id = \"c\"\n\
         allow_inline_secret = true\nclient_secret = \"inline-s3cret-value\n",
    )
    .unwrap();
    let out = sciauth(&["--config", profiles.to_str().unwrap(), "token"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("inline-s3cret-value"), "{stderr}");
    assert!(stderr.contains("line 5, column "), "{stderr}");

    let service = dir.path().join("server.toml");
    std::fs::write(
        &service,
        "[store]\nkind = \"postgres\"\nurl = \"postgresql://sciauth:db-s3cret-value@db/sciauth\n",
    )
    .unwrap();
    let out = sciauth(&["serve", "--config", service.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("db-s3cret-value"), "{stderr}");
    assert!(stderr.contains("line 3, column "), "{stderr}");
}

/// A profile whose issuer is plain http:// to another host gets one warning on stderr; one on
/// loopback (the test provider's kind) gets none.
#[test]
fn a_cleartext_issuer_elsewhere_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let store = dir.path().join("tokens");
    let run = |issuer: &str| {
        std::fs::write(
            &config,
            format!(
                "[profiles.x]\nissuer = \"{issuer}\"\nclient_id = \"c\"\nstore_dir = \"{}\"\n",
                store.display()
            ),
        )
        .unwrap();
        let out = sciauth(&["--config", config.to_str().unwrap(), "token"]);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = run("http://idp.example.org");
    assert_eq!(
        stderr.matches("warning").count(),
        1,
        "one warning expected: {stderr}"
    );
    assert!(
        stderr.contains("the issuer http://idp.example.org/ is plain http://"),
        "{stderr}"
    );
    let stderr = run("http://127.0.0.1:9");
    assert!(!stderr.contains("plain http://"), "{stderr}");
    let stderr = run("https://idp.example.org");
    assert!(!stderr.contains("plain http://"), "{stderr}");
}
