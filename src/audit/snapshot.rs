//! The acknowledged part of a log file, read without the index.
//!
//! The writer appends each batch (its entry frames and one checkpoint
//! frame) with one positional write and never rewrites earlier bytes, so
//! the bytes up to the end of an intact checkpoint frame never change once
//! written. A reader that stops there sees a fixed, complete log even while
//! a server appends after it: an in-flight or torn final batch is simply
//! not part of the snapshot. Damage before the last intact checkpoint is
//! damage inside acknowledged data, and is refused.
//!
//! An audit bundle holds the same frames behind its own header, and must
//! be complete: [`LogSnapshot::open_bundle`] reads it as a snapshot of the
//! whole of them, so every export and report can be made from a bundle
//! offline, verified as `audit verify` verifies it.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::AuditError;
use crate::codec;
use crate::ledger::{CheckpointRecord, Container, Observer, VerifyFailure, VerifyReport};
use crate::model::{Entry, Event, LedgerInfo};
use crate::store::FrameKind;
use crate::store::log::{AfterDamage, FrameReader, LOG_HEADER, after_damage, check_header};

/// A log file up to the end of its last intact checkpoint frame.
#[derive(Debug)]
pub struct LogSnapshot {
    path: PathBuf,
    file: File,
    /// Byte of the first frame.
    start: u64,
    /// Byte just past the last intact checkpoint frame.
    end: u64,
    /// A log, or a bundle that must hold exactly its header's entries.
    container: Container,
    /// Entries that checkpoint covers.
    entries: u64,
    checkpoints: u64,
    latest: CheckpointRecord,
    /// What the genesis entry says (checked only when verified).
    info: LedgerInfo,
}

