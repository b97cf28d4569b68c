//! [`Server`]: the configured service, its store, its listeners (the API, plain HTTP or TLS
//! with optional client certificates; and optionally a separate metrics listener), the limits
//! on each connection, the periodic purge, and the signals: SIGHUP reloads the configuration,
//! SIGTERM and SIGINT drain.
//!
//! Every listener shares one accept loop and one way of serving a connection: at most
//! `max_connections` at once (more are closed as soon as accepted), and a watch on each that
//! closes it when a request's headers take longer than `header_timeout` or it sits idle
//! between requests longer than `idle_timeout`. hyper's own header timeout cannot do both: it
//! also runs while a kept-alive connection waits for its next request. Bodies are read under
//! `body_timeout` where they are read (`http.rs`).
//!
//! HTTP/2 comes by ALPN on TLS (`server.http2`, on by default) and with prior knowledge on a
//! plain listener where `server.h2c` says so. On an HTTP/2 connection the watch counts the
//! requests in flight: the connection is busy while any is, idle (and closed after
//! `idle_timeout`) when none is; frames that are not requests (PING, WINDOW_UPDATE) do not
//! make it busy. Its first request must come within `header_timeout` of the connection's
//! start, as on HTTP/1.1.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use sciauth_tokens::{FileStore, MemoryStore, SqliteStore, TokenStore};
use secrecy::ExposeSecret as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use crate::app::App;
use crate::caller::PeerDn;
use crate::config::{Config, ConnectionLimits, StoreConfig};
use crate::dn::subject_of_certificate;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{metrics_router, router};
use crate::metrics::{MeasuredStore, Metrics};
use crate::postgres::PostgresStore;
use crate::purge::purge_store;

/// While all connections are taken, how often that is logged.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Connections served at once by the separate metrics listener: a few scrapers and probes.
/// Its own limit, so that a flood of API connections does not blind the monitoring.
const METRICS_MAX_CONNECTIONS: usize = 64;

/// Streams a client may have open at once on one HTTP/2 connection.
const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// The largest header list of an HTTP/2 request (HTTP/1.1's limit is hyper's: 100 headers,
/// 400 KiB).
const HTTP2_MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;

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
}

/// A handle on a running (or ready) [`Server`]: reloads its configuration, reads its metrics.
/// Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    app: Arc<App>,
}

impl ServerHandle {
    /// Puts `config` in force for every request that starts from now on, keeping the open
    /// connections. Refused (the running configuration is kept, and the refusal logged) when
    /// a setting that only a restart applies changed (`server.listen`, `metrics.listen`,
    /// `server.log_format`, `server.max_connections`, turning `[server.tls]` on or off,
    /// `[store]`) or the TLS files cannot be read.
    pub fn reload(&self, config: Config) -> Result<()> {
        self.app.reload(config)
    }

    /// Reads the running configuration's file again and puts it in force, as SIGHUP does.
    /// A file that cannot be read or checked is refused, logged, and the running
    /// configuration kept.
    pub fn reload_from_file(&self) -> Result<()> {
        self.app.reload_from_file()
    }

    /// The metrics, in the Prometheus text format (what `/metrics` answers).
    pub fn metrics(&self) -> String {
        self.app.metrics.encode()
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
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
        if config.tls.is_none() && !config.listen.ip().is_loopback() {
            tracing::warn!(
                listen = %config.listen,
                "the service listens on plain http:// on a non-loopback address: callers' \
                 tokens and the tokens it hands out can be read on the way; configure \
                 [server.tls], or listen on loopback behind a TLS proxy"
            );
        }
        let metrics = Arc::new(Metrics::new());
        let store: Arc<dyn TokenStore> = Arc::new(MeasuredStore::new(store, metrics.clone()));
        Ok(Self {
            app: Arc::new(App::new(config, store, postgres, metrics)?),
        })
    }

