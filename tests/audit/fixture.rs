//! A small ledger with known masses, grades and dates, for checking
//! report figures against hand-computed values (`reports.rs`).
//!
//! Two copper mines in two countries (NOR, large-scale, Zambia; ART,
//! artisanal, Congo, determined a CAHRA), a recycler (SCR, Germany), a
//! smelter with its appointed compliance officer, an assay lab and a
//! buyer. Every lot is copper; the figures (dry mass = wet − moisture,
//! contained = dry × grade, both rounded down) are worked out in
//! `reports.rs` where they are checked.
//!
//! January 2026 (the period that closes):
//! - Jan 5: N1 at NOR (100 t wet, 10 % moisture, 25 % Cu, 50 g/t Ag),
//!   A1 at ART (10 t wet, 5 %, 20 % Cu), S1 scrap at SCR (5 t, dry,
//!   90 % Cu) are created and dispatched to the smelter;
//! - Jan 10: the smelter receives all three (S1 weighs 4.99 t) and buys
//!   them. A1's receipt raises two red flags: CAHRA origin (n = 0) and
//!   artisanal origin (1);
//! - Jan 12: the officer decides the CAHRA flag (mitigate); the artisanal
//!   one stays open;
//! - Jan 15: blend N1 + A1 → B1; Jan 20: smelt B1 + S1 → ANODE1 (29 t,
//!   99 % Cu); Jan 25: ANODE1 sold and dispatched to the buyer, who
//!   receives it on Jan 26.
//!
//! February 2026 (the period that does not close):
//! - Feb 2: N2 (50 t, 10 %, 24 % Cu provisional) and R1 (20 t, 10 %, 25 %)
//!   created at NOR and dispatched to the smelter;
//! - Feb 5: N2 received; Feb 8: R1 refused (it goes back to the mine);
//! - Feb 10: the lab's final assay puts N2 at 25 % Cu;
//! - Feb 20: N3 (40 t, 10 %, 25 %) dispatched to the smelter, received
//!   only on Mar 3 (in transit across the end of February).

use std::path::PathBuf;
use std::sync::OnceLock;

use oretrail::crypto::{Digest, sha256};
use oretrail::model::{
    Assay, AssayReport, AssayStage, Blend, CahraFinding, CountryCode, DocumentAttachment,
    DocumentKind, DocumentRef, Element, EventBody, FlagDecision, FlagDecisionKind, FlagId, Grams,
    LotCreation, LotId, LotKind, LotReceipt, OfficerAppointment, Ppb, Role, Sale, SiteId,
    SiteRegistration, SiteScale, Timestamp, TransformInput, TransformOutput, Transformation,
};
use oretrail::signer::Signer;

use crate::common::{Fixture, START_MS, pid};

pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// 2026-01-01T00:00:00Z plus `days` days and `hours` hours.
pub fn day(days: u64, hours: u64) -> Timestamp {
    Timestamp::from_millis(START_MS + days * DAY_MS + hours * 60 * 60 * 1000)
}

pub fn lot(id: &str) -> LotId {
    LotId::new(id).unwrap()
}

pub fn site(id: &str) -> SiteId {
    SiteId::new(id).unwrap()
}

fn ppb(p: u64) -> Ppb {
    Ppb::new(p).unwrap()
}

fn assay(element: Element, grade: u64) -> Assay {
    Assay {
        element,
        grade: ppb(grade),
    }
}

/// A document reference named by a short text (its SHA-256).
pub fn doc(kind: DocumentKind, text: &str) -> DocumentRef {
    DocumentRef {
        kind,
        sha256: sha256(text.as_bytes()),
    }
}

pub fn digest(text: &str) -> Digest {
    sha256(text.as_bytes())
}

/// The entries the tests refer to.
#[derive(Debug, Default)]
pub struct Entries {
    pub n1_receipt: u64,
    pub a1_receipt: u64,
    pub s1_receipt: u64,
    pub decision: u64,
    pub transform: u64,
    pub n2_receipt: u64,
    pub r1_refusal: u64,
    pub n2_final_assay: u64,
    pub n3_receipt: u64,
}

