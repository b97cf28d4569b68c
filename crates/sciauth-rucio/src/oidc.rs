//! The Rucio-brokered OIDC login (`auth_type = oidc` of the Rucio client): the Rucio server
//! runs the authorization code flow with its identity provider, the user approves in a
//! browser, and the client fetches the Rucio token by polling the server or with the code the
//! browser shows. The server keeps the refresh token; `/auth/oidc_refresh` renews the access
//! token before it expires.
//!
//! The wire contract is rucio-clients 41's `BaseClient.__get_token_oidc` and
//! `__refresh_token_oidc`, and the server's `flaskapi/v1/auth.py` (`OIDC`, `RedirectOIDC`,
//! `RefreshOIDC`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sciauth_credentials::text::printable;
use sciauth_transport::{StatusCode, Transport, Url};
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::{Error, ErrorKind, Result};
use crate::login::{LoginTarget, SessionToken, header_text, parse_expires, refused_or_server};

/// Rucio's default `oidc_scope`.
const DEFAULT_SCOPE: &str = "openid profile";
/// Rucio's default `auth_oidc_refresh_before_exp`: 20 minutes.
const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(20 * 60);
/// How often, and how long, the client polls for the token (rucio-clients: every 2 s, 180 s).
const POLL_INTERVAL: Duration = Duration::from_secs(2);
const POLL_TIMEOUT: Duration = Duration::from_secs(180);
/// How often the code the browser shows may be typed (rucio-clients: 3).
const CODE_TRIES: usize = 3;
/// The longest code accepted from the user (Rucio's are 50 characters).
const MAX_CODE_LEN: usize = 200;

/// How the login talks to the person: where the URL to open goes, and where the code the
/// browser shows comes from (`oidc_polling = false`).
///
/// [`StderrPrompt`] prints to stderr and reads the code from stdin, as the Rucio client does.
#[async_trait]
pub trait OidcPrompt: Send + Sync + fmt::Debug {
    /// Shows the URL the user opens in a browser to log in. `url` is the server's, escaped
    /// for a terminal; it is a one-time capability for this login, so it goes to the user
    /// only, never to a log.
    fn show_url(&self, url: &str);

    /// Asks for the code the browser shows after the login; `None` when nobody can answer.
    /// `attempt` counts from 1; a later attempt means the server did not take the last code.
    async fn read_code(&self, attempt: usize) -> Option<SecretString>;
}

/// The Rucio client's prompt: the URL on stderr, the code read from a line of stdin.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrPrompt;

#[async_trait]
impl OidcPrompt for StderrPrompt {
    fn show_url(&self, url: &str) {
        eprintln!(
            "To log in to Rucio, open this address in a browser and log in with your identity \
             provider:\n\n    {url}\n"
        );
    }

    async fn read_code(&self, attempt: usize) -> Option<SecretString> {
        if attempt == 1 {
            eprintln!("Then type the code the browser shows and press Enter:");
        } else {
            eprintln!("The Rucio server did not take that code; type it again:");
        }
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            match std::io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(SecretString::from(line.trim().to_owned())),
            }
        })
        .await
        .ok()
        .flatten()
    }
}

/// The settings of a Rucio-brokered OIDC login, as the Rucio client's `oidc_*` keys give
/// them. Setters take and return it by value.
#[derive(Clone)]
pub struct RucioOidc {
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) polling: bool,
    pub(crate) refresh_lifetime: Option<u32>,
    pub(crate) refresh_active: bool,
    pub(crate) refresh_before: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) poll_timeout: Duration,
    pub(crate) prompt: Arc<dyn OidcPrompt>,
}

impl fmt::Debug for RucioOidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RucioOidc")
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("polling", &self.polling)
            .field("refresh_lifetime", &self.refresh_lifetime)
            .field("refresh_active", &self.refresh_active)
            .field("refresh_before", &self.refresh_before)
            .finish_non_exhaustive()
    }
}

impl Default for RucioOidc {
    fn default() -> Self {
        Self::new()
    }
}

impl RucioOidc {
    /// Rucio's defaults: scope `openid profile`, the server's audience and identity
    /// provider, the code typed by the user, no client-side refresh.
    pub fn new() -> Self {
        Self {
            scope: DEFAULT_SCOPE.to_owned(),
            audience: None,
            issuer: None,
            polling: false,
            refresh_lifetime: None,
            refresh_active: false,
            refresh_before: DEFAULT_REFRESH_BEFORE,
            poll_interval: POLL_INTERVAL,
            poll_timeout: POLL_TIMEOUT,
            prompt: Arc::new(StderrPrompt),
        }
    }

    /// `oidc_scope`: what the user shares with Rucio; `offline_access` lets the server keep
    /// a refresh token.
    ///
    /// By default, `openid profile`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// `oidc_audience`: the audience the token is asked for.
    ///
    /// By default, none is sent (the server's `expected_audience` applies).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// `oidc_issuer`: which identity provider of the server's `idpsecrets.json` to use.
    ///
    /// By default, none is sent (the server's `admin_issuer`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// `oidc_polling`: poll the server for the token (every 2 s, for 3 minutes) instead of
    /// asking for the code the browser shows.
    ///
    /// By default, false.
    pub fn polling(mut self, yes: bool) -> Self {
        self.polling = yes;
        self
    }

