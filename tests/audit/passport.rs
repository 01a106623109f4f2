//! Lot passports: passports of demo lots (a cathode with the deepest
//! upstream, a concentrate that went through sales, an ingot whose zinc
//! concentrate an earlier campaign took part of) verify, and their graphs,
//! shares and origins are the catalog's and the ledger state's; a flipped
//! byte anywhere fails naming the entry record it lies in (or the header,
//! checkpoint or graph); re-signed or rewritten passports with valid
//! encodings fail; a passport holds exactly the entries behind its lot
//! (no sale, nothing of unrelated lots), counted from the log's own
//! frames; the CLI and the HTTP endpoint give the same bytes at the same
//! checkpoint; a small ledger with a split and a partly used lot has the
//! hand-computed shares.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use axum::http::StatusCode;
use oretrail::api::{self, AppState};
use oretrail::audit::LogSnapshot;
use oretrail::audit::passport::{
    self, PASSPORT_MAGIC, PassportEntry, PassportFailure, PassportHeader, ProvenanceGraph,
    VerifyOptions,
};
use oretrail::catalog::Catalog;
use oretrail::codec::{self, Canonical};
use oretrail::crypto::Digest;
use oretrail::ledger::LOG_FILE;
use oretrail::merkle::checkpoint::{Note, NoteSignature};
use oretrail::model::{
    Assay, CountryCode, Dispatch, Element, Entry, Event, EventBody, Grams, LotCreation, LotId,
    LotKind, LotReceipt, Ppb, Role, Sale, SiteId, SiteRegistration, SiteScale, Split, SplitPart,
    StateView, TransformInput, TransformOutput, Transformation,
};
use oretrail::store::FrameKind;
use oretrail::store::log::{FrameReader, LOG_HEADER};

use crate::common;
use crate::get;

/// Every entry of a log, decoded from its frames (independently of the
/// passport code).
fn read_log(path: &Path) -> Vec<(Entry, Event)> {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = FrameReader::new(&bytes[LOG_HEADER.len()..], bytes.len() as u64);
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap().unwrap() {
        if frame.kind == FrameKind::Entry {
            let entry: Entry = codec::decode(&frame.payload).unwrap();
            let event: Event = codec::decode(&entry.signed.event).unwrap();
            out.push((entry, event));
        }
    }
    out
}

/// The lots an event makes and what each is made from.
fn made(body: &EventBody) -> Vec<(LotId, Vec<LotId>)> {
    match body {
        EventBody::CreateLot(c) => vec![(c.lot.clone(), vec![])],
        EventBody::Split(s) => s
            .parts
            .iter()
            .map(|p| (p.lot.clone(), vec![s.lot.clone()]))
            .collect(),
        EventBody::Blend(b) => vec![(b.output.clone(), b.inputs.clone())],
        EventBody::Transform(t) => t
            .outputs
            .iter()
            .map(|o| {
                (
                    o.lot.clone(),
                    t.inputs.iter().map(|i| i.lot.clone()).collect(),
                )
            })
            .collect(),
        _ => vec![],
    }
}

/// The lots upstream of `lot` (itself included) by the log's events.
fn upstream(log: &[(Entry, Event)], lot: &LotId) -> BTreeSet<LotId> {
    let makers: HashMap<LotId, Vec<LotId>> = log.iter().flat_map(|(_, e)| made(&e.body)).collect();
    let mut seen = BTreeSet::from([lot.clone()]);
    let mut todo = vec![lot.clone()];
    while let Some(l) = todo.pop() {
        for p in makers.get(&l).cloned().unwrap_or_default() {
            if seen.insert(p.clone()) {
                todo.push(p);
            }
        }
    }
    seen
}

/// Three demo lots: of the cathodes delivered to a buyer, the one with the
/// most lots upstream; a copper
/// concentrate that was sold (by its mine or a trader) before it was
/// blended, and an ingot made from a zinc concentrate lot that an earlier
/// campaign had already taken part of.
struct Picks {
    cathode: LotId,
    concentrate: LotId,
    ingot: LotId,
}

