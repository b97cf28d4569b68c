//! The provider's signing keys (JWKS), fetched once and cached; an unknown `kid` fetches
//! them again, at most once per interval. A failed fetch is remembered (backoff from 1 s,
//! doubling to 60 s): while the provider is down, validations use the last good keys, or
//! fail at once, instead of each waiting for its own fetch.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use sciauth_credentials::text::printable;

use crate::backoff::FailureBackoff;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Http;

/// The cache. Readers take a snapshot (`Arc`) under a read lock held for a pointer copy, never
/// across an await, so concurrent validations never fail or wait because of it; fetching is
/// serialized by an async mutex that waiters *await* (never `try_lock`, the google-cloud-auth
/// mistake), and a waiter re-checks the snapshot before fetching again.
pub(crate) struct JwksCache {
    uri: Option<Url>,
    current: RwLock<Option<Arc<KeySet>>>,
    fetch: tokio::sync::Mutex<RefetchState>,
    min_refetch_interval: Duration,
    max_age: Duration,
}

#[derive(Default)]
struct RefetchState {
    /// When an unknown `kid` last caused a fetch.
    last_unknown_kid_fetch: Option<Instant>,
    /// Failed fetches in a row, and until when not to fetch again.
    failures: FailureBackoff,
}

pub(crate) struct KeySet {
    keys: Vec<Key>,
    fetched_at: Instant,
    generation: u64,
}

struct Key {
    kid: Option<String>,
    alg: Option<String>,
    decoding: DecodingKey,
}

impl JwksCache {
    pub(crate) fn new(uri: Option<Url>, min_refetch_interval: Duration, max_age: Duration) -> Self {
        Self {
            uri,
            current: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(RefetchState::default()),
            min_refetch_interval,
            max_age,
        }
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The key to verify a token with header `kid` and `alg`.
    pub(crate) async fn key_for(
        &self,
        http: &Http,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey> {
        let mut snapshot = match self.snapshot() {
            Some(s) if s.fetched_at.elapsed() < self.max_age => s,
            None => self.fetch_if_unchanged(http, None).await?,
            Some(stale) => match self.fetch_if_unchanged(http, Some(stale.generation)).await {
                Ok(fresh) => fresh,
                // Keys that were good an hour ago are better than no keys while the provider
                // is unreachable; an unknown kid still fails below.
                // The failed fetch itself was logged as a warning, once per attempt; the
                // validations in between only note it.
                Err(e) => {
                    tracing::debug!(error = %e, "cannot refresh the JWKS; using the cached keys");
                    stale
                }
            },
        };
        if let Some(key) = snapshot.find(kid, alg)? {
            return Ok(key);
        }
        // An unknown key: the provider may have rotated its keys since we fetched them.
        let mut state = self.fetch.lock().await;
        let latest = self.snapshot();
        if let Some(latest) = latest.filter(|l| l.generation != snapshot.generation) {
            // Someone fetched while we waited for the lock.
            snapshot = latest;
        } else if state
            .last_unknown_kid_fetch
            .is_none_or(|at| at.elapsed() >= self.min_refetch_interval)
        {
            state.last_unknown_kid_fetch = Some(Instant::now());
            tracing::debug!(kid, "unknown signing key id; fetching the JWKS again");
            snapshot = self.fetch_locked(&mut state, http).await?;
        } else {
            tracing::debug!(
                kid,
                "unknown signing key id; JWKS fetched too recently to refetch"
            );
        }
        drop(state);
        snapshot.find(kid, alg)?.ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownSigningKey,
                format!(
                    "no key in the provider's JWKS ({}) matches the token's key id {} and \
                     algorithm {alg:?}",
                    self.uri.as_ref().map_or("none", Url::as_str),
                    // The token's header is the sender's words.
                    kid.map_or_else(|| "(none)".to_owned(), |kid| printable(kid, 100)),
                ),
            )
        })
    }

    /// The usable signing keys (`kid`, `alg`) of the key set, fetched now (unless a recent
    /// failure says the provider is still down).
    pub(crate) async fn fetch_now(
        &self,
        http: &Http,
    ) -> Result<Vec<(Option<String>, Option<String>)>> {
        let mut state = self.fetch.lock().await;
        let set = self.fetch_locked(&mut state, http).await?;
        Ok(set
            .keys
            .iter()
            .map(|key| (key.kid.clone(), key.alg.clone()))
            .collect())
    }

    /// Fetches unless someone else replaced generation `seen` meanwhile.
    async fn fetch_if_unchanged(&self, http: &Http, seen: Option<u64>) -> Result<Arc<KeySet>> {
        let mut state = self.fetch.lock().await;
        if let Some(current) = self.snapshot()
            && Some(current.generation) != seen
            && current.fetched_at.elapsed() < self.max_age
        {
            return Ok(current);
        }
        self.fetch_locked(&mut state, http).await
    }

    /// Fetches the keys, unless a recent failure says the provider is still down; a failure
    /// starts or lengthens that backoff.
    async fn fetch_locked(&self, state: &mut RefetchState, http: &Http) -> Result<Arc<KeySet>> {
        let uri = self.uri.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::MissingEndpoint,
                "the provider has no jwks_uri, so ID token signatures cannot be checked; set \
                 ProviderMetadata::jwks_uri",
            )
        })?;
        state.failures.check()?;
        match self.fetch_from(uri, http).await {
            Ok(set) => {
                state.failures.succeeded();
                Ok(set)
            }
            Err(error) => {
                let backoff = state.failures.failed(&error);
                tracing::warn!(%error, ?backoff, "cannot fetch the JWKS; not trying again before the backoff");
                Err(error)
            }
        }
    }

    async fn fetch_from(&self, uri: &Url, http: &Http) -> Result<Arc<KeySet>> {
        let answer = http.get(uri, "the JWKS endpoint").await?;
        self.install(&answer.body, uri)
    }

    /// Parses the JWKS document `body` (fetched from `uri`) and makes it the current key set.
    pub(crate) fn install(&self, body: &[u8], uri: &Url) -> Result<Arc<KeySet>> {
        let body: JwksBody = serde_json::from_slice(body).map_err(|e| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("the JWKS at {uri} is not a JSON key set"),
            )
            .with_source(e)
        })?;
        let keys = body.keys.into_iter().filter_map(Key::parse).collect();
        let generation = self.snapshot().map_or(0, |s| s.generation + 1);
        let set = Arc::new(KeySet {
            keys,
            fetched_at: Instant::now(),
            generation,
        });
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(set.clone());
        tracing::debug!(%uri, keys = set.keys.len(), "fetched JWKS");
        Ok(set)
    }
}

