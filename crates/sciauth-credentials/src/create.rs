//! Picking the right credential from what the user has, the way pyunicore does.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::credential::Credential;
use crate::error::{Error, ErrorKind, Result};
use crate::fixed::{BearerToken, UsernamePassword};
use crate::jwt::SshKeyJwt;

/// What a user has to authenticate with; [`create_credential`] turns it into a credential.
///
/// ```
/// use sciauth_credentials::{CredentialOptions, create_credential};
/// let credential = create_credential(
///     CredentialOptions::default().username("demouser").password("test123"),
/// )?;
/// assert!(format!("{credential:?}").contains("UsernamePassword"));
/// # Ok::<(), sciauth_credentials::Error>(())
/// ```
#[derive(Default)]
pub struct CredentialOptions {
    username: Option<String>,
    password: Option<SecretString>,
    token: Option<SecretString>,
    identity: Option<PathBuf>,
}

impl CredentialOptions {
    /// The username (for a password, or the `sub` of an SSH-key JWT). By default, none.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password; with an identity, the key's passphrase (empty means none). By default,
    /// none.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(SecretString::from(password.into()));
        self
    }

    /// A bearer (OIDC) token; it wins over everything else. By default, none.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self
    }

    /// The SSH private key file, used as given. For pyunicore's naming rules (`~/...`, bare
    /// names under `~/.uftp/`) pass it through [`resolve_identity`]. By default, none.
    pub fn identity(mut self, identity: impl Into<PathBuf>) -> Self {
        self.identity = Some(identity.into());
        self
    }
}

impl std::fmt::Debug for CredentialOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialOptions")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("identity", &self.identity)
            .finish()
    }
}

/// Builds the credential that fits what the user has, in pyunicore's order:
///
/// 1. a token: a [`BearerToken`];
/// 2. no identity: a [`UsernamePassword`] (both must be given);
/// 3. an identity file: an [`SshKeyJwt`] for the username, with the password as the key's
///    passphrase.
pub fn create_credential(options: CredentialOptions) -> Result<Box<dyn Credential>> {
    if let Some(token) = options.token {
        return Ok(Box::new(BearerToken::new(token.expose_secret())?));
    }
    let Some(username) = options.username else {
        return Err(Error::new(
            ErrorKind::MissingInput,
            "no credential given: pass a token, or a username with a password or an identity \
             (SSH key) file",
        ));
    };
    match options.identity {
        None => {
            let Some(password) = options.password else {
                return Err(Error::new(
                    ErrorKind::MissingInput,
                    format!(
                        "user {username:?} needs a password, or an identity (SSH key) file to \
                         sign a JWT with"
                    ),
                ));
            };
            Ok(Box::new(UsernamePassword::new(
                username,
                password.expose_secret(),
            )?))
        }
        Some(identity) => Ok(Box::new(SshKeyJwt::from_file(
            username,
            identity,
            options.password.as_ref(),
        )?)),
    }
}

/// Resolves an identity file name as pyunicore and UFTP do: an absolute path is used as is,
/// `~/x` means `$HOME/x`, and any other name lives in `$HOME/.uftp/` (so `id_uftp` is
/// `~/.uftp/id_uftp`, the documented default).
pub fn resolve_identity(identity: impl AsRef<Path>) -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    resolve_identity_in(identity.as_ref(), &home)
}

fn resolve_identity_in(identity: &Path, home: &Path) -> PathBuf {
    if identity.is_absolute() {
        return identity.to_owned();
    }
    if let Ok(rest) = identity.strip_prefix("~") {
        return home.join(rest);
    }
    home.join(".uftp").join(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_paths_resolve_like_pyunicore() {
        let home = Path::new("/home/demo");
        assert_eq!(
            resolve_identity_in(Path::new("/keys/id"), home),
            Path::new("/keys/id")
        );
        assert_eq!(
            resolve_identity_in(Path::new("~/.ssh/id_ed25519"), home),
            Path::new("/home/demo/.ssh/id_ed25519")
        );
        assert_eq!(
            resolve_identity_in(Path::new("id_uftp"), home),
            Path::new("/home/demo/.uftp/id_uftp")
        );
    }
}
