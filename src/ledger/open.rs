//! Creating and opening a ledger: crash recovery and index reconciliation.

use std::collections::{HashMap, HashSet};
use std::fs::{DirBuilder, File};
use std::io::BufReader;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use arc_swap::ArcSwap;
use rayon::prelude::*;

use super::damage::{self, DamageVerdict};
use super::writer::{STATE_CACHE_LIMIT, Writer, stage_entry};
use super::{
    CheckpointRecord, GenesisParams, Head, INDEX_DIR, KEYS_DIR, LOG_FILE, LOG_KEY_FILE, Ledger,
    LedgerError, OPERATOR_KEY_FILE, Options, WRITER_LOCK_FILE, genesis_event,
};
use crate::codec;
use crate::crypto::{Digest, KeyCache, SecretKey, SignatureCheck, verify_many};
use crate::merkle::{self, Frontier};
use crate::model::{
    CachedState, Entry, Event, MemoryState, Overlay, PrecheckedKeys, StateView, Timestamp,
};
use crate::rules::{self, Context};
use crate::signer::sign_event;
use crate::store::log::{FrameReader, check_header};
use crate::store::{Damage, EntryLocation, FrameKind, Index, IndexBatch, LogReader, LogWriter};

pub(super) fn create(
    dir: &Path,
    params: GenesisParams,
    log_key: SecretKey,
    operator_key: SecretKey,
    options: Options,
) -> Result<Ledger, LedgerError> {
    let log_path = dir.join(LOG_FILE);
    if log_path.exists() {
        return Err(LedgerError::AlreadyExists(dir.to_path_buf()));
    }
    if !rules::valid_origin(&params.origin) {
        return Err(LedgerError::Invalid(format!(
            "log name {:?} must be 1 to 255 printable characters without spaces or '+'",
            params.origin
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| LedgerError::io(dir, e))?;
    let keys = dir.join(KEYS_DIR);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&keys)
        .map_err(|e| LedgerError::io(&keys, e))?;
    let created = [
        keys.join(LOG_KEY_FILE),
        keys.join(OPERATOR_KEY_FILE),
        log_path.clone(),
    ];
    let result = (|| {
        log_key.write_file(&created[0])?;
        operator_key.write_file(&created[1])?;
        LogWriter::create(&log_path).map_err(|e| LedgerError::io(&log_path, e))?;
        let time = (options.clock)();
        let ledger = open(dir, options)?;
        let event = genesis_event(&params, &log_key.public(), &operator_key.public(), time);
        let signed =
            sign_event(&event, &operator_key).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        ledger
            .append(signed)
            .map_err(|e| LedgerError::Invalid(format!("the genesis entry was refused: {e}")))?;
        Ok(ledger)
    })();
    if result.is_err() {
        // Nothing was acknowledged: remove what this call made so that a
        // corrected `init` can run again in the same folder.
        for path in &created {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_dir_all(dir.join(INDEX_DIR));
    }
    result
}

/// What a scan of the log found.
struct Scan {
    /// Every entry frame, in order.
    entries: Vec<EntryLocation>,
    /// Checkpoint frames by tree size.
    checkpoints: HashMap<u64, EntryLocation>,
    /// Entries covered by the last intact checkpoint: the acknowledged ones.
    acked_count: u64,
    /// Offset just past that checkpoint frame.
    acked_end: u64,
    /// Damage that stopped the scan, if any.
    damage: Option<Damage>,
}

fn scan(file: &File, path: &Path) -> Result<Scan, LedgerError> {
    let integrity = |index: u64, reason: String| LedgerError::Integrity { index, reason };
    check_header(file).map_err(|r| integrity(0, format!("log header: {r}")))?;
    let len = file.metadata().map_err(|e| LedgerError::io(path, e))?.len();
    let mut buffered = BufReader::with_capacity(1 << 20, file);
    buffered
        .seek(SeekFrom::Start(crate::store::log::LOG_HEADER.len() as u64))
        .map_err(|e| LedgerError::io(path, e))?;
    let mut reader = FrameReader::new(buffered, len).with_reserved_tail();
    let mut out = Scan {
        entries: Vec::new(),
        checkpoints: HashMap::new(),
        acked_count: 0,
        acked_end: crate::store::log::LOG_HEADER.len() as u64,
        damage: None,
    };
    loop {
        let frame = match reader.next_frame().map_err(|e| LedgerError::io(path, e))? {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(damage) => {
                out.damage = Some(damage);
                break;
            }
        };
        let location = EntryLocation {
            frame_offset: frame.offset,
            payload_len: frame.payload.len() as u32,
        };
        match frame.kind {
            FrameKind::Entry => out.entries.push(location),
            FrameKind::Checkpoint => {
                let size = out.entries.len() as u64;
                let record: CheckpointRecord = codec::decode(&frame.payload).map_err(|e| {
                    integrity(
                        size.saturating_sub(1),
                        format!("checkpoint frame at byte {}: {e}", frame.offset),
                    )
                })?;
                if record.size != size {
                    return Err(integrity(
                        size.saturating_sub(1),
                        format!(
                            "checkpoint at byte {} claims {} entries, {size} precede it",
                            frame.offset, record.size
                        ),
                    ));
                }
                out.checkpoints.insert(size, location);
                out.acked_count = size;
                out.acked_end = frame.end();
            }
        }
    }
    Ok(out)
}

pub(super) fn open(dir: &Path, options: Options) -> Result<Ledger, LedgerError> {
    let log_path = dir.join(LOG_FILE);
    if !log_path.exists() {
        return Err(LedgerError::NotALedger(dir.to_path_buf()));
    }
    let lock_path = dir.join(WRITER_LOCK_FILE);
    let writer_lock = crate::files::lock_exclusive(&lock_path, false)
        .map_err(|e| LedgerError::Invalid(e.to_string()))?
        .ok_or_else(|| {
            LedgerError::Invalid(format!(
                "{} is open in another process (which holds {}); stop it first",
                dir.display(),
                lock_path.display()
            ))
        })?;
    let file = File::open(&log_path).map_err(|e| LedgerError::io(&log_path, e))?;
    let scan = scan(&file, &log_path)?;
    let file_len = file
        .metadata()
        .map_err(|e| LedgerError::io(&log_path, e))?
        .len();
    if let Some(found) = &scan.damage {
        let verdict = damage::classify(
            &file,
            file_len,
            found,
            scan.entries.len() as u64,
            scan.acked_count,
        )
        .map_err(|e| LedgerError::io(&log_path, e))?;
        if let DamageVerdict::Inside { index, reason } = verdict {
            return Err(LedgerError::Integrity { index, reason });
        }
    }
    let mut index = open_index(dir)?;
    let applied = index.applied()?;
    if applied > scan.acked_count {
        // Name the same entry `verify` would: the last intact entry that
        // lost its checkpoint, or the first acknowledged one that is gone.
        let intact = scan.entries.len() as u64;
        let index = if intact > scan.acked_count {
            intact - 1
        } else {
            scan.acked_count
        };
        return Err(LedgerError::Integrity {
            index,
            reason: format!(
                "the index shows {applied} acknowledged entries but the log holds only {} with an intact \
                 checkpoint; refusing to cut acknowledged entries",
                scan.acked_count
            ),
        });
    }
    // After the last checkpoint: the writer's reserved zeros, kept, or a
    // torn tail, set aside and cut.
    let tail = file_len > scan.acked_end;
    let reserved = tail
        && crate::store::log::is_zero(&file, scan.acked_end, file_len)
            .map_err(|e| LedgerError::io(&log_path, e))?;
    if tail && !reserved {
        keep_torn_tail(&file, dir, scan.acked_end, file_len)?;
    }
    let log = LogWriter::open_at(&log_path, scan.acked_end, reserved)
        .map_err(|e| LedgerError::io(&log_path, e))?;
    let reader = LogReader::open(&log_path).map_err(|e| LedgerError::io(&log_path, e))?;
    let acked = &scan.entries[..scan.acked_count as usize];

    let mut applied = applied;
    reconcile_dense(&index, &reader, acked, applied, &log_path)?;
    if applied > 0 && !index_agrees(&index, &reader, acked, applied, &log_path)? {
        tracing::warn!("the index disagrees with the log; rebuilding it from the log");
        drop(index);
        index = move_aside_and_reopen(dir)?;
        applied = 0;
    }
    replay(
        &index,
        &reader,
        acked,
        &scan.checkpoints,
        applied,
        options.progress,
        &log_path,
    )?;

    let size = scan.acked_count;
    let frontier = Frontier::restore(&index, size)?;
    let last_hash = index.last_hash()?.unwrap_or(Digest::from_bytes([0; 32]));
    let info = index
        .ledger()
        .map_err(|e| LedgerError::Invalid(e.to_string()))?;
    let log_key_path = dir.join(KEYS_DIR).join(LOG_KEY_FILE);
    let log_key = SecretKey::read_file(&log_key_path)?;
    let note: Arc<str> = match &info {
        Some(info) => {
            if log_key.public() != info.log_key {
                return Err(LedgerError::Invalid(format!(
                    "{} is not the log key named by the genesis entry",
                    log_key_path.display()
                )));
            }
            let record: CheckpointRecord = index
                .checkpoint(size)?
                .map(|b| codec::decode(&b))
                .transpose()
                .map_err(|e| LedgerError::Integrity {
                    index: size.saturating_sub(1),
                    reason: e.to_string(),
                })?
                .ok_or_else(|| LedgerError::Integrity {
                    index: size.saturating_sub(1),
                    reason: "no checkpoint for the committed tree".into(),
                })?;
            if record.root.as_bytes() != &frontier.root() {
                return Err(LedgerError::Integrity {
                    index: size.saturating_sub(1),
                    reason: "the latest checkpoint's root differs from the tree's".into(),
                });
            }
            record.note(&info.origin, &info.log_key)?.into()
        }
        None => "".into(),
    };
    let head = Arc::new(ArcSwap::from_pointee(Head {
        size,
        root: frontier.root(),
        note,
    }));
    let shared_info = Arc::new(ArcSwap::from_pointee(info.clone()));
    let last_time = record_time_before(&reader, acked, size, &log_path)?;
    let (sender, receiver) = mpsc::channel();
    let writer = Writer {
        index: index.clone(),
        state: CachedState::new(index.clone(), STATE_CACHE_LIMIT),
        frontier,
        last_hash,
        last_time,
        info,
        log_key: Arc::new(log_key),
        clock: options.clock.clone(),
        head: head.clone(),
        shared_info: shared_info.clone(),
        max_batch: options.max_batch.max(1),
    };
    let handle = std::thread::Builder::new()
        .name("oretrail-writer".into())
        .spawn(move || writer.run(log, receiver))
        .map_err(|e| LedgerError::WriterStopped(e.to_string()))?;
    Ok(Ledger {
        dir: dir.to_path_buf(),
        index,
        reader,
        head,
        info: shared_info,
        sender: Some(sender),
        keys: KeyCache::new(),
        writer: Some(handle),
        _writer_lock: writer_lock,
    })
}

/// Saves the bytes of a torn tail beside the log before it is cut, so
/// nothing is thrown away unseen.
fn keep_torn_tail(file: &File, dir: &Path, from: u64, to: u64) -> Result<(), LedgerError> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; (to - from) as usize];
    file.read_exact_at(&mut bytes, from)
        .map_err(|e| LedgerError::io(&dir.join(LOG_FILE), e))?;
    let keep = dir.join(format!("log.torn-at-{from}"));
    std::fs::write(&keep, &bytes).map_err(|e| LedgerError::io(&keep, e))?;
    tracing::warn!(
        bytes = to - from,
        at = from,
        kept = %keep.display(),
        "cut a torn tail from the log: an unacknowledged, incomplete final batch"
    );
    Ok(())
}

fn open_index(dir: &Path) -> Result<Index, LedgerError> {
    match Index::open(&dir.join(INDEX_DIR)) {
        Ok(index) => Ok(index),
        Err(e) => {
            tracing::warn!(error = %e, "the index cannot be opened; rebuilding it from the log");
            move_aside_and_reopen(dir)
        }
    }
}

fn move_aside_and_reopen(dir: &Path) -> Result<Index, LedgerError> {
    let path = dir.join(INDEX_DIR);
    if path.exists() {
        let aside = dir.join(format!(
            "{INDEX_DIR}.broken-{}",
            crate::model::Timestamp::now().as_millis()
        ));
        std::fs::rename(&path, &aside).map_err(|e| LedgerError::io(&path, e))?;
        tracing::warn!(moved_to = %aside.display(), "kept the old index for inspection");
    }
    Ok(Index::open(&path)?)
}

fn read_payload(
    reader: &LogReader,
    loc: EntryLocation,
    index: u64,
    path: &Path,
) -> Result<Vec<u8>, LedgerError> {
    reader
        .read_payload(loc.frame_offset, loc.payload_len)
        .map_err(|e| LedgerError::io(path, e))?
        .map_err(|d| LedgerError::Integrity {
            index,
            reason: d.reason,
        })
}

fn decode_entry(bytes: &[u8], index: u64) -> Result<Entry, LedgerError> {
    codec::decode(bytes).map_err(|e| LedgerError::Integrity {
        index,
        reason: format!("entry bytes: {e}"),
    })
}

/// Whether the index's last applied entry is the log's entry at that place.
fn index_agrees(
    index: &Index,
    reader: &LogReader,
    acked: &[EntryLocation],
    applied: u64,
    path: &Path,
) -> Result<bool, LedgerError> {
    let last = applied - 1;
    let bytes = read_payload(reader, acked[last as usize], last, path)?;
    Ok(index.last_hash()? == Some(Digest::from_bytes(merkle::leaf_hash(&bytes))))
}

/// Brings the dense files (entry locations and tree nodes) to exactly the
/// `applied` entries: cuts what a crash left beyond them, and recomputes
/// from the log whatever is missing or damaged (these files are not synced).
fn reconcile_dense(
    index: &Index,
    reader: &LogReader,
    acked: &[EntryLocation],
    applied: u64,
    path: &Path,
) -> Result<(), LedgerError> {
    let io = |what: &str, e: std::io::Error| {
        LedgerError::Index(crate::store::IndexError(format!("{what}: {e}")))
    };
    let locations = index.locations();
    let good = locations
        .intact_len()
        .map_err(|e| io("entry locations", e))?
        .min(applied);
    locations
        .truncate(good)
        .map_err(|e| io("entry locations", e))?;
    locations
        .append(good, &acked[good as usize..applied as usize])
        .map_err(|e| io("entry locations", e))?;
    let good = index.load_event_ids(applied)?;
    if good < applied {
        tracing::info!(
            from = good,
            to = applied,
            "recomputing event ids from the log"
        );
        let mut ids = Vec::with_capacity((applied - good) as usize);
        for i in good..applied {
            let bytes = read_payload(reader, acked[i as usize], i, path)?;
            ids.push(decode_entry(&bytes, i)?.signed.event_id());
        }
        index.repair_event_ids(good, &ids)?;
    } else {
        index
            .event_ids()
            .truncate(applied)
            .map_err(|e| io("event ids", e))?;
    }
    let tree = index.tree();
    let intact = tree
        .intact_size()
        .map_err(|e| io("tree nodes", e))?
        .min(applied);
    tree.truncate_to_size(intact)
        .map_err(|e| io("tree nodes", e))?;
    if intact < applied {
        tracing::info!(
            from = intact,
            to = applied,
            "recomputing tree nodes from the log"
        );
        let mut frontier = Frontier::restore(tree, intact)?;
        let mut nodes = Vec::new();
        for i in intact..applied {
            let bytes = read_payload(reader, acked[i as usize], i, path)?;
            nodes.extend(
                frontier
                    .push(merkle::leaf_hash(&bytes))
                    .into_iter()
                    .map(|(_, _, h)| h),
            );
        }
        tree.append(intact, &nodes)
            .map_err(|e| io("tree nodes", e))?;
    }
    Ok(())
}

/// Record time of the entry before entry `size` (zero when there is none).
fn record_time_before(
    reader: &LogReader,
    acked: &[EntryLocation],
    size: u64,
    path: &Path,
) -> Result<Timestamp, LedgerError> {
    Ok(match size {
        0 => Timestamp::from_millis(0),
        n => {
            let bytes = read_payload(reader, acked[n as usize - 1], n - 1, path)?;
            decode_entry(&bytes, n - 1)?.record_time
        }
    })
}

/// Entries applied per index batch during replay.
const REPLAY_CHUNK: usize = 4096;

/// Applies log entries `from..` to the index, re-checking each one's
/// link, signature and rules, as the writer did when it accepted them.
fn replay(
    index: &Index,
    reader: &LogReader,
    acked: &[EntryLocation],
    checkpoints: &HashMap<u64, EntryLocation>,
    from: u64,
    progress: bool,
    path: &Path,
) -> Result<(), LedgerError> {
    let total = acked.len() as u64;
    if from >= total {
        return Ok(());
    }
    tracing::info!(from, to = total, "applying log entries to the index");
    let bar = crate::progress::bar(
        total - from,
        progress && total - from > 10_000,
        "rebuilding index",
    );
    let mut frontier = Frontier::restore(index, from)?;
    let mut last_hash = index.last_hash()?.unwrap_or(Digest::from_bytes([0; 32]));
    let mut last_time = record_time_before(reader, acked, from, path)?;
    let mut at = from;
    while at < total {
        let end = (at + REPLAY_CHUNK as u64).min(total);
        let mut entries = Vec::with_capacity((end - at) as usize);
        for i in at..end {
            let bytes = read_payload(reader, acked[i as usize], i, path)?;
            entries.push((decode_entry(&bytes, i)?, bytes));
        }
        let checks: Vec<SignatureCheck<'_>> = entries
            .iter()
            .map(|(e, _)| SignatureCheck {
                key: &e.signed.key,
                message: &e.signed.event,
                signature: &e.signed.signature,
            })
            .collect();
        if let Some(&bad) = verify_many(&checks).first() {
            return Err(LedgerError::Integrity {
                index: at + bad as u64,
                reason: "the event's signature does not verify".into(),
            });
        }
        // Event decoding and key checks need no state: do them on all cores.
        let events: Vec<_> = entries
            .par_iter()
            .map(|(entry, _)| {
                codec::decode(&entry.signed.event).map(|event: Event| {
                    let key_checks = rules::precheck_keys(&event);
                    (event, key_checks)
                })
            })
            .collect();
        let mut pending = MemoryState::new();
        let mut batch = IndexBatch::new(at);
        let mut batch_ids = HashSet::new();
        for (offset, ((entry, bytes), event)) in entries.iter().zip(events).enumerate() {
            let i = at + offset as u64;
            let integrity = |reason: String| LedgerError::Integrity { index: i, reason };
            if entry.index != i {
                return Err(integrity(format!("entry says it is entry {}", entry.index)));
            }
            if entry.prev != last_hash {
                return Err(integrity(
                    "its link does not match the previous entry's hash".into(),
                ));
            }
            if entry.record_time < last_time {
                return Err(integrity(format!(
                    "its record time {} is before the previous entry's {last_time}",
                    entry.record_time
                )));
            }
            let event_id = entry.signed.event_id();
            if !batch_ids.insert(event_id) || index.event_entry(&event_id)?.is_some() {
                return Err(integrity(
                    "it records an event that an earlier entry already holds".into(),
                ));
            }
            let (event, key_checks) = event.map_err(|e| integrity(format!("event: {e}")))?;
            let ctx = Context {
                index: i,
                record_time: entry.record_time,
            };
            let changes = rules::apply(
                &PrecheckedKeys::new(Overlay::new(index, &pending), &key_checks),
                ctx,
                &entry.signed.key,
                &event,
            )
            .map_err(|e| integrity(format!("the rules refuse it on replay: {e}")))?;
            let leaf = stage_entry(
                &mut batch,
                &mut frontier,
                &mut pending,
                acked[i as usize],
                &event_id,
                bytes,
                changes,
            )?;
            last_hash = Digest::from_bytes(leaf);
            last_time = entry.record_time;
            if let Some(loc) = checkpoints.get(&(i + 1)) {
                let record_bytes = read_payload(reader, *loc, i, path)?;
                let record: CheckpointRecord = codec::decode(&record_bytes)
                    .map_err(|e| integrity(format!("checkpoint: {e}")))?;
                if record.root.as_bytes() != &frontier.root() {
                    return Err(integrity(format!(
                        "the checkpoint for size {} has a different root",
                        i + 1
                    )));
                }
                batch.put_checkpoint(i + 1, &record_bytes);
            }
        }
        batch.set_applied(end, &last_hash);
        index.apply(batch)?;
        bar.inc(end - at);
        at = end;
    }
    bar.finish_and_clear();
    Ok(())
}
