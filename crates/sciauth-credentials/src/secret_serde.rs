//! Secrets written in clear, on purpose, for the formats that must carry one: a token store's
//! files and rows, and the token service's `getToken` answer. Use with
//! `#[serde(with = "sciauth_credentials::secret_serde")]`; [`optional`] is the same for an
//! `Option<SecretString>`. Nothing else in sciauth serializes a secret.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serializer};

/// Writes the secret as a plain string.
pub fn serialize<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// Reads a plain string as a secret.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

/// The same for an `Option<SecretString>`: `#[serde(with = "sciauth_credentials::secret_serde::optional")]`.
pub mod optional {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the secret as a plain string, or none.
    pub fn serialize<S: Serializer>(
        secret: &Option<SecretString>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => s.serialize_some(secret.expose_secret()),
            None => s.serialize_none(),
        }
    }

    /// Reads a plain string (or none) as a secret.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
    }
}
