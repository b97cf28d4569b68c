//! Redirects: what the caller's headers and body may follow, and where a redirect may lead.

use sciauth_transport::{ErrorKind, Transport};

use crate::support::{Log, Pki, TestServer, recording, respond};

/// A server that records what reaches it and answers 200 "elsewhere".
async fn elsewhere() -> (TestServer, Log) {
    let (router, log) = recording(|_, _| respond(200, &[], "elsewhere"));
    (TestServer::http(router).await, log)
}

/// A server on which `/same` redirects (302) to `/final` on itself, `/away` with `status`
/// to `target`, and everything else answers 200 "home".
async fn home(status: u16, target: String) -> (TestServer, Log) {
    let (router, log) = recording(move |seen, _| match seen.path.as_str() {
        "/same" => respond(302, &[("location", "/final")], ""),
        "/same-307" => respond(307, &[("location", "/final")], ""),
        "/away" => respond(status, &[("location", &target)], ""),
        _ => respond(200, &[], "home"),
    });
    (TestServer::http(router).await, log)
}

fn with_caller_credentials(
    request: sciauth_transport::RequestBuilder,
) -> sciauth_transport::RequestBuilder {
    request
        .header("Authorization", "Bearer caller-secret")
        .header("Proxy-Authorization", "Basic proxy-secret")
        .header("Cookie", "session=cookie-secret")
        .sensitive_header("X-Api-Key", "key-secret")
        .header("X-Plain", "kept")
}

#[tokio::test]
async fn caller_credentials_do_not_follow_a_redirect_to_another_origin() {
    let (elsewhere, elsewhere_log) = elsewhere().await;
    let (home, home_log) = home(302, elsewhere.url("/landing")).await;
    let transport = Transport::builder()
        .base_url(&home.url("/"))
        .build()
        .unwrap();

    // On the same origin, everything the caller set arrives after the redirect.
    let response = with_caller_credentials(transport.get("same"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().unwrap(), "home");
    let landed = home_log.last();
    assert_eq!(landed.path, "/final");
    assert_eq!(landed.header("authorization"), Some("Bearer caller-secret"));
    assert_eq!(landed.header("cookie"), Some("session=cookie-secret"));
    assert_eq!(landed.header("x-api-key"), Some("key-secret"));

    // On another origin, none of the credentials does; the plain header does.
    let response = with_caller_credentials(transport.get("away"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().unwrap(), "elsewhere");
    let landed = elsewhere_log.last();
    assert_eq!(landed.path, "/landing");
    assert_eq!(landed.header("x-plain"), Some("kept"));
    for name in [
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
    ] {
        assert_eq!(landed.header(name), None, "{name} followed the redirect");
    }
    // The first hop, at home, had them all.
    let first = &home_log.all()[2];
    assert_eq!(first.path, "/away");
    assert_eq!(
        first.header("proxy-authorization"),
        Some("Basic proxy-secret")
    );
}

#[tokio::test]
async fn a_redirect_from_https_to_http_is_refused() {
    let (plain, plain_log) = elsewhere().await;
    let target = plain.url("/landing");
    let (router, _) = recording(move |_, _| respond(302, &[("location", &target)], ""));
    let pki = Pki::new();
    let secure = TestServer::https(router, pki.server_config(false)).await;
    let transport = Transport::builder()
        .root_ca_pem_file(pki.path("ca.pem"))
        .build()
        .unwrap();

    let error = transport
        .get(&secure.localhost_url("/start"))
        .header("Authorization", "Bearer caller-secret")
        .send()
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Redirect, "{error:?}");
    assert!(
        error.to_string().contains("from https to plain http"),
        "{error}"
    );
    assert_eq!(plain_log.len(), 0, "the plain http server was asked");
}

#[tokio::test]
async fn a_307_or_308_to_another_origin_does_not_resend_the_body() {
    for status in [307, 308] {
        let (elsewhere, elsewhere_log) = elsewhere().await;
        let (home, home_log) = home(status, elsewhere.url("/landing")).await;
        let transport = Transport::builder()
            .base_url(&home.url("/"))
            .build()
            .unwrap();

        let error = transport
            .post("away")
            .form(&[("refresh_token", "body-secret")])
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Redirect, "{error:?}");
        assert!(error.to_string().contains("another origin"), "{error}");
        assert!(!error.to_string().contains("body-secret"), "{error}");
        assert_eq!(
            elsewhere_log.len(),
            0,
            "HTTP {status}: the body went elsewhere"
        );

        // A body-less request is followed there, and a body stays on its own origin.
        let response = transport.get("away").send().await.unwrap();
        assert_eq!(response.text().unwrap(), "elsewhere");
        assert_eq!(elsewhere_log.last().method, "GET");
        let response = transport
            .post("same-307")
            .body("stays home")
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().unwrap(), "home");
        let landed = home_log.last();
        assert_eq!(
            (landed.method.as_str(), &landed.body[..]),
            ("POST", &b"stays home"[..])
        );
    }
}
