//! Small files the operator's tools and the server share (the token file,
//! the trusted witnesses, the cosignatures, a witness's state): written
//! atomically and durably under an exclusive lock, and watched for change
//! by their stamp. Not the log or the index (`store` owns those).
//!
//! A write goes to `<name>.tmp` beside the file, is synced, renamed over
//! the file, and the folder is synced, so the rename itself is durable and
//! a reader sees the old file or the new one, never half of either.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A file operation that failed, and on which path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` over `path` atomically and durably, mode 0600. The
/// caller holds whatever lock keeps other writers out, so a temporary file
/// left by a crash is stale and is removed first.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let name = path
        .file_name()
        .ok_or_else(|| at(path)(io::Error::other("not a file path")))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = name.to_os_string();
    temp_name.push(".tmp");
    let temp = dir.join(temp_name);
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(at(&temp)(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(at(&temp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(at(&temp))?;
    drop(file);
    std::fs::rename(&temp, path).map_err(at(path))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(at(&dir))
}

/// Opens (creating, mode 0600) `path` and takes an exclusive `flock` on
/// it, released when the returned file is closed. With `wait` it waits for
/// another holder; without, it answers `None` when the lock is held.
pub fn lock_exclusive(path: &Path, wait: bool) -> Result<Option<File>, FileError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(at(path))?;
    let operation = if wait {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::NonBlockingLockExclusive
    };
    match rustix::fs::flock(&file, operation) {
        Ok(()) => Ok(Some(file)),
        Err(e) if !wait && e == rustix::io::Errno::WOULDBLOCK => Ok(None),
        Err(e) => Err(at(path)(e.into())),
    }
}

/// Whether another open file holds an exclusive `flock` on `path` (false
/// when there is no such file). Takes and at once drops a shared lock.
pub fn is_locked(path: &Path) -> Result<bool, FileError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(at(path)(e)),
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(false),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(true),
        Err(e) => Err(at(path)(e.into())),
    }
}

/// What identifies one version of a file: a rename puts a new inode in
/// place, and an edit in place changes the length or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The stamp of the file at `path`, or `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Self>, FileError> {
        match std::fs::metadata(path) {
            Ok(meta) => Ok(Some(Self::of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(at(path)(e)),
        }
    }
}
