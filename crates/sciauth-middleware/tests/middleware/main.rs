//! Integration tests of sciauth-middleware against real HTTP servers on 127.0.0.1.
//!
//! One test binary, one module per integration; the servers live in `tests/support/`.

#[path = "../support/mod.rs"]
mod support;

mod with_reqwest;
mod with_tokens;
mod with_tower;
