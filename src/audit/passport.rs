//! Lot passports: one file with a lot's provenance graph and every entry
//! behind it, each with its RFC 9162 inclusion proof against one signed
//! checkpoint, that anyone can verify offline without the ledger
//! (`schemas/ENCODING.md`, section 13).
//!
//! A passport holds, after a 16-byte magic, length-prefixed canonical
//! records: a [`PassportHeader`] (the lot, the log's origin and key, the
//! signed checkpoint note), the [`ProvenanceGraph`] (the lot and every lot
//! it was made from, down to the lots created at mines, with each lot's
//! origin shares and the share of each child's payable metal each parent
//! brought), then one [`PassportEntry`] per entry behind the graph: its
//! exact bytes and its inclusion proof at the checkpoint's size.
//!
//! Which entries: entry 0 (the genesis, which names the origin and the log
//! key); for every lot of the graph, the entries naming it (creation,
//! assays, dispatches, receipts, the split, blend or transformation that
//! made it and the one that used it, documents, corrections) up to the last
//! entry that made a lot of the graph from it, sales excepted (ownership
//! is not provenance); the registration and CAHRA findings of each mine the
//! graph starts at; and, for every key that signed one of those, the entry
//! that registered it, closed under the same rule. Nothing else: not what
//! happened to an upstream lot after it went into the graph, nor the sales
//! of upstream lots to anyone. Known limit: an entry is signed whole, so
//! a split, blend or transformation shows all of its inputs and outputs,
//! siblings of the graph's lots included, and a transformation that took
//! part of an upstream lot before the one that made a graph lot (its
//! quantities change the shares) is in the passport with its other outputs.
//!
//! Verification ([`verify`]) trusts nothing in the file: the checkpoint
//! signature against the log key (pinned by the caller when it has one),
//! every entry's inclusion proof against that checkpoint's root, every
//! event signature and the entry that registered its key, and the graph,
//! shares and origins recomputed from the events with the published
//! integer arithmetic (`catalog::Quantities`, `Origin::mix`) and compared
//! with what the file claims. What a passport cannot prove is absence: an
//! entry left out of it (a later assay, a revoked key) is not seen; the
//! audit bundle, which holds the whole log, is the check for that.
//!
//! Pure but for the two builders' sources: [`export`] reads a
//! [`LogSnapshot`] (verified in full on the way, as every audit export),
//! [`from_ledger`] an open ledger and its catalog at the ledger's latest
//! checkpoint; both call one builder, so they give the same bytes for the
//! same checkpoint.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AuditError, LogSnapshot};
use crate::catalog::{Quantities, Tables};
use crate::codec::{self, Canonical, CodecError};
use crate::crypto::{Digest, KeyCache, PublicKey};
use crate::ledger::{Accepted, Ledger, Observer};
use crate::merkle::checkpoint::{Note, NoteVerifier, parse_body, parse_verifier_key};
use crate::merkle::{self, Hash, MemoryNodes};
use crate::model::{
    BILLION, Element, Entry, Event, EventBody, Grams, LotId, LotKind, Origin, ParticipantId, Ppb,
    SiteId, StateView, apportion,
};
use crate::store::FrameKind;
use crate::store::log::FrameReader;

/// First bytes of every passport: `ORETRAIL-PASS`, two NUL bytes and the
/// format version 1.
pub const PASSPORT_MAGIC: [u8; 16] = *b"ORETRAIL-PASS\0\0\x01";

/// Largest passport file a verifier reads.
pub const MAX_PASSPORT_LEN: u64 = 1 << 30;

/// Bytes of the little-endian length before each record.
const RECORD_LEN_BYTES: usize = 4;

/// What the passport is of and against which checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassportHeader {
    /// The lot the passport is of.
    pub lot: LotId,
    /// The log's origin, as the checkpoint and the genesis entry name it.
    pub origin: String,
    /// The log key, as the genesis entry names it.
    pub log_key: PublicKey,
    /// The C2SP signed checkpoint note every proof is against, with the
    /// log key's signature line only.
    pub checkpoint: String,
    /// Entry records that follow the graph.
    pub entries: u64,
}

impl Canonical for PassportHeader {
    const TAG: [u8; 16] = codec::tag("oretrail.pphead");
    const VERSION: u16 = 1;
}

/// The lot and every lot it was made from, and the links between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceGraph {
    /// The passport's lot first, then the lots it was made from, breadth
    /// first, each lot's parents in the order its making event names them.
    pub lots: Vec<GraphLot>,
    /// For every lot in `lots` order, one link per parent in event order.
    pub links: Vec<GraphLink>,
}

impl Canonical for ProvenanceGraph {
    const TAG: [u8; 16] = codec::tag("oretrail.ppgraph");
    const VERSION: u16 = 1;
}

/// A lot of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphLot {
    pub lot: LotId,
    pub kind: LotKind,
    /// The payable metal its origin shares are counted in.
    pub metal: Element,
    /// The entry that made it.
    pub made_in: u64,
    /// The site a created lot came from; `None` for derived lots.
    pub site: Option<SiteId>,
    /// Shares of its payable metal by site, as the rules mixed them.
    pub origin: Origin,
}

/// One parent of a derived lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphLink {
    pub child: LotId,
    pub parent: LotId,
    /// Share of the child's payable metal the parent brought, parts per
    /// billion; a child's shares add up to 10^9.
    pub share: Ppb,
    /// Grams of the child's payable metal the parent brought.
    pub grams: Grams,
}

/// One entry of the log and the proof that it is in the checkpoint's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassportEntry {
    pub index: u64,
    /// The entry's exact canonical bytes (its leaf data).
    pub entry: Vec<u8>,
    /// RFC 9162 inclusion proof of `index` at the checkpoint's size.
    pub proof: Vec<Digest>,
}

impl Canonical for PassportEntry {
    const TAG: [u8; 16] = codec::tag("oretrail.ppentry");
    const VERSION: u16 = 1;
}

/// A passport in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passport {
    header: PassportHeader,
    graph: ProvenanceGraph,
    entries: Vec<PassportEntry>,
    /// The checkpoint's tree size.
    tree_size: u64,
}

impl Passport {
    /// The size of the tree the checkpoint signs and the proofs are for.
    pub fn tree_size(&self) -> u64 {
        self.tree_size
    }

    pub fn header(&self) -> &PassportHeader {
        &self.header
    }

    pub fn graph(&self) -> &ProvenanceGraph {
        &self.graph
    }

    pub fn entries(&self) -> &[PassportEntry] {
        &self.entries
    }

    /// The file: magic, then header, graph and entries, each as a `u32`
    /// little-endian length and its canonical encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = PASSPORT_MAGIC.to_vec();
        push_record(&mut out, &codec::encode(&self.header)?);
        push_record(&mut out, &codec::encode(&self.graph)?);
        for e in &self.entries {
            push_record(&mut out, &codec::encode(e)?);
        }
        Ok(out)
    }
}

fn push_record(out: &mut Vec<u8>, record: &[u8]) {
    // Records are at most `codec::MAX_ENCODED_LEN` (4 MiB), so they fit.
    let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(record);
}

// -- building ----------------------------------------------------------------

