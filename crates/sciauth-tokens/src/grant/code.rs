//! The authorization code grant with PKCE, for native apps (RFC 8252): a browser, a
//! loopback redirect, or a pasted code.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use sciauth_credentials::text::printable;

use crate::client::{OAuthClient, TokenRequest};
use crate::client_auth::Form;
use crate::error::{Error, ErrorKind, OAuthError, OAuthErrorCode, Result};
use crate::loopback::{LoopbackServer, Page};
use crate::mask::Secrets;
use crate::pkce::{PkceVerifier, random_url_safe};
use crate::token::{Scopes, Token};
use crate::validate::TokenRules;

impl OAuthClient {
    /// Starts building an authorization request for `redirect_uri`, for callers that run the
    /// browser step themselves; [`code_login`](Self::code_login) does it all.
    pub fn authorization_request(&self, redirect_uri: impl Into<String>) -> AuthorizationRequest {
        AuthorizationRequest {
            client: self.clone(),
            redirect_uri: redirect_uri.into(),
            options: LoginOptions::default(),
        }
    }

    /// Exchanges the `code` from the redirect for a token, with the session's PKCE
    /// verifier, and validates the ID token (with the session's nonce) if one comes back.
    pub async fn redeem_code(&self, session: &AuthorizationSession, code: &str) -> Result<Token> {
        let mut form = Form::new();
        form.push("grant_type", "authorization_code");
        form.push_secret("code", SecretString::from(code.to_owned()));
        form.push("redirect_uri", session.redirect_uri.clone());
        form.push_secret("code_verifier", session.verifier.secret().clone());
        let audience = self
            .audience_parameter()
            .add(&mut form, session.audience.as_deref());
        let token = self
            .token_request(
                form,
                TokenRequest {
                    grant: "authorization_code",
                    requested_scopes: session.scopes.clone(),
                    audience,
                    rules: TokenRules::default(),
                },
            )
            .await?;
        if let Some(id_token) = token.id_token() {
            self.validate_id_token(id_token.expose_secret(), session.nonce.as_deref())
                .await?;
        }
        Ok(token)
    }

    /// Logs a user in through their browser: authorization code + PKCE S256 with a loopback
    /// redirect server (RFC 8252), or a pasted code where no local server can help (an SSH
    /// session, or [`CallbackMode::Paste`]).
    ///
    /// The loopback server ignores a redirect whose `state` is not this login's (it shows
    /// that browser a "not this login" page) and keeps waiting for the right one, so that no
    /// other process on the machine can end the login; a right redirect with an error ends
    /// it.
    ///
    /// ```no_run
    /// # async fn run(client: sciauth_tokens::OAuthClient) -> sciauth_tokens::Result<()> {
    /// let token = client
    ///     .code_login()
    ///     .scopes(["openid", "profile", "offline_access"])
    ///     .run()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn code_login(&self) -> CodeLogin {
        CodeLogin {
            client: self.clone(),
            options: LoginOptions::default(),
            mode: CallbackMode::Auto,
            no_browser: false,
            open_with: None,
            paste_prompt: None,
            redirect_path: "/callback".to_owned(),
            registered: Registered::None,
            paste_redirect_uri: None,
            timeout: Duration::from_secs(600),
        }
    }
}

/// A redirect URI the provider has registered for the client, where it accepts no other.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Registered {
    /// Any loopback port (RFC 8252 7.3): the OS picks a free one.
    None,
    /// This URI exactly.
    Uri(String),
    /// `http://127.0.0.1:<port><redirect_path>` for the first of these ports that is free.
    Ports(Vec<u16>),
}