pub struct ReportLedger {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub log: PathBuf,
    pub entries: Entries,
}

impl ReportLedger {
    /// The CAHRA-origin flag raised by A1's receipt (decided).
    pub fn cahra_flag(&self) -> FlagId {
        FlagId {
            entry: self.entries.a1_receipt,
            n: 0,
        }
    }

    /// The artisanal-origin flag raised by A1's receipt (left open).
    pub fn artisanal_flag(&self) -> FlagId {
        FlagId {
            entry: self.entries.a1_receipt,
            n: 1,
        }
    }
}

struct Builder {
    f: Fixture,
    north: Signer,
    coop: Signer,
    recycler: Signer,
    smelter: Signer,
    officer: Signer,
    lab: Signer,
    buyer: Signer,
}

#[derive(Clone, Copy)]
enum Who {
    Operator,
    North,
    Coop,
    Recycler,
    Smelter,
    Officer,
    Lab,
    Buyer,
}

impl Builder {
    fn signer(&mut self, who: Who) -> &mut Signer {
        match who {
            Who::Operator => &mut self.f.operator,
            Who::North => &mut self.north,
            Who::Coop => &mut self.coop,
            Who::Recycler => &mut self.recycler,
            Who::Smelter => &mut self.smelter,
            Who::Officer => &mut self.officer,
            Who::Lab => &mut self.lab,
            Who::Buyer => &mut self.buyer,
        }
    }

    /// Moves the clock to `at` (never back).
    fn at(&mut self, at: Timestamp) {
        let now = self.f.clock.now().as_millis();
        assert!(at.as_millis() >= now, "the fixture's clock only moves on");
        self.f.clock.advance(at.as_millis() - now);
    }

    fn ok(&mut self, who: Who, body: EventBody) -> u64 {
        self.f.clock.advance(1000);
        let now = self.f.clock.now();
        let signed = self.signer(who).sign(now, body).unwrap();
        self.f.ledger().append(signed).unwrap().index
    }

    /// Creates a lot of `wet` grams with `moisture` ppb.
    fn create(
        &mut self,
        who: Who,
        id: &str,
        at_site: &str,
        kind: LotKind,
        (wet, moisture): (u64, u64),
        assays: Vec<Assay>,
    ) {
        let now = self.f.clock.now();
        self.ok(
            who,
            EventBody::CreateLot(LotCreation {
                lot: lot(id),
                site: site(at_site),
                kind,
                wet: Grams(wet),
                moisture: ppb(moisture),
                assays,
                produced_from: now,
                produced_until: now,
            }),
        );
    }

    fn dispatch(
        &mut self,
        who: Who,
        id: &str,
        to: &str,
        country: &str,
        documents: Vec<DocumentRef>,
    ) {
        self.ok(
            who,
            EventBody::Dispatch(oretrail::model::Dispatch {
                lot: lot(id),
                to: pid(to),
                route: vec![CountryCode::new(country).unwrap()],
                documents,
            }),
        );
    }

    fn receive(
        &mut self,
        who: Who,
        id: &str,
        wet: u64,
        accepted: bool,
        documents: Vec<DocumentRef>,
    ) -> u64 {
        self.ok(
            who,
            EventBody::Receive(LotReceipt {
                lot: lot(id),
                measured_wet: Grams(wet),
                accepted,
                note: if accepted {
                    String::new()
                } else {
                    "moisture above the contract limit".into()
                },
                documents,
            }),
        )
    }
}

/// The ledger, built once for the test binary.
pub fn report_ledger() -> &'static ReportLedger {
    static LEDGER: OnceLock<ReportLedger> = OnceLock::new();
    LEDGER.get_or_init(build)
}

