//! The blocking API from a plain test function (no async runtime on the calling thread)
//! against the real identity provider (`tests/idp`, oidc-provider): a device login approved
//! headlessly, tokens loaded from the store, the token manager cached, refreshing ahead of
//! expiry between calls and after expiry, a credential's header, a request carrying it to a
//! loopback API, logout.
//!
//! The provider runs on a runtime of the test's own (`peers`), only ever entered through
//! `block_on` on this thread or by its own workers.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sciauth_blocking::{Credential, NativeClient, TokenManager, Transport};
use sciauth_test_support::idp::{self, Idp};
use sciauth_tokens::sciauth_credentials::{Clock as _, ManualClock};
use sciauth_tokens::secrecy::ExposeSecret as _;
use sciauth_tokens::{
    ClientConfig, ErrorKind, FileStore, Issuer, LoginOptions, ManagerObserver, OAuthClient,
    TokenRequest,
};
use serde_json::Value;

/// A transport that never goes through a proxy: tests reach only 127.0.0.1.
fn direct() -> sciauth_transport::Transport {
    sciauth_transport::Transport::builder()
        .follow_redirects(false)
        .proxy_from_env(false)
        .build()
        .unwrap()
}

/// The provider's public `native-app` client, keeping tokens in `store`.
fn native_client(issuer: &str, store: &Path) -> sciauth_tokens::NativeClient {
    sciauth_tokens::NativeClient::builder(issuer, "native-app")
        .app_name("blocking-test")
        .store(FileStore::open(store).unwrap())
        .transport(direct())
        .build()
        .unwrap()
}

/// The lookups of the async manager's `get` that did not come from `get_now`: whether each
/// was answered from memory, and on which thread it ran.
#[derive(Debug, Default)]
struct Lookups(Mutex<Vec<(bool, Option<String>)>>);

impl ManagerObserver for Lookups {
    fn lookup(&self, cached: bool) {
        let thread = thread::current().name().map(str::to_owned);
        self.0.lock().unwrap().push((cached, thread));
    }
}

/// A manager of the same grant (same store, client and account) that judges time by
/// `clock`, as its issuer does; the provider is discovered on the background runtime when a
/// grant first runs.
fn manager_judging_by(
    issuer: &str,
    store: &Path,
    clock: Arc<ManualClock>,
    lookups: Arc<Lookups>,
) -> TokenManager {
    let (url, issuer_clock) = (issuer.to_owned(), clock.clone());
    let config = ClientConfig::lazy(issuer, "native-app", move || {
        let builder = Issuer::builder(url.clone())
            .transport(direct())
            .clock(issuer_clock.clone());
        async move { Ok(OAuthClient::builder(builder.build().await?, "native-app").build()) }
    });
    TokenManager::new(
        sciauth_tokens::TokenManager::builder(FileStore::open(store).unwrap())
            .client(config)
            .clock(clock)
            .jitter(|| 0.0)
            .observer(lookups)
            .build(),
    )
}

/// Device-flow options whose code is approved at the provider (on the peers' runtime) as
/// soon as it is shown; the callback runs on the blocking API's background thread.
fn approved_device_login(peers: &tokio::runtime::Runtime, issuer: &str) -> LoginOptions {
    let (peers, issuer) = (peers.handle().clone(), issuer.to_owned());
    LoginOptions::new().device(true).on_user_code(move |code| {
        let (issuer, user_code) = (issuer.clone(), code.user_code().to_owned());
        peers.spawn(async move { idp::device_approve(&issuer, &user_code, None).await });
    })
}

fn counts(peers: &tokio::runtime::Runtime, idp: &Idp) -> Value {
    peers.block_on(idp.counts())
}

