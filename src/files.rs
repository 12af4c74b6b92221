//! Private files: the data directory, the ledger with its WAL and
//! shared-memory files, the writer lock and the log files hold patient data
//! (or say who is working on it), so on Unix they belong to the user alone —
//! `0700` for directories, `0600` for files — also when an earlier version,
//! a copy or a restore left them wider. A permission that had to be narrowed
//! is logged once, with the file's name only (the narrowed file is private
//! afterwards, so the next start finds nothing to fix).
//!
//! On Windows the data directory lives in the user's profile (`%APPDATA%`),
//! whose access list already keeps other users out; there these functions
//! only create.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Permission bits of a private directory.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// Permission bits of a private file.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents; the ones created are private.
/// An existing directory is left as it is (see [`private_dir`]).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Creates `dir` if needed and makes it private, narrowing wider
/// permissions. For directories that belong to the app alone (the data
/// directory, `logs/`).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    create_dir(dir)?;
    narrow(dir)
}

/// Opens `path` for reading and writing, creating it private if missing and
/// narrowing it if it existed with wider permissions (best effort, see
/// [`narrow_or_warn`]); never truncates.
pub fn open_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).read(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    narrow_or_warn(path);
    Ok(file)
}

/// [`narrow`], but a file system that keeps no Unix permissions (a FAT or
/// network drive) only earns a warning: the file must stay usable.
pub fn narrow_or_warn(path: &Path) {
    if let Err(error) = narrow(path) {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        tracing::warn!(file = %name, %error, "permissions could not be narrowed");
    }
}

/// Writes `bytes` to `path` (replacing its content); the file is private.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = open_private(path)?;
    file.set_len(0)?;
    io::Write::write_all(&mut file, bytes)
}

/// Narrows an existing file or directory to the owner alone; nothing
/// happens if it is missing or already private. Logs what it narrowed.
pub fn narrow(path: &Path) -> io::Result<()> {
    if let Some((was, now)) = narrow_quietly(path)? {
        log_narrowed(path, was, now);
    }
    Ok(())
}

/// The log line of a narrowed permission: the name only, never the full
/// path, which may contain the user's name.
pub fn log_narrowed(path: &Path, was: u32, now: u32) {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    tracing::warn!(
        file = %name,
        was = %format!("{was:o}"),
        now = %format!("{now:o}"),
        "permissions narrowed to the owner alone"
    );
}

/// [`narrow`] without the log line, for the log writer itself; returns the
/// permission bits before and after when it changed them.
pub fn narrow_quietly(path: &Path) -> io::Result<Option<(u32, u32)>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let mode = metadata.permissions().mode() & 0o777;
        let private = if metadata.is_dir() {
            DIR_MODE
        } else {
            FILE_MODE
        };
        if mode & !private == 0 {
            return Ok(None);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & private))?;
        Ok(Some((mode, mode & private)))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn created_files_and_directories_are_private() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("a").join("b");
        create_dir(&dir).expect("created");
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        write_private(&file, b"x").expect("written");
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn wider_permissions_are_narrowed_and_logged_once() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let file = dir.join("ledger.sqlite");
        std::fs::write(&file, b"").expect("file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");

        let ((), first) = crate::logging::capture(|| {
            private_dir(&dir).expect("dir narrowed");
            open_private(&file).expect("file narrowed");
        });
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert!(
            first.contains("ledger.sqlite") && first.contains("644"),
            "{first}"
        );
        assert!(
            !first.contains(&root.path().display().to_string()),
            "{first}"
        );
        let ((), second) = crate::logging::capture(|| {
            private_dir(&dir).expect("dir");
            open_private(&file).expect("file");
        });
        assert!(
            second.is_empty(),
            "nothing to fix the second time: {second}"
        );
    }
}
