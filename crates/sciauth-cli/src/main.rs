//! The `sciauth` command: gets a person or a program authenticated to research-computing
//! services, and prints a valid token where tools ask for one (`$(sciauth token)`).
//!
//! This is the top layer of sciauth; everything it does is a call into the facade crate
//! `sciauth`, which is what a program should use instead of running this command.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser};

mod cli;
mod commands;
mod failure;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    // A current-thread runtime: the command does one thing at a time, and starting worker
    // threads would cost more than `sciauth token` takes in all.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sciauth: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Jwt(args) => commands::jwt::run(args).await,
            Command::Request(args) => commands::request::run(args).await,
            Command::Completions { shell } => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "sciauth",
                    &mut std::io::stdout(),
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// `-v` shows sciauth's own debug events, `-vv` everything at trace level; both on stderr.
/// `RUST_LOG` overrides. Secrets never reach the logs: every layer keeps them out.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match verbose {
        0 => match EnvFilter::try_from_default_env() {
            Ok(filter) => filter,
            Err(_) => return,
        },
        1 => EnvFilter::new(
            "info,sciauth=debug,sciauth_credentials=debug,sciauth_transport=debug,\
             sciauth_tokens=debug,sciauth_rucio=debug,sciauth_cli=debug",
        ),
        _ => EnvFilter::new("trace"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