/// Why a passport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PassportError {
    /// The lot is not among the entries the checkpoint counts.
    #[error("no lot {lot} among the {size} entries of the latest checkpoint")]
    NoSuchLot { lot: LotId, size: u64 },
    /// The log could not be read or does not verify.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Reading an entry, a proof or an index failed.
    #[error("reading the ledger for the passport: {0}")]
    Read(String),
    /// The ledger does not hold what its own rules promise (a lot without
    /// the entry that made it, a key without its registration).
    #[error("the ledger is inconsistent at entry {index}: {reason}")]
    Inconsistent { index: u64, reason: String },
    /// The passport built does not verify: a bug, never to be exported.
    #[error("the passport built does not verify ({0})")]
    SelfCheck(PassportFailure),
    #[error("encoding the passport: {0}")]
    Encode(#[from] CodecError),
    #[error("writing the passport: {0}")]
    Write(std::io::Error),
}

/// What the builder reads: entries, proofs and the indexes that find the
/// entries of a lot, a key and a site. Indexes may know entries past the
/// checkpoint; the builder keeps only those before its size.
trait Source {
    /// The signed checkpoint note the passport is built against.
    fn checkpoint(&self) -> &str;
    fn lot_entries(&self, lot: &LotId) -> Result<Vec<u64>, String>;
    fn key_added_in(&self, key: &PublicKey) -> Result<Option<u64>, String>;
    fn site_entries(&self, site: &SiteId) -> Result<Vec<u64>, String>;
    fn entry(&self, index: u64) -> Result<Vec<u8>, String>;
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, String>;
}

/// An entry read for the builder: its bytes, decoded.
struct Fetched {
    bytes: Vec<u8>,
    entry: Entry,
    event: Event,
}

/// Entries read so far, each once.
struct Reader<'a, S: Source> {
    source: &'a S,
    size: u64,
    read: BTreeMap<u64, Fetched>,
}

impl<S: Source> Reader<'_, S> {
    fn get(&mut self, index: u64) -> Result<&Fetched, PassportError> {
        if !self.read.contains_key(&index) {
            let bytes = self.source.entry(index).map_err(PassportError::Read)?;
            let inconsistent = |reason: String| PassportError::Inconsistent { index, reason };
            let entry: Entry =
                codec::decode(&bytes).map_err(|e| inconsistent(format!("entry bytes: {e}")))?;
            let event: Event = codec::decode(&entry.signed.event)
                .map_err(|e| inconsistent(format!("event bytes: {e}")))?;
            self.read.insert(
                index,
                Fetched {
                    bytes,
                    entry,
                    event,
                },
            );
        }
        self.read
            .get(&index)
            .ok_or_else(|| PassportError::Read(format!("entry {index} vanished")))
    }

    /// The entries naming `lot` before the checkpoint's size.
    fn lot_entries(&self, lot: &LotId) -> Result<Vec<u64>, PassportError> {
        let mut list = self.source.lot_entries(lot).map_err(PassportError::Read)?;
        list.retain(|i| *i < self.size);
        Ok(list)
    }
}

/// The log key's signature line only, so that the note a passport carries
/// is the same whatever cosignatures a server adds; returns the note, the
/// tree size and root it signs.
fn log_signed_note(
    note: &str,
    origin: &str,
    log_key: &PublicKey,
) -> Result<(String, u64, Hash), String> {
    let verifier = log_verifier(origin, log_key)?;
    let parsed = Note::parse(note).map_err(|e| e.to_string())?;
    let signature = parsed.verify(&verifier).map_err(|e| e.to_string())?;
    let mut only = Note::new(parsed.body()).map_err(|e| e.to_string())?;
    only.add_signature(signature.clone())
        .map_err(|e| e.to_string())?;
    let checkpoint = parse_body(parsed.body()).map_err(|e| e.to_string())?;
    if checkpoint.origin() != origin {
        return Err(format!(
            "the checkpoint names origin {:?}, the genesis entry {origin:?}",
            checkpoint.origin()
        ));
    }
    Ok((only.to_string(), checkpoint.size(), *checkpoint.root()))
}

fn log_verifier(origin: &str, log_key: &PublicKey) -> Result<NoteVerifier, String> {
    let key = log_key
        .verifying_key()
        .map_err(|e| format!("the log key is not usable: {e}"))?;
    NoteVerifier::new(origin, key).map_err(|e| format!("the log key cannot sign notes: {e}"))
}

/// Builds the passport of `lot` from `source` (module documentation:
/// which entries), then verifies it as an outsider would.
fn build<S: Source>(source: &S, lot: &LotId) -> Result<Passport, PassportError> {
    let mut reader = Reader {
        source,
        size: 0,
        read: BTreeMap::new(),
    };
    let genesis = match &reader.get(0)?.event.body {
        EventBody::Genesis(g) => g.clone(),
        other => {
            return Err(PassportError::Inconsistent {
                index: 0,
                reason: format!("entry 0 is a {} event, not genesis", other.type_name()),
            });
        }
    };
    let (note, size, _root) =
        log_signed_note(source.checkpoint(), &genesis.origin, &genesis.log_key)
            .map_err(|reason| PassportError::Read(format!("the checkpoint: {reason}")))?;
    reader.size = size;

    // The graph's shape, from the entry that made each lot: the first
    // entry naming it.
    let walk = walk(lot, |l| {
        let first = reader.lot_entries(l)?.first().copied();
        let Some(index) = first else {
            return Err(if l == lot {
                PassportError::NoSuchLot {
                    lot: lot.clone(),
                    size,
                }
            } else {
                PassportError::Inconsistent {
                    index: size.saturating_sub(1),
                    reason: format!("lot {l} is named as a parent but no entry names it"),
                }
            });
        };
        let made = made(&reader.get(index)?.event.body)
            .into_iter()
            .find(|(made, _)| *made == l)
            .map(|(_, parents)| parents.into_iter().cloned().collect::<Vec<_>>());
        match made {
            Some(parents) => Ok((index, parents)),
            None => Err(PassportError::Inconsistent {
                index,
                reason: format!("the first entry naming lot {l} does not make it"),
            }),
        }
    })?;

    let mut selected: BTreeSet<u64> = BTreeSet::from([0]);
    let mut late_corrections = Vec::new();
    let mut sites = BTreeSet::new();
    for l in &walk.order {
        let cutoff = walk.cutoff(l);
        for index in reader.lot_entries(l)? {
            let body = &reader.get(index)?.event.body;
            if index == walk.made_in[l]
                && let EventBody::CreateLot(c) = body
            {
                sites.insert(c.site.clone());
            }
            match body {
                EventBody::Sell(_) => {}
                EventBody::Correct(c) if index > cutoff => {
                    late_corrections.push((index, c.entry));
                }
                _ if index <= cutoff => {
                    selected.insert(index);
                }
                _ => {}
            }
        }
    }
    for (index, corrected) in late_corrections {
        if selected.contains(&corrected) {
            selected.insert(index);
        }
    }
    for site in &sites {
        for index in source.site_entries(site).map_err(PassportError::Read)? {
            if index < size {
                selected.insert(index);
            }
        }
    }
    // Every signer's key registration, and theirs in turn, down to the
    // genesis entry, whose key it registers itself.
    let mut queue: Vec<u64> = selected.iter().copied().collect();
    while let Some(index) = queue.pop() {
        if index == 0 {
            continue;
        }
        let key = reader.get(index)?.entry.signed.key;
        match source.key_added_in(&key).map_err(PassportError::Read)? {
            Some(added) if added < index => {
                if selected.insert(added) {
                    queue.push(added);
                }
            }
            _ => {
                return Err(PassportError::Inconsistent {
                    index,
                    reason: format!("signed by key {key}, which no earlier entry registers"),
                });
            }
        }
    }

    let mut decoded = Vec::with_capacity(selected.len());
    for index in &selected {
        let r = reader.get(*index)?;
        decoded.push(Decoded {
            index: *index,
            entry: r.entry.clone(),
            event: r.event.clone(),
        });
    }
    let traced = trace(lot, &decoded).map_err(|fault| match fault {
        Fault::Entry { index, reason } => PassportError::Inconsistent { index, reason },
        Fault::Incomplete(reason) => PassportError::Inconsistent {
            index: size.saturating_sub(1),
            reason,
        },
    })?;
    let mut entries = Vec::with_capacity(selected.len());
    for index in selected {
        let proof = source
            .inclusion_proof(index, size)
            .map_err(PassportError::Read)?;
        let bytes = reader
            .read
            .remove(&index)
            .map(|r| r.bytes)
            .ok_or_else(|| PassportError::Read(format!("entry {index} vanished")))?;
        entries.push(PassportEntry {
            index,
            entry: bytes,
            proof: proof.into_iter().map(Digest::from_bytes).collect(),
        });
    }
    let passport = Passport {
        header: PassportHeader {
            lot: lot.clone(),
            origin: genesis.origin.clone(),
            log_key: genesis.log_key,
            checkpoint: note,
            entries: entries.len() as u64,
        },
        graph: traced.graph,
        entries,
        tree_size: size,
    };
    let bytes = passport.to_bytes()?;
    verify(&bytes, VerifyOptions::default()).map_err(PassportError::SelfCheck)?;
    Ok(passport)
}

