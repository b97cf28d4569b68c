//! `AuthLayer` around a hyper-util client and around a plain `service_fn`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sciauth_middleware::credentials::{BearerToken, Credential};
use sciauth_middleware::{Auth, BoxError, ErrorKind};
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::support::{FailingToken, RenewingToken, SECRET, TestServer};

type Body = Full<Bytes>;

/// The `Authorization` headers a `service_fn` saw, in order.
type Authorizations = Arc<Mutex<Vec<Option<String>>>>;

/// A hyper client with the credential for `origin`, as a tower service.
fn hyper_client(
    credential: Arc<dyn Credential>,
    origin: &str,
) -> impl Service<Request<Body>, Response = Response<hyper::body::Incoming>, Error = BoxError>
+ Clone
+ use<> {
    let auth = Auth::builder(credential).origin(origin).build().unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    ServiceBuilder::new().layer(auth.layer()).service(client)
}

fn get(url: &str) -> Request<Body> {
    Request::get(url).body(Body::default()).unwrap()
}

#[tokio::test]
async fn a_hyper_client_sends_the_header_to_the_origin_only() {
    let server = TestServer::answering(&[]).await;
    let other = TestServer::answering(&[]).await;
    let credential = Arc::new(BearerToken::new("a-token").unwrap());
    let client = hyper_client(credential, &server.origin());

    let response = client
        .clone()
        .oneshot(get(&server.url("/api")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    client
        .clone()
        .oneshot(get(&other.url("/api")))
        .await
        .unwrap();
    let own = Request::get(server.url("/own"))
        .header("authorization", "Basic bXk6b3du")
        .body(Body::default())
        .unwrap();
    client.oneshot(own).await.unwrap();

    assert_eq!(
        server.log.authorizations(),
        [
            Some("Bearer a-token".to_owned()),
            Some("Basic bXk6b3du".to_owned())
        ]
    );
    assert_eq!(other.log.authorizations(), [None]);
}

#[tokio::test]
async fn a_hyper_client_sends_once_more_after_a_renewal_and_no_more() {
    let server = TestServer::answering(&[401, 401, 401]).await;
    let credential = Arc::new(RenewingToken::default());
    let client = hyper_client(credential.clone(), &server.origin());

    let post = Request::post(server.url("/jobs"))
        .body(Body::from("the body"))
        .unwrap();
    let response = client.clone().oneshot(post).await.unwrap();
    // Renewed once, sent twice, the second 401 is the answer.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.log.authorizations(),
        [
            Some("Bearer token-0".to_owned()),
            Some("Bearer token-1".to_owned())
        ]
    );
    assert!(server.log.all().iter().all(|seen| seen.body == "the body"));
    assert_eq!(credential.rejections(), 1);

    // The third 401, then a 200 after the renewal.
    let response = client.oneshot(get(&server.url("/"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.log.len(), 4);
    assert_eq!(
        server.log.authorizations()[3].as_deref(),
        Some("Bearer token-2")
    );
}

/// A plain tower stack: a `service_fn` that answers 403 first, then 200, and records the
/// `Authorization` header of each request.
fn recording_service(
    auth: &Auth,
) -> (
    impl Service<Request<String>, Response = Response<String>, Error = BoxError> + Clone + use<>,
    Authorizations,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let service = tower::service_fn(move |request: Request<String>| {
        let seen = seen.clone();
        async move {
            let mut seen = seen.lock().unwrap();
            seen.push(
                (request.headers().get("authorization")).map(|v| v.to_str().unwrap().to_owned()),
            );
            let status = if seen.len() == 1 { 403 } else { 200 };
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    (
        ServiceBuilder::new().layer(auth.layer()).service(service),
        log,
    )
}

#[tokio::test]
async fn a_tower_stack_honours_the_rejected_statuses() {
    let credential = Arc::new(RenewingToken::default());
    let auth = Auth::builder(credential.clone())
        .origin("https://api.example.org")
        .rejected_statuses([StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN])
        .build()
        .unwrap();
    let (service, seen) = recording_service(&auth);
    let request = Request::get("https://api.example.org/x")
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Some("Bearer token-0".to_owned()),
            Some("Bearer token-1".to_owned())
        ]
    );

    // By default a 403 is the answer.
    let credential = Arc::new(RenewingToken::default());
    let auth = Auth::builder(credential.clone())
        .origin("https://api.example.org")
        .build()
        .unwrap();
    let (service, seen) = recording_service(&auth);
    let request = Request::get("https://api.example.org/x")
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        (seen.lock().unwrap().len(), credential.rejections()),
        (1, 0)
    );
}

#[tokio::test]
async fn a_relative_or_foreign_uri_gets_no_header() {
    let credential = Arc::new(BearerToken::new("a-token").unwrap());
    let auth = Auth::builder(credential)
        .origin("https://api.example.org")
        .build()
        .unwrap();
    let (service, seen) = recording_service(&auth);
    for uri in [
        "/relative",
        "http://api.example.org/",
        "https://api.example.org:8443/",
        "https://other.example.org/",
    ] {
        let request = Request::get(uri)
            .header("host", "api.example.org")
            .body(String::new())
            .unwrap();
        service.clone().oneshot(request).await.unwrap();
    }
    let request = Request::get("https://API.example.org:443/yes")
        .body(String::new())
        .unwrap();
    service.oneshot(request).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [None, None, None, None, Some("Bearer a-token".to_owned())]
    );
}

#[tokio::test]
async fn a_failing_credential_is_a_typed_error_without_the_secret() {
    let server = TestServer::answering(&[401]).await;
    let client = hyper_client(
        Arc::new(FailingToken { fail_header: false }),
        &server.origin(),
    );
    let error = client.oneshot(get(&server.url("/"))).await.unwrap_err();
    assert_eq!(server.log.len(), 1);
    assert!(!format!("{error} {error:?}").contains(SECRET), "{error:?}");
    let error = error.downcast::<sciauth_middleware::Error>().unwrap();
    assert_eq!(error.kind(), ErrorKind::Credential);
    assert!(error.needs_login(), "{error}");
}
