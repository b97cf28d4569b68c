//! What an operator watches: the metrics as requests flow, readiness as PostgreSQL goes and
//! comes back, and a reload that keeps the connections.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{API, Fixture, call, http, postgres};

/// How long a test waits for something the service must do by itself: far beyond what it
/// takes, far short of forever.
const BOUND: Duration = Duration::from_secs(30);

/// The value of the sample `name{labels}` (labels as the text format writes them, in order),
/// or 0 if there is none yet.
fn sample(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name_and_labels).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

async fn scrape(http: &reqwest::Client, metrics_base: &str) -> String {
    let response = http
        .get(format!("{metrics_base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_change_as_requests_flow() {
    let fixture = Fixture::start().await;
    let replica = fixture
        .monitored_replica(fixture.config_with(
            "[groups.operators]\nproperties = [\"ServiceAdministrator\"]\n\
             [users.ops]\ngroups = [\"operators\"]\nsubjects = [\"ops\"]\n",
        ))
        .await;
    let http = http();
    let (admin, alice) = (fixture.admin().await, fixture.user_caller("alice").await);
    let get_token_ok =
        r#"sciauth_http_requests_total{route="/v1/getToken",method="POST",status="200"}"#;
    let refreshed_ok =
        r#"sciauth_provider_requests_total{provider="idp",grant="refresh_token",outcome="ok"}"#;
    let hits = r#"sciauth_token_cache_lookups_total{result="hit"}"#;
    let misses = r#"sciauth_token_cache_lookups_total{result="miss"}"#;
    let before = scrape(&http, &replica.metrics_base).await;
    assert_eq!(sample(&before, get_token_ok), 0.0, "{before}");
    assert!(before.contains("sciauth_build_info{version="), "{before}");

    // Alice's kept token: its access token already expired, its refresh token good.
    let token = fixture.user_token("alice").await;
    let mut delegated =
        sciauth_service_api::DelegatedToken::from_token(&token, std::time::SystemTime::now());
    delegated.0.insert("expires_in".into(), json!(0));
    let kept = call(
        &http,
        &replica.base,
        "updateToken",
        Some(&alice),
        None,
        json!({"token": delegated, "userID": "alice", "provider": "idp"}),
    )
    .await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    let me = call(
        &http,
        &replica.base,
        "whoami",
        Some(&admin),
        None,
        json!({}),
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.text);

    // Many callers at once for the expired token: one refresh at the provider, the others
    // wait for it; then the cache answers.
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let (http, base, admin) = (http.clone(), replica.base.clone(), admin.clone());
            tokio::spawn(async move {
                call(
                    &http,
                    &base,
                    "getToken",
                    Some(&admin),
                    None,
                    json!({"username": "alice"}),
                )
                .await
            })
        })
        .collect();
    for task in calls {
        let answer = task.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let cached = call(
        &http,
        &replica.base,
        "getToken",
        Some(&admin),
        None,
        json!({"username": "alice"}),
    )
    .await;
    assert_eq!(cached.status, 200, "{}", cached.text);
    let refused = call(&http, &replica.base, "whoami", None, None, json!({})).await;
    assert_eq!(refused.status, 401, "{}", refused.text);

    let after = scrape(&http, &replica.metrics_base).await;
    assert_eq!(sample(&after, get_token_ok), 41.0, "{after}");
    assert_eq!(
        sample(
            &after,
            r#"sciauth_http_requests_total{route="/v1/whoami",method="POST",status="401"}"#
        ),
        1.0,
        "{after}"
    );
    assert_eq!(sample(&after, refreshed_ok), 1.0, "{after}");
    assert_eq!(fixture.requests("refresh_token").await, 1);
    assert!(sample(&after, misses) >= 1.0, "{after}");
    assert!(sample(&after, hits) >= 1.0, "{after}");
    assert_eq!(
        sample(&after, hits) + sample(&after, misses),
        41.0,
        "{after}"
    );
    assert!(
        sample(&after, "sciauth_refresh_flight_wait_seconds_count") >= 1.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            r#"sciauth_http_request_duration_seconds_count{route="/v1/getToken"}"#
        ) == 41.0,
        "{after}"
    );
    for operation in ["get", "put", "lock", "release"] {
        let series =
            format!(r#"sciauth_store_operation_duration_seconds_count{{operation="{operation}"}}"#);
        assert!(sample(&after, &series) >= 1.0, "{series}: {after}");
    }
    assert!(sample(&after, "sciauth_connections_open") >= 1.0, "{after}");
    assert_eq!(
        sample(&after, "sciauth_http_requests_in_flight"),
        0.0,
        "{after}"
    );
    // Nothing secret, no caller names in the labels.
    for secret in crate::secrets(&token) {
        assert!(!after.contains(&secret));
    }
    assert!(
        !after.contains(&admin) && !after.contains("alice"),
        "{after}"
    );

    // On the service's own listener, /metrics is for ServiceAdministrator only.
    let metrics_here = |bearer: Option<String>| {
        let (http, url) = (http.clone(), format!("{}/metrics", replica.base));
        async move {
            let mut request = http.get(url);
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(metrics_here(None).await.0, 401);
    assert_eq!(metrics_here(Some(admin.clone())).await.0, 403);
    let ops = fixture.user_caller("ops").await;
    let (status, text) = metrics_here(Some(ops)).await;
    assert_eq!(status, 200, "{text}");
    assert!(sample(&text, get_token_ok) >= 41.0, "{text}");
    assert_eq!(replica.handle.metrics().lines().next(), text.lines().next());
}

async fn readyz(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = http.get(format!("{base}/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls `/readyz` until it answers `status`; its last answer.
async fn readyz_until(http: &reqwest::Client, base: &str, status: u16) -> Value {
    tokio::time::timeout(BOUND, async {
        loop {
            let (now, body) = readyz(http, base).await;
            if now == status {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("/readyz never answered {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_postgresql_is_down_and_recovers() {
    // PostgreSQL of this test alone: it is stopped and started again.
    let cluster = postgres::Cluster::dedicated();
    let mut fixture = Fixture::start().await;
    fixture.database = cluster.database().await;
    let replica = fixture.monitored_replica(fixture.config()).await;
    let http = http();

    // Up: the store answers, the provider's and the callers' issuer's discovery are loaded
    // (the first check loads them).
    let ready = readyz_until(&http, &replica.base, 200).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["store"], "ok", "{ready}");
    assert_eq!(ready["providers"]["idp"], "loaded", "{ready}");
    assert_eq!(ready["callers_issuer"], "loaded", "{ready}");
    let admin = fixture.admin().await;
    assert_eq!(
        call(
            &http,
            &replica.base,
            "whoami",
            Some(&admin),
            None,
            json!({})
        )
        .await
        .status,
        200
    );

    let cluster = std::sync::Arc::new(cluster);
    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    let (status, down) = readyz(&http, &replica.base).await;
    assert_eq!(status, 503, "{down}");
    assert_eq!(down["ready"], false, "{down}");
    assert_eq!(down["store"], "unreachable", "{down}");
    assert_eq!(down["providers"]["idp"], "loaded", "{down}");
    // The same on the metrics listener; /healthz is up all the while; and nothing secret.
    let (status, _) = readyz(&http, &replica.metrics_base).await;
    assert_eq!(status, 503);
    let health = http
        .get(format!("{}/healthz", replica.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(!down.to_string().contains("postgres"), "{down}");

    let starting = cluster.clone();
    tokio::task::spawn_blocking(move || starting.start_again())
        .await
        .unwrap();
    let back = readyz_until(&http, &replica.base, 200).await;
    assert_eq!(back["store"], "ok", "{back}");
    // And it serves from the database again.
    let alice = fixture.user_caller("alice").await;
    let infos = call(
        &http,
        &replica.base,
        "getUserTokensInfo",
        Some(&alice),
        None,
        json!({}),
    )
    .await;
    assert_eq!(infos.status, 200, "{}", infos.text);

    // A provider whose discovery cannot be loaded keeps a replica unready, and says which.
    let unreachable =
        fixture
            .monitored_replica(fixture.config_with(
                "[providers.down]\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"x\"\n",
            ))
            .await;
    let (status, body) = readyz(&http, &unreachable.base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["providers"]["down"], "not_loaded", "{body}");
    assert_eq!(body["providers"]["idp"], "loaded", "{body}");
    assert_eq!(body["store"], "ok", "{body}");
}

/// Sends one HTTP/1.1 request on `stream` (kept alive) and reads its answer's JSON body.
async fn over(stream: &mut tokio::net::TcpStream, request: &str) -> (String, Value) {
    stream.write_all(request.as_bytes()).await.unwrap();
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
                let body = serde_json::from_slice(&received[end + 4..end + 4 + length])
                    .unwrap_or(Value::Null);
                return (status, body);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_a_new_configuration_on_open_connections_or_is_refused_whole() {
    let fixture = Fixture::start().await;
    let replica = fixture.monitored_replica(fixture.config()).await;
    let carol = fixture.user_caller("carol").await;
    let address = replica.base.trim_start_matches("http://").to_owned();
    let whoami = format!(
        "GET /v1/whoami HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {carol}\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (status, me) = over(&mut stream, &whoami).await;
    assert!(status.contains(" 200 "), "{status} {me}");
    assert_eq!(me["properties"], json!(["NormalUser"]));

    // carol's group gets LimitedDelegation: the open connection's next request sees it.
    let text = crate::config_text(fixture.idp.issuer(), &fixture.database).replace(
        "properties = [\"NormalUser\"]",
        "properties = [\"NormalUser\", \"LimitedDelegation\"]",
    );
    let reloaded = sciauth_server::Config::from_toml(&text, fixture.dir.path()).unwrap();
    replica.handle.reload(reloaded).unwrap();
    let (status, me) = over(&mut stream, &whoami).await;
    assert!(status.contains(" 200 "), "{status} {me}");
    assert_eq!(me["properties"], json!(["LimitedDelegation", "NormalUser"]));
    let http = http();
    let pilot_token = call(
        &http,
        &replica.base,
        "getToken",
        Some(&carol),
        None,
        json!({"group": "pilots", "audience": API}),
    )
    .await;
    assert_eq!(pilot_token.status, 200, "{}", pilot_token.text);

    // A configuration that changes what only a restart applies is refused whole: the group
    // change in it is not applied either.
    let moved = crate::config_text(fixture.idp.issuer(), &fixture.database).replace(
        "max_body_bytes = 4096",
        "max_body_bytes = 4096\nlisten = \"127.0.0.1:1\"",
    );
    let error = replica
        .handle
        .reload(sciauth_server::Config::from_toml(&moved, fixture.dir.path()).unwrap())
        .unwrap_err();
    assert!(error.to_string().contains("server.listen"), "{error}");
    let (_, me) = over(&mut stream, &whoami).await;
    assert_eq!(me["properties"], json!(["LimitedDelegation", "NormalUser"]));
    // A configuration built from no file cannot be read again.
    assert!(replica.handle.reload_from_file().is_err());
    let metrics = replica.handle.metrics();
    assert_eq!(
        sample(
            &metrics,
            r#"sciauth_config_reloads_total{result="applied"}"#
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"sciauth_config_reloads_total{result="refused"}"#
        ),
        2.0,
        "{metrics}"
    );
}
