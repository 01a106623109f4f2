//! Offline verification of a log file, trusting nothing but the file.
//!
//! Reads the log front to back and checks every frame's checksum, every
//! entry's encoding, position and link to its predecessor, every event's
//! signature (batched, on all cores), every rule as the writer applied it,
//! and every checkpoint's tree size, root and log-key signature. It does
//! not read the index, so it works while a server holds the ledger open.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

use super::CheckpointRecord;
use super::damage::{self, DamageVerdict};
use crate::codec;
use rayon::prelude::*;

use crate::crypto::{CryptoError, Digest, PublicKey, Signature, SignatureCheck, verify_many};
use crate::merkle::{self, Frontier, Hash, checkpoint::Checkpoint};
use crate::model::{Entry, Event, LedgerInfo, MemoryState, PrecheckedKeys, StateView, Timestamp};
use crate::rules::{self, Context};
use crate::store::FrameKind;
use crate::store::log::{FrameReader, LOG_HEADER, check_header};

/// What an intact log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: u64,
    pub root: Hash,
    pub origin: String,
    /// The latest checkpoint as a signed note.
    pub checkpoint: String,
    /// The verifier key line of the log key.
    pub log_key: String,
}

/// The first problem found, at the entry it concerns. For a checkpoint
/// frame that is the last entry it covers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index}: {reason}")]
pub struct VerifyFailure {
    pub index: u64,
    pub reason: String,
}

/// Entries whose signatures are checked together.
const CHUNK: usize = 8192;

struct Pending {
    entry: Entry,
    index: u64,
    /// RFC 9162 leaf hash of the exact entry bytes.
    leaf: Hash,
}

/// An entry's event decoded, with the keys it registers already checked
/// (both done in parallel ahead of the sequential rules).
type Decoded = Result<(Event, Vec<(PublicKey, Result<(), CryptoError>)>), codec::CodecError>;

/// A frame read but not yet checked. Checkpoints stay in order among the
/// entries, so a chunk spans many committed batches: signatures are then
/// checked in large parallel batches however small the batches were.
enum Item {
    Entry { index: u64, payload: Vec<u8> },
    Checkpoint(Vec<u8>),
}

struct Verifier {
    state: MemoryState,
    frontier: Frontier,
    last_hash: Digest,
    /// Record time of the previous entry: record times never decrease,
    /// since key validity is judged by them.
    last_time: Timestamp,
    /// Every event id seen: an event is recorded at most once.
    event_ids: HashSet<Digest>,
    info: Option<LedgerInfo>,
    checkpoints: u64,
    latest: Option<CheckpointRecord>,
    acked: u64,
    chunk: Vec<Item>,
    /// Entries among `chunk`.
    chunk_entries: u64,
}

/// Verifies the log file at `path`.
pub fn verify_log(path: &Path, progress: bool) -> Result<VerifyReport, VerifyFailure> {
    let fail = |index: u64, reason: String| VerifyFailure { index, reason };
    let file =
        File::open(path).map_err(|e| fail(0, format!("cannot open {}: {e}", path.display())))?;
    check_header(&file).map_err(|r| fail(0, format!("log header: {r}")))?;
    let len = file.metadata().map_err(|e| fail(0, e.to_string()))?.len();
    let mut buffered = BufReader::with_capacity(1 << 20, &file);
    buffered
        .seek(SeekFrom::Start(LOG_HEADER.len() as u64))
        .map_err(|e| fail(0, e.to_string()))?;
    let mut reader = FrameReader::new(buffered, len);
    let bar = crate::progress::bar(len, progress, "verifying");
    let mut v = Verifier {
        state: MemoryState::new(),
        frontier: Frontier::new(),
        last_hash: Digest::from_bytes([0; 32]),
        last_time: Timestamp::from_millis(0),
        event_ids: HashSet::new(),
        info: None,
        checkpoints: 0,
        latest: None,
        acked: 0,
        chunk: Vec::with_capacity(CHUNK),
        chunk_entries: 0,
    };
    loop {
        let next = v.frontier.size() + v.chunk_entries;
        let frame = match reader.next_frame() {
            Err(e) => return Err(fail(next, format!("reading the log: {e}"))),
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => break,
            Ok(Err(found)) => {
                v.flush_chunk()?;
                let entries = v.frontier.size();
                let verdict = damage::classify(&file, len, &found, entries, v.acked)
                    .map_err(|e| fail(entries, format!("reading the log: {e}")))?;
                return Err(match verdict {
                    DamageVerdict::Inside { index, reason } => fail(index, reason),
                    DamageVerdict::TornTail {
                        acked,
                        entries,
                        reason,
                    } => torn_tail(acked, entries, &reason),
                });
            }
        };
        bar.set_position(frame.end());
        match frame.kind {
            FrameKind::Entry => {
                // Decoding and hashing happen in parallel when the chunk is
                // checked; here the frame is only kept in order.
                v.chunk.push(Item::Entry {
                    index: next,
                    payload: frame.payload,
                });
                v.chunk_entries += 1;
                if v.chunk_entries as usize == CHUNK {
                    v.flush_chunk()?;
                }
            }
            FrameKind::Checkpoint => v.chunk.push(Item::Checkpoint(frame.payload)),
        }
    }
    v.flush_chunk()?;
    bar.finish_and_clear();
    let size = v.frontier.size();
    if size == 0 {
        return Err(fail(
            0,
            "the log holds no entries, not even a genesis entry".into(),
        ));
    }
    if v.acked != size {
        return Err(torn_tail(
            v.acked,
            size,
            "the log ends without a checkpoint",
        ));
    }
    let info = v
        .info
        .clone()
        .ok_or_else(|| fail(0, "no genesis entry".into()))?;
    let latest = v
        .latest
        .clone()
        .ok_or_else(|| fail(0, "no checkpoint".into()))?;
    let note = latest
        .note(&info.origin, &info.log_key)
        .map_err(|e| fail(size - 1, e.to_string()))?;
    let vk = info
        .log_key
        .verifying_key()
        .map_err(|e| fail(0, e.to_string()))?;
    Ok(VerifyReport {
        entries: size,
        checkpoints: v.checkpoints,
        root: v.frontier.root(),
        origin: info.origin.clone(),
        checkpoint: note,
        log_key: merkle::checkpoint::verifier_key(&info.origin, &vk)
            .map_err(|e| fail(0, e.to_string()))?,
    })
}

