//! `cargo xtask bench-rucio`: `sciauth rucio whoami` with a cached token beside the official
//! `rucio whoami`, whole process, in one hyperfine run (docs/benchmarks.md).
//!
//! Both run against the real Rucio server of `tests/peers/rucio` on 127.0.0.1, from the same
//! `rucio.cfg` (userpass, found through `RUCIO_CONFIG`), in a temporary home: sciauth logs
//! in once, and both then use the token in the Rucio client's token file, which they share.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{cargo, project_root, run_command, setup};

pub(crate) fn run(runs: u32) -> Result<(), String> {
    setup::hyperfine()?;
    setup::run()?;
    cargo(&[
        "build",
        "--quiet",
        "--release",
        "-p",
        "sciauth-cli",
        "--bin",
        "sciauth",
    ])?;
    let root = project_root();
    let venv = capture(Command::new("bash").arg(root.join("tests/peers/rucio/install.sh")))?;
    let home = tempdir()?;
    let result = bench(&root, Path::new(venv.trim()), &home, runs);
    let _ = std::fs::remove_dir_all(&home);
    result
}

// tidy: long, one benchmark script, step after step
fn bench(root: &Path, venv: &Path, home: &Path, runs: u32) -> Result<(), String> {
    let run_dir = home.join("peer");
    let peer = root.join("tests/peers/rucio/peer.py");
    let python = venv.join("bin/python");
    let info = capture(
        Command::new(&python)
            .arg(&peer)
            .args(["start", "--dir"])
            .arg(&run_dir)
            .arg("--watch-pid")
            .arg(std::process::id().to_string()),
    )?;
    let stop = || {
        let _ = Command::new(&python)
            .arg(&peer)
            .args(["stop", "--dir"])
            .arg(&run_dir)
            .stdout(Stdio::null())
            .status();
    };
    let result = (|| {
        let field = |name: &str| {
            let key = format!("\"{name}\": \"");
            let start = info
                .find(&key)
                .ok_or_else(|| format!("peer.py printed no {name}"))?
                + key.len();
            let len = info[start..].find('"').unwrap_or(0);
            Ok::<_, String>(info[start..start + len].to_owned())
        };
        let url = field("url")?;
        let cfg = home.join("rucio.cfg");
        std::fs::write(
            &cfg,
            format!(
                "[client]\nrucio_host = {url}\nauth_host = {url}\nauth_type = userpass\n\
                 username = {}\npassword = {}\naccount = root\n",
                field("username")?,
                field("password")?
            ),
        )
        .map_err(|e| format!("cannot write {}: {e}", cfg.display()))?;
        for dir in ["tmp", "runtime", "cache"] {
            std::fs::create_dir_all(home.join(dir)).map_err(|e| e.to_string())?;
        }
        let sciauth = root.join("target/release/sciauth");
        let rucio = root.join(".venv/bin/rucio");
        let environment = |command: &mut Command| {
            command
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("HOME", home)
                .env("RUCIO_CONFIG", &cfg)
                .env("TMPDIR", home.join("tmp"))
                .env("XDG_RUNTIME_DIR", home.join("runtime"))
                .env("XDG_CACHE_HOME", home.join("cache"))
                .env("LOGNAME", "bench")
                .env("USER", "bench");
        };
        // One login; both then take the token from the shared file.
        let mut login = Command::new(&sciauth);
        login.args(["rucio", "whoami"]).stdout(Stdio::null());
        environment(&mut login);
        run_command(&mut login)?;
        let mut check = Command::new(&rucio);
        check.arg("whoami").stdout(Stdio::null());
        environment(&mut check);
        run_command(&mut check)?;
        let before = logins(&python, &peer, &run_dir)?;

        let export = root.join("target/bench-rucio.md");
        let mut hyperfine = Command::new("hyperfine");
        hyperfine
            .args(["-N", "--warmup", "5", "--runs"])
            .arg(runs.to_string())
            .arg("--export-markdown")
            .arg(&export)
            .arg(format!("{} rucio whoami", sciauth.display()))
            .arg(format!("{} whoami", rucio.display()));
        environment(&mut hyperfine);
        hyperfine.env("PATH", "/usr/local/bin:/usr/bin:/bin");
        run_command(&mut hyperfine)?;
        let after = logins(&python, &peer, &run_dir)?;
        if after != before {
            return Err(format!(
                "{} logins happened during the benchmark: it did not measure cached tokens",
                after - before
            ));
        }
        eprintln!(
            "xtask: no login during the benchmark (the server counted {after} in all); \
             table in {}",
            export.display()
        );
        Ok(())
    })();
    stop();
    result
}

fn logins(python: &Path, peer: &Path, run_dir: &Path) -> Result<u64, String> {
    capture(
        Command::new(python)
            .arg(peer)
            .args(["count-tokens", "--account", "root", "--dir"])
            .arg(run_dir),
    )?
    .trim()
    .parse()
    .map_err(|e| format!("peer.py count-tokens: {e}"))
}

fn capture(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}").replace('"', "");
    eprintln!("xtask: $ {shown}");
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{shown} failed ({})", output.status));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("{shown}: {e}"))
}

fn tempdir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("sciauth-bench-rucio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
