//! Unit tests for the parts that need no server.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use url::Url;

use crate::error::{Error, ErrorKind, redact_serde_message, redacted_url};
use crate::preferences::Preferences;
use crate::response::SentSecrets;
use crate::retry::{backoff, random_index, retry_after};
use crate::tls::is_certificate_file_name;

#[test]
fn preferences_header_has_the_java_clients_order() {
    let preferences = Preferences::new()
        .role("user")
        .supplementary_groups(["a", "b"])
        .group("g")
        .uid("x");
    let value = preferences.header_value().unwrap().unwrap();
    assert_eq!(value, "uid:x,group:g,supgids:a+b,role:user");
    assert_eq!(Preferences::new().header_value().unwrap(), None);
}

#[test]
fn preferences_parse_accepts_aliases_and_any_case() {
    let parsed = Preferences::parse(" XLOGIN:x , pgid:g,supplementaryGroups:a+b, Role:r ").unwrap();
    assert_eq!(
        parsed,
        Preferences::new()
            .uid("x")
            .group("g")
            .supplementary_groups(["a", "b"])
            .role("r")
    );
    assert_eq!(parsed.to_string().parse::<Preferences>().unwrap(), parsed);
    assert_eq!(Preferences::parse("").unwrap(), Preferences::default());
}

#[test]
fn preferences_the_server_cannot_parse_are_refused() {
    let cases = [
        Preferences::new().uid("a,b"),
        Preferences::new().group("a:b"),
        Preferences::new().supplementary_group("a+b"),
        Preferences::new().role("a b"),
        Preferences::new().uid("a\nb"),
        Preferences::new().uid("ä"),
        Preferences::new().uid(""),
    ];
    for preferences in cases {
        let error = preferences.header_value().unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidPreference,
            "{preferences:?}"
        );
    }
    let error = Preferences::new().uid("a,b").header_value().unwrap_err();
    assert!(error.to_string().contains("','"), "{error}");
    for text in [
        "uid",
        "uid:a:b",
        "vo:x",
        "uid:a,uid:b",
        "supgids:a,supgids:b",
        "uid:",
    ] {
        let error = Preferences::parse(text).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidPreference, "{text}");
    }
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let mut headers = HeaderMap::new();
    assert_eq!(retry_after(&headers), None);
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    let later = SystemTime::now() + Duration::from_secs(100);
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::try_from(httpdate::fmt_http_date(later)).unwrap(),
    );
    let wait = retry_after(&headers).unwrap();
    assert!(
        wait > Duration::from_secs(90) && wait <= Duration::from_secs(100),
        "{wait:?}"
    );
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    assert_eq!(retry_after(&headers), Some(Duration::ZERO));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
    assert_eq!(retry_after(&headers), None);
}

#[test]
fn backoff_grows_and_stays_bounded() {
    for retry in 0..40 {
        let delay = backoff(retry);
        let full = Duration::from_millis(200)
            .saturating_mul(1 << retry.min(16))
            .min(Duration::from_secs(10));
        assert!(delay >= full / 2 && delay <= full, "{retry}: {delay:?}");
    }
    for _ in 0..1000 {
        assert!(random_index(3) < 3);
    }
}

#[test]
fn status_errors_show_the_server_message_but_not_the_query() {
    let url = Url::parse("https://user:pw@host/path?token=secret#frag").unwrap();
    let body = br#"{"error":"invalid_grant","error_description":"refresh token expired"}"#;
    let error = Error::from_status(
        &Method::POST,
        &url,
        StatusCode::BAD_REQUEST,
        body,
        &SentSecrets::default(),
    );
    assert_eq!(
        error.to_string(),
        "POST https://host/path: HTTP 400 Bad Request: invalid_grant: refresh token expired"
    );
    assert_eq!(
        error.server_message(),
        Some("invalid_grant: refresh token expired")
    );
    assert_eq!(error.url().unwrap().as_str(), "https://host/path");
    assert!(!format!("{error:?}").contains("secret"));

    let unicore = br#"{"errorMessage":"Access denied","status":403}"#;
    let error = Error::from_status(
        &Method::GET,
        &url,
        StatusCode::FORBIDDEN,
        unicore,
        &SentSecrets::default(),
    );
    assert_eq!(error.server_message(), Some("Access denied"));

    let rucio = br#"{"ExceptionClass":"CannotAuthenticate","ExceptionMessage":"no token"}"#;
    let error = Error::from_status(
        &Method::GET,
        &url,
        StatusCode::UNAUTHORIZED,
        rucio,
        &SentSecrets::default(),
    );
    assert_eq!(error.server_message(), Some("CannotAuthenticate: no token"));

    let big = vec![b'x'; 10_000];
    let error = Error::from_status(
        &Method::GET,
        &url,
        StatusCode::BAD_GATEWAY,
        &big,
        &SentSecrets::default(),
    );
    assert_eq!(error.body().unwrap().len(), 4096);
    assert_eq!(error.server_message(), None);
    assert_eq!(
        error.to_string(),
        "GET https://host/path: HTTP 502 Bad Gateway"
    );
}

