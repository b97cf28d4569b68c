//! [`TokenServiceClient`]: a client of the sciauth token service (`sciauth-server`, a
//! DIRAC-style TokenManager), with DIRAC's client-side cache.
//!
//! ```no_run
//! # async fn run() -> sciauth_service_api::Result<()> {
//! use sciauth_credentials::BearerToken;
//! use sciauth_service_api::{GetTokenRequest, TokenServiceClient};
//!
//! let client = TokenServiceClient::builder("https://tokens.example.org:9181")
//!     .credential(BearerToken::new("eyJ...").expect("a token fits a header"))
//!     .build()?;
//! let token = client
//!     .get_token(&GetTokenRequest {
//!         group: Some("dteam_pilot".into()),
//!         audience: Some("https://ce.example.org".into()),
//!         required_time_left: 600,
//!         ..Default::default()
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use sciauth_credentials::text::printable;
use sciauth_credentials::time::later;
use sciauth_credentials::{Clock, Credential, SystemClock};
use sciauth_tokens::{DEFAULT_MIN_VALID, Scopes};
use sciauth_transport::{StatusCode, Transport, TransportBuilder};

use crate::code::ErrorCode;
use crate::error::{Error, Result};
use crate::wire::{
    API_PREFIX, DeleteTokenRequest, DeleteTokenResponse, ErrorBody, GROUP_HEADER, GetTokenRequest,
    Ping, ServiceToken, StoredTokenInfo, UpdateTokenRequest, UserIdRequest, UsersRequest, WhoAmI,
};

/// The most tokens the client cache keeps; past it, expired ones are dropped, and if none
/// is, all.
const MAX_CACHED: usize = 4096;

/// Calls the token service's methods; `get_token` answers from a cache while the cached
/// token has more than `requiredTimeLeft` left.
///
/// The cache is keyed like DIRAC's `TokenManagerClient` (the user, the requested scopes
/// sorted, the audience, the provider, the group), except that DIRAC folds the user, the
/// provider and the group into one field: here each is its own, so a user's token is never
/// served for a group token of the same name, nor the other way round. DIRAC also keys by
/// the provider's issuer, which it reads from its configuration; here the
/// provider name stands for it (one name, one issuer in the service's configuration). A hit
/// needs the token to stay valid for `requiredTimeLeft` (at least 10 s) by this machine's
/// clock, counted from when the answer arrived. Misses for one key share one call (DIRAC
/// holds one lock for the whole process).
///
/// Cloning is cheap and shares the cache.
#[derive(Clone)]
pub struct TokenServiceClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    group: Option<String>,
    clock: Arc<dyn Clock>,
    cache: RwLock<HashMap<CacheKey, Cached>>,
    flights: std::sync::Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// What a cached token answers. Each field is its own: a user's token (`user` set) and a
/// group's client-credentials token (`user` empty) never share an entry, whatever the user,
/// group and provider are called.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    /// The user whose token it is; `None` for a group (client credentials) token.
    user: Option<String>,
    scopes: String,
    audience: Option<String>,
    provider: Option<String>,
    group: Option<String>,
}

#[derive(Clone)]
struct Cached {
    token: ServiceToken,
    /// `None`: the service did not say; such tokens are not reused.
    expires_at: Option<SystemTime>,
}

/// Configures a [`TokenServiceClient`].
pub struct TokenServiceClientBuilder {
    url: String,
    transport: Option<TransportBuilder>,
    credential: Option<Arc<dyn Credential>>,
    group: Option<String>,
    clock: Arc<dyn Clock>,
}

impl TokenServiceClientBuilder {
    /// How the client authenticates: a credential sending `Authorization: Bearer` (a token
    /// of the service's `[callers]` issuer, for example a `TokenCredential` that keeps
    /// itself fresh). Not needed with [`transport`](Self::transport) carrying a credential
    /// or a client certificate. By default none.
    pub fn credential(mut self, credential: impl Credential + 'static) -> Self {
        self.credential = Some(Arc::new(credential));
        self
    }

