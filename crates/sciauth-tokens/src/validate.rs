//! The one validation step every answer of an authorization server goes through before any
//! grant uses it: token responses, device authorizations, error bodies.
//!
//! An answer is read as a JSON object first and each field is taken out by hand, so that a
//! wrong type, a missing field or a hostile value gives a message naming the field and never
//! quoting the value (serde quotes values, and a value can be a token). What is checked:
//!
//! - tokens (`access_token`, `refresh_token`, `id_token`, `device_code`): a non-empty string of
//!   visible ASCII (`0x21..=0x7e`, a superset of RFC 6750's b64token), at most
//!   [`Limits::max_token_size`] bytes: nothing else can go into an HTTP header or a terminal;
//! - `token_type`: `Bearer` in any case (normalized to `Bearer`), `N_A` only where the grant
//!   says so (token exchange, RFC 8693 2.2.1); DPoP and MAC tokens are refused;
//! - `expires_in`: a non-negative integer, or a numeric string; fractions are cut; larger than
//!   [`MAX_EXPIRES_IN`] is clamped to it; a time computed from it saturates
//!   ([`sciauth_credentials::time`]);
//! - text a person reads (`user_code`, `verification_uri`, `scope`): printable, bounded;
//! - the device `interval`: missing is 5 s, below 1 s is 1 s, negative is refused.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};

use sciauth_credentials::text::{is_all_printable, printable};

/// How long an access token may claim to live: longer `expires_in` values are cut to this
/// (10 years). The token is still used; its expiry is merely kept representable.
pub(crate) const MAX_EXPIRES_IN: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long a device code may claim to live: a person types a code in minutes, and a device
/// flow that polls for days is a bug or an attack (1 hour).
pub(crate) const MAX_DEVICE_LIFETIME: Duration = Duration::from_secs(3600);

/// The device `interval` when the provider names none (RFC 8628 3.2).
pub(crate) const DEFAULT_DEVICE_INTERVAL: Duration = Duration::from_secs(5);

/// The longest interval between two device polls that is honoured (the code expires first
/// anyway).
const MAX_DEVICE_INTERVAL: Duration = Duration::from_secs(300);

/// The most characters of a server's text kept for a message or a terminal.
pub(crate) const MAX_SHOWN_TEXT: usize = 300;

/// The largest `user_code` shown to a person (RFC 8628 suggests 8 characters).
const MAX_USER_CODE: usize = 64;

/// The largest URL shown to a person.
const MAX_URL: usize = 2048;

/// The largest `scope` or token type URI accepted.
const MAX_SCOPE: usize = 8 * 1024;

/// The size limits an issuer applies to what its provider answers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The largest token accepted (64 KiB by default).
    pub(crate) max_token_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_token_size: 64 * 1024,
        }
    }
}

/// Why an answer was refused: the field and what is wrong with it, never its value.
#[derive(Debug)]
pub(crate) struct Invalid(pub(crate) String);

impl Invalid {
    fn field(name: &str, problem: impl std::fmt::Display) -> Self {
        Self(format!("its {name} {problem}"))
    }
}

/// A JSON object from `body`, or what it is instead.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Invalid(format!(
            "it is JSON but {}, not an object",
            json_type(&other)
        ))),
        // The position only: serde's message can quote the body.
        Err(e) if e.is_eof() => Err(Invalid("it is cut short (not complete JSON)".into())),
        Err(e) => Err(Invalid(format!(
            "it is not JSON (error at line {} column {})",
            e.line(),
            e.column()
        ))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `body` as a `T`, with an error that names the field that did not fit (`keys[3].kty`) but
/// never quotes a value.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Invalid> {
    let value = Value::Object(object(body)?);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            let at = if path == "." {
                String::new()
            } else {
                format!("{path}.")
            };
            Invalid(format!(
                "its {} is missing",
                printable(&format!("{at}{field}"), 80)
            ))
        } else {
            Invalid(format!(
                "its {} has a value of the wrong type or form",
                printable(&path, 80)
            ))
        }
    })
}

/// A required string field.
pub(crate) fn string(map: &mut Map<String, Value>, name: &str) -> Result<String, Invalid> {
    optional_string(map, name)?.ok_or_else(|| Invalid::field(name, "is missing"))
}

/// An optional string field; `null` counts as missing.
pub(crate) fn optional_string(
    map: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<String>, Invalid> {
    match map.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Invalid::field(
            name,
            format_args!("is {}, not a string", json_type(&other)),
        )),
    }
}