struct Demo {
    log: Vec<(Entry, Event)>,
    picks: Picks,
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let log = read_log(&crate::demo_data().join(LOG_FILE));
        let mut cathodes: Vec<LotId> = Vec::new();
        let mut delivered = HashSet::new();
        let mut concentrate = None;
        let mut ingot = None;
        let mut sold = HashSet::new();
        let mut taken_before: HashSet<LotId> = HashSet::new();
        for (_, event) in &log {
            match &event.body {
                EventBody::Sell(s) => {
                    sold.insert(s.lot.clone());
                }
                EventBody::Blend(b) if concentrate.is_none() => {
                    concentrate = b.inputs.iter().find(|l| sold.contains(*l)).cloned();
                }
                EventBody::Transform(t) => {
                    for o in &t.outputs {
                        if o.kind == LotKind::Cathode {
                            cathodes.push(o.lot.clone());
                        }
                        if o.kind == LotKind::Ingot
                            && ingot.is_none()
                            && t.inputs.iter().any(|i| taken_before.contains(&i.lot))
                        {
                            ingot = Some(o.lot.clone());
                        }
                    }
                    taken_before.extend(t.inputs.iter().map(|i| i.lot.clone()));
                }
                EventBody::Receive(r)
                    if r.accepted && event.signer.as_str().starts_with("buyer.") =>
                {
                    delivered.insert(r.lot.clone());
                }
                _ => {}
            }
        }
        let picks = Picks {
            cathode: cathodes
                .into_iter()
                .filter(|c| delivered.contains(c))
                .max_by_key(|c| upstream(&log, c).len())
                .expect("the demo delivers cathode"),
            concentrate: concentrate.expect("the demo blends concentrate it bought"),
            ingot: ingot.expect("the demo's zinc campaigns take lots in part"),
        };
        Demo { log, picks }
    })
}

fn snapshot() -> LogSnapshot {
    LogSnapshot::open(&crate::demo_data().join(LOG_FILE)).unwrap()
}

/// The passport of a demo lot, exported once per lot.
fn demo_passport(lot: &LotId) -> &'static Vec<u8> {
    static PASSPORTS: OnceLock<std::sync::Mutex<HashMap<LotId, &'static Vec<u8>>>> =
        OnceLock::new();
    let map = PASSPORTS.get_or_init(Default::default);
    if let Some(bytes) = map.lock().unwrap().get(lot) {
        return bytes;
    }
    let built = passport::export(&snapshot(), lot, false).unwrap();
    let bytes: &'static Vec<u8> = Box::leak(Box::new(built.to_bytes().unwrap()));
    map.lock().unwrap().insert(lot.clone(), bytes);
    bytes
}

// -- the file, read as schemas/ENCODING.md section 12 lays it out -------------

/// A passport split into its records, with each record's byte range.
struct Parsed {
    header: PassportHeader,
    graph: ProvenanceGraph,
    entries: Vec<PassportEntry>,
    /// Byte ranges (length prefix included) of the header, the graph and
    /// each entry record.
    ranges: Vec<std::ops::Range<usize>>,
}

fn parse(bytes: &[u8]) -> Parsed {
    assert_eq!(bytes[..16], PASSPORT_MAGIC);
    let mut at = 16;
    let mut bodies = Vec::new();
    let mut ranges = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        bodies.push(&bytes[at + 4..at + 4 + len]);
        ranges.push(at..at + 4 + len);
        at += 4 + len;
    }
    Parsed {
        header: codec::decode(bodies[0]).unwrap(),
        graph: codec::decode(bodies[1]).unwrap(),
        entries: bodies[2..]
            .iter()
            .map(|b| codec::decode(b).unwrap())
            .collect(),
        ranges,
    }
}