    /// `oidc_refresh_lifetime`: how many hours the server keeps refreshing the token.
    ///
    /// By default, none is sent (the server's `default_jwt_refresh_lifetime`, 96 h).
    pub fn refresh_lifetime(mut self, hours: u32) -> Self {
        self.refresh_lifetime = Some(hours);
        self
    }

    /// `auth_oidc_refresh_active`: renew the token at `/auth/oidc_refresh` when less than
    /// [`refresh_before`](Self::refresh_before) of it is left (the server must hold a
    /// refresh token: `offline_access` in the scope).
    ///
    /// By default, false: the token is used until it expires, then the user logs in again.
    pub fn refresh_active(mut self, yes: bool) -> Self {
        self.refresh_active = yes;
        self
    }

    /// `auth_oidc_refresh_before_exp`: how long before expiry the renewal starts (at most
    /// half the token's lifetime).
    ///
    /// By default, 20 minutes.
    pub fn refresh_before(mut self, margin: Duration) -> Self {
        self.refresh_before = margin;
        self
    }

    /// How often and how long the polling login asks the server.
    ///
    /// By default, every 2 s for 180 s, as the Rucio client.
    pub fn poll_schedule(mut self, interval: Duration, timeout: Duration) -> Self {
        self.poll_interval = interval;
        self.poll_timeout = timeout;
        self
    }

    /// Where the URL goes and the code comes from.
    ///
    /// By default, [`StderrPrompt`].
    pub fn prompt(mut self, prompt: Arc<dyn OidcPrompt>) -> Self {
        self.prompt = prompt;
        self
    }

    /// What names this login in the token cache.
    pub(crate) fn cache_identity(&self) -> String {
        format!(
            "rucio-oidc issuer={} scope={} audience={}",
            self.issuer.as_deref().unwrap_or("(server default)"),
            self.scope,
            self.audience.as_deref().unwrap_or("(server default)")
        )
    }

    /// How long before expiry the session renews: the refresh margin with refresh on, else
    /// nothing (a new login needs the user, so the token is used to its end).
    pub(crate) fn renew_before(&self) -> Duration {
        if self.refresh_active {
            self.refresh_before
        } else {
            Duration::ZERO
        }
    }