fn refreshes(peers: &tokio::runtime::Runtime, idp: &Idp) -> u64 {
    counts(peers, idp)["requests"]["refresh_token"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits (a minute at most) until the background refresh has ended in `manager` itself: it
/// holds a token for `request` other than `old` that is not due. Waiting for the provider's
/// count is not enough: the provider counts the request before the manager has stored and
/// remembered the answer, and a lookup in that window still sees the old, due token.
/// `get_now` neither counts a lookup nor starts a refresh, so waiting changes nothing.
fn wait_for_background_refresh(manager: &TokenManager, request: &TokenRequest, old: &str) {
    for _ in 0..600 {
        if let Some(token) = manager.as_async().get_now(request)
            && token.access_token().expose_secret() != old
        {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("the background refresh did not end in the manager within a minute");
}

#[test]
fn device_login_tokens_refresh_and_an_authorized_request_without_a_runtime() {
    let peers = tokio::runtime::Runtime::new().unwrap();
    let idp = peers.block_on(Idp::start());
    let dir = tempfile::tempdir().unwrap();
    let native = NativeClient::new(native_client(idp.issuer(), dir.path()));

    // Nothing stored: the fair-research-login LoadError, and no request to the provider.
    let error = native.load_tokens(["openid"]).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::NoSavedTokens);
    assert!(error.needs_login(), "{error}");

    let login = native
        .login(
            approved_device_login(&peers, idp.issuer())
                .scopes(["openid", "profile"])
                .refresh_tokens(true),
        )
        .unwrap();
    assert!(login.refresh_token().is_some());
    assert_eq!(counts(&peers, &idp)["device_authorization"], 1);
    let access = login.access_token().expose_secret().to_owned();

    // From the store, without the provider.
    let loaded = native.load_tokens(["openid"]).unwrap();
    assert_eq!(loaded.access_token().expose_secret(), access);
    let by_scope = native.load_tokens_by_scope(["openid", "profile"]).unwrap();
    assert_eq!(by_scope.len(), 2);
    assert_eq!(by_scope["profile"].access_token().expose_secret(), access);
    assert_eq!(refreshes(&peers, &idp), 0);

    // Another manager of the same grant, on a clock of the test's. A cached token comes
    // from `get_now` on this thread: the async `get` (which would count a lookup) never runs.
    let clock = Arc::new(ManualClock::starting_now());
    let lookups = Arc::new(Lookups::default());
    let manager = manager_judging_by(idp.issuer(), dir.path(), clock.clone(), lookups.clone());
    let request = native.as_async().request().scopes(["openid"]);
    let cached = manager.get(&request).unwrap();
    assert_eq!(cached.access_token().expose_secret(), access);
    assert_eq!(refreshes(&peers, &idp), 0);
    assert_eq!(*lookups.0.lock().unwrap(), []);

    // Due for a refresh ahead of expiry (30 s left, the rule starts at 60 s) but still
    // valid: handed out at once, and refreshed on the background runtime after the call has
    // returned, with no further call to drive it.
    let left = cached.expires_in(clock.now()).unwrap();
    clock.advance(left - Duration::from_secs(30));
    let due = manager.get(&request).unwrap();
    assert_eq!(due.access_token().expose_secret(), access);
    wait_for_background_refresh(&manager, &request, &access);
    let ahead = manager.get(&request).unwrap();
    assert_ne!(ahead.access_token().expose_secret(), access);
    assert_eq!(refreshes(&peers, &idp), 1);

    // Expired: refreshed while the caller waits.
    let left = ahead.expires_in(clock.now()).unwrap();
    clock.advance(left + Duration::from_secs(1));
    let refreshed = manager.get(&request).unwrap();
    assert_ne!(
        refreshed.access_token().expose_secret(),
        ahead.access_token().expose_secret()
    );
    assert!(!refreshed.is_expired_at(clock.now(), Duration::ZERO));
    assert_eq!(refreshes(&peers, &idp), 2);
    let again = manager.get(&request).unwrap();
    assert_eq!(
        again.access_token().expose_secret(),
        refreshed.access_token().expose_secret()
    );
    assert_eq!(refreshes(&peers, &idp), 2);
    // Only the due and the expired lookups went to the background thread; the others were
    // answered by `get_now` on this one.
    let background = Some("sciauth-blocking".to_owned());
    assert_eq!(
        *lookups.0.lock().unwrap(),
        [(true, background.clone()), (false, background)]
    );

    // The login's authorizer as a credential: its header, and a request that carries it to
    // an API that checks it.
    let token = native.load_tokens(["openid"]).unwrap();
    let expected = format!("Bearer {}", token.access_token().expose_secret());
    let credential = Credential::new(native.get_authorizers(["openid"]).unwrap());
    let header = credential.header().unwrap().expect("a bearer header");
    assert_eq!(header.value(), expected.as_str());

    let api = support::Api::start(Some(expected.clone()));
    let transport = Transport::build(
        support::api_transport(&api.url).shared_credential(credential.shared().clone()),
    )
    .unwrap();
    let answer: Value = transport.get_json("whoami").unwrap();
    assert_eq!(answer["ok"], true);
    let refused = transport.get("whoami").no_credential().send().unwrap();
    assert_eq!(refused.status(), 401);
    let answer: Value = transport.get("whoami").send_json().unwrap();
    assert_eq!(answer["ok"], true);
    assert_eq!(
        api.seen(),
        vec![Some(expected.clone()), None, Some(expected.clone())]
    );

    // No handle shows a secret.
    let shown = format!("{native:?} {manager:?} {credential:?} {transport:?}");
    for secret in [
        access.as_str(),
        ahead.access_token().expose_secret(),
        refreshed.access_token().expose_secret(),
        login.refresh_token().unwrap().expose_secret(),
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }

    // Logged out: the store is empty, and loading says to log in.
    assert!(native.logout().unwrap().found());
    let error = native.load_tokens(["openid"]).unwrap_err();
    assert!(error.needs_login(), "{error}");

    peers.block_on(idp.stop());
}
