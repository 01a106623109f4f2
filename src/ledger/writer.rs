//! The single writer: sequences, commits with one sync per batch, then
//! answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;

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
#[allow(clippy::too_many_arguments)]
pub(crate) fn stage_entry(
    batch: &mut IndexBatch,
    frontier: &mut Frontier,
    pending: &mut MemoryState,
    index: u64,
    location: EntryLocation,
    event_id: &Digest,
    entry_bytes: &[u8],
    changes: Vec<StateValue>,
) -> Result<Hash, IndexError> {
    let leaf = merkle::leaf_hash(entry_bytes);
    batch.push_location(location);
    batch.put_event(event_id, index);
    for (_, _, hash) in frontier.push(leaf) {
        batch.push_node(hash);
    }
    for value in changes {
        batch.put_state(&value)?;
        pending.put(value);
    }
    Ok(leaf)
}

/// Signs the checkpoint for the frontier's current size.
pub(crate) fn sign_checkpoint(
    origin: &str,
    frontier: &Frontier,
    log_key: &SecretKey,
) -> Result<(CheckpointRecord, String), LedgerError> {
    let cp = Checkpoint::new(origin, frontier.size(), frontier.root())
        .map_err(|e| LedgerError::Invalid(format!("cannot make a checkpoint: {e}")))?;
    let signature = log_key.sign(cp.body().as_bytes());
    let record = CheckpointRecord {
        size: frontier.size(),
        root: Digest::from_bytes(frontier.root()),
        signature,
    };
    let note = record.note(origin, &log_key.public())?;
    Ok((record, note))
}

/// State values the writer keeps in memory (participants, keys, lots...).
pub(crate) const STATE_CACHE_LIMIT: usize = 1 << 20;

pub(crate) struct Writer {
    pub log: LogWriter,
    pub index: Index,
    /// The committed state as the rules read it: the index, with the values
    /// this thread read or committed kept in memory.
    pub state: CachedState<Index>,
    pub frontier: Frontier,
    pub last_hash: Digest,
    pub last_time: Timestamp,
    pub info: Option<LedgerInfo>,
    pub log_key: SecretKey,
    pub clock: Clock,
    pub head: Arc<ArcSwap<Head>>,
    pub shared_info: Arc<ArcSwap<Option<LedgerInfo>>>,
    pub max_batch: usize,
}

/// An accepted request waiting for the batch's sync.
struct Accepted {
    request: Request,
    index: u64,
    leaf: Hash,
}

