//! What the tests of several sciauth crates share: real peers started on 127.0.0.1 and the
//! helpers around them. Not published; every crate takes it as a dev-dependency only.
//!
//! | module | what |
//! |---|---|
//! | [`idp`] | the test identity provider (`tests/idp`, oidc-provider) as a child process, and headless drivers for its login and device pages |
//! | [`hostile`] | a deliberately broken identity provider (a raw TCP server scripted per path) and a recorder of what reaches a redirect target |
//! | [`logs`] | everything `tracing` logs in a test binary, to look for warnings or secrets |
//! | [`postgres`] | a throwaway PostgreSQL cluster per test binary, a database per test |
//! | [`pki`] | a test CA issuing server and client certificates |
//! | [`rucio`] | the real Rucio server (`tests/peers/rucio`), `ssh-keygen` keys |
//! | [`ssh_agent`] | a real `ssh-agent` |
//!
//! Tests start real things where a real peer can show the behaviour (docs/ARCHITECTURE.md,
//! Testing); the hostile provider covers what no real peer does (a slow drip, a reset, 10 MB
//! of garbage).

pub mod hostile;
pub mod idp;
pub mod logs;
pub mod pki;
pub mod postgres;
pub mod rucio;
pub mod ssh_agent;