/// A token: non-empty visible ASCII, at most `limits.max_token_size` bytes.
pub(crate) fn token(name: &str, value: String, limits: &Limits) -> Result<SecretString, Invalid> {
    if value.is_empty() {
        return Err(Invalid::field(name, "is empty"));
    }
    if value.len() > limits.max_token_size {
        return Err(Invalid::field(
            name,
            format_args!(
                "is {} bytes, over the limit of {} bytes",
                value.len(),
                limits.max_token_size
            ),
        ));
    }
    if let Some(bad) = value.bytes().position(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(Invalid::field(
            name,
            format_args!(
                "holds a byte that is not visible ASCII at offset {bad} (a token must fit an \
                 HTTP header)"
            ),
        ));
    }
    Ok(SecretString::from(value))
}

/// An optional token field.
pub(crate) fn optional_token(
    map: &mut Map<String, Value>,
    name: &str,
    limits: &Limits,
) -> Result<Option<SecretString>, Invalid> {
    optional_string(map, name)?
        .map(|value| token(name, value, limits))
        .transpose()
}

/// Text shown to a person or kept as a name: non-empty, printable, at most `max` bytes.
pub(crate) fn text(name: &str, value: String, max: usize) -> Result<String, Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::field(name, "is empty"));
    }
    if value.len() > max {
        return Err(Invalid::field(
            name,
            format_args!("is {} bytes, over the limit of {max}", value.len()),
        ));
    }
    if !is_all_printable(&value) {
        return Err(Invalid::field(
            name,
            "holds control characters (terminal escapes, newlines, bidirectional overrides)",
        ));
    }
    Ok(value)
}

/// A URL shown to a person: printable, http or https.
fn display_url(name: &str, value: String) -> Result<String, Invalid> {
    let value = text(name, value, MAX_URL)?;
    match url::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(value),
        Ok(_) => Err(Invalid::field(name, "is not an http or https URL")),
        Err(_) => Err(Invalid::field(name, "is not a URL")),
    }
}

/// A number of seconds, as a JSON number or a numeric string. `Ok(None)` when absent or null.
pub(crate) fn seconds(
    map: &mut Map<String, Value>,
    name: &str,
    max: Duration,
) -> Result<Option<Duration>, Invalid> {
    let value = match map.remove(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let number = match &value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(number) = number.filter(|n| n.is_finite()) else {
        return Err(Invalid::field(
            name,
            format_args!("is {}, not a number of seconds", json_type(&value)),
        ));
    };
    if number < 0.0 {
        return Err(Invalid::field(name, "is negative"));
    }
    // Whole seconds: a fraction is cut, as every provider means integers.
    let seconds = number.trunc();
    if seconds >= max.as_secs() as f64 {
        tracing::debug!(field = name, clamped_to = ?max, "a lifetime beyond the cap");
        return Ok(Some(max));
    }
    Ok(Some(Duration::from_secs(seconds as u64)))
}

/// The rules a grant sets for its token response.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TokenRules {
    /// RFC 8693 2.2.1: a token exchange that asked for something other than an access token
    /// gets `token_type` `N_A`.
    pub(crate) allow_not_applicable: bool,
}

/// A token response, validated.
pub(crate) struct TokenFields {
    pub(crate) access_token: SecretString,
    pub(crate) token_type: String,
    pub(crate) expires_in: Option<Duration>,
    pub(crate) refresh_token: Option<SecretString>,
    pub(crate) id_token: Option<SecretString>,
    pub(crate) scope: Option<String>,
    pub(crate) issued_token_type: Option<String>,
    pub(crate) extra: Map<String, Value>,
}

/// Validates a token endpoint's 2xx answer (RFC 6749 5.1, RFC 8693 2.2.1).
pub(crate) fn token_response(
    body: &[u8],
    limits: &Limits,
    rules: TokenRules,
) -> Result<TokenFields, Invalid> {
    let mut map = object(body)?;
    let access_token = token("access_token", string(&mut map, "access_token")?, limits)?;
    let token_type = token_type(string(&mut map, "token_type")?, rules)?;
    let expires_in = seconds(&mut map, "expires_in", MAX_EXPIRES_IN)?;
    let refresh_token = optional_token(&mut map, "refresh_token", limits)?;
    let id_token = optional_token(&mut map, "id_token", limits)?;
    let scope = optional_string(&mut map, "scope")?
        .map(scope_text)
        .transpose()?;
    let issued_token_type = optional_string(&mut map, "issued_token_type")?
        .map(|uri| text("issued_token_type", uri, MAX_SCOPE))
        .transpose()?;
    Ok(TokenFields {
        access_token,
        token_type,
        expires_in,
        refresh_token,
        id_token,
        scope,
        issued_token_type,
        extra: map,
    })
}

