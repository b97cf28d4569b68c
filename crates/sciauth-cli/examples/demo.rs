//! The end-to-end demo behind `cargo xtask demo`: the real identity provider of the tests
//! (`tests/idp`, oidc-provider) on loopback, and the real `sciauth` binary driven through a
//! whole session as a user would run it: device login, token, a forced refresh, token
//! exchange, `inspect --verify`, a robot account (client credentials, no login), an SSH-key
//! JWT, a request to an API that verifies the token, list, logout.
//!
//! Everything runs in a temporary HOME with its own XDG directories, so the user's own
//! configuration and tokens are never touched. Every step checks its result (at the
//! provider's counters where it can) and the demo exits non-zero at the first failure.
//!
//! Run: `cargo xtask demo`, or `cargo run -p sciauth-cli --example demo -- [--sciauth PATH]`
//! after building the binary (by default it is found next to this example's directory).

use sciauth_test_support::idp;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use sciauth::tokens::Issuer;
use sciauth::transport::Transport;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::idp::Idp;

/// The API the demo's tokens are for (a resource of the test provider; its tokens are JWTs).
const API: &str = "https://api.example.test";
/// The other API, for the token exchange.
const OTHER: &str = "https://other.example.test";
/// A confidential native client of the test provider that may exchange tokens.
const CLIENT_ID: &str = "code-secret";
const CLIENT_SECRET: &str = "code-secret-secret";
/// The user who approves the device login.
const USER: &str = "alice";
/// A robot (service) account of the test provider: client credentials with a secret.
const ROBOT_ID: &str = "cc-basic";
const ROBOT_SECRET: &str = "cc-basic-secret";

type Step = Result<(), String>;

