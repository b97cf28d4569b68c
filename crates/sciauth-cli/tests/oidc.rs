//! The `sciauth` binary against the real identity provider (`tests/idp`, oidc-provider): a
//! whole session as a user has it, every refresh and exchange counted at the provider.

use sciauth_test_support::idp;
mod support;

use std::os::unix::fs::PermissionsExt as _;

use base64::Engine as _;

use crate::idp::Idp;
use crate::support::{Home, assert_quiet_trace, stderr};

const API: &str = "https://api.example.test";
const CLIENT_SECRET: &str = "code-secret-secret";

/// A profile `demo` for the confidential native client `code-secret` (it may exchange
/// tokens), its secret in a file, tokens for the API resource.
fn configure(home: &Home, idp: &Idp) {
    let secret = home.path("config/sciauth/demo.secret");
    std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
    home.config(&format!(
        r#"
default_profile = "demo"

[profiles.demo]
issuer = "{}"
client_id = "code-secret"
client_secret_file = "demo.secret"
scopes = ["openid", "offline_access", "api:read", "api:write"]
audience = "{API}"
audience_parameter = "resource"
"#,
        idp.issuer()
    ));
}

fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.trim().split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn count(idp: &Idp, grant: &str) -> u64 {
    idp.counts().await["requests"][grant].as_u64().unwrap_or(0)
}

/// `sciauth login --device`, approving the code it shows through the provider's own pages.
async fn device_login(home: &Home, idp: &Idp) -> String {
    support::device_login(home.command(&["login", "--device"]), idp.issuer()).await
}