fn assemble(
    header: &PassportHeader,
    graph: &ProvenanceGraph,
    entries: &[PassportEntry],
) -> Vec<u8> {
    fn record<T: Canonical>(out: &mut Vec<u8>, value: &T) {
        let bytes = codec::encode(value).unwrap();
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    let mut header = header.clone();
    header.entries = entries.len() as u64;
    let mut out = PASSPORT_MAGIC.to_vec();
    record(&mut out, &header);
    record(&mut out, graph);
    for e in entries {
        record(&mut out, e);
    }
    out
}

fn decoded(e: &PassportEntry) -> (Entry, Event) {
    let entry: Entry = codec::decode(&e.entry).unwrap();
    let event: Event = codec::decode(&entry.signed.event).unwrap();
    (entry, event)
}

// -- round trips ---------------------------------------------------------------

#[test]
fn demo_passports_verify_and_agree_with_the_catalog_and_the_state() {
    let d = demo();
    let ledger = crate::demo_ledger();
    let catalog = Catalog::build(ledger).unwrap();
    let tables = catalog.snapshot().unwrap();
    for (lot, kind) in [
        (&d.picks.cathode, LotKind::Cathode),
        (&d.picks.concentrate, LotKind::Concentrate),
        (&d.picks.ingot, LotKind::Ingot),
    ] {
        let bytes = demo_passport(lot);
        let report = passport::verify(bytes, VerifyOptions::default())
            .unwrap_or_else(|e| panic!("the passport of {lot} does not verify: {e}"));
        let parsed = parse(bytes);
        assert_eq!(&report.lot, lot);
        assert_eq!(report.final_lot().unwrap().kind, kind);
        assert_eq!(
            report.graph, parsed.graph,
            "the report gives the graph the file claims"
        );
        assert_eq!(report.tree_size, ledger.size());
        assert_eq!(*report.root.as_bytes(), ledger.root());
        assert_eq!(report.entries, parsed.entries.len());
        assert_eq!(parsed.header.checkpoint, ledger.checkpoint().to_string());

        // The catalog's backward graph: the same lots in the same order,
        // the same links with the same shares and grams.
        let graph = tables.upstream(lot).unwrap();
        let ids: Vec<&LotId> = graph.nodes.iter().map(|n| &n.id).collect();
        let ours: Vec<&LotId> = report.graph.lots.iter().map(|l| &l.lot).collect();
        assert_eq!(ours, ids, "{lot}: lots");
        let links: Vec<(&LotId, &LotId, Ppb, Grams)> = graph
            .edges
            .iter()
            .map(|e| (&e.child, &e.parent, e.share, e.grams))
            .collect();
        let ours: Vec<(&LotId, &LotId, Ppb, Grams)> = report
            .graph
            .links
            .iter()
            .map(|l| (&l.child, &l.parent, l.share, l.grams))
            .collect();
        assert_eq!(ours, links, "{lot}: links");
        // Each lot's origin is the one the rules wrote into the state.
        for l in &report.graph.lots {
            let state = ledger.state().lot(&l.lot).unwrap().unwrap();
            assert_eq!(l.origin, state.origin, "origin of {}", l.lot);
            assert_eq!((l.kind, l.metal), (state.kind, state.metal));
            assert_eq!(Some(l.made_in), state.history.first().copied());
        }
        assert!(
            report.graph.lots.iter().any(|l| l.site.is_some()),
            "{lot} reaches a mine"
        );
    }
    assert!(
        report_size(&d.picks.cathode) > 5,
        "the cathode picked has a deep upstream"
    );
}

fn report_size(lot: &LotId) -> usize {
    parse(demo_passport(lot)).graph.lots.len()
}

// -- tampering -----------------------------------------------------------------

/// Which record a byte lies in: `None` for the magic, header and graph
/// region, `Some(k)` for entry record `k` (from 1).
fn record_of(parsed: &Parsed, position: usize) -> Option<u64> {
    parsed.ranges[2..]
        .iter()
        .position(|r| r.contains(&position))
        .map(|k| k as u64 + 1)
}

#[test]
fn one_flipped_byte_anywhere_fails_naming_its_entry_or_the_header() {
    let bytes = demo_passport(&demo().picks.cathode);
    let parsed = parse(bytes);
    // About 500 positions spread over the file, plus every record's
    // length prefix and first and last byte, plus the whole header.
    let mut positions: BTreeSet<usize> = (0..bytes.len()).step_by(bytes.len() / 500).collect();
    for r in &parsed.ranges {
        positions.extend([r.start, r.start + 1, r.start + 3, r.start + 4, r.end - 1]);
    }
    positions.extend(0..parsed.ranges[0].end);
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for &position in &positions {
        let mut tampered = bytes.clone();
        tampered[position] ^= (position % 255 + 1) as u8;
        let failure = passport::verify(&tampered, VerifyOptions::default())
            .err()
            .unwrap_or_else(|| panic!("a flip at byte {position} went unnoticed"));
        assert!(!failure.to_string().is_empty());
        match (record_of(&parsed, position), &failure) {
            (Some(k), PassportFailure::Entry { record, .. }) => {
                assert_eq!(*record, k, "byte {position}: {failure}");
                *by_kind.entry("entry").or_default() += 1;
            }
            (Some(k), other) => panic!("byte {position} of entry record {k}: {other}"),
            (None, PassportFailure::Entry { .. }) => {
                panic!("byte {position} is before the entries: {failure}")
            }
            (None, PassportFailure::Header(_)) => *by_kind.entry("header").or_default() += 1,
            (None, PassportFailure::Checkpoint(_)) => {
                *by_kind.entry("checkpoint").or_default() += 1
            }
            (None, PassportFailure::Graph(_)) => *by_kind.entry("graph").or_default() += 1,
            (None, other) => panic!("byte {position}: {other}"),
        }
    }
    // Every part of the file was hit.
    for kind in ["entry", "header", "checkpoint", "graph"] {
        assert!(by_kind.get(kind).is_some_and(|n| *n > 0), "{by_kind:?}");
    }
    // Cut anywhere, or with a byte added, it fails too.
    for cut in [1, 17, parsed.ranges[1].end, bytes.len() - 1] {
        assert!(passport::verify(&bytes[..cut], VerifyOptions::default()).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        passport::verify(&longer, VerifyOptions::default()),
        Err(PassportFailure::Header(_))
    ));
}

#[test]
fn damaged_and_random_input_fails_without_panicking() {
    let bytes = demo_passport(&demo().picks.concentrate);
    // A fixed-seed generator (splitmix64), so a failure can be replayed.
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for _ in 0..300 {
        let mut damaged = bytes.clone();
        for _ in 0..1 + next() % 8 {
            let at = (next() % damaged.len() as u64) as usize;
            damaged[at] = next() as u8;
        }
        let cut = (next() % (damaged.len() as u64 + 1)) as usize;
        if next() % 4 == 0 {
            damaged.truncate(cut);
        }
        if damaged != *bytes {
            assert!(passport::verify(&damaged, VerifyOptions::default()).is_err());
        }
    }
    let mut random = PASSPORT_MAGIC.to_vec();
    random.extend((0..4096).map(|_| next() as u8));
    for input in [&[][..], &PASSPORT_MAGIC[..], &PASSPORT_MAGIC[..15], &random] {
        assert!(passport::verify(input, VerifyOptions::default()).is_err());
    }
    // A record length of 4 GiB - 1 is refused before anything is read.
    let mut huge = PASSPORT_MAGIC.to_vec();
    huge.extend(u32::MAX.to_le_bytes());
    assert!(matches!(
        passport::verify(&huge, VerifyOptions::default()),
        Err(PassportFailure::Header(m)) if m.contains("more than the limit")
    ));
}

#[test]
fn rewritten_passports_with_valid_encodings_fail() {
    let d = demo();
    let ledger = crate::demo_ledger();
    let bytes = demo_passport(&d.picks.cathode);
    let p = parse(bytes);
    assert_eq!(assemble(&p.header, &p.graph, &p.entries), *bytes);
    let verify = |b: &[u8]| passport::verify(b, VerifyOptions::default());

    // A share moved from one parent to another: the entries say otherwise.
    let mut graph = p.graph.clone();
    let blend = graph
        .links
        .iter()
        .position(|l| l.share.get() < 900_000_000)
        .expect("a lot with several parents");
    let share = graph.links[blend].share.get();
    graph.links[blend].share = Ppb::new(u64::from(share) + 1).unwrap();
    assert!(matches!(
        verify(&assemble(&p.header, &graph, &p.entries)),
        Err(PassportFailure::Graph(m)) if m.contains("link")
    ));
    // A mine dropped from the final lot's origin.
    let mut graph = p.graph.clone();
    graph.lots[0].origin = oretrail::model::Origin::single(SiteId::new("NOWHERE").unwrap());
    assert!(matches!(
        verify(&assemble(&p.header, &graph, &p.entries)),
        Err(PassportFailure::Graph(_))
    ));

    // The entry that created a concentrate left out.
    let created = p.graph.lots.iter().find(|l| l.site.is_some()).unwrap();
    let without: Vec<PassportEntry> = p
        .entries
        .iter()
        .filter(|e| e.index != created.made_in)
        .cloned()
        .collect();
    assert!(matches!(
        verify(&assemble(&p.header, &p.graph, &without)),
        Err(PassportFailure::Incomplete(m)) if m.contains(created.lot.as_str())
    ));
    // A signer's key registration left out: the entries it signed fail.
    let registration = p
        .entries
        .iter()
        .find(|e| matches!(decoded(e).1.body, EventBody::RegisterParticipant(_)))
        .unwrap();
    let without: Vec<PassportEntry> = p
        .entries
        .iter()
        .filter(|e| e.index != registration.index)
        .cloned()
        .collect();
    assert!(matches!(
        verify(&assemble(&p.header, &p.graph, &without)),
        Err(PassportFailure::Entry { reason, .. }) if reason.contains("registering")
    ));
    // The genesis entry left out.
    assert!(matches!(
        verify(&assemble(&p.header, &p.graph, &p.entries[1..])),
        Err(PassportFailure::Incomplete(m)) if m.contains("genesis")
    ));
    // Two records swapped.
    let mut swapped = p.entries.clone();
    swapped.swap(3, 4);
    assert!(matches!(
        verify(&assemble(&p.header, &p.graph, &swapped)),
        Err(PassportFailure::Entry { record: 5, reason, .. }) if reason.contains("order")
    ));

    // A genuine entry of the log, with a genuine proof, that the lot does
    // not need: the sale of a lot upstream.
    let graph_lots: HashSet<&LotId> = p.graph.lots.iter().map(|l| &l.lot).collect();
    let (sale, _) = d
        .log
        .iter()
        .find(|(_, e)| matches!(&e.body, EventBody::Sell(s) if graph_lots.contains(&s.lot)))
        .expect("a lot upstream of the cathode was sold");
    let mut extra = p.entries.clone();
    extra.push(PassportEntry {
        index: sale.index,
        entry: codec::encode(sale).unwrap(),
        proof: ledger
            .inclusion_proof(sale.index, ledger.size())
            .unwrap()
            .into_iter()
            .map(Digest::from_bytes)
            .collect(),
    });
    extra.sort_by_key(|e| e.index);
    assert!(matches!(
        verify(&assemble(&p.header, &p.graph, &extra)),
        Err(PassportFailure::Entry { index: Some(i), reason, .. })
            if i == sale.index && reason.contains("does not need")
    ));

    // A checkpoint with a second signature line (a cosignature of a key
    // the verifier cannot check) is refused rather than left unchecked.
    let mut note = Note::parse(&p.header.checkpoint).unwrap();
    note.add_signature(NoteSignature::new("witness.example", [1, 2, 3, 4], vec![7; 72]).unwrap())
        .unwrap();
    let mut header = p.header.clone();
    header.checkpoint = note.to_string();
    assert!(matches!(
        verify(&assemble(&header, &p.graph, &p.entries)),
        Err(PassportFailure::Checkpoint(m)) if m.contains("signature lines")
    ));
}

#[test]
fn a_different_pinned_log_key_fails_and_the_right_one_passes() {
    let ledger = crate::demo_ledger();
    let lot = &demo().picks.concentrate;
    let bytes = demo_passport(lot);
    let right = ledger.log_key_line().unwrap();
    let report = passport::verify(
        bytes,
        VerifyOptions {
            trusted_log_key: Some(&right),
            lot: Some(lot),
        },
    )
    .unwrap();
    assert_eq!(report.log_key, right);
    let vk = common::key(99).public().verifying_key().unwrap();
    let other = oretrail::merkle::checkpoint::verifier_key(oretrail::demo::ORIGIN, &vk).unwrap();
    let failure = passport::verify(
        bytes,
        VerifyOptions {
            trusted_log_key: Some(&other),
            lot: None,
        },
    )
    .unwrap_err();
    assert!(
        matches!(&failure, PassportFailure::Header(m) if m.contains("not the trusted key")),
        "{failure}"
    );
    let wrong_lot = demo().picks.cathode.clone();
    assert!(matches!(
        passport::verify(bytes, VerifyOptions { trusted_log_key: None, lot: Some(&wrong_lot) }),
        Err(PassportFailure::Header(m)) if m.contains(lot.as_str())
    ));
}

// -- what a passport holds -------------------------------------------------------

/// Checks, from the log's own frames, that the passport of `lot` holds
/// exactly: the genesis; every entry naming a lot of its graph up to the
/// last entry that made a graph lot from it (all of them for the lot
/// itself), sales excepted, and later corrections of those; the
/// registration and CAHRA findings of its mines; the registrations of the
/// keys that signed those. Returns how many sales of graph lots the log
/// holds (all left out).
fn check_holds_exactly_what_is_behind(log: &[(Entry, Event)], bytes: &[u8], lot: &LotId) -> usize {
    let p = parse(bytes);
    let graph: HashSet<&LotId> = p.graph.lots.iter().map(|l| &l.lot).collect();
    assert_eq!(graph, upstream(log, lot).iter().collect());
    let made_in: HashMap<&LotId, u64> = p.graph.lots.iter().map(|l| (&l.lot, l.made_in)).collect();
    let mut cutoff: HashMap<&LotId, u64> = HashMap::new();
    for link in &p.graph.links {
        let c = cutoff.entry(&link.parent).or_default();
        *c = (*c).max(made_in[&link.child]);
    }
    let mines: HashSet<&SiteId> = p
        .graph
        .lots
        .iter()
        .filter_map(|l| l.site.as_ref())
        .collect();
    let held: BTreeSet<u64> = p.entries.iter().map(|e| e.index).collect();
    let mut expected = BTreeSet::from([0u64]);
    let mut sales = 0;
    for (entry, event) in log {
        let i = entry.index;
        let names = event.body.lots();
        let in_reach = names
            .iter()
            .any(|l| graph.contains(l) && cutoff.get(l).is_none_or(|c| i <= *c));
        match &event.body {
            EventBody::Sell(s) if graph.contains(&s.lot) => sales += 1,
            EventBody::Correct(c)
                if c.lot.as_ref().is_some_and(|l| graph.contains(l))
                    && !in_reach
                    && expected.contains(&c.entry) =>
            {
                expected.insert(i);
            }
            _ if in_reach => {
                expected.insert(i);
            }
            EventBody::RegisterSite(s) if mines.contains(&s.site) => {
                expected.insert(i);
            }
            EventBody::DetermineCahra(f) if mines.contains(&f.site) => {
                expected.insert(i);
            }
            _ => {}
        }
    }
    // Key registrations, closed under signing.
    let registered: HashMap<_, u64> = log
        .iter()
        .flat_map(|(entry, event)| {
            let keys: Vec<_> = match &event.body {
                EventBody::Genesis(g) => vec![g.operator_key],
                EventBody::RegisterParticipant(r) => r.keys.clone(),
                EventBody::AddKey(k) => vec![k.key],
                EventBody::RotateKey(k) => vec![k.new],
                _ => vec![],
            };
            keys.into_iter().map(move |k| (k, entry.index))
        })
        .collect();
    let mut todo: Vec<u64> = expected.iter().copied().collect();
    while let Some(i) = todo.pop() {
        let key = log[i as usize].0.signed.key;
        if expected.insert(registered[&key]) {
            todo.push(registered[&key]);
        }
    }
    assert_eq!(held, expected, "the entries of the passport of {lot}");
    for e in &p.entries {
        assert!(
            !matches!(decoded(e).1.body, EventBody::Sell(_)),
            "a sale in the passport of {lot}"
        );
    }
    sales
}

#[test]
fn a_passport_holds_exactly_the_entries_behind_its_lot() {
    let d = demo();
    let mut sales = 0;
    for lot in [&d.picks.cathode, &d.picks.concentrate, &d.picks.ingot] {
        sales += check_holds_exactly_what_is_behind(&d.log, demo_passport(lot), lot);
    }
    assert!(
        sales > 0,
        "the picked lots' upstream saw sales, all left out"
    );

    // The ingot's passport holds the earlier campaign that took part of one
    // of its concentrates (its other outputs are visible in it: the known
    // limit), and nothing of those outputs' later lives.
    let p = parse(demo_passport(&d.picks.ingot));
    let graph: HashSet<&LotId> = p.graph.lots.iter().map(|l| &l.lot).collect();
    let mut siblings = HashSet::new();
    for e in &p.entries {
        if let EventBody::Transform(t) = &decoded(e).1.body
            && t.outputs.iter().all(|o| !graph.contains(&o.lot))
        {
            siblings.extend(t.outputs.iter().map(|o| o.lot.clone()));
        }
    }
    assert!(
        !siblings.is_empty(),
        "an earlier partial campaign is in the passport"
    );
    for e in &p.entries {
        let (_, event) = decoded(e);
        if !matches!(event.body, EventBody::Transform(_)) {
            assert!(
                event.body.lots().iter().all(|l| !siblings.contains(*l)),
                "entry {} is about a sibling",
                e.index
            );
        }
    }
}

// -- CLI and HTTP ----------------------------------------------------------------

fn oretrail(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oretrail"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn the_cli_and_the_endpoint_give_the_same_passport() {
    let d = demo();
    let data = crate::demo_data();
    let ledger = crate::demo_ledger();
    let lot = &d.picks.cathode;
    let holder = ledger.state().lot(lot).unwrap().unwrap().owner;
    let router = api::router(AppState::new(ledger.clone()));
    let auditor = common::issue_token(data, "auditor.trailcheck");
    let owner = common::issue_token(data, holder.as_str());
    // Every token before the first request: the server reads the token
    // file at most once a second.
    let buyers = ["buyer.rheinkabel", "buyer.nordvolt", "buyer.galvanica"];
    let stranger = buyers
        .iter()
        .find(|b| {
            **b != holder.as_str()
                && ledger
                    .state()
                    .participant(&common::pid(b))
                    .unwrap()
                    .is_some()
        })
        .expect("another buyer");
    let stranger = common::issue_token(data, stranger);
    // The smelter made the cathode and delivered it: a former holder.
    let state = ledger.state().lot(lot).unwrap().unwrap();
    assert!(state.custodian != common::pid("smelter.pohjanmeri"));
    let former = common::issue_token(data, "smelter.pohjanmeri");
    let uri = format!("/v1/lots/{lot}/passport");

    let (status, size, served) = get(&router, &uri, Some(&auditor)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&served)
    );
    assert_eq!(size, Some(ledger.size().to_string()));
    let (status, _, by_owner) = get(&router, &uri, Some(&owner)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_owner, served, "one passport per lot and checkpoint");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cathode.passport");
    let (ok, printed) = oretrail(&[
        "passport",
        "export",
        lot.as_str(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{printed}");
    let exported = std::fs::read(&file).unwrap();
    assert_eq!(
        exported, served,
        "the CLI and the endpoint agree byte for byte"
    );
    assert_eq!(&exported, demo_passport(lot));
    // The short form, `passport LOT --out FILE`, is the same export.
    let short = dir.path().join("short.passport");
    let (ok, printed) = oretrail(&[
        "passport",
        lot.as_str(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        short.to_str().unwrap(),
    ]);
    assert!(ok, "{printed}");
    assert_eq!(std::fs::read(&short).unwrap(), exported);
    let (ok, printed) = oretrail(&["passport", lot.as_str()]);
    assert!(!ok && printed.contains("--out"), "{printed}");

    let key = ledger.log_key_line().unwrap();
    let (ok, printed) = oretrail(&[
        "passport",
        "verify",
        file.to_str().unwrap(),
        "--log-key",
        &key,
    ]);
    assert!(
        ok && printed.starts_with("intact:") && printed.contains(lot.as_str()),
        "{printed}"
    );
    assert_eq!(printed.trim_end().lines().count(), 1, "{printed}");
    let mut tampered = exported.clone();
    let at = tampered.len() - 40;
    tampered[at] ^= 0x10;
    std::fs::write(&file, &tampered).unwrap();
    let (ok, printed) = oretrail(&["passport", "verify", file.to_str().unwrap()]);
    assert!(!ok && printed.starts_with("FAILED: entry "), "{printed}");
    std::fs::write(&file, &exported).unwrap();
    let vk = common::key(99).public().verifying_key().unwrap();
    let other = oretrail::merkle::checkpoint::verifier_key(oretrail::demo::ORIGIN, &vk).unwrap();
    let (ok, printed) = oretrail(&[
        "passport",
        "verify",
        file.to_str().unwrap(),
        "--log-key",
        &other,
    ]);
    assert!(!ok && printed.contains("not the trusted key"), "{printed}");

    // Those who do not see the lot in full get what a missing lot gets.
    let (status, _, body) = get(&router, &uri, Some(&stranger)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, _) = get(&router, &uri, Some(&former)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a former holder gets no passport"
    );
    let (status, _, missing) = get(&router, "/v1/lots/NO-SUCH-LOT/passport", Some(&auditor)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let hidden: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let missing: serde_json::Value = serde_json::from_slice(&missing).unwrap();
    assert_eq!(hidden["code"], missing["code"]);
    let (status, _, _) = get(&router, &uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

// -- a small ledger with a split and a partly used lot -------------------------------

#[test]
fn a_split_and_partly_used_lot_has_the_hand_computed_shares() {
    let mut f = common::Fixture::new();
    let mut mine = f.register(
        "mine",
        40,
        vec![Role::Producer, Role::Custodian, Role::Seller],
    );
    let mut smelter = f.register(
        "smelter",
        41,
        vec![
            Role::Custodian,
            Role::Processor,
            Role::Seller,
            Role::Purchaser,
        ],
    );
    let mut buyer = f.register("buyer", 42, vec![Role::Custodian, Role::Purchaser]);
    let lot = |s: &str| LotId::new(s).unwrap();
    let cu = |ppb: u64| {
        vec![Assay {
            element: Element::Cu,
            grade: Ppb::new(ppb).unwrap(),
        }]
    };
    let append = |f: &mut common::Fixture, signer: &mut oretrail::signer::Signer, body| {
        f.clock.advance(60_000);
        let signed = signer.sign(f.clock.now(), body).unwrap();
        f.ledger().append(signed).unwrap().index
    };
    let mut operator = std::mem::replace(
        &mut f.operator,
        oretrail::signer::Signer::with_first_nonce(
            "unused",
            common::pid("unused"),
            common::key(1),
            0,
        ),
    );
    append(
        &mut f,
        &mut operator,
        EventBody::RegisterSite(SiteRegistration {
            site: SiteId::new("S").unwrap(),
            operator: common::pid("mine"),
            name: "S pit".into(),
            country: CountryCode::new("ZM").unwrap(),
            latitude_micro: -12_000_000,
            longitude_micro: 27_000_000,
            scale: SiteScale::LargeScale,
            metal: Element::Cu,
            annual_capacity: Grams(1 << 40),
        }),
    );
    let create = |f: &mut common::Fixture, name: &str| {
        let now = f.clock.now();
        EventBody::CreateLot(LotCreation {
            lot: lot(name),
            site: SiteId::new("S").unwrap(),
            kind: LotKind::Concentrate,
            // 10 t at 20 % Cu: 2,000,000 g of copper.
            wet: Grams(10_000_000),
            moisture: Ppb::ZERO,
            assays: cu(200_000_000),
            produced_from: now,
            produced_until: now,
        })
    };
    let body = create(&mut f, "L1");
    append(&mut f, &mut mine, body);
    let body = create(&mut f, "UNRELATED");
    let unrelated = append(&mut f, &mut mine, body);
    let deliver = |to: &str, name: &str| {
        (
            EventBody::Dispatch(Dispatch {
                lot: lot(name),
                to: common::pid(to),
                route: vec![CountryCode::new("ZM").unwrap()],
                documents: vec![],
            }),
            EventBody::Receive(LotReceipt {
                lot: lot(name),
                measured_wet: Grams(10_000_000),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        )
    };
    let (dispatch, receipt) = deliver("smelter", "L1");
    append(&mut f, &mut mine, dispatch);
    append(&mut f, &mut smelter, receipt);
    let sale_upstream = append(
        &mut f,
        &mut mine,
        EventBody::Sell(Sale {
            lot: lot("L1"),
            buyer: common::pid("smelter"),
            documents: vec![],
        }),
    );
    // L1 splits 4 : 6 into P1 (800,000 g Cu) and P2 (1,200,000 g).
    append(
        &mut f,
        &mut smelter,
        EventBody::Split(Split {
            lot: lot("L1"),
            parts: vec![
                SplitPart {
                    lot: lot("P1"),
                    wet: Grams(4_000_000),
                },
                SplitPart {
                    lot: lot("P2"),
                    wet: Grams(6_000_000),
                },
            ],
        }),
    );
    let cathode = |name: &str, wet: u64, inputs: Vec<(&str, u64)>| {
        EventBody::Transform(Transformation {
            process: "electrorefining".into(),
            inputs: inputs
                .into_iter()
                .map(|(l, w)| TransformInput {
                    lot: lot(l),
                    consumed_wet: Grams(w),
                })
                .collect(),
            outputs: vec![TransformOutput {
                lot: lot(name),
                kind: LotKind::Cathode,
                metal: Element::Cu,
                wet: Grams(wet),
                moisture: Ppb::ZERO,
                assays: cu(999_900_000),
            }],
        })
    };
    // X1 takes half of P1 (400,000 g Cu); C takes the other half and half
    // of P2: 400,000 and 600,000 g, so shares of 40 % and 60 %.
    let partial = append(
        &mut f,
        &mut smelter,
        cathode("X1", 390_000, vec![("P1", 2_000_000)]),
    );
    append(
        &mut f,
        &mut smelter,
        cathode("C", 990_000, vec![("P1", 2_000_000), ("P2", 3_000_000)]),
    );
    // After that: the rest of P2 sold and delivered to the buyer, and C
    // sold to it too. None of it is behind C.
    let mut later = Vec::new();
    later.push(append(
        &mut f,
        &mut smelter,
        EventBody::Sell(Sale {
            lot: lot("P2"),
            buyer: common::pid("buyer"),
            documents: vec![],
        }),
    ));
    let (dispatch, _) = deliver("buyer", "P2");
    later.push(append(&mut f, &mut smelter, dispatch));
    later.push(append(
        &mut f,
        &mut buyer,
        EventBody::Receive(LotReceipt {
            lot: lot("P2"),
            measured_wet: Grams(3_000_000),
            accepted: true,
            note: String::new(),
            documents: vec![],
        }),
    ));
    let sale_of_c = append(
        &mut f,
        &mut smelter,
        EventBody::Sell(Sale {
            lot: lot("C"),
            buyer: common::pid("buyer"),
            documents: vec![],
        }),
    );

    let snapshot = LogSnapshot::open(&f.log_path()).unwrap();
    let built = passport::export(&snapshot, &lot("C"), false).unwrap();
    let bytes = built.to_bytes().unwrap();
    let report = passport::verify(&bytes, VerifyOptions::default()).unwrap();
    let links: Vec<(&str, &str, u32, u64)> = report
        .graph
        .links
        .iter()
        .map(|l| {
            (
                l.child.as_str(),
                l.parent.as_str(),
                l.share.get(),
                l.grams.0,
            )
        })
        .collect();
    assert_eq!(
        links,
        vec![
            ("C", "P1", 400_000_000, 400_000),
            ("C", "P2", 600_000_000, 600_000),
            ("P1", "L1", 1_000_000_000, 800_000),
            ("P2", "L1", 1_000_000_000, 1_200_000),
        ]
    );
    let lots: Vec<&str> = report.graph.lots.iter().map(|l| l.lot.as_str()).collect();
    assert_eq!(lots, ["C", "P1", "P2", "L1"]);
    assert_eq!(report.mines().len(), 1);
    assert_eq!(report.mines()[0].share, Ppb::ONE);
    // The catalog and the state agree.
    let catalog = Catalog::build(f.ledger()).unwrap();
    let tables = catalog.snapshot().unwrap();
    let upstream_of_c = tables.upstream(&lot("C")).unwrap();
    let edges: Vec<(&str, &str, u32, u64)> = upstream_of_c
        .edges
        .iter()
        .map(|e| {
            (
                e.child.as_str(),
                e.parent.as_str(),
                e.share.get(),
                e.grams.0,
            )
        })
        .collect();
    assert_eq!(edges, links);
    for l in &report.graph.lots {
        let state = f.ledger().state().lot(&l.lot).unwrap().unwrap();
        assert_eq!(l.origin, state.origin);
    }
    let held: BTreeSet<u64> = built.entries().iter().map(|e| e.index).collect();
    assert!(
        held.contains(&partial),
        "the earlier partial take of P1 is needed"
    );
    for i in later.iter().chain([&sale_of_c, &sale_upstream, &unrelated]) {
        assert!(!held.contains(i), "entry {i} is not behind C");
    }
}
