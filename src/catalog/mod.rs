//! The catalog: secondary indexes over the committed log, in memory, for
//! the query API's listings and graph walks.
//!
//! It is derived, like the sled index: a fold of the committed entries in
//! order ([`Tables::apply`]), so rebuilding it from the log gives the same
//! tables. It keeps a 16-byte summary of every entry (event type, EPCIS
//! mapping, event time, signer), posting lists (lot → entries, participant
//! → entries and lots, site → lots), the lot graph (each derived lot's
//! parents with the payable metal each brought, each lot's children,
//! everyone that ever held or owned it), the sites with their CAHRA
//! determinations and the red-flag register. Graph walks and listings read
//! only these tables; nothing rescans the log.
//!
//! It is fed from the log, off the writer's path: [`Catalog::follow`]
//! starts a thread that builds it from entry 0 and then applies new
//! entries as the ledger's size grows. A reader calls [`Catalog::read`],
//! which first applies whatever the ledger had committed when it was
//! called, so a query made after an append's receipt sees that append.
//! Its only I/O is reading entries (bulk reads of the log) and the red
//! flags each entry raised (from the ledger state, which the rules wrote).

pub mod epcis;
mod provenance;
mod quantities;
mod tables;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use rayon::prelude::*;

pub use provenance::{Aggregates, CountryShare, Mine, Provenance, provenance};
pub use quantities::Quantities;
pub use tables::{
    EntrySummary, EventFilter, FlagFilter, FlagStatus, FlagSummary, Graph, LinkView, LotFilter,
    LotSummary, Page, ParticipantLinks, SiteSummary, StatusFilter, Tables, UpstreamLot, page_where,
};

use crate::codec;
use crate::ledger::Ledger;
use crate::model::{Event, Flag, FlagId, StateView, Timestamp};
use epcis::EventType;

/// Why the catalog could not be read or brought up to date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Reading entries or state from the ledger failed.
    #[error("reading the ledger: {0}")]
    Ledger(String),
    /// An entry does not fit what the catalog holds: a bug, or a log the
    /// rules would not have accepted.
    #[error("catalog cannot apply entry {index}: {reason}")]
    Inconsistent { index: u64, reason: String },
    /// An earlier entry could not be applied; the tables stopped there.
    #[error("the catalog stopped after a failure: {0}")]
    Stopped(String),
}

/// Entries read and applied at a time: bounds the memory of one bulk read
/// and how long readers wait on the write lock.
const CHUNK: u64 = 4096;

/// How often the follower looks at the ledger's size.
const FOLLOW_EVERY: Duration = Duration::from_millis(10);

struct Shared {
    tables: RwLock<Tables>,
    /// Serialises catching up, so that entries are read and applied once.
    /// Holds the failure that stopped the tables, if any.
    applier: Mutex<Option<CatalogError>>,
    /// Set when the catalog is dropped: a long catch-up stops between chunks.
    closing: AtomicBool,
}

/// The catalog of one ledger. Cheap to share behind an `Arc`; dropping it
/// stops its follower thread.
pub struct Catalog {
    shared: Arc<Shared>,
    stop: Option<mpsc::Sender<()>>,
    follower: Option<JoinHandle<()>>,
}

/// Read access to tables that cover at least the entries committed when
/// [`Catalog::read`] was called.
pub struct CatalogRead<'a>(RwLockReadGuard<'a, Tables>);

impl std::ops::Deref for CatalogRead<'_> {
    type Target = Tables;
    fn deref(&self) -> &Tables {
        &self.0
    }
}

impl Catalog {
    fn empty() -> Self {
        Self {
            shared: Arc::new(Shared {
                tables: RwLock::new(Tables::new()),
                applier: Mutex::new(None),
                closing: AtomicBool::new(false),
            }),
            stop: None,
            follower: None,
        }
    }

    /// Starts following `ledger`: a thread builds the catalog from the
    /// log and keeps it up to date. It holds the ledger only weakly, and
    /// only while applying, so the ledger can still be closed once every
    /// other user has let go of it.
    pub fn follow(ledger: &Arc<Ledger>) -> Catalog {
        let mut catalog = Self::empty();
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = catalog.shared.clone();
        let weak: Weak<Ledger> = Arc::downgrade(ledger);
        let spawned = std::thread::Builder::new()
            .name("oretrail-catalog".into())
            .spawn(move || follow_loop(&shared, &weak, &stopped));
        match spawned {
            Ok(handle) => {
                catalog.stop = Some(stop);
                catalog.follower = Some(handle);
            }
            // Without a follower, readers still catch up themselves.
            Err(e) => tracing::warn!(error = %e, "cannot start the catalog follower"),
        }
        catalog
    }

