//! The token service against real PostgreSQL (one cluster for this test binary, a database
//! per test) and the real test identity provider (`tests/idp`, oidc-provider). Every call to
//! the provider is counted there (`/__test/counts`), never in our code.

use sciauth_test_support::idp;
use sciauth_test_support::logs;
use sciauth_test_support::postgres;

mod authorization;
mod client;
mod input;
mod operations;
mod replicas;
mod store;
mod tokens;

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sciauth_server::{Config, Server};
use sciauth_service_api::DelegatedToken;
use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::url::Url;
use sciauth_tokens::{AudienceParameter, CallbackMode, ClientAuth, Issuer, OAuthClient, Token};
use serde_json::{Value, json};

use crate::idp::Idp;
use crate::logs::logs;

/// The resource server whose tokens are JWTs with `aud` = this URL; also the audience the
/// service accepts callers' tokens for.
const API: &str = "https://api.example.test";

/// The service's client at the provider: confidential, with client credentials, code and
/// refresh.
const CLIENT: &str = "code-secret";
const CLIENT_SECRET: &str = "code-secret-secret";

/// The configuration of the tests' service: users and groups for every delegation rule.
fn config_text(issuer: &str, database: &str) -> String {
    format!(
        r#"
[server]
max_body_bytes = 4096

[store]
kind = "postgres"
url = "{database}"

[callers]
issuer = "{issuer}"
audience = "{API}"

[providers.idp]
issuer = "{issuer}"
client_id = "{CLIENT}"
client_secret_file = "client-secret"
audience_parameter = "resource"

[vos.test]
provider = "idp"

[groups.admins]
vo = "test"
properties = ["FullDelegation", "ProxyManagement"]

[groups.pilots]
vo = "test"
properties = ["LimitedDelegation"]
scopes = ["api:read"]

[groups.users]
vo = "test"
properties = ["PrivateLimitedDelegation"]
scopes = ["openid"]

[groups.users_noprivate]
vo = "test"

[groups.plain]
vo = "test"
properties = ["NormalUser"]

[users.admin]
groups = ["admins"]
subjects = ["cc-basic"]

[users.pilot]
groups = ["pilots"]
subjects = ["cc-post"]

[users.alice]
groups = ["users", "users_noprivate"]
subjects = ["alice"]
ids = {{ idp = "alice" }}

[users.bob]
groups = ["users"]
subjects = ["bob"]
ids = {{ idp = "bob" }}

[users.carol]
groups = ["plain"]
subjects = ["carol"]
"#
    )
}

