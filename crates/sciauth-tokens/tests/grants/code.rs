//! Authorization code + PKCE: the loopback server, the paste fallback, and what they refuse.

use std::sync::{Arc, Mutex};

use sciauth_tokens::{CallbackMode, ErrorKind, OAuthErrorCode, Scopes};
use secrecy::ExposeSecret as _;
use tokio::sync::oneshot;

use crate::idp::{self, Idp};
use crate::{API, claims, headless, issuer, native_app};

/// What the loopback server showed the headless browser: status and HTML.
type Page = (u16, String);
/// Taken once by the browser hook (a `Fn`, so it cannot move the sender out itself).
type PageSender<P = Page> = Arc<Mutex<Option<oneshot::Sender<P>>>>;

/// Sends what the headless browser saw back to the test.
fn page_channel<P>() -> (PageSender<P>, oneshot::Receiver<P>) {
    let (tx, rx) = oneshot::channel();
    (Arc::new(Mutex::new(Some(tx))), rx)
}

#[tokio::test]
async fn loopback_login_gets_tokens_and_shows_a_friendly_page() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let (tx, page) = page_channel();
    let token = client
        .code_login()
        .scopes(["openid", "offline_access", "email"])
        .prompt("consent")
        .login_hint("alice")
        .callback(CallbackMode::Loopback)
        .open_with(headless(move |url| {
            let tx = tx.lock().unwrap().take();
            async move {
                assert!(url.contains("code_challenge_method=S256"), "{url}");
                assert!(
                    url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
                    "{url}"
                );
                let page = idp::browser_login(&url).await;
                tx.unwrap().send(page).unwrap();
            }
        }))
        .run()
        .await
        .unwrap();
    let (status, body) = page.await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("You may close this window"), "{body}");

    assert!(token.refresh_token().is_some());
    assert_eq!(
        token.scopes(),
        &Scopes::parse("openid offline_access email")
    );
    let id = claims(token.id_token().unwrap().expose_secret());
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["aud"], "native-app");
    assert!(id["nonce"].is_string(), "a nonce was sent and came back");
    // The access token works at the provider.
    let counts = idp.counts().await;
    assert_eq!(counts["success"]["authorization_code"], 1);
}

#[tokio::test]
async fn a_resource_login_gets_a_jwt_for_that_audience() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let token = crate::user_token(&client, &["openid", "api:read"], Some(API)).await;
    let at = claims(token.access_token().expose_secret());
    assert_eq!(at["aud"], API);
    assert_eq!(at["scope"], "api:read");
    assert_eq!(token.audience(), Some(API));
}

#[tokio::test]
async fn a_redirect_with_another_state_is_ignored_and_the_login_goes_on() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let (tx, pages) = page_channel();
    let token = client
        .code_login()
        .scopes(["openid"])
        .callback(CallbackMode::Loopback)
        .open_with(headless(move |url| {
            let tx = tx.lock().unwrap().take();
            async move {
                let callback = idp::follow_login(&url).await;
                // Before the browser: another process on this machine, with a connection
                // that stalls and a redirect of its own.
                let port = callback
                    .split(':')
                    .nth(2)
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap();
                let mut stalled = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
                    .await
                    .unwrap();
                tokio::io::AsyncWriteExt::write_all(&mut stalled, b"GET /callback?st")
                    .await
                    .unwrap();
                let forged = regex_free_replace(&callback, "state=", "state=forged");
                let ignored = idp::get(&forged).await;
                let no_state = regex_free_replace(&callback, "state=", "x=");
                let also_ignored = idp::get(&no_state).await;
                let real = idp::get(&callback).await;
                tx.unwrap().send((ignored, also_ignored, real)).unwrap();
                drop(stalled);
            }
        }))
        .run()
        .await
        .unwrap();
    assert!(token.id_token().is_some());
    let ((status, body), (also_status, _), (real_status, real_body)) = pages.await.unwrap();
    assert_eq!((status, also_status), (400, 400));
    assert!(body.contains("Not this login"), "{body}");
    assert!(body.contains("still waiting"), "{body}");
    assert_eq!(real_status, 200, "{real_body}");
    // The code was redeemed once, for the redirect with the right state.
    assert_eq!(
        idp.counts().await["requests"]["authorization_code"],
        1,
        "{}",
        idp.counts().await
    );
}

/// Puts `insert` in place of the value after `key` in a URL query.
fn regex_free_replace(url: &str, key: &str, insert: &str) -> String {
    let start = url.find(key).unwrap();
    let end = url[start..].find('&').map_or(url.len(), |i| start + i);
    format!("{}{insert}{}", &url[..start], &url[end..])
}

#[tokio::test]
async fn a_wrong_issuer_in_the_redirect_is_refused() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let session = client
        .authorization_request("http://127.0.0.1:9/callback")
        .scopes(["openid"])
        .build()
        .unwrap();
    let callback = idp::follow_login(session.url().as_str()).await;
    assert!(callback.contains("iss="), "the provider sends RFC 9207 iss");
    let mixed_up = regex_free_replace(&callback, "iss=", "iss=https%3A%2F%2Fevil.example");
    let error = session.code_from_redirect(&mixed_up).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::IssuerMismatch);
    // The provider promises iss (RFC 9207), so a redirect without it is refused too.
    assert!(issuer_supports_iss(&client));
    let stripped = regex_free_replace(&callback, "iss=", "x=");
    let error = session.code_from_redirect(&stripped).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::IssuerMismatch);
    // The untouched redirect is fine.
    assert!(session.code_from_redirect(&callback).is_ok());
}