    /// A handle to reload the configuration and read the metrics, also while serving.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            app: self.app.clone(),
        }
    }

    /// The API as an axum router (plain HTTP; for tests and for embedding).
    pub fn router(&self) -> Router {
        router(self.app.clone())
    }

    /// Deletes the grants that hold nothing usable any more (refresh token expired, or no
    /// refresh token and every access token expired); returns how many. [`serve_with_shutdown`](Self::serve_with_shutdown)
    /// does it every `server.purge_interval_seconds`.
    pub async fn purge(&self) -> Result<u64> {
        purge(&self.app).await
    }

    /// Binds the configured addresses and serves until SIGINT or SIGTERM, then drains;
    /// SIGHUP reloads the configuration from its file.
    pub async fn run(self) -> Result<()> {
        let config = self.app.current();
        let config = config.config();
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address)
                .await
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot listen on {address}: {e}")))
        };
        let listener = bind(config.listen).await?;
        let address = listener.local_addr().unwrap_or(config.listen);
        let metrics = match config.metrics_listen {
            Some(listen) => {
                let listener = bind(listen).await?;
                let address = listener.local_addr().unwrap_or(listen);
                tracing::info!(%address, "metrics listening");
                Some(listener)
            }
            None => None,
        };
        tracing::info!(%address, tls = config.tls.is_some(), "sciauth-server listening");
        let reloads = reload_on_hangup(self.handle());
        let result = self
            .serve_with_metrics(listener, metrics, shutdown_signal())
            .await;
        if let Some(reloads) = reloads {
            reloads.abort();
        }
        result
    }

    /// Serves on `listener` until `shutdown` completes, purging periodically; then drains
    /// (see [`serve_with_metrics`](Self::serve_with_metrics)).
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        self.serve_with_metrics(listener, None, shutdown).await
    }

    /// Serves the API on `listener` and, if given, `/metrics`, `/healthz` and `/readyz`
    /// without authentication on `metrics`, until `shutdown` completes, purging
    /// periodically. Then drains: stops accepting, fails readiness, lets requests under way
    /// finish (up to `server.drain_timeout_seconds`) and closes idle connections at once.
    pub async fn serve_with_metrics(
        self,
        listener: TcpListener,
        metrics: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let app = self.app;
        let purger = {
            let app = app.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(error) = purge(&app).await {
                        tracing::warn!(%error, "purging expired grants failed");
                    }
                    let interval = app.current().config().purge_interval;
                    tokio::time::sleep(interval).await;
                }
            })
        };
        let (stop, stopped) = watch::channel(false);
        let max_connections = app.current().config().limits.max_connections;
        let api = Listening {
            app: app.clone(),
            router: router(app.clone()),
            permits: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            api: true,
        };
        let metrics = metrics.map(|listener| {
            let listening = Listening {
                app: app.clone(),
                router: metrics_router(app.clone()),
                permits: Arc::new(Semaphore::new(METRICS_MAX_CONNECTIONS)),
                max_connections: METRICS_MAX_CONNECTIONS,
                api: false,
            };
            (listener, listening)
        });
        let metrics_loop = metrics.as_ref().map(|(_, listening)| listening.clone());
        let metrics_task = metrics
            .map(|(listener, listening)| tokio::spawn(listening.accept(listener, stopped.clone())));
        tokio::pin!(shutdown);
        tokio::select! {
            () = api.clone().accept(listener, stopped.clone()) => {}
            () = &mut shutdown => {}
        }
        // Stop accepting everywhere; readiness fails; connections finish what is under way.
        app.draining.store(true, Ordering::Release);
        let _ = stop.send(true);
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        let drain_timeout = app.current().config().drain_timeout;
        tracing::info!(
            drain_timeout_seconds = drain_timeout.as_secs_f64(),
            "no longer accepting; finishing the requests under way"
        );
        let mut drained = tokio::time::timeout(drain_timeout, api.all_closed())
            .await
            .is_ok();
        if let Some(listening) = metrics_loop {
            drained &= tokio::time::timeout(drain_timeout, listening.all_closed())
                .await
                .is_ok();
        }
        if drained {
            tracing::info!("drained: every connection is closed");
        } else {
            tracing::warn!(
                drain_timeout_seconds = drain_timeout.as_secs_f64(),
                "connections were still open after the drain timeout; they are cut"
            );
        }
        purger.abort();
        Ok(())
    }
}

