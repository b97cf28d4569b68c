//! A blocking call inside an async runtime panics at once, saying to use the async API,
//! instead of stalling the runtime or failing inside tokio with a message that names
//! neither sciauth nor the fix. The same calls work on a plain thread.

mod support;

use std::panic::{self, AssertUnwindSafe};

use sciauth_blocking::{Credential, NativeClient, TokenManager, Transport};
use sciauth_tokens::{MemoryStore, TokenRequest};
use sciauth_transport::credentials::BearerToken;
use serde_json::Value;

/// The message `call` panics with when it runs inside a tokio runtime.
fn panic_inside_a_runtime<T>(call: impl FnOnce() -> T) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let payload = panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            call();
        })
    }))
    .expect_err("a blocking call inside a runtime panics");
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => (*payload.downcast::<&str>().expect("a text message")).to_owned(),
    }
}

fn native_client() -> NativeClient {
    // Nothing is stored, and nothing listens at the issuer: no call here reaches it.
    NativeClient::new(
        sciauth_tokens::NativeClient::builder("http://127.0.0.1:9", "native-app")
            .store(MemoryStore::new())
            .build()
            .unwrap(),
    )
}

#[test]
fn a_request_inside_a_runtime_panics_before_it_is_sent() {
    let api = support::Api::start(None);
    let transport = Transport::build(support::api_transport(&api.url)).unwrap();
    let message = panic_inside_a_runtime(|| transport.get_json::<Value>("x"));
    assert_eq!(
        message,
        "sciauth::blocking::RequestBuilder::send_json was called inside an async runtime, \
         where blocking would stall the runtime's tasks: use the async API instead \
         (sciauth::transport::RequestBuilder::send_json.await), or call the blocking API \
         from a thread of your own (std::thread::spawn)"
    );
    assert_eq!(api.seen(), []);
    // The transport still works where blocking is allowed.
    let answer: Value = transport.get_json("x").unwrap();
    assert_eq!(answer["ok"], true);
}

#[test]
fn a_token_inside_a_runtime_panics() {
    let manager =
        TokenManager::new(sciauth_tokens::TokenManager::builder(MemoryStore::new()).build());
    let message = panic_inside_a_runtime(|| manager.get(&TokenRequest::new("alice")));
    assert!(
        message
            .starts_with("sciauth::blocking::TokenManager::get was called inside an async runtime"),
        "{message}"
    );
    assert!(
        message.contains("use the async API instead (sciauth::tokens::TokenManager::get.await)"),
        "{message}"
    );
}

#[test]
fn load_tokens_inside_a_runtime_panics() {
    let client = native_client();
    let message = panic_inside_a_runtime(|| client.load_tokens(["openid"]));
    assert!(
        message.starts_with(
            "sciauth::blocking::NativeClient::load_tokens was called inside an async runtime"
        ),
        "{message}"
    );
    assert!(message.contains("use the async API instead"), "{message}");
}

#[test]
fn a_ready_header_inside_a_runtime_panics_too() {
    // The header is ready without any runtime, but the mistake shows at once rather than
    // the day the credential must renew itself.
    let credential = Credential::new(BearerToken::new("a-token").unwrap());
    let message = panic_inside_a_runtime(|| credential.header());
    assert!(
        message.contains("use the async API instead (sciauth::Credential::header.await)"),
        "{message}"
    );
    assert!(!message.contains("a-token"), "{message}");
}

#[test]
fn the_same_calls_work_on_a_plain_thread() {
    let error = native_client().load_tokens(["openid"]).unwrap_err();
    assert!(error.needs_login(), "{error}");

    let manager =
        TokenManager::new(sciauth_tokens::TokenManager::builder(MemoryStore::new()).build());
    assert!(manager.get(&TokenRequest::new("alice")).is_err());

    let credential = Credential::new(BearerToken::new("a-token").unwrap());
    let header = credential.header().unwrap().unwrap();
    assert_eq!(header.value(), "Bearer a-token");
}
