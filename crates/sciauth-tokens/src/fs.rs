//! Private files that many processes share safely: directories 0700, files 0600, writes that
//! are atomic and durable, and an exclusive lock across processes.
//!
//! The token store's `FileStore` and the Rucio session cache (`sciauth-rucio`) both keep
//! secrets in files that several processes read and rewrite at once; this is the one place
//! that knows how. Unix only, like the permissions it enforces.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// What [`ensure_private_dir`] and [`check_private_file`] had to mend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repaired {
    /// The file or directory that was mended.
    pub path: PathBuf,
    /// Its permission bits before (e.g. `0o644`).
    pub was: u32,
}

/// Creates `dir` (and its parents) with mode 0700, or, if it exists with group or other
/// permissions, takes them away and says so (as ssh does for `~/.ssh`, but mending instead
/// of refusing: a store nobody can use protects nothing).
pub fn ensure_private_dir(dir: &Path) -> io::Result<Option<Repaired>> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
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
}
