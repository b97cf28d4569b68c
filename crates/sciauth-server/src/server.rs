//! [`Server`]: the configured service, its store, its listener (plain HTTP, or TLS with
//! optional client certificates), the limits on each connection, and the periodic purge.
//!
//! Both listeners share one accept loop and one way of serving a connection: at most
//! `max_connections` at once (more are closed as soon as accepted), and a watch on each that
//! closes it when a request's headers take longer than `header_timeout` or it sits idle
//! between requests longer than `idle_timeout`. hyper's own header timeout cannot do both: it
//! also runs while a kept-alive connection waits for its next request. Bodies are read under
//! `body_timeout` where they are read (`http.rs`).

use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sciauth_tokens::{FileStore, MemoryStore, SqliteStore, TokenStore};
use secrecy::ExposeSecret as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::caller::{Authenticator, PeerDn};
use crate::config::{Config, ConnectionLimits, StoreConfig, TlsConfig};
use crate::dn::subject_of_certificate;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{App, router};
use crate::postgres::PostgresStore;
use crate::purge::purge_store;
use crate::service::TokenService;

/// After the shutdown signal, how long open connections get to finish their requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// While all connections are taken, how often that is logged.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// The token service, ready to serve.
///
/// ```no_run
/// # async fn run() -> sciauth_server::Result<()> {
/// use sciauth_server::{Config, Server};
/// let config = Config::from_file("/etc/sciauth/server.toml")?;
/// Server::new(config).await?.run().await
/// # }
/// ```
pub struct Server {
    app: Arc<App>,
    postgres: Option<PostgresStore>,
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Opens the store the configuration names (applying PostgreSQL migrations) and sets up
    /// TLS. Providers and the callers' issuer are contacted only when first needed, so the
    /// service starts while they are down.
    pub async fn new(config: Config) -> Result<Self> {
        let (store, postgres): (Arc<dyn TokenStore>, Option<PostgresStore>) = match &config.store {
            StoreConfig::Postgres {
                url,
                password,
                max_lock_connections,
            } => {
                let store = PostgresStore::connect_with(
                    url.expose_secret(),
                    password.as_ref(),
                    *max_lock_connections,
                )
                .await?;
                (Arc::new(store.clone()), Some(store))
            }
            StoreConfig::Sqlite { path } => (Arc::new(SqliteStore::open(path)?), None),
            StoreConfig::File { dir } => (Arc::new(FileStore::open(dir)?), None),
            StoreConfig::Memory => (Arc::new(MemoryStore::new()), None),
        };
        Self::with_store(config, store, postgres)
    }

    /// A server on a store of the caller's (the configuration's `[store]` is ignored).
    pub fn with_token_store(config: Config, store: Arc<dyn TokenStore>) -> Result<Self> {
        Self::with_store(config, store, None)
    }

    fn with_store(
        config: Config,
        store: Arc<dyn TokenStore>,
        postgres: Option<PostgresStore>,
    ) -> Result<Self> {
        let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
        if tls.is_none() && !config.listen.ip().is_loopback() {
            tracing::warn!(
                listen = %config.listen,
                "the service listens on plain http:// on a non-loopback address: callers' \
                 tokens and the tokens it hands out can be read on the way; configure \
                 [server.tls], or listen on loopback behind a TLS proxy"
            );
        }
        let auth = Authenticator::new(&config);
        let max_body_bytes = config.max_body_bytes;
        let body_timeout = config.limits.body_timeout;
        Ok(Self {
            app: Arc::new(App {
                service: TokenService::new(config, store),
                auth,
                max_body_bytes,
                body_timeout,
            }),
            postgres,
            tls,
        })
    }

    /// The API as an axum router (plain HTTP; for tests and for embedding).
    pub fn router(&self) -> Router {
        router(self.app.clone())
    }

    /// Deletes the grants that hold nothing usable any more (refresh token expired, or no
    /// refresh token and every access token expired); returns how many. [`serve_with_shutdown`](Self::serve_with_shutdown)
    /// does it every `server.purge_interval_seconds`.
    pub async fn purge(&self) -> Result<u64> {
        let now = SystemTime::now();
        let purged = match &self.postgres {
            Some(postgres) => postgres.purge(now).await?,
            None => purge_store(self.app.service.store().as_ref(), now).await?,
        };
        if purged > 0 {
            tracing::info!(purged, "purged grants that hold nothing usable");
        }
        Ok(purged)
    }

    /// Binds the configured address and serves until SIGINT or SIGTERM.
    pub async fn run(self) -> Result<()> {
        let listen = self.app.service.config().listen();
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot listen on {listen}: {e}")))?;
        let address = listener.local_addr().unwrap_or(listen);
        tracing::info!(%address, tls = self.tls.is_some(), "sciauth-server listening");
        self.serve_with_shutdown(listener, shutdown_signal()).await
    }

    /// Serves on `listener` until `shutdown` completes, purging periodically; then stops
    /// accepting and gives open connections up to 30 s to finish their requests.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let interval = self.app.service.config().purge_interval;
        let server = Arc::new(self);
        let purger = {
            let server = server.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(interval);
                loop {
                    ticks.tick().await;
                    if let Err(error) = server.purge().await {
                        tracing::warn!(%error, "purging expired grants failed");
                    }
                }
            })
        };
        let limits = server.app.service.config().limits;
        serve(
            listener,
            server.tls.clone(),
            server.router(),
            limits,
            shutdown,
        )
        .await;
        purger.abort();
        Ok(())
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.app.service.config().listen())
            .field("store", self.app.service.store())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Accepts connections until `shutdown`, each served on a task of its own while a permit of
