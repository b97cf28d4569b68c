use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use crate::*;

fn pem(label: &str, der: &[u8]) -> String {
    pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap()
}

fn ed25519_key() -> (PrivateKey, Vec<u8>) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let key = PrivateKey::from_bytes(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes(), None).unwrap();
    (key, public)
}

fn p256_key() -> (PrivateKey, Vec<u8>) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let public = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let key = PrivateKey::from_bytes(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes(), None).unwrap();
    (key, public)
}

/// Splits a compact JWS into its header and claims (as the exact JSON text that was
/// signed), the signature, and the signing input.
fn parts(token: &str) -> (String, String, Vec<u8>, String) {
    let mut it = token.split('.');
    let (h, c, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    assert!(it.next().is_none(), "a compact JWS has three parts");
    let text = |part: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    (
        text(h),
        text(c),
        URL_SAFE_NO_PAD.decode(s).unwrap(),
        format!("{h}.{c}"),
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

fn header_text(header: &AuthHeader) -> &str {
    header.value().to_str().unwrap()
}

#[tokio::test]
async fn username_password_is_basic_base64_of_utf8() {
    let ascii = UsernamePassword::new("demouser", "test123").unwrap();
    let header = ascii.header().await.unwrap().unwrap();
    assert_eq!(header.name(), "authorization");
    assert_eq!(header_text(&header), "Basic ZGVtb3VzZXI6dGVzdDEyMw==");
    assert!(header.value().is_sensitive());

    // "jürgen:pässwörd" as UTF-8, base64.
    let utf8 = UsernamePassword::new("jürgen", "pässwörd").unwrap();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("jürgen:pässwörd".as_bytes())
    );
    assert_eq!(
        header_text(&utf8.header().await.unwrap().unwrap()),
        expected
    );
    assert_eq!(expected, "Basic asO8cmdlbjpww6Rzc3fDtnJk");
}

#[tokio::test]
async fn fixed_tokens_are_sent_verbatim_after_their_scheme() {
    let basic = BasicToken::new("dXNlcjpwYXNz").unwrap();
    assert_eq!(
        header_text(&basic.header().await.unwrap().unwrap()),
        "Basic dXNlcjpwYXNz"
    );
    let bearer = BearerToken::new("eyJ.abc.def").unwrap();
    assert_eq!(
        header_text(&bearer.header().await.unwrap().unwrap()),
        "Bearer eyJ.abc.def"
    );
    for credential in [&basic as &dyn Credential, &bearer] {
        let Ready::Header(ready) = credential.ready_header() else {
            panic!("fixed credentials are always ready")
        };
        assert!(ready.value().is_sensitive());
        assert_eq!(
            credential.rejected(Some(&ready)).await.unwrap(),
            Renewal::Unchanged
        );
    }
}

#[tokio::test]
async fn anonymous_sends_no_header() {
    assert!(Anonymous.header().await.unwrap().is_none());
    assert!(matches!(Anonymous.ready_header(), Ready::NoHeader));
}

#[test]
fn tokens_with_newlines_are_refused_without_echoing_them() {
    let secret = "s3cr3t-token\nX-Injected: yes";
    for err in [
        BearerToken::new(secret).unwrap_err(),
        BasicToken::new(secret).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidHeaderValue);
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("s3cr3t"),
            "secret leaked into the error: {shown}"
        );
        assert!(
            shown.contains("newline"),
            "the error says what is wrong: {shown}"
        );
    }
}

#[test]
fn usernames_that_basic_auth_cannot_carry_are_refused() {
    for username in ["bad:user", "bad\nuser"] {
        let err = UsernamePassword::new(username, "s3cr3t-password").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
    }
}

#[test]
fn debug_output_never_contains_secrets() {
    let up = UsernamePassword::new("demouser", "hunter2-password").unwrap();
    let basic = BasicToken::new("basic-secret-value").unwrap();
    let bearer = BearerToken::new("bearer-secret-value").unwrap();
    let header = AuthHeader::authorization(http::HeaderValue::from_static("Bearer header-secret"));
    let options = CredentialOptions::default()
        .username("u")
        .password("options-password")
        .token("options-token");
    let (key, _) = ed25519_key();
    let jwt = SshKeyJwt::new("demouser", key);
    let shown = format!("{up:?} {basic:?} {bearer:?} {header:?} {options:?} {jwt:?} {jwt:#?}");
    for secret in [
        "hunter2",
        "basic-secret",
        "bearer-secret",
        "header-secret",
        "options-password",
        "options-token",
        "ZGVtb3VzZXI6", // base64 of "demouser:"
    ] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert!(shown.contains("[redacted]"));
    assert_eq!(
        format!("{up:?}"),
        r#"UsernamePassword { username: "demouser", password: "[redacted]" }"#
    );
    assert_eq!(format!("{bearer:?}"), "BearerToken([redacted])");
}

