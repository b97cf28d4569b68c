//! Real HTTP(S) servers on 127.0.0.1, port 0, for the transport's tests; a PKI made at test
//! time; credentials that count what the transport asks of them.
//!
//! Every server runs as a task that is aborted when its [`TestServer`] is dropped, so servers
//! stop when the test ends.

// Each test module uses some of these helpers, none uses all; `pub` reads better than
// `pub(crate)` in a module that exists only for the tests.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::serve::ListenerExt;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

pub use test_credentials::{HeaderToken, RenewingToken};

/// A server running until dropped.
pub struct TestServer {
    addr: SocketAddr,
    scheme: &'static str,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Serves `router` over plain HTTP.
    pub async fn http(router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, service).await.unwrap();
        });
        Self {
            addr,
            scheme: "http",
            task,
        }
    }

    /// Serves `router` over HTTPS with `config`.
    pub async fn https(router: Router, config: rustls::ServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // `tap_io` only so that axum's `ConnectInfo<SocketAddr>` works with our listener.
        let listener = TlsListener {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
        .tap_io(|_| {});
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, service).await.unwrap();
        });
        Self {
            addr,
            scheme: "https",
            task,
        }
    }

    /// `path` on this server, by IP address.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// `path` on this server, by the name `localhost` (what the test certificates name).
    pub fn localhost_url(&self, path: &str) -> String {
        format!("{}://localhost:{}{path}", self.scheme, self.addr.port())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A URL on 127.0.0.1 where nothing listens: connecting is refused.
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

struct TlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.listener.accept().await else {
                continue;
            };
            // A client that does not trust us (a test of exactly that) fails the handshake;
            // keep serving the others.
            let handshake = self.acceptor.accept(stream);
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), handshake).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
    pub at: Instant,
}

impl Seen {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// The requests a [`recording`] server saw, in order.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.0.lock().unwrap().last().cloned().unwrap()
    }
}

/// A router that records every request and answers with `respond(request, index)`, where
/// `index` counts requests from 0.
pub fn recording<F>(respond: F) -> (Router, Log)
where
    F: Fn(&Seen, usize) -> Response + Send + Sync + 'static,
{
    let log = Log::default();
    let respond = Arc::new(respond);
    let router = {
        let log = log.clone();
        Router::new().fallback(
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request| {
                let log = log.clone();
                let respond = respond.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                    let seen = Seen {
                        method: parts.method,
                        path: parts.uri.path().to_owned(),
                        query: parts.uri.query().map(str::to_owned),
                        headers: parts.headers,
                        body,
                        peer,
                        at: Instant::now(),
                    };
                    let index = {
                        let mut log = log.0.lock().unwrap();
                        log.push(seen.clone());
                        log.len() - 1
                    };
                    respond(&seen, index)
                }
            },
        )
    };
    (router, log)
}

/// A response with this status, headers and body.
pub fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    response
}

/// A JSON response with status 200.
pub fn json_ok(body: &str) -> Response {
    respond(
        200,
        &[("content-type", "application/json")],
        body.to_owned(),
    )
}

/// A response body that never ends, counting what was sent and noticing when it is dropped
/// (which, for a body that never ends, happens only when the client hangs up).
pub struct EndlessBody {
    pub sent: Arc<AtomicU64>,
    pub dropped: Arc<AtomicBool>,
    chunk: Bytes,
}

impl EndlessBody {
    pub fn new(sent: Arc<AtomicU64>, dropped: Arc<AtomicBool>) -> Self {
        Self {
            sent,
            dropped,
            chunk: Bytes::from(vec![b'x'; 64 * 1024]),
        }
    }
}

impl http_body::Body for EndlessBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.sent
            .fetch_add(self.chunk.len() as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(http_body::Frame::data(self.chunk.clone()))))
    }
}

impl Drop for EndlessBody {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::Relaxed);
    }
}

/// A response body that never sends anything.
pub struct SilentBody;

impl http_body::Body for SilentBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

