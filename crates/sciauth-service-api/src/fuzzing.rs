//! Entry points for the fuzz targets (`crates/sciauth-fuzz`, `fuzz/`), behind the cargo
//! feature `fuzzing`; not an API.

use std::time::Duration;

use sciauth_credentials::text::{is_printable, printable};
use sciauth_credentials::time::{from_unix, later};
use sciauth_transport::StatusCode;
use secrecy::ExposeSecret as _;

use crate::client::{check_service_token, refusal};
use crate::wire::{DeleteTokenResponse, ErrorBody, Ping, ServiceToken, StoredTokenInfo, WhoAmI};

/// An answer of the token service as `TokenServiceClient` reads it: a `getToken` token
/// (`check_service_token`, then its expiry from the client's clock: a token that passes is
/// visible ASCII, and `Debug` never shows it), every other method's answer, and an error body
/// made into the client's error (`refusal`: what it shows is printable).
pub fn answer(data: &[u8]) {
    if let Ok(token) = serde_json::from_slice::<ServiceToken>(data) {
        if check_service_token(&token).is_ok() {
            let value = token.access_token.expose_secret();
            assert!(
                value.bytes().all(|b| (0x21..=0x7e).contains(&b)),
                "a service token passed with bytes a header cannot carry"
            );
            if value.len() >= 8 {
                assert!(
                    !format!("{token:?}").contains(value),
                    "Debug of a service token shows the token"
                );
            }
        }
        let received = from_unix(1_700_000_000);
        let _ = token
            .expires_in
            .map(|s| later(received, Duration::from_secs(s)));
    }
    let _ = serde_json::from_slice::<Vec<StoredTokenInfo>>(data);
    let _ = serde_json::from_slice::<DeleteTokenResponse>(data);
    let _ = serde_json::from_slice::<WhoAmI>(data);
    let _ = serde_json::from_slice::<Ping>(data);
    let body = serde_json::from_slice::<ErrorBody>(data).ok();
    let error = refusal("getToken", StatusCode::FORBIDDEN, body, printable);
    let shown = error.to_string();
    assert!(
        shown.chars().all(is_printable),
        "a refusal shows unprintable text: {shown:?}"
    );
    let _ = (error.code(), error.status(), format!("{error:?}"));
}
