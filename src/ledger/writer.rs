//! The writer: two threads in a pipeline. The sequencer checks each
//! request against the state, builds its entry and stages its index
//! writes; the committer writes what the sequencer staged, with one
//! checkpoint and one `fdatasync` for everything that is waiting, applies
//! the index, publishes the new head and only then answers. While one
//! group is being synced, the sequencer prepares the next, so the disk's
//! sync time is not also time the rules and callers wait.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::{AppendError, CheckpointRecord, Clock, Head, LedgerError, Receipt, Request};
use crate::codec;
use crate::crypto::{Digest, SecretKey};
use crate::merkle::{self, Frontier, Hash, checkpoint::Checkpoint};
use crate::model::{
    CachedState, EventBody, LedgerInfo, MemoryState, Overlay, PrecheckedKeys, StateValue, Timestamp,
};
use crate::rules::{self, Context, Refusal, RuleCode, RuleError};
use crate::store::log::encode_frame;
use crate::store::{EntryLocation, FrameKind, Index, IndexBatch, IndexError, LogWriter};

/// Stages the derived data of one entry: its location, its event id, the
/// tree nodes it completes and its state changes. Shared by the writer and
/// by recovery, so both derive exactly the same index from the same log.
pub(crate) fn stage_entry(
    batch: &mut IndexBatch,
    frontier: &mut Frontier,
    pending: &mut MemoryState,
    location: EntryLocation,
    event_id: &Digest,
    entry_bytes: &[u8],
    changes: Vec<StateValue>,
) -> Result<Hash, IndexError> {
    let leaf = merkle::leaf_hash(entry_bytes);
    batch.push_entry(location, event_id);
    for (_, _, hash) in frontier.push(leaf) {
        batch.push_node(hash);
    }
    for value in changes {
        batch.put_state(&value)?;
        pending.put(value);
    }
    Ok(leaf)
}

/// Signs the checkpoint for a tree of `size` entries with root `root`.
pub(crate) fn sign_checkpoint(
    origin: &str,
    size: u64,
    root: Hash,
    log_key: &SecretKey,
) -> Result<(CheckpointRecord, String), LedgerError> {
    let cp = Checkpoint::new(origin, size, root)
        .map_err(|e| LedgerError::Invalid(format!("cannot make a checkpoint: {e}")))?;
    let signature = log_key.sign(cp.body().as_bytes());
    let record = CheckpointRecord {
        size,
        root: Digest::from_bytes(root),
        signature,
    };
    let note = record.note(origin, &log_key.public())?;
    Ok((record, note))
}

/// State values the writer keeps in memory (participants, keys, lots...).
pub(crate) const STATE_CACHE_LIMIT: usize = 1 << 20;

/// Sequenced batches that may wait for the committer at once; the
/// sequencer blocks beyond that, so memory stays bounded under load.
const QUEUED_BATCHES: usize = 8;

type Reply = tokio::sync::oneshot::Sender<Result<Receipt, AppendError>>;

/// The sequencer's half: owns the state the rules read.
pub(crate) struct Writer {
    pub index: Index,
    /// The committed state as the rules read it: the index, with the values
    /// this thread read or sequenced kept in memory.
    pub state: CachedState<Index>,
    pub frontier: Frontier,
    pub last_hash: Digest,
    pub last_time: Timestamp,
    pub info: Option<LedgerInfo>,
    /// Shared with the committer, which signs the checkpoints.
    pub log_key: Arc<SecretKey>,
    pub clock: Clock,
    pub head: Arc<ArcSwap<Head>>,
    pub shared_info: Arc<ArcSwap<Option<LedgerInfo>>>,
    pub max_batch: usize,
}

/// One sequenced batch on its way to the committer.
struct Sequenced {
    /// Entry frames, one after another, from offset 0.
    frames: Vec<u8>,
    /// Index writes, with locations relative to `frames`.
    staged: IndexBatch,
    /// Tree size, root and last entry hash after the batch.
    size: u64,
    root: Hash,
    last_hash: Digest,
    /// The ledger's identity, in the batch that sequenced the genesis
    /// entry only.
    genesis: Option<LedgerInfo>,
    /// Answered with a fresh receipt: (reply, index, leaf).
    accepted: Vec<(Reply, u64, Hash)>,
    /// Events already sequenced: answered as replays once durable.
    replays: Vec<(Reply, u64, Hash)>,
}

/// Why the pipeline stopped, once it has; read by the sequencer before
/// each batch.
type Stopped = Arc<Mutex<Option<String>>>;

