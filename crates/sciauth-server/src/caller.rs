//! Who is calling: a bearer token checked against the configured issuer (and then cached
//! until it expires, keyed by its SHA-256), or a TLS client certificate's subject DN; then the
//! user, group and properties the configuration gives them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::{Issuer, LazyIssuer};

use crate::api::ApiError;
use crate::config::{CallersConfig, Config};

/// The most validated caller tokens remembered; past it, expired ones are dropped, and if
/// none is, all.
const MAX_CACHED_CALLERS: usize = 100_000;

/// An authenticated caller, acting as one of their groups.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) profile: Arc<Profile>,
    pub(crate) identity: Arc<str>,
    pub(crate) by_certificate: bool,
}

/// A user acting as one group: what authorization needs, made once per (user, group).
#[derive(Debug)]
pub(crate) struct Profile {
    pub(crate) username: String,
    pub(crate) group: String,
    pub(crate) groups: Vec<String>,
    pub(crate) properties: BTreeSet<String>,
    pub(crate) vo: Option<String>,
}

impl Caller {
    pub(crate) fn has(&self, property: &str) -> bool {
        self.profile.properties.contains(property)
    }

    pub(crate) fn username(&self) -> &str {
        &self.profile.username
    }
}

/// The subject DN of a TLS client certificate, put on each request of the connection.
#[derive(Debug, Clone)]
pub(crate) struct PeerDn(pub(crate) Arc<str>);

/// Authenticates callers.
#[derive(Debug)]
pub(crate) struct Authenticator {
    callers: Option<CallersConfig>,
    /// The callers' issuer, discovered on first use; failed discoveries back off. Shared
    /// with the authenticator before a reload when the callers' configuration is unchanged.
    issuer: Option<Arc<LazyIssuer>>,
    /// (user, group) → profile.
    profiles: HashMap<(String, String), Arc<Profile>>,
    /// user → their default (first) group.
    default_group: HashMap<String, String>,
    by_subject: HashMap<String, String>,
    by_dn: HashMap<String, String>,
    /// SHA-256 of a validated token → who it names, until when.
    cache: RwLock<HashMap<[u8; 32], CachedToken>>,
}

#[derive(Debug, Clone)]
struct CachedToken {
    username: Arc<str>,
    identity: Arc<str>,
    expires_at: SystemTime,
}

