//! Each delegation rule both ways: allowed, and refused with a clear error.

use serde_json::json;

use crate::{Answer, Fixture, call, http, update};

fn refused(answer: &Answer, says: &str) {
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert_eq!(answer.json["error"], "forbidden", "{}", answer.text);
    let message = answer.json["message"].as_str().unwrap();
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

fn allowed(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_rules() {
    let fixture = Fixture::start().await;
    let base = fixture.replica().await;
    let http = http();
    let (admin, pilot) = (fixture.admin().await, fixture.pilot().await);
    let (alice, bob, carol) = (
        fixture.user_caller("alice").await,
        fixture.user_caller("bob").await,
        fixture.user_caller("carol").await,
    );
    update(
        &http,
        &base,
        &alice,
        &fixture.user_token("alice").await,
        "alice",
    )
    .await;
    update(&http, &base, &bob, &fixture.user_token("bob").await, "bob").await;
    let get = |bearer: String, group: Option<&'static str>, body: serde_json::Value| {
        let (http, base) = (http.clone(), base.clone());
        async move { call(&http, &base, "getToken", Some(&bearer), group, body).await }
    };

    // whoami says who and as which group.
    let me = call(&http, &base, "whoami", Some(&alice), None, json!({})).await;
    allowed(&me);
    assert_eq!(me.json["username"], "alice");
    assert_eq!(me.json["group"], "users");
    assert_eq!(me.json["authenticated_by"], "token");
    assert_eq!(me.json["properties"], json!(["PrivateLimitedDelegation"]));

    // FullDelegation: any user, and group tokens.
    allowed(&get(admin.clone(), None, json!({"username": "bob"})).await);
    allowed(
        &get(
            admin.clone(),
            None,
            json!({"group": "pilots", "audience": crate::API}),
        )
        .await,
    );

    // LimitedDelegation: the same.
    allowed(&get(pilot.clone(), None, json!({"username": "alice"})).await);
    allowed(&get(pilot.clone(), None, json!({"audience": crate::API})).await);

    // PrivateLimitedDelegation: oneself only, in a group that has it too; never group tokens.
    allowed(&get(alice.clone(), None, json!({"username": "alice"})).await);
    refused(
        &get(alice.clone(), None, json!({"username": "bob"})).await,
        "only your own tokens, not those of bob",
    );
    refused(
        &get(alice.clone(), None, json!({"group": "users"})).await,
        "not group (client credentials) tokens",
    );
    refused(
        &get(
            alice.clone(),
            None,
            json!({"username": "alice", "group": "users_noprivate"}),
        )
        .await,
        "does not have PrivateLimitedDelegation",
    );
    // Acting as a group without any delegation property.
    refused(
        &get(
            alice.clone(),
            Some("users_noprivate"),
            json!({"username": "alice"}),
        )
        .await,
        "needs FullDelegation, LimitedDelegation or PrivateLimitedDelegation",
    );
    // None of the properties.
    refused(
        &get(carol.clone(), None, json!({"username": "carol"})).await,
        "may not get tokens",
    );
    // A group the caller is not in.
    refused(
        &get(alice.clone(), Some("admins"), json!({"username": "alice"})).await,
        "not in the group",
    );

    // getTokensByUserID: DIRAC lets anyone read anyone's; here oneself or ProxyManagement.
    let by_id = |bearer: &str, user: &str| {
        let (http, base, bearer, body) = (
            http.clone(),
            base.clone(),
            bearer.to_owned(),
            json!({"userID": user}),
        );
        async move { call(&http, &base, "getTokensByUserID", Some(&bearer), None, body).await }
    };
    refused(&by_id(&alice, "bob").await, "ProxyManagement");
    refused(&by_id(&pilot, "bob").await, "ProxyManagement");
    let own = by_id(&alice, "alice").await;
    allowed(&own);
    assert_eq!(own.json[0]["username"], "alice");
    let managed = by_id(&admin, "bob").await;
    allowed(&managed);
    assert_eq!(managed.json[0]["username"], "bob");

    // getUsersTokensInfo needs ProxyManagement.
    let users = json!({"users": ["alice", "bob"]});
    refused(
        &call(
            &http,
            &base,
            "getUsersTokensInfo",
            Some(&alice),
            None,
            users.clone(),
        )
        .await,
        "ProxyManagement",
    );
    let all = call(
        &http,
        &base,
        "getUsersTokensInfo",
        Some(&admin),
        None,
        users,
    )
    .await;
    allowed(&all);
    assert_eq!(all.json.as_array().unwrap().len(), 2);

    // updateToken and deleteToken for someone else need ProxyManagement.
    let bobs = fixture.user_token("bob").await;
    refused(
        &call(
            &http,
            &base,
            "updateToken",
            Some(&alice),
            None,
            crate::update_body(&bobs, "bob"),
        )
        .await,
        "ProxyManagement",
    );
    let delete = |bearer: &str, user: &str| {
        let (http, base, bearer, body) = (
            http.clone(),
            base.clone(),
            bearer.to_owned(),
            json!({"userID": user}),
        );
        async move { call(&http, &base, "deleteToken", Some(&bearer), None, body).await }
    };
    refused(&delete(&alice, "bob").await, "ProxyManagement");
    let deleted = delete(&admin, "bob").await;
    allowed(&deleted);
    assert_eq!(deleted.json["deleted"], 1);
    let gone = get(admin.clone(), None, json!({"username": "bob"})).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert_eq!(gone.json["error"], "no_saved_tokens");
    let own_delete = delete(&alice, "alice").await;
    allowed(&own_delete);
    assert_eq!(own_delete.json["deleted"], 1);

    // Unauthenticated callers, and tokens for another audience, get 401.
    let anonymous = call(&http, &base, "getToken", None, None, json!({})).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(anonymous.json["error"], "unauthenticated");
    let elsewhere = fixture
        .client
        .client_credentials()
        .scopes(["other:read"])
        .audience("https://other.example.test")
        .send()
        .await
        .unwrap();
    let wrong_audience = call(
        &http,
        &base,
        "whoami",
        Some(secrecy::ExposeSecret::expose_secret(
            elsewhere.access_token(),
        )),
        None,
        json!({}),
    )
    .await;
    assert_eq!(wrong_audience.status, 401, "{}", wrong_audience.text);
    // ping needs nothing.
    let ping = http.get(format!("{base}/v1/ping")).send().await.unwrap();
    assert_eq!(ping.status(), 200);
}
