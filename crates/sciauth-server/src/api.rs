//! Errors as callers see them: an HTTP status and a JSON [`ErrorBody`]. Every failure maps to
//! a 4xx (the caller can fix it) or a 502/503 (a provider or the store is down); nothing a
//! caller sends produces a 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sciauth_tokens::service::ErrorBody;
use sciauth_tokens::{ErrorKind, OAuthErrorCode};

/// A failed call: status, stable code, message (never a secret).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub(crate) fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code.to_owned(),
            message: self.message.clone(),
        }
    }
}

impl From<sciauth_tokens::Error> for ApiError {
    fn from(error: sciauth_tokens::Error) -> Self {
        let message = error.to_string();
        let (status, code) = match error.kind() {
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "bad_request"),
            ErrorKind::NoSavedTokens => (StatusCode::NOT_FOUND, "no_saved_tokens"),
            ErrorKind::TokensExpired => (StatusCode::CONFLICT, "tokens_expired"),
            ErrorKind::ScopesMismatch => (StatusCode::BAD_REQUEST, "scopes_mismatch"),
            // The provider refused what the caller asked for (a scope or audience it does not
            // offer): the caller can change the request.
            ErrorKind::OAuth(
                OAuthErrorCode::InvalidScope
                | OAuthErrorCode::InvalidTarget
                | OAuthErrorCode::InvalidRequest,
            ) => (StatusCode::BAD_REQUEST, "provider_refused"),
            ErrorKind::OAuth(OAuthErrorCode::InvalidGrant) => {
                (StatusCode::CONFLICT, "tokens_expired")
            }
            ErrorKind::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            // The provider failed, refused the service's own client, or is unreachable.
            _ => (StatusCode::BAD_GATEWAY, "provider_error"),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), code = self.code, message = %self.message, "request refused");
        }
        crate::http::json_response(self.status, &self.body())
    }
}
