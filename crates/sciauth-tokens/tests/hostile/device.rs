//! The device flow: intervals that would spin or stall, lifetimes beyond the clock, text for
//! people that carries escapes, `slow_down` for ever.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sciauth_credentials::ManualClock;
use sciauth_tokens::{DeviceLogin, ErrorKind, Issuer, OAuthClient};
use serde_json::json;

use crate::hostile::{HostileIdp, Reply};
use crate::{assert_refused, bounded, transport};

/// A device authorization answer with these fields over sane defaults.
fn authorization(extra: serde_json::Value) -> Reply {
    let mut body = json!({
        "device_code": "device-code-Rw55",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://idp.example.org/device",
        "expires_in": 600,
        "interval": 5,
    });
    for (key, value) in extra.as_object().unwrap() {
        if value.is_null() {
            body.as_object_mut().unwrap().remove(key);
        } else {
            body[key] = value.clone();
        }
    }
    Reply::json(200, body)
}

const PENDING: &str = r#"{"error":"authorization_pending"}"#;

/// A device login at `idp` whose waits are recorded (and advance `clock`) instead of slept.
async fn login(
    idp: &HostileIdp,
    clock: Arc<ManualClock>,
) -> (DeviceLogin, Arc<Mutex<Vec<Duration>>>) {
    let issuer = Issuer::builder(idp.issuer())
        .transport(transport())
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let client = OAuthClient::builder(issuer, "hostile-client").build();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let recorded = waits.clone();
    let login = client
        .device_login()
        .on_user_code(|_| {})
        .sleeper(move |wait| {
            recorded.lock().unwrap().push(wait);
            clock.advance(wait);
            async {}
        });
    (login, waits)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at_unix(1_700_000_000))
}

#[tokio::test]
async fn interval_zero_polls_once_a_second_not_in_a_tight_loop() {
    let idp = HostileIdp::start().await;
    idp.set("/device", authorization(json!({"interval": 0})));
    idp.once("/token", Reply::json_text(400, PENDING));
    idp.once("/token", Reply::json_text(400, PENDING));
    let (login, waits) = login(&idp, clock()).await;
    let token = bounded(login.run()).await.unwrap();
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(*waits.lock().unwrap(), vec![Duration::from_secs(1); 3]);
}

#[tokio::test]
async fn a_missing_interval_is_five_seconds() {
    let idp = HostileIdp::start().await;
    idp.set("/device", authorization(json!({"interval": null})));
    let (login, waits) = login(&idp, clock()).await;
    bounded(login.run()).await.unwrap();
    assert_eq!(*waits.lock().unwrap(), vec![Duration::from_secs(5)]);
}

#[tokio::test]
async fn a_negative_interval_is_refused() {
    let idp = HostileIdp::start().await;
    idp.set("/device", authorization(json!({"interval": -5})));
    let (login, _) = login(&idp, clock()).await;
    let error = bounded(login.run()).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &["device-code-Rw55"]);
    assert!(error.to_string().contains("interval"), "{error}");
}

#[tokio::test]
async fn slow_down_adds_five_seconds_each_time() {
    let idp = HostileIdp::start().await;
    idp.set("/device", authorization(json!({"interval": 1})));
    for _ in 0..3 {
        idp.once("/token", Reply::json_text(400, r#"{"error":"slow_down"}"#));
    }
    let (login, waits) = login(&idp, clock()).await;
    bounded(login.run()).await.unwrap();
    let seconds: Vec<u64> = waits
        .lock()
        .unwrap()
        .iter()
        .map(Duration::as_secs)
        .collect();
    assert_eq!(seconds, [1, 6, 11, 16]);
}

#[tokio::test]
async fn a_lifetime_beyond_the_clock_ends_within_an_hour_of_polling() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/device",
        authorization(json!({"expires_in": u64::MAX, "interval": 1e30})),
    );
    idp.set("/token", Reply::json_text(400, PENDING));
    let (login, waits) = login(&idp, clock()).await;
    let error = bounded(login.run()).await.unwrap_err();
    assert_refused(&error, ErrorKind::Timeout, &["device-code-Rw55"]);
    let waited: Duration = waits.lock().unwrap().iter().sum();
    assert_eq!(waited, Duration::from_secs(3600), "{waits:?}");
}

#[tokio::test]
async fn a_user_code_carrying_terminal_escapes_is_refused() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/device",
        authorization(json!({"user_code": "WDJB\u{1b}[2J\u{1b}]0;pwned\u{7}"})),
    );
    let (login, _) = login(&idp, clock()).await;
    let error = bounded(login.run()).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &["device-code-Rw55"]);
    assert!(error.to_string().contains("user_code"), "{error}");
}

#[tokio::test]
async fn a_verification_uri_with_a_bidi_override_is_refused() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/device",
        authorization(json!({"verification_uri": "https://idp.example.org/\u{202e}gro.live"})),
    );
    let (login, _) = login(&idp, clock()).await;
    let error = bounded(login.run()).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &[]);
}

#[tokio::test]
async fn a_verification_uri_that_is_not_http_is_refused() {
    let idp = HostileIdp::start().await;
    idp.set(
        "/device",
        authorization(json!({"verification_uri_complete": "javascript:alert(document.cookie)"})),
    );
    let (login, _) = login(&idp, clock()).await;
    let error = bounded(login.run()).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &[]);
}

#[tokio::test]
async fn an_empty_device_code_is_refused() {
    let idp = HostileIdp::start().await;
    idp.set("/device", authorization(json!({"device_code": ""})));
    let (login, _) = login(&idp, clock()).await;
    let error = bounded(login.run()).await.unwrap_err();
    assert_refused(&error, ErrorKind::InvalidResponse, &[]);
    assert!(error.to_string().contains("device_code"), "{error}");
}

#[tokio::test]
async fn a_device_code_echoed_in_a_poll_error_is_masked() {
    let idp = HostileIdp::start().await;
    idp.set("/device", authorization(json!({})));
    idp.set(
        "/token",
        Reply::json(
            400,
            json!({"error": "access_denied",
                   "error_description": "device_code=device-code-Rw55 denied"}),
        ),
    );
    let (login, _) = login(&idp, clock()).await;
    let error = bounded(login.run()).await.unwrap_err();
    assert_refused(
        &error,
        ErrorKind::OAuth(sciauth_tokens::OAuthErrorCode::AccessDenied),
        &["device-code-Rw55"],
    );
}
