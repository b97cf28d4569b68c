//! `sciauth rucio ...`: Rucio calls with a rucio profile's session.

use sciauth::credentials::text::printable;

use crate::cli::RucioCommand;
use crate::context::{Context, Target};
use crate::failure::{CliResult, Failure};

pub(crate) async fn run(context: &Context, command: RucioCommand) -> CliResult {
    let Target::Rucio { client, .. } = context.target()? else {
        return Err(Failure::config(
            "`sciauth rucio` needs a rucio profile (kind = \"rucio\"); choose one with --profile",
        ));
    };
    match command {
        RucioCommand::Whoami => {
            let me = client.whoami().await?;
            // As `rucio whoami` prints it: one `key: value` per line.
            let mut fields = vec![
                ("account".to_owned(), me.account.clone()),
                (
                    "account_type".to_owned(),
                    me.account_type.clone().unwrap_or_default(),
                ),
                ("status".to_owned(), me.status.clone().unwrap_or_default()),
                ("email".to_owned(), me.email.clone().unwrap_or_default()),
            ];
            for (key, value) in &me.extra {
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                fields.push((key.clone(), text));
            }
            let width = fields
                .iter()
                .map(|(k, _)| k.len())
                .max()
                .unwrap_or(0)
                .min(40);
            // The server's words on a terminal: escaped.
            for (key, value) in fields {
                let key = printable(&key, 100);
                println!("{key:<width$}: {}", printable(&value, 1000));
            }
            Ok(())
        }
    }
}
