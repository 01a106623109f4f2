//! Offline verification of a log file or an audit bundle, trusting
//! nothing but the frames.
//!
//! Reads the frames front to back and checks every frame's checksum, every
//! entry's encoding, position and link to its predecessor, every event's
//! signature (batched, on all cores), every rule as the writer applied it,
//! and every checkpoint's tree size, root and log-key signature. It does
//! not read the index, so it works while a server holds the ledger open.
//! [`verify_frames`] checks any byte range of frames (the log's, or the
//! copy an audit bundle carries) and tells an [`Observer`] about each
//! entry as the replay accepts it; [`verify_log`] is it over a log file.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::CheckpointRecord;
use super::damage::{self, DamageVerdict};
use crate::codec;
use rayon::prelude::*;

use crate::crypto::{CryptoError, Digest, PublicKey, Signature, SignatureCheck, verify_many};
use crate::merkle::{self, Frontier, Hash, checkpoint::Checkpoint};
use crate::model::{
    Entry, Event, EventBody, LedgerInfo, MemoryState, PrecheckedKeys, StateValue, StateView,
    Timestamp,
};
use crate::rules::{self, Context};
use crate::store::FrameKind;
use crate::store::log::{FRAME_MAGIC, FrameReader, LOG_HEADER, check_header};

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
    event_id: Digest,
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

struct Verifier<O> {
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
    observer: O,
}

/// A chunk of frames checked as far as it can be without the state:
/// entries decoded, placed and hashed, events decoded, registered keys
/// and event signatures checked; checkpoints decoded and, once the log's
/// identity is known, their signatures checked over the size and root
/// they claim (the replay then checks the claims against the tree).
struct Prepared {
    chunk: Vec<Item>,
    decoded: Vec<Result<(Pending, Decoded), VerifyFailure>>,
    /// The chunk's checkpoints, in order.
    checkpoints: Vec<PreparedCheckpoint>,
    /// The identity the checkpoint signatures were checked under, if
    /// they were: the replay uses their verdicts only if it is the one
    /// the genesis entry established.
    checked_under: Option<Identity>,
    /// The first entry whose event signature does not verify.
    bad_signature: Option<u64>,
}

/// What a checkpoint's signature is checked under: the origin line of the
/// note and the log key, both named by the genesis event.
#[derive(Clone)]
struct Identity {
    origin: String,
    log_key: PublicKey,
}

/// A checkpoint frame decoded, with its signature's verdict when it could
/// be checked ahead of the replay.
struct PreparedCheckpoint {
    record: Result<CheckpointRecord, codec::CodecError>,
    signature_ok: Option<bool>,
}

/// How reading a chunk of frames ended.
enum ChunkEnd {
    /// The chunk is full; more frames may follow.
    Full,
    /// The frames have all been read.
    Done,
    /// A frame is damaged or cut short here.
    Damaged(crate::store::log::Damage),
    /// Reading failed before entry `index`.
    Unreadable { index: u64, reason: String },
}

/// Reads the frames in chunks, numbering the entries.
struct Chunks<'f> {
    frames: FrameReader<BufReader<&'f File>>,
    /// Index of the next entry frame.
    next: u64,
    /// Where the frames start, for the progress bar.
    start: u64,
    /// Where the frames read so far end, and where all of them end.
    at: u64,
    end: u64,
    /// Entries in a full chunk.
    entries: usize,
}

