//! The HTTP JSON API: one route per method (`POST /v1/<method>`), `GET /openapi.json`,
//! `/healthz`, `/readyz` and `/metrics`, and JSON errors for everything else (unknown paths,
//! wrong methods, bodies that are too large, malformed or of the wrong shape). Every request
//! is counted in the metrics and logged in one line (`observe`).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use sciauth_service_api::{ErrorCode, GROUP_HEADER};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ApiError;
use crate::app::{App, Generation};
use crate::caller::{Caller, PeerDn, Profile};
use crate::config::properties;
use crate::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use limited::limited_bytes;

/// The OpenAPI 3.1 description of the API, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The tracing target of the one line logged per request.
const ACCESS_LOG: &str = "sciauth_server::access";

type Route = (
    &'static str,
    &'static [&'static str],
    fn() -> MethodRouter<Arc<App>>,
);

/// Every route: path, methods, handler. The router is built from this list, and a test checks
/// that the OpenAPI description has exactly these.
pub(crate) static ROUTES: &[Route] = &[
    ("/v1/getToken", &["post"], || post(get_token)),
    ("/v1/updateToken", &["post"], || post(update_token)),
    ("/v1/deleteToken", &["post"], || post(delete_token)),
    ("/v1/getTokensByUserID", &["post"], || {
        post(tokens_by_user_id)
    }),
    ("/v1/getUserTokensInfo", &["post"], || post(own_tokens_info)),
    ("/v1/getUsersTokensInfo", &["post"], || {
        post(users_tokens_info)
    }),
    ("/v1/whoami", &["get", "post"], || get(whoami).post(whoami)),
    ("/v1/ping", &["get", "post"], || get(ping).post(ping)),
    ("/openapi.json", &["get"], || get(openapi)),
    ("/healthz", &["get"], || get(healthz)),
    ("/readyz", &["get"], || get(readyz)),
    ("/metrics", &["get"], || get(metrics_for_administrators)),
];

/// The API, every request observed.
pub(crate) fn router(app: Arc<App>) -> Router {
    let mut router = Router::new();
    for (path, _, route) in ROUTES {
        router = router.route(path, route());
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

/// The separate metrics listener (`[metrics] listen`): `/metrics` without authentication,
/// `/healthz`, `/readyz`. Its requests are not counted in the request metrics.
pub(crate) fn metrics_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

/// Who a request turned out to be from, filled in when it is authenticated: for the access
/// log.
#[derive(Clone, Default)]
struct CallerSlot(Arc<OnceLock<Arc<Profile>>>);

/// The route a path is (its pattern in [`ROUTES`]), or `other`: a bounded label, never what
/// a client wrote.
fn route_label(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|(route, _, _)| *route == path)
        .map_or("other", |(route, _, _)| route)
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Counts every request in the metrics and logs it in one line: who called (their configured
/// user name and group, once authenticated), the method and route, the status, how long it
/// took. Never a header, a body or a query string, so never a token.
async fn observe(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(request.uri().path());
    let method = method_label(request.method());
    let protocol = request.version();
    let slot = CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let in_flight = app.metrics.request_started();
    let response = next.run(request).await;
    drop(in_flight);
    let took = started.elapsed();
    let status = response.status().as_u16();
    app.metrics.request_answered(route, method, status, took);
    let latency_ms = took.as_secs_f64() * 1000.0;
    let caller = slot.0.get();
    let (user, group) = caller.map_or(("-", None), |caller| {
        (caller.username.as_str(), Some(caller.group.as_str()))
    });
    // A load balancer's probes would fill the log: they are there at DEBUG.
    if matches!(route, "/healthz" | "/readyz") {
        tracing::debug!(
            target: ACCESS_LOG,
            caller = user,
            group,
            method,
            route,
            status,
            latency_ms,
            ?protocol,
            "request"
        );
    } else {
        tracing::info!(
            target: ACCESS_LOG,
            caller = user,
            group,
            method,
            route,
            status,
            latency_ms,
            ?protocol,
            "request"
        );
    }
    response
}

/// A JSON answer that no cache keeps (it may hold a token).
pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Authenticates the caller, then reads and parses the body as `Req` (an empty body is `{}`).
async fn prepare<Req: DeserializeOwned>(
    app: &Generation,
    request: Request,
) -> Result<(Caller, Req), ApiError> {
    let (parts, body) = request.into_parts();
    let caller = app
        .auth
        .authenticate(
            parts
                .headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            parts.headers.get(GROUP_HEADER).map(HeaderValue::as_bytes),
            parts.extensions.get::<PeerDn>(),
        )
        .await?;
    if let Some(slot) = parts.extensions.get::<CallerSlot>() {
        let _ = slot.0.set(caller.profile.clone());
    }
    // A client that sends its body a byte at a time would otherwise hold the request (and
    // its connection) open for as long as it likes.
    let config = app.config();
    let body_timeout = config.limits.body_timeout;
    let bytes = tokio::time::timeout(
        body_timeout,
        limited_bytes(&parts.headers, body, config.max_body_bytes),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} s",
                body_timeout.as_secs_f64()
            ),
        )
    })??;
    Ok((caller, parse_json(&bytes)?))
}

