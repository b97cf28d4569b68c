//! Errors as callers see them: an HTTP status and a JSON [`ErrorBody`]. Every failure maps to
//! a 4xx (the caller can fix it) or a 502/503 (a provider or the store is down); nothing a
//! caller sends produces a 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sciauth_service_api::{ErrorBody, ErrorCode};
use sciauth_tokens::{ErrorKind, OAuthErrorCode};

/// A failed call: stable code (which gives the status), message (never a secret).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    pub(crate) fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code.clone(),
            message: self.message.clone(),
        }
    }
}

impl From<sciauth_tokens::Error> for ApiError {
    fn from(error: sciauth_tokens::Error) -> Self {
        let message = error.to_string();
        let code = match error.kind() {
            ErrorKind::InvalidInput => ErrorCode::BadRequest,
            ErrorKind::NoSavedTokens => ErrorCode::NoSavedTokens,
            ErrorKind::TokensExpired | ErrorKind::OAuth(OAuthErrorCode::InvalidGrant) => {
                ErrorCode::TokensExpired
            }
            ErrorKind::ScopesMismatch => ErrorCode::ScopesMismatch,
            // The provider refused what the caller asked for (a scope or audience it does not
            // offer): the caller can change the request.
            ErrorKind::OAuth(
                OAuthErrorCode::InvalidScope
                | OAuthErrorCode::InvalidTarget
                | OAuthErrorCode::InvalidRequest,
            ) => ErrorCode::ProviderRefused,
            ErrorKind::Store(_) => ErrorCode::StoreUnavailable,
            // The provider failed, refused the service's own client, or is unreachable.
            _ => ErrorCode::ProviderError,
        };
        Self::new(code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code.as_str(), message = %self.message, "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), code = self.code.as_str(), message = %self.message, "request refused");
        }
        crate::http::json_response(self.status, &self.body())
    }
}
