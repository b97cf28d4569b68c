//! The fuzz targets of sciauth: one function per parser of input from outside (an identity
//! provider, a Rucio server, a caller of the token service, a file), each taking the raw
//! bytes and running them through the function production parses them with.
//!
//! This crate sits above every other (it reaches private parsers through each crate's
//! `fuzzing` feature) and is not published. Two things run these functions:
//!
//! - `fuzz/` (cargo-fuzz, libFuzzer, nightly): `fuzz/fuzz_targets/<target>.rs` calls the
//!   function of the same name; `cargo xtask fuzz [TARGET] [--seconds N]` runs them.
//! - `tests/replay.rs` (stable, `cargo test -p sciauth-fuzz`): every committed input under
//!   `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` through the same function, so a
//!   crash once found stays fixed without running the fuzzer.
//!
//! A target fails by panicking: on a bug in a parser, or where an asserted property breaks
//! (a stored grant must read back as written; nothing a caller sends the token service may
//! cause a 500). `docs/security.md` lists the targets and what the fuzzer found.

use sciauth_rucio::{Environment, RucioConfig};
use sciauth_transport::Preferences;

/// A fuzz target: raw input in, a panic on failure.
pub type Target = fn(&[u8]);

/// Every target, by name: the names of `fuzz/fuzz_targets/*.rs` and of the corpus folders.
pub const TARGETS: &[(&str, Target)] = &[
    ("token_response", token_response),
    ("oauth_error", oauth_error),
    ("discovery", discovery),
    ("jwks", jwks),
    ("jwt", jwt),
    ("device_authorization", device_authorization),
    ("introspection", introspection),
    ("token_store_file", token_store_file),
    ("token_store_row", token_store_row),
    ("rucio_config", rucio_config),
    ("rucio_login_answer", rucio_login_answer),
    ("cli_config", cli_config),
    ("unicore_preferences", unicore_preferences),
    ("ssh_private_key", ssh_private_key),
    ("ssh_public_key", ssh_public_key),
    ("server_request", server_request),
    ("server_config", server_config),
    ("service_answer", service_answer),
    ("rucio_token_cache", rucio_token_cache),
];

/// A token endpoint's answer (`sciauth_tokens::fuzzing::token_response`).
pub fn token_response(data: &[u8]) {
    sciauth_tokens::fuzzing::token_response(data);
}

/// An OAuth error answer (`sciauth_tokens::fuzzing::oauth_error`).
pub fn oauth_error(data: &[u8]) {
    sciauth_tokens::fuzzing::oauth_error(data);
}

/// A discovery document (`sciauth_tokens::fuzzing::discovery`).
pub fn discovery(data: &[u8]) {
    sciauth_tokens::fuzzing::discovery(data);
}

/// A JWKS document (`sciauth_tokens::fuzzing::jwks`).
pub fn jwks(data: &[u8]) {
    sciauth_tokens::fuzzing::jwks(data);
}

/// An ID or access token (`sciauth_tokens::fuzzing::jwt`).
pub fn jwt(data: &[u8]) {
    sciauth_tokens::fuzzing::jwt(data);
}

/// A device authorization answer (`sciauth_tokens::fuzzing::device_authorization`).
pub fn device_authorization(data: &[u8]) {
    sciauth_tokens::fuzzing::device_authorization(data);
}

/// An introspection answer (`sciauth_tokens::fuzzing::introspection`).
pub fn introspection(data: &[u8]) {
    sciauth_tokens::fuzzing::introspection(data);
}

/// A token store file (`sciauth_tokens::fuzzing::token_store_file`).
pub fn token_store_file(data: &[u8]) {
    sciauth_tokens::fuzzing::token_store_file(data);
}

/// A SQLite token store row (`sciauth_tokens::fuzzing::token_store_row`).
pub fn token_store_row(data: &[u8]) {
    sciauth_tokens::fuzzing::token_store_row(data);
}

/// A `rucio.cfg` (`RucioConfig::parse`, then `RucioConfig::from_env` as `from_file` does),
/// with `~` and `$VAR` expanded from a fixed environment.
pub fn rucio_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = Environment::empty()
        .var("HOME", "/home/alice")
        .var("RUCIO_HOME", "/opt/rucio")
        .var("X509_USER_PROXY", "/tmp/x509up_u1000")
        .uid(1000)
        .tmp("/tmp");
    if let Ok(config) = RucioConfig::parse(text, &env) {
        let config = RucioConfig::from_env(config, &env);
        let _ = format!("{config:?}");
    }
}

/// A Rucio login answer (`sciauth_rucio::fuzzing::login_answer`).
pub fn rucio_login_answer(data: &[u8]) {
    sciauth_rucio::fuzzing::login_answer(data);
}

/// A sciauth `config.toml` (`sciauth_cli::fuzzing::config`).
pub fn cli_config(data: &[u8]) {
    sciauth_cli::fuzzing::config(data);
}

/// A UNICORE user preferences string (`Preferences::parse`): what parses must make a
/// header, and print back to the same preferences.
pub fn unicore_preferences(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(preferences) = Preferences::parse(text) else {
        return;
    };
    let header = preferences.header_value();
    assert!(header.is_ok(), "parsed preferences make no header");
    let again = Preferences::parse(&preferences.to_string());
    assert!(
        again.as_ref().ok() == Some(&preferences),
        "preferences changed when printed and parsed again"
    );
}

/// An SSH or PEM private key file (`sciauth_credentials::fuzzing::private_key`).
pub fn ssh_private_key(data: &[u8]) {
    sciauth_credentials::fuzzing::private_key(data);
}

/// An SSH public key file (`sciauth_credentials::fuzzing::public_key`).
pub fn ssh_public_key(data: &[u8]) {
    sciauth_credentials::fuzzing::public_key(data);
}

/// A request body of the token service (`sciauth_server::fuzzing::request_body`).
pub fn server_request(data: &[u8]) {
    sciauth_server::fuzzing::request_body(data);
}

/// The token service's configuration (`sciauth_server::fuzzing::config`).
pub fn server_config(data: &[u8]) {
    sciauth_server::fuzzing::config(data);
}

/// An answer of the token service to its client (`sciauth_service_api::fuzzing::answer`).
pub fn service_answer(data: &[u8]) {
    sciauth_service_api::fuzzing::answer(data);
}

/// The Rucio token files and `/auth/validate`'s answer (`sciauth_rucio::fuzzing::token_cache`).
pub fn rucio_token_cache(data: &[u8]) {
    sciauth_rucio::fuzzing::token_cache(data);
}
