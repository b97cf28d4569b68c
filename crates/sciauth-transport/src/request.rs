//! [`RequestBuilder`] and the loop that sends a request: host choice and failover, the
//! credential header and its renewal, security sessions, redirects and retries.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use sciauth_credentials::{AuthHeader, Credential, Ready, Renewal};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::builder::root_cause;
use crate::error::{Error, ErrorKind, Result, ShownUrl};
use crate::preferences::{Preferences, USER_PREFERENCES};
use crate::response::{self, Response, SentSecrets};
use crate::retry::{backoff, is_idempotent, is_retryable_status, random_index, retry_after};
use crate::session::{SECURITY_SESSION, SessionStore, is_session_expired};
use crate::transport::{PreferencesHeader, Transport};

/// Redirects followed in a row before giving up.
const MAX_REDIRECTS: u32 = 10;

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

/// Everything [`RequestBuilder::send`] decided before the first byte goes out.
struct Plan {
    transport: Transport,
    method: Method,
    urls: Candidates,
    headers: HeaderMap,
    body: Option<Bytes>,
    credential: Option<Arc<dyn Credential>>,
    preferences: Option<HeaderValue>,
    use_sessions: bool,
    timeout: Duration,
    retryable: bool,
    follow_redirects: bool,
    max_response_size: usize,
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

impl Plan {
    async fn run(&mut self) -> Result<Response> {
        let span = tracing::Span::current();
        // Read the clock only for a span that is recorded.
        let started = (!span.is_disabled()).then(Instant::now);
        let inner = self.transport.inner();
        let settings = &*inner.settings;
        let sessions: Option<&SessionStore> = if self.use_sessions {
            inner.sessions.as_deref()
        } else {
            None
        };
        let urls = &self.urls;
        let timeout = self.timeout;
        let mut retries_left = if self.retryable { settings.retries } else { 0 };
        let mut retries_done = 0;

        let mut host = 0;
        let mut hosts_failed = 0;
        let mut url = urls.first.clone();
        let mut method = self.method.clone();
        let mut body = self.body.clone();
        // Set when a redirect turned the request into a body-less GET.
        let mut body_dropped = false;
        let mut redirects: u32 = 0;
        let mut renewal_tried = false;
        let mut session_retried = false;
        let mut attempt: u32 = 0;

        let finish = |attempt: u32, status: Option<StatusCode>| {
            span.record("attempt", attempt);
            if let Some(started) = started {
                span.record("elapsed_ms", started.elapsed().as_millis() as u64);
            }
            if let Some(status) = status {
                span.record("status", status.as_u16());
            }
        };

        loop {
            attempt += 1;
            // The credential and the session go only to the host the request was meant for,
            // never to where a redirect points elsewhere.
            let trusted = redirects == 0 || same_origin(&url, urls.get(host));
            let sent_auth = match (&self.credential, trusted) {
                (Some(credential), true) => {
                    let auth = match credential.ready_header() {
                        Ready::Header(header) => Some(header),
                        Ready::NoHeader => None,
                        Ready::NotReady => match fetch_header(&**credential).await {
                            Ok(header) => header,
                            Err(error) => {
                                finish(attempt, None);
                                return Err(error.with_request(&method, &url));
                            }
                        },
                    };
                    // A header the caller set explicitly wins.
                    auth.filter(|auth| {
                        self.headers.is_empty() || !self.headers.contains_key(auth.name())
                    })
                }
                _ => None,
            };
            let session = match (sessions, trusted) {
                (Some(store), true) => store.get(&url),
                _ => None,
            };

            let exchange = async {
                let request = Outgoing {
                    method: &method,
                    url: &url,
                    headers: &self.headers,
                    other_origin: !trusted,
                    body_dropped,
                    auth: sent_auth.as_ref(),
                    preferences: self.preferences.as_ref(),
                    session: session.as_ref(),
                    body: body.as_ref(),
                }
                .build();
                let response = inner.client.execute(request).await.map_err(classify)?;
                response::read(response, self.max_response_size).await
            };
            // The deadline covers connecting, sending and reading the whole body.
            let outcome = match tokio::time::timeout(timeout, exchange).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no complete response within {timeout:?}"),
                )),
            };