/// How many checks passed, for the closing line.
static PASSED: AtomicUsize = AtomicUsize::new(0);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("\n\u{2714} every step of the demo passed");
            println!("demo: {} passed, 0 failed", PASSED.load(Ordering::Relaxed));
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("\n\u{2718} the demo failed: {error}");
            println!("demo: {} passed, 1 failed", PASSED.load(Ordering::Relaxed));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Step {
    let sciauth = sciauth_binary()?;
    let home = tempfile::tempdir().map_err(|e| format!("cannot make a temporary home: {e}"))?;
    let demo = Demo::new(sciauth, home.path())?;
    println!(
        "sciauth demo: the real `sciauth` binary against a real identity provider on 127.0.0.1"
    );
    println!("binary: {}", demo.sciauth.display());
    println!(
        "home:   {} (your own configuration and tokens are not touched)",
        home.path().display()
    );

    heading("Starting the identity provider (oidc-provider, tests/idp)");
    let idp = Idp::start().await;
    println!("issuer: {}", idp.issuer());
    let api = Api::start(idp.issuer()).await?;
    println!("API that checks tokens: {} (in this demo process)", api.url);
    let config = demo.write_config(idp.issuer())?;
    println!("profile written to {}:\n", config.display());
    print_indented(&std::fs::read_to_string(&config).unwrap_or_default());

    heading("1. Log in with the device flow");
    demo.device_login(&idp).await?;
    if std::env::args().any(|a| a == "--bench") {
        return bench(&demo, idp).await;
    }

    heading("2. Print a valid token");
    let token = demo.ok(&["token"]).await?;
    show_token(&token);
    let login_claims = decode_claims(&token)?;
    expect(login_claims["aud"] == API, "the token is for the API")?;
    expect(login_claims["sub"] == USER, "the token is the user's")?;
    let refreshes = count(&idp, "refresh_token").await;
    note(&format!(
        "refresh grants at the provider so far: {refreshes}"
    ));
    expect(refreshes == 0, "a cached token costs no refresh")?;
    let again = demo.ok(&["token"]).await?;
    expect(again == token, "asking again gives the same cached token")?;

    heading("3. Force a refresh: the token must stay valid for an hour (it lives 10 minutes)");
    let out = demo.run(&["token", "--min-valid", "3600"]).await?;
    demo.show(&["token", "--min-valid", "3600"], &out);
    expect(
        out.status.success(),
        "sciauth token --min-valid 3600 succeeds",
    )?;
    let refreshed = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    let refreshes = count(&idp, "refresh_token").await;
    note(&format!(
        "refresh grants at the provider now: {refreshes}; the token changed: {}",
        refreshed != token
    ));
    expect(
        refreshes == 1 && refreshed != token,
        "one refresh, a new token",
    )?;

    heading("4. Exchange it for a narrower token: another API, one scope (RFC 8693)");
    let exchanged = demo
        .ok(&["exchange", "--audience", OTHER, "--scope", "other:read"])
        .await?;
    show_token(&exchanged);
    let claims = decode_claims(&exchanged)?;
    expect(
        claims["aud"] == "other-api",
        "the new token is for the other API",
    )?;
    expect(claims["scope"] == "other:read", "with one scope only")?;
    let exchanges = count(&idp, "urn:ietf:params:oauth:grant-type:token-exchange").await;
    note(&format!("token exchanges at the provider: {exchanges}"));
    expect(exchanges == 1, "one exchange at the provider")?;

    heading("5. Look inside the token and verify it against the provider's keys (inspect)");
    let inspected = demo.ok(&["inspect", "--verify"]).await?;
    expect(
        inspected.contains("verified: signed by"),
        "the signature, issuer, audience and times verify",
    )?;
    expect(
        inspected.contains(USER) && inspected.contains("left of 10m 0s"),
        "the claims, and the lifetime left, are shown",
    )?;

    heading("6. A robot account: no login, the client's own token (client credentials)");
    let out = demo.run(&["--profile", "robot", "login"]).await?;
    demo.show(&["--profile", "robot", "login"], &out);
    expect(out.status.success(), "login says a robot needs none")?;
    let robot = demo
        .ok(&["--profile", "robot", "token", "--scope", "api:read"])
        .await?;
    show_token(&robot);
    let robot_claims = decode_claims(&robot)?;
    expect(
        robot_claims["sub"] == ROBOT_ID && robot_claims["aud"] == API,
        "a token of the client itself, for the API",
    )?;
    let again = demo
        .ok(&["--profile", "robot", "token", "--scope", "api:read"])
        .await?;
    let grants = count(&idp, "client_credentials").await;
    note(&format!(
        "client credentials grants at the provider: {grants}"
    ));
    expect(
        again == robot && grants == 1,
        "the second time it comes from the store",
    )?;

    heading("7. Sign a UNICORE JWT with a freshly generated SSH key");
    let key = demo.home.join("id_demo");
    let status = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "sciauth-demo", "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("cannot run ssh-keygen (package openssh-client): {e}"))?;
    println!("$ ssh-keygen -t ed25519 -N '' -f {}", key.display());
    expect(status.success(), "ssh-keygen makes a key")?;
    let key_arg = key.to_string_lossy().into_owned();
    let jwt = demo
        .ok(&[
            "jwt",
            "--identity",
            &key_arg,
            "--user",
            "demouser",
            "--lifetime",
            "300",
        ])
        .await?;
    show_token(&jwt);
    let jwt_claims = decode_claims(&jwt)?;
    expect(
        jwt_claims["sub"] == "demouser" && jwt_claims["iss"] == "demouser",
        "the JWT names the user",
    )?;

    heading(
        "8. Call an API that verifies the token (JWKS signature, issuer, audience, expiry, scope)",
    );
    let url = format!("{}/api/whoami", api.url);
    let answer = demo.ok(&["request", &url]).await?;
    let answer: serde_json::Value = serde_json::from_str(answer.trim())
        .map_err(|e| format!("the API's answer is not JSON: {e}"))?;
    expect(
        answer["sub"] == USER,
        "the API saw the user's verified token",
    )?;
    note("and with a token that is not the provider's:");
    let out = demo
        .command(&["request", "--discovery", &url])
        .env("BEARER_TOKEN", "not-a-token-from-the-provider")
        .output()
        .await
        .map_err(|e| format!("cannot run sciauth: {e}"))?;
    demo.show(&["request", "--discovery", &url], &out);
    expect(
        out.status.code() == Some(5),
        "the API refuses it, exit code 5",
    )?;

    heading("9. List profiles and tokens (never the tokens themselves)");
    let table = demo.ok(&["list"]).await?;
    for secret in [&token, &refreshed] {
        expect(!table.contains(secret.as_str()), "no token in the listing")?;
    }
    expect(table.contains("demo"), "the profile is listed")?;

    heading("10. Log out: revoke at the provider, delete here");
    let stored = demo.refresh_token()?;
    let out = demo.run(&["logout"]).await?;
    demo.show(&["logout"], &out);
    expect(out.status.success(), "logout succeeds")?;
    let revocations = idp.counts().await["revocation"].as_u64().unwrap_or(0);
    note(&format!("revocations at the provider: {revocations}"));
    expect(revocations == 1, "the refresh token was revoked")?;

    heading("11. The provider now refuses the old refresh token, and sciauth asks for a login");
    let refused = idp::client()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", stored.as_str()),
        ])
        .send()
        .await
        .map_err(|e| format!("the provider does not answer: {e}"))?;
    let status = refused.status();
    let body = refused.text().await.unwrap_or_default();
    println!(
        "POST {}/token grant_type=refresh_token (the old one) -> {status} {body}",
        idp.issuer()
    );
    expect(
        status == 400 && body.contains("invalid_grant"),
        "the provider refuses it",
    )?;
    let out = demo.run(&["token"]).await?;
    demo.show(&["token"], &out);
    expect(
        out.status.code() == Some(4),
        "sciauth token says login required, exit code 4",
    )?;
    idp.stop().await;
    Ok(())
}

