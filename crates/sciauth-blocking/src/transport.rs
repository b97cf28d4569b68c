//! [`Transport`] and [`RequestBuilder`]: `sciauth_transport`'s, waited for on the calling
//! thread.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use sciauth_credentials::Credential;
use sciauth_transport::{
    Bytes, HeaderName, HeaderValue, Method, Preferences, Response, Result, TransportBuilder, Url,
};

use crate::runtime::Runtime;

/// A blocking [`sciauth_transport::Transport`]: HTTP that carries a credential, UNICORE
/// preferences and security sessions, with the same failover, retries, redirect rules and
/// size limits, each call waiting for its answer.
///
/// Clones share the transport (its connection pool and credential) and the background
/// runtime. Responses are read in full before a call returns, so a [`Response`]'s
/// [`bytes`](Response::bytes), [`text`](Response::text) and [`json`](Response::json) need
/// no runtime.
///
/// # Panics
///
/// Every method that sends a request panics when called inside an async runtime; use
/// [`sciauth_transport::Transport`] there.
///
/// ```no_run
/// use sciauth_blocking::Transport;
/// use sciauth_transport::credentials::BearerToken;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = Transport::build(
///     sciauth_transport::Transport::builder()
///         .base_url("https://api.example.org/v1")
///         .credential(BearerToken::new("eyJhbGciOi...")?),
/// )?;
/// let me: serde_json::Value = transport.get_json("me")?;
/// # drop(me);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Transport {
    inner: sciauth_transport::Transport,
    runtime: Runtime,
}

/// A request being built: [`sciauth_transport::RequestBuilder`]'s settings, and a
/// [`send`](Self::send) that waits. Made by [`Transport::request`] and its shorthands.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    inner: sciauth_transport::RequestBuilder,
    runtime: Runtime,
}

impl Transport {
    /// Builds the transport `builder` describes (every setting and its default is on
    /// [`TransportBuilder`]). Fails as [`TransportBuilder::build`] does: an unreadable
    /// certificate file, a bad URL.
    pub fn build(builder: TransportBuilder) -> Result<Transport> {
        let runtime = Runtime::shared();
        Ok(Transport {
            inner: builder.build()?,
            runtime,
        })
    }

    /// A blocking handle on `transport`, sharing its connection pool, credential and
    /// sessions.
    pub fn new(transport: sciauth_transport::Transport) -> Transport {
        Transport {
            inner: transport,
            runtime: Runtime::shared(),
        }
    }

    /// The async transport underneath, for code that runs inside a runtime.
    pub fn as_async(&self) -> &sciauth_transport::Transport {
        &self.inner
    }

    /// A transport like this one that sends `credential` instead (sharing the connection
    /// pool); see [`sciauth_transport::Transport::with_credential`].
    pub fn with_credential(&self, credential: impl Credential + 'static) -> Transport {
        self.wrap(self.inner.with_credential(credential))
    }

    /// Like [`with_credential`](Self::with_credential), with a credential shared with
    /// others.
    pub fn with_shared_credential(&self, credential: Arc<dyn Credential>) -> Transport {
        self.wrap(self.inner.with_shared_credential(credential))
    }

    /// A transport like this one that sends `preferences` with every request; see
    /// [`sciauth_transport::Transport::with_preferences`].
    pub fn with_preferences(&self, preferences: Preferences) -> Transport {
        self.wrap(self.inner.with_preferences(preferences))
    }

    /// The base URLs (hosts) the transport picks from.
    pub fn base_urls(&self) -> &[Url] {
        self.inner.base_urls()
    }

    /// A request of any method to `target` (a path relative to the base URL, or an
    /// absolute URL).
    pub fn request(&self, method: Method, target: &str) -> RequestBuilder {
        self.builder(self.inner.request(method, target))
    }

    /// A GET request to `target`.
    pub fn get(&self, target: &str) -> RequestBuilder {
        self.builder(self.inner.get(target))
    }

    /// A POST request to `target`.
    pub fn post(&self, target: &str) -> RequestBuilder {
        self.builder(self.inner.post(target))
    }

    /// A PUT request to `target`.
    pub fn put(&self, target: &str) -> RequestBuilder {
        self.builder(self.inner.put(target))
    }

    /// A DELETE request to `target` (the request; [`delete`](Self::delete) sends one).
    pub fn delete_request(&self, target: &str) -> RequestBuilder {
        self.builder(self.inner.delete_request(target))
    }

    /// GETs `target` and decodes its JSON answer; see
    /// [`sciauth_transport::Transport::get_json`].
    pub fn get_json<T: DeserializeOwned + Send + 'static>(&self, target: &str) -> Result<T> {
        self.get(target).send_json()
    }

    /// POSTs `body` as JSON to `target` and decodes the JSON answer.
    pub fn post_json<B, T>(&self, target: &str, body: &B) -> Result<T>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned + Send + 'static,
    {
        self.post(target).json(body).send_json()
    }

    /// PUTs `body` as JSON to `target` and decodes the JSON answer.
    pub fn put_json<B, T>(&self, target: &str, body: &B) -> Result<T>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned + Send + 'static,
    {
        self.put(target).json(body).send_json()
    }

    /// DELETEs `target`; fails on a non-2xx status.
    pub fn delete(&self, target: &str) -> Result<()> {
        self.delete_request(target).send()?.error_for_status()?;
        Ok(())
    }

    /// GETs `target` and returns its body as text; fails on a non-2xx status.
    pub fn get_text(&self, target: &str) -> Result<String> {
        let response = self.get(target).send()?.error_for_status()?;
        Ok(response.text()?.to_owned())
    }

    fn wrap(&self, inner: sciauth_transport::Transport) -> Transport {
        Transport {
            inner,
            runtime: self.runtime.clone(),
        }
    }

    fn builder(&self, inner: sciauth_transport::RequestBuilder) -> RequestBuilder {
        RequestBuilder {
            inner,
            runtime: self.runtime.clone(),
        }
    }
}