    /// Settings of the transport to reach the service with (a CA file, a client
    /// certificate, timeouts); the base URL, the credential and `follow_redirects(false)` are
    /// set by [`build`](Self::build). By default `Transport::builder()` with a 30 s timeout.
    pub fn transport(mut self, transport: TransportBuilder) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Which of the caller's groups to act as (the `X-Sciauth-Group` header). By default the
    /// caller's first group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The clock that judges cached tokens. By default the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The client.
    pub fn build(self) -> Result<TokenServiceClient> {
        // Methods are joined to the URL as relative paths, so a path prefix survives.
        let mut url = self.url;
        if !url.ends_with('/') {
            url.push('/');
        }
        let mut builder = self
            .transport
            .unwrap_or_else(|| Transport::builder().timeout(Duration::from_secs(30)))
            .base_url(&url)
            .follow_redirects(false);
        if let Some(credential) = self.credential {
            builder = builder.shared_credential(credential);
        }
        Ok(TokenServiceClient {
            inner: Arc::new(Inner {
                transport: builder.build()?,
                group: self.group,
                clock: self.clock,
                cache: RwLock::new(HashMap::new()),
                flights: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl fmt::Debug for TokenServiceClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenServiceClientBuilder")
            .field("url", &self.url)
            .field("group", &self.group)
            .field("credential", &self.credential.is_some())
            .finish_non_exhaustive()
    }
}

impl TokenServiceClient {
    /// A builder for the service at `url` (e.g. `https://tokens.example.org:9181`).
    pub fn builder(url: impl Into<String>) -> TokenServiceClientBuilder {
        TokenServiceClientBuilder {
            url: url.into(),
            transport: None,
            credential: None,
            group: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// `getToken`, answered from the cache while a cached token has more than
    /// `required_time_left` (at least 10 s) left.
    pub async fn get_token(&self, request: &GetTokenRequest) -> Result<ServiceToken> {
        let key = CacheKey::of(request);
        let min_valid = DEFAULT_MIN_VALID.max(Duration::from_secs(request.required_time_left));
        if let Some(token) = self.cached(&key, min_valid) {
            return Ok(token);
        }
        let flight = self
            .inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let _flight = flight.lock().await;
        if let Some(token) = self.cached(&key, min_valid) {
            return Ok(token);
        }
        self.get_token_uncached(request).await
    }

    /// `getToken` without the cache (DIRAC's `useCache=False`, for tokens scoped to one
    /// file); the answer still replaces the cached one.
    pub async fn get_token_uncached(&self, request: &GetTokenRequest) -> Result<ServiceToken> {
        let received = self.inner.clock.now();
        let token: ServiceToken = self.call("getToken", request).await?;
        check_service_token(&token)?;
        let expires_at = token
            .expires_in
            .map(|s| later(received, Duration::from_secs(s)));
        let mut cache = self
            .inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            let now = self.inner.clock.now();
            cache.retain(|_, cached| cached.expires_at.is_some_and(|at| at > now));
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            CacheKey::of(request),
            Cached {
                token: token.clone(),
                expires_at,
            },
        );
        Ok(token)
    }

    /// `updateToken`: keep a user's token in the service; answers what it keeps for them.
    pub async fn update_token(&self, request: &UpdateTokenRequest) -> Result<Vec<StoredTokenInfo>> {
        self.call("updateToken", request).await
    }

    /// `deleteToken`.
    pub async fn delete_token(&self, request: &DeleteTokenRequest) -> Result<DeleteTokenResponse> {
        self.call("deleteToken", request).await
    }

    /// `getTokensByUserID` (oneself, or with ProxyManagement).
    pub async fn tokens_by_user_id(&self, user_id: &str) -> Result<Vec<StoredTokenInfo>> {
        let request = UserIdRequest {
            user_id: user_id.to_owned(),
        };
        self.call("getTokensByUserID", &request).await
    }

    /// `getUserTokensInfo`: what the service keeps for the caller.
    pub async fn user_tokens_info(&self) -> Result<Vec<StoredTokenInfo>> {
        self.call("getUserTokensInfo", &serde_json::json!({})).await
    }

    /// `getUsersTokensInfo` (ProxyManagement).
    pub async fn users_tokens_info(&self, users: &[String]) -> Result<Vec<StoredTokenInfo>> {
        let request = UsersRequest {
            users: users.to_vec(),
        };
        self.call("getUsersTokensInfo", &request).await
    }

    /// `whoami`.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.call("whoami", &serde_json::json!({})).await
    }

    /// `ping`.
    pub async fn ping(&self) -> Result<Ping> {
        self.call("ping", &serde_json::json!({})).await
    }

    /// Forgets every cached token.
    pub fn clear_cache(&self) {
        self.inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn cached(&self, key: &CacheKey, min_valid: Duration) -> Option<ServiceToken> {
        let needed = later(self.inner.clock.now(), min_valid);
        self.inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .filter(|cached| cached.expires_at.is_some_and(|at| at > needed))
            .map(|cached| cached.token.clone())
    }

    async fn call<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        method: &str,
        body: &Req,
    ) -> Result<Resp> {
        let mut request = self
            .inner
            .transport
            .post(&format!("{}/{method}", API_PREFIX.trim_start_matches('/')))
            .json(body);
        if let Some(group) = &self.inner.group {
            request = request.header(GROUP_HEADER, group.as_str());
        }
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return response.json().map_err(Error::from);
        }
        let body: Option<ErrorBody> = response.json().ok();
        // The service's words, in errors and terminals: what we sent (our bearer token)
        // masked, control characters escaped.
        let shown = |text: &str, max| printable(&response.mask_sent_secrets(text), max);
        Err(refusal(method, status, body, shown))
    }
}

/// The error for a refusal: the service's code and message as `shown` (masked and escaped)
/// gives them, or the bare status when the body is not the service's error.
pub(crate) fn refusal(
    method: &str,
    status: StatusCode,
    body: Option<ErrorBody>,
    shown: impl Fn(&str, usize) -> String,
) -> Error {
    let (code, message) = match body {
        Some(body) => {
            let code = ErrorCode::parse(&shown(body.error.as_str(), 100));
            (code, shown(&body.message, 1000))
        }
        None => (
            ErrorCode::Other("http_error".to_owned()),
            format!("the token service answered {method} with HTTP {status}"),
        ),
    };
    Error::refused(status, code, message)
}

/// A token from the service goes into headers and onto terminals: non-empty visible ASCII,
/// at most 64 KiB, as the OAuth layer demands of a provider's tokens.
pub(crate) fn check_service_token(token: &ServiceToken) -> Result<()> {
    use secrecy::ExposeSecret as _;
    let value = token.access_token.expose_secret();
    if value.is_empty()
        || value.len() > 64 * 1024
        || !value.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Err(Error::invalid_response(
            "the token service answered getToken with an access token that is empty, over \
             64 KiB or not visible ASCII; refusing to use it",
        ));
    }
    Ok(())
}

impl fmt::Debug for TokenServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self
            .inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("TokenServiceClient")
            .field("transport", &self.inner.transport)
            .field("group", &self.inner.group)
            .field("cached", &cached)
            .finish_non_exhaustive()
    }
}

impl CacheKey {
    fn of(request: &GetTokenRequest) -> Self {
        // The service reads an empty user name as none (a group token), and so does the key.
        let nonempty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        Self {
            user: nonempty(&request.username),
            scopes: Scopes::from_iter(request.scope.iter().cloned()).to_string(),
            audience: nonempty(&request.audience),
            provider: nonempty(&request.identity_provider),
            // The service refuses an empty group name rather than reading it as none.
            group: request.group.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_group_tokens_have_keys_of_their_own() {
        let request = |username: Option<&str>, group: Option<&str>, provider: Option<&str>| {
            CacheKey::of(&GetTokenRequest {
                username: username.map(str::to_owned),
                group: group.map(str::to_owned),
                identity_provider: provider.map(str::to_owned),
                ..Default::default()
            })
        };
        // The user "atlas" in the group "atlas", and the group's own token.
        assert!(request(Some("atlas"), Some("atlas"), None) != request(None, Some("atlas"), None));
        // A user named like the provider, and a group token from that provider.
        assert!(request(Some("iam"), None, Some("iam")) != request(None, None, Some("iam")));
        // An empty user name is none, as the service reads it.
        assert!(request(Some(""), Some("g"), None) == request(None, Some("g"), None));
    }
}
