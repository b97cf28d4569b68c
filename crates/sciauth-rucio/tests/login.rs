//! Every login method against the real Rucio server, the errors it answers with, failover,
//! and `rucio.cfg` with the environment over it.

use sciauth_test_support::rucio as support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use sciauth_rucio::credentials::{BearerToken, KeySelector, PrivateKey, SshAgent};
use sciauth_rucio::secrecy::{ExposeSecret as _, SecretString};
use sciauth_rucio::{
    AuthMethod, Environment, ErrorKind, OidcTokenSource, RucioClient, RucioClientBuilder,
    RucioConfig,
};
use support::{Agent, Peer, pub_path, refused_url, rsa_key};

/// One server for the tests of this file, shared while any of them runs.
struct Fixture {
    keys: tempfile::TempDir,
    /// Registered for root, OpenSSH format.
    ssh_key: PathBuf,
    /// Registered for root, PEM; the ssh-agent test loads it into an agent.
    agent_key: PathBuf,
    /// Not registered.
    stranger_key: PathBuf,
    peer: Peer,
}

fn fixture() -> Arc<Fixture> {
    static SHARED: Mutex<Weak<Fixture>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(fixture) = shared.upgrade() {
        return fixture;
    }
    let keys = tempfile::tempdir().unwrap();
    let ssh_key = rsa_key(keys.path(), "id_rsa", false);
    let agent_key = rsa_key(keys.path(), "agent_rsa", true);
    let stranger_key = rsa_key(keys.path(), "stranger_rsa", false);
    let peer = Peer::start(&[&pub_path(&ssh_key), &pub_path(&agent_key)], true);
    let fixture = Arc::new(Fixture {
        keys,
        ssh_key,
        agent_key,
        stranger_key,
        peer,
    });
    *shared = Arc::downgrade(&fixture);
    fixture
}

impl Fixture {
    /// A builder for the plain HTTP port, with a cache of its own and no environment.
    fn builder(&self, cache: &tempfile::TempDir) -> RucioClientBuilder {
        RucioClient::builder()
            .environment(Environment::empty())
            .rucio_host(self.peer.url())
            .cache_dir(cache.path())
    }

    /// A builder whose logins go to the TLS front end (x509), trusting the test CA
    /// directory as grid tools trust /etc/grid-security/certificates.
    fn x509_builder(&self, cache: &tempfile::TempDir) -> RucioClientBuilder {
        self.builder(cache)
            .auth_host(self.peer.x509_url())
            .ca_cert(self.peer.path("ca_dir"))
    }

    fn password(&self) -> SecretString {
        SecretString::from(self.peer.text("password"))
    }

    fn userpass(&self) -> AuthMethod {
        AuthMethod::userpass(self.peer.text("username"), self.password())
    }
}

