//! Audit reports (`audit::report`): receipt summary, mass balance, origin
//! breakdown and red-flag register.
//!
//! On the small ledger of `fixture.rs` every figure is checked against a
//! value worked out by hand (the arithmetic is in the comment beside it,
//! with the rounding rules of `model::quantity`: dry = wet − floor(wet ×
//! moisture), contained = floor(dry × grade), shares by largest
//! remainder): a mass balance that closes, one that does not (an assay
//! revision of metal already held), one with a refused delivery going back
//! to its mine, and periods with material in transit across their end. On
//! the demo ledger every report, for the whole ledger, the smelter and its
//! organisation, is produced from one replay and is internally consistent
//! (the balance identity, month-to-month openings and closings, origin
//! shares adding up, receipts agreeing with the origin breakdown). CSV
//! output has its header row and one row per line item; the CLI refuses
//! unknown participants and empty periods.

use std::collections::BTreeMap;
use std::process::Command;

use oretrail::audit::AuditError;
use oretrail::audit::LogSnapshot;
use oretrail::audit::report::flags::{FlagStatus, FlagsReport, FlagsRequest};
use oretrail::audit::report::mass_balance::{
    MassBalanceReport, MassBalanceRequest, MovementKind, Recovery,
};
use oretrail::audit::report::origin::{Basis, Category, OriginReport, OriginRequest};
use oretrail::audit::report::receipts::{
    DocumentSource, ReceiptRow, ReceiptsReport, ReceiptsRequest,
};
use oretrail::audit::report::{self, Params, Period, Report, Request, Row, Scope, compute_one};
use oretrail::model::{DocumentKind, Element, FlagKind, Grams, SiteScale, Timestamp};

use crate::common::pid;
use crate::fixture::{day, digest, lot, report_ledger, site};

const BILLION: u64 = 1_000_000_000;

fn generated() -> Timestamp {
    Timestamp::parse("2026-06-30T12:00:00Z").unwrap()
}

fn snapshot() -> LogSnapshot {
    LogSnapshot::open(&report_ledger().log).unwrap()
}

fn smelter() -> Option<Scope> {
    Some(Scope::Site(pid("smelter")))
}

fn params(scope: Option<Scope>, from: Option<Timestamp>, until: Option<Timestamp>) -> Params {
    Params {
        scope,
        period: Period::new(from, until).unwrap(),
    }
}

/// January 2026.
fn january(scope: Option<Scope>) -> Params {
    params(scope, Some(day(0, 0)), Some(day(31, 0)))
}

/// February 2026.
fn february(scope: Option<Scope>) -> Params {
    params(scope, Some(day(31, 0)), Some(day(59, 0)))
}

fn one<R: Report>(request: &dyn Request) -> R {
    compute_one::<R>(&snapshot(), request, generated()).unwrap()
}