    /// The whole login: `/auth/oidc`, the URL for the user, then the token by polling or by
    /// the code. The token's expiry and account are not in these answers; the caller asks
    /// `/auth/validate`.
    pub(crate) async fn login(
        &self,
        auth: &Transport,
        target: &LoginTarget<'_>,
    ) -> Result<SecretString> {
        let what = target.describe("oidc");
        let mut request = target
            .request(auth, "auth/oidc")
            .header(
                "X-Rucio-Client-Authorize-Polling",
                if self.polling { "True" } else { "False" },
            )
            .header("X-Rucio-Client-Authorize-Scope", self.scope.as_str())
            .header(
                "X-Rucio-Client-Authorize-Refresh-Lifetime",
                self.refresh_lifetime
                    .map_or_else(|| "None".to_owned(), |h| h.to_string()),
            );
        if let Some(audience) = &self.audience {
            request = request.header("X-Rucio-Client-Authorize-Audience", audience.as_str());
        }
        if let Some(issuer) = &self.issuer {
            request = request.header("X-Rucio-Client-Authorize-Issuer", issuer.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::from_transport(&what, e))?;
        if !response.status().is_success() {
            return Err(Error::from_answer(
                refused_or_server(response.status()),
                &what,
                &response,
            ));
        }
        let url = header_text(response.headers(), "x-rucio-oidc-auth-url").ok_or_else(|| {
            Error::new(
                ErrorKind::Decode,
                format!(
                    "{what}: the server sent no X-Rucio-OIDC-Auth-URL; check oidc_scope, \
                     oidc_audience and oidc_issuer against what the server accepts"
                ),
            )
        })?;
        let url = login_url(&url, &what)?;
        self.prompt.show_url(&printable(url.as_str(), 2000));
        if self.polling {
            self.poll(auth, target, &url, &what).await
        } else {
            self.ask_code(auth, target, &what).await
        }
    }

    /// Polls the login URL with `X-Rucio-Client-Fetch-Token` until the server hands out the
    /// token (it answers 401 until the user has logged in).
    async fn poll(
        &self,
        auth: &Transport,
        target: &LoginTarget<'_>,
        url: &Url,
        what: &str,
    ) -> Result<SecretString> {
        let started = tokio::time::Instant::now();
        loop {
            let response = target
                .request(auth, url.as_str())
                .header("X-Rucio-Client-Fetch-Token", "True")
                .retry(false)
                .send()
                .await
                .map_err(|e| Error::from_transport(what, e))?;
            if response.status() == StatusCode::OK
                && let Some(token) = header_text(response.headers(), "x-rucio-auth-token")
            {
                return Ok(SecretString::from(token));
            }
            if started.elapsed() + self.poll_interval > self.poll_timeout {
                return Err(Error::new(
                    ErrorKind::LoginRefused,
                    format!(
                        "{what}: no token after {} s of polling; log in at the address shown \
                         within that time, then run the command again",
                        self.poll_timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// Asks the user for the code the browser shows and fetches the token with it, up to 3
    /// times.
    async fn ask_code(
        &self,
        auth: &Transport,
        target: &LoginTarget<'_>,
        what: &str,
    ) -> Result<SecretString> {
        for attempt in 1..=CODE_TRIES {
            let Some(code) = self.prompt.read_code(attempt).await else {
                return Err(Error::new(
                    ErrorKind::Credential,
                    format!(
                        "{what}: no code was typed (standard input is closed); set \
                         oidc_polling = true in rucio.cfg (or --oidc-polling) to log in without \
                         typing it"
                    ),
                ));
            };
            let code = code.expose_secret();
            if code.is_empty()
                || code.len() > MAX_CODE_LEN
                || !code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            {
                continue;
            }
            let response = target
                .request(auth, &format!("auth/oidc_redirect?{code}"))
                .header("X-Rucio-Client-Fetch-Token", "True")
                .send()
                .await
                .map_err(|e| Error::from_transport(what, e))?;
            if response.status() == StatusCode::OK
                && let Some(token) = header_text(response.headers(), "x-rucio-auth-token")
            {
                return Ok(SecretString::from(token));
            }
        }
        Err(Error::new(
            ErrorKind::LoginRefused,
            format!("{what}: the server took none of the {CODE_TRIES} codes typed"),
        ))
    }

    /// `/auth/oidc_refresh`: the server refreshes the token with the refresh token it keeps
    /// (or hands out the one it refreshed in the last 5 minutes). `Ok(None)`: nothing to
    /// refresh (no refresh token on the server, or the token is unknown or expired there).
    pub(crate) async fn refresh(
        &self,
        auth: &Transport,
        target: &LoginTarget<'_>,
        token: &SessionToken,
        now: SystemTime,
    ) -> Result<Option<SessionToken>> {
        let what = format!("the Rucio OIDC token refresh at {}", target.host);
        let Some(account) = target.account.or(token.account.as_deref()) else {
            return Ok(None);
        };
        let mut request = auth
            .get("auth/oidc_refresh")
            .no_credential()
            .header(crate::login::ACCOUNT, account)
            .sensitive_header("X-Rucio-Auth-Token", token.token.expose_secret());
        if let Some(vo) = target.vo {
            request = request.header(crate::login::VO, vo);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::from_transport(&what, e))?;
        if !response.status().is_success() {
            return Err(Error::from_answer(
                refused_or_server(response.status()),
                &what,
                &response,
            ));
        }
        let headers = response.headers();
        let (Some(new), Some(expires)) = (
            header_text(headers, "x-rucio-auth-token"),
            header_text(headers, "x-rucio-auth-token-expires"),
        ) else {
            return Ok(None);
        };
        let Some(expires_at) = parse_expires(&expires).filter(|at| *at > now) else {
            return Ok(None);
        };
        SessionToken::new(
            SecretString::from(new),
            Some(expires_at),
            Some(account.to_owned()),
        )
        .map(Some)
    }
}

/// The address the server gave for the browser, which the client also polls: it must be an
/// `https://` URL (Rucio makes it so), without credentials in it.
fn login_url(text: &str, what: &str) -> Result<Url> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::Decode,
            format!(
                "{what}: the server's login address {} {why}",
                printable(text, 200)
            ),
        )
    };
    let url = Url::parse(text).map_err(|_| bad("is not a URL"))?;
    if url.scheme() != "https" {
        return Err(bad("is not https (Rucio makes it https)"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.host_str().is_none() {
        return Err(bad("is not a plain https address"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_https_login_addresses_pass() {
        for good in [
            "https://rucio-auth.example.org/auth/oidc_redirect?abcDEF123_polling",
            "https://127.0.0.1:8443/auth/oidc_redirect?x",
        ] {
            login_url(good, "login").unwrap();
        }
        for bad in [
            "http://rucio-auth.example.org/auth/oidc_redirect?x",
            "https://user:pw@rucio.example.org/x",
            "file:///etc/passwd",
            "not a url",
            "javascript:alert(1)",
        ] {
            let error = login_url(bad, "login").unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Decode, "{bad}");
        }
    }

    #[test]
    fn the_cache_identity_names_the_login_not_a_secret() {
        let oidc = RucioOidc::new().scope("openid profile offline_access");
        assert_eq!(
            oidc.cache_identity(),
            "rucio-oidc issuer=(server default) scope=openid profile offline_access \
             audience=(server default)"
        );
        assert_eq!(oidc.renew_before(), Duration::ZERO);
        assert_eq!(
            oidc.refresh_active(true).renew_before(),
            DEFAULT_REFRESH_BEFORE
        );
    }
}
