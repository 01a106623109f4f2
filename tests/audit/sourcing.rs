//! The sourcing outputs: supplier KPIs, CMRT/EMRT buyer rows, forward
//! impact and the reproducible audit sample.
//!
//! A small ledger built here (three mines, a trader, a smelter and its
//! compliance officer, a buyer) gives figures worked out by hand in the
//! comments next to each expected literal; the sample's choice is redone
//! from the log's frames with SHA-256 alone. Each output also runs over
//! the demo ledger.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use oretrail::audit::LogSnapshot;
use oretrail::audit::report::cmrt::{CmrtReport, CmrtRequest, MineScale};
use oretrail::audit::report::impact::{ImpactReport, ImpactRequest, Reached, Target};
use oretrail::audit::report::kpis::{KpisReport, KpisRequest, ReviewStatus};
use oretrail::audit::report::sample::{EvidenceRole, SampleReport, SampleRequest};
use oretrail::audit::report::{self, Period, Report, Request, Scope};
use oretrail::codec;
use oretrail::crypto::{Digest, sha256};
use oretrail::ledger::{AppendError, LOG_FILE};
use oretrail::model::{
    Assay, Blend, CahraFinding, CountryCode, Dispatch, DocumentKind, DocumentRef, Element, Entry,
    EsgElement, EsgScore, Event, EventBody, Grams, LotCreation, LotId, LotKind, LotReceipt,
    OfficerAppointment, OnboardingAssessment, ParticipantKind, Ppb, Registration, ReviewCadence,
    Role, Sale, SanctionKind, SanctionReason, SiteId, SiteRegistration, SiteScale, Split,
    SplitPart, SupplierReview, SupplierSanction, Timestamp, TransformInput, TransformOutput,
    Transformation,
};
use oretrail::rules::RuleCode;
use oretrail::signer::Signer;
use oretrail::store::FrameKind;
use oretrail::store::log::{FrameReader, LOG_HEADER};

use crate::common::{self, Fixture, START_MS, key, pid};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn day(d: u64) -> Timestamp {
    Timestamp::from_millis(START_MS + d * DAY_MS)
}

fn lot(id: &str) -> LotId {
    LotId::new(id).unwrap()
}

fn site(id: &str) -> SiteId {
    SiteId::new(id).unwrap()
}

fn country(c: &str) -> CountryCode {
    CountryCode::new(c).unwrap()
}

fn generated() -> Timestamp {
    Timestamp::parse("2027-01-15T09:00:00Z").unwrap()
}

/// The small ledger and the entries that matter, by name.
struct Small {
    dir: tempfile::TempDir,
    entries: BTreeMap<&'static str, u64>,
}

impl Small {
    fn snapshot(&self) -> LogSnapshot {
        LogSnapshot::open(&self.dir.path().join(LOG_FILE)).unwrap()
    }

    fn at(&self, name: &str) -> u64 {
        self.entries[name]
    }
}

struct Builder {
    f: Fixture,
    signers: BTreeMap<&'static str, Signer>,
    entries: BTreeMap<&'static str, u64>,
}

impl Builder {
    /// Moves the clock to the start of day `d` (it never goes back).
    fn day(&mut self, d: u64) {
        let target = START_MS + d * DAY_MS;
        let now = self.f.clock.now().as_millis();
        assert!(target >= now, "the fixture's days go forward");
        self.f.clock.advance(target - now);
    }

    fn register(
        &mut self,
        id: &'static str,
        n: u32,
        home: &str,
        kind: ParticipantKind,
        roles: Vec<Role>,
    ) {
        let k = key(n);
        let body = EventBody::RegisterParticipant(Registration {
            participant: pid(id),
            legal_name: format!("{id} Ltd"),
            country: country(home),
            kinds: vec![kind],
            roles,
            keys: vec![k.public()],
        });
        self.submit("operator", body).unwrap();
        self.signers
            .insert(id, Signer::with_first_nonce(common::ORIGIN, pid(id), k, 1));
    }

    fn submit(&mut self, who: &str, body: EventBody) -> Result<u64, AppendError> {
        self.f.clock.advance(1000);
        let now = self.f.clock.now();
        let signer = if who == "operator" {
            &mut self.f.operator
        } else {
            self.signers.get_mut(who).unwrap()
        };
        let signed = signer.sign(now, body).unwrap();
        self.f.ledger().append(signed).map(|r| r.index)
    }

    /// Appends, remembering the entry under `name` (when not empty).
    fn ok(&mut self, name: &'static str, who: &str, body: EventBody) -> u64 {
        let index = self
            .submit(who, body)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if !name.is_empty() {
            self.entries.insert(name, index);
        }
        index
    }

    /// A lot of `wet` grams at `moisture` ppb and `grade` ppb of copper.
    fn create(
        &mut self,
        name: &'static str,
        mine: &str,
        at: &str,
        wet: u64,
        moisture: u64,
        grade: u64,
    ) {
        let now = self.f.clock.now();
        self.ok(
            name,
            mine,
            EventBody::CreateLot(LotCreation {
                lot: lot(name),
                site: site(at),
                kind: LotKind::Concentrate,
                wet: Grams(wet),
                moisture: Ppb::new(moisture).unwrap(),
                assays: vec![Assay {
                    element: Element::Cu,
                    grade: Ppb::new(grade).unwrap(),
                }],
                produced_from: now,
                produced_until: now,
            }),
        );
    }

