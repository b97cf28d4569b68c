//! [`TokenCredential`]: a token manager's token as a request's `Authorization` header.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use sciauth_credentials::http::HeaderValue;
use secrecy::{ExposeSecret as _, SecretString};

use sciauth_credentials::{AuthHeader, Clock, Credential, Ready, Renewal};

use crate::error::Error;
use crate::manager::{Goal, Served, TokenManager, TokenRequest};

/// A [`Credential`] for one [`TokenRequest`]: `Authorization: Bearer <access token>`, from a
/// [`TokenManager`].
///
/// [`ready_header`](Credential::ready_header) answers from a snapshot of the last header
/// (an `ArcSwap` load, a wall-clock check and a reference-count bump: no lock, no
/// allocation) until the token is due for a refresh ahead of expiry or would have less than
/// the request's minimum time left. Then [`header`](Credential::header) asks the manager,
/// which hands out the current token while refreshing it in the background, or waits for a
/// refresh shared with every other caller. [`rejected`](Credential::rejected) replaces the
/// token once, only if the rejected header is still the current one.
pub struct TokenCredential {
    manager: TokenManager,
    request: TokenRequest,
    clock: Arc<dyn Clock>,
    current: ArcSwapOption<Current>,
}

struct Current {
    header: AuthHeader,
    access_token: SecretString,
    fresh_until: SystemTime,
}

impl TokenCredential {
    pub(crate) fn new(manager: TokenManager, request: TokenRequest) -> Self {
        Self {
            clock: manager.clock().clone(),
            manager,
            request,
            current: ArcSwapOption::empty(),
        }
    }

    /// The request this credential serves.
    pub fn request(&self) -> &TokenRequest {
        &self.request
    }

    fn install(&self, served: Served) -> Result<AuthHeader, sciauth_credentials::Error> {
        let secret = served.token.access_token();
        let reuse = self
            .current
            .load_full()
            .filter(|current| current.access_token.expose_secret() == secret.expose_secret());
        let header = match reuse {
            Some(current) => current.header.clone(),
            None => {
                let value = HeaderValue::try_from(format!("Bearer {}", secret.expose_secret()))
                    .map_err(|_| {
                        sciauth_credentials::Error::renewal_failed(
                            format!(
                                "the access token for {} cannot be sent in an HTTP header",
                                self.request.account()
                            ),
                            Error::new(
                                crate::error::ErrorKind::InvalidResponse,
                                "the provider's access token holds characters HTTP headers \
                                 cannot carry",
                            ),
                        )
                    })?;
                AuthHeader::authorization(value)
            }
        };
        self.current.store(Some(Arc::new(Current {
            header: header.clone(),
            access_token: secret.clone(),
            fresh_until: served.fresh_until,
        })));
        Ok(header)
    }

    fn failed(&self, error: Error) -> sciauth_credentials::Error {
        sciauth_credentials::Error::renewal_failed(
            format!("cannot get a token for {}: {error}", self.request.account()),
            error,
        )
    }
}

impl fmt::Debug for TokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCredential")
            .field("request", &self.request)
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Credential for TokenCredential {
    async fn header(&self) -> sciauth_credentials::Result<Option<AuthHeader>> {
        if let Ready::Header(header) = self.ready_header() {
            return Ok(Some(header));
        }
        let served = self
            .manager
            .serve(&self.request, Goal::Valid)
            .await
            .map_err(|e| self.failed(e))?;
        self.install(served).map(Some)
    }

    fn ready_header(&self) -> Ready {
        let current = self.current.load();
        match &*current {
            Some(current) if self.clock.now() < current.fresh_until => {
                Ready::Header(current.header.clone())
            }
            _ => Ready::NotReady,
        }
    }

    async fn rejected(&self, sent: Option<&AuthHeader>) -> sciauth_credentials::Result<Renewal> {
        let current = self.current.load_full();
        let rejected = match (&current, sent) {
            // Renewed since that request left: send again with the new one.
            (Some(current), Some(sent)) if &current.header != sent => {
                return Ok(Renewal::Renewed);
            }
            (Some(current), _) => current.access_token.clone(),
            (None, Some(sent)) => match sent.value().to_str() {
                Ok(value) => SecretString::from(value.trim_start_matches("Bearer ").to_owned()),
                Err(_) => return Ok(Renewal::Unchanged),
            },
            (None, None) => return Ok(Renewal::Unchanged),
        };
        let served = self
            .manager
            .serve(&self.request, Goal::Replace(rejected))
            .await
            .map_err(|e| self.failed(e))?;
        self.install(served)?;
        Ok(Renewal::Renewed)
    }
}