/// What the log holds, for the builder: each entry's leaf hash, and the
/// entries naming each lot, registering each key and concerning each
/// site. Filled from the verifying replay, so only from entries it
/// accepted.
#[derive(Debug, Default)]
struct LogIndex {
    leaves: Vec<Hash>,
    lots: HashMap<LotId, Vec<u64>>,
    keys: HashMap<PublicKey, u64>,
    sites: HashMap<SiteId, Vec<u64>>,
}

impl Observer for LogIndex {
    fn accepted(&mut self, accepted: &Accepted<'_>) {
        let index = accepted.entry.index;
        self.leaves.push(*accepted.leaf);
        for lot in accepted.event.body.lots() {
            let list = self.lots.entry(lot.clone()).or_default();
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
        for (key, _) in established(accepted.event) {
            self.keys.entry(*key).or_insert(index);
        }
        if let Some(site) = site_of(&accepted.event.body) {
            self.sites.entry(site.clone()).or_default().push(index);
        }
    }
}

/// A verified log snapshot as a builder's source.
struct SnapshotSource<'a> {
    snapshot: &'a LogSnapshot,
    /// Payload offset and length of each entry frame.
    frames: Vec<(u64, u32)>,
    nodes: MemoryNodes,
    index: LogIndex,
    note: String,
}

impl Source for SnapshotSource<'_> {
    fn checkpoint(&self) -> &str {
        &self.note
    }

    fn lot_entries(&self, lot: &LotId) -> Result<Vec<u64>, String> {
        Ok(self.index.lots.get(lot).cloned().unwrap_or_default())
    }

    fn key_added_in(&self, key: &PublicKey) -> Result<Option<u64>, String> {
        Ok(self.index.keys.get(key).copied())
    }

    fn site_entries(&self, site: &SiteId) -> Result<Vec<u64>, String> {
        Ok(self.index.sites.get(site).cloned().unwrap_or_default())
    }

    fn entry(&self, index: u64) -> Result<Vec<u8>, String> {
        let &(offset, len) = usize::try_from(index)
            .ok()
            .and_then(|i| self.frames.get(i))
            .ok_or_else(|| format!("entry {index} is not in the snapshot"))?;
        let mut bytes = vec![0u8; len as usize];
        self.snapshot
            .file()
            .read_exact_at(&mut bytes, offset)
            .map_err(|e| format!("{}: {e}", self.snapshot.path().display()))?;
        Ok(bytes)
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, String> {
        merkle::inclusion_proof(&self.nodes, index, size).map_err(|e| e.to_string())
    }
}

/// Payload offset and length of every entry frame of the snapshot, in
/// order (its frames' CRCs checked on the way).
fn entry_frames(snapshot: &LogSnapshot) -> Result<Vec<(u64, u32)>, AuditError> {
    let range = snapshot.frames();
    let mut buffered = BufReader::with_capacity(1 << 20, snapshot.file());
    buffered
        .seek(SeekFrom::Start(range.start))
        .map_err(|e| AuditError::io(snapshot.path(), e))?;
    let mut reader = FrameReader::starting_at(buffered, range.start, range.end);
    let mut frames = Vec::new();
    loop {
        let index = frames.len() as u64;
        let frame = match reader
            .next_frame()
            .map_err(|e| AuditError::io(snapshot.path(), e))?
        {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(frames),
            Err(damage) => {
                return Err(AuditError::Damaged {
                    index,
                    reason: damage.reason,
                });
            }
        };
        if frame.kind == FrameKind::Entry {
            let len = u32::try_from(frame.payload.len()).unwrap_or(u32::MAX);
            frames.push((frame.payload_offset(), len));
        }
    }
}

/// The passport of `lot` from the log `snapshot`, against its last
/// checkpoint. The whole log is verified first (signatures, links, rules,
/// tree and checkpoints), as for every audit export; the Merkle nodes for
/// the proofs are computed from the leaf hashes that replay yields.
pub fn export(
    snapshot: &LogSnapshot,
    lot: &LotId,
    progress: bool,
) -> Result<Passport, PassportError> {
    let frames = entry_frames(snapshot)?;
    let (report, index) = snapshot
        .verify(LogIndex::default(), progress)
        .map_err(AuditError::Verify)?;
    let nodes = MemoryNodes::from_leaves(index.leaves.iter().copied());
    if report.entries != frames.len() as u64 || nodes.root() != report.root {
        return Err(PassportError::Read(format!(
            "the log changed while it was read ({} entry frames, {} verified)",
            frames.len(),
            report.entries
        )));
    }
    let source = SnapshotSource {
        snapshot,
        frames,
        nodes,
        index: LogIndex {
            leaves: Vec::new(),
            ..index
        },
        note: report.checkpoint,
    };
    build(&source, lot)
}

