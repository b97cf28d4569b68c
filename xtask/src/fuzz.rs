//! `cargo xtask fuzz [TARGET] [--seconds N] [--runs N]`: runs the cargo-fuzz targets in `fuzz/` on
//! the nightly toolchain (libFuzzer), one after the other, and prints for each the
//! executions and the coverage from libFuzzer's final stats. A target stops after `--seconds`
//! (60 by default) or `--runs` executions, whichever comes first: the campaign recorded in
//! `docs/security.md` is `--runs 10000000 --seconds 1800`. Not part of `test` or CI:
//! `cargo test -p sciauth-fuzz` replays the committed corpus and crashes on stable.
//!
//! A run merges what it finds into `fuzz/corpus/<target>/` and writes a crash to
//! `fuzz/artifacts/<target>/`; minimize them (`cargo +nightly fuzz cmin`/`tmin`, in
//! `fuzz/`) before committing.

use std::process::{Command, Stdio};

use crate::{project_root, run_command};

const DEFAULT_SECONDS: u64 = 60;

/// What one target's run reported.
struct Outcome {
    target: String,
    executions: Option<u64>,
    coverage: Option<u64>,
    features: Option<u64>,
    corpus: Option<u64>,
    crashed: bool,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut target = None;
    let mut seconds = DEFAULT_SECONDS;
    let mut runs = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|&s| s > 0)
                    .ok_or("--seconds needs a whole number of seconds above 0")?;
            }
            "--runs" => {
                runs = Some(
                    args.next()
                        .and_then(|s| s.parse::<u64>().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--runs needs a whole number of executions above 0")?,
                );
            }
            other if other.starts_with('-') => {
                return Err(format!(
                    "unknown option {other}; usage: cargo xtask fuzz [TARGET] [--seconds N] \
                     [--runs N]"
                ));
            }
            name if target.is_none() => target = Some(name.to_owned()),
            extra => return Err(format!("one target at most (also got {extra})")),
        }
    }
    let all = targets()?;
    let chosen = match target {
        Some(name) if all.contains(&name) => vec![name],
        Some(name) => {
            return Err(format!(
                "no fuzz target {name}; the targets are: {}",
                all.join(", ")
            ));
        }
        None => all,
    };
    ensure_cargo_fuzz()?;
    let mut outcomes = Vec::new();
    for target in &chosen {
        outcomes.push(run_target(target, seconds, runs)?);
    }
    eprintln!();
    eprintln!(
        "{:<22} {:>12} {:>8} {:>9} {:>7}  result",
        "target", "execs", "cov", "features", "corpus"
    );
    let shown = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
    for o in &outcomes {
        eprintln!(
            "{:<22} {:>12} {:>8} {:>9} {:>7}  {}",
            o.target,
            shown(o.executions),
            shown(o.coverage),
            shown(o.features),
            shown(o.corpus),
            if o.crashed {
                "CRASH (see fuzz/artifacts/)"
            } else {
                "ok"
            }
        );
    }
    let crashed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.crashed)
        .map(|o| o.target.as_str())
        .collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!("crashes in: {}", crashed.join(", ")))
    }
}

/// The targets, from `fuzz/fuzz_targets/*.rs`.
fn targets() -> Result<Vec<String>, String> {
    let dir = project_root().join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Installs cargo-fuzz with `cargo install` when `cargo +nightly fuzz` is missing.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = Command::new("cargo")
        .env_remove("RUSTUP_TOOLCHAIN")
        .args(["+nightly", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("xtask: cargo-fuzz is missing; installing it");
    run_command(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))
}

/// Runs one target for `seconds` and reads libFuzzer's final stats from its output.
fn run_target(target: &str, seconds: u64, runs: Option<u64>) -> Result<Outcome, String> {
    let fuzz_dir = project_root().join("fuzz");
    let mut command = Command::new("cargo");
    command
        .current_dir(&fuzz_dir)
        // rustup's proxy picks the toolchain from `+nightly`; the variables cargo sets for
        // xtask itself would make it use stable's.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("CARGO")
        .env_remove("LD_LIBRARY_PATH")
        .args(["+nightly", "fuzz", "run", target])
        // The workspace forbids unsafe code; overflow checks stay on. AddressSanitizer
        // would halve the executions for no bug class this code can have.
        .args(["--sanitizer", "none"])
        // The workspace's target directory, not a second one in fuzz/.
        .arg("--target-dir")
        .arg(project_root().join("target/fuzz"))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args(runs.map(|runs| format!("-runs={runs}")))
        // A single input that takes this long is a hang: report it.
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    eprintln!("xtask: fuzzing {target} for {seconds} s");
    let output = command
        .spawn()
        .and_then(|child| child.wait_with_output())
        .map_err(|e| format!("cannot run cargo +nightly fuzz: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    // Keep libFuzzer's own report visible, but not the per-input lines of a long run.
    for line in log
        .lines()
        .filter(|l| !is_progress_line(l) && !l.trim_start().starts_with("NEW_FUNC"))
    {
        eprintln!("{line}");
    }
    let stat = |name: &str| {
        log.lines()
            .filter_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .filter_map(|v| v.trim().parse().ok())
            .next_back()
    };
    let last_progress = log.lines().rev().find(|l| is_progress_line(l));
    let from_progress = |key: &str| {
        last_progress.and_then(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == key)?;
            words.next()?.split('/').next()?.parse().ok()
        })
    };
    let crashed = !output.status.success();
    if crashed && !log.contains("ERROR: libFuzzer") && !log.contains("panicked") {
        // Not a finding: the build or cargo-fuzz itself failed.
        return Err(format!(
            "cargo +nightly fuzz run {target} failed ({})",
            output.status
        ));
    }
    Ok(Outcome {
        target: target.to_owned(),
        executions: stat("number_of_executed_units"),
        coverage: from_progress("cov:"),
        features: from_progress("ft:"),
        corpus: from_progress("corp:"),
        crashed,
    })
}

/// libFuzzer's status lines: `#1234 NEW cov: 567 ft: 890 corp: 12/3456b ...`.
fn is_progress_line(line: &str) -> bool {
    line.starts_with('#') && line.contains(" cov: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_told_from_the_rest() {
        assert!(is_progress_line(
            "#65536\tpulse  cov: 1234 ft: 5678 corp: 90/12Kb lim: 652 exec/s: 3276 rss: 81Mb"
        ));
        assert!(!is_progress_line("INFO: Seed: 1234"));
        assert!(!is_progress_line("stat::number_of_executed_units: 196608"));
    }

    #[test]
    fn every_target_has_a_corpus() {
        for target in targets().unwrap() {
            let dir = project_root().join("fuzz/corpus").join(&target);
            assert!(dir.is_dir(), "fuzz/corpus/{target}/ is missing");
        }
    }
}
