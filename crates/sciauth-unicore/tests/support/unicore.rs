//! A local server that answers as the UNICORE REST API documents it (no real UNICORE server
//! can run here): `GET <base>` with the `client` section, `GET <base>/token`, user
//! preferences checked against what the user may select (403 otherwise), security sessions
//! (432 for an expired one), 403 for a credential it cannot verify, anonymous without one.
//!
//! The behaviour follows `UNICORE-EU/use` as summarised in `shared/research/unicore.md`.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test uses part of the server"
)]
#![allow(
    clippy::result_large_err,
    reason = "a test server: the error is the response"
)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

pub const USER: &str = "demouser";
pub const PASSWORD: &str = "test123";
pub const DN: &str = "CN=Demo User,O=UNICORE,C=EU";
pub const UIDS: &[&str] = &["demouser", "demo2"];
pub const GROUPS: &[&str] = &["demogroup", "project1", "project2"];

/// What the server saw, for the tests to assert on.
#[derive(Default)]
pub struct Seen {
    /// The `X-UNICORE-User-Preferences` header of each request (None if absent).
    pub preferences: Vec<Option<String>>,
    /// The query strings of `GET token`.
    pub token_queries: Vec<Option<String>>,
    /// The `Accept` headers of `GET token`.
    pub token_accepts: Vec<Option<String>>,
    /// How many requests got 432 (expired session).
    pub expired_sessions: usize,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, (String, &'static str)>,
    issued: HashSet<String>,
    seen: Seen,
    next: u64,
}

#[derive(Clone, Default)]
pub struct UnicoreServer {
    inner: Arc<Mutex<Inner>>,
}

pub struct Running {
    pub base_url: String,
    pub server: UnicoreServer,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl UnicoreServer {
    /// Starts on 127.0.0.1, port 0; stops when the returned value is dropped.
    pub async fn start() -> Running {
        let server = UnicoreServer::default();
        let app = Router::new()
            .route("/DEMO-SITE/rest/core", get(core))
            .route("/DEMO-SITE/rest/core/", get(core))
            .route("/DEMO-SITE/rest/core/token", get(token))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Running {
            base_url: format!("http://{addr}/DEMO-SITE/rest/core"),
            server,
            task,
        }
    }

    /// Forgets every security session, as a server restart or session timeout does.
    pub fn expire_sessions(&self) {
        self.inner.lock().unwrap().sessions.clear();
    }

    pub fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.inner.lock().unwrap().seen)
    }
}

enum Auth {
    User { name: String, method: &'static str },
    Anonymous,
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "errorMessage": message, "status": status.as_u16() })),
    )
        .into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Authenticates as UNICORE's AuthNHandler does: a known session wins (keeping how the
/// client first authenticated); an unknown one is 432;
/// credentials that cannot be verified are 403; none at all is anonymous.
fn authenticate(server: &UnicoreServer, headers: &HeaderMap) -> Result<Auth, Response> {
    let mut inner = server.inner.lock().unwrap();
    if let Some(session) = header(headers, "x-unicore-securitysession") {
        return match inner.sessions.get(&session) {
            Some((user, method)) => Ok(Auth::User {
                name: user.clone(),
                method,
            }),
            None => {
                inner.seen.expired_sessions += 1;
                Err(error(
                    StatusCode::from_u16(432).unwrap(),
                    "Security session expired",
                ))
            }
        };
    }
    let Some(authorization) = header(headers, "authorization") else {
        return Ok(Auth::Anonymous);
    };
    if let Some(basic) = authorization.strip_prefix("Basic ") {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        if decoded == format!("{USER}:{PASSWORD}") {
            return Ok(Auth::User {
                name: USER.into(),
                method: "PASSWORD_FILE",
            });
        }
    } else if let Some(bearer) = authorization.strip_prefix("Bearer ")
        && inner.issued.contains(bearer)
    {
        return Ok(Auth::User {
            name: USER.into(),
            method: "ETD",
        });
    }
    Err(error(
        StatusCode::FORBIDDEN,
        "Authentication failed: credentials could not be verified",
    ))
}

