//! The library against a deliberately broken identity provider (`tests/support/hostile.rs`):
//! every answer a provider (or whoever sits in its place) can send, each case asserting a
//! typed error of the right kind (or acceptance, for the legal quirks), an answer within the
//! timeout, no panic, and no secret and no control character in `Display` or `Debug`.
//!
//! One module per endpoint: `token` (token responses), `errors` (error bodies),
//! `wire` (what breaks HTTP itself), `discovery`, `jwks`, `device`.

use sciauth_test_support::hostile;

mod device;
mod discovery;
mod errors;
mod jwks;
mod token;
mod wire;

use std::error::Error as _;
use std::future::Future;
use std::time::Duration;

use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::secrecy::SecretString;
use sciauth_tokens::{ClientAuth, Error, ErrorKind, Issuer, OAuthClient, Token};

use crate::hostile::HostileIdp;

/// The client secret every case's client sends; it must never come back out.
const CLIENT_SECRET: &str = "client-secret-Zq81vT";
/// The refresh token refreshes send; it must never come back out.
const REFRESH_TOKEN: &str = "refresh-token-Kx93pW";

/// The caller's own transport, as most users pass one (to set a CA): it follows redirects
/// and has a short timeout. The OAuth layer must refuse redirects whatever this says.
fn transport() -> Transport {
    Transport::builder()
        .follow_redirects(true)
        .proxy_from_env(false)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// Runs `future`, failing the test if it does not finish in 30 s: nothing a provider sends
/// may make a grant hang past its transport's timeout.
async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("the call hung: a hostile answer must end in an error within the timeout")
}

async fn issuer(idp: &HostileIdp) -> Result<Issuer, Error> {
    bounded(Issuer::builder(idp.issuer()).transport(transport()).build()).await
}

/// A confidential client at `idp`, authenticating with `auth`.
async fn client_with(idp: &HostileIdp, auth: ClientAuth) -> OAuthClient {
    let issuer = issuer(idp).await.expect("the default discovery works");
    OAuthClient::builder(issuer, "hostile-client")
        .auth(auth)
        .build()
}

/// A confidential client sending its secret in the form (`client_secret_post`).
async fn client(idp: &HostileIdp) -> OAuthClient {
    client_with(idp, ClientAuth::secret_post(CLIENT_SECRET)).await
}

/// A client credentials grant, as a robot account runs it.
async fn client_credentials(idp: &HostileIdp) -> Result<Token, Error> {
    bounded(client(idp).await.client_credentials().send()).await
}

/// A refresh with [`REFRESH_TOKEN`].
async fn refresh(idp: &HostileIdp) -> Result<Token, Error> {
    let client = client(idp).await;
    bounded(
        client
            .refresh_with(SecretString::from(REFRESH_TOKEN))
            .send(),
    )
    .await
}

/// Everything an error shows, its sources included.
fn shown(error: &Error) -> String {
    let mut text = format!("{error}\n{error:?}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n{cause}\n{cause:?}"));
        source = cause.source();
    }
    text
}

/// `error` is of `kind`, and neither a secret nor a control character shows anywhere in it.
#[track_caller]
fn assert_refused(error: &Error, kind: ErrorKind, secrets: &[&str]) {
    assert_eq!(error.kind(), &kind, "{error}");
    assert_clean(&shown(error), secrets);
}

/// No secret (ours, or one the test planted) and no control character in `text`.
#[track_caller]
fn assert_clean(text: &str, secrets: &[&str]) {
    for secret in [CLIENT_SECRET, REFRESH_TOKEN].iter().chain(secrets) {
        assert!(!text.contains(secret), "{secret:?} shows in: {text}");
    }
    // Debug output spans lines; within them, nothing a terminal would obey.
    for line in text.lines() {
        assert!(
            line.chars()
                .all(|c| !c.is_control() && !('\u{202a}'..='\u{202e}').contains(&c)),
            "a control character shows in: {line:?}"
        );
    }
}
