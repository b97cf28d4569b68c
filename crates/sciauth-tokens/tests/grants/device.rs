//! The device authorization grant: pending, slow_down, success, denial.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sciauth_tokens::{DeviceProgress, ErrorKind, OAuthErrorCode};

use crate::idp::{self, Idp};
use crate::{issuer, native_app};

/// A sleeper that records what it was asked to wait and waits at most `cap`, with the first
/// `instant` waits not at all (to provoke `slow_down`).
fn recording_sleeper(
    instant: usize,
    cap: Duration,
) -> (
    Arc<Mutex<Vec<Duration>>>,
    impl Fn(Duration) -> tokio::time::Sleep + Send + Sync + 'static,
) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let record = asked.clone();
    let sleep = move |d: Duration| {
        let mut asked = record.lock().unwrap();
        asked.push(d);
        let wait = if asked.len() <= instant {
            Duration::ZERO
        } else {
            d.min(cap)
        };
        tokio::time::sleep(wait)
    };
    (asked, sleep)
}

#[tokio::test]
async fn pending_then_slow_down_then_success() {
    let idp = Idp::start_with(&[("DEVICE_INTERVAL", "1")]).await;
    let client = native_app(&issuer(&idp).await);
    let progress = Arc::new(Mutex::new(Vec::new()));
    let seen = progress.clone();
    let issuer_url = idp.issuer().to_owned();
    // The first two polls come at once: the first is pending, the second too soon
    // (slow_down). Then the user approves, and polls wait 1.1 s (more than the provider's
    // interval, less than the 6 s it asked for) so the test stays short.
    let (asked, sleeper) = recording_sleeper(2, Duration::from_millis(1100));
    let approved = Arc::new(Mutex::new(false));
    let login = client
        .device_login()
        .scopes(["openid", "offline_access"])
        .sleeper(sleeper)
        .on_progress(move |p| seen.lock().unwrap().push(p.clone()));
    let authorization = login.start().await.unwrap();
    assert_eq!(authorization.interval(), Duration::from_secs(1));
    assert!(authorization.verification_uri().ends_with("/device"));
    assert!(
        authorization
            .verification_uri_complete()
            .unwrap()
            .contains(authorization.user_code())
    );
    let user_code = authorization.user_code().to_owned();
    let watcher = {
        let progress = progress.clone();
        let approved = approved.clone();
        tokio::spawn(async move {
            // Approve once the provider has said slow_down.
            loop {
                let slowed = progress
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|p| matches!(p, DeviceProgress::SlowDown { .. }));
                if slowed {
                    idp::device_approve(&issuer_url, &user_code, Some("dora")).await;
                    *approved.lock().unwrap() = true;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let token = login.poll(&authorization).await.unwrap();
    watcher.await.unwrap();
    assert!(*approved.lock().unwrap());
    assert!(token.refresh_token().is_some());
    assert!(token.id_token().is_some());

    let progress = progress.lock().unwrap().clone();
    assert_eq!(progress[0], DeviceProgress::Pending { polls: 1 });
    assert_eq!(
        progress[1],
        DeviceProgress::SlowDown {
            interval: Duration::from_secs(6)
        }
    );
    // The interval grew by 5 s after slow_down (RFC 8628 3.5), and stayed.
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        &asked[..2],
        &[Duration::from_secs(1), Duration::from_secs(1)]
    );
    assert!(
        asked[2..].iter().all(|d| *d == Duration::from_secs(6)),
        "{asked:?}"
    );
    let counts = idp.counts().await;
    let failures = &counts["failures"]["urn:ietf:params:oauth:grant-type:device_code"];
    assert_eq!(failures["slow_down"], 1);
    assert_eq!(
        counts["success"]["urn:ietf:params:oauth:grant-type:device_code"],
        1
    );
}

#[tokio::test]
async fn a_denied_device_login_is_access_denied() {
    let idp = Idp::start().await;
    let client = native_app(&issuer(&idp).await);
    let (_, sleeper) = recording_sleeper(0, Duration::from_millis(1100));
    let issuer_url = idp.issuer().to_owned();
    let error = client
        .device_login()
        .scopes(["openid"])
        .sleeper(sleeper)
        .on_user_code(move |code| {
            let issuer_url = issuer_url.clone();
            let user_code = code.user_code().to_owned();
            tokio::spawn(async move { idp::device_deny(&issuer_url, &user_code).await });
        })
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::AccessDenied)
    );
}

#[tokio::test]
async fn an_expired_device_code_ends_the_polling() {
    let idp = Idp::start_with(&[("DEVICE_TTL", "1")]).await;
    let client = native_app(&issuer(&idp).await);
    let (_, sleeper) = recording_sleeper(0, Duration::from_millis(1100));
    let error = client
        .device_login()
        .sleeper(sleeper)
        .on_user_code(|_| {})
        .run()
        .await
        .unwrap_err();
    // Either the provider said expired_token, or our clock saw the expiry first.
    assert!(
        matches!(
            error.kind(),
            ErrorKind::OAuth(OAuthErrorCode::ExpiredToken) | ErrorKind::Timeout
        ),
        "{error:?}"
    );
}
