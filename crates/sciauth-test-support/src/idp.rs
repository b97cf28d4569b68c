//! The test identity provider (`tests/idp`, panva's oidc-provider) as a child process, and
//! headless drivers for its login pages.
//!
//! Every address it touches is on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long the provider may take to print its issuer (it generates an RSA key first).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The most redirects a headless login follows before giving up (the README says 12 is a
/// safe upper bound).
const MAX_HOPS: usize = 16;

/// The `tests/idp` folder of the workspace.
pub fn idp_dir() -> PathBuf {
    // CARGO_MANIFEST_DIR is crates/<crate>; the provider lives at the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp")
}

/// A running provider. Dropping it kills the process (and closing its stdin makes it exit
/// even if this process dies without running drop).
#[derive(Debug)]
pub struct Idp {
    issuer: String,
    port: u16,
    env: Vec<(String, String)>,
    child: Child,
    // Kept open: the provider exits when its stdin closes.
    stdin: Option<ChildStdin>,
    // Kept so the pipe stays open; the provider prints nothing after ISSUER=.
    _stdout: Option<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
}

impl Idp {
    /// Starts a provider with default settings on a free port.
    pub async fn start() -> Idp {
        Self::start_with(&[]).await
    }

    /// Starts a provider with these environment knobs (see tests/idp/README.md), e.g.
    /// `[("AT_TTL", "5"), ("ROTATE_REFRESH_TOKEN", "0")]`.
    pub async fn start_with(env: &[(&str, &str)]) -> Idp {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::spawn(env).await
    }

    async fn spawn(env: Vec<(String, String)>) -> Idp {
        let dir = idp_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test identity provider is not installed: run `cargo xtask setup` (or `npm ci` \
             in {})",
            dir.display()
        );
        let mut command = Command::new("node");
        command
            .arg("server.mjs")
            .current_dir(&dir)
            .env("EXIT_ON_STDIN_CLOSE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &env {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .expect("`node` runs (install Node.js 20+, or run `cargo xtask setup`)");
        let stdin = child.stdin.take();
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let stderr = stderr.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let read_issuer = async {
            let mut line = String::new();
            loop {
                line.clear();
                if stdout.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return None;
                }
                if let Some(issuer) = line.trim().strip_prefix("ISSUER=") {
                    return Some(issuer.to_owned());
                }
            }
        };
        let issuer = tokio::time::timeout(START_TIMEOUT, read_issuer)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                panic!(
                    "the test identity provider did not start; its stderr:\n{}",
                    stderr.lock().unwrap()
                )
            });
        let port = issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the issuer ends in :<port>");
        Idp {
            issuer,
            port,
            env,
            child,
            stdin,
            _stdout: Some(stdout),
            stderr,
        }
    }

    /// The issuer, `http://127.0.0.1:<port>`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the provider wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Stops the provider and waits until it has exited.
    pub async fn stop(mut self) {
        self.stdin.take();
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Stops the provider and starts a new one on the same port with the same settings: the
    /// same issuer, but a new signing key (new `kid`) and no memory of earlier tokens.
    pub async fn restart(mut self) -> Idp {
        let port = self.port.to_string();
        let mut env = std::mem::take(&mut self.env);
        env.retain(|(k, _)| k != "PORT");
        env.push(("PORT".to_owned(), port));
        self.stop().await;
        Self::spawn(env).await
    }

    /// `GET /__test/counts`: requests per grant type, successes, failures per error code.
    pub async fn counts(&self) -> Value {
        let body = client()
            .get(format!("{}/__test/counts", self.issuer))
            .send()
            .await
            .expect("the provider answers")
            .text()
            .await
            .expect("the provider answers");
        serde_json::from_str(&body).expect("counts are JSON")
    }

    /// `POST /__test/reset-counts`.
    pub async fn reset_counts(&self) {
        client()
            .post(format!("{}/__test/reset-counts", self.issuer))
            .send()
            .await
            .expect("the provider answers");
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.start_kill();
    }
}

/// A client with a fresh cookie jar that follows no redirects and uses no proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a reqwest client")
}

/// Follows the provider's 303s from `authorization_url` with a fresh cookie jar (login and
/// consent are automatic) until a `Location` starts with the request's `redirect_uri`, and
/// returns that final URL (`…/callback?code=…&state=…&iss=…`), without requesting it.
pub async fn follow_login(authorization_url: &str) -> String {
    follow_login_with(&client(), authorization_url, false).await
}