#[derive(Deserialize)]
struct JwksBody {
    keys: Vec<Value>,
}

impl Key {
    /// Parses one JWK; keys this crate cannot use (encryption keys, unknown types) are
    /// skipped rather than failing the whole set.
    fn parse(value: Value) -> Option<Self> {
        let alg = value.get("alg").and_then(Value::as_str).map(str::to_owned);
        let jwk: Jwk = serde_json::from_value(value).ok()?;
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return None;
        }
        let decoding = DecodingKey::from_jwk(&jwk).ok()?;
        Some(Self {
            kid: jwk.common.key_id,
            alg,
            decoding,
        })
    }
}

impl KeySet {
    /// The key for `kid` (or, without a `kid`, the only key of the right family), refusing
    /// a key whose declared `alg` or type does not match the token's algorithm.
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<Option<DecodingKey>> {
        let family = alg_family(alg);
        // A provider whose keys carry no `kid` at all is matched by key family, as if the
        // token named none.
        let kid = kid.filter(|_| self.keys.iter().any(|k| k.kid.is_some()));
        let candidates: Vec<&Key> = match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            None => self
                .keys
                .iter()
                .filter(|k| k.decoding.family() == family)
                .collect(),
        };
        if kid.is_none() && candidates.len() > 1 {
            return Err(Error::new(
                ErrorKind::InvalidIdToken,
                "the token names no key id (kid) and the provider has several keys",
            ));
        }
        let Some(key) = candidates.first() else {
            return Ok(None);
        };
        if key.decoding.family() != family
            || key.alg.as_deref().is_some_and(|a| *a != alg_name(alg))
        {
            return Err(Error::new(
                ErrorKind::InvalidIdToken,
                format!(
                    "the token's algorithm {alg:?} does not match its key {} (alg {})",
                    key.kid.as_deref().unwrap_or("(no kid)"),
                    key.alg.as_deref().unwrap_or("unspecified"),
                ),
            ));
        }
        Ok(Some(key.decoding.clone()))
    }
}

fn alg_family(alg: Algorithm) -> jsonwebtoken::AlgorithmFamily {
    use jsonwebtoken::AlgorithmFamily as F;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => F::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => F::Ec,
        Algorithm::EdDSA => F::Ed,
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => F::Rsa,
        // An algorithm added to jsonwebtoken later: no key family of ours matches it.
        _ => F::Hmac,
    }
}

/// The JWA name of `alg` (`RS256`, `EdDSA`, ...), as a JWK's `alg` spells it.
fn alg_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key_set(keys: Value) -> KeySet {
        let keys = keys
            .as_array()
            .unwrap()
            .iter()
            .cloned()
            .filter_map(Key::parse)
            .collect();
        KeySet {
            keys,
            fetched_at: Instant::now(),
            generation: 0,
        }
    }

    fn rsa(kid: Option<&str>, alg: Option<&str>, use_: &str) -> Value {
        let mut key = json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": use_});
        if let Some(kid) = kid {
            key["kid"] = json!(kid);
        }
        if let Some(alg) = alg {
            key["alg"] = json!(alg);
        }
        key
    }

    #[test]
    fn keys_are_found_by_kid_and_must_match_the_algorithm() {
        let set = key_set(json!([
            rsa(Some("a"), Some("RS256"), "sig"),
            {"kty": "EC", "crv": "P-256", "kid": "b", "x": "AQAB", "y": "AQAB"},
            rsa(Some("enc"), None, "enc"),
            {"kty": "unknown", "kid": "c"},
        ]));
        assert_eq!(set.keys.len(), 2, "encryption and unknown keys are skipped");
        assert!(set.find(Some("a"), Algorithm::RS256).unwrap().is_some());
        assert!(set.find(Some("b"), Algorithm::ES256).unwrap().is_some());
        assert!(set.find(Some("zzz"), Algorithm::RS256).unwrap().is_none());
        assert!(set.find(Some("enc"), Algorithm::RS256).unwrap().is_none());
        // An RSA key used for PS256 although it says RS256, or for an EC algorithm: refused.
        let e = set.find(Some("a"), Algorithm::PS256).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::InvalidIdToken);
        assert!(set.find(Some("a"), Algorithm::ES256).is_err());
    }

    #[test]
    fn without_kids_the_key_family_decides() {
        let one = key_set(json!([rsa(None, None, "sig")]));
        assert!(
            one.find(Some("whatever"), Algorithm::RS256)
                .unwrap()
                .is_some()
        );
        assert!(one.find(None, Algorithm::PS256).unwrap().is_some());
        assert!(one.find(None, Algorithm::ES256).unwrap().is_none());
        let two = key_set(json!([rsa(None, None, "sig"), rsa(None, None, "sig")]));
        assert!(two.find(None, Algorithm::RS256).is_err(), "ambiguous");
    }
}
