//! Sending a planned request: the exchange loop and its policies.
//!
//! [`Plan::run`] sends, reads the answer, and asks small policies in turn what to do next,
//! each answering with a [`Decision`] (as tower separates a retry policy from the service it
//! retries): [`Plan::after_failure`] (fail over to the next host, or retry a connect error),
//! [`Plan::session_policy`] (HTTP 432: drop the UNICORE security session once),
//! [`Plan::renewal_policy`] (a rejected credential renews once), [`Plan::redirect_policy`]
//! (follow, or refuse an unsafe redirect) and [`Plan::retry_policy`] (502/503/504 with
//! backoff or `Retry-After`). Only `run` moves the request on ([`Cursor`]), so every bound on
//! resends is in one place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use sciauth_credentials::{AuthHeader, Credential, Ready, Renewal};
use url::Url;

use crate::builder::root_cause;
use crate::error::{Error, ErrorKind, Result, ShownUrl};
use crate::preferences::USER_PREFERENCES;
use crate::response::{self, Parts, Response, SentSecrets};
use crate::retry::{backoff, is_retryable_status, retry_after};
use crate::session::{SECURITY_SESSION, SessionStore, is_session_expired};
use crate::transport::Transport;

/// Redirects followed in a row before giving up.
const MAX_REDIRECTS: u32 = 10;

/// Everything [`RequestBuilder::send`] decided before the first byte goes out.
pub(crate) struct Plan {
    pub(crate) transport: Transport,
    pub(crate) method: Method,
    pub(crate) urls: Candidates,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) credential: Option<Arc<dyn Credential>>,
    pub(crate) preferences: Option<HeaderValue>,
    pub(crate) use_sessions: bool,
    pub(crate) timeout: Duration,
    pub(crate) retryable: bool,
    pub(crate) follow_redirects: bool,
    pub(crate) max_response_size: usize,
}

/// Where a request stands between two exchanges: the host and URL it goes to now, and what
/// has been tried. The policies read it; [`Plan::run`] moves it on.
struct Cursor {
    attempt: u32,
    host: usize,
    hosts_failed: usize,
    url: Url,
    method: Method,
    body: Option<Bytes>,
    /// Set when a redirect turned the request into a body-less GET.
    body_dropped: bool,
    redirects: u32,
    renewal_tried: bool,
    session_retried: bool,
    retries_left: u32,
    retries_done: u32,
}

/// What a policy decides after an exchange (or a failed one).
enum Decision {
    /// Not this policy's case: the next one decides, and after the last the caller gets the
    /// response.
    Pass,
    /// Send again as it is: at once (a renewed credential, a dropped session), or after a
    /// wait that counts as one retry.
    Resend(Option<Duration>),
    /// The host did not answer: try the next one, undoing any redirects.
    FailOver,
    /// A connect error with retries left: wait, then start over on the next host.
    RetryConnect(Duration),
    /// Follow a redirect; `as_get`: a 301/302/303 makes it a body-less GET.
    Follow { to: Url, as_get: bool },
    /// Stop with this error.
    Fail(Error),
}

/// What one exchange sent that the policies and the response need.
struct Sent {
    auth: Option<AuthHeader>,
    session: bool,
    trusted: bool,
}

impl Plan {
    pub(crate) async fn run(&mut self) -> Result<Response> {
        let span = tracing::Span::current();
        // Read the clock only for a span that is recorded.
        let started = (!span.is_disabled()).then(Instant::now);
        let finish = |attempt: u32, status: Option<StatusCode>| {
            span.record("attempt", attempt);
            if let Some(started) = started {
                span.record("elapsed_ms", started.elapsed().as_millis() as u64);
            }
            if let Some(status) = status {
                span.record("status", status.as_u16());
            }
        };
        let settings = &*self.transport.inner().settings;
        let mut cursor = Cursor {
            attempt: 0,
            host: 0,
            hosts_failed: 0,
            url: self.urls.first.clone(),
            method: self.method.clone(),
            body: self.body.clone(),
            body_dropped: false,
            redirects: 0,
            renewal_tried: false,
            session_retried: false,
            retries_left: if self.retryable { settings.retries } else { 0 },
            retries_done: 0,
        };
        loop {
            cursor.attempt += 1;
            let (sent, outcome) = match self.exchange(&cursor).await {
                Ok(exchanged) => exchanged,
                Err(error) => {
                    finish(cursor.attempt, None);
                    return Err(error);
                }
            };
            let parts = match outcome {
                Ok(parts) => parts,
                Err(error) => {
                    let error = error.with_request(&cursor.method, &cursor.url);
                    match self.after_failure(&cursor, error) {
                        Decision::Fail(error) => {
                            finish(cursor.attempt, None);
                            return Err(error);
                        }
                        decision => self.apply(&mut cursor, decision).await,
                    }
                    continue;
                }
            };
            let status = parts.status();
            if let (Some(store), true) = (self.sessions(), sent.trusted) {
                store.remember(&cursor.url, parts.headers());
            }
            let mut decision = self.session_policy(&mut cursor, &sent, status);
            if let Decision::Pass = decision {
                decision = self.renewal_policy(&mut cursor, &sent, status).await;
            }
            if let Decision::Pass = decision {
                decision = self.redirect_policy(&cursor, status, parts.headers());
            }
            if let Decision::Pass = decision {
                decision = self.retry_policy(&cursor, status, parts.headers());
            }
            match decision {
                Decision::Pass => {
                    finish(cursor.attempt, Some(status));
                    return Ok(self.response(cursor, parts, sent));
                }
                Decision::Fail(error) => {
                    finish(cursor.attempt, Some(status));
                    return Err(error.with_request(&cursor.method, &cursor.url));
                }
                decision => self.apply(&mut cursor, decision).await,
            }
        }
    }

