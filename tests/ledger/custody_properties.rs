//! Property test of the custody rules against a simple model of lots.
//!
//! Random sequences of create, dispatch, receive, split, blend and sell,
//! by random actors, go through the pure rules engine. A small model that
//! knows only who holds and owns each lot, its status and its wet mass
//! predicts whether each event is accepted and what it changes; engine and
//! model must agree at every step. After every accepted event the engine's
//! state must keep the invariants: origin shares add up to exactly one,
//! splits and blends conserve dry mass and contained copper exactly, and a
//! consumed lot is never accepted as an input again.

use std::collections::BTreeMap;

use oretrail::crypto::SecretKey;
use oretrail::model::{
    Assay, Blend, CountryCode, Dispatch, Element, Event, EventBody, Genesis, Grams, LotCreation,
    LotId, LotKind, LotReceipt, LotStatus, MemoryState, ParticipantId, ParticipantKind, Ppb,
    Registration, Role, Sale, SiteId, SiteRegistration, SiteScale, Split, SplitPart, StateView,
    Timestamp,
};
use oretrail::rules::{self, Context};
use proptest::prelude::*;

const ORIGIN: &str = "prop.example/ledger";
const ACTORS: [&str; 3] = ["mine", "smelter", "trader"];

fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n + 1; 32])
}

/// The engine's side: state, entry counter and time.
struct Engine {
    state: MemoryState,
    index: u64,
    nonce: u64,
}

impl Engine {
    fn apply(&mut self, signer: &str, key: &SecretKey, body: EventBody) -> bool {
        let time = Timestamp::from_millis(1_767_225_600_000 + self.index * 1000);
        self.nonce += 1;
        let event = Event {
            ledger: ORIGIN.into(),
            signer: pid(signer),
            time,
            nonce: self.nonce,
            body,
        };
        let ctx = Context {
            index: self.index,
            record_time: time,
        };
        match rules::apply(&self.state, ctx, &key.public(), &event) {
            Ok(changes) => {
                for v in changes {
                    self.state.put(v);
                }
                self.index += 1;
                true
            }
            Err(rules::RuleError::Refused(_)) => false,
            Err(e) => panic!("state error: {e}"),
        }
    }

    fn new() -> Self {
        let mut e = Engine {
            state: MemoryState::new(),
            index: 0,
            nonce: 0,
        };
        let operator = key(100);
        assert!(e.apply(
            "operator",
            &operator,
            EventBody::Genesis(Genesis {
                origin: ORIGIN.into(),
                log_key: key(101).public(),
                operator: pid("operator"),
                operator_name: "Operator".into(),
                operator_country: CountryCode::new("CH").unwrap(),
                operator_key: operator.public(),
            })
        ));
        let roles = [
            vec![Role::Producer, Role::Custodian, Role::Seller],
            vec![
                Role::Custodian,
                Role::Processor,
                Role::Seller,
                Role::Purchaser,
            ],
            vec![Role::Custodian, Role::Seller, Role::Purchaser],
        ];
        for (i, name) in ACTORS.iter().enumerate() {
            assert!(e.apply(
                "operator",
                &operator,
                EventBody::RegisterParticipant(Registration {
                    participant: pid(name),
                    legal_name: format!("{name} Ltd"),
                    country: CountryCode::new("ZM").unwrap(),
                    kinds: vec![ParticipantKind::Trader],
                    roles: roles[i].clone(),
                    keys: vec![key(i as u8).public()],
                })
            ));
        }
        assert!(e.apply(
            "operator",
            &operator,
            EventBody::RegisterParticipant(Registration {
                participant: pid("compliance"),
                legal_name: "Compliance".into(),
                country: CountryCode::new("ZM").unwrap(),
                kinds: vec![ParticipantKind::Smelter],
                roles: vec![Role::Compliance],
                keys: vec![key(50).public()],
            })
        ));
        for site in ["S0", "S1", "S2"] {
            assert!(e.apply(
                "compliance",
                &key(50),
                EventBody::RegisterSite(SiteRegistration {
                    site: SiteId::new(site).unwrap(),
                    operator: pid("mine"),
                    name: site.into(),
                    country: CountryCode::new("ZM").unwrap(),
                    latitude_micro: 0,
                    longitude_micro: 0,
                    scale: SiteScale::LargeScale,
                    metal: Element::Cu,
                    annual_capacity: Grams(u64::MAX / 4),
                })
            ));
        }
        e
    }

    fn lot(&self, id: &LotId) -> oretrail::model::Lot {
        self.state.lot(id).unwrap().unwrap()
    }
}

