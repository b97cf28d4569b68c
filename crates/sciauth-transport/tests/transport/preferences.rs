//! `X-UNICORE-User-Preferences` per transport and per request.

use sciauth_transport::{ErrorKind, Preferences, Transport};

use crate::support::{TestServer, recording, respond};

const HEADER: &str = "x-unicore-user-preferences";

#[tokio::test]
async fn preferences_arrive_exactly_as_unicore_parses_them() {
    let (router, log) = recording(|_, _| respond(200, &[], ""));
    let server = TestServer::http(router).await;
    let preferences = Preferences::new()
        .uid("x")
        .group("g")
        .supplementary_groups(["a", "b"])
        .role("r");
    let transport = Transport::builder()
        .base_url(&server.url("/rest/core"))
        .preferences(preferences)
        .build()
        .unwrap();

    transport.get("jobs").send().await.unwrap();

    let seen = log.last();
    assert_eq!(seen.path, "/rest/core/jobs");
    assert_eq!(
        seen.header(HEADER),
        Some("uid:x,group:g,supgids:a+b,role:r")
    );
    assert_eq!(seen.headers.get_all(HEADER).iter().count(), 1);
}

#[tokio::test]
async fn no_preferences_no_header() {
    let (router, log) = recording(|_, _| respond(200, &[], ""));
    let server = TestServer::http(router).await;
    let transport = Transport::builder().build().unwrap();

    transport.get(&server.url("/")).send().await.unwrap();

    assert_eq!(log.last().header(HEADER), None);
}

#[tokio::test]
async fn with_preferences_changes_the_header_and_shares_the_connection_pool() {
    let (router, log) = recording(|_, _| respond(200, &[], ""));
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .preferences(Preferences::new().uid("alice"))
        .build()
        .unwrap();
    let project = transport.with_preferences(Preferences::new().uid("alice").group("project1"));

    transport.get("a").send().await.unwrap();
    project.get("b").send().await.unwrap();
    transport.get("c").send().await.unwrap();

    let seen = log.all();
    assert_eq!(seen[0].header(HEADER), Some("uid:alice"));
    assert_eq!(seen[1].header(HEADER), Some("uid:alice,group:project1"));
    assert_eq!(seen[2].header(HEADER), Some("uid:alice"));
    // One pooled connection carried all three.
    assert_eq!(seen[0].peer, seen[1].peer);
    assert_eq!(seen[1].peer, seen[2].peer);
    assert_eq!(
        project.preferences().unwrap().group.as_deref(),
        Some("project1")
    );

    // A fresh pool opens a new connection.
    let fresh = transport.with_fresh_connections().unwrap();
    fresh.get("d").send().await.unwrap();
    assert_ne!(log.last().peer, seen[0].peer);
    assert_eq!(log.last().header(HEADER), Some("uid:alice"));
}

#[tokio::test]
async fn a_request_can_override_or_drop_the_preferences() {
    let (router, log) = recording(|_, _| respond(200, &[], ""));
    let server = TestServer::http(router).await;
    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .preferences(Preferences::new().uid("alice"))
        .build()
        .unwrap();

    transport
        .get("x")
        .preferences(Preferences::new().role("admin").supplementary_group("ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(log.last().header(HEADER), Some("supgids:ops,role:admin"));

    transport
        .get("x")
        .preferences(Preferences::new())
        .send()
        .await
        .unwrap();
    assert_eq!(log.last().header(HEADER), None);
}

#[tokio::test]
async fn preferences_the_server_cannot_parse_are_never_sent() {
    let (router, log) = recording(|_, _| respond(200, &[], ""));
    let server = TestServer::http(router).await;

    let error = Transport::builder()
        .preferences(Preferences::new().group("a,b"))
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidPreference);
    assert!(error.to_string().contains("group"), "{error}");

    let transport = Transport::builder()
        .base_url(&server.url("/"))
        .build()
        .unwrap();
    let bad = transport.with_preferences(Preferences::new().uid("x:y"));
    let error = bad.get("x").send().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidPreference);

    let error = transport
        .get("x")
        .preferences(Preferences::new().supplementary_group("a+b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidPreference);
    assert_eq!(log.len(), 0);
}