#[test]
fn every_receipt_is_listed_with_supplier_origin_masses_assays_and_documents() {
    let ledger = report_ledger();
    let e = &ledger.entries;
    let r: ReceiptsReport = one(&ReceiptsRequest(january(smelter())));
    let lots: Vec<&str> = r.receipts.iter().map(|l| l.lot.as_str()).collect();
    assert_eq!(
        lots,
        ["N1", "A1", "S1"],
        "the buyer's receipt is not the smelter's"
    );
    let [n1, a1, s1] = &r.receipts[..] else {
        unreachable!()
    };

    // N1: 100 t wet, 10 % moisture: dry = 100,000,000 − 10,000,000 =
    // 90,000,000 g; Cu 25 %: 22,500,000 g; Ag 50 g/t (50,000 ppb):
    // floor(90,000,000 × 50,000 / 10^9) = 4,500 g.
    assert_eq!(n1.entry, e.n1_receipt);
    assert_eq!(n1.supplier, pid("mine.north"));
    assert_eq!(n1.owner, pid("mine.north"));
    assert!(n1.accepted);
    assert_eq!(
        (n1.dispatched_wet, n1.measured_wet),
        (Grams(100_000_000), Grams(100_000_000))
    );
    assert_eq!(n1.dry, Grams(90_000_000));
    assert_eq!(n1.contained_of(Element::Cu), Grams(22_500_000));
    assert_eq!(n1.contained_of(Element::Ag), Grams(4_500));
    assert_eq!(
        n1.assays
            .iter()
            .map(|a| (a.element, a.grade.get()))
            .collect::<Vec<_>>(),
        [(Element::Cu, 250_000_000), (Element::Ag, 50_000)]
    );
    assert_eq!(n1.origins.len(), 1);
    assert_eq!(n1.origins[0].site, site("NOR"));
    assert_eq!(n1.origins[0].country.as_ref().unwrap().as_str(), "ZM");
    assert_eq!(n1.origins[0].share_ppb.get(), 1_000_000_000);
    assert!(!n1.origins[0].cahra);
    // Documents in the order the log recorded them: the mine's attached
    // assay certificate, the dispatch's bill of lading, the receipt's
    // weight certificate.
    let docs: Vec<(DocumentSource, DocumentKind, _)> = n1
        .documents
        .iter()
        .map(|d| (d.source, d.kind, d.sha256))
        .collect();
    assert_eq!(
        docs,
        [
            (
                DocumentSource::Attachment,
                DocumentKind::AssayCertificate,
                digest("N1 mine assay")
            ),
            (
                DocumentSource::Dispatch,
                DocumentKind::BillOfLading,
                digest("N1 bill of lading")
            ),
            (
                DocumentSource::Receipt,
                DocumentKind::WeightCertificate,
                digest("N1 smelter weight")
            ),
        ]
    );
    assert!(n1.flags.is_empty());

    // A1: 10 t wet, 5 %: dry 9,500,000 g; Cu 20 %: 1,900,000 g; from the
    // artisanal site ART in Congo, a CAHRA: two flags raised.
    assert_eq!(a1.supplier, pid("mine.coop"));
    assert_eq!(a1.dry, Grams(9_500_000));
    assert_eq!(a1.contained_of(Element::Cu), Grams(1_900_000));
    assert_eq!(a1.origins[0].country.as_ref().unwrap().as_str(), "CD");
    assert_eq!(a1.origins[0].scale, Some(SiteScale::Artisanal));
    assert!(a1.origins[0].cahra);
    assert_eq!(a1.flags, [ledger.cahra_flag(), ledger.artisanal_flag()]);

    // S1: 5 t of dry scrap, weighed 4.99 t at receipt: dry and metal scale
    // with the weight: dry = floor(5,000,000 × 4,990,000 / 5,000,000) =
    // 4,990,000 g; Cu = floor(4,500,000 × 4,990,000 / 5,000,000) =
    // 4,491,000 g (90 % of 5,000,000 is 4,500,000 as dispatched).
    assert_eq!(s1.kind, oretrail::model::LotKind::Scrap);
    assert_eq!(
        (s1.dispatched_wet, s1.measured_wet),
        (Grams(5_000_000), Grams(4_990_000))
    );
    assert_eq!(s1.dry, Grams(4_990_000));
    assert_eq!(s1.contained_of(Element::Cu), Grams(4_491_000));

    // Totals: wet 100,000,000 + 10,000,000 + 4,990,000 = 114,990,000;
    // dry 90,000,000 + 9,500,000 + 4,990,000 = 104,490,000;
    // Cu 22,500,000 + 1,900,000 + 4,491,000 = 28,891,000; Ag 4,500.
    assert_eq!((r.totals.accepted, r.totals.refused), (3, 0));
    assert_eq!(r.totals.measured_wet, 114_990_000);
    assert_eq!(r.totals.dry, 104_490_000);
    assert_eq!(r.totals.contained.get(Element::Cu), 28_891_000);
    assert_eq!(r.totals.contained.get(Element::Ag), 4_500);

    // The header ties the report to the ledger and names its parameters.
    assert_eq!(r.header.report, "receipts");
    assert_eq!(r.header.scope, smelter());
    assert_eq!(r.header.period.from(), Some(day(0, 0)));
    assert_eq!(r.header.ledger.tree_size, snapshot().entries());
    assert_eq!(
        r.header.ledger.root,
        hex::encode(snapshot().latest().root.as_bytes())
    );
    assert!(r.header.ledger.checkpoint.starts_with(&format!(
        "{}\n{}\n",
        crate::common::ORIGIN,
        snapshot().entries()
    )));
    assert!(r.header.ledger.log_key.contains(&r.header.ledger.key_id));
    assert_eq!(r.header.generated_at, generated());
}

