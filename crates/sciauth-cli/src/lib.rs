//! The `sciauth` command is a binary (`src/main.rs`; `sciauth --help` is its documentation).
//! This library exists only so that the fuzz targets (`crates/sciauth-fuzz`) reach the
//! command's configuration parser: with the cargo feature `fuzzing` it compiles
//! `config.rs`, and `failure.rs` whose errors it returns, a second time and exposes them
//! through `fuzzing`. Without the feature it is empty. Not an API: programs want the facade
//! `sciauth`.

// The binary's own modules, compiled again for the fuzz targets; most of them is unused here.
#[cfg(feature = "fuzzing")]
#[allow(dead_code, unreachable_pub)]
#[path = "config.rs"]
mod config;
#[cfg(feature = "fuzzing")]
#[allow(dead_code, unreachable_pub)]
#[path = "failure.rs"]
mod failure;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
