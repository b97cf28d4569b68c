//! Benchmarks of the token manager: what a request pays for a cached token's header, what
//! the file store costs, and a contended refresh (many tasks, one refresh) against a local
//! mock token endpoint.
//!
//! `cargo bench -p sciauth-tokens --bench tokens`

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sciauth_tokens::sciauth_credentials::{Clock, Credential, ManualClock, Ready, SystemClock};
use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::url::Url;
use sciauth_tokens::{
    FileStore, GrantKey, Issuer, KeyParams, MemoryStore, OAuthClient, ProviderMetadata, StoreKey,
    StoredGrant, TokenManager, TokenRequest, TokenStore,
};
use secrecy::SecretString;

const ISSUER: &str = "https://idp.example.test";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A grant of `account` whose access token (1.2 KB, like a JWT) was issued at `issued_at`
/// and lives 600 s.
fn grant(issuer: &str, account: &str, issued_at: u64) -> StoredGrant {
    serde_json::from_value(serde_json::json!({
        "version": 1,
        "issuer": issuer,
        "client_id": "bench",
        "account": account,
        "refresh_token": "rt-0",
        "scopes": ["openid", "offline_access"],
        "updated_at": issued_at,
        "access_tokens": [{
            "access_token": "a".repeat(1200),
            "token_type": "Bearer",
            "issued_at": issued_at,
            "expires_at": issued_at + 600,
            "scopes": ["openid", "offline_access"],
        }],
    }))
    .unwrap()
}

async fn client(issuer: &str, token_endpoint: &str, clock: Arc<dyn Clock>) -> OAuthClient {
    let metadata = ProviderMetadata::new(issuer, Url::parse(token_endpoint).unwrap());
    let transport = Transport::builder()
        .follow_redirects(false)
        .proxy_from_env(false)
        .build()
        .unwrap();
    let issuer = Issuer::builder(issuer)
        .metadata(metadata)
        .transport(transport)
        .clock(clock)
        .build()
        .await
        .unwrap();
    OAuthClient::builder(issuer, "bench").build()
}

/// The cached paths, judged by the real (system) clock, as programs run them.
fn cached_header(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let now = unix_now();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (manager, credential) = runtime.block_on(async {
        let store = MemoryStore::new();
        store.put(&grant(ISSUER, "alice", now)).await.unwrap();
        let client = client(ISSUER, "https://idp.example.test/token", clock.clone()).await;
        let manager = TokenManager::builder(store).client(client).build();
        let credential = manager.credential(TokenRequest::new("alice"));
        credential.header().await.unwrap();
        (manager, credential)
    });
    let mut group = c.benchmark_group("cached token");
    group.bench_function("TokenCredential::ready_header", |b| {
        b.iter(|| match credential.ready_header() {
            Ready::Header(header) => header,
            _ => unreachable!("the token is cached"),
        })
    });
    group.bench_function("TokenCredential::header().await", |b| {
        b.to_async(&runtime).iter(|| credential.header())
    });
    let request = TokenRequest::new("alice");
    group.bench_function("TokenManager::get().await", |b| {
        b.to_async(&runtime).iter(|| manager.get(&request))
    });
    // The call itself, without an executor around it: the cached path never waits.
    group.bench_function("TokenManager::get (polled once)", |b| {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        b.iter(|| {
            let mut get = std::pin::pin!(manager.get(&request));
            match get.as_mut().poll(&mut context) {
                std::task::Poll::Ready(Ok(token)) => token,
                _ => unreachable!("the token is cached"),
            }
        })
    });
    group.bench_function("TokenManager::get_now", |b| {
        b.iter(|| manager.get_now(&request).expect("the token is cached"))
    });
    let header = sciauth_tokens::sciauth_transport::HeaderValue::from_static("Bearer x");
    group.bench_function("baseline: HeaderValue clone", |b| b.iter(|| header.clone()));
    // What reading the wall clock costs on this machine (every cached path reads it once).
    group.bench_function("baseline: SystemTime::now", |b| b.iter(SystemTime::now));
    group.finish();
}