impl Chunks<'_> {
    /// Entries to read next. A chunk is replayed on one core while the
    /// next is prepared on the others, so the first chunk (prepared with
    /// nothing to replay beside it) and the last (replayed with nothing to
    /// prepare) are kept short: an eighth of a full chunk first, and the
    /// last eighth's worth of entries, estimated from the bytes left, apart
    /// at the end.
    fn next_size(&self) -> usize {
        let short = (self.entries / 8).max(1);
        if self.next == 0 {
            return short;
        }
        let per_entry = ((self.at - self.start) / self.next).max(1);
        let left = usize::try_from((self.end - self.at) / per_entry).unwrap_or(usize::MAX);
        if left > 2 * self.entries {
            self.entries
        } else if left > 2 * short {
            left - short
        } else {
            usize::MAX
        }
    }

    /// The frames up to and including the [`Chunks::next_size`]th entry
    /// frame, or up to the end or the first damage.
    fn read(&mut self, bar: &indicatif::ProgressBar) -> (Vec<Item>, ChunkEnd) {
        let size = self.next_size();
        let mut chunk = Vec::with_capacity(size.min(self.entries) + 1);
        let mut entries = 0;
        loop {
            let frame = match self.frames.next_frame() {
                Err(e) => {
                    let end = ChunkEnd::Unreadable {
                        index: self.next,
                        reason: e.to_string(),
                    };
                    return (chunk, end);
                }
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None)) => return (chunk, ChunkEnd::Done),
                Ok(Err(found)) => return (chunk, ChunkEnd::Damaged(found)),
            };
            self.at = frame.end();
            bar.set_position(self.at - self.start);
            match frame.kind {
                FrameKind::Entry => {
                    chunk.push(Item::Entry {
                        index: self.next,
                        payload: frame.payload,
                    });
                    self.next += 1;
                    entries += 1;
                    if entries == size {
                        return (chunk, ChunkEnd::Full);
                    }
                }
                FrameKind::Checkpoint => chunk.push(Item::Checkpoint(frame.payload)),
            }
        }
    }
}

/// Verifies the log file at `path`.
pub fn verify_log(path: &Path, progress: bool) -> Result<VerifyReport, VerifyFailure> {
    verify_log_in_chunks(path, progress, CHUNK)
}

/// [`verify_log`], holding at most `chunk` entries (at least one) in each
/// of the two pipeline stages instead of 8,192. The outcome is the same
/// for every chunk size; smaller ones use less memory and make batch
/// verification pay less.
pub fn verify_log_in_chunks(
    path: &Path,
    progress: bool,
    chunk: usize,
) -> Result<VerifyReport, VerifyFailure> {
    let fail = |index: u64, reason: String| VerifyFailure { index, reason };
    let file =
        File::open(path).map_err(|e| fail(0, format!("cannot open {}: {e}", path.display())))?;
    check_header(&file).map_err(|r| fail(0, format!("log header: {r}")))?;
    let len = file.metadata().map_err(|e| fail(0, e.to_string()))?.len();
    let frames = LOG_HEADER.len() as u64..len;
    let (report, ()) = verify_chunked(&file, frames, Container::Log, (), progress, chunk)?;
    Ok(report)
}

/// What holds the frames being verified, which decides what damaged or
/// missing bytes at the end mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// A ledger's own log: a final batch without an intact checkpoint is a
    /// torn tail, never acknowledged (reported as such).
    Log,
    /// A copy that must be complete (an audit bundle), whose header says
    /// how many entries it holds: damage at its end is named by entry.
    Bundle { entries: u64 },
}

impl Container {
    /// A reader of its frames from byte `start` of a file of `end` bytes.
    /// A log's writer keeps zeros after the last frame, which end a log;
    /// a bundle is written whole, so zeros in it are damage.
    pub fn frames<R: std::io::Read>(self, reader: R, start: u64, end: u64) -> FrameReader<R> {
        let frames = FrameReader::starting_at(reader, start, end);
        match self {
            Container::Log => frames.with_reserved_tail(),
            Container::Bundle { .. } => frames,
        }
    }
}

/// One entry as the verifier accepts it, for an [`Observer`].
pub struct Accepted<'a> {
    pub entry: &'a Entry,
    /// RFC 9162 leaf hash of the entry's exact bytes.
    pub leaf: &'a Hash,
    pub event: &'a Event,
    /// The state just before the entry.
    pub before: &'a MemoryState,
    /// The values the rules wrote for it; they replace those in `before`.
    pub changes: &'a [StateValue],
}