#[test]
fn refused_receipts_are_marked_and_left_out_of_the_totals() {
    let e = &report_ledger().entries;
    let whole: ReceiptsReport = one(&ReceiptsRequest(params(smelter(), None, None)));
    let lots: Vec<&str> = whole.receipts.iter().map(|l| l.lot.as_str()).collect();
    assert_eq!(lots, ["N1", "A1", "S1", "N2", "R1", "N3"]);
    let r1 = &whole.receipts[4];
    assert_eq!(r1.entry, e.r1_refusal);
    assert!(!r1.accepted);
    assert_eq!(r1.note, "moisture above the contract limit");
    // R1 as dispatched: 20 t, 10 %: dry 18,000,000 g, Cu 25 %: 4,500,000 g.
    assert_eq!(r1.dry, Grams(18_000_000));
    assert_eq!(r1.contained_of(Element::Cu), Grams(4_500_000));
    // N2 as received, on its provisional 24 %: floor(45,000,000 × 0.24) =
    // 10,800,000 g (the final assay comes later and is not a receipt).
    assert_eq!(
        whole.receipts[3].contained_of(Element::Cu),
        Grams(10_800_000)
    );
    // Accepted Cu: 28,891,000 (January) + 10,800,000 (N2) + 9,000,000
    // (N3: 36,000,000 g dry × 25 %) = 48,691,000; R1 is not counted.
    assert_eq!((whole.totals.accepted, whole.totals.refused), (5, 1));
    assert_eq!(whole.totals.contained.get(Element::Cu), 48_691_000);
    assert!(
        whole
            .findings()
            .iter()
            .any(|f| f.contains("refused") && f.ends_with(": 1"))
    );
    // The organisation's view: the officer holds nothing, so the same
    // receipts.
    let org: ReceiptsReport = one(&ReceiptsRequest(params(
        Some(Scope::Organisation(pid("smelter"))),
        None,
        None,
    )));
    assert_eq!(org.receipts, whole.receipts);
    // February alone: N2 and R1; N3 is still on its way on March 1.
    let feb: ReceiptsReport = one(&ReceiptsRequest(february(smelter())));
    let lots: Vec<&str> = feb.receipts.iter().map(|l| l.lot.as_str()).collect();
    assert_eq!(lots, ["N2", "R1"]);
}

#[test]
fn a_mass_balance_that_counts_every_movement_closes() {
    let b: MassBalanceReport = one(&MassBalanceRequest(january(smelter())));
    // Only copper is a payable metal here; the silver in N1 is reported
    // in the transformation, not as a balance of its own.
    assert_eq!(b.balances.len(), 1);
    let cu = b.balance(Element::Cu).unwrap();
    // Opening: nothing held on January 1.
    // Receipts: 22,500,000 + 1,900,000 + 4,491,000 = 28,891,000.
    // Outputs: ANODE1 dispatched: 29,000,000 g dry × 99 % = 28,710,000.
    // Losses: smelting consumed all of B1 (22,500,000 + 1,900,000 =
    // 24,400,000, a blend adds up exactly) and S1 (4,491,000): 28,891,000;
    // the anode holds 28,710,000: 28,891,000 − 28,710,000 = 181,000.
    // Closing: nothing held (ANODE1 left on January 25).
    // Computed: 0 + 28,891,000 − 28,710,000 − 181,000 = 0 = closing.
    assert_eq!(cu.opening, 0);
    assert_eq!(cu.receipts, 28_891_000);
    assert_eq!(cu.produced, 0);
    assert_eq!(cu.outputs, 28_710_000);
    assert_eq!(cu.losses, 181_000);
    assert_eq!(cu.computed_closing, 0);
    assert_eq!(cu.closing, 0);
    assert_eq!(cu.variance, 0);
    assert_eq!(cu.revisions, 0);
    assert!(b.findings().is_empty(), "{:?}", b.findings());
    // Recovery: floor(28,710,000 × 10^9 / 28,891,000) = 993,735,073 ppb
    // (28,710,000 / 28,891,000 = 0.99373507320...). Silver: 4,500 g in,
    // none assayed in the anode.
    let [t] = &b.transformations[..] else {
        panic!("one transformation: {:?}", b.transformations)
    };
    assert_eq!(t.entry, report_ledger().entries.transform);
    assert_eq!(t.process, "smelting");
    assert_eq!(t.inputs, [lot("B1"), lot("S1")]);
    assert_eq!(t.outputs, [lot("ANODE1")]);
    assert_eq!(
        t.recoveries,
        [
            Recovery {
                element: Element::Cu,
                consumed: 28_891_000,
                produced: 28_710_000,
                loss: 181_000,
                recovery_ppb: Some(993_735_073),
            },
            Recovery {
                element: Element::Ag,
                consumed: 4_500,
                produced: 0,
                loss: 4_500,
                recovery_ppb: Some(0),
            },
        ]
    );
    let kinds: Vec<(MovementKind, &str)> = b
        .movements
        .iter()
        .map(|m| (m.kind, m.lot.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (MovementKind::Receipt, "N1"),
            (MovementKind::Receipt, "A1"),
            (MovementKind::Receipt, "S1"),
            (MovementKind::Dispatch, "ANODE1"),
        ]
    );
    assert_eq!(b.movements[3].counterparty, Some(pid("buyer")));
}