/// Checks `X-UNICORE-User-Preferences` like AuthNHandler.handleUserPreferences.
fn preferences(headers: &HeaderMap) -> Result<(String, String, Vec<String>), Response> {
    let (mut uid, mut group, mut supgids) = (UIDS[0].to_owned(), GROUPS[0].to_owned(), vec![]);
    let Some(value) = header(headers, "x-unicore-user-preferences") else {
        return Ok((uid, group, supgids));
    };
    for item in value.split(',') {
        let parts: Vec<&str> = item.split(':').collect();
        let [key, val] = parts[..] else {
            return Err(error(
                StatusCode::FORBIDDEN,
                &format!("Cannot parse user preference '{item}'"),
            ));
        };
        match key.to_ascii_lowercase().as_str() {
            "uid" | "xlogin" if UIDS.contains(&val) => uid = val.into(),
            "group" | "pgid" if GROUPS.contains(&val) => group = val.into(),
            "supgids" | "supplementarygroups" => {
                supgids = val.split('+').map(str::to_owned).collect();
                if let Some(bad) = supgids.iter().find(|g| !GROUPS.contains(&g.as_str())) {
                    return Err(error(
                        StatusCode::FORBIDDEN,
                        &format!("Requested supplementary group '{bad}' is not available"),
                    ));
                }
            }
            "role" if val == "user" => {}
            other => {
                return Err(error(
                    StatusCode::FORBIDDEN,
                    &format!("Requested {other} '{val}' is not available"),
                ));
            }
        }
    }
    Ok((uid, group, supgids))
}

async fn core(State(server): State<UnicoreServer>, headers: HeaderMap) -> Response {
    server
        .inner
        .lock()
        .unwrap()
        .seen
        .preferences
        .push(header(&headers, "x-unicore-user-preferences"));
    let auth = match authenticate(&server, &headers) {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let (uid, group, supgids) = match preferences(&headers) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let (client, session) = match auth {
        Auth::Anonymous => (
            json!({ "dn": "", "role": { "selected": "anonymous", "availableRoles": [] } }),
            None,
        ),
        Auth::User { name, method } => {
            let mut inner = server.inner.lock().unwrap();
            inner.next += 1;
            let session = format!("session-{}", inner.next);
            inner.sessions.insert(session.clone(), (name, method));
            (
                json!({
                    "dn": DN,
                    "xlogin": {
                        "UID": uid, "availableUIDs": UIDS,
                        "group": group, "availableGroups": GROUPS,
                        "selectedSupplementaryGroups": supgids,
                    },
                    "role": { "selected": "user", "availableRoles": ["user"] },
                    "authenticationMethod": method,
                    "queues": { "selected": "batch", "availableQueues": ["batch"] },
                }),
                Some(session),
            )
        }
    };
    let body = axum::Json(json!({ "client": client, "server": { "version": "10.1.0" } }));
    match session {
        Some(session) => (
            [
                ("X-UNICORE-SecuritySession", session),
                ("X-UNICORE-SecuritySession-Lifetime", "28800000".to_owned()),
            ],
            body,
        )
            .into_response(),
        None => body.into_response(),
    }
}

async fn token(
    State(server): State<UnicoreServer>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    {
        let mut inner = server.inner.lock().unwrap();
        inner.seen.token_queries.push(query);
        inner.seen.token_accepts.push(header(&headers, "accept"));
    }
    match authenticate(&server, &headers) {
        Ok(Auth::User { .. }) => {}
        Ok(Auth::Anonymous) => return error(StatusCode::FORBIDDEN, "Access denied"),
        Err(response) => return response,
    }
    let mut inner = server.inner.lock().unwrap();
    inner.next += 1;
    let token = format!("eyJhbGciOiJSUzI1NiJ9.issued-{}.sig", inner.next);
    inner.issued.insert(token.clone());
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain")],
        format!("{token}\n"),
    )
        .into_response()
}
