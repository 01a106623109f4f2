//! The catalog's tables over a small hand-built history, with the shares
//! computed by hand (see the comments beside each figure).

use super::epcis::{BizStep, EpcisType};
use super::*;
use crate::crypto::PublicKey;
use crate::model::{
    Assay, Blend, CountryCode, Dispatch, Element, EventBody, FlagDecision, FlagDecisionKind,
    FlagKind, Genesis, Grams, LotCreation, LotId, LotKind, LotReceipt, LotStatus,
    OnboardingAssessment, ParticipantId, ParticipantKind, Ppb, Registration, Sale, SiteId,
    SiteRegistration, SiteScale, Split, SplitPart, TransformInput, TransformOutput, Transformation,
};

const T0: u64 = 1_767_225_600_000;

fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn lot(s: &str) -> LotId {
    LotId::new(s).unwrap()
}

fn site(s: &str) -> SiteId {
    SiteId::new(s).unwrap()
}

fn cu(ppb: u64) -> Vec<Assay> {
    vec![Assay {
        element: Element::Cu,
        grade: Ppb::new(ppb).unwrap(),
    }]
}

/// Applies events one after another, an hour apart.
struct Feed {
    tables: Tables,
    events: Vec<(Event, Vec<Flag>)>,
}

impl Feed {
    fn new() -> Self {
        Self {
            tables: Tables::new(),
            events: Vec::new(),
        }
    }

    fn next(&self) -> u64 {
        self.tables.applied()
    }

    fn apply_raising(&mut self, signer: &str, body: EventBody, raised: Vec<Flag>) {
        let index = self.next();
        let time = Timestamp::from_millis(T0 + index * 3_600_000);
        let event = Event {
            ledger: "test".into(),
            signer: pid(signer),
            time,
            nonce: index,
            body,
        };
        self.tables.apply(index, time, &event, &raised).unwrap();
        self.events.push((event, raised));
    }

    fn apply(&mut self, signer: &str, body: EventBody) {
        self.apply_raising(signer, body, Vec::new());
    }

    fn register(&mut self, id: &str, kind: ParticipantKind) {
        self.apply(
            "operator",
            EventBody::RegisterParticipant(Registration {
                participant: pid(id),
                legal_name: id.into(),
                country: CountryCode::new("FI").unwrap(),
                kinds: vec![kind],
                roles: vec![],
                keys: vec![],
            }),
        );
    }

    fn site(&mut self, id: &str, operator: &str, country: &str, scale: SiteScale) {
        self.apply(
            "operator",
            EventBody::RegisterSite(SiteRegistration {
                site: site(id),
                operator: pid(operator),
                name: format!("{id} mine"),
                country: CountryCode::new(country).unwrap(),
                latitude_micro: 0,
                longitude_micro: 0,
                scale,
                metal: Element::Cu,
                annual_capacity: Grams(1 << 40),
            }),
        );
    }

    fn create(&mut self, by: &str, id: &str, at: &str, wet: u64, grade: u64) {
        self.apply(
            by,
            EventBody::CreateLot(LotCreation {
                lot: lot(id),
                site: site(at),
                kind: LotKind::Concentrate,
                wet: Grams(wet),
                moisture: Ppb::ZERO,
                assays: cu(grade),
                produced_from: Timestamp::from_millis(T0),
                produced_until: Timestamp::from_millis(T0),
            }),
        );
    }

    fn dispatch(&mut self, by: &str, id: &str, to: &str) {
        self.apply(
            by,
            EventBody::Dispatch(Dispatch {
                lot: lot(id),
                to: pid(to),
                route: vec![],
                documents: vec![],
            }),
        );
    }