/// The port and path of a registered loopback redirect URI, or why it cannot be one: plain
/// `http` to `127.0.0.1` or `localhost` (the server listens on 127.0.0.1 alone), an explicit
/// port, no user, query or fragment.
fn loopback_port_and_path(uri: &str) -> Result<(u16, String)> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the redirect URI {:?} cannot be served here: {why} (it must look like \
                 http://127.0.0.1:8765/callback)",
                printable(uri, 200)
            ),
        )
    };
    let url = Url::parse(uri).map_err(|_| bad("it is not a URL"))?;
    if url.scheme() != "http" {
        return Err(bad("only http:// reaches a loopback server"));
    }
    if !matches!(url.host_str(), Some("127.0.0.1" | "localhost")) {
        return Err(bad(
            "its host must be 127.0.0.1 or localhost, where the login listens",
        ));
    }
    let port = match url.port() {
        Some(port) if port != 0 => port,
        _ => return Err(bad("it needs an explicit port")),
    };
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad("it may carry no user, query or fragment"));
    }
    Ok((port, url.path().to_owned()))
}

/// What an authorization request asks for, shared by the low-level and the interactive API.
#[derive(Clone, Debug, Default)]
struct LoginOptions {
    scopes: Scopes,
    audience: Option<String>,
    login_hint: Option<String>,
    prompt: Option<String>,
    nonce: Option<bool>,
    params: Vec<(String, String)>,
}

macro_rules! login_option_setters {
    () => {
        /// Scopes to ask for (`openid` for an ID token, `offline_access` for a refresh
        /// token). By default none.
        pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
            self.options.scopes.extend(scopes);
            self
        }

        /// The audience for the token, sent in the authorization and the token request as
        /// the client's [`AudienceParameter`](crate::AudienceParameter). By default none.
        pub fn audience(mut self, audience: impl Into<String>) -> Self {
            self.options.audience = Some(audience.into());
            self
        }

        /// `login_hint`: the account to log in as, pre-filled. By default none.
        pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
            self.options.login_hint = Some(hint.into());
            self
        }

        /// `prompt`, e.g. `consent` (some providers issue refresh tokens only then) or
        /// `login`. By default none.
        pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
            self.options.prompt = Some(prompt.into());
            self
        }

        /// Whether to send a `nonce` and require it in the ID token. By default yes when
        /// `openid` is among the scopes.
        pub fn nonce(mut self, send: bool) -> Self {
            self.options.nonce = Some(send);
            self
        }

        /// An extra query parameter for the authorization URL (e.g. `idphint` for CILogon,
        /// `kc_idp_hint` for Keycloak). By default none.
        pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.options.params.push((name.into(), value.into()));
            self
        }
    };
}

/// An authorization request under construction; [`build`](Self::build) makes the URL and
/// the session that checks the redirect.
#[derive(Debug)]
#[must_use = "build() makes the session"]
pub struct AuthorizationRequest {
    client: OAuthClient,
    redirect_uri: String,
    options: LoginOptions,
}

impl AuthorizationRequest {
    login_option_setters!();

    /// The authorization URL, with fresh `state`, PKCE verifier and nonce.
    pub fn build(self) -> Result<AuthorizationSession> {
        build_session(&self.client, self.redirect_uri, &self.options)
    }
}

fn build_session(
    client: &OAuthClient,
    redirect_uri: String,
    options: &LoginOptions,
) -> Result<AuthorizationSession> {
    let metadata = client.issuer().metadata();
    let mut url = metadata.authorization_endpoint.clone().ok_or_else(|| {
        Error::new(
            ErrorKind::MissingEndpoint,
            format!(
                "the provider {} has no authorization endpoint; use the device flow or \
                 configure ProviderMetadata::authorization_endpoint",
                metadata.issuer
            ),
        )
    })?;
    let verifier = PkceVerifier::generate();
    let state = random_url_safe(24);
    let nonce = options
        .nonce
        .unwrap_or_else(|| options.scopes.contains("openid"))
        .then(|| random_url_safe(24));
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client.client_id())
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state)
            .append_pair("code_challenge", &verifier.challenge())
            .append_pair("code_challenge_method", "S256");
        if !options.scopes.is_empty() {
            query.append_pair("scope", &options.scopes.to_string());
        }
        if let Some(nonce) = &nonce {
            query.append_pair("nonce", nonce);
        }
        if let Some(hint) = &options.login_hint {
            query.append_pair("login_hint", hint);
        }
        if let Some(prompt) = &options.prompt {
            query.append_pair("prompt", prompt);
        }
        if let Some(audience) = &options.audience {
            match client.audience_parameter() {
                crate::AudienceParameter::Audience => {
                    query.append_pair("audience", audience);
                }
                crate::AudienceParameter::Resource => {
                    query.append_pair("resource", audience);
                }
                crate::AudienceParameter::Omit => {}
            }
        }
        for (name, value) in &options.params {
            query.append_pair(name, value);
        }
    }
    let audience = match client.audience_parameter() {
        crate::AudienceParameter::Omit => None,
        _ => options.audience.clone(),
    };
    Ok(AuthorizationSession {
        url,
        state,
        nonce,
        verifier,
        redirect_uri,
        scopes: options.scopes.clone(),
        audience,
        issuer: metadata.issuer.clone(),
        iss_required: metadata.authorization_response_iss_parameter_supported,
    })
}

