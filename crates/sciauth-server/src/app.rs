//! What every request shares: the configuration in force (a [`Generation`], replaced whole by
//! a reload), the store, the metrics; and readiness.
//!
//! A reload builds a new generation beside the running one and swaps it in only if all of it
//! could be built; a request keeps the generation it started with until it ends, so nothing
//! under way sees half of a change. Connections stay open: each request loads the generation
//! in force when it starts.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use sciauth_tokens::{GrantKey, TokenStore};
use serde::Serialize;
use tokio_rustls::TlsAcceptor;

use crate::caller::Authenticator;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::postgres::PostgresStore;
use crate::service::TokenService;
use crate::tls::tls_acceptor;

/// How long one readiness check (the store, one provider's discovery) may take.
const READINESS_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The state of the service, shared by every connection and request.
#[derive(Debug)]
pub(crate) struct App {
    current: ArcSwap<Generation>,
    pub(crate) metrics: Arc<Metrics>,
    /// The store, measured (`metrics.rs`).
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) postgres: Option<PostgresStore>,
    /// Set when the service stops accepting (SIGTERM): readiness fails from then on.
    pub(crate) draining: AtomicBool,
    /// Reloads one at a time.
    reloading: Mutex<()>,
    /// What the last readiness check found, to log changes only.
    was_ready: AtomicBool,
}

/// Everything that one configuration makes: the methods, the authenticator, the TLS setup.
pub(crate) struct Generation {
    pub(crate) service: TokenService,
    pub(crate) auth: Authenticator,
    pub(crate) tls: Option<TlsAcceptor>,
}

impl fmt::Debug for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generation")
            .field("service", &self.service)
            .field("auth", &self.auth)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Generation {
    fn new(
        config: Config,
        store: Arc<dyn TokenStore>,
        metrics: &Arc<Metrics>,
        previous: Option<&Generation>,
    ) -> Result<Self> {
        let tls = config
            .tls
            .as_ref()
            .map(|tls| tls_acceptor(tls, config.http2))
            .transpose()?;
        let auth = Authenticator::new(&config, previous.map(|p| &p.auth));
        let service = TokenService::new(config, store, metrics, previous.map(|p| &p.service));
        Ok(Self { service, auth, tls })
    }

    pub(crate) fn config(&self) -> &Config {
        self.service.config()
    }
}

/// What `/readyz` found.
#[derive(Debug, Serialize)]
pub(crate) struct Readiness {
    pub(crate) ready: bool,
    /// `shutting_down` after SIGTERM, else `serving`.
    pub(crate) state: &'static str,
    /// `ok` or `unreachable`.
    pub(crate) store: &'static str,
    /// Each provider: `loaded` (its discovery document is in hand) or `not_loaded`.
    pub(crate) providers: BTreeMap<String, &'static str>,
    /// The callers' issuer (`[callers]`), if configured: `loaded` or `not_loaded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) callers_issuer: Option<&'static str>,
}

fn loaded(ok: bool) -> &'static str {
    if ok { "loaded" } else { "not_loaded" }
}

impl App {
    pub(crate) fn new(
        config: Config,
        store: Arc<dyn TokenStore>,
        postgres: Option<PostgresStore>,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let generation = Generation::new(config, store.clone(), &metrics, None)?;
        Ok(Self {
            current: ArcSwap::from_pointee(generation),
            metrics,
            store,
            postgres,
            draining: AtomicBool::new(false),
            reloading: Mutex::new(()),
            was_ready: AtomicBool::new(true),
        })
    }

