//! Private keys from files: OpenSSH (plain and encrypted) and PEM (PKCS#1, SEC1, PKCS#8).
//!
//! This is the one place that loads keys. The SSH-key JWT credentials sign with it, and so
//! does Rucio's SSH challenge login (a later layer), so every caller gets the same formats
//! and the same errors.

// tidy: long, the one place that reads private key material: every format (OpenSSH, PKCS#1, SEC1, PKCS#8, encrypted or not) and its errors

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{
    self as lc, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair,
    KeyPair as _, RsaKeyPair,
};
use num_bigint::BigUint;
use pkcs8::der::Decode as _;
use pkcs8::der::asn1::ObjectIdentifier;
use secrecy::{ExposeSecret, SecretString};
use ssh_key::private::KeypairData;
use ssh_key::public::{EcdsaPublicKey, KeyData, RsaPublicKey};
use ssh_key::{Algorithm as SshAlgorithm, EcdsaCurve, HashAlg, Mpint, PublicKey};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// A JWS signature algorithm (RFC 7518), chosen from the type of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// Ed25519 (RFC 8037).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256; signature is raw `r || s` (64 bytes).
    Es256,
    /// ECDSA on P-384 with SHA-384; signature is raw `r || s` (96 bytes).
    Es384,
    /// ECDSA on P-521 with SHA-512; signature is raw `r || s` (132 bytes).
    Es512,
}

