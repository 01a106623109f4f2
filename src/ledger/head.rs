//! Reading a ledger's identity and latest checkpoint straight from the log
//! file, without the index: works while a server holds the ledger open.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

use super::{CheckpointRecord, LedgerError};
use crate::codec;
use crate::merkle::checkpoint::Checkpoint;
use crate::model::LedgerInfo;
use crate::store::FrameKind;
use crate::store::log::{FrameReader, LOG_HEADER, check_header};

/// The ledger's identity and its latest checkpoint, as a signed note whose
/// signature has been checked against the log key named at genesis.
#[derive(Debug, Clone)]
pub struct LogHead {
    pub info: LedgerInfo,
    pub checkpoint: CheckpointRecord,
    pub note: String,
    pub verifier_key: String,
}

/// Reads the genesis entry and the last intact checkpoint of the log at
/// `path`. A torn tail after the last checkpoint is ignored, as it was
/// never acknowledged.
pub fn read_head(path: &Path) -> Result<LogHead, LedgerError> {
    let integrity = |index: u64, reason: String| LedgerError::Integrity { index, reason };
    let file = File::open(path).map_err(|e| LedgerError::io(path, e))?;
    check_header(&file).map_err(|r| integrity(0, format!("log header: {r}")))?;
    let len = file.metadata().map_err(|e| LedgerError::io(path, e))?.len();
    let mut buffered = BufReader::with_capacity(1 << 20, &file);
    buffered
        .seek(SeekFrom::Start(LOG_HEADER.len() as u64))
        .map_err(|e| LedgerError::io(path, e))?;
    let mut reader = FrameReader::new(buffered, len).with_reserved_tail();
    let mut genesis: Option<LedgerInfo> = None;
    let mut latest: Option<CheckpointRecord> = None;
    let mut entries = 0u64;
    while let Ok(Some(frame)) = reader.next_frame().map_err(|e| LedgerError::io(path, e))? {
        match frame.kind {
            FrameKind::Entry => {
                if entries == 0 {
                    genesis = Some(
                        LedgerInfo::from_genesis_entry(&frame.payload)
                            .map_err(|reason| LedgerError::Integrity { index: 0, reason })?,
                    );
                }
                entries += 1;
            }
            FrameKind::Checkpoint => {
                latest = Some(codec::decode(&frame.payload).map_err(|e| {
                    integrity(entries.saturating_sub(1), format!("checkpoint: {e}"))
                })?);
            }
        }
    }
    let info = genesis.ok_or_else(|| integrity(0, "the log has no genesis entry".into()))?;
    let checkpoint = latest.ok_or_else(|| integrity(0, "the log has no checkpoint".into()))?;
    let cp = Checkpoint::new(&info.origin, checkpoint.size, *checkpoint.root.as_bytes())
        .map_err(|e| integrity(checkpoint.size.saturating_sub(1), e.to_string()))?;
    info.log_key
        .verify_strict(cp.body().as_bytes(), &checkpoint.signature)
        .map_err(|_| {
            integrity(
                checkpoint.size.saturating_sub(1),
                "the latest checkpoint's signature does not verify under the log key".into(),
            )
        })?;
    let note = checkpoint.note(&info.origin, &info.log_key)?;
    let vk = info
        .log_key
        .verifying_key()
        .map_err(|e| integrity(0, e.to_string()))?;
    let verifier_key = crate::merkle::checkpoint::verifier_key(&info.origin, &vk)
        .map_err(|e| integrity(0, e.to_string()))?;
    Ok(LogHead {
        info,
        checkpoint,
        note,
        verifier_key,
    })
}
