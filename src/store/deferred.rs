//! sled writes held in memory and given to sled in larger batches.
//!
//! sled's CPU cost is per key written and falls with the size of the
//! batch, down to a few hundred keys (about 26 µs per key in batches of
//! 30, 15 µs in batches of 300; BENCHMARKS.md). Its file also grows least
//! with batches of a hundred to a thousand keys. A committed group of
//! appends writes a few dozen keys, so the index does not hand each group
//! to sled: it puts the group's writes here, where readers find them at
//! once, and a background thread gives sled everything waiting in one
//! batch once [`FLUSH_KEYS`] keys wait or [`FLUSH_INTERVAL`] has passed.
//!
//! Nothing is lost by the delay: the log is the durable copy, and the
//! applied count written in every batch tells `open` which entries to
//! replay into an index that lags the log, as it already does after a
//! crash (sled itself writes to disk only every half second).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::index::IndexError;

/// Keys waiting that make the background thread write them at once.
pub const FLUSH_KEYS: usize = 512;

/// The longest a write waits for sled when fewer keys wait.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Keys waiting beyond which a new write blocks until sled has caught up,
/// so memory stays bounded when sled is slower than the appends.
const MAX_WAITING: usize = 16 * FLUSH_KEYS;

type Writes = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Default)]
struct Waiting {
    /// Writes not yet handed to sled: the newest value of each key.
    active: Writes,
    /// Writes being given to sled now; older than `active`.
    frozen: Arc<Writes>,
    /// Why sled refused a batch; every later write is refused with it.
    failed: Option<IndexError>,
    closing: bool,
}

/// The writes waiting for sled, shared by every handle on one index.
#[derive(Default)]
pub struct Deferred {
    waiting: Mutex<Waiting>,
    changed: Condvar,
}

fn last_in<'a>(m: &'a Writes, low: &[u8], high: &[u8]) -> Option<(&'a Vec<u8>, &'a Vec<u8>)> {
    m.range::<[u8], _>((Bound::Included(low), Bound::Included(high)))
        .next_back()
}

/// Of the last writes found in a range of two stores, the one with the
/// larger key; `newer`'s on the same key, as its value replaces the
/// other's.
pub fn later_of<K: Ord, V>(newer: Option<(K, V)>, older: Option<(K, V)>) -> Option<(K, V)> {
    match (newer, older) {
        (Some(n), Some(o)) => Some(if n.0 >= o.0 { n } else { o }),
        (n, o) => n.or(o),
    }
}