fn cache_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test]
async fn userpass_logs_in_and_caches_a_private_versioned_file() {
    let f = fixture();
    let cache = cache_dir();
    let client = f
        .builder(&cache)
        .account("root")
        .auth(f.userpass())
        .build()
        .unwrap();
    assert_eq!(client.ping().await.unwrap(), f.peer.text("version"));
    assert_eq!(client.whoami().await.unwrap().account, "root");
    let me = client.whoami().await.unwrap();
    assert_eq!(me.account_type.as_deref(), Some("SERVICE"));
    assert_eq!(client.session().login_count(), 1);

    let token = client.token().await.unwrap();
    assert!(token.expose_secret().starts_with("root-rucio-test-"));
    let info = client.info();
    assert_eq!(info.account.as_deref(), Some("root"));
    assert_eq!(info.auth_type, "userpass");
    assert!(info.expires_at.is_some());

    let file = client.session().cache_file().unwrap().to_owned();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mode = std::fs::metadata(cache.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    let cached: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(cached["version"], 1);
    assert_eq!(cached["token"], token.expose_secret());
    assert_eq!(cached["account"], "root");
    assert_eq!(cached["auth_type"], "userpass");

    // A second client (another process, say) takes the cached token: no login.
    let again = f
        .builder(&cache)
        .account("root")
        .auth(f.userpass())
        .build()
        .unwrap();
    assert_eq!(again.info().expires_at, None);
    assert!(again.session().load_cached());
    assert_eq!(again.info().expires_at, info.expires_at);
    assert_eq!(again.whoami().await.unwrap().account, "root");
    assert_eq!(again.session().login_count(), 0);
}

#[tokio::test]
async fn ssh_key_file_logs_in() {
    let f = fixture();
    let cache = cache_dir();
    let client = f
        .builder(&cache)
        .account("root")
        .auth(AuthMethod::ssh_key_file(&f.ssh_key, None).unwrap())
        .build()
        .unwrap();
    assert_eq!(client.whoami().await.unwrap().account, "root");
    assert!(
        client
            .token()
            .await
            .unwrap()
            .expose_secret()
            .starts_with("root-ssh:pubkey-")
    );
}

#[tokio::test]
async fn ssh_key_in_a_real_agent_logs_in() {
    let f = fixture();
    let agent = Agent::start(f.keys.path());
    agent.add(&f.agent_key);
    let selector = KeySelector::public_key_file(pub_path(&f.agent_key)).unwrap();
    let key = SshAgent::at(&agent.socket).find(&selector).await.unwrap();
    let cache = cache_dir();
    let client = f
        .builder(&cache)
        .account("root")
        .auth(AuthMethod::ssh(key))
        .build()
        .unwrap();
    assert_eq!(client.whoami().await.unwrap().account, "root");
}

#[tokio::test]
async fn x509_client_certificate_logs_in() {
    let f = fixture();
    let cache = cache_dir();
    let client = f
        .x509_builder(&cache)
        .auth(AuthMethod::x509(
            f.peer.path("client_cert"),
            f.peer.path("client_key"),
        ))
        .build()
        .unwrap();
    assert_eq!(client.whoami().await.unwrap().account, "root");
    assert_eq!(client.info().account.as_deref(), Some("root"));
}

#[tokio::test]
async fn x509_proxy_logs_in() {
    let f = fixture();
    let cache = cache_dir();
    let client = f
        .x509_builder(&cache)
        .auth(AuthMethod::x509_proxy(f.peer.path("proxy")))
        .build()
        .unwrap();
    assert_eq!(client.whoami().await.unwrap().account, "root");
}

#[tokio::test]
async fn oidc_sends_the_bearer_token_as_the_rucio_token() {
    let f = fixture();
    // No identity provider runs here; a token the server knows stands in for an access
    // token: what matters is that it travels in X-Rucio-Auth-Token.
    let cache = cache_dir();
    let issuer = f
        .builder(&cache)
        .account("root")
        .auth(f.userpass())
        .build()
        .unwrap();
    let token = issuer.token().await.unwrap();

    let env = Environment::empty().var("BEARER_TOKEN", token.expose_secret());
    let mut config = RucioConfig::default();
    config.auth_type = Some("oidc".into());
    let discovered = RucioClient::builder()
        .environment(env)
        .config(config)
        .rucio_host(f.peer.url())
        .build()
        .unwrap();
    assert_eq!(discovered.whoami().await.unwrap().account, "root");
    assert_eq!(discovered.info().auth_type, "oidc");
    // The Rucio client's order: the discovered token first, and it is not cached (its
    // source keeps it); only the brokered login's tokens would be.
    assert!(
        discovered
            .info()
            .cache_file
            .is_none_or(|file| !file.exists()),
        "{:?}",
        discovered.info()
    );
    let mut config = RucioConfig::default();
    config.auth_type = Some("oidc".into());
    let only_discovery = RucioClient::builder()
        .environment(Environment::empty().var("BEARER_TOKEN", token.expose_secret()))
        .config(config)
        .oidc_token_source(OidcTokenSource::Discovery)
        .rucio_host(f.peer.url())
        .build()
        .unwrap();
    assert_eq!(only_discovery.whoami().await.unwrap().account, "root");
    assert_eq!(only_discovery.info().cache_file, None);

    let credential = Arc::new(BearerToken::new(token.expose_secret()).unwrap());
    let managed = f
        .builder(&cache)
        .auth(AuthMethod::oidc_credential(credential))
        .build()
        .unwrap();
    assert_eq!(managed.whoami().await.unwrap().account, "root");
}

#[tokio::test]
async fn wrong_password_is_refused_with_rucios_message() {
    let f = fixture();
    let cache = cache_dir();
    let client = f
        .builder(&cache)
        .account("root")
        .auth(AuthMethod::userpass(
            f.peer.text("username"),
            SecretString::from("not-the-password-x9"),
        ))
        .build()
        .unwrap();
    let err = client.whoami().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LoginRefused, "{err}");
    let exception = err.rucio_exception().unwrap();
    assert_eq!(exception.class(), "CannotAuthenticate");
    assert_eq!(
        exception.message(),
        "Cannot authenticate to account root with given credentials"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains(
            "CannotAuthenticate: Cannot authenticate to account root with given credentials"
        ),
        "{shown}"
    );
    assert!(!shown.contains("not-the-password-x9"), "{shown}");
    // token() reports the same.
    assert_eq!(
        client.token().await.unwrap_err().kind(),
        ErrorKind::LoginRefused
    );
}

