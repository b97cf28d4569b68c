//! Two replicas on one database, a user whose access token has expired, a provider that
//! rotates refresh tokens: 200 concurrent getToken calls cause exactly one refresh.

use std::collections::BTreeSet;

use sciauth_service_api::DelegatedToken;
use serde_json::json;

use crate::{Fixture, call, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_refresh() {
    let fixture = Fixture::start().await;
    let replicas = [fixture.replica().await, fixture.replica().await];
    let http = http();
    let (admin, alice) = (fixture.admin().await, fixture.user_caller("alice").await);

    // Alice's kept token: its access token already expired (expires_in 0), its refresh
    // token good.
    let token = fixture.user_token("alice").await;
    let mut delegated = DelegatedToken::from_token(&token, std::time::SystemTime::now());
    delegated.0.insert("expires_in".into(), json!(0));
    let kept = call(
        &http,
        &replicas[0],
        "updateToken",
        Some(&alice),
        None,
        json!({"token": delegated, "userID": "alice", "provider": "idp"}),
    )
    .await;
    assert_eq!(kept.status, 200, "{}", kept.text);

    // Warm the caller-token cache of both replicas (not needed, but it keeps the
    // interesting part concurrent).
    for base in &replicas {
        let me = call(&http, base, "whoami", Some(&admin), None, json!({})).await;
        assert_eq!(me.status, 200, "{}", me.text);
    }
    fixture.idp.reset_counts().await;

    let calls: Vec<_> = (0..200)
        .map(|i| {
            let (http, base, admin) = (http.clone(), replicas[i % 2].clone(), admin.clone());
            tokio::spawn(async move {
                call(
                    &http,
                    &base,
                    "getToken",
                    Some(&admin),
                    None,
                    json!({"username": "alice", "requiredTimeLeft": 60}),
                )
                .await
            })
        })
        .collect();
    let mut tokens = BTreeSet::new();
    for task in calls {
        let answer = task.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text);
        tokens.insert(answer.json["access_token"].as_str().unwrap().to_owned());
    }

    let counts = fixture.idp.counts().await;
    assert_eq!(counts["requests"]["refresh_token"], 1, "{counts}");
    assert!(counts["failures"]["refresh_token"].is_null(), "{counts}");
    assert_eq!(tokens.len(), 1, "every caller got the one refreshed token");
    for token in &tokens {
        assert!(fixture.active(token).await);
    }
}