impl JwsAlgorithm {
    /// The `alg` header value, e.g. `"EdDSA"` or `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
        }
    }

    /// The algorithm that goes with an SSH public key, or an error for key types no JWT
    /// verifier accepts.
    pub(crate) fn for_ssh_key(key: &KeyData) -> Result<Self> {
        match key {
            KeyData::Ed25519(_) => Ok(Self::EdDsa),
            KeyData::Rsa(_) => Ok(Self::Rs256),
            KeyData::Ecdsa(ec) => Ok(Self::for_curve(ec.curve())),
            other => Err(unsupported_key_type(other.algorithm().as_ref())),
        }
    }

    fn for_curve(curve: EcdsaCurve) -> Self {
        match curve {
            EcdsaCurve::NistP256 => Self::Es256,
            EcdsaCurve::NistP384 => Self::Es384,
            EcdsaCurve::NistP521 => Self::Es512,
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private key, parsed once and ready to sign.
///
/// Reads OpenSSH private keys (`-----BEGIN OPENSSH PRIVATE KEY-----`, plain or encrypted
/// with a passphrase) and PEM keys: PKCS#1 (`BEGIN RSA PRIVATE KEY`), SEC1
/// (`BEGIN EC PRIVATE KEY`) and PKCS#8 (`BEGIN PRIVATE KEY`, and `BEGIN ENCRYPTED PRIVATE
/// KEY`). Key types: Ed25519, RSA of at least 2048 bits, ECDSA on P-256, P-384 and P-521.
///
/// The key type, never the PEM label, decides the JWS algorithm (see [`JwsAlgorithm`]):
/// Ed25519 signs EdDSA, RSA signs RS256, P-256/384/521 sign ES256/384/512.
///
/// `Debug` shows the algorithm, the public key fingerprint and where the key came from;
/// never key material.
pub struct PrivateKey {
    signing: SigningKey,
    public: PublicKey,
    origin: Option<PathBuf>,
}

enum SigningKey {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair, JwsAlgorithm),
    Rsa(RsaKeyPair),
}

impl PrivateKey {
    /// Reads and parses the key file at `path`. `passphrase` decrypts an encrypted key; an
    /// empty passphrase counts as none.
    ///
    /// Errors say what to do: [`ErrorKind::KeyFileNotFound`], [`ErrorKind::PassphraseRequired`],
    /// [`ErrorKind::WrongPassphrase`], [`ErrorKind::UnsupportedKeyType`],
    /// [`ErrorKind::KeyTooSmall`], [`ErrorKind::MalformedKey`].
    pub fn from_file(path: impl AsRef<Path>, passphrase: Option<&SecretString>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = Zeroizing::new(crate::fs::read_limited(path, crate::fs::MAX_NAMED_FILE).map_err(|e| {
            let (kind, message) = if e.kind() == std::io::ErrorKind::NotFound {
                (
                    ErrorKind::KeyFileNotFound,
                    "no such key file; check the path (create a key with `ssh-keygen -t ed25519`)",
                )
            } else {
                (ErrorKind::KeyFileUnreadable, "cannot read the key file")
            };
            Error::new(kind, message).with_source(e).with_path(path)
        })?);
        let mut key = Self::from_bytes(&bytes, passphrase).map_err(|e| e.with_path(path))?;
        key.origin = Some(path.to_owned());
        Ok(key)
    }

    /// Parses a key from the contents of a key file (see [`PrivateKey::from_file`]).
    pub fn from_bytes(bytes: &[u8], passphrase: Option<&SecretString>) -> Result<Self> {
        let passphrase = passphrase
            .map(|p| p.expose_secret())
            .filter(|p| !p.is_empty());
        let text = std::str::from_utf8(bytes).map_err(|_| not_a_key())?;
        let text = text.trim_start();
        if text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
            return from_openssh(text, passphrase);
        }
        if text.starts_with("PuTTY-User-Key-File") {
            return Err(Error::new(
                ErrorKind::MalformedKey,
                "PuTTY .ppk keys are not supported; convert the key with \
                 `puttygen KEY.ppk -O private-openssh -o KEY`",
            ));
        }
        if text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(Error::new(
                ErrorKind::MalformedKey,
                "this key is in the legacy encrypted PEM format, which is not supported; \
                 rewrite it in OpenSSH format with `ssh-keygen -p -f KEY` (keeps the passphrase)",
            ));
        }
        if text.starts_with("ssh-") || text.starts_with("ecdsa-") {
            return Err(Error::new(
                ErrorKind::MalformedKey,
                "this is a public key; pass the private key file (the one without .pub)",
            ));
        }
        let (label, der) = pem_rfc7468::decode_vec(text.as_bytes()).map_err(|_| not_a_key())?;
        let der = Zeroizing::new(der);
        match label {
            "RSA PRIVATE KEY" => from_rsa_key_pair(RsaKeyPair::from_der(&der)),
            "EC PRIVATE KEY" => {
                let parsed = sec1::EcPrivateKey::from_der(&der).map_err(|_| not_a_key())?;
                let curve = parsed
                    .parameters
                    .and_then(|p| p.named_curve())
                    .ok_or_else(not_a_key)?;
                from_ec_der(curve, &der)
            }
            "PRIVATE KEY" => from_pkcs8(&der),
            "ENCRYPTED PRIVATE KEY" => {
                let Some(passphrase) = passphrase else {
                    return Err(passphrase_required());
                };
                from_pkcs8(&decrypt_pkcs8(&der, passphrase)?)
            }
            "DSA PRIVATE KEY" => Err(unsupported_key_type("DSA")),
            other => Err(Error::new(
                ErrorKind::MalformedKey,
                format!("a PEM block labelled {other:?} is not a private key"),
            )),
        }
    }

    /// The JWS algorithm this key signs with.
    pub fn algorithm(&self) -> JwsAlgorithm {
        match &self.signing {
            SigningKey::Ed25519(_) => JwsAlgorithm::EdDsa,
            SigningKey::Ecdsa(_, alg) => *alg,
            SigningKey::Rsa(_) => JwsAlgorithm::Rs256,
        }
    }

    /// The public half, in SSH form (for fingerprints and to find the same key in an agent).
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The file the key was read from, if it came from a file.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    /// Signs a JWS signing input (`base64url(header).base64url(claims)`) that this crate
    /// built: EdDSA, RS256 (PKCS#1 v1.5), or ES* as raw `r || s`. Not public: the JWT
    /// credentials are the only way to get a JWS signature, so no caller can have the key
    /// sign a token it made up.
    pub(crate) fn sign_jws(&self, message: &[u8]) -> Result<Vec<u8>> {
        check_jws_signing_input(message)?;
        self.sign_raw(message)
    }

    /// The raw signature of `message`, in the JWS form (ES* as `r || s`).
    fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        match &self.signing {
            SigningKey::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            SigningKey::Ecdsa(pair, _) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signing_failed()),
            SigningKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&lc::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| signing_failed())?;
                Ok(signature)
            }
        }
    }

    /// Signs a server's challenge as an SSH signature in wire format (`string algorithm ||
    /// string signature`, RFC 4253 / RFC 8332). RSA keys sign `rsa-sha2-256`, the algorithm
    /// Rucio's SSH login checks.
    ///
    /// The signature inside is the same as a JWS signature over the same bytes, so a
    /// challenge that is a JWS signing input would turn the server that sent it into the
    /// issuer of a JWT in the user's name. Only what cannot be one is signed: printable
    /// ASCII without `.` (every JWS signing input has one) and without spaces, at most 256
    /// bytes; anything else fails with [`ErrorKind::RefusedToSign`] and signs nothing.
    pub fn sign_ssh(&self, challenge: &[u8]) -> Result<Vec<u8>> {
        check_ssh_challenge(challenge)?;
        let raw = self.sign_raw(challenge)?;
        let signature = match &self.signing {
            SigningKey::Ed25519(_) => ssh_key::Signature::new(SshAlgorithm::Ed25519, raw),
            SigningKey::Rsa(_) => ssh_key::Signature::new(
                SshAlgorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
                raw,
            ),
            SigningKey::Ecdsa(_, _) => {
                let curve = match &self.public.key_data() {
                    KeyData::Ecdsa(ec) => ec.curve(),
                    _ => return Err(signing_failed()),
                };
                ssh_key::Signature::new(SshAlgorithm::Ecdsa { curve }, ecdsa_raw_to_ssh(&raw)?)
            }
        }
        .map_err(|_| signing_failed())?;
        ssh_encode(&signature)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .field(
                "fingerprint",
                &self.public.fingerprint(HashAlg::Sha256).to_string(),
            )
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

// tidy: long, one format read step by step (decrypt, key type, key size), each failure with its own error
fn from_openssh(text: &str, passphrase: Option<&str>) -> Result<PrivateKey> {
    let mut key = match ssh_key::PrivateKey::from_openssh(text) {
        Ok(key) => key,
        Err(e) => {
            return openssh_ecdsa_fallback(text, passphrase, None).unwrap_or_else(|| {
                Err(Error::new(
                    ErrorKind::MalformedKey,
                    "the OpenSSH private key is damaged or truncated",
                )
                .with_source(e))
            });
        }
    };
    // Refuse unusable types before spending a slow bcrypt-pbkdf on the passphrase.
    JwsAlgorithm::for_ssh_key(key.public_key().key_data())?;
    if key.is_encrypted() {
        let Some(passphrase) = passphrase else {
            return Err(passphrase_required());
        };
        // The file sets the work factor: 2^32 rounds would take months.
        if let ssh_key::Kdf::Bcrypt { rounds, .. } = key.kdf()
            && *rounds > MAX_BCRYPT_ROUNDS
        {
            return Err(too_many_rounds(*rounds));
        }
        key = match key.decrypt(passphrase) {
            Ok(key) => key,
            Err(_) => {
                return openssh_ecdsa_fallback(text, Some(passphrase), Some(&key))
                    .unwrap_or_else(|| Err(wrong_passphrase()));
            }
        };
    }
    let public = key.public_key().clone();
    let signing = match key.key_data() {
        KeypairData::Ed25519(pair) => SigningKey::Ed25519(
            Ed25519KeyPair::from_seed_and_public_key(pair.private.as_ref(), pair.public.as_ref())
                .map_err(|_| inconsistent_key())?,
        ),
        KeypairData::Ecdsa(pair) => {
            let alg = JwsAlgorithm::for_curve(pair.curve());
            EcdsaKeyPair::from_private_key_and_public_key(
                ecdsa_signing_algorithm(alg),
                pair.private_key_bytes(),
                pair.public_key_bytes(),
            )
            .map(|p| SigningKey::Ecdsa(p, alg))
            .map_err(|_| inconsistent_key())?
        }
        KeypairData::Rsa(pair) => {
            let n = positive(&pair.public.n)?;
            check_rsa_size(n.len() * 8 - n[0].leading_zeros() as usize)?;
            let d = BigUint::from_bytes_be(positive(&pair.private.d)?);
            let p = BigUint::from_bytes_be(positive(&pair.private.p)?);
            let q = BigUint::from_bytes_be(positive(&pair.private.q)?);
            let one = BigUint::from(1u8);
            let dp = Zeroizing::new((&d % (&p - &one)).to_bytes_be());
            let dq = Zeroizing::new((&d % (&q - &one)).to_bytes_be());
            let components = KeyPairComponents {
                public_key: PublicKeyComponents {
                    n,
                    e: positive(&pair.public.e)?,
                },
                d: positive(&pair.private.d)?,
                p: positive(&pair.private.p)?,
                q: positive(&pair.private.q)?,
                dP: dp.as_slice(),
                dQ: dq.as_slice(),
                qInv: positive(&pair.private.iqmp)?,
            };
            SigningKey::Rsa(
                RsaKeyPair::from_components(&components).map_err(|_| inconsistent_key())?,
            )
        }
        other => {
            return Err(unsupported_key_type(
                &other
                    .algorithm()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| "unknown".into()),
            ));
        }
    };
    Ok(PrivateKey {
        signing,
        public,
        origin: None,
    })
}

