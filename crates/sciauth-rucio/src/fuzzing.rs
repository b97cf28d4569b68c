//! Entry points for the fuzz targets (`crates/sciauth-fuzz`, `fuzz/`), behind the cargo
//! feature `fuzzing`; not an API.

use sciauth_transport::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::RucioException;
use crate::login::{LoginTarget, answer_to_token};

/// An auth server's answer to a login, as every userpass, ssh, x509 and x509_proxy login
/// reads it: a 2xx through `login::answer_to_token` (the token and
/// `X-Rucio-Auth-Token-Expires`, or the 206 list of accounts), anything else through
/// `RucioException::from_response` (Rucio's exception from the JSON body or the headers).
///
/// `data` is an answer as it arrives, less the protocol: a first line with the status code,
/// header lines (`Name: value`), an empty line, the body. Lines end with `\n` (a `\r`
/// before it is dropped); header lines HTTP could not carry are skipped.
pub fn login_answer(data: &[u8]) {
    let (status, headers, body) = split_answer(data);
    if !status.is_success() {
        // An error answer: what `Error::from_answer` reads before masking and escaping.
        if let Some(exception) = RucioException::from_response(&headers, body) {
            let _ = (
                exception.to_string(),
                exception.class(),
                exception.message(),
            );
        }
        return;
    }
    let target = LoginTarget {
        host: "https://rucio-auth.example.org",
        account: Some("alice"),
        vo: Some("def"),
    };
    let now = sciauth_credentials::time::from_unix(1_700_000_000);
    for auth_type in ["userpass", "x509"] {
        match answer_to_token(status, &headers, body, &target, now, auth_type) {
            Ok(token) => {
                let _ = (token.expires_at, &token.account, format!("{token:?}"));
            }
            Err(error) => {
                let _ = (error.to_string(), format!("{error:?}"), error.kind());
                let _ = (error.rucio_exception(), error.accounts());
            }
        }
    }
}

fn split_answer(data: &[u8]) -> (StatusCode, HeaderMap, &[u8]) {
    let mut rest = data;
    let mut next_line = || {
        let end = rest.iter().position(|&b| b == b'\n')?;
        let line = &rest[..end];
        rest = &rest[end + 1..];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    };
    let status = next_line()
        .and_then(|line| StatusCode::from_bytes(line.trim_ascii()).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    while let Some(line) = next_line() {
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    (status, headers, rest)
}

/// The token files shared with the Rucio client and `/auth/validate`'s answer: the same
/// bytes read as sciauth's private cache file (`TokenCache::read`; a session that reads
/// back must read back the same when written), as the Rucio client's token file
/// (`parse_shared_token`: a token that passes is one line of visible ASCII) and as the body
/// of `/auth/validate` (`parse_validation`: an account that passes is a Rucio account name).
pub fn token_cache(data: &[u8]) {
    crate::cache::fuzz_cache_file(data);
    if let Ok(token) = crate::cache::parse_shared_token(data) {
        use secrecy::ExposeSecret as _;
        let token = token.expose_secret();
        assert!(
            !token.is_empty() && token.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "a shared token file passed with bytes a header cannot carry"
        );
    }
    if let Some(validation) = crate::login::parse_validation(data) {
        assert!(
            (1..=64).contains(&validation.account.len())
                && validation
                    .account
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')),
            "/auth/validate passed an account that is no Rucio account name"
        );
        let _ = sciauth_credentials::time::unix_seconds(validation.lifetime);
    }
}
