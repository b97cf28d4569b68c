//! Integration tests of sciauth-transport against real HTTP(S) servers on 127.0.0.1.
//!
//! One test binary, one module per concern; the servers live in `tests/support/`. The log
//! capture test has a binary of its own (`tests/logs.rs`).

#[path = "../support/mod.rs"]
mod support;

mod credentials;
mod errors;
mod hosts_and_retries;
mod limits;
mod preferences;
mod redirects;
mod sessions;
mod tls;
