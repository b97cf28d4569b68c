//! [`ErrorCode`]: the one list of the token service's error codes, which the server answers
//! with and the client reads.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use sciauth_credentials::text::printable;

/// The stable code in every error answer of the token service (`ErrorBody::error`), with
/// the HTTP status the service answers it with. Unknown codes (from a newer service) are
/// kept as [`Other`](Self::Other), escaped.
///
/// ```
/// use sciauth_service_api::ErrorCode;
/// assert_eq!(ErrorCode::parse("tokens_expired"), ErrorCode::TokensExpired);
/// assert_eq!(ErrorCode::TokensExpired.status().as_u16(), 409);
/// assert!(ErrorCode::NoSavedTokens.needs_login());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the request is malformed or names something that does not exist.
    BadRequest,
    /// 401: no caller token or certificate, or one that does not verify.
    Unauthenticated,
    /// 403: the caller's group lacks the property (or the scope) the request needs.
    Forbidden,
    /// 404: no such method.
    NotFound,
    /// 405: methods are POST.
    MethodNotAllowed,
    /// 408: the body did not arrive in time.
    RequestTimeout,
    /// 413: the body is larger than the service reads.
    PayloadTooLarge,
    /// 404: the service keeps no token for the user at that provider: log in and upload one.
    NoSavedTokens,
    /// 409: the kept refresh token expired or was refused by the provider: log in again.
    TokensExpired,
    /// 400: the kept grant lacks a requested scope or audience: log in asking for it.
    ScopesMismatch,
    /// 400: the provider refused the scope or audience asked for.
    ProviderRefused,
    /// 502: the provider failed, refused the service's client, or could not be reached.
    ProviderError,
    /// 503: the token store is down.
    StoreUnavailable,
    /// 503: the service cannot answer now (draining, or the callers' issuer is down).
    Unavailable,
    /// A code this version does not know, as the service spelled it (escaped).
    Other(String),
}

impl ErrorCode {
    /// The code for the `error` value `code`.
    pub fn parse(code: &str) -> Self {
        match code {
            "bad_request" => Self::BadRequest,
            "unauthenticated" => Self::Unauthenticated,
            "forbidden" => Self::Forbidden,
            "not_found" => Self::NotFound,
            "method_not_allowed" => Self::MethodNotAllowed,
            "request_timeout" => Self::RequestTimeout,
            "payload_too_large" => Self::PayloadTooLarge,
            "no_saved_tokens" => Self::NoSavedTokens,
            "tokens_expired" => Self::TokensExpired,
            "scopes_mismatch" => Self::ScopesMismatch,
            "provider_refused" => Self::ProviderRefused,
            "provider_error" => Self::ProviderError,
            "store_unavailable" => Self::StoreUnavailable,
            "unavailable" => Self::Unavailable,
            other => Self::Other(printable(other, 100)),
        }
    }

    /// The code as it is written in an answer.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NoSavedTokens => "no_saved_tokens",
            Self::TokensExpired => "tokens_expired",
            Self::ScopesMismatch => "scopes_mismatch",
            Self::ProviderRefused => "provider_refused",
            Self::ProviderError => "provider_error",
            Self::StoreUnavailable => "store_unavailable",
            Self::Unavailable => "unavailable",
            Self::Other(code) => code,
        }
    }

    /// The HTTP status the service answers this code with (`Other`: 500, which the service
    /// itself never sends).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest | Self::ScopesMismatch | Self::ProviderRefused => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NoSavedTokens => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TokensExpired => StatusCode::CONFLICT,
            Self::ProviderError => StatusCode::BAD_GATEWAY,
            Self::StoreUnavailable | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the user must log in (and upload a token) before the service can help:
    /// `no_saved_tokens`, `tokens_expired`, `scopes_mismatch`.
    pub fn needs_login(&self) -> bool {
        matches!(
            self,
            Self::NoSavedTokens | Self::TokensExpired | Self::ScopesMismatch
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|code| Self::parse(&code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself_and_unknown_ones_are_escaped() {
        let all = [
            ErrorCode::BadRequest,
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::RequestTimeout,
            ErrorCode::PayloadTooLarge,
            ErrorCode::NoSavedTokens,
            ErrorCode::TokensExpired,
            ErrorCode::ScopesMismatch,
            ErrorCode::ProviderRefused,
            ErrorCode::ProviderError,
            ErrorCode::StoreUnavailable,
            ErrorCode::Unavailable,
        ];
        for code in all {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
            assert!(!code.status().is_server_error() || code.status().as_u16() >= 502);
        }
        let unknown = ErrorCode::parse("new_code\u{1b}[2J");
        assert_eq!(unknown.as_str(), "new_code\\x1b[2J");
        assert_eq!(
            serde_json::to_string(&ErrorCode::TokensExpired).unwrap(),
            "\"tokens_expired\""
        );
    }
}
