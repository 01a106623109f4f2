//! The append pipeline and the read side of one ledger.
//!
//! Appends are verified on the caller's thread (canonical decoding and a
//! strict signature check, so both cores share that work), then sent to
//! the single writer thread, which checks replays and rules against the
//! state, sequences, frames and `fdatasync`s a whole batch with one sync
//! (group commit), updates the index atomically, publishes the new head and
//! only then answers. Readers use the index and positional reads of the
//! log; they see an entry only once the head says it is committed.

mod damage;
mod head;
mod open;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Canonical, CodecError};
use crate::crypto::{CryptoError, Digest, KeyCache, KeyFileError, PublicKey, SecretKey, Signature};
use crate::merkle::{self, Hash, checkpoint::Checkpoint};
use crate::model::{
    CountryCode, Entry, Event, EventBody, Genesis, LedgerInfo, ParticipantId, SignedEvent,
    StateView, Timestamp,
};
use crate::rules::{self, Refusal};
use crate::store::log::{FRAME_HEADER_LEN, LOG_HEADER};
use crate::store::{FrameKind, FrameReader, Index, IndexError, LogReader};

pub use head::{LogHead, read_head};
pub use verify::{
    Accepted, Container, Observer, VerifyFailure, VerifyReport, verify_frames, verify_log,
    verify_log_in_chunks,
};

/// File names inside a data folder.
pub const LOG_FILE: &str = "log";
pub const INDEX_DIR: &str = "index";
pub const KEYS_DIR: &str = "keys";
pub const LOG_KEY_FILE: &str = "log.key";
pub const OPERATOR_KEY_FILE: &str = "operator.key";
/// Locked (`flock`, exclusive) by the process that has the ledger open, so
/// a second writer is refused and readers of the log file know a batch
/// may be on its way after the last checkpoint.
pub const WRITER_LOCK_FILE: &str = "writer.lock";

/// The source of record times. Tests and the demo use a simulated clock.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How to open a ledger.
#[derive(Clone)]
pub struct Options {
    pub clock: Clock,
    /// Show progress bars for long rebuilds (only drawn on a terminal).
    pub progress: bool,
    /// Most events committed with one sync.
    pub max_batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(Timestamp::now),
            progress: false,
            max_batch: 4096,
        }
    }
}

/// A signed record of the tree at one size, as the log file stores it.
/// The C2SP note text is rebuilt from it, the origin and the log key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub size: u64,
    pub root: Digest,
    /// Ed25519 signature of the log key over the checkpoint note body.
    pub signature: Signature,
}

impl Canonical for CheckpointRecord {
    const TAG: [u8; 16] = codec::tag("oretrail.ckpt");
    const VERSION: u16 = 1;
}

impl CheckpointRecord {
    /// The C2SP signed note for this record.
    pub fn note(&self, origin: &str, log_key: &PublicKey) -> Result<String, LedgerError> {
        let cp = Checkpoint::new(origin, self.size, *self.root.as_bytes()).map_err(|e| {
            LedgerError::Integrity {
                index: self.size.saturating_sub(1),
                reason: e.to_string(),
            }
        })?;
        let key_id = merkle::checkpoint::key_id_of_bytes(origin, log_key.as_bytes());
        merkle::checkpoint::sign_with_signature(&cp, origin, key_id, self.signature.as_bytes())
            .map_err(|e| LedgerError::Invalid(format!("cannot write the checkpoint note: {e}")))
    }
}

/// Why a ledger could not be created, opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "{0} is not an oretrail data folder (it has no log file); create one with `oretrail init`"
    )]
    NotALedger(PathBuf),
    #[error("{0} already holds a ledger; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("integrity failure at entry {index}: {reason}")]
    Integrity { index: u64, reason: String },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error("{0}")]
    Invalid(String),
    #[error("entry {index} does not exist (the tree has {size} entries)")]
    NoSuchEntry { index: u64, size: u64 },
    #[error("the ledger's writer has stopped: {0}")]
    WriterStopped(String),
}

