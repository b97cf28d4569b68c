//! `sciauth request`: an HTTP request with a credential, like curl. The credential is an
//! SSH-key JWT (`--identity`), the WLCG-discovered token (`--discovery`), or the chosen
//! profile's: its token (refreshed as needed, renewed once after a 401) or, for a rucio
//! profile, its Rucio session (with `X-Rucio-VO`/`X-Rucio-Account`, paths relative to the
//! Rucio host). Without any of them, the request goes out unauthenticated.

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use sciauth::credentials::DEFAULT_JWT_LIFETIME;
use sciauth::credentials::text::printable;
use sciauth::transport::{Method, Preferences, RequestBuilder, Transport};

use crate::cli::RequestArgs;
use crate::context::{Context, Target, token_request};
use crate::failure::{CliResult, Exit, Failure};

// tidy: long, one command from its options to its output, read top to bottom
pub(crate) async fn run(context: &Context, args: RequestArgs) -> CliResult {
    let (method, url) = match &args.url {
        Some(url) => {
            let method = Method::from_bytes(args.method_or_url.to_ascii_uppercase().as_bytes())
                .map_err(|_| {
                    Failure::config(format!("{:?} is not an HTTP method", args.method_or_url))
                })?;
            (method, url.clone())
        }
        None if args.data.is_some() => (Method::POST, args.method_or_url.clone()),
        None => (Method::GET, args.method_or_url.clone()),
    };
    let mut request = if let Some(jwt) = super::ssh_jwt(&args.key, DEFAULT_JWT_LIFETIME).await? {
        transport(&args, Some(Arc::from(jwt.into_credential())))?.request(method, &url)
    } else if args.discovery {
        let Some(found) = sciauth::discover_bearer_token()? else {
            return Err(Failure::new(
                Exit::LoginRequired,
                "WLCG token discovery found no token (BEARER_TOKEN, BEARER_TOKEN_FILE, \
                 $XDG_RUNTIME_DIR/bt_u<uid>, /tmp/bt_u<uid>)",
            )
            .hint("write one with `sciauth token --write-discovery`"));
        };
        tracing::debug!(source = %found.source(), "using a discovered bearer token");
        transport(&args, Some(Arc::new(found.into_credential()?)))?.request(method, &url)
    } else if context.profile_chosen() {
        match context.target()? {
            Target::Oidc {
                client, profile, ..
            } => {
                let token = token_request(
                    &client,
                    profile,
                    &args.scopes,
                    args.audience.as_deref(),
                    Duration::from_secs(10),
                );
                let credential = client.manager().credential(token);
                transport(&args, Some(Arc::new(credential)))?.request(method, &url)
            }
            Target::Rucio { client, .. } => {
                if args.ca.is_some() {
                    return Err(Failure::config(
                        "a rucio profile takes its CA certificates from ca_cert, not --ca",
                    ));
                }
                client.request(method, &url)
            }
        }
    } else {
        transport(&args, None)?.request(method, &url)
    };

    if let Some(preferences) = &args.preferences {
        request = request.preferences(Preferences::parse(preferences)?);
    }
    request = with_headers_and_body(request, &args)?;
    let response = request.send().await?;

    if args.include {
        eprintln!("HTTP {}", response.status());
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            eprintln!("{name}: {}", printable(&value, 8 * 1024));
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(response.bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(Exit::Failure, format!("cannot write the response: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let exit = if matches!(status.as_u16(), 401 | 403) {
        Exit::Refused
    } else {
        Exit::Failure
    };
    Err(Failure::new(
        exit,
        format!("{} answered HTTP {status}", without_query(&url)),
    ))
}

fn transport(
    args: &RequestArgs,
    credential: Option<Arc<dyn sciauth::Credential>>,
) -> CliResult<Transport> {
    let mut builder = Transport::builder().timeout(Duration::from_secs(120));
    if let Some(ca) = &args.ca {
        builder = if ca.is_dir() {
            builder.root_ca_dir(ca)
        } else {
            builder.root_ca_pem_file(ca)
        };
    }
    if let Some(credential) = credential {
        builder = builder.shared_credential(credential);
    }
    Ok(builder.build()?)
}

fn with_headers_and_body(
    mut request: RequestBuilder,
    args: &RequestArgs,
) -> CliResult<RequestBuilder> {
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            return Err(Failure::config(format!(
                "header {header:?} is not `Name: value`"
            )));
        };
        request = request.header(name.trim(), value.trim());
    }
    if let Some(data) = &args.data {
        request = request.body(read_data(data)?);
    }
    Ok(request)
}

/// `@FILE` reads a file, `@-` standard input, anything else is the body itself.
fn read_data(data: &str) -> CliResult<Vec<u8>> {
    match data.strip_prefix('@') {
        Some("-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| Failure::config(format!("cannot read the body from stdin: {e}")))?;
            Ok(body)
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| Failure::config(format!("cannot read the body from {path}: {e}"))),
        None => Ok(data.as_bytes().to_vec()),
    }
}

fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}
