//! The service's metrics, served at `/metrics` in the Prometheus text format (0.0.4) by
//! `prometheus-client`: requests, latencies, connections, the token cache, requests to
//! providers, single-flight waits, the store, reloads.
//!
//! Every label has a bounded set of values: routes come from the route table (anything else
//! is `other`), providers from the configuration, operations and outcomes from fixed lists.
//! No label ever holds a caller's name, a token or a path a client chose.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sciauth_tokens::{
    ErrorKind as TokensErrorKind, GrantKey, LockedGrant, ManagerObserver, OAuthErrorCode,
    ProviderGrant, Result as TokensResult, StoredGrant, TokenStore,
};

/// The `Content-Type` of `/metrics`.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Latency buckets (seconds): from a cached answer (well under a millisecond) to a provider
/// that takes its 30 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
    grant: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    provider: String,
    grant: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Copy, Debug)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(LATENCY_BUCKETS)
    }
}

/// Every metric of one process (kept across reloads).
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, Buckets>,
    requests_in_flight: Gauge,
    connections_open: Gauge,
    connections_refused: Counter,
    token_cache: Family<ResultLabels, Counter>,
    provider_requests: Family<ProviderLabels, Counter>,
    provider_seconds: Family<GrantLabels, Histogram, Buckets>,
    flight_wait_seconds: Histogram,
    store_seconds: Family<OperationLabels, Histogram, Buckets>,
    store_errors: Family<OperationLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    // tidy: long, registers every metric with its help text, one after another
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("sciauth");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route (other: no such route), method and status",
            requests.clone(),
        );
        let request_seconds = Family::new_with_constructor(Buckets);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's headers to its answer, by route",
            request_seconds.clone(),
        );
        let requests_in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being handled now",
            requests_in_flight.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Connections open now, plain, TLS and the metrics listener's (TLS handshakes included)",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed when accepted because max_connections were open",
            connections_refused.clone(),
        );
        let token_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "token_cache_lookups",
            "Token lookups answered from memory (hit) or through the store and perhaps the provider (miss)",
            token_cache.clone(),
        );
        let provider_requests = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "provider_requests",
            "Token requests sent to identity providers, by provider, grant and outcome (ok, \
             invalid_grant, refused, unavailable, error)",
            provider_requests.clone(),
        );
        let provider_seconds = Family::new_with_constructor(Buckets);
        registry.register(
            "provider_request_duration_seconds",
            "Time a token request to a provider took, by provider and grant",
            provider_seconds.clone(),
        );
        let flight_wait_seconds = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "refresh_flight_wait_seconds",
            "Time callers waited for another caller's fetch of the same grant (single flight)",
            flight_wait_seconds.clone(),
        );
        let store_seconds = Family::new_with_constructor(Buckets);
        registry.register(
            "store_operation_duration_seconds",
            "Time a token store operation took (lock: until the grant's lock was held)",
            store_seconds.clone(),
        );
        let store_errors = Family::<OperationLabels, Counter>::default();
        registry.register(
            "store_errors",
            "Token store operations that failed",
            store_errors.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP), applied or refused",
            reloads.clone(),
        );
        let build = prometheus_client::metrics::info::Info::new(vec![(
            "version",
            env!("CARGO_PKG_VERSION"),
        )]);
        registry.register("build", "The running version", build);
        Self {
            registry,
            requests,
            request_seconds,
            requests_in_flight,
            connections_open,
            connections_refused,
            token_cache,
            provider_requests,
            provider_seconds,
            flight_wait_seconds,
            store_seconds,
            store_errors,
            reloads,
        }
    }

    /// Every metric in the Prometheus text format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; encoding our own label types neither.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// A request started: counted in flight until the guard is dropped.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.requests_in_flight.inc();
        InFlight {
            metrics: self.clone(),
        }
    }

    pub(crate) fn request_answered(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        took: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// A connection was accepted and is served: counted open until the guard is dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.connections_open.inc();
        OpenConnection {
            metrics: self.clone(),
        }
    }

    pub(crate) fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub(crate) fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "refused" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    fn store_operation(&self, operation: &'static str, ok: bool, took: Duration) {
        let labels = OperationLabels { operation };
        self.store_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if !ok {
            self.store_errors.get_or_create(&labels).inc();
        }
    }
}

/// A request in flight; dropping it (the answer, or a client gone mid-request) ends it.
#[derive(Debug)]
pub(crate) struct InFlight {
    metrics: Arc<Metrics>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.requests_in_flight.dec();
    }
}