impl LedgerError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        LedgerError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Why an event was not appended. Nothing changed in any case.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("event bytes are not a canonical oretrail event: {0}")]
    Malformed(CodecError),
    #[error("signature does not verify under key {0}")]
    BadSignature(PublicKey),
    #[error(transparent)]
    Refused(Refusal),
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
}

/// The answer to an append, given only once the entry is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub index: u64,
    /// RFC 9162 leaf hash of the entry (what the next entry links to).
    pub entry_hash: Digest,
    /// Size of the tree in `checkpoint`; it includes the entry.
    pub tree_size: u64,
    /// C2SP checkpoint note covering the entry.
    pub checkpoint: String,
    /// True when the event was already on the ledger: this is the original.
    pub replay: bool,
}

/// The committed head that readers see.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    size: u64,
    root: Hash,
    note: Arc<str>,
}

/// An append in flight; wait for its durable receipt.
pub struct Pending(tokio::sync::oneshot::Receiver<Result<Receipt, AppendError>>);

impl Pending {
    /// Blocks until the entry is durable (or refused). Do not call from an
    /// async task; await [`Pending::into_future`] there.
    pub fn wait(self) -> Result<Receipt, AppendError> {
        self.0.blocking_recv().unwrap_or_else(|_| {
            Err(AppendError::Unavailable(
                "the writer stopped before answering".into(),
            ))
        })
    }

    /// Waits asynchronously.
    pub async fn into_future(self) -> Result<Receipt, AppendError> {
        self.0.await.unwrap_or_else(|_| {
            Err(AppendError::Unavailable(
                "the writer stopped before answering".into(),
            ))
        })
    }
}

pub(crate) struct Request {
    signed: SignedEvent,
    event: Event,
    /// The keys the event registers, checked on the caller's thread.
    key_checks: Vec<(PublicKey, Result<(), CryptoError>)>,
    event_id: Digest,
    reply: tokio::sync::oneshot::Sender<Result<Receipt, AppendError>>,
}

/// An open ledger: one writer thread, any number of readers.
pub struct Ledger {
    dir: PathBuf,
    index: Index,
    reader: LogReader,
    head: Arc<ArcSwap<Head>>,
    info: Arc<ArcSwap<Option<LedgerInfo>>>,
    sender: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    /// Keys of submitted events, decoded once.
    keys: KeyCache,
    /// Held while the ledger is open; released when it is dropped, after
    /// the writer has stopped.
    _writer_lock: std::fs::File,
}

impl Ledger {
    /// Creates a new ledger in `dir`: a log key and an operator key in
    /// `dir/keys/`, and the genesis entry naming them.
    pub fn create(
        dir: &Path,
        genesis: GenesisParams,
        options: Options,
    ) -> Result<Ledger, LedgerError> {
        let log_key = SecretKey::generate()?;
        let operator_key = SecretKey::generate()?;
        open::create(dir, genesis, log_key, operator_key, options)
    }

    /// Like [`Ledger::create`], with the log and operator keys given instead
    /// of generated, so that a ledger built from fixed seeds (the demo) is
    /// the same, entry for entry, on every run. The keys are written to
    /// `dir/keys/` as `create` writes its own.
    pub fn create_with_keys(
        dir: &Path,
        genesis: GenesisParams,
        log_key: SecretKey,
        operator_key: SecretKey,
        options: Options,
    ) -> Result<Ledger, LedgerError> {
        open::create(dir, genesis, log_key, operator_key, options)
    }

