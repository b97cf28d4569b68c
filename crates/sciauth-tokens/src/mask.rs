//! The caller's own secrets, masked out of whatever a server says back.
//!
//! A provider that echoes the request into its `error_description` (some do, to be helpful;
//! a hostile one does it on purpose) would otherwise put the client secret or the refresh
//! token into an error message, a log line or a terminal. Every error built from a server's
//! words passes through [`Secrets::mask`] with the secrets of the request it answers.

use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret as _, SecretString};
use url::form_urlencoded::byte_serialize;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// The secrets one request sent, in every spelling a server may echo: as sent in the form
/// (percent-encoded), as decoded, and the `Authorization` value with and without its scheme.
#[derive(Default)]
pub(crate) struct Secrets {
    spellings: Vec<Zeroizing<String>>,
}

impl Secrets {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `secret` in the spellings a server could echo.
    pub(crate) fn add(&mut self, secret: &SecretString) {
        let secret = secret.expose_secret();
        if secret.is_empty() {
            return;
        }
        self.push(secret.to_owned());
        let encoded: String = byte_serialize(secret.as_bytes()).collect();
        if encoded != secret {
            self.push(encoded);
        }
        // An `Authorization` value: its credentials alone, too.
        if let Some((_scheme, credentials)) = secret.split_once(' ')
            && !credentials.is_empty()
        {
            self.push(credentials.to_owned());
        }
    }

    fn push(&mut self, spelling: String) {
        self.spellings.push(Zeroizing::new(spelling));
    }

    /// `text` with every spelling of every secret replaced by `[redacted]`. Longer spellings
    /// go first, so a secret inside another is not left half visible.
    pub(crate) fn mask(&self, text: &str) -> String {
        if self.spellings.is_empty() {
            return text.to_owned();
        }
        let mut spellings: Vec<&str> = self.spellings.iter().map(|s| s.as_str()).collect();
        spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut masked = text.to_owned();
        for spelling in spellings {
            if masked.contains(spelling) {
                masked = masked.replace(spelling, REDACTED);
            }
        }
        masked
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} spellings, redacted)", self.spellings.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_masked() {
        let mut secrets = Secrets::new();
        secrets.add(&SecretString::from("s3cr+t/=x y"));
        secrets.add(&SecretString::from("Basic YXBwOnMzY3I="));
        let echoed = "bad secret s3cr+t/=x y (sent s3cr%2Bt%2F%3Dx+y) in Basic YXBwOnMzY3I= and YXBwOnMzY3I=";
        let masked = secrets.mask(echoed);
        assert_eq!(
            masked,
            "bad secret [redacted] (sent [redacted]) in [redacted] and [redacted]"
        );
        assert_eq!(Secrets::new().mask("as it is"), "as it is");
    }
}