#[test]
fn an_assay_revision_of_metal_held_is_the_variance_of_a_balance_that_does_not_close() {
    let e = &report_ledger().entries;
    let b: MassBalanceReport = one(&MassBalanceRequest(february(smelter())));
    let cu = b.balance(Element::Cu).unwrap();
    // Opening: nothing held on February 1 (ANODE1 left in January).
    // Receipts: N2 on its provisional assay: 45,000,000 g dry × 24 % =
    // 10,800,000. R1 was refused: it never entered the smelter's custody.
    // N3 is in transit on March 1: neither a receipt nor held.
    // Closing: N2 on its final assay: 45,000,000 × 25 % = 11,250,000.
    // Computed: 0 + 10,800,000 − 0 − 0 = 10,800,000; variance =
    // 10,800,000 − 11,250,000 = −450,000, which is exactly the final
    // assay's revision of N2: 11,250,000 − 10,800,000 = +450,000.
    assert_eq!(cu.opening, 0);
    assert_eq!(cu.receipts, 10_800_000);
    assert_eq!((cu.outputs, cu.losses), (0, 0));
    assert_eq!(cu.computed_closing, 10_800_000);
    assert_eq!(cu.closing, 11_250_000);
    assert_eq!(cu.variance, -450_000);
    assert_eq!(cu.revisions, 450_000);
    assert_eq!(cu.unexplained, 0);
    let [rev] = &b.revisions[..] else {
        panic!("one revision: {:?}", b.revisions)
    };
    assert_eq!(rev.entry, e.n2_final_assay);
    assert_eq!(rev.lot, lot("N2"));
    assert_eq!(
        (rev.before, rev.after, rev.change),
        (10_800_000, 11_250_000, 450_000)
    );
    assert!(b.findings().iter().any(|f| f.contains("-450000 g")));

    // From March 1: the opening is February's closing, and N3 arrives:
    // 36,000,000 g dry × 25 % = 9,000,000; closing 11,250,000 + 9,000,000
    // = 20,250,000; it closes.
    let march: MassBalanceReport = one(&MassBalanceRequest(params(
        smelter(),
        Some(day(59, 0)),
        None,
    )));
    let cu = march.balance(Element::Cu).unwrap();
    assert_eq!(cu.opening, 11_250_000);
    assert_eq!(cu.receipts, 9_000_000);
    assert_eq!(cu.closing, 20_250_000);
    assert_eq!(cu.variance, 0);
}

#[test]
fn a_mines_balance_counts_its_production_its_dispatches_and_a_refused_lot_coming_back() {
    let b: MassBalanceReport = one(&MassBalanceRequest(params(
        Some(Scope::Site(pid("mine.north"))),
        Some(day(0, 0)),
        Some(day(59, 0)),
    )));
    let cu = b.balance(Element::Cu).unwrap();
    // Produced at NOR: N1 22,500,000 + N2 10,800,000 + R1 4,500,000 +
    // N3 9,000,000 = 46,800,000. Outputs: all four dispatched, the same
    // 46,800,000. Receipts: R1 refused by the smelter, back with the mine:
    // 4,500,000. Closing: R1 held: 4,500,000.
    // Computed: 0 + 4,500,000 + 46,800,000 − 46,800,000 − 0 = 4,500,000.
    assert_eq!(cu.produced, 46_800_000);
    assert_eq!(cu.outputs, 46_800_000);
    assert_eq!(cu.receipts, 4_500_000);
    assert_eq!(cu.closing, 4_500_000);
    assert_eq!(cu.variance, 0);
    let returns: Vec<&str> = b
        .movements
        .iter()
        .filter(|m| m.kind == MovementKind::Return)
        .map(|m| m.lot.as_str())
        .collect();
    assert_eq!(returns, ["R1"]);
}

