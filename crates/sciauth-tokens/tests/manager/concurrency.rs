//! Many tasks of one process asking at once share one refresh.

use std::sync::Arc;
use std::time::Duration;

use sciauth_tokens::TokenRequest;
use sciauth_tokens::sciauth_credentials::ManualClock;
use secrecy::ExposeSecret as _;

use crate::idp::Idp;
use crate::{AT_TTL, login, manager, native_app, refreshes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_asking_for_an_expired_token_cause_one_refresh() {
    let logs = crate::logs();
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    let first = login(&manager, &request, &[]).await;

    clock.advance(AT_TTL + Duration::from_secs(1));
    idp.reset_counts().await;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (manager, request) = (manager.clone(), request.clone());
            tokio::spawn(async move { manager.get(&request).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap().unwrap());
    }

    assert_eq!(refreshes(&idp).await, 1, "{}", idp.counts().await);
    let fresh = tokens[0].access_token().expose_secret();
    assert_ne!(fresh, first.access_token().expose_secret());
    assert!(
        tokens
            .iter()
            .all(|t| t.access_token().expose_secret() == fresh)
    );
    let issuer = crate::issuer(idp.issuer(), clock.clone()).await;
    assert!(crate::active(&native_app(&issuer), &tokens[0]).await);
    // The rotated refresh token reached the store.
    let stored = manager.stored(&request).await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token().unwrap().expose_secret(),
        tokens[0].refresh_token().unwrap().expose_secret()
    );
    assert_ne!(
        stored.refresh_token().unwrap().expose_secret(),
        first.refresh_token().unwrap().expose_secret()
    );

    // Logs (at every level) say what happened, never with a token in them.
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logged.contains("refreshing"), "{logged}");
    for token in [&first, &tokens[0]] {
        assert!(!logged.contains(token.access_token().expose_secret()));
        assert!(!logged.contains(token.refresh_token().unwrap().expose_secret()));
        assert!(!logged.contains(token.id_token().unwrap().expose_secret()));
    }
}