/// Reads an OpenSSH ECDSA private key that ssh-key 0.6 refuses.
///
/// OpenSSH stores the private scalar as an `mpint`, which drops leading zero bytes; ssh-key
/// 0.6 insists on the full curve width, so it rejects about half of all P-521 keys and 1 in
/// 256 P-256/P-384 keys (fixed upstream only in ssh-key 0.7, RustCrypto/SSH#356). Returns
/// `None` for anything but an ECDSA key, so the caller reports its own error.
// tidy: long, a parser of the OpenSSH ECDSA wire format, field by field, whole until ssh-key 0.7 makes it unnecessary
fn openssh_ecdsa_fallback(
    text: &str,
    passphrase: Option<&str>,
    encrypted: Option<&ssh_key::PrivateKey>,
) -> Option<Result<PrivateKey>> {
    // OpenSSH wraps its base64 at 70 columns, not PEM's 64.
    let mut decoder = pem_rfc7468::Decoder::new_wrapped(text.trim_end().as_bytes(), 70).ok()?;
    let label = decoder.type_label();
    let mut body = Zeroizing::new(Vec::new());
    decoder.decode_to_end(&mut body).ok()?;
    let mut reader = body.strip_prefix(b"openssh-key-v1\0".as_slice())?;
    let cipher = ssh_read::<String>(&mut reader)?;
    let _kdf_name = ssh_read::<String>(&mut reader)?;
    let _kdf_options = ssh_read::<Vec<u8>>(&mut reader)?;
    let _count = ssh_read::<u32>(&mut reader)?;
    let public_blob = ssh_read::<Vec<u8>>(&mut reader)?;
    let private_blob = Zeroizing::new(ssh_read::<Vec<u8>>(&mut reader)?);
    let public = ssh_read::<KeyData>(&mut public_blob.as_slice())?;
    let KeyData::Ecdsa(ec_public) = &public else {
        return None;
    };
    if label != "OPENSSH PRIVATE KEY" {
        return None;
    }
    let plain = if cipher == "none" {
        private_blob
    } else {
        let Some(passphrase) = passphrase else {
            return Some(Err(passphrase_required()));
        };
        let encrypted = encrypted?;
        let (key, iv) = encrypted
            .kdf()
            .derive_key_and_iv(encrypted.cipher(), passphrase)
            .ok()?;
        let mut buffer = private_blob;
        if encrypted
            .cipher()
            .decrypt(&key, &iv, &mut buffer, None)
            .is_err()
        {
            return Some(Err(wrong_passphrase()));
        }
        buffer
    };
    let mut section = plain.as_slice();
    let (Some(check1), Some(check2)) =
        (ssh_read::<u32>(&mut section), ssh_read::<u32>(&mut section))
    else {
        return Some(Err(not_a_key()));
    };
    if check1 != check2 {
        return Some(Err(if cipher == "none" {
            not_a_key()
        } else {
            wrong_passphrase()
        }));
    }
    let parsed = (|| {
        let _key_type = ssh_read::<String>(&mut section)?;
        let _curve = ssh_read::<String>(&mut section)?;
        let point = ssh_read::<Vec<u8>>(&mut section)?;
        let scalar = ssh_read::<Mpint>(&mut section)?;
        Some((point, scalar))
    })();
    let Some((point, scalar)) = parsed else {
        return Some(Err(not_a_key()));
    };
    let alg = JwsAlgorithm::for_curve(ec_public.curve());
    let width = match alg {
        JwsAlgorithm::Es384 => 48,
        JwsAlgorithm::Es512 => 66,
        _ => 32,
    };
    let Some(bytes) = scalar.as_positive_bytes().filter(|b| b.len() <= width) else {
        return Some(Err(not_a_key()));
    };
    let mut padded = Zeroizing::new(vec![0u8; width - bytes.len()]);
    padded.extend_from_slice(bytes);
    let pair = match EcdsaKeyPair::from_private_key_and_public_key(
        ecdsa_signing_algorithm(alg),
        &padded,
        &point,
    ) {
        Ok(pair) => pair,
        Err(_) => return Some(Err(inconsistent_key())),
    };
    Some(Ok(PrivateKey {
        signing: SigningKey::Ecdsa(pair, alg),
        public: PublicKey::new(public.clone(), ""),
        origin: None,
    }))
}

