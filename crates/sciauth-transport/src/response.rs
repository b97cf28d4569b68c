//! [`Response`]: a status, headers and a body read in full, under the size limit.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use sciauth_credentials::text::printable;

use crate::error::{Error, ErrorKind, Result, ShownUrl, redact_serde_message};

/// A response whose body has been read completely (and was within the transport's
/// `max_response_size`) before [`send`](crate::RequestBuilder::send) returned.
pub struct Response {
    method: Method,
    status: StatusCode,
    headers: HeaderMap,
    url: Url,
    body: Bytes,
    sent: SentSecrets,
}

/// The secret header values a request sent, so that a server echoing them back into its error
/// message does not put them into an [`Error`].
#[derive(Default)]
pub(crate) struct SentSecrets {
    pub(crate) credential: Option<HeaderValue>,
    pub(crate) sensitive: Vec<HeaderValue>,
}

impl SentSecrets {
    /// Every spelling a server may echo: the header value, and its credentials without the
    /// scheme (`Bearer <token>` -> `<token>`); for Basic, also the decoded password.
    pub(crate) fn spellings(&self) -> Vec<String> {
        let mut spellings = Vec::new();
        for value in self.credential.iter().chain(&self.sensitive) {
            let Ok(value) = value.to_str() else { continue };
            if value.is_empty() {
                continue;
            }
            spellings.push(value.to_owned());
            if let Some((scheme, credentials)) = value.split_once(' ') {
                let credentials = credentials.trim();
                if credentials.is_empty() {
                    continue;
                }
                spellings.push(credentials.to_owned());
                if scheme.eq_ignore_ascii_case("basic")
                    && let Ok(decoded) = BASE64.decode(credentials)
                    && let Ok(decoded) = String::from_utf8(decoded)
                    && let Some((_, password)) = decoded.split_once(':')
                    && !password.is_empty()
                {
                    spellings.push(password.to_owned());
                }
            }
        }
        // Longer first, so a secret inside another is not left half visible.
        spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
        spellings
    }
}

/// `text` with each of `spellings` replaced by `[redacted]`.
pub(crate) fn mask(text: String, spellings: &[String]) -> String {
    spellings.iter().fold(text, |text, secret| {
        if text.contains(secret.as_str()) {
            text.replace(secret.as_str(), "[redacted]")
        } else {
            text
        }
    })
}

impl Response {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The URL that answered: the request's, or where redirects led.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body, taking it out of the response.
    pub fn into_bytes(self) -> Bytes {
        self.body
    }

    /// The body as text. Fails with [`ErrorKind::Decode`] if it is not UTF-8.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                format!("the response body is not UTF-8 text: {e}"),
            )
            .with_request(&self.method, &self.url)
        })
    }

    /// Decodes the body as JSON. Fails with [`ErrorKind::Decode`]; the message names the
    /// path of the field that did not fit (`items[2].owner`) but not the value found, which
    /// could be a secret.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let mut deserializer = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let message = printable(&redact_serde_message(&e.into_inner().to_string()), 300);
            let at = if path == "." {
                String::new()
            } else {
                format!(" at {path}")
            };
            Error::new(
                ErrorKind::Decode,
                format!("the response is not the expected JSON{at}: {message}"),
            )
            .with_request(&self.method, &self.url)
        })
    }

    /// `text` (the server's words, for an error message) with every secret the request sent
    /// replaced by `[redacted]`: the credential's header value, its token without the scheme,
    /// a Basic password, and the values of headers set with
    /// [`sensitive_header`](crate::RequestBuilder::sensitive_header). A server that echoes the
    /// request into its error then puts no secret into an error or a log.
    pub fn mask_sent_secrets(&self, text: &str) -> String {
        mask(text.to_owned(), &self.sent.spellings())
    }

    /// The response itself if its status is 2xx, else an [`ErrorKind::Status`] error with the
    /// status, at most 4 KiB of the body, and the server's message from a JSON error body.
    pub fn error_for_status(self) -> Result<Response> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(Error::from_status(
                &self.method,
                &self.url,
                self.status,
                &self.body,
                &self.sent,
            ))
        }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers can carry session IDs and tokens; show only their names.
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("url", &format_args!("{}", ShownUrl(&self.url)))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A response read in full, before [`Response`] gives it its URL and method.
pub(crate) struct Parts {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Parts {
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl Response {
    pub(crate) fn new(method: Method, url: Url, parts: Parts, sent: SentSecrets) -> Self {
        Self {
            method,
            status: parts.status,
            headers: parts.headers,
            url,
            body: parts.body,
            sent,
        }
    }
}

/// Reads a reqwest response in full, refusing a body over `limit` without reading the rest.
pub(crate) async fn read(mut response: reqwest::Response, limit: usize) -> Result<Parts> {
    let too_large = |size: &dyn fmt::Display| {
        Error::new(
            ErrorKind::BodyTooLarge,
            format!(
                "the response body is {size} bytes, over the limit of {limit} bytes \
                 (raise it with max_response_size)"
            ),
        )
    };
    if let Some(length) = response.content_length()
        && length > limit as u64
    {
        return Err(too_large(&length));
    }
    let announced = response.content_length();
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut total: usize = 0;
    while let Some(chunk) = response.chunk().await.map_err(crate::send::classify)? {
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(too_large(&format_args!("more than {limit}")));
        }
        // Most bodies arrive in one chunk: keep it as it is, without copying.
        match (&mut first, &mut rest) {
            (None, _) => first = Some(chunk),
            (Some(first_chunk), None) => {
                let capacity = announced.map_or(2 * total, |n| n as usize).max(total);
                let mut buffer = BytesMut::with_capacity(capacity);
                buffer.extend_from_slice(first_chunk);
                buffer.extend_from_slice(&chunk);
                rest = Some(buffer);
            }
            (Some(_), Some(buffer)) => buffer.extend_from_slice(&chunk),
        }
    }
    let body = match (first, rest) {
        (_, Some(buffer)) => buffer.freeze(),
        (Some(first), None) => first,
        (None, None) => Bytes::new(),
    };
    Ok(Parts {
        status: response.status(),
        headers: std::mem::take(response.headers_mut()),
        body,
    })
}