#[tokio::test]
async fn ssh_key_jwt_has_exactly_unicore_header_and_claims() {
    let (key, public) = ed25519_key();
    let clock = Arc::new(ManualClock::at_unix(1_795_390_173));
    let jwt = SshKeyJwt::new("demouser", key).clock(clock.clone());
    let header = jwt.header().await.unwrap().unwrap();
    let text = header_text(&header);
    let token = text
        .strip_prefix("Bearer ")
        .expect("sent as a bearer token");
    let (jose, claims, signature, signed) = parts(token);
    assert_eq!(jose, r#"{"alg":"EdDSA","typ":"JWT"}"#);
    assert_eq!(
        claims,
        r#"{"etd":"false","sub":"demouser","iss":"demouser","iat":1795390173,"exp":1795390473}"#
    );
    UnparsedPublicKey::new(&ED25519, &public)
        .verify(signed.as_bytes(), &signature)
        .expect("signature verifies with the public key");
    // pyunicore's Ed25519 tokens for "demouser" are 235 characters long as well.
    assert_eq!(token.len(), 235);
}

#[tokio::test]
async fn ssh_key_jwt_is_cached_until_half_its_lifetime() {
    let (key, _) = ed25519_key();
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let jwt = SshKeyJwt::new("demouser", key)
        .lifetime(Duration::from_secs(300))
        .clock(clock.clone());
    assert!(
        matches!(jwt.ready_header(), Ready::NotReady),
        "nothing signed yet"
    );
    let first = jwt.header().await.unwrap().unwrap();
    let Ready::Header(ready) = jwt.ready_header() else {
        panic!("a fresh token is ready")
    };
    assert_eq!(ready, first);

    clock.advance(Duration::from_secs(149));
    assert_eq!(jwt.header().await.unwrap().unwrap(), first, "still fresh");

    clock.advance(Duration::from_secs(1));
    assert!(
        matches!(jwt.ready_header(), Ready::NotReady),
        "due for renewal"
    );
    let second = jwt.header().await.unwrap().unwrap();
    assert_ne!(second, first);
    let (_, claims, _, _) = parts(header_text(&second).strip_prefix("Bearer ").unwrap());
    assert_eq!(json(&claims)["iat"], 1_800_000_150);
    assert_eq!(json(&claims)["exp"], 1_800_000_450);
}

#[tokio::test]
async fn a_rejected_jwt_is_resigned_once_for_many_rejections() {
    let (key, _) = ed25519_key();
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let jwt = SshKeyJwt::new("demouser", key).clock(clock.clone());
    let sent = jwt.header().await.unwrap().unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(jwt.rejected(Some(&sent)).await.unwrap(), Renewal::Renewed);
    let renewed = jwt.header().await.unwrap().unwrap();
    assert_ne!(renewed, sent);
    // A second request that carried the old token was rejected too: no second signature.
    clock.advance(Duration::from_secs(5));
    assert_eq!(jwt.rejected(Some(&sent)).await.unwrap(), Renewal::Renewed);
    assert_eq!(jwt.header().await.unwrap().unwrap(), renewed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_share_one_signature() {
    // ECDSA signatures are randomized: two signings of the same claims differ, so equal
    // headers prove that one signature served everyone.
    let (key, public) = p256_key();
    let jwt = Arc::new(SshKeyJwt::new("demouser", key));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let jwt = jwt.clone();
            tokio::spawn(async move { jwt.header().await.unwrap().unwrap() })
        })
        .collect();
    let mut headers = Vec::new();
    for task in tasks {
        headers.push(task.await.unwrap());
    }
    assert!(headers.windows(2).all(|w| w[0] == w[1]));
    let (jose, _, signature, signed) =
        parts(header_text(&headers[0]).strip_prefix("Bearer ").unwrap());
    assert_eq!(json(&jose)["alg"], "ES256");
    assert_eq!(signature.len(), 64, "raw r || s");
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
        .verify(signed.as_bytes(), &signature)
        .unwrap();
    let fresh = jwt.sign_new().await.unwrap();
    assert_ne!(
        fresh.expose_secret(),
        jwt.token().await.unwrap().expose_secret(),
        "sign_new bypasses the cache"
    );
}

#[tokio::test]
async fn service_jwt_delegates_for_a_user() {
    let (key, _) = p256_key();
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let jwt = ServiceJwt::new("CN=Demo User,O=Test", "CN=Service,O=Test", key)
        .lifetime(Duration::from_secs(60))
        .clock(clock);
    let token = jwt.token().await.unwrap();
    let (_, claims, _, _) = parts(token.expose_secret());
    assert_eq!(
        claims,
        r#"{"etd":"true","sub":"CN=Demo User,O=Test","iss":"CN=Service,O=Test","iat":1700000000,"exp":1700000060}"#
    );
}

#[test]
fn create_credential_follows_pyunicore_order() {
    let token = create_credential(
        CredentialOptions::default()
            .token("tok")
            .username("u")
            .password("p"),
    )
    .unwrap();
    assert!(format!("{token:?}").starts_with("BearerToken"));
    let password =
        create_credential(CredentialOptions::default().username("u").password("p")).unwrap();
    assert!(format!("{password:?}").starts_with("UsernamePassword"));
    let missing = create_credential(CredentialOptions::default().username("u")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::MissingInput);
    let nothing = create_credential(CredentialOptions::default()).unwrap_err();
    assert_eq!(nothing.kind(), ErrorKind::MissingInput);
    let no_key = create_credential(
        CredentialOptions::default()
            .username("u")
            .identity("/nonexistent/id_uftp"),
    )
    .unwrap_err();
    assert_eq!(no_key.kind(), ErrorKind::KeyFileNotFound);
    assert_eq!(
        no_key.path(),
        Some(std::path::Path::new("/nonexistent/id_uftp"))
    );
}

#[test]
fn garbage_is_a_malformed_key_not_a_panic() {
    let inputs: [&[u8]; 7] = [
        b"",
        b"\xff\xfe\x00garbage",
        b"-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        b"-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n",
        b"-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n",
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE user@host\n",
    ];
    for input in inputs {
        let err = PrivateKey::from_bytes(input, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedKey, "{err}");
    }
}

/// A cause from a crate above, judged there.
#[derive(Debug)]
struct LoginRefused;

impl std::fmt::Display for LoginRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("login refused")
    }
}

