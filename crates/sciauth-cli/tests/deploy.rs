//! The `sciauth` binary where it is really deployed (issue 14), against the real identity
//! provider (`tests/idp`, oidc-provider): robot accounts with a secret or a key, a provider
//! that accepts only exactly registered redirect URIs, WLCG path scopes, a token file kept
//! fresh for a long job, `inspect`, `check`, and FTS-style `exchange`.

use sciauth_test_support::idp;
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::idp::Idp;
use crate::support::{Home, assert_quiet_trace, stderr};

const API: &str = "https://api.example.test";
const OTHER: &str = "https://other.example.test";
const CC_SECRET: &str = "cc-basic-secret";
const CODE_SECRET: &str = "code-secret-secret";
/// The longest any one step of these tests may take before it counts as hung (generous: the
/// machine is shared; no test asserts a timing).
const PATIENCE: Duration = Duration::from_secs(120);

fn claims(jwt: &str) -> Value {
    let payload = jwt.trim().split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn count(idp: &Idp, grant: &str) -> u64 {
    idp.counts().await["requests"][grant].as_u64().unwrap_or(0)
}

/// Writes `~/.config/sciauth/<name>` with `text` (0600) and returns its path.
fn secret_file(home: &Home, name: &str, text: &str) -> String {
    let path = home.path(&format!("config/sciauth/{name}"));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `sciauth login --device`, approving the code as `alice` through the provider's pages.
async fn device_login(home: &Home, idp: &Idp, args: &[&str]) {
    let command = home.command(&[&["login", "--device"][..], args].concat());
    support::device_login(command, idp.issuer()).await;
}

/// The output of `sciauth token --json`.
async fn token_json(home: &Home, args: &[&str]) -> Value {
    let out = home.ok(&[&["token", "--json"][..], args].concat()).await;
    serde_json::from_str(&out).unwrap()
}

/// Two ports free on 127.0.0.1 just now.
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// Asserts that a traced run of `sciauth token` (with the provider gone) started no thread,
/// opened no socket and never opened any of `secrets`.
async fn assert_cached_path_is_quiet(home: &Home, args: &[&str], expected: &str, secrets: &[&str]) {
    let trace = home.path("trace");
    let out = home
        .traced(
            &trace,
            "clone,clone3,fork,vfork,socket,connect,openat,open",
            args,
        )
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected.trim());
    let calls = std::fs::read_to_string(&trace).unwrap();
    assert_quiet_trace(&calls, secrets, &format!("{args:?}"));
}

// ------------------------------------------------------------------------ 1. robots

#[tokio::test]
async fn a_robot_with_a_secret_needs_no_login_and_keeps_its_token() {
    let idp = Idp::start().await;
    let home = Home::new();
    secret_file(&home, "basic.secret", &format!("{CC_SECRET}\n"));
    secret_file(&home, "post.secret", "cc-post-secret\n");
    home.config(&format!(
        r#"
default_profile = "robot"

[profiles.robot]
issuer = "{issuer}"
client_id = "cc-basic"
grant = "client_credentials"
client_secret_file = "basic.secret"
audience_parameter = "resource"

[profiles.posting]
issuer = "{issuer}"
client_id = "cc-post"
grant = "client_credentials"
client_auth = "post"
client_secret_env = "SCIAUTH_TEST_CC_POST_SECRET"

[profiles.wrong]
issuer = "{issuer}"
client_id = "cc-basic"
grant = "client_credentials"
client_secret_file = "post.secret"
"#,
        issuer = idp.issuer()
    ));

    // No login: `login` says so, and touches neither the provider nor the store.
    let out = home.run(&["login"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("needs no login"), "{}", stderr(&out));
    assert_eq!(count(&idp, "client_credentials").await, 0);

    // The first token is the client's own, then it comes from the store.
    let first = home.ok(&["token"]).await;
    assert_eq!(count(&idp, "client_credentials").await, 1);
    assert!(home.store_file("robot").exists());
    assert_eq!(home.ok(&["token"]).await, first);
    assert_eq!(count(&idp, "client_credentials").await, 1);

    // Scopes and an audience: another token of its own, a JWT for the API, kept beside.
    let api = token_json(&home, &["--scope", "api:read", "--audience", API]).await;
    let c = claims(api["access_token"].as_str().unwrap());
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str()),
        (Some("cc-basic"), Some(API))
    );
    assert_eq!(c["scope"], "api:read");
    assert_eq!(count(&idp, "client_credentials").await, 2);
    let again = token_json(&home, &["--scope", "api:read", "--audience", API]).await;
    assert_eq!(again["access_token"], api["access_token"]);
    assert_eq!(home.ok(&["token"]).await, first);

    // --min-valid beyond the token's life: a new one from the grant, not a login.
    let out = home.run(&["token", "--min-valid", "3600"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(String::from_utf8_lossy(&out.stdout), first);
    assert_eq!(count(&idp, "client_credentials").await, 3);

    // client_secret_post, the secret in a variable.
    let out = home
        .command(&["--profile", "posting", "token"])
        .env("SCIAUTH_TEST_CC_POST_SECRET", "cc-post-secret")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&idp, "client_credentials").await, 4);

    // A wrong secret: refused (5), and the secret is in no output.
    let out = home.run(&["--profile", "wrong", "token"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid_client"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    // list shows the robot and how it renews, never a secret or token.
    let listed = home.ok(&["list"]).await;
    assert!(
        listed.contains("robot") && listed.contains("client credentials"),
        "{listed}"
    );
    for secret in [CC_SECRET, "cc-post-secret", first.trim()] {
        assert!(!listed.contains(secret), "{listed}");
    }
}

/// An EC P-256 key: its PKCS#8 PEM and the public JWKS the provider gets.
fn ec_key() -> (String, Value) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "robot-key", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]});
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(pkcs8.as_ref())
    );
    (pem, jwks)
}