/// [`export`] from the log at `log` into the file `out`, written beside
/// it under a temporary name and renamed into place once complete and
/// synced. Returns the passport and the file's size.
pub fn export_file(
    log: &Path,
    lot: &LotId,
    out: &Path,
    progress: bool,
) -> Result<(Passport, u64), PassportError> {
    let snapshot = LogSnapshot::open(log)?;
    let passport = export(&snapshot, lot, progress)?;
    let bytes = passport.to_bytes()?;
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    let partial = out.with_file_name(name);
    let written = (|| {
        let mut file = File::create(&partial)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, out)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(PassportError::Write(e));
    }
    Ok((passport, bytes.len() as u64))
}

/// An open ledger and its catalog as a builder's source.
struct LedgerSource<'a> {
    ledger: &'a Ledger,
    tables: &'a Tables,
    note: &'a str,
}

impl Source for LedgerSource<'_> {
    fn checkpoint(&self) -> &str {
        self.note
    }

    fn lot_entries(&self, lot: &LotId) -> Result<Vec<u64>, String> {
        Ok(self
            .tables
            .lot_entries(lot)
            .map(<[u64]>::to_vec)
            .unwrap_or_default())
    }

    fn key_added_in(&self, key: &PublicKey) -> Result<Option<u64>, String> {
        self.ledger
            .state()
            .key(key)
            .map(|record| record.map(|r| r.added_in))
            .map_err(|e| e.to_string())
    }

    fn site_entries(&self, site: &SiteId) -> Result<Vec<u64>, String> {
        Ok(self
            .tables
            .site(site)
            .map(|s| {
                std::iter::once(s.registered_in)
                    .chain(s.cahra.iter().map(|d| d.entry))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn entry(&self, index: u64) -> Result<Vec<u8>, String> {
        self.ledger
            .entry(index)
            .map(|(_, bytes)| bytes)
            .map_err(|e| e.to_string())
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, String> {
        self.ledger
            .inclusion_proof(index, size)
            .map_err(|e| e.to_string())
    }
}

/// The passport of `lot` from an open ledger, against `checkpoint` (a
/// signed note the ledger served, read before `tables` were brought up to
/// date, so that they cover every entry it counts), with proofs from the
/// ledger's index. Blocking.
pub fn from_ledger(
    ledger: &Ledger,
    tables: &Tables,
    checkpoint: &str,
    lot: &LotId,
) -> Result<Passport, PassportError> {
    let size = Note::parse(checkpoint)
        .and_then(|note| parse_body(note.body()))
        .map_err(|e| PassportError::Read(format!("the checkpoint: {e}")))?
        .size();
    if size > tables.applied() {
        return Err(PassportError::Read(format!(
            "the catalog covers {} entries, fewer than the checkpoint's {size}",
            tables.applied()
        )));
    }
    build(
        &LedgerSource {
            ledger,
            tables,
            note: checkpoint,
        },
        lot,
    )
}

// -- the graph, recomputed from the events -------------------------------------

/// An entry of a passport, decoded.
struct Decoded {
    index: u64,
    entry: Entry,
    event: Event,
}

/// Why the entries do not make the graph.
#[derive(Debug)]
enum Fault {
    /// This entry does not fit what came before it.
    Entry { index: u64, reason: String },
    /// An entry the graph needs is not there.
    Incomplete(String),
}

/// The lots an event makes, each with the lots it is made from, in the
/// order the event names them.
fn made(body: &EventBody) -> Vec<(&LotId, Vec<&LotId>)> {
    match body {
        EventBody::CreateLot(c) => vec![(&c.lot, Vec::new())],
        EventBody::Split(s) => s.parts.iter().map(|p| (&p.lot, vec![&s.lot])).collect(),
        EventBody::Blend(b) => vec![(&b.output, b.inputs.iter().collect())],
        EventBody::Transform(t) => {
            let inputs: Vec<&LotId> = t.inputs.iter().map(|i| &i.lot).collect();
            t.outputs.iter().map(|o| (&o.lot, inputs.clone())).collect()
        }
        _ => Vec::new(),
    }
}

/// The keys an event registers, with the participant each is for.
fn established(event: &Event) -> Vec<(&PublicKey, &ParticipantId)> {
    match &event.body {
        EventBody::Genesis(g) => vec![(&g.operator_key, &g.operator)],
        EventBody::RegisterParticipant(r) => r.keys.iter().map(|k| (k, &r.participant)).collect(),
        EventBody::AddKey(k) => vec![(&k.key, &k.participant)],
        EventBody::RotateKey(k) => vec![(&k.new, &k.participant)],
        _ => Vec::new(),
    }
}

/// The site a site registration or CAHRA finding concerns.
fn site_of(body: &EventBody) -> Option<&SiteId> {
    match body {
        EventBody::RegisterSite(s) => Some(&s.site),
        EventBody::DetermineCahra(f) => Some(&f.site),
        _ => None,
    }
}

/// The graph's shape: its lots breadth first from the passport's lot, the
/// entry that made each and its parents.
struct Walk {
    order: Vec<LotId>,
    made_in: HashMap<LotId, u64>,
    /// The last entry that made a lot of the graph from each parent.
    cutoffs: HashMap<LotId, u64>,
}

impl Walk {
    /// The last entry of `lot`'s that belongs in the passport: everything
    /// for the passport's lot, up to its last use in the graph for the
    /// others.
    fn cutoff(&self, lot: &LotId) -> u64 {
        self.cutoffs.get(lot).copied().unwrap_or(u64::MAX)
    }
}

fn walk<E>(
    lot: &LotId,
    mut maker: impl FnMut(&LotId) -> Result<(u64, Vec<LotId>), E>,
) -> Result<Walk, E> {
    let mut walk = Walk {
        order: Vec::new(),
        made_in: HashMap::new(),
        cutoffs: HashMap::new(),
    };
    let mut seen = HashSet::from([lot.clone()]);
    let mut queue = VecDeque::from([lot.clone()]);
    while let Some(l) = queue.pop_front() {
        let (index, parents) = maker(&l)?;
        for p in &parents {
            let cutoff = walk.cutoffs.entry(p.clone()).or_insert(index);
            *cutoff = (*cutoff).max(index);
            if seen.insert(p.clone()) {
                queue.push_back(p.clone());
            }
        }
        walk.made_in.insert(l.clone(), index);
        walk.order.push(l);
    }
    Ok(walk)
}

/// A lot of the graph as the fold follows it.
struct Tracked {
    kind: LotKind,
    metal: Element,
    made_in: u64,
    site: Option<SiteId>,
    origin: Origin,
    /// `None` once used up.
    quantities: Option<Quantities>,
    custodian: ParticipantId,
    in_transit_to: Option<ParticipantId>,
}

/// What the entries show.
struct Traced {
    graph: ProvenanceGraph,
    walk: Walk,
    /// Sites the graph's created lots come from.
    sites: HashSet<SiteId>,
}

/// Recomputes the provenance graph of `lot` from `entries` (sorted by
/// index): its shape from the events that made each lot, its quantities,
/// custody, origins and shares by folding the events over the graph's
/// lots with the rules' arithmetic.
fn trace(lot: &LotId, entries: &[Decoded]) -> Result<Traced, Fault> {
    let mut makers: HashMap<&LotId, (u64, Vec<LotId>)> = HashMap::new();
    for d in entries {
        for (made, parents) in made(&d.event.body) {
            let parents = parents.into_iter().cloned().collect();
            if makers.insert(made, (d.index, parents)).is_some() {
                return Err(Fault::Entry {
                    index: d.index,
                    reason: format!("makes lot {made}, which an earlier entry made"),
                });
            }
        }
    }
    let walk = walk(lot, |l| {
        makers.get(l).cloned().ok_or_else(|| {
            Fault::Incomplete(format!("the passport holds no entry that made lot {l}"))
        })
    })?;
    let in_graph: HashSet<&LotId> = walk.order.iter().collect();
    let mut fold = Fold {
        in_graph: &in_graph,
        sites: HashMap::new(),
        lots: HashMap::new(),
        links: HashMap::new(),
    };
    for d in entries {
        fold.apply(d).map_err(|reason| Fault::Entry {
            index: d.index,
            reason,
        })?;
    }
    let mut lots = Vec::with_capacity(walk.order.len());
    let mut links = Vec::new();
    let mut sites = HashSet::new();
    for l in &walk.order {
        let t = fold.lots.get(l).ok_or_else(|| Fault::Entry {
            index: walk.made_in[l],
            reason: format!("lot {l} is not made by it"),
        })?;
        if let Some(site) = &t.site {
            sites.insert(site.clone());
        }
        lots.push(GraphLot {
            lot: l.clone(),
            kind: t.kind,
            metal: t.metal,
            made_in: t.made_in,
            site: t.site.clone(),
            origin: t.origin.clone(),
        });
        links.extend(fold.links.remove(l).unwrap_or_default());
    }
    Ok(Traced {
        graph: ProvenanceGraph { lots, links },
        walk,
        sites,
    })
}

/// The state of the fold: the sites registered, the graph's lots, and the
/// links of each lot made so far.
struct Fold<'a> {
    in_graph: &'a HashSet<&'a LotId>,
    /// Operator and payable metal of each site.
    sites: HashMap<SiteId, (ParticipantId, Element)>,
    lots: HashMap<LotId, Tracked>,
    links: HashMap<LotId, Vec<GraphLink>>,
}

impl Fold<'_> {
    fn tracked(&mut self, lot: &LotId) -> Result<&mut Tracked, String> {
        self.lots
            .get_mut(lot)
            .ok_or_else(|| format!("names lot {lot} before the entry that made it"))
    }

    /// A graph lot that `signer` holds now and that is not used up.
    fn held(&mut self, lot: &LotId, signer: &ParticipantId) -> Result<&mut Tracked, String> {
        let t = self.tracked(lot)?;
        if t.quantities.is_none() {
            return Err(format!("lot {lot} was already used up"));
        }
        if let Some(to) = &t.in_transit_to {
            return Err(format!("lot {lot} is in transit to {to}"));
        }
        if t.custodian != *signer {
            return Err(format!(
                "lot {lot} is held by {}, not by the signer {signer}",
                t.custodian
            ));
        }
        Ok(t)
    }

    fn quantities<'t>(t: &'t mut Tracked, lot: &LotId) -> Result<&'t mut Quantities, String> {
        t.quantities
            .as_mut()
            .ok_or_else(|| format!("lot {lot} was already used up"))
    }

    fn make(&mut self, lot: &LotId, tracked: Tracked, links: Vec<GraphLink>) {
        self.links.insert(lot.clone(), links);
        self.lots.insert(lot.clone(), tracked);
    }

    fn apply(&mut self, d: &Decoded) -> Result<(), String> {
        let signer = &d.event.signer;
        match &d.event.body {
            EventBody::RegisterSite(s) => {
                self.sites
                    .insert(s.site.clone(), (s.operator.clone(), s.metal));
            }
            EventBody::CreateLot(c) if self.in_graph.contains(&c.lot) => {
                let (operator, metal) = self.sites.get(&c.site).cloned().ok_or_else(|| {
                    format!(
                        "creates lot {} at site {}, whose registration is not in the passport",
                        c.lot, c.site
                    )
                })?;
                if operator != *signer {
                    return Err(format!(
                        "site {} is operated by {operator}, not by the signer {signer}",
                        c.site
                    ));
                }
                let tracked = Tracked {
                    kind: c.kind,
                    metal,
                    made_in: d.index,
                    site: Some(c.site.clone()),
                    origin: Origin::single(c.site.clone()),
                    quantities: Some(Quantities::assayed(c.wet, c.moisture, &c.assays)),
                    custodian: signer.clone(),
                    in_transit_to: None,
                };
                self.make(&c.lot, tracked, Vec::new());
            }
            EventBody::RecordAssay(a) if self.in_graph.contains(&a.lot) => {
                let t = self.tracked(&a.lot)?;
                Self::quantities(t, &a.lot)?.reassay(a.moisture, &a.assays);
            }
            EventBody::Dispatch(dispatch) if self.in_graph.contains(&dispatch.lot) => {
                let t = self.held(&dispatch.lot, signer)?;
                t.in_transit_to = Some(dispatch.to.clone());
            }
            EventBody::Receive(r) if self.in_graph.contains(&r.lot) => {
                let t = self.tracked(&r.lot)?;
                if t.in_transit_to.as_ref() != Some(signer) {
                    return Err(format!(
                        "{signer} receives lot {}, which was not dispatched to it",
                        r.lot
                    ));
                }
                if r.accepted {
                    Self::quantities(t, &r.lot)?
                        .receive(r.measured_wet)
                        .ok_or_else(|| format!("the receipt of lot {} overflows", r.lot))?;
                    t.custodian = signer.clone();
                }
                t.in_transit_to = None;
            }
            EventBody::Split(s) if self.in_graph.contains(&s.lot) => {
                let parent = self.held(&s.lot, signer)?;
                let wets: Vec<Grams> = s.parts.iter().map(|p| p.wet).collect();
                let whole = Self::quantities(parent, &s.lot)?.clone();
                parent.quantities = None;
                if Grams::sum(wets.iter().copied()) != Some(whole.wet) {
                    return Err(format!(
                        "the parts of lot {} do not add up to its {}",
                        s.lot, whole.wet
                    ));
                }
                let parts = whole
                    .split(&wets)
                    .ok_or_else(|| format!("the split of lot {} overflows", s.lot))?;
                let (kind, metal, origin) = (parent.kind, parent.metal, parent.origin.clone());
                for (part, q) in s.parts.iter().zip(parts) {
                    if !self.in_graph.contains(&part.lot) {
                        continue;
                    }
                    let link = GraphLink {
                        child: part.lot.clone(),
                        parent: s.lot.clone(),
                        share: Ppb::ONE,
                        grams: q.contained_of(metal),
                    };
                    let tracked = Tracked {
                        kind,
                        metal,
                        made_in: d.index,
                        site: None,
                        origin: origin.clone(),
                        quantities: Some(q),
                        custodian: signer.clone(),
                        in_transit_to: None,
                    };
                    self.make(&part.lot, tracked, vec![link]);
                }
            }
            EventBody::Blend(b) if self.in_graph.contains(&b.output) => {
                let mut inputs = Vec::with_capacity(b.inputs.len());
                for input in &b.inputs {
                    let t = self.held(input, signer)?;
                    let q = Self::quantities(t, input)?.clone();
                    t.quantities = None;
                    inputs.push((input, t.metal, t.origin.clone(), q));
                }
                let metal = inputs
                    .first()
                    .map(|(_, metal, _, _)| *metal)
                    .ok_or("a blend without inputs")?;
                if inputs.iter().any(|(_, m, _, _)| *m != metal) {
                    return Err("blends lots of different payable metals".into());
                }
                let brought: Vec<Grams> = inputs
                    .iter()
                    .map(|(_, _, _, q)| q.contained_of(metal))
                    .collect();
                let origin = mix(inputs.iter().map(|(_, _, o, _)| o), &brought)?;
                let quantities = Quantities::blend(inputs.iter().map(|(_, _, _, q)| q))
                    .ok_or_else(|| format!("the blend into {} overflows", b.output))?;
                let links = links(&b.output, inputs.iter().map(|(l, _, _, _)| *l), &brought)?;
                let tracked = Tracked {
                    kind: LotKind::Blend,
                    metal,
                    made_in: d.index,
                    site: None,
                    origin,
                    quantities: Some(quantities),
                    custodian: signer.clone(),
                    in_transit_to: None,
                };
                self.make(&b.output, tracked, links);
            }
            EventBody::Blend(b) => {
                // A blend that made no lot of the graph can only have used
                // up graph lots after their last use in it.
                let in_graph = self.in_graph;
                for input in b.inputs.iter().filter(|l| in_graph.contains(l)) {
                    self.held(input, signer)?.quantities = None;
                }
            }
            EventBody::Transform(t) => {
                let in_graph = self.in_graph;
                // What each input gave up; unknown for lots outside the
                // graph, which only outputs outside the graph can use.
                let mut taken: Vec<Option<Vec<(Element, Grams)>>> =
                    Vec::with_capacity(t.inputs.len());
                for input in &t.inputs {
                    if !in_graph.contains(&input.lot) {
                        taken.push(None);
                        continue;
                    }
                    let tracked = self.held(&input.lot, signer)?;
                    let q = Self::quantities(tracked, &input.lot)?;
                    let from = q.take(input.consumed_wet).ok_or_else(|| {
                        format!(
                            "{} taken from lot {}, which holds only {}",
                            input.consumed_wet, input.lot, q.wet
                        )
                    })?;
                    if q.wet.0 == 0 {
                        tracked.quantities = None;
                    }
                    taken.push(Some(from));
                }
                for output in t.outputs.iter().filter(|o| in_graph.contains(&o.lot)) {
                    let mut brought = Vec::with_capacity(taken.len());
                    let mut origins = Vec::with_capacity(taken.len());
                    for (input, from) in t.inputs.iter().zip(&taken) {
                        let from = from.as_ref().ok_or_else(|| {
                            format!(
                                "input lot {} of {} is not in the graph",
                                input.lot, output.lot
                            )
                        })?;
                        brought.push(
                            from.iter()
                                .find(|(e, _)| *e == output.metal)
                                .map(|(_, g)| *g)
                                .unwrap_or_default(),
                        );
                        origins.push(self.tracked(&input.lot)?.origin.clone());
                    }
                    let origin = mix(origins.iter(), &brought)?;
                    let links = links(&output.lot, t.inputs.iter().map(|i| &i.lot), &brought)?;
                    let tracked = Tracked {
                        kind: output.kind,
                        metal: output.metal,
                        made_in: d.index,
                        site: None,
                        origin,
                        quantities: Some(Quantities::assayed(
                            output.wet,
                            output.moisture,
                            &output.assays,
                        )),
                        custodian: signer.clone(),
                        in_transit_to: None,
                    };
                    self.make(&output.lot, tracked, links);
                }
            }
            EventBody::AttachDocument(a) if self.in_graph.contains(&a.lot) => {
                self.tracked(&a.lot)?;
            }
            EventBody::Correct(c) => {
                if let Some(lot) = c.lot.as_ref().filter(|l| self.in_graph.contains(l)) {
                    self.tracked(lot)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Origins mixed by the payable metal each part brought, as the rules do.
fn mix<'a>(origins: impl Iterator<Item = &'a Origin>, brought: &[Grams]) -> Result<Origin, String> {
    let parts: Vec<(&Origin, Grams)> = origins.zip(brought.iter().copied()).collect();
    Origin::mix(&parts).ok_or_else(|| "its inputs contain none of its payable metal".into())
}

/// One link per parent, with the share of the child's payable metal each
/// brought (exact: the shares add up to one).
fn links<'a>(
    child: &LotId,
    parents: impl Iterator<Item = &'a LotId>,
    brought: &[Grams],
) -> Result<Vec<GraphLink>, String> {
    let weights: Vec<u128> = brought.iter().map(|g| u128::from(g.0)).collect();
    let shares = apportion(BILLION, &weights).ok_or("the shares overflow")?;
    parents
        .zip(brought)
        .zip(shares)
        .map(|((parent, grams), share)| {
            Ok(GraphLink {
                child: child.clone(),
                parent: parent.clone(),
                share: Ppb::new(share).map_err(|e| e.to_string())?,
                grams: *grams,
            })
        })
        .collect()
}

// -- verifying ---------------------------------------------------------------

/// How to verify a passport.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// The log's verifier key line (`<origin>+<key id>+<base64 key>`) as
    /// obtained independently of the passport; when given, the passport's
    /// checkpoint must be signed by exactly that key.
    pub trusted_log_key: Option<&'a str>,
    /// The lot the passport must be of.
    pub lot: Option<&'a LotId>,
}

/// What an intact passport proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassportReport {
    pub lot: LotId,
    pub origin: String,
    /// The log key's verifier key line.
    pub log_key: String,
    /// The checkpoint's tree size and root.
    pub tree_size: u64,
    pub root: Digest,
    /// Entries in the passport.
    pub entries: usize,
    /// The graph, as recomputed from the entries (equal to the claimed).
    pub graph: ProvenanceGraph,
}

impl PassportReport {
    /// The passport's own lot: the graph's first.
    pub fn final_lot(&self) -> Option<&GraphLot> {
        self.graph.lots.first()
    }

    /// The sites the lot's payable metal came from, with their shares.
    pub fn mines(&self) -> &[crate::model::OriginShare] {
        self.final_lot().map_or(&[], |l| l.origin.shares())
    }
}

/// The first problem found in a passport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassportFailure {
    /// The file could not be read at all.
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    /// The magic, the header or its claims (origin, log key, lot, number
    /// of entries), or the log key is not the trusted one.
    #[error("passport header: {0}")]
    Header(String),
    /// The checkpoint note is malformed or not signed by the log key.
    #[error("passport checkpoint: {0}")]
    Checkpoint(String),
    /// The claimed graph is malformed or not what the entries give.
    #[error("passport graph: {0}")]
    Graph(String),
    /// An entry the graph needs is missing.
    #[error("passport incomplete: {0}")]
    Incomplete(String),
    /// An entry record fails a check: its encoding, its inclusion proof,
    /// its signature or key, its place in the graph. `record` counts the
    /// entry records from 1; `index` is the log index the record claims,
    /// when it could be read.
    #[error("{}: {reason}", entry_name(.record, .index))]
    Entry {
        record: u64,
        index: Option<u64>,
        reason: String,
    },
}

