//! `sciauth serve` as an operator runs it: a process on real PostgreSQL and the real identity
//! provider, told by signals what to do. SIGHUP reloads the configuration (a broken one is
//! refused and the running one kept) without dropping connections; SIGTERM stops accepting,
//! lets the request under way finish, and exits 0; `log_format = "json"` writes one JSON
//! object per line, one line per request, and never a token.
//!
//! Nothing here asserts how long anything took: a test waits, up to a generous bound, for
//! what the service must do.

use sciauth_test_support::idp;
use sciauth_test_support::postgres;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::idp::Idp;
use crate::support::Home;

const API: &str = "https://api.example.test";

/// How long a test waits for the service to do what it must.
const BOUND: Duration = Duration::from_secs(60);

/// The service's configuration: the admin (`cc-basic`) with `admin_properties`, the pilots'
/// group token (client credentials of `code-secret`).
fn config_text(issuer: &str, database: &str, server: &str, admin_properties: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server}
[metrics]
listen = "127.0.0.1:0"
[store]
kind = "postgres"
url = "{database}"
[callers]
issuer = "{issuer}"
audience = "{API}"
[providers.idp]
issuer = "{issuer}"
client_id = "code-secret"
client_secret_file = "client-secret"
audience_parameter = "resource"
[vos.test]
provider = "idp"
[groups.admins]
vo = "test"
properties = [{admin_properties}]
[groups.pilots]
vo = "test"
scopes = ["api:read"]
[users.admin]
groups = ["admins"]
subjects = ["cc-basic"]
"#
    )
}