/// `--bench` (`cargo xtask bench-cli`): whole-process times of `sciauth token` after the
/// login, in one hyperfine invocation per round (3 rounds), beside `/bin/true`: the cached
/// token, a scoped token answered from the store, and a refresh at the provider on every run
/// (`--min-valid` beyond the token's life, counted at the provider). Medians and their ratio
/// to `/bin/true` are printed per round.
async fn bench(demo: &Demo, idp: Idp) -> Step {
    let sciauth = demo.sciauth.to_string_lossy().into_owned();
    // The same client on an encrypted store, logged in on its own (a grant of its own, so
    // that the two profiles' refreshes do not rotate each other's refresh token), its key
    // left in the kernel keyring by the login.
    demo.add_sealed_profile()?;
    demo.device_login_with(
        &idp,
        &["--profile", "sealed"],
        &[("DEMO_STORE_PASSPHRASE", "demo bench passphrase")],
    )
    .await?;
    let named = [
        ("/bin/true", "/bin/true".to_owned()),
        ("sciauth token (cached)", format!("{sciauth} token")),
        (
            "sciauth token --scope api:read (cached)",
            format!("{sciauth} token --scope api:read"),
        ),
        (
            "sciauth token --min-valid 3600 (refresh)",
            format!("{sciauth} token --min-valid 3600"),
        ),
        (
            "sciauth token, encrypted (cached)",
            format!("{sciauth} --profile sealed token"),
        ),
        (
            "sciauth token --min-valid 3600, encrypted",
            format!("{sciauth} --profile sealed token --min-valid 3600"),
        ),
    ];
    let runs = 300;
    for round in 1..=3 {
        heading(&format!(
            "Benchmark round {round} of 3: {runs} runs of each, one hyperfine"
        ));
        idp.reset_counts().await;
        let commands: Vec<&str> = named.iter().map(|(_, c)| c.as_str()).collect();
        let medians = demo
            .hyperfine(&["--runs", &runs.to_string(), "--warmup", "20"], &commands)
            .await?;
        let refreshes = count(&idp, "refresh_token").await;
        expect(
            refreshes >= 2 * (runs + 20),
            "every run of the refresh commands refreshed at the provider",
        )?;
        let baseline = medians[0];
        for ((name, _), median) in named.iter().zip(&medians) {
            println!(
                "  {name:<44} median {:>7.3} ms  ({:.2}x /bin/true)",
                median * 1e3,
                median / baseline
            );
        }
    }
    idp.stop().await;
    Ok(())
}