fn file_store(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let grant = grant(ISSUER, "alice", unix_now());
    runtime.block_on(store.put(&grant)).unwrap();
    let key = GrantKey::new(ISSUER, "bench", "alice");
    // The same, encrypted (default argon2id parameters: 64 MiB, 3 passes, 1 lane).
    let sealed_dir = tempfile::tempdir().unwrap();
    let passphrase = SecretString::from("bench passphrase");
    let store_key = StoreKey::create(sealed_dir.path(), &passphrase, KeyParams::default()).unwrap();
    store_key
        .remember(sealed_dir.path(), Duration::from_secs(600))
        .unwrap();
    let sealed = FileStore::open_encrypted(sealed_dir.path(), store_key).unwrap();
    runtime.block_on(sealed.put(&grant)).unwrap();

    let mut group = c.benchmark_group("FileStore");
    group.bench_function("get", |b| b.to_async(&runtime).iter(|| store.get(&key)));
    group.bench_function("get, encrypted", |b| {
        b.to_async(&runtime).iter(|| sealed.get(&key))
    });
    group.bench_function("get_now", |b| b.iter(|| store.get_now(&key)));
    group.bench_function("get_now, encrypted", |b| b.iter(|| sealed.get_now(&key)));
    group.bench_function("put (lock, read, write, fsync, rename)", |b| {
        b.to_async(&runtime).iter(|| store.put(&grant))
    });
    group.bench_function("put, encrypted", |b| {
        b.to_async(&runtime).iter(|| sealed.put(&grant))
    });
    group.bench_function("key from the kernel keyring, checked, store opened", |b| {
        b.iter(|| {
            let key = StoreKey::from_keyring(sealed_dir.path()).unwrap();
            FileStore::open_encrypted(sealed_dir.path(), key).unwrap()
        })
    });
    group.sample_size(10);
    group.bench_function("key unlocked from the passphrase (argon2id)", |b| {
        b.iter(|| StoreKey::unlock(sealed_dir.path(), &passphrase).unwrap())
    });
    group.finish();
    StoreKey::forget(sealed_dir.path()).unwrap();
}

/// A token endpoint on 127.0.0.1 that answers every refresh with a new token after
/// `delay` (a provider's latency), counting them.
async fn mock_token_endpoint(delay: Duration) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let served = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let served = served.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request: Request<Incoming>| {
                    let served = served.clone();
                    async move {
                        let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                        tokio::time::sleep(delay).await;
                        let body = format!(
                            r#"{{"access_token":"at-{n}-{}","token_type":"Bearer","expires_in":600,"refresh_token":"rt-{n}"}}"#,
                            "a".repeat(1100)
                        );
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{address}"), count)
}

fn contended_refresh(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (issuer, count) = runtime.block_on(mock_token_endpoint(Duration::from_millis(2)));
    let token_endpoint = format!("{issuer}/token");
    let mut group = c.benchmark_group("contended refresh");
    group.sample_size(20);
    for tasks in [1usize, 100, 1000] {
        group.bench_with_input(
            BenchmarkId::new("tasks ask for an expired token, one refresh", tasks),
            &tasks,
            |b, &tasks| {
                b.to_async(&runtime).iter_custom(|iterations| {
                    let (issuer, token_endpoint, count) =
                        (issuer.clone(), token_endpoint.clone(), count.clone());
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iterations {
                            // A fresh manager and an expired token each time.
                            let now = unix_now();
                            let clock = Arc::new(ManualClock::at_unix(now + 700));
                            let store = MemoryStore::new();
                            store.put(&grant(&issuer, "alice", now)).await.unwrap();
                            let client = client(&issuer, &token_endpoint, clock).await;
                            let manager = TokenManager::builder(store).client(client).build();
                            let request = TokenRequest::new("alice");
                            let before = count.load(Ordering::SeqCst);
                            let start = Instant::now();
                            let handles: Vec<_> = (0..tasks)
                                .map(|_| {
                                    let (manager, request) = (manager.clone(), request.clone());
                                    tokio::spawn(async move { manager.get(&request).await })
                                })
                                .collect();
                            for handle in handles {
                                handle.await.unwrap().unwrap();
                            }
                            total += start.elapsed();
                            assert_eq!(count.load(Ordering::SeqCst) - before, 1, "one refresh");
                        }
                        total
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, cached_header, file_store, contended_refresh);
criterion_main!(benches);
