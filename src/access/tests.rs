//! The policy over a hand-made state: who held what, and what each viewer
//! is then shown.

use std::collections::BTreeMap;

use super::*;
use crate::crypto::PublicKey;
use crate::model::{
    Affiliation, AssayReport, AssayStage, Blend, CountryCode, Dispatch, DocumentAttachment,
    DocumentKind, DocumentRef, FlagDecision, FlagDecisionKind, FlagKind, Grams, GrievanceOutcome,
    GrievanceReport, LedgerInfo, LotCreation, LotReceipt, LotStatus, MemoryState, Ppb, Sale,
    SiteId, StateKey, StateValue, SupplierReview, Timestamp,
};

fn pid(id: &str) -> ParticipantId {
    ParticipantId::new(id).unwrap()
}

fn lot_id(id: &str) -> LotId {
    LotId::new(id).unwrap()
}

fn participant(id: &str, kind: ParticipantKind, roles: &[Role]) -> StateValue {
    StateValue::Participant(Participant {
        id: pid(id),
        legal_name: format!("{id} Ltd"),
        country: CountryCode::new("ZM").unwrap(),
        kinds: vec![kind],
        roles: roles.to_vec(),
        registered_at: Timestamp::from_millis(1),
        registered_in: 1,
        keys: vec![],
    })
}

fn event(signer: &str, body: EventBody) -> Event {
    Event {
        ledger: "test".into(),
        signer: pid(signer),
        time: Timestamp::from_millis(1),
        nonce: 0,
        body,
    }
}

fn lot(id: &str, custodian: &str, owner: &str, history: Vec<u64>, flags: Vec<FlagId>) -> Lot {
    Lot {
        id: lot_id(id),
        kind: LotKind::Concentrate,
        metal: Element::Cu,
        custodian: pid(custodian),
        owner: pid(owner),
        status: LotStatus::Held,
        wet: Grams(1000),
        moisture: Ppb::new(0).unwrap(),
        dry: Grams(1000),
        assays: vec![],
        assay_stage: AssayStage::Provisional,
        contained: vec![],
        origin: Origin::single(SiteId::new("KAN").unwrap()),
        history,
        seller: None,
        documents: vec![],
        corrections: vec![],
        flags,
    }
}

fn doc() -> DocumentRef {
    DocumentRef {
        kind: DocumentKind::Other,
        sha256: crate::crypto::sha256(b"doc"),
    }
}

/// State and events: a mine makes K, sells it to a trader who sends it to
/// the smelter; the smelter blends K (and its own S) into B; B is sold to
/// buyer A. A lab assays K. The smelter's officer decides a flag raised on
/// K, which B inherits; buyer Z holds nothing.
struct World {
    state: MemoryState,
    events: BTreeMap<u64, Event>,
}

const FLAG: FlagId = FlagId { entry: 5, n: 0 };

