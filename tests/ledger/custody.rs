//! Custody rules through the ledger: every refusal has its exact code and
//! changes nothing (same size, same root, same lot state), and accepted
//! events move custody, ownership, mass, metal and origin as specified.

use crate::common;

use common::{Fixture, pid};
use oretrail::ledger::{AppendError, verify_log};
use oretrail::model::{
    Assay, AssayReport, AssayStage, Blend, CahraFinding, Dispatch, Element, EventBody, Grams,
    LotCreation, LotId, LotKind, LotReceipt, LotStatus, Ppb, Role, Sale, SiteId, SiteRegistration,
    SiteScale, Split, SplitPart, StateView, TransformInput, TransformOutput, Transformation,
};
use oretrail::rules::RuleCode;
use oretrail::signer::Signer;

fn lot_id(s: &str) -> LotId {
    LotId::new(s).unwrap()
}

fn ppb(p: u64) -> Ppb {
    Ppb::new(p).unwrap()
}

fn cu(grade: u64) -> Vec<Assay> {
    vec![Assay {
        element: Element::Cu,
        grade: ppb(grade),
    }]
}

/// A small supply chain: a mine with two sites, a smelter, a lab, a
/// compliance officer and a buyer.
struct Chain {
    f: Fixture,
    mine: Signer,
    smelter: Signer,
    lab: Signer,
    compliance: Signer,
    buyer: Signer,
}

impl Chain {
    fn new() -> Self {
        let mut f = Fixture::new();
        let mine = f.register(
            "mine",
            10,
            vec![Role::Producer, Role::Custodian, Role::Seller],
        );
        let smelter = f.register(
            "smelter",
            11,
            vec![
                Role::Custodian,
                Role::Processor,
                Role::Seller,
                Role::Purchaser,
            ],
        );
        let lab = f.register("lab", 12, vec![Role::Assayer]);
        let compliance = f.register("compliance", 13, vec![Role::Compliance]);
        let buyer = f.register("buyer", 14, vec![Role::Purchaser, Role::Custodian]);
        let mut chain = Chain {
            f,
            mine,
            smelter,
            lab,
            compliance,
            buyer,
        };
        for (site, scale) in [
            ("KAN", SiteScale::LargeScale),
            ("ART", SiteScale::Artisanal),
        ] {
            let body = EventBody::RegisterSite(SiteRegistration {
                site: SiteId::new(site).unwrap(),
                operator: pid("mine"),
                name: format!("{site} open pit"),
                country: oretrail::model::CountryCode::new("ZM").unwrap(),
                latitude_micro: -12_100_000,
                longitude_micro: 26_400_000,
                scale,
                metal: Element::Cu,
                annual_capacity: Grams(50_000_000_000),
            });
            chain.ok(Who::Compliance, body);
        }
        chain
    }

    fn signer(&mut self, who: Who) -> &mut Signer {
        match who {
            Who::Mine => &mut self.mine,
            Who::Smelter => &mut self.smelter,
            Who::Lab => &mut self.lab,
            Who::Compliance => &mut self.compliance,
            Who::Buyer => &mut self.buyer,
            Who::Operator => &mut self.f.operator,
        }
    }

    fn submit(&mut self, who: Who, body: EventBody) -> Result<u64, AppendError> {
        self.f.clock.advance(1000);
        let now = self.f.clock.now();
        let signed = self.signer(who).sign(now, body).unwrap();
        self.f.ledger().append(signed).map(|r| r.index)
    }

    fn ok(&mut self, who: Who, body: EventBody) -> u64 {
        self.submit(who, body).unwrap()
    }

    /// Asserts the refusal code, and that nothing changed: size, root and
    /// the state of every lot named in `lots`.
    fn refused(&mut self, who: Who, body: EventBody, code: RuleCode, lots: &[&str]) {
        let before = (self.f.ledger().size(), self.f.ledger().root());
        let lots_before: Vec<_> = lots.iter().map(|l| self.lot(l)).collect();
        match self.submit(who, body) {
            Err(AppendError::Refused(r)) => assert_eq!(r.code, code, "{r}"),
            other => panic!("expected {code}, got {other:?}"),
        }
        assert_eq!(
            (self.f.ledger().size(), self.f.ledger().root()),
            before,
            "a refusal must not change the log"
        );
        let lots_after: Vec<_> = lots.iter().map(|l| self.lot(l)).collect();
        assert_eq!(lots_after, lots_before, "a refusal must not change lots");
    }

    fn lot(&self, id: &str) -> Option<oretrail::model::Lot> {
        self.f.ledger().state().lot(&lot_id(id)).unwrap()
    }

