//! Project chores, run as `cargo xtask <command>` (see <https://github.com/matklad/cargo-xtask/>).
//!
//! - `setup`: installs what the tests need and is missing: Debian packages, the Python venv
//!   with PyJWT (`.venv`), the identity provider's Node modules, the Rucio server's venv.
//! - `test`: `setup`, then every check CI runs: formatting, clippy, all tests, docs, tidy.
//! - `ci`: what `.ci/run` runs (today the same as `test`).
//! - `tidy`: the layering and convention checks (also a `#[test]`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod setup;
mod tidy;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("test") => test(),
        Some("ci") => test(),
        Some("tidy") => tidy::run(&project_root()),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 test   install test prerequisites, then run every check CI runs\n  \
                 ci     what .ci/run runs\n  \
                 setup  install test prerequisites only\n  \
                 tidy   layering and convention checks"
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

/// The workspace root.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

fn cargo(args: &[&str]) -> Result<(), String> {
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