/// A provider, a database, and clients to get tokens with.
struct Fixture {
    idp: Idp,
    database: String,
    issuer: Issuer,
    client: OAuthClient,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        Self::start_with(&[]).await
    }

    async fn start_with(env: &[(&str, &str)]) -> Fixture {
        let idp = Idp::start_with(env).await;
        let database = postgres::cluster().database().await;
        let issuer = Issuer::builder(idp.issuer())
            .transport(transport())
            .build()
            .await
            .unwrap();
        let client = OAuthClient::builder(issuer.clone(), CLIENT)
            .auth(ClientAuth::secret_basic(CLIENT_SECRET))
            .audience_parameter(AudienceParameter::Resource)
            .build();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client-secret"), CLIENT_SECRET).unwrap();
        Fixture {
            idp,
            database,
            issuer,
            client,
            dir,
        }
    }

    fn config(&self) -> Config {
        self.config_with("")
    }

    /// The tests' configuration with `extra` TOML (more groups, users) appended.
    fn config_with(&self, extra: &str) -> Config {
        Config::from_toml(
            &format!("{}{extra}", config_text(self.idp.issuer(), &self.database)),
            self.dir.path(),
        )
        .unwrap()
    }

    /// A replica of the service on 127.0.0.1 and a free port; its base URL. It runs until
    /// the test's runtime ends.
    async fn replica(&self) -> String {
        let (base, stop) = self.stoppable_replica().await;
        std::mem::forget(stop);
        base
    }

    /// A replica of the service configured with `extra` TOML; its base URL.
    async fn replica_with(&self, extra: &str) -> String {
        let (base, stop) = self.stoppable_replica_of(self.config_with(extra)).await;
        std::mem::forget(stop);
        base
    }

    /// A replica of the service with its configuration changed by `edit` (a text edit of
    /// the TOML); its base URL. It runs until the test's runtime ends.
    async fn replica_edited(&self, edit: impl FnOnce(String) -> String) -> String {
        let text = edit(config_text(self.idp.issuer(), &self.database));
        let config = Config::from_toml(&text, self.dir.path()).unwrap();
        let (base, stop) = self.stoppable_replica_of(config).await;
        std::mem::forget(stop);
        base
    }

    /// A replica that stops when the sender is used or dropped.
    async fn stoppable_replica(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        self.stoppable_replica_of(self.config()).await
    }

    async fn stoppable_replica_of(
        &self,
        config: Config,
    ) -> (String, tokio::sync::oneshot::Sender<()>) {
        let server = Server::new(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve_with_shutdown(listener, async move {
            let _ = stopped.await;
        }));
        (format!("http://{address}"), stop)
    }

    /// A replica with a separate metrics listener, and a handle on it.
    async fn monitored_replica(&self, config: Config) -> Monitored {
        let server = Server::new(config).await.unwrap();
        let handle = server.handle();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metrics_base = format!("http://{}", metrics.local_addr().unwrap());
        tokio::spawn(server.serve_with_metrics(listener, Some(metrics), std::future::pending()));
        Monitored {
            base,
            metrics_base,
            handle,
        }
    }

    /// A caller's bearer token for the service: client credentials of `client_id` (its `sub`
    /// is the client id).
    async fn service_caller(&self, client_id: &str, secret: &str) -> String {
        let client = OAuthClient::builder(self.issuer.clone(), client_id)
            .auth(ClientAuth::secret_basic(secret.to_owned()))
            .audience_parameter(AudienceParameter::Resource)
            .build();
        let token = client
            .client_credentials()
            .scopes(["api:read"])
            .audience(API)
            .send()
            .await
            .unwrap();
        secrecy::ExposeSecret::expose_secret(token.access_token()).to_owned()
    }

    /// The admin's token (FullDelegation, ProxyManagement).
    async fn admin(&self) -> String {
        self.service_caller("cc-basic", "cc-basic-secret").await
    }

    /// The pilot factory's token (LimitedDelegation).
    async fn pilot(&self) -> String {
        self.service_caller("cc-post", "cc-post-secret").await
    }

    /// A user's bearer token for the service (a JWT for the API, `sub` = the user).
    async fn user_caller(&self, user: &str) -> String {
        let token = self.login(user, Some(API), &["openid", "api:read"]).await;
        secrecy::ExposeSecret::expose_secret(token.access_token()).to_owned()
    }

    /// A user's token to keep in the service: opaque access token, refresh token.
    async fn user_token(&self, user: &str) -> Token {
        self.login(user, None, &["openid", "offline_access"]).await
    }

    /// A headless code login of `user` with the service's client.
    async fn login(&self, user: &str, resource: Option<&str>, scopes: &[&str]) -> Token {
        let mut login = self
            .client
            .code_login()
            .scopes(scopes.iter().copied())
            .prompt("consent")
            .login_hint(user)
            .callback(CallbackMode::Loopback)
            .open_with(headless());
        if let Some(resource) = resource {
            login = login.audience(resource);
        }
        login.run().await.unwrap()
    }

    /// Whether the provider says `access_token` is active.
    async fn active(&self, access_token: &str) -> bool {
        self.client
            .introspect(&secrecy::SecretString::from(access_token.to_owned()), None)
            .await
            .unwrap()
            .active()
    }

    /// How many requests of `grant` reached the provider's token endpoint.
    async fn requests(&self, grant: &str) -> u64 {
        self.idp.counts().await["requests"][grant]
            .as_u64()
            .unwrap_or(0)
    }
}

/// A replica and its metrics listener.
struct Monitored {
    base: String,
    metrics_base: String,
    handle: sciauth_server::ServerHandle,
}

/// A transport that never goes through a proxy: tests reach only 127.0.0.1.
fn transport() -> Transport {
    Transport::builder()
        .follow_redirects(false)
        .proxy_from_env(false)
        .build()
        .unwrap()
}

/// A browser hook that completes the provider's login pages headlessly.
fn headless() -> impl Fn(&Url) -> io::Result<()> + Send + Sync + 'static {
    move |url: &Url| {
        let url = url.to_string();
        tokio::spawn(async move {
            let (status, body) = idp::browser_login(&url).await;
            assert_eq!(status, 200, "{body}");
        });
        Ok(())
    }
}

/// An HTTP client for the service.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

/// What the service answered: status, body as JSON (`Null` if it was not JSON), raw text.
#[derive(Debug)]
struct Answer {
    status: u16,
    json: Value,
    text: String,
}

/// `POST {base}/v1/{method}` with `body`, as the holder of `bearer` acting as `group`.
async fn call(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    bearer: Option<&str>,
    group: Option<&str>,
    body: Value,
) -> Answer {
    let mut request = http.post(format!("{base}/v1/{method}")).json(&body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(group) = group {
        request = request.header("x-sciauth-group", group);
    }
    answer(request.send().await.unwrap()).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let text = response.text().await.unwrap();
    let json = if is_json {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    Answer { status, json, text }
}

/// The updateToken body for `token` of `user`.
fn update_body(token: &Token, user: &str) -> Value {
    json!({
        "token": DelegatedToken::from_token(token, std::time::SystemTime::now()),
        "userID": user,
        "provider": "idp",
    })
}

/// Uploads `token` as `user`'s (by `bearer`); panics unless it is accepted.
async fn update(http: &reqwest::Client, base: &str, bearer: &str, token: &Token, user: &str) {
    let answer = call(
        http,
        base,
        "updateToken",
        Some(bearer),
        None,
        update_body(token, user),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

/// The claims of a JWT, unverified.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The secrets of `token`, to look for where they must not be.
fn secrets(token: &Token) -> Vec<String> {
    use secrecy::ExposeSecret as _;
    let mut all = vec![token.access_token().expose_secret().to_owned()];
    all.extend(token.refresh_token().map(|s| s.expose_secret().to_owned()));
    all.extend(token.id_token().map(|s| s.expose_secret().to_owned()));
    all
}
