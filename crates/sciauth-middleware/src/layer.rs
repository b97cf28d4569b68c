//! [`AuthLayer`] and [`AuthService`]: the credential in a tower stack (hyper, tonic and axum
//! clients).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response};
use sciauth_credentials::AuthHeader;
use tower_layer::Layer;
use tower_service::Service;

use crate::auth::Auth;

/// The error of an [`AuthService`]: the inner service's error, or this crate's
/// [`Error`](crate::Error) when the credential failed (both downcast from it).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future an [`AuthService`] answers with.
pub type ResponseFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// A [`tower_layer::Layer`] that wraps a service in an [`AuthService`]. Made by
/// [`Auth::layer`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    auth: Auth,
}

/// A tower service that adds the credential's header to the requests for the configured
/// origin, and sends a request once more when the server rejects the credential and the
/// credential renewed. Made by [`AuthLayer`].
///
/// The origin of a request is its URI's scheme and authority, as a hyper client's requests
/// have them (`http://host:port/path`). A request whose URI has no scheme or no authority
/// (origin-form, `/path` only) never gets the credential: its origin is not known, and a
/// `Host` header alone does not say the scheme.
///
/// The request body must be [`Clone`] (`String`, `Bytes`, `http_body_util::Full`,
/// `http_body_util::Empty`): the request is cloned before it goes out, so that the resend
/// after a renewal carries the same body. Otherwise it behaves as
/// [`AuthMiddleware`](crate::AuthMiddleware) does: requests to another origin or with an
/// `Authorization` header of their own go untouched, and at most one resend follows a
/// rejected status (401 by default), only when the credential says it renewed. A credential
/// that fails, also when renewing after a rejection, is the service's error: a [`BoxError`]
/// that downcasts to [`Error`](crate::Error).
///
/// Neither hyper-util's legacy client nor this service follows redirects.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    auth: Auth,
}

impl Auth {
    /// The tower layer: `tower::ServiceBuilder::new().layer(auth.layer()).service(client)`.
    pub fn layer(&self) -> AuthLayer {
        AuthLayer { auth: self.clone() }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService::new(inner, self.auth.clone())
    }
}

impl<S> AuthService<S> {
    /// `inner`, with `auth`'s credential added to its requests.
    pub fn new(inner: S, auth: Auth) -> Self {
        Self { inner, auth }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Clone + Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ResponseFuture<Response<RB>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The ready service answers this request; the clone waits for the next one (tower's
        // way to move a service into a future).
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(send(self.auth.clone(), inner, request))
    }
}

async fn send<S, B, RB>(
    auth: Auth,
    mut inner: S,
    mut request: Request<B>,
) -> Result<S::Response, BoxError>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
    B: Clone,
{
    if !is_origin(&auth, &request) || request.headers().contains_key(AUTHORIZATION) {
        return inner.call(request).await.map_err(Into::into);
    }
    let Some(header) = auth.header().await? else {
        return inner.call(request).await.map_err(Into::into);
    };
    if request.headers().contains_key(header.name()) {
        return inner.call(request).await.map_err(Into::into);
    }
    let mut again = clone_request(&request);
    insert(&mut request, &header);
    let response = inner.call(request).await.map_err(Into::into)?;
    if !auth.is_rejected(response.status()) {
        return Ok(response);
    }
    let Some(renewed) = auth.renew(&header).await? else {
        return Ok(response);
    };
    drop(response);
    insert(&mut again, &renewed);
    poll_fn(|cx| inner.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    inner.call(again).await.map_err(Into::into)
}

fn is_origin<B>(auth: &Auth, request: &Request<B>) -> bool {
    let uri = request.uri();
    match (uri.scheme_str(), uri.host()) {
        (Some(scheme), Some(host)) => auth.is_origin(scheme, host, uri.port_u16()),
        _ => false,
    }
}

fn insert<B>(request: &mut Request<B>, header: &AuthHeader) {
    (request.headers_mut()).insert(header.name().clone(), header.value().clone());
}

/// The same request: method, URI, version, headers, extensions and body.
fn clone_request<B: Clone>(request: &Request<B>) -> Request<B> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}