#[test]
fn the_origin_breakdown_splits_metal_by_country_category_and_cahra_exactly() {
    let o: OriginReport = one(&OriginRequest(january(smelter())));
    let received = o.group(Basis::Received, Element::Cu).unwrap();
    // 28,891,000 g received: CD 1,900,000 (artisanal, CAHRA), DE 4,491,000
    // (recycled), ZM 22,500,000 (large-scale). Shares of 10^9:
    // CD 1,900,000 / 28,891,000 = 65,764,424.907...
    // DE 4,491,000 / 28,891,000 = 155,446,332.768...
    // ZM 22,500,000 / 28,891,000 = 778,789,242.325...
    // Floors add up to 999,999,998: the two largest remainders (CD .907,
    // DE .768) get one more each.
    assert_eq!(received.total, 28_891_000);
    assert_eq!(received.lots, 3);
    let lines: Vec<(&str, Category, bool, u128, u64)> = received
        .countries
        .iter()
        .map(|c| {
            (
                c.country.as_ref().unwrap().as_str(),
                c.category,
                c.cahra,
                c.grams,
                c.share_ppb,
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("CD", Category::Artisanal, true, 1_900_000, 65_764_425),
            ("DE", Category::Recycled, false, 4_491_000, 155_446_333),
            (
                "ZM",
                Category::LargeScaleMined,
                false,
                22_500_000,
                778_789_242
            ),
        ]
    );
    assert_eq!(received.category(Category::LargeScaleMined), 22_500_000);
    assert_eq!(received.category(Category::Artisanal), 1_900_000);
    assert_eq!(received.category(Category::Recycled), 4_491_000);
    let cahra: BTreeMap<bool, u128> = received.cahra.iter().map(|s| (s.key, s.grams)).collect();
    assert_eq!(
        cahra,
        BTreeMap::from([(false, 26_991_000), (true, 1_900_000)])
    );

    // Dispatched: ANODE1's 28,710,000 g by the origin its metal carries.
    // B1 = N1 + A1 by Cu: ART 1,900,000 / 24,400,000 → 77,868,852 ppb,
    // NOR 922,131,148 (largest remainder). ANODE1 = B1's 24,400,000 g +
    // S1's 4,491,000 g: ART 77,868,852 × 24,400,000 : NOR 922,131,148 ×
    // 24,400,000 : SCR 10^9 × 4,491,000 → 65,764,424 : 778,789,243 :
    // 155,446,333 ppb. 28,710,000 g apportioned by those: ART
    // 1,888,096.61 → 1,888,097; NOR 22,359,039.17 → 22,359,039; SCR
    // 4,462,864.22 → 4,462,864 (sum 28,710,000).
    let shipped = o.group(Basis::Dispatched, Element::Cu).unwrap();
    assert_eq!(shipped.total, 28_710_000);
    let sites: Vec<(&str, u128)> = shipped
        .sites
        .iter()
        .map(|s| (s.site.as_str(), s.grams))
        .collect();
    assert_eq!(
        sites,
        [("ART", 1_888_097), ("NOR", 22_359_039), ("SCR", 4_462_864)]
    );
    assert_eq!(
        shipped.countries.iter().map(|c| c.share_ppb).sum::<u64>(),
        BILLION
    );
    assert!(o.group(Basis::Produced, Element::Cu).is_none());
    assert!(
        o.findings()
            .iter()
            .any(|f| f.starts_with("1900000 g of Cu received"))
    );

    // A mine's production: N2 10,800,000 + R1 4,500,000 + N3 9,000,000
    // in February, all from NOR in Zambia.
    let mine: OriginReport = one(&OriginRequest(february(Some(Scope::Site(pid(
        "mine.north",
    ))))));
    let produced = mine.group(Basis::Produced, Element::Cu).unwrap();
    assert_eq!(produced.total, 24_300_000);
    assert_eq!(produced.countries.len(), 1);
    assert_eq!(produced.countries[0].share_ppb, BILLION);
    assert!(mine.group(Basis::Received, Element::Cu).is_none());
}

#[test]
fn the_flag_register_has_decisions_with_dates_and_the_open_items() {
    let ledger = report_ledger();
    let whole: FlagsReport = one(&FlagsRequest(params(
        Some(Scope::Organisation(pid("smelter"))),
        None,
        None,
    )));
    assert_eq!(whole.flags.len(), 2);
    let cahra = whole.flag(ledger.cahra_flag()).unwrap();
    assert_eq!(cahra.kind, FlagKind::CahraOrigin);
    assert_eq!(cahra.lot, Some(lot("A1")));
    assert_eq!(cahra.site, Some(site("ART")));
    assert_eq!(cahra.raised_by, pid("smelter"));
    assert_eq!(cahra.raised_in, ledger.entries.a1_receipt);
    assert_eq!(cahra.status, FlagStatus::Mitigate);
    let [d] = &cahra.decisions[..] else {
        panic!("one decision")
    };
    assert_eq!(d.entry, ledger.entries.decision);
    assert_eq!(d.by, pid("officer"));
    assert_eq!(d.note, "enhanced due diligence");
    // Recorded on January 12, 08:00, plus the builder's second per event.
    assert_eq!(d.at.as_millis(), day(11, 8).as_millis() + 1000);
    let artisanal = whole.flag(ledger.artisanal_flag()).unwrap();
    assert_eq!(artisanal.kind, FlagKind::ArtisanalOrigin);
    assert_eq!(artisanal.status, FlagStatus::Open);
    assert_eq!(
        whole.by_status,
        BTreeMap::from([(FlagStatus::Open, 1), (FlagStatus::Mitigate, 1)])
    );
    assert_eq!(
        whole.open().map(|f| f.id).collect::<Vec<_>>(),
        [ledger.artisanal_flag()]
    );
    assert!(whole.findings()[0].contains(&format!("{}/1", ledger.entries.a1_receipt)));

    // Before the decision (the register as at January 11): both open.
    let early: FlagsReport = one(&FlagsRequest(params(
        Some(Scope::Organisation(pid("smelter"))),
        None,
        Some(day(10, 0)),
    )));
    assert_eq!(early.by_status, BTreeMap::from([(FlagStatus::Open, 2)]));
    assert!(early.flags.iter().all(|f| f.decisions.is_empty()));
    // February: nothing raised, the open artisanal flag carried over.
    let feb: FlagsReport = one(&FlagsRequest(february(Some(Scope::Organisation(pid(
        "smelter",
    ))))));
    assert_eq!(
        feb.flags
            .iter()
            .map(|f| (f.id, f.carried_over))
            .collect::<Vec<_>>(),
        [(ledger.artisanal_flag(), true)]
    );
    // The smelter's own receipt raised both; the mines raised none, and
    // the flags are in the smelter's register, not the coop's.
    let site: FlagsReport = one(&FlagsRequest(params(smelter(), None, None)));
    assert_eq!(site.flags, whole.flags);
    for scope in [
        Scope::Site(pid("mine.north")),
        Scope::Organisation(pid("mine.coop")),
    ] {
        let none: FlagsReport = one(&FlagsRequest(params(Some(scope), None, None)));
        assert!(none.flags.is_empty());
    }
}

/// The CSV of `report`: (header, rows).
fn csv_of(report: &dyn report::Rendered) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut bytes = Vec::new();
    report.write_csv(&mut bytes).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader.records().collect::<Result<Vec<_>, _>>().unwrap();
    (header, rows)
}

