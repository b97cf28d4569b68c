//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory, `postgres`
//! on a Unix socket there (no TCP), one per test binary, one database per test.
//!
//! PostgreSQL refuses to run as root; when the tests run as root (CI), `initdb` and
//! `postgres` run as `nobody` through `setpriv`, in a directory owned by `nobody`.
//!
//! The server runs under a small shell that holds a pipe from this process: when the pipe
//! closes (this process exits, however it exits), the shell stops PostgreSQL and removes the
//! directory. So no cluster outlives its test binary.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the cluster may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The running cluster of this test binary (or of one test: [`Cluster::dedicated`]).
#[derive(Debug)]
pub struct Cluster {
    socket_dir: PathBuf,
    /// 127.0.0.1's port, when the cluster also listens on TCP.
    tcp_port: Option<u16>,
    // Kept open: the watchdog shell stops PostgreSQL when it closes.
    watchdog: Mutex<(Child, ChildStdin)>,
    next_database: AtomicU32,
}

/// The cluster of this test binary, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

/// The directory holding PostgreSQL's programs: `initdb` on PATH, or the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian keeps them off PATH).
fn bin_dir() -> PathBuf {
    if let Ok(output) = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        && output.status.success()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if let Some(dir) = path.parent() {
            return dir.to_owned();
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): \
             run `cargo xtask setup`"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command that runs `program` as the cluster's owner (`nobody` when we are root).
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl Cluster {
    fn start() -> Cluster {
        Self::start_with(None)
    }

    /// A cluster of its own, for a test that stops and starts it ([`stop`](Self::stop),
    /// [`start_again`](Self::start_again)); stopped and removed when dropped.
    pub fn dedicated() -> Cluster {
        Self::start_with(None)
    }

    /// A cluster of its own that also listens on 127.0.0.1 at a free port (the benchmark's).
    pub fn dedicated_on_tcp() -> Cluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Self::start_with(Some(port))
    }

    fn start_with(tcp_port: Option<u16>) -> Cluster {
        let bin = bin_dir();
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("sciauth-pg-")
            .tempdir()
            .expect("a temporary directory")
            .keep();
        if root {
            let status = Command::new("chown")
                .args(["nobody:nogroup"])
                .arg(&dir)
                .status()
                .expect("chown runs");
            assert!(status.success(), "cannot chown {}", dir.display());
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let data = dir.join("data");
        let output = as_owner(&bin.join("initdb"), root)
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
            ])
            .arg("-D")
            .arg(&data)
            .env("LC_ALL", "C")
            .output()
            .expect("initdb runs");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The watchdog: start postgres in the background, then read commands from our pipe:
        // `stop` stops it (fast shutdown) and waits, `start` starts it again. When the pipe
        // closes, stop it, wait, and remove the directory.
        let script = r#"
            dir="$1"; shift
            "$@" </dev/null >>"$dir/postgres.log" 2>&1 &
            pid=$!
            while read -r command; do
                case "$command" in
                    stop) kill -INT "$pid" 2>/dev/null; wait "$pid"; pid= ;;
                    start) "$@" </dev/null >>"$dir/postgres.log" 2>&1 & pid=$! ;;
                esac
            done
            [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid"
            rm -rf "$dir"
        "#;
        let listen = match tcp_port {
            Some(port) => format!("listen_addresses=127.0.0.1 port={port}"),
            None => "listen_addresses=".to_owned(),
        };
        let mut command = as_owner(Path::new("/bin/sh"), root);
        command
            .arg("-c")
            .arg(script)
            .arg("watchdog")
            .arg(&dir)
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .args(listen.split(' ').flat_map(|setting| ["-c", setting]))
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=32MB",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("sh runs");
        let stdin = child.stdin.take().expect("stdin is piped");
        let socket = dir.join(format!(".s.PGSQL.{}", tcp_port.unwrap_or(5432)));
        let started = Instant::now();
        while !socket.exists() {
            if started.elapsed() > START_TIMEOUT {
                let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
                panic!("PostgreSQL did not start within {START_TIMEOUT:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Cluster {
            socket_dir: dir,
            tcp_port,
            watchdog: Mutex::new((child, stdin)),
            next_database: AtomicU32::new(0),
        }
    }

    fn socket(&self) -> PathBuf {
        self.socket_dir
            .join(format!(".s.PGSQL.{}", self.tcp_port.unwrap_or(5432)))
    }

    fn tell_watchdog(&self, command: &str) {
        use std::io::Write as _;
        let mut watchdog = self.watchdog.lock().unwrap();
        writeln!(watchdog.1, "{command}").expect("the watchdog reads its pipe");
        watchdog.1.flush().unwrap();
    }

    /// Stops PostgreSQL (fast shutdown: sessions are ended) and waits until it is gone.
    pub fn stop(&self) {
        self.tell_watchdog("stop");
        let started = Instant::now();
        while self.socket().exists() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "PostgreSQL did not stop within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts PostgreSQL again after [`stop`](Self::stop) and waits for its socket.
    pub fn start_again(&self) {
        self.tell_watchdog("start");
        let started = Instant::now();
        while !self.socket().exists() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "PostgreSQL did not start again within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The connection string of `database`: over TCP to 127.0.0.1 if the cluster listens
    /// there, else over its Unix socket.
    pub fn url(&self, database: &str) -> String {
        match self.tcp_port {
            Some(port) => format!("host=127.0.0.1 port={port} user=postgres dbname={database}"),
            None => format!(
                "host={} user=postgres dbname={database}",
                self.socket_dir.display()
            ),
        }
    }

    /// A new, empty database; its connection string.
    pub async fn database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            self.next_database.fetch_add(1, Ordering::Relaxed)
        );
        let started = Instant::now();
        loop {
            match tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    client
                        .batch_execute(&format!("CREATE DATABASE {name}"))
                        .await
                        .expect("CREATE DATABASE");
                    return self.url(&name);
                }
                // The socket exists a moment before the server accepts connections.
                Err(error) if started.elapsed() < START_TIMEOUT => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("cannot connect to the test PostgreSQL: {error}"),
            }
        }
    }
}
