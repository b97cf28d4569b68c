//! WLCG Bearer Token Discovery: where grid tools (xrootd, gfal, davix, HTCondor) look for a
//! bearer token, and where sciauth puts one for them.
//!
//! The order (WLCG-AuthZ-WG/bearer-token-discovery, `specification.md`), with `$ID` the
//! effective user id:
//!
//! 1. `BEARER_TOKEN`: its value is the token;
//! 2. `BEARER_TOKEN_FILE`: the contents of that file;
//! 3. `$XDG_RUNTIME_DIR/bt_u$ID`, if `XDG_RUNTIME_DIR` is set;
//! 4. `/tmp/bt_u$ID`.
//!
//! Leading and trailing whitespace is stripped and an empty value moves on to the next step.
//! Implementations differ on step 3 to 4 (HTCondor falls back to `/tmp` when the XDG file
//! is missing, scitokens does not); this one falls back, so it finds what either writes.
//! A value that is not a valid RFC 6750 token ends the search with an error, as the
//! specification asks.

use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, ErrorKind, Result};
use crate::fixed::BearerToken;

/// Where a discovered token came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The `BEARER_TOKEN` environment variable.
    Environment,
    /// A file (`BEARER_TOKEN_FILE`, or a `bt_u<uid>` file).
    File(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("$BEARER_TOKEN"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A token found by discovery.
pub struct DiscoveredToken {
    token: SecretString,
    source: TokenSource,
}

impl DiscoveredToken {
    /// The token.
    pub fn token(&self) -> &SecretString {
        &self.token
    }

    /// Where it was found.
    pub fn source(&self) -> &TokenSource {
        &self.source
    }

    /// A credential sending it as `Authorization: Bearer <token>`.
    pub fn into_credential(self) -> Result<BearerToken> {
        BearerToken::new(self.token.expose_secret())
    }
}

impl fmt::Debug for DiscoveredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveredToken")
            .field("token", &"[redacted]")
            .field("source", &self.source)
            .finish()
    }
}

/// Bearer token discovery over an environment and a user id.
///
/// [`BearerTokenDiscovery::from_env`] reads the process environment; tests build one over a
/// fixed set of variables with [`BearerTokenDiscovery::with_vars`].
pub struct BearerTokenDiscovery {
    vars: Vec<(String, OsString)>,
    uid: u32,
    tmp: PathBuf,
}

impl BearerTokenDiscovery {
    /// Discovery over this process's environment and effective user id.
    pub fn from_env() -> Self {
        let vars = ["BEARER_TOKEN", "BEARER_TOKEN_FILE", "XDG_RUNTIME_DIR"]
            .into_iter()
            .filter_map(|name| std::env::var_os(name).map(|v| (name.to_owned(), v)))
            .collect();
        Self {
            vars,
            uid: rustix::process::geteuid().as_raw(),
            tmp: PathBuf::from("/tmp"),
        }
    }

    /// Discovery over the given variables (`BEARER_TOKEN`, `BEARER_TOKEN_FILE`,
    /// `XDG_RUNTIME_DIR`), user id and directory standing in for `/tmp`.
    pub fn with_vars<K, V>(
        vars: impl IntoIterator<Item = (K, V)>,
        uid: u32,
        tmp: impl Into<PathBuf>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<OsString>,
    {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            uid,
            tmp: tmp.into(),
        }
    }

    fn var(&self, name: &str) -> Option<&OsString> {
        self.vars
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v)
    }

    /// Finds a token, or `Ok(None)` when every place is unset, missing or empty.
    pub fn discover(&self) -> Result<Option<DiscoveredToken>> {
        if let Some(value) = self.var("BEARER_TOKEN") {
            let text = value.to_string_lossy();
            if let Some(token) = checked(&text, &TokenSource::Environment)? {
                return Ok(Some(DiscoveredToken {
                    token,
                    source: TokenSource::Environment,
                }));
            }
        }
        let mut files = Vec::new();
        if let Some(file) = self.var("BEARER_TOKEN_FILE") {
            files.push(PathBuf::from(file));
        }
        if let Some(dir) = self.var("XDG_RUNTIME_DIR") {
            files.push(Path::new(dir).join(self.file_name()));
        }
        files.push(self.tmp.join(self.file_name()));
        for path in files {
            let text = match std::fs::read(&path) {
                Ok(bytes) => zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::KeyFileUnreadable,
                        "cannot read this bearer token file (WLCG token discovery)",
                    )
                    .with_source(e)
                    .with_path(&path));
                }
            };
            let source = TokenSource::File(path);
            if let Some(token) = checked(&text, &source)? {
                return Ok(Some(DiscoveredToken { token, source }));
            }
        }
        Ok(None)
    }

    /// Where a tool should write the token for others to discover: `BEARER_TOKEN_FILE` if
    /// set, else `$XDG_RUNTIME_DIR/bt_u<uid>`, else `/tmp/bt_u<uid>`.
    pub fn write_path(&self) -> PathBuf {
        if let Some(file) = self.var("BEARER_TOKEN_FILE") {
            return PathBuf::from(file);
        }
        match self.var("XDG_RUNTIME_DIR") {
            Some(dir) => Path::new(dir).join(self.file_name()),
            None => self.tmp.join(self.file_name()),
        }
    }

    fn file_name(&self) -> String {
        format!("bt_u{}", self.uid)
    }
}