            let response = match outcome {
                Ok(response) => response,
                Err(error) => {
                    let error = error.with_request(&method, &url);
                    let may_fail_over =
                        error.is_connect() || (error.is_timeout() && self.retryable);
                    if may_fail_over && hosts_failed + 1 < urls.len() {
                        hosts_failed += 1;
                        host = (host + 1) % urls.len();
                        tracing::debug!(%error, next = %ShownUrl(urls.get(host)), "trying the next host");
                    } else if error.is_connect() && retries_left > 0 {
                        retries_left -= 1;
                        let delay = backoff(retries_done);
                        retries_done += 1;
                        tracing::debug!(%error, ?delay, "retrying after a connect error");
                        // Boxed, like every rarely taken wait, to keep the future small.
                        Box::pin(tokio::time::sleep(delay)).await;
                        hosts_failed = 0;
                        host = (host + 1) % urls.len();
                    } else {
                        finish(attempt, None);
                        return Err(error);
                    }
                    // Start over on the chosen host, undoing any redirects.
                    url = urls.get(host).clone();
                    method = self.method.clone();
                    body = self.body.clone();
                    body_dropped = false;
                    redirects = 0;
                    continue;
                }
            };

            let status = response.status();
            if let (Some(store), true) = (sessions, trusted) {
                store.remember(&url, response.headers());
            }

            if session.is_some() && is_session_expired(status) && !session_retried {
                session_retried = true;
                if let Some(store) = sessions {
                    store.forget(&url);
                }
                tracing::debug!("security session expired (HTTP 432); sending again without it");
                continue;
            }

            if let (Some(sent), Some(credential)) = (&sent_auth, &self.credential)
                && !renewal_tried
                && settings.rejected_statuses.contains(&status)
            {
                renewal_tried = true;
                match credential.rejected(Some(sent)).await {
                    Ok(Renewal::Renewed) => {
                        tracing::debug!(%status, "credential rejected and renewed; sending again");
                        continue;
                    }
                    Ok(Renewal::Unchanged) => {}
                    Err(e) => {
                        finish(attempt, Some(status));
                        return Err(Error::credential(
                            format!(
                                "the server rejected the credential (HTTP {status}) and \
                                 renewing it failed: {e}"
                            ),
                            e,
                        )
                        .with_request(&method, &url));
                    }
                }
            }

            if self.follow_redirects
                && let Some(next) = redirect_target(status, &url, response.headers())
            {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    finish(attempt, Some(status));
                    return Err(Error::new(
                        ErrorKind::Request,
                        format!("more than {MAX_REDIRECTS} redirects in a row"),
                    )
                    .with_request(&method, &url));
                }
                if let Some(refusal) =
                    unsafe_redirect(status, &url, &next, urls.get(host), body.is_some())
                {
                    finish(attempt, Some(status));
                    return Err(refusal.with_request(&method, &url));
                }
                if matches!(status.as_u16(), 301..=303) && method != Method::HEAD {
                    method = Method::GET;
                    body = None;
                    body_dropped = true;
                }
                tracing::debug!(%status, to = %ShownUrl(&next), "following a redirect");
                url = next;
                continue;
            }

            if is_retryable_status(status) && retries_left > 0 {
                let delay = match retry_after(response.headers()) {
                    // Waiting longer than a whole attempt may take is not worth it: the caller
                    // gets the response and its Retry-After.
                    Some(asked) if asked > timeout => None,
                    Some(asked) => Some(asked),
                    None => Some(backoff(retries_done)),
                };
                if let Some(delay) = delay {
                    retries_left -= 1;
                    retries_done += 1;
                    tracing::debug!(%status, ?delay, "retrying after a temporary failure");
                    Box::pin(tokio::time::sleep(delay)).await;
                    continue;
                }
            }

            finish(attempt, Some(status));
            // What the server may echo back into an error message, to be masked there: the
            // credential's header and the caller's sensitive headers (cheap clones, no
            // allocation unless the caller set sensitive headers).
            let sent = SentSecrets {
                credential: sent_auth.map(|auth| auth.value().clone()),
                sensitive: self
                    .headers
                    .values()
                    .filter(|v| v.is_sensitive())
                    .cloned()
                    .collect(),
            };
            return Ok(Response::new(method, url, response, sent));
        }
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

/// What goes into one HTTP exchange.
struct Outgoing<'a> {
    method: &'a Method,
    url: &'a Url,
    headers: &'a HeaderMap,
    /// A redirect led away from the origin the request was meant for: the caller's
    /// credentials stay home (see [`is_caller_credential`]).
    other_origin: bool,
    body_dropped: bool,
    auth: Option<&'a AuthHeader>,
    preferences: Option<&'a HeaderValue>,
    session: Option<&'a HeaderValue>,
    body: Option<&'a Bytes>,
}