#[tokio::test]
async fn unknown_account_is_refused_with_rucios_message() {
    let f = fixture();
    let cache = cache_dir();
    let client = f
        .builder(&cache)
        .account("nosuch")
        .auth(f.userpass())
        .build()
        .unwrap();
    let err = client.whoami().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LoginRefused, "{err}");
    assert_eq!(
        err.rucio_exception().unwrap().to_string(),
        "CannotAuthenticate: Cannot authenticate to account nosuch with given credentials"
    );
}

#[tokio::test]
async fn unregistered_ssh_key_is_refused() {
    let f = fixture();
    let cache = cache_dir();
    let client = f
        .builder(&cache)
        .account("root")
        .auth(AuthMethod::ssh(
            PrivateKey::from_file(&f.stranger_key, None).unwrap(),
        ))
        .build()
        .unwrap();
    let err = client.whoami().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LoginRefused, "{err}");
    assert_eq!(
        err.rucio_exception().unwrap().to_string(),
        "CannotAuthenticate: Cannot authenticate to account root with given credentials"
    );
}

#[tokio::test]
async fn unregistered_dn_is_refused() {
    let f = fixture();
    let cache = cache_dir();
    let client = f
        .x509_builder(&cache)
        .auth(AuthMethod::x509(
            f.peer.path("bad_client_cert"),
            f.peer.path("bad_client_key"),
        ))
        .build()
        .unwrap();
    let err = client.whoami().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LoginRefused, "{err}");
    let exception = err.rucio_exception().unwrap();
    assert_eq!(exception.class(), "IdentityError");
    assert!(
        exception.message().contains(&f.peer.text("bad_client_dn")),
        "{exception}"
    );
}

#[tokio::test]
async fn a_proxy_of_another_dn_at_the_same_path_does_not_reuse_the_session() {
    let f = fixture();
    let cache = cache_dir();
    let dir = tempfile::tempdir().unwrap();
    let proxy = dir.path().join("x509up_u1000");
    std::fs::copy(f.peer.path("proxy"), &proxy).unwrap();
    let registered = f
        .x509_builder(&cache)
        .auth(AuthMethod::x509_proxy(&proxy))
        .build()
        .unwrap();
    assert_eq!(registered.whoami().await.unwrap().account, "root");
    assert!(registered.session().cache_file().unwrap().exists());

    // Someone else's credential now lies at the same path (a new x509up_u<uid>): its login
    // happens, and the server refuses that DN, instead of the cached root session being
    // used in its name.
    let stranger = format!(
        "{}{}",
        std::fs::read_to_string(f.peer.path("bad_client_cert")).unwrap(),
        std::fs::read_to_string(f.peer.path("bad_client_key")).unwrap()
    );
    std::fs::write(&proxy, stranger).unwrap();
    let other = f
        .x509_builder(&cache)
        .auth(AuthMethod::x509_proxy(&proxy))
        .build()
        .unwrap();
    let err = other.whoami().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LoginRefused, "{err}");
    assert_eq!(err.rucio_exception().unwrap().class(), "IdentityError");
}