impl World {
    fn new() -> Self {
        let mut state = MemoryState::new();
        state.put(StateValue::Ledger(LedgerInfo {
            origin: "test".into(),
            log_key: PublicKey::from_bytes([9; 32]),
            operator: pid("operator"),
            created_at: Timestamp::from_millis(1),
        }));
        for (id, kind, roles) in [
            ("operator", ParticipantKind::Operator, &[Role::Operator][..]),
            ("auditor", ParticipantKind::Auditor, &[Role::Auditor][..]),
            ("mine", ParticipantKind::Mine, &[Role::Producer][..]),
            ("trader", ParticipantKind::Trader, &[Role::Seller][..]),
            ("lab", ParticipantKind::AssayLab, &[Role::Assayer][..]),
            ("smelter", ParticipantKind::Smelter, &[Role::Processor][..]),
            ("officer", ParticipantKind::Smelter, &[Role::Compliance][..]),
            ("buyer-a", ParticipantKind::Buyer, &[Role::Purchaser][..]),
            ("buyer-z", ParticipantKind::Buyer, &[Role::Purchaser][..]),
            ("audit-clerk", ParticipantKind::Trader, &[][..]),
        ] {
            state.put(participant(id, kind, roles));
        }
        for (member, organisation) in [("officer", "smelter"), ("audit-clerk", "auditor")] {
            state.put(StateValue::Affiliation(Affiliation {
                member: pid(member),
                organisation: pid(organisation),
                entry: 1,
            }));
        }
        let creation = LotCreation {
            lot: lot_id("K"),
            site: SiteId::new("KAN").unwrap(),
            kind: LotKind::Concentrate,
            wet: Grams(1000),
            moisture: Ppb::new(0).unwrap(),
            assays: vec![],
            produced_from: Timestamp::from_millis(1),
            produced_until: Timestamp::from_millis(1),
        };
        let receipt = |lot: &str| {
            EventBody::Receive(LotReceipt {
                lot: lot_id(lot),
                measured_wet: Grams(1000),
                accepted: true,
                note: String::new(),
                documents: vec![],
            })
        };
        let events = BTreeMap::from([
            (2, event("mine", EventBody::CreateLot(creation))),
            (
                3,
                event(
                    "mine",
                    EventBody::Sell(Sale {
                        lot: lot_id("K"),
                        buyer: pid("trader"),
                        documents: vec![doc()],
                    }),
                ),
            ),
            (
                4,
                event(
                    "mine",
                    EventBody::Dispatch(Dispatch {
                        lot: lot_id("K"),
                        to: pid("smelter"),
                        route: vec![CountryCode::new("ZM").unwrap()],
                        documents: vec![],
                    }),
                ),
            ),
            (5, event("smelter", receipt("K"))),
            (
                6,
                event(
                    "lab",
                    EventBody::RecordAssay(AssayReport {
                        lot: lot_id("K"),
                        stage: AssayStage::Final,
                        assays: vec![],
                        moisture: None,
                        certificate: None,
                    }),
                ),
            ),
            (
                7,
                event(
                    "smelter",
                    EventBody::Blend(Blend {
                        inputs: vec![lot_id("K"), lot_id("S")],
                        output: lot_id("B"),
                    }),
                ),
            ),
            (
                8,
                event(
                    "smelter",
                    EventBody::Sell(Sale {
                        lot: lot_id("B"),
                        buyer: pid("buyer-a"),
                        documents: vec![],
                    }),
                ),
            ),
            (
                9,
                event(
                    "officer",
                    EventBody::DecideFlag(FlagDecision {
                        flag: FLAG,
                        decision: FlagDecisionKind::Continue,
                        note: String::new(),
                    }),
                ),
            ),
            (
                10,
                event(
                    "smelter",
                    EventBody::ReportGrievance(GrievanceReport {
                        organisation: pid("smelter"),
                        subject: pid("mine"),
                        report_sha256: crate::crypto::sha256(b"r"),
                        outcome: GrievanceOutcome::UnderInvestigation,
                    }),
                ),
            ),
            (
                11,
                event(
                    "officer",
                    EventBody::ReviewSupplier(SupplierReview {
                        organisation: pid("smelter"),
                        supplier: pid("mine"),
                        passed: true,
                        cadence: crate::model::ReviewCadence::Annual,
                        valid_until: Timestamp::from_millis(2),
                        report: None,
                    }),
                ),
            ),
            (
                12,
                event(
                    "smelter",
                    EventBody::AttachDocument(DocumentAttachment {
                        lot: lot_id("S"),
                        document: doc(),
                    }),
                ),
            ),
        ]);
        let mut k = lot("K", "smelter", "trader", vec![2, 3, 4, 5, 6, 7], vec![FLAG]);
        k.seller = Some(pid("mine"));
        k.status = LotStatus::Consumed { in_entry: 7 };
        state.put(StateValue::Lot(k));
        let mut s = lot("S", "smelter", "smelter", vec![7, 12], vec![]);
        s.status = LotStatus::Consumed { in_entry: 7 };
        state.put(StateValue::Lot(s));
        let mut b = lot("B", "smelter", "buyer-a", vec![7, 8], vec![FLAG]);
        b.seller = Some(pid("smelter"));
        state.put(StateValue::Lot(b));
        state.put(StateValue::Flag(Flag {
            id: FLAG,
            kind: FlagKind::ArtisanalOrigin,
            organisation: pid("smelter"),
            lot: Some(lot_id("K")),
            site: None,
            supplier: Some(pid("mine")),
            raised_at: Timestamp::from_millis(5),
            detail: "artisanal".into(),
            decisions: vec![],
        }));
        World { state, events }
    }

    fn viewer(&self, id: &str) -> Viewer {
        Viewer::resolve(&self.state, &pid(id)).unwrap().unwrap()
    }

    fn lot(&self, id: &str) -> Lot {
        self.state.lot(&lot_id(id)).unwrap().unwrap()
    }

    fn flag(&self) -> Flag {
        self.state.flag(FLAG).unwrap().unwrap()
    }
}