impl Outgoing<'_> {
    fn build(self) -> reqwest::Request {
        let mut request = reqwest::Request::new(self.method.clone(), self.url.clone());
        let headers = request.headers_mut();
        if self.other_origin {
            for (name, value) in self.headers {
                if !is_caller_credential(name, value) {
                    headers.append(name.clone(), value.clone());
                }
            }
        } else {
            headers.clone_from(self.headers);
        }
        if self.body_dropped {
            headers.remove(header::CONTENT_TYPE);
            headers.remove(header::CONTENT_LENGTH);
        }
        if let Some(auth) = self.auth {
            headers.insert(auth.name().clone(), auth.value().clone());
        }
        if let Some(preferences) = self.preferences {
            let name = HeaderName::from_static(USER_PREFERENCES);
            headers.entry(name).or_insert(preferences.clone());
        }
        if let Some(session) = self.session {
            headers.insert(SECURITY_SESSION, session.clone());
        }
        if let Some(body) = self.body {
            *request.body_mut() = Some(body.clone().into());
        }
        request
    }
}

/// The URLs a request may go to: one, or one per host (in the order to try them).
struct Candidates {
    first: Url,
    /// Empty for a single host, so that the common case allocates nothing.
    rest: Vec<Url>,
}

impl Candidates {
    fn len(&self) -> usize {
        1 + self.rest.len()
    }

    fn get(&self, index: usize) -> &Url {
        match index {
            0 => &self.first,
            _ => &self.rest[index - 1],
        }
    }
}

/// The credential's header when it is not ready: computed, perhaps signed or fetched.
async fn fetch_header(credential: &dyn Credential) -> Result<Option<AuthHeader>> {
    credential
        .header()
        .await
        .map_err(|e| Error::credential(format!("the credential could not make its header: {e}"), e))
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Why a redirect from `from` to `next` must not be followed, if it must not.
///
/// Never from https to http: what the request carries would cross the network in clear
/// text. Never a 307 or 308 that would resend the request body to another origin than
/// `home` (the one the request was meant for): the body may hold secrets (a form with a
/// password, a refresh token), and sending the method without its body could do harm (an
/// empty PUT), so the redirect is refused as a whole, not followed without the body.
fn unsafe_redirect(
    status: StatusCode,
    from: &Url,
    next: &Url,
    home: &Url,
    has_body: bool,
) -> Option<Error> {
    if from.scheme() == "https" && next.scheme() == "http" {
        return Some(Error::new(
            ErrorKind::Redirect,
            format!(
                "refusing to follow a redirect (HTTP {status}) from https to plain http ({}): \
                 the request would be sent unencrypted; use the https URL the server should \
                 have given",
                ShownUrl(next)
            ),
        ));
    }
    if has_body && matches!(status.as_u16(), 307 | 308) && !same_origin(next, home) {
        return Some(Error::new(
            ErrorKind::Redirect,
            format!(
                "refusing to follow a redirect (HTTP {status}) that would resend the request \
                 body to another origin ({}); send the request there directly if it is meant \
                 to go there",
                ShownUrl(next)
            ),
        ));
    }
    None
}

/// Whether a header the caller set carries a credential, which must not follow a redirect to
/// another origin (what curl does): `Authorization`, `Proxy-Authorization`, `Cookie`, and any
/// header set with [`RequestBuilder::sensitive_header`].
fn is_caller_credential(name: &HeaderName, value: &HeaderValue) -> bool {
    value.is_sensitive()
        || name == header::AUTHORIZATION
        || name == header::PROXY_AUTHORIZATION
        || name == header::COOKIE
}

/// Where a redirect response points, if it is one this transport follows.
fn redirect_target(status: StatusCode, url: &Url, headers: &HeaderMap) -> Option<Url> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    let next = url.join(location).ok()?;
    matches!(next.scheme(), "http" | "https").then_some(next)
}

/// Turns a reqwest error into this crate's, by what went wrong. The URL is stripped from the
/// reqwest error (it would show the query string); callers add the redacted one.
pub(crate) fn classify(error: reqwest::Error) -> Error {
    let error = error.without_url();
    let cause = root_cause(&error);
    let (kind, message) = if is_tls(&error) {
        (ErrorKind::Tls, format!("TLS handshake failed: {cause}"))
    } else if error.is_connect() {
        (ErrorKind::Connect, format!("could not connect: {cause}"))
    } else if error.is_timeout() {
        (ErrorKind::Timeout, format!("timed out: {cause}"))
    } else if error.is_body() || error.is_decode() {
        (
            ErrorKind::Request,
            format!("the connection broke while reading the response: {cause}"),
        )
    } else {
        (
            ErrorKind::Request,
            format!("could not send the request: {cause}"),
        )
    };
    Error::new(kind, message).with_source(error)
}

/// Whether rustls failed somewhere below: a certificate not trusted, a handshake refused.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if current.is::<rustls::Error>() {
            return true;
        }
        // `io::Error::source` skips the error it wraps; look at that one itself.
        cause = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    false
}
