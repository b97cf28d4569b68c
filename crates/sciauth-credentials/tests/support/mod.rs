//! Helpers for the integration tests: real `ssh-keygen`, a real `ssh-agent`, and PyJWT.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    unreachable_pub,
    reason = "shared by test binaries, which are crate roots"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with PyJWT: `$SCIAUTH_PYTHON`, else the project venv that `cargo xtask setup`
/// makes (`.venv`), else `python3`.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("SCIAUTH_PYTHON") {
        return python.into();
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// Runs `ssh-keygen -q -N <passphrase> -C <name> -f <dir>/<name> <args>` and returns the
/// private key path (the public key is next to it, with `.pub`).
pub fn keygen(dir: &Path, name: &str, passphrase: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-N", passphrase, "-C", name, "-f"])
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs (package openssh-client)");
    assert!(status.success(), "ssh-keygen {args:?} failed");
    path
}

/// One token for PyJWT to check.
pub struct Expect<'a> {
    pub token: &'a str,
    pub public_key: &'a Path,
    pub sub: &'a str,
    pub iss: &'a str,
    pub etd: &'a str,
    pub lifetime: u64,
}

/// Verifies every token with PyJWT against its public key file; panics with PyJWT's
/// complaint for each token it refuses. Returns the decoded `{alg, header, claims}`.
pub fn verify_with_pyjwt(expectations: &[Expect<'_>]) -> Vec<Value> {
    let input: Vec<Value> = expectations
        .iter()
        .map(|e| {
            json!({
                "token": e.token, "pub": e.public_key, "sub": e.sub, "iss": e.iss,
                "etd": e.etd, "lifetime": e.lifetime,
            })
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/verify_jwt.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    serde_json::to_writer(child.stdin.take().unwrap(), &input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "PyJWT verifier failed: {}\nInstall the test tools with `cargo xtask setup` \
         (PyJWT and cryptography into .venv).",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let failures: Vec<String> = results
        .iter()
        .zip(expectations)
        .filter(|(r, _)| r["ok"] != true)
        .map(|(r, e)| format!("{}: {}", e.public_key.display(), r["error"]))
        .collect();
    assert!(
        failures.is_empty(),
        "PyJWT refused tokens:\n{}",
        failures.join("\n")
    );
    results
}

use sciauth_test_support::ssh_agent;
pub use ssh_agent::{Agent, pub_path};
