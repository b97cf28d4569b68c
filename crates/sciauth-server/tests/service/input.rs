//! Bad input gets a 4xx with a JSON error, never a 500, and never costs a kept token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::{Answer, Fixture, answer, call, http, update};

fn client_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.json["error"], code, "{}", answer.text);
    assert!(
        answer.json["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_json_and_keeps_the_token() {
    let fixture = Fixture::start().await;
    let base = fixture.replica().await;
    let http = http();
    let alice = fixture.user_caller("alice").await;
    let kept = fixture.user_token("alice").await;
    update(&http, &base, &alice, &kept, "alice").await;
    let raw = |path: &str, body: Vec<u8>| {
        http.post(format!("{base}/v1/{path}"))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(body)
    };

    // Unknown provider, user, group.
    let unknown = call(
        &http,
        &base,
        "getToken",
        Some(&alice),
        None,
        json!({"username": "alice", "identityProvider": "nope"}),
    )
    .await;
    client_error(&unknown, 400, "bad_request");
    assert!(unknown.text.contains("nope"), "{}", unknown.text);
    let mut body = crate::update_body(&fixture.user_token("alice").await, "alice");
    body["provider"] = json!("nope");
    let unknown = call(&http, &base, "updateToken", Some(&alice), None, body).await;
    client_error(&unknown, 400, "bad_request");
    for request in [
        json!({"username": "mallory"}),
        json!({"username": "alice", "group": "nope"}),
    ] {
        let unknown = call(&http, &base, "getToken", Some(&alice), None, request).await;
        client_error(&unknown, 400, "bad_request");
    }

    // Malformed JSON, wrong types, unknown fields, trailing data.
    for body in [
        &b"{\"username\": "[..],
        b"[1, 2",
        b"not json",
        br#"{"username": 5}"#,
        br#"{"scope": "openid"}"#,
        br#"{"requiredTimeLeft": -1}"#,
        br#"{"requiredTimeLeft": "600"}"#,
        br#"{"username": "alice", "bogus": true}"#,
        br#"{"username": "alice"} {}"#,
        br#"[]"#,
    ] {
        let answer = answer(raw("getToken", body.to_vec()).send().await.unwrap()).await;
        client_error(&answer, 400, "bad_request");
    }
    let typed = answer(
        raw(
            "updateToken",
            br#"{"token": "secret-looking-value", "userID": 1}"#.to_vec(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    client_error(&typed, 400, "bad_request");
    assert!(
        !typed.text.contains("secret-looking-value"),
        "{}",
        typed.text
    );

    // A token without a refresh token, or with one that has expired, is refused.
    let mut no_refresh = crate::update_body(&fixture.user_token("alice").await, "alice");
    no_refresh["token"]
        .as_object_mut()
        .unwrap()
        .remove("refresh_token");
    let refused = call(&http, &base, "updateToken", Some(&alice), None, no_refresh).await;
    client_error(&refused, 400, "bad_request");
    assert!(refused.text.contains("refresh token"), "{}", refused.text);
    let expired_jwt = format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"exp":1000}"#)
    );
    let mut expired = crate::update_body(&fixture.user_token("alice").await, "alice");
    expired["token"]["refresh_token"] = json!(expired_jwt);
    let refused = call(&http, &base, "updateToken", Some(&alice), None, expired).await;
    client_error(&refused, 400, "bad_request");
    assert!(refused.text.contains("expired"), "{}", refused.text);
    let mut not_a_token = crate::update_body(&kept, "alice");
    not_a_token["token"] = json!({"refresh_token": "x"});
    let refused = call(&http, &base, "updateToken", Some(&alice), None, not_a_token).await;
    client_error(&refused, 400, "bad_request");

    // Too large: by Content-Length, and streamed without one.
    let large = answer(raw("getToken", vec![b' '; 5000]).send().await.unwrap()).await;
    client_error(&large, 413, "payload_too_large");
    let streamed = chunked_post(&base, "/v1/getToken", &alice, 5000).await;
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    assert!(streamed.contains("payload_too_large"), "{streamed}");

    // Bad headers, paths and methods.
    for header in ["Basic YTpi", "Bearer", "Bearer not-a-jwt"] {
        let answer = answer(
            http.post(format!("{base}/v1/whoami"))
                .header("authorization", header)
                .send()
                .await
                .unwrap(),
        )
        .await;
        client_error(&answer, 401, "unauthenticated");
    }
    let missing = answer(http.post(format!("{base}/v1/nope")).send().await.unwrap()).await;
    client_error(&missing, 404, "not_found");
    let wrong_method = answer(
        http.get(format!("{base}/v1/getToken"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    client_error(&wrong_method, 405, "method_not_allowed");

    // After all that, the kept token is still there and served.
    let served = call(
        &http,
        &base,
        "getToken",
        Some(&alice),
        None,
        json!({"username": "alice"}),
    )
    .await;
    assert_eq!(served.status, 200, "{}", served.text);
    assert_eq!(
        served.json["access_token"],
        kept.access_token().expose_secret()
    );

    // The description is served.
    let openapi = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(openapi.status(), 200);
    let doc: serde_json::Value = openapi.json().await.unwrap();
    assert!(doc["paths"]["/v1/getToken"]["post"].is_object());
}

/// POSTs `size` bytes as one chunk of a chunked body (no Content-Length) over a raw
/// connection; the answer's head and body as text.
async fn chunked_post(base: &str, path: &str, bearer: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {bearer}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{size:x}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = stream.write_all(&vec![b' '; size]).await;
    let _ = stream.write_all(b"\r\n0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_is_no_caller_token() {
    let fixture = Fixture::start().await;
    // A service whose audience is a client's id: that client's ID tokens carry it as `aud`,
    // are signed by the issuer and name the user. Only their `typ` says they are no access
    // token.
    let audience_is_a_client = |text: String| {
        text.replacen(
            &format!("audience = \"{}\"", crate::API),
            &format!("audience = \"{}\"", crate::CLIENT),
            1,
        )
    };
    let base = fixture.replica_edited(audience_is_a_client).await;
    let http = http();
    let login = fixture.user_token("alice").await;
    let id_token = login.id_token().unwrap().expose_secret().to_owned();

    let refused = call(&http, &base, "whoami", Some(&id_token), None, json!({})).await;
    client_error(&refused, 401, "unauthenticated");
    assert!(refused.text.contains("at+jwt"), "{}", refused.text);
    assert!(!refused.text.contains(&id_token));

    // `plain_jwt_access_tokens = true` is the documented opt-out for providers that do not
    // type their access tokens; it accepts such a token, which is why it requires an
    // audience that is no client's id.
    let lenient = fixture
        .replica_edited(|text| {
            audience_is_a_client(text).replacen(
                "[callers]\n",
                "[callers]\nplain_jwt_access_tokens = true\n",
                1,
            )
        })
        .await;
    let me = call(&http, &lenient, "whoami", Some(&id_token), None, json!({})).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json["username"], "alice", "{}", me.text);
}