impl StateView for World {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        self.state.get(key)
    }
}

impl Records for World {
    fn event(&self, index: u64) -> Result<Event, StateError> {
        self.events
            .get(&index)
            .cloned()
            .ok_or_else(|| StateError(format!("no entry {index}")))
    }
}

#[test]
fn standings_come_from_the_ledger_kinds_roles_and_affiliation() {
    let w = World::new();
    assert_eq!(w.viewer("operator").standing(), Standing::Operator);
    assert_eq!(w.viewer("auditor").standing(), Standing::Auditor);
    assert_eq!(w.viewer("buyer-a").standing(), Standing::Member);
    // An officer reads for its organisation, with the organisation's
    // standing when that is higher.
    let officer = w.viewer("officer");
    assert_eq!(officer.organisation(), &pid("smelter"));
    assert_eq!(officer.standing(), Standing::Member);
    let clerk = w.viewer("audit-clerk");
    assert_eq!(clerk.organisation(), &pid("auditor"));
    assert!(clerk.sees_everything());
    assert_eq!(Viewer::resolve(&w.state, &pid("nobody")).unwrap(), None);
}

#[test]
fn holders_are_derived_from_the_lot_and_its_history() {
    let w = World::new();
    let k = w.lot("K");
    let history: Vec<Event> = k.history.iter().map(|i| w.events[i].clone()).collect();
    let holders: Vec<&str> = lot_holders(&k, &history)
        .into_iter()
        .map(|p| p.as_str())
        .collect();
    // The lab assayed it but never held it.
    assert_eq!(holders, ["mine", "smelter", "trader"]);
}

#[test]
fn lots_are_seen_in_full_by_those_who_held_them_and_by_everyone_who_sees_everything() {
    let w = World::new();
    let cases = [
        ("mine", [true, false]),
        ("trader", [true, false]),
        ("smelter", [true, true]),
        ("officer", [true, true]),
        ("lab", [false, false]),
        ("buyer-a", [false, true]),
        ("buyer-z", [false, false]),
        ("auditor", [true, true]),
        ("operator", [true, true]),
        ("audit-clerk", [true, true]),
    ];
    for (who, [sees_k, sees_b]) in cases {
        let viewer = w.viewer(who);
        let d = Disclosure::new(Some(&viewer), &w);
        assert_eq!(d.lot(&w.lot("K")).unwrap(), sees_k, "{who} K");
        assert_eq!(d.lot_id(&lot_id("B")).unwrap(), sees_b, "{who} B");
        assert!(!d.lot_id(&lot_id("NONE")).unwrap(), "{who} NONE");
    }
    let anonymous = Disclosure::new(None, &w);
    assert!(!anonymous.lot(&w.lot("K")).unwrap());
}

#[test]
fn events_are_seen_by_their_parties_and_by_those_who_see_the_lot() {
    let w = World::new();
    let sees = |who: &str, index: u64| {
        let viewer = w.viewer(who);
        let d = Disclosure::new(Some(&viewer), &w);
        d.event(index, &w.events[&index]).unwrap()
    };
    // The lab sees its assay, not the sale of the lot it assayed.
    assert!(sees("lab", 6));
    assert!(!sees("lab", 3));
    // Buyer A sees B's history (the blend that made B, and its purchase),
    // not K's upstream sale or the attachment to S, which is in S's
    // history only.
    assert!(sees("buyer-a", 7));
    assert!(sees("buyer-a", 8));
    assert!(!sees("buyer-a", 3));
    assert!(!sees("buyer-a", 12));
    assert!(!sees("buyer-z", 7));
    // The flag decision is seen by whoever sees the flag: buyer A through
    // B, which carries it.
    assert!(sees("buyer-a", 9));
    assert!(!sees("buyer-z", 9));
    // A grievance is the organisation's: its subject is not told. A review
    // names the supplier, which is a party.
    assert!(sees("officer", 10));
    assert!(!sees("mine", 10));
    assert!(sees("mine", 11));
    assert!(sees("auditor", 10));
    let anonymous = Disclosure::new(None, &w);
    assert!(!anonymous.event(2, &w.events[&2]).unwrap());
}

