//! The device authorization grant (RFC 8628): log in on another device by typing a code.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use url::Url;

use sciauth_credentials::time::later;

use crate::client::{OAuthClient, TokenRequest};
use crate::client_auth::Form;
use crate::error::{Error, ErrorKind, OAuthErrorCode, Result};
use crate::sleep::Sleeper;
use crate::token::{Scopes, Token};
use crate::validate;
use crate::validate::TokenRules;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What RFC 8628 3.5 adds to the interval on each `slow_down`.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The longest wait between polls after network failures.
const MAX_BACKOFF_INTERVAL: Duration = Duration::from_secs(60);

impl OAuthClient {
    /// Logs a user in with the device flow: they open a URL on any device and enter a code
    /// while this program polls.
    ///
    /// ```no_run
    /// # async fn run(client: sciauth_tokens::OAuthClient) -> sciauth_tokens::Result<()> {
    /// let token = client
    ///     .device_login()
    ///     .scopes(["openid", "offline_access"])
    ///     .on_user_code(|code| {
    ///         eprintln!("Open {} and enter {}", code.verification_uri(), code.user_code())
    ///     })
    ///     .run()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn device_login(&self) -> DeviceLogin {
        DeviceLogin {
            client: self.clone(),
            scopes: Scopes::new(),
            audience: None,
            params: Vec::new(),
            on_user_code: Arc::new(show_user_code),
            on_progress: None,
            sleeper: Sleeper::default(),
        }
    }
}

fn show_user_code(code: &DeviceAuthorization) {
    match code.verification_uri_complete() {
        Some(complete) => eprintln!(
            "To log in, open {complete}\nor open {} and enter the code {}",
            code.verification_uri(),
            code.user_code()
        ),
        None => eprintln!(
            "To log in, open {} and enter the code {}",
            code.verification_uri(),
            code.user_code()
        ),
    }
}

/// What the provider answered to a device authorization request: the code to show the user
/// and where they enter it.
#[derive(Clone)]
pub struct DeviceAuthorization {
    device_code: SecretString,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_at: SystemTime,
    interval: Duration,
    scopes: Scopes,
    audience: Option<String>,
}

impl DeviceAuthorization {
    /// The code the user enters, e.g. `WDJB-MJHT`.
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user enters it.
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// A URL with the code filled in, if the provider offers one (for a link or a QR code).
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// When the codes expire.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// How long to wait between polls, as the provider asked: 5 s if it did not say, at least
    /// 1 s, at most 5 min.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"[redacted]")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("verification_uri_complete", &self.verification_uri_complete)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// What happened at one poll, for a spinner or a status line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceProgress {
    /// The user has not finished yet (`authorization_pending`); `polls` so far.
    Pending {
        /// How many polls have been answered so far.
        polls: u32,
    },
    /// The provider asked to poll less often (`slow_down`); polls now wait `interval`.
    SlowDown {
        /// The new interval between polls.
        interval: Duration,
    },
    /// A poll failed on the way (network, 5xx); the next one waits `interval` (doubled each
    /// time, RFC 8628 3.5).
    Retrying {
        /// The new interval between polls.
        interval: Duration,
    },
}

type ProgressFn = Arc<dyn Fn(&DeviceProgress) + Send + Sync>;

/// A device login; [`run`](Self::run) does it all, or [`start`](Self::start) and
/// [`poll`](Self::poll) do it in two steps.
#[must_use = "a login does nothing until run"]
pub struct DeviceLogin {
    client: OAuthClient,
    scopes: Scopes,
    audience: Option<String>,
    params: Vec<(String, String)>,
    on_user_code: Arc<dyn Fn(&DeviceAuthorization) + Send + Sync>,
    on_progress: Option<ProgressFn>,
    sleeper: Sleeper,
}