/// One authorization request in flight: the URL to send the user to, and what checks the
/// redirect that comes back (`state`, `iss`) and redeems its code (PKCE verifier, nonce).
pub struct AuthorizationSession {
    url: Url,
    state: String,
    nonce: Option<String>,
    verifier: PkceVerifier,
    redirect_uri: String,
    scopes: Scopes,
    audience: Option<String>,
    issuer: String,
    iss_required: bool,
}

impl AuthorizationSession {
    /// The authorization URL to open in a browser.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The `state` sent; the redirect must carry it back.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The redirect URI sent.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Checks the redirect back to this program and returns its code.
    ///
    /// `redirect` is the redirect URL, or just its query. Refuses a `state` that is not
    /// this session's ([`ErrorKind::StateMismatch`]), an `iss` that is not the issuer (or a
    /// missing one where the provider promised it, RFC 9207: [`ErrorKind::IssuerMismatch`]),
    /// and reports an `error` as [`ErrorKind::OAuth`].
    pub fn code_from_redirect(&self, redirect: &str) -> Result<String> {
        let query = match Url::parse(redirect) {
            Ok(url) => url.query().unwrap_or("").to_owned(),
            Err(_) => redirect.trim_start_matches('?').to_owned(),
        };
        self.check_query(&query)
    }

    fn check_query(&self, query: &str) -> Result<String> {
        let mut state = None;
        let mut iss = None;
        let mut code = None;
        let mut error = None;
        let mut error_description = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "state" => state = Some(value.into_owned()),
                "iss" => iss = Some(value.into_owned()),
                "code" => code = Some(value.into_owned()),
                "error" => error = Some(value.into_owned()),
                "error_description" => error_description = Some(value.into_owned()),
                _ => {}
            }
        }
        if state.as_deref() != Some(self.state.as_str()) {
            return Err(Error::new(
                ErrorKind::StateMismatch,
                "the redirect's state is not the one this login sent: it belongs to another \
                 login or was forged; start the login again",
            ));
        }
        match iss {
            Some(iss) if iss != self.issuer => {
                return Err(Error::new(
                    ErrorKind::IssuerMismatch,
                    format!(
                        "the redirect comes from issuer {:?}, not from {:?} (RFC 9207 mix-up \
                         defence); start the login again",
                        printable(&iss, 200),
                        self.issuer
                    ),
                ));
            }
            None if self.iss_required => {
                return Err(Error::new(
                    ErrorKind::IssuerMismatch,
                    "the redirect has no iss parameter although the provider promises one \
                     (RFC 9207); start the login again",
                ));
            }
            _ => {}
        }
        if let Some(error) = error {
            let error = OAuthError::new(
                OAuthErrorCode::parse_untrusted(&error, &Secrets::new()),
                error_description,
            );
            return Err(Error::oauth("the authorization endpoint", error));
        }
        code.filter(|c| !c.is_empty()).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                "the redirect carries neither a code nor an error",
            )
        })
    }

    /// A pasted answer: a redirect URL (checked like [`code_from_redirect`]) or a bare code.
    /// A bare code cannot have its `state` checked; PKCE still binds it to this login.
    ///
    /// [`code_from_redirect`]: Self::code_from_redirect
    fn code_from_paste(&self, pasted: &str) -> Result<String> {
        let pasted = pasted.trim();
        if pasted.contains('=') {
            self.code_from_redirect(pasted)
        } else if !pasted.is_empty() && !pasted.contains(char::is_whitespace) {
            Ok(pasted.to_owned())
        } else {
            Err(Error::new(
                ErrorKind::InvalidInput,
                "nothing usable was pasted: paste the whole address your browser was sent to, \
                 or the code",
            ))
        }
    }
}