#[tokio::test]
async fn a_robot_with_a_private_key_jwt_and_its_cached_path_reads_no_secret() {
    let home = Home::new();
    let (pem, jwks) = ec_key();
    let key = secret_file(&home, "robot.pem", &pem);
    let jwks_file = home.path("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let idp = Idp::start_with(&[("PKJWT_JWKS_FILE", jwks_file.to_str().unwrap())]).await;
    secret_file(&home, "cc.secret", &format!("{CC_SECRET}\n"));
    home.config(&format!(
        r#"
[profiles.keyed]
issuer = "{issuer}"
client_id = "pkjwt-client"
grant = "client_credentials"
client_auth = "private_key_jwt"
client_key_file = "robot.pem"
client_key_alg = "ES256"
client_key_id = "robot-key"
audience = "{API}"
audience_parameter = "resource"
scopes = ["api:write"]

[profiles.secret]
issuer = "{issuer}"
client_id = "cc-basic"
grant = "client_credentials"
client_secret_file = "cc.secret"

[profiles.badkey]
issuer = "{issuer}"
client_id = "pkjwt-client"
grant = "client_credentials"
client_auth = "private_key_jwt"
client_key_file = "cc.secret"
"#,
        issuer = idp.issuer()
    ));

    // Signed with the key: a JWT for the API whose subject is the client, with the profile's
    // scopes (asked for when the command line names none). Each grant needs a fresh
    // assertion (a replayed jti is refused), so asking twice proves two were made.
    let token = home.ok(&["--profile", "keyed", "token"]).await;
    let c = claims(&token);
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str(), c["scope"].as_str()),
        (Some("pkjwt-client"), Some(API), Some("api:write"))
    );
    let out = home
        .run(&[
            "--profile",
            "keyed",
            "token",
            "--scope",
            "api:write",
            "--min-valid",
            "3600",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(idp.counts().await["success"]["client_credentials"], 2);
    let secret_token = home.ok(&["--profile", "secret", "token"]).await;

    // A key file that is no key: a configuration error (3) naming the profile, found when
    // the grant is about to run.
    let out = home.run(&["--profile", "badkey", "token"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("profile badkey: client_key_file"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(CC_SECRET));

    // The cached path of a robot, traced with the provider gone: no thread, no socket, and
    // neither the key nor the secret file opened.
    drop(idp);
    for (args, expected) in [
        (
            &["--profile", "keyed", "token", "--scope", "api:write"][..],
            token.as_str(),
        ),
        (&["--profile", "secret", "token"][..], secret_token.as_str()),
    ] {
        assert_cached_path_is_quiet(&home, args, expected, &[&key, "cc.secret"]).await;
    }
    // A token the store cannot give takes the full path: the provider is gone (6).
    let out = home
        .run(&["--profile", "keyed", "token", "--min-valid", "999999"])
        .await;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
}

// ------------------------------------------------------------------------ 2. redirects

/// Runs `sciauth login --browser --no-browser ARGS`, drives the provider's pages for the URL
/// it prints, and returns that URL and the page the loopback server answered.
async fn browser_login(home: &Home, args: &[&str]) -> (String, u16, String) {
    let mut child = home
        .command(&[&["login", "--browser", "--no-browser"][..], args].concat())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut shown = String::new();
    let mut url = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        shown.push_str(&line);
        shown.push('\n');
        if let Some(found) = line.trim().strip_prefix("http") {
            url = Some(format!("http{found}"));
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("no login URL: {shown}"));
    let (status, page) = idp::browser_login(&url).await;
    while let Some(line) = lines.next_line().await.unwrap() {
        shown.push_str(&line);
        shown.push('\n');
    }
    let exit = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "login failed: {shown}");
    (url, status, page)
}

fn query(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn a_provider_that_accepts_only_registered_redirects_gets_them() {
    let (first, second) = free_ports();
    let registered = |port: u16| format!("http://127.0.0.1:{port}/callback");
    let uris = format!("{} {}", registered(first), registered(second));
    let idp = Idp::start_with(&[("EXACT_REDIRECT_URIS", &uris)]).await;

    // The provider really refuses any other port (what a random loopback port gets).
    let (other, _) = free_ports();
    let refused = idp::client()
        .get(format!(
            "{}/auth?client_id=exact-redirect&response_type=code&scope=openid&state=s\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256&redirect_uri=http%3A%2F%2F127.0.0.1%3A{other}%2Fcallback",
            idp.issuer()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");

    let home = Home::new();
    home.config(&format!(
        r#"
[profiles.ports]
issuer = "{issuer}"
client_id = "exact-redirect"
scopes = ["openid", "offline_access"]
redirect_ports = [{first}, {second}]
login_params = {{ idphint = "https://idp.example.org/profile", skin = "default" }}

[profiles.exact]
issuer = "{issuer}"
client_id = "exact-redirect"
scopes = ["openid", "offline_access"]
redirect_uri = "{exact}"
"#,
        issuer = idp.issuer(),
        exact = registered(first)
    ));

    // The first registered port is busy: the login listens on the second, and sends it.
    let busy = std::net::TcpListener::bind(("127.0.0.1", first)).unwrap();
    let (url, status, page) =
        browser_login(&home, &["--profile", "ports", "--param", "skin=cli"]).await;
    assert_eq!(query(&url, "redirect_uri"), Some(registered(second)));
    assert_eq!(
        query(&url, "idphint").as_deref(),
        Some("https://idp.example.org/profile")
    );
    // --param replaces the profile's parameter of the same name.
    assert_eq!(query(&url, "skin").as_deref(), Some("cli"));
    assert_eq!(
        (status, page.contains("Login complete")),
        (200, true),
        "{page}"
    );
    let token = home.ok(&["--profile", "ports", "token"]).await;
    assert!(!token.trim().is_empty());

    // The exact URI, while its port is busy: a clear failure, no other port tried.
    let out = home
        .run(&["--profile", "exact", "login", "--browser", "--no-browser"])
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("cannot listen on 127.0.0.1:{first}")),
        "{}",
        stderr(&out)
    );
    drop(busy);

    // Free again: the exact URI, sent exactly.
    let (url, status, _) = browser_login(&home, &["--profile", "exact"]).await;
    assert_eq!(query(&url, "redirect_uri"), Some(registered(first)));
    assert_eq!(status, 200);
    assert_eq!(idp.counts().await["success"]["authorization_code"], 2);
}

// ------------------------------------------------------------------------ 3. WLCG scopes

#[tokio::test]
async fn wlcg_paths_below_the_grant_are_down_scoped_and_wider_ones_named() {
    let idp = Idp::start().await;
    let home = Home::new();
    secret_file(&home, "wlcg.secret", &format!("{CODE_SECRET}\n"));
    home.config(&format!(
        r#"
[profiles.wlcg]
issuer = "{}"
client_id = "code-secret"
client_secret_file = "wlcg.secret"
scopes = ["openid", "offline_access", "storage.read:/", "storage.create:/home"]
"#,
        idp.issuer()
    ));
    device_login(&home, &idp, &[]).await;
    let login = token_json(&home, &[]).await;
    let login_token = login["access_token"].as_str().unwrap().to_owned();
    idp.reset_counts().await;

    // A path below the grant's: a refresh for a token with exactly that scope.
    let narrow = token_json(&home, &["--scope", "storage.read:/data"]).await;
    assert_eq!(narrow["scopes"], json!(["storage.read:/data"]));
    assert_ne!(narrow["access_token"], login["access_token"]);
    assert_eq!(count(&idp, "refresh_token").await, 1);
    // The provider says so too.
    let introspected: Value = idp::client()
        .post(format!("{}/token/introspection", idp.issuer()))
        .basic_auth("code-secret", Some(CODE_SECRET))
        .form(&[("token", narrow["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            introspected["active"].as_bool(),
            introspected["scope"].as_str()
        ),
        (Some(true), Some("storage.read:/data"))
    );

    // Kept per exact scope set: the narrow token for the narrow scope, the wide one for the
    // grant's own scope; no more refreshes.
    let again = token_json(&home, &["--scope", "storage.read:/data"]).await;
    assert_eq!(again["access_token"], narrow["access_token"]);
    let wide = home.ok(&["token", "--scope", "storage.read:/"]).await;
    assert_eq!(wide.trim(), login_token);
    assert_eq!(count(&idp, "refresh_token").await, 1);
    let create = token_json(&home, &["--scope", "storage.create:/home/alice/out"]).await;
    assert_eq!(create["scopes"], json!(["storage.create:/home/alice/out"]));
    assert_eq!(count(&idp, "refresh_token").await, 2);

    // Wider than the grant, another authorization, a path that could escape, a sibling:
    // login required (4), naming what is missing, before the provider is asked.
    for (wanted, why) in [
        (
            "storage.create:/",
            Some("storage.create:/home covers only the paths below it"),
        ),
        (
            "storage.create:/homework",
            Some("storage.create:/home covers only"),
        ),
        ("storage.modify:/home", None),
        ("storage.read:/data/../../etc", None),
    ] {
        let out = home.run(&["token", "--scope", wanted]).await;
        assert_eq!(out.status.code(), Some(4), "{wanted}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("does not have the scopes {wanted} (")),
            "{wanted}: {}",
            stderr(&out)
        );
        if let Some(why) = why {
            assert!(stderr(&out).contains(why), "{}", stderr(&out));
        }
        assert!(out.stdout.is_empty());
    }
    assert_eq!(count(&idp, "refresh_token").await, 2);
}

// ------------------------------------------------------------------------ 4. --watch

/// A running `sciauth token --write-discovery --watch`, its stderr collected line by line.
struct Watch {
    child: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Watch {
    fn start(home: &Home, file: &std::path::Path, args: &[&str]) -> Self {
        let mut child = home
            .command(
                &[
                    &["token", "--write-discovery", "--watch", "--min-valid", "1"][..],
                    args,
                ]
                .concat(),
            )
            .env("BEARER_TOKEN_FILE", file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = lines.clone();
        let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                collected.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            lines,
            reader,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `count` lines contain `needle`.
    async fn until(&self, needle: &str, count: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.lines().iter().filter(|l| l.contains(needle)).count() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {count} lines with {needle:?}: {:#?}",
                self.lines()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn watch_keeps_the_token_file_fresh_and_rides_out_an_outage() {
    let env = [("AT_TTL", "20")];
    let idp = Idp::start_with(&env).await;
    let port = idp.port().to_string();
    let home = Home::new();
    secret_file(&home, "cc.secret", &format!("{CC_SECRET}\n"));
    home.config(&format!(
        r#"
[profiles.robot]
issuer = "{}"
client_id = "cc-basic"
grant = "client_credentials"
client_secret_file = "cc.secret"
"#,
        idp.issuer()
    ));
    let file = home.path("bt_job");
    let mut watch = Watch::start(&home, &file, &[]);

    watch.until("written to", 1).await;
    let first = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Renewed ahead of expiry (the token lives 20 s): a new token in the file, one line
    // per grant at the provider.
    watch.until("renewed in", 1).await;
    let second = std::fs::read_to_string(&file).unwrap();
    assert_ne!(first, second);
    let grants = idp.counts().await["success"]["client_credentials"].as_u64();
    let logged = watch
        .lines()
        .iter()
        .filter(|l| l.contains("renewed in") || l.contains("written to"))
        .count() as u64;
    assert_eq!(grants, Some(logged), "{:#?}", watch.lines());

    // The provider goes away: the next renewal fails and is retried, the file stays.
    idp.stop().await;
    watch.until("cannot renew the token", 1).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), second);
    // It comes back (same address, no memory: a robot does not care), and the next
    // attempt renews.
    let renewed = watch
        .lines()
        .iter()
        .filter(|l| l.contains("renewed in"))
        .count();
    let idp = Idp::start_with(&[env[0], ("PORT", port.as_str())]).await;
    watch.until("renewed in", renewed + 1).await;
    let third = std::fs::read_to_string(&file).unwrap();
    assert_ne!(third, second);
    assert!(count(&idp, "client_credentials").await >= 1);

    // Written once, then renewed, each line naming the file; nothing of the token.
    let lines = watch.lines();
    assert_eq!(lines.iter().filter(|l| l.contains("written to")).count(), 1);
    let path = file.display().to_string();
    for line in lines.iter().filter(|l| l.contains("renewed in")) {
        assert!(line.contains(&path), "{line}");
    }
    for line in &lines {
        for token in [&first, &second, &third] {
            assert!(!line.contains(token.trim()), "{line}");
        }
    }
    watch.child.kill().await.unwrap();
}

#[tokio::test]
async fn watch_ends_with_a_clear_message_when_the_grant_is_gone() {
    let idp = Idp::start_with(&[("AT_TTL", "20")]).await;
    let home = Home::new();
    secret_file(&home, "w.secret", &format!("{CODE_SECRET}\n"));
    home.config(&format!(
        r#"
[profiles.user]
issuer = "{}"
client_id = "code-secret"
client_secret_file = "w.secret"
scopes = ["openid", "offline_access"]
"#,
        idp.issuer()
    ));
    device_login(&home, &idp, &[]).await;
    let file = home.path("bt_job");
    let mut watch = Watch::start(&home, &file, &[]);
    watch.until("written to", 1).await;
    watch.until("renewed in", 1).await;

    // A provider that has forgotten the grant (restarted without its memory): the refresh
    // token is refused, and the watch ends saying the file is no longer renewed (4).
    let _idp = idp.restart().await;
    let status = tokio::time::timeout(PATIENCE, watch.child.wait())
        .await
        .expect("the watch ends")
        .unwrap();
    // Everything it wrote is read once its stderr is closed.
    tokio::time::timeout(PATIENCE, &mut watch.reader)
        .await
        .expect("stderr ends")
        .unwrap();
    assert_eq!(status.code(), Some(4), "{:#?}", watch.lines());
    let lines = watch.lines().join("\n");
    assert!(lines.contains("no longer renewed"), "{lines}");
    assert!(lines.contains("log in again"), "{lines}");
}

// ------------------------------------------------------------------------ 5. inspect

/// A profile `demo` for the confidential client `code-secret`, tokens for the API.
fn configure_demo(home: &Home, idp: &Idp, extra: &str) {
    secret_file(home, "demo.secret", &format!("{CODE_SECRET}\n"));
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
{extra}
"#,
        idp.issuer()
    ));
}

/// Runs the command with `input` on stdin.
async fn with_stdin(home: &Home, args: &[&str], input: &str) -> std::process::Output {
    let mut child = home
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    child.wait_with_output().await.unwrap()
}

#[tokio::test]
async fn inspect_shows_and_verifies_the_profiles_token() {
    let idp = Idp::start().await;
    let home = Home::new();
    configure_demo(&home, &idp, "");
    device_login(&home, &idp, &[]).await;
    let token = home.ok(&["token"]).await.trim().to_owned();

    // The profile's token, as a table: header, claims, dates, lifetime left.
    let table = home.ok(&["inspect"]).await;
    for expected in [
        "alg",
        "RS256",
        "at+jwt",
        "sub",
        "alice",
        API,
        "left of 10m 0s",
        "not verified",
    ] {
        assert!(table.contains(expected), "{expected}: {table}");
    }
    let exp = claims(&token)["exp"].as_u64().unwrap();
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("exp"))
        .unwrap();
    assert!(
        line.contains(&exp.to_string()) && line.contains("Z (in "),
        "{line}"
    );
    assert!(line.contains(&format!("{}T", &rfc3339_date(exp))), "{line}");

    // From stdin, as JSON, verified against the issuer's keys and the profile's audience.
    let out = with_stdin(
        &home,
        &["inspect", "-", "--json", "--verify"],
        &format!("Bearer {token}\n"),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["claims"]["sub"], "alice");
    assert_eq!(json["header"]["typ"], "at+jwt");
    assert_eq!(json["times"]["exp"]["unix"], exp);
    assert_eq!(json["verified"], true);
    assert_eq!(json["lifetime"], 600);

    // Another audience, or a forged signature: not valid (5), and the table says why.
    let out = home
        .run(&["inspect", &token, "--verify", "--audience", OTHER])
        .await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT VALID"));
    let (head, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
    let out = home.run(&["inspect", &forged, "--verify"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));

    // An opaque token has nothing to show: a clear error (3).
    let out = home.run(&["inspect", "opaque-token-value"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a JWT"), "{}", stderr(&out));
}

/// The `YYYY-MM-DD` of Unix second `secs`, by `date`.
fn rfc3339_date(secs: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn inspect_escapes_whatever_a_hostile_token_carries() {
    let home = Home::new();
    let header = json!({"alg": "none", "kid": "k\u{1b}]8;;http://evil\u{7}", "typ": "JWT\u{202e}"});
    let payload = json!({
        "sub": "alice\u{1b}[2J\u{1b}[31mroot",
        "iss\u{1b}[1A": "forged\nline",
        "exp": 99_999_999_999_999u64,
        "iat": -5,
        "nested": {"a\u{200b}": ["\u{9b}31m", 1.5e300]},
    });
    let token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    for args in [&["inspect", "-"][..], &["inspect", "-", "--json"]] {
        let out = with_stdin(&home, args, &token).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let shown = String::from_utf8(out.stdout).unwrap();
        for bad in ['\u{1b}', '\u{7}', '\u{202e}', '\u{200b}', '\u{9b}'] {
            assert!(!shown.contains(bad), "{args:?}: {bad:?} in {shown}");
        }
        assert!(!shown.contains("forged\nline"), "{shown}");
        // A time beyond the calendar is shown saturated, not a crash.
        assert!(shown.contains("9999-12-31T23:59:59Z"), "{args:?}: {shown}");
        if args.contains(&"--json") {
            // Escaped, then JSON-encoded: a reader of the JSON gets the escaped text.
            let json: Value = serde_json::from_str(&shown).unwrap();
            assert_eq!(json["claims"]["sub"], "alice\\x1b[2J\\x1b[31mroot");
            assert_eq!(json["claims"]["iss\\x1b[1A"], "forged\\nline");
        } else {
            assert!(shown.contains("alice\\x1b[2J\\x1b[31mroot"), "{shown}");
        }
    }
    // Not JSON, not base64: errors that quote nothing of it.
    let out = with_stdin(&home, &["inspect", "-"], "e30.\u{1b}[2J.x").await;
    assert_eq!(out.status.code(), Some(3));
    assert!(!stderr(&out).contains('\u{1b}'), "{}", stderr(&out));
}

// ------------------------------------------------------------------------ 6. check

#[tokio::test]
async fn check_reports_the_provider_line_by_line() {
    let idp = Idp::start().await;
    let home = Home::new();
    configure_demo(
        &home,
        &idp,
        &format!(
            r#"
[profiles.robot]
issuer = "{issuer}"
client_id = "cc-basic"
grant = "client_credentials"
client_secret_file = "robot.secret"

[profiles.gone]
issuer = "http://127.0.0.1:9"
client_id = "x"
"#,
            issuer = idp.issuer()
        ),
    );
    secret_file(&home, "robot.secret", &format!("{CC_SECRET}\n"));

    // Before a login: the provider's checks pass, the token checks are skipped, saying so.
    let out = home.run(&["check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    for check in [
        "discovery",
        "jwks",
        "grants",
        "pkce",
        "token exchange",
        "revocation",
    ] {
        let line = table
            .lines()
            .find(|l| l.contains(check))
            .unwrap_or_else(|| panic!("{check}: {table}"));
        assert!(line.starts_with("pass"), "{line}");
    }
    assert!(table.contains("log in first"), "{table}");

    device_login(&home, &idp, &[]).await;
    idp.reset_counts().await;
    let out = home.run(&["check", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let status = |check: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == check)
            .map(|c| {
                (
                    c["status"].as_str().unwrap().to_owned(),
                    c["detail"].as_str().unwrap().to_owned(),
                )
            })
            .unwrap_or_else(|| panic!("no {check}: {report}"))
    };
    assert_eq!(status("access token").0, "pass", "{report}");
    assert!(status("access token").1.contains("at+jwt"));
    assert_eq!(status("audience").0, "pass", "{report}");
    let (rotation, detail) = status("refresh rotation");
    assert_eq!(rotation, "pass", "{detail}");
    assert_eq!(count(&idp, "refresh_token").await, 1);
    assert_eq!(status("jwks").0, "pass");

    // A robot: its own (opaque) token, no PKCE or rotation to check.
    let out = home.run(&["--profile", "robot", "check", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let robot: Value = serde_json::from_slice(&out.stdout).unwrap();
    let robot_status = |check: &str| {
        robot["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == check)
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(robot_status("pkce"), "skip");
    assert_eq!(robot_status("refresh rotation"), "skip");
    assert_eq!(robot_status("access token"), "warn");
    assert_eq!(robot_status("introspection"), "pass");

    // A provider that is not there: the discovery check fails, exit 1.
    let out = home.run(&["--profile", "gone", "check"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("fail") && l.contains("discovery")),
        "{table}"
    );
}

// ------------------------------------------------------------------------ 7. exchange

#[tokio::test]
async fn exchange_delegates_as_fts_does() {
    let idp = Idp::start().await;
    let home = Home::new();
    secret_file(&home, "fts.secret", &format!("{CC_SECRET}\n"));
    configure_demo(
        &home,
        &idp,
        &format!(
            r#"
[profiles.delegating]
issuer = "{issuer}"
client_id = "native-app"
scopes = ["openid", "offline_access", "api:read"]
audience = "{API}"
audience_parameter = "resource"
exchange_client = "fts"

[profiles.fts]
issuer = "{issuer}"
client_id = "cc-basic"
grant = "client_credentials"
client_secret_file = "fts.secret"
audience_parameter = "resource"
"#,
            issuer = idp.issuer()
        ),
    );
    device_login(&home, &idp, &[]).await;
    let user_token = home.ok(&["token"]).await.trim().to_owned();

    // A refresh token for the exchanging client, as FTS asks: printed alone, and usable.
    let refresh = home
        .ok(&[
            "exchange",
            "--audience",
            API,
            "--requested-token-type",
            "refresh_token",
        ])
        .await;
    let refresh = refresh.trim();
    assert!(!refresh.is_empty() && refresh != user_token);
    let refreshed = idp::client()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth("code-secret", Some(CODE_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);

    // The subject from stdin, JSON out: another audience, one scope.
    let out = with_stdin(
        &home,
        &[
            "exchange",
            "--subject-token",
            "-",
            "--audience",
            OTHER,
            "--scope",
            "other:read",
            "--json",
        ],
        &user_token,
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(json["refresh_token"], Value::Null);
    let c = claims(json["access_token"].as_str().unwrap());
    assert_eq!(
        (c["aud"].as_str(), c["sub"].as_str()),
        (Some("other-api"), Some("alice"))
    );

    // Another profile's client does the exchange (FTS's own client): a public client's
    // login, a confidential client's delegation.
    device_login(&home, &idp, &["--profile", "delegating"]).await;
    let out = home
        .run(&[
            "--profile",
            "delegating",
            "exchange",
            "--audience",
            OTHER,
            "--scope",
            "other:read",
            "--json",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["client_id"], "cc-basic");
    let c = claims(json["access_token"].as_str().unwrap());
    assert_eq!(
        (c["client_id"].as_str(), c["sub"].as_str()),
        (Some("cc-basic"), Some("alice"))
    );

    // A token on the command line is refused: it would be visible in ps.
    let out = home
        .run(&["exchange", "--subject-token", &user_token])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(!stderr(&out).contains(&user_token));
}
