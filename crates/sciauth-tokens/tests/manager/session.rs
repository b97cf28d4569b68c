//! Login, update, logout, delete: what the store keeps and what the provider is told.

use std::sync::Arc;

use sciauth_tokens::sciauth_credentials::ManualClock;
use sciauth_tokens::{ErrorKind, OAuthErrorCode, TokenRequest};
use secrecy::ExposeSecret as _;

use crate::idp::Idp;
use crate::{issuer, login, manager, native_app};

#[tokio::test]
async fn logout_revokes_at_the_provider_and_deletes_locally() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    let token = login(&manager, &request, &[]).await;
    assert_eq!(manager.list().await.unwrap().len(), 1);

    let logout = manager.logout(&request).await.unwrap();
    assert!(logout.found() && logout.revoked(), "{logout:?}");
    assert_eq!(idp.counts().await["revocation"], 1);
    assert!(manager.list().await.unwrap().is_empty());
    assert!(!dir.path().join("alice.json").exists());

    // The provider refuses the refresh token now.
    let client = native_app(&issuer(idp.issuer(), clock).await);
    let error = client
        .refresh_with(token.refresh_token().unwrap().clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidGrant)
    );
    let error = manager.get(&request).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::NoSavedTokens);

    // Nothing to log out: not an error.
    let again = manager.logout(&request).await.unwrap();
    assert!(!again.found() && !again.revoked());
}

#[tokio::test]
async fn logout_deletes_even_when_the_provider_is_unreachable_and_says_so() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    login(&manager, &request, &[]).await;

    idp.stop().await;
    let logout = manager.logout(&request).await.unwrap();
    assert!(logout.found());
    assert!(!logout.revoked());
    let error = logout.revocation_error().unwrap();
    assert_eq!(error.kind(), &ErrorKind::Transport, "{error}");
    assert!(manager.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn update_keeps_one_grant_per_account_and_revokes_the_replaced_refresh_token() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    let first = login(&manager, &request, &[]).await;

    // A second login of the same account, handed over DIRAC-style.
    let client = native_app(&issuer(idp.issuer(), clock).await);
    let second = client
        .code_login()
        .scopes(["openid", "offline_access"])
        .prompt("consent")
        .callback(sciauth_tokens::CallbackMode::Loopback)
        .open_with(crate::headless())
        .run()
        .await
        .unwrap();
    idp.reset_counts().await;
    manager.update(&request, second.clone()).await.unwrap();
    assert_eq!(idp.counts().await["revocation"], 1);
    let stored = manager.stored(&request).await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token().unwrap().expose_secret(),
        second.refresh_token().unwrap().expose_secret()
    );
    assert_eq!(manager.list().await.unwrap().len(), 1);
    // The replaced refresh token is dead, the new one works.
    let error = client.refresh(&first).send().await.unwrap_err();
    assert_eq!(
        error.kind(),
        &ErrorKind::OAuth(OAuthErrorCode::InvalidGrant)
    );

    // A token without a refresh token is refused.
    let service = sciauth_tokens::OAuthClient::builder(client.issuer().clone(), "cc-basic")
        .auth(sciauth_tokens::ClientAuth::secret_basic("cc-basic-secret"))
        .build();
    let no_refresh = service.client_credentials().send().await.unwrap();
    let service_manager = sciauth_tokens::TokenManager::builder(sciauth_tokens::MemoryStore::new())
        .client(service)
        .build();
    let error = service_manager
        .update(&TokenRequest::new("svc"), no_refresh)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidInput, "{error}");

    // DIRAC's deleteToken: gone locally, nothing told to the provider.
    idp.reset_counts().await;
    assert!(manager.delete(&request).await.unwrap());
    assert!(!manager.delete(&request).await.unwrap());
    assert_eq!(idp.counts().await["revocation"], 0);
}