    fn sell(&mut self, name: &'static str, seller: &str, l: &str, buyer: &str) {
        self.ok(
            name,
            seller,
            EventBody::Sell(Sale {
                lot: lot(l),
                buyer: pid(buyer),
                documents: vec![],
            }),
        );
    }

    /// Dispatch and accepted receipt at the dispatched weight.
    fn deliver(
        &mut self,
        names: (&'static str, &'static str),
        from: &str,
        l: &str,
        to: &str,
        route: &[&str],
        wet: u64,
    ) {
        self.ok(
            names.0,
            from,
            EventBody::Dispatch(Dispatch {
                lot: lot(l),
                to: pid(to),
                route: route.iter().map(|c| country(c)).collect(),
                documents: vec![DocumentRef {
                    kind: DocumentKind::ExportPermit,
                    sha256: sha256(format!("export permit for {l}").as_bytes()),
                }],
            }),
        );
        self.ok(
            names.1,
            to,
            EventBody::Receive(LotReceipt {
                lot: lot(l),
                measured_wet: Grams(wet),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        );
    }

    fn onboard(&mut self, name: &'static str, supplier: &str) {
        self.ok(
            name,
            "officer",
            EventBody::AssessOnboarding(OnboardingAssessment {
                organisation: pid("smelter"),
                supplier: pid(supplier),
                scores: EsgElement::ALL
                    .iter()
                    .map(|e| EsgScore {
                        element: *e,
                        score: 80,
                    })
                    .collect(),
                passed: true,
                report: None,
            }),
        );
    }

    fn review(&mut self, name: &'static str, supplier: &str, cadence: ReviewCadence, until: u64) {
        self.ok(
            name,
            "officer",
            EventBody::ReviewSupplier(SupplierReview {
                organisation: pid("smelter"),
                supplier: pid(supplier),
                passed: true,
                cadence,
                valid_until: day(until),
                report: None,
            }),
        );
    }
}

/// The small ledger, built once. Its story, by day (record time):
///
/// - day 0: the smelter (ZM), its compliance officer (ZM), mines A (ZM),
///   B (CD) and C (PE), a trader (CH) and a buyer (DE) are registered;
///   sites A-PIT (large-scale), B-ART (artisanal) and C-PIT.
/// - day 1: B and C onboarded (passed); B reviewed quarterly, valid until
///   day 61; C reviewed annually, valid until day 300.
/// - day 20: A onboarded (passed), reviewed annually, valid until day 380.
/// - day 25: B-ART determined a CAHRA.
/// - day 30: A creates A1 (1,000,000 g wet, dry, 25 % Cu: 250,000 g Cu),
///   sells it to the smelter and delivers it.
/// - day 31: B creates B1 (2,000,000 g wet, 10 % moisture: 1,800,000 g
///   dry, 20 % Cu: 360,000 g Cu), sells and delivers it.
/// - day 32: A creates A2 (400,000 g, 25 %: 100,000 g Cu), sells it to the
///   trader and delivers it to the smelter (the trader is the supplier).
/// - day 40: the smelter blacklists C; day 41 C's delivery C1 is refused.
/// - day 50: the smelter blends A1 + B1 into BL1, smelts BL1 into cathode
///   CATH1 (600,000 g at 99.99 %: 599,940 g Cu) and splits it into CATH1a
///   (400,000 g: 399,960 g Cu) and CATH1b (200,000 g: 199,980 g Cu).
/// - day 55: the smelter sells CATH1a to the buyer and delivers it.
/// - day 56: A creates A3 (200,000 g, 25 %: 50,000 g Cu) and sells and
///   delivers it to the buyer directly.
fn small() -> &'static Small {
    static SMALL: OnceLock<Small> = OnceLock::new();
    SMALL.get_or_init(|| {
        let mut b = Builder {
            f: Fixture::new(),
            signers: BTreeMap::new(),
            entries: BTreeMap::new(),
        };
        let mine_roles = || vec![Role::Producer, Role::Custodian, Role::Seller];
        b.register(
            "smelter",
            10,
            "ZM",
            ParticipantKind::Smelter,
            vec![
                Role::Custodian,
                Role::Processor,
                Role::Seller,
                Role::Purchaser,
            ],
        );
        b.register(
            "officer",
            11,
            "ZM",
            ParticipantKind::Smelter,
            vec![Role::Compliance],
        );
        b.register("mine-a", 12, "ZM", ParticipantKind::Mine, mine_roles());
        b.register("mine-b", 13, "CD", ParticipantKind::Mine, mine_roles());
        b.register("mine-c", 14, "PE", ParticipantKind::Mine, mine_roles());
        b.register(
            "trader",
            15,
            "CH",
            ParticipantKind::Trader,
            vec![Role::Purchaser, Role::Seller],
        );
        b.register(
            "buyer",
            16,
            "DE",
            ParticipantKind::Buyer,
            vec![Role::Purchaser, Role::Custodian],
        );
        b.ok(
            "",
            "operator",
            EventBody::AppointOfficer(OfficerAppointment {
                officer: pid("officer"),
                organisation: pid("smelter"),
            }),
        );
        for (name, id, operator, home, scale) in [
            ("site A-PIT", "A-PIT", "mine-a", "ZM", SiteScale::LargeScale),
            ("site B-ART", "B-ART", "mine-b", "CD", SiteScale::Artisanal),
            ("site C-PIT", "C-PIT", "mine-c", "PE", SiteScale::LargeScale),
        ] {
            b.ok(
                name,
                "officer",
                EventBody::RegisterSite(SiteRegistration {
                    site: site(id),
                    operator: pid(operator),
                    name: format!("{id} mine"),
                    country: country(home),
                    latitude_micro: 0,
                    longitude_micro: 0,
                    scale,
                    metal: Element::Cu,
                    annual_capacity: Grams(1_000_000_000_000),
                }),
            );
        }
        b.day(1);
        b.onboard("onboard B", "mine-b");
        b.review("review B", "mine-b", ReviewCadence::Quarterly, 61);
        b.onboard("onboard C", "mine-c");
        b.review("review C", "mine-c", ReviewCadence::Annual, 300);
        b.day(20);
        b.onboard("onboard A", "mine-a");
        b.review("review A", "mine-a", ReviewCadence::Annual, 380);
        b.day(25);
        b.ok(
            "cahra B-ART",
            "officer",
            EventBody::DetermineCahra(CahraFinding {
                site: site("B-ART"),
                cahra: true,
                effective: day(25),
                source: "test list".into(),
            }),
        );
        b.day(30);
        b.create("A1", "mine-a", "A-PIT", 1_000_000, 0, 250_000_000);
        b.sell("sell A1", "mine-a", "A1", "smelter");
        b.deliver(
            ("dispatch A1", "receive A1"),
            "mine-a",
            "A1",
            "smelter",
            &["ZM"],
            1_000_000,
        );
        b.day(31);
        b.create("B1", "mine-b", "B-ART", 2_000_000, 100_000_000, 200_000_000);
        b.sell("sell B1", "mine-b", "B1", "smelter");
        b.deliver(
            ("dispatch B1", "receive B1"),
            "mine-b",
            "B1",
            "smelter",
            &["CD", "ZM"],
            2_000_000,
        );
        b.day(32);
        b.create("A2", "mine-a", "A-PIT", 400_000, 0, 250_000_000);
        b.sell("sell A2", "mine-a", "A2", "trader");
        b.deliver(
            ("dispatch A2", "receive A2"),
            "mine-a",
            "A2",
            "smelter",
            &["ZM"],
            400_000,
        );
        b.day(40);
        b.ok(
            "sanction C",
            "officer",
            EventBody::SanctionSupplier(SupplierSanction {
                organisation: pid("smelter"),
                supplier: pid("mine-c"),
                kind: SanctionKind::Blacklisted { until: day(440) },
                reason: SanctionReason::LegalViolation,
                note: "test".into(),
            }),
        );
        b.day(41);
        b.create("C1", "mine-c", "C-PIT", 100_000, 0, 250_000_000);
        b.ok(
            "dispatch C1",
            "mine-c",
            EventBody::Dispatch(Dispatch {
                lot: lot("C1"),
                to: pid("smelter"),
                route: vec![country("PE"), country("ZM")],
                documents: vec![],
            }),
        );
        let refused = b.submit(
            "smelter",
            EventBody::Receive(LotReceipt {
                lot: lot("C1"),
                measured_wet: Grams(100_000),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        );
        match refused {
            Err(AppendError::Refused(r)) => assert_eq!(r.code, RuleCode::SupplierSanctioned),
            other => panic!("a delivery from a sanctioned supplier must be refused: {other:?}"),
        }
        b.day(50);
        b.ok(
            "blend BL1",
            "smelter",
            EventBody::Blend(Blend {
                inputs: vec![lot("A1"), lot("B1")],
                output: lot("BL1"),
            }),
        );
        b.ok(
            "smelt CATH1",
            "smelter",
            EventBody::Transform(Transformation {
                process: "smelting and refining".into(),
                inputs: vec![TransformInput {
                    lot: lot("BL1"),
                    consumed_wet: Grams(3_000_000),
                }],
                outputs: vec![TransformOutput {
                    lot: lot("CATH1"),
                    kind: LotKind::Cathode,
                    metal: Element::Cu,
                    wet: Grams(600_000),
                    moisture: Ppb::ZERO,
                    assays: vec![Assay {
                        element: Element::Cu,
                        grade: Ppb::new(999_900_000).unwrap(),
                    }],
                }],
            }),
        );
        b.ok(
            "split CATH1",
            "smelter",
            EventBody::Split(Split {
                lot: lot("CATH1"),
                parts: vec![
                    SplitPart {
                        lot: lot("CATH1a"),
                        wet: Grams(400_000),
                    },
                    SplitPart {
                        lot: lot("CATH1b"),
                        wet: Grams(200_000),
                    },
                ],
            }),
        );
        b.day(55);
        b.sell("sell CATH1a", "smelter", "CATH1a", "buyer");
        b.deliver(
            ("dispatch CATH1a", "receive CATH1a"),
            "smelter",
            "CATH1a",
            "buyer",
            &["ZM", "DE"],
            400_000,
        );
        b.day(56);
        b.create("A3", "mine-a", "A-PIT", 200_000, 0, 250_000_000);
        b.sell("sell A3", "mine-a", "A3", "buyer");
        b.deliver(
            ("dispatch A3", "receive A3"),
            "mine-a",
            "A3",
            "buyer",
            &["ZM", "DE"],
            200_000,
        );
        let Builder { mut f, entries, .. } = b;
        f.close();
        Small {
            dir: f.dir,
            entries,
        }
    })
}

fn compute<R: Report>(snapshot: &LogSnapshot, request: &dyn Request) -> R {
    report::compute_one::<R>(snapshot, request, generated()).unwrap()
}

fn period(from: u64, until: u64) -> Period {
    Period::new(Some(day(from)), Some(day(until))).unwrap()
}

#[test]
fn supplier_kpis_match_the_hand_computed_figures() {
    let s = small();
    let request = KpisRequest {
        scope: Scope::Organisation(pid("smelter")),
        period: period(10, 100),
    };
    let r: KpisReport = compute(&s.snapshot(), &request);
    let k = &r.kpis;
    // Judged at the period's last millisecond.
    assert_eq!(k.as_of.as_millis(), day(100).as_millis() - 1);
    assert_eq!(k.host_countries, vec![country("ZM")]);
    // Suppliers: A, B, C (files) and the trader (supplier of A2).
    assert_eq!(k.suppliers, 4);
    // Current: A, B and the trader (delivered in the last 12 months); C is
    // blacklisted, so not current.
    assert_eq!(k.current_suppliers, 3);
    // Passed review: only A (B's review expired on day 61, the trader has
    // none): 1 / 3 = 333,333,333.3 ppb, rounded down.
    assert_eq!(
        (
            k.passed_esg_review.numerator,
            k.passed_esg_review.denominator,
            k.passed_esg_review.ppb
        ),
        (1, 3, 333_333_333)
    );
    // Onboarded and passed in [day 10, day 100): A only (B and C on day 1).
    assert_eq!(k.new_suppliers_passed, 1);
    // Delivering in the period: A (A1), B (B1), the trader (A2); local
    // (registered in ZM): A. 1 / 3.
    let by = &k.local_procurement_by_suppliers;
    assert_eq!((by.numerator, by.denominator, by.ppb), (1, 3, 333_333_333));
    // Copper received: A1 250,000 (local) + B1 360,000 + A2 100,000 =
    // 710,000 g; 250,000 / 710,000 = 352,112,676.06 ppb.
    let m = &k.local_procurement_by_metal;
    assert_eq!(
        (m.numerator, m.denominator, m.ppb),
        (250_000, 710_000, 352_112_676)
    );
    assert_eq!(k.local_procurement_per_metal.len(), 1);
    assert_eq!(k.local_procurement_per_metal[0].metal, Element::Cu);
    assert_eq!(k.local_procurement_per_metal[0].share, *m);
    // B's review (valid until day 61) has expired without renewal.
    assert_eq!(k.overdue_reviews, 1);
    let line = |id: &str| {
        k.supplier_lines
            .iter()
            .find(|l| l.supplier == pid(id))
            .unwrap()
    };
    assert!(line("mine-b").overdue);
    assert_eq!(line("mine-b").review, ReviewStatus::Expired);
    assert_eq!(line("mine-a").review, ReviewStatus::Passed);
    assert_eq!(line("trader").review, ReviewStatus::None);
    assert!(!line("trader").overdue, "never reviewed is not overdue");
    // C is blacklisted since day 40, by the entry that said so.
    assert_eq!(k.sanctioned_suppliers, 1);
    let sanction = line("mine-c").sanction.clone().unwrap();
    assert_eq!(
        (sanction.kind, sanction.entry),
        ("blacklisted", s.at("sanction C"))
    );
    assert_eq!(sanction.until, Some(day(440)));
    // The rules refused C1: no receipt from a sanctioned supplier.
    assert_eq!(k.receipts_from_sanctioned_suppliers, 0);
    assert!(k.alerts.is_empty());
    // The CSV names every figure once, the counts as written above.
    let rows = r.rows();
    let row = |name: &str| rows.iter().find(|x| x.kpi == name).unwrap();
    assert_eq!(row("current_suppliers").value, 3);
    assert_eq!(row("passed_esg_review").ppb, Some(333_333_333));
    assert_eq!(
        row("local_procurement_by_metal_Cu").denominator,
        Some(710_000)
    );
    assert_eq!(row("receipts_from_sanctioned_suppliers").value, 0);
    assert_eq!(r.findings().len(), 1, "the overdue review is a finding");
}

#[test]
fn supplier_kpis_are_judged_as_of_the_end_of_the_period() {
    let s = small();
    let request = KpisRequest {
        scope: Scope::Site(pid("officer")),
        period: period(0, 35),
    };
    let r: KpisReport = compute(&s.snapshot(), &request);
    let k = &r.kpis;
    // The officer's organisation is the smelter.
    assert_eq!(r.kpis.organisation, pid("smelter"));
    // On day 35 C is not yet blacklisted (day 40) and holds an active
    // file: A, B, C and the trader are current.
    assert_eq!(k.current_suppliers, 4);
    assert_eq!(k.sanctioned_suppliers, 0);
    // A, B (valid until day 61) and C (day 300) passed; the trader has no
    // review: 3 / 4 = 750,000,000 ppb.
    assert_eq!(
        (k.passed_esg_review.numerator, k.passed_esg_review.ppb),
        (3, 750_000_000)
    );
    // Onboarded in [day 0, day 35): B and C (day 1), A (day 20).
    assert_eq!(k.new_suppliers_passed, 3);
    assert_eq!(k.overdue_reviews, 0);
}

#[test]
fn buyer_rows_match_the_hand_computed_shares() {
    let s = small();
    let request = CmrtRequest {
        scope: Scope::Site(pid("buyer")),
        period: Period::ALL,
    };
    let r: CmrtReport = compute(&s.snapshot(), &request);
    let rows = &r.rows;
    // The buyer got CATH1a (399,960 g Cu, bought and received: counted
    // once) and A3 (50,000 g): 449,960 g of copper in two lots.
    let lots: BTreeSet<&str> = rows.lots.iter().map(|l| l.lot.as_str()).collect();
    assert_eq!(lots, BTreeSet::from(["A3", "CATH1a"]));
    assert_eq!(rows.metals.len(), 1);
    assert_eq!(rows.metals[0].metal, Element::Cu);
    assert_eq!(rows.metals[0].grams, Grams(449_960));
    // A3 was never smelted: 50,000 / 449,960 = 111,120,988.5 ppb.
    assert_eq!(
        (
            rows.metals[0].unprocessed.numerator,
            rows.metals[0].unprocessed.ppb
        ),
        (50_000, 111_120_988)
    );
    // One smelter: CATH1a's 399,960 g passed through it: 399,960 /
    // 449,960 = 888,879,011.5 ppb.
    assert_eq!(rows.smelters.len(), 1);
    let smelter = &rows.smelters[0];
    assert_eq!(
        (smelter.smelter.as_str(), smelter.country.as_ref()),
        ("smelter", Some(&country("ZM")))
    );
    assert_eq!(
        (
            smelter.share.numerator,
            smelter.share.denominator,
            smelter.share.ppb
        ),
        (399_960, 449_960, 888_879_011)
    );
    // BL1's origin: A1 brought 250,000 g, B1 360,000 g of 610,000 g:
    // 409,836,065.57 and 590,163,934.43 ppb; the one ppb left over goes to
    // the larger remainder (A-PIT): 409,836,066 and 590,163,934. CATH1 and
    // CATH1a keep it. CATH1a's 399,960 g divide as 163,918.03 (A-PIT) and
    // 236,041.97 (B-ART); the gram left over goes to B-ART: 163,918 and
    // 236,042. A-PIT also gave all of A3: 163,918 + 50,000 = 213,918 g.
    let mines: BTreeMap<&str, _> = rows.mines.iter().map(|m| (m.site.as_str(), m)).collect();
    assert_eq!(mines.len(), 2, "C-PIT's material never reached the buyer");
    let a = mines["A-PIT"];
    // 213,918 / 449,960 = 475,415,592.5 ppb.
    assert_eq!((a.share.numerator, a.share.ppb), (213_918, 475_415_592));
    assert_eq!(
        (a.scale, a.cahra, a.country.clone()),
        (Some(MineScale::LargeScale), false, Some(country("ZM")))
    );
    let b = mines["B-ART"];
    // 236,042 / 449,960 = 524,584,407.5 ppb.
    assert_eq!((b.share.numerator, b.share.ppb), (236_042, 524_584_407));
    assert_eq!(
        (b.scale, b.cahra, b.country.clone()),
        (Some(MineScale::Artisanal), true, Some(country("CD")))
    );
    // CSV: one smelter row, two mine rows.
    let csv = r.rows();
    assert_eq!(
        csv.iter()
            .map(|r| (r.row, r.id.as_str(), r.share_ppb))
            .collect::<Vec<_>>(),
        vec![
            ("smelter", "smelter", 888_879_011),
            ("mine", "A-PIT", 475_415_592),
            ("mine", "B-ART", 524_584_407),
        ]
    );
    assert_eq!(csv[2].cahra, "yes");
}

#[test]
fn buyer_rows_count_only_the_period() {
    let s = small();
    // Before day 56 the buyer had only CATH1a.
    let request = CmrtRequest {
        scope: Scope::Organisation(pid("buyer")),
        period: period(0, 56),
    };
    let r: CmrtReport = compute(&s.snapshot(), &request);
    assert_eq!(r.rows.lots.len(), 1);
    assert_eq!(r.rows.metals[0].grams, Grams(399_960));
    // All of it through the smelter; 163,918 and 236,042 of 399,960:
    // 409,835,983.6 and 590,164,016.4 ppb, rounded down.
    assert_eq!(r.rows.smelters[0].share.ppb, 1_000_000_000);
    let ppb: Vec<u64> = r.rows.mines.iter().map(|m| m.share.ppb).collect();
    assert_eq!(ppb, vec![409_835_983, 590_164_016]);
}

#[test]
fn forward_impact_of_a_cahra_site_reaches_every_lot_made_from_it_and_no_other() {
    let s = small();
    let r: ImpactReport = compute(
        &s.snapshot(),
        &ImpactRequest {
            target: Target::Site(site("B-ART")),
        },
    );
    let i = &r.impact;
    let lots: BTreeMap<&str, _> = i.lots.iter().map(|l| (l.lot.as_str(), l)).collect();
    assert_eq!(
        lots.keys().copied().collect::<Vec<_>>(),
        vec!["B1", "BL1", "CATH1", "CATH1a", "CATH1b"]
    );
    // Lots that took nothing from B-ART are absent: A1 (blended with B1,
    // but made before), A2, A3, C1.
    for absent in ["A1", "A2", "A3", "C1"] {
        assert!(!lots.contains_key(absent), "{absent} has no B-ART material");
    }
    // Shares: B1 all of it; BL1 and everything made from it 590,163,934
    // ppb (see the buyer rows). Grams now: B1 360,000 (consumed, figures
    // kept); BL1 0 (smelted away); CATH1 599,940 × 0.590163934 =
    // 354,062.9; CATH1a 399,960 × … = 236,041.97; CATH1b 199,980 × … =
    // 118,020.98, each rounded down.
    let expect = [
        ("B1", Reached::CreatedAtSite, 1_000_000_000, 360_000),
        ("BL1", Reached::Blend, 590_163_934, 0),
        ("CATH1", Reached::Transform, 590_163_934, 354_062),
        ("CATH1a", Reached::Split, 590_163_934, 236_041),
        ("CATH1b", Reached::Split, 590_163_934, 118_020),
    ];
    for (id, how, share, grams) in expect {
        let l = lots[id];
        assert_eq!(
            (l.how, l.share_ppb, l.grams_from_target),
            (how, share, Grams(grams)),
            "{id}"
        );
    }
    assert_eq!(lots["B1"].reached_in, s.at("B1"));
    assert_eq!(lots["BL1"].reached_in, s.at("blend BL1"));
    assert_eq!(lots["CATH1a"].reached_in, s.at("split CATH1"));
    // Who holds them now.
    assert_eq!(
        (
            lots["CATH1a"].custodian.as_str(),
            lots["CATH1a"].owner.as_str(),
            lots["CATH1a"].status
        ),
        ("buyer", "buyer", "held")
    );
    assert_eq!(
        (lots["CATH1b"].custodian.as_str(), lots["CATH1b"].status),
        ("smelter", "held")
    );
    assert_eq!(lots["B1"].status, "consumed");
    // Customers: the smelter bought and received B1; the buyer bought and
    // received CATH1a.
    let customers: BTreeMap<&str, _> = i
        .customers
        .iter()
        .map(|c| (c.participant.as_str(), c))
        .collect();
    assert_eq!(
        customers.keys().copied().collect::<Vec<_>>(),
        vec!["buyer", "smelter"]
    );
    assert_eq!(customers["buyer"].lots, vec![lot("CATH1a")]);
    assert_eq!(
        customers["buyer"].entries,
        vec![s.at("sell CATH1a"), s.at("receive CATH1a")]
    );
    assert_eq!(customers["smelter"].lots, vec![lot("B1")]);
    // The entries behind CATH1a: its split, sale, dispatch and receipt,
    // each with the event id and leaf hash of the log's own entry.
    let entries: Vec<u64> = lots["CATH1a"].entries.iter().map(|e| e.entry).collect();
    assert_eq!(
        entries,
        vec![
            s.at("split CATH1"),
            s.at("sell CATH1a"),
            s.at("dispatch CATH1a"),
            s.at("receive CATH1a")
        ]
    );
    let log = read_log(&s.dir.path().join(LOG_FILE));
    for e in &lots["CATH1a"].entries {
        let (id, leaf, _) = &log[e.entry as usize];
        assert_eq!((&e.event_id, &e.leaf_hash), (id, leaf));
    }
}

#[test]
fn forward_impact_of_a_supplier_starts_where_it_held_the_material() {
    let s = small();
    let r: ImpactReport = compute(
        &s.snapshot(),
        &ImpactRequest {
            target: Target::Supplier(pid("trader")),
        },
    );
    // The trader bought A2 and nothing else: A2 is reached at the sale,
    // all of its metal counts, and its one customer after the trader is
    // the smelter that received it (mine A sold it before, so it is not).
    assert_eq!(r.impact.lots.len(), 1);
    let a2 = &r.impact.lots[0];
    assert_eq!(
        (a2.lot.as_str(), a2.how, a2.reached_in),
        ("A2", Reached::HeldBySupplier, s.at("sell A2"))
    );
    assert_eq!(
        (a2.share_ppb, a2.grams_from_target),
        (1_000_000_000, Grams(100_000))
    );
    assert_eq!(a2.customers, vec![pid("smelter")]);
    assert_eq!(
        a2.entries.iter().map(|e| e.entry).collect::<Vec<_>>(),
        vec![s.at("sell A2"), s.at("dispatch A2"), s.at("receive A2")]
    );
    // The blacklisted mine: C1 reached no one (its delivery was refused).
    let c: ImpactReport = compute(
        &s.snapshot(),
        &ImpactRequest {
            target: Target::Supplier(pid("mine-c")),
        },
    );
    assert_eq!(
        c.impact
            .lots
            .iter()
            .map(|l| l.lot.as_str())
            .collect::<Vec<_>>(),
        vec!["C1"]
    );
    assert!(c.impact.customers.is_empty());
    assert_eq!(c.impact.target.sanctions.len(), 1);
    // Unknown targets are refused with a clear message.
    let err = report::compute_one::<ImpactReport>(
        &s.snapshot(),
        &ImpactRequest {
            target: Target::Site(site("NOPE")),
        },
        generated(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("site NOPE is not registered"),
        "{err}"
    );
}

/// Every entry of a log: event id (SHA-256 of the event bytes), leaf hash
/// (SHA-256 of 0x00 and the entry bytes) and event, from the frames.
fn read_log(path: &std::path::Path) -> Vec<(Digest, Digest, Event)> {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = FrameReader::new(&bytes[LOG_HEADER.len()..], bytes.len() as u64);
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap().unwrap() {
        if frame.kind == FrameKind::Entry {
            let entry: Entry = codec::decode(&frame.payload).unwrap();
            let leaf = sha256(&[&[0u8][..], &frame.payload].concat());
            let event: Event = codec::decode(&entry.signed.event).unwrap();
            out.push((sha256(&entry.signed.event), leaf, event));
        }
    }
    out
}

/// The sample's choice redone by hand: accepted receipts sorted by
/// SHA-256(seed || event id), the first `count`.
fn choose_by_hand(log: &[(Digest, Digest, Event)], seed: &str, count: usize) -> Vec<u64> {
    let mut keyed: Vec<(Digest, u64)> = log
        .iter()
        .enumerate()
        .filter(|(_, (_, _, e))| matches!(&e.body, EventBody::Receive(r) if r.accepted))
        .map(|(i, (id, _, _))| {
            let mut bytes = seed.as_bytes().to_vec();
            bytes.extend_from_slice(id.as_bytes());
            (sha256(&bytes), i as u64)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().take(count).map(|(_, i)| i).collect()
}

fn sample(snapshot: &LogSnapshot, scope: Option<Scope>, seed: &str, count: u64) -> SampleReport {
    compute(
        snapshot,
        &SampleRequest {
            scope,
            period: Period::ALL,
            seed: seed.into(),
            count,
        },
    )
}

fn sampled(r: &SampleReport) -> Vec<u64> {
    r.sample.receipts.iter().map(|x| x.entry).collect()
}

#[test]
fn the_sample_is_reproducible_by_anyone_from_the_log() {
    let s = small();
    let log = read_log(&s.dir.path().join(LOG_FILE));
    let first = sample(&s.snapshot(), None, "2026-audit", 3);
    let again = sample(&s.snapshot(), None, "2026-audit", 3);
    assert_eq!(sampled(&first), sampled(&again));
    assert_eq!(
        first.sample, again.sample,
        "the same evidence, entry for entry"
    );
    assert_eq!(sampled(&first), choose_by_hand(&log, "2026-audit", 3));
    assert_eq!(
        (
            first.sample.eligible,
            first.sample.taken,
            first.sample.all_taken
        ),
        (5, 3, false)
    );
    // The header names the checkpoint it was drawn from: all entries.
    assert_eq!(first.header.ledger.tree_size, log.len() as u64);
    assert!(
        first
            .header
            .ledger
            .checkpoint
            .contains(&format!("\n{}\n", log.len()))
    );
    // A number is a seed like any text.
    assert_eq!(
        sampled(&sample(&s.snapshot(), None, "7", 2)),
        choose_by_hand(&log, "7", 2)
    );
    // Scoped to the buyer: its two receipts only.
    let buyer = sample(&s.snapshot(), Some(Scope::Site(pid("buyer"))), "x", 5);
    let mut entries = sampled(&buyer);
    entries.sort();
    assert_eq!(entries, vec![s.at("receive CATH1a"), s.at("receive A3")]);
}

#[test]
fn asking_for_more_receipts_than_exist_takes_all_and_says_so() {
    let s = small();
    let r = sample(&s.snapshot(), None, "2026-audit", 50);
    assert_eq!(
        (r.sample.eligible, r.sample.taken, r.sample.all_taken),
        (5, 5, true)
    );
    let mut entries = sampled(&r);
    entries.sort();
    let mut all = vec![
        s.at("receive A1"),
        s.at("receive B1"),
        s.at("receive A2"),
        s.at("receive CATH1a"),
        s.at("receive A3"),
    ];
    all.sort();
    assert_eq!(entries, all);
    assert!(
        r.findings()[0].contains("all of them are taken"),
        "{:?}",
        r.findings()
    );
}

#[test]
fn a_sampled_receipt_carries_its_evidence_back_to_the_mines() {
    let s = small();
    let r = sample(&s.snapshot(), None, "2026-audit", 5);
    let cathode = r
        .sample
        .receipts
        .iter()
        .find(|x| x.lot == lot("CATH1a"))
        .unwrap();
    assert_eq!(cathode.entry, s.at("receive CATH1a"));
    assert_eq!(cathode.supplier, Some(pid("smelter")));
    let found: BTreeMap<u64, EvidenceRole> = cathode
        .evidence
        .iter()
        .map(|e| (e.entry.entry, e.role))
        .collect();
    use EvidenceRole::*;
    // The chain by hand: the receipt and its dispatch; CATH1a's split and
    // sale; CATH1 up to its split (made by the smelting); BL1 up to the
    // smelting (made by the blend); A1 and B1 up to the blend (creation,
    // sale, dispatch, receipt); both sites' registrations and B-ART's
    // CAHRA determination.
    let want: BTreeMap<u64, EvidenceRole> = [
        ("receive CATH1a", Receipt),
        ("dispatch CATH1a", Dispatch),
        ("sell CATH1a", Lot),
        ("split CATH1", Lot),
        ("smelt CATH1", Upstream),
        ("blend BL1", Upstream),
        ("A1", Upstream),
        ("sell A1", Upstream),
        ("dispatch A1", Upstream),
        ("receive A1", Upstream),
        ("B1", Upstream),
        ("sell B1", Upstream),
        ("dispatch B1", Upstream),
        ("receive B1", Upstream),
        ("site A-PIT", SiteRegistration),
        ("site B-ART", SiteRegistration),
        ("cahra B-ART", CahraDetermination),
    ]
    .into_iter()
    .map(|(name, role)| (s.at(name), role))
    .collect();
    assert_eq!(found, want);
    // It reaches the mines' creation entries.
    let mines: Vec<(&str, &str, u64)> = cathode
        .mine_lots
        .iter()
        .map(|m| (m.lot.as_str(), m.site.as_str(), m.created_in))
        .collect();
    assert_eq!(
        mines,
        vec![("A1", "A-PIT", s.at("A1")), ("B1", "B-ART", s.at("B1"))]
    );
    // Every entry is named by the log's own event id and leaf hash, and
    // the dispatches' export permits are listed by hash.
    let log = read_log(&s.dir.path().join(LOG_FILE));
    for e in &cathode.evidence {
        let (id, leaf, event) = &log[e.entry.entry as usize];
        assert_eq!((&e.entry.event_id, &e.entry.leaf_hash), (id, leaf));
        assert_eq!(e.entry.event_type, event.body.type_name());
    }
    let documents: BTreeSet<u64> = cathode.documents.iter().map(|d| d.entry).collect();
    assert_eq!(
        documents,
        BTreeSet::from([
            s.at("dispatch A1"),
            s.at("dispatch B1"),
            s.at("dispatch CATH1a")
        ])
    );
}

// ---------------------------------------------------------------------------
// The demo ledger
// ---------------------------------------------------------------------------

fn demo_snapshot() -> LogSnapshot {
    LogSnapshot::open(&crate::demo_data().join(LOG_FILE)).unwrap()
}

#[test]
fn every_sourcing_output_runs_over_the_demo_ledger() {
    let snapshot = demo_snapshot();
    let smelter = pid("smelter.pohjanmeri");
    let kpis = KpisRequest {
        scope: Scope::Organisation(smelter.clone()),
        period: Period::ALL,
    };
    let cmrt = CmrtRequest {
        scope: Scope::Organisation(pid("buyer.rheinkabel")),
        period: Period::ALL,
    };
    let site_impact = ImpactRequest {
        target: Target::Site(site("LUS-OP")),
    };
    let supplier_impact = ImpactRequest {
        target: Target::Supplier(pid("mine.kipushi-coop")),
    };
    let draw = |seed: &str| SampleRequest {
        scope: Some(Scope::Organisation(smelter.clone())),
        period: Period::ALL,
        seed: seed.into(),
        count: 5,
    };
    let (one, two) = (draw("audit-2026"), draw("audit-2027"));
    // One replay computes all of them.
    let reports = report::compute(
        &snapshot,
        &[&kpis, &cmrt, &site_impact, &supplier_impact, &one, &two],
        generated(),
        false,
    )
    .unwrap();
    let mut reports = reports.into_iter();
    let mut next = || reports.next().unwrap().into_any();
    let kpis = next().downcast::<KpisReport>().unwrap();
    let cmrt = next().downcast::<CmrtReport>().unwrap();
    let site_impact = next().downcast::<ImpactReport>().unwrap();
    let supplier_impact = next().downcast::<ImpactReport>().unwrap();
    let one = next().downcast::<SampleReport>().unwrap();
    let two = next().downcast::<SampleReport>().unwrap();

    // The demo blacklists the artisanal cooperative and refuses its later
    // delivery: one sanctioned supplier, no receipt from it.
    assert_eq!(kpis.kpis.sanctioned_suppliers, 1);
    assert_eq!(kpis.kpis.receipts_from_sanctioned_suppliers, 0);
    assert!(kpis.kpis.current_suppliers > 0);
    assert!(kpis.kpis.passed_esg_review.ppb <= 1_000_000_000);

    // The cable maker's copper passed through the smelter, and its mine
    // rows share out all of it (each row rounds down).
    let cu = cmrt
        .rows
        .metals
        .iter()
        .find(|m| m.metal == Element::Cu)
        .unwrap();
    let mine_grams: u64 = cmrt
        .rows
        .mines
        .iter()
        .filter(|m| m.metal == Element::Cu)
        .map(|m| m.share.numerator)
        .sum();
    assert_eq!(Grams(mine_grams), cu.grams);
    assert!(cmrt.rows.smelters.iter().any(|s| s.smelter == smelter));
    assert!(
        cmrt.rows
            .mines
            .iter()
            .any(|m| m.site == site("LUS-OP") && m.cahra)
    );

    // The CAHRA mine's copper reached cathodes and their buyers.
    assert!(
        site_impact
            .impact
            .lots
            .iter()
            .any(|l| l.kind == LotKind::Cathode && l.share_ppb > 0)
    );
    assert!(
        site_impact
            .impact
            .customers
            .iter()
            .any(|c| c.participant == pid("buyer.rheinkabel"))
    );
    assert!(!supplier_impact.impact.lots.is_empty());

    // Two seeds, two different draws of five from the smelter's receipts.
    assert_eq!((one.sample.taken, two.sample.taken), (5, 5));
    assert!(one.sample.eligible > 100);
    assert_ne!(sampled(&one), sampled(&two));
    let log = read_log(&crate::demo_data().join(LOG_FILE));
    for r in one.sample.receipts.iter().chain(&two.sample.receipts) {
        assert!(
            r.mine_lots
                .iter()
                .all(|m| matches!(log[m.created_in as usize].2.body, EventBody::CreateLot(_))),
            "every chain ends at the mines' creation entries"
        );
        assert!(!r.mine_lots.is_empty());
    }

    // Every one renders as JSON and CSV.
    for r in [
        &*kpis as &dyn report::Rendered,
        &*cmrt,
        &*site_impact,
        &*one,
    ] {
        let mut json = Vec::new();
        r.write_json(&mut json).unwrap();
        serde_json::from_slice::<serde_json::Value>(&json).unwrap();
        let mut csv = Vec::new();
        r.write_csv(&mut csv).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap().lines().count(),
            r.row_count() + 1
        );
    }
}
