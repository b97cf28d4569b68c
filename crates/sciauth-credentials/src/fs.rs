//! Private files that many processes share safely: directories 0700, files 0600, writes that
//! are atomic and durable, and an exclusive lock across processes.
//!
//! The token store's `FileStore` (`sciauth-tokens`), the Rucio session cache
//! (`sciauth-rucio`) and the WLCG bearer token file written here all keep secrets in files
//! that several processes read and rewrite at once; this is the one place that knows how. It
//! lives in the bottom crate so that every layer can use it without depending on another's
//! domain. Unix only, like the permissions it enforces.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

/// What [`ensure_private_dir`] and [`check_private_file`] had to mend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repaired {
    /// The file or directory that was mended.
    pub path: PathBuf,
    /// Its permission bits before (e.g. `0o644`).
    pub was: u32,
}

/// Creates `dir` (and its missing parents) with mode 0700, or checks that the existing one
/// is ours and mends it to 0700 if group or others may use it (as ssh does for `~/.ssh`, but
/// mending instead of refusing: a store nobody can use protects nothing).
///
/// Only a directory that is ours is ever changed. Refused, with an error of kind
/// [`PermissionDenied`](io::ErrorKind::PermissionDenied) that names the path and says why:
///
/// - `dir` is a symbolic link, or not a directory;
/// - `dir` is owned by another user;
/// - `dir` is a shared directory (sticky bit, like `/tmp`): making it private would lock
///   everyone else out, so the caller must use a subdirectory of its own;
/// - a directory on the way to `dir` lets others replace it: a component inside a sticky
///   directory (like `/tmp/sciauth-1000`) that another user owns or that is their symbolic
///   link, or a directory anyone may write without the sticky bit.
pub fn ensure_private_dir(dir: &Path) -> io::Result<Option<Repaired>> {
    // Checked before creating anything, so nothing is made inside another user's directory,
    // and again after, on what was made.
    check_ancestors(dir)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    check_ancestors(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(refused(
            dir,
            "it is a symbolic link; give the directory it points to instead, if it is yours",
        ));
    }
    if !meta.is_dir() {
        return Err(refused(dir, "it is not a directory"));
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(refused(
            dir,
            &format!(
                "it is owned by uid {}, not by you (uid {uid}); use a directory of your own",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & STICKY != 0 {
        return Err(refused(
            dir,
            &format!(
                "it is a shared directory (mode {mode:04o}, like /tmp), which must not be made \
                 private; use a subdirectory of your own in it"
            ),
        ));
    }
    let mode = mode & 0o777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    tracing::warn!(
        dir = %dir.display(),
        mode = format_args!("{mode:o}"),
        "token directory was readable by others; its permissions are now 0700"
    );
    Ok(Some(Repaired {
        path: dir.to_owned(),
        was: mode,
    }))
}

/// The sticky bit: in such a directory only an entry's owner may rename or remove it.
const STICKY: u32 = 0o1000;

/// Checks that no other user can replace `dir` through one of its existing ancestors: that
/// a symbolic link on the way belongs to us or root, that the entry below each sticky
/// directory (`/tmp/x` below `/tmp`) belongs to us or root, and that no ancestor is writable
/// by everyone without being sticky.
fn check_ancestors(dir: &Path) -> io::Result<()> {
    let uid = rustix::process::geteuid().as_raw();
    let trusted = |owner: u32| owner == uid || owner == 0;
    let mut below = dir;
    for ancestor in dir.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        let link = match std::fs::symlink_metadata(ancestor) {
            Ok(link) => link,
            // Created later, by us.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                below = ancestor;
                continue;
            }
            Err(e) => return Err(e),
        };
        if link.file_type().is_symlink() && !trusted(link.uid()) {
            return Err(refused(
                dir,
                &format!(
                    "{} on the way to it is a symbolic link owned by uid {}, who could point \
                     it anywhere",
                    ancestor.display(),
                    link.uid()
                ),
            ));
        }
        let mode = std::fs::metadata(ancestor)?.mode();
        if mode & STICKY != 0 {
            match std::fs::symlink_metadata(below) {
                Ok(entry) if !trusted(entry.uid()) => {
                    return Err(refused(
                        dir,
                        &format!(
                            "{} in the shared directory {} is owned by uid {}, not by you \
                             (uid {uid}); another user may have made it to catch your tokens",
                            below.display(),
                            ancestor.display(),
                            entry.uid()
                        ),
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        } else if mode & 0o002 != 0 {
            return Err(refused(
                dir,
                &format!(
                    "{} on the way to it is writable by everyone (mode {:04o}) without the \
                     sticky bit, so anyone could replace it",
                    ancestor.display(),
                    mode & 0o7777
                ),
            ));
        }
        below = ancestor;
    }
    Ok(())
}

fn refused(dir: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("refusing to keep tokens in {}: {why}", dir.display()),
    )
}

/// Checks that `path` (if it exists) is readable by its owner only; mends it to 0600 and
/// warns if not. The tokens in it may have been read by others already, so the warning says
/// to log in again.
pub fn check_private_file(path: &Path) -> io::Result<Option<Repaired>> {
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    tracing::warn!(
        file = %path.display(),
        mode = format_args!("{mode:o}"),
        "token file was readable by others; its permissions are now 0600. Others may have \
         read the tokens in it: log out and log in again to replace them"
    );
    Ok(Some(Repaired {
        path: path.to_owned(),
        was: mode,
    }))
}

/// Replaces `path` with `contents` atomically and durably: a temporary file in the same
/// directory (mode 0600 from its creation), written and fsynced, renamed over `path`, then
/// the directory fsynced. A reader sees the old file or the new one, never a mix; a crash at
/// any point leaves one of them.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let mut file = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// What [`check_token_dir`] found at a directory that holds a token file another program
/// shares (the Rucio client's `/tmp/<user>/.rucio_<user>`, or the directory of its
/// `auth_token_file_path`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenDir {
    /// Nothing there yet; [`ensure_private_dir`] may create it.
    Missing,
    /// A directory of ours that is not shared: [`ensure_private_dir`] may mend it to 0700.
    Private,
    /// A shared (sticky) directory owned by us or root, such as `/tmp` itself: files in it
    /// can be kept safely (only their owner may replace them), but the directory must never
    /// be made private.
    Shared,
}

/// Checks that a token file in `dir` would be safe to read and write, without changing
/// anything: no other user can replace `dir` or a directory on the way to it (the rules of
/// [`ensure_private_dir`]), and `dir` is not a symbolic link. A sticky directory is
/// accepted as [`TokenDir::Shared`] when it belongs to us or root; any other directory must
/// be ours and not writable by group or others.
///
/// Refusals are errors of kind [`PermissionDenied`](io::ErrorKind::PermissionDenied) that
/// name the path and the reason.
pub fn check_token_dir(dir: &Path) -> io::Result<TokenDir> {
    check_ancestors(dir)?;
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TokenDir::Missing),
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        return Err(refused(dir, "it is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(refused(dir, "it is not a directory"));
    }
    let uid = rustix::process::geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    if mode & STICKY != 0 {
        if meta.uid() == uid || meta.uid() == 0 {
            return Ok(TokenDir::Shared);
        }
        return Err(refused(
            dir,
            &format!(
                "it is a shared directory owned by uid {}, who may remove or replace what is in it",
                meta.uid()
            ),
        ));
    }
    if meta.uid() != uid {
        return Err(refused(
            dir,
            &format!(
                "it is owned by uid {}, not by you (uid {uid}); another user may have made it to \
                 plant or catch tokens",
                meta.uid()
            ),
        ));
    }
    if mode & 0o022 != 0 {
        return Err(refused(
            dir,
            &format!("group or others may write to it (mode {mode:04o})"),
        ));
    }
    Ok(TokenDir::Private)
}

/// Reads a file that another program (or another user) may have written, as hostile input:
/// opened without following a symbolic link and without blocking (a FIFO planted there
/// cannot hang the caller), then checked on the opened file: a regular file, ours, not
/// writable by group or others, at most `max_len` bytes. A file others may read is mended
/// to 0600 (with a warning, as [`check_private_file`] does). `Ok(None)` when there is no
/// such file.
///
/// Refusals are errors of kind [`PermissionDenied`](io::ErrorKind::PermissionDenied) (a
/// link, a file that is not ours or that others may write) or
/// [`InvalidData`](io::ErrorKind::InvalidData) (not a regular file, too long), naming the
/// path and the reason; they never quote the contents.
pub fn read_owned_file(
    path: &Path,
    max_len: u64,
) -> io::Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    use std::io::Read as _;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags::NOFOLLOW | libc_flags::NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc_flags::ELOOP) => {
            return Err(refused_file(
                path,
                io::ErrorKind::PermissionDenied,
                "it is a symbolic link, which is never followed",
            ));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refused_file(
            path,
            io::ErrorKind::InvalidData,
            "it is not a regular file",
        ));
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(refused_file(
            path,
            io::ErrorKind::PermissionDenied,
            &format!("it is owned by uid {}, not by you (uid {uid})", meta.uid()),
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(refused_file(
            path,
            io::ErrorKind::PermissionDenied,
            &format!("group or others may write to it (mode {mode:04o})"),
        ));
    }
    if meta.len() > max_len {
        return Err(refused_file(
            path,
            io::ErrorKind::InvalidData,
            &format!(
                "it is {} bytes long, more than the {max_len} expected",
                meta.len()
            ),
        ));
    }
    if mode & 0o044 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tracing::warn!(
            file = %path.display(),
            mode = format_args!("{mode:o}"),
            "token file was readable by others; its permissions are now 0600. Others may have \
             read the token in it: log out and log in again to replace it"
        );
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    // The length may have grown since the check: read one byte more than allowed to tell.
    file.take(max_len + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_len {
        return Err(refused_file(
            path,
            io::ErrorKind::InvalidData,
            &format!("it is longer than the {max_len} bytes expected"),
        ));
    }
    Ok(Some(bytes))
}

/// The most a file the user names (a configuration, a key, a certificate, a secret) may
/// hold: far more than any of them needs, far less than what exhausts memory.
pub const MAX_NAMED_FILE: u64 = 4 * 1024 * 1024;

/// The most a secret file (a client secret, a password) may hold.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a file the user named (a configuration, a key, a certificate, a secret file) with
/// a cap: at most `max_len` bytes, else an error of kind
/// [`InvalidData`](io::ErrorKind::InvalidData) that names the path and the cap, never the
/// contents. A path such as `/dev/zero`, or a file that grows while it is read, cannot
/// exhaust memory. Links are followed and pipes read (`/dev/fd/3`, `<(pass show ...)`): the
/// user chose the path. The bytes are wiped when dropped, since they may be a secret.
pub fn read_limited(path: &Path, max_len: u64) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::io::Read as _;
    let file = File::open(path)?;
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    // One byte more than allowed, to tell a file of exactly `max_len` from a longer one.
    file.take(max_len.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is longer than the {max_len} bytes such a file may hold",
                path.display()
            ),
        ));
    }
    Ok(bytes)
}