fn build() -> ReportLedger {
    let mut f = Fixture::new();
    let producer = vec![Role::Producer, Role::Custodian, Role::Seller];
    let north = f.register("mine.north", 21, producer.clone());
    let coop = f.register("mine.coop", 22, producer.clone());
    let recycler = f.register("recycler", 23, producer);
    let smelter = f.register(
        "smelter",
        24,
        vec![
            Role::Custodian,
            Role::Processor,
            Role::Seller,
            Role::Purchaser,
        ],
    );
    let officer = f.register("officer", 25, vec![Role::Compliance]);
    let lab = f.register("lab", 26, vec![Role::Assayer]);
    let buyer = f.register("buyer", 27, vec![Role::Purchaser, Role::Custodian]);
    let mut b = Builder {
        f,
        north,
        coop,
        recycler,
        smelter,
        officer,
        lab,
        buyer,
    };
    let mut e = Entries::default();

    // January 1: the officer acts for the smelter and registers the sites.
    b.ok(
        Who::Operator,
        EventBody::AppointOfficer(OfficerAppointment {
            officer: pid("officer"),
            organisation: pid("smelter"),
        }),
    );
    for (id, operator, country, scale) in [
        ("NOR", "mine.north", "ZM", SiteScale::LargeScale),
        ("ART", "mine.coop", "CD", SiteScale::Artisanal),
        ("SCR", "recycler", "DE", SiteScale::Recycling),
    ] {
        b.ok(
            Who::Officer,
            EventBody::RegisterSite(SiteRegistration {
                site: site(id),
                operator: pid(operator),
                name: format!("{id} site"),
                country: CountryCode::new(country).unwrap(),
                latitude_micro: -10_000_000,
                longitude_micro: 25_000_000,
                scale,
                metal: Element::Cu,
                annual_capacity: Grams(1_000_000_000_000),
            }),
        );
    }
    b.ok(
        Who::Officer,
        EventBody::DetermineCahra(CahraFinding {
            site: site("ART"),
            cahra: true,
            effective: day(0, 0),
            source: "EU CAHRA indicative list".into(),
        }),
    );

    // January 5: three lots created and dispatched.
    b.at(day(4, 8));
    b.create(
        Who::North,
        "N1",
        "NOR",
        LotKind::Concentrate,
        (100_000_000, 100_000_000),
        vec![assay(Element::Cu, 250_000_000), assay(Element::Ag, 50_000)],
    );
    b.ok(
        Who::North,
        EventBody::AttachDocument(DocumentAttachment {
            lot: lot("N1"),
            document: doc(DocumentKind::AssayCertificate, "N1 mine assay"),
        }),
    );
    b.dispatch(
        Who::North,
        "N1",
        "smelter",
        "ZM",
        vec![doc(DocumentKind::BillOfLading, "N1 bill of lading")],
    );
    b.create(
        Who::Coop,
        "A1",
        "ART",
        LotKind::Concentrate,
        (10_000_000, 50_000_000),
        vec![assay(Element::Cu, 200_000_000)],
    );
    b.dispatch(Who::Coop, "A1", "smelter", "CD", vec![]);
    b.create(
        Who::Recycler,
        "S1",
        "SCR",
        LotKind::Scrap,
        (5_000_000, 0),
        vec![assay(Element::Cu, 900_000_000)],
    );
    b.dispatch(Who::Recycler, "S1", "smelter", "DE", vec![]);

    // January 10: received.
    b.at(day(9, 8));
    e.n1_receipt = b.receive(
        Who::Smelter,
        "N1",
        100_000_000,
        true,
        vec![doc(DocumentKind::WeightCertificate, "N1 smelter weight")],
    );
    e.a1_receipt = b.receive(Who::Smelter, "A1", 10_000_000, true, vec![]);
    e.s1_receipt = b.receive(Who::Smelter, "S1", 4_990_000, true, vec![]);
    // The smelter buys what it received, so that it may blend and smelt it.
    for (who, id) in [(Who::North, "N1"), (Who::Coop, "A1"), (Who::Recycler, "S1")] {
        b.ok(
            who,
            EventBody::Sell(Sale {
                lot: lot(id),
                buyer: pid("smelter"),
                documents: vec![],
            }),
        );
    }

    // January 12: the CAHRA flag decided; the artisanal one stays open.
    b.at(day(11, 8));
    e.decision = b.ok(
        Who::Officer,
        EventBody::DecideFlag(FlagDecision {
            flag: FlagId {
                entry: e.a1_receipt,
                n: 0,
            },
            decision: FlagDecisionKind::Mitigate {
                plan: "third-party site assessment".into(),
            },
            note: "enhanced due diligence".into(),
        }),
    );

    // January 15 to 26: blend, smelt, sell and ship.
    b.at(day(14, 8));
    b.ok(
        Who::Smelter,
        EventBody::Blend(Blend {
            inputs: vec![lot("N1"), lot("A1")],
            output: lot("B1"),
        }),
    );
    b.at(day(19, 8));
    e.transform = b.ok(
        Who::Smelter,
        EventBody::Transform(Transformation {
            process: "smelting".into(),
            inputs: vec![
                TransformInput {
                    lot: lot("B1"),
                    consumed_wet: Grams(110_000_000),
                },
                TransformInput {
                    lot: lot("S1"),
                    consumed_wet: Grams(4_990_000),
                },
            ],
            outputs: vec![TransformOutput {
                lot: lot("ANODE1"),
                kind: LotKind::Anode,
                metal: Element::Cu,
                wet: Grams(29_000_000),
                moisture: Ppb::ZERO,
                assays: vec![assay(Element::Cu, 990_000_000)],
            }],
        }),
    );
    b.at(day(24, 8));
    b.ok(
        Who::Smelter,
        EventBody::Sell(Sale {
            lot: lot("ANODE1"),
            buyer: pid("buyer"),
            documents: vec![],
        }),
    );
    b.dispatch(Who::Smelter, "ANODE1", "buyer", "FI", vec![]);
    b.at(day(25, 8));
    b.receive(Who::Buyer, "ANODE1", 29_000_000, true, vec![]);

    // February: N2 and R1; N2 re-assayed; R1 refused.
    b.at(day(32, 8));
    for id in ["N2", "R1"] {
        let grade = if id == "N2" { 240_000_000 } else { 250_000_000 };
        let wet = if id == "N2" { 50_000_000 } else { 20_000_000 };
        b.create(
            Who::North,
            id,
            "NOR",
            LotKind::Concentrate,
            (wet, 100_000_000),
            vec![assay(Element::Cu, grade)],
        );
        b.dispatch(Who::North, id, "smelter", "ZM", vec![]);
    }
    b.at(day(35, 8));
    e.n2_receipt = b.receive(Who::Smelter, "N2", 50_000_000, true, vec![]);
    b.at(day(38, 8));
    e.r1_refusal = b.receive(Who::Smelter, "R1", 20_000_000, false, vec![]);
    b.at(day(40, 8));
    e.n2_final_assay = b.ok(
        Who::Lab,
        EventBody::RecordAssay(AssayReport {
            lot: lot("N2"),
            stage: AssayStage::Final,
            assays: vec![assay(Element::Cu, 250_000_000)],
            moisture: None,
            certificate: Some(doc(DocumentKind::AssayCertificate, "N2 final assay")),
        }),
    );

    // N3 is on its way across the end of February.
    b.at(day(50, 8));
    b.create(
        Who::North,
        "N3",
        "NOR",
        LotKind::Concentrate,
        (40_000_000, 100_000_000),
        vec![assay(Element::Cu, 250_000_000)],
    );
    b.dispatch(Who::North, "N3", "smelter", "ZM", vec![]);
    b.at(day(61, 8));
    e.n3_receipt = b.receive(Who::Smelter, "N3", 40_000_000, true, vec![]);

    let Builder { mut f, .. } = b;
    f.close();
    let data = f.path().to_path_buf();
    let log = f.log_path();
    ReportLedger {
        _dir: f.dir,
        data,
        log,
        entries: e,
    }
}