async fn purge(app: &App) -> Result<u64> {
    let now = SystemTime::now();
    let purged = match &app.postgres {
        Some(postgres) => postgres.purge(now).await?,
        None => purge_store(app.store.as_ref(), now).await?,
    };
    if purged > 0 {
        tracing::info!(purged, "purged grants that hold nothing usable");
    }
    Ok(purged)
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.app.current();
        f.debug_struct("Server")
            .field("listen", &current.config().listen())
            .field("store", &self.app.store)
            .field("tls", &current.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// One listener's way of serving: its router, its connection limit, whether it speaks TLS
/// (when configured).
#[derive(Clone)]
struct Listening {
    app: Arc<App>,
    router: Router,
    permits: Arc<Semaphore>,
    max_connections: usize,
    /// The API listener: TLS and h2c as configured (the metrics listener speaks plain
    /// HTTP/1.1).
    api: bool,
}

impl Listening {
    /// Accepts connections until `stopped`, each served on a task of its own while a permit
    /// of the limit is free.
    async fn accept(self, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
        let mut warned_full: Option<Instant> = None;
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
                () = until_stopped(&mut stopped) => return,
            };
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                self.app.metrics.connection_refused();
                if warned_full.is_none_or(|at| at.elapsed() >= FULL_WARNING_INTERVAL) {
                    tracing::warn!(
                        max_connections = self.max_connections,
                        "all connections are taken; new ones are closed until some end"
                    );
                    warned_full = Some(Instant::now());
                }
                // Closed at once (after the log, so that whoever sees it closed can find why):
                // the client learns now, instead of waiting in the backlog.
                drop(stream);
                continue;
            };
            let open = self.app.metrics.connection_opened();
            let generation = self.app.current();
            let config = generation.config();
            let limits = config.limits;
            let tls = if self.api {
                generation.tls.clone()
            } else {
                None
            };
            let h2c = self.api && config.h2c;
            let (router, stopped) = (self.router.clone(), stopped.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let _open = open;
                match tls {
                    None => {
                        let protocol = if h2c { Protocol::Auto } else { Protocol::Http1 };
                        serve_connection(stream, router, limits, protocol, stopped).await;
                    }
                    Some(acceptor) => {
                        let Ok(Ok(tls)) =
                            tokio::time::timeout(limits.header_timeout, acceptor.accept(stream))
                                .await
                        else {
                            return;
                        };
                        let session = tls.get_ref().1;
                        let protocol = if session.alpn_protocol() == Some(b"h2") {
                            Protocol::Http2
                        } else {
                            Protocol::Http1
                        };
                        let peer = session
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .and_then(|leaf| subject_of_certificate(leaf))
                            .map(|dn| PeerDn(Arc::from(dn)));
                        let router = match peer {
                            Some(peer) => router.layer(axum::Extension(peer)),
                            None => router,
                        };
                        serve_connection(tls, router, limits, protocol, stopped).await;
                    }
                }
            });
        }
    }

    /// Completes when every connection of this listener has ended (each holds a permit until
    /// it ends).
    async fn all_closed(&self) {
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }
}

/// Which HTTP a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    /// Negotiated by ALPN.
    Http2,
    /// HTTP/1.1, or HTTP/2 when the client opens with its preface (h2c, prior knowledge).
    Auto,
}