/// [`read_limited`] for text: the same cap, and an error of kind
/// [`InvalidData`](io::ErrorKind::InvalidData) when the file is not UTF-8.
pub fn read_limited_text(path: &Path, max_len: u64) -> io::Result<zeroize::Zeroizing<String>> {
    let mut bytes = read_limited(path, max_len)?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(zeroize::Zeroizing::new(text)),
        Err(e) => {
            // Wipe what was read before refusing it.
            let mut rejected = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut rejected);
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not UTF-8 text", path.display()),
            ))
        }
    }
}

/// The flags `read_owned_file` opens with, and the error a link gives, as the OS numbers them.
mod libc_flags {
    #[allow(clippy::cast_possible_wrap, reason = "small flag bits")]
    pub(super) const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    #[allow(clippy::cast_possible_wrap, reason = "small flag bits")]
    pub(super) const NONBLOCK: i32 = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    pub(super) const ELOOP: i32 = rustix::io::Errno::LOOP.raw_os_error();
}

fn refused_file(path: &Path, kind: io::ErrorKind, why: &str) -> io::Error {
    io::Error::new(
        kind,
        format!("not using the token file {}: {why}", path.display()),
    )
}

/// An exclusive lock across processes, held until dropped: `std::fs::File::lock` on a lock
/// file next to the data (never on the data file, which `write_atomic` replaces).
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// Blocks until the lock on `path` (created 0600 if missing) is ours.
    pub fn acquire(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        file.lock()?;
        Ok(Self { file })
    }

    /// Waits for the lock without blocking the async runtime.
    pub async fn acquire_async(path: PathBuf) -> io::Result<Self> {
        tokio::task::spawn_blocking(move || Self::acquire(&path))
            .await
            .map_err(io::Error::other)?
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it prompt.
        let _ = self.file.unlock();
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_named_file_is_read_up_to_its_cap_and_no_further() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("secret");
        std::fs::write(&file, b"12345678").unwrap();
        assert_eq!(&read_limited(&file, 8).unwrap()[..], b"12345678");
        let error = read_limited(&file, 7).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error.to_string().contains("longer than the 7 bytes"),
            "{error}"
        );
        assert!(!error.to_string().contains("1234"), "{error}");
        // An endless device is cut off at the cap instead of exhausting memory.
        let error = read_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(&*read_limited_text(&file, 8).unwrap(), "12345678");
        std::fs::write(&file, b"\xff\xfe").unwrap();
        let error = read_limited_text(&file, 8).unwrap_err();
        assert!(error.to_string().contains("not UTF-8"), "{error}");
    }

    #[test]
    fn directories_and_files_end_up_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/tokens");
        assert_eq!(ensure_private_dir(&dir).unwrap(), None);
        assert_eq!(mode(&dir), 0o700);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let repaired = ensure_private_dir(&dir).unwrap().unwrap();
        assert_eq!(repaired.was, 0o755);
        assert_eq!(mode(&dir), 0o700);

        let file = dir.join("default.json");
        write_atomic(&file, b"{}").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(check_private_file(&file).unwrap(), None);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(check_private_file(&file).unwrap().unwrap().was, 0o644);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(check_private_file(&dir.join("missing")).unwrap(), None);
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn refusal(dir: &Path) -> String {
        let error = ensure_private_dir(dir).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{error}");
        error.to_string()
    }

    #[test]
    fn a_shared_directory_is_never_made_private() {
        // A stand-in for /tmp: sticky and open to all. As root it is "ours" by owner, which
        // is how the old code came to chmod /tmp to 0700.
        let root = tempfile::tempdir().unwrap();
        let shared = root.path().join("tmp");
        std::fs::create_dir(&shared).unwrap();
        set_mode(&shared, 0o1777);

        let message = refusal(&shared);
        assert!(message.contains("shared directory (mode 1777"), "{message}");
        assert_eq!(mode(&shared), 0o777);
        assert_ne!(std::fs::metadata(&shared).unwrap().mode() & STICKY, 0);

        // A subdirectory of our own in it is fine, and leaves the shared one alone.
        let own = shared.join("sciauth-test/rucio");
        assert_eq!(ensure_private_dir(&own).unwrap(), None);
        assert_eq!(mode(&own), 0o700);
        assert_eq!(mode(&shared.join("sciauth-test")), 0o700);
        assert_eq!(std::fs::metadata(&shared).unwrap().mode() & 0o7777, 0o1777);

        // So is a directory anyone may write without the sticky bit: anyone could swap
        // what is in it.
        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        set_mode(&open, 0o777);
        let message = refusal(&open.join("tokens"));
        assert!(message.contains("writable by everyone"), "{message}");
        assert!(!open.join("tokens").exists(), "made something in it");
    }

    #[test]
    fn a_symlinked_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        std::fs::create_dir(&real).unwrap();
        set_mode(&real, 0o755);
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        let message = refusal(&link);
        assert!(message.contains("symbolic link"), "{message}");
        assert_eq!(mode(&real), 0o755, "the link's target was changed");
    }

    #[test]
    fn a_foreign_directory_is_refused() {
        if !is_root() {
            // Every directory of another user here is also one we cannot change: check
            // the refusal on one that certainly exists.
            let message = refusal(Path::new("/"));
            assert!(message.contains("not by you"), "{message}");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let theirs = root.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        set_mode(&theirs, 0o755);
        std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).unwrap();
        let message = refusal(&theirs);
        assert!(
            message.contains("owned by uid 4242, not by you"),
            "{message}"
        );
        assert_eq!(mode(&theirs), 0o755);

        // In a shared directory, another user's directory or link on the way is refused:
        // they could swap what lies below.
        let shared = root.path().join("tmp");
        std::fs::create_dir(&shared).unwrap();
        set_mode(&shared, 0o1777);
        let planted = shared.join("sciauth-0");
        std::fs::create_dir(&planted).unwrap();
        set_mode(&planted, 0o755);
        std::os::unix::fs::chown(&planted, Some(4242), Some(4242)).unwrap();
        let message = refusal(&planted.join("rucio"));
        assert!(message.contains("in the shared directory"), "{message}");
        assert!(!planted.join("rucio").exists(), "made something in it");

        let target = root.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        let link = shared.join("sciauth-1");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(4242), Some(4242)).unwrap();
        let message = refusal(&link.join("rucio"));
        assert!(
            message.contains("symbolic link owned by uid 4242"),
            "{message}"
        );
        assert!(
            !target.join("rucio").exists(),
            "made something where it points"
        );
    }

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.json");
        write_atomic(&file, b"old").unwrap();
        write_atomic(&file, b"new contents").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new contents");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["t.json"]);
    }

    #[test]
    fn the_lock_excludes_other_holders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.lock");
        let held = FileLock::acquire(&path).unwrap();
        // Another open file description contends like another process would.
        let other = File::open(&path).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().unwrap();
    }
    #[test]
    fn token_dirs_of_others_or_open_to_others_are_refused_and_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("own");
        assert_eq!(check_token_dir(&dir).unwrap(), TokenDir::Missing);
        std::fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o755);
        assert_eq!(check_token_dir(&dir).unwrap(), TokenDir::Private);
        set_mode(&dir, 0o775);
        let error = check_token_dir(&dir).unwrap_err();
        assert!(
            error.to_string().contains("group or others may write"),
            "{error}"
        );
        assert_eq!(mode(&dir), 0o775, "a refused directory was changed");

        let shared = root.path().join("tmp");
        std::fs::create_dir(&shared).unwrap();
        set_mode(&shared, 0o1777);
        assert_eq!(check_token_dir(&shared).unwrap(), TokenDir::Shared);
        assert_eq!(std::fs::metadata(&shared).unwrap().mode() & 0o7777, 0o1777);

        let link = root.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(
            check_token_dir(&link)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );

        if is_root() {
            let theirs = shared.join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            set_mode(&theirs, 0o700);
            std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).unwrap();
            let error = check_token_dir(&theirs).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{error}");
        }
    }

    #[test]
    fn files_others_wrote_are_read_only_when_safe() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        assert!(read_owned_file(&file, 100).unwrap().is_none());
        std::fs::write(&file, b"token").unwrap();
        set_mode(&file, 0o600);
        assert_eq!(&**read_owned_file(&file, 100).unwrap().unwrap(), b"token");

        // Readable by others: mended, and used.
        set_mode(&file, 0o644);
        assert!(read_owned_file(&file, 100).unwrap().is_some());
        assert_eq!(mode(&file), 0o600);

        // Writable by others: refused, unchanged, never quoted.
        set_mode(&file, 0o666);
        let error = read_owned_file(&file, 100).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        assert!(!error.to_string().contains("token\""), "{error}");
        assert_eq!(mode(&file), 0o666);
        set_mode(&file, 0o600);

        // Too long.
        std::fs::write(&file, vec![b'a'; 101]).unwrap();
        assert_eq!(
            read_owned_file(&file, 100).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        // A link is never followed, whatever it points at.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let error = read_owned_file(&link, 1000).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");

        // A FIFO does not block the reader.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(
            read_owned_file(&fifo, 100).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        if is_root() {
            std::os::unix::fs::chown(&file, Some(4242), Some(4242)).unwrap();
            let error = read_owned_file(&file, 1000).unwrap_err();
            assert!(error.to_string().contains("owned by uid 4242"), "{error}");
        }
    }
}
