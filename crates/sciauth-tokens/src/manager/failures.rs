//! The errors a request for a token ends in when no grant can serve it, each saying why and
//! what to do (log in, log in asking for other scopes).

use super::TokenRequest;
use crate::error::{Error, ErrorKind, OAuthErrorCode};
use crate::store::{GrantKey, StoredGrant};

pub(super) fn scopes_mismatch(
    key: &GrantKey,
    grant: &StoredGrant,
    request: &TokenRequest,
) -> Error {
    let missing = grant.scopes().missing(request.requested_scopes());
    // A path scope wider than the grant's: say which of the grant's paths fall short.
    let narrower: Vec<&str> = missing
        .iter()
        .filter_map(|wanted| crate::wlcg::path_scope(wanted))
        .flat_map(|(authz, _)| {
            grant
                .scopes()
                .iter()
                .filter(move |held| crate::wlcg::path_scope(held).is_some_and(|(a, _)| a == authz))
        })
        .collect();
    let hint = if narrower.is_empty() {
        String::new()
    } else {
        format!(
            "; the grant's {} covers only the paths below it",
            narrower.join(", ")
        )
    };
    Error::new(
        ErrorKind::ScopesMismatch,
        format!(
            "the stored grant of {key} does not have the scopes {missing} (it has: {}){hint}; \
             log in again asking for them",
            grant.scopes()
        ),
    )
}

pub(super) fn refresh_refused(key: &GrantKey, error: Error) -> Error {
    let message = format!(
        "the provider no longer accepts the refresh token of {key} ({}): log in again",
        error
            .oauth_error()
            .map_or_else(|| error.to_string(), ToString::to_string)
    );
    error.with_kind(ErrorKind::TokensExpired, message)
}

pub(super) fn map_refresh_error(
    key: &GrantKey,
    grant: &StoredGrant,
    request: &TokenRequest,
    error: Error,
) -> Error {
    match error.oauth_code() {
        Some(OAuthErrorCode::InvalidGrant) => refresh_refused(key, error),
        Some(OAuthErrorCode::InvalidScope) => {
            let message = format!(
                "the provider refused the scopes {} for {key} (the grant has {}): {error}",
                request.requested_scopes(),
                grant.scopes()
            );
            error.with_kind(ErrorKind::ScopesMismatch, message)
        }
        _ => error,
    }
}

pub(super) fn not_refreshable(
    key: &GrantKey,
    stored: Option<&StoredGrant>,
    request: &TokenRequest,
) -> Error {
    let Some(grant) = stored else {
        return Error::new(
            ErrorKind::NoSavedTokens,
            format!("no tokens are stored for {key}: log in first"),
        );
    };
    let same_target = grant.access_tokens().iter().any(|e| {
        e.audience() == request.requested_audience()
            && e.scopes().contains_all(request.requested_scopes())
    });
    let why = if grant.refresh_token().is_some() {
        "its refresh token has expired"
    } else {
        "there is no refresh token"
    };
    if same_target || grant.refresh_token().is_some() {
        Error::new(
            ErrorKind::TokensExpired,
            format!(
                "the stored tokens of {key} have expired (or expire sooner than asked) and {why}: log in again"
            ),
        )
    } else {
        Error::new(
            ErrorKind::ScopesMismatch,
            format!(
                "no stored token of {key} is for audience {} with scopes {}, and {why} to get one: \
                 log in again asking for them",
                request.requested_audience().unwrap_or("(none)"),
                request.requested_scopes()
            ),
        )
    }
}
