//! `sciauth jwt`: prints a UNICORE/UFTP JWT signed with an SSH key.

use std::time::Duration;

use sciauth::credentials::secrecy::ExposeSecret as _;

use crate::cli::JwtArgs;
use crate::failure::{CliResult, Failure};

pub(crate) async fn run(args: JwtArgs) -> CliResult {
    let lifetime = Duration::from_secs(args.lifetime);
    let Some(jwt) = super::ssh_jwt(&args.key, lifetime).await? else {
        return Err(Failure::config(
            "say which key signs: --identity KEY --user NAME (or --agent --user NAME)",
        ));
    };
    println!("{}", jwt.token().await?.expose_secret());
    Ok(())
}
