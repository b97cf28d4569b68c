//! The crate's one [`Error`] and its [`ErrorKind`].

use std::error::Error as StdError;
use std::fmt;

use http::{Method, StatusCode};
use url::Url;

use sciauth_credentials::text::printable;
use sciauth_credentials::{Class, Diagnose, Diagnosis};

use crate::response::{self, SentSecrets};

/// What a [`Result`] of this crate fails with.
pub type Result<T, E = Error> = std::result::Result<T, E>;

type BoxError = Box<dyn StdError + Send + Sync>;

/// At most this much of an error response's body is kept in an [`Error`].
pub(crate) const ERROR_BODY_LIMIT: usize = 4 * 1024;

/// Why a request (or building a transport) failed.
///
/// `Display` says what failed and where: the method and the URL without its query string and
/// user info, since those can carry secrets. No header value, credential or request body ever
/// appears in it. Lower-level causes (reqwest, rustls, the credential) arrive through
/// [`source`](std::error::Error::source).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    method: Option<Method>,
    url: Option<Url>,
    status: Option<StatusCode>,
    body: Option<String>,
    server_message: Option<String>,
    source: Option<BoxError>,
    /// For [`ErrorKind::Credential`]: the credential's own judgement of its failure.
    credential: Diagnosis,
}

/// The kinds of [`Error`]. More may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server answered with a status that the caller treats as an error (non-2xx for the
    /// `*_json` helpers and [`Response::error_for_status`](crate::Response::error_for_status)).
    /// [`Error::status`], [`Error::body`] and [`Error::server_message`] tell more.
    Status,
    /// No complete response arrived within the timeout.
    Timeout,
    /// No connection could be made (refused, unreachable, DNS failure, connect timeout).
    Connect,
    /// The TLS handshake failed: the server's certificate is not trusted, or the server
    /// refused the client certificate.
    Tls,
    /// The credential could not produce its header, or could not renew itself.
    Credential,
    /// The response body is not what the caller expected (invalid JSON, wrong shape, not
    /// UTF-8).
    Decode,
    /// The response body is larger than the transport's `max_response_size`.
    BodyTooLarge,
    /// The user preferences cannot be sent: a value contains a character the server cannot
    /// parse (`,`, `:`, ...).
    InvalidPreference,
    /// A setting of the transport is invalid (a bad URL, an unreadable certificate file).
    Builder,
    /// The request could not be built or sent (a bad header, a body that cannot be
    /// serialized, too many redirects, a broken connection).
    Request,
    /// A redirect was not followed because following it would be unsafe: it leads from
    /// https to plain http, or a 307/308 would resend the request body to another origin.
    Redirect,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                method: None,
                url: None,
                status: None,
                body: None,
                server_message: None,
                source: None,
                credential: Diagnosis::default(),
            }),
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// An [`ErrorKind::Credential`] error: the credential failed to make or renew its header,
    /// for the reason its own error gives (a refresh that needs a login, say).
    pub(crate) fn credential(
        message: impl Into<String>,
        cause: sciauth_credentials::Error,
    ) -> Self {
        let judged = cause.diagnosis();
        let mut error = Self::new(ErrorKind::Credential, message).with_source(cause);
        error.inner.credential = judged;
        error
    }

    /// Names the request that failed, unless a more precise one is already named (for example
    /// the URL a redirect led to).
    pub(crate) fn with_request(mut self, method: &Method, url: &Url) -> Self {
        if self.inner.url.is_none() {
            self.inner.method = Some(method.clone());
            self.inner.url = Some(redacted_url(url));
        }
        self
    }

    /// An error for a response whose status the caller does not accept. What the server said
    /// has the secrets the request sent masked, should the server echo them.
    pub(crate) fn from_status(
        method: &Method,
        url: &Url,
        status: StatusCode,
        body: &[u8],
        sent: &SentSecrets,
    ) -> Self {
        let spellings = sent.spellings();
        let mask = |text: String| response::mask(text, &spellings);
        let server_message = server_message(body, mask);
        let mut message = format!("HTTP {status}");
        if let Some(server) = &server_message {
            message.push_str(": ");
            message.push_str(server);
        }
        // Masked before it is cut, so that a secret across the cut leaves no prefix behind.
        let longest = spellings.first().map_or(0, String::len);
        let read = &body[..body.len().min(ERROR_BODY_LIMIT.saturating_add(longest))];
        let mut shown = mask(String::from_utf8_lossy(read).into_owned());
        if shown.len() > ERROR_BODY_LIMIT {
            let mut end = ERROR_BODY_LIMIT;
            while !shown.is_char_boundary(end) {
                end -= 1;
            }
            shown.truncate(end);
        }
        let mut error = Self::new(ErrorKind::Status, message).with_request(method, url);
        error.inner.status = Some(status);
        error.inner.body = Some(shown);
        error.inner.server_message = server_message;
        error
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The URL of the failed request, without query string, fragment and user info.
    pub fn url(&self) -> Option<&Url> {
        self.inner.url.as_ref()
    }

    /// At most the first 4 KiB of the error response's body (invalid UTF-8 replaced), for
    /// [`ErrorKind::Status`].
    pub fn body(&self) -> Option<&str> {
        self.inner.body.as_deref()
    }

    /// The server's own explanation, taken from a JSON error body (`error_description`,
    /// `errorMessage`, `ExceptionMessage`, `message` or `error`), for [`ErrorKind::Status`].
    pub fn server_message(&self) -> Option<&str> {
        self.inner.server_message.as_deref()
    }

    /// Whether no complete response arrived within the timeout.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// Whether no connection could be made.
    pub fn is_connect(&self) -> bool {
        self.inner.kind == ErrorKind::Connect
    }

    /// Whether the server answered with a status the caller does not accept.
    pub fn is_status(&self) -> bool {
        self.inner.kind == ErrorKind::Status
    }
}

