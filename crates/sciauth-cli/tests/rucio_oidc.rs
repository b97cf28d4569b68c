//! `sciauth rucio` with the Rucio-brokered OIDC login, against the real Rucio server
//! (`tests/peers/rucio`) configured with the real identity provider (`tests/idp`) in its
//! `idpsecrets.json`: the server runs the authorization code flow, the test approves in a
//! headless "browser", and sciauth polls for the token or takes the code the page shows.

use sciauth_test_support::idp;
use sciauth_test_support::rucio;
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::idp::Idp;
use crate::support::{Home, stderr};

/// The Rucio server with OIDC, and the identity provider it brokers.
struct Setup {
    peer: rucio::Peer,
    idp: Idp,
}

async fn setup() -> Setup {
    let peer = rucio::Peer::start_with(&[], true, true);
    let redirect = format!("{}/auth/oidc_code", peer.x509_url());
    let idp = Idp::start_with(&[("RUCIO_REDIRECT_URI", &redirect)]).await;
    peer.oidc(idp.issuer());
    Setup { peer, idp }
}

/// A rucio.cfg for the brokered login as root.
fn write_cfg(path: &Path, setup: &Setup, extra: &str) {
    std::fs::write(
        path,
        format!(
            "[client]\nrucio_host = {url}\nauth_host = {url}\nauth_type = oidc\naccount = root\n\
             ca_cert = {ca}\n{extra}",
            url = setup.peer.url(),
            ca = setup.peer.path("ca_cert").display(),
        ),
    )
    .unwrap();
}

/// A headless browser: opens the login address (the Rucio server's redirect to the identity
/// provider), follows every redirect with a cookie jar (the provider logs in and consents by
/// itself), and returns the page the Rucio server shows at the end.
async fn approve_in_browser(address: &str, ca: &Path) -> String {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let mut url = reqwest::Url::parse(address).unwrap();
    for _ in 0..16 {
        let response = browser.get(url.clone()).send().await.unwrap();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        match location {
            Some(location) => url = url.join(&location).unwrap(),
            None => {
                assert_eq!(response.status(), 200, "the login stopped at {url}");
                return response.text().await.unwrap();
            }
        }
    }
    panic!("the login did not end within 16 redirects");
}

