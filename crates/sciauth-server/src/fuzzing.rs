//! Entry points for the fuzz targets (`crates/sciauth-fuzz`, `fuzz/`), behind the cargo
//! feature `fuzzing`; not an API.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sciauth_service_api::{
    DeleteTokenRequest, GetTokenRequest, UpdateTokenRequest, UserIdRequest, UsersRequest,
};
use sciauth_tokens::sciauth_credentials::{Clock, ManualClock};
use sciauth_tokens::sciauth_transport::Transport;
use sciauth_tokens::url::Url;
use sciauth_tokens::{DEFAULT_MIN_VALID, Issuer, OAuthClient, ProviderMetadata};
use serde::de::DeserializeOwned;

use crate::api::ApiError;
use crate::http::{NoParameters, parse_json};

/// A request body of the token service (`http::parse_json`, what every method's handler
/// reads), parsed as each method's request; then what the service does first with the
/// values: `requiredTimeLeft` as a duration, and `updateToken`'s token response read as a
/// token (`service::delegated_token`) by a client of a fixed provider. Every refusal must
/// be a 4xx: nothing a caller sends may cause a 500.
pub fn request_body(data: &[u8]) {
    if let Some(request) = parse::<GetTokenRequest>(data) {
        let _ = DEFAULT_MIN_VALID.max(Duration::from_secs(request.required_time_left));
    }
    if let Some(request) = parse::<UpdateTokenRequest>(data) {
        match crate::service::delegated_token(client(), request.token, request.rt_expired_in) {
            Ok(token) => {
                let _ = (
                    token.lifetime(),
                    token.refresh_expires_at(),
                    format!("{token:?}"),
                );
            }
            Err(error) => refused(&error),
        }
    }
    let _ = parse::<DeleteTokenRequest>(data);
    let _ = parse::<UserIdRequest>(data);
    let _ = parse::<UsersRequest>(data);
    let _ = parse::<NoParameters>(data);
}

fn parse<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    parse_json::<T>(data).map_err(|error| refused(&error)).ok()
}

fn refused(error: &ApiError) {
    assert!(
        error.status.is_client_error(),
        "a request body caused HTTP {}",
        error.status
    );
    let _ = serde_json::to_string(&error.body());
}

/// A client of a fixed provider, on a fixed clock.
fn client() -> &'static OAuthClient {
    static CLIENT: OnceLock<OAuthClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let issuer = "https://idp.example.org";
        let token_endpoint = Url::parse("https://idp.example.org/token").expect("a fixed URL");
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_unix(1_700_000_000));
        let transport = Transport::builder()
            .follow_redirects(false)
            .build()
            .expect("the transport");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        let issuer = runtime
            .block_on(
                Issuer::builder(issuer)
                    .metadata(ProviderMetadata::new(issuer, token_endpoint))
                    .transport(transport)
                    .clock(clock)
                    .build(),
            )
            .expect("the fixed issuer");
        OAuthClient::builder(issuer, "fuzz-client").build()
    })
}

/// The service's TOML configuration (`Config::parse`, what `sciauth serve --config` and a
/// SIGHUP reload read), relative to a directory that does not exist and with an empty
/// environment: a refusal is an error whose text is printable, never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = std::path::Path::new("/nonexistent/sciauth-fuzz");
    match crate::config::Config::parse(text, base, &|_| None) {
        Ok(config) => {
            let _ = (
                config.listen(),
                config.metrics_listen(),
                format!("{config:?}"),
            );
        }
        Err(error) => {
            let shown = error.to_string();
            assert!(
                shown.chars().all(sciauth_credentials::text::is_printable),
                "a configuration error shows unprintable text: {shown:?}"
            );
        }
    }
}
