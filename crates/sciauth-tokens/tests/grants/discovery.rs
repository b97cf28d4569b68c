//! Discovery, the issuer check, and explicit endpoints.

use sciauth_tokens::{ClientAuth, ErrorKind, Issuer, OAuthClient, ProviderMetadata};

use crate::idp::Idp;
use crate::{issuer, transport};

#[tokio::test]
async fn discovery_finds_every_endpoint() {
    let idp = Idp::start().await;
    let issuer = issuer(&idp).await;
    let m = issuer.metadata();
    assert_eq!(issuer.issuer(), idp.issuer());
    let at = |path: &str| format!("{}{path}", idp.issuer());
    assert_eq!(m.token_endpoint.as_str(), at("/token"));
    assert_eq!(
        m.authorization_endpoint.as_ref().unwrap().as_str(),
        at("/auth")
    );
    assert_eq!(
        m.device_authorization_endpoint.as_ref().unwrap().as_str(),
        at("/device/auth")
    );
    assert_eq!(
        m.revocation_endpoint.as_ref().unwrap().as_str(),
        at("/token/revocation")
    );
    assert_eq!(
        m.introspection_endpoint.as_ref().unwrap().as_str(),
        at("/token/introspection")
    );
    assert_eq!(m.jwks_uri.as_ref().unwrap().as_str(), at("/jwks"));
    assert_eq!(m.code_challenge_methods_supported, ["S256"]);
}

#[tokio::test]
async fn a_trailing_slash_the_provider_does_not_use_is_refused_with_a_hint() {
    let idp = Idp::start().await;
    let error = Issuer::builder(format!("{}/", idp.issuer()))
        .transport(transport())
        .build()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Discovery);
    assert!(error.to_string().contains("trailing slash"), "{error}");
}

#[tokio::test]
async fn explicit_endpoints_work_without_discovery() {
    let idp = Idp::start().await;
    let metadata = ProviderMetadata::new(
        idp.issuer(),
        format!("{}/token", idp.issuer()).parse().unwrap(),
    );
    let issuer = Issuer::builder(idp.issuer())
        .transport(transport())
        .metadata(metadata)
        .build()
        .await
        .unwrap();
    let client = OAuthClient::builder(issuer, "cc-post")
        .auth(ClientAuth::secret_post("cc-post-secret"))
        .build();
    let token = client.client_credentials().send().await.unwrap();
    assert_eq!(token.token_type(), "Bearer");
    // The token request went to the configured endpoint.
    assert_eq!(idp.counts().await["requests"]["client_credentials"], 1);
    // And the endpoints it was not told about are reported as missing.
    let error = client.device_login().start().await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::MissingEndpoint);
}