/// The model: what each lot's custody, ownership, status and mass must be.
#[derive(Debug, Clone, PartialEq)]
struct ModelLot {
    custodian: usize,
    owner: usize,
    /// `None` when held, `Some(to)` in transit.
    transit: Option<usize>,
    consumed: bool,
    wet: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        actor: usize,
        site: usize,
        wet: u64,
    },
    Dispatch {
        actor: usize,
        lot: usize,
        to: usize,
    },
    Receive {
        actor: usize,
        lot: usize,
        accept: bool,
        delta: i64,
    },
    Split {
        actor: usize,
        lot: usize,
        permille: u64,
    },
    Blend {
        actor: usize,
        a: usize,
        b: usize,
    },
    Sell {
        actor: usize,
        lot: usize,
        to: usize,
    },
}

fn arb_op() -> impl Strategy<Value = Op> {
    let actor = 0usize..3;
    prop_oneof![
        (actor.clone(), 0usize..3, 1u64..2_000_000_000).prop_map(|(actor, site, wet)| Op::Create {
            actor,
            site,
            wet
        }),
        (actor.clone(), any::<usize>(), 0usize..3).prop_map(|(actor, lot, to)| Op::Dispatch {
            actor,
            lot,
            to
        }),
        (actor.clone(), any::<usize>(), any::<bool>(), -1000i64..1000).prop_map(
            |(actor, lot, accept, delta)| Op::Receive {
                actor,
                lot,
                accept,
                delta
            }
        ),
        (actor.clone(), any::<usize>(), 0u64..=1000).prop_map(|(actor, lot, permille)| Op::Split {
            actor,
            lot,
            permille
        }),
        (actor.clone(), any::<usize>(), any::<usize>()).prop_map(|(actor, a, b)| Op::Blend {
            actor,
            a,
            b
        }),
        (actor, any::<usize>(), 0usize..3).prop_map(|(actor, lot, to)| Op::Sell { actor, lot, to }),
    ]
}

/// What an accepted event does to the model.
type Effect = Box<dyn Fn(&mut BTreeMap<LotId, ModelLot>)>;

