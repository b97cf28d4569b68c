//! What a GET through `Transport` (Bearer credential, whole body read) costs over the same
//! GET with raw reqwest, against one loopback server, in one run.
//!
//! Run with `cargo bench -p sciauth-transport`; results go in `docs/benchmarks.md`. Raw
//! reqwest is measured twice: bare, and with the 60 s timeout the transport always sets.
//! Besides criterion's benchmarks, the run ends with a paired comparison (blocks of requests
//! alternating between the clients) that prints the overhead ratios; alternating keeps a busy
//! machine's drift out of the ratio.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group};
use sciauth_transport::credentials::BearerToken;
use sciauth_transport::{HeaderValue, Transport};

/// A typical access token is a JWT of about a kilobyte.
const TOKEN_LENGTH: usize = 1000;
const BODY: &str =
    r#"{"client":{"dn":"CN=demouser","xlogin":{"UID":"demouser"},"role":{"selected":"user"}}}"#;

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

struct Clients {
    url: String,
    transport: Transport,
    raw: reqwest::Client,
    /// What a careful caller of reqwest would set up: the transport's 60 s timeout.
    raw_with_timeout: reqwest::Client,
    header: HeaderValue,
}

impl Clients {
    fn new(addr: SocketAddr) -> Self {
        let token = "x".repeat(TOKEN_LENGTH);
        let transport = Transport::builder()
            .credential(BearerToken::new(&token).unwrap())
            .build()
            .unwrap();
        // The same client settings the transport uses.
        let raw = reqwest::Client::builder()
            .user_agent(concat!("sciauth/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let raw_with_timeout = reqwest::Client::builder()
            .user_agent(concat!("sciauth/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut header = HeaderValue::try_from(format!("Bearer {token}")).unwrap();
        header.set_sensitive(true);
        Self {
            url: format!("http://{addr}/rest/core"),
            transport,
            raw,
            raw_with_timeout,
            header,
        }
    }

    async fn raw_get(&self) -> usize {
        Self::get_with(&self.raw, &self.url, &self.header).await
    }

    async fn raw_get_with_timeout(&self) -> usize {
        Self::get_with(&self.raw_with_timeout, &self.url, &self.header).await
    }

    async fn get_with(client: &reqwest::Client, url: &str, header: &HeaderValue) -> usize {
        let response = client
            .get(url)
            .header(http::header::AUTHORIZATION, header.clone())
            .send()
            .await
            .unwrap();
        response.bytes().await.unwrap().len()
    }

    /// One GET by client number (0: raw, 1: raw with timeout, 2: transport).
    async fn get(&self, client: usize) -> usize {
        match client {
            0 => self.raw_get().await,
            1 => self.raw_get_with_timeout().await,
            _ => self.transport_get().await,
        }
    }

    async fn transport_get(&self) -> usize {
        let response = self.transport.get(&self.url).send().await.unwrap();
        response.bytes().len()
    }
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
    assert_eq!(runtime.block_on(clients.raw_get()), BODY.len());
    assert_eq!(runtime.block_on(clients.transport_get()), BODY.len());

    let mut group = c.benchmark_group("get_loopback");
    group.bench_function("raw_reqwest", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(clients.raw_get().await) })
    });
    group.bench_function("raw_reqwest_with_timeout", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(clients.raw_get_with_timeout().await) })
    });
    group.bench_function("transport_bearer", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(clients.transport_get().await) })
    });
    group.finish();
}

/// Alternates blocks of requests between the clients, in a rotating order, and prints the
/// median of the per-round ratios of the transport to each raw client.
fn paired_comparison() {
    const ROUNDS: usize = 60;
    const REQUESTS: usize = 500;
    const CLIENTS: [&str; 3] = ["raw", "raw_with_timeout", "transport"];
    let runtime = runtime();
    let clients = Clients::new(start_server());
    let mut totals = [Duration::ZERO; 3];
    let mut ratios: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    runtime.block_on(async {
        for _ in 0..REQUESTS {
            for client in 0..3 {
                black_box(clients.get(client).await);
            }
        }
        for round in 0..ROUNDS {
            let mut times = [Duration::ZERO; 3];
            for offset in 0..3 {
                let client = (round + offset) % 3;
                let start = Instant::now();
                for _ in 0..REQUESTS {
                    black_box(clients.get(client).await);
                }
                times[client] = start.elapsed();
            }
            for client in 0..3 {
                totals[client] += times[client];
            }
            for baseline in 0..2 {
                ratios[baseline].push(times[2].as_secs_f64() / times[baseline].as_secs_f64());
            }
        }
    });
    let per_request = |total: Duration| total / (ROUNDS * REQUESTS) as u32;
    println!("paired comparison, {ROUNDS} rounds x {REQUESTS} GETs per client:");
    for client in 0..3 {
        println!(
            "  {:<18} {:?}/GET",
            CLIENTS[client],
            per_request(totals[client])
        );
    }
    for (baseline, ratios) in ratios.iter_mut().enumerate() {
        ratios.sort_by(f64::total_cmp);
        println!(
            "  transport vs {:<18} median {:+.2}% (middle half of rounds {:+.2}% to {:+.2}%)",
            CLIENTS[baseline],
            (ratios[ROUNDS / 2] - 1.0) * 100.0,
            (ratios[ROUNDS / 4] - 1.0) * 100.0,
            (ratios[3 * ROUNDS / 4] - 1.0) * 100.0,
        );
    }
}

criterion_group!(benches, get_loopback);

/// `SCIAUTH_BENCH_PROBE=<raw|raw_with_timeout|transport>:<count>` sends that many GETs with
/// one client and exits, for counting instructions with `valgrind --tool=callgrind`, which
/// a busy machine does not disturb (see `docs/benchmarks.md`).
fn probe(spec: &str) {
    let (client, count) = spec.split_once(':').expect("<client>:<count>");
    let count: usize = count.parse().expect("a number of requests");
    let runtime = runtime();
    let clients = Clients::new(start_server());
    runtime.block_on(async {
        for _ in 0..count {
            let length = match client {
                "raw" => clients.raw_get().await,
                "raw_with_timeout" => clients.raw_get_with_timeout().await,
                "transport" => clients.transport_get().await,
                _ => panic!("unknown client {client}"),
            };
            black_box(length);
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
