//! The token service under load, behind `cargo xtask bench-service`: 1, 2 and 4 replicas of
//! the release `sciauth serve` (separate processes) on one PostgreSQL on 127.0.0.1 (TCP),
//! providers from `tests/idp` (oidc-provider), load from `wrk`, everything on this machine.
//!
//! Two mixes, each against 1, 2 and 4 replicas (wrk's threads spread over them):
//!
//! - cached: every request a getToken for one user whose access token lives an hour, so
//!   every answer comes from the replica's memory (no database, no provider);
//! - refresh: getToken for four users in turn, at a provider whose access tokens live 30 s,
//!   so each grant must be refreshed every 15 s (its refresh-ahead point) while the load
//!   runs, whichever replica is asked. The provider counts the refreshes: one per grant per
//!   interval across all replicas is the target.
//!
//! Prints throughput, p50 and p99 latency (wrk), non-2xx answers, and the provider's count.
//! Timings here are measurements, never assertions.
//!
//! Run: `cargo xtask bench-service` (release build, installs wrk), or
//! `cargo run --release -p sciauth-cli --example bench_service -- [--sciauth PATH]
//! [--seconds N] [--refresh-seconds N]`.

use sciauth_test_support::idp;
use sciauth_test_support::postgres;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use sciauth::service::DelegatedToken;
use sciauth::tokens::{AudienceParameter, CallbackMode, ClientAuth, Issuer, OAuthClient, Token};
use sciauth::transport::Transport;
use serde_json::{Value, json};

use crate::idp::Idp;

const API: &str = "https://api.example.test";
const CLIENT: &str = "code-secret";
const CLIENT_SECRET: &str = "code-secret-secret";
/// The users whose grants the refresh mix cycles through.
const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
/// The short-lived provider's access-token lifetime, and so its refresh interval (a token is
/// refreshed ahead when half its life is left, at most).
const SHORT_TTL: u64 = 30;
const REFRESH_INTERVAL: u64 = SHORT_TTL / 2;

