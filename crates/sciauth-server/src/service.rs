//! The methods of the service, independent of HTTP: who may do what (DIRAC's properties), and
//! the token manager underneath, which keeps the tokens, refreshes them once for all replicas
//! and persists rotated refresh tokens before handing out access tokens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sciauth_credentials::time::unix_seconds as unix;
use sciauth_service_api::{
    AccessTokenSummary, DelegatedToken, DeleteTokenRequest, DeleteTokenResponse, GetTokenRequest,
    Ping, ServiceToken, StoredTokenInfo, UpdateTokenRequest, UserIdRequest, UsersRequest, WhoAmI,
};
use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::{
    ClientAuth, ClientConfig, DEFAULT_MIN_VALID, Issuer, OAuthClient, StoredGrant, TokenManager,
    TokenRequest, TokenStore,
};

use crate::api::ApiError;
use crate::caller::Caller;
use crate::config::{ClientAuthMethod, Config, ProviderConfig, properties};
use crate::metrics::{ManagerMetrics, Metrics};

/// The prefix of a group's account in the store: `group:<name>` (user names hold no `:`).
const GROUP_ACCOUNT_PREFIX: &str = "group:";

/// The service's state, shared by every request.
#[derive(Debug)]
pub(crate) struct TokenService {
    config: Config,
    /// Users' grants: refreshed, never created without a user's token (updateToken).
    users: TokenManager,
    /// Groups' grants: client credentials.
    groups: TokenManager,
    providers: BTreeMap<String, Provider>,
}

#[derive(Debug, Clone)]
struct Provider {
    name: String,
    issuer: String,
    client_id: String,
    client: ClientConfig,
}

impl TokenService {
    /// The service for `config`. When `previous` (the service before a reload) has the same
    /// providers, its token managers are kept, and with them the tokens in memory and the
    /// providers' discovery.
    pub(crate) fn new(
        config: Config,
        store: Arc<dyn TokenStore>,
        metrics: &Arc<Metrics>,
        previous: Option<&TokenService>,
    ) -> Self {
        if let Some(previous) = previous.filter(|p| p.same_providers(&config)) {
            return Self {
                config,
                users: previous.users.clone(),
                groups: previous.groups.clone(),
                providers: previous.providers.clone(),
            };
        }
        let observer = Arc::new(ManagerMetrics {
            metrics: metrics.clone(),
            providers: config
                .providers
                .iter()
                .map(|(name, p)| (p.issuer.clone(), p.client_id.clone(), name.clone()))
                .collect(),
        });
        let mut providers = BTreeMap::new();
        let mut users = TokenManager::builder(store.clone()).observer(observer.clone());
        let mut groups = TokenManager::builder(store.clone()).observer(observer);
        for (name, provider) in &config.providers {
            let client = lazy_client(provider.clone());
            users = users.client(client.clone());
            groups = groups.client(client.clone().client_credentials(true));
            providers.insert(
                name.clone(),
                Provider {
                    name: name.clone(),
                    issuer: provider.issuer.clone(),
                    client_id: provider.client_id.clone(),
                    client,
                },
            );
        }
        Self {
            config,
            users: users.build(),
            groups: groups.build(),
            providers,
        }
    }

    fn same_providers(&self, config: &Config) -> bool {
        self.config.providers.len() == config.providers.len()
            && self
                .config
                .providers
                .iter()
                .zip(&config.providers)
                .all(|((name, old), (new_name, new))| name == new_name && old.same_as(new))
    }

