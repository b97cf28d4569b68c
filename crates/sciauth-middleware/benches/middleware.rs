//! What a GET costs with `AuthMiddleware` (a Bearer credential) over the same GET with raw
//! reqwest and with reqwest-middleware carrying a trivial header middleware, and with
//! `AuthLayer` over a raw hyper-util client; against one loopback server, in one run.
//!
//! Run with `cargo bench -p sciauth-middleware --bench middleware`; results go in
//! `docs/benchmarks.md`. Every client sends the same `Authorization: Bearer <1 KB>` header
//! and reads the whole body. Besides criterion's benchmarks, the run ends with a paired
//! comparison (blocks of requests alternating between the clients) that prints the overhead
//! ratios; alternating keeps a busy machine's drift out of the ratio.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use http::{Extensions, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use sciauth_middleware::credentials::BearerToken;
use sciauth_middleware::{Auth, AuthService};
use tower::{Service, ServiceExt};

/// A typical access token is a JWT of about a kilobyte.
const TOKEN_LENGTH: usize = 1000;
const BODY: &str =
    r#"{"client":{"dn":"CN=demouser","xlogin":{"UID":"demouser"},"role":{"selected":"user"}}}"#;
const CLIENTS: [&str; 5] = [
    "raw_reqwest",
    "header_middleware",
    "auth_middleware",
    "raw_hyper",
    "auth_layer",
];

/// A server on its own thread and runtime, so that the client's runtime measures only the
/// client.
fn start_server() -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            let router = Router::new().route("/rest/core", get(|| async { BODY }));
            axum::serve(listener, router).await.unwrap();
        });
    });
    receiver.recv().unwrap()
}

/// The trivial middleware a program would write by hand: insert a fixed header.
struct HeaderMiddleware(HeaderValue);

#[async_trait::async_trait]
impl Middleware for HeaderMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        (request.headers_mut()).insert(http::header::AUTHORIZATION, self.0.clone());
        next.run(request, extensions).await
    }
}

type Hyper = HyperClient<HttpConnector, Full<Bytes>>;

struct Clients {
    url: String,
    header: HeaderValue,
    raw: reqwest::Client,
    header_middleware: ClientWithMiddleware,
    auth_middleware: ClientWithMiddleware,
    hyper: Hyper,
    layered: AuthService<Hyper>,
}

impl Clients {
    fn new(addr: SocketAddr) -> Self {
        let token = "x".repeat(TOKEN_LENGTH);
        let mut header = HeaderValue::try_from(format!("Bearer {token}")).unwrap();
        header.set_sensitive(true);
        let raw = reqwest::Client::new();
        let header_middleware = ClientBuilder::new(raw.clone())
            .with(HeaderMiddleware(header.clone()))
            .build();
        let auth = Auth::builder(Arc::new(BearerToken::new(&token).unwrap()))
            .origin(format!("http://{addr}"))
            .build()
            .unwrap();
        let auth_middleware = ClientBuilder::new(raw.clone())
            .with(auth.middleware())
            .build();
        let hyper = HyperClient::builder(TokioExecutor::new()).build_http();
        let layered = AuthService::new(hyper.clone(), auth);
        Self {
            url: format!("http://{addr}/rest/core"),
            header,
            raw,
            header_middleware,
            auth_middleware,
            hyper,
            layered,
        }
    }

    /// One GET by client number, in the order of [`CLIENTS`]; the body's length.
    async fn get(&self, client: usize) -> usize {
        match client {
            0 => {
                let request = self.raw.get(&self.url);
                let request = request.header(http::header::AUTHORIZATION, self.header.clone());
                body(request.send().await.unwrap()).await
            }
            1 => body(self.header_middleware.get(&self.url).send().await.unwrap()).await,
            2 => body(self.auth_middleware.get(&self.url).send().await.unwrap()).await,
            3 => {
                let mut request = Request::get(&self.url).body(Full::default()).unwrap();
                (request.headers_mut()).insert(http::header::AUTHORIZATION, self.header.clone());
                let response = self.hyper.request(request).await.unwrap();
                response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .len()
            }
            _ => {
                let request = Request::get(&self.url).body(Full::default()).unwrap();
                let mut layered = self.layered.clone();
                let response = layered.ready().await.unwrap().call(request).await.unwrap();
                response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .len()
            }
        }
    }
}