/// A final batch without an intact checkpoint: never acknowledged, unless
/// its checkpoint frame was damaged. Opening the ledger cuts it (keeping
/// the bytes beside the log) unless the index shows it was acknowledged.
fn torn_tail(acked: u64, entries: u64, reason: &str) -> VerifyFailure {
    if entries > acked {
        VerifyFailure {
            index: entries - 1,
            reason: format!(
                "entries {acked}..={} have no intact checkpoint ({reason}): a torn tail that was never \
                 acknowledged, or a damaged checkpoint",
                entries - 1
            ),
        }
    } else {
        VerifyFailure {
            index: entries,
            reason: format!(
                "torn tail after the last checkpoint ({reason}): an unacknowledged partial write"
            ),
        }
    }
}

/// Decodes entry `index` from its frame payload, checks it says it is that
/// entry, and hashes it; decodes its event and checks the keys it registers.
fn decode_entry(index: u64, payload: &[u8]) -> Result<(Pending, Decoded), VerifyFailure> {
    let fail = |reason: String| VerifyFailure { index, reason };
    let entry: Entry = codec::decode(payload).map_err(|e| fail(format!("entry bytes: {e}")))?;
    if entry.index != index {
        return Err(fail(format!("entry says it is entry {}", entry.index)));
    }
    let event: Decoded = codec::decode(&entry.signed.event).map(|event: Event| {
        let key_checks = rules::precheck_keys(&event);
        (event, key_checks)
    });
    let leaf = merkle::leaf_hash(payload);
    Ok((Pending { entry, index, leaf }, event))
}