/// `scope`: may be empty (nothing granted), else printable and bounded.
fn scope_text(scope: String) -> Result<String, Invalid> {
    if scope.trim().is_empty() {
        return Ok(scope);
    }
    text("scope", scope, MAX_SCOPE)
}

fn token_type(value: String, rules: TokenRules) -> Result<String, Invalid> {
    if value.eq_ignore_ascii_case("bearer") {
        return Ok("Bearer".to_owned());
    }
    if value == "N_A" && rules.allow_not_applicable {
        return Ok(value);
    }
    let shown = printable(&value, 40);
    let why = if value.eq_ignore_ascii_case("dpop") {
        "sciauth does not hold DPoP keys, so a DPoP-bound token cannot be used; register the \
         client without DPoP"
            .to_owned()
    } else if value == "N_A" {
        "N_A (no access token) is only an answer to a token exchange that asks for another \
         token type"
            .to_owned()
    } else {
        format!("{shown:?} is not Bearer, the only token type sciauth sends")
    };
    Err(Invalid(format!("its token_type is refused: {why}")))
}

/// A device authorization response, validated (RFC 8628 3.2).
pub(crate) struct DeviceFields {
    pub(crate) device_code: SecretString,
    pub(crate) user_code: String,
    pub(crate) verification_uri: String,
    pub(crate) verification_uri_complete: Option<String>,
    pub(crate) expires_in: Duration,
    pub(crate) interval: Duration,
}

