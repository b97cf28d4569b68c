//! Runs the built `sciauth` binary in an isolated home: its own HOME and XDG directories,
//! and none of the caller's sciauth, bearer-token or Rucio variables.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    unreachable_pub,
    reason = "shared by test binaries, which are crate roots"
)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

/// A home directory for the command, and where its configuration goes.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["config/sciauth", "data", "cache", "runtime", "tmp"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Self { dir }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes `~/.config/sciauth/config.toml`.
    pub fn config(&self, text: &str) {
        std::fs::write(self.path("config/sciauth/config.toml"), text).unwrap();
    }

    /// The command, with the isolated environment.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sciauth"));
        command.args(args);
        self.isolated(command)
    }

    /// The command run under `strace -f`, which writes the system calls named in `calls`
    /// (`clone,clone3,socket`) to `trace`.
    pub fn traced(&self, trace: &Path, calls: &str, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("strace");
        command
            .args(["-f", "-qq", "-e", &format!("trace={calls}"), "-o"])
            .arg(trace)
            .arg(env!("CARGO_BIN_EXE_sciauth"))
            .args(args);
        self.isolated(command)
    }

    /// Another program (the official `rucio` client), with the same isolated environment.
    pub fn program(&self, program: &Path, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command.args(args);
        self.isolated(command)
    }

    fn isolated(&self, mut command: tokio::process::Command) -> tokio::process::Command {
        command.stdin(Stdio::null()).kill_on_drop(true);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("SCIAUTH_")
                || name.starts_with("BEARER_TOKEN")
                || name.starts_with("RUCIO_")
                || name.starts_with("XDG_")
                || name == "RUST_LOG"
                || name.starts_with("SSH_")
                || name.ends_with("_proxy")
                || name.ends_with("_PROXY")
            {
                command.env_remove(&*name);
            }
        }
        command
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_RUNTIME_DIR", self.path("runtime"))
            // The Rucio client keeps its token in <tmp>/<user>/.rucio_<user>: here, in the
            // home, under a fixed user name.
            .env("TMPDIR", self.path("tmp"))
            .env_remove("TEMP")
            .env_remove("TMP")
            .env("LOGNAME", "tester")
            .env("USER", "tester")
            .env_remove("VIRTUAL_ENV")
            .env_remove("CONDA_PREFIX");
        command
    }

    /// Runs the command to its end.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    /// Runs the command and expects success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "sciauth {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The token store file of `account`.
    pub fn store_file(&self, account: &str) -> PathBuf {
        self.path(&format!("data/sciauth/tokens/{account}.json"))
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// The system calls a path without a runtime must not make: a thread, a process, a socket.
const THREAD_PROCESS_OR_SOCKET: [&str; 6] = [
    "clone(", "clone3(", "fork(", "vfork(", "socket(", "connect(",
];

/// Panics, naming `context`, when a line of an strace of [`Home::traced`] started a thread
/// or a process, opened a socket, or names one of `never_read` (a secret file, a key).
pub fn assert_quiet_trace(calls: &str, never_read: &[&str], context: &str) {
    for line in calls.lines() {
        assert!(
            !THREAD_PROCESS_OR_SOCKET
                .iter()
                .any(|call| line.contains(call)),
            "{context}: the cached path made {line}"
        );
        for file in never_read {
            assert!(!line.contains(file), "{context}: read {file}: {line}");
        }
    }
}

/// Runs `command` (a `sciauth login --device`), approving as `alice` the user code it shows
/// through the provider's own pages, and returns what it showed on stderr. Panics if the
/// login fails.
pub async fn device_login(mut command: tokio::process::Command, issuer: &str) -> String {
    use tokio::io::{AsyncBufReadExt as _, BufReader};

    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut shown = String::new();
    let mut approved = false;
    while let Some(line) = lines.next_line().await.unwrap() {
        shown.push_str(&line);
        shown.push('\n');
        if !approved && let Some((_, code)) = line.split_once("user_code=") {
            sciauth_test_support::idp::device_approve(issuer, code.trim(), Some("alice")).await;
            approved = true;
        }
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "login failed: {shown}");
    shown
}