/// Like [`follow_login`], but denies at the first interaction (`/interaction/<uid>/abort`),
/// which ends in `…/callback?error=access_denied&state=…`.
pub async fn follow_login_denied(authorization_url: &str) -> String {
    follow_login_with(&client(), authorization_url, true).await
}

async fn follow_login_with(
    client: &reqwest::Client,
    authorization_url: &str,
    deny: bool,
) -> String {
    let start = reqwest::Url::parse(authorization_url).expect("an absolute authorization URL");
    let redirect_uri = start
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .expect("the authorization URL has a redirect_uri");
    let mut url = start;
    for _ in 0..MAX_HOPS {
        if deny && url.path().starts_with("/interaction/") && !url.path().ends_with("/abort") {
            url = url.join(&format!("{}/abort", url.path())).unwrap();
        }
        let response = client
            .get(url.clone())
            .send()
            .await
            .expect("the provider answers");
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let Some(location) = location else {
            let body = response.text().await.unwrap_or_default();
            panic!("login stopped at {url} with {status} and no redirect: {body}");
        };
        if location.starts_with(&redirect_uri) {
            return location;
        }
        url = url.join(&location).expect("a valid Location");
    }
    panic!("login did not reach {redirect_uri} within {MAX_HOPS} redirects");
}

/// GETs `url` (on our loopback redirect server) and returns status and body.
pub async fn get(url: &str) -> (u16, String) {
    let response = client().get(url).send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Drives a whole browser login: follows the provider's redirects, then requests the final
/// redirect on the loopback server. Returns the page the loopback server answered.
pub async fn browser_login(authorization_url: &str) -> (u16, String) {
    let callback = follow_login(authorization_url).await;
    get(&callback).await
}

/// Approves the device flow's `user_code` as the device page would (fresh jar: GET the
/// page, POST its xsrf with `confirm=yes`, follow the redirects to the success page).
/// `login_hint` picks the user; by default the provider's `DEVICE_USER`.
pub async fn device_approve(issuer: &str, user_code: &str, login_hint: Option<&str>) {
    let client = client();
    let xsrf = device_xsrf(&client, issuer, user_code).await;
    let mut form = vec![
        ("xsrf", xsrf.as_str()),
        ("user_code", user_code),
        ("confirm", "yes"),
    ];
    if let Some(hint) = login_hint {
        form.push(("login_hint", hint));
    }
    let response = client
        .post(format!("{issuer}/device"))
        .form(&form)
        .send()
        .await
        .expect("the provider answers");
    let mut url = reqwest::Url::parse(&format!("{issuer}/device")).unwrap();
    let mut response = response;
    for _ in 0..MAX_HOPS {
        let Some(location) = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned)
        else {
            let page = page_marker(&response);
            assert_eq!(
                page.as_deref(),
                Some("success"),
                "device approval ended on a {} page",
                response.status()
            );
            return;
        };
        url = url.join(&location).unwrap();
        response = client
            .get(url.clone())
            .send()
            .await
            .expect("the provider answers");
    }
    panic!("device approval did not finish within {MAX_HOPS} redirects");
}

/// Denies the device flow's `user_code` (the confirm page's Abort button).
pub async fn device_deny(issuer: &str, user_code: &str) {
    let client = client();
    let xsrf = device_xsrf(&client, issuer, user_code).await;
    let response = client
        .post(format!("{issuer}/device"))
        .form(&[
            ("xsrf", xsrf.as_str()),
            ("user_code", user_code),
            ("abort", "yes"),
        ])
        .send()
        .await
        .expect("the provider answers");
    assert_eq!(page_marker(&response).as_deref(), Some("aborted"));
}

async fn device_xsrf(client: &reqwest::Client, issuer: &str, user_code: &str) -> String {
    let url =
        reqwest::Url::parse_with_params(&format!("{issuer}/device"), [("user_code", user_code)])
            .expect("a valid issuer");
    let response = client.get(url).send().await.expect("the provider answers");
    response
        .headers()
        .get("x-test-device-xsrf")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no xsrf on the device page ({})", response.status()))
}

fn page_marker(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("x-test-device-page")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