/// The sciauth binary: `--sciauth PATH`, else next to this example's directory
/// (`target/<profile>/sciauth` beside `target/<profile>/examples/demo`).
fn sciauth_binary() -> Result<PathBuf, String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--sciauth" {
            return args
                .next()
                .map(PathBuf::from)
                .ok_or("--sciauth needs a path".into());
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("sciauth"))
        .ok_or("cannot find the sciauth binary; pass --sciauth PATH")?;
    if !path.exists() {
        return Err(format!(
            "{} does not exist: build it first (cargo build -p sciauth-cli) or pass --sciauth PATH",
            path.display()
        ));
    }
    Ok(path)
}

struct Demo {
    sciauth: PathBuf,
    home: PathBuf,
}

impl Demo {
    fn new(sciauth: PathBuf, home: &Path) -> Result<Self, String> {
        for dir in ["config/sciauth", "data", "cache", "runtime"] {
            std::fs::create_dir_all(home.join(dir)).map_err(|e| e.to_string())?;
        }
        Ok(Self {
            sciauth,
            home: home.to_owned(),
        })
    }

    /// The profiles: the confidential client, its secret in a 0600 file, tokens for the
    /// API; and a robot account.
    fn write_config(&self, issuer: &str) -> Result<PathBuf, String> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let dir = self.home.join("config/sciauth");
        for (name, secret) in [
            ("demo.secret", CLIENT_SECRET),
            ("robot.secret", ROBOT_SECRET),
        ] {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(dir.join(name))
                .map_err(|e| e.to_string())?;
            std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "default_profile = \"demo\"\n\n[profiles.demo]\nissuer = \"{issuer}\"\n\
                 client_id = \"{CLIENT_ID}\"\nclient_secret_file = \"demo.secret\"   # never \
                 inline\nscopes = [\"openid\", \"offline_access\", \"api:read\", \
                 \"api:write\"]\naudience = \"{API}\"\naudience_parameter = \"resource\"   # \
                 RFC 8707, as this provider wants\n\n[profiles.robot]   # a service account: \
                 no login\nissuer = \"{issuer}\"\nclient_id = \"{ROBOT_ID}\"\ngrant = \
                 \"client_credentials\"\nclient_secret_file = \"robot.secret\"\naudience = \
                 \"{API}\"\naudience_parameter = \"resource\"\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// `--bench`: a profile `sealed`, the demo's client on an encrypted store of its own.
    fn add_sealed_profile(&self) -> Step {
        let config = self.home.join("config/sciauth/config.toml");
        let mut text = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
        let demo = text
            .split("[profiles.demo]")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .ok_or("no demo profile")?
            .to_owned();
        text.push_str(&format!(
            "\n[profiles.sealed]{demo}\nstore_dir = \"{}\"\nencrypted = true\n\
             passphrase_env = \"DEMO_STORE_PASSPHRASE\"\nkey_cache_minutes = 60\n",
            self.home.join("sealed-tokens").display()
        ));
        std::fs::write(&config, text).map_err(|e| e.to_string())
    }

    /// The command, in the demo's home and with none of the caller's sciauth, bearer-token or
    /// proxy variables.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.sciauth);
        command.args(args).stdin(Stdio::null()).kill_on_drop(true);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("SCIAUTH_")
                || name.starts_with("BEARER_TOKEN")
                || name.starts_with("XDG_")
                || name.starts_with("SSH_")
                || name == "RUST_LOG"
                || name.to_ascii_lowercase().ends_with("_proxy")
            {
                command.env_remove(&*name);
            }
        }
        command
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env("XDG_DATA_HOME", self.home.join("data"))
            .env("XDG_CACHE_HOME", self.home.join("cache"))
            .env("XDG_RUNTIME_DIR", self.home.join("runtime"));
        command
    }

    async fn run(&self, args: &[&str]) -> Result<Output, String> {
        self.command(args)
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", self.sciauth.display()))
    }

    /// Prints the command line and what it printed.
    fn show(&self, args: &[&str], out: &Output) {
        println!("$ sciauth {}", args.join(" "));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in stdout.lines() {
            println!("{}", shorten(line));
        }
        print!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            println!("(exit code {})", out.status.code().unwrap_or(-1));
        }
    }

    /// Runs, shows, and expects success; returns stdout without the final newline.
    async fn ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self.run(args).await?;
        self.show(args, &out);
        if !out.status.success() {
            return Err(format!(
                "sciauth {} failed ({})",
                args.join(" "),
                out.status
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    }

    /// Runs hyperfine (no shell, `-N`) on `command` in the demo's environment; returns the
    /// median in seconds.
    /// Runs hyperfine on `commands` in one invocation; their medians, in seconds.
    async fn hyperfine(&self, options: &[&str], commands: &[&str]) -> Result<Vec<f64>, String> {
        let json = self.home.join("hyperfine.json");
        println!(
            "$ hyperfine -N {} {}",
            options.join(" "),
            commands
                .iter()
                .map(|c| format!("'{c}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut run = tokio::process::Command::new("hyperfine");
        run.args(["-N", "--style", "basic"]).args(options);
        run.arg("--export-json").arg(&json).args(commands);
        // The environment `sciauth` gets in this demo, for another program.
        for (name, value) in self.command(&[]).as_std().get_envs() {
            match value {
                Some(value) => run.env(name, value),
                None => run.env_remove(name),
            };
        }
        let ok = run
            .stdin(Stdio::null())
            .status()
            .await
            .map_err(|e| format!("cannot run hyperfine (apt-get install hyperfine): {e}"))?;
        expect(ok.success(), "hyperfine ran")?;
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&json).map_err(|e| format!("{}: {e}", json.display()))?,
        )
        .map_err(|e| e.to_string())?;
        report["results"]
            .as_array()
            .map(|results| {
                results
                    .iter()
                    .filter_map(|r| r["median"].as_f64())
                    .collect()
            })
            .filter(|medians: &Vec<f64>| medians.len() == commands.len())
            .ok_or_else(|| "hyperfine reported no medians".to_owned())
    }

    /// `sciauth login --device`, showing what it prints as it prints it, and approving the
    /// code through the provider's own device pages as the user would in a browser.
    async fn device_login(&self, idp: &Idp) -> Step {
        self.device_login_with(idp, &[], &[]).await
    }

    /// [`device_login`](Self::device_login) with `options` before the command and `env`.
    async fn device_login_with(&self, idp: &Idp, options: &[&str], env: &[(&str, &str)]) -> Step {
        let args: Vec<&str> = options
            .iter()
            .copied()
            .chain(["login", "--device"])
            .collect();
        println!("$ sciauth {}", args.join(" "));
        let mut command = self.command(&args);
        command.envs(env.iter().copied());
        let mut child = command
            .stderr(Stdio::piped())
            .stdout(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run sciauth: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut approved = false;
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{line}");
            if !approved && let Some((_, code)) = line.split_once("user_code=") {
                let code = code.trim().trim_end_matches(')').to_owned();
                note(&format!(
                    "approving code {code} as user {USER:?} through the provider's device pages (headless browser)"
                ));
                idp::device_approve(idp.issuer(), &code, Some(USER)).await;
                approved = true;
            }
        }
        let status = child.wait().await.map_err(|e| e.to_string())?;
        expect(approved, "sciauth showed a device code")?;
        expect(status.success(), "the device login succeeds")?;
        let authorizations = idp.counts().await["device_authorization"]
            .as_u64()
            .unwrap_or(0);
        note(&format!(
            "device authorizations at the provider: {authorizations}"
        ));
        idp.reset_counts().await;
        Ok(())
    }

    /// The refresh token in the demo's store (to show that the provider refuses it after
    /// logout).
    fn refresh_token(&self) -> Result<String, String> {
        let file = self.home.join("data/sciauth/tokens/demo.json");
        let stored: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?,
        )
        .map_err(|e| e.to_string())?;
        stored["grants"][0]["refresh_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "no refresh token stored".to_owned())
    }
}

/// A resource server on 127.0.0.1 that accepts only JWT access tokens the provider signed
/// for the API, with the scope `api:read`.
struct Api {
    url: String,
}

impl Api {
    async fn start(issuer: &str) -> Result<Self, String> {
        let transport = Transport::builder()
            .follow_redirects(false)
            .proxy_from_env(false)
            .build()
            .map_err(|e| e.to_string())?;
        let issuer = Issuer::builder(issuer)
            .transport(transport)
            .build()
            .await
            .map_err(|e| format!("the API cannot discover the provider: {e}"))?;
        let issuer = Arc::new(issuer);
        let app = axum::Router::new().route(
            "/api/whoami",
            axum::routing::get(move |headers: HeaderMap| {
                let issuer = issuer.clone();
                async move { whoami(&issuer, &headers).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url })
    }
}

async fn whoami(issuer: &Issuer, headers: &HeaderMap) -> (StatusCode, String) {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"error\":\"no bearer token\"}".to_owned(),
        );
    };
    match issuer.validate_access_token(token, API).await {
        Ok(claims) if claims.scopes().contains("api:read") => (
            StatusCode::OK,
            serde_json::json!({
                "sub": claims.subject(),
                "client_id": claims.client_id(),
                "scope": claims.scopes().to_string(),
            })
            .to_string(),
        ),
        Ok(_) => (
            StatusCode::FORBIDDEN,
            "{\"error\":\"insufficient_scope\"}".to_owned(),
        ),
        Err(error) => (
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "invalid_token", "error_description": error.to_string()})
                .to_string(),
        ),
    }
}