#[tokio::test]
async fn several_accounts_without_a_default_is_a_typed_error() {
    let f = fixture();
    let cache = cache_dir();
    let client = f.builder(&cache).auth(f.userpass()).build().unwrap();
    let err = client.whoami().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MultipleAccounts, "{err}");
    let accounts: BTreeSet<&str> = err.accounts().iter().map(String::as_str).collect();
    assert_eq!(accounts, BTreeSet::from(["alice", "root"]));
    assert!(err.to_string().contains("alice") && err.to_string().contains("root"));

    // An identity with one default account needs none named.
    let alice = f
        .builder(&cache)
        .auth(AuthMethod::userpass(
            f.peer.text("alice_username"),
            SecretString::from(f.peer.text("alice_password")),
        ))
        .build()
        .unwrap();
    assert_eq!(alice.whoami().await.unwrap().account, "alice");
    assert_eq!(alice.info().account.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_first_host_that_refuses_connections_fails_over() {
    let f = fixture();
    let cache = cache_dir();
    let dead = refused_url();
    let client = f
        .builder(&cache)
        .rucio_hosts([dead.clone(), f.peer.url().to_owned()])
        .auth_hosts([dead, f.peer.url().to_owned()])
        .account("root")
        .auth(f.userpass())
        .build()
        .unwrap();
    // Hosts are picked at random: a few calls meet the dead one first.
    for _ in 0..4 {
        assert_eq!(client.whoami().await.unwrap().account, "root");
    }
}

#[tokio::test]
async fn rucio_cfg_is_honoured_and_the_environment_overrides_it() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rucio.cfg");
    std::fs::write(
        &cfg,
        format!(
            "[common]\nloglevel = INFO\n\n[client]\nrucio_host = {url}\nauth_host = {url}\n\
             auth_type = userpass\nusername = {user}\npassword = {password}\naccount = alice\n\
             request_retries = 2\nauth_token_file_path = {dir}/tokens/auth_token_for_account_alice\n",
            url = f.peer.url(),
            user = f.peer.text("username"),
            password = f.peer.text("password"),
            dir = dir.path().display(),
        ),
    )
    .unwrap();
    // The Python client's token directory is shared, as /tmp is.
    std::fs::create_dir(dir.path().join("tokens")).unwrap();
    std::fs::set_permissions(
        dir.path().join("tokens"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let env = Environment::empty().var("RUCIO_CONFIG", &cfg);

    let from_file = RucioClient::builder()
        .environment(env.clone())
        .config(RucioConfig::load(&env).unwrap())
        .build()
        .unwrap();
    assert_eq!(from_file.whoami().await.unwrap().account, "alice");
    // The cache sits in a directory of its own next to where the Python client keeps its
    // token, which stays as shared as it was.
    let cache_file = from_file.session().cache_file().unwrap();
    assert!(cache_file.exists());
    assert_eq!(
        cache_file.parent().unwrap(),
        dir.path()
            .join("tokens")
            .join(format!("sciauth-{}/rucio", env.user_id()))
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("tokens"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o1777);

    let env = env.var("RUCIO_ACCOUNT", "root");
    let from_env = RucioClient::builder()
        .environment(env.clone())
        .config(RucioConfig::load(&env).unwrap())
        .build()
        .unwrap();
    assert_eq!(from_env.whoami().await.unwrap().account, "root");

    // Explicit arguments beat both.
    let explicit = RucioClient::builder()
        .environment(env.clone())
        .config(RucioConfig::load(&env).unwrap())
        .account("alice")
        .build()
        .unwrap();
    assert_eq!(explicit.whoami().await.unwrap().account, "alice");

    // RUCIO_HOME/etc/rucio.cfg is found too.
    std::fs::create_dir_all(dir.path().join("home/etc")).unwrap();
    std::fs::copy(&cfg, dir.path().join("home/etc/rucio.cfg")).unwrap();
    let env = Environment::empty().var("RUCIO_HOME", dir.path().join("home"));
    let config = RucioConfig::load(&env).unwrap();
    assert_eq!(config.file, Some(dir.path().join("home/etc/rucio.cfg")));
    assert_eq!(config.rucio_hosts, [f.peer.url()]);
}

#[tokio::test]
async fn secrets_stay_out_of_debug_errors_and_logs() {
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    let f = fixture();
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cache = cache_dir();
    let client = f
        .builder(&cache)
        .account("root")
        .auth(f.userpass())
        .build()
        .unwrap();
    client.whoami().await.unwrap();
    let token = client.token().await.unwrap();
    // A corrupt cache file is logged, never shown with its contents.
    std::fs::write(
        client.session().cache_file().unwrap(),
        token.expose_secret(),
    )
    .unwrap();
    let reread = f
        .builder(&cache)
        .account("root")
        .auth(f.userpass())
        .build()
        .unwrap();
    reread.whoami().await.unwrap();
    assert_eq!(reread.session().login_count(), 1);

    let refused = f
        .builder(&cache_dir())
        .account("root")
        .auth(AuthMethod::userpass(
            "rucio-test",
            SecretString::from("wrong-pw-77"),
        ))
        .build()
        .unwrap();
    let err = refused.whoami().await.unwrap_err();

    let password = f.peer.text("password");
    let shown = format!(
        "{client:?} {:?} {:?} {err} {err:?} {:?}",
        client.session(),
        client.info(),
        f.userpass()
    );
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("corrupt"), "{logged}");
    for secret in [token.expose_secret(), password.as_str(), "wrong-pw-77"] {
        assert!(
            !shown.contains(secret),
            "a secret in Debug/Display: {shown}"
        );
        assert!(!logged.contains(secret), "a secret in the logs: {logged}");
    }
}