/// An open connection; dropping it closes it in the count.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    metrics: Arc<Metrics>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}

/// What the token managers report, with each provider's configured name.
#[derive(Debug)]
pub(crate) struct ManagerMetrics {
    pub(crate) metrics: Arc<Metrics>,
    /// (issuer, client id) → the provider's configured name.
    pub(crate) providers: Vec<(String, String, String)>,
}

impl ManagerMetrics {
    fn provider(&self, issuer: &str, client_id: &str) -> String {
        self.providers
            .iter()
            .find(|(i, c, _)| i == issuer && c == client_id)
            .map_or_else(|| "other".to_owned(), |(_, _, name)| name.clone())
    }
}

impl ManagerObserver for ManagerMetrics {
    fn lookup(&self, cached: bool) {
        let result = if cached { "hit" } else { "miss" };
        self.metrics
            .token_cache
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    fn flight_wait(&self, waited: Duration) {
        self.metrics
            .flight_wait_seconds
            .observe(waited.as_secs_f64());
    }

    fn provider_request(
        &self,
        issuer: &str,
        client_id: &str,
        grant: ProviderGrant,
        outcome: Result<(), &sciauth_tokens::Error>,
        took: Duration,
    ) {
        let provider = self.provider(issuer, client_id);
        let outcome = match outcome {
            Ok(()) => "ok",
            // A provider that is down or overloaded, whatever words it used.
            Err(error) if error.is_transient() => "unavailable",
            Err(error) => match error.kind() {
                TokensErrorKind::OAuth(OAuthErrorCode::InvalidGrant) => "invalid_grant",
                TokensErrorKind::OAuth(_) => "refused",
                _ => "error",
            },
        };
        let grant = grant.as_str();
        self.metrics
            .provider_seconds
            .get_or_create(&GrantLabels {
                provider: provider.clone(),
                grant,
            })
            .observe(took.as_secs_f64());
        self.metrics
            .provider_requests
            .get_or_create(&ProviderLabels {
                provider,
                grant,
                outcome,
            })
            .inc();
    }
}

/// A token store whose operations are timed and counted.
pub(crate) struct MeasuredStore {
    inner: Arc<dyn TokenStore>,
    metrics: Arc<Metrics>,
}

impl MeasuredStore {
    pub(crate) fn new(inner: Arc<dyn TokenStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl fmt::Debug for MeasuredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

async fn measured<T>(
    metrics: &Metrics,
    operation: &'static str,
    run: impl Future<Output = TokensResult<T>>,
) -> TokensResult<T> {
    let started = Instant::now();
    let result = run.await;
    metrics.store_operation(operation, result.is_ok(), started.elapsed());
    result
}

#[async_trait]
impl TokenStore for MeasuredStore {
    async fn get(&self, key: &GrantKey) -> TokensResult<Option<StoredGrant>> {
        measured(&self.metrics, "get", self.inner.get(key)).await
    }

    async fn put(&self, grant: &StoredGrant) -> TokensResult<()> {
        measured(&self.metrics, "put", self.inner.put(grant)).await
    }

    async fn delete(&self, key: &GrantKey) -> TokensResult<bool> {
        measured(&self.metrics, "delete", self.inner.delete(key)).await
    }

    async fn list(&self) -> TokensResult<Vec<StoredGrant>> {
        measured(&self.metrics, "list", self.inner.list()).await
    }

    async fn lock(&self, key: &GrantKey) -> TokensResult<Box<dyn LockedGrant>> {
        let inner = measured(&self.metrics, "lock", self.inner.lock(key)).await?;
        Ok(Box::new(MeasuredLock {
            inner,
            metrics: self.metrics.clone(),
        }))
    }
}

struct MeasuredLock {
    inner: Box<dyn LockedGrant>,
    metrics: Arc<Metrics>,
}

impl fmt::Debug for MeasuredLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl LockedGrant for MeasuredLock {
    fn key(&self) -> &GrantKey {
        self.inner.key()
    }

    async fn get(&mut self) -> TokensResult<Option<StoredGrant>> {
        measured(&self.metrics, "get", self.inner.get()).await
    }

    async fn put(&mut self, grant: &StoredGrant) -> TokensResult<()> {
        measured(&self.metrics, "put", self.inner.put(grant)).await
    }

    async fn delete(&mut self) -> TokensResult<bool> {
        measured(&self.metrics, "delete", self.inner.delete()).await
    }

    async fn release(self: Box<Self>) -> TokensResult<()> {
        let Self { inner, metrics } = *self;
        measured(&metrics, "release", inner.release()).await
    }
}