#[test]
fn flags_are_seen_in_the_register_and_on_every_lot_that_carries_them() {
    let w = World::new();
    let flag = w.flag();
    for (who, sees) in [
        ("officer", true),
        ("smelter", true),
        ("mine", true),
        ("buyer-a", true),
        ("buyer-z", false),
        ("lab", false),
        ("auditor", true),
    ] {
        let viewer = w.viewer(who);
        let d = Disclosure::new(Some(&viewer), &w);
        assert_eq!(d.flag(&flag).unwrap(), sees, "{who}");
    }
}

#[test]
fn participants_are_seen_in_full_by_their_own_organisation() {
    let w = World::new();
    let officer = w.viewer("officer");
    let d = Disclosure::new(Some(&officer), &w);
    assert_eq!(
        d.participant(&pid("smelter")).unwrap(),
        ParticipantDetail::Full
    );
    assert_eq!(
        d.participant(&pid("officer")).unwrap(),
        ParticipantDetail::Full
    );
    assert_eq!(
        d.participant(&pid("mine")).unwrap(),
        ParticipantDetail::Identity
    );
    let smelter = w.viewer("smelter");
    let d = Disclosure::new(Some(&smelter), &w);
    assert_eq!(
        d.participant(&pid("officer")).unwrap(),
        ParticipantDetail::Full
    );
    let auditor = w.viewer("auditor");
    let d = Disclosure::new(Some(&auditor), &w);
    assert_eq!(
        d.participant(&pid("mine")).unwrap(),
        ParticipantDetail::Full
    );
}

#[test]
fn supplier_files_hide_grievances_from_the_supplier_and_everything_from_others() {
    let w = World::new();
    let mut file = SupplierFile::new(pid("smelter"), pid("mine"));
    file.grievances.push((
        crate::crypto::sha256(b"r"),
        GrievanceOutcome::UnderInvestigation,
        10,
    ));
    let view = |who: &str| {
        let viewer = w.viewer(who);
        let d = Disclosure::new(Some(&viewer), &w);
        supplier_file_view(&d, &file).unwrap()
    };
    assert_eq!(view("officer"), Some(file.clone()));
    assert_eq!(view("auditor"), Some(file.clone()));
    let own = view("mine").unwrap();
    assert!(own.grievances.is_empty());
    assert_eq!(view("buyer-a"), None);
}

#[test]
fn upstream_summaries_and_identities_leave_out_commercial_fields() {
    let w = World::new();
    let summary = serde_json::to_value(LotSummary::from(&w.lot("K"))).unwrap();
    let mut keys: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["flags", "id", "kind", "metal", "origin"]);
    let Some(StateValue::Participant(mine)) =
        w.state.get(&StateKey::Participant(pid("mine"))).unwrap()
    else {
        panic!("no mine");
    };
    let identity = serde_json::to_value(ParticipantIdentity::from(&mine)).unwrap();
    let mut keys: Vec<&str> = identity
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["country", "id", "kinds", "legal_name"]);
}

#[test]
fn a_former_holder_sees_the_lot_up_to_the_receipt_of_its_dispatch_and_no_further() {
    let w = World::new();
    let sight = |who: &str| {
        let viewer = w.viewer(who);
        Disclosure::new(Some(&viewer), &w)
            .lot_sight(&w.lot("K"))
            .unwrap()
    };
    // The smelter holds K, the trader owns it, the mine sold and shipped
    // it: its part ends with the smelter's receipt (entry 5).
    assert_eq!(sight("smelter"), LotSight::Full);
    assert_eq!(sight("officer"), LotSight::Full);
    assert_eq!(sight("trader"), LotSight::Full);
    assert_eq!(sight("mine"), LotSight::Held { until: 5 });
    assert_eq!(sight("lab"), LotSight::Hidden);
    assert_eq!(sight("auditor"), LotSight::Full);
    let mine = w.viewer("mine");
    let d = Disclosure::new(Some(&mine), &w);
    for (index, sees) in [
        (2, true),
        (3, true),
        (4, true),
        (5, true),
        (6, false),
        (7, false),
    ] {
        assert_eq!(
            d.event(index, &w.events[&index]).unwrap(),
            sees,
            "entry {index}"
        );
    }
    assert!(d.lot(&w.lot("K")).unwrap() && !d.lot_in_full(&w.lot("K")).unwrap());
    // Without a dispatch of its own, a holder's part ends at its own last
    // holding event.
    let history: Vec<(u64, &Event)> = [2, 3].iter().map(|i| (*i, &w.events[i])).collect();
    let until = held_until(history, |p| Ok::<_, ()>(p.as_str() == "trader")).unwrap();
    assert_eq!(until, Some(3));
}