impl fmt::Debug for AuthorizationSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationSession")
            .field("url", &self.url.as_str())
            .field("redirect_uri", &self.redirect_uri)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

/// How the code gets back to this program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackMode {
    /// A loopback server, unless this is an SSH session (`SSH_TTY` or `SSH_CONNECTION` set,
    /// as fair-research-login checks) or no local port can be opened: then paste.
    #[default]
    Auto,
    /// Always the loopback server; fail if it cannot listen.
    Loopback,
    /// Always paste: the user copies the address the browser ended on (or the code).
    Paste,
}

/// Whether this process runs in an SSH session, where a browser (and a loopback server the
/// user's browser could reach) is elsewhere.
pub fn is_ssh_session() -> bool {
    ["SSH_TTY", "SSH_CONNECTION"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

type OpenFn = Arc<dyn Fn(&Url) -> io::Result<()> + Send + Sync>;
type PromptFn =
    Arc<dyn Fn(Url) -> Pin<Box<dyn Future<Output = io::Result<String>> + Send>> + Send + Sync>;

/// An interactive code login; [`run`](Self::run) runs it.
#[must_use = "a login does nothing until run"]
pub struct CodeLogin {
    client: OAuthClient,
    options: LoginOptions,
    mode: CallbackMode,
    no_browser: bool,
    open_with: Option<OpenFn>,
    paste_prompt: Option<PromptFn>,
    redirect_path: String,
    registered: Registered,
    paste_redirect_uri: Option<String>,
    timeout: Duration,
}

impl CodeLogin {
    login_option_setters!();

    /// How the code comes back. By default [`CallbackMode::Auto`].
    pub fn callback(mut self, mode: CallbackMode) -> Self {
        self.mode = mode;
        self
    }

    /// Do not open a browser; print the URL (to stderr) for the user to open. By default the
    /// browser is opened (with the `open` crate).
    pub fn no_browser(mut self, no_browser: bool) -> Self {
        self.no_browser = no_browser;
        self
    }

    /// Called with the authorization URL instead of opening a browser: for a GUI that shows
    /// the URL its own way, or a test that drives the provider headlessly. By default none.
    pub fn open_with(
        mut self,
        open: impl Fn(&Url) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.open_with = Some(Arc::new(open));
        self
    }

    /// Reads the pasted redirect address (or code) in paste mode; receives the URL to show.
    /// By default the URL is printed to stderr and a line is read from stdin.
    pub fn paste_prompt<F, Fut>(mut self, prompt: F) -> Self
    where
        F: Fn(Url) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<String>> + Send + 'static,
    {
        self.paste_prompt = Some(Arc::new(move |url| Box::pin(prompt(url))));
        self
    }

    /// The path of the loopback redirect URI. By default `/callback`, so the URI is
    /// `http://127.0.0.1:<port>/callback`; register `http://127.0.0.1/callback` (any port
    /// matches for native clients, RFC 8252 7.3).
    pub fn redirect_path(mut self, path: impl Into<String>) -> Self {
        self.redirect_path = path.into();
        self
    }

    /// The redirect URI registered with the provider, for a provider that accepts only that
    /// one (INDIGO IAM, CILogon clients registered without loopback wildcards), e.g.
    /// `http://127.0.0.1:8765/callback`. The loopback server listens on its port and answers
    /// at its path, and the authorization request sends it exactly as given (also in paste
    /// mode). It must be `http://127.0.0.1:<port>...` or `http://localhost:<port>...` (the
    /// server listens on 127.0.0.1 only). When its port is taken, the login fails rather
    /// than let another program receive the redirect. By default none: any free port (RFC
    /// 8252 7.3).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.registered = Registered::Uri(uri.into());
        self
    }

    /// Ports registered with the provider as `http://127.0.0.1:<port><redirect_path>`, tried
    /// in order: the login listens on the first one that is free (as oidc-agent does), and
    /// fails when none is. Paste mode sends the first one. By default none: any free port.
    /// Replaces a [`redirect_uri`](Self::redirect_uri).
    pub fn redirect_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.registered = Registered::Ports(ports.into_iter().collect());
        self
    }

    /// The redirect URI in paste mode. By default the [registered
    /// one](Self::redirect_uri) if there is one, else `http://127.0.0.1<redirect_path>` (the
    /// browser ends on a page that does not load, whose address the user copies); set it to
    /// a provider's "show the code" page where one exists.
    pub fn paste_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.paste_redirect_uri = Some(uri.into());
        self
    }

    /// How long to wait for the user (and for the redirect with this login's `state`). By
    /// default 10 minutes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the login.
    pub async fn run(self) -> Result<Token> {
        let paste = match self.mode {
            CallbackMode::Paste => true,
            CallbackMode::Loopback => false,
            CallbackMode::Auto => is_ssh_session(),
        };
        match &self.registered {
            Registered::None => {}
            Registered::Uri(uri) => {
                let (port, path) = loopback_port_and_path(uri)?;
                if !paste {
                    let server = LoopbackServer::start_on(port, &path).await.map_err(|e| {
                        Error::new(
                            ErrorKind::Io,
                            format!(
                                "cannot listen on 127.0.0.1:{port} for the registered redirect \
                                 URI {}: is another program using the port?",
                                printable(uri, 200)
                            ),
                        )
                        .with_source(e)
                    })?;
                    let uri = uri.clone();
                    return self.run_loopback(server, uri).await;
                }
            }
            Registered::Ports(ports) => {
                if ports.is_empty() || ports.contains(&0) {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "the registered redirect ports must be a list of ports from 1 to 65535",
                    ));
                }
                if !paste {
                    let mut busy = Vec::new();
                    for &port in ports {
                        match LoopbackServer::start_on(port, &self.redirect_path).await {
                            Ok(server) => {
                                let uri = format!("http://127.0.0.1:{port}{}", self.redirect_path);
                                return self.run_loopback(server, uri).await;
                            }
                            Err(e) => {
                                tracing::info!(port, error = %e, "registered redirect port not free; trying the next");
                                busy.push(port.to_string());
                            }
                        }
                    }
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "none of the registered redirect ports ({}) is free on 127.0.0.1; \
                             stop what uses one, or register another port with the provider",
                            busy.join(", ")
                        ),
                    ));
                }
            }
        }
        if !paste {
            match LoopbackServer::start(&self.redirect_path).await {
                Ok(server) => {
                    let uri = server.redirect_uri();
                    return self.run_loopback(server, uri).await;
                }
                Err(e) if self.mode == CallbackMode::Loopback => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        "cannot listen on 127.0.0.1 for the login's redirect",
                    )
                    .with_source(e));
                }
                Err(e) => {
                    tracing::info!(error = %e, "no loopback server possible; falling back to paste");
                }
            }
        }
        self.run_paste().await
    }

    async fn run_loopback(self, mut server: LoopbackServer, redirect_uri: String) -> Result<Token> {
        let session = build_session(&self.client, redirect_uri, &self.options)?;
        self.open(session.url())?;
        let wait = async {
            loop {
                let callback = server.next().await.ok_or_else(|| {
                    Error::new(ErrorKind::Io, "the loopback redirect server stopped")
                })?;
                let result = match session.check_query(callback.query.expose_secret()) {
                    // Anything on this machine can send a redirect here (a port scan, another
                    // login's browser tab); one without this login's state must not end it.
                    Err(e) if e.kind() == &ErrorKind::StateMismatch => {
                        tracing::info!(
                            "a redirect with another state reached the loopback server; ignored"
                        );
                        let _ = callback.respond.send(Page::Ignored);
                        continue;
                    }
                    Ok(code) => self.client.redeem_code(&session, &code).await,
                    Err(e) => Err(e),
                };
                let page = match &result {
                    Ok(_) => Page::Success,
                    Err(e) => Page::Failure(e.to_string()),
                };
                // The browser may be gone already; nothing to do then.
                let _ = callback.respond.send(page);
                return result;
            }
        };
        tokio::time::timeout(self.timeout, wait)
            .await
            .unwrap_or_else(|_| Err(self.timed_out()))
    }

    async fn run_paste(self) -> Result<Token> {
        let redirect_uri = match (&self.paste_redirect_uri, &self.registered) {
            (Some(uri), _) => uri.clone(),
            (None, Registered::Uri(uri)) => uri.clone(),
            (None, Registered::Ports(ports)) => {
                format!("http://127.0.0.1:{}{}", ports[0], self.redirect_path)
            }
            (None, Registered::None) => format!("http://127.0.0.1{}", self.redirect_path),
        };
        let session = build_session(&self.client, redirect_uri, &self.options)?;
        if self.open_with.is_some() || (!self.no_browser && !is_ssh_session()) {
            // Best effort: the prompt shows the URL as well.
            let _ = self.open(session.url());
        }
        let prompt = self
            .paste_prompt
            .clone()
            .unwrap_or_else(|| Arc::new(|url| Box::pin(read_pasted_line(url))));
        let pasted = tokio::time::timeout(self.timeout, prompt(session.url().clone()))
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|e| Error::new(ErrorKind::Io, "cannot read the pasted code").with_source(e))?;
        let code = session.code_from_paste(&pasted)?;
        self.client.redeem_code(&session, &code).await
    }

    fn open(&self, url: &Url) -> Result<()> {
        if let Some(open) = &self.open_with {
            return open(url).map_err(|e| {
                Error::new(ErrorKind::Io, "cannot show the authorization URL").with_source(e)
            });
        }
        if self.no_browser {
            eprintln!("To log in, open this URL in a browser:\n\n    {url}\n");
            return Ok(());
        }
        if let Err(e) = open::that_detached(url.as_str()) {
            tracing::info!(error = %e, "cannot open a browser");
            eprintln!("Could not open a browser. To log in, open this URL:\n\n    {url}\n");
        }
        Ok(())
    }

    fn timed_out(&self) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "the login was not finished within {} s; start it again",
                self.timeout.as_secs()
            ),
        )
    }
}