impl std::error::Error for LoginRefused {}

impl crate::Diagnose for LoginRefused {
    fn diagnosis(&self) -> crate::Diagnosis {
        crate::Diagnosis::new(crate::Class::Refused).with_status(Some(http::StatusCode::FORBIDDEN))
    }
}

#[test]
fn a_renewal_error_keeps_its_cause_and_the_causes_judgement() {
    let err = Error::renewal_failed("logging in to the service failed", LoginRefused);
    assert_eq!(err.kind(), ErrorKind::Renewal);
    assert_eq!(err.to_string(), "logging in to the service failed");
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "login refused");
    assert!(err.is_refused() && !err.needs_login() && !err.is_bad_input());
    assert_eq!(err.status(), Some(http::StatusCode::FORBIDDEN));
    // This crate's own failures are judged here: a missing key file is the caller's input.
    let missing = PrivateKey::from_file("/nonexistent/sciauth-key", None).unwrap_err();
    assert!(
        missing.is_bad_input() && missing.status().is_none(),
        "{missing:?}"
    );
}

#[tokio::test]
async fn the_ssh_challenge_signer_refuses_a_jwt_signing_input() {
    let (key, public) = ed25519_key();
    let signer = SshSigner::from(key);
    // What a malicious Rucio host would send as its "challenge": the signing input of a
    // UNICORE JWT in the user's name.
    let jwt = SshKeyJwt::new("demouser", ed25519_key().0);
    let token = jwt.token().await.unwrap();
    let (_, _, _, signing_input) = parts(token.expose_secret());

    for challenge in [
        signing_input.as_bytes(),
        b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0",
        b"challenge-1-root-2\n",
        b"challenge-1-root 2",
        b"",
        &[b'a'; 257][..],
        b"\0\0\0\x20session-id",
    ] {
        let error = signer.sign_ssh(challenge).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RefusedToSign, "{challenge:?}");
        assert!(error.to_string().contains("Nothing was signed"), "{error}");
    }

    // A challenge of Rucio's form is signed, as an SSH signature over exactly its bytes.
    let challenge = b"challenge-3961782624705561423-root-1795393905";
    let wire = signer.sign_ssh(challenge).await.unwrap();
    let raw = &wire[4 + 11 + 4..];
    assert_eq!(&wire[4..4 + 11], b"ssh-ed25519");
    UnparsedPublicKey::new(&ED25519, &public)
        .verify(challenge, raw)
        .unwrap();
}