/// Told about every entry, in order, once its signature, link, position
/// and rules have been checked (its checkpoint may still follow). Exports
/// that need the state at each entry (EPCIS) ride along the replay this
/// way instead of running the rules a second time.
pub trait Observer {
    fn accepted(&mut self, accepted: &Accepted<'_>);
}

/// Verification alone.
impl Observer for () {
    fn accepted(&mut self, _: &Accepted<'_>) {}
}

/// Verifies the frames that `file` holds in `range` (which must start at
/// a frame), telling `observer` about each accepted entry. Returns the
/// report and the observer. The first problem found stops it, named by
/// the entry it concerns.
pub fn verify_frames<O: Observer + Send>(
    file: &File,
    range: Range<u64>,
    container: Container,
    observer: O,
    progress: bool,
) -> Result<(VerifyReport, O), VerifyFailure> {
    verify_chunked(file, range, container, observer, progress, CHUNK)
}

fn verify_chunked<O: Observer + Send>(
    file: &File,
    range: Range<u64>,
    container: Container,
    observer: O,
    progress: bool,
    chunk: usize,
) -> Result<(VerifyReport, O), VerifyFailure> {
    let fail = |index: u64, reason: String| VerifyFailure { index, reason };
    let end = range.end;
    let mut buffered = BufReader::with_capacity(1 << 20, file);
    buffered
        .seek(SeekFrom::Start(range.start))
        .map_err(|e| fail(0, e.to_string()))?;
    let mut chunks = Chunks {
        frames: container.frames(buffered, range.start, end),
        next: 0,
        start: range.start,
        at: range.start,
        end,
        entries: chunk.max(1),
    };
    let bar = crate::progress::bar(end - range.start, progress, "verifying");
    let mut v = Verifier::new(observer);
    // A pipeline of two stages: while one chunk is replayed in order (one
    // core), the next is read and prepared (decoding, hashing, signatures)
    // on the other cores. A chunk's failures are reported only after every
    // earlier chunk has replayed, so the first problem is the one named.
    let mut ready: Option<Prepared> = None;
    // The log's identity as the first chunk's genesis entry names it, for
    // checking later chunks' checkpoint signatures ahead.
    let mut identity: Option<Identity> = None;
    loop {
        let ((prepared, chunk_end), replayed) = rayon::join(
            || {
                let (chunk, chunk_end) = chunks.read(&bar);
                (prepare(chunk, identity.as_ref()), chunk_end)
            },
            || ready.take().map_or(Ok(()), |p| v.replay(p)),
        );
        replayed?;
        if identity.is_none() {
            identity.clone_from(&prepared.checked_under);
        }
        if let ChunkEnd::Full = chunk_end {
            ready = Some(prepared);
            continue;
        }
        // The last chunk, up to the end or to a problem reading on: what
        // precedes the problem is checked first, so that an earlier
        // problem is the one reported.
        v.replay(prepared)?;
        match chunk_end {
            ChunkEnd::Full | ChunkEnd::Done => break,
            ChunkEnd::Unreadable { index, reason } => {
                return Err(fail(index, format!("reading the frames: {reason}")));
            }
            ChunkEnd::Damaged(found) => {
                let entries = v.frontier.size();
                let verdict = damage::classify(file, end, &found, entries, v.acked)
                    .map_err(|e| fail(entries, format!("reading the frames: {e}")))?;
                return Err(match (verdict, container) {
                    (DamageVerdict::Inside { index, reason }, _) => fail(index, reason),
                    (
                        DamageVerdict::TornTail {
                            acked,
                            entries,
                            reason,
                        },
                        Container::Log,
                    ) => torn_tail(acked, entries, &reason),
                    (
                        DamageVerdict::TornTail {
                            entries, reason, ..
                        },
                        Container::Bundle { entries: claimed },
                    ) => bundle_end(entries, claimed, frame_kind_at(file, found.offset), &reason),
                });
            }
        }
    }
    bar.finish_and_clear();
    let size = v.frontier.size();
    if size == 0 {
        return Err(fail(
            0,
            match container {
                Container::Log => "the log holds no entries, not even a genesis entry",
                Container::Bundle { .. } => {
                    "the bundle holds no entries after its header: it is cut short"
                }
            }
            .into(),
        ));
    }
    if v.acked != size {
        return Err(match container {
            Container::Log => torn_tail(v.acked, size, "the log ends without a checkpoint"),
            Container::Bundle { .. } => fail(
                size - 1,
                format!(
                    "no checkpoint covers entries {}..={}: the bundle is cut short",
                    v.acked,
                    size - 1
                ),
            ),
        });
    }
    v.finish()
}

/// Damage with nothing intact after it, at the end of a bundle: a bundle
/// is written whole, so this is a cut or damaged final stretch. A
/// checkpoint frame (by its kind byte, or because every claimed entry was
/// read, so only the final checkpoint can be left) is named by the last
/// entry it covers; an entry frame by its own index.
fn bundle_end(entries: u64, claimed: u64, kind: Option<u8>, reason: &str) -> VerifyFailure {
    let checkpoint = kind == Some(CHECKPOINT_KIND) || entries >= claimed;
    if checkpoint && entries > 0 {
        VerifyFailure {
            index: entries - 1,
            reason: format!(
                "the checkpoint frame after this entry is damaged or cut short, and nothing \
                 intact follows ({reason}): the bundle is truncated or damaged at its end"
            ),
        }
    } else {
        VerifyFailure {
            index: entries,
            reason: format!(
                "the frame of this entry is damaged or cut short, and nothing intact follows \
                 ({reason}): the bundle is truncated or damaged at its end"
            ),
        }
    }
}

/// Kind byte of a checkpoint frame (`schemas/ENCODING.md`, section 8.2).
const CHECKPOINT_KIND: u8 = 2;

/// The kind byte of the (damaged) frame at `offset`, when its magic is
/// intact: a cut-short frame still says what it was.
fn frame_kind_at(file: &File, offset: u64) -> Option<u8> {
    let mut head = [0u8; 5];
    file.read_exact_at(&mut head, offset).ok()?;
    (head[..4] == FRAME_MAGIC).then_some(head[4])
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
    let event_id = entry.signed.event_id();
    Ok((
        Pending {
            entry,
            index,
            leaf,
            event_id,
        },
        event,
    ))
}

/// Checks on all cores everything in `chunk` that needs no state: decodes
/// each entry, checks its position, hashes it, decodes its event, checks
/// the keys it registers and the event signatures; decodes each checkpoint
/// and checks its signature under `identity`, or under the one the
/// chunk's genesis entry names. All signatures go in one batch run.
fn prepare(chunk: Vec<Item>, identity: Option<&Identity>) -> Prepared {
    let decoded: Vec<Result<(Pending, Decoded), VerifyFailure>> = chunk
        .par_iter()
        .filter_map(|item| match item {
            Item::Entry { index, payload } => Some(decode_entry(*index, payload)),
            Item::Checkpoint(_) => None,
        })
        .collect();
    let checked_under = identity.cloned().or_else(|| genesis_identity(&decoded));
    let records: Vec<Result<CheckpointRecord, codec::CodecError>> = chunk
        .par_iter()
        .filter_map(|item| match item {
            Item::Checkpoint(payload) => Some(codec::decode(payload)),
            Item::Entry { .. } => None,
        })
        .collect();
    // The note bodies the checkpoints' signatures cover, where they can
    // be built: (checkpoint number, body, signature).
    let notes: Vec<(usize, String, &Signature)> = match &checked_under {
        None => Vec::new(),
        Some(id) => records
            .par_iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let r = r.as_ref().ok()?;
                let cp = Checkpoint::new(&id.origin, r.size, *r.root.as_bytes()).ok()?;
                Some((i, cp.body(), &r.signature))
            })
            .collect(),
    };
    let entries = decoded.iter().flatten().map(|(p, _)| SignatureCheck {
        key: &p.entry.signed.key,
        message: &p.entry.signed.event,
        signature: &p.entry.signed.signature,
    });
    let checkpoint_checks = checked_under.iter().flat_map(|id| {
        notes
            .iter()
            .map(move |(_, body, signature)| SignatureCheck {
                key: &id.log_key,
                message: body.as_bytes(),
                signature,
            })
    });
    let checks: Vec<SignatureCheck<'_>> = entries.chain(checkpoint_checks).collect();
    let entry_count = checks.len() - notes.len();
    let bad = verify_many(&checks);
    let entry_indexes: Vec<u64> = decoded.iter().flatten().map(|(p, _)| p.index).collect();
    let bad_signature = bad
        .first()
        .filter(|&&i| i < entry_count)
        .map(|&i| entry_indexes[i]);
    let mut signature_ok: Vec<Option<bool>> = vec![None; records.len()];
    for (i, _, _) in &notes {
        signature_ok[*i] = Some(true);
    }
    for &i in bad.iter().filter(|&&i| i >= entry_count) {
        signature_ok[notes[i - entry_count].0] = Some(false);
    }
    drop(notes);
    let checkpoints = records
        .into_iter()
        .zip(signature_ok)
        .map(|(record, signature_ok)| PreparedCheckpoint {
            record,
            signature_ok,
        })
        .collect();
    Prepared {
        chunk,
        decoded,
        checkpoints,
        checked_under,
        bad_signature,
    }
}