fn ssh_read<T: ssh_encoding::Decode>(reader: &mut &[u8]) -> Option<T> {
    T::decode(reader).ok()
}

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

fn from_pkcs8(der: &[u8]) -> Result<PrivateKey> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| not_a_key())?;
    let oid = info.algorithm.oid;
    if oid == OID_RSA {
        from_rsa_key_pair(RsaKeyPair::from_pkcs8(der))
    } else if oid == OID_EC {
        let curve = info.algorithm.parameters_oid().map_err(|_| not_a_key())?;
        from_ec_der(curve, der)
    } else if oid == OID_ED25519 {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| not_a_key())?;
        let public = KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(
            pair.public_key()
                .as_ref()
                .try_into()
                .map_err(|_| inconsistent_key())?,
        ));
        Ok(PrivateKey {
            signing: SigningKey::Ed25519(pair),
            public: PublicKey::new(public, ""),
            origin: None,
        })
    } else if oid == OID_DSA {
        Err(unsupported_key_type("DSA"))
    } else {
        Err(unsupported_key_type(&format!("PKCS#8 algorithm {oid}")))
    }
}

fn from_ec_der(curve: ObjectIdentifier, der: &[u8]) -> Result<PrivateKey> {
    let alg = if curve == OID_P256 {
        JwsAlgorithm::Es256
    } else if curve == OID_P384 {
        JwsAlgorithm::Es384
    } else if curve == OID_P521 {
        JwsAlgorithm::Es512
    } else {
        return Err(unsupported_key_type(&format!("ECDSA on curve {curve}")));
    };
    let pair = EcdsaKeyPair::from_private_key_der(ecdsa_signing_algorithm(alg), der)
        .map_err(|_| not_a_key())?;
    let public = EcdsaPublicKey::from_sec1_bytes(pair.public_key().as_ref())
        .map_err(|_| inconsistent_key())?;
    Ok(PrivateKey {
        signing: SigningKey::Ecdsa(pair, alg),
        public: PublicKey::new(KeyData::Ecdsa(public), ""),
        origin: None,
    })
}