fn issuer_supports_iss(client: &sciauth_tokens::OAuthClient) -> bool {
    client
        .issuer()
        .metadata()
        .authorization_response_iss_parameter_supported
}

#[tokio::test]
async fn pkce_with_the_wrong_verifier_fails() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let redirect = "http://127.0.0.1:9/callback";
    let session = client
        .authorization_request(redirect)
        .scopes(["openid"])
        .build()
        .unwrap();
    let other = client
        .authorization_request(redirect)
        .scopes(["openid"])
        .build()
        .unwrap();
    let callback = idp::follow_login(session.url().as_str()).await;
    let code = session.code_from_redirect(&callback).unwrap();
    // Redeemed with another session's verifier: the challenge does not match.
    let error = client.redeem_code(&other, &code).await.unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidGrant)
    );
}

#[tokio::test]
async fn a_denied_login_is_access_denied() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let error = client
        .code_login()
        .scopes(["openid"])
        .callback(CallbackMode::Loopback)
        .open_with(headless(|url| async move {
            let callback = idp::follow_login_denied(&url).await;
            let (status, _) = idp::get(&callback).await;
            assert_eq!(status, 400);
        }))
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::AccessDenied)
    );
}

#[tokio::test]
async fn the_pasted_redirect_address_logs_in() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let token = client
        .code_login()
        .scopes(["openid"])
        .callback(CallbackMode::Paste)
        .no_browser(true)
        .paste_prompt(|url| async move {
            assert!(
                url.as_str()
                    .contains("redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback")
            );
            // What the user copies from the address bar of the page that did not load.
            Ok(format!("{}\n", idp::follow_login(url.as_str()).await))
        })
        .run()
        .await
        .unwrap();
    assert!(token.id_token().is_some());
}

#[tokio::test]
async fn a_pasted_bare_code_logs_in() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let token = client
        .code_login()
        .scopes(["openid"])
        .callback(CallbackMode::Paste)
        .no_browser(true)
        .paste_prompt(|url| async move {
            let callback = idp::follow_login(url.as_str()).await;
            let code = callback
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix("code="))
                .unwrap()
                .to_owned();
            Ok(code)
        })
        .run()
        .await
        .unwrap();
    assert!(token.id_token().is_some());
}

#[tokio::test]
async fn a_login_nobody_finishes_times_out() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let error = client
        .code_login()
        .callback(CallbackMode::Loopback)
        .open_with(|_| Ok(()))
        .timeout(std::time::Duration::from_millis(200))
        .run()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Timeout);
}

#[tokio::test]
async fn registered_redirect_ports_are_tried_in_order_and_an_exact_uri_is_sent_as_is() {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (busy_port, free_port) = (free(), free());
    let uri = |port: u16| format!("http://127.0.0.1:{port}/callback");
    let registered = format!("{} {}", uri(busy_port), uri(free_port));
    let idp = Idp::start_with(&[("EXACT_REDIRECT_URIS", &registered)]).await;
    let client = sciauth_tokens::OAuthClient::builder(issuer(&idp).await, "exact-redirect").build();
    let login = |sent: Arc<Mutex<Option<String>>>| {
        client
            .code_login()
            .scopes(["openid"])
            .callback(CallbackMode::Loopback)
            .open_with(headless(move |url| {
                *sent.lock().unwrap() = Some(url.clone());
                async move {
                    let (status, body) = idp::browser_login(&url).await;
                    assert_eq!(status, 200, "{body}");
                }
            }))
    };

    // The first port is taken by another program: the second one, sent as registered.
    let busy = std::net::TcpListener::bind(("127.0.0.1", busy_port)).unwrap();
    let sent = Arc::new(Mutex::new(None));
    login(sent.clone())
        .redirect_ports([busy_port, free_port])
        .run()
        .await
        .unwrap();
    let url = sent.lock().unwrap().take().unwrap();
    assert!(
        url.contains(&format!(
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A{free_port}%2Fcallback&"
        )),
        "{url}"
    );

    // Every registered port taken: an error naming them, and no fallback elsewhere. (The
    // finished login's server lets its port go on its own task: wait for it.)
    let mut also_busy = None;
    for _ in 0..600 {
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", free_port)) {
            also_busy = Some(listener);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let also_busy = also_busy.expect("the login's port is released");
    let error = login(Arc::default())
        .redirect_ports([busy_port, free_port])
        .run()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Io, "{error}");
    assert!(
        error
            .to_string()
            .contains(&format!("{busy_port}, {free_port}")),
        "{error}"
    );
    drop((busy, also_busy));

    // An exact URI: its port and path, and the string sent exactly as registered.
    let sent = Arc::new(Mutex::new(None));
    login(sent.clone())
        .redirect_uri(uri(busy_port))
        .run()
        .await
        .unwrap();
    let url = sent.lock().unwrap().take().unwrap();
    assert!(
        url.contains(&format!(
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A{busy_port}%2Fcallback&"
        )),
        "{url}"
    );
    // Not a loopback URI: refused before anything listens.
    let error = login(Arc::default())
        .redirect_uri("https://app.example.org/callback")
        .run()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidInput, "{error}");
    assert_eq!(idp.counts().await["success"]["authorization_code"], 2);
}