    /// Each provider's name and client (lazy: built on first use), for readiness.
    pub(crate) fn provider_clients(&self) -> impl Iterator<Item = (&str, &ClientConfig)> {
        self.providers
            .iter()
            .map(|(name, provider)| (name.as_str(), &provider.client))
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// `getToken`.
    pub(crate) async fn get_token(
        &self,
        caller: &Caller,
        request: GetTokenRequest,
    ) -> Result<ServiceToken, ApiError> {
        let username = request.username.as_deref().filter(|u| !u.is_empty());
        let group_name = match (&request.group, username) {
            (Some(group), _) => group.clone(),
            (None, Some(user)) => self
                .user(user)?
                .groups
                .first()
                .cloned()
                .ok_or_else(|| ApiError::bad_request(format!("user {user} has no group")))?,
            (None, None) => caller.profile.group.clone(),
        };
        let group = self
            .config
            .groups
            .get(&group_name)
            .ok_or_else(|| ApiError::bad_request(format!("unknown group {group_name:?}")))?;
        if let Some(user) = username
            && !self.user(user)?.groups.contains(&group_name)
        {
            return Err(ApiError::bad_request(format!(
                "user {user} is not in the group {group_name}"
            )));
        }
        authorize_get_token(caller, username, &group_name, &group.properties)?;
        if username.is_none() {
            bound_group_scopes(&group_name, &group.scopes, &request.scope)?;
        }
        let provider = self.provider_for(request.identity_provider.as_deref(), &group_name)?;

        let mut token_request = match username {
            Some(user) => TokenRequest::new(user),
            None => TokenRequest::new(format!("{GROUP_ACCOUNT_PREFIX}{group_name}")),
        }
        .issuer(provider.issuer.clone())
        .client_id(provider.client_id.clone())
        .scopes(group.scopes.iter().cloned())
        .scopes(request.scope.iter().cloned())
        .min_valid(DEFAULT_MIN_VALID.max(Duration::from_secs(request.required_time_left)));
        if let Some(audience) = request.audience.filter(|a| !a.is_empty()) {
            token_request = token_request.audience(audience);
        }
        let manager = if username.is_some() {
            &self.users
        } else {
            &self.groups
        };
        let token = manager.get(&token_request).await?;
        Ok(ServiceToken::from_token(
            &token,
            &provider.name,
            manager.clock().now(),
        ))
    }

    /// `updateToken`.
    pub(crate) async fn update_token(
        &self,
        caller: &Caller,
        request: UpdateTokenRequest,
    ) -> Result<Vec<StoredTokenInfo>, ApiError> {
        let provider = self.provider(&request.provider)?;
        let username = self
            .user_by_id_at(&provider.name, &request.user_id)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "no configured user has the ID {:?} at {}",
                    request.user_id, provider.name
                ))
            })?
            .to_owned();
        authorize_self_or_manager(caller, &username, "store tokens of")?;
        let client = provider.client.client().await?;
        let token = delegated_token(&client, request.token, request.rt_expired_in)?;
        let token_request = TokenRequest::new(username.clone())
            .issuer(provider.issuer.clone())
            .client_id(provider.client_id.clone());
        self.users.update(&token_request, token).await?;
        self.user_infos(&username).await
    }

    /// `deleteToken`.
    pub(crate) async fn delete_token(
        &self,
        caller: &Caller,
        request: DeleteTokenRequest,
    ) -> Result<DeleteTokenResponse, ApiError> {
        let username = self.user_by_id(&request.user_id)?;
        authorize_self_or_manager(caller, &username, "delete the tokens of")?;
        let providers: Vec<&Provider> = match &request.provider {
            Some(name) => vec![self.provider(name)?],
            None => self.providers.values().collect(),
        };
        let mut deleted = 0;
        for provider in providers {
            let token_request = TokenRequest::new(username.clone())
                .issuer(provider.issuer.clone())
                .client_id(provider.client_id.clone());
            if self.users.delete(&token_request).await? {
                deleted += 1;
            }
        }
        Ok(DeleteTokenResponse { deleted })
    }

    /// `getTokensByUserID`: DIRAC lets anyone read anyone's; here only oneself, or with
    /// `ProxyManagement`.
    pub(crate) async fn tokens_by_user_id(
        &self,
        caller: &Caller,
        request: UserIdRequest,
    ) -> Result<Vec<StoredTokenInfo>, ApiError> {
        let username = self.user_by_id(&request.user_id)?;
        authorize_self_or_manager(caller, &username, "read the tokens of")?;
        self.user_infos(&username).await
    }

    /// `getUserTokensInfo`: the caller's own.
    pub(crate) async fn own_tokens_info(
        &self,
        caller: &Caller,
    ) -> Result<Vec<StoredTokenInfo>, ApiError> {
        self.user_infos(caller.username()).await
    }

    /// `getUsersTokensInfo`: needs `ProxyManagement`.
    pub(crate) async fn users_tokens_info(
        &self,
        caller: &Caller,
        request: UsersRequest,
    ) -> Result<Vec<StoredTokenInfo>, ApiError> {
        if !caller.has(properties::PROXY_MANAGEMENT) {
            return Err(ApiError::forbidden(format!(
                "getUsersTokensInfo needs the property ProxyManagement, which the group {} \
                 does not have",
                caller.profile.group
            )));
        }
        let mut all = Vec::new();
        for user in &request.users {
            self.user(user)?;
            all.extend(self.user_infos(user).await?);
        }
        Ok(all)
    }

    /// `whoami`.
    pub(crate) fn whoami(&self, caller: &Caller) -> WhoAmI {
        WhoAmI {
            username: caller.profile.username.clone(),
            group: caller.profile.group.clone(),
            groups: caller.profile.groups.clone(),
            properties: caller.profile.properties.iter().cloned().collect(),
            authenticated_by: if caller.by_certificate {
                "certificate"
            } else {
                "token"
            }
            .to_owned(),
            identity: caller.identity.to_string(),
            vo: caller.profile.vo.clone(),
        }
    }

    /// `ping`.
    pub(crate) fn ping(&self) -> Ping {
        Ping {
            service: "sciauth-server".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            time: unix(SystemTime::now()),
        }
    }

    fn user(&self, name: &str) -> Result<&crate::config::UserConfig, ApiError> {
        self.config
            .users
            .get(name)
            .ok_or_else(|| ApiError::bad_request(format!("unknown user {name:?}")))
    }

    fn provider(&self, name: &str) -> Result<&Provider, ApiError> {
        self.providers.get(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown provider {name:?} (configured: {})",
                self.providers
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// The provider named, else the group's, else its VO's.
    fn provider_for(&self, named: Option<&str>, group: &str) -> Result<&Provider, ApiError> {
        if let Some(name) = named.filter(|n| !n.is_empty()) {
            return self.provider(name);
        }
        let group_config = self
            .config
            .groups
            .get(group)
            .ok_or_else(|| ApiError::bad_request(format!("unknown group {group:?}")))?;
        let from_vo = group_config
            .vo
            .as_ref()
            .and_then(|vo| self.config.vos.get(vo))
            .map(|vo| vo.provider.as_str());
        match group_config.provider.as_deref().or(from_vo) {
            Some(name) => self.provider(name),
            None => Err(ApiError::bad_request(format!(
                "the group {group} has no provider (neither its own nor its VO's); name one \
                 with identityProvider"
            ))),
        }
    }

    fn user_by_id_at(&self, provider: &str, id: &str) -> Option<&str> {
        self.config
            .users
            .iter()
            .find(|(_, user)| user.ids.get(provider).is_some_and(|i| i == id))
            .map(|(name, _)| name.as_str())
    }

    /// The user with this ID at any provider, or of this name.
    fn user_by_id(&self, id: &str) -> Result<String, ApiError> {
        self.config
            .users
            .iter()
            .find(|(_, user)| user.ids.values().any(|i| i == id))
            .map(|(name, _)| name.clone())
            .or_else(|| self.config.users.contains_key(id).then(|| id.to_owned()))
            .ok_or_else(|| ApiError::bad_request(format!("no configured user has the ID {id:?}")))
    }

    /// What is stored for `username` at every provider, without secrets.
    async fn user_infos(&self, username: &str) -> Result<Vec<StoredTokenInfo>, ApiError> {
        let user = self.user(username)?;
        let mut infos = Vec::new();
        for provider in self.providers.values() {
            let request = TokenRequest::new(username)
                .issuer(provider.issuer.clone())
                .client_id(provider.client_id.clone());
            if let Some(grant) = self.users.stored(&request).await? {
                let mut info = summary(&grant, &provider.name);
                info.username = Some(username.to_owned());
                info.user_id = user.ids.get(&provider.name).cloned();
                infos.push(info);
            }
        }
        Ok(infos)
    }
}

/// A client built on first use, so that the service starts while a provider is down.
fn lazy_client(provider: ProviderConfig) -> ClientConfig {
    let (issuer, client_id) = (provider.issuer.clone(), provider.client_id.clone());
    ClientConfig::lazy(issuer, client_id, move || {
        let provider = provider.clone();
        async move {
            let transport = Transport::builder()
                .follow_redirects(false)
                .build()
                .map_err(|e| {
                    sciauth_tokens::Error::store(
                        sciauth_tokens::StoreErrorKind::Io,
                        "cannot build an HTTP client",
                    )
                    .with_source(e)
                })?;
            let issuer = Issuer::builder(provider.issuer.clone())
                .transport(transport)
                .build()
                .await?;
            let auth = match (&provider.client_auth, &provider.client_secret) {
                (ClientAuthMethod::ClientSecretBasic, Some(secret)) => {
                    ClientAuth::secret_basic(secret.clone())
                }
                (ClientAuthMethod::ClientSecretPost, Some(secret)) => {
                    ClientAuth::secret_post(secret.clone())
                }
                _ => ClientAuth::none(),
            };
            Ok(OAuthClient::builder(issuer, provider.client_id.clone())
                .auth(auth)
                .audience_parameter(provider.audience_parameter)
                .build())
        }
    })
}

/// The token a caller hands to updateToken, with `rt_expired_in` as the refresh token's
/// lifetime when nothing else says.
pub(crate) fn delegated_token(
    client: &OAuthClient,
    delegated: DelegatedToken,
    rt_expired_in: Option<u64>,
) -> Result<sciauth_tokens::Token, ApiError> {
    let mut fields = delegated.0;
    // An authlib token dict carries `expires_at` instead of (or beside) `expires_in`.
    if !fields.contains_key("expires_in")
        && let Some(at) = fields.get("expires_at").and_then(serde_json::Value::as_u64)
    {
        let left = at.saturating_sub(unix(client_now(client)));
        fields.insert("expires_in".into(), left.into());
    }
    let parse = |fields: &serde_json::Map<String, serde_json::Value>| {
        let body = serde_json::to_vec(fields)
            .map_err(|_| ApiError::bad_request("the token cannot be read as a token response"))?;
        client
            .token_from_response(&body)
            .map_err(|e| ApiError::bad_request(format!("token: {e}")))
    };
    let token = parse(&fields)?;
    match rt_expired_in {
        Some(lifetime)
            if token.refresh_token().is_some() && token.refresh_expires_at().is_none() =>
        {
            fields.insert("refresh_expires_in".into(), lifetime.max(1).into());
            parse(&fields)
        }
        _ => Ok(token),
    }
}

fn client_now(client: &OAuthClient) -> SystemTime {
    client.issuer().clock().now()
}

/// DIRAC's `__checkProperties` for getToken: FullDelegation or LimitedDelegation for anyone
/// and for group tokens; PrivateLimitedDelegation only for the caller's own token, in a group
/// that has it too.
fn authorize_get_token(
    caller: &Caller,
    username: Option<&str>,
    group: &str,
    group_properties: &std::collections::BTreeSet<String>,
) -> Result<(), ApiError> {
    if caller.has(properties::FULL_DELEGATION) || caller.has(properties::LIMITED_DELEGATION) {
        return Ok(());
    }
    if caller.has(properties::PRIVATE_LIMITED_DELEGATION) {
        let Some(user) = username else {
            return Err(ApiError::forbidden(
                "PrivateLimitedDelegation allows only your own tokens, not group (client \
                 credentials) tokens; that needs FullDelegation or LimitedDelegation",
            ));
        };
        if user != caller.username() {
            return Err(ApiError::forbidden(format!(
                "PrivateLimitedDelegation allows only your own tokens, not those of {user}; \
                 that needs FullDelegation or LimitedDelegation"
            )));
        }
        if !group_properties.contains(properties::PRIVATE_LIMITED_DELEGATION) {
            return Err(ApiError::forbidden(format!(
                "the group {group} does not have PrivateLimitedDelegation, so its tokens \
                 cannot be had with it"
            )));
        }
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "the group {} may not get tokens: it needs FullDelegation, LimitedDelegation or \
         PrivateLimitedDelegation",
        caller.profile.group
    )))
}

