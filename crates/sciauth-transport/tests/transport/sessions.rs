//! UNICORE security sessions: remembered, sent back, dropped on 432.

use std::sync::Arc;

use sciauth_transport::credentials::{BearerToken, Credential};
use sciauth_transport::{Preferences, StatusCode, Transport};

use crate::support::{TestServer, recording, respond};

const SESSION: &str = "x-unicore-securitysession";

fn unicore(base: &str) -> Transport {
    Transport::builder()
        .base_url(base)
        .credential(BearerToken::new("jwt").unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_session_is_remembered_and_sent_back_by_every_clone() {
    let (router, log) = recording(|_, _| {
        respond(
            200,
            &[
                (SESSION, "S1"),
                ("x-unicore-securitysession-lifetime", "28800000"),
            ],
            "",
        )
    });
    let server = TestServer::http(router).await;
    let transport = unicore(&server.url("/"));
    let clone = transport.clone();

    transport.get("a").send().await.unwrap();
    clone.get("b").send().await.unwrap();

    let seen = log.all();
    assert_eq!(seen[0].header(SESSION), None);
    assert_eq!(seen[1].header(SESSION), Some("S1"));
    // The credential still goes along: the server decides which one to use.
    assert_eq!(seen[1].header("authorization"), Some("Bearer jwt"));
}

#[tokio::test]
async fn an_expired_session_is_dropped_and_the_request_resent_once() {
    let (router, log) = recording(|seen, index| match (index, seen.header(SESSION)) {
        (0, None) => respond(200, &[(SESSION, "S1")], ""),
        (_, Some("S1")) => respond(432, &[], ""),
        (_, None) => respond(200, &[(SESSION, "S2")], "fresh"),
        _ => respond(200, &[], "with S2"),
    });
    let server = TestServer::http(router).await;
    let transport = unicore(&server.url("/"));

    transport.get("a").send().await.unwrap();
    let response = transport.get("b").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().unwrap(), "fresh");
    let third = transport.get("c").send().await.unwrap();
    assert_eq!(third.text().unwrap(), "with S2");

    let seen = log.all();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[1].header(SESSION), Some("S1"));
    assert_eq!(seen[2].header(SESSION), None);
    assert_eq!(seen[2].path, "/b");
    assert_eq!(seen[3].header(SESSION), Some("S2"));
}

#[tokio::test]
async fn a_second_432_is_returned() {
    let (router, log) = recording(|_, index| {
        if index == 0 {
            respond(200, &[(SESSION, "S1")], "")
        } else {
            respond(432, &[], "")
        }
    });
    let server = TestServer::http(router).await;
    let transport = unicore(&server.url("/"));

    transport.get("a").send().await.unwrap();
    let response = transport.get("b").send().await.unwrap();

    assert_eq!(response.status().as_u16(), 432);
    assert_eq!(log.len(), 3);
}

#[tokio::test]
async fn sessions_stay_with_their_identity_and_can_be_turned_off() {
    let (router, log) = recording(|_, _| respond(200, &[(SESSION, "S1")], ""));
    let server = TestServer::http(router).await;
    let transport = unicore(&server.url("/"));
    transport.get("a").send().await.unwrap();

    let other: Arc<dyn Credential> = Arc::new(BearerToken::new("other").unwrap());
    transport.get("b").credential(other).send().await.unwrap();
    assert_eq!(log.last().header(SESSION), None);

    transport
        .get("c")
        .preferences(Preferences::new().group("g"))
        .send()
        .await
        .unwrap();
    assert_eq!(log.last().header(SESSION), None);

    transport
        .with_credential(BearerToken::new("other").unwrap())
        .get("d")
        .send()
        .await
        .unwrap();
    assert_eq!(log.last().header(SESSION), None);

    transport
        .with_preferences(Preferences::new().group("g"))
        .get("e")
        .send()
        .await
        .unwrap();
    assert_eq!(log.last().header(SESSION), None);

    transport.get("f").send().await.unwrap();
    assert_eq!(log.last().header(SESSION), Some("S1"));

    let off = Transport::builder()
        .base_url(&server.url("/"))
        .security_sessions(false)
        .build()
        .unwrap();
    off.get("g").send().await.unwrap();
    off.get("h").send().await.unwrap();
    assert_eq!(log.last().header(SESSION), None);
}