fn entry_name(record: &u64, index: &Option<u64>) -> String {
    match index {
        Some(index) => format!("entry {index} (record {record})"),
        None => format!("entry record {record}"),
    }
}

/// Reads and verifies the passport at `path`.
pub fn verify_file(
    path: &Path,
    options: VerifyOptions<'_>,
) -> Result<PassportReport, PassportFailure> {
    let unreadable = |reason: String| PassportFailure::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let len = file
        .metadata()
        .map_err(|e| unreadable(e.to_string()))?
        .len();
    if len > MAX_PASSPORT_LEN {
        return Err(unreadable(format!(
            "{len} bytes is more than a passport may hold ({MAX_PASSPORT_LEN})"
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(|e| unreadable(e.to_string()))?;
    verify(&bytes, options)
}

/// Splits `bytes` into the records after the magic.
struct Records<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Records<'a> {
    /// The next record, `None` at the end, or why it cannot be read.
    fn next_record(&mut self) -> Option<Result<&'a [u8], String>> {
        let rest = &self.bytes[self.at..];
        if rest.is_empty() {
            return None;
        }
        let Some((len, body)) = rest.split_first_chunk::<RECORD_LEN_BYTES>() else {
            return Some(Err(format!(
                "{} bytes at the end are too short for a record length",
                rest.len()
            )));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > codec::MAX_ENCODED_LEN || len > body.len() {
            return Some(Err(format!(
                "the record claims {len} bytes, more than the limit or what is left of the file ({})",
                body.len()
            )));
        }
        self.at += RECORD_LEN_BYTES + len;
        Some(Ok(&body[..len]))
    }
}

/// Verifies a passport held in memory: pure, never panics on any input.
/// The checks, in order (`schemas/ENCODING.md`, section 13.6): the magic
/// and the records' encodings; the log key against the trusted one; the
/// checkpoint's signature; each entry's inclusion proof, encoding and
/// signature; the genesis entry's origin and log key; each signer's key
/// registration; the graph recomputed from the events; that every entry
/// is one the graph needs; the claimed graph against the recomputed one.
pub fn verify(bytes: &[u8], options: VerifyOptions<'_>) -> Result<PassportReport, PassportFailure> {
    let header_failure = |reason: String| PassportFailure::Header(reason);
    if bytes.len() < PASSPORT_MAGIC.len() || bytes[..15] != PASSPORT_MAGIC[..15] {
        return Err(header_failure(
            "the file does not start with the oretrail passport magic".into(),
        ));
    }
    if bytes[15] != PASSPORT_MAGIC[15] {
        return Err(header_failure(format!(
            "passport format version {} is not supported (this build reads version {})",
            bytes[15], PASSPORT_MAGIC[15]
        )));
    }
    let mut records = Records {
        bytes,
        at: PASSPORT_MAGIC.len(),
    };
    let header: PassportHeader = match records.next_record() {
        Some(Ok(record)) => {
            codec::decode(record).map_err(|e| header_failure(format!("header record: {e}")))?
        }
        Some(Err(reason)) => return Err(header_failure(format!("header record: {reason}"))),
        None => return Err(header_failure("the file ends after the magic".into())),
    };
    let claimed: ProvenanceGraph = match records.next_record() {
        Some(Ok(record)) => codec::decode(record)
            .map_err(|e| PassportFailure::Graph(format!("graph record: {e}")))?,
        Some(Err(reason)) => return Err(PassportFailure::Graph(format!("graph record: {reason}"))),
        None => return Err(header_failure("the file ends after the header".into())),
    };
    let mut raw = Vec::new();
    while let Some(record) = records.next_record() {
        let number = raw.len() as u64 + 1;
        let failure = |reason: String| PassportFailure::Entry {
            record: number,
            index: None,
            reason,
        };
        if number > header.entries {
            return Err(header_failure(format!(
                "the header says {} entries, but more records follow",
                header.entries
            )));
        }
        let record = record.map_err(failure)?;
        let entry: PassportEntry =
            codec::decode(record).map_err(|e| failure(format!("entry record: {e}")))?;
        raw.push(entry);
    }
    if (raw.len() as u64) < header.entries {
        return Err(header_failure(format!(
            "the header says {} entries, but the file ends after {}",
            header.entries,
            raw.len()
        )));
    }

    // The log key and the checkpoint.
    let verifier = log_verifier(&header.origin, &header.log_key).map_err(header_failure)?;
    if let Some(trusted) = options.trusted_log_key {
        let trusted = parse_verifier_key(trusted.trim()).map_err(|e| {
            header_failure(format!(
                "the trusted log key is not a verifier key line: {e}"
            ))
        })?;
        if trusted.name() != header.origin || trusted.key() != verifier.key() {
            return Err(header_failure(format!(
                "the passport's log key {} is not the trusted key {}",
                verifier.verifier_key(),
                trusted.verifier_key()
            )));
        }
    }
    if let Some(lot) = options.lot
        && *lot != header.lot
    {
        return Err(header_failure(format!(
            "the passport is of lot {}, not {lot}",
            header.lot
        )));
    }
    let checkpoint = checkpoint_of(&header.checkpoint, &verifier)?;
    if checkpoint.origin() != header.origin {
        return Err(PassportFailure::Checkpoint(format!(
            "it names origin {:?}, the header {:?}",
            checkpoint.origin(),
            header.origin
        )));
    }
    let (size, root) = (checkpoint.size(), *checkpoint.root());
    if claimed.lots.first().map(|l| &l.lot) != Some(&header.lot) {
        return Err(header_failure(format!(
            "the header names lot {}, the graph starts at {}",
            header.lot,
            claimed
                .lots
                .first()
                .map_or_else(|| "no lot".to_string(), |l| l.lot.to_string())
        )));
    }

    // Each entry: in the tree, well formed, signed.
    let keys = KeyCache::new();
    let mut entries = Vec::with_capacity(raw.len());
    let mut records_of: HashMap<u64, u64> = HashMap::new();
    let mut previous: Option<u64> = None;
    for (n, e) in raw.iter().enumerate() {
        let record = n as u64 + 1;
        let failure = |reason: String| PassportFailure::Entry {
            record,
            index: Some(e.index),
            reason,
        };
        if e.index >= size {
            return Err(failure(format!(
                "is beyond the checkpoint's {size} entries"
            )));
        }
        if previous.is_some_and(|p| p >= e.index) {
            return Err(failure(format!(
                "comes after entry {}: records must be in increasing index order",
                previous.unwrap_or_default()
            )));
        }
        previous = Some(e.index);
        let proof: Vec<Hash> = e.proof.iter().map(|d| *d.as_bytes()).collect();
        merkle::verify_inclusion(&merkle::leaf_hash(&e.entry), e.index, size, &proof, &root)
            .map_err(|err| {
                failure(format!(
                    "is not in the log at the checkpoint: its inclusion proof fails ({err})"
                ))
            })?;
        let entry: Entry =
            codec::decode(&e.entry).map_err(|err| failure(format!("entry bytes: {err}")))?;
        if entry.index != e.index {
            return Err(failure(format!(
                "the entry says it is entry {}",
                entry.index
            )));
        }
        let event: Event = codec::decode(&entry.signed.event)
            .map_err(|err| failure(format!("event bytes: {err}")))?;
        if event.ledger != header.origin {
            return Err(failure(format!(
                "the event is for ledger {:?}, not {:?}",
                event.ledger, header.origin
            )));
        }
        keys.verify_strict(
            &entry.signed.key,
            &entry.signed.event,
            &entry.signed.signature,
        )
        .map_err(|err| failure(format!("{err}")))?;
        records_of.insert(e.index, record);
        entries.push(Decoded {
            index: e.index,
            entry,
            event,
        });
    }
    let at = |index: u64, reason: String| PassportFailure::Entry {
        record: records_of.get(&index).copied().unwrap_or_default(),
        index: Some(index),
        reason,
    };

    // The genesis entry binds the origin and the log key into the log.
    let Some(first) = entries.first().filter(|d| d.index == 0) else {
        return Err(PassportFailure::Incomplete(
            "it does not hold entry 0, the genesis entry that names the log key".into(),
        ));
    };
    match &first.event.body {
        EventBody::Genesis(g) if g.origin == header.origin && g.log_key == header.log_key => {}
        EventBody::Genesis(g) => {
            return Err(at(
                0,
                format!(
                    "the genesis names origin {:?} and log key {}, the header {:?} and {}",
                    g.origin, g.log_key, header.origin, header.log_key
                ),
            ));
        }
        other => {
            return Err(at(
                0,
                format!("is a {} event, not genesis", other.type_name()),
            ));
        }
    }

    check_signers(&entries).map_err(|(index, reason)| at(index, reason))?;
    let traced = trace(&header.lot, &entries).map_err(|fault| match fault {
        Fault::Entry { index, reason } => at(index, reason),
        Fault::Incomplete(reason) => PassportFailure::Incomplete(reason),
    })?;
    check_needed(&entries, &traced).map_err(|(index, reason)| at(index, reason))?;
    compare(&claimed, &traced.graph).map_err(PassportFailure::Graph)?;
    Ok(PassportReport {
        lot: header.lot,
        origin: header.origin,
        log_key: verifier.verifier_key(),
        tree_size: size,
        root: Digest::from_bytes(root),
        entries: entries.len(),
        graph: traced.graph,
    })
}

/// The checkpoint of a note holding exactly one signature line: the log
/// key's, valid.
fn checkpoint_of(
    note: &str,
    verifier: &NoteVerifier,
) -> Result<merkle::checkpoint::Checkpoint, PassportFailure> {
    let failure = |reason: String| PassportFailure::Checkpoint(reason);
    let parsed = Note::parse(note).map_err(|e| failure(e.to_string()))?;
    if parsed.signatures().len() != 1 {
        return Err(failure(format!(
            "it holds {} signature lines; a passport's holds only the log key's",
            parsed.signatures().len()
        )));
    }
    parsed
        .verify(verifier)
        .map_err(|e| failure(e.to_string()))?;
    parse_body(parsed.body()).map_err(|e| failure(e.to_string()))
}

/// Every event but the genesis is signed by a key that an earlier entry
/// of the passport registered for its signer; the genesis by the operator
/// key it names itself.
fn check_signers(entries: &[Decoded]) -> Result<(), (u64, String)> {
    let mut registered: HashMap<&PublicKey, (&ParticipantId, u64)> = HashMap::new();
    for d in entries {
        let key = &d.entry.signed.key;
        let signer = &d.event.signer;
        if let EventBody::Genesis(g) = &d.event.body {
            if d.index != 0 || g.operator != *signer || g.operator_key != *key {
                return Err((
                    d.index,
                    "a genesis event is entry 0, signed by the operator key it names".into(),
                ));
            }
        } else {
            match registered.get(key) {
                Some((owner, _)) if *owner == signer => {}
                Some((owner, at)) => {
                    return Err((
                        d.index,
                        format!(
                            "signed by key {key}, which entry {at} registered for {owner}, not {signer}"
                        ),
                    ));
                }
                None => {
                    return Err((
                        d.index,
                        format!(
                            "signed by key {key} of {signer}, but the passport holds no earlier entry registering it"
                        ),
                    ));
                }
            }
        }
        for (k, participant) in established(&d.event) {
            registered.entry(k).or_insert((participant, d.index));
        }
    }
    Ok(())
}

/// Every entry is one the graph needs: the genesis; an entry naming a lot
/// of the graph, not a sale, up to the last entry that made a graph lot
/// from it (or a correction of an entry of the passport); the
/// registration or a CAHRA finding of a site a graph lot was created at;
/// or the registration of a key that signed another entry.
fn check_needed(entries: &[Decoded], traced: &Traced) -> Result<(), (u64, String)> {
    let present: HashSet<u64> = entries.iter().map(|d| d.index).collect();
    let used: HashSet<&PublicKey> = entries.iter().map(|d| &d.entry.signed.key).collect();
    for d in entries {
        let body = &d.event.body;
        let names_graph_lot = !matches!(body, EventBody::Sell(_))
            && body
                .lots()
                .iter()
                .any(|l| traced.walk.made_in.contains_key(*l) && d.index <= traced.walk.cutoff(l));
        let late_correction = match body {
            EventBody::Correct(c) => {
                c.lot
                    .as_ref()
                    .is_some_and(|l| traced.walk.made_in.contains_key(l))
                    && present.contains(&c.entry)
            }
            _ => false,
        };
        let site = site_of(body).is_some_and(|s| traced.sites.contains(s));
        let key = established(&d.event).iter().any(|(k, _)| used.contains(k));
        let genesis = d.index == 0;
        if !(genesis || names_graph_lot || late_correction || site || key) {
            return Err((
                d.index,
                format!(
                    "a {} event the provenance of lot {} does not need: a passport holds only \
                     the entries behind its graph",
                    body.type_name(),
                    traced
                        .graph
                        .lots
                        .first()
                        .map_or_else(String::new, |l| l.lot.to_string())
                ),
            ));
        }
    }
    Ok(())
}

/// The claimed graph against the recomputed one, naming the first
/// difference.
fn compare(claimed: &ProvenanceGraph, computed: &ProvenanceGraph) -> Result<(), String> {
    for (n, (c, r)) in claimed.lots.iter().zip(&computed.lots).enumerate() {
        if c != r {
            return Err(format!(
                "lot {} of the graph is claimed as {c:?}, the entries give {r:?}",
                n + 1
            ));
        }
    }
    if claimed.lots.len() != computed.lots.len() {
        return Err(format!(
            "the graph claims {} lots, the entries give {}",
            claimed.lots.len(),
            computed.lots.len()
        ));
    }
    for (n, (c, r)) in claimed.links.iter().zip(&computed.links).enumerate() {
        if c != r {
            return Err(format!(
                "link {} of the graph is claimed as {c:?}, the entries give {r:?}",
                n + 1
            ));
        }
    }
    if claimed.links.len() != computed.links.len() {
        return Err(format!(
            "the graph claims {} links, the entries give {}",
            claimed.links.len(),
            computed.links.len()
        ));
    }
    Ok(())
}