/// Runs `sciauth rucio ARGS` with rucio.cfg, waits for the login address on stderr, approves
/// it in the headless browser and, without polling, types the code the page shows. Returns
/// the command's output.
async fn login_through_browser(
    home: &Home,
    cfg: &Path,
    ca: &Path,
    args: &[&str],
    type_code: bool,
) -> std::process::Output {
    let mut command = home.command(args);
    command
        .env("RUCIO_CONFIG", cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let address = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("sciauth showed no login address")
            .unwrap()
            .unwrap_or_else(|| panic!("sciauth ended without a login address: {seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if let Some(address) = line.trim().strip_prefix("https://") {
            break format!("https://{address}");
        }
    };
    assert!(address.contains("/auth/oidc_redirect?"), "{address}");
    let page = approve_in_browser(&address, ca).await;
    if type_code {
        // auth_granted.html shows the code in bold.
        let code = page
            .split("<b>")
            .nth(1)
            .and_then(|rest| rest.split("</b>").next())
            .map(str::trim)
            .unwrap_or_else(|| panic!("no code on the page: {page}"));
        stdin
            .write_all(format!("{code}\n").as_bytes())
            .await
            .unwrap();
    }
    drop(stdin);
    let rest = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    let mut out = child.wait_with_output().await.unwrap();
    seen.push_str(&rest.await.unwrap());
    out.stderr = seen.into_bytes();
    out
}

fn shared_token(home: &Home) -> PathBuf {
    home.path("tmp/tester/.rucio_tester/auth_token_for_account_root")
}

async fn count(idp: &Idp, path: &[&str]) -> u64 {
    let mut value = idp.counts().await;
    for key in path {
        value = value[*key].clone();
    }
    value.as_u64().unwrap_or(0)
}

#[tokio::test]
async fn the_rucio_brokered_login_polls_refreshes_and_is_shared() {
    let setup = setup().await;
    let home = Home::new();
    let cfg = home.path("rucio.cfg");
    let ca = setup.peer.path("ca_cert");
    write_cfg(
        &cfg,
        &setup,
        "oidc_polling = true\nauth_oidc_refresh_active = true\nauth_oidc_refresh_before_exp = 2\n",
    );

    let out = login_through_browser(&home, &cfg, &ca, &["rucio", "whoami"], false).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("account     : root"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count(&setup.idp, &["authorization"]).await, 1);
    assert_eq!(
        count(&setup.idp, &["success", "authorization_code"]).await,
        1
    );
    // The token is the provider's JWT, kept where the Rucio client keeps it, with the expiry
    // file it keeps for refreshed tokens.
    let token = std::fs::read_to_string(shared_token(&home)).unwrap();
    assert_eq!(token.split('.').count(), 3, "not a JWT");
    let expiry = home.path("tmp/tester/.rucio_tester/auth_token_exp_for_account_root");
    assert!(
        std::fs::read_to_string(&expiry)
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    let mut command = home.command(&["rucio", "token"]);
    command.env("RUCIO_CONFIG", &cfg);
    let out = command.output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), token);

    // The official client takes the token without a browser.
    let rucio = rucio::workspace_root().join(".venv/bin/rucio");
    let mut command = home.program(&rucio, &["whoami"]);
    command.env("RUCIO_CONFIG", &cfg);
    let out = command.output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("root"));
    assert_eq!(count(&setup.idp, &["authorization"]).await, 1);

    // Due for renewal (the provider's tokens live 10 minutes; 15 minutes before expiry):
    // the server refreshes at the provider, without the user.
    write_cfg(
        &cfg,
        &setup,
        "oidc_polling = true\nauth_oidc_refresh_active = true\nauth_oidc_refresh_before_exp = 15\n",
    );
    setup.peer.age_tokens("root");
    let mut command = home.command(&["rucio", "whoami"]);
    command.env("RUCIO_CONFIG", &cfg);
    let out = command.output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&setup.idp, &["success", "refresh_token"]).await, 1);
    assert_eq!(count(&setup.idp, &["authorization"]).await, 1);
    let refreshed = std::fs::read_to_string(shared_token(&home)).unwrap();
    assert_ne!(refreshed, token);
    assert_eq!(refreshed.split('.').count(), 3);
    for secret in [token.as_str(), refreshed.as_str()] {
        assert!(!stderr(&out).contains(secret), "{}", stderr(&out));
    }
}

#[tokio::test]
async fn the_rucio_brokered_login_takes_the_code_the_browser_shows() {
    let setup = setup().await;
    let home = Home::new();
    let cfg = home.path("rucio.cfg");
    let ca = setup.peer.path("ca_cert");
    write_cfg(&cfg, &setup, "");
    let out = login_through_browser(&home, &cfg, &ca, &["rucio", "token", "--json"], true).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = answer["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "{answer}");
    assert!(answer["expires_in"].as_u64().unwrap() > 500, "{answer}");
    assert_eq!(count(&setup.idp, &["authorization"]).await, 1);

    // No code and no terminal: one line, no hang.
    let other = Home::new();
    let mut command = other.command(&["rucio", "whoami"]);
    command.env("RUCIO_CONFIG", &cfg);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("sciauth waited for a code nobody can type")
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("oidc_polling"), "{}", stderr(&out));

    // oidc_auto sent the identity provider's password to the server: refused.
    write_cfg(&cfg, &setup, "oidc_auto = true\n");
    let mut command = other.command(&["rucio", "whoami"]);
    command.env("RUCIO_CONFIG", &cfg);
    let out = command.output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("oidc_auto"), "{}", stderr(&out));
}