impl Verifier {
    /// Checks the held frames: event signatures and event decoding in
    /// parallel, then links, rules, tree and checkpoints in order, then the
    /// checkpoint signatures in one parallel pass. Reports the lowest
    /// failing index.
    fn flush_chunk(&mut self) -> Result<(), VerifyFailure> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.chunk);
        self.chunk_entries = 0;
        // Everything that needs no state, on all cores: decode each entry,
        // check its position, hash it, decode its event and check the keys
        // it registers.
        let decoded: Vec<Result<(Pending, Decoded), VerifyFailure>> = chunk
            .par_iter()
            .filter_map(|item| match item {
                Item::Entry { index, payload } => Some(decode_entry(*index, payload)),
                Item::Checkpoint(_) => None,
            })
            .collect();
        let bad_signature = {
            let checks: Vec<(u64, SignatureCheck<'_>)> = decoded
                .iter()
                .flatten()
                .map(|(p, _)| {
                    (
                        p.index,
                        SignatureCheck {
                            key: &p.entry.signed.key,
                            message: &p.entry.signed.event,
                            signature: &p.entry.signed.signature,
                        },
                    )
                })
                .collect();
            let only: Vec<SignatureCheck<'_>> = checks.iter().map(|(_, c)| *c).collect();
            verify_many(&only).first().map(|&i| checks[i].0)
        };
        let mut events = decoded.into_iter();
        let mut notes: Vec<(u64, String, Signature)> = Vec::new();
        let mut first_failure = None;
        for item in &chunk {
            let step = match item {
                Item::Entry { .. } => match events.next() {
                    None => Err(VerifyFailure {
                        index: self.frontier.size(),
                        reason: "internal: entry lost while checking".into(),
                    }),
                    Some(Err(failure)) => Err(failure),
                    Some(Ok((p, event))) => {
                        if bad_signature == Some(p.index) {
                            Err(VerifyFailure {
                                index: p.index,
                                reason: format!(
                                    "the event's signature does not verify under key {}",
                                    p.entry.signed.key
                                ),
                            })
                        } else {
                            self.apply(&p, event)
                        }
                    }
                },
                Item::Checkpoint(payload) => self.checkpoint(payload).map(|note| notes.push(note)),
            };
            if let Err(failure) = step {
                first_failure = Some(failure);
                break;
            }
        }
        // Checkpoint signatures, all at once; a bad one before the first
        // other failure is the one to report.
        if let Some(log_key) = self.info.as_ref().map(|i| i.log_key) {
            let checks: Vec<SignatureCheck<'_>> = notes
                .iter()
                .map(|(_, body, signature)| SignatureCheck {
                    key: &log_key,
                    message: body.as_bytes(),
                    signature,
                })
                .collect();
            if let Some(&bad) = verify_many(&checks).first() {
                let index = notes[bad].0;
                if first_failure.as_ref().is_none_or(|f| index < f.index) {
                    first_failure = Some(VerifyFailure {
                        index,
                        reason: "checkpoint signature does not verify under the log key".into(),
                    });
                }
            }
        }
        if let Some(failure) = first_failure {
            return Err(failure);
        }
        self.chunk = chunk;
        self.chunk.clear();
        Ok(())
    }

    fn apply(&mut self, p: &Pending, event: Decoded) -> Result<(), VerifyFailure> {
        let fail = |reason: String| VerifyFailure {
            index: p.index,
            reason,
        };
        if p.entry.prev != self.last_hash {
            return Err(match p.index {
                0 => fail("the genesis entry must link to 32 zero bytes".into()),
                i => VerifyFailure {
                    index: i - 1,
                    reason: format!(
                        "its hash {} differs from the link {} in entry {i}",
                        self.last_hash, p.entry.prev
                    ),
                },
            });
        }
        if p.entry.record_time < self.last_time {
            return Err(fail(format!(
                "its record time {} is before the previous entry's {}",
                p.entry.record_time, self.last_time
            )));
        }
        if !self.event_ids.insert(p.entry.signed.event_id()) {
            return Err(fail(
                "it records an event that an earlier entry already holds".into(),
            ));
        }
        let (event, key_checks) = event.map_err(|e| fail(format!("event bytes: {e}")))?;
        let ctx = Context {
            index: p.index,
            record_time: p.entry.record_time,
        };
        let view = PrecheckedKeys::new(&self.state, &key_checks);
        let changes = rules::apply(&view, ctx, &p.entry.signed.key, &event)
            .map_err(|e| fail(format!("the rules refuse the event: {e}")))?;
        for value in changes {
            self.state.put(value);
        }
        if p.index == 0 {
            self.info = self.state.ledger().map_err(|e| fail(e.to_string()))?;
        }
        self.frontier.push(p.leaf);
        self.last_hash = Digest::from_bytes(p.leaf);
        self.last_time = p.entry.record_time;
        Ok(())
    }

    /// Checks a checkpoint's size and root, and returns the index it is
    /// reported under, its note body and signature for the caller to check.
    fn checkpoint(&mut self, payload: &[u8]) -> Result<(u64, String, Signature), VerifyFailure> {
        let size = self.frontier.size();
        let fail = |reason: String| VerifyFailure {
            index: size.saturating_sub(1),
            reason,
        };
        let record: CheckpointRecord =
            codec::decode(payload).map_err(|e| fail(format!("checkpoint bytes: {e}")))?;
        if record.size != size {
            return Err(fail(format!(
                "checkpoint claims {} entries, {size} precede it",
                record.size
            )));
        }
        if record.root.as_bytes() != &self.frontier.root() {
            return Err(fail(format!(
                "checkpoint root differs from the root of the first {size} entries"
            )));
        }
        let info = self
            .info
            .as_ref()
            .ok_or_else(|| fail("checkpoint before the genesis entry".into()))?;
        let cp = Checkpoint::new(&info.origin, size, self.frontier.root())
            .map_err(|e| fail(e.to_string()))?;
        let signature = record.signature;
        self.checkpoints += 1;
        self.acked = size;
        self.latest = Some(record);
        Ok((size.saturating_sub(1), cp.body(), signature))
    }
}