/// A bearer token of `cc-basic` for the API: the service's caller `admin`.
async fn admin_token(idp: &Idp) -> String {
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
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A running `sciauth serve`, its stderr collected line by line.
struct Service {
    child: tokio::process::Child,
    log: Arc<Mutex<Vec<String>>>,
    /// `127.0.0.1:<port>` of the API and of the metrics listener.
    api: String,
    metrics: String,
}

/// The address a startup line names (`address=...` as text, `"address":"..."` as JSON).
fn address_in(line: &str) -> Option<String> {
    if let Some((_, rest)) = line.split_once("address=") {
        return rest.split_whitespace().next().map(str::to_owned);
    }
    let json: Value = serde_json::from_str(line).ok()?;
    json["address"].as_str().map(str::to_owned)
}

impl Service {
    async fn start(home: &Home, config: &std::path::Path) -> Service {
        let mut child = home
            .command(&["serve", "--config", config.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn({
            let log = log.clone();
            async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap().push(line);
                }
            }
        });
        let mut service = Service {
            child,
            log,
            api: String::new(),
            metrics: String::new(),
        };
        service.api = address_in(&service.wait_for_log("sciauth-server listening").await)
            .expect("the listening line names the address");
        service.metrics = address_in(&service.wait_for_log("metrics listening").await)
            .expect("the metrics line names the address");
        service
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until a line of the log holds `needle`; that line.
    async fn wait_for_log(&self, needle: &str) -> String {
        self.wait_for_lines(needle, 1).await
    }

    /// Waits until `count` lines of the log hold `needle`; the last of them.
    async fn wait_for_lines(&self, needle: &str, count: usize) -> String {
        tokio::time::timeout(BOUND, async {
            loop {
                let found: Vec<String> = self
                    .log
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|line| line.contains(needle))
                    .cloned()
                    .collect();
                if found.len() >= count {
                    return found.last().unwrap().clone();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the log never said {needle:?}:\n{}", self.log()))
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn metrics(&self) -> String {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// Waits for the process to end; its exit code.
    async fn exit_code(&mut self) -> Option<i32> {
        tokio::time::timeout(BOUND, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("sciauth serve did not exit:\n{}", self.log()))
            .unwrap()
            .code()
    }
}

/// Reads one HTTP/1.1 answer with a Content-Length body from `stream`: status line, body.
async fn read_answer(stream: &mut TcpStream) -> (String, String) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                let status = head.lines().next().unwrap_or_default().to_owned();
                let body = String::from_utf8_lossy(&received[end + 4..end + 4 + length]);
                return (status, body.into_owned());
            }
        }
        let n = tokio::time::timeout(BOUND, stream.read(&mut buffer))
            .await
            .expect("an answer")
            .expect("an answer");
        assert!(n > 0, "the connection was closed: {received:?}");
        received.extend_from_slice(&buffer[..n]);
    }
}

fn whoami(address: &str, bearer: &str) -> String {
    format!("GET /v1/whoami HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {bearer}\r\n\r\n")
}

/// A provider, a database and a home with the service's client secret.
async fn setup() -> (Idp, String, Home) {
    let idp = Idp::start().await;
    let database = postgres::cluster().database().await;
    let home = Home::new();
    std::fs::write(home.path("client-secret"), "code-secret-secret").unwrap();
    (idp, database, home)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_good_configuration_and_refuses_a_broken_one_keeping_connections() {
    let (idp, database, home) = setup().await;
    let config = home.path("server.toml");
    let write = |admin_properties: &str| {
        std::fs::write(
            &config,
            config_text(idp.issuer(), &database, "", admin_properties),
        )
        .unwrap();
    };
    write("\"FullDelegation\"");
    let mut service = Service::start(&home, &config).await;
    let admin = admin_token(&idp).await;
    let mut stream = TcpStream::connect(&service.api).await.unwrap();
    stream
        .write_all(whoami(&service.api, &admin).as_bytes())
        .await
        .unwrap();
    let (status, me) = read_answer(&mut stream).await;
    assert!(status.contains(" 200 "), "{status} {me}");
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!(me["properties"], json!(["FullDelegation"]));

    // A good configuration: the group gains ProxyManagement, seen by the next request on the
    // same connection.
    write("\"FullDelegation\", \"ProxyManagement\"");
    service.signal("HUP");
    service.wait_for_log("the configuration was reloaded").await;
    stream
        .write_all(whoami(&service.api, &admin).as_bytes())
        .await
        .unwrap();
    let (status, me) = read_answer(&mut stream).await;
    assert!(status.contains(" 200 "), "{status} {me}");
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!(
        me["properties"],
        json!(["FullDelegation", "ProxyManagement"])
    );

    // A broken one (a syntax error on a line that holds a secret): refused with a log line
    // that says where, never what; the running configuration stays, the connection too.
    std::fs::write(
        &config,
        format!(
            "{}\n[providers.other]\nclient_secret = \"hunter2-in-the-file\n",
            config_text(idp.issuer(), &database, "", "\"FullDelegation\"")
        ),
    )
    .unwrap();
    service.signal("HUP");
    let refused = service
        .wait_for_log("the new configuration is refused")
        .await;
    assert!(refused.contains("line "), "{refused}");
    assert!(!service.log().contains("hunter2"), "{}", service.log());
    stream
        .write_all(whoami(&service.api, &admin).as_bytes())
        .await
        .unwrap();
    let (status, me) = read_answer(&mut stream).await;
    assert!(status.contains(" 200 "), "{status} {me}");
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!(
        me["properties"],
        json!(["FullDelegation", "ProxyManagement"])
    );
    let metrics = service.metrics().await;
    assert!(
        metrics.contains("sciauth_config_reloads_total{result=\"applied\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sciauth_config_reloads_total{result=\"refused\"} 1"),
        "{metrics}"
    );

    service.signal("TERM");
    assert_eq!(service.exit_code().await, Some(0), "{}", service.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_request_under_way_then_exits_0() {
    let (idp, database, home) = setup().await;
    let config = home.path("server.toml");
    std::fs::write(
        &config,
        config_text(idp.issuer(), &database, "", "\"FullDelegation\""),
    )
    .unwrap();
    let mut service = Service::start(&home, &config).await;
    let admin = admin_token(&idp).await;

    // A request whose body has not all arrived: under way in the service.
    let mut stream = TcpStream::connect(&service.api).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /v1/whoami HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {admin}\r\n\
                 Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{",
                service.api
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::timeout(BOUND, async {
        while !service
            .metrics()
            .await
            .contains("sciauth_http_requests_in_flight 1")
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the request is under way");

    service.signal("TERM");
    // No new connection is accepted...
    tokio::time::timeout(BOUND, async {
        while TcpStream::connect(&service.api).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the service stops accepting");
    // ...but the request under way is answered.
    stream.write_all(b"}").await.unwrap();
    let (status, me) = read_answer(&mut stream).await;
    assert!(status.contains(" 200 "), "{status} {me}");
    assert_eq!(
        serde_json::from_str::<Value>(&me).unwrap()["username"],
        "admin"
    );
    assert_eq!(service.exit_code().await, Some(0), "{}", service.log());
    let log = service.log();
    assert!(log.contains("drained"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_and_no_token() {
    let (idp, database, home) = setup().await;
    let config = home.path("server.toml");
    std::fs::write(
        &config,
        config_text(
            idp.issuer(),
            &database,
            "log_format = \"json\"",
            "\"FullDelegation\"",
        ),
    )
    .unwrap();
    let mut service = Service::start(&home, &config).await;
    let admin = admin_token(&idp).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", service.api);
    let me = http
        .get(format!("{base}/v1/whoami"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let token = http
        .post(format!("{base}/v1/getToken"))
        .bearer_auth(&admin)
        .json(&json!({"group": "pilots", "audience": API}))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.unwrap();
    let access_token = token["access_token"].as_str().unwrap().to_owned();
    let refused = http.get(format!("{base}/v1/whoami")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    service.wait_for_lines("sciauth_server::access", 3).await;
    service.signal("TERM");
    assert_eq!(service.exit_code().await, Some(0), "{}", service.log());

    let log = service.log();
    assert!(!log.contains(&admin), "the caller's token is in the log");
    assert!(
        !log.contains(&access_token),
        "the handed-out token is in the log"
    );
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|line| line["target"] == "sciauth_server::access")
        .collect();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let (whoami, get_token, unauthenticated) = (requests[0], requests[1], requests[2]);
    assert_eq!(whoami["caller"], "admin", "{whoami}");
    assert_eq!(whoami["group"], "admins", "{whoami}");
    assert_eq!(whoami["method"], "GET", "{whoami}");
    assert_eq!(whoami["route"], "/v1/whoami", "{whoami}");
    assert_eq!(whoami["status"], 200, "{whoami}");
    assert!(whoami["latency_ms"].as_f64().is_some(), "{whoami}");
    assert_eq!(whoami["level"], "INFO", "{whoami}");
    assert!(whoami["timestamp"].is_string(), "{whoami}");
    assert_eq!(get_token["route"], "/v1/getToken", "{get_token}");
    assert_eq!(get_token["method"], "POST", "{get_token}");
    assert_eq!(get_token["status"], 200, "{get_token}");
    assert_eq!(unauthenticated["caller"], "-", "{unauthenticated}");
    assert_eq!(unauthenticated["status"], 401, "{unauthenticated}");
}