type Step<T = ()> = Result<T, String>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-service failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--name N` from the command line, or `default`.
fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run() -> Step {
    let sciauth = sciauth_binary()?;
    let seconds = arg("--seconds", 10);
    let refresh_seconds = arg("--refresh-seconds", 60);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;

    println!("sciauth bench-service: {}", sciauth.display());
    let cluster = tokio::task::spawn_blocking(postgres::Cluster::dedicated_on_tcp)
        .await
        .map_err(|e| e.to_string())?;
    let database = cluster.database().await;
    println!("PostgreSQL on 127.0.0.1 (TCP): {database}");
    let hour = Idp::start_with(&[("AT_TTL", "3600")]).await;
    let ttl = SHORT_TTL.to_string();
    let short = Idp::start_with(&[("AT_TTL", &ttl)]).await;
    println!(
        "providers: {} (tokens live 1 h; also the callers' issuer), {} (tokens live {SHORT_TTL} s)",
        hour.issuer(),
        short.issuer()
    );

    std::fs::write(dir.path().join("client-secret"), CLIENT_SECRET).map_err(|e| e.to_string())?;
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        config_text(hour.issuer(), short.issuer(), &database),
    )
    .map_err(|e| e.to_string())?;

    let mut replicas = Vec::new();
    for index in 0..4 {
        replicas.push(Replica::start(&sciauth, &config, dir.path(), index).await?);
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    for replica in &replicas {
        replica.ready(&http).await?;
    }
    println!("4 replicas ready: {}", addresses(&replicas).join(" "));

    // The caller (client credentials of cc-basic: FullDelegation, ProxyManagement), and each
    // user's refresh token at both providers, kept by the service.
    let admin = caller_token(&hour).await?;
    for (idp, name) in [(&hour, "hour"), (&short, "short")] {
        for user in USERS {
            let token = login(idp, user).await?;
            let body = json!({
                "token": DelegatedToken::from_token(&token, std::time::SystemTime::now()),
                "userID": user,
                "provider": name,
            });
            let answer = http
                .post(format!("http://{}/v1/updateToken", replicas[0].api))
                .bearer_auth(&admin)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !answer.status().is_success() {
                return Err(format!("updateToken failed: {}", answer.status()));
            }
        }
    }

    let mut report = String::new();
    let _ = writeln!(
        report,
        "\n| mix | replicas | requests/s | p50 | p99 | non-2xx | provider refreshes |\n|---|---|---|---|---|---|---|"
    );
    let cached_body = json!({"username": "u0", "identityProvider": "hour"}).to_string();
    for count in [1, 2, 4] {
        let targets = &replicas[..count];
        warm(&http, targets, &admin, &cached_body).await?;
        hour.reset_counts().await;
        let result = wrk(
            dir.path(),
            targets,
            &admin,
            std::slice::from_ref(&cached_body),
            seconds,
        )
        .await?;
        let refreshes = hour.counts().await["requests"]["refresh_token"]
            .as_u64()
            .unwrap_or(0);
        let _ = writeln!(
            report,
            "| cached getToken | {count} | {:.0} | {} | {} | {} | {refreshes} |",
            result.requests_per_second, result.p50, result.p99, result.non_2xx
        );
        println!("{}", report.lines().last().unwrap_or_default());
    }

    let refresh_bodies: Vec<String> = USERS
        .iter()
        .map(|user| json!({"username": user, "identityProvider": "short"}).to_string())
        .collect();
    let mut refresh_notes = String::new();
    for count in [1, 2, 4] {
        let targets = &replicas[..count];
        short.reset_counts().await;
        let result = wrk(
            dir.path(),
            targets,
            &admin,
            &refresh_bodies,
            refresh_seconds,
        )
        .await?;
        let counts = short.counts().await;
        let refreshes = counts["requests"]["refresh_token"].as_u64().unwrap_or(0);
        let failures = &counts["failures"]["refresh_token"];
        let intervals = refresh_seconds as f64 / REFRESH_INTERVAL as f64;
        let per_grant_interval = refreshes as f64 / (USERS.len() as f64 * intervals);
        let _ = writeln!(
            report,
            "| refresh ({SHORT_TTL} s tokens, {} grants) | {count} | {:.0} | {} | {} | {} | {refreshes} in {refresh_seconds} s = {per_grant_interval:.2} per grant per {REFRESH_INTERVAL} s |",
            USERS.len(),
            result.requests_per_second,
            result.p50,
            result.p99,
            result.non_2xx
        );
        println!("{}", report.lines().last().unwrap_or_default());
        let _ = writeln!(
            refresh_notes,
            "- {count} replica(s): refresh failures at the provider: {}",
            if failures.is_null() {
                "none".to_owned()
            } else {
                failures.to_string()
            }
        );
    }
    println!("{report}\n{refresh_notes}");

    // The same cached run with the access log off, to show what one line per request costs.
    for replica in &mut replicas {
        replica.stop().await;
    }
    let quiet = Replica::start_with_log(
        &sciauth,
        &config,
        dir.path(),
        9,
        "info,sciauth_server::access=warn",
    )
    .await?;
    quiet.ready(&http).await?;
    warm(&http, std::slice::from_ref(&quiet), &admin, &cached_body).await?;
    let result = wrk(
        dir.path(),
        std::slice::from_ref(&quiet),
        &admin,
        std::slice::from_ref(&cached_body),
        seconds,
    )
    .await?;
    println!(
        "cached getToken, 1 replica, access log off: {:.0} requests/s, p50 {}, p99 {}, non-2xx {}",
        result.requests_per_second, result.p50, result.p99, result.non_2xx
    );
    drop(cluster);
    Ok(())
}

fn config_text(hour: &str, short: &str, database: &str) -> String {
    let users: String = USERS
        .iter()
        .map(|user| {
            format!(
                "[users.{user}]\ngroups = [\"users\"]\nids = {{ hour = \"{user}\", short = \"{user}\" }}\n"
            )
        })
        .collect();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[store]
kind = "postgres"
url = "{database}"
[callers]
issuer = "{hour}"
audience = "{API}"
[providers.hour]
issuer = "{hour}"
client_id = "{CLIENT}"
client_secret_file = "client-secret"
audience_parameter = "resource"
[providers.short]
issuer = "{short}"
client_id = "{CLIENT}"
client_secret_file = "client-secret"
audience_parameter = "resource"
[vos.bench]
provider = "hour"
[groups.admins]
vo = "bench"
properties = ["FullDelegation", "ProxyManagement"]
[groups.users]
vo = "bench"
[users.admin]
groups = ["admins"]
subjects = ["cc-basic"]
{users}"#
    )
}

/// One `sciauth serve` process, its log in a file.
struct Replica {
    child: tokio::process::Child,
    api: String,
    metrics: String,
}

impl Replica {
    async fn start(sciauth: &Path, config: &Path, dir: &Path, index: usize) -> Step<Replica> {
        Self::start_with_log(sciauth, config, dir, index, "info").await
    }

    async fn start_with_log(
        sciauth: &Path,
        config: &Path,
        dir: &Path,
        index: usize,
        filter: &str,
    ) -> Step<Replica> {
        let log_path = dir.join(format!("replica-{index}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(sciauth)
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", filter)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", sciauth.display()))?;
        let find = |needle: &str| {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            text.lines()
                .find(|line| line.contains(needle))
                .and_then(|line| line.split_once("address="))
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .map(str::to_owned)
        };
        let started = std::time::Instant::now();
        loop {
            if let (Some(api), Some(metrics)) =
                (find("sciauth-server listening"), find("metrics listening"))
            {
                return Ok(Replica {
                    child,
                    api,
                    metrics,
                });
            }
            if started.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("replica {index} did not start:\n{log}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ready(&self, http: &reqwest::Client) -> Step {
        for _ in 0..600 {
            let ready = http
                .get(format!("http://{}/readyz", self.metrics))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("replica {} never became ready", self.api))
    }

    async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

fn addresses(replicas: &[Replica]) -> Vec<String> {
    replicas.iter().map(|r| r.api.clone()).collect()
}

/// One request of `body` on each replica, so that each has the grant in memory.
async fn warm(http: &reqwest::Client, replicas: &[Replica], admin: &str, body: &str) -> Step {
    for replica in replicas {
        let answer = http
            .post(format!("http://{}/v1/getToken", replica.api))
            .bearer_auth(admin)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !answer.status().is_success() {
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            return Err(format!("getToken failed: {status} {text}"));
        }
    }
    Ok(())
}

struct WrkResult {
    requests_per_second: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
}

/// `wrk -t4 -c64 -d<seconds>s --latency` with a script that spreads its threads over
/// `replicas` and POSTs the bodies in turn to /v1/getToken.
async fn wrk(
    dir: &Path,
    replicas: &[Replica],
    admin: &str,
    bodies: &[String],
    seconds: u64,
) -> Step<WrkResult> {
    let hosts: Vec<String> = replicas
        .iter()
        .map(|r| {
            let (host, port) = r.api.rsplit_once(':').unwrap_or((&r.api, "80"));
            format!("{{\"{host}\", \"{port}\"}}")
        })
        .collect();
    let bodies_lua: Vec<String> = bodies.iter().map(|b| format!("[[{b}]]")).collect();
    let request = if bodies.len() > 1 {
        "local i = 0\nfunction request()\n  i = i + 1\n  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])\nend\n"
    } else {
        "wrk.body = bodies[1]\n"
    };
    let script = format!(
        "local hosts = {{{}}}\nlocal next_thread = 0\n\
         function setup(thread)\n  local h = hosts[(next_thread % #hosts) + 1]\n  \
         thread.addr = wrk.lookup(h[1], h[2])[1]\n  next_thread = next_thread + 1\nend\n\
         wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {admin}\"\nlocal bodies = {{{}}}\n{request}",
        hosts.join(", "),
        bodies_lua.join(", ")
    );
    let path = dir.join("bench.lua");
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    let url = format!("http://{}/v1/getToken", replicas[0].api);
    let duration = format!("-d{seconds}s");
    let output = tokio::process::Command::new("wrk")
        .args(["-t4", "-c64", &duration, "--latency", "-s"])
        .arg(&path)
        .arg(&url)
        .output()
        .await
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(|rest| rest.trim().to_owned())
    };
    Ok(WrkResult {
        requests_per_second: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{text}"))?,
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        non_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    })
}

/// A bearer token of `cc-basic` for the API (the service's caller `admin`).
async fn caller_token(idp: &Idp) -> Step<String> {
    let response = idp::client()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth("cc-basic", Some("cc-basic-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "api:read"),
            ("resource", API),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no caller token: {body}"))
}

/// A headless code login of `user` with the service's client: a refresh token to keep.
async fn login(idp: &Idp, user: &str) -> Step<Token> {
    let transport = Transport::builder()
        .follow_redirects(false)
        .proxy_from_env(false)
        .build()
        .map_err(|e| e.to_string())?;
    let issuer = Issuer::builder(idp.issuer())
        .transport(transport)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let client = OAuthClient::builder(issuer, CLIENT)
        .auth(ClientAuth::secret_basic(CLIENT_SECRET))
        .audience_parameter(AudienceParameter::Resource)
        .build();
    client
        .code_login()
        .scopes(["openid", "offline_access"])
        .prompt("consent")
        .login_hint(user)
        .callback(CallbackMode::Loopback)
        .open_with(|url: &sciauth::tokens::url::Url| {
            let url = url.to_string();
            tokio::spawn(async move {
                let _ = idp::browser_login(&url).await;
            });
            Ok(())
        })
        .run()
        .await
        .map_err(|e| e.to_string())
}

/// The sciauth binary: `--sciauth PATH`, else next to this example's directory.
fn sciauth_binary() -> Step<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--sciauth") {
        return args
            .get(i + 1)
            .map(PathBuf::from)
            .ok_or_else(|| "--sciauth needs a path".to_owned());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("sciauth"))
        .ok_or("cannot find the sciauth binary; pass --sciauth PATH")?;
    if !path.exists() {
        return Err(format!(
            "{} does not exist: build it first (cargo build --release -p sciauth-cli) or pass \
             --sciauth PATH",
            path.display()
        ));
    }
    Ok(path)
}