#[test]
fn status_errors_mask_the_credentials_a_server_echoes() {
    let url = Url::parse("https://host/path").unwrap();
    let mut sensitive = HeaderValue::from_static("session=c00kie-value");
    sensitive.set_sensitive(true);
    let sent = SentSecrets {
        // Basic base64("alice:hunter2-pw")
        credential: Some(HeaderValue::from_static("Basic YWxpY2U6aHVudGVyMi1wdw==")),
        sensitive: vec![sensitive],
    };
    let body = "{\"message\":\"bad Basic YWxpY2U6aHVudGVyMi1wdw== (hunter2-pw) \
                session=c00kie-value\\u001b[2J\"}";
    let error = Error::from_status(
        &Method::GET,
        &url,
        StatusCode::FORBIDDEN,
        body.as_bytes(),
        &sent,
    );
    let shown = format!("{error} {error:?} {}", error.body().unwrap());
    for secret in [
        "YWxpY2U6aHVudGVyMi1wdw",
        "hunter2-pw",
        "c00kie-value",
        "\u{1b}",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert_eq!(
        error.server_message(),
        Some("bad [redacted] ([redacted]) [redacted]\\x1b[2J")
    );
    // A secret across the 4 KiB cut leaves no prefix behind.
    let token = "Bearer abcdefghijklmnopqrstuvwxyz0123456789";
    let sent = SentSecrets {
        credential: Some(HeaderValue::from_static(token)),
        sensitive: Vec::new(),
    };
    let mut body = vec![b'x'; 4090];
    body.extend_from_slice(&token.as_bytes()[7..]);
    let error = Error::from_status(&Method::GET, &url, StatusCode::FORBIDDEN, &body, &sent);
    assert!(
        !error.body().unwrap().contains("abcdef"),
        "{:?}",
        error.body()
    );
}

#[test]
fn serde_messages_do_not_repeat_values() {
    let message = r#"invalid type: string "eyJ\"secret", expected u64 at line 1 column 9"#;
    assert_eq!(
        redact_serde_message(message),
        "invalid type: string (value not shown), expected u64 at line 1 column 9"
    );
    assert_eq!(
        redact_serde_message("missing field `x`"),
        "missing field `x`"
    );
}

#[test]
fn redacted_urls_lose_query_fragment_and_user_info() {
    let url = Url::parse("http://a:b@h:8080/p/q?x=1#y").unwrap();
    assert_eq!(redacted_url(&url).as_str(), "http://h:8080/p/q");
}

#[test]
fn grid_ca_directories_are_read_for_certificates_only() {
    let yes = [
        "CERN-Root.pem",
        "ca.crt",
        "ca.cer",
        "1d879c6c.0",
        "1D879C6C.1",
    ];
    let no = [
        "1d879c6c.signing_policy",
        "1d879c6c.namespaces",
        "1d879c6c.r0",
        "CERN-Root.crl_url",
        "CERN-Root.info",
        "1d879c6.0",
        "README",
    ];
    for name in yes {
        assert!(
            is_certificate_file_name(std::path::Path::new(name)),
            "{name}"
        );
    }
    for name in no {
        assert!(
            !is_certificate_file_name(std::path::Path::new(name)),
            "{name}"
        );
    }
}

#[test]
fn the_public_types_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<crate::Transport>();
    send_sync::<crate::Response>();
    send_sync::<crate::Error>();
    send_sync::<crate::Preferences>();
    send::<crate::RequestBuilder>(
        &crate::Transport::builder()
            .build()
            .unwrap()
            .get("http://h/"),
    );
    // The futures too, so that requests can be spawned.
    let transport = crate::Transport::builder().build().unwrap();
    send(&transport.get("http://h/").send());
    send(&transport.get_json::<serde_json::Value>("http://h/"));
}