/// Validates a device authorization endpoint's 2xx answer.
pub(crate) fn device_response(body: &[u8], limits: &Limits) -> Result<DeviceFields, Invalid> {
    let mut map = object(body)?;
    let device_code = token("device_code", string(&mut map, "device_code")?, limits)?;
    let user_code = text("user_code", string(&mut map, "user_code")?, MAX_USER_CODE)?;
    // Some providers (Google, older drafts) say verification_url.
    let verification_uri = match optional_string(&mut map, "verification_uri")? {
        Some(uri) => uri,
        None => string(&mut map, "verification_url")
            .map_err(|_| Invalid::field("verification_uri", "is missing"))?,
    };
    let verification_uri = display_url("verification_uri", verification_uri)?;
    let complete = match optional_string(&mut map, "verification_uri_complete")? {
        Some(uri) => Some(uri),
        None => optional_string(&mut map, "verification_url_complete")?,
    };
    let verification_uri_complete = complete
        .map(|uri| display_url("verification_uri_complete", uri))
        .transpose()?;
    let expires_in = seconds(&mut map, "expires_in", MAX_DEVICE_LIFETIME)?
        .ok_or_else(|| Invalid::field("expires_in", "is missing"))?;
    if expires_in.is_zero() {
        return Err(Invalid::field(
            "expires_in",
            "is 0: the code expired before it could be shown",
        ));
    }
    let interval = seconds(&mut map, "interval", MAX_DEVICE_INTERVAL)?
        .map_or(DEFAULT_DEVICE_INTERVAL, |i| i.max(Duration::from_secs(1)));
    Ok(DeviceFields {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in,
        interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    fn parse(body: &str) -> Result<TokenFields, Invalid> {
        token_response(body.as_bytes(), &Limits::default(), TokenRules::default())
    }

    fn refused(body: &str) -> String {
        match parse(body) {
            Ok(_) => panic!("accepted: {body}"),
            Err(Invalid(message)) => message,
        }
    }

    #[test]
    fn legal_quirks_are_accepted() {
        let t =
            parse(r#"{"access_token":"a.b-c_d~e+f/g=","token_type":"bearer","expires_in":"3600"}"#)
                .unwrap();
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.expires_in, Some(Duration::from_secs(3600)));
        assert_eq!(t.access_token.expose_secret(), "a.b-c_d~e+f/g=");
        let t =
            parse(r#"{"access_token":"a","token_type":"Bearer","expires_in":59.9,"x":1}"#).unwrap();
        assert_eq!(t.expires_in, Some(Duration::from_secs(59)));
        assert_eq!(t.extra["x"], 1);
        let t = parse(r#"{"access_token":"a","token_type":"Bearer","expires_in":1e300}"#).unwrap();
        assert_eq!(t.expires_in, Some(MAX_EXPIRES_IN));
        let t = parse(r#"{"access_token":"a","token_type":"Bearer","expires_in":null,"scope":""}"#)
            .unwrap();
        assert_eq!(t.expires_in, None);
    }

    #[test]
    fn hostile_token_responses_are_refused_naming_the_field_not_the_value() {
        for (body, field) in [
            (
                r#"{"access_token":"","token_type":"Bearer"}"#,
                "access_token",
            ),
            (
                r#"{"access_token":"se cret","token_type":"Bearer"}"#,
                "access_token",
            ),
            (
                "{\"access_token\":\"secret\\r\\nX: y\",\"token_type\":\"Bearer\"}",
                "access_token",
            ),
            (
                "{\"access_token\":\"secret\\u001b[2J\",\"token_type\":\"Bearer\"}",
                "access_token",
            ),
            (
                r#"{"access_token":"sécret","token_type":"Bearer"}"#,
                "access_token",
            ),
            (
                r#"{"access_token":["secret"],"token_type":"Bearer"}"#,
                "access_token",
            ),
            (r#"{"token_type":"Bearer"}"#, "access_token"),
            (
                r#"{"access_token":"secret","token_type":"mac"}"#,
                "token_type",
            ),
            (
                r#"{"access_token":"secret","token_type":"DPoP"}"#,
                "token_type",
            ),
            (
                r#"{"access_token":"secret","token_type":"N_A"}"#,
                "token_type",
            ),
            (r#"{"access_token":"secret"}"#, "token_type"),
            (
                r#"{"access_token":"secret","token_type":"Bearer","expires_in":-1}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"secret","token_type":"Bearer","expires_in":"soon"}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"secret","token_type":"Bearer","expires_in":true}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"secret","token_type":"Bearer","refresh_token":""}"#,
                "refresh_token",
            ),
            (
                r#"{"access_token":"secret","token_type":"Bearer","refresh_token":7}"#,
                "refresh_token",
            ),
            (
                "{\"access_token\":\"secret\",\"token_type\":\"Bearer\",\"scope\":\"a\\u001b]52;c;x\\u0007\"}",
                "scope",
            ),
        ] {
            let message = refused(body);
            assert!(message.contains(field), "{body}: {message}");
            assert!(!message.contains("secret"), "{body}: {message}");
        }
        assert!(refused("[1]").contains("an array"));
        assert!(refused("{\"access_token\":").contains("cut short"));
        assert!(refused("\u{1}garbage").contains("not JSON"));
    }

    #[test]
    fn tokens_over_the_limit_are_refused() {
        let big = "a".repeat(64 * 1024 + 1);
        let body = format!(r#"{{"access_token":"{big}","token_type":"Bearer"}}"#);
        let message = refused(&body);
        assert!(message.contains("over the limit"), "{message}");
        let limits = Limits {
            max_token_size: 128 * 1024,
        };
        assert!(token_response(body.as_bytes(), &limits, TokenRules::default()).is_ok());
    }

    #[test]
    fn exchange_may_answer_not_applicable() {
        let body = br#"{"access_token":"id.token.jwt","token_type":"N_A"}"#;
        let rules = TokenRules {
            allow_not_applicable: true,
        };
        let fields = token_response(body, &Limits::default(), rules).unwrap();
        assert_eq!(fields.token_type, "N_A");
    }

    #[test]
    fn device_interval_and_lifetime_rules() {
        let device = |extra: &str| {
            device_response(
                format!(
                    r#"{{"device_code":"d","user_code":"WDJB-MJHT",
                        "verification_uri":"https://idp.example.org/device"{extra}}}"#
                )
                .as_bytes(),
                &Limits::default(),
            )
        };
        let d = device(r#","expires_in":600"#).unwrap();
        assert_eq!(d.interval, DEFAULT_DEVICE_INTERVAL);
        let d = device(r#","expires_in":600,"interval":0"#).unwrap();
        assert_eq!(d.interval, Duration::from_secs(1));
        let d = device(r#","expires_in":"99999999999","interval":"2""#).unwrap();
        assert_eq!(d.interval, Duration::from_secs(2));
        assert_eq!(d.expires_in, MAX_DEVICE_LIFETIME);
        assert!(device(r#","expires_in":600,"interval":-1"#).is_err());
        assert!(device(r#","expires_in":0"#).is_err());
        assert!(device("").is_err());
    }

    #[test]
    fn device_text_for_people_must_be_printable() {
        for body in [
            "{\"device_code\":\"d\",\"user_code\":\"AB\\u001b[2JCD\",\"verification_uri\":\"https://x.org/\",\"expires_in\":60}",
            "{\"device_code\":\"d\",\"user_code\":\"ABCD\",\"verification_uri\":\"https://x.org/\\u202egnp.exe\",\"expires_in\":60}",
            "{\"device_code\":\"d\",\"user_code\":\"ABCD\",\"verification_uri\":\"javascript:alert(1)\",\"expires_in\":60}",
            "{\"device_code\":\"d\",\"user_code\":\"\",\"verification_uri\":\"https://x.org/\",\"expires_in\":60}",
        ] {
            assert!(
                device_response(body.as_bytes(), &Limits::default()).is_err(),
                "{body}"
            );
        }
    }
}