fn from_rsa_key_pair(
    parsed: std::result::Result<RsaKeyPair, aws_lc_rs::error::KeyRejected>,
) -> Result<PrivateKey> {
    let pair = parsed.map_err(|e| match e.description_() {
        "TooSmall" => key_too_small(),
        _ => not_a_key(),
    })?;
    check_rsa_size(pair.public_modulus_len() * 8)?;
    let components: PublicKeyComponents<Vec<u8>> = pair.public_key().into();
    let public = KeyData::Rsa(RsaPublicKey {
        e: Mpint::from_positive_bytes(&components.e).map_err(|_| inconsistent_key())?,
        n: Mpint::from_positive_bytes(&components.n).map_err(|_| inconsistent_key())?,
    });
    Ok(PrivateKey {
        signing: SigningKey::Rsa(pair),
        public: PublicKey::new(public, ""),
        origin: None,
    })
}

fn ecdsa_signing_algorithm(alg: JwsAlgorithm) -> &'static EcdsaSigningAlgorithm {
    match alg {
        JwsAlgorithm::Es384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
        JwsAlgorithm::Es512 => &ECDSA_P521_SHA512_FIXED_SIGNING,
        _ => &ECDSA_P256_SHA256_FIXED_SIGNING,
    }
}

/// The longest challenge [`PrivateKey::sign_ssh`] signs. Rucio's are under 80 bytes.
pub(crate) const MAX_SSH_CHALLENGE_LEN: usize = 256;