impl fmt::Debug for BearerTokenDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokenDiscovery")
            .field("uid", &self.uid)
            .field("tmp", &self.tmp)
            .finish_non_exhaustive()
    }
}

/// Strips whitespace; `None` for an empty value; an error for one that is not an RFC 6750
/// `b64token` (which is what the specification calls valid).
fn checked(text: &str, source: &TokenSource) -> Result<Option<SecretString>> {
    let token = text.trim();
    if token.is_empty() {
        return Ok(None);
    }
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !valid {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the bearer token in {source} is not a valid token (RFC 6750 allows letters, \
                 digits and -._~+/ only); fix or remove it"
            ),
        ));
    }
    Ok(Some(SecretString::from(token.to_owned())))
}

/// Finds a bearer token the WLCG way in this process's environment (see the module docs).
pub fn discover_bearer_token() -> Result<Option<DiscoveredToken>> {
    BearerTokenDiscovery::from_env().discover()
}

/// Writes `token` (plus a newline) to `path` for other tools to discover: created 0600,
/// written to a temporary file in the same directory and renamed into place, so a reader
/// never sees half a token.
pub fn write_bearer_token_file(path: &Path, token: &SecretString) -> Result<()> {
    let io_error = |e: std::io::Error| {
        Error::new(
            ErrorKind::KeyFileUnreadable,
            "cannot write the bearer token file",
        )
        .with_source(e)
        .with_path(path)
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // tempfile creates the file with mode 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io_error)?;
    file.write_all(token.expose_secret().as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.as_file().sync_all())
        .map_err(io_error)?;
    file.persist(path).map_err(|e| io_error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn discovery(vars: &[(&str, &str)], tmp: &Path) -> BearerTokenDiscovery {
        BearerTokenDiscovery::with_vars(vars.iter().map(|(k, v)| (*k, *v)), 1234, tmp)
    }

    fn found(d: &BearerTokenDiscovery) -> (String, TokenSource) {
        let t = d.discover().unwrap().expect("a token is found");
        (t.token().expose_secret().to_owned(), t.source().clone())
    }

    #[test]
    fn follows_the_wlcg_order() {
        let tmp = tempfile::tempdir().unwrap();
        let xdg = tempfile::tempdir().unwrap();
        let file = tmp.path().join("purpose-token");
        std::fs::write(&file, "  from-file\n").unwrap();
        std::fs::write(xdg.path().join("bt_u1234"), "from-xdg\n").unwrap();
        std::fs::write(tmp.path().join("bt_u1234"), "from-tmp\n").unwrap();
        let xdg_dir = xdg.path().to_str().unwrap();
        let file_str = file.to_str().unwrap();

        let all = discovery(
            &[
                ("BEARER_TOKEN", " from-env "),
                ("BEARER_TOKEN_FILE", file_str),
                ("XDG_RUNTIME_DIR", xdg_dir),
            ],
            tmp.path(),
        );
        assert_eq!(found(&all), ("from-env".into(), TokenSource::Environment));

        let no_env = discovery(
            &[
                ("BEARER_TOKEN", "   "),
                ("BEARER_TOKEN_FILE", file_str),
                ("XDG_RUNTIME_DIR", xdg_dir),
            ],
            tmp.path(),
        );
        assert_eq!(
            found(&no_env),
            ("from-file".into(), TokenSource::File(file.clone()))
        );

        let xdg_only = discovery(&[("XDG_RUNTIME_DIR", xdg_dir)], tmp.path());
        assert_eq!(found(&xdg_only).0, "from-xdg");
        let nothing_set = discovery(&[], tmp.path());
        assert_eq!(found(&nothing_set).0, "from-tmp");

        // A missing or empty XDG file falls back to /tmp, as HTCondor does.
        std::fs::write(xdg.path().join("bt_u1234"), "\n").unwrap();
        assert_eq!(found(&xdg_only).0, "from-tmp");
        std::fs::remove_file(tmp.path().join("bt_u1234")).unwrap();
        assert!(xdg_only.discover().unwrap().is_none());
    }

    #[test]
    fn an_invalid_token_stops_the_search_with_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("bt_u1234"), "good-token").unwrap();
        let d = discovery(&[("BEARER_TOKEN", "not a token\u{7}")], tmp.path());
        let err = d.discover().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("$BEARER_TOKEN"), "{err}");
        assert!(!err.to_string().contains("not a token"));
    }

    #[test]
    fn written_files_are_private_and_discoverable() {
        let tmp = tempfile::tempdir().unwrap();
        let d = discovery(&[], tmp.path());
        let path = d.write_path();
        assert_eq!(path, tmp.path().join("bt_u1234"));
        write_bearer_token_file(&path, &SecretString::from("eyJ.written.token")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(found(&d).0, "eyJ.written.token");
        let with_file = discovery(&[("BEARER_TOKEN_FILE", "/x/y")], tmp.path());
        assert_eq!(with_file.write_path(), Path::new("/x/y"));
    }
}
