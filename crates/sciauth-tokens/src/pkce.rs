//! PKCE (RFC 7636, S256 only) and the random values a login sends: `state` and `nonce`.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

/// A PKCE code verifier: 32 random bytes, base64url (43 characters, RFC 7636 4.1).
///
/// Only the S256 challenge is offered: `plain` defeats the point of PKCE and RFC 9700 asks
/// clients not to use it.
#[derive(Clone)]
pub struct PkceVerifier(SecretString);

impl PkceVerifier {
    /// A fresh random verifier.
    pub fn generate() -> Self {
        Self(SecretString::from(random_url_safe(32)))
    }

    /// The verifier, sent with the code to the token endpoint. A secret until then.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// `BASE64URL(SHA256(verifier))`, the `code_challenge` for `code_challenge_method=S256`.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest(&SHA256, self.0.expose_secret().as_bytes()))
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

/// `len` random bytes from the operating system, base64url without padding.
pub(crate) fn random_url_safe(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    // The system RNG fails only if the OS has no entropy source at all; nothing sensible can
    // continue then, and a predictable state or verifier would be worse than stopping.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_matches_rfc7636_appendix_b() {
        let verifier = PkceVerifier(SecretString::from(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(
            verifier.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(format!("{verifier:?}"), "PkceVerifier([redacted])");
    }

    #[test]
    fn verifiers_are_43_chars_and_differ() {
        let a = PkceVerifier::generate();
        let b = PkceVerifier::generate();
        assert_eq!(a.secret().expose_secret().len(), 43);
        assert_ne!(a.secret().expose_secret(), b.secret().expose_secret());
    }
}