/// The default paste prompt: the URL on stderr, one line from stdin.
///
/// A line read from stdin cannot be interrupted, so after a timeout the reading thread stays
/// until the next line or EOF; the login itself has returned by then.
async fn read_pasted_line(url: Url) -> io::Result<String> {
    use tokio::io::AsyncBufReadExt as _;
    eprintln!(
        "To log in, open this URL in a browser:\n\n    {url}\n\n\
         After logging in, the browser is sent to an address that may not load.\n\
         Paste that whole address (or just the code) here and press Enter:"
    );
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await?;
    Ok(line)
}

impl fmt::Debug for CodeLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeLogin")
            .field("client", &self.client)
            .field("options", &self.options)
            .field("mode", &self.mode)
            .field("no_browser", &self.no_browser)
            .field("redirect_path", &self.redirect_path)
            .field("registered", &self.registered)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_redirect_uris_must_be_loopback_with_a_port() {
        assert_eq!(
            loopback_port_and_path("http://127.0.0.1:8765/callback").unwrap(),
            (8765, "/callback".to_owned())
        );
        assert_eq!(
            loopback_port_and_path("http://localhost:4242").unwrap(),
            (4242, "/".to_owned())
        );
        for bad in [
            "https://127.0.0.1:8765/callback",
            "http://0.0.0.0:8765/callback",
            "http://[::1]:8765/callback",
            "http://idp.example.org:8765/callback",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:8765/callback?x=1",
            "http://127.0.0.1:8765/callback#x",
            "http://user@127.0.0.1:8765/callback",
            "not a url \u{1b}[2J",
        ] {
            let error = loopback_port_and_path(bad).unwrap_err();
            assert_eq!(error.kind(), &ErrorKind::InvalidInput, "{bad}");
            assert!(!error.to_string().contains('\u{1b}'), "{error}");
        }
    }
}