    /// Opens an existing ledger, recovering from a crash if needed.
    pub fn open(dir: &Path, options: Options) -> Result<Ledger, LedgerError> {
        open::open(dir, options)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Verifies an event's encoding and signature on this thread, then
    /// queues it for the writer.
    pub fn submit(&self, signed: SignedEvent) -> Result<Pending, AppendError> {
        let event: Event = codec::decode(&signed.event).map_err(AppendError::Malformed)?;
        self.keys
            .verify_strict(&signed.key, &signed.event, &signed.signature)
            .map_err(|_| AppendError::BadSignature(signed.key))?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        let event_id = signed.event_id();
        let sender = self
            .sender
            .as_ref()
            .ok_or_else(|| AppendError::Unavailable("the ledger is closing".into()))?;
        sender
            .send(Request {
                key_checks: rules::precheck_keys(&event),
                signed,
                event,
                event_id,
                reply,
            })
            .map_err(|_| AppendError::Unavailable("the writer has stopped".into()))?;
        Ok(Pending(rx))
    }

    /// Appends one signed event and waits until it is durable.
    pub fn append(&self, signed: SignedEvent) -> Result<Receipt, AppendError> {
        self.submit(signed)?.wait()
    }

    /// Number of committed entries.
    pub fn size(&self) -> u64 {
        self.head.load().size
    }

    /// Root hash of the committed tree.
    pub fn root(&self) -> Hash {
        self.head.load().root
    }

    /// The latest checkpoint note.
    pub fn checkpoint(&self) -> Arc<str> {
        self.head.load().note.clone()
    }

    /// The ledger's identity from its genesis entry.
    pub fn info(&self) -> Option<LedgerInfo> {
        (**self.info.load()).clone()
    }

    /// The verifier key line of the log key.
    pub fn log_key_line(&self) -> Option<String> {
        let info = self.info()?;
        let vk = info.log_key.verifying_key().ok()?;
        merkle::checkpoint::verifier_key(&info.origin, &vk).ok()
    }

    /// Read access to the current state (participants, keys, ...).
    pub fn state(&self) -> &impl StateView {
        &self.index
    }

    /// A committed entry and its exact bytes.
    pub fn entry(&self, index: u64) -> Result<(Entry, Vec<u8>), LedgerError> {
        let size = self.size();
        if index >= size {
            return Err(LedgerError::NoSuchEntry { index, size });
        }
        let loc = self.index.location(index)?;
        let bytes = self
            .reader
            .read_payload(loc.frame_offset, loc.payload_len)
            .map_err(|e| LedgerError::io(&self.dir.join(LOG_FILE), e))?
            .map_err(|d| LedgerError::Integrity {
                index,
                reason: d.reason,
            })?;
        let entry: Entry = codec::decode(&bytes).map_err(|e| LedgerError::Integrity {
            index,
            reason: e.to_string(),
        })?;
        Ok((entry, bytes))
    }

    /// Committed entries `start..end`, decoded, read from the log in one
    /// positional read (each frame's CRC checked) rather than one read per
    /// entry: for readers that follow the whole log, such as the catalog.
    /// Ask for bounded ranges (a few thousand entries): the span is read
    /// into memory at once.
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, LedgerError> {
        let size = self.size();
        if end > size || start > end {
            return Err(LedgerError::NoSuchEntry {
                index: end.saturating_sub(1),
                size,
            });
        }
        if start == end {
            return Ok(Vec::new());
        }
        let path = self.dir.join(LOG_FILE);
        let first = self.index.location(start)?;
        let last = self.index.location(end - 1)?;
        let span_end = last.frame_offset + FRAME_HEADER_LEN as u64 + u64::from(last.payload_len);
        let len = span_end
            .checked_sub(first.frame_offset)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| LedgerError::Integrity {
                index: end - 1,
                reason: "entry locations run backwards".into(),
            })?;
        let mut span = vec![0u8; len];
        let file = std::fs::File::open(&path).map_err(|e| LedgerError::io(&path, e))?;
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut span, first.frame_offset)
            .map_err(|e| LedgerError::io(&path, e))?;
        // The frame reader counts offsets from the end of the log header;
        // the span starts at a frame boundary, so it reads it as a log of
        // its own (the offsets it reports are unused here).
        let mut frames = FrameReader::new(span.as_slice(), LOG_HEADER.len() as u64 + len as u64);
        let mut entries = Vec::with_capacity((end - start) as usize);
        while entries.len() < (end - start) as usize {
            let index = start + entries.len() as u64;
            let damaged = |reason: String| LedgerError::Integrity { index, reason };
            let frame = match frames.next_frame().map_err(|e| LedgerError::io(&path, e))? {
                Ok(Some(frame)) => frame,
                Ok(None) => return Err(damaged("the log ends before the entry".into())),
                Err(d) => return Err(damaged(d.reason)),
            };
            if frame.kind != FrameKind::Entry {
                continue;
            }
            let entry: Entry = codec::decode(&frame.payload).map_err(|e| damaged(e.to_string()))?;
            if entry.index != index {
                return Err(damaged(format!("the frame holds entry {}", entry.index)));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The entry that holds the event with this id.
    pub fn find_event(&self, event_id: &Digest) -> Result<Option<u64>, LedgerError> {
        Ok(self
            .index
            .event_entry(event_id)?
            .filter(|i| *i < self.size()))
    }

    /// RFC 9162 inclusion proof of entry `index` in the tree of `tree_size`.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(tree_size)?;
        merkle::inclusion_proof(&self.index, index, tree_size)
            .map_err(|e| LedgerError::Invalid(e.to_string()))
    }

    /// RFC 9162 consistency proof between two tree sizes.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(second)?;
        merkle::consistency_proof(&self.index, first, second)
            .map_err(|e| LedgerError::Invalid(e.to_string()))
    }

