//! Signing with a key held by a running `ssh-agent` (`SSH_AUTH_SOCK`).

use std::fmt;
use std::path::{Path, PathBuf};

use ssh_agent_lib::agent::Session as _;
use ssh_agent_lib::client::Client;
use ssh_agent_lib::proto::{Identity, PublicCredential, SignRequest, signature};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm as SshAlgorithm, EcdsaCurve, HashAlg, PublicKey};

use crate::error::{Error, ErrorKind, Result};
use crate::key::{
    JwsAlgorithm, check_jws_signing_input, check_ssh_challenge, ecdsa_ssh_to_raw, ssh_encode,
};

/// Which of the agent's keys to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySelector {
    /// The first key whose type can sign JWTs (Ed25519, RSA, ECDSA), in the agent's order.
    First,
    /// The key with this public key (e.g. read from the `.pub` file next to the private key).
    PublicKey(KeyData),
    /// The key whose comment is exactly this (often the file name or `user@host`).
    Comment(String),
    /// The key with this SHA-256 fingerprint, as `ssh-add -l` prints it (`SHA256:...`).
    Fingerprint(String),
}

impl KeySelector {
    /// Selects the key in a public key file (`id_ed25519.pub`).
    pub fn public_key_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = crate::fs::read_limited_text(path, crate::fs::MAX_NAMED_FILE).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::KeyFileNotFound
            } else {
                ErrorKind::MalformedKey
            };
            Error::new(kind, "cannot read this SSH public key file")
                .with_source(e)
                .with_path(path)
        })?;
        Self::public_key_text(&text).map_err(|e| e.with_path(path))
    }

    /// Selects the key in the text of a public key file.
    pub(crate) fn public_key_text(text: &str) -> Result<Self> {
        let key = PublicKey::from_openssh(text).map_err(|e| {
            Error::new(
                ErrorKind::MalformedKey,
                "cannot read this SSH public key file (expected `ssh-... AAAA...`)",
            )
            .with_source(e)
        })?;
        Ok(Self::PublicKey(key.key_data().clone()))
    }

    fn matches(&self, identity: &Identity) -> bool {
        let key = identity.credential.key_data();
        match self {
            Self::First => JwsAlgorithm::for_ssh_key(key).is_ok(),
            Self::PublicKey(wanted) => key == wanted,
            Self::Comment(comment) => &identity.comment == comment,
            Self::Fingerprint(fingerprint) => {
                key.fingerprint(HashAlg::Sha256).to_string() == *fingerprint
            }
        }
    }
}

/// A running ssh-agent, reached through its Unix socket.
///
/// Each operation opens a fresh connection: an agent may be restarted between two signatures
/// (a JWT is re-signed only every few minutes), and a connection costs microseconds.
#[derive(Clone, PartialEq, Eq)]
pub struct SshAgent {
    socket: PathBuf,
}

impl SshAgent {
    /// The agent named by `SSH_AUTH_SOCK`.
    pub fn from_env() -> Result<Self> {
        match std::env::var_os("SSH_AUTH_SOCK") {
            Some(path) if !path.is_empty() => Ok(Self::at(path)),
            _ => Err(Error::new(
                ErrorKind::AgentUnavailable,
                "no SSH agent: SSH_AUTH_SOCK is not set; start one with `eval $(ssh-agent)` and \
                 add your key with `ssh-add`",
            )),
        }
    }

    /// The agent listening on the Unix socket at `socket`.
    pub fn at(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Lists the agent's keys: public key and comment.
    pub async fn identities(&self) -> Result<Vec<(KeyData, String)>> {
        let mut client = self.connect().await?;
        let identities = client
            .request_identities()
            .await
            .map_err(|e| agent_error("list its keys", e))?;
        Ok(identities
            .into_iter()
            .map(|id| (id.credential.key_data().clone(), id.comment))
            .collect())
    }

    /// Finds the key `selector` names, or fails with [`ErrorKind::KeyNotInAgent`].
    pub async fn find(&self, selector: &KeySelector) -> Result<AgentKey> {
        let mut client = self.connect().await?;
        let identities = client
            .request_identities()
            .await
            .map_err(|e| agent_error("list its keys", e))?;
        let count = identities.len();
        let identity = identities
            .into_iter()
            .find(|id| selector.matches(id))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::KeyNotInAgent,
                    format!(
                        "the SSH agent holds {count} key(s), none matching {}; add the key \
                         with `ssh-add KEYFILE` (check with `ssh-add -l`)",
                        describe(selector)
                    ),
                )
            })?;
        let key = identity.credential.key_data().clone();
        let algorithm = JwsAlgorithm::for_ssh_key(&key)?;
        Ok(AgentKey {
            agent: self.clone(),
            key,
            comment: identity.comment,
            algorithm,
        })
    }

    async fn connect(&self) -> Result<Client<tokio::net::UnixStream>> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::AgentUnavailable,
                    format!(
                        "cannot reach the SSH agent at {} (SSH_AUTH_SOCK); is it running? \
                         Start one with `eval $(ssh-agent)`",
                        self.socket.display()
                    ),
                )
                .with_source(e)
            })?;
        Ok(Client::new(stream))
    }
}