/// Whether `challenge` may be signed as an SSH challenge: 1 to [`MAX_SSH_CHALLENGE_LEN`]
/// bytes of printable ASCII other than space and `.`. A JWS signing input always holds a
/// `.`, and an SSH user-authentication blob (RFC 4252 section 7) starts with binary
/// lengths, so neither passes.
pub(crate) fn check_ssh_challenge(challenge: &[u8]) -> Result<()> {
    let problem = if challenge.is_empty() {
        "it is empty"
    } else if challenge.len() > MAX_SSH_CHALLENGE_LEN {
        "it is longer than 256 bytes"
    } else if challenge.contains(&b'.') {
        "it contains '.', as the signing input of a JWT does"
    } else if !challenge.iter().all(u8::is_ascii_graphic) {
        "it contains bytes other than printable ASCII"
    } else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::RefusedToSign,
        format!(
            "refused to sign the SSH challenge: {problem}; a challenge signed with this key \
             could otherwise be used as a signature for something else (a JWT in your name). \
             Nothing was signed; the server that sent it may be malicious"
        ),
    ))
}

/// Whether `message` is a JWS signing input: two non-empty base64url parts joined by one
/// `.`. The JWT credentials build their own, so this only guards against a mistake that
/// would let other bytes be signed as a JWS.
pub(crate) fn check_jws_signing_input(message: &[u8]) -> Result<()> {
    let base64url = |part: &[u8]| {
        !part.is_empty()
            && part
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    };
    let mut parts = message.split(|b| *b == b'.');
    let well_formed = matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(header), Some(claims), None) if base64url(header) && base64url(claims)
    );
    if well_formed {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::RefusedToSign,
            "refused to sign as a JWS: the message is not a JWS signing input \
             (base64url(header).base64url(claims))",
        ))
    }
}

/// Converts a raw `r || s` ECDSA signature into SSH's `mpint r || mpint s`.
fn ecdsa_raw_to_ssh(raw: &[u8]) -> Result<Vec<u8>> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut out = Vec::with_capacity(raw.len() + 12);
    for half in [r, s] {
        let mpint = Mpint::from_positive_bytes(half).map_err(|_| signing_failed())?;
        ssh_encoding::Encode::encode(&mpint, &mut out).map_err(|_| signing_failed())?;
    }
    Ok(out)
}

