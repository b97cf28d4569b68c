//! `sciauth serve --config FILE`: the token service (`sciauth-server`), until SIGINT or
//! SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use sciauth_server::{Config, ErrorKind, Server};

use crate::failure::{CliResult, Exit, Failure};

/// Runs the service on a runtime with worker threads (one per core).
pub(crate) fn main(config: Option<PathBuf>) -> ExitCode {
    // A service logs its start, its refusals and failures even without -v.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Failure::new(Exit::Failure, format!("cannot start: {e}")).report(),
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Runs the service on the current runtime.
pub(crate) async fn run(config: Option<PathBuf>) -> CliResult {
    let Some(path) = config else {
        return Err(
            Failure::config("sciauth serve needs the server configuration: --config FILE")
                .hint("see docs/sciauth-server.md and crates/sciauth-server/example.toml"),
        );
    };
    let config = Config::from_file(&path).map_err(failure)?;
    Server::new(config)
        .await
        .map_err(failure)?
        .run()
        .await
        .map_err(failure)
}

fn failure(error: sciauth_server::Error) -> Failure {
    let exit = match error.kind() {
        ErrorKind::Config | ErrorKind::Tls => Exit::BadConfig,
        _ => Exit::Failure,
    };
    Failure::new(exit, error.to_string())
}