    /// A catalog of the entries `ledger` holds now, built on this thread,
    /// with no follower (it catches up when read).
    pub fn build(ledger: &Ledger) -> Result<Catalog, CatalogError> {
        let catalog = Self::empty();
        catalog.shared.catch_up(ledger, ledger.size())?;
        Ok(catalog)
    }

    /// The tables, once they cover every entry `ledger` has committed
    /// now. Blocking: applies the missing entries itself (or waits for
    /// whoever is applying them).
    pub fn read(&self, ledger: &Ledger) -> Result<CatalogRead<'_>, CatalogError> {
        self.shared.catch_up(ledger, ledger.size())?;
        self.shared.read()
    }

    /// The tables as they are, without catching up.
    pub fn snapshot(&self) -> Result<CatalogRead<'_>, CatalogError> {
        self.shared.read()
    }
}

impl Drop for Catalog {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        drop(self.stop.take());
        if let Some(handle) = self.follower.take() {
            let _ = handle.join();
        }
    }
}

fn follow_loop(shared: &Shared, ledger: &Weak<Ledger>, stopped: &mpsc::Receiver<()>) {
    let mut last_failure: Option<CatalogError> = None;
    loop {
        {
            let Some(ledger) = ledger.upgrade() else {
                return;
            };
            let result = shared.catch_up(&ledger, ledger.size());
            // Logged once per distinct failure; readers get it too.
            if let Err(e) = result
                && last_failure.as_ref() != Some(&e)
            {
                tracing::error!(error = %e, "the catalog cannot follow the ledger");
                last_failure = Some(e);
            }
        }
        match stopped.recv_timeout(FOLLOW_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// One entry, read and decoded, with the flags it raised.
struct Prepared {
    index: u64,
    record_time: Timestamp,
    event: Event,
    raised: Vec<Flag>,
}

impl Shared {
    fn read(&self) -> Result<CatalogRead<'_>, CatalogError> {
        self.tables
            .read()
            .map(CatalogRead)
            .map_err(|_| CatalogError::Stopped("a thread panicked while applying entries".into()))
    }

    fn applied(&self) -> Result<u64, CatalogError> {
        Ok(self.read()?.applied())
    }

    /// Applies entries until the tables cover `target` entries.
    fn catch_up(&self, ledger: &Ledger, target: u64) -> Result<(), CatalogError> {
        if self.applied()? >= target {
            return Ok(());
        }
        let mut failure = self.applier.lock().map_err(|_| {
            CatalogError::Stopped("a thread panicked while applying entries".into())
        })?;
        if let Some(e) = failure.as_ref() {
            return Err(e.clone());
        }
        loop {
            let from = self.applied()?;
            if from >= target || self.closing.load(Ordering::SeqCst) {
                return Ok(());
            }
            let to = target.min(from + CHUNK);
            // Reading and decoding happen outside the write lock, so
            // readers of the tables wait only while entries are applied.
            let prepared = prepare(ledger, from, to)?;
            let mut tables = self.tables.write().map_err(|_| {
                CatalogError::Stopped("a thread panicked while applying entries".into())
            })?;
            for p in &prepared {
                if let Err(e) = tables.apply(p.index, p.record_time, &p.event, &p.raised) {
                    // The entry may be half applied: stop here for good
                    // rather than serve tables that fit no prefix of the log.
                    let stopped = CatalogError::Stopped(e.to_string());
                    *failure = Some(stopped.clone());
                    return Err(stopped);
                }
            }
        }
    }
}

/// Reads entries `from..to`, decodes their events and reads the red flags
/// each raised (flags `(index, 0)`, `(index, 1)`, ... until one is
/// missing; only events of the kinds that raise flags are looked at).
fn prepare(ledger: &Ledger, from: u64, to: u64) -> Result<Vec<Prepared>, CatalogError> {
    let entries = ledger
        .entries(from, to)
        .map_err(|e| CatalogError::Ledger(e.to_string()))?;
    entries
        .into_par_iter()
        .map(|entry| {
            let index = entry.index;
            let event: Event =
                codec::decode(&entry.signed.event).map_err(|e| CatalogError::Inconsistent {
                    index,
                    reason: format!("undecodable event: {e}"),
                })?;
            let mut raised = Vec::new();
            if EventType::of(&event.body).may_raise_flags() {
                for n in 0..=u16::MAX {
                    match ledger.state().flag(FlagId { entry: index, n }) {
                        Ok(Some(flag)) => raised.push(flag),
                        Ok(None) => break,
                        Err(e) => return Err(CatalogError::Ledger(e.to_string())),
                    }
                }
            }
            Ok(Prepared {
                index,
                record_time: entry.record_time,
                event,
                raised,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