/// Dry mass and contained copper of all lots not consumed.
fn live_totals(engine: &Engine, lots: &[LotId]) -> (u64, u64) {
    // Lots an event is about to create are not there yet: skip them.
    lots.iter()
        .filter_map(|id| engine.state.lot(id).unwrap())
        .filter(|l| !matches!(l.status, LotStatus::Consumed { .. }))
        .fold((0, 0), |(d, c), l| {
            (d + l.dry.0, c + l.contained_of(Element::Cu).0)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_a_model_of_lots_and_keeps_invariants(
        ops in proptest::collection::vec(arb_op(), 1..60)
    ) {
        let mut engine = Engine::new();
        let mut model: BTreeMap<LotId, ModelLot> = BTreeMap::new();
        let mut ids: Vec<LotId> = Vec::new();
        let mut fresh = 0u32;
        let mut new_id = || {
            fresh += 1;
            LotId::new(format!("L{fresh}")).unwrap()
        };
        for op in ops {
            let pick = |n: usize| if ids.is_empty() { None } else { Some(ids[n % ids.len()].clone()) };
            let (actor, body, expect, effect): (usize, EventBody, bool, Effect) = match op {
                Op::Create { actor, site, wet } => {
                    let id = new_id();
                    let body = EventBody::CreateLot(LotCreation {
                        lot: id.clone(),
                        site: SiteId::new(format!("S{site}")).unwrap(),
                        kind: LotKind::Concentrate,
                        wet: Grams(wet),
                        moisture: Ppb::new(80_000_000).unwrap(),
                        assays: vec![Assay { element: Element::Cu, grade: Ppb::new(250_000_000).unwrap() }],
                        produced_from: Timestamp::from_millis(0),
                        produced_until: Timestamp::from_millis(0),
                    });
                    let ok = actor == 0;
                    let id2 = id.clone();
                    if ok { ids.push(id); }
                    (actor, body, ok, Box::new(move |m| {
                        m.insert(id2.clone(), ModelLot { custodian: 0, owner: 0, transit: None, consumed: false, wet });
                    }))
                }
                Op::Dispatch { actor, lot, to } => {
                    let Some(id) = pick(lot) else { continue };
                    let l = model[&id].clone();
                    let ok = !l.consumed && l.transit.is_none() && l.custodian == actor && to != actor;
                    let body = EventBody::Dispatch(Dispatch {
                        lot: id.clone(),
                        to: pid(ACTORS[to]),
                        route: vec![CountryCode::new("ZM").unwrap()],
                        documents: vec![],
                    });
                    (actor, body, ok, Box::new(move |m| { m.get_mut(&id).unwrap().transit = Some(to); }))
                }
                Op::Receive { actor, lot, accept, delta } => {
                    let Some(id) = pick(lot) else { continue };
                    let l = model[&id].clone();
                    let measured = (l.wet as i64 + delta).max(1) as u64;
                    let ok = !l.consumed && l.transit == Some(actor);
                    let body = EventBody::Receive(LotReceipt {
                        lot: id.clone(),
                        measured_wet: Grams(measured),
                        accepted: accept,
                        note: "checked".into(),
                        documents: vec![],
                    });
                    (actor, body, ok, Box::new(move |m| {
                        let l = m.get_mut(&id).unwrap();
                        l.transit = None;
                        if accept {
                            l.custodian = actor;
                            l.wet = measured;
                        }
                    }))
                }
                Op::Split { actor, lot, permille } => {
                    let Some(id) = pick(lot) else { continue };
                    let l = model[&id].clone();
                    let first = l.wet * permille / 1000;
                    let second = l.wet - first;
                    let ok = actor == 1 && !l.consumed && l.transit.is_none() && l.custodian == actor
                        && first > 0 && second > 0;
                    let (a, b) = (new_id(), new_id());
                    let body = EventBody::Split(Split {
                        lot: id.clone(),
                        parts: vec![
                            SplitPart { lot: a.clone(), wet: Grams(first) },
                            SplitPart { lot: b.clone(), wet: Grams(second) },
                        ],
                    });
                    if ok { ids.push(a.clone()); ids.push(b.clone()); }
                    (actor, body, ok, Box::new(move |m| {
                        let parent = m[&id].clone();
                        m.get_mut(&id).unwrap().consumed = true;
                        m.insert(a.clone(), ModelLot { wet: first, ..parent.clone() });
                        m.insert(b.clone(), ModelLot { wet: second, ..parent });
                    }))
                }
                Op::Blend { actor, a, b } => {
                    let (Some(x), Some(y)) = (pick(a), pick(b)) else { continue };
                    let (lx, ly) = (model[&x].clone(), model[&y].clone());
                    let usable = |l: &ModelLot| !l.consumed && l.transit.is_none() && l.custodian == actor;
                    let ok = actor == 1 && x != y && usable(&lx) && usable(&ly) && lx.owner == ly.owner;
                    let out = new_id();
                    let body = EventBody::Blend(Blend { inputs: vec![x.clone(), y.clone()], output: out.clone() });
                    if ok { ids.push(out.clone()); }
                    (actor, body, ok, Box::new(move |m| {
                        m.get_mut(&x).unwrap().consumed = true;
                        m.get_mut(&y).unwrap().consumed = true;
                        m.insert(out.clone(), ModelLot { wet: lx.wet + ly.wet, ..lx.clone() });
                    }))
                }
                Op::Sell { actor, lot, to } => {
                    let Some(id) = pick(lot) else { continue };
                    let l = model[&id].clone();
                    let ok = !l.consumed && l.owner == actor && to != actor && to != 0;
                    let body = EventBody::Sell(Sale { lot: id.clone(), buyer: pid(ACTORS[to]), documents: vec![] });
                    (actor, body, ok, Box::new(move |m| { m.get_mut(&id).unwrap().owner = to; }))
                }
            };
            let conserving = matches!(body, EventBody::Split(_) | EventBody::Blend(_));
            let before = live_totals(&engine, &ids);
            let accepted = engine.apply(ACTORS[actor], &key(actor as u8), body.clone());
            prop_assert_eq!(accepted, expect, "engine and model disagree on {:?}", body);
            if accepted {
                effect(&mut model);
                if conserving {
                    prop_assert_eq!(live_totals(&engine, &ids), before, "mass or metal not conserved by {:?}", body);
                }
            }
            for id in &ids {
                let (l, m) = (engine.lot(id), &model[id]);
                prop_assert!(l.origin.is_whole(), "origin of {} is not whole", id);
                prop_assert_eq!(l.custodian.as_str(), ACTORS[m.custodian]);
                prop_assert_eq!(l.owner.as_str(), ACTORS[m.owner]);
                prop_assert_eq!(l.wet.0, m.wet);
                let status_ok = match (&l.status, m.consumed, m.transit) {
                    (LotStatus::Consumed { .. }, true, _) => true,
                    (LotStatus::InTransit { to, .. }, false, Some(t)) => to.as_str() == ACTORS[t],
                    (LotStatus::Held, false, None) => true,
                    _ => false,
                };
                prop_assert!(status_ok, "status of {} is {:?}, model says {:?}", id, l.status, m);
            }
        }
    }
}
