//! The witness files, at the edge (the one module of `witness` that does
//! I/O, as `access::tokens` is for `access`):
//!
//! - a witness's state file ([`StateFile`]): its memory of the last
//!   checkpoint it cosigned, held under an exclusive `flock` of
//!   `<state>.lock` by the one process that witnesses with it;
//! - the log's trusted witnesses, `DATA/witnesses` ([`TrustFile`]),
//!   changed only by `oretrail witness trust|untrust` under an exclusive
//!   `flock` of `DATA/witnesses.lock`;
//! - the log's book of cosignatures, `DATA/cosignatures`, written only by
//!   the server ([`WitnessDesk`]), which also re-reads the trusted
//!   witnesses whenever that file changes.
//!
//! Every write is atomic and durable: a temporary file beside the target
//! (mode 0600), written, `fsync`ed, renamed over it, then the folder
//! `fsync`ed, so a reader (or a restart after a crash) sees the old file
//! or the new one, never a mix.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::book::{CosignatureBook, Recorded, Submission};
use super::state::WitnessState;
use super::trust::{TrustError, TrustedWitnesses};
use crate::files::{self, Stamp};
use crate::merkle::Hash;
use crate::merkle::checkpoint::NoteSignature;

/// The trusted witnesses of a data folder.
pub const TRUSTED_FILE: &str = "witnesses";
/// The cosignatures a log keeps, in its data folder.
pub const BOOK_FILE: &str = "cosignatures";
/// Held with an exclusive `flock` while [`TRUSTED_FILE`] is changed.
const TRUST_LOCK_FILE: &str = "witnesses.lock";

/// Why a witness file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WitnessFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path} is in use by another witness process (its lock file is held)")]
    InUse { path: PathBuf },
    #[error(
        "refusing to write {path}: it holds size {on_disk} with another history than the state to write (size {size}); a witness state never goes backwards"
    )]
    Backwards {
        path: PathBuf,
        on_disk: u64,
        size: u64,
    },
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("the ledger has no origin yet (no genesis entry)")]
    NoOrigin,
}

