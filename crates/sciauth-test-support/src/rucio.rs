//! The real Rucio server (`tests/peers/rucio`) as a peer of the tests, real `ssh-keygen`
//! and a real `ssh-agent`, for the Rucio and CLI tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The peer scripts.
fn peer_dir() -> PathBuf {
    workspace_root().join("tests/peers/rucio")
}

/// The Rucio server venv: `install.sh` makes it if missing (idempotent, 0.1 s when warm).
fn venv() -> PathBuf {
    let output = Command::new(peer_dir().join("install.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("tests/peers/rucio/install.sh runs (needs python3-venv; `cargo xtask setup`)");
    assert!(
        output.status.success(),
        "tests/peers/rucio/install.sh failed; run `cargo xtask setup`"
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A real Rucio server on 127.0.0.1, stopped on drop (and by its watchdog when this test
/// process ends, should drop never run).
#[derive(Debug)]
pub struct Peer {
    python: PathBuf,
    /// The peer's directory (its configuration, keys and certificates).
    pub dir: tempfile::TempDir,
    /// What `peer.py start` printed: URLs, accounts, files.
    pub info: Value,
}

impl Peer {
    /// Starts a server with these SSH public keys registered for root, and the TLS front
    /// end for x509 when `x509`.
    pub fn start(ssh_pubkeys: &[&Path], x509: bool) -> Self {
        Self::start_with(ssh_pubkeys, x509, false)
    }

    /// Like [`start`](Self::start); `oidc` configures Rucio-brokered OIDC (`[oidc]` in the
    /// server's rucio.cfg; it needs `x509`, whose TLS front end the browser is sent to), to be
    /// finished with [`oidc`](Self::oidc) once the identity provider runs.
    pub fn start_with(ssh_pubkeys: &[&Path], x509: bool, oidc: bool) -> Self {
        let python = venv().join("bin/python");
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(&python);
        command
            .arg(peer_dir().join("peer.py"))
            .arg("start")
            .arg("--dir")
            .arg(dir.path())
            .arg("--watch-pid")
            .arg(std::process::id().to_string());
        for key in ssh_pubkeys {
            command.arg("--ssh-pubkey").arg(key);
        }
        if x509 {
            command.arg("--x509");
        }
        if oidc {
            command.arg("--oidc");
        }
        let output = command
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("peer.py runs");
        assert!(output.status.success(), "peer.py start failed");
        let info: Value = serde_json::from_slice(&output.stdout).expect("peer.py prints JSON");
        Self { python, dir, info }
    }

    /// The API and auth URL.
    pub fn url(&self) -> &str {
        self.info["url"].as_str().unwrap()
    }

    /// The URL that asks for a client certificate.
    pub fn x509_url(&self) -> &str {
        self.info["x509_url"].as_str().unwrap()
    }

    /// A file the peer made, by its `info` field.
    pub fn path(&self, field: &str) -> PathBuf {
        PathBuf::from(self.info[field].as_str().unwrap())
    }

    /// A text field of `info`.
    pub fn text(&self, field: &str) -> String {
        self.info[field].as_str().unwrap().to_owned()
    }

    fn control(&self, args: &[&str]) -> String {
        let output = Command::new(&self.python)
            .arg(peer_dir().join("peer.py"))
            .args(args)
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(output.status.success(), "peer.py {args:?} failed");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Tokens ever issued to `account`: the number of successful logins.
    pub fn logins(&self, account: &str) -> u64 {
        self.control(&["count-tokens", "--account", account])
            .parse()
            .unwrap()
    }

    /// Registers the identity provider at `issuer` (its client `rucio`) for Rucio-brokered
    /// OIDC, and its user `test-user` as root's OIDC identity.
    pub fn oidc(&self, issuer: &str) {
        self.control(&["oidc", "--issuer", issuer]);
    }

    /// Moves `updated_at` of `account`'s tokens 10 minutes into the past, so that
    /// `/auth/oidc_refresh` refreshes at the identity provider instead of handing out the
    /// token it refreshed last.
    pub fn age_tokens(&self, account: &str) {
        self.control(&["age-tokens", "--account", account]);
    }

    /// Expires `account`'s tokens in the server's DB (and its validation cache).
    pub fn expire_tokens(&self, account: &str) {
        self.control(&["expire-tokens", "--account", account]);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = Command::new(&self.python)
            .arg(peer_dir().join("peer.py"))
            .arg("stop")
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
}

/// Runs `ssh-keygen` for an RSA key (PEM when `pem`), returns the private key path.
pub fn rsa_key(dir: &Path, name: &str, pem: bool) -> PathBuf {
    let path = dir.join(name);
    let mut command = Command::new("ssh-keygen");
    command
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", name, "-f"])
        .arg(&path);
    if pem {
        command.args(["-m", "PEM"]);
    }
    let status = command
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs (package openssh-client)");
    assert!(status.success(), "ssh-keygen failed");
    path
}

pub use crate::ssh_agent::{Agent, pub_path};

/// An address on 127.0.0.1 where nothing listens (bound, then released).
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
