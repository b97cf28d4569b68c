//! Entry points for the fuzz targets (`crates/sciauth-fuzz`, `fuzz/`), behind the cargo
//! feature `fuzzing`; not an API.
//!
//! Each function takes the bytes of a key file and runs them through the functions that
//! read key files in production, ignoring the result.

use secrecy::SecretString;

use crate::agent::KeySelector;
use crate::key::PrivateKey;

/// The passphrase encrypted keys are tried with (the seed corpus encrypts with it).
pub const PASSPHRASE: &str = "fuzz-passphrase";

/// A private key file (`PrivateKey::from_bytes`, what `PrivateKey::from_file` and every
/// SSH-key credential read), without a passphrase and with [`PASSPHRASE`]; a key that
/// parses signs a JWS and an SSH signature.
///
/// `data` whose first byte is 1 to 5 is the binary contents of a PEM block, armoured here
/// (so that mutations reach the structure under the base64): 1 `OPENSSH PRIVATE KEY`,
/// 2 `PRIVATE KEY`, 3 `RSA PRIVATE KEY`, 4 `EC PRIVATE KEY`, 5 `ENCRYPTED PRIVATE KEY`.
/// Anything else is the file as it is.
pub fn private_key(data: &[u8]) {
    let armoured;
    let bytes = match armour(data) {
        Some(text) => {
            armoured = text;
            armoured.as_bytes()
        }
        None => data,
    };
    let passphrase = SecretString::from(PASSPHRASE);
    for passphrase in [None, Some(&passphrase)] {
        if let Ok(key) = PrivateKey::from_bytes(bytes, passphrase) {
            let _ = (key.algorithm(), key.public_key(), format!("{key:?}"));
            let _ = key.sign_jws(b"header.claims");
            let _ = key.sign_ssh(b"challenge");
        }
    }
}

/// A public key file (`KeySelector::public_key_text`, what `KeySelector::public_key_file`
/// reads to pick an ssh-agent key).
pub fn public_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(selector) = KeySelector::public_key_text(text) {
        let _ = format!("{selector:?}");
    }
}

fn armour(data: &[u8]) -> Option<String> {
    let (&kind, body) = data.split_first()?;
    let (label, width) = match kind {
        1 => ("OPENSSH PRIVATE KEY", 70),
        2 => ("PRIVATE KEY", 64),
        3 => ("RSA PRIVATE KEY", 64),
        4 => ("EC PRIVATE KEY", 64),
        5 => ("ENCRYPTED PRIVATE KEY", 64),
        _ => return None,
    };
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(width) {
        text.push_str(std::str::from_utf8(line).ok()?);
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    Some(text)
}
