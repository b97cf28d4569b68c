//! Project chores, run as `cargo xtask <command>` (see <https://github.com/matklad/cargo-xtask/>).
//!
//! - `setup`: installs what the tests need and is missing: Debian packages, the Python venv
//!   with PyJWT (`.venv`), the identity provider's Node modules, the Rucio server's venv.
//! - `test`: `setup`, then every check CI runs: formatting, clippy, all tests, docs, tidy.
//! - `demo`: installs what it needs, then drives the real `sciauth` binary through a whole
//!   session against the real identity provider on loopback (`sciauth-cli/examples/demo.rs`).
//! - `ci`: what `.ci/run` runs: `test`, then `demo`.
//! - `bench-cli`: whole-process time of `sciauth token` with hyperfine (docs/benchmarks.md).
//! - `bench-service`: the token service under wrk, 1, 2 and 4 replicas on one PostgreSQL
//!   (docs/benchmarks.md).
//! - `bench-rucio [--runs N]`: `sciauth rucio whoami` with a cached token beside the official
//!   `rucio whoami`, in one hyperfine run against the real Rucio server (docs/benchmarks.md).
//! - `tidy`: the layering and convention checks (also a `#[test]`).
//! - `fuzz [TARGET] [--seconds N] [--runs N]`: the cargo-fuzz targets on nightly (`fuzz/`), 60 s each
//!   by default, with executions and coverage per target. Not part of `test`: the replay of
//!   the committed corpus (`cargo test -p sciauth-fuzz`) is.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench_rucio;
mod fuzz;
mod setup;
mod tidy;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("test") => test(),
        Some("demo") => demo(),
        Some("bench-cli") => bench_cli(),
        Some("bench-service") => bench_service(&args[1..]),
        Some("bench-rucio") => match args.get(1).map(String::as_str) {
            None => bench_rucio::run(100),
            Some("--runs") => match args.get(2).and_then(|n| n.parse().ok()) {
                Some(runs) => bench_rucio::run(runs),
                None => Err("--runs needs a number".to_owned()),
            },
            Some(other) => Err(format!("bench-rucio: unknown argument {other:?}")),
        },
        Some("ci") => test().and_then(|()| demo()),
        Some("tidy") => tidy::run(&project_root()),
        Some("fuzz") => fuzz::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 demo   the end-to-end demo: the sciauth binary against a real identity provider\n  \
                 test   install test prerequisites, then run every check CI runs\n  \
                 bench-cli  whole-process time of `sciauth token` (hyperfine, release build)\n  \
                 bench-service  the token service under wrk: 1, 2, 4 replicas, one PostgreSQL\n  \
                 bench-rucio [--runs N]  `sciauth rucio whoami` beside `rucio whoami` (hyperfine)\n  \
                 ci     what .ci/run runs (test, then demo)\n  \
                 setup  install test prerequisites only\n  \
                 tidy   layering and convention checks\n  \
                 fuzz [TARGET] [--seconds N] [--runs N]  run the fuzz targets (nightly, cargo-fuzz); not in CI"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Everything CI checks, in the order that fails fastest.
fn test() -> Result<(), String> {
    setup::run()?;
    let root = project_root();
    tidy::run(&root)?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace", "--all-features", "--no-fail-fast"])?;
    cargo_with_env(
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    eprintln!("xtask: all checks passed");
    Ok(())
}

/// Builds the `sciauth` binary and the demo, then runs the demo, which finds the binary next
/// to its own directory and keeps everything in a temporary home.
fn demo() -> Result<(), String> {
    setup::demo()?;
    cargo(&[
        "build",
        "--quiet",
        "-p",
        "sciauth-cli",
        "--bin",
        "sciauth",
        "--example",
        "demo",
    ])?;
    cargo(&["run", "--quiet", "-p", "sciauth-cli", "--example", "demo"])
}

/// `sciauth token`'s whole-process time with hyperfine on a release build: the demo's
/// login, then `--bench` (see `sciauth-cli/examples/demo.rs`). Not part of CI.
fn bench_cli() -> Result<(), String> {
    setup::demo()?;
    setup::hyperfine()?;
    let build = [
        "build",
        "--quiet",
        "--release",
        "-p",
        "sciauth-cli",
        "--bin",
        "sciauth",
        "--example",
        "demo",
    ];
    cargo(&build)?;
    cargo(&[
        "run",
        "--quiet",
        "--release",
        "-p",
        "sciauth-cli",
        "--example",
        "demo",
        "--",
        "--bench",
    ])
}

/// The token service under load (`sciauth-cli/examples/bench_service.rs`): release builds of
/// `sciauth` and the bench, then the bench, which starts PostgreSQL, the identity providers,
/// the replicas and wrk. `args` go to the bench (`--seconds N`, `--refresh-seconds N`). Not
/// part of CI.
fn bench_service(args: &[String]) -> Result<(), String> {
    setup::demo()?;
    setup::bench_service()?;
    cargo(&[
        "build",
        "--quiet",
        "--release",
        "-p",
        "sciauth-cli",
        "--bin",
        "sciauth",
        "--example",
        "bench_service",
    ])?;
    let mut run = vec![
        "run",
        "--quiet",
        "--release",
        "-p",
        "sciauth-cli",
        "--example",
        "bench_service",
        "--",
    ];
    run.extend(args.iter().map(String::as_str));
    cargo(&run)
}

/// The workspace root.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

pub(crate) fn cargo(args: &[&str]) -> Result<(), String> {
    cargo_with_env(args, &[])
}

fn cargo_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_command(
        Command::new(cargo)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(project_root()),
    )
}

/// Runs a command, echoing it, and fails with its exit status.
pub(crate) fn run_command(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}").replace('"', "");
    eprintln!("xtask: $ {shown}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}