impl From<sciauth_transport::Transport> for Transport {
    fn from(transport: sciauth_transport::Transport) -> Transport {
        Transport::new(transport)
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The async transport's Debug holds no header value or credential.
        f.debug_tuple("Transport").field(&self.inner).finish()
    }
}

/// Each setter is [`sciauth_transport::RequestBuilder`]'s, with its default.
impl RequestBuilder {
    /// Adds a header; see [`sciauth_transport::RequestBuilder::header`].
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        self.map(|inner| inner.header(name, value))
    }

    /// Adds a header whose value is secret; see
    /// [`sciauth_transport::RequestBuilder::sensitive_header`].
    pub fn sensitive_header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        self.map(|inner| inner.sensitive_header(name, value))
    }

    /// Adds query parameters; see [`sciauth_transport::RequestBuilder::query`].
    pub fn query<T: Serialize + ?Sized>(self, query: &T) -> Self {
        self.map(|inner| inner.query(query))
    }

    /// Sends `body` as JSON; see [`sciauth_transport::RequestBuilder::json`].
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Self {
        self.map(|inner| inner.json(body))
    }

    /// Sends `body` as a form; see [`sciauth_transport::RequestBuilder::form`].
    pub fn form<T: Serialize + ?Sized>(self, body: &T) -> Self {
        self.map(|inner| inner.form(body))
    }

    /// Sends these bytes as the body; see [`sciauth_transport::RequestBuilder::body`].
    pub fn body(self, body: impl Into<Bytes>) -> Self {
        self.map(|inner| inner.body(body))
    }

    /// Sends this credential instead of the transport's; see
    /// [`sciauth_transport::RequestBuilder::credential`].
    pub fn credential(self, credential: Arc<dyn Credential>) -> Self {
        self.map(|inner| inner.credential(credential))
    }

    /// Sends no credential; see [`sciauth_transport::RequestBuilder::no_credential`].
    pub fn no_credential(self) -> Self {
        self.map(sciauth_transport::RequestBuilder::no_credential)
    }

    /// Sends these preferences instead of the transport's; see
    /// [`sciauth_transport::RequestBuilder::preferences`].
    pub fn preferences(self, preferences: Preferences) -> Self {
        self.map(|inner| inner.preferences(preferences))
    }

    /// The timeout of this request; see [`sciauth_transport::RequestBuilder::timeout`].
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|inner| inner.timeout(timeout))
    }

    /// Whether this request may be retried; see [`sciauth_transport::RequestBuilder::retry`].
    pub fn retry(self, yes: bool) -> Self {
        self.map(|inner| inner.retry(yes))
    }

    /// Whether this request follows redirects; see
    /// [`sciauth_transport::RequestBuilder::follow_redirects`].
    pub fn follow_redirects(self, yes: bool) -> Self {
        self.map(|inner| inner.follow_redirects(yes))
    }

    /// The largest response body this request reads; see
    /// [`sciauth_transport::RequestBuilder::max_response_size`].
    pub fn max_response_size(self, bytes: usize) -> Self {
        self.map(|inner| inner.max_response_size(bytes))
    }

    /// Sends the request and reads the whole response, for any status; fails as
    /// [`sciauth_transport::RequestBuilder::send`] does.
    ///
    /// # Panics
    ///
    /// When called inside an async runtime.
    pub fn send(self) -> Result<Response> {
        let RequestBuilder { inner, runtime } = self;
        runtime.block_on(
            "sciauth::blocking::RequestBuilder::send",
            "sciauth::transport::RequestBuilder::send",
            inner.send(),
        )
    }

    /// Sends the request and decodes the JSON answer; fails on a non-2xx status, as
    /// [`sciauth_transport::RequestBuilder::send_json`] does.
    ///
    /// # Panics
    ///
    /// When called inside an async runtime.
    pub fn send_json<T: DeserializeOwned + Send + 'static>(self) -> Result<T> {
        let RequestBuilder { inner, runtime } = self;
        runtime.block_on(
            "sciauth::blocking::RequestBuilder::send_json",
            "sciauth::transport::RequestBuilder::send_json",
            inner.send_json(),
        )
    }

    fn map(
        self,
        change: impl FnOnce(sciauth_transport::RequestBuilder) -> sciauth_transport::RequestBuilder,
    ) -> Self {
        RequestBuilder {
            inner: change(self.inner),
            runtime: self.runtime,
        }
    }
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The async builder's Debug shows no header value, body or query string.
        f.debug_tuple("RequestBuilder").field(&self.inner).finish()
    }
}