impl Deferred {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest waiting value of `key`, if one waits.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let w = self.lock();
        w.active.get(key).or_else(|| w.frozen.get(key)).cloned()
    }

    /// The waiting write with the largest key in `low..=high`, if any.
    pub fn last_in(&self, low: &[u8], high: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let w = self.lock();
        later_of(last_in(&w.active, low, high), last_in(&w.frozen, low, high))
            .map(|(k, v)| (k.clone(), v.clone()))
    }

    /// Adds writes (a later one for the same key wins). Blocks while too
    /// many wait; refuses once sled has failed.
    pub fn put(&self, writes: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), IndexError> {
        let mut w = self.lock();
        while w.failed.is_none() && w.active.len() >= MAX_WAITING && !w.frozen.is_empty() {
            w = self.changed.wait(w).unwrap_or_else(|e| e.into_inner());
        }
        if let Some(e) = &w.failed {
            return Err(e.clone());
        }
        w.active.extend(writes);
        if w.active.len() >= FLUSH_KEYS {
            self.changed.notify_all();
        }
        Ok(())
    }

    /// Gives everything waiting now to sled in one atomic batch, after any
    /// batch already being given; returns once sled has it.
    pub fn write_out(&self, db: &sled::Db) -> Result<(), IndexError> {
        let mut w = self.lock();
        while !w.frozen.is_empty() {
            w = self.changed.wait(w).unwrap_or_else(|e| e.into_inner());
        }
        if let Some(e) = &w.failed {
            return Err(e.clone());
        }
        if w.active.is_empty() {
            return Ok(());
        }
        let batch = Arc::new(std::mem::take(&mut w.active));
        w.frozen = batch.clone();
        drop(w);
        let mut writes = sled::Batch::default();
        for (key, value) in batch.iter() {
            writes.insert(key.as_slice(), value.as_slice());
        }
        let result = db.apply_batch(writes).map_err(IndexError::from);
        let mut w = self.lock();
        let given = std::mem::take(&mut w.frozen);
        if let Err(e) = &result {
            // Readers keep finding what sled did not take; nothing more
            // is accepted.
            w.failed.get_or_insert_with(|| e.clone());
            for (key, value) in given.iter() {
                w.active.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        self.changed.notify_all();
        result
    }

    /// Waits until keys should be written: enough wait, the interval has
    /// passed, or the index is closing. Answers whether it is closing.
    fn wait_for_work(&self) -> bool {
        let mut w = self.lock();
        while !w.closing && w.active.len() < FLUSH_KEYS {
            let (next, timeout) = self
                .changed
                .wait_timeout(w, FLUSH_INTERVAL)
                .unwrap_or_else(|e| e.into_inner());
            w = next;
            if timeout.timed_out() {
                break;
            }
        }
        w.closing
    }
}

/// The background thread that gives waiting keys to sled. Dropping it
/// writes out what still waits and joins the thread, so sled is closed
/// by the time the last handle on the index is gone.
pub struct Flusher {
    deferred: Arc<Deferred>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// The writes this thread gives to sled.
    pub fn waiting(&self) -> &Deferred {
        &self.deferred
    }

    pub fn start(deferred: Arc<Deferred>, db: sled::Db) -> Result<Self, IndexError> {
        let shared = deferred.clone();
        let thread = std::thread::Builder::new()
            .name("oretrail-index".into())
            .spawn(move || {
                loop {
                    let closing = shared.wait_for_work();
                    if let Err(e) = shared.write_out(&db) {
                        tracing::error!(error = %e, "giving the index's writes to sled failed");
                        return;
                    }
                    if closing {
                        return;
                    }
                }
            })
            .map_err(|e| IndexError(format!("cannot start the index thread: {e}")))?;
        Ok(Self {
            deferred,
            thread: Some(thread),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.deferred.lock().closing = true;
        self.deferred.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    fn sled_in(dir: &tempfile::TempDir) -> sled::Db {
        sled::Config::new()
            .path(dir.path())
            .open()
            .expect("open sled")
    }

    #[test]
    fn waiting_writes_are_read_before_sled_has_them_and_reach_it_on_write_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled_in(&dir);
        let d = Deferred::default();
        d.put(vec![kv("c1", "one"), kv("c3", "three"), kv("s", "old")])
            .expect("put");
        d.put(vec![kv("s", "new")]).expect("put");
        assert_eq!(d.get(b"s"), Some(b"new".to_vec()));
        assert_eq!(d.last_in(b"c0", b"c2"), Some(kv("c1", "one")));
        assert_eq!(db.get(b"s").expect("get"), None);
        d.write_out(&db).expect("write out");
        assert_eq!(d.get(b"s"), None);
        assert_eq!(db.get(b"s").expect("get").as_deref(), Some(&b"new"[..]));
        assert_eq!(db.get(b"c3").expect("get").as_deref(), Some(&b"three"[..]));
    }

    #[test]
    fn dropping_the_flusher_writes_out_what_waits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled_in(&dir);
        let d = Arc::new(Deferred::default());
        let flusher = Flusher::start(d.clone(), db.clone()).expect("start");
        d.put(vec![kv("s", "v")]).expect("put");
        drop(flusher);
        assert_eq!(d.get(b"s"), None);
        assert_eq!(db.get(b"s").expect("get").as_deref(), Some(&b"v"[..]));
    }
}
