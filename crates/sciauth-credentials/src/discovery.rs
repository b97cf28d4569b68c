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
//!
//! On a shared host anyone can create `/tmp/bt_u$ID`, and a token planted there would make
//! the victim's tools act as the planter. So, as htgettoken and HTCondor do, a file is read
//! only when it is a regular file owned by the user and not writable by group or others
//! (`BEARER_TOKEN_FILE`, which the user named, may also be owned by root, and may be a
//! symbolic link; the `bt_u$ID` files may not). Any other file is skipped with a warning
//! saying why, and the search goes on.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

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
    /// `XDG_RUNTIME_DIR`), user id and directory standing in for `/tmp`. The user id names
    /// the `bt_u<uid>` files and is the owner a token file must have.
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
        // (path, named by the user)
        let mut files = Vec::new();
        if let Some(file) = self.var("BEARER_TOKEN_FILE") {
            files.push((PathBuf::from(file), true));
        }
        if let Some(dir) = self.var("XDG_RUNTIME_DIR") {
            files.push((Path::new(dir).join(self.file_name()), false));
        }
        files.push((self.tmp.join(self.file_name()), false));
        for (path, named) in files {
            let Some(text) = self.read_trusted(&path, named)? else {
                continue;
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

    /// The contents of the token file at `path`, or `None` when it is missing or must not be
    /// trusted (logged as a warning saying why). `named` is true for `BEARER_TOKEN_FILE`:
    /// the user chose that path, so it may be a symbolic link or owned by root, and failing
    /// to read it is an error rather than a reason to look elsewhere.
    fn read_trusted(&self, path: &Path, named: bool) -> Result<Option<Zeroizing<String>>> {
        let unreadable = |e: std::io::Error| {
            Error::new(
                ErrorKind::KeyFileUnreadable,
                "cannot read this bearer token file (WLCG token discovery)",
            )
            .with_source(e)
            .with_path(path)
        };
        // Not blocking: a FIFO planted where the token should be must not hang the open.
        let mut flags = OFlags::NONBLOCK;
        if !named {
            flags |= OFlags::NOFOLLOW;
        }
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if named => return Err(unreadable(e)),
            Err(e) => {
                let why = if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                    "it is a symbolic link, which another user may have planted".to_owned()
                } else {
                    format!("it cannot be read ({e})")
                };
                skip(path, &why);
                return Ok(None);
            }
        };
        // The checks are on the file that was opened, not on the path: nothing can swap it
        // in between.
        let metadata = file.metadata().map_err(unreadable)?;
        if let Some(why) = untrusted(&metadata, self.uid, named) {
            skip(path, &why);
            return Ok(None);
        }
        read_bounded(file).map(Some).map_err(unreadable)
    }
}

/// The most a token file may hold; tokens are a few kilobytes.
const MAX_TOKEN_FILE: u64 = 1024 * 1024;

fn read_bounded(file: File) -> std::io::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_TOKEN_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TOKEN_FILE {
        return Err(std::io::Error::other(
            "the file is larger than 1 MiB, which no token is",
        ));
    }
    Ok(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Why a token file with this metadata must not be used, if it must not: it is not a regular
/// file, it belongs to someone else, or someone else may write it.
fn untrusted(metadata: &std::fs::Metadata, uid: u32, named: bool) -> Option<String> {
    if !metadata.is_file() {
        return Some("it is not a regular file".to_owned());
    }
    let owner = metadata.uid();
    if owner != uid && !(named && owner == 0) {
        return Some(format!(
            "it is owned by uid {owner}, not by you (uid {uid}); another user may have put it \
             there to have your tools use their token"
        ));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "it is writable by group or others (mode {mode:04o}); make it private with \
             `chmod 600`"
        ));
    }
    None
}

