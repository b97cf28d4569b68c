//! `sciauth serve --config FILE`: the token service (`sciauth-server`), until SIGINT or
//! SIGTERM (which drain it); SIGHUP reloads the configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use sciauth_server::{Config, ErrorKind, LogFormat, Server};
use tracing_subscriber::EnvFilter;

use crate::failure::{CliResult, Exit, Failure};

/// Reads the configuration, starts the log in its format, and runs the service on a runtime
/// with worker threads (one per core).
pub(crate) fn main(config: Option<PathBuf>, verbose: u8) -> ExitCode {
    let config = match read(config) {
        Ok(config) => config,
        Err(failure) => return failure.report(),
    };
    init_log(config.log_format(), verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Failure::new(Exit::Failure, format!("cannot start: {e}")).report(),
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Runs the service on the current runtime (the log is the caller's).
pub(crate) async fn run(config: Option<PathBuf>) -> CliResult {
    serve(read(config)?).await
}

fn read(config: Option<PathBuf>) -> Result<Config, Failure> {
    let Some(path) = config else {
        return Err(
            Failure::config("sciauth serve needs the server configuration: --config FILE")
                .hint("see docs/sciauth-server.md and crates/sciauth-server/example.toml"),
        );
    };
    Config::from_file(&path).map_err(failure)
}

async fn serve(config: Config) -> CliResult {
    Server::new(config)
        .await
        .map_err(failure)?
        .run()
        .await
        .map_err(failure)
}

/// A service logs its start, every request (one line each), its refusals and failures even
/// without -v, on stderr: as text, or one JSON object per line (`server.log_format`).
/// `RUST_LOG` overrides the levels; -v adds sciauth's debug events, -vv everything.
fn init_log(format: LogFormat, verbose: u8) {
    let filter = match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        1 => EnvFilter::new(
            "info,sciauth=debug,sciauth_credentials=debug,sciauth_transport=debug,\
             sciauth_tokens=debug,sciauth_server=debug",
        ),
        _ => EnvFilter::new("trace"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        _ => builder.try_init(),
    };
}

fn failure(error: sciauth_server::Error) -> Failure {
    let exit = match error.kind() {
        ErrorKind::Config | ErrorKind::Tls => Exit::BadConfig,
        _ => Exit::Failure,
    };
    Failure::new(exit, error.to_string())
}