    fn receive(&mut self, by: &str, id: &str, wet: u64, raised: Vec<Flag>) {
        self.apply_raising(
            by,
            EventBody::Receive(LotReceipt {
                lot: lot(id),
                measured_wet: Grams(wet),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
            raised,
        );
    }

    fn sell(&mut self, by: &str, id: &str, to: &str) {
        self.apply(
            by,
            EventBody::Sell(Sale {
                lot: lot(id),
                buyer: pid(to),
                documents: vec![],
            }),
        );
    }
}

/// The history every test reads (entry numbers in brackets):
/// two mines sell concentrate to a smelter, which blends it, splits the
/// blend, and refines all of one part and a third of the other into a
/// cathode that it sells to a buyer.
fn history() -> Feed {
    let mut f = Feed::new();
    f.apply(
        "operator",
        EventBody::Genesis(Genesis {
            origin: "test".into(),
            log_key: PublicKey::from_bytes([9; 32]),
            operator: pid("operator"),
            operator_name: "Operator".into(),
            operator_country: CountryCode::new("CH").unwrap(),
            operator_key: PublicKey::from_bytes([8; 32]),
        }),
    ); // [0]
    f.register("mine.a", ParticipantKind::Mine); // [1]
    f.register("mine.b", ParticipantKind::Mine); // [2]
    f.register("smelter", ParticipantKind::Smelter); // [3]
    f.register("buyer", ParticipantKind::Buyer); // [4]
    f.site("A", "mine.a", "CD", SiteScale::Artisanal); // [5]
    f.site("B", "mine.b", "ZM", SiteScale::LargeScale); // [6]
    // 1 t at 20 % Cu = 200,000 g; B-1: 3 t at 10 % = 300,000 g.
    f.create("mine.a", "A-1", "A", 1_000_000, 200_000_000); // [7]
    f.create("mine.b", "B-1", "B", 3_000_000, 100_000_000); // [8]
    f.dispatch("mine.a", "A-1", "smelter"); // [9]
    let flag = Flag {
        id: FlagId { entry: 10, n: 0 },
        kind: FlagKind::ArtisanalOrigin,
        organisation: pid("smelter"),
        lot: Some(lot("A-1")),
        site: Some(site("A")),
        supplier: Some(pid("mine.a")),
        raised_at: Timestamp::from_millis(T0),
        detail: "artisanal".into(),
        decisions: vec![],
    };
    f.receive("smelter", "A-1", 1_000_000, vec![flag]); // [10]
    f.dispatch("mine.b", "B-1", "smelter"); // [11]
    // B-1 weighs 1 % less: dry 2,970,000 g and Cu floor(300,000 × 0.99) =
    // 297,000 g.
    f.receive("smelter", "B-1", 2_970_000, vec![]); // [12]
    f.sell("mine.a", "A-1", "smelter"); // [13]
    f.sell("mine.b", "B-1", "smelter"); // [14]
    f.apply(
        "smelter",
        EventBody::Blend(Blend {
            inputs: vec![lot("A-1"), lot("B-1")],
            output: lot("BL-1"),
        }),
    ); // [15]
    f.apply(
        "smelter",
        EventBody::Split(Split {
            lot: lot("BL-1"),
            parts: vec![
                SplitPart {
                    lot: lot("BL-1a"),
                    wet: Grams(1_000_000),
                },
                SplitPart {
                    lot: lot("BL-1b"),
                    wet: Grams(2_970_000),
                },
            ],
        }),
    ); // [16]
    f.apply(
        "smelter",
        EventBody::Transform(Transformation {
            process: "refining".into(),
            inputs: vec![
                TransformInput {
                    lot: lot("BL-1a"),
                    consumed_wet: Grams(1_000_000),
                },
                TransformInput {
                    lot: lot("BL-1b"),
                    consumed_wet: Grams(990_000),
                },
            ],
            outputs: vec![TransformOutput {
                lot: lot("CA-1"),
                kind: LotKind::Cathode,
                metal: Element::Cu,
                wet: Grams(240_000),
                moisture: Ppb::ZERO,
                assays: cu(999_900_000),
            }],
        }),
    ); // [17]
    f.sell("smelter", "CA-1", "buyer"); // [18]
    f.dispatch("smelter", "CA-1", "buyer"); // [19]
    f.receive("buyer", "CA-1", 240_000, vec![]); // [20]
    f.apply(
        "smelter",
        EventBody::DecideFlag(FlagDecision {
            flag: FlagId { entry: 10, n: 0 },
            decision: FlagDecisionKind::Continue,
            note: "engaged".into(),
        }),
    ); // [21]
    f.apply(
        "smelter",
        EventBody::AssessOnboarding(OnboardingAssessment {
            organisation: pid("smelter"),
            supplier: pid("mine.a"),
            scores: vec![],
            passed: true,
            report: None,
        }),
    ); // [22]
    f
}

fn share(parent: &str, child: &str, links: &[LinkView]) -> (u32, u64) {
    let l = links
        .iter()
        .find(|l| l.parent == lot(parent) && l.child == lot(child))
        .unwrap_or_else(|| panic!("no link {child} <- {parent}"));
    (l.share.get(), l.grams.0)
}

#[test]
fn blend_shares_follow_the_payable_metal_each_input_brought() {
    let f = history();
    let links = f.tables.parents(&lot("BL-1")).unwrap();
    // 200,000 and 297,000 g of 497,000: 402,414,486.9 and 597,585,513.1
    // ppb; the spare part goes to the larger remainder.
    assert_eq!(share("A-1", "BL-1", &links), (402_414_487, 200_000));
    assert_eq!(share("B-1", "BL-1", &links), (597_585_513, 297_000));
}

#[test]
fn split_parts_have_one_parent_and_transform_shares_count_what_was_taken() {
    let f = history();
    // The split apportions 497,000 g Cu by wet mass 1 : 2.97:
    // 125,188.9 and 371,811.1, so 125,189 and 371,811.
    let a = f.tables.parents(&lot("BL-1a")).unwrap();
    assert_eq!(share("BL-1", "BL-1a", &a), (1_000_000_000, 125_189));
    // The refinery took all of BL-1a (125,189 g) and a third of BL-1b's
    // wet mass: floor(371,811 × 990,000 / 2,970,000) = 123,937 g; of
    // 249,126 g that is 502,512,785 and 497,487,215 ppb.
    let ca = f.tables.parents(&lot("CA-1")).unwrap();
    assert_eq!(share("BL-1a", "CA-1", &ca), (502_512_785, 125_189));
    assert_eq!(share("BL-1b", "CA-1", &ca), (497_487_215, 123_937));
    // What is left of BL-1b stays live with the rest of its metal.
    let left = f.tables.quantities(&lot("BL-1b")).unwrap();
    assert_eq!(left.wet, Grams(1_980_000));
    assert_eq!(left.contained, [(Element::Cu, Grams(371_811 - 123_937))]);
    assert_eq!(f.tables.quantities(&lot("BL-1a")), None, "used up");
    let bl1a = f.tables.lot(&lot("BL-1a")).unwrap();
    assert_eq!(bl1a.status, LotStatus::Consumed { in_entry: 17 });
    assert_eq!(f.tables.lot(&lot("BL-1b")).unwrap().status, LotStatus::Held);
}

#[test]
fn upstream_reaches_the_created_lots_once_each() {
    let f = history();
    let g = f.tables.upstream(&lot("CA-1")).unwrap();
    let nodes: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(nodes, ["CA-1", "BL-1a", "BL-1b", "BL-1", "A-1", "B-1"]);
    assert_eq!(g.edges.len(), 6, "{:?}", g.edges);
    let a1 = &g.nodes[4];
    assert_eq!(a1.site, Some(site("A")));
    assert_eq!(g.nodes[3].site, None, "a blend comes from no one site");
    assert_eq!(g.nodes[0].owner, pid("buyer"));
    assert_eq!(g.nodes[0].custodian, pid("buyer"));
}

#[test]
fn downstream_follows_children_and_keeps_only_links_among_them() {
    let f = history();
    let g = f.tables.downstream(&lot("A-1")).unwrap();
    let nodes: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(nodes, ["A-1", "BL-1", "BL-1a", "BL-1b", "CA-1"]);
    // B-1 is another parent of BL-1, not downstream of A-1.
    assert!(g.edges.iter().all(|e| e.parent != lot("B-1")));
    assert_eq!(g.edges.len(), 5);
    assert_eq!(
        f.tables.holders_ever(&lot("CA-1")).unwrap(),
        vec![pid("smelter"), pid("buyer")]
    );
}

fn lot_ids(page: &Page<LotSummary>) -> Vec<&str> {
    page.items.iter().map(|l| l.id.as_str()).collect()
}

#[test]
fn lot_filters_and_pages() {
    let f = history();
    let t = &f.tables;
    let all = LotFilter::default();
    let cathodes = LotFilter {
        kind: Some(LotKind::Cathode),
        ..LotFilter::default()
    };
    assert_eq!(lot_ids(&t.lots(&cathodes, 0, 10)), ["CA-1"]);
    let smelter = LotFilter {
        holder: Some(pid("smelter")),
        ..LotFilter::default()
    };
    assert_eq!(
        lot_ids(&t.lots(&smelter, 0, 10)),
        ["A-1", "B-1", "BL-1", "BL-1a", "BL-1b"]
    );
    let held = LotFilter {
        status: Some(StatusFilter::Held),
        ..LotFilter::default()
    };
    assert_eq!(lot_ids(&t.lots(&held, 0, 10)), ["BL-1b", "CA-1"]);
    let at_a = LotFilter {
        site: Some(site("A")),
        ..LotFilter::default()
    };
    assert_eq!(lot_ids(&t.lots(&at_a, 0, 10)), ["A-1"]);
    // Made from entry 15's time on, before entry 17's.
    let period = LotFilter {
        created_from: Some(Timestamp::from_millis(T0 + 15 * 3_600_000)),
        created_to: Some(Timestamp::from_millis(T0 + 17 * 3_600_000)),
        ..LotFilter::default()
    };
    assert_eq!(lot_ids(&t.lots(&period, 0, 10)), ["BL-1", "BL-1a", "BL-1b"]);
    let unknown = LotFilter {
        holder: Some(pid("nobody")),
        ..LotFilter::default()
    };
    assert!(t.lots(&unknown, 0, 10).items.is_empty());

    // Pages of two: every lot once, the last page says there is no more.
    let mut seen = Vec::new();
    let mut from = 0;
    loop {
        let page = t.lots(&all, from, 2);
        assert!(page.items.len() <= 2);
        seen.extend(lot_ids(&page).into_iter().map(str::to_owned));
        match page.next {
            Some(n) => from = n,
            None => break,
        }
    }
    assert_eq!(seen, ["A-1", "B-1", "BL-1", "BL-1a", "BL-1b", "CA-1"]);
    // A full last page has no next position.
    assert_eq!(t.lots(&all, 0, 6).next, None);
    assert_eq!(t.lots(&all, 0, 5).next, Some(5));
}

#[test]
fn event_filters_use_postings_and_summaries() {
    let f = history();
    let t = &f.tables;
    let ids = |filter: EventFilter| t.events(&filter, 0, 100).items;
    assert_eq!(
        ids(EventFilter {
            participant: Some(pid("buyer")),
            ..EventFilter::default()
        }),
        [4, 18, 19, 20]
    );
    assert_eq!(
        ids(EventFilter {
            lot: Some(lot("A-1")),
            ..EventFilter::default()
        }),
        [7, 9, 10, 13, 15]
    );
    assert_eq!(
        ids(EventFilter {
            epcis_type: Some(EpcisType::TransformationEvent),
            ..EventFilter::default()
        }),
        [15, 16, 17]
    );
    assert_eq!(
        ids(EventFilter {
            biz_step: Some(Some(BizStep::Commissioning)),
            ..EventFilter::default()
        }),
        [7, 8, 15, 17]
    );
    assert!(
        ids(EventFilter {
            biz_step: Some(None),
            ..EventFilter::default()
        })
        .is_empty()
    );
    // Both posting lists: events about A-1 that mine.a signed or names.
    assert_eq!(
        ids(EventFilter {
            lot: Some(lot("A-1")),
            participant: Some(pid("mine.a")),
            ..EventFilter::default()
        }),
        [7, 9, 13]
    );
    assert_eq!(
        ids(EventFilter {
            kind: Some(EventType::Sell),
            time_from: Some(Timestamp::from_millis(T0 + 14 * 3_600_000)),
            time_to: Some(Timestamp::from_millis(T0 + 18 * 3_600_000)),
            ..EventFilter::default()
        }),
        [14]
    );
    let page = t.events(&EventFilter::default(), 20, 2);
    assert_eq!((page.items, page.next), (vec![20, 21], Some(22)));
}

#[test]
fn flags_and_participant_links() {
    let f = history();
    let t = &f.tables;
    let flag = t.flag(FlagId { entry: 10, n: 0 }).unwrap();
    assert_eq!(flag.status, FlagStatus::Decided);
    assert_eq!(flag.decided_in, Some(21));
    assert_eq!(flag.lot, Some(lot("A-1")));
    let open = FlagFilter {
        status: Some(FlagStatus::Open),
        ..FlagFilter::default()
    };
    assert!(t.flags(&open, 0, 10).items.is_empty());
    let about_mine = FlagFilter {
        participant: Some(pid("mine.a")),
        ..FlagFilter::default()
    };
    assert_eq!(
        t.flags(&about_mine, 0, 10).items,
        [FlagId { entry: 10, n: 0 }]
    );
    let mine_a = t.participant(&pid("mine.a")).unwrap();
    assert_eq!(mine_a.sites, [site("A")]);
    assert_eq!(mine_a.supplier_files, [pid("smelter")]);
    let mines = t.participants(Some(ParticipantKind::Mine), 0, 10);
    assert_eq!(mines.items, [pid("mine.a"), pid("mine.b")]);
    assert_eq!(t.participants(None, 0, 10).items.len(), 5);
}

#[test]
fn the_same_entries_give_the_same_tables_and_order_is_enforced() {
    let f = history();
    let mut again = Tables::new();
    for (i, (event, raised)) in f.events.iter().enumerate() {
        again.apply(i as u64, event.time, event, raised).unwrap();
    }
    assert_eq!(again, f.tables);
    let (event, raised) = &f.events[3];
    let err = again.apply(3, event.time, event, raised).unwrap_err();
    assert!(
        matches!(err, CatalogError::Inconsistent { index: 3, .. }),
        "{err}"
    );
}

#[test]
fn an_entry_naming_an_unknown_lot_is_reported_not_guessed() {
    let mut t = Tables::new();
    let event = Event {
        ledger: "test".into(),
        signer: pid("someone"),
        time: Timestamp::from_millis(T0),
        nonce: 0,
        body: EventBody::Sell(Sale {
            lot: lot("NOPE"),
            buyer: pid("buyer"),
            documents: vec![],
        }),
    };
    let err = t.apply(0, event.time, &event, &[]).unwrap_err();
    assert!(err.to_string().contains("NOPE"), "{err}");
}

#[test]
fn an_entry_summary_is_sixteen_bytes() {
    assert_eq!(std::mem::size_of::<EntrySummary>(), 16);
}

/// Pages of `0..n` keeping the even numbers, `limit` at a time, looking
/// at `budget` candidates a page; every page's items and the whole.
fn even_pages(n: u64, limit: usize, budget: usize) -> (Vec<Vec<u64>>, Vec<u64>) {
    let mut pages = Vec::new();
    let mut all = Vec::new();
    let mut from = 0;
    for _ in 0..1000 {
        let page = page_where(
            from..n,
            limit,
            budget,
            |i| (i, i + 1),
            |i| Ok::<_, ()>((i % 2 == 0).then_some(i)),
        )
        .unwrap();
        all.extend(page.items.iter().copied());
        pages.push(page.items);
        match page.next {
            Some(next) => {
                assert!(next > from, "the cursor moves on");
                from = next;
            }
            None => return (pages, all),
        }
    }
    panic!("paging did not end");
}

#[test]
fn filtered_pages_never_repeat_skip_or_stall_and_may_be_short() {
    let evens: Vec<u64> = (0..20).step_by(2).collect();
    // A budget larger than the listing: full pages of `limit`.
    let (pages, all) = even_pages(20, 3, usize::MAX);
    assert_eq!(all, evens);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
    // A budget of three candidates: pages end early, short, yet whole.
    let (pages, all) = even_pages(20, 3, 3);
    assert_eq!(all, evens);
    assert!(pages.iter().all(|p| p.len() <= 2), "{pages:?}");
    // Nothing kept: empty pages that still move on, then an end.
    let (pages, all) = even_pages(1, 5, 1);
    assert_eq!(all, vec![0]);
    assert_eq!(pages.len(), 1);
    let nothing = page_where(
        1..50u64,
        5,
        4,
        |i| (i, i + 1),
        |_| Ok::<Option<u64>, ()>(None),
    )
    .unwrap();
    assert!(nothing.items.is_empty());
    assert_eq!(nothing.next, Some(5), "four looked at, go on from 5");
}
