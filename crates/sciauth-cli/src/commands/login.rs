//! `sciauth login`: the device flow (a code to enter on any device, with a spinner while the
//! provider waits) or the browser flow (loopback redirect, on a registered URI or port where
//! the provider demands one; a pasted address over SSH). A robot profile needs none.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use sciauth::LoginOptions;
use sciauth::tokens::{DeviceAuthorization, is_ssh_session};

use crate::cli::LoginArgs;
use crate::config::LoginFlow;
use crate::context::{Context, split_scopes};
use crate::failure::CliResult;
use crate::output::validity;

pub(crate) async fn run(context: &Context, args: LoginArgs) -> CliResult {
    let (name, profile, client) = context.oidc_target(
        "a Rucio profile logs in by itself at its first request; try `sciauth rucio whoami`",
    )?;
    if profile.is_robot() {
        eprintln!(
            "Profile {name} is a robot account (grant = \"client_credentials\"): it needs no \
             login. `sciauth token` gets its token with the client's own credentials."
        );
        return Ok(());
    }
    let device = if args.device {
        true
    } else if args.browser {
        false
    } else {
        match profile.login {
            Some(LoginFlow::Device) => true,
            Some(LoginFlow::Browser) => false,
            None => headless(),
        }
    };
    let scopes = match split_scopes(&args.scopes) {
        given if !given.is_empty() => given,
        _ => profile.scopes.clone(),
    };
    if !args.force
        && let Ok(token) = client.load_tokens(scopes.iter()).await
    {
        eprintln!("Already logged in ({name}); `sciauth login --force` logs in again.");
        return report(&token);
    }
    let mut options = LoginOptions::new()
        .force(true)
        .no_browser(args.no_browser)
        .device(device)
        // offline_access asks for a refresh token; the browser flow then needs consent.
        .refresh_tokens(scopes.iter().any(|s| s == "offline_access"));
    if !scopes.is_empty() {
        options = options.scopes(scopes);
    }
    if let Some(uri) = &profile.redirect_uri {
        options = options.redirect_uri(uri);
    } else if !profile.redirect_ports.is_empty() {
        options = options.redirect_ports(profile.redirect_ports.iter().copied());
    }
    // The command line's parameters replace the profile's of the same name.
    let mut params = profile.login_params.clone();
    params.extend(args.params.iter().cloned());
    for (param, value) in params {
        options = options.query_param(param, value);
    }
    let issuer = profile.issuer.clone();
    let spinner = Spinner::default();
    if device {
        let waiting = spinner.clone();
        options = options.on_user_code(move |code| {
            show_user_code(&issuer, code);
            waiting.start("Waiting for you to approve the login");
        });
    }
    let result = client.login(options).await;
    spinner.stop();
    let token = result?;
    eprintln!("Logged in ({name}).");
    report(&token)
}

fn report(token: &sciauth::Token) -> CliResult {
    eprintln!(
        "Access token: {}, scopes {}; refresh token: {}.",
        validity(token.expires_at()),
        token.scopes(),
        if token.refresh_token().is_some() {
            "yes"
        } else {
            "no (log in again when it expires)"
        }
    );
    Ok(())
}

/// No browser can open here: an SSH session, or (on Unix) no display.
fn headless() -> bool {
    let no_display = cfg!(all(unix, not(target_os = "macos")))
        && ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .all(|v| std::env::var_os(v).is_none_or(|v| v.is_empty()));
    is_ssh_session() || no_display
}

fn show_user_code(issuer: &str, code: &DeviceAuthorization) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "To log in to {issuer}:");
    match code.verification_uri_complete() {
        Some(complete) => {
            let _ = writeln!(err, "  open {complete}");
            let _ = writeln!(
                err,
                "  (or open {} and enter the code {})",
                code.verification_uri(),
                code.user_code()
            );
        }
        None => {
            let _ = writeln!(
                err,
                "  open {} and enter the code {}",
                code.verification_uri(),
                code.user_code()
            );
        }
    }
    let _ = err.flush();
}

/// A spinner on stderr while the device flow polls; nothing when stderr is not a terminal
/// (a log file should not fill with frames).
#[derive(Clone, Default)]
struct Spinner {
    task: std::sync::Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Spinner {
    fn start(&self, message: &'static str) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let started = Instant::now();
        let task = tokio::spawn(async move {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for frame in FRAMES.iter().cycle() {
                tick.tick().await;
                eprint!("\r{frame} {message}… {}s", started.elapsed().as_secs());
            }
        });
        if let Ok(mut slot) = self.task.lock() {
            *slot = Some(task);
        }
    }

    fn stop(&self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut slot| slot.take()) {
            task.abort();
            // Clears the spinner's line.
            eprint!("\r\x1b[2K");
        }
    }
}