#[tokio::test]
async fn a_whole_session_login_token_refresh_exchange_list_logout() {
    let idp = Idp::start().await;
    let home = Home::new();
    configure(&home, &idp);

    // Nothing stored: login required (4), one line and a hint.
    let out = home.run(&["token"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("sciauth: "), "{}", stderr(&out));
    assert!(stderr(&out).contains("sciauth login"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    let shown = device_login(&home, &idp).await;
    assert!(shown.contains("enter the code"), "{shown}");
    assert!(shown.contains("Logged in (demo)"), "{shown}");
    let store = home.store_file("demo");
    assert_eq!(
        std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The cached token: stdout holds the token and nothing else; no grant at the provider.
    idp.reset_counts().await;
    let token = home.ok(&["token"]).await;
    assert_eq!(token.lines().count(), 1);
    let token = token.trim_end().to_owned();
    let c = claims(&token);
    assert_eq!(
        (c["aud"].as_str(), c["sub"].as_str()),
        (Some(API), Some("alice"))
    );
    assert_eq!(count(&idp, "refresh_token").await, 0);
    assert_eq!(home.ok(&["token"]).await.trim_end(), token);

    // --min-valid beyond the token's life forces one refresh (rotating the refresh token).
    let out = home.run(&["token", "--min-valid", "3600"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let refreshed = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    assert_ne!(refreshed, token);
    assert_eq!(count(&idp, "refresh_token").await, 1);
    assert!(
        stderr(&out).contains("less than --min-valid"),
        "{}",
        stderr(&out)
    );
    assert_eq!(home.ok(&["token"]).await.trim_end(), refreshed);
    assert_eq!(count(&idp, "refresh_token").await, 1);

    let json: serde_json::Value =
        serde_json::from_str(&home.ok(&["token", "--json"]).await).unwrap();
    assert_eq!(json["access_token"], refreshed.as_str());
    assert_eq!(json["audience"], API);
    assert_eq!(json["profile"], "demo");
    assert!(json["expires_in"].as_u64().unwrap() > 500);

    // RFC 8693: a token for the other API with one scope, counted at the provider.
    let exchanged = home
        .ok(&[
            "exchange",
            "--audience",
            "https://other.example.test",
            "--scope",
            "other:read",
        ])
        .await;
    let c = claims(&exchanged);
    assert_eq!(
        (c["aud"].as_str(), c["scope"].as_str()),
        (Some("other-api"), Some("other:read"))
    );
    assert_eq!(c["sub"], "alice");
    assert_eq!(
        count(&idp, "urn:ietf:params:oauth:grant-type:token-exchange").await,
        1
    );

    // The WLCG discovery file: 0600, the token, nothing on stdout.
    let out = home.run(&["token", "--write-discovery"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let uid = std::fs::metadata(home.path("runtime")).unwrap();
    let discovered = home.path(&format!(
        "runtime/bt_u{}",
        std::os::unix::fs::MetadataExt::uid(&uid)
    ));
    assert_eq!(
        std::fs::read_to_string(&discovered).unwrap().trim_end(),
        refreshed
    );
    assert_eq!(
        std::fs::metadata(&discovered).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // list: the profile and its token's audience, never a secret.
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    let refresh_token = stored["grants"][0]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let table = home.ok(&["list"]).await;
    assert!(table.contains("demo") && table.contains(API), "{table}");
    assert!(table.contains("refresh token"), "{table}");
    let listed = home.ok(&["list", "--json"]).await;
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows[0]["logged_in"], true);
    assert_eq!(rows[0]["account"], "demo");
    for secret in [
        refreshed.as_str(),
        token.as_str(),
        refresh_token.as_str(),
        CLIENT_SECRET,
    ] {
        assert!(!table.contains(secret) && !listed.contains(secret));
    }

    // logout: revoked at the provider, deleted here; the provider refuses the old refresh
    // token, and the next token needs a login.
    let out = home.run(&["logout"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    assert_eq!(idp.counts().await["revocation"], 1);
    assert!(!store.exists());
    let refused = idp::client()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth("code-secret", Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let out = home.run(&["token"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

/// The cached path, traced: `sciauth token` (plain, `--json`, `--scope` answered from the
/// store) with the provider gone starts no thread, opens no socket and never opens the
/// client secret file, and still prints the token.
#[tokio::test]
async fn the_cached_path_needs_no_thread_no_socket_and_no_secret() {
    let idp = Idp::start().await;
    let home = Home::new();
    configure(&home, &idp);
    device_login(&home, &idp).await;
    let token = home.ok(&["token"]).await;
    drop(idp);

    for args in [
        &["token"][..],
        &["token", "--json"],
        &["token", "--scope", "api:read"],
    ] {
        let trace = home.path("trace");
        let out = home
            .traced(
                &trace,
                "clone,clone3,fork,vfork,socket,connect,openat",
                args,
            )
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(token.trim()),
            "{args:?}"
        );
        let calls = std::fs::read_to_string(&trace).unwrap();
        assert_quiet_trace(&calls, &["demo.secret"], &format!("{args:?}"));
        assert!(calls.contains("tokens/demo.json"), "{calls}");
    }

    // A token the store cannot give takes the full path, which reads the secret and fails
    // on the missing provider with the network's exit code.
    let out = home.run(&["token", "--min-valid", "999999"]).await;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
}

#[tokio::test]
async fn request_sends_the_profiles_token_and_renews_it_after_a_401() {
    use axum::http::{HeaderMap, StatusCode};
    let idp = Idp::start().await;
    let home = Home::new();
    configure(&home, &idp);
    device_login(&home, &idp).await;
    let token = home.ok(&["token"]).await.trim_end().to_owned();

    // An API that refuses the first token it sees, then accepts any other.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/whoami",
        axum::routing::get(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                let auth = headers["authorization"].to_str().unwrap().to_owned();
                let mut seen = record.lock().unwrap();
                seen.push(auth.clone());
                if seen.len() == 1 {
                    (StatusCode::UNAUTHORIZED, "expired".to_owned())
                } else {
                    (
                        StatusCode::OK,
                        format!(
                            "hello {}",
                            claims(auth.trim_start_matches("Bearer "))["sub"]
                        ),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/whoami", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    idp.reset_counts().await;
    let out = home.ok(&["request", &url]).await;
    assert_eq!(out, "hello \"alice\"");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], format!("Bearer {token}"));
    assert_ne!(seen[1], seen[0]);
    assert_eq!(count(&idp, "refresh_token").await, 1);
}

#[tokio::test]
async fn configuration_mistakes_exit_3_with_one_line() {
    let home = Home::new();
    // No configuration at all.
    let out = home.run(&["token"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no configuration"),
        "{}",
        stderr(&out)
    );

    // A secret written in the file.
    home.config(
        "[profiles.x]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"\nclient_secret = \"inline-s3cret\"\n",
    );
    let out = home.run(&["token"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("client_secret_file"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("inline-s3cret"));

    // A typo, an unknown profile, a secret variable that is not set.
    home.config("[profiles.x]\nissuer = \"i\"\nclient_id = \"c\"\nscope = [\"openid\"]\n");
    let out = home.run(&["token"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("scope"), "{}", stderr(&out));
    home.config("[profiles.x]\nissuer = \"i\"\nclient_id = \"c\"\nclient_secret_env = \"SCIAUTH_TEST_UNSET\"\n");
    let out = home.run(&["token", "--profile", "y"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = home.run(&["token"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("SCIAUTH_TEST_UNSET"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out)
            .lines()
            .filter(|l| l.starts_with("sciauth:"))
            .count(),
        1
    );

    // A named file that does not exist.
    let out = home
        .run(&["--config", "/nonexistent/sciauth.toml", "list"])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