impl Diagnose for Error {
    fn diagnosis(&self) -> Diagnosis {
        let status = self.inner.status;
        let class = match self.inner.kind {
            ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Tls => Class::Network,
            ErrorKind::Status
                if status.is_some_and(|s| {
                    s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN
                }) =>
            {
                Class::Refused
            }
            ErrorKind::Credential => {
                let credential = self.inner.credential;
                return credential.with_status(credential.status().or(status));
            }
            ErrorKind::InvalidPreference | ErrorKind::Builder => Class::BadInput,
            // A connection reset or closed mid-answer: the network, not the request.
            ErrorKind::Request if has_io_cause(self) => Class::Network,
            _ => Class::Other,
        };
        Diagnosis::new(class).with_status(status)
    }
}

sciauth_credentials::diagnosis_predicates!(Error);

/// Whether an I/O error (a reset, a broken pipe) lies under `error`.
fn has_io_cause(error: &(dyn StdError + 'static)) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inner.method, &self.inner.url) {
            (Some(method), Some(url)) => write!(f, "{method} {url}: ")?,
            (None, Some(url)) => write!(f, "{url}: ")?,
            _ => {}
        }
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Error");
        debug.field("kind", &self.inner.kind);
        if let Some(method) = &self.inner.method {
            debug.field("method", method);
        }
        if let Some(url) = &self.inner.url {
            debug.field("url", &url.as_str());
        }
        debug.field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|source| &**source as &(dyn StdError + 'static))
    }
}

/// The URL as it may be shown: without query string and fragment (tokens travel there) and
/// without user name and password.
pub(crate) fn redacted_url(url: &Url) -> Url {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    // Both fail only for URLs that cannot have credentials at all.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown
}

/// A `Display` of a URL without query string, fragment and user info that does not allocate
/// unless the URL has any of those.
pub(crate) struct ShownUrl<'a>(pub(crate) &'a Url);

impl fmt::Display for ShownUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        if url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none()
        {
            f.write_str(url.as_str())
        } else {
            f.write_str(redacted_url(url).as_str())
        }
    }
}

/// The server's explanation of an error, from the JSON error bodies the supported services
/// send: OAuth 2.0 (`error`, `error_description`), UNICORE (`errorMessage`), Rucio
/// (`ExceptionClass`, `ExceptionMessage`) and the common `message`.
fn server_message(body: &[u8], mask: impl Fn(String) -> String) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let text = |key: &str| {
        object
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let nested_error_message = object
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str());
    let message = match (text("error"), text("error_description")) {
        (Some(code), Some(description)) => format!("{code}: {description}"),
        (None, Some(description)) => description.to_owned(),
        _ => match (text("ExceptionClass"), text("ExceptionMessage")) {
            (Some(class), Some(message)) => format!("{class}: {message}"),
            (None, Some(message)) => message.to_owned(),
            _ => text("errorMessage")
                .or_else(|| text("message"))
                .or(nested_error_message)
                .or_else(|| text("error"))?
                .to_owned(),
        },
    };
    // A server message is shown in one line of Display: secrets it echoes masked, then
    // control characters escaped, and cut short.
    Some(printable(&mask(message), 512))
}

/// A serde message with the values it quotes replaced: serde names the value it could not
/// use (`invalid type: string "eyJ...", expected u64`), and that value can be a token.
pub(crate) fn redact_serde_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("string \"") {
        let (before, after) = rest.split_at(start + "string ".len());
        out.push_str(before);
        // `after` starts with the opening quote of a Debug-escaped string.
        let mut escaped = false;
        let mut end = None;
        for (i, c) in after.char_indices().skip(1) {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i + 1);
                    break;
                }
                _ => escaped = false,
            }
        }
        out.push_str("(value not shown)");
        match end {
            Some(end) => rest = &after[end..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}
