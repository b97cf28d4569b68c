//! Throughput of a cached getToken (the service answers from the token it keeps, the caller's
//! bearer token already validated), measured with `wrk` against the real server on
//! 127.0.0.1; and the client-side cache hit of `TokenServiceClient::get_token` (criterion).
//!
//! `cargo bench -p sciauth-server --bench server` runs both (wrk from Debian's `wrk`
//! package; without it the load run is skipped with a note). `SCIAUTH_BENCH_SERVE=1` only
//! starts the server and prints a wrk command, for another load generator.
//!
//! Everything is local: a small issuer (discovery and JWKS) signs the caller's token with a
//! P-256 key; the kept group token sits in a `MemoryStore`, so no provider is asked.

use std::process::Command;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use sciauth_credentials::BearerToken;
use sciauth_server::{Config, Server};
use sciauth_service_api::GetTokenRequest;
use sciauth_service_api::TokenServiceClient;
use sciauth_tokens::{MemoryStore, StoredGrant, TokenStore};
use serde_json::json;

const AUDIENCE: &str = "https://tokens.example.test";
const CE: &str = "https://ce.example.test";
const BODY: &str = r#"{"audience":"https://ce.example.test","requiredTimeLeft":600}"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An issuer on 127.0.0.1 with discovery and a JWKS of one P-256 key; the caller's token.
async fn issuer() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let raw = key.public_key_raw();
    let (x, y) = (&raw[1..33], &raw[33..65]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "bench", "alg": "ES256",
        "use": "sig", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]});
    let discovery = json!({"issuer": url, "token_endpoint": format!("{url}/token"),
        "jwks_uri": format!("{url}/jwks")});
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { json_answer(&discovery) }),
        )
        .route("/jwks", get(move || async move { json_answer(&jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("bench".into());
    let claims = json!({"iss": url, "sub": "bench-caller", "aud": AUDIENCE,
        "iat": now(), "exp": now() + 7200});
    let signing = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let caller = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
    (url, caller)
}

fn json_answer(value: &serde_json::Value) -> impl axum::response::IntoResponse + use<> {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
}

/// The service with one kept group token; its base URL.
async fn service(issuer: &str) -> String {
    let config = Config::from_toml(
        &format!(
            r#"
[store]
kind = "memory"
[callers]
issuer = "{issuer}"
audience = "{AUDIENCE}"
[providers.idp]
issuer = "{issuer}"
client_id = "svc"
[vos.bench]
provider = "idp"
[groups.pilots]
vo = "bench"
properties = ["LimitedDelegation"]
scopes = ["compute.read"]
[users.caller]
groups = ["pilots"]
subjects = ["bench-caller"]
"#
        ),
        "/",
    )
    .unwrap();
    let store = MemoryStore::new();
    let grant: StoredGrant = serde_json::from_value(json!({
        "version": 1, "issuer": issuer, "client_id": "svc", "account": "group:pilots",
        "scopes": ["compute.read"], "updated_at": now(),
        "access_tokens": [{"access_token": "kept-access-token-".repeat(40), "token_type": "Bearer",
            "issued_at": now(), "expires_at": now() + 7200, "scopes": ["compute.read"],
            "audience": CE}]
    }))
    .unwrap();
    store.put(&grant).await.unwrap();
    let server = Server::with_token_store(config, Arc::new(store)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server.serve_with_shutdown(listener, std::future::pending()));
    url
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (url, caller) = runtime.block_on(async {
        let (issuer, caller) = issuer().await;
        (service(&issuer).await, caller)
    });

    // One call to check the answer before measuring.
    let client = TokenServiceClient::builder(&url)
        .credential(BearerToken::new(&caller).unwrap())
        .build()
        .unwrap();
    let request = GetTokenRequest {
        audience: Some(CE.into()),
        required_time_left: 600,
        ..Default::default()
    };
    let token = runtime.block_on(client.get_token(&request)).unwrap();
    assert_eq!(token.audience.as_deref(), Some(CE));

    let script = std::env::temp_dir().join(format!("sciauth-bench-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{BODY}'\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.headers[\"Authorization\"] = \"Bearer {caller}\"\n"
        ),
    )
    .unwrap();
    let seconds = std::env::var("SCIAUTH_BENCH_SECONDS").unwrap_or_else(|_| "10".into());
    let wrk_args = [
        "-t2".to_owned(),
        "-c64".to_owned(),
        format!("-d{seconds}s"),
        "--latency".to_owned(),
        "-s".to_owned(),
        script.display().to_string(),
        format!("{url}/v1/getToken"),
    ];
    if std::env::var_os("SCIAUTH_BENCH_SERVE").is_some() {
        println!(
            "serving at {url}; measure with:\n  wrk {}",
            wrk_args.join(" ")
        );
        runtime.block_on(std::future::pending::<()>());
    }
    match Command::new("wrk").args(&wrk_args).output() {
        Ok(output) => {
            println!("cached getToken over HTTP: wrk {}", wrk_args[..4].join(" "));
            println!("{}", String::from_utf8_lossy(&output.stdout));
        }
        Err(_) => println!("wrk is not installed (apt-get install wrk): load run skipped"),
    }
    let _ = std::fs::remove_file(&script);

    let mut criterion = Criterion::default().configure_from_args();
    criterion.bench_function("TokenServiceClient::get_token, cache hit", |b| {
        b.to_async(&runtime)
            .iter(|| async { client.get_token(&request).await.unwrap() });
    });
    criterion.final_summary();
    drop(runtime);
}
