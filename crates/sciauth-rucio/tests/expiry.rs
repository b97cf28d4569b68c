//! Token expiry against the real Rucio server: a token the server no longer accepts, and a
//! token close to its expiry.

use sciauth_test_support::rucio as support;

use std::sync::Arc;
use std::time::Duration;

use sciauth_rucio::credentials::ManualClock;
use sciauth_rucio::secrecy::{ExposeSecret as _, SecretString};
use sciauth_rucio::{AuthMethod, Environment, RucioClient};
use support::Peer;

#[tokio::test]
async fn expiry() {
    let peer = Peer::start(&[], false);
    // One server for both cases; each uses its own account, so the login counts stay apart.
    expired_in_the_servers_db_logs_in_again_once(&peer).await;
    near_expiry_is_renewed_before_use(&peer).await;
}

async fn expired_in_the_servers_db_logs_in_again_once(peer: &Peer) {
    let cache = tempfile::tempdir().unwrap();
    let client = RucioClient::builder()
        .environment(Environment::empty())
        .rucio_host(peer.url())
        .cache_dir(cache.path())
        .account("root")
        .auth(AuthMethod::userpass(
            peer.text("username"),
            SecretString::from(peer.text("password")),
        ))
        .build()
        .unwrap();
    assert_eq!(client.whoami().await.unwrap().account, "root");
    let first = client.token().await.unwrap();
    assert_eq!(peer.logins("root"), 1);

    peer.expire_tokens("root");
    // The next call is answered 401, logs in again (once) and goes again.
    assert_eq!(client.whoami().await.unwrap().account, "root");
    assert_eq!(peer.logins("root"), 2);
    assert_eq!(client.session().login_count(), 2);
    let second = client.token().await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());

    // The cache holds the new token, not the rejected one.
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(client.session().cache_file().unwrap()).unwrap())
            .unwrap();
    assert_eq!(cached["token"], second.expose_secret());
    assert_eq!(client.whoami().await.unwrap().account, "root");
    assert_eq!(peer.logins("root"), 2);
}

async fn near_expiry_is_renewed_before_use(peer: &Peer) {
    let clock = Arc::new(ManualClock::starting_now());
    let cache = tempfile::tempdir().unwrap();
    let client = RucioClient::builder()
        .environment(Environment::empty())
        .rucio_host(peer.url())
        .cache_dir(cache.path())
        .clock(clock.clone())
        .renew_before(Duration::from_secs(300))
        .auth(AuthMethod::userpass(
            peer.text("alice_username"),
            SecretString::from(peer.text("alice_password")),
        ))
        .build()
        .unwrap();
    assert_eq!(client.whoami().await.unwrap().account, "alice");
    assert_eq!(peer.logins("alice"), 1);
    let first = client.token().await.unwrap();

    // 56 minutes later the 60-minute token is within the 5-minute margin: asking for the
    // token renews it before any request uses it. (While this clock runs ahead of the
    // server's, every new token looks due too, so the clock goes back before the request.)
    clock.advance(Duration::from_secs(56 * 60));
    let renewed = client.token().await.unwrap();
    assert_ne!(renewed.expose_secret(), first.expose_secret());
    assert_eq!(peer.logins("alice"), 2);

    clock.set(std::time::SystemTime::now());
    assert_eq!(client.whoami().await.unwrap().account, "alice");
    assert_eq!(
        client.token().await.unwrap().expose_secret(),
        renewed.expose_secret()
    );
    assert_eq!(peer.logins("alice"), 2);
}
