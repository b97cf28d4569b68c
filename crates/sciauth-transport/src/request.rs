//! [`RequestBuilder`]: a request being put together, and the [`Plan`] it becomes when sent
//! (everything decided before the first byte goes out; `send.rs` runs it).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use sciauth_credentials::Credential;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::error::{Error, ErrorKind, Result, ShownUrl};
use crate::preferences::Preferences;
use crate::response::Response;
use crate::retry::{is_idempotent, random_index};
use crate::send::{Candidates, Plan};
use crate::transport::{PreferencesHeader, Transport};

/// A request being put together; [`send`](Self::send) sends it.
///
/// Made by [`Transport::request`] and its siblings. Setters take and return the builder by
/// value; a bad input (an invalid header, a body that does not serialize) is kept and
/// reported by `send`.
///
/// # Example
///
/// ```no_run
/// use sciauth_transport::Transport;
///
/// # async fn run(rucio: Transport) -> Result<(), sciauth_transport::Error> {
/// let response = rucio
///     .get("auth/userpass")
///     .header("X-Rucio-Account", "alice")
///     .header("X-Rucio-Username", "alice")
///     .sensitive_header("X-Rucio-Password", "secret")
///     .no_credential()
///     .send()
///     .await?
///     .error_for_status()?;
/// let token = response.headers().get("X-Rucio-Auth-Token");
/// # drop(token);
/// # Ok(())
/// # }
/// ```
pub struct RequestBuilder {
    transport: Transport,
    method: Method,
    target: Target,
    headers: HeaderMap,
    query: Option<String>,
    body: Option<Bytes>,
    auth: Auth,
    preferences: Option<PreferencesHeader>,
    timeout: Option<Duration>,
    retry: Option<bool>,
    follow_redirects: Option<bool>,
    max_response_size: Option<usize>,
    error: Option<Error>,
}

enum Target {
    Absolute(Url),
    /// A path or relative URL, resolved against each base URL when sent.
    Relative(String),
}

enum Auth {
    Transport,
    Custom(Arc<dyn Credential>),
    None,
}