/// The identity a genesis event among `decoded` names, if entry 0 is
/// there and decodes as one. Only a guess until the replay accepts the
/// genesis entry: its verdicts count only if the replay agrees.
fn genesis_identity(decoded: &[Result<(Pending, Decoded), VerifyFailure>]) -> Option<Identity> {
    decoded
        .iter()
        .flatten()
        .find_map(|(p, event)| match (p.index, event) {
            (0, Ok((event, _))) => match &event.body {
                EventBody::Genesis(g) => Some(Identity {
                    origin: g.origin.clone(),
                    log_key: g.log_key,
                }),
                _ => None,
            },
            _ => None,
        })
}

impl<O: Observer> Verifier<O> {
    fn new(observer: O) -> Self {
        Verifier {
            state: MemoryState::new(),
            frontier: Frontier::new(),
            last_hash: Digest::from_bytes([0; 32]),
            last_time: Timestamp::from_millis(0),
            event_ids: HashSet::new(),
            info: None,
            checkpoints: 0,
            latest: None,
            acked: 0,
            observer,
        }
    }

    /// The report on everything checked, once every frame has been.
    fn finish(self) -> Result<(VerifyReport, O), VerifyFailure> {
        let fail = |index: u64, reason: String| VerifyFailure { index, reason };
        let size = self.frontier.size();
        let info = self
            .info
            .ok_or_else(|| fail(0, "no genesis entry".into()))?;
        let latest = self.latest.ok_or_else(|| fail(0, "no checkpoint".into()))?;
        let note = latest
            .note(&info.origin, &info.log_key)
            .map_err(|e| fail(size.saturating_sub(1), e.to_string()))?;
        let vk = info
            .log_key
            .verifying_key()
            .map_err(|e| fail(0, e.to_string()))?;
        let report = VerifyReport {
            entries: size,
            checkpoints: self.checkpoints,
            root: self.frontier.root(),
            log_key: merkle::checkpoint::verifier_key(&info.origin, &vk)
                .map_err(|e| fail(0, e.to_string()))?,
            origin: info.origin,
            checkpoint: note,
        };
        let Verifier {
            state,
            event_ids,
            observer,
            ..
        } = self;
        free_in_background((state, event_ids));
        Ok((report, observer))
    }

