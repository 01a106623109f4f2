//! The demo data set: built through the real append path, it verifies
//! offline, comes out byte for byte the same on every build, and every
//! cathode lot traces back, in whole shares, to the demo's own mines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use oretrail::codec;
use oretrail::demo::{self, DemoError, DemoOptions, DemoSummary};
use oretrail::ledger::{Ledger, Options, verify_log};
use oretrail::model::{Event, EventBody, LotId, LotKind, ParticipantKind, SiteScale, StateView};
use oretrail::rules::RuleCode;

fn build(dir: &Path) -> DemoSummary {
    demo::build(dir, DemoOptions::default()).expect("the demo builds")
}

/// What the log itself says was recorded, read entry by entry rather than
/// taken from the demo's own bookkeeping.
#[derive(Default)]
struct Census {
    /// Mine participant → country.
    mines: BTreeMap<String, String>,
    /// Site → operator.
    sites: BTreeMap<String, String>,
    artisanal_sites: BTreeSet<String>,
    cahra_sites: BTreeSet<String>,
    cathodes: Vec<LotId>,
    /// Participant → index of its first onboarding assessment, code
    /// acknowledgement and lot creation.
    onboarded: BTreeMap<String, u64>,
    acknowledged: BTreeMap<String, u64>,
    first_lot: BTreeMap<String, u64>,
    by_type: BTreeMap<&'static str, usize>,
}

fn census(ledger: &Ledger) -> Census {
    let mut c = Census::default();
    for index in 0..ledger.size() {
        let (entry, _) = ledger.entry(index).unwrap();
        let event: Event = codec::decode(&entry.signed.event).unwrap();
        *c.by_type.entry(event.body.type_name()).or_default() += 1;
        let signer = event.signer.to_string();
        match &event.body {
            EventBody::RegisterParticipant(r) if r.kinds.contains(&ParticipantKind::Mine) => {
                c.mines
                    .insert(r.participant.to_string(), r.country.to_string());
            }
            EventBody::RegisterSite(s) => {
                c.sites.insert(s.site.to_string(), s.operator.to_string());
                if s.scale == SiteScale::Artisanal {
                    c.artisanal_sites.insert(s.site.to_string());
                }
            }
            EventBody::DetermineCahra(f) if f.cahra => {
                c.cahra_sites.insert(f.site.to_string());
            }
            EventBody::Transform(t) => c.cathodes.extend(
                t.outputs
                    .iter()
                    .filter(|o| o.kind == LotKind::Cathode)
                    .map(|o| o.lot.clone()),
            ),
            EventBody::AssessOnboarding(o) if o.passed => {
                c.onboarded.entry(o.supplier.to_string()).or_insert(index);
            }
            EventBody::AcknowledgeCode(_) => {
                c.acknowledged.entry(signer).or_insert(index);
            }
            EventBody::CreateLot(_) => {
                c.first_lot.entry(signer).or_insert(index);
            }
            _ => {}
        }
    }
    c
}

#[test]
fn the_demo_ledger_verifies_and_every_cathode_traces_to_its_mines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let summary = build(&dir);

    let report = verify_log(&dir.join("log"), false).expect("the demo ledger verifies");
    assert_eq!(report.entries, summary.entries);
    assert_eq!(report.root, summary.root);
    assert!(
        (3_000..10_000).contains(&summary.entries),
        "{} entries",
        summary.entries
    );

    let ledger = Ledger::open(&dir, Options::default()).unwrap();
    assert_eq!(ledger.size(), summary.entries);
    let c = census(&ledger);
    let countries: BTreeSet<&String> = c.mines.values().collect();
    assert!(c.mines.len() >= 6, "mines: {:?}", c.mines);
    assert!(countries.len() >= 4, "countries: {countries:?}");
    assert_eq!(
        (summary.mines, summary.mine_countries.len()),
        (c.mines.len(), countries.len())
    );
    assert!(!c.artisanal_sites.is_empty(), "an artisanal site");
    assert!(
        !c.cahra_sites.is_empty(),
        "a site determined to be in a CAHRA"
    );

    // Every mine is onboarded and signs the code of conduct before it
    // creates its first lot.
    for (mine, first) in &c.first_lot {
        assert!(c.mines.contains_key(mine), "{mine} creates lots");
        assert!(c.onboarded.get(mine).is_some_and(|i| i < first), "{mine}");
        assert!(
            c.acknowledged.get(mine).is_some_and(|i| i < first),
            "{mine}"
        );
    }

    assert_eq!(c.cathodes.len(), summary.cathode_lots);
    assert!(c.cathodes.len() >= 100, "{} cathode lots", c.cathodes.len());
    let mut blended = 0;
    for id in &c.cathodes {
        let lot = ledger
            .state()
            .lot(id)
            .unwrap()
            .expect("cathode lot in state");
        assert_eq!(lot.kind, LotKind::Cathode);
        assert!(lot.origin.is_whole(), "{id}: {:?}", lot.origin);
        let mut mines = BTreeSet::new();
        for share in lot.origin.shares() {
            let operator = c
                .sites
                .get(share.site.as_str())
                .unwrap_or_else(|| panic!("{id} traces to unknown site {}", share.site));
            assert!(c.mines.contains_key(operator), "{id}: {operator}");
            mines.insert(operator);
        }
        if mines.len() > 1 {
            blended += 1;
        }
    }
    assert!(blended > 0, "some cathode comes from more than one mine");

    // The blacklisted supplier's later delivery was refused, and only
    // that refusal was expected.
    assert!(!summary.expected_refusals.is_empty());
    for refusal in &summary.expected_refusals {
        assert!(
            refusal.contains(RuleCode::SupplierSanctioned.as_str()),
            "{refusal}"
        );
    }
    assert_eq!(c.by_type.get("sanction_supplier"), Some(&1));
    println!("{} entries by type: {:#?}", summary.entries, c.by_type);
}

#[test]
fn two_builds_write_the_same_log_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (first, second) = (build(&a), build(&b));
    assert_eq!(first, second);
    let (log_a, log_b) = (
        std::fs::read(a.join("log")).unwrap(),
        std::fs::read(b.join("log")).unwrap(),
    );
    assert!(log_a == log_b, "the two logs differ");
    for key in ["log.key", "operator.key", "demo/smelter.pohjanmeri.key"] {
        assert_eq!(
            std::fs::read(a.join("keys").join(key)).unwrap(),
            std::fs::read(b.join("keys").join(key)).unwrap(),
            "{key}"
        );
    }
}

#[test]
fn a_folder_that_is_not_empty_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
    match demo::build(tmp.path(), DemoOptions::default()) {
        Err(DemoError::NotEmpty(_)) => {}
        other => panic!("expected NotEmpty, got {other:?}"),
    }
    std::fs::write(tmp.path().join("log"), b"a ledger's log").unwrap();
    match demo::build(tmp.path(), DemoOptions::default()) {
        Err(DemoError::LedgerExists(_)) => {}
        other => panic!("expected LedgerExists, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(tmp.path().join("log")).unwrap(),
        b"a ledger's log"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
}