impl Writer {
    /// Runs the pipeline until the request channel closes: this thread
    /// sequences, a second one commits to `log`.
    pub fn run(mut self, log: LogWriter, requests: mpsc::Receiver<Request>) {
        let stopped: Stopped = Arc::default();
        let (to_committer, batches) = mpsc::sync_channel::<Sequenced>(QUEUED_BATCHES);
        let committer = Committer {
            index: self.index.clone(),
            log_key: self.log_key.clone(),
            head: self.head.clone(),
            shared_info: self.shared_info.clone(),
            origin: self.info.as_ref().map(|i| i.origin.clone()),
            stopped: stopped.clone(),
            max_batch: self.max_batch,
        };
        let handle = match std::thread::Builder::new()
            .name("oretrail-commit".into())
            .spawn(move || committer.run(log, batches))
        {
            Ok(h) => h,
            Err(e) => {
                let reason = format!("cannot start the committer thread: {e}");
                tracing::error!(error = %reason, "ledger writer stopped");
                for r in requests.iter() {
                    let _ = r.reply.send(Err(AppendError::Unavailable(reason.clone())));
                }
                return;
            }
        };
        let mut in_flight = InFlight::default();
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match requests.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let stop = stopped.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(reason) = stop {
                for r in batch.into_iter().chain(requests.try_iter()) {
                    let _ = r.reply.send(Err(AppendError::Unavailable(reason.clone())));
                }
                break;
            }
            in_flight.forget_committed(self.head.load().size);
            match self.sequence(batch, &mut in_flight) {
                Ok(Some(sequenced)) => {
                    if let Err(mpsc::SendError(lost)) = to_committer.send(sequenced) {
                        let reason = "the committer has stopped".to_string();
                        for (reply, ..) in lost.accepted.into_iter().chain(lost.replays) {
                            let _ = reply.send(Err(AppendError::Unavailable(reason.clone())));
                        }
                        break;
                    }
                }
                Ok(None) => {}
                Err(fatal) => {
                    tracing::error!(error = %fatal, "ledger writer stopped");
                    let mut stopped = stopped.lock().unwrap_or_else(|e| e.into_inner());
                    stopped.get_or_insert_with(|| fatal.to_string());
                    break;
                }
            }
        }
        // Let the committer finish what it has, then answer whatever is
        // still queued with the reason the pipeline stopped.
        drop(to_committer);
        let _ = handle.join();
        let reason = stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "the ledger writer has stopped".into());
        for r in requests.try_iter() {
            let _ = r.reply.send(Err(AppendError::Unavailable(reason.clone())));
        }
    }

    /// Checks and builds the entries of one batch. `Ok(None)` when nothing
    /// needs committing (every request was refused or answered).
    fn sequence(
        &mut self,
        batch: Vec<Request>,
        in_flight: &mut InFlight,
    ) -> Result<Option<Sequenced>, LedgerError> {
        let record_time = (self.clock)().max(self.last_time);
        let mut pending = MemoryState::new();
        let mut staged = IndexBatch::new(self.frontier.size());
        let mut frames = Vec::with_capacity(batch.len() * 400);
        let mut accepted: Vec<(Reply, u64, Hash)> = Vec::with_capacity(batch.len());
        let mut replays: Vec<(Reply, u64, Hash)> = Vec::new();
        let mut new_ids: Vec<(Digest, u64, Hash)> = Vec::with_capacity(batch.len());
        let mut genesis: Option<LedgerInfo> = None;

        for request in batch {
            let Request {
                signed,
                event,
                key_checks,
                event_id,
                reply,
            } = request;
            if let Some((index, leaf)) = in_flight.get(&event_id) {
                replays.push((reply, index, leaf));
                continue;
            }
            match self.index.event_entry(&event_id) {
                Ok(Some(index)) => {
                    let _ = reply.send(self.replay_receipt(index));
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = reply.send(Err(AppendError::Unavailable(e.to_string())));
                    continue;
                }
            }
            let index = self.frontier.size();
            let ctx = Context { index, record_time };
            let view = PrecheckedKeys::new(Overlay::new(&self.state, &pending), &key_checks);
            let changes = match rules::apply(&view, ctx, &signed.key, &event) {
                Ok(changes) => changes,
                Err(RuleError::Refused(r)) => {
                    let _ = reply.send(Err(AppendError::Refused(r)));
                    continue;
                }
                Err(RuleError::State(e)) => {
                    let _ = reply.send(Err(AppendError::Unavailable(e.to_string())));
                    continue;
                }
            };
            if let EventBody::Genesis(g) = &event.body
                && g.log_key != self.log_key.public()
            {
                let _ = reply.send(Err(AppendError::Refused(Refusal {
                    code: RuleCode::GenesisInvalid,
                    message: "the genesis event names a log key other than the one this ledger signs with".into(),
                })));
                continue;
            }
            let entry = crate::model::Entry {
                index,
                prev: self.last_hash,
                record_time,
                signed,
            };
            let bytes = match codec::encode(&entry) {
                Ok(b) => b,
                Err(e) => {
                    let _ = reply.send(Err(AppendError::Malformed(e)));
                    continue;
                }
            };
            let location = EntryLocation {
                frame_offset: frames.len() as u64,
                payload_len: bytes.len() as u32,
            };
            encode_frame(FrameKind::Entry, &bytes, &mut frames);
            if self.info.is_none() && genesis.is_none() {
                genesis = changes.iter().find_map(|v| match v {
                    StateValue::Ledger(i) => Some(i.clone()),
                    _ => None,
                });
            }
            let leaf = stage_entry(
                &mut staged,
                &mut self.frontier,
                &mut pending,
                location,
                &event_id,
                &bytes,
                changes,
            )?;
            self.last_hash = Digest::from_bytes(leaf);
            in_flight.insert(event_id, index, leaf);
            new_ids.push((event_id, index, leaf));
            accepted.push((reply, index, leaf));
        }
        if accepted.is_empty() && replays.is_empty() {
            return Ok(None);
        }
        if !accepted.is_empty() && self.info.is_none() && genesis.is_none() {
            return Err(LedgerError::Invalid(
                "a batch was accepted before the genesis entry".into(),
            ));
        }
        // The rules of the next batch see this one's effects now; if its
        // commit fails, the pipeline stops and nothing later is answered.
        self.last_time = record_time;
        self.state.remember(pending.into_values());
        if genesis.is_some() {
            self.info = genesis.clone();
        }
        Ok(Some(Sequenced {
            frames,
            staged,
            size: self.frontier.size(),
            root: self.frontier.root(),
            last_hash: self.last_hash,
            genesis,
            accepted,
            replays,
        }))
    }

    fn replay_receipt(&self, index: u64) -> Result<Receipt, AppendError> {
        let head = self.head.load();
        let leaf = merkle::NodeSource::node(&self.index, 0, index)
            .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        Ok(Receipt {
            index,
            entry_hash: Digest::from_bytes(leaf),
            tree_size: head.size,
            checkpoint: head.note.to_string(),
            replay: true,
        })
    }
}

