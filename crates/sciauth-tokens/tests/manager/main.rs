//! The token manager and its stores against the real test identity provider (`tests/idp`,
//! oidc-provider). Every refresh is counted at the provider (`/__test/counts`), never in our
//! code.

use sciauth_test_support::idp;
use sciauth_test_support::logs;

mod concurrency;
mod credential;
mod lookup;
mod processes;
mod rotation;
mod session;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sciauth_tokens::sciauth_credentials::{Clock, ManualClock};
use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::url::Url;
use sciauth_tokens::{
    AudienceParameter, CallbackMode, FileStore, Issuer, OAuthClient, Token, TokenManager,
    TokenRequest, TokenStore,
};
use serde_json::Value;

use crate::idp::Idp;
use crate::logs::logs;

/// The resource server whose tokens are JWTs with `aud` = this URL.
const API: &str = "https://api.example.test";
/// The other resource server; its tokens have `aud` = `other-api`.
const OTHER: &str = "https://other.example.test";
/// The provider's default access token lifetime (AT_TTL).
const AT_TTL: Duration = Duration::from_secs(600);

/// A transport that never goes through a proxy: tests reach only 127.0.0.1.
fn transport() -> Transport {
    Transport::builder()
        .follow_redirects(false)
        .proxy_from_env(false)
        .build()
        .unwrap()
}

async fn issuer(issuer: &str, clock: Arc<dyn Clock>) -> Issuer {
    Issuer::builder(issuer)
        .transport(transport())
        .clock(clock)
        .build()
        .await
        .unwrap()
}

/// `native-app`, the public native client, sending audiences as RFC 8707 `resource`.
fn native_app(issuer: &Issuer) -> OAuthClient {
    OAuthClient::builder(issuer.clone(), "native-app")
        .audience_parameter(AudienceParameter::Resource)
        .build()
}

/// A manager for `native-app` on a file store in `dir`, judging time by `clock` (which the
/// issuer shares), with no jitter.
async fn manager(idp_issuer: &str, dir: &Path, clock: Arc<ManualClock>) -> TokenManager {
    let issuer = issuer(idp_issuer, clock).await;
    TokenManager::builder(FileStore::open(dir).unwrap())
        .client(native_app(&issuer))
        .jitter(|| 0.0)
        .build()
}

/// A manager on any store.
async fn manager_on(
    idp_issuer: &str,
    store: impl TokenStore + 'static,
    clock: Arc<ManualClock>,
) -> TokenManager {
    let issuer = issuer(idp_issuer, clock).await;
    TokenManager::builder(store)
        .client(native_app(&issuer))
        .jitter(|| 0.0)
        .build()
}

/// A browser hook for `CodeLogin::open_with` that completes the provider's login pages
/// headlessly, on a new task.
fn headless() -> impl Fn(&Url) -> io::Result<()> + Send + Sync + 'static {
    move |url: &Url| {
        let url = url.to_string();
        tokio::spawn(async move {
            let (status, body) = idp::browser_login(&url).await;
            assert_eq!(status, 200, "{body}");
        });
        Ok(())
    }
}

/// Logs `request`'s account in through the manager: a headless code login (PKCE, consent,
/// so that a refresh token is issued) asking for the request's scopes and audience, plus
/// `extra_resources` at the authorization endpoint.
async fn login(manager: &TokenManager, request: &TokenRequest, extra_resources: &[&str]) -> Token {
    manager
        .login(request, |client| async move {
            let mut login = client
                .code_login()
                .scopes(request.requested_scopes().iter())
                .prompt("consent")
                .callback(CallbackMode::Loopback)
                .open_with(headless());
            if let Some(audience) = request.requested_audience() {
                login = login.audience(audience);
            }
            for resource in extra_resources {
                login = login.param("resource", *resource);
            }
            login.run().await
        })
        .await
        .unwrap()
}

/// How many refresh_token grants reached the provider.
async fn refreshes(idp: &Idp) -> u64 {
    idp.counts().await["requests"]["refresh_token"]
        .as_u64()
        .unwrap_or(0)
}

/// The claims of a JWT, unverified.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Whether the provider says `token` (issued to native-app) is active.
async fn active(client: &OAuthClient, token: &Token) -> bool {
    client
        .introspect(token.access_token(), None)
        .await
        .unwrap()
        .active()
}