/// `max_connections` is free; then waits (up to [`SHUTDOWN_GRACE`]) for them to finish.
async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut warned_full: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if warned_full.is_none_or(|at| at.elapsed() >= FULL_WARNING_INTERVAL) {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "all connections are taken; new ones are closed until some end"
                );
                warned_full = Some(Instant::now());
            }
            // Closed at once (after the log, so that whoever sees it closed can find why): the
            // client learns now, instead of waiting in the backlog.
            drop(stream);
            continue;
        };
        let (tls, router, stopped) = (tls.clone(), router.clone(), stopped.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, router, limits, stopped).await,
                Some(acceptor) => {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let peer = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| subject_of_certificate(leaf))
                        .map(|dn| PeerDn(Arc::from(dn)));
                    let router = match peer {
                        Some(peer) => router.layer(axum::Extension(peer)),
                        None => router,
                    };
                    serve_connection(tls, router, limits, stopped).await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it ends: having them all back means all ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all)).await;
}

/// Serves HTTP/1.1 on one connection until the client closes it, a timeout of `limits` runs
/// out, or `stopped` says to finish (the request under way is answered first).
async fn serve_connection<I>(
    io: I,
    router: Router,
    limits: ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Arc::new(ConnectionWatch::new(limits));
    let io = TokioIo::new(WatchedIo {
        inner: io,
        watch: watch.clone(),
    });
    let service = {
        let watch = watch.clone();
        let router = TowerToHyperService::new(router);
        hyper::service::service_fn(move |request: http::Request<Incoming>| {
            watch.request_started();
            let answer = hyper::service::Service::call(&router, request);
            let watch = watch.clone();
            async move {
                let response = answer.await;
                watch.answered();
                response
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        // The watch does this, and also tells idle time from slow headers.
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        let deadline = watch.deadline();
        tokio::select! {
            _ = connection.as_mut() => return,
            () = sleep_until(deadline) => {
                if watch.expired() {
                    tracing::debug!("closing a connection: it was too slow or idle too long");
                    // Dropping the connection closes it.
                    return;
                }
            }
            () = watch.changed.notified() => {}
            Ok(()) = stopped.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What a connection is waiting for, and until when.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// A request's headers: the first byte has arrived (or the connection is new).
    Headers { until: Option<Instant> },
    /// A request is being handled (its body is read under `body_timeout` by the handler).
    Busy,
    /// The next request, after an answer.
    Idle { until: Option<Instant> },
}

/// `timeout` from now; `None` if that is beyond what an `Instant` holds (then there is no
/// deadline to wait for; the configuration allows no timeout near that).
fn from_now(timeout: Duration) -> Option<Instant> {
    sciauth::credentials::time::instant_later(std::time::Instant::now(), timeout)
        .map(Instant::from_std)
}

/// The phase of one connection, moved on by its reads and its requests, and watched by the
/// task that serves it.
#[derive(Debug)]
struct ConnectionWatch {
    limits: ConnectionLimits,
    phase: Mutex<Phase>,
    /// Woken when a deadline moves, so that the serving task sleeps until the right one.
    changed: Notify,
}

impl ConnectionWatch {
    fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            phase: Mutex::new(Phase::Headers {
                until: from_now(limits.header_timeout),
            }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: on an idle connection, they start a request, whose headers must now
    /// arrive within `header_timeout` (not one byte at a time for as long as the client
    /// likes).
    fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Headers {
                until: from_now(self.limits.header_timeout),
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn request_started(&self) {
        *self.phase() = Phase::Busy;
    }

    /// The answer is ready (and being written): from now the connection is idle.
    fn answered(&self) {
        *self.phase() = Phase::Idle {
            until: from_now(self.limits.idle_timeout),
        };
        self.changed.notify_one();
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Headers { until } | Phase::Idle { until } => until,
            Phase::Busy => None,
        }
    }

    fn expired(&self) -> bool {
        self.deadline()
            .is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// A connection's stream, telling its watch when bytes arrive.
struct WatchedIo<I> {
    inner: I,
    watch: Arc<ConnectionWatch>,
}

impl<I: AsyncRead + Unpin> AsyncRead for WatchedIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.bytes_read();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WatchedIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn tls_acceptor(tls: &TlsConfig) -> Result<TlsAcceptor> {
    let tls_error = |what: String| Error::new(ErrorKind::Tls, what);
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&tls.certificate)
            .and_then(|certificates| certificates.collect())
            .map_err(|e| {
                tls_error(format!(
                    "{}: no usable certificate: {e}",
                    tls.certificate.display()
                ))
            })?;
    if certificates.is_empty() {
        return Err(tls_error(format!(
            "{} holds no certificate",
            tls.certificate.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| tls_error(format!("{}: no usable private key: {e}", tls.key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("TLS setup: {e}")))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = client_verifier(ca, provider)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certificates, key)
        .map_err(|e| tls_error(format!("the TLS certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Client certificates issued by the CAs in `ca` are checked when sent; a caller without one
/// may still authenticate with a bearer token.
fn client_verifier(
    ca: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca)
        .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::new(ErrorKind::Tls, format!("{}: {e}", ca.display())))?;
    for certificate in certificates {
        roots.add(certificate).map_err(|e| {
            Error::new(
                ErrorKind::Tls,
                format!("{}: a CA certificate is unusable: {e}", ca.display()),
            )
        })?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::new(ErrorKind::Tls, format!("client certificates: {e}")))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
