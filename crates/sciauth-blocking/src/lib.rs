//! A blocking API for sciauth, as `reqwest::blocking` is for reqwest: for programs that
//! have no async runtime and do not want one (a command-line tool, a script's helper, a
//! plugin called from C or Python).
//!
//! | here | wraps |
//! |---|---|
//! | [`Transport`], [`RequestBuilder`] | `sciauth_transport::Transport`: HTTP carrying a credential; responses are read in full, so [`Response`](sciauth_transport::Response)'s body and JSON need nothing more |
//! | [`TokenManager`] | `sciauth_tokens::TokenManager`: valid tokens per request, a cached one answered on the calling thread |
//! | [`NativeClient`] | `sciauth_tokens::NativeClient`: login (browser, pasted code, device flow), `load_tokens`, authorizers, logout |
//! | [`Credential`] | any `sciauth_credentials::Credential`: its header |
//!
//! Each wraps the async type (`new`, or `From`) and keeps its errors: a transport call
//! fails with `sciauth_transport::Error`, a token call with `sciauth_tokens::Error`, a
//! header with `sciauth_credentials::Error`, each answering `needs_login()`, `is_refused()`,
//! `is_network()`, `is_bad_input()` and `status()`, and each converting into the facade's
//! `sciauth::Error` with `?`. Their `Debug` output is the async type's, without secrets.
//!
//! # How it works
//!
//! Every handle alive in the process shares one background thread (named
//! `sciauth-blocking`) that owns a single-threaded tokio runtime. A call sends its work
//! there and waits for the answer through a oneshot channel. Between calls the runtime
//! keeps running: the token manager refreshes tokens ahead of expiry, connection pools stay
//! warm. When the last handle is dropped, the thread ends (and the drop waits for it,
//! except inside an async runtime). A cached token ([`TokenManager::get`],
//! [`NativeClient::load_tokens`]) or a ready header ([`Credential::header`]) is answered on
//! the calling thread without reaching the background thread at all.
//!
//! # Panics
//!
//! A blocking call made inside an async runtime (from an `async fn`, a tokio task, or
//! `spawn_blocking`) panics, saying to use the async API: blocking there would stall the
//! runtime. Starting the background thread panics only when the system refuses a thread or
//! an I/O driver, as `std::thread::spawn` does.
//!
//! # Where it sits
//!
//! Above `sciauth-transport` and `sciauth-tokens`, beside `sciauth-service-api`; the facade
//! `sciauth` re-exports it as `sciauth::blocking` with its cargo feature `blocking`. Most
//! programs want that facade, and its async API where they have a runtime anyway.
//!
//! # Example
//!
//! ```no_run
//! use sciauth_blocking::{NativeClient, Transport};
//! use sciauth_tokens::LoginOptions;
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = NativeClient::new(
//!     sciauth_tokens::NativeClient::builder("https://iam.example.org/", "my-cli").build()?,
//! );
//! client.login(LoginOptions::new().device(true).refresh_tokens(true))?;
//! let authorizer = client.get_authorizers(["openid"])?;
//! let api = Transport::build(
//!     sciauth_transport::Transport::builder()
//!         .base_url("https://api.example.org/v1")
//!         .credential(authorizer),
//! )?;
//! let me: serde_json::Value = api.get_json("me")?;
//! # drop(me);
//! # Ok(())
//! # }
//! ```
//!
//! # Supported Rust versions
//!
//! The minimum is the `rust-version` in the workspace `Cargo.toml`; raising it is not a
//! breaking change.

pub use crate::credential::Credential;
pub use crate::tokens::{NativeClient, TokenManager};
pub use crate::transport::{RequestBuilder, Transport};

mod credential;
mod runtime;
mod tokens;
mod transport;