#[tokio::test]
async fn the_jws_signer_refuses_anything_but_a_jws_signing_input() {
    let (key, _) = ed25519_key();
    let signer = SshSigner::from(key);
    for message in [
        &b"challenge-3961782624705561423-root-1795393905"[..],
        b"a.b.c",
        b".b",
        b"a.",
        b"a b.c",
    ] {
        let error = signer.sign_jws(message).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RefusedToSign, "{message:?}");
    }
    assert!(signer.sign_jws(b"eyJh.eyJz").await.is_ok());
}

/// Runs `openssl` (a real peer: it writes the key files users have) and returns stdout.
fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("openssl runs (package openssl; `cargo xtask setup`)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.unwrap_or_default())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?} failed");
    out.stdout
}

#[test]
fn encrypted_tls_keys_are_decrypted_and_costly_ones_refused_before_deriving() {
    let plain = openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
        None,
    );
    let passphrase = SecretString::from("grid-pass".to_owned());
    let encrypt = |extra: &[&str]| {
        let mut args = vec!["pkcs8", "-topk8", "-passout", "pass:grid-pass"];
        args.extend_from_slice(extra);
        openssl(&args, Some(&plain))
    };

    // What `openssl pkcs8 -topk8` writes by default (PBKDF2, AES-256-CBC): decrypted.
    let userkey = encrypt(&["-v2", "aes-256-cbc"]);
    let der = decrypt_tls_key(&userkey, Some(&passphrase))
        .unwrap()
        .unwrap();
    let expected = openssl(
        &["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"],
        Some(&plain),
    );
    assert_eq!(*der, expected);
    assert_eq!(
        decrypt_tls_key(&userkey, None).unwrap_err().kind(),
        ErrorKind::PassphraseRequired
    );
    let wrong = SecretString::from("wrong".to_owned());
    assert_eq!(
        decrypt_tls_key(&userkey, Some(&wrong)).unwrap_err().kind(),
        ErrorKind::WrongPassphrase
    );
    assert!(
        decrypt_tls_key(&plain, None).unwrap().is_none(),
        "unencrypted"
    );
    // scrypt within the limits (OpenSSL's default N = 16384) works too.
    let scrypt = encrypt(&["-scrypt"]);
    assert!(
        decrypt_tls_key(&scrypt, Some(&passphrase))
            .unwrap()
            .is_some()
    );

    // A key file asking for more work than sciauth allows is refused before deriving (a
    // hostile file could ask for billions; these are just over the limits, so that openssl
    // makes them quickly).
    for (extra, says) in [
        (&["-v2", "aes-256-cbc", "-iter", "2000001"][..], "PBKDF2"),
        (
            &[
                "-scrypt",
                "-scrypt_N",
                "16384",
                "-scrypt_r",
                "8",
                "-scrypt_p",
                "64",
            ][..],
            "scrypt",
        ),
    ] {
        let costly = encrypt(extra);
        let error = decrypt_tls_key(&costly, Some(&passphrase)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MalformedKey, "{error}");
        assert!(error.to_string().contains(says), "{error}");
        assert!(
            error.to_string().contains("openssl pkcs8 -topk8"),
            "{error}"
        );
        // The SSH key reader (the same PKCS#8 path) refuses it likewise.
        assert_eq!(
            PrivateKey::from_bytes(&costly, Some(&passphrase))
                .unwrap_err()
                .kind(),
            ErrorKind::MalformedKey
        );
    }

    // The legacy OpenSSL form and PKCS#12: a clear error naming the conversion.
    let legacy = openssl(
        &[
            "pkey",
            "-traditional",
            "-aes256",
            "-passout",
            "pass:grid-pass",
        ],
        Some(&plain),
    );
    assert!(String::from_utf8_lossy(&legacy).contains("Proc-Type: 4,ENCRYPTED"));
    let error = decrypt_tls_key(&legacy, Some(&passphrase)).unwrap_err();
    assert!(
        error.to_string().contains("openssl pkcs8 -topk8"),
        "{error}"
    );
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("key.pem");
    std::fs::write(&key_path, &plain).unwrap();
    let cert = openssl(
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            key_path.to_str().unwrap(),
            "-subj",
            "/CN=grid user",
            "-days",
            "1",
        ],
        None,
    );
    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    let p12 = openssl(
        &[
            "pkcs12",
            "-export",
            "-in",
            cert_path.to_str().unwrap(),
            "-inkey",
            key_path.to_str().unwrap(),
            "-passout",
            "pass:grid-pass",
        ],
        None,
    );
    let error = decrypt_tls_key(&p12, Some(&passphrase)).unwrap_err();
    assert!(error.to_string().contains("openssl pkcs12"), "{error}");
    assert!(!format!("{error:?}").contains("grid-pass"));
}
