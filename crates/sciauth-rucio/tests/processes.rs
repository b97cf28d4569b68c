//! Eight OS processes starting at once with an empty token cache log in once.
//!
//! The processes are this test binary itself, run again with `--exact` on
//! `child_process_logs_in` and the variables below; without them that test does nothing.

use sciauth_test_support::rucio as support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sciauth_rucio::secrecy::SecretString;
use sciauth_rucio::{AuthMethod, Environment, RucioClient};
use support::Peer;

const PROCESSES: usize = 8;
const CHILD: &str = "SCIAUTH_RUCIO_TEST_CHILD";

#[test]
fn eight_processes_with_an_empty_cache_log_in_once() {
    let peer = Peer::start(&[], false);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    for round in 1..=2 {
        let go = work.path().join(format!("go-{round}"));
        let children: Vec<_> = (0..PROCESSES)
            .map(|n| {
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "child_process_logs_in",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD, format!("{n}"))
                    .env("RUCIO_TEST_URL", peer.url())
                    .env("RUCIO_TEST_USERNAME", peer.text("username"))
                    .env("RUCIO_TEST_PASSWORD", peer.text("password"))
                    .env("RUCIO_TEST_CACHE", &cache)
                    .env("RUCIO_TEST_GO", &go)
                    .env(
                        "RUCIO_TEST_READY",
                        work.path().join(format!("ready-{round}-{n}")),
                    )
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Start them together: each waits for `go` once it is ready to log in.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(0..PROCESSES).all(|n| work.path().join(format!("ready-{round}-{n}")).exists()) {
            assert!(
                Instant::now() < deadline,
                "the child processes did not get ready"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::write(&go, "").unwrap();
        for child in children {
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && stdout.contains("whoami=root"),
                "a child failed: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // One login in the first round, none in the second (the cached token serves).
        assert_eq!(peer.logins("root"), 1, "round {round}");
        let files = cache_files(&cache);
        assert_eq!(files.len(), 1, "{files:?}");
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let parsed: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
        assert_eq!(parsed["version"], 1);
        assert_eq!(parsed["account"], "root");
    }
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect()
}

/// One of the processes above; does nothing when run by the test harness itself.
#[test]
fn child_process_logs_in() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap();
    let client = RucioClient::builder()
        .environment(Environment::empty())
        .rucio_host(var("RUCIO_TEST_URL"))
        .cache_dir(var("RUCIO_TEST_CACHE"))
        .account("root")
        .auth(AuthMethod::userpass(
            var("RUCIO_TEST_USERNAME"),
            SecretString::from(var("RUCIO_TEST_PASSWORD")),
        ))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    std::fs::write(var("RUCIO_TEST_READY"), "").unwrap();
    let go = PathBuf::from(var("RUCIO_TEST_GO"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() {
        assert!(Instant::now() < deadline, "no go signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    let me = runtime.block_on(client.whoami()).unwrap();
    println!("whoami={}", me.account);
}
