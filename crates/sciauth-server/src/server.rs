//! [`Server`]: the configured service, its store, its listener (plain HTTP, or TLS with
//! optional client certificates) and the periodic purge.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sciauth_tokens::{FileStore, MemoryStore, SqliteStore, TokenStore};
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::caller::{Authenticator, PeerDn};
use crate::config::{Config, StoreConfig, TlsConfig};
use crate::dn::subject_of_certificate;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{App, router};
use crate::postgres::PostgresStore;
use crate::purge::purge_store;
use crate::service::TokenService;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
        let auth = Authenticator::new(&config);
        let max_body_bytes = config.max_body_bytes;
        Ok(Self {
            app: Arc::new(App {
                service: TokenService::new(config, store),
                auth,
                max_body_bytes,
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

    /// Serves on `listener` until `shutdown` completes, purging periodically.
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
        let result = match &server.tls {
            None => axum::serve(listener, server.router())
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|e| Error::new(ErrorKind::Io, format!("serving failed: {e}"))),
            Some(acceptor) => {
                serve_tls(listener, acceptor.clone(), server.router(), shutdown).await
            }
        };
        purger.abort();
        result
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

async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
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
            let service = TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
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
