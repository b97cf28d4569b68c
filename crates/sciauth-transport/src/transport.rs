//! [`Transport`]: a reqwest client plus the credential, preferences and sessions that go with
//! it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, header};
use sciauth_credentials::Credential;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::builder::{ClientRecipe, TransportBuilder};
use crate::error::{Error, ErrorKind, Result, ShownUrl};
use crate::preferences::Preferences;
use crate::request::RequestBuilder;
use crate::session::SessionStore;

/// An HTTP client that authenticates every request with a [`Credential`], and carries
/// UNICORE user preferences and security sessions.
///
/// Cloning is cheap (a reference-count bump) and clones share everything: the connection
/// pool, the credential, the security sessions. [`with_credential`](Self::with_credential)
/// and [`with_preferences`](Self::with_preferences) make a transport that shares only the
/// connection pool.
///
/// Requests go out with [`request`](Self::request) (and [`get`](Self::get),
/// [`post`](Self::post), ...), which return a [`RequestBuilder`], or through the helpers
/// [`get_json`](Self::get_json), [`post_json`](Self::post_json), [`put_json`](Self::put_json),
/// [`delete`](Self::delete) and [`get_text`](Self::get_text), which treat any non-2xx status
/// as an [`ErrorKind::Status`] error.
///
/// # Example
///
/// ```no_run
/// use sciauth_transport::{Preferences, StatusCode, Transport};
/// use sciauth_transport::credentials::UsernamePassword;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let unicore = Transport::builder()
///     .base_url("https://unicore.example.org:8080/SITE/rest/core")
///     .credential(UsernamePassword::new("demouser", "test123")?)
///     .rejected_statuses(&[StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN])
///     .build()?;
/// let site: serde_json::Value = unicore.get_json("").await?;
/// println!("logged in as {}", site["client"]["xlogin"]["UID"]);
///
/// // The same server, running as another group; shares the connection pool.
/// let project = unicore.with_preferences(Preferences::new().group("project1"));
/// let jobs: serde_json::Value = project.get_json("jobs").await?;
/// # drop(jobs);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: reqwest::Client,
    pub(crate) settings: Arc<Settings>,
    pub(crate) credential: Arc<dyn Credential>,
    pub(crate) preferences: PreferencesHeader,
    /// `None` when security sessions are turned off.
    pub(crate) sessions: Option<Arc<SessionStore>>,
}

/// The settings every transport derived from one builder shares.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) base_urls: Vec<Url>,
    pub(crate) timeout: Duration,
    pub(crate) max_response_size: usize,
    pub(crate) retries: u32,
    pub(crate) retry_non_idempotent: bool,
    pub(crate) rejected_statuses: Vec<StatusCode>,
    pub(crate) security_sessions: bool,
    pub(crate) follow_redirects: bool,
    pub(crate) recipe: ClientRecipe,
}

/// Preferences with their header, made once, or the reason they cannot be sent.
#[derive(Clone, Debug)]
pub(crate) enum PreferencesHeader {
    None,
    Valid(Preferences, HeaderValue),
    Invalid(Preferences, String),
}

impl PreferencesHeader {
    /// The header for `preferences`, failing with [`ErrorKind::InvalidPreference`].
    pub(crate) fn new(preferences: Option<Preferences>) -> Result<Self> {
        let Some(preferences) = preferences else {
            return Ok(Self::None);
        };
        Ok(match preferences.header_value()? {
            Some(value) => Self::Valid(preferences, value),
            None => Self::None,
        })
    }

    /// Like [`new`](Self::new), keeping the error for the requests to report.
    fn new_or_invalid(preferences: Preferences) -> Self {
        match preferences.header_value() {
            Ok(Some(value)) => Self::Valid(preferences, value),
            Ok(None) => Self::None,
            Err(error) => Self::Invalid(preferences, error.to_string()),
        }
    }

    /// The header to send, if any.
    pub(crate) fn header(&self) -> Result<Option<&HeaderValue>> {
        match self {
            Self::None => Ok(None),
            Self::Valid(_, value) => Ok(Some(value)),
            Self::Invalid(_, message) => {
                Err(Error::new(ErrorKind::InvalidPreference, message.clone()))
            }
        }
    }

    fn preferences(&self) -> Option<&Preferences> {
        match self {
            Self::None => None,
            Self::Valid(preferences, _) | Self::Invalid(preferences, _) => Some(preferences),
        }
    }
}

impl Transport {
    /// A builder with every setting at its default.
    pub fn builder() -> TransportBuilder {
        TransportBuilder::new()
    }