/// A group's (client credentials) token has at most the scopes its configuration lists: the
/// service's client may be able to get many more, and the caller must not reach them.
/// (Users' tokens need no bound here: a refresh cannot widen the grant the user gave.)
fn bound_group_scopes(
    group: &str,
    configured: &[String],
    requested: &[String],
) -> Result<(), ApiError> {
    let outside: Vec<&str> = requested
        .iter()
        .flat_map(|scope| scope.split_whitespace())
        .filter(|scope| {
            !configured
                .iter()
                .flat_map(|allowed| allowed.split_whitespace())
                .any(|allowed| allowed == *scope)
        })
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    let allowed = if configured.is_empty() {
        "none".to_owned()
    } else {
        configured.join(" ")
    };
    Err(ApiError::forbidden(format!(
        "the group {group}'s token may carry only the scopes its configuration lists \
         ({allowed}); not {outside:?}"
    )))
}

/// Oneself, or anyone with `ProxyManagement`.
fn authorize_self_or_manager(caller: &Caller, user: &str, what: &str) -> Result<(), ApiError> {
    if caller.username() == user || caller.has(properties::PROXY_MANAGEMENT) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "only {user} or a caller with ProxyManagement may {what} {user}"
        )))
    }
}

fn summary(grant: &StoredGrant, provider: &str) -> StoredTokenInfo {
    StoredTokenInfo {
        username: None,
        group: grant
            .key()
            .account()
            .strip_prefix(GROUP_ACCOUNT_PREFIX)
            .map(str::to_owned),
        user_id: None,
        provider: provider.to_owned(),
        issuer: grant.key().issuer().to_owned(),
        client_id: grant.key().client_id().to_owned(),
        scopes: grant.scopes().clone(),
        has_refresh_token: grant.refresh_token().is_some(),
        refresh_expires_at: grant.refresh_expires_at().map(unix),
        updated_at: unix(grant.updated_at()),
        access_tokens: grant
            .access_tokens()
            .iter()
            .map(|entry| AccessTokenSummary {
                audience: entry.audience().map(str::to_owned),
                scopes: entry.scopes().clone(),
                expires_at: entry.expires_at().map(unix),
            })
            .collect(),
    }
}
