//! The `sciauth` command: gets a person or a program authenticated to research-computing
//! services, and prints a valid token where tools ask for one (`$(sciauth token)`).
//!
//! This is the top layer of sciauth; everything it does is a call into the facade crate
//! `sciauth`, which is what a program should use instead of running this command. Each
//! subcommand is one module of `commands`; profiles come from `config` and become clients in
//! `context`; `failure` turns every error into one line and an exit code.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser};

mod cli;
mod commands;
mod config;
mod context;
mod failure;
mod output;
mod unlock;

use cli::{Cli, Command};
use context::Context;
use failure::CliResult;

fn main() -> ExitCode {
    let cli: Cli = match cli::TokenCommandLine::try_parse() {
        Ok(token) => token.into(),
        Err(_) => Cli::parse(),
    };
    if let Command::Serve = cli.command {
        // A service wants worker threads: its own runtime; and its log format comes from its
        // configuration.
        return commands::serve::main(cli.selection.config, cli.verbose);
    }
    init_tracing(cli.verbose);
    // `$(sciauth token)` and `$(sciauth rucio token)` with a valid stored token: answered
    // before a runtime exists.
    let mut loaded = None;
    if matches!(cli.command, Command::Token(_) | Command::Rucio(_))
        && let Ok(context) = Context::load(cli.selection.clone())
    {
        let answer = match &cli.command {
            Command::Token(args) => commands::token::answer_now(&context, args),
            Command::Rucio(args) => commands::rucio::answer_now(&context, args),
            _ => None,
        };
        if let Some(result) = answer {
            return match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(failure) => failure.report(),
            };
        }
        loaded = Some(context);
    }
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
    match runtime.block_on(run(cli, loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Runs the command; `loaded` is the context if the cached path already read it.
async fn run(cli: Cli, loaded: Option<Context>) -> CliResult {
    let serve_config = cli.selection.config.clone();
    let context = || match loaded {
        Some(context) => Ok(context),
        None => Context::load(cli.selection),
    };
    match cli.command {
        Command::Login(args) => commands::login::run(&context()?, args).await,
        Command::Token(args) => commands::token::run(&context()?, args).await,
        Command::Exchange(args) => commands::exchange::run(&context()?, args).await,
        Command::Inspect(args) => commands::inspect::run(&context()?, args).await,
        Command::Check(args) => commands::check::run(&context()?, args).await,
        Command::Logout => commands::logout::run(&context()?).await,
        Command::Lock => commands::store::lock(&context()?),
        Command::Store(command) => commands::store::run(&context()?, command),
        Command::List(args) => commands::list::run(&context()?, args).await,
        Command::Jwt(args) => commands::jwt::run(args).await,
        Command::Request(args) => commands::request::run(&context()?, args).await,
        Command::Rucio(args) => commands::rucio::run(&context()?, args).await,
        Command::Serve => commands::serve::run(serve_config).await,
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
}

/// Without `-v`, sciauth's own warnings (a token file skipped as unsafe, TLS verification
/// turned off; `serve` sets up its own logging at info instead); `-v` shows sciauth's own
/// debug events, `-vv` everything at trace level; all on stderr. `RUST_LOG` overrides.
/// Secrets never reach the logs: every layer keeps them out.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = match verbose {
        0 => match EnvFilter::try_from_default_env() {
            Ok(filter) => filter,
            Err(_) => {
                // The default: sciauth's own warnings. A `Targets` filter (a prefix match)
                // costs the cached `sciauth token` nothing measurable, where parsing an
                // `EnvFilter` would.
                tracing_subscriber::fmt()
                    .with_writer(std::io::stderr)
                    .with_max_level(LevelFilter::WARN)
                    .finish()
                    .with(Targets::new().with_target("sciauth", LevelFilter::WARN))
                    .init();
                return;
            }
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