    /// A concentrate lot at site KAN: 1,000 t wet, 8 % moisture, 25 % Cu.
    fn create(&mut self, id: &str, site: &str, wet: u64) -> u64 {
        let now = self.f.clock.now();
        self.ok(
            Who::Mine,
            EventBody::CreateLot(LotCreation {
                lot: lot_id(id),
                site: SiteId::new(site).unwrap(),
                kind: LotKind::Concentrate,
                wet: Grams(wet),
                moisture: ppb(80_000_000),
                assays: cu(250_000_000),
                produced_from: now,
                produced_until: now,
            }),
        )
    }

    fn ship_to_smelter(&mut self, id: &str) {
        self.ok(
            Who::Mine,
            EventBody::Dispatch(Dispatch {
                lot: lot_id(id),
                to: pid("smelter"),
                route: vec![oretrail::model::CountryCode::new("ZM").unwrap()],
                documents: vec![],
            }),
        );
        let wet = self.lot(id).unwrap().wet;
        self.ok(
            Who::Smelter,
            EventBody::Receive(LotReceipt {
                lot: lot_id(id),
                measured_wet: wet,
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        );
    }
}

#[derive(Clone, Copy)]
enum Who {
    Mine,
    Smelter,
    Lab,
    Compliance,
    Buyer,
    Operator,
}

fn dispatch(lot: &str, to: &str) -> EventBody {
    EventBody::Dispatch(Dispatch {
        lot: lot_id(lot),
        to: pid(to),
        route: vec![oretrail::model::CountryCode::new("ZM").unwrap()],
        documents: vec![],
    })
}

fn receipt(lot: &str, wet: u64, accepted: bool) -> EventBody {
    EventBody::Receive(LotReceipt {
        lot: lot_id(lot),
        measured_wet: Grams(wet),
        accepted,
        note: if accepted {
            String::new()
        } else {
            "wet".into()
        },
        documents: vec![],
    })
}

#[test]
fn a_created_lot_has_exact_dry_mass_contained_metal_and_origin() {
    let mut c = Chain::new();
    c.create("L1", "KAN", 1_000_000_000);
    let l = c.lot("L1").unwrap();
    assert_eq!(l.dry, Grams(920_000_000));
    assert_eq!(l.contained_of(Element::Cu), Grams(230_000_000));
    assert_eq!(l.custodian, pid("mine"));
    assert_eq!(l.owner, pid("mine"));
    assert!(l.origin.is_whole());
    assert_eq!(l.origin.shares()[0].site.as_str(), "KAN");
    verify_log(&c.f.log_path(), false).unwrap();
}

#[test]
fn site_and_lot_creation_rules() {
    let mut c = Chain::new();
    let now = c.f.clock.now();
    let creation = |lot: &str, site: &str, kind, assays| {
        EventBody::CreateLot(LotCreation {
            lot: lot_id(lot),
            site: SiteId::new(site).unwrap(),
            kind,
            wet: Grams(1000),
            moisture: ppb(0),
            assays,
            produced_from: now,
            produced_until: now,
        })
    };
    c.refused(
        Who::Mine,
        creation("X", "NOPE", LotKind::Concentrate, cu(1)),
        RuleCode::SiteUnknown,
        &["X"],
    );
    c.refused(
        Who::Smelter,
        creation("X", "KAN", LotKind::Concentrate, cu(1)),
        RuleCode::NotAuthorized,
        &["X"],
    );
    c.refused(
        Who::Mine,
        creation("X", "KAN", LotKind::Cathode, cu(1)),
        RuleCode::InvalidField,
        &["X"],
    );
    c.refused(
        Who::Mine,
        creation(
            "X",
            "KAN",
            LotKind::Concentrate,
            vec![Assay {
                element: Element::Zn,
                grade: ppb(1),
            }],
        ),
        RuleCode::AssayMissingMetal,
        &["X"],
    );
    // An element assayed twice, the payable metal among others or not.
    for elements in [
        [Element::Cu, Element::Cu].as_slice(),
        &[Element::Zn, Element::Cu, Element::Cl, Element::Zn],
        &[Element::Cl, Element::Cl],
    ] {
        let assays = elements
            .iter()
            .map(|&element| Assay {
                element,
                grade: ppb(1),
            })
            .collect();
        c.refused(
            Who::Mine,
            creation("X", "KAN", LotKind::Concentrate, assays),
            RuleCode::InvalidField,
            &["X"],
        );
    }
    c.create("L1", "KAN", 1000);
    c.refused(
        Who::Mine,
        creation("L1", "KAN", LotKind::Concentrate, cu(1)),
        RuleCode::LotExists,
        &["L1"],
    );
    // A site registered twice, and by someone without the role.
    let site = |id: &str| {
        EventBody::RegisterSite(SiteRegistration {
            site: SiteId::new(id).unwrap(),
            operator: pid("mine"),
            name: "pit".into(),
            country: oretrail::model::CountryCode::new("ZM").unwrap(),
            latitude_micro: 0,
            longitude_micro: 0,
            scale: SiteScale::LargeScale,
            metal: Element::Cu,
            annual_capacity: Grams(1),
        })
    };
    c.refused(Who::Compliance, site("KAN"), RuleCode::SiteExists, &[]);
    c.refused(Who::Mine, site("NEW"), RuleCode::NotAuthorized, &[]);
    // Only the site's operator creates lots there: register a site the
    // smelter would operate, then try to create from the mine.
    let mut other = site("SMELT-SITE");
    if let EventBody::RegisterSite(r) = &mut other {
        r.operator = pid("smelter");
    }
    c.ok(Who::Compliance, other);
    c.refused(
        Who::Mine,
        creation("Y", "SMELT-SITE", LotKind::Concentrate, cu(1)),
        RuleCode::NotSiteOperator,
        &["Y"],
    );
}

#[test]
fn only_the_custodian_dispatches_and_only_the_named_receiver_receives() {
    let mut c = Chain::new();
    c.create("L1", "KAN", 1_000_000);
    c.refused(
        Who::Lab,
        dispatch("L1", "buyer"),
        RuleCode::NotAuthorized,
        &["L1"],
    );
    c.refused(
        Who::Smelter,
        dispatch("L1", "buyer"),
        RuleCode::NotCustodian,
        &["L1"],
    );
    c.refused(
        Who::Mine,
        dispatch("L1", "lab"),
        RuleCode::NotAuthorized,
        &["L1"],
    );
    c.refused(
        Who::Mine,
        dispatch("L1", "nobody"),
        RuleCode::ParticipantUnknown,
        &["L1"],
    );
    c.refused(
        Who::Smelter,
        receipt("L1", 1_000_000, true),
        RuleCode::LotNotInTransit,
        &["L1"],
    );
    c.ok(Who::Mine, dispatch("L1", "smelter"));
    c.refused(
        Who::Mine,
        dispatch("L1", "smelter"),
        RuleCode::LotNotAvailable,
        &["L1"],
    );
    c.refused(
        Who::Buyer,
        receipt("L1", 1_000_000, true),
        RuleCode::NotReceiver,
        &["L1"],
    );
    // A refused delivery goes back to the sender's custody.
    c.ok(Who::Smelter, receipt("L1", 990_000, false));
    let l = c.lot("L1").unwrap();
    assert_eq!((l.custodian.as_str(), l.status), ("mine", LotStatus::Held));
    assert_eq!(l.wet, Grams(1_000_000), "a refused receipt changes no mass");
    // Accepted: custody moves, the receiver's weight counts, metal follows.
    c.ok(Who::Mine, dispatch("L1", "smelter"));
    c.ok(Who::Smelter, receipt("L1", 990_000, true));
    let l = c.lot("L1").unwrap();
    assert_eq!(l.custodian, pid("smelter"));
    assert_eq!(l.owner, pid("mine"), "custody is not ownership");
    assert_eq!(l.wet, Grams(990_000));
    assert_eq!(l.dry, Grams(910_800));
    assert_eq!(l.contained_of(Element::Cu), Grams(227_700));
    // The mine no longer holds it.
    c.refused(
        Who::Mine,
        dispatch("L1", "buyer"),
        RuleCode::NotCustodian,
        &["L1"],
    );
    c.refused(
        Who::Smelter,
        dispatch("NOPE", "buyer"),
        RuleCode::LotUnknown,
        &[],
    );
}

#[test]
fn splits_conserve_mass_exactly_and_consume_the_parent() {
    let mut c = Chain::new();
    c.create("L1", "KAN", 1_000_001);
    c.ship_to_smelter("L1");
    let split = |parts: &[(&str, u64)]| {
        EventBody::Split(Split {
            lot: lot_id("L1"),
            parts: parts
                .iter()
                .map(|(l, w)| SplitPart {
                    lot: lot_id(l),
                    wet: Grams(*w),
                })
                .collect(),
        })
    };
    c.refused(
        Who::Smelter,
        split(&[("A", 500_000), ("B", 500_000)]),
        RuleCode::MassNotConserved,
        &["L1", "A", "B"],
    );
    c.refused(
        Who::Smelter,
        split(&[("A", 500_000), ("A", 500_001)]),
        RuleCode::LotExists,
        &["L1", "A"],
    );
    c.refused(
        Who::Smelter,
        split(&[("A", 1_000_001), ("B", 0)]),
        RuleCode::InvalidQuantity,
        &["L1", "A", "B"],
    );
    c.refused(
        Who::Mine,
        split(&[("A", 500_000), ("B", 500_001)]),
        RuleCode::NotAuthorized,
        &["L1", "A", "B"],
    );
    c.ok(Who::Smelter, split(&[("A", 333_333), ("B", 666_668)]));
    let (parent, a, b) = (
        c.lot("L1").unwrap(),
        c.lot("A").unwrap(),
        c.lot("B").unwrap(),
    );
    assert!(matches!(parent.status, LotStatus::Consumed { .. }));
    assert_eq!(a.dry.0 + b.dry.0, parent.dry.0);
    assert_eq!(
        a.contained_of(Element::Cu).0 + b.contained_of(Element::Cu).0,
        parent.contained_of(Element::Cu).0
    );
    assert_eq!(a.origin, parent.origin);
    c.refused(
        Who::Smelter,
        split(&[("C", 1), ("D", 1_000_000)]),
        RuleCode::LotNotAvailable,
        &["L1", "C", "D"],
    );
}

#[test]
fn blends_add_up_metal_and_mix_origins_by_contained_metal() {
    let mut c = Chain::new();
    c.create("K1", "KAN", 3_000_000);
    c.create("A1", "ART", 1_000_000);
    c.ship_to_smelter("K1");
    c.refused(
        Who::Smelter,
        EventBody::Blend(Blend {
            inputs: vec![lot_id("K1"), lot_id("A1")],
            output: lot_id("B1"),
        }),
        RuleCode::NotCustodian,
        &["K1", "A1", "B1"],
    );
    c.ship_to_smelter("A1");
    c.refused(
        Who::Smelter,
        EventBody::Blend(Blend {
            inputs: vec![lot_id("K1")],
            output: lot_id("B1"),
        }),
        RuleCode::InvalidField,
        &["K1", "B1"],
    );
    c.ok(
        Who::Smelter,
        EventBody::Blend(Blend {
            inputs: vec![lot_id("K1"), lot_id("A1")],
            output: lot_id("B1"),
        }),
    );
    let b = c.lot("B1").unwrap();
    assert_eq!(b.wet, Grams(4_000_000));
    assert_eq!(b.contained_of(Element::Cu), Grams(920_000));
    let shares: Vec<(String, u32)> = b
        .origin
        .shares()
        .iter()
        .map(|s| (s.site.to_string(), s.share.get()))
        .collect();
    assert_eq!(
        shares,
        vec![("ART".into(), 250_000_000), ("KAN".into(), 750_000_000)]
    );
    for id in ["K1", "A1"] {
        assert!(matches!(
            c.lot(id).unwrap().status,
            LotStatus::Consumed { .. }
        ));
    }
}

#[test]
fn transformations_cannot_create_metal_and_carry_origin() {
    let mut c = Chain::new();
    c.create("K1", "KAN", 1_000_000); // 230,000 g Cu contained
    c.ship_to_smelter("K1");
    let smelt = |out_lot: &str, consumed: u64, cathode_wet: u64| {
        EventBody::Transform(Transformation {
            process: "smelting campaign 7".into(),
            inputs: vec![TransformInput {
                lot: lot_id("K1"),
                consumed_wet: Grams(consumed),
            }],
            outputs: vec![TransformOutput {
                lot: lot_id(out_lot),
                kind: LotKind::Cathode,
                metal: Element::Cu,
                wet: Grams(cathode_wet),
                moisture: ppb(0),
                assays: cu(999_900_000),
            }],
        })
    };
    // 240,000 g of 99.99 % cathode is 239,976 g Cu: more than 230,000 g
    // plus the 0.5 % tolerance (231,150 g).
    c.refused(
        Who::Smelter,
        smelt("C1", 1_000_000, 240_000),
        RuleCode::MetalExceedsInputs,
        &["K1", "C1"],
    );
    c.refused(
        Who::Smelter,
        smelt("C1", 1_000_001, 100_000),
        RuleCode::MassNotConserved,
        &["K1", "C1"],
    );
    // Half the lot into 110,000 g of cathode (109,989 g Cu of 115,000 g).
    c.ok(Who::Smelter, smelt("C1", 500_000, 110_000));
    let (k, cath) = (c.lot("K1").unwrap(), c.lot("C1").unwrap());
    assert_eq!(k.wet, Grams(500_000));
    assert_eq!(k.status, LotStatus::Held, "partly consumed lots stay");
    assert_eq!(k.contained_of(Element::Cu), Grams(115_000));
    assert_eq!(cath.contained_of(Element::Cu), Grams(109_989));
    assert_eq!(cath.origin.shares()[0].site.as_str(), "KAN");
    assert!(cath.origin.is_whole());
    assert_eq!(
        cath.owner,
        pid("mine"),
        "outputs belong to the inputs' owner"
    );
    // The rest, all of it: the input is consumed.
    c.ok(Who::Smelter, smelt("C2", 500_000, 110_000));
    assert!(matches!(
        c.lot("K1").unwrap().status,
        LotStatus::Consumed { .. }
    ));
    verify_log(&c.f.log_path(), false).unwrap();
}

#[test]
fn only_the_owner_sells_and_only_purchasers_buy() {
    let mut c = Chain::new();
    c.create("L1", "KAN", 1_000_000);
    let sale = |to: &str| {
        EventBody::Sell(Sale {
            lot: lot_id("L1"),
            buyer: pid(to),
            documents: vec![],
        })
    };
    c.refused(Who::Mine, sale("lab"), RuleCode::NotAuthorized, &["L1"]);
    c.refused(Who::Lab, sale("buyer"), RuleCode::NotAuthorized, &["L1"]);
    c.refused(Who::Smelter, sale("buyer"), RuleCode::NotOwner, &["L1"]);
    c.ok(Who::Mine, sale("smelter"));
    assert_eq!(c.lot("L1").unwrap().owner, pid("smelter"));
    assert_eq!(
        c.lot("L1").unwrap().custodian,
        pid("mine"),
        "a sale does not move custody"
    );
    c.refused(Who::Mine, sale("buyer"), RuleCode::NotOwner, &["L1"]);
    c.ok(Who::Smelter, sale("buyer"));
    assert_eq!(c.lot("L1").unwrap().owner, pid("buyer"));
}

#[test]
fn assays_settle_forward_and_cahra_findings_are_dated() {
    let mut c = Chain::new();
    c.create("L1", "KAN", 1_000_000);
    let report = |stage, grade, moisture: Option<u64>| {
        EventBody::RecordAssay(AssayReport {
            lot: lot_id("L1"),
            stage,
            assays: cu(grade),
            moisture: moisture.map(ppb),
            certificate: None,
        })
    };
    c.refused(
        Who::Mine,
        report(AssayStage::Final, 240_000_000, None),
        RuleCode::NotAuthorized,
        &["L1"],
    );
    c.ok(
        Who::Lab,
        report(AssayStage::Final, 240_000_000, Some(100_000_000)),
    );
    let l = c.lot("L1").unwrap();
    assert_eq!(l.dry, Grams(900_000));
    assert_eq!(l.contained_of(Element::Cu), Grams(216_000));
    c.refused(
        Who::Lab,
        report(AssayStage::Provisional, 250_000_000, None),
        RuleCode::AssayStageRegressed,
        &["L1"],
    );
    c.ok(Who::Lab, report(AssayStage::Umpire, 245_000_000, None));
    // CAHRA determinations: only a compliance role, only known sites.
    let finding = |site: &str| {
        EventBody::DetermineCahra(CahraFinding {
            site: SiteId::new(site).unwrap(),
            cahra: true,
            effective: oretrail::model::Timestamp::from_millis(common::START_MS),
            source: "EU CAHRA indicative list 2026-Q1".into(),
        })
    };
    c.refused(Who::Mine, finding("ART"), RuleCode::NotAuthorized, &[]);
    c.refused(Who::Compliance, finding("NOPE"), RuleCode::SiteUnknown, &[]);
    c.ok(Who::Compliance, finding("ART"));
    let site =
        c.f.ledger()
            .state()
            .site(&SiteId::new("ART").unwrap())
            .unwrap()
            .unwrap();
    assert!(site.cahra_at(c.f.clock.now()));
    // Everything above re-verifies offline and survives an index rebuild.
    let root = c.f.ledger().root();
    c.f.close();
    std::fs::remove_dir_all(c.f.path().join("index")).unwrap();
    c.f.reopen();
    assert_eq!(c.f.ledger().root(), root);
    assert_eq!(c.lot("L1").unwrap().assay_stage, AssayStage::Umpire);
    verify_log(&c.f.log_path(), false).unwrap();
}

// ---------------------------------------------------------------------
// Supplier compliance, receipt policies, red flags, documents, corrections.

use oretrail::crypto::sha256;
use oretrail::model::{
    CodeOfConductAcknowledgement, Correction, DocumentAttachment, DocumentKind, DocumentRef,
    EsgElement, EsgScore, FlagDecision, FlagDecisionKind, FlagId, FlagKind, OfficerAppointment,
    OnboardingAssessment, ReceiptPolicy, ReviewCadence, SanctionKind, SanctionReason,
    SupplierReinstatement, SupplierReview, SupplierSanction, Timestamp, UnreviewedSupplierPolicy,
};

const DAY: u64 = 24 * 60 * 60 * 1000;

impl Chain {
    /// The compliance officer acts for the smelter.
    fn appoint(&mut self) {
        self.ok(
            Who::Operator,
            EventBody::AppointOfficer(OfficerAppointment {
                officer: pid("compliance"),
                organisation: pid("smelter"),
            }),
        );
    }

    fn flags_of(&self, lot: &str) -> Vec<oretrail::model::Flag> {
        self.lot(lot)
            .unwrap()
            .flags
            .iter()
            .map(|id| self.f.ledger().state().flag(*id).unwrap().unwrap())
            .collect()
    }

    fn in_days(&self, days: u64) -> Timestamp {
        Timestamp::from_millis(self.f.clock.now().as_millis() + days * DAY)
    }
}

fn sanction(kind: SanctionKind, reason: SanctionReason) -> EventBody {
    EventBody::SanctionSupplier(SupplierSanction {
        organisation: pid("smelter"),
        supplier: pid("mine"),
        kind,
        reason,
        note: "audit finding 2026-07".into(),
    })
}

#[test]
fn a_sanctioned_suppliers_delivery_is_refused_until_reinstated() {
    let mut c = Chain::new();
    c.create("L1", "KAN", 1_000_000);
    let one_year = c.in_days(400);
    // Not yet an officer of the smelter: may not sanction for it.
    c.refused(
        Who::Compliance,
        sanction(
            SanctionKind::Blacklisted { until: one_year },
            SanctionReason::ContractViolation,
        ),
        RuleCode::NotAuthorized,
        &[],
    );
    c.appoint();
    // Blacklisting is for 1 to 3 years, and for contract or legal grounds.
    let short = c.in_days(100);
    c.refused(
        Who::Compliance,
        sanction(
            SanctionKind::Blacklisted { until: short },
            SanctionReason::ContractViolation,
        ),
        RuleCode::InvalidField,
        &[],
    );
    c.refused(
        Who::Compliance,
        sanction(SanctionKind::PermanentBan, SanctionReason::LegalViolation),
        RuleCode::InvalidField,
        &[],
    );
    c.refused(
        Who::Compliance,
        EventBody::ReinstateSupplier(SupplierReinstatement {
            organisation: pid("smelter"),
            supplier: pid("mine"),
            note: "no sanction yet".into(),
        }),
        RuleCode::NoSanctionInForce,
        &[],
    );
    let until = c.in_days(400);
    c.ok(
        Who::Compliance,
        sanction(
            SanctionKind::Blacklisted { until },
            SanctionReason::ContractViolation,
        ),
    );
    c.ok(Who::Mine, dispatch("L1", "smelter"));
    c.refused(
        Who::Smelter,
        receipt("L1", 1_000_000, true),
        RuleCode::SupplierSanctioned,
        &["L1"],
    );
    // Turning the delivery away is always allowed.
    c.ok(Who::Smelter, receipt("L1", 1_000_000, false));
    c.ok(
        Who::Compliance,
        EventBody::ReinstateSupplier(SupplierReinstatement {
            organisation: pid("smelter"),
            supplier: pid("mine"),
            note: "corrective plan verified".into(),
        }),
    );
    c.ship_to_smelter("L1");
    assert_eq!(c.lot("L1").unwrap().custodian, pid("smelter"));
    // A permanent ban cannot be lifted.
    c.ok(
        Who::Compliance,
        sanction(SanctionKind::PermanentBan, SanctionReason::Bribery),
    );
    c.refused(
        Who::Compliance,
        EventBody::ReinstateSupplier(SupplierReinstatement {
            organisation: pid("smelter"),
            supplier: pid("mine"),
            note: "appeal".into(),
        }),
        RuleCode::NotAuthorized,
        &[],
    );
}

#[test]
fn a_sanctioned_mines_material_is_refused_even_through_a_trader() {
    let mut c = Chain::new();
    c.appoint();
    c.create("L1", "KAN", 1_000_000);
    // The mine sells to the buyer (acting as a trader), which delivers.
    c.ok(
        Who::Mine,
        EventBody::Sell(Sale {
            lot: lot_id("L1"),
            buyer: pid("buyer"),
            documents: vec![],
        }),
    );
    c.ok(Who::Mine, dispatch("L1", "buyer"));
    c.ok(Who::Buyer, receipt("L1", 1_000_000, true));
    let until = c.in_days(800);
    c.ok(
        Who::Compliance,
        sanction(
            SanctionKind::Blacklisted { until },
            SanctionReason::LegalViolation,
        ),
    );
    c.ok(Who::Buyer, dispatch("L1", "smelter"));
    c.refused(
        Who::Smelter,
        receipt("L1", 1_000_000, true),
        RuleCode::SupplierSanctioned,
        &["L1"],
    );
}

#[test]
fn a_receipt_policy_requires_code_acknowledgement_and_a_current_review() {
    let mut c = Chain::new();
    c.appoint();
    let policy = |p| {
        EventBody::SetReceiptPolicy(ReceiptPolicy {
            organisation: pid("smelter"),
            unreviewed_supplier: p,
        })
    };
    c.refused(
        Who::Mine,
        policy(UnreviewedSupplierPolicy::Refuse),
        RuleCode::NotAuthorized,
        &[],
    );
    c.ok(Who::Compliance, policy(UnreviewedSupplierPolicy::Refuse));
    c.create("L1", "KAN", 1_000_000);
    c.ok(Who::Mine, dispatch("L1", "smelter"));
    c.refused(
        Who::Smelter,
        receipt("L1", 1_000_000, true),
        RuleCode::CodeNotAcknowledged,
        &["L1"],
    );
    c.ok(
        Who::Mine,
        EventBody::AcknowledgeCode(CodeOfConductAcknowledgement {
            organisation: pid("smelter"),
            policy_sha256: sha256(b"Supplier Code of Conduct v3"),
            version: "3".into(),
        }),
    );
    c.refused(
        Who::Smelter,
        receipt("L1", 1_000_000, true),
        RuleCode::SupplierNotReviewed,
        &["L1"],
    );
    // An onboarding assessment scores all twelve elements.
    let scores: Vec<EsgScore> = EsgElement::ALL
        .iter()
        .map(|e| EsgScore {
            element: *e,
            score: 80,
        })
        .collect();
    c.refused(
        Who::Compliance,
        EventBody::AssessOnboarding(OnboardingAssessment {
            organisation: pid("smelter"),
            supplier: pid("mine"),
            scores: scores[..11].to_vec(),
            passed: true,
            report: None,
        }),
        RuleCode::InvalidField,
        &[],
    );
    c.ok(
        Who::Compliance,
        EventBody::AssessOnboarding(OnboardingAssessment {
            organisation: pid("smelter"),
            supplier: pid("mine"),
            scores,
            passed: true,
            report: None,
        }),
    );
    let review = |passed, cadence, until| {
        EventBody::ReviewSupplier(SupplierReview {
            organisation: pid("smelter"),
            supplier: pid("mine"),
            passed,
            cadence,
            valid_until: until,
            report: None,
        })
    };
    let too_long = c.in_days(120);
    c.refused(
        Who::Compliance,
        review(true, ReviewCadence::Quarterly, too_long),
        RuleCode::InvalidField,
        &[],
    );
    let failed_until = c.in_days(90);
    c.ok(
        Who::Compliance,
        review(false, ReviewCadence::Quarterly, failed_until),
    );
    c.refused(
        Who::Smelter,
        receipt("L1", 1_000_000, true),
        RuleCode::SupplierNotReviewed,
        &["L1"],
    );
    let until = c.in_days(90);
    c.ok(
        Who::Compliance,
        review(true, ReviewCadence::Quarterly, until),
    );
    c.ok(Who::Smelter, receipt("L1", 1_000_000, true));
    // After the review expires, the next delivery is refused again.
    c.create("L2", "KAN", 1_000_000);
    c.ok(Who::Mine, dispatch("L2", "smelter"));
    c.f.clock.advance(91 * DAY);
    c.refused(
        Who::Smelter,
        receipt("L2", 1_000_000, true),
        RuleCode::SupplierNotReviewed,
        &["L2"],
    );
    // A policy of flagging accepts it and records a red flag instead.
    c.ok(Who::Compliance, policy(UnreviewedSupplierPolicy::Flag));
    c.ok(Who::Smelter, receipt("L2", 1_000_000, true));
    let kinds: Vec<FlagKind> = c.flags_of("L2").iter().map(|f| f.kind).collect();
    assert_eq!(kinds, vec![FlagKind::SupplierNotReviewed]);
}

#[test]
fn red_flags_are_raised_at_capture_and_decided_by_compliance() {
    let mut c = Chain::new();
    c.appoint();
    // Production above capacity: KAN may produce 50,000 t of Cu a year; a
    // lot with 230,000 t contained is far above it.
    c.create("BIG", "KAN", 1_000_000_000_000);
    let big = c.flags_of("BIG");
    assert_eq!(big.len(), 1);
    assert_eq!(big[0].kind, FlagKind::ProductionAboveCapacity);
    assert_eq!(big[0].organisation, pid("mine"));
    // Artisanal and CAHRA origin, weight variance, missing export permit.
    c.ok(
        Who::Compliance,
        EventBody::DetermineCahra(CahraFinding {
            site: SiteId::new("ART").unwrap(),
            cahra: true,
            effective: Timestamp::from_millis(common::START_MS),
            source: "EU CAHRA indicative list".into(),
        }),
    );
    c.create("A1", "ART", 1_000_000);
    c.ok(
        Who::Mine,
        EventBody::Dispatch(Dispatch {
            lot: lot_id("A1"),
            to: pid("smelter"),
            route: vec![
                oretrail::model::CountryCode::new("ZM").unwrap(),
                oretrail::model::CountryCode::new("TZ").unwrap(),
            ],
            documents: vec![DocumentRef {
                kind: DocumentKind::BillOfLading,
                sha256: sha256(b"bl"),
            }],
        }),
    );
    c.ok(Who::Smelter, receipt("A1", 980_000, true));
    let mut kinds: Vec<FlagKind> = c.flags_of("A1").iter().map(|f| f.kind).collect();
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        vec![
            FlagKind::ArtisanalOrigin,
            FlagKind::CahraOrigin,
            FlagKind::MissingExportDocument,
            FlagKind::WeightVariance,
        ]
    );
    let cahra = c
        .flags_of("A1")
        .into_iter()
        .find(|f| f.kind == FlagKind::CahraOrigin)
        .unwrap();
    assert_eq!(cahra.organisation, pid("smelter"));
    assert!(cahra.decisions.is_empty(), "a new flag is open");
    // Decisions: only the organisation's compliance role; unknown flags refused.
    let decide = |flag: FlagId, decision| {
        EventBody::DecideFlag(FlagDecision {
            flag,
            decision,
            note: "step 3 risk management".into(),
        })
    };
    c.refused(
        Who::Smelter,
        decide(cahra.id, FlagDecisionKind::Suspend),
        RuleCode::NotAuthorized,
        &[],
    );
    c.refused(
        Who::Compliance,
        decide(FlagId { entry: 9999, n: 0 }, FlagDecisionKind::Continue),
        RuleCode::FlagUnknown,
        &[],
    );
    c.ok(
        Who::Compliance,
        decide(
            cahra.id,
            FlagDecisionKind::Mitigate {
                plan: "on-site audit of ART before the next delivery".into(),
            },
        ),
    );
    let decided = c.f.ledger().state().flag(cahra.id).unwrap().unwrap();
    assert_eq!(decided.decisions.len(), 1);
    assert_eq!(decided.decisions[0].by, pid("compliance"));
    // Flags follow the material into what is made from it.
    c.ok(
        Who::Smelter,
        EventBody::Transform(Transformation {
            process: "campaign".into(),
            inputs: vec![TransformInput {
                lot: lot_id("A1"),
                consumed_wet: Grams(980_000),
            }],
            outputs: vec![TransformOutput {
                lot: lot_id("C1"),
                kind: LotKind::Cathode,
                metal: Element::Cu,
                // 226,500 g of Cu against 225,400 g in: within the
                // tolerance, so accepted with a flag.
                wet: Grams(226_523),
                moisture: ppb(0),
                assays: cu(999_900_000),
            }],
        }),
    );
    let cathode = c.lot("C1").unwrap();
    assert!(cathode.flags.contains(&cahra.id));
    assert!(
        c.flags_of("C1")
            .iter()
            .any(|f| f.kind == FlagKind::NearMetalTolerance)
    );
}

#[test]
fn documents_and_corrections_are_new_entries_that_edit_nothing() {
    let mut c = Chain::new();
    let created = c.create("L1", "KAN", 1_000_000);
    let doc = DocumentRef {
        kind: DocumentKind::WeightCertificate,
        sha256: sha256(b"weight certificate"),
    };
    c.refused(
        Who::Lab,
        EventBody::AttachDocument(DocumentAttachment {
            lot: lot_id("L1"),
            document: doc.clone(),
        }),
        RuleCode::NotAuthorized,
        &["L1"],
    );
    c.ok(
        Who::Mine,
        EventBody::AttachDocument(DocumentAttachment {
            lot: lot_id("L1"),
            document: doc,
        }),
    );
    let assayed = c.ok(
        Who::Lab,
        EventBody::RecordAssay(AssayReport {
            lot: lot_id("L1"),
            stage: AssayStage::Final,
            assays: cu(240_000_000),
            moisture: None,
            certificate: None,
        }),
    );
    let correction = |entry| {
        EventBody::Correct(Correction {
            entry,
            lot: Some(lot_id("L1")),
            reason: "production period was misstated".into(),
        })
    };
    c.refused(Who::Mine, correction(9999), RuleCode::InvalidField, &["L1"]);
    c.refused(Who::Mine, correction(1), RuleCode::InvalidField, &["L1"]);
    let fixed = c.ok(Who::Mine, correction(created));
    let l = c.lot("L1").unwrap();
    assert_eq!(
        l.corrections,
        vec![(fixed, created, "production period was misstated".into())]
    );
    assert_eq!(l.documents.len(), 1);
    assert!(l.history.contains(&assayed));
    verify_log(&c.f.log_path(), false).unwrap();
}

#[test]
fn routes_through_a_cahra_country_are_flagged() {
    let mut c = Chain::new();
    let finding = EventBody::DetermineCountryCahra(oretrail::model::CountryCahraFinding {
        country: oretrail::model::CountryCode::new("CD").unwrap(),
        cahra: true,
        effective: Timestamp::from_millis(common::START_MS),
        source: "OECD Annex II review 2026".into(),
    });
    c.refused(Who::Mine, finding.clone(), RuleCode::NotAuthorized, &[]);
    c.ok(Who::Compliance, finding);
    c.create("L1", "KAN", 1_000_000);
    let route = |countries: &[&str]| {
        EventBody::Dispatch(Dispatch {
            lot: lot_id("L1"),
            to: pid("smelter"),
            route: countries
                .iter()
                .map(|c| oretrail::model::CountryCode::new(*c).unwrap())
                .collect(),
            documents: vec![DocumentRef {
                kind: DocumentKind::ExportPermit,
                sha256: sha256(b"permit"),
            }],
        })
    };
    c.ok(Who::Mine, route(&["ZM", "CD", "ZM"]));
    let kinds: Vec<FlagKind> = c.flags_of("L1").iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        vec![FlagKind::CahraTransit],
        "one flag per country, export permit present"
    );
}