/// Events sequenced but perhaps not yet in the index, so that a replay
/// of one is recognised before its batch commits.
#[derive(Default)]
struct InFlight {
    by_id: HashMap<Digest, (u64, Hash)>,
    order: VecDeque<(u64, Digest)>,
}

impl InFlight {
    fn insert(&mut self, id: Digest, index: u64, leaf: Hash) {
        self.by_id.insert(id, (index, leaf));
        self.order.push_back((index, id));
    }

    fn get(&self, id: &Digest) -> Option<(u64, Hash)> {
        self.by_id.get(id).copied()
    }

    /// Drops the events of entries below `committed`: the index has them.
    fn forget_committed(&mut self, committed: u64) {
        while let Some(&(index, id)) = self.order.front() {
            if index >= committed {
                break;
            }
            self.by_id.remove(&id);
            self.order.pop_front();
        }
    }
}

/// The committer's half: owns the log file's end.
struct Committer {
    index: Index,
    log_key: Arc<SecretKey>,
    head: Arc<ArcSwap<Head>>,
    shared_info: Arc<ArcSwap<Option<LedgerInfo>>>,
    /// The log's name, for checkpoints: known from the genesis entry.
    origin: Option<String>,
    stopped: Stopped,
    max_batch: usize,
}

impl Committer {
    fn run(mut self, mut log: LogWriter, batches: mpsc::Receiver<Sequenced>) {
        let mut carried: Option<Sequenced> = None;
        loop {
            let Some(first) = carried.take().or_else(|| batches.recv().ok()) else {
                break;
            };
            // Everything waiting goes into one sync, up to `max_batch`
            // entries (so `max_batch: 1` still means a checkpoint after
            // every entry).
            let mut entries = first.staged.len();
            let mut group = vec![first];
            while let Ok(next) = batches.try_recv() {
                if entries > 0 && entries + next.staged.len() > self.max_batch {
                    carried = Some(next);
                    break;
                }
                entries += next.staged.len();
                group.push(next);
            }
            if let Err(fatal) = self.commit(&mut log, group) {
                tracing::error!(error = %fatal, "ledger writer stopped");
                let reason = fatal.to_string();
                self.stop(&reason);
                for b in carried.into_iter().chain(batches.iter()) {
                    answer_error(b, &reason);
                }
                return;
            }
        }
        // Closing: zeros left after the last frame would still read as the
        // log's end, so a failure here loses nothing.
        let path = log.path().to_path_buf();
        if let Err(e) = log.close() {
            tracing::warn!(error = %e, log = %path.display(), "cannot give back the log's reserved space");
        }
    }

