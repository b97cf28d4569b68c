//! Bad input gets typed errors that say what to do, never a panic, never a secret.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sciauth_credentials::{ErrorKind, KeySelector, PrivateKey, SshAgent, SshKeyJwt};
use secrecy::SecretString;
use support::{Agent, keygen};

const PASSPHRASE: &str = "correct-horse-passphrase";

fn assert_no_secret(err: &sciauth_credentials::Error) {
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(PASSPHRASE) && !shown.contains("wrong-guess"),
        "{shown}"
    );
}

#[test]
fn missing_file() {
    let err = PrivateKey::from_file("/nonexistent/.uftp/id_uftp", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyFileNotFound);
    let text = err.to_string();
    assert!(text.starts_with("/nonexistent/.uftp/id_uftp: "), "{text}");
    assert!(
        text.contains("ssh-keygen"),
        "says how to make a key: {text}"
    );
}

#[test]
fn passphrases_needed_and_wrong() {
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("openssh", &["-t", "ed25519"][..]),
        ("pkcs8", &["-t", "ecdsa", "-m", "PKCS8"][..]),
    ] {
        let key = keygen(dir.path(), name, PASSPHRASE, args);
        let needed = PrivateKey::from_file(&key, None).unwrap_err();
        assert_eq!(
            needed.kind(),
            ErrorKind::PassphraseRequired,
            "{name}: {needed}"
        );
        let empty = PrivateKey::from_file(&key, Some(&SecretString::from(""))).unwrap_err();
        assert_eq!(
            empty.kind(),
            ErrorKind::PassphraseRequired,
            "empty means none"
        );
        let wrong =
            PrivateKey::from_file(&key, Some(&SecretString::from("wrong-guess"))).unwrap_err();
        assert_eq!(wrong.kind(), ErrorKind::WrongPassphrase, "{name}: {wrong}");
        assert_no_secret(&wrong);
        assert_eq!(wrong.path(), Some(key.as_path()));
        PrivateKey::from_file(&key, Some(&SecretString::from(PASSPHRASE))).unwrap();
    }
}

#[test]
fn legacy_encrypted_pem_says_how_to_convert() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(
        dir.path(),
        "legacy",
        PASSPHRASE,
        &["-t", "rsa", "-m", "PEM"],
    );
    let err = PrivateKey::from_file(&key, Some(&SecretString::from(PASSPHRASE))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedKey);
    assert!(err.to_string().contains("ssh-keygen -p"), "{err}");
}

#[test]
fn unsupported_and_weak_keys() {
    let dir = tempfile::tempdir().unwrap();
    let dsa = keygen(dir.path(), "dsa", "", &["-t", "dsa"]);
    let err = PrivateKey::from_file(&dsa, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnsupportedKeyType, "{err}");
    assert!(
        err.to_string().contains("ed25519"),
        "suggests a key type: {err}"
    );

    for (name, args) in [
        ("rsa1024", &["-t", "rsa", "-b", "1024"][..]),
        ("rsa1024_pem", &["-t", "rsa", "-b", "1024", "-m", "PEM"][..]),
        (
            "rsa1024_pkcs8",
            &["-t", "rsa", "-b", "1024", "-m", "PKCS8"][..],
        ),
    ] {
        let weak = keygen(dir.path(), name, "", args);
        let err = PrivateKey::from_file(&weak, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyTooSmall, "{name}: {err}");
        assert!(err.to_string().contains("2048"), "{err}");
    }
}

#[test]
fn malformed_pem_and_public_keys() {
    let dir = tempfile::tempdir().unwrap();
    let good = keygen(dir.path(), "good", "", &["-t", "ed25519"]);
    let text = std::fs::read_to_string(&good).unwrap();
    let truncated = dir.path().join("truncated");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let err = PrivateKey::from_file(&truncated, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedKey, "{err}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert_eq!(
        PrivateKey::from_file(&garbage, None).unwrap_err().kind(),
        ErrorKind::MalformedKey
    );

    let public = support::pub_path(&good);
    let err = SshKeyJwt::from_file("demouser", &public, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedKey);
    assert!(err.to_string().contains("public key"), "{err}");
}

#[tokio::test]
async fn no_agent_and_key_not_in_agent() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = SshAgent::at(dir.path().join("no-agent.sock"));
    let err = nowhere.find(&KeySelector::First).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AgentUnavailable, "{err}");
    assert!(err.to_string().contains("ssh-agent"), "{err}");

    let agent = Agent::start(dir.path());
    let added = keygen(dir.path(), "added", "", &["-t", "ed25519"]);
    let other = keygen(dir.path(), "other", "", &["-t", "ed25519"]);
    agent.add(&added);
    let selector = KeySelector::public_key_file(support::pub_path(&other)).unwrap();
    let err = SshAgent::at(&agent.socket)
        .find(&selector)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyNotInAgent, "{err}");
    assert!(err.to_string().contains("ssh-add"), "{err}");
    let err = SshAgent::at(&agent.socket)
        .find(&KeySelector::Comment("nobody@nowhere".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyNotInAgent);

    let dsa = keygen(dir.path(), "dsa", "", &["-t", "dsa"]);
    agent.add(&dsa);
    let selector = KeySelector::public_key_file(support::pub_path(&dsa)).unwrap();
    let err = SshAgent::at(&agent.socket)
        .find(&selector)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnsupportedKeyType, "{err}");
}

#[test]
fn a_key_asking_for_months_of_kdf_rounds_is_refused_before_decrypting() {
    // A real encrypted key (2 rounds), its bcrypt rounds then raised to 2^31 - 1 (decrypting
    // it would take about 150 days) and to 257, one above the cap (about 2.5 s; 512 rounds
    // made a fuzz run time out, fuzz/artifacts/ssh_private_key/).
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(
        dir.path(),
        "slow",
        PASSPHRASE,
        &["-t", "ed25519", "-a", "2"],
    );
    let text = std::fs::read_to_string(&key).unwrap();
    let base64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut body = STANDARD.decode(base64).unwrap();
    // kdfoptions: string(string salt (16 bytes), uint32 rounds).
    let options = body
        .windows(8)
        .position(|w| w == [0, 0, 0, 24, 0, 0, 0, 16])
        .expect("bcrypt kdfoptions");
    let rounds = options + 8 + 16;
    assert_eq!(body[rounds..rounds + 4], [0, 0, 0, 2]);
    for asked in [0x7fff_ffffu32, 257] {
        body[rounds..rounds + 4].copy_from_slice(&asked.to_be_bytes());
        let err = private_key_from_openssh_body(&body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedKey, "{err}");
        assert!(
            err.to_string().contains(&format!("{asked} bcrypt rounds")),
            "{err}"
        );
        assert_no_secret(&err);
    }
}

/// `body` (an `openssh-key-v1` blob) as a PEM file, read with the test passphrase.
fn private_key_from_openssh_body(body: &[u8]) -> Result<PrivateKey, sciauth_credentials::Error> {
    let encoded = STANDARD.encode(body);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(70)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    let slow = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let passphrase = SecretString::from(PASSPHRASE);
    PrivateKey::from_bytes(slow.as_bytes(), Some(&passphrase))
}
