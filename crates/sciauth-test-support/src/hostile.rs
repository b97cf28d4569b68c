//! A deliberately broken identity provider, for the hostile-input suites of the library
//! (`sciauth-tokens/tests/hostile`) and of the `sciauth` binary (`sciauth-cli/tests`).
//!
//! A raw TCP server on 127.0.0.1 and a free port, stopped when dropped. Each path answers
//! with what the test scripted ([`Reply`]): any status, headers and body, or bytes that are not
//! HTTP at all, a slow drip, a hang after the headers, a reset connection. By default it is a
//! well-behaved provider (discovery, an empty JWKS, a token endpoint handing out a Bearer
//! token), so a test scripts only what it breaks. Every request is recorded, so a test can
//! tell whether a secret reached a place it must not.
//!
//! [`Recorder`] is a second listener that only records what reaches it: the target of the
//! redirects a hostile provider sends.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// One answer of the hostile provider.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A well-formed HTTP/1.1 answer (`content-length` and `connection: close` added unless
    /// the headers name them).
    Http {
        /// The status code.
        status: u16,
        /// Header lines, as sent.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// These bytes as they are, then the connection is closed.
    Raw(Vec<u8>),
    /// A 200 announcing a JSON body, then one byte every `every`, for ever.
    Drip {
        /// The time between two bytes.
        every: Duration,
    },
    /// A 200 with all its headers, then nothing, for ever.
    HangAfterHeaders,
    /// No answer at all, for ever.
    Hang,
    /// The connection reset (RST) as soon as the request has arrived.
    Reset,
    /// A chunked 200 whose chunks of `chunk` bytes never end.
    EndlessChunks {
        /// The size of each chunk.
        chunk: usize,
    },
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::json_text(status, &body.to_string())
    }

    /// `status` with `body` as JSON text (which need not be valid JSON).
    pub fn json_text(status: u16, body: &str) -> Self {
        Self::Http {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::Http {
            status,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
    }

    /// A Bearer token response with this access token and extra fields.
    pub fn token(access_token: &str, extra: serde_json::Value) -> Self {
        let mut body = serde_json::json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                body.insert(key.clone(), value.clone());
            }
        }
        Self::json(200, body)
    }
}

/// A request as it reached a listener.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The request method.
    pub method: String,
    /// The request target as sent.
    pub path: String,
    /// The whole request as text (head and body), for "did this secret get here".
    pub text: String,
}

#[derive(Debug, Default)]
struct Script {
    /// Answers used once each, in order, before `always`.
    once: HashMap<String, VecDeque<Reply>>,
    always: HashMap<String, Reply>,
}

/// The hostile provider.
#[derive(Debug)]
pub struct HostileIdp {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileIdp {
    /// Starts a provider that behaves well until told otherwise.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(Script::default()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(listener, script.clone(), requests.clone(), true));
        let idp = Self {
            addr,
            script,
            requests,
            task,
        };
        let issuer = idp.issuer();
        idp.set(
            "/.well-known/openid-configuration",
            Reply::json(200, idp.discovery()),
        );
        idp.set("/jwks", Reply::json(200, serde_json::json!({"keys": []})));
        idp.set(
            "/token",
            Reply::token(
                "good-access-token",
                serde_json::json!({
                    "refresh_token": "good-refresh-token",
                }),
            ),
        );
        idp.set("/revoke", Reply::json_text(200, ""));
        idp.set(
            "/introspect",
            Reply::json(200, serde_json::json!({"active": true, "iss": issuer})),
        );
        idp
    }

    /// The issuer: `http://127.0.0.1:<port>`.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The discovery document this provider serves by default.
    pub fn discovery(&self) -> serde_json::Value {
        let base = self.issuer();
        serde_json::json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "device_authorization_endpoint": format!("{base}/device"),
            "revocation_endpoint": format!("{base}/revoke"),
            "introspection_endpoint": format!("{base}/introspect"),
            "jwks_uri": format!("{base}/jwks"),
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code"],
            "code_challenge_methods_supported": ["S256"],
        })
    }

    /// `path` answers `reply` from now on.
    pub fn set(&self, path: &str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .always
            .insert(path.to_owned(), reply);
    }

    /// `path` answers `reply` once, before the replies queued after it and the one `set`.
    pub fn once(&self, path: &str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .once
            .entry(path.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// How many requests went to `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }
}

impl Drop for HostileIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener that answers 200 `{}` to anything and records what reached it.
#[derive(Debug)]
pub struct Recorder {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Starts a recorder on 127.0.0.1 and a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(Script::default()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(listener, script, requests.clone(), false));
        Self {
            addr,
            requests,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request that reached it.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    script: Arc<Mutex<Script>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    scripted: bool,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let script = script.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            let _ = answer(stream, script, requests, scripted).await;
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    script: Arc<Mutex<Script>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    scripted: bool,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let path = request
        .path
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    requests.lock().unwrap().push(request);
    let reply = if scripted {
        let mut script = script.lock().unwrap();
        let once = script.once.get_mut(&path).and_then(VecDeque::pop_front);
        once.or_else(|| script.always.get(&path).cloned())
            .unwrap_or_else(|| Reply::json(404, serde_json::json!({"error": "not_found"})))
    } else {
        Reply::json(200, serde_json::json!({}))
    };
    match reply {
        Reply::Http {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} Hostile\r\n");
            let named = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
            if !named("content-length") && !named("transfer-encoding") {
                head.push_str(&format!("content-length: {}\r\n", body.len()));
            }
            if !named("connection") {
                head.push_str("connection: close\r\n");
            }
            for (name, value) in &headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await?;
            stream.shutdown().await
        }
        Reply::Raw(bytes) => {
            stream.write_all(&bytes).await?;
            stream.shutdown().await
        }
        Reply::Drip { every } => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                      content-length: 1000000\r\n\r\n{",
                )
                .await?;
            loop {
                tokio::time::sleep(every).await;
                stream.write_all(b" ").await?;
            }
        }
        Reply::HangAfterHeaders => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                      content-length: 100\r\n\r\n",
                )
                .await?;
            std::future::pending::<()>().await;
            Ok(())
        }
        Reply::Hang => {
            std::future::pending::<()>().await;
            Ok(())
        }
        Reply::Reset => {
            // SO_LINGER 0: closing sends RST instead of FIN.
            let _ = stream.set_zero_linger();
            drop(stream);
            Ok(())
        }
        Reply::EndlessChunks { chunk } => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                      transfer-encoding: chunked\r\n\r\n",
                )
                .await?;
            let data = vec![b' '; chunk];
            loop {
                stream
                    .write_all(format!("{chunk:x}\r\n").as_bytes())
                    .await?;
                stream.write_all(&data).await?;
                stream.write_all(b"\r\n").await?;
            }
        }
    }
}

/// Reads one request: the head (at most 1 MiB) and a body of `content-length` bytes (at most
/// 16 MiB).
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Recorded>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if data.len() > 1 << 20 {
            return Ok(None);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0)
        .min(16 << 20);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    Ok(Some(Recorded {
        method,
        path,
        text: String::from_utf8_lossy(&data).into_owned(),
    }))
}