fn io_error(path: &Path, source: io::Error) -> WitnessFileError {
    WitnessFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file's text, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, WitnessFileError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| WitnessFileError::Malformed {
                path: path.to_path_buf(),
                reason: "it is not UTF-8 text".into(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Writes `text` over `path` atomically and durably (`crate::files`).
pub fn write_atomically(path: &Path, text: &str) -> Result<(), WitnessFileError> {
    files::write_atomically(path, text.as_bytes()).map_err(from_file)
}

/// An exclusive lock on `path`: waits for another holder with `wait`,
/// else refuses with `InUse`.
fn lock_file(path: &Path, wait: bool) -> Result<File, WitnessFileError> {
    files::lock_exclusive(path, wait)
        .map_err(from_file)?
        .ok_or_else(|| WitnessFileError::InUse {
            path: path.to_path_buf(),
        })
}

fn from_file(e: files::FileError) -> WitnessFileError {
    io_error(&e.path, e.source)
}

/// A witness's state file, locked for this process while the value lives.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// Closing it releases the `flock`.
    _lock: File,
}

impl StateFile {
    /// Locks the state file at `path` (through `<path>.lock` beside it) so
    /// that no other witness process uses it meanwhile; fails with
    /// `InUse` when one does. The file itself need not exist yet.
    pub fn lock(path: &Path) -> Result<Self, WitnessFileError> {
        let mut lock_name = path
            .file_name()
            .ok_or_else(|| io_error(path, io::Error::other("not a file path")))?
            .to_os_string();
        lock_name.push(".lock");
        let lock = lock_file(&path.with_file_name(lock_name), false)?;
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state on file; `None` before the first cosignature.
    pub fn load(&self) -> Result<Option<WitnessState>, WitnessFileError> {
        let Some(text) = read_optional(&self.path)? else {
            return Ok(None);
        };
        WitnessState::parse(&text)
            .map(Some)
            .map_err(|e| WitnessFileError::Malformed {
                path: self.path.clone(),
                reason: e.0,
            })
    }

    /// Writes `state` atomically. As a last guard, refuses to replace a
    /// state of another log, or a larger one, or another root at the same
    /// size (the decision never asks for that; a bug or a hand edit might).
    pub fn store(&self, state: &WitnessState) -> Result<(), WitnessFileError> {
        if let Some(on_disk) = self.load()? {
            let (old, new) = (on_disk.checkpoint(), state.checkpoint());
            let backwards = on_disk.log() != state.log()
                || old.size() > new.size()
                || (old.size() == new.size() && old.root() != new.root());
            if backwards {
                return Err(WitnessFileError::Backwards {
                    path: self.path.clone(),
                    on_disk: old.size(),
                    size: new.size(),
                });
            }
        }
        write_atomically(&self.path, &state.to_text())
    }
}

/// The trusted-witnesses file of a data folder.
#[derive(Debug, Clone)]
pub struct TrustFile {
    data: PathBuf,
}

impl TrustFile {
    /// The file of the data folder `data`.
    pub fn of(data: &Path) -> Self {
        Self {
            data: data.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.data.join(TRUSTED_FILE)
    }

    /// The witnesses trusted now; none when the file does not exist.
    pub fn load(&self) -> Result<TrustedWitnesses, WitnessFileError> {
        let path = self.path();
        match read_optional(&path)? {
            None => Ok(TrustedWitnesses::default()),
            Some(text) => TrustedWitnesses::parse(&text)
                .map_err(|reason| WitnessFileError::Malformed { path, reason }),
        }
    }

    /// Changes the file under its lock: reads it, applies `change` and, if
    /// that succeeds, writes the result atomically.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut TrustedWitnesses) -> Result<T, WitnessFileError>,
    ) -> Result<T, WitnessFileError> {
        let lock = lock_file(&self.data.join(TRUST_LOCK_FILE), true)?;
        let mut trusted = self.load()?;
        let answer = change(&mut trusted)?;
        write_atomically(&self.path(), &trusted.to_text())?;
        drop(lock);
        Ok(answer)
    }
}

struct TrustWatch {
    /// The stamp the table was read at; `None` inside `Some`: missing file.
    read_at: Option<Option<Stamp>>,
    table: Arc<TrustedWitnesses>,
}

/// The server's side of witnessing over one data folder: the trusted
/// witnesses (re-read whenever `DATA/witnesses` changes, so `oretrail
/// witness trust` takes effect at once) and the book of cosignatures
/// (read on first use, then kept in memory and written through). All of
/// it blocking: call it from a blocking thread.
pub struct WitnessDesk {
    data: PathBuf,
    origin: Option<String>,
    trust: Mutex<TrustWatch>,
    /// `None` until read; a read that fails is tried again next time.
    book: Mutex<Option<CosignatureBook>>,
}

impl std::fmt::Debug for WitnessDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessDesk")
            .field("data", &self.data)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl WitnessDesk {
    /// The desk of the log `origin` in the data folder `data`. Reads
    /// nothing yet.
    pub fn new(data: &Path, origin: Option<String>) -> Self {
        Self {
            data: data.to_path_buf(),
            origin,
            trust: Mutex::new(TrustWatch {
                read_at: None,
                table: Arc::new(TrustedWitnesses::default()),
            }),
            book: Mutex::new(None),
        }
    }

    /// The trusted witnesses as the file holds them now. A file that
    /// cannot be read or parsed is an error every time until it is fixed
    /// (no witness is trusted meanwhile).
    pub fn trusted(&self) -> Result<Arc<TrustedWitnesses>, WitnessFileError> {
        let file = TrustFile::of(&self.data);
        let path = file.path();
        // The lock guards plain data that every update leaves whole.
        let mut watch = self.trust.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = Stamp::read(&path).map_err(from_file)?;
        if watch.read_at != Some(stamp) {
            watch.read_at = None;
            watch.table = Arc::new(file.load()?);
            watch.read_at = Some(stamp);
        }
        Ok(watch.table.clone())
    }

    fn with_book<T>(
        &self,
        use_book: impl FnOnce(&mut CosignatureBook, &Path) -> Result<T, WitnessFileError>,
    ) -> Result<T, WitnessFileError> {
        let origin = self.origin.as_deref().ok_or(WitnessFileError::NoOrigin)?;
        let path = self.data.join(BOOK_FILE);
        let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
        if book.is_none() {
            let read = match read_optional(&path)? {
                None => CosignatureBook::new(origin),
                Some(text) => {
                    CosignatureBook::parse(&text).map_err(|reason| WitnessFileError::Malformed {
                        path: path.clone(),
                        reason,
                    })?
                }
            };
            if read.origin() != origin {
                return Err(WitnessFileError::Malformed {
                    path,
                    reason: format!(
                        "it holds cosignatures of the log {:?}, not of {origin:?}",
                        read.origin()
                    ),
                });
            }
            *book = Some(read);
        }
        match book.as_mut() {
            Some(book) => use_book(book, &path),
            None => Err(WitnessFileError::NoOrigin),
        }
    }

    /// The cosignature lines to serve with the checkpoint of `size` and
    /// `root`: one per trusted witness that cosigned it.
    pub fn lines(&self, size: u64, root: &Hash) -> Result<Vec<NoteSignature>, WitnessFileError> {
        let trusted = self.trusted()?;
        self.with_book(|book, _| Ok(book.lines(size, root, &trusted)))
    }

    /// The cosigned checkpoint of `size` as kept in the book, if any.
    pub fn note(&self, size: u64) -> Result<Option<String>, WitnessFileError> {
        let trusted = self.trusted()?;
        self.with_book(|book, _| Ok(book.note(size, &trusted)))
    }

    /// Records a checked submission; writes the book when anything
    /// changed, before answering, so an accepted cosignature is durable.
    pub fn record(&self, submission: &Submission) -> Result<Vec<Recorded>, WitnessFileError> {
        self.with_book(|book, path| {
            let mut changed = book.clone();
            let recorded = changed.record(submission);
            if recorded.iter().any(|r| *r != Recorded::Kept) {
                write_atomically(path, &changed.to_text())?;
                *book = changed;
            }
            Ok(recorded)
        })
    }
}