fn heading(text: &str) {
    println!("\n\u{2501}\u{2501} {text}");
}

fn note(text: &str) {
    println!("  [demo] {text}");
}

fn print_indented(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

fn expect(ok: bool, what: &str) -> Step {
    if ok {
        PASSED.fetch_add(1, Ordering::Relaxed);
        println!("  \u{2713} {what}");
        Ok(())
    } else {
        Err(format!("expected: {what}"))
    }
}

/// Long tokens are shortened on screen (the command printed them whole).
fn shorten(line: &str) -> String {
    if line.len() > 100 && !line.contains(' ') {
        format!(
            "{}…  ({} characters; shortened here)",
            line.chars().take(60).collect::<String>(),
            line.len()
        )
    } else {
        line.to_owned()
    }
}

fn show_token(token: &str) {
    if let Ok(claims) = decode_claims(token) {
        let shown: Vec<String> = ["sub", "aud", "scope", "client_id", "iss", "exp"]
            .iter()
            .filter(|k| !claims[**k].is_null())
            .map(|k| format!("{k}={}", claims[*k]))
            .collect();
        note(&format!("decoded: {}", shown.join(" ")));
    }
}

fn decode_claims(jwt: &str) -> Result<serde_json::Value, String> {
    let payload = jwt.trim().split('.').nth(1).ok_or("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

async fn count(idp: &Idp, grant: &str) -> u64 {
    idp.counts().await["requests"][grant].as_u64().unwrap_or(0)
}
