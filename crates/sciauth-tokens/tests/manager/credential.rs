//! The manager as a transport's credential.

use std::sync::Arc;
use std::time::Duration;

use sciauth_tokens::TokenRequest;
use sciauth_tokens::sciauth_credentials::{Credential, ManualClock, Ready, Renewal};
use secrecy::ExposeSecret as _;

use crate::idp::Idp;
use crate::{AT_TTL, login, manager, refreshes};

fn ready(credential: &impl Credential) -> Option<String> {
    match credential.ready_header() {
        Ready::Header(header) => Some(header.value().to_str().unwrap().to_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_comes_from_a_snapshot_refreshes_ahead_and_renews_once_when_rejected() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    let first = login(&manager, &request, &[]).await;
    idp.reset_counts().await;

    let credential = manager.credential(request.clone());
    assert!(ready(&credential).is_none(), "nothing fetched yet");
    let header = credential.header().await.unwrap().unwrap();
    assert!(header.value().is_sensitive());
    assert_eq!(
        header.value().to_str().unwrap(),
        format!("Bearer {}", first.access_token().expose_secret())
    );
    assert_eq!(
        ready(&credential).unwrap(),
        header.value().to_str().unwrap()
    );
    assert!(!format!("{credential:?}").contains(first.access_token().expose_secret()));

    // Inside the refresh-ahead window (less than 60 s left): the snapshot is no longer
    // ready, the current token is still handed out, and a refresh runs in the background.
    clock.advance(AT_TTL - Duration::from_secs(30));
    assert!(ready(&credential).is_none());
    let during = credential.header().await.unwrap().unwrap();
    assert_eq!(during, header);
    let mut renewed = None;
    for _ in 0..1000 {
        let now = credential.header().await.unwrap().unwrap();
        if now != header {
            renewed = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let renewed = renewed.expect("the background refresh finished");
    assert_eq!(refreshes(&idp).await, 1);
    assert_eq!(
        ready(&credential).unwrap(),
        renewed.value().to_str().unwrap()
    );

    // A server rejects the current header: one refresh. Rejections of the old header (in
    // flight before) renew nothing more.
    assert_eq!(
        credential.rejected(Some(&renewed)).await.unwrap(),
        Renewal::Renewed
    );
    assert_eq!(refreshes(&idp).await, 2);
    let after = credential.header().await.unwrap().unwrap();
    assert_ne!(after, renewed);
    assert_eq!(
        credential.rejected(Some(&renewed)).await.unwrap(),
        Renewal::Renewed
    );
    assert_eq!(refreshes(&idp).await, 2);
    assert_eq!(credential.header().await.unwrap().unwrap(), after);
}
