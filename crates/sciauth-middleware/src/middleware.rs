//! [`AuthMiddleware`]: the credential in a `reqwest_middleware` stack.

use http::Extensions;
use http::header::AUTHORIZATION;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::auth::Auth;
use crate::error::Error;

/// A [`reqwest_middleware::Middleware`] that adds the credential's header to the requests
/// for the configured origin, and sends a request once more when the server rejects the
/// credential and the credential renewed. Made by [`Auth::middleware`].
///
/// For each request:
///
/// - to another origin, or with an `Authorization` header (or the credential's own header)
///   of its own: sent untouched;
/// - else the credential's header is added (its ready header when it has one, so that a
///   valid token costs no await);
/// - if the answer has a rejected status, the credential is told; if it renewed and the body
///   can be cloned (not a stream), the request is sent once more with the new header, and
///   that answer is returned, whatever its status. Otherwise the rejected answer is returned.
///
/// A credential that fails is `reqwest_middleware::Error::Middleware`, whose `anyhow::Error`
/// downcasts to [`Error`]; that includes a renewal that fails after a rejected status (a
/// refresh token the identity provider refused): the error, whose `needs_login()` says what
/// to do, is returned instead of the rejected answer.
///
/// # Redirects
///
/// The middleware sees a request once, before reqwest follows redirects. reqwest's default
/// policy drops `Authorization` when a redirect leads to another origin, but not a custom
/// header such as Rucio's `X-Rucio-Auth-Token`: with such a credential, build the client
/// with `redirect(reqwest::redirect::Policy::none())`.
#[derive(Clone, Debug)]
pub struct AuthMiddleware {
    auth: Auth,
}

impl Auth {
    /// The middleware for a `reqwest_middleware::ClientBuilder`:
    /// `ClientBuilder::new(client).with(auth.middleware()).build()`.
    pub fn middleware(&self) -> AuthMiddleware {
        AuthMiddleware { auth: self.clone() }
    }
}

#[async_trait::async_trait]
impl Middleware for AuthMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let auth = &self.auth;
        if !auth.is_origin_of(request.url()) || request.headers().contains_key(AUTHORIZATION) {
            return next.run(request, extensions).await;
        }
        let Some(header) = auth.header().await.map_err(middleware_error)? else {
            return next.run(request, extensions).await;
        };
        if request.headers().contains_key(header.name()) {
            return next.run(request, extensions).await;
        }
        // Taken before the header goes in; `None` for a streaming body.
        let again = request.try_clone();
        (request.headers_mut()).insert(header.name().clone(), header.value().clone());
        let response = next.clone().run(request, extensions).await?;
        if !auth.is_rejected(response.status()) {
            return Ok(response);
        }
        let renewed = auth.renew(&header).await.map_err(middleware_error)?;
        let (Some(mut again), Some(renewed)) = (again, renewed) else {
            return Ok(response);
        };
        drop(response);
        (again.headers_mut()).insert(renewed.name().clone(), renewed.value().clone());
        next.run(again, extensions).await
    }
}

fn middleware_error(error: Error) -> reqwest_middleware::Error {
    reqwest_middleware::Error::Middleware(anyhow::Error::new(error))
}