impl RequestBuilder {
    pub(crate) fn new(transport: Transport, method: Method, target: &str) -> Self {
        let mut error = None;
        let target = match Url::parse(target) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Target::Absolute(url),
            _ => {
                let base_urls = &transport.inner().settings.base_urls;
                let shown = target.split(['?', '#']).next().unwrap_or_default();
                match base_urls.first() {
                    None => {
                        error = Some(Error::new(
                            ErrorKind::Builder,
                            format!(
                                "{method} {shown:?}: a relative target needs a base URL; set \
                                 one with base_url or hosts, or give an absolute https:// URL"
                            ),
                        ));
                    }
                    Some(base) => {
                        if let Err(e) = base.join(target) {
                            error = Some(Error::new(
                                ErrorKind::Builder,
                                format!("{method} {shown:?}: not a valid relative URL: {e}"),
                            ));
                        }
                    }
                }
                Target::Relative(target.to_owned())
            }
        };
        Self {
            transport,
            method,
            target,
            headers: HeaderMap::new(),
            query: None,
            body: None,
            auth: Auth::Transport,
            preferences: None,
            timeout: None,
            retry: None,
            follow_redirects: None,
            max_response_size: None,
            error,
        }
    }

    /// Sets a header, replacing any value set before for this name. A header the transport
    /// would add (the credential's, `X-UNICORE-User-Preferences`) is not overwritten by it.
    /// For secrets use [`sensitive_header`](Self::sensitive_header).
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        self.set_header(name, value, false)
    }

    /// Sets a header whose value is secret (a password in `X-Rucio-Password`, a client
    /// secret): it is marked sensitive, so HTTP libraries keep it out of logs and HTTP/2
    /// header compression.
    pub fn sensitive_header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        self.set_header(name, value, true)
    }

    fn set_header<K, V>(mut self, name: K, value: V, sensitive: bool) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        let Ok(name) = name.try_into() else {
            return self.fail(Error::new(ErrorKind::Request, "invalid header name"));
        };
        let Ok(mut value) = value.try_into() else {
            // The value is not repeated: it may be a password.
            return self.fail(Error::new(
                ErrorKind::Request,
                format!(
                    "the value for header {name} contains characters that cannot be sent in \
                     an HTTP header (newline or other control character)"
                ),
            ));
        };
        value.set_sensitive(sensitive);
        self.headers.insert(name, value);
        self
    }

    /// Adds query parameters, serialized like a form (`?a=1&b=x`), after any already in the
    /// target.
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        match serde_urlencoded::to_string(query) {
            Ok(encoded) if encoded.is_empty() => {}
            Ok(encoded) => match &mut self.query {
                Some(existing) => {
                    existing.push('&');
                    existing.push_str(&encoded);
                }
                None => self.query = Some(encoded),
            },
            Err(e) => {
                return self.fail(Error::new(
                    ErrorKind::Request,
                    format!("could not encode the query parameters: {e}"),
                ));
            }
        }
        self
    }

    /// Sends `body` as JSON, with `Content-Type: application/json` unless set.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = Some(bytes.into());
                self.default_header(header::CONTENT_TYPE, "application/json");
                self
            }
            Err(e) => self.fail(Error::new(
                ErrorKind::Request,
                format!("could not serialize the JSON body: {e}"),
            )),
        }
    }

    /// Sends `body` as a form, with `Content-Type: application/x-www-form-urlencoded`
    /// unless set.
    pub fn form<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_urlencoded::to_string(body) {
            Ok(encoded) => {
                self.body = Some(encoded.into());
                self.default_header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                self
            }
            Err(e) => self.fail(Error::new(
                ErrorKind::Request,
                format!("could not encode the form body: {e}"),
            )),
        }
    }

    /// Sends these bytes as the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Authenticates this request with `credential` instead of the transport's. It does not
    /// use security sessions.
    pub fn credential(mut self, credential: Arc<dyn Credential>) -> Self {
        self.auth = Auth::Custom(credential);
        self
    }

    /// Sends this request without any auth header, for example because the client
    /// authenticates in the form body. It does not use security sessions.
    pub fn no_credential(mut self) -> Self {
        self.auth = Auth::None;
        self
    }

    /// Sends these preferences instead of the transport's; empty preferences send none. The
    /// request does not use security sessions.
    pub fn preferences(mut self, preferences: Preferences) -> Self {
        match PreferencesHeader::new(Some(preferences)) {
            Ok(header) => self.preferences = Some(header),
            Err(error) => return self.fail(error),
        }
        self
    }

    /// The time one attempt may take, instead of the transport's timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether this request may be retried (see
    /// [`TransportBuilder::retries`](crate::TransportBuilder::retries)). `true` allows it for
    /// a POST; `false` forbids it even for a GET.
    pub fn retry(mut self, yes: bool) -> Self {
        self.retry = Some(yes);
        self
    }

    /// Whether this request follows redirects, instead of the transport's setting (see
    /// [`TransportBuilder::follow_redirects`](crate::TransportBuilder::follow_redirects)).
    /// `false` returns a 3xx answer to the caller as it is: what a request carrying secrets in
    /// its body (an OAuth token request) needs whatever transport it was given.
    pub fn follow_redirects(mut self, yes: bool) -> Self {
        self.follow_redirects = Some(yes);
        self
    }

    /// The largest response body this request accepts, instead of the transport's
    /// [`max_response_size`](crate::TransportBuilder::max_response_size): a body announced
    /// larger is refused before it is read, one that streams (or is chunked) past it is cut
    /// off while reading, with [`ErrorKind::BodyTooLarge`].
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = Some(bytes);
        self
    }

    /// Sends the request and reads the whole response.
    ///
    /// Returns the response for any status, including 4xx and 5xx: use
    /// [`Response::error_for_status`] or [`send_json`](Self::send_json) to treat those as
    /// errors. Fails for what kept a response from arriving: a connect error
    /// ([`ErrorKind::Connect`]), a timeout, TLS, a body over the size limit, a credential that
    /// could not produce or renew its header, or a bad input to this builder.
    ///
    /// On the way it picks a host, fails over and retries as the transport is set up to; if
    /// the server rejects the credential and the credential renews itself, the request is
    /// sent once more; if a UNICORE security session expired (HTTP 432), once more without
    /// it.
    //
    // Not an `async fn`: everything that can be decided up front is, here, so that the future
    // holds only what the exchange needs (a smaller future is cheaper to move).
    pub fn send(self) -> impl Future<Output = Result<Response>> + Send + 'static {
        let mut planned = self.plan();
        let span = match &planned {
            Ok(plan) => tracing::debug_span!(
                "http_request",
                method = %plan.method,
                url = %ShownUrl(plan.urls.get(0)),
                status = tracing::field::Empty,
                elapsed_ms = tracing::field::Empty,
                attempt = tracing::field::Empty,
            ),
            Err(_) => tracing::Span::none(),
        };
        async move {
            // Borrowed, not moved out: a move would give the plan a second place in the
            // future.
            match &mut planned {
                Ok(plan) => plan.run().await,
                Err(error) => Err(std::mem::replace(
                    error,
                    Error::new(ErrorKind::Request, "reported already"),
                )),
            }
        }
        .instrument(span)
    }

    /// Sends the request (with `Accept: application/json` unless set) and decodes the JSON
    /// answer. Fails with [`ErrorKind::Status`] on a non-2xx status, and with
    /// [`ErrorKind::Decode`], naming the field, when the JSON does not fit `T`.
    pub async fn send_json<T: DeserializeOwned>(mut self) -> Result<T> {
        self.default_header(header::ACCEPT, "application/json");
        self.send().await?.error_for_status()?.json()
    }

    fn default_header(&mut self, name: HeaderName, value: &'static str) {
        self.headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }

    fn fail(mut self, error: Error) -> Self {
        if self.error.is_none() {
            self.error = Some(error);
        }
        self
    }

    /// Decides everything that does not depend on the server's answers.
    fn plan(self) -> Result<Plan> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let inner = self.transport.inner();
        let settings = &inner.settings;
        let urls = candidates(
            self.target,
            self.query.as_deref(),
            &settings.base_urls,
            &self.method,
        )?;
        let credential = match &self.auth {
            Auth::Transport => Some(inner.credential.clone()),
            Auth::Custom(credential) => Some(credential.clone()),
            Auth::None => None,
        };
        let preferences = match &self.preferences {
            Some(preferences) => preferences.header(),
            None => inner.preferences.header(),
        }
        .map_err(|e| e.with_request(&self.method, urls.get(0)))?
        .cloned();
        // A session stands for the transport's identity and preferences; a request with
        // its own must not borrow it, nor leave one behind.
        let use_sessions = matches!(self.auth, Auth::Transport) && self.preferences.is_none();
        let timeout = self.timeout.unwrap_or(settings.timeout);
        let follow_redirects = self.follow_redirects.unwrap_or(settings.follow_redirects);
        let max_response_size = self.max_response_size.unwrap_or(settings.max_response_size);
        let retryable = self
            .retry
            .unwrap_or(settings.retry_non_idempotent || is_idempotent(&self.method));
        Ok(Plan {
            transport: self.transport,
            method: self.method,
            urls,
            headers: self.headers,
            body: self.body,
            credential,
            preferences,
            use_sessions,
            timeout,
            retryable,
            follow_redirects,
            max_response_size,
        })
    }
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target: &dyn fmt::Display = match &self.target {
            Target::Absolute(url) => &ShownUrl(url),
            Target::Relative(path) => &path.split(['?', '#']).next().unwrap_or_default(),
        };
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("target", &format_args!("{target}"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .finish_non_exhaustive()
    }
}

