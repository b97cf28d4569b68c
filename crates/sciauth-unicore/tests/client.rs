//! The UNICORE client against a local server that answers as UNICORE documents.

mod support;

use std::time::Duration;

use async_trait::async_trait;
use sciauth_credentials::{AuthHeader, Credential, UsernamePassword};
use sciauth_transport::{HeaderName, HeaderValue, Preferences};
use sciauth_unicore::ErrorKind;
use sciauth_unicore::{AuthTokenOptions, Client};
use support::unicore::{DN, PASSWORD, USER, UnicoreServer};

async fn password_client(base_url: &str) -> sciauth_unicore::Result<Client> {
    Client::builder(base_url)
        .credential(UsernamePassword::new(USER, PASSWORD).unwrap())
        .build()
        .await
}

#[tokio::test]
async fn access_info_shows_who_the_server_thinks_we_are() {
    let site = UnicoreServer::start().await;
    let client = password_client(&site.base_url).await.unwrap();
    let info = client.access_info().await.unwrap();
    assert_eq!(info.dn, DN);
    assert_eq!(info.role.selected, "user");
    assert_eq!(info.xlogin.uid.as_deref(), Some("demouser"));
    assert_eq!(
        info.xlogin.available_groups,
        ["demogroup", "project1", "project2"]
    );
    assert_eq!(info.authentication_method.as_deref(), Some("PASSWORD_FILE"));
    assert!(info.extra.contains_key("queues"), "unknown fields are kept");
}

#[tokio::test]
async fn preferences_reach_the_server_per_client_and_per_request() {
    let site = UnicoreServer::start().await;
    let client = Client::builder(&site.base_url)
        .credential(UsernamePassword::new(USER, PASSWORD).unwrap())
        .preferences(Preferences::new().group("project1"))
        .build()
        .await
        .unwrap();
    assert_eq!(
        client.access_info().await.unwrap().xlogin.group.as_deref(),
        Some("project1")
    );

    let other = client.with_preferences(
        Preferences::new()
            .uid("demo2")
            .group("project2")
            .supplementary_groups(["demogroup", "project1"]),
    );
    let info = other.access_info().await.unwrap();
    assert_eq!(info.xlogin.uid.as_deref(), Some("demo2"));
    assert_eq!(
        info.xlogin.selected_supplementary_groups,
        ["demogroup", "project1"]
    );

    let sent = site.server.seen(|s| s.preferences.clone());
    assert_eq!(sent.first().unwrap().as_deref(), Some("group:project1"));
    assert_eq!(
        sent.last().unwrap().as_deref(),
        Some("uid:demo2,group:project2,supgids:demogroup+project1")
    );
}

#[tokio::test]
async fn a_bad_preference_gives_a_clear_error() {
    let site = UnicoreServer::start().await;
    // Not allowed for this user: the server says 403 and why.
    let err = Client::builder(&site.base_url)
        .credential(UsernamePassword::new(USER, PASSWORD).unwrap())
        .preferences(Preferences::new().group("someone-elses-project"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
    assert!(
        err.to_string()
            .contains("'someone-elses-project' is not available"),
        "{err}"
    );

    // Not expressible: refused before anything is sent.
    let client = password_client(&site.base_url).await.unwrap();
    let before = site.server.seen(|s| s.preferences.len());
    let err = client
        .with_preferences(Preferences::new().group("a:b"))
        .access_info()
        .await
        .unwrap_err();
    assert_eq!(
        err.transport_error().map(|e| e.kind()),
        Some(sciauth_transport::ErrorKind::InvalidPreference),
        "{err}"
    );
    assert_eq!(site.server.seen(|s| s.preferences.len()), before);
}

#[tokio::test]
async fn an_expired_security_session_is_dropped_and_the_request_sent_again() {
    let site = UnicoreServer::start().await;
    let client = password_client(&site.base_url).await.unwrap();
    client.access_info().await.unwrap();
    site.server.expire_sessions();
    let info = client.access_info().await.unwrap();
    assert_eq!(info.role.selected, "user");
    assert_eq!(site.server.seen(|s| s.expired_sessions), 1);
}

#[tokio::test]
async fn a_wrong_password_fails_the_build() {
    let site = UnicoreServer::start().await;
    let err = Client::builder(&site.base_url)
        .credential(UsernamePassword::new(USER, "wrong-password").unwrap())
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
    assert!(!format!("{err} {err:?}").contains("wrong-password"));
}

/// A credential in a header the server does not read: the server treats the client as
/// anonymous, which the builder's check catches (pyunicore's AuthenticationFailedException).
#[derive(Debug)]
struct IgnoredHeader;

#[async_trait]
impl Credential for IgnoredHeader {
    async fn header(&self) -> sciauth_credentials::Result<Option<AuthHeader>> {
        Ok(Some(AuthHeader::new(
            HeaderName::from_static("x-not-read"),
            HeaderValue::from_static("whatever"),
        )))
    }
}

#[tokio::test]
async fn an_anonymous_result_fails_the_build_unless_the_check_is_off() {
    let site = UnicoreServer::start().await;
    let err = Client::builder(&site.base_url)
        .credential(IgnoredHeader)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthenticationFailed);
    assert!(err.is_refused() && err.status().is_none(), "{err:?}");
    assert!(err.to_string().contains("anonymous"), "{err}");

    let unchecked = Client::builder(&site.base_url)
        .credential(IgnoredHeader)
        .check_authentication(false)
        .build()
        .await
        .unwrap();
    assert_eq!(
        unchecked.access_info().await.unwrap().role.selected,
        "anonymous"
    );
    // No credential at all: anonymous on purpose, so no check.
    Client::builder(&site.base_url).build().await.unwrap();
}

#[tokio::test]
async fn an_issued_token_works_as_a_bearer_credential() {
    let site = UnicoreServer::start().await;
    let client = password_client(&site.base_url).await.unwrap();
    let token = client
        .issue_auth_token(AuthTokenOptions {
            lifetime: Some(Duration::from_secs(3600)),
            renewable: true,
            limited: false,
        })
        .await
        .unwrap();
    client
        .issue_auth_token(AuthTokenOptions::default())
        .await
        .unwrap();
    let (queries, accepts) = site
        .server
        .seen(|s| (s.token_queries.clone(), s.token_accepts.clone()));
    assert_eq!(
        queries,
        [Some("lifetime=3600&renewable=true".to_owned()), None],
        "parameters only when set"
    );
    assert!(accepts.iter().all(|a| a.as_deref() == Some("text/plain")));
    assert_eq!(format!("{token:?}"), "IssuedToken([redacted])");

    let with_token = Client::builder(&site.base_url)
        .credential(token)
        .build()
        .await
        .unwrap();
    let info = with_token.access_info().await.unwrap();
    assert_eq!(info.authentication_method.as_deref(), Some("ETD"));
}