impl fmt::Debug for SshAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshAgent")
            .field("socket", &self.socket)
            .finish()
    }
}

/// One key held by an ssh-agent, ready to sign.
#[derive(Clone)]
pub struct AgentKey {
    agent: SshAgent,
    key: KeyData,
    comment: String,
    algorithm: JwsAlgorithm,
}

impl AgentKey {
    /// The JWS algorithm this key signs with.
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.algorithm
    }

    /// The public key.
    pub fn public_key(&self) -> &KeyData {
        &self.key
    }

    /// The comment the agent holds for this key.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// Signs a JWS signing input that this crate built: the agent signs, and its SSH
    /// signature is turned into the JWS form (RSA as `rsa-sha2-256`, ECDSA as raw `r || s`).
    /// Not public, as [`PrivateKey::sign_jws`](crate::PrivateKey) is not.
    pub(crate) async fn sign_jws(&self, message: &[u8]) -> Result<Vec<u8>> {
        check_jws_signing_input(message)?;
        let signature = self.sign(message).await?;
        let data = signature.as_bytes();
        match (self.algorithm, signature.algorithm()) {
            (JwsAlgorithm::EdDsa, SshAlgorithm::Ed25519) => Ok(data.to_vec()),
            (
                JwsAlgorithm::Rs256,
                SshAlgorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
            ) => Ok(data.to_vec()),
            (alg, SshAlgorithm::Ecdsa { curve }) if alg == ecdsa_jws(curve) => {
                ecdsa_ssh_to_raw(data, ecdsa_width(curve))
            }
            (_, other) => Err(Error::new(
                ErrorKind::Agent,
                format!(
                    "the SSH agent signed with {other} where {} was needed; the agent may be \
                     too old for rsa-sha2-256 (OpenSSH 7.2 or later is)",
                    self.algorithm
                ),
            )),
        }
    }

    /// Signs a server's challenge as an SSH signature in wire format (`string algorithm ||
    /// string signature`); RSA keys sign `rsa-sha2-256`. Only challenges that cannot be a
    /// JWS signing input or an SSH login blob reach the agent (see
    /// [`PrivateKey::sign_ssh`](crate::PrivateKey::sign_ssh)); others fail with
    /// [`ErrorKind::RefusedToSign`].
    pub async fn sign_ssh(&self, challenge: &[u8]) -> Result<Vec<u8>> {
        check_ssh_challenge(challenge)?;
        ssh_encode(&self.sign(challenge).await?)
    }

    async fn sign(&self, message: &[u8]) -> Result<ssh_key::Signature> {
        let mut client = self.agent.connect().await?;
        let flags = if self.algorithm == JwsAlgorithm::Rs256 {
            signature::RSA_SHA2_256
        } else {
            0
        };
        client
            .sign(SignRequest {
                credential: PublicCredential::Key(self.key.clone()),
                data: message.to_vec(),
                flags,
            })
            .await
            .map_err(|e| agent_error("sign", e))
    }
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKey")
            .field("algorithm", &self.algorithm)
            .field(
                "fingerprint",
                &self.key.fingerprint(HashAlg::Sha256).to_string(),
            )
            .field("comment", &self.comment)
            .field("agent", &self.agent)
            .finish()
    }
}

fn ecdsa_jws(curve: EcdsaCurve) -> JwsAlgorithm {
    match curve {
        EcdsaCurve::NistP256 => JwsAlgorithm::Es256,
        EcdsaCurve::NistP384 => JwsAlgorithm::Es384,
        EcdsaCurve::NistP521 => JwsAlgorithm::Es512,
    }
}

fn ecdsa_width(curve: EcdsaCurve) -> usize {
    match curve {
        EcdsaCurve::NistP256 => 32,
        EcdsaCurve::NistP384 => 48,
        EcdsaCurve::NistP521 => 66,
    }
}

fn describe(selector: &KeySelector) -> String {
    match selector {
        KeySelector::First => "a usable key type (Ed25519, RSA, ECDSA)".to_owned(),
        KeySelector::PublicKey(key) => format!("public key {}", key.fingerprint(HashAlg::Sha256)),
        KeySelector::Comment(comment) => format!("comment {comment:?}"),
        KeySelector::Fingerprint(fingerprint) => format!("fingerprint {fingerprint}"),
    }
}

fn agent_error(action: &str, e: ssh_agent_lib::error::AgentError) -> Error {
    Error::new(
        ErrorKind::Agent,
        format!(
            "the SSH agent failed to {action}; if it asks for confirmation (ssh-add -c), approve it"
        ),
    )
    .with_source(e)
}