/// Waits (at most `limit`) until `condition` holds.
pub async fn eventually(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// A PKI made at test time: a root CA, an intermediate CA, a server certificate for
/// `localhost` and 127.0.0.1, client certificates, all written as PEM files.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key_der: Vec<u8>,
    ca_der: rustls::pki_types::CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();

        let ca = CertifiedIssuer::self_signed(
            ca_params("sciauth test root CA"),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let intermediate = CertifiedIssuer::signed_by(
            ca_params("sciauth test intermediate CA"),
            KeyPair::generate().unwrap(),
            &ca,
        )
        .unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &ca).unwrap();

        // A user certificate straight from the root CA, with its key in a separate file.
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client_params("alice").signed_by(&client_key, &ca).unwrap();
        std::fs::write(dir.path().join("client.pem"), client_cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();

        // A proxy-style file: the leaf, its key, then the chain (here the intermediate CA,
        // which the server does not know by itself).
        let proxy_key = KeyPair::generate().unwrap();
        let proxy_cert = client_params("alice proxy")
            .signed_by(&proxy_key, &intermediate)
            .unwrap();
        std::fs::write(
            dir.path().join("x509up_u1000"),
            format!(
                "{}{}{}",
                proxy_cert.pem(),
                proxy_key.serialize_pem(),
                intermediate.pem()
            ),
        )
        .unwrap();

        // A client certificate from a CA the server does not trust.
        let stranger_ca =
            CertifiedIssuer::self_signed(ca_params("some other CA"), KeyPair::generate().unwrap())
                .unwrap();
        let stranger_key = KeyPair::generate().unwrap();
        let stranger_cert = client_params("mallory")
            .signed_by(&stranger_key, &stranger_ca)
            .unwrap();
        std::fs::write(dir.path().join("stranger.pem"), stranger_cert.pem()).unwrap();
        std::fs::write(
            dir.path().join("stranger.key"),
            stranger_key.serialize_pem(),
        )
        .unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), stranger_ca.pem()).unwrap();

        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();

        Self {
            ca_pem: ca.pem(),
            server_chain: vec![server_cert.der().clone()],
            server_key_der: server_key.serialize_der(),
            ca_der: ca.der().clone(),
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A grid-style CA directory: the CA as a hash link and as `name.pem`, plus the files
    /// such directories also hold (signing policies, CRL URLs) and one broken file.
    pub fn grid_ca_dir(&self) -> PathBuf {
        let dir = self.path("certificates");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("5e9f1c2a.0"), &self.ca_pem).unwrap();
        std::fs::write(dir.join("sciauth-test.pem"), &self.ca_pem).unwrap();
        std::fs::write(
            dir.join("5e9f1c2a.signing_policy"),
            "access_id_CA X509 '/CN=sciauth test root CA'\n",
        )
        .unwrap();
        std::fs::write(dir.join("sciauth-test.crl_url"), "http://example.org/crl\n").unwrap();
        std::fs::write(
            dir.join("broken.pem"),
            "-----BEGIN CERTIFICATE-----\nnot base64!\n",
        )
        .unwrap();
        dir
    }

    /// A TLS server configuration; with `require_client_cert`, clients must show a
    /// certificate from the root CA.
    pub fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.server_key_der.clone().into());
        builder
            .with_single_cert(self.server_chain.clone(), key)
            .unwrap()
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn client_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params
}

/// Writes `text` to `name` in `dir` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

mod test_credentials {
    //! Credentials for tests, counting what the transport asks of them.

    use super::*;
    use sciauth_transport::credentials::{self, AuthHeader, Credential, Ready, Renewal};

    /// `Authorization: Bearer <prefix>-<generation>`; if `renews` is set, each rejection
    /// renews it to the next generation. `ready_header` answers `NotReady` until `header` was
    /// called once, like a token that must first be fetched.
    #[derive(Debug)]
    pub struct RenewingToken {
        prefix: String,
        renews: bool,
        generation: AtomicUsize,
        pub header_calls: AtomicUsize,
        pub ready_calls: AtomicUsize,
        pub rejections: AtomicUsize,
        fetched: AtomicBool,
    }

    impl RenewingToken {
        pub fn new(prefix: &str, renews: bool) -> Arc<Self> {
            Arc::new(Self {
                prefix: prefix.to_owned(),
                renews,
                generation: AtomicUsize::new(1),
                header_calls: AtomicUsize::new(0),
                ready_calls: AtomicUsize::new(0),
                rejections: AtomicUsize::new(0),
                fetched: AtomicBool::new(false),
            })
        }

        /// The token of a generation, as the server sees it in `Authorization`.
        pub fn bearer(&self, generation: usize) -> String {
            format!("Bearer {}-{generation}", self.prefix)
        }

        fn current(&self) -> AuthHeader {
            let value = self.bearer(self.generation.load(Ordering::SeqCst));
            AuthHeader::authorization(HeaderValue::try_from(value).unwrap())
        }
    }

    #[async_trait::async_trait]
    impl Credential for RenewingToken {
        async fn header(&self) -> credentials::Result<Option<AuthHeader>> {
            self.header_calls.fetch_add(1, Ordering::SeqCst);
            self.fetched.store(true, Ordering::SeqCst);
            Ok(Some(self.current()))
        }

        fn ready_header(&self) -> Ready {
            self.ready_calls.fetch_add(1, Ordering::SeqCst);
            if self.fetched.load(Ordering::SeqCst) {
                Ready::Header(self.current())
            } else {
                Ready::NotReady
            }
        }

        async fn rejected(&self, sent: Option<&AuthHeader>) -> credentials::Result<Renewal> {
            self.rejections.fetch_add(1, Ordering::SeqCst);
            if !self.renews {
                return Ok(Renewal::Unchanged);
            }
            if sent.is_some_and(|sent| *sent == self.current()) {
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Renewal::Renewed)
        }
    }

    /// A fixed header under any name, e.g. Rucio's `X-Rucio-Auth-Token`.
    #[derive(Debug)]
    pub struct HeaderToken(AuthHeader);

    impl HeaderToken {
        pub fn new(name: &'static str, value: &str) -> Self {
            Self(AuthHeader::new(
                http::HeaderName::from_static(name),
                HeaderValue::try_from(value).unwrap(),
            ))
        }
    }

    #[async_trait::async_trait]
    impl Credential for HeaderToken {
        async fn header(&self) -> credentials::Result<Option<AuthHeader>> {
            Ok(Some(self.0.clone()))
        }

        fn ready_header(&self) -> Ready {
            Ready::Header(self.0.clone())
        }
    }
}
