//! `sciauth list`: every profile and what it holds, as a table or JSON; never a token.

use sciauth::tokens::TokenInfo;
use serde_json::json;

use crate::cli::ListArgs;
use crate::config::Profile;
use crate::context::{Context, Target};
use crate::failure::CliResult;
use crate::output::{unix, validity};

pub(crate) async fn run(context: &Context, args: ListArgs) -> CliResult {
    let config = context.config()?;
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for (name, profile) in config.profiles() {
        let target = match context.make(config, name, profile) {
            Ok(target) => target,
            Err(failure) => {
                rows.push(
                    json!({"profile": name, "kind": kind(profile), "error": failure.message}),
                );
                continue;
            }
        };
        match target {
            Target::Oidc {
                client, profile, ..
            } => {
                let key = client.manager().key(&client.request())?;
                let infos: Vec<TokenInfo> = client
                    .manager()
                    .list()
                    .await?
                    .into_iter()
                    .filter(|info| info.key == key)
                    .collect();
                let grant = infos.first();
                rows.push(json!({
                    "profile": name,
                    "kind": "oidc",
                    "issuer": profile.issuer,
                    "client_id": profile.client_id,
                    "account": key.account(),
                    "grant": if profile.is_robot() { "client_credentials" } else { "login" },
                    "logged_in": grant.is_some(),
                    "refresh_token": grant.is_some_and(|g| g.has_refresh_token),
                    "scopes": grant.map(|g| g.scopes.iter().collect::<Vec<_>>()),
                    "access_tokens": grant.map(|g| g.access_tokens.iter().map(|t| json!({
                        "audience": t.audience,
                        "scopes": t.scopes.iter().collect::<Vec<_>>(),
                        "expires_at": t.expires_at.map(unix),
                    })).collect::<Vec<_>>()).unwrap_or_default(),
                }));
            }
            Target::Rucio { client, .. } => {
                let cached = client.session().load_cached();
                let info = client.info();
                rows.push(json!({
                    "profile": name,
                    "kind": "rucio",
                    "rucio_host": client.rucio_hosts().join(","),
                    "auth_host": info.auth_host,
                    "account": info.account,
                    "vo": info.vo,
                    "auth_type": info.auth_type,
                    "logged_in": cached,
                    "expires_at": info.expires_at.map(unix),
                }));
            }
        }
    }
    if args.json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    print_table(&rows);
    Ok(())
}

fn kind(profile: &Profile) -> &'static str {
    match profile {
        Profile::Oidc(_) => "oidc",
        Profile::Rucio(_) => "rucio",
    }
}

// tidy: long, the table's columns, each measured and padded in turn
fn print_table(rows: &[serde_json::Value]) {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let expiry = |v: &serde_json::Value| {
        v.as_u64().map_or_else(
            || "-".to_owned(),
            |secs| validity(Some(sciauth::credentials::time::from_unix(secs))),
        )
    };
    let mut table = vec![
        [
            "PROFILE",
            "KIND",
            "ACCOUNT",
            "ISSUER / HOST",
            "AUDIENCE",
            "SCOPES",
            "TOKEN",
            "RENEWS BY",
        ]
        .map(str::to_owned),
    ];
    for row in rows {
        let profile = text(&row["profile"]);
        let kind = text(&row["kind"]);
        if let Some(error) = row.get("error") {
            table.push([
                profile,
                kind,
                "-".into(),
                format!("error: {}", text(error)),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
            continue;
        }
        if kind == "rucio" {
            let token = if row["logged_in"] == true {
                expiry(&row["expires_at"])
            } else {
                "none cached".to_owned()
            };
            table.push([
                profile,
                kind,
                text(&row["account"]),
                text(&row["rucio_host"]),
                "-".into(),
                "-".into(),
                token,
                format!("{} login", text(&row["auth_type"])),
            ]);
            continue;
        }
        let renews = if row["grant"] == "client_credentials" {
            "client credentials"
        } else if row["refresh_token"] == true {
            "refresh token"
        } else {
            "login"
        }
        .to_owned();
        let tokens = row["access_tokens"].as_array().cloned().unwrap_or_default();
        if tokens.is_empty() {
            table.push([
                profile,
                kind,
                text(&row["account"]),
                text(&row["issuer"]),
                "-".into(),
                "-".into(),
                if row["grant"] == "client_credentials" {
                    "none yet"
                } else {
                    "not logged in"
                }
                .into(),
                if row["grant"] == "client_credentials" {
                    renews
                } else {
                    "-".into()
                },
            ]);
            continue;
        }
        for token in tokens {
            let scopes = token["scopes"]
                .as_array()
                .map(|s| s.iter().map(&text).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            table.push([
                profile.clone(),
                kind.clone(),
                text(&row["account"]),
                text(&row["issuer"]),
                text(&token["audience"]),
                scopes,
                expiry(&token["expires_at"]),
                renews.clone(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