/// Parses `bytes` as `T`, with an error that names where and what was expected but never
/// quotes a value (which may be a token).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => b"{}",
        // serde would also take a struct from an array of its fields in order.
        Some(b'{') => bytes,
        Some(_) => {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = describe_json_error(&inner);
        if path == "." || path.is_empty() {
            ApiError::bad_request(format!("the request body {what}"))
        } else {
            ApiError::bad_request(format!("the request body at {path} {what}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|_| ApiError::bad_request("the request body has data after the JSON value"))?;
    Ok(parsed)
}

fn describe_json_error(error: &serde_json::Error) -> String {
    let position = format!("(line {} column {})", error.line(), error.column());
    if error.is_syntax() || error.is_eof() {
        return format!("is not valid JSON {position}");
    }
    let message = error.to_string();
    // serde's "invalid type: string \"...\", expected ..." quotes the value: keep only what
    // was expected. Messages about fields name only the fields.
    match message.split_once(", expected ") {
        Some((kind, expected)) if kind.starts_with("invalid") => {
            let expected = expected
                .rsplit_once(" at line ")
                .map_or(expected, |(e, _)| e);
            format!("has the wrong type or value: expected {expected} {position}")
        }
        _ => {
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            format!("is not accepted: {message} {position}")
        }
    }
}

fn answer<T: Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(error) => error.into_response(),
    }
}

async fn get_token(State(app): State<Arc<App>>, request: Request) -> Response {
    let app = app.current();
    answer(
        async {
            let (caller, body) = prepare(&app, request).await?;
            app.service.get_token(&caller, body).await
        }
        .await,
    )
}

async fn update_token(State(app): State<Arc<App>>, request: Request) -> Response {
    let app = app.current();
    answer(
        async {
            let (caller, body) = prepare(&app, request).await?;
            app.service.update_token(&caller, body).await
        }
        .await,
    )
}

async fn delete_token(State(app): State<Arc<App>>, request: Request) -> Response {
    let app = app.current();
    answer(
        async {
            let (caller, body) = prepare(&app, request).await?;
            app.service.delete_token(&caller, body).await
        }
        .await,
    )
}

async fn tokens_by_user_id(State(app): State<Arc<App>>, request: Request) -> Response {
    let app = app.current();
    answer(
        async {
            let (caller, body) = prepare(&app, request).await?;
            app.service.tokens_by_user_id(&caller, body).await
        }
        .await,
    )
}

/// The body of the methods that take no parameters: `{}` (or nothing).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoParameters {}

async fn own_tokens_info(State(app): State<Arc<App>>, request: Request) -> Response {
    let app = app.current();
    answer(
        async {
            let (caller, NoParameters {}) = prepare(&app, request).await?;
            app.service.own_tokens_info(&caller).await
        }
        .await,
    )
}

async fn users_tokens_info(State(app): State<Arc<App>>, request: Request) -> Response {
    let app = app.current();
    answer(
        async {
            let (caller, body) = prepare(&app, request).await?;
            app.service.users_tokens_info(&caller, body).await
        }
        .await,
    )
}

async fn whoami(State(app): State<Arc<App>>, request: Request) -> Response {
    let app = app.current();
    answer(
        async {
            let (caller, NoParameters {}) = prepare(&app, request).await?;
            Ok(app.service.whoami(&caller))
        }
        .await,
    )
}

/// Needs no authentication (DIRAC: `auth_ping = all`).
async fn ping(State(app): State<Arc<App>>) -> Response {
    json_response(StatusCode::OK, &app.current().service.ping())
}

/// The process is up. No authentication, no secrets.
async fn healthz() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// Whether this replica can serve (see `App::readiness`): 200, or 503 with what is missing.
/// No authentication, no secrets: states only, no error text.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let readiness = app.readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &readiness)
}