impl DeviceLogin {
    /// Scopes to ask for (add `offline_access` for a refresh token). By default none.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes);
        self
    }

    /// The audience for the token (sent as the client's
    /// [`AudienceParameter`](crate::AudienceParameter)). By default none.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// An extra parameter for the device authorization request. By default none.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Shows the user where to go and what to type. By default the URL and code are printed
    /// to stderr.
    pub fn on_user_code(
        mut self,
        show: impl Fn(&DeviceAuthorization) + Send + Sync + 'static,
    ) -> Self {
        self.on_user_code = Arc::new(show);
        self
    }

    /// Called after every poll that did not end the login. By default nothing is called.
    pub fn on_progress(
        mut self,
        progress: impl Fn(&DeviceProgress) + Send + Sync + 'static,
    ) -> Self {
        self.on_progress = Some(Arc::new(progress));
        self
    }

    /// How to wait between polls. By default `tokio::time::sleep`; tests pass a shorter wait.
    pub fn sleeper<F, Fut>(mut self, sleep: F) -> Self
    where
        F: Fn(Duration) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.sleeper = Sleeper::new(sleep);
        self
    }

    /// Starts the login, shows the code ([`on_user_code`](Self::on_user_code)) and polls
    /// until the user finishes, refuses, or the code expires.
    pub async fn run(self) -> Result<Token> {
        let authorization = self.start().await?;
        (self.on_user_code)(&authorization);
        self.poll(&authorization).await
    }

    /// Asks the provider for a device code and user code.
    pub async fn start(&self) -> Result<DeviceAuthorization> {
        let metadata = self.client.issuer().metadata();
        let endpoint = metadata
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::MissingEndpoint,
                    format!(
                        "the provider {} has no device authorization endpoint; use the code flow \
                     (code_login) instead",
                        metadata.issuer
                    ),
                )
            })?;
        let mut form = Form::new();
        if !self.scopes.is_empty() {
            form.push("scope", self.scopes.to_string());
        }
        let audience = self
            .client
            .audience_parameter()
            .add(&mut form, self.audience.as_deref());
        for (name, value) in &self.params {
            form.push_dynamic(name, value);
        }
        let body = self
            .client
            .post(&endpoint, "the device authorization endpoint", form)
            .await?;
        self.authorization(&body, &endpoint, audience)
    }

    /// The device authorization response `body` from `endpoint`, as this login asked for it.
    pub(crate) fn authorization(
        &self,
        body: &[u8],
        endpoint: &Url,
        audience: Option<String>,
    ) -> Result<DeviceAuthorization> {
        let response =
            validate::device_response(body, self.client.issuer().limits()).map_err(|invalid| {
                Error::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "the device authorization endpoint {endpoint} answered with a device \
                         authorization that cannot be used: {}",
                        invalid.0
                    ),
                )
                .with_endpoint(endpoint)
            })?;
        let now = self.client.now();
        Ok(DeviceAuthorization {
            device_code: response.device_code,
            user_code: response.user_code,
            verification_uri: response.verification_uri,
            verification_uri_complete: response.verification_uri_complete,
            expires_at: later(now, response.expires_in),
            interval: response.interval,
            scopes: self.scopes.clone(),
            audience,
        })
    }

    /// Polls the token endpoint until the user finishes (the token), refuses
    /// (`access_denied`), or the code expires (`expired_token`, or [`ErrorKind::Timeout`] when
    /// the expiry passes by the client's clock).
    pub async fn poll(&self, authorization: &DeviceAuthorization) -> Result<Token> {
        let mut interval = authorization.interval;
        let mut polls = 0u32;
        loop {
            // Never sleep past the expiry: a long interval ends with the code's lifetime.
            let left = authorization
                .expires_at
                .duration_since(self.client.now())
                .unwrap_or_default();
            self.sleeper.sleep(interval.min(left)).await;
            if self.client.now() >= authorization.expires_at {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "the device code expired before the login was finished; start again",
                ));
            }
            let mut form = Form::new();
            form.push("grant_type", GRANT_TYPE);
            form.push_secret("device_code", authorization.device_code.clone());
            let result = self
                .client
                .token_request(
                    form,
                    TokenRequest {
                        grant: "device_code",
                        requested_scopes: authorization.scopes.clone(),
                        audience: authorization.audience.clone(),
                        rules: TokenRules::default(),
                    },
                )
                .await;
            polls = polls.saturating_add(1);
            let progress = match result {
                Ok(token) => {
                    if let Some(id_token) = token.id_token() {
                        use secrecy::ExposeSecret as _;
                        self.client
                            .validate_id_token(id_token.expose_secret(), None)
                            .await?;
                    }
                    return Ok(token);
                }
                Err(e) => match e.oauth_code() {
                    Some(OAuthErrorCode::AuthorizationPending) => DeviceProgress::Pending { polls },
                    Some(OAuthErrorCode::SlowDown) => {
                        interval = interval.saturating_add(SLOW_DOWN_STEP);
                        DeviceProgress::SlowDown { interval }
                    }
                    // RFC 8628 3.5: on a network failure, back off and keep polling; the
                    // user may be halfway through the login.
                    None if e.is_transient() => {
                        interval = interval.saturating_mul(2).min(MAX_BACKOFF_INTERVAL);
                        tracing::warn!(error = %e, ?interval, "device flow poll failed; retrying");
                        DeviceProgress::Retrying { interval }
                    }
                    _ => return Err(e),
                },
            };
            tracing::debug!(?progress, "device flow poll");
            if let Some(on_progress) = &self.on_progress {
                on_progress(&progress);
            }
        }
    }
}

impl fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}