/// Serves one connection until the client closes it, a timeout of `limits` runs out, or
/// `stopped` says to finish (the requests under way are answered first).
async fn serve_connection<I>(
    io: I,
    router: Router,
    limits: ConnectionLimits,
    protocol: Protocol,
    mut stopped: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Arc::new(ConnectionWatch::new(limits, protocol != Protocol::Http1));
    let io = TokioIo::new(WatchedIo {
        inner: io,
        watch: watch.clone(),
    });
    let service = {
        let watch = watch.clone();
        let router = TowerToHyperService::new(router);
        hyper::service::service_fn(move |request: http::Request<Incoming>| {
            // Dropped when the answer is ready, or when the client gives up on the request
            // (an HTTP/2 stream reset): either way it no longer keeps the connection busy.
            let busy = ConnectionWatch::request_started(&watch);
            let answer = hyper::service::Service::call(&router, request);
            async move {
                let response = answer.await;
                drop(busy);
                response
            }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // The watch does this, and also tells idle time from slow headers.
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(HTTP2_MAX_HEADER_LIST_SIZE);
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
        Protocol::Auto => builder,
    };
    let connection = builder.serve_connection(io, service);
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

/// Completes once `stopped` says to stop.
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
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
    /// Requests are being handled (HTTP/2: possibly several at once; their bodies are read
    /// under `body_timeout` by the handler).
    Busy { requests: usize },
    /// The next request, after an answer.
    Idle { until: Option<Instant> },
}

/// `timeout` from now; `None` if that is beyond what an `Instant` holds (then there is no
/// deadline to wait for; the configuration allows no timeout near that).
fn from_now(timeout: Duration) -> Option<Instant> {
    sciauth_credentials::time::instant_later(std::time::Instant::now(), timeout)
        .map(Instant::from_std)
}

/// The phase of one connection, moved on by its reads and its requests, and watched by the
/// task that serves it.
#[derive(Debug)]
struct ConnectionWatch {
    limits: ConnectionLimits,
    /// HTTP/2 (or possibly so): bytes on an idle connection may be frames that are not a
    /// request, so only a request ends idleness.
    multiplexed: bool,
    phase: Mutex<Phase>,
    /// Woken when a deadline moves, so that the serving task sleeps until the right one.
    changed: Notify,
}

/// A request of a connection under way; dropping it ends it.
struct Busy {
    watch: Arc<ConnectionWatch>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.watch.answered();
    }
}

impl ConnectionWatch {
    fn new(limits: ConnectionLimits, multiplexed: bool) -> Self {
        Self {
            limits,
            multiplexed,
            phase: Mutex::new(Phase::Headers {
                until: from_now(limits.header_timeout),
            }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: on an idle HTTP/1.1 connection, they start a request, whose headers
    /// must now arrive within `header_timeout` (not one byte at a time for as long as the
    /// client likes).
    fn bytes_read(&self) {
        if self.multiplexed {
            return;
        }
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Headers {
                until: from_now(self.limits.header_timeout),
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn request_started(watch: &Arc<Self>) -> Busy {
        let mut phase = watch.phase();
        *phase = match *phase {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests.saturating_add(1),
            },
            Phase::Headers { .. } | Phase::Idle { .. } => Phase::Busy { requests: 1 },
        };
        Busy {
            watch: watch.clone(),
        }
    }

    /// An answer is ready (and being written), or its request was given up: once no request
    /// is under way, the connection is idle.
    fn answered(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy { requests } if requests > 1 => Phase::Busy {
                requests: requests - 1,
            },
            _ => Phase::Idle {
                until: from_now(self.limits.idle_timeout),
            },
        };
        drop(phase);
        self.changed.notify_one();
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Headers { until } | Phase::Idle { until } => until,
            Phase::Busy { .. } => None,
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

/// Reloads the configuration from its file on every SIGHUP, on a task of its own (`None`
/// where there are no such signals).
fn reload_on_hangup(handle: ServerHandle) -> Option<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::warn!(%error, "SIGHUP cannot be caught; reloading needs a restart");
                return None;
            }
        };
        Some(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                // Reading the file and building the new setup is blocking work.
                let handle = handle.clone();
                let _ = tokio::task::spawn_blocking(move || handle.reload_from_file()).await;
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = handle;
        None
    }
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
    tracing::info!("shutting down: draining");
}