/// `/metrics` on the separate metrics listener.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut response = Response::new(Body::from(app.metrics.encode()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(METRICS_CONTENT_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `/metrics` on the service's listener: for callers with `ServiceAdministrator`.
async fn metrics_for_administrators(State(app): State<Arc<App>>, request: Request) -> Response {
    let allowed = async {
        let (caller, NoParameters {}) = prepare(&app.current(), request).await?;
        if caller.has(properties::SERVICE_ADMINISTRATOR) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the metrics need the property ServiceAdministrator, which the group {} does \
                 not have (or configure a separate [metrics] listener)",
                caller.profile.group
            )))
        }
    }
    .await;
    match allowed {
        Ok(()) => metrics(State(app)).await,
        Err(error) => error.into_response(),
    }
}

async fn openapi() -> Response {
    let mut response = Response::new(Body::from(OPENAPI));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn not_found(request: Request) -> Response {
    ApiError::not_found(format!(
        "no method at {}; see GET /openapi.json",
        request.uri().path()
    ))
    .into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} does not answer {}; methods are called with POST",
            request.uri().path(),
            request.method()
        ),
    )
    .into_response()
}

/// Reading a body under a size limit.
mod limited {
    use axum::body::Body;
    use axum::http::{HeaderMap, header};
    use bytes::Bytes;
    use sciauth_service_api::ErrorCode;

    use crate::api::ApiError;

    fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// The whole body, refused by `Content-Length` before reading when it says too much, or
    /// cut off while reading.
    pub(super) async fn limited_bytes(
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<Bytes, ApiError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large(limit));
        }
        axum::body::to_bytes(body, limit).await.map_err(|e| {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(error) = source {
                if error.is::<http_body_util::LengthLimitError>() {
                    return too_large(limit);
                }
                source = error.source();
            }
            ApiError::bad_request("the request body could not be read")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_description_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = 0;
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                documented += 1;
                assert!(
                    ROUTES
                        .iter()
                        .any(|(p, methods, _)| p == path && methods.contains(&method.as_str())),
                    "{method} {path} is documented but not routed"
                );
                assert!(
                    operation["summary"].is_string() && operation["responses"].is_object(),
                    "{method} {path} needs a summary and responses"
                );
            }
        }
        for (path, methods, _) in ROUTES {
            for method in *methods {
                assert!(
                    paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                    "{method} {path} is routed but not in openapi.json"
                );
            }
        }
        let routed: usize = ROUTES.iter().map(|(_, m, _)| m.len()).sum();
        assert_eq!(documented, routed);
    }

    #[test]
    fn json_errors_say_where_without_quoting_values() {
        use sciauth_service_api::{GetTokenRequest, UpdateTokenRequest};
        let e = parse_json::<GetTokenRequest>(br#"{"username": 5}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("username"), "{}", e.message);
        assert!(e.message.contains("expected"), "{}", e.message);
        let e = parse_json::<UpdateTokenRequest>(
            br#"{"token": "secret-token-value", "userID": "a", "provider": "p"}"#,
        )
        .unwrap_err();
        assert!(!e.message.contains("secret-token-value"), "{}", e.message);
        assert!(e.message.contains("token"), "{}", e.message);
        let e = parse_json::<GetTokenRequest>(b"[]").unwrap_err();
        assert!(e.message.contains("JSON object"), "{}", e.message);
        let e = parse_json::<GetTokenRequest>(b"{\"username\": ").unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        let e = parse_json::<GetTokenRequest>(br#"{"nope": 1}"#).unwrap_err();
        assert!(e.message.contains("nope"), "{}", e.message);
        let e = parse_json::<GetTokenRequest>(br#"{} {}"#).unwrap_err();
        assert!(e.message.contains("after"), "{}", e.message);
        assert!(parse_json::<GetTokenRequest>(b"  ").is_ok());
    }
}