async fn body(response: reqwest::Response) -> usize {
    response.bytes().await.unwrap().len()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn get_loopback(c: &mut Criterion) {
    let runtime = runtime();
    let clients = Clients::new(start_server());
    for client in 0..CLIENTS.len() {
        assert_eq!(runtime.block_on(clients.get(client)), BODY.len());
    }
    let mut group = c.benchmark_group("get_loopback");
    for (client, name) in CLIENTS.iter().enumerate() {
        group.bench_function(*name, |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(clients.get(client).await) })
        });
    }
    group.finish();
}

criterion_group!(benches, get_loopback);

/// Alternates blocks of requests between the clients, in a rotating order, and prints the
/// median of the per-round ratios: `AuthMiddleware` to raw reqwest and to the header
/// middleware, `AuthLayer` to raw hyper.
fn paired_comparison() {
    const ROUNDS: usize = 40;
    const REQUESTS: usize = 300;
    const PAIRS: [(usize, usize); 3] = [(2, 0), (2, 1), (4, 3)];
    let n = CLIENTS.len();
    let runtime = runtime();
    let clients = Clients::new(start_server());
    let mut totals = vec![Duration::ZERO; n];
    let mut ratios = vec![Vec::new(); PAIRS.len()];
    runtime.block_on(async {
        for _ in 0..REQUESTS {
            for client in 0..n {
                black_box(clients.get(client).await);
            }
        }
        for round in 0..ROUNDS {
            let mut times = vec![Duration::ZERO; n];
            for offset in 0..n {
                let client = (round + offset) % n;
                let start = Instant::now();
                for _ in 0..REQUESTS {
                    black_box(clients.get(client).await);
                }
                times[client] = start.elapsed();
            }
            for client in 0..n {
                totals[client] += times[client];
            }
            for (pair, (measured, baseline)) in PAIRS.iter().enumerate() {
                let ratio = times[*measured].as_secs_f64() / times[*baseline].as_secs_f64();
                ratios[pair].push(ratio);
            }
        }
    });
    let per_request = |total: Duration| total / (ROUNDS * REQUESTS) as u32;
    println!("paired comparison, {ROUNDS} rounds x {REQUESTS} GETs per client:");
    for client in 0..n {
        println!(
            "  {:<18} {:?}/GET",
            CLIENTS[client],
            per_request(totals[client])
        );
    }
    for (pair, (measured, baseline)) in PAIRS.iter().enumerate() {
        let ratios = &mut ratios[pair];
        ratios.sort_by(f64::total_cmp);
        println!(
            "  {} vs {:<18} median {:+.2}% (middle half of rounds {:+.2}% to {:+.2}%)",
            CLIENTS[*measured],
            CLIENTS[*baseline],
            (ratios[ROUNDS / 2] - 1.0) * 100.0,
            (ratios[ROUNDS / 4] - 1.0) * 100.0,
            (ratios[3 * ROUNDS / 4] - 1.0) * 100.0,
        );
    }
}

/// `SCIAUTH_BENCH_PROBE=<client>:<count>` (a name of [`CLIENTS`]) sends that many GETs with
/// one client and exits, for counting instructions with `valgrind --tool=callgrind`, which a
/// busy machine does not disturb (see `docs/benchmarks.md`).
fn probe(spec: &str) {
    let (name, count) = spec.split_once(':').expect("<client>:<count>");
    let count: usize = count.parse().expect("a number of requests");
    let client = (CLIENTS.iter().position(|c| *c == name)).expect("a client of CLIENTS");
    let runtime = runtime();
    let clients = Clients::new(start_server());
    runtime.block_on(async {
        for _ in 0..count {
            black_box(clients.get(client).await);
        }
    });
}

fn main() {
    if let Ok(spec) = std::env::var("SCIAUTH_BENCH_PROBE") {
        probe(&spec);
        return;
    }
    benches();
    // Only under `cargo bench`; `cargo test --benches` runs each benchmark once, as a test.
    if std::env::args().any(|arg| arg == "--bench") {
        paired_comparison();
    }
    Criterion::default().configure_from_args().final_summary();
}