    fn stop(&self, reason: &str) {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        stopped.get_or_insert_with(|| reason.to_string());
    }

    /// Writes a group of batches with one checkpoint after them, syncs,
    /// applies the index and answers.
    fn commit(&mut self, log: &mut LogWriter, group: Vec<Sequenced>) -> Result<(), LedgerError> {
        let base = log.end();
        let mut frames: Vec<u8> = Vec::with_capacity(group.iter().map(|b| b.frames.len()).sum());
        let mut staged: Option<IndexBatch> = None;
        let mut accepted = Vec::new();
        let mut replays = Vec::new();
        let mut last: Option<(u64, Hash, Digest)> = None;
        let mut genesis = None;
        for b in group {
            let mut batch = b.staged;
            batch.rebase_locations(base + frames.len() as u64);
            frames.extend_from_slice(&b.frames);
            if !batch.is_empty() {
                last = Some((b.size, b.root, b.last_hash));
                match &mut staged {
                    Some(s) => s.extend(batch)?,
                    None => staged = Some(batch),
                }
            }
            if let Some(info) = b.genesis {
                self.origin = Some(info.origin.clone());
                genesis = Some(info);
            }
            accepted.extend(b.accepted);
            replays.extend(b.replays);
        }
        let (Some(mut staged), Some((size, root, last_hash))) = (staged, last) else {
            // Only replays of events already committed by now.
            let head = self.head.load();
            for (reply, index, leaf) in replays {
                let _ = reply.send(Ok(receipt(index, leaf, head.size, &head.note, true)));
            }
            return Ok(());
        };
        let origin = self.origin.as_deref().ok_or_else(|| {
            LedgerError::Invalid("a batch was accepted before the genesis entry".into())
        })?;
        let (record, note) = sign_checkpoint(origin, size, root, &self.log_key)?;
        let record_bytes =
            codec::encode(&record).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        encode_frame(FrameKind::Checkpoint, &record_bytes, &mut frames);
        staged.put_checkpoint(size, &record_bytes);
        staged.set_applied(size, &last_hash);

        // The durability point: nothing is acknowledged before this returns.
        if let Err(e) = log.append_durable(&frames) {
            let reason = format!("writing the log failed: {e}");
            for (reply, ..) in accepted.into_iter().chain(replays) {
                let _ = reply.send(Err(AppendError::Unavailable(reason.clone())));
            }
            return Err(LedgerError::io(log.path(), e));
        }
        let index_result = self.index.apply(staged);
        if genesis.is_some() {
            self.shared_info.store(Arc::new(genesis));
        }
        let note: Arc<str> = note.into();
        self.head.store(Arc::new(Head {
            size,
            root,
            note: note.clone(),
        }));
        for (reply, index, leaf) in accepted {
            let _ = reply.send(Ok(receipt(index, leaf, size, &note, false)));
        }
        for (reply, index, leaf) in replays {
            let _ = reply.send(Ok(receipt(index, leaf, size, &note, true)));
        }
        // The entries are durable and answered; an index failure stops the
        // pipeline so no later batch is checked against a stale state.
        index_result.map_err(LedgerError::from)
    }
}

fn receipt(index: u64, leaf: Hash, tree_size: u64, note: &str, replay: bool) -> Receipt {
    Receipt {
        index,
        entry_hash: Digest::from_bytes(leaf),
        tree_size,
        checkpoint: note.to_string(),
        replay,
    }
}

fn answer_error(batch: Sequenced, reason: &str) {
    for (reply, ..) in batch.accepted.into_iter().chain(batch.replays) {
        let _ = reply.send(Err(AppendError::Unavailable(reason.to_string())));
    }
}