/// Converts SSH's `mpint r || mpint s` into a fixed-width `r || s` of `width` bytes each.
pub(crate) fn ecdsa_ssh_to_raw(blob: &[u8], width: usize) -> Result<Vec<u8>> {
    let mut reader = blob;
    let mut out = Vec::with_capacity(2 * width);
    for _ in 0..2 {
        let mpint: Mpint =
            ssh_encoding::Decode::decode(&mut reader).map_err(|_| bad_signature())?;
        let bytes = mpint.as_positive_bytes().ok_or_else(bad_signature)?;
        if bytes.len() > width {
            return Err(bad_signature());
        }
        out.resize(out.len() + width - bytes.len(), 0);
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

pub(crate) fn ssh_encode(value: &impl ssh_encoding::Encode) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    value.encode(&mut out).map_err(|_| signing_failed())?;
    Ok(out)
}

fn positive(mpint: &Mpint) -> Result<&[u8]> {
    mpint.as_positive_bytes().ok_or_else(inconsistent_key)
}

fn check_rsa_size(bits: usize) -> Result<()> {
    if bits < 2048 {
        return Err(key_too_small());
    }
    Ok(())
}

fn key_too_small() -> Error {
    Error::new(
        ErrorKind::KeyTooSmall,
        "RSA keys shorter than 2048 bits are refused; make a new key with \
         `ssh-keygen -t ed25519` (or `ssh-keygen -t rsa -b 3072`)",
    )
}

fn not_a_key() -> Error {
    Error::new(
        ErrorKind::MalformedKey,
        "not a private key in a format sciauth reads (OpenSSH, or PEM: PKCS#1, SEC1, PKCS#8); \
         check that this is the private key file and that it is not truncated",
    )
}

fn inconsistent_key() -> Error {
    Error::new(
        ErrorKind::MalformedKey,
        "the private key is inconsistent (its parts do not belong together); the file is damaged",
    )
}

pub(crate) fn unsupported_key_type(what: &str) -> Error {
    Error::new(
        ErrorKind::UnsupportedKeyType,
        format!(
            "{what} keys cannot sign JWTs that UNICORE or UFTP verify; use an Ed25519, RSA \
             (2048 bits or more) or ECDSA (P-256/384/521) key, e.g. `ssh-keygen -t ed25519`"
        ),
    )
}

/// Decrypts an encrypted PKCS#8 key (`BEGIN ENCRYPTED PRIVATE KEY`, DER) to its PKCS#8 DER,
/// after checking that its key derivation costs no more than [`MAX_PBKDF2_ITERATIONS`] or the
/// scrypt limits ([`MAX_SCRYPT_MEMORY`], [`MAX_SCRYPT_WORK`]): a key file is input from
/// outside, and its own parameters would otherwise decide how long and how much memory
/// decrypting it takes.
pub(crate) fn decrypt_pkcs8(der: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>> {
    use pkcs8::pkcs5::EncryptionScheme;
    use pkcs8::pkcs5::pbes2::Kdf;
    let encrypted = pkcs8::EncryptedPrivateKeyInfo::from_der(der).map_err(|_| not_a_key())?;
    match &encrypted.encryption_algorithm {
        EncryptionScheme::Pbes2(params) => match &params.kdf {
            Kdf::Pbkdf2(pbkdf2) if pbkdf2.iteration_count > MAX_PBKDF2_ITERATIONS => {
                return Err(too_costly(&format!(
                    "{} PBKDF2 iterations, more than the {MAX_PBKDF2_ITERATIONS}",
                    pbkdf2.iteration_count
                )));
            }
            Kdf::Scrypt(scrypt) => {
                let n = scrypt.cost_parameter;
                let r = u64::from(scrypt.block_size);
                let p = u64::from(scrypt.parallelization);
                let memory = n.saturating_mul(r).saturating_mul(128);
                let work = n.saturating_mul(r).saturating_mul(p);
                if memory > MAX_SCRYPT_MEMORY || work > MAX_SCRYPT_WORK {
                    return Err(too_costly(&format!(
                        "scrypt with N = {n}, r = {r}, p = {p} ({} MiB), more than the \
                         {} MiB and N·r·p of {MAX_SCRYPT_WORK}",
                        memory / (1024 * 1024),
                        MAX_SCRYPT_MEMORY / (1024 * 1024)
                    )));
                }
            }
            _ => {}
        },
        _ => {
            return Err(Error::new(
                ErrorKind::MalformedKey,
                "this key is encrypted with a legacy PKCS#5 v1.5 scheme (DES or RC2), which is \
                 not supported; re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY \
                 -out KEY.new` (asks for the passphrase)",
            ));
        }
    }
    let plain = encrypted
        .decrypt(passphrase.as_bytes())
        .map_err(|_| wrong_passphrase())?;
    Ok(Zeroizing::new(plain.as_bytes().to_vec()))
}

/// A TLS client key (PEM) as PKCS#8 DER, decrypted with `passphrase` when it is an encrypted
/// PKCS#8 key (`BEGIN ENCRYPTED PRIVATE KEY`, as `openssl pkcs8 -topk8` and grid CAs'
/// `userkey.pem` have it). `Ok(None)` for an unencrypted key, which the TLS stack reads as it
/// is. The legacy OpenSSL form (`Proc-Type: 4,ENCRYPTED`) is refused with the command that
/// converts it; so is PKCS#12 (`.p12`), with the commands that split it.
///
/// Errors: [`ErrorKind::PassphraseRequired`], [`ErrorKind::WrongPassphrase`],
/// [`ErrorKind::MalformedKey`] (also for key derivations too costly to run).
pub fn decrypt_tls_key(
    pem: &[u8],
    passphrase: Option<&SecretString>,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let passphrase = passphrase
        .map(|p| p.expose_secret())
        .filter(|p| !p.is_empty());
    let Ok(text) = std::str::from_utf8(pem) else {
        // DER: a PKCS#12 file starts with a SEQUENCE holding the version 3.
        if pem.starts_with(&[0x30]) {
            return Err(Error::new(
                ErrorKind::MalformedKey,
                "this looks like a PKCS#12 (.p12) file, which is not supported; split it into \
                 PEM with `openssl pkcs12 -in FILE.p12 -clcerts -nokeys -out usercert.pem` and \
                 `openssl pkcs12 -in FILE.p12 -nocerts -out userkey.pem`",
            ));
        }
        return Err(not_a_key());
    };
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(Error::new(
            ErrorKind::MalformedKey,
            "this key is in the legacy OpenSSL encrypted PEM form (Proc-Type: 4,ENCRYPTED), \
             which is not supported; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in \
             userkey.pem -out userkey-pkcs8.pem` (keeps a passphrase)",
        ));
    }
    let Some(start) = text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") else {
        return Ok(None);
    };
    let Some(passphrase) = passphrase else {
        return Err(passphrase_required());
    };
    let block = &text[start..];
    let (label, der) = pem_rfc7468::decode_vec(block.as_bytes()).map_err(|_| not_a_key())?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(not_a_key());
    }
    let der = Zeroizing::new(der);
    decrypt_pkcs8(&der, passphrase).map(Some)
}

