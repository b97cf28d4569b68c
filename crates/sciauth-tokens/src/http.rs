//! The one place that talks to `sciauth-transport`: form POSTs and GETs, answers read whole.

use std::time::Duration;

use sciauth_transport::{HeaderValue, Method, StatusCode, Transport};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use sciauth_credentials::text::printable;

use crate::client_auth::Form;
use crate::error::{Error, ErrorKind, OAuthError, Result};
use crate::mask::Secrets;

/// How long a request to the provider may take, for the transport this crate builds itself.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read from an OAuth or OIDC endpoint, unless the issuer says otherwise:
/// a token response, a discovery document or a key set is a few KiB.
pub(crate) const DEFAULT_MAX_RESPONSE_SIZE: usize = 1024 * 1024;

/// The transport an issuer uses unless given one: redirects are never followed (a token
/// endpoint that redirects would receive our secrets at the redirect target), and no default
/// credential (client authentication goes per request).
pub(crate) fn default_transport() -> Result<Transport> {
    Transport::builder()
        .follow_redirects(false)
        .user_agent(concat!("sciauth/", env!("CARGO_PKG_VERSION")))
        .timeout(DEFAULT_TIMEOUT)
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::Transport, "cannot build the HTTP transport")
                .with_judged_source(e)
        })
}

/// An answer, read whole.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) body: sciauth_transport::Bytes,
}

impl Answer {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error for an answer that is not a success: the OAuth error in its body, or, when
    /// there is none (an empty body, an HTML page, a redirect), one naming endpoint and status.
    /// Whatever the server said has the request's `secrets` masked.
    pub(crate) fn error(&self, what: &str, endpoint: &Url, secrets: &Secrets) -> Error {
        let error = match OAuthError::from_body(&self.body, secrets) {
            Some(oauth) => Error::oauth(&format!("{what} {}", shown(endpoint)), oauth),
            None => {
                let reason = StatusCode::from_u16(self.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                let body = if (300..400).contains(&self.status) {
                    format!(
                        "a redirect to {}, which is not followed on OAuth endpoints: refusing to \
                         resend credentials there; check the endpoint URL (http vs https, \
                         trailing slash)",
                        self.location
                            .as_deref()
                            .map_or_else(|| "nowhere".to_owned(), |l| shown_location(l, secrets))
                    )
                } else if self.body.iter().all(u8::is_ascii_whitespace) {
                    "an empty body".to_owned()
                } else if self
                    .content_type
                    .as_deref()
                    .is_some_and(|c| c.contains("html"))
                {
                    "an HTML page instead of an OAuth error (a proxy or login page in the way?)"
                        .to_owned()
                } else {
                    "a body that is not an OAuth error".to_owned()
                };
                Error::new(
                    ErrorKind::HttpStatus,
                    format!(
                        "{what} {} answered HTTP {} {reason} with {body}",
                        shown(endpoint),
                        self.status
                    ),
                )
            }
        };
        error.with_status(self.status).with_endpoint(endpoint)
    }
}

/// A `Location` a server sent, as errors show it: parsed, without query and user info, secrets
/// masked, control characters escaped.
fn shown_location(location: &str, secrets: &Secrets) -> String {
    let text = match Url::parse(location) {
        Ok(url) => shown(&url),
        // A relative or broken location: only its path part.
        Err(_) => location
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    printable(&secrets.mask(&text), 200)
}

/// An endpoint as errors show it: no query, no user info.
fn shown(endpoint: &Url) -> String {
    let mut url = endpoint.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.to_string()
}

/// The transport, with the few request shapes OAuth needs.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    transport: Transport,
    max_response_size: usize,
}

impl Http {
    pub(crate) fn new(transport: Transport, max_response_size: usize) -> Self {
        Self {
            transport,
            max_response_size,
        }
    }

    /// GETs `url`, expecting a 2xx answer.
    pub(crate) async fn get(&self, url: &Url, what: &str) -> Result<Answer> {
        let request = self
            .transport
            .request(Method::GET, url.as_str())
            .no_credential()
            .header(
                sciauth_transport::HeaderName::from_static("accept"),
                HeaderValue::from_static("application/json"),
            );
        let answer = self.send(request, url, what).await?;
        if answer.is_success() {
            Ok(answer)
        } else {
            Err(answer.error(what, url, &Secrets::new()))
        }
    }

    /// POSTs `form` to `url`, with `authorization` as a sensitive header if given. Any status
    /// is returned; the caller decides what it means. Never retried: a code or a rotating
    /// refresh token must not be sent twice.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        what: &str,
        form: &Form,
        authorization: Option<&SecretString>,
    ) -> Result<Answer> {
        let body = form.encode();
        let mut request = self
            .transport
            .request(Method::POST, url.as_str())
            .no_credential()
            .retry(false)
            .header(
                sciauth_transport::HeaderName::from_static("accept"),
                HeaderValue::from_static("application/json"),
            )
            .header(
                sciauth_transport::HeaderName::from_static("content-type"),
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(body.as_bytes().to_vec());
        if let Some(authorization) = authorization {
            let mut value = HeaderValue::from_str(authorization.expose_secret()).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "the client credentials cannot be sent in an HTTP header",
                )
            })?;
            value.set_sensitive(true);
            request = request.sensitive_header(
                sciauth_transport::HeaderName::from_static("authorization"),
                value,
            );
        }
        tracing::debug!(endpoint = %url, fields = ?form.names(), "POST {what}");
        self.send(request, url, what).await
    }

    async fn send(
        &self,
        request: sciauth_transport::RequestBuilder,
        url: &Url,
        what: &str,
    ) -> Result<Answer> {
        // Whatever transport the caller gave: a redirect would carry the form (secrets) or
        // lead discovery elsewhere, and an answer is never allowed to be large.
        let request = request
            .follow_redirects(false)
            .max_response_size(self.max_response_size);
        let response = request.send().await.map_err(|e| {
            if e.kind() == sciauth_transport::ErrorKind::BodyTooLarge {
                return Error::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "{what} {} answered with more than {} bytes, the limit for OAuth \
                         answers (IssuerBuilder::max_response_size)",
                        shown(url),
                        self.max_response_size
                    ),
                )
                .with_endpoint(url);
            }
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not be reached"
            } else {
                "failed"
            };
            Error::new(
                ErrorKind::Transport,
                format!("the request to {what} {} {why}", shown(url)),
            )
            .with_endpoint(url)
            .with_judged_source(e)
        })?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Answer {
            status: response.status().as_u16(),
            content_type: header("content-type"),
            location: header("location"),
            body: response.bytes().clone(),
        })
    }
}