    /// Root of the tree at a past size.
    pub fn root_at(&self, tree_size: u64) -> Result<Hash, LedgerError> {
        self.check_size(tree_size)?;
        merkle::root(&self.index, tree_size).map_err(|e| LedgerError::Invalid(e.to_string()))
    }

    fn check_size(&self, tree_size: u64) -> Result<(), LedgerError> {
        let size = self.size();
        if tree_size > size {
            return Err(LedgerError::Invalid(format!(
                "tree size {tree_size} is larger than the committed tree ({size} entries)"
            )));
        }
        Ok(())
    }

    /// Bytes used on disk by the log and the index. While the ledger
    /// appends, the log's length includes the zeros reserved after its
    /// last frame (at most `store::log::RESERVE`).
    pub fn disk_usage(&self) -> Result<(u64, u64), LedgerError> {
        let log = std::fs::metadata(self.dir.join(LOG_FILE))
            .map_err(|e| LedgerError::io(&self.dir.join(LOG_FILE), e))?
            .len();
        Ok((log, dir_size(&self.dir.join(INDEX_DIR))))
    }

    /// Gives sled the index writes still waiting in memory and flushes
    /// it. Not needed for durability (the log is synced before any
    /// append is answered); `close` does it too.
    pub fn flush_index(&self) -> Result<(), LedgerError> {
        Ok(self.index.flush()?)
    }

    /// Stops the writer after the queued appends and flushes the index.
    pub fn close(mut self) -> Result<(), LedgerError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), LedgerError> {
        drop(self.sender.take());
        if let Some(handle) = self.writer.take() {
            handle
                .join()
                .map_err(|_| LedgerError::WriterStopped("the writer thread panicked".into()))?;
        }
        self.index.flush()?;
        Ok(())
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "closing the ledger failed");
        }
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// What `init` needs to write the genesis entry.
#[derive(Debug, Clone)]
pub struct GenesisParams {
    pub origin: String,
    pub operator: ParticipantId,
    pub operator_name: String,
    pub operator_country: CountryCode,
}

pub(crate) fn genesis_event(
    params: &GenesisParams,
    log_key: &PublicKey,
    operator_key: &PublicKey,
    time: Timestamp,
) -> Event {
    Event {
        ledger: params.origin.clone(),
        signer: params.operator.clone(),
        time,
        nonce: 0,
        body: EventBody::Genesis(Genesis {
            origin: params.origin.clone(),
            log_key: *log_key,
            operator: params.operator.clone(),
            operator_name: params.operator_name.clone(),
            operator_country: params.operator_country.clone(),
            operator_key: *operator_key,
        }),
    }
}
