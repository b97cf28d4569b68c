//! `NativeClient` against the real identity provider (`tests/idp`, oidc-provider): device
//! and browser logins driven headlessly, tokens loaded from the store, authorizers, logout.

use sciauth_test_support::idp;

use sciauth_tokens::native::{Authorizer, LoginOptions, NativeClient};
use sciauth_tokens::sciauth_credentials::Credential as _;
use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::secrecy::ExposeSecret as _;
use sciauth_tokens::{ErrorKind, FileStore, OAuthErrorCode};

use crate::idp::Idp;

fn client(idp: &Idp, store: &std::path::Path) -> NativeClient {
    NativeClient::builder(idp.issuer(), "native-app")
        .app_name("native-test")
        .store(FileStore::open(store).unwrap())
        .transport(
            Transport::builder()
                .follow_redirects(false)
                .proxy_from_env(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Device-flow options whose code is approved at the provider as soon as it is shown.
fn approved_device_login(issuer: &str) -> LoginOptions {
    let issuer = issuer.to_owned();
    LoginOptions::new().device(true).on_user_code(move |code| {
        let (issuer, user_code) = (issuer.clone(), code.user_code().to_owned());
        tokio::spawn(async move { idp::device_approve(&issuer, &user_code, None).await });
    })
}

async fn count(idp: &Idp, field: &str) -> u64 {
    idp.counts().await[field].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn login_load_authorize_and_logout_like_fair_research_login() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let native = client(&idp, dir.path());

    // Nothing stored yet: the LoadError group, and no request to the provider.
    let error = native.load_tokens(["openid"]).await.unwrap_err();
    assert!(error.needs_login(), "{error}");
    assert_eq!(error.kind(), &ErrorKind::NoSavedTokens);
    assert_eq!(count(&idp, "device_authorization").await, 0);

    let token = native
        .login(
            approved_device_login(idp.issuer())
                .scopes(["openid", "profile"])
                .refresh_tokens(true),
        )
        .await
        .unwrap();
    assert!(token.refresh_token().is_some());
    assert!(dir.path().join("native-test.json").exists());

    // Stored tokens serve what the login covered, without the provider.
    idp.reset_counts().await;
    let loaded = native.load_tokens(["openid"]).await.unwrap();
    assert_eq!(
        loaded.access_token().expose_secret(),
        token.access_token().expose_secret()
    );
    let by_scope = native
        .load_tokens_by_scope(["openid", "profile"])
        .await
        .unwrap();
    assert_eq!(by_scope.keys().collect::<Vec<_>>(), ["openid", "profile"]);
    let error = native.load_tokens(["email"]).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::ScopesMismatch, "{error}");
    assert!(error.needs_login());

    // login() without force returns what is stored.
    let again = native
        .login(LoginOptions::new().scopes(["openid"]))
        .await
        .unwrap();
    assert_eq!(
        again.access_token().expose_secret(),
        token.access_token().expose_secret()
    );
    assert_eq!(count(&idp, "device_authorization").await, 0);
    assert_eq!(count(&idp, "authorization").await, 0);

    // A refresh token makes a refreshing authorizer.
    let authorizer = native.get_authorizers(["openid"]).await.unwrap();
    assert!(
        matches!(authorizer, Authorizer::Refreshing(_)),
        "{authorizer:?}"
    );
    let header = authorizer.header().await.unwrap().unwrap();
    assert_eq!(
        header.value().to_str().unwrap(),
        format!("Bearer {}", token.access_token().expose_secret())
    );
    assert!(!format!("{authorizer:?}").contains(token.access_token().expose_secret()));

    // force: a browser login (loopback redirect, driven headlessly) replaces the grant.
    let forced = native
        .login(
            LoginOptions::new()
                .scopes(["openid"])
                .refresh_tokens(true)
                .force(true)
                .open_with(|url| {
                    let url = url.to_string();
                    tokio::spawn(async move {
                        let (status, body) = idp::browser_login(&url).await;
                        assert_eq!(status, 200, "{body}");
                    });
                    Ok(())
                }),
        )
        .await
        .unwrap();
    assert_eq!(count(&idp, "authorization").await, 1);
    assert_ne!(
        forced.access_token().expose_secret(),
        token.access_token().expose_secret()
    );

    // logout revokes at the provider and deletes: the refresh token is dead.
    let logout = native.logout().await.unwrap();
    assert!(logout.found() && logout.revoked(), "{logout:?}");
    let refused = native
        .oauth_client()
        .await
        .unwrap()
        .refresh(&forced)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidGrant)
    );
    let error = native.load_tokens(Vec::<String>::new()).await.unwrap_err();
    assert!(error.needs_login(), "{error}");
}

#[tokio::test]
async fn without_a_refresh_token_the_authorizer_is_the_access_token() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let native = client(&idp, dir.path());
    let token = native
        .login(approved_device_login(idp.issuer()).scopes(["openid"]))
        .await
        .unwrap();
    assert!(token.refresh_token().is_none());
    let authorizer = native.get_authorizers(Vec::<String>::new()).await.unwrap();
    assert!(
        matches!(authorizer, Authorizer::AccessToken(_)),
        "{authorizer:?}"
    );
    let header = authorizer.header().await.unwrap().unwrap();
    assert_eq!(
        header.value().to_str().unwrap(),
        format!("Bearer {}", token.access_token().expose_secret())
    );
}
