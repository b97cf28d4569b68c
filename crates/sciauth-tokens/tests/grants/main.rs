//! Every grant against the real test identity provider (`tests/idp`, oidc-provider), started
//! on 127.0.0.1 for each test. One module per grant.

use sciauth_test_support::idp;

mod access_token;
mod client_credentials;
mod code;
mod device;
mod discovery;
mod errors;
mod exchange;
mod id_token;
mod outage;
mod refresh;
mod revocation;

use std::future::Future;
use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::url::Url;
use sciauth_tokens::{AudienceParameter, ClientAuth, Issuer, OAuthClient};
use serde_json::Value;

use crate::idp::Idp;

/// The resource server whose tokens are JWTs with `aud` = this URL.
const API: &str = "https://api.example.test";
/// The other resource server; its tokens have `aud` = `other-api`.
const OTHER: &str = "https://other.example.test";

/// A transport like the default one, but never through a proxy: tests reach only 127.0.0.1.
fn transport() -> Transport {
    Transport::builder()
        .follow_redirects(false)
        .proxy_from_env(false)
        .build()
        .unwrap()
}

async fn issuer(idp: &Idp) -> Issuer {
    Issuer::builder(idp.issuer())
        .transport(transport())
        .build()
        .await
        .unwrap()
}

/// `cc-basic` (client_secret_basic), sending audiences as RFC 8707 `resource`.
fn cc_basic(issuer: &Issuer) -> OAuthClient {
    OAuthClient::builder(issuer.clone(), "cc-basic")
        .auth(ClientAuth::secret_basic("cc-basic-secret"))
        .audience_parameter(AudienceParameter::Resource)
        .build()
}

/// `native-app`, the public native client, sending audiences as RFC 8707 `resource`.
fn native_app(issuer: &Issuer) -> OAuthClient {
    OAuthClient::builder(issuer.clone(), "native-app")
        .audience_parameter(AudienceParameter::Resource)
        .build()
}

/// The claims of a JWT, unverified (the tests check what the provider put in).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A browser hook for `CodeLogin::open_with` that hands the authorization URL to `drive` on
/// a new task, as a browser would get it, and returns at once.
fn headless<F, Fut>(drive: F) -> impl Fn(&Url) -> io::Result<()> + Send + Sync + 'static
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    move |url: &Url| {
        tokio::spawn(drive(url.to_string()));
        Ok(())
    }
}

/// A logged-in user's token from a headless code login (public client, PKCE, consent so
/// that a refresh token is issued).
async fn user_token(
    client: &OAuthClient,
    scopes: &[&str],
    audience: Option<&str>,
) -> sciauth_tokens::Token {
    let mut login = client
        .code_login()
        .scopes(scopes.iter().copied())
        .prompt("consent")
        .callback(sciauth_tokens::CallbackMode::Loopback)
        .open_with(headless(|url| async move {
            let (status, body) = idp::browser_login(&url).await;
            assert_eq!(status, 200, "{body}");
        }));
    if let Some(audience) = audience {
        login = login.audience(audience);
    }
    login.run().await.unwrap()
}