    /// Replays a prepared chunk in order (links, rules, tree and
    /// checkpoints). Checkpoint signatures checked ahead under the
    /// identity the genesis entry established count as they are met; any
    /// others are checked at the end in one parallel pass. Reports the
    /// lowest failing index.
    fn replay(&mut self, prepared: Prepared) -> Result<(), VerifyFailure> {
        let Prepared {
            chunk,
            decoded,
            checkpoints,
            checked_under,
            bad_signature,
        } = prepared;
        let mut events = decoded.into_iter();
        let mut checkpoints = checkpoints.into_iter();
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
                Item::Checkpoint(_) => match checkpoints.next() {
                    None => Err(VerifyFailure {
                        index: self.frontier.size().saturating_sub(1),
                        reason: "internal: checkpoint lost while checking".into(),
                    }),
                    Some(cp) => {
                        // Known once the genesis entry (perhaps in this
                        // very chunk) has been replayed.
                        let holds = match (&checked_under, &self.info) {
                            (Some(id), Some(info)) => {
                                id.origin == info.origin && id.log_key == info.log_key
                            }
                            _ => false,
                        };
                        let verdict = cp.signature_ok.filter(|_| holds);
                        self.checkpoint(cp.record).and_then(|index| match verdict {
                            Some(true) => Ok(()),
                            Some(false) => Err(bad_checkpoint_signature(index)),
                            None => self.latest_note(index).map(|note| notes.push(note)),
                        })
                    }
                },
            };
            if let Err(failure) = step {
                first_failure = Some(failure);
                break;
            }
        }
        // Checkpoint signatures not checked ahead, all at once; a bad one
        // before the first other failure is the one to report.
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
                    first_failure = Some(bad_checkpoint_signature(index));
                }
            }
        }
        match first_failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
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
        if !self.event_ids.insert(p.event_id) {
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
        self.observer.accepted(&Accepted {
            entry: &p.entry,
            leaf: &p.leaf,
            event: &event,
            before: &self.state,
            changes: &changes,
        });
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

    /// Checks a checkpoint's size and root against the tree replayed so
    /// far and takes it as the latest; returns the index it is reported
    /// under.
    fn checkpoint(
        &mut self,
        record: Result<CheckpointRecord, codec::CodecError>,
    ) -> Result<u64, VerifyFailure> {
        let size = self.frontier.size();
        let index = size.saturating_sub(1);
        let fail = |reason: String| VerifyFailure { index, reason };
        let record = record.map_err(|e| fail(format!("checkpoint bytes: {e}")))?;
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
        if self.info.is_none() {
            return Err(fail("checkpoint before the genesis entry".into()));
        }
        self.checkpoints += 1;
        self.acked = size;
        self.latest = Some(record);
        Ok(index)
    }

    /// The note body the latest checkpoint's signature covers, and that
    /// signature: for checking it here rather than ahead.
    fn latest_note(&self, index: u64) -> Result<(u64, String, Signature), VerifyFailure> {
        let fail = |reason: String| VerifyFailure { index, reason };
        let (Some(info), Some(latest)) = (&self.info, &self.latest) else {
            return Err(fail("internal: no checkpoint to check".into()));
        };
        let cp = Checkpoint::new(&info.origin, latest.size, *latest.root.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        Ok((index, cp.body(), latest.signature))
    }
}

/// Drops `value` on a thread of its own. Freeing a replayed state is a
/// free for every field of every value (about 20 ms for 20,000 lots here)
/// on one core with nothing beside it; the report need not wait for it.
fn free_in_background<T: Send + 'static>(value: T) {
    // Spawning fails only when the system is out of threads; the value is
    // then freed here, as the closure holding it is dropped.
    let spawned = std::thread::Builder::new()
        .name("oretrail-free".into())
        .spawn(move || drop(value));
    if let Err(e) = spawned {
        tracing::debug!("freed the replayed state in place: {e}");
    }
}

fn bad_checkpoint_signature(index: u64) -> VerifyFailure {
    VerifyFailure {
        index,
        reason: "checkpoint signature does not verify under the log key".into(),
    }
}
