//! Installs what the tests need, only where it is missing, so a second run costs nothing.
//!
//! The tests use real peers on loopback: `ssh-keygen` and `ssh-agent`, PyJWT, the
//! `oidc-provider` identity provider (Node), the Rucio server (PyPI) and PostgreSQL.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{project_root, run_command};

/// Debian packages, each with a check that tells whether it is already there.
const PACKAGES: &[(&str, &str)] = &[
    (
        "openssh-client",
        "command -v ssh-keygen && command -v ssh-agent && command -v ssh-add",
    ),
    ("openssl", "command -v openssl"),
    ("python3-venv", "python3 -c 'import venv, ensurepip'"),
    ("nodejs", "command -v node"),
    ("npm", "command -v npm"),
    (
        "postgresql",
        "command -v initdb || ls /usr/lib/postgresql/*/bin/initdb",
    ),
    // Proves the cached `sciauth token` starts no thread and opens no socket.
    ("strace", "command -v strace"),
];

/// What `cargo xtask demo` needs of them: ssh-keygen and the identity provider.
const DEMO_PACKAGES: &[(&str, &str)] = &[
    ("openssh-client", "command -v ssh-keygen"),
    ("nodejs", "command -v node"),
    ("npm", "command -v npm"),
];

pub(crate) fn run() -> Result<(), String> {
    let root = project_root();
    apt_packages(PACKAGES)?;
    python_venv(&root)?;
    node_modules(&root.join("tests/idp"))?;
    let rucio = root.join("tests/peers/rucio/install.sh");
    if rucio.exists() {
        run_command(Command::new("bash").arg(&rucio).current_dir(&root))?;
    }
    Ok(())
}

fn is_present(check: &str) -> bool {
    Command::new("sh")
        .args(["-c", check])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Only what the demo needs: a fresh clone runs `cargo xtask demo` without the test peers.
pub(crate) fn demo() -> Result<(), String> {
    apt_packages(DEMO_PACKAGES)?;
    node_modules(&project_root().join("tests/idp"))
}

/// hyperfine, for `cargo xtask bench-cli` only.
pub(crate) fn hyperfine() -> Result<(), String> {
    apt_packages(&[("hyperfine", "command -v hyperfine")])
}

/// wrk and PostgreSQL, for `cargo xtask bench-service` only.
pub(crate) fn bench_service() -> Result<(), String> {
    apt_packages(&[
        ("wrk", "command -v wrk"),
        (
            "postgresql",
            "command -v initdb || ls /usr/lib/postgresql/*/bin/initdb",
        ),
    ])
}

fn apt_packages(packages: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, check)| !is_present(check))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root = is_present("test \"$(id -u)\" = 0");
    let sudo: &[&str] = if root {
        &[]
    } else if is_present("sudo -n true") {
        &["sudo", "-n"]
    } else {
        return Err(format!(
            "missing Debian packages: {}; install them (apt-get install {}) or run as root",
            missing.join(" "),
            missing.join(" ")
        ));
    };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut command = Command::new(all[0]);
        command
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive");
        run_command(&mut command)
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)
}

/// `.venv` with the pinned Python test tools (PyJWT, cryptography).
fn python_venv(root: &Path) -> Result<(), String> {
    let requirements = root.join("tests/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let venv = root.join(".venv");
    let stamp = venv.join(".sciauth-requirements");
    if std::fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(());
    }
    if !venv.join("bin/python").exists() {
        run_command(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run_command(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}

/// `npm ci` for a Node project whose lock file changed since the last install.
fn node_modules(dir: &Path) -> Result<(), String> {
    let lock = dir.join("package-lock.json");
    let Ok(wanted) = std::fs::read_to_string(&lock) else {
        return Ok(());
    };
    let stamp = dir.join("node_modules/.sciauth-lock");
    if std::fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(());
    }
    run_command(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir),
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}