impl Authenticator {
    /// The authenticator for `config`. After a reload (`previous`), the callers' issuer is
    /// kept if it is unchanged, and so are the validated tokens of callers who still name a
    /// user (under the new configuration's name for them).
    pub(crate) fn new(config: &Config, previous: Option<&Authenticator>) -> Self {
        let mut profiles = HashMap::new();
        let mut default_group = HashMap::new();
        let mut by_subject = HashMap::new();
        let mut by_dn = HashMap::new();
        for (name, user) in &config.users {
            for group in &user.groups {
                // The configuration was checked: every group a user names exists.
                let Some(group_config) = config.groups.get(group) else {
                    continue;
                };
                profiles.insert(
                    (name.clone(), group.clone()),
                    Arc::new(Profile {
                        username: name.clone(),
                        group: group.clone(),
                        groups: user.groups.clone(),
                        properties: group_config.properties.clone(),
                        vo: group_config.vo.clone(),
                    }),
                );
            }
            if let Some(first) = user.groups.first() {
                default_group.insert(name.clone(), first.clone());
            }
            for subject in &user.subjects {
                by_subject.insert(subject.clone(), name.clone());
            }
            for dn in &user.dns {
                by_dn.insert(dn.clone(), name.clone());
            }
        }
        let previous = previous.filter(|p| p.callers == config.callers);
        let cache = previous
            .map(|previous| {
                let old = previous
                    .cache
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                old.iter()
                    .filter_map(|(digest, cached)| {
                        let username = by_subject.get(&*cached.identity)?;
                        Some((
                            *digest,
                            CachedToken {
                                username: Arc::from(username.as_str()),
                                identity: cached.identity.clone(),
                                expires_at: cached.expires_at,
                            },
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let issuer = match previous {
            Some(previous) => previous.issuer.clone(),
            None => config.callers.as_ref().map(|callers| {
                let issuer = callers.issuer.clone();
                let plain_jwt = callers.plain_jwt_access_tokens;
                Arc::new(LazyIssuer::new(move || {
                    Ok(Issuer::builder(issuer.clone())
                        .transport(caller_transport()?)
                        .plain_jwt_access_tokens(plain_jwt))
                }))
            }),
        };
        Self {
            callers: config.callers.clone(),
            issuer,
            profiles,
            default_group,
            by_subject,
            by_dn,
            cache: RwLock::new(cache),
        }
    }

    /// Whether the callers' issuer (if any) is discovered, discovering it now if not: bearer
    /// tokens can be checked. `Err` says why not.
    pub(crate) async fn ready(&self) -> Result<(), String> {
        match &self.issuer {
            None => Ok(()),
            Some(issuer) => issuer.get().await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }

    /// The caller of a request with these `Authorization`, group-header and TLS peer values.
    pub(crate) async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        group: Option<&[u8]>,
        peer: Option<&PeerDn>,
    ) -> Result<Caller, ApiError> {
        let (username, identity, by_certificate) = match (authorization, peer) {
            (Some(header), _) => {
                let token = bearer(header)?;
                let (username, identity) = self.token_caller(token).await?;
                (username, identity, false)
            }
            (None, Some(PeerDn(dn))) => {
                let username = self.by_dn.get(&**dn).ok_or_else(|| {
                    ApiError::forbidden(format!(
                        "the certificate {dn} belongs to no configured user"
                    ))
                })?;
                (Arc::from(username.as_str()), dn.clone(), true)
            }
            (None, None) => {
                return Err(ApiError::unauthenticated(
                    "send Authorization: Bearer <token> (or a TLS client certificate)",
                ));
            }
        };
        let group = match group {
            Some(raw) => std::str::from_utf8(raw)
                .map_err(|_| ApiError::bad_request("the group header is not UTF-8"))?,
            None => self
                .default_group
                .get(&*username)
                .map(String::as_str)
                .unwrap_or_default(),
        };
        let profile = self
            .profiles
            .get(&(username.to_string(), group.to_owned()))
            .ok_or_else(|| {
                ApiError::forbidden(format!("user {username} is not in the group {group:?}"))
            })?
            .clone();
        Ok(Caller {
            profile,
            identity,
            by_certificate,
        })
    }

    async fn token_caller(&self, token: &str) -> Result<(Arc<str>, Arc<str>), ApiError> {
        let digest = sha256(token.as_bytes());
        let now = SystemTime::now();
        if let Some(hit) = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .filter(|hit| now < hit.expires_at)
        {
            return Ok((hit.username.clone(), hit.identity.clone()));
        }
        let (Some(callers), Some(issuer)) = (&self.callers, &self.issuer) else {
            return Err(ApiError::unauthenticated(
                "this service accepts no bearer tokens (no [callers] issuer is configured); \
                 use a client certificate",
            ));
        };
        let issuer = issuer.get().await.map_err(|e| {
            tracing::debug!(error = %e, "cannot reach the callers' issuer");
            ApiError::unavailable(format!(
                "the service cannot check tokens right now (the issuer is unreachable: {e})"
            ))
        })?;
        let claims = issuer
            .validate_access_token(token, &callers.audience)
            .await
            .map_err(|e| {
                if e.is_transient() {
                    ApiError::unavailable(format!("the service cannot check tokens right now: {e}"))
                } else {
                    ApiError::unauthenticated(format!("the bearer token is not accepted: {e}"))
                }
            })?;
        let subject = claims.subject().unwrap_or_default();
        let username = self.by_subject.get(subject).ok_or_else(|| {
            ApiError::forbidden(format!(
                "the token's subject {subject:?} belongs to no configured user"
            ))
        })?;
        let entry = CachedToken {
            username: Arc::from(username.as_str()),
            identity: Arc::from(subject),
            expires_at: claims.expires_at(),
        };
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_CALLERS {
            cache.retain(|_, cached| now < cached.expires_at);
            if cache.len() >= MAX_CACHED_CALLERS {
                cache.clear();
            }
        }
        cache.insert(digest, entry.clone());
        Ok((entry.username, entry.identity))
    }
}

/// The transport to the callers' issuer: no redirects (as every OAuth endpoint), proxies from
/// the environment.
fn caller_transport() -> sciauth_tokens::Result<Transport> {
    Transport::builder()
        .follow_redirects(false)
        .build()
        .map_err(|e| {
            sciauth_tokens::Error::store(
                sciauth_tokens::StoreErrorKind::Io,
                "cannot build an HTTP client",
            )
            .with_source(e)
        })
}

fn bearer(header: &[u8]) -> Result<&str, ApiError> {
    let value = std::str::from_utf8(header)
        .map_err(|_| ApiError::unauthenticated("the Authorization header is not text"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthenticated(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer(b"Bearer abc").unwrap(), "abc");
        assert_eq!(bearer(b"bearer  abc ").unwrap(), "abc");
        assert!(bearer(b"Basic abc").is_err());
        assert!(bearer(b"Bearer ").is_err());
        assert!(bearer(&[0xff, 0xfe]).is_err());
    }
}