fn cell<'a>(header: &[String], row: &'a csv::StringRecord, name: &str) -> &'a str {
    let i = header.iter().position(|h| h == name).unwrap();
    &row[i]
}

#[test]
fn csv_has_a_header_row_and_one_row_per_line_item_with_exact_integers() {
    let whole = params(smelter(), None, None);
    let requests: [&dyn Request; 4] = [
        &ReceiptsRequest(whole.clone()),
        &MassBalanceRequest(january(smelter())),
        &OriginRequest(january(smelter())),
        &FlagsRequest(whole),
    ];
    let reports = report::compute(&snapshot(), &requests, generated(), false).unwrap();

    let (header, rows) = csv_of(reports[0].as_ref());
    assert_eq!(header, ReceiptRow::COLUMNS);
    assert_eq!(rows.len(), 6);
    let s1 = &rows[2];
    assert_eq!(cell(&header, s1, "lot"), "S1");
    assert_eq!(cell(&header, s1, "measured_wet_g"), "4990000");
    assert_eq!(cell(&header, s1, "payable_contained_g"), "4491000");
    assert_eq!(cell(&header, s1, "origin_sites"), "SCR=1000000000");
    assert_eq!(cell(&header, &rows[4], "status"), "refused");
    assert_eq!(cell(&header, &rows[1], "cahra_sites"), "ART");
    assert_eq!(
        cell(&header, &rows[1], "flags"),
        format!("{0}/0;{0}/1", report_ledger().entries.a1_receipt)
    );
    assert_eq!(
        cell(&header, &rows[0], "contained_g"),
        "Cu=22500000;Ag=4500"
    );

    let (header, rows) = csv_of(reports[1].as_ref());
    assert_eq!(rows.len(), 1);
    assert_eq!(cell(&header, &rows[0], "metal"), "Cu");
    assert_eq!(cell(&header, &rows[0], "losses_g"), "181000");
    assert_eq!(cell(&header, &rows[0], "variance_g"), "0");
    assert_eq!(cell(&header, &rows[0], "recovery_ppb"), "993735073");

    let (header, rows) = csv_of(reports[2].as_ref());
    // Received: three countries; dispatched: the same three.
    assert_eq!(rows.len(), 6);
    assert_eq!(cell(&header, &rows[0], "basis"), "received");
    assert_eq!(cell(&header, &rows[0], "share_ppb"), "65764425");

    let (header, rows) = csv_of(reports[3].as_ref());
    assert_eq!(rows.len(), 2);
    assert_eq!(cell(&header, &rows[0], "status"), "mitigate");
    assert_eq!(
        cell(&header, &rows[0], "mitigation_plan"),
        "third-party site assessment"
    );
    assert_eq!(cell(&header, &rows[1], "status"), "open");

    // No line items: still the header row.
    let empty = report::compute(
        &snapshot(),
        &[&ReceiptsRequest(params(
            Some(Scope::Site(pid("mine.north"))),
            None,
            None,
        ))],
        generated(),
        false,
    )
    .unwrap();
    let (header, rows) = csv_of(empty[0].as_ref());
    assert_eq!(header, ReceiptRow::COLUMNS);
    assert!(rows.is_empty());

    // JSON holds no floating point number anywhere.
    for r in &reports {
        let mut bytes = Vec::new();
        r.write_json(&mut bytes).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_no_floats(&value);
    }
}

fn assert_no_floats(value: &serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => assert!(n.is_i64() || n.is_u64(), "{n}"),
        serde_json::Value::Array(items) => items.iter().for_each(assert_no_floats),
        serde_json::Value::Object(map) => map.values().for_each(assert_no_floats),
        _ => {}
    }
}

