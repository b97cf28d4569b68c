//! `sciauth serve --config FILE` and `sciauth token --service URL` against the real
//! identity provider (`tests/idp`, oidc-provider), the service keeping tokens in memory.

use sciauth_test_support::idp;
mod support;

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::idp::Idp;
use crate::support::Home;

const API: &str = "https://api.example.test";

/// A bearer token of `cc-post` for the API: the service's caller `pilot`.
async fn pilot_token(idp: &Idp) -> String {
    let response = idp::client()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth("cc-post", Some("cc-post-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "api:read"),
            ("resource", API),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_get_a_group_token_through_the_service() {
    let idp = Idp::start().await;
    let home = Home::new();
    std::fs::write(home.path("client-secret"), "code-secret-secret").unwrap();
    let config = home.path("server.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
[store]
kind = "memory"
[callers]
issuer = "{issuer}"
audience = "{API}"
[providers.idp]
issuer = "{issuer}"
client_id = "code-secret"
client_secret_file = "client-secret"
audience_parameter = "resource"
[vos.test]
provider = "idp"
[groups.pilots]
vo = "test"
properties = ["LimitedDelegation"]
scopes = ["api:read"]
[users.pilot]
groups = ["pilots"]
subjects = ["cc-post"]
"#,
            issuer = idp.issuer()
        ),
    )
    .unwrap();

    let mut server = home
        .command(&["serve", "--config", config.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some((_, rest)) = line.split_once("address=") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("sciauth serve ended without listening");
    })
    .await
    .expect("sciauth serve starts");
    let service = format!("http://{address}");

    let bearer = pilot_token(&idp).await;
    let output = home
        .command(&["token", "--service", &service, "--audience", API, "--json"])
        .env("SCIAUTH_SERVICE_BEARER", &bearer)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let token = printed["access_token"]
        .as_str()
        .or_else(|| printed["token"].as_str())
        .expect("the token is printed");
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["sub"], "code-secret");

    // Refused: a user token with LimitedDelegation for a user the service does not know.
    let refused = home
        .command(&["token", "--service", &service, "--user", "nobody"])
        .env("SCIAUTH_SERVICE_BEARER", &bearer)
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("unknown user"), "{stderr}");
    assert!(!stderr.contains(&bearer));

    // A known user who never uploaded a token: login required (exit 4), as for a profile.
    let no_token = home
        .command(&["token", "--service", &service, "--user", "pilot"])
        .env("SCIAUTH_SERVICE_BEARER", &bearer)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&no_token.stderr);
    assert_eq!(no_token.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("no_saved_tokens"), "{stderr}");

    // A missing configuration is a configuration error (exit 3).
    let missing = home.run(&["serve"]).await;
    assert_eq!(missing.status.code(), Some(3));
    server.start_kill().unwrap();
    let _ = server.wait().await;
}