impl Writer {
    pub fn run(mut self, requests: mpsc::Receiver<Request>) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match requests.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if let Err(fatal) = self.commit(batch) {
                // After a failed write or sync nothing on disk can be
                // trusted past the last acknowledged batch; stop, and let
                // the next open recover from the log.
                tracing::error!(error = %fatal, "ledger writer stopped");
                let reason = fatal.to_string();
                for r in requests.iter() {
                    let _ = r.reply.send(Err(AppendError::Unavailable(reason.clone())));
                }
                return;
            }
        }
    }

    fn commit(&mut self, batch: Vec<Request>) -> Result<(), LedgerError> {
        let record_time = (self.clock)().max(self.last_time);
        let base_end = self.log.end();
        let mut pending = MemoryState::new();
        let mut staged = IndexBatch::new(self.frontier.size());
        let mut frames = Vec::with_capacity(batch.len() * 400);
        let mut accepted: Vec<Accepted> = Vec::with_capacity(batch.len());
        let mut duplicates: Vec<(Request, u64, Hash)> = Vec::new();
        let mut in_batch: HashMap<Digest, (u64, Hash)> = HashMap::new();
        let start_frontier = self.frontier.clone();
        let start_hash = self.last_hash;
        let mut info = self.info.clone();

        for request in batch {
            if let Some(&(index, leaf)) = in_batch.get(&request.event_id) {
                duplicates.push((request, index, leaf));
                continue;
            }
            match self.index.event_entry(&request.event_id) {
                Ok(Some(index)) => {
                    let answer = self.replay_receipt(index);
                    let _ = request.reply.send(answer);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = request
                        .reply
                        .send(Err(AppendError::Unavailable(e.to_string())));
                    continue;
                }
            }
            let index = self.frontier.size();
            let ctx = Context { index, record_time };
            let view =
                PrecheckedKeys::new(Overlay::new(&self.state, &pending), &request.key_checks);
            let changes = match rules::apply(&view, ctx, &request.signed.key, &request.event) {
                Ok(changes) => changes,
                Err(RuleError::Refused(r)) => {
                    let _ = request.reply.send(Err(AppendError::Refused(r)));
                    continue;
                }
                Err(RuleError::State(e)) => {
                    let _ = request
                        .reply
                        .send(Err(AppendError::Unavailable(e.to_string())));
                    continue;
                }
            };
            if let EventBody::Genesis(g) = &request.event.body
                && g.log_key != self.log_key.public()
            {
                let _ = request.reply.send(Err(AppendError::Refused(Refusal {
                    code: RuleCode::GenesisInvalid,
                    message: "the genesis event names a log key other than the one this ledger signs with".into(),
                })));
                continue;
            }
            let entry = crate::model::Entry {
                index,
                prev: self.last_hash,
                record_time,
                signed: request.signed.clone(),
            };
            let bytes = match codec::encode(&entry) {
                Ok(b) => b,
                Err(e) => {
                    let _ = request.reply.send(Err(AppendError::Malformed(e)));
                    continue;
                }
            };
            let location = EntryLocation {
                frame_offset: base_end + frames.len() as u64,
                payload_len: bytes.len() as u32,
            };
            encode_frame(FrameKind::Entry, &bytes, &mut frames);
            if info.is_none() {
                info = changes.iter().find_map(|v| match v {
                    StateValue::Ledger(i) => Some(i.clone()),
                    _ => None,
                });
            }
            let leaf = stage_entry(
                &mut staged,
                &mut self.frontier,
                &mut pending,
                index,
                location,
                &request.event_id,
                &bytes,
                changes,
            )?;
            self.last_hash = Digest::from_bytes(leaf);
            in_batch.insert(request.event_id, (index, leaf));
            accepted.push(Accepted {
                request,
                index,
                leaf,
            });
        }
        if accepted.is_empty() {
            return Ok(());
        }
        let origin = info.as_ref().map(|i| i.origin.clone()).ok_or_else(|| {
            LedgerError::Invalid("a batch was accepted before the genesis entry".into())
        })?;
        let (record, note) = sign_checkpoint(&origin, &self.frontier, &self.log_key)?;
        let record_bytes =
            codec::encode(&record).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        encode_frame(FrameKind::Checkpoint, &record_bytes, &mut frames);
        staged.put_checkpoint(record.size, &record_bytes);
        staged.set_applied(record.size, &self.last_hash);

        // The durability point: nothing is acknowledged before this returns.
        if let Err(e) = self.log.append_durable(&frames) {
            self.frontier = start_frontier;
            self.last_hash = start_hash;
            let reason = format!("writing the log failed: {e}");
            for a in accepted {
                let _ = a
                    .request
                    .reply
                    .send(Err(AppendError::Unavailable(reason.clone())));
            }
            for (r, ..) in duplicates {
                let _ = r.reply.send(Err(AppendError::Unavailable(reason.clone())));
            }
            return Err(LedgerError::io(self.log.path(), e));
        }
        self.last_time = record_time;
        let index_result = self.index.apply(staged);
        if index_result.is_ok() {
            self.state.remember(pending.into_values());
        }
        if self.info.is_none() {
            self.shared_info.store(Arc::new(info.clone()));
            self.info = info;
        }
        let note: Arc<str> = note.into();
        self.head.store(Arc::new(Head {
            size: record.size,
            root: self.frontier.root(),
            note: note.clone(),
        }));
        let receipt = |index: u64, leaf: Hash, replay: bool| Receipt {
            index,
            entry_hash: Digest::from_bytes(leaf),
            tree_size: record.size,
            checkpoint: note.to_string(),
            replay,
        };
        for a in accepted {
            let _ = a.request.reply.send(Ok(receipt(a.index, a.leaf, false)));
        }
        for (r, index, leaf) in duplicates {
            let _ = r.reply.send(Ok(receipt(index, leaf, true)));
        }
        // The entries are durable and answered; an index failure stops the
        // writer so no later batch is checked against a stale state.
        index_result.map_err(LedgerError::from)
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
