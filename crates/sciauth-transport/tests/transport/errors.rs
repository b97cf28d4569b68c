//! What the helpers return, and what errors say (and do not say).

use sciauth_transport::credentials::BearerToken;
use sciauth_transport::{ErrorKind, StatusCode, Transport};
use serde::Deserialize;

use crate::support::{TestServer, json_ok, recording, respond};

#[tokio::test]
async fn a_status_error_names_request_status_and_server_message_but_no_query() {
    let (router, _) = recording(|_, _| {
        respond(
            403,
            &[("content-type", "application/json")],
            r#"{"errorMessage": "Access denied for user alice", "status": 403}"#,
        )
    });
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .base_url(&server.url("/rest/core"))
        .build()
        .unwrap();

    let error = transport
        .get_json::<serde_json::Value>("jobs?token=query-secret")
        .await
        .unwrap_err();

    assert!(error.is_status());
    assert_eq!(
        error.to_string(),
        format!(
            "GET {}: HTTP 403 Forbidden: Access denied for user alice",
            server.url("/rest/core/jobs")
        )
    );
    assert_eq!(error.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(error.url().unwrap().as_str(), server.url("/rest/core/jobs"));
    assert!(error.body().unwrap().contains("Access denied"));
    assert!(!format!("{error:?}").contains("query-secret"));
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Fields are read by serde only.
struct Jobs {
    count: u64,
    items: Vec<Job>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Fields are read by serde only.
struct Job {
    id: String,
    cores: u32,
}

#[tokio::test]
async fn a_decode_error_names_the_field_but_not_the_value() {
    let (router, _) = recording(|seen, _| match seen.path.as_str() {
        "/wrong-type" => {
            json_ok(r#"{"count": 1, "items": [{"id": "a", "cores": "many-cores-secret"}]}"#)
        }
        "/missing" => json_ok(r#"{"count": 1, "items": [{"cores": 4}]}"#),
        "/not-json" => respond(200, &[], "<html>login page</html>"),
        _ => respond(200, &[], vec![0xff, 0xfe]),
    });
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .build()
        .unwrap();

    let error = transport.get_json::<Jobs>("wrong-type").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Decode);
    let message = error.to_string();
    assert!(message.contains("at items[0].cores"), "{message}");
    assert!(!message.contains("many-cores-secret"), "{message}");

    let error = transport.get_json::<Jobs>("missing").await.unwrap_err();
    assert!(error.to_string().contains("items[0]"), "{error}");
    assert!(error.to_string().contains("missing field `id`"), "{error}");

    let error = transport.get_json::<Jobs>("not-json").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Decode);

    let error = transport.get_text("binary").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Decode);
    assert!(error.to_string().contains("not UTF-8"), "{error}");
}

#[tokio::test]
async fn helpers_send_json_forms_queries_and_deletes() {
    let (router, log) = recording(|seen, _| match seen.method.as_str() {
        "DELETE" => respond(204, &[], ""),
        _ => json_ok(r#"{"id": "j1"}"#),
    });
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .base_url(&server.url("/api/"))
        .credential(BearerToken::new("t").unwrap())
        .build()
        .unwrap();

    let created: serde_json::Value = transport
        .put_json("jobs/j1", &serde_json::json!({"name": "x"}))
        .await
        .unwrap();
    assert_eq!(created["id"], "j1");
    let seen = log.last();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(&seen.body[..], br#"{"name":"x"}"#);

    transport
        .post("token")
        .form(&[("grant_type", "refresh_token"), ("scope", "openid profile")])
        .send()
        .await
        .unwrap();
    let seen = log.last();
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        &seen.body[..],
        b"grant_type=refresh_token&scope=openid+profile"
    );

    transport
        .get("jobs?offset=10")
        .query(&[("num", "5")])
        .query(&[("tags", "a b")])
        .send()
        .await
        .unwrap();
    let seen = log.last();
    assert_eq!(seen.path, "/api/jobs");
    assert_eq!(seen.query.as_deref(), Some("offset=10&num=5&tags=a+b"));

    transport.delete("jobs/j1").await.unwrap();
    assert_eq!(log.last().method, "DELETE");

    let absolute = transport
        .get(&server.url("/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(absolute.url().path(), "/elsewhere");
    let rooted = transport.get("/rooted").send().await.unwrap();
    assert_eq!(rooted.url().path(), "/rooted");
}

#[tokio::test]
async fn redirects_follow_the_rules_and_do_not_loop() {
    let (router, log) = recording(|seen, _| match seen.path.as_str() {
        "/see-other" => respond(303, &[("location", "/result")], ""),
        "/loop" => respond(302, &[("location", "/loop")], ""),
        _ => respond(200, &[], "result"),
    });
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .build()
        .unwrap();

    let response = transport
        .post("see-other")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().unwrap(), "result");
    let seen = log.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/result")
    );
    assert!(seen.body.is_empty());

    let error = transport.get("loop").send().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Request);
    assert!(error.to_string().contains("redirects"), "{error}");

    let manual = Transport::builder()
        .base_url(&server.url("/"))
        .follow_redirects(false)
        .build()
        .unwrap();
    let response = manual.get("see-other").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn bad_inputs_are_reported_when_sending() {
    let no_base = Transport::builder().build().unwrap();
    let error = no_base.get("jobs").send().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Builder);
    assert!(error.to_string().contains("base URL"), "{error}");

    let error = Transport::builder()
        .base_url("not a url")
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Builder);
    let error = Transport::builder()
        .base_url("ftp://host/")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("https://"), "{error}");

    let transport = Transport::builder()
        .base_url("http://127.0.0.1:9/")
        .build()
        .unwrap();
    let error = transport
        .get("x")
        .sensitive_header("x-rucio-password", "s3cr\nt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Request);
    assert!(!error.to_string().contains("s3cr"), "{error}");
}

#[tokio::test]
async fn debug_output_shows_no_secrets() {
    let (router, _) = recording(|_, _| {
        respond(
            200,
            &[("x-unicore-securitysession", "session-secret")],
            "body-secret",
        )
    });
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .credential(BearerToken::new("token-secret").unwrap())
        .build()
        .unwrap();

    let request = transport
        .get("x?q=query-secret")
        .sensitive_header("x-rucio-password", "password-secret");
    let shown = format!("{transport:?} {request:?}");
    let response = request.send().await.unwrap();
    let shown = format!("{shown} {response:?}");

    for secret in [
        "token-secret",
        "query-secret",
        "password-secret",
        "session-secret",
        "body-secret",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}