impl LogSnapshot {
    /// Reads the log at `path` up to its last intact checkpoint frame,
    /// checking every frame's CRC on the way.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AuditError::NoLog(
                path.parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| path.to_path_buf()),
            ),
            _ => AuditError::io(path, e),
        })?;
        check_header(&file).map_err(|reason| AuditError::Damaged {
            index: 0,
            reason: format!("log header: {reason}"),
        })?;
        let len = file.metadata().map_err(|e| AuditError::io(path, e))?.len();
        Self::scan(path, file, LOG_HEADER.len() as u64, len, Container::Log)
    }

    /// Reads the audit bundle at `path`: its header, then every frame,
    /// all of which must be intact (a bundle is complete, or damaged).
    pub fn open_bundle(path: &Path) -> Result<Self, AuditError> {
        let file = File::open(path).map_err(|e| AuditError::io(path, e))?;
        let len = file.metadata().map_err(|e| AuditError::io(path, e))?.len();
        let (header, start) =
            super::bundle::read_header(&file, len).map_err(|e| AuditError::Damaged {
                index: 0,
                reason: format!("bundle header: {e}"),
            })?;
        let container = Container::Bundle {
            entries: header.entries,
        };
        Self::scan(path, file, start, len, container)
    }

    /// Reads the frames of `file` from `start`, checking every CRC, up to
    /// the last intact checkpoint. In a log, damage with nothing intact
    /// after it is a batch being written (or torn) and ends the snapshot;
    /// in a bundle any damage is refused.
    fn scan(
        path: &Path,
        file: File,
        start: u64,
        len: u64,
        container: Container,
    ) -> Result<Self, AuditError> {
        let mut buffered = BufReader::with_capacity(1 << 20, &file);
        buffered
            .seek(SeekFrom::Start(start))
            .map_err(|e| AuditError::io(path, e))?;
        let mut reader = container.frames(buffered, start, len);
        let mut entries = 0u64;
        let mut checkpoints = 0u64;
        let mut info = None;
        // (end, entries, checkpoints, record) at the last checkpoint frame.
        let mut committed: Option<(u64, u64, u64, CheckpointRecord)> = None;
        loop {
            let frame = match reader.next_frame().map_err(|e| AuditError::io(path, e))? {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(damage) => {
                    // In a log, nothing intact after it, or a batch being
                    // written, ends the snapshot.
                    let torn_tail = container == Container::Log
                        && !matches!(
                            after_damage(&file, &damage, len)
                                .map_err(|e| AuditError::io(path, e))?,
                            AfterDamage::Intact(_)
                        );
                    if !torn_tail {
                        return Err(AuditError::Damaged {
                            index: entries,
                            reason: format!(
                                "damaged frame at byte {}: {}",
                                damage.offset, damage.reason
                            ),
                        });
                    }
                    // Nothing intact follows: a batch being written (or
                    // torn by a crash), never acknowledged.
                    break;
                }
            };
            match frame.kind {
                FrameKind::Entry => {
                    if entries == 0 {
                        info = Some(
                            LedgerInfo::from_genesis_entry(&frame.payload)
                                .map_err(|reason| AuditError::Damaged { index: 0, reason })?,
                        );
                    }
                    entries += 1;
                }
                FrameKind::Checkpoint => {
                    let record: CheckpointRecord =
                        codec::decode(&frame.payload).map_err(|e| AuditError::Damaged {
                            index: entries.saturating_sub(1),
                            reason: format!("checkpoint bytes: {e}"),
                        })?;
                    checkpoints += 1;
                    committed = Some((frame.end(), entries, checkpoints, record));
                }
            }
        }
        let (end, entries, checkpoints, latest) = committed.ok_or(AuditError::NothingCommitted)?;
        let info = info.ok_or(AuditError::NothingCommitted)?;
        // A bundle is verified whole: bytes after its last checkpoint are
        // the verifier's to name.
        let end = match container {
            Container::Log => end,
            Container::Bundle { .. } => len,
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            start,
            end,
            container,
            entries,
            checkpoints,
            latest,
            info,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Byte range of the acknowledged frames in the log file.
    pub fn frames(&self) -> Range<u64> {
        self.start..self.end
    }

    /// Entries covered by the last checkpoint.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    /// The last checkpoint, as stored (its signature is checked only by
    /// [`LogSnapshot::verify`]).
    pub fn latest(&self) -> &CheckpointRecord {
        &self.latest
    }

    /// The ledger's identity as its genesis entry states it.
    pub fn info(&self) -> &LedgerInfo {
        &self.info
    }

    /// Verifies the snapshot's frames in full, telling `observer` about
    /// each entry the replay accepts.
    pub fn verify<O: Observer + Send>(
        &self,
        observer: O,
        progress: bool,
    ) -> Result<(VerifyReport, O), VerifyFailure> {
        crate::ledger::verify_frames(
            &self.file,
            self.frames(),
            self.container,
            observer,
            progress,
        )
    }

    /// Calls `f` with every entry's index and decoded event, in order,
    /// without checking signatures, links or rules: for quick passes that
    /// a verified pass then confirms.
    pub fn scan_events(&self, mut f: impl FnMut(u64, &Event)) -> Result<(), AuditError> {
        let range = self.frames();
        let mut buffered = BufReader::with_capacity(1 << 20, &self.file);
        buffered
            .seek(SeekFrom::Start(range.start))
            .map_err(|e| AuditError::io(&self.path, e))?;
        let mut reader = FrameReader::starting_at(buffered, range.start, range.end);
        let mut index = 0u64;
        loop {
            let damaged = |reason: String| AuditError::Damaged { index, reason };
            let frame = match reader
                .next_frame()
                .map_err(|e| AuditError::io(&self.path, e))?
            {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(d) => return Err(damaged(d.reason)),
            };
            if frame.kind != FrameKind::Entry {
                continue;
            }
            let entry: Entry =
                codec::decode(&frame.payload).map_err(|e| damaged(format!("entry bytes: {e}")))?;
            let event: Event = codec::decode(&entry.signed.event)
                .map_err(|e| damaged(format!("event bytes: {e}")))?;
            f(index, &event);
            index += 1;
        }
    }
}