#[test]
fn unknown_participants_and_empty_periods_are_refused() {
    let unknown = report::compute(
        &snapshot(),
        &[&ReceiptsRequest(params(
            Some(Scope::Site(pid("nobody"))),
            None,
            None,
        ))],
        generated(),
        false,
    );
    match unknown {
        Err(AuditError::Filter(m)) => assert!(m.contains("nobody is not registered"), "{m}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("an unknown participant was accepted"),
    }
    assert!(Period::new(Some(day(5, 0)), Some(day(5, 0))).is_err());
    assert!(Period::new(Some(day(6, 0)), Some(day(5, 0))).is_err());

    // The CLI: exit 2 with the reason; a report written exits 0 and says
    // what to look at on stderr.
    let data = &report_ledger().data;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_oretrail"))
            .args(["audit", "report"])
            .args(args)
            .arg("--data")
            .arg(data)
            .output()
            .unwrap()
    };
    let out = run(&["flags", "--org", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody is not registered"));
    let out = run(&[
        "mass-balance",
        "--from",
        "2026-02-01T00:00:00Z",
        "--until",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the period is empty"));
    let out = run(&["flags", "--site", "smelter", "--org", "smelter"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--site and --org exclude each other"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("balance.csv");
    let out = run(&[
        "mass-balance",
        "--site",
        "smelter",
        "--from",
        "2026-02-01T00:00:00Z",
        "--until",
        "2026-03-01T00:00:00Z",
        "--format",
        "csv",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().nth(1).unwrap().contains(",-450000,"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: the Cu balance does not close"),
        "{stderr}"
    );
    let out = run(&["receipts", "--site", "smelter"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["receipts"].as_array().unwrap().len(), 6);
    assert_eq!(json["header"]["scope"]["site"], "smelter");
}

/// Every report of the demo ledger, for the whole ledger, the smelter and
/// its organisation, and the smelter's balance month by month, from one
/// replay.
#[test]
fn every_report_of_the_demo_is_produced_and_consistent() {
    let snapshot = LogSnapshot::open(&crate::demo_data().join("log")).unwrap();
    let smelter = pid("smelter.pohjanmeri");
    let scopes = [
        None,
        Some(Scope::Site(smelter.clone())),
        Some(Scope::Organisation(smelter.clone())),
    ];
    let mut requests: Vec<Box<dyn Request>> = Vec::new();
    for scope in &scopes {
        let p = params(scope.clone(), None, None);
        requests.push(Box::new(ReceiptsRequest(p.clone())));
        requests.push(Box::new(MassBalanceRequest(p.clone())));
        requests.push(Box::new(OriginRequest(p.clone())));
        requests.push(Box::new(FlagsRequest(p)));
    }
    // Twelve months of 2026 and what follows, for the smelter.
    let month_starts: Vec<Timestamp> = (0..12)
        .map(|m| Timestamp::parse(&format!("2026-{:02}-01T00:00:00Z", m + 1)).unwrap())
        .chain([Timestamp::parse("2027-01-01T00:00:00Z").unwrap()])
        .collect();
    for w in month_starts.windows(2) {
        requests.push(Box::new(MassBalanceRequest(params(
            Some(Scope::Site(smelter.clone())),
            Some(w[0]),
            Some(w[1]),
        ))));
    }
    let asked: Vec<&dyn Request> = requests.iter().map(|r| r.as_ref()).collect();
    let reports = report::compute(&snapshot, &asked, generated(), false).unwrap();
    assert_eq!(reports.len(), asked.len());
    let mut reports = reports.into_iter();
    let mut take = || reports.next().unwrap().into_any();

    let mut yearly_cu = None;
    for scope in &scopes {
        let receipts = *take().downcast::<ReceiptsReport>().unwrap();
        let balance = *take().downcast::<MassBalanceReport>().unwrap();
        let origin = *take().downcast::<OriginReport>().unwrap();
        let flags = *take().downcast::<FlagsReport>().unwrap();
        let what = format!("{scope:?}");
        for r in [
            &receipts as &dyn report::Rendered,
            &balance as &dyn report::Rendered,
            &origin as &dyn report::Rendered,
            &flags as &dyn report::Rendered,
        ] {
            assert_eq!(r.header().ledger.tree_size, snapshot.entries());
            assert_eq!(r.header().scope.as_ref(), scope.as_ref());
            let (_, rows) = csv_of(r);
            assert_eq!(rows.len(), r.row_count(), "{what}");
        }

        // Receipts: counts and totals agree with the lines.
        assert!(!receipts.receipts.is_empty(), "{what}");
        assert_eq!(
            receipts.totals.accepted + receipts.totals.refused,
            receipts.receipts.len() as u64
        );
        assert!(receipts.totals.refused > 0, "the demo refuses deliveries");
        if scope.is_some() {
            assert!(receipts.receipts.iter().all(|l| l.receiver == smelter));
        }

        // Mass balance: the identity, and nothing unexplained.
        assert!(!balance.balances.is_empty());
        for b in &balance.balances {
            let lhs = b.opening as i128 + b.receipts as i128 + b.produced as i128
                - b.outputs as i128
                - b.losses
                - b.closing as i128;
            assert_eq!(lhs, b.variance, "{what} {:?}", b.metal);
            assert_eq!(b.unexplained, 0, "{what} {:?}", b.metal);
            assert_eq!(b.variance, -b.revisions);
        }
        assert!(balance.other_changes.is_empty());
        if scope.is_some() {
            yearly_cu = balance.balance(Element::Cu).cloned();
            // The smelter smelts and refines: every transformation's
            // copper recovery is within the 0.5 % the rules allow above 1.
            assert!(!balance.transformations.is_empty());
            for t in &balance.transformations {
                for r in t.recoveries.iter().filter(|r| r.element == Element::Cu) {
                    assert!(r.recovery_ppb.unwrap() <= 1_005_000_000);
                }
            }
        }

        // Origin: every group adds up, and what was received agrees with
        // the receipt summary, lot by lot.
        for g in &origin.groups {
            let sum: u128 = g.countries.iter().map(|c| c.grams).sum();
            assert_eq!(sum, g.total, "{what}");
            let sites: u128 = g.sites.iter().map(|s| s.grams).sum();
            assert_eq!(sites, g.total);
            if g.total > 0 {
                assert_eq!(
                    g.countries.iter().map(|c| c.share_ppb).sum::<u64>(),
                    BILLION
                );
                assert_eq!(
                    g.categories.iter().map(|c| c.share_ppb).sum::<u64>(),
                    BILLION
                );
            }
            if g.basis == Basis::Received {
                let from_receipts: u128 = receipts
                    .receipts
                    .iter()
                    .filter(|l| l.accepted && l.metal == g.metal)
                    .map(|l| u128::from(l.contained_of(g.metal).0))
                    .sum();
                assert_eq!(from_receipts, g.total, "{what} {:?}", g.metal);
            }
        }
        let received = origin.group(Basis::Received, Element::Cu).unwrap();
        assert!(received.category(Category::Artisanal) > 0);
        assert!(received.cahra.iter().any(|s| s.key && s.grams > 0));

        // Flags: counts by status add up; decided ones have decisions.
        assert_eq!(
            flags.by_status.values().sum::<u64>(),
            flags.flags.len() as u64
        );
        assert!(!flags.flags.is_empty());
        for f in &flags.flags {
            assert_eq!(f.status == FlagStatus::Open, f.decisions.is_empty());
            assert!(!f.carried_over, "no period start: nothing carried over");
        }
    }

    // Month by month: each opening is the previous closing, and the
    // months add up to the whole (the demo records 2026 only).
    let months: Vec<MassBalanceReport> = (0..12)
        .map(|_| *take().downcast::<MassBalanceReport>().unwrap())
        .collect();
    let cu = |b: &MassBalanceReport| b.balance(Element::Cu).cloned();
    let mut previous_closing = 0u128;
    let (mut receipts, mut outputs, mut losses, mut variance) = (0u128, 0u128, 0i128, 0i128);
    for (m, month) in months.iter().enumerate() {
        let Some(b) = cu(month) else {
            assert_eq!(previous_closing, 0, "month {m}");
            continue;
        };
        assert_eq!(b.opening, previous_closing, "month {}", m + 1);
        previous_closing = b.closing;
        receipts += b.receipts;
        outputs += b.outputs;
        losses += b.losses;
        variance += b.variance;
    }
    let year = yearly_cu.expect("the smelter holds copper");
    assert_eq!(previous_closing, year.closing);
    assert_eq!(
        (receipts, outputs, losses, variance),
        (year.receipts, year.outputs, year.losses, year.variance)
    );
    assert!(
        months
            .iter()
            .all(|m| m.header.entries.first <= m.header.entries.end),
        "entry ranges"
    );
}

/// An auditor computes reports offline from an audit bundle: the same
/// report as from the data folder, and nothing from a tampered bundle.
#[test]
fn reports_are_computed_from_an_audit_bundle_as_from_the_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("demo.bundle");
    let data = crate::demo_data();
    oretrail::audit::bundle::export_file(&data.join("log"), &bundle, generated()).unwrap();
    let run = |source: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_oretrail"))
            .args([
                "audit",
                "report",
                "mass-balance",
                "--site",
                "smelter.pohjanmeri",
            ])
            .args(["--format", "csv"])
            .args(source)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, from_folder) = run(&["--data", data.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{from_folder}");
    assert!(from_folder.lines().count() > 1, "{from_folder}");
    let (code, from_bundle) = run(&["--bundle", bundle.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{from_bundle}");
    assert_eq!(from_bundle, from_folder);

    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&bundle, &bytes).unwrap();
    let (code, printed) = run(&["--bundle", bundle.to_str().unwrap()]);
    assert_ne!(
        code,
        Some(0),
        "a tampered bundle gives no report: {printed}"
    );
    assert!(!printed.contains("metal,"), "{printed}");
}