    pub(crate) fn new(
        client: reqwest::Client,
        settings: Arc<Settings>,
        credential: Arc<dyn Credential>,
        preferences: PreferencesHeader,
    ) -> Self {
        let sessions = settings
            .security_sessions
            .then(|| Arc::new(SessionStore::default()));
        Self {
            inner: Arc::new(Inner {
                client,
                settings,
                credential,
                preferences,
                sessions,
            }),
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// A new transport sharing the connection pool and the credential, sending these
    /// preferences by default. It starts without security sessions: the server ties a
    /// session to the preferences it was made with.
    ///
    /// Preferences the server cannot parse make every request of the new transport fail
    /// with [`ErrorKind::InvalidPreference`]; check them first with
    /// [`Preferences::header_value`] to fail earlier.
    pub fn with_preferences(&self, preferences: Preferences) -> Transport {
        Transport::new(
            self.inner.client.clone(),
            self.inner.settings.clone(),
            self.inner.credential.clone(),
            PreferencesHeader::new_or_invalid(preferences),
        )
    }

    /// A new transport sharing the connection pool and the preferences, authenticating with
    /// `credential`. It starts without security sessions: a session stands for the identity
    /// that opened it.
    pub fn with_credential(&self, credential: impl Credential + 'static) -> Transport {
        self.with_shared_credential(Arc::new(credential))
    }

    /// Like [`with_credential`](Self::with_credential), for a credential shared with other
    /// code.
    pub fn with_shared_credential(&self, credential: Arc<dyn Credential>) -> Transport {
        Transport::new(
            self.inner.client.clone(),
            self.inner.settings.clone(),
            credential,
            self.inner.preferences.clone(),
        )
    }

    /// A transport with the same settings, credential and preferences but a new connection
    /// pool, so the next request opens a new connection (and TLS session). Rucio, for
    /// example, wants a fresh connection for a new login. Security sessions start empty.
    ///
    /// Fails only if TLS cannot be set up again (the platform's roots are read anew).
    pub fn with_fresh_connections(&self) -> Result<Transport> {
        let client = self.inner.settings.recipe.client()?;
        Ok(Transport::new(
            client,
            self.inner.settings.clone(),
            self.inner.credential.clone(),
            self.inner.preferences.clone(),
        ))
    }

    /// The base URLs relative targets are resolved against (each ending in `/`); empty when
    /// none was set.
    pub fn base_urls(&self) -> &[Url] {
        &self.inner.settings.base_urls
    }

    /// The preferences sent by default, if any.
    pub fn preferences(&self) -> Option<&Preferences> {
        self.inner.preferences.preferences()
    }

    /// The credential every request authenticates with, unless it says otherwise.
    pub fn credential(&self) -> &Arc<dyn Credential> {
        &self.inner.credential
    }

    /// Starts a request. `target` is an absolute URL (`https://host/path`), or a path
    /// resolved against the base URL (`jobs`, `accounts/whoami?x=1`); with several hosts, the
    /// host is chosen when the request is sent.
    pub fn request(&self, method: Method, target: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, target)
    }

    /// Starts a GET request (see [`request`](Self::request)).
    pub fn get(&self, target: &str) -> RequestBuilder {
        self.request(Method::GET, target)
    }

    /// Starts a POST request (see [`request`](Self::request)).
    pub fn post(&self, target: &str) -> RequestBuilder {
        self.request(Method::POST, target)
    }

    /// Starts a PUT request (see [`request`](Self::request)).
    pub fn put(&self, target: &str) -> RequestBuilder {
        self.request(Method::PUT, target)
    }

    /// Starts a DELETE request (see [`request`](Self::request)); [`delete`](Self::delete)
    /// sends one and checks the status.
    pub fn delete_request(&self, target: &str) -> RequestBuilder {
        self.request(Method::DELETE, target)
    }

    /// GETs `target` with `Accept: application/json` and decodes the JSON answer.
    ///
    /// Fails with [`ErrorKind::Status`] on a non-2xx status and with [`ErrorKind::Decode`],
    /// naming the field, when the JSON does not fit `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, target: &str) -> Result<T> {
        self.get(target).send_json().await
    }

    /// POSTs `body` as JSON and decodes the JSON answer (see [`get_json`](Self::get_json)).
    pub async fn post_json<B, T>(&self, target: &str, body: &B) -> Result<T>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.post(target).json(body).send_json().await
    }

    /// PUTs `body` as JSON and decodes the JSON answer (see [`get_json`](Self::get_json)).
    pub async fn put_json<B, T>(&self, target: &str, body: &B) -> Result<T>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.put(target).json(body).send_json().await
    }

    /// Sends DELETE; fails with [`ErrorKind::Status`] on a non-2xx status.
    pub async fn delete(&self, target: &str) -> Result<()> {
        self.delete_request(target)
            .send()
            .await?
            .error_for_status()
            .map(drop)
    }

    /// GETs `target`, preferring `text/plain` (UNICORE hands out tokens that way), and
    /// returns the body as text.
    ///
    /// Fails with [`ErrorKind::Status`] on a non-2xx status and with [`ErrorKind::Decode`] if
    /// the body is not UTF-8.
    pub async fn get_text(&self, target: &str) -> Result<String> {
        let response = self
            .get(target)
            .header(header::ACCEPT, "text/plain, */*;q=0.5")
            .send()
            .await?
            .error_for_status()?;
        response.text().map(str::to_owned)
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.inner.settings;
        f.debug_struct("Transport")
            .field(
                "base_urls",
                &settings
                    .base_urls
                    .iter()
                    .map(|url| ShownUrl(url).to_string())
                    .collect::<Vec<_>>(),
            )
            .field("credential", &self.inner.credential)
            .field("preferences", &self.inner.preferences.preferences())
            .field("timeout", &settings.timeout)
            .field("retries", &settings.retries)
            .field("security_sessions", &settings.security_sessions)
            .finish_non_exhaustive()
    }
}