/// The most PBKDF2 iterations an encrypted PKCS#8 key may ask for (OpenSSL writes 2048,
/// OWASP advises 600,000 for SHA-256): about a second here at this bound.
pub(crate) const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;
/// The most memory scrypt may take for an encrypted PKCS#8 key (128·N·r bytes; OpenSSL's
/// own limit is 32 MiB).
pub(crate) const MAX_SCRYPT_MEMORY: u64 = 64 * 1024 * 1024;
/// The most work scrypt may do (N·r·p; OpenSSL's default is 2^17).
pub(crate) const MAX_SCRYPT_WORK: u64 = 1 << 22;

fn too_costly(what: &str) -> Error {
    Error::new(
        ErrorKind::MalformedKey,
        format!(
            "the key's passphrase is stretched with {what} sciauth accepts (decrypting would \
             take too long or too much memory); re-encrypt it with `openssl pkcs8 -topk8 -v2 \
             aes-256-cbc -in KEY -out KEY.new`"
        ),
    )
}

/// The most bcrypt-pbkdf rounds an OpenSSH key may ask for (`ssh-keygen -a`; OpenSSH's
/// default is 16, hardening guides say 100). A round costs about 5 ms here and a key with
/// its IV takes two passes, so this bounds a decryption to about 2.5 s on an idle core
/// (1024 rounds, the cap before a fuzz run timed out on a 512-round key, allowed 10 s).
const MAX_BCRYPT_ROUNDS: u32 = 256;

fn too_many_rounds(rounds: u32) -> Error {
    Error::new(
        ErrorKind::MalformedKey,
        format!(
            "the key's passphrase is stretched with {rounds} bcrypt rounds, more than the \
             {MAX_BCRYPT_ROUNDS} sciauth accepts (decrypting would take too long); re-encrypt it \
             with `ssh-keygen -p -a 100 -f KEY`"
        ),
    )
}

fn passphrase_required() -> Error {
    Error::new(
        ErrorKind::PassphraseRequired,
        "the key is encrypted and needs its passphrase (or load it into ssh-agent with ssh-add \
         and use the agent)",
    )
}

fn wrong_passphrase() -> Error {
    Error::new(
        ErrorKind::WrongPassphrase,
        "the passphrase does not decrypt this key; check it and try again",
    )
}

fn signing_failed() -> Error {
    Error::new(ErrorKind::Signing, "the crypto backend failed to sign")
}

fn bad_signature() -> Error {
    Error::new(
        ErrorKind::Agent,
        "the SSH agent returned a malformed ECDSA signature",
    )
}