#[tokio::test]
async fn client_credentials_tokens_are_fetched_stored_and_reused() {
    let idp = Idp::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let issuer = issuer(idp.issuer(), clock.clone()).await;
    let service = sciauth_tokens::OAuthClient::builder(issuer, "cc-basic")
        .auth(sciauth_tokens::ClientAuth::secret_basic("cc-basic-secret"))
        .audience_parameter(sciauth_tokens::AudienceParameter::Resource)
        .build();
    let manager = sciauth_tokens::TokenManager::builder(sciauth_tokens::MemoryStore::new())
        .client(sciauth_tokens::ClientConfig::new(service).client_credentials(true))
        .build();
    let request = TokenRequest::new("pilots")
        .scopes(["api:read"])
        .audience(crate::API);
    let first = manager.get(&request).await.unwrap();
    assert_eq!(
        crate::claims(first.access_token().expose_secret())["aud"],
        crate::API
    );
    let again = manager.get(&request).await.unwrap();
    assert_eq!(
        first.access_token().expose_secret(),
        again.access_token().expose_secret()
    );
    assert_eq!(idp.counts().await["requests"]["client_credentials"], 1);
    clock.advance(crate::AT_TTL);
    let renewed = manager.get(&request).await.unwrap();
    assert_ne!(
        first.access_token().expose_secret(),
        renewed.access_token().expose_secret()
    );
    assert_eq!(idp.counts().await["requests"]["client_credentials"], 2);
}

#[tokio::test]
async fn a_refresh_token_the_provider_no_longer_accepts_means_tokens_expired_and_is_kept() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let manager = manager(idp.issuer(), dir.path(), clock.clone()).await;
    let request = TokenRequest::new("alice").scopes(["openid", "offline_access"]);
    let token = login(&manager, &request, &[]).await;
    // Revoked behind the manager's back (another tool, an administrator).
    let client = native_app(&issuer(idp.issuer(), clock.clone()).await);
    client.revoke_token(&token).await.unwrap();

    clock.advance(crate::AT_TTL);
    let error = manager.get(&request).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::TokensExpired, "{error}");
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
    assert!(error.to_string().contains("log in again"), "{error}");
    assert!(
        !error
            .to_string()
            .contains(token.refresh_token().unwrap().expose_secret())
    );
    assert!(error.needs_login() && !error.is_refused(), "{error:?}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));

    // The same failure under a request that carries the manager as its credential: the
    // transport's error answers as the token error underneath does, status included.
    let transport = crate::transport().with_credential(manager.credential(request.clone()));
    let through = transport
        .get(&format!(
            "{}/.well-known/openid-configuration",
            idp.issuer()
        ))
        .send()
        .await
        .unwrap_err();
    assert!(through.needs_login(), "{through:?}");
    assert!(!through.is_network() && !through.is_refused() && !through.is_bad_input());
    assert_eq!(
        through.status().map(|s| s.as_u16()),
        Some(400),
        "{through:?}"
    );

    // Nothing is dropped: the grant stays until a login replaces it or a logout ends it.
    let stored = manager.stored(&request).await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token().unwrap().expose_secret(),
        token.refresh_token().unwrap().expose_secret()
    );
}

#[tokio::test]
async fn a_grant_without_refresh_token_gets_other_audiences_by_token_exchange() {
    let idp = Idp::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let issuer = issuer(idp.issuer(), clock.clone()).await;
    let service = sciauth_tokens::OAuthClient::builder(issuer, "cc-basic")
        .auth(sciauth_tokens::ClientAuth::secret_basic("cc-basic-secret"))
        .audience_parameter(sciauth_tokens::AudienceParameter::Resource)
        .build();
    let own = service.client_credentials().send().await.unwrap();
    let manager = sciauth_tokens::TokenManager::builder(sciauth_tokens::MemoryStore::new())
        .client(sciauth_tokens::ClientConfig::new(service).token_exchange(true))
        .build();
    let account = TokenRequest::new("svc");
    manager.save(&account, own.clone()).await.unwrap();

    let other = account
        .clone()
        .scopes(["other:read"])
        .audience(crate::OTHER);
    let exchanged = manager.get(&other).await.unwrap();
    assert_eq!(
        crate::claims(exchanged.access_token().expose_secret())["aud"],
        "other-api"
    );
    let counts = idp.counts().await;
    assert_eq!(
        counts["success"]["urn:ietf:params:oauth:grant-type:token-exchange"], 1,
        "{counts}"
    );
    // Stored beside the original: asked again, no new exchange.
    let again = manager.get(&other).await.unwrap();
    assert_eq!(
        again.access_token().expose_secret(),
        exchanged.access_token().expose_secret()
    );
    let own_again = manager.get(&account).await.unwrap();
    assert_eq!(
        own_again.access_token().expose_secret(),
        own.access_token().expose_secret()
    );
    assert_eq!(
        idp.counts().await["requests"]["urn:ietf:params:oauth:grant-type:token-exchange"],
        1
    );
}