fn skip(path: &Path, why: &str) {
    tracing::warn!(
        path = %path.display(),
        "WLCG token discovery skips this bearer token file: {why}"
    );
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
/// written to a temporary file in the same directory and renamed into place
/// ([`fs::write_atomic`](crate::fs::write_atomic)), so a reader never sees half a token.
pub fn write_bearer_token_file(path: &Path, token: &SecretString) -> Result<()> {
    let mut contents = zeroize::Zeroizing::new(Vec::with_capacity(token.expose_secret().len() + 1));
    contents.extend_from_slice(token.expose_secret().as_bytes());
    contents.push(b'\n');
    crate::fs::write_atomic(path, &contents).map_err(|e| {
        Error::new(
            ErrorKind::KeyFileUnreadable,
            "cannot write the bearer token file",
        )
        .with_source(e)
        .with_path(path)
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::{Arc, Mutex};

    use super::*;

    fn euid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn bt() -> String {
        format!("bt_u{}", euid())
    }

    fn discovery(vars: &[(&str, &str)], tmp: &Path) -> BearerTokenDiscovery {
        BearerTokenDiscovery::with_vars(vars.iter().map(|(k, v)| (*k, *v)), euid(), tmp)
    }

    fn found(d: &BearerTokenDiscovery) -> (String, TokenSource) {
        let t = d.discover().unwrap().expect("a token is found");
        (t.token().expose_secret().to_owned(), t.source().clone())
    }

    fn write_mode(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Runs `f` and returns what it logged at WARN and above.
    fn warnings<T>(f: impl FnOnce() -> T) -> (T, String) {
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let result = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (result, text)
    }

    #[test]
    fn follows_the_wlcg_order() {
        let tmp = tempfile::tempdir().unwrap();
        let xdg = tempfile::tempdir().unwrap();
        let file = tmp.path().join("purpose-token");
        std::fs::write(&file, "  from-file\n").unwrap();
        std::fs::write(xdg.path().join(bt()), "from-xdg\n").unwrap();
        std::fs::write(tmp.path().join(bt()), "from-tmp\n").unwrap();
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
        std::fs::write(xdg.path().join(bt()), "\n").unwrap();
        assert_eq!(found(&xdg_only).0, "from-tmp");
        std::fs::remove_file(tmp.path().join(bt())).unwrap();
        assert!(xdg_only.discover().unwrap().is_none());
    }

    #[test]
    fn files_others_can_write_are_skipped_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let xdg = tempfile::tempdir().unwrap();
        let named = tmp.path().join("named-token");
        let xdg_dir = xdg.path().to_str().unwrap();
        let vars = [
            ("BEARER_TOKEN_FILE", named.to_str().unwrap()),
            ("XDG_RUNTIME_DIR", xdg_dir),
        ];
        let d = discovery(&vars, tmp.path());
        write_mode(&named, "planted-named", 0o666);
        write_mode(&xdg.path().join(bt()), "planted-xdg", 0o620);
        write_mode(&tmp.path().join(bt()), "planted-tmp", 0o646);

        let (result, logged) = warnings(|| d.discover());
        assert!(result.unwrap().is_none(), "a planted token was used");
        assert!(
            logged.contains("mode 0666") && logged.contains("mode 0620"),
            "{logged}"
        );
        assert!(logged.contains("writable by group or others"), "{logged}");
        assert!(
            logged.contains(&*tmp.path().join(bt()).to_string_lossy()),
            "{logged}"
        );
        assert!(!logged.contains("planted-"), "{logged}");

        // Made private, each is used again, in order.
        for (path, expected) in [
            (tmp.path().join(bt()), "planted-tmp"),
            (xdg.path().join(bt()), "planted-xdg"),
            (named.clone(), "planted-named"),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(found(&d).0, expected);
        }
        // Readable by others is not a planted token: it is still used.
        std::fs::set_permissions(&named, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(found(&d).0, "planted-named");
    }

    #[test]
    fn files_of_another_user_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        // Discovery for another user than the one who owns the files here: their bt_u file
        // is ours, as a file planted for them by us would be.
        let other = euid().wrapping_add(1);
        let theirs = tmp.path().join(format!("bt_u{other}"));
        write_mode(&theirs, "planted", 0o600);
        let d = BearerTokenDiscovery::with_vars(Vec::<(String, String)>::new(), other, tmp.path());
        let (result, logged) = warnings(|| d.discover());
        assert!(result.unwrap().is_none());
        assert!(
            logged.contains(&format!(
                "owned by uid {}, not by you (uid {other})",
                euid()
            )),
            "{logged}"
        );

        // As root, a file really chowned to another user, in every place.
        if euid() == 0 {
            let xdg = tempfile::tempdir().unwrap();
            let named = tmp.path().join("named");
            for path in [&named, &xdg.path().join(bt()), &tmp.path().join(bt())] {
                write_mode(path, "planted", 0o600);
                std::os::unix::fs::chown(path, Some(4242), Some(4242)).unwrap();
            }
            let d = discovery(
                &[
                    ("BEARER_TOKEN_FILE", named.to_str().unwrap()),
                    ("XDG_RUNTIME_DIR", xdg.path().to_str().unwrap()),
                ],
                tmp.path(),
            );
            let (result, logged) = warnings(|| d.discover());
            assert!(result.unwrap().is_none());
            assert_eq!(logged.matches("owned by uid 4242").count(), 3, "{logged}");
        }
    }

    #[test]
    fn links_and_fifos_in_the_shared_places_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let xdg = tempfile::tempdir().unwrap();
        let mine = tmp.path().join("mine");
        write_mode(&mine, "my-token", 0o600);
        std::os::unix::fs::symlink(&mine, tmp.path().join(bt())).unwrap();
        // A FIFO nobody writes to would block an ordinary open forever.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            xdg.path().join(bt()),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let d = discovery(
            &[("XDG_RUNTIME_DIR", xdg.path().to_str().unwrap())],
            tmp.path(),
        );
        let (result, logged) = warnings(|| d.discover());
        assert!(result.unwrap().is_none());
        assert!(logged.contains("symbolic link"), "{logged}");
        assert!(logged.contains("not a regular file"), "{logged}");

        // Named by the user, a link is followed.
        let named = discovery(
            &[("BEARER_TOKEN_FILE", tmp.path().join(bt()).to_str().unwrap())],
            tmp.path(),
        );
        assert_eq!(found(&named).0, "my-token");
    }

    #[test]
    fn an_invalid_token_stops_the_search_with_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(bt()), "good-token").unwrap();
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
        assert_eq!(path, tmp.path().join(bt()));
        write_bearer_token_file(&path, &SecretString::from("eyJ.written.token")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(found(&d).0, "eyJ.written.token");
        let with_file = discovery(&[("BEARER_TOKEN_FILE", "/x/y")], tmp.path());
        assert_eq!(with_file.write_path(), Path::new("/x/y"));
    }
}