    /// The generation in force.
    pub(crate) fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Puts `config` in force, or refuses it (and keeps the running one) when a setting that
    /// is bound at start changed or part of it cannot be set up (TLS files). Logs either way.
    pub(crate) fn reload(&self, config: Config) -> Result<()> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let running = self.current();
        let result = {
            let changed = running.config().restart_only_changes(&config);
            if changed.is_empty() {
                Generation::new(config, self.store.clone(), &self.metrics, Some(&running))
            } else {
                Err(Error::config(format!(
                    "{} changed, which only a restart applies",
                    changed.join(", ")
                )))
            }
        };
        match result {
            Ok(generation) => {
                self.current.store(Arc::new(generation));
                self.metrics.reload(true);
                tracing::info!("the configuration was reloaded");
                Ok(())
            }
            Err(error) => {
                self.metrics.reload(false);
                tracing::error!(
                    %error,
                    "the new configuration is refused; the running one is kept"
                );
                Err(error)
            }
        }
    }

    /// Reads the running configuration's file again and puts it in force
    /// ([`reload`](Self::reload)).
    pub(crate) fn reload_from_file(&self) -> Result<()> {
        let Some(path) = self.current().config().source().map(ToOwned::to_owned) else {
            let error = Error::config(
                "the running configuration was not read from a file, so there is none to read \
                 again",
            );
            self.metrics.reload(false);
            tracing::error!(%error, "the configuration is not reloaded");
            return Err(error);
        };
        match Config::from_file(&path) {
            Ok(config) => self.reload(config),
            Err(error) => {
                self.metrics.reload(false);
                tracing::error!(
                    %error,
                    "the new configuration is refused; the running one is kept"
                );
                Err(error)
            }
        }
    }

    /// Whether this replica can serve: not shutting down, the store answers, and every
    /// provider's discovery (and the callers' issuer's) is loaded, loading what is not yet
    /// (each check bounded). A provider loaded once stays loaded: one that goes down later
    /// shows in failed requests and metrics, not here, since tokens kept for it can still be
    /// served.
    pub(crate) async fn readiness(&self) -> Readiness {
        let generation = self.current();
        let mut checks = tokio::task::JoinSet::new();
        for (name, client) in generation.service.provider_clients() {
            let (name, client) = (name.to_owned(), client.clone());
            checks.spawn(async move {
                let ok = matches!(
                    tokio::time::timeout(READINESS_CHECK_TIMEOUT, client.client()).await,
                    Ok(Ok(_))
                );
                (name, ok)
            });
        }
        let store_ok = matches!(
            tokio::time::timeout(READINESS_CHECK_TIMEOUT, self.check_store()).await,
            Ok(Ok(()))
        );
        let callers_ok =
            match tokio::time::timeout(READINESS_CHECK_TIMEOUT, generation.auth.ready()).await {
                Ok(result) => result.is_ok(),
                Err(_) => false,
            };
        let mut providers = BTreeMap::new();
        while let Some(checked) = checks.join_next().await {
            if let Ok((name, ok)) = checked {
                providers.insert(name, loaded(ok));
            }
        }
        let draining = self.draining.load(Ordering::Acquire);
        let ready = !draining
            && store_ok
            && callers_ok
            && providers.len() == generation.config().providers.len()
            && providers.values().all(|state| *state == "loaded");
        let readiness = Readiness {
            ready,
            state: if draining { "shutting_down" } else { "serving" },
            store: if store_ok { "ok" } else { "unreachable" },
            providers,
            callers_issuer: generation
                .config()
                .callers
                .as_ref()
                .map(|_| loaded(callers_ok)),
        };
        if self.was_ready.swap(ready, Ordering::AcqRel) != ready {
            if ready {
                tracing::info!("ready");
            } else {
                tracing::warn!(
                    store = readiness.store,
                    state = readiness.state,
                    providers = ?readiness.providers,
                    callers_issuer = ?readiness.callers_issuer,
                    "not ready"
                );
            }
        }
        readiness
    }

    /// Whether the store answers: a query on PostgreSQL, a read of a key nobody uses on the
    /// others.
    async fn check_store(&self) -> sciauth_tokens::Result<()> {
        match &self.postgres {
            Some(postgres) => postgres.check().await,
            None => {
                let probe = GrantKey::new("sciauth:readyz", "readyz", "readyz");
                self.store.get(&probe).await.map(|_| ())
            }
        }
    }
}