    /// The session store, if this request uses sessions.
    fn sessions(&self) -> Option<&SessionStore> {
        if self.use_sessions {
            self.transport.inner().sessions.as_deref()
        } else {
            None
        }
    }

    /// One exchange: the credential's header and the session (only to the origin the request
    /// was meant for), then send and read the whole answer within the timeout. The outer
    /// error is the credential's (no exchange happened); the inner one the exchange's.
    async fn exchange(&self, cursor: &Cursor) -> Result<(Sent, Result<Parts>)> {
        // The credential and the session go only to the host the request was meant for,
        // never to where a redirect points elsewhere.
        let trusted = cursor.redirects == 0 || same_origin(&cursor.url, self.urls.get(cursor.host));
        let auth = match (&self.credential, trusted) {
            (Some(credential), true) => {
                let auth = match credential.ready_header() {
                    Ready::Header(header) => Some(header),
                    Ready::NoHeader => None,
                    Ready::NotReady => fetch_header(&**credential)
                        .await
                        .map_err(|error| error.with_request(&cursor.method, &cursor.url))?,
                };
                // A header the caller set explicitly wins.
                auth.filter(|auth| {
                    self.headers.is_empty() || !self.headers.contains_key(auth.name())
                })
            }
            _ => None,
        };
        let session = match (self.sessions(), trusted) {
            (Some(store), true) => store.get(&cursor.url),
            _ => None,
        };
        let exchange = async {
            let request = Outgoing {
                method: &cursor.method,
                url: &cursor.url,
                headers: &self.headers,
                other_origin: !trusted,
                body_dropped: cursor.body_dropped,
                auth: auth.as_ref(),
                preferences: self.preferences.as_ref(),
                session: session.as_ref(),
                body: cursor.body.as_ref(),
            }
            .build();
            let client = &self.transport.inner().client;
            let response = client.execute(request).await.map_err(classify)?;
            response::read(response, self.max_response_size).await
        };
        // The deadline covers connecting, sending and reading the whole body.
        let timeout = self.timeout;
        let outcome = match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("no complete response within {timeout:?}"),
            )),
        };
        let sent = Sent {
            auth,
            session: session.is_some(),
            trusted,
        };
        Ok((sent, outcome))
    }

    /// No answer: fail over to the next host (a connect error, or a timeout of a request that
    /// may be resent), retry a connect error after a backoff, or give up.
    fn after_failure(&self, cursor: &Cursor, error: Error) -> Decision {
        let may_fail_over = error.is_connect() || (error.is_timeout() && self.retryable);
        if may_fail_over && cursor.hosts_failed + 1 < self.urls.len() {
            let next = (cursor.host + 1) % self.urls.len();
            tracing::debug!(%error, next = %ShownUrl(self.urls.get(next)), "trying the next host");
            Decision::FailOver
        } else if error.is_connect() && cursor.retries_left > 0 {
            let delay = backoff(cursor.retries_done);
            tracing::debug!(%error, ?delay, "retrying after a connect error");
            Decision::RetryConnect(delay)
        } else {
            Decision::Fail(error)
        }
    }

    /// HTTP 432 with a UNICORE security session: the session expired; send once more
    /// without it.
    fn session_policy(&self, cursor: &mut Cursor, sent: &Sent, status: StatusCode) -> Decision {
        if !sent.session || !is_session_expired(status) || cursor.session_retried {
            return Decision::Pass;
        }
        cursor.session_retried = true;
        if let Some(store) = self.sessions() {
            store.forget(&cursor.url);
        }
        tracing::debug!("security session expired (HTTP 432); sending again without it");
        Decision::Resend(None)
    }

    /// A status the transport treats as a rejected credential: tell the credential once; if
    /// it renewed itself, send again with the new header.
    async fn renewal_policy(
        &self,
        cursor: &mut Cursor,
        sent: &Sent,
        status: StatusCode,
    ) -> Decision {
        let settings = &self.transport.inner().settings;
        let (Some(auth), Some(credential)) = (&sent.auth, &self.credential) else {
            return Decision::Pass;
        };
        if cursor.renewal_tried || !settings.rejected_statuses.contains(&status) {
            return Decision::Pass;
        }
        cursor.renewal_tried = true;
        match credential.rejected(Some(auth)).await {
            Ok(Renewal::Renewed) => {
                tracing::debug!(%status, "credential rejected and renewed; sending again");
                Decision::Resend(None)
            }
            Ok(Renewal::Unchanged) => Decision::Pass,
            Err(e) => Decision::Fail(Error::credential(
                format!(
                    "the server rejected the credential (HTTP {status}) and renewing it \
                     failed: {e}"
                ),
                e,
            )),
        }
    }

    /// A redirect this request follows: at most [`MAX_REDIRECTS`] in a row, never an unsafe
    /// one ([`unsafe_redirect`]).
    fn redirect_policy(
        &self,
        cursor: &Cursor,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Decision {
        if !self.follow_redirects {
            return Decision::Pass;
        }
        let Some(next) = redirect_target(status, &cursor.url, headers) else {
            return Decision::Pass;
        };
        if cursor.redirects >= MAX_REDIRECTS {
            return Decision::Fail(Error::new(
                ErrorKind::Request,
                format!("more than {MAX_REDIRECTS} redirects in a row"),
            ));
        }
        let home = self.urls.get(cursor.host);
        if let Some(refusal) =
            unsafe_redirect(status, &cursor.url, &next, home, cursor.body.is_some())
        {
            return Decision::Fail(refusal);
        }
        tracing::debug!(%status, to = %ShownUrl(&next), "following a redirect");
        let as_get = matches!(status.as_u16(), 301..=303) && cursor.method != Method::HEAD;
        Decision::Follow { to: next, as_get }
    }

    /// 502, 503 or 504 with retries left: wait as the server asks (`Retry-After`), or with a
    /// backoff, and send again; a wait longer than a whole attempt may take is not worth it,
    /// and the caller gets the response and its `Retry-After`.
    fn retry_policy(&self, cursor: &Cursor, status: StatusCode, headers: &HeaderMap) -> Decision {
        if !is_retryable_status(status) || cursor.retries_left == 0 {
            return Decision::Pass;
        }
        let delay = match retry_after(headers) {
            Some(asked) if asked > self.timeout => return Decision::Pass,
            Some(asked) => asked,
            None => backoff(cursor.retries_done),
        };
        tracing::debug!(%status, ?delay, "retrying after a temporary failure");
        Decision::Resend(Some(delay))
    }

    /// Moves the request on as `decision` says, waiting where it says to.
    async fn apply(&self, cursor: &mut Cursor, decision: Decision) {
        match decision {
            Decision::Pass | Decision::Fail(_) | Decision::Resend(None) => {}
            Decision::Resend(Some(delay)) => {
                cursor.retries_left -= 1;
                cursor.retries_done += 1;
                // Boxed, like every rarely taken wait, to keep the future small.
                Box::pin(tokio::time::sleep(delay)).await;
            }
            Decision::FailOver => {
                cursor.hosts_failed += 1;
                self.restart(cursor, (cursor.host + 1) % self.urls.len());
            }
            Decision::RetryConnect(delay) => {
                cursor.retries_left -= 1;
                cursor.retries_done += 1;
                Box::pin(tokio::time::sleep(delay)).await;
                cursor.hosts_failed = 0;
                self.restart(cursor, (cursor.host + 1) % self.urls.len());
            }
            Decision::Follow { to, as_get } => {
                cursor.redirects += 1;
                if as_get {
                    cursor.method = Method::GET;
                    cursor.body = None;
                    cursor.body_dropped = true;
                }
                cursor.url = to;
            }
        }
    }

    /// Start over on `host`, undoing any redirects.
    fn restart(&self, cursor: &mut Cursor, host: usize) {
        cursor.host = host;
        cursor.url = self.urls.get(host).clone();
        cursor.method = self.method.clone();
        cursor.body = self.body.clone();
        cursor.body_dropped = false;
        cursor.redirects = 0;
    }

    /// The caller's response. It remembers what the server may echo back into an error
    /// message, to be masked there: the credential's header and the caller's sensitive
    /// headers (cheap clones, no allocation unless the caller set sensitive headers).
    fn response(&self, cursor: Cursor, parts: Parts, sent: Sent) -> Response {
        let sent = SentSecrets {
            credential: sent.auth.map(|auth| auth.value().clone()),
            sensitive: self
                .headers
                .values()
                .filter(|v| v.is_sensitive())
                .cloned()
                .collect(),
        };
        Response::new(cursor.method, cursor.url, parts, sent)
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
pub(crate) struct Candidates {
    pub(crate) first: Url,
    /// Empty for a single host, so that the common case allocates nothing.
    pub(crate) rest: Vec<Url>,
}

impl Candidates {
    pub(crate) fn len(&self) -> usize {
        1 + self.rest.len()
    }

    pub(crate) fn get(&self, index: usize) -> &Url {
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
