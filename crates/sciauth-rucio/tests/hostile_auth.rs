//! A fake Rucio auth host, for what no real Rucio server can be made to do: answers that try
//! to make the client sign, send or keep what it must not.

use sciauth_test_support::rucio as support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sciauth_rucio::credentials::{PrivateKey, SshKeyJwt};
use sciauth_rucio::secrecy::ExposeSecret as _;
use sciauth_rucio::{AuthMethod, Environment, ErrorKind, RucioClient};

/// A server on 127.0.0.1 answering `/auth/ssh_challenge_token` with `challenge` and
/// recording every request to `/auth/ssh` (which a signed challenge would reach).
struct FakeAuthHost {
    url: String,
    signatures: Arc<Mutex<Vec<HeaderMap>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAuthHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAuthHost {
    async fn start(challenge: String) -> Self {
        let signatures = Arc::new(Mutex::new(Vec::new()));
        let recorder = signatures.clone();
        let app = Router::new()
            .route(
                "/auth/ssh_challenge_token",
                get(move || {
                    let challenge = challenge.clone();
                    async move {
                        let mut response = StatusCode::OK.into_response();
                        response
                            .headers_mut()
                            .insert("x-rucio-ssh-challenge-token", challenge.parse().unwrap());
                        response
                    }
                }),
            )
            .route(
                "/auth/ssh",
                get(move |headers: HeaderMap| {
                    recorder.lock().unwrap().push(headers);
                    async { StatusCode::UNAUTHORIZED.into_response() as Response }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}"),
            signatures,
            task,
        }
    }
}

#[tokio::test]
async fn a_jwt_signing_input_sent_as_ssh_challenge_is_not_signed() {
    let keys = tempfile::tempdir().unwrap();
    let key_path = support::rsa_key(keys.path(), "id_rsa", false);
    // What the malicious host wants signed: a UNICORE JWT for this user, made with the very
    // key the Rucio login uses, minus its signature.
    let jwt = SshKeyJwt::from_file("root", &key_path, None).unwrap();
    let token = jwt.token().await.unwrap();
    let signing_input = token.expose_secret().rsplit_once('.').unwrap().0.to_owned();

    for challenge in [
        signing_input,
        "challenge-1-someoneelse-2".to_owned(),
        "challenge-1-root-2-and-more".to_owned(),
    ] {
        let host = FakeAuthHost::start(challenge.clone()).await;
        let cache = tempfile::tempdir().unwrap();
        let client = RucioClient::builder()
            .environment(Environment::empty())
            .rucio_host(&host.url)
            .cache_dir(cache.path())
            .account("root")
            .auth(AuthMethod::ssh(
                PrivateKey::from_file(&key_path, None).unwrap(),
            ))
            .build()
            .unwrap();

        let error = client.whoami().await.unwrap_err();

        assert_eq!(
            error.kind(),
            ErrorKind::BadChallenge,
            "{challenge}: {error}"
        );
        assert!(error.to_string().contains("nothing was signed"), "{error}");
        assert!(!error.to_string().contains(&challenge), "{error}");
        assert!(
            host.signatures.lock().unwrap().is_empty(),
            "{challenge}: a signature reached the host"
        );
    }
}