/// The URLs to try, in order: the target itself, or the target on each base URL starting
/// from a random one.
fn candidates(
    target: Target,
    query: Option<&str>,
    base_urls: &[Url],
    method: &Method,
) -> Result<Candidates> {
    let mut urls = match target {
        Target::Absolute(url) => Candidates {
            first: url,
            rest: Vec::new(),
        },
        Target::Relative(path) => {
            let start = if base_urls.len() > 1 {
                random_index(base_urls.len())
            } else {
                0
            };
            let join = |base: &Url| {
                base.join(&path).map_err(|e| {
                    Error::new(ErrorKind::Builder, format!("not a valid relative URL: {e}"))
                        .with_request(method, base)
                })
            };
            let mut bases = base_urls[start..].iter().chain(&base_urls[..start]);
            let first = match bases.next() {
                Some(base) => join(base)?,
                None => {
                    return Err(Error::new(
                        ErrorKind::Builder,
                        "a relative target needs a base URL",
                    ));
                }
            };
            Candidates {
                first,
                rest: bases.map(join).collect::<Result<_>>()?,
            }
        }
    };
    if let Some(query) = query {
        for url in std::iter::once(&mut urls.first).chain(&mut urls.rest) {
            let joined = match url.query() {
                Some(existing) if !existing.is_empty() => format!("{existing}&{query}"),
                _ => query.to_owned(),
            };
            url.set_query(Some(&joined));
        }
    }
    Ok(urls)
}
