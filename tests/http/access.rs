//! Access control: the access matrix (every role against every read and
//! write endpoint, through the router in process), tokens issued and
//! revoked while serving, the `oretrail token` commands, a malformed token
//! file at startup, and the demo's reader tokens over a real socket.
//!
//! The fixture is a small supply chain: a mine makes K1 at an artisanal
//! site and K2 at a large-scale one and sells both to the smelter, which
//! receives them (K1's receipt raises an artisanal-origin red flag in the
//! smelter's register) and smelts them into cathodes C1 and C2. C1 is sold
//! and shipped to buyer A, C2 sold to buyer B. The smelter's compliance
//! officer decides the flag.

use crate::Answer;
use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Fixture, key, pid};
use oretrail::access::tokens::{TokenFile, TokenSelector};
use oretrail::api::{self, AppState};
use oretrail::ledger::Ledger;
use oretrail::merkle;
use oretrail::model::{
    Assay, CountryCode, Dispatch, Element, EventBody, FlagDecision, FlagDecisionKind, FlagId,
    Grams, LotCreation, LotId, LotKind, LotReceipt, OfficerAppointment, ParticipantKind, Ppb,
    Registration, Role, Sale, SignedEvent, SiteId, SiteRegistration, SiteScale, StateView,
    Timestamp, TransformInput, TransformOutput, Transformation,
};
use oretrail::signer::Signer;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    /// A well-formed token the server never issued.
    Unknown,
    Revoked,
    Expired,
    /// A token bound to a participant the ledger does not hold.
    Ghost,
    /// `Authorization: Basic ...`.
    NotBearer,
    BuyerA,
    BuyerB,
    Smelter,
    Officer,
    Mine,
    Auditor,
    Operator,
}

use Who::*;

const EVERY_ROLE: [Who; 13] = [
    Anonymous, Unknown, Revoked, Expired, Ghost, NotBearer, BuyerA, BuyerB, Smelter, Officer, Mine,
    Auditor, Operator,
];
const BAD_CREDENTIALS: [Who; 5] = [Unknown, Revoked, Expired, Ghost, NotBearer];
const READERS: [Who; 7] = [BuyerA, BuyerB, Smelter, Officer, Mine, Auditor, Operator];

/// Indexes of the fixture's entries that the matrix asserts on.
#[derive(Debug, Default)]
struct Entries {
    register_buyer_a: u64,
    register_buyer_b: u64,
    create_k1: u64,
    sell_k1: u64,
    receive_k1: u64,
    transform_c1: u64,
    transform_c2: u64,
    sell_c1: u64,
    dispatch_c1: u64,
    receive_c1: u64,
    sell_c2: u64,
    decide_flag: u64,
}

struct World {
    fixture: Fixture,
    ledger: Arc<Ledger>,
    app: Router,
    /// The artisanal-origin flag raised at the smelter's receipt of K1.
    flag: FlagId,
    entries: Entries,
    tokens: Vec<(Who, String)>,
    /// Signers for more events, by participant id.
    signers: Vec<(String, Signer)>,
}

struct Builder {
    fixture: Fixture,
    signers: Vec<(String, Signer)>,
}

impl Builder {
    fn signer(&mut self, id: &str) -> &mut Signer {
        if id == "operator" {
            return &mut self.fixture.operator;
        }
        &mut self
            .signers
            .iter_mut()
            .find(|(who, _)| who == id)
            .unwrap_or_else(|| panic!("no signer {id}"))
            .1
    }

    /// Signs `body` as `who` a simulated second later and appends it;
    /// returns the entry index.
    fn append(&mut self, who: &str, body: EventBody) -> u64 {
        self.fixture.clock.advance(1000);
        let now = self.fixture.clock.now();
        let signed = self.signer(who).sign(now, body).unwrap();
        self.fixture
            .ledger()
            .append(signed)
            .unwrap_or_else(|e| panic!("{who}: {e}"))
            .index
    }

    fn register(&mut self, id: &str, n: u32, kind: ParticipantKind, roles: Vec<Role>) -> u64 {
        let index = self.append(
            "operator",
            EventBody::RegisterParticipant(Registration {
                participant: pid(id),
                legal_name: format!("{id} Ltd"),
                country: CountryCode::new("ZM").unwrap(),
                kinds: vec![kind],
                roles,
                keys: vec![key(n).public()],
            }),
        );
        self.signers.push((
            id.to_string(),
            Signer::with_first_nonce(common::ORIGIN, pid(id), key(n), 1),
        ));
        index
    }
}

fn lot(id: &str) -> LotId {
    LotId::new(id).unwrap()
}

fn zm() -> CountryCode {
    CountryCode::new("ZM").unwrap()
}

/// Builds the fixture's ledger (blocking appends, so outside any async
/// runtime), issues the tokens, and puts the router in front.
fn world() -> World {
    let mut b = Builder {
        fixture: Fixture::new(),
        signers: Vec::new(),
    };
    let mut e = Entries::default();
    b.register(
        "mine",
        10,
        ParticipantKind::Mine,
        vec![Role::Producer, Role::Custodian, Role::Seller],
    );
    b.register(
        "smelter",
        11,
        ParticipantKind::Smelter,
        vec![
            Role::Custodian,
            Role::Processor,
            Role::Purchaser,
            Role::Seller,
        ],
    );
    b.register(
        "officer",
        12,
        ParticipantKind::Smelter,
        vec![Role::Compliance],
    );
    e.register_buyer_a = b.register(
        "buyer-a",
        13,
        ParticipantKind::Buyer,
        vec![Role::Purchaser, Role::Custodian],
    );
    e.register_buyer_b = b.register(
        "buyer-b",
        14,
        ParticipantKind::Buyer,
        vec![Role::Purchaser, Role::Custodian],
    );
    b.register("auditor", 15, ParticipantKind::Auditor, vec![Role::Auditor]);
    b.append(
        "operator",
        EventBody::AppointOfficer(OfficerAppointment {
            officer: pid("officer"),
            organisation: pid("smelter"),
        }),
    );
    for (site, scale) in [
        ("ART", SiteScale::Artisanal),
        ("KAN", SiteScale::LargeScale),
    ] {
        b.append(
            "operator",
            EventBody::RegisterSite(SiteRegistration {
                site: SiteId::new(site).unwrap(),
                operator: pid("mine"),
                name: format!("{site} pit"),
                country: zm(),
                latitude_micro: -12_100_000,
                longitude_micro: 26_400_000,
                scale,
                metal: Element::Cu,
                annual_capacity: Grams(50_000_000_000),
            }),
        );
    }
    let mut created = Vec::new();
    for (id, site) in [("K1", "ART"), ("K2", "KAN")] {
        let now = b.fixture.clock.now();
        created.push(b.append(
            "mine",
            EventBody::CreateLot(LotCreation {
                lot: lot(id),
                site: SiteId::new(site).unwrap(),
                kind: LotKind::Concentrate,
                wet: Grams(1_000_000_000),
                moisture: Ppb::new(80_000_000).unwrap(),
                assays: vec![Assay {
                    element: Element::Cu,
                    grade: Ppb::new(250_000_000).unwrap(),
                }],
                produced_from: now,
                produced_until: now,
            }),
        ));
        let sold = b.append(
            "mine",
            EventBody::Sell(Sale {
                lot: lot(id),
                buyer: pid("smelter"),
                documents: vec![],
            }),
        );
        if id == "K1" {
            e.sell_k1 = sold;
        }
        b.append(
            "mine",
            EventBody::Dispatch(Dispatch {
                lot: lot(id),
                to: pid("smelter"),
                route: vec![zm()],
                documents: vec![],
            }),
        );
        let received = b.append(
            "smelter",
            EventBody::Receive(LotReceipt {
                lot: lot(id),
                measured_wet: Grams(1_000_000_000),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        );
        if id == "K1" {
            e.receive_k1 = received;
        }
    }
    e.create_k1 = created[0];
    let flags = b
        .fixture
        .ledger()
        .state()
        .lot(&lot("K1"))
        .unwrap()
        .unwrap()
        .flags;
    assert_eq!(flags.len(), 1, "the artisanal origin of K1 raised one flag");
    let flag = flags[0];
    assert_eq!(flag.entry, e.receive_k1);

    for (input, output) in [("K1", "C1"), ("K2", "C2")] {
        let index = b.append(
            "smelter",
            EventBody::Transform(Transformation {
                process: "smelting and refining".into(),
                inputs: vec![TransformInput {
                    lot: lot(input),
                    consumed_wet: Grams(1_000_000_000),
                }],
                outputs: vec![TransformOutput {
                    lot: lot(output),
                    kind: LotKind::Cathode,
                    metal: Element::Cu,
                    wet: Grams(200_000_000),
                    moisture: Ppb::new(0).unwrap(),
                    assays: vec![Assay {
                        element: Element::Cu,
                        grade: Ppb::new(999_900_000).unwrap(),
                    }],
                }],
            }),
        );
        if output == "C1" {
            e.transform_c1 = index;
        } else {
            e.transform_c2 = index;
        }
    }
    e.sell_c1 = b.append(
        "smelter",
        EventBody::Sell(Sale {
            lot: lot("C1"),
            buyer: pid("buyer-a"),
            documents: vec![],
        }),
    );
    e.dispatch_c1 = b.append(
        "smelter",
        EventBody::Dispatch(Dispatch {
            lot: lot("C1"),
            to: pid("buyer-a"),
            route: vec![zm()],
            documents: vec![],
        }),
    );
    e.receive_c1 = b.append(
        "buyer-a",
        EventBody::Receive(LotReceipt {
            lot: lot("C1"),
            measured_wet: Grams(200_000_000),
            accepted: true,
            note: String::new(),
            documents: vec![],
        }),
    );
    e.sell_c2 = b.append(
        "smelter",
        EventBody::Sell(Sale {
            lot: lot("C2"),
            buyer: pid("buyer-b"),
            documents: vec![],
        }),
    );
    e.decide_flag = b.append(
        "officer",
        EventBody::DecideFlag(FlagDecision {
            flag,
            decision: FlagDecisionKind::Continue,
            note: "artisanal site audited".into(),
        }),
    );

    let data = b.fixture.path().to_path_buf();
    let file = TokenFile::of(&data);
    let mut tokens = Vec::new();
    for (who, id) in [
        (BuyerA, "buyer-a"),
        (BuyerB, "buyer-b"),
        (Smelter, "smelter"),
        (Officer, "officer"),
        (Mine, "mine"),
        (Auditor, "auditor"),
        (Operator, "operator"),
        (Ghost, "ghost"),
    ] {
        tokens.push((who, common::issue_token(&data, id)));
    }
    let revoked = common::issue_token(&data, "buyer-a");
    file.update(|t| t.revoke(&TokenSelector::parse(&revoked).unwrap(), Timestamp::now()))
        .unwrap();
    tokens.push((Revoked, revoked));
    // Issued long ago with a one-second life.
    let (expired, _) = file
        .update(|t| {
            t.issue(
                pid("buyer-a"),
                "",
                Timestamp::from_millis(1_000),
                Some(Timestamp::from_millis(2_000)),
            )
        })
        .unwrap();
    tokens.push((Expired, expired.as_str().to_string()));
    tokens.push((Unknown, format!("ot_{}", "A".repeat(43))));

    let ledger = Arc::new(b.fixture.ledger.take().unwrap());
    let app = api::router(AppState::new(ledger.clone()));
    World {
        fixture: b.fixture,
        ledger,
        app,
        flag,
        entries: e,
        tokens,
        signers: b.signers,
    }
}

impl Answer {
    /// The `WWW-Authenticate` challenge, if any.
    fn challenge(&self) -> Option<&str> {
        self.header(header::WWW_AUTHENTICATE)
    }
}

impl World {
    fn token(&self, who: Who) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, t)| t.as_str())
    }

    async fn send(&self, who: Who, request: axum::http::request::Builder, body: Body) -> Answer {
        let request = match (who, self.token(who)) {
            (Anonymous, _) => request,
            (NotBearer, _) => request.header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz"),
            (_, Some(token)) => request.header(header::AUTHORIZATION, format!("Bearer {token}")),
            (_, None) => panic!("no token for {who:?}"),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        Answer::read(response).await
    }

    async fn get(&self, who: Who, uri: &str) -> Answer {
        self.send(who, Request::get(uri), Body::empty()).await
    }

    async fn post(&self, who: Who, uri: &str, body: Value) -> Answer {
        self.send(
            who,
            Request::post(uri).header(header::CONTENT_TYPE, "application/json"),
            Body::from(body.to_string()),
        )
        .await
    }

    fn flag_uri(&self) -> String {
        format!("/v1/flags/{}/{}", self.flag.entry, self.flag.n)
    }

    /// Signs a fresh event as `who` (an attachment the smelter may make to
    /// a lot it holds).
    fn signed(&mut self, who: &str, n: u64) -> SignedEvent {
        self.fixture.clock.advance(1000);
        let now = self.fixture.clock.now();
        let signer = &mut self.signers.iter_mut().find(|(id, _)| id == who).unwrap().1;
        signer
            .sign(
                now,
                EventBody::AttachDocument(oretrail::model::DocumentAttachment {
                    lot: lot("C2"),
                    document: oretrail::model::DocumentRef {
                        kind: oretrail::model::DocumentKind::Other,
                        sha256: oretrail::crypto::sha256(&n.to_le_bytes()),
                    },
                }),
            )
            .unwrap()
    }
}

fn event_json(signed: &SignedEvent) -> Value {
    json!({
        "key": signed.key.to_hex(),
        "signature": signed.signature.to_hex(),
        "event": hex::encode(&signed.event),
    })
}

/// Runs `test` on a fresh world inside a runtime (the world is built
/// outside it: its appends block).
fn with_world<F: AsyncFnOnce(&mut World)>(test: F) {
    let mut world = world();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test(&mut world));
}

/// Asserts a 401 `UNAUTHENTICATED` with a Bearer challenge; returns the
/// message.
fn assert_unauthenticated(answer: &Answer, context: &str) -> String {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{context}");
    let body = answer.json();
    assert_eq!(body["code"], "UNAUTHENTICATED", "{context}: {body}");
    let challenge = answer.challenge().unwrap_or("");
    assert!(
        challenge.starts_with("Bearer realm=\"oretrail\""),
        "{context}: {challenge:?}"
    );
    body["message"].as_str().unwrap().to_string()
}

#[test]
fn the_log_api_answers_everyone_alike_and_ignores_credentials() {
    with_world(async |w| {
        let size = w.ledger.size();
        let uris = [
            "/v1/checkpoint".to_string(),
            "/v1/log/key".to_string(),
            format!("/v1/proofs/inclusion?index=3&tree_size={size}"),
            format!("/v1/proofs/consistency?first=2&second={size}"),
            "/v1/openapi.json".to_string(),
            "/metrics".to_string(),
        ];
        for uri in &uris {
            let reference = w.get(Anonymous, uri).await;
            assert_eq!(reference.status, StatusCode::OK, "{uri}");
            for who in EVERY_ROLE {
                let answer = w.get(who, uri).await;
                assert_eq!(answer.status, StatusCode::OK, "{uri} as {who:?}");
                if uri != "/metrics" {
                    assert_eq!(answer.body, reference.body, "{uri} as {who:?}");
                }
            }
        }
    });
}

#[test]
fn bad_credentials_are_401_everywhere_they_are_read_without_saying_why() {
    with_world(async |w| {
        let protected = [
            "/v1/lots/C1".to_string(),
            "/v1/participants/mine".to_string(),
            w.flag_uri(),
            "/v1/lots".to_string(),
            "/v1/lots/C1/history".to_string(),
            "/v1/lots/C1/provenance".to_string(),
            "/v1/lots/C1/downstream".to_string(),
            "/v1/participants".to_string(),
            "/v1/flags".to_string(),
            "/v1/events".to_string(),
        ];
        let optional = ["/v1/entries/1", "/v1/entries?start=0&end=5"];
        let mut messages = BTreeSet::new();
        for uri in protected.iter().map(String::as_str).chain(optional) {
            for who in BAD_CREDENTIALS {
                let answer = w.get(who, uri).await;
                let message = assert_unauthenticated(&answer, &format!("{uri} as {who:?}"));
                if who != NotBearer {
                    messages.insert(message);
                    assert!(
                        answer.challenge().unwrap().contains("invalid_token"),
                        "{uri} as {who:?}"
                    );
                }
            }
        }
        // Unknown, revoked, expired and ghost tokens get the same answer.
        assert_eq!(messages.len(), 1, "{messages:?}");

        // No credentials: 401 where a token is needed, the public view
        // where it is not.
        for uri in &protected {
            let answer = w.get(Anonymous, uri).await;
            assert_unauthenticated(&answer, uri);
            assert!(!answer.challenge().unwrap().contains("error="));
        }
        for uri in optional {
            assert_eq!(w.get(Anonymous, uri).await.status, StatusCode::OK, "{uri}");
        }
    });
}

/// The indexes of `entries` that carry their bytes, after checking that
/// every shown entry is genuine and every hidden one shows nothing else.
fn shown(entries: &Value) -> BTreeSet<u64> {
    let mut shown = BTreeSet::new();
    for item in entries["entries"].as_array().unwrap() {
        let index = item["index"].as_u64().unwrap();
        let leaf_hash = STANDARD
            .decode(item["leaf_hash"].as_str().unwrap())
            .unwrap();
        let keys: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        if keys.contains("leaf") {
            assert_eq!(
                keys,
                ["entry", "index", "leaf", "leaf_hash"].into(),
                "{item}"
            );
            let bytes = STANDARD.decode(item["leaf"].as_str().unwrap()).unwrap();
            assert_eq!(merkle::leaf_hash(&bytes).to_vec(), leaf_hash);
            assert_eq!(item["entry"]["index"], index);
            shown.insert(index);
        } else {
            assert_eq!(keys, ["index", "leaf_hash"].into(), "{item}");
        }
    }
    shown
}

#[test]
fn entries_show_their_bytes_only_to_those_who_may_see_their_event() {
    with_world(async |w| {
        let size = w.ledger.size();
        let uri = format!("/v1/entries?start=0&end={size}");
        let e = &w.entries;
        let all: BTreeSet<u64> = (0..size).collect();
        let mut seen = Vec::new();
        for who in [Anonymous].into_iter().chain(READERS) {
            let answer = w.get(who, &uri).await;
            assert_eq!(answer.status, StatusCode::OK, "{who:?}");
            let body = answer.json();
            assert_eq!(body["entries"].as_array().unwrap().len() as u64, size);
            seen.push((who, shown(&body)));
        }
        let sees = |who: Who| seen.iter().find(|(w, _)| *w == who).unwrap().1.clone();
        assert_eq!(sees(Anonymous), BTreeSet::new());
        assert_eq!(sees(Auditor), all);
        assert_eq!(sees(Operator), all);

        let check = |who: Who, visible: &[u64], hidden: &[u64]| {
            let s = sees(who);
            for i in visible {
                assert!(s.contains(i), "{who:?} should see entry {i}; sees {s:?}");
            }
            for i in hidden {
                assert!(!s.contains(i), "{who:?} should not see entry {i}");
            }
        };
        // Buyer A: its registration, C1's history (the smelting that made
        // it, its purchase, shipment and receipt) and the decision on the
        // flag C1 carries; not the upstream sale of K1 or anything of C2.
        check(
            BuyerA,
            &[
                e.register_buyer_a,
                e.transform_c1,
                e.sell_c1,
                e.dispatch_c1,
                e.receive_c1,
                e.decide_flag,
            ],
            &[
                0,
                e.register_buyer_b,
                e.create_k1,
                e.sell_k1,
                e.receive_k1,
                e.transform_c2,
                e.sell_c2,
            ],
        );
        check(
            BuyerB,
            &[e.register_buyer_b, e.transform_c2, e.sell_c2],
            &[
                e.register_buyer_a,
                e.sell_k1,
                e.transform_c1,
                e.sell_c1,
                e.receive_c1,
                e.decide_flag,
            ],
        );
        // The mine held K1, so sees K1's history up to the smelter's
        // receipt of its dispatch, but not what the smelter did with K1
        // after (the smelting), nor anything of C1.
        check(
            Mine,
            &[e.create_k1, e.sell_k1, e.receive_k1],
            &[
                e.transform_c1,
                e.sell_c1,
                e.receive_c1,
                e.sell_c2,
                e.register_buyer_a,
            ],
        );
        // The smelter and its officer read for the same organisation.
        assert_eq!(sees(Smelter), sees(Officer));
        check(
            Smelter,
            &[
                e.sell_k1,
                e.receive_k1,
                e.transform_c1,
                e.transform_c2,
                e.receive_c1,
                e.sell_c2,
                e.decide_flag,
            ],
            &[e.register_buyer_a, e.register_buyer_b],
        );
    });
}

/// How much of a lot a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sight {
    Full,
    /// A former holder: the summary and its part of the history.
    Held,
    Hidden,
}

/// What the fixture's readers see of its lots: in full the lots they hold
/// now (the smelter keeps custody of the consumed K1 and K2, and of C2,
/// sold to buyer B but not shipped), the summary of lots they held before.
fn sight(who: Who, id: &str) -> Sight {
    match (who, id) {
        (Auditor | Operator, _)
        | (Smelter | Officer, "K1" | "K2" | "C2")
        | (BuyerA, "C1")
        | (BuyerB, "C2") => Sight::Full,
        (Smelter | Officer, "C1") | (Mine, "K1" | "K2") => Sight::Held,
        _ => Sight::Hidden,
    }
}

fn keys_of(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

/// The keys of a lot's summary (`access::LotSummary`).
fn summary_keys() -> BTreeSet<String> {
    ["flags", "id", "kind", "metal", "origin"]
        .map(String::from)
        .into()
}

#[test]
fn lots_are_shown_in_full_to_their_holders_in_summary_to_former_holders_and_as_missing_to_others() {
    with_world(async |w| {
        let missing = w.get(Auditor, "/v1/lots/NOPE-1").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for id in ["K1", "K2", "C1", "C2"] {
            let uri = format!("/v1/lots/{id}");
            for who in READERS {
                let answer = w.get(who, &uri).await;
                let body = answer.json();
                match sight(who, id) {
                    Sight::Full => {
                        assert_eq!(answer.status, StatusCode::OK, "{id} as {who:?}: {body}");
                        assert_eq!(body["id"], id);
                        assert!(body["custodian"].is_string() && body["history"].is_array());
                    }
                    Sight::Held => {
                        assert_eq!(answer.status, StatusCode::OK, "{id} as {who:?}: {body}");
                        assert_eq!(
                            keys_of(&body),
                            ["history", "lot"].map(String::from).into(),
                            "{body}"
                        );
                        assert_eq!(keys_of(&body["lot"]), summary_keys(), "{body}");
                        assert_eq!(body["lot"]["id"], id);
                        let text = body.to_string();
                        for hidden in ["custodian", "owner", "seller", "wet", "assays"] {
                            assert!(!text.contains(hidden), "{id} as {who:?}: {text}");
                        }
                    }
                    Sight::Hidden => {
                        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{id} as {who:?}");
                        // Word for word what a lot that does not exist gets.
                        let as_missing = missing.text().replace("NOPE-1", id);
                        assert_eq!(answer.text(), as_missing);
                    }
                }
            }
        }
        // A former holder's history ends with the receipt of its dispatch:
        // the mine sees K1 up to the smelter's receipt, not the smelting.
        let e = &w.entries;
        let history: Vec<u64> = w.get(Mine, "/v1/lots/K1").await.json()["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect();
        assert_eq!(history.first(), Some(&e.create_k1));
        assert_eq!(history.last(), Some(&e.receive_k1));
        assert!(history.contains(&e.sell_k1));
        assert!(!history.contains(&e.transform_c1));
        // The smelter's history of C1 goes up to buyer A's receipt.
        let history = w.get(Smelter, "/v1/lots/C1").await.json()["history"].clone();
        assert_eq!(
            history,
            json!([e.transform_c1, e.sell_c1, e.dispatch_c1, e.receive_c1])
        );
    });
}

/// Every item of a listing, paged `limit` at a time from `uri` (which has
/// its own query, if any) as `who`: checks every page answers 200, holds
/// at most `limit` items and moves on.
async fn every_item(w: &World, who: Who, uri: &str, field: &str, limit: usize) -> Vec<Value> {
    let separator = if uri.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let page_uri = match &cursor {
            Some(c) => format!("{uri}{separator}limit={limit}&cursor={c}"),
            None => format!("{uri}{separator}limit={limit}"),
        };
        let answer = w.get(who, &page_uri).await;
        assert_eq!(answer.status, StatusCode::OK, "{page_uri} as {who:?}");
        let body = answer.json();
        let page = body[field].as_array().unwrap();
        assert!(page.len() <= limit, "{page_uri}: {body}");
        items.extend(page.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => {
                assert_ne!(
                    Some(next),
                    cursor.as_deref(),
                    "{page_uri}: the cursor moves on"
                );
                cursor = Some(next.to_string());
            }
            None => return items,
        }
    }
    panic!("{uri} as {who:?} did not end");
}

#[test]
fn every_listing_and_graph_needs_a_token_and_shows_only_what_the_reader_may_see() {
    with_world(async |w| {
        let w: &World = w;
        let e = &w.entries;
        let uris = [
            "/v1/lots",
            "/v1/lots/C1/history",
            "/v1/lots/C1/provenance",
            "/v1/lots/K1/downstream",
            "/v1/participants",
            "/v1/flags",
            "/v1/events",
        ];
        for uri in uris {
            for who in [Anonymous].into_iter().chain(BAD_CREDENTIALS) {
                assert_unauthenticated(&w.get(who, uri).await, &format!("{uri} as {who:?}"));
            }
        }

        // The lot listing: lots held now in full, lots held before as
        // summaries, nothing else; the same with any page size.
        for who in READERS {
            for limit in [1, 100] {
                let lots = every_item(w, who, "/v1/lots", "lots", limit).await;
                let mut listed = Vec::new();
                for lot in &lots {
                    let id = lot["id"].as_str().unwrap().to_string();
                    let shown = if lot.get("custodian").is_some() {
                        Sight::Full
                    } else {
                        assert_eq!(keys_of(lot), summary_keys(), "{lot}");
                        Sight::Held
                    };
                    assert_eq!(shown, sight(who, &id), "{id} as {who:?}");
                    listed.push(id);
                }
                let expected: Vec<&str> = ["K1", "K2", "C1", "C2"]
                    .into_iter()
                    .filter(|id| sight(who, id) != Sight::Hidden)
                    .collect();
                assert_eq!(listed, expected, "{who:?}, {limit} a page");
            }
        }
        // Filters on the lot's state now match only lots seen in full: the
        // smelter cannot learn who holds C1 now by asking.
        let held_by_a = |who| async move {
            w.get(who, "/v1/lots?holder=buyer-a").await.json()["lots"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(held_by_a(Smelter).await, 0);
        assert_eq!(held_by_a(BuyerA).await, 1);
        assert_eq!(held_by_a(Auditor).await, 1);

        // The event listing shows exactly the events whose entries show
        // their bytes, whatever the page size.
        let size = w.ledger.size();
        for who in READERS {
            let entries = w.get(who, &format!("/v1/entries?start=0&end={size}")).await;
            let visible = shown(&entries.json());
            for limit in [3, 1000] {
                let events: BTreeSet<u64> = every_item(w, who, "/v1/events", "events", limit)
                    .await
                    .iter()
                    .map(|e| e["index"].as_u64().unwrap())
                    .collect();
                assert_eq!(events, visible, "{who:?}, {limit} a page");
            }
        }
        let events_of = |who| async move {
            every_item(w, who, "/v1/events", "events", 1000)
                .await
                .iter()
                .map(|e| e["index"].as_u64().unwrap())
                .collect::<BTreeSet<u64>>()
        };
        // Another buyer's lot never shows; nor does the cathode's sale to
        // the mine.
        let buyer_a = events_of(BuyerA).await;
        assert!(!buyer_a.contains(&e.sell_c2) && !buyer_a.contains(&e.transform_c2));
        let mine = events_of(Mine).await;
        for hidden in [e.sell_c1, e.dispatch_c1, e.receive_c1, e.transform_c1] {
            assert!(!mine.contains(&hidden), "the mine sees entry {hidden}");
        }
        // Filtered listings stay inside the policy.
        let c2 = w
            .get(BuyerA, "/v1/events?MATCH_epc=urn:oretrail:lot:C2")
            .await;
        assert_eq!(c2.json()["events"], json!([]));

        // Histories: a lot that may not be seen is answered as missing.
        let missing = w.get(Auditor, "/v1/lots/NOPE-1/history").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for who in READERS {
            for id in ["K1", "C1", "C2"] {
                let uri = format!("/v1/lots/{id}/history");
                if sight(who, id) == Sight::Hidden {
                    let answer = w.get(who, &uri).await;
                    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri} as {who:?}");
                    let as_missing = missing.text().replace("NOPE-1", id);
                    assert_eq!(answer.text(), as_missing);
                    continue;
                }
                let listed: Vec<Value> = every_item(w, who, &uri, "entries", 2)
                    .await
                    .iter()
                    .map(|e| e["index"].clone())
                    .collect();
                let lot = w.get(who, &format!("/v1/lots/{id}")).await.json();
                assert_eq!(json!(listed), lot["history"], "{uri} as {who:?}");
            }
        }
        let mine_k1 = w.get(Mine, "/v1/lots/K1/history").await.json();
        assert!(!mine_k1.to_string().contains("\"transform\""), "{mine_k1}");

        // Provenance: the buyer sees its cathode in full, the concentrate
        // behind it only as a summary, and never who held it.
        let provenance = w.get(BuyerA, "/v1/lots/C1/provenance").await;
        assert_eq!(provenance.status, StatusCode::OK);
        let p = provenance.json();
        assert_eq!(p["nodes"][0]["id"], "C1");
        assert_eq!(p["nodes"][0]["custodian"], "buyer-a");
        assert_eq!(p["nodes"][1]["id"], "K1");
        assert_eq!(keys_of(&p["nodes"][1]), summary_keys(), "{p}");
        assert!(
            p["edges"][0]["grams"].is_u64(),
            "its own lot's make-up: {p}"
        );
        assert_eq!(p["mines"][0]["site"], "ART");
        assert_eq!(p["aggregates"]["artisanal_share"], 1_000_000_000u64);
        assert_eq!(p["aggregates"]["flags"][0]["kind"], "ArtisanalOrigin");
        for node in p["nodes"].as_array().unwrap().iter().skip(1) {
            assert!(node.get("custodian").is_none() && node.get("owner").is_none());
        }
        // The smelter held C1 before: C1 is a summary, K1 (still in its
        // custody) in full; links into C1 carry no grams.
        let p = w.get(Smelter, "/v1/lots/C1/provenance").await.json();
        assert_eq!(keys_of(&p["nodes"][0]), summary_keys(), "{p}");
        assert_eq!(p["nodes"][1]["custodian"], "smelter");
        assert!(p["edges"][0].get("grams").is_none(), "{p}");
        let p = w.get(Auditor, "/v1/lots/C1/provenance").await.json();
        assert_eq!(p["nodes"][1]["custodian"], "smelter");
        assert!(p["edges"][0]["grams"].is_u64());
        for who in [BuyerB, Mine] {
            let answer = w.get(who, "/v1/lots/C1/provenance").await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{who:?}");
        }

        // Downstream: lots never held are left out; lots held before are
        // summaries.
        let d = w.get(Mine, "/v1/lots/K1/downstream").await.json();
        assert_eq!(d["lots"].as_array().unwrap().len(), 1, "{d}");
        assert_eq!(keys_of(&d["lots"][0]), summary_keys());
        assert_eq!(d["edges"], json!([]));
        let d = w.get(Smelter, "/v1/lots/K1/downstream").await.json();
        assert_eq!(d["lots"][0]["custodian"], "smelter");
        assert_eq!(keys_of(&d["lots"][1]), summary_keys(), "{d}");
        assert_eq!(d["edges"][0]["child"], "C1");
        assert!(d["edges"][0].get("grams").is_none());
        let d = w.get(Auditor, "/v1/lots/K1/downstream").await.json();
        assert_eq!(d["lots"][1]["custodian"], "buyer-a");
        for who in [BuyerA, BuyerB] {
            let answer = w.get(who, "/v1/lots/K1/downstream").await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{who:?}");
        }

        // Participants: every registration is listed, in full only for the
        // reader's own organisation.
        let identity_keys: BTreeSet<String> = ["country", "id", "kinds", "legal_name"]
            .map(String::from)
            .into();
        for who in READERS {
            let listed = every_item(w, who, "/v1/participants", "participants", 2).await;
            assert_eq!(listed.len(), 7, "{who:?}");
            for p in &listed {
                let id = p["id"].as_str().unwrap();
                let own = match who {
                    Auditor | Operator => true,
                    Smelter | Officer => ["smelter", "officer"].contains(&id),
                    BuyerA => id == "buyer-a",
                    BuyerB => id == "buyer-b",
                    Mine => id == "mine",
                    _ => false,
                };
                if own {
                    assert!(p["roles"].is_array() && p["keys"].is_array(), "{p}");
                } else {
                    assert_eq!(keys_of(p), identity_keys, "{id} as {who:?}: {p}");
                }
            }
        }

        // Red flags: in the register that holds them and on the lots that
        // carry them. Two are raised: the smelter's on K1 (artisanal
        // origin, at its receipt) and buyer A's on C1 (the same origin, at
        // its receipt of C1, which the smelter shipped).
        for (who, sees) in [
            (Smelter, 2),
            (Officer, 2),
            (Mine, 1),
            (BuyerA, 2),
            (BuyerB, 0),
            (Auditor, 2),
        ] {
            let flags = every_item(w, who, "/v1/flags", "flags", 1).await;
            assert_eq!(flags.len(), sees, "{who:?}: {flags:?}");
            if who == Mine {
                assert_eq!(flags[0]["lot"], "K1");
            }
        }
    });
}

#[test]
fn participants_show_their_identity_to_others_and_everything_to_their_own_organisation() {
    with_world(async |w| {
        let identity_keys: BTreeSet<&str> = ["country", "id", "kinds", "legal_name"].into();
        for (who, id, full) in [
            (BuyerA, "buyer-a", true),
            (BuyerA, "mine", false),
            (BuyerA, "smelter", false),
            (BuyerB, "buyer-a", false),
            (Smelter, "officer", true),
            (Officer, "smelter", true),
            (Officer, "officer", true),
            (Mine, "smelter", false),
            (Auditor, "mine", true),
            (Operator, "buyer-b", true),
        ] {
            let answer = w.get(who, &format!("/v1/participants/{id}")).await;
            assert_eq!(answer.status, StatusCode::OK, "{id} as {who:?}");
            let body = answer.json();
            assert_eq!(body["participant"]["id"], id);
            if full {
                assert_eq!(
                    body["keys"][0]["participant"], id,
                    "{id} as {who:?}: {body}"
                );
                assert!(body["participant"]["roles"].is_array(), "{body}");
                assert!(body.get("acts_for").is_some(), "{body}");
            } else {
                let keys: BTreeSet<&str> = body["participant"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys, identity_keys, "{id} as {who:?}: {body}");
                for hidden in ["keys", "acts_for"] {
                    assert!(body.get(hidden).is_none(), "{id} as {who:?}: {body}");
                }
                let text = answer.text();
                assert!(!text.contains(&key(10).public().to_hex()), "{text}");
            }
        }
        // The mine's sites: their volumes only for the mine itself.
        let own = w.get(Mine, "/v1/participants/mine").await.json();
        let other = w.get(BuyerA, "/v1/participants/mine").await.json();
        let (own_sites, other_sites) = (&own["sites"], &other["sites"]);
        assert_eq!(own_sites.as_array().map(Vec::len), Some(2), "{own}");
        assert_eq!(own_sites[0]["annual_capacity"], 50_000_000_000u64);
        assert_eq!(other_sites.as_array().map(Vec::len), Some(2), "{other}");
        assert_eq!(other_sites[0]["annual_capacity"], 0);
        assert_eq!(other_sites[0]["production"], json!([]));
        assert_eq!(other_sites[0]["name"], own_sites[0]["name"]);
        // Unknown participants are 404 to everyone; identities are public
        // to readers, so existence is no secret.
        assert_eq!(
            w.get(BuyerA, "/v1/participants/nobody").await.status,
            StatusCode::NOT_FOUND
        );
    });
}

#[test]
fn red_flags_are_seen_in_the_register_and_on_every_lot_that_carries_them() {
    with_world(async |w| {
        let uri = w.flag_uri();
        let missing = w
            .get(Auditor, &format!("/v1/flags/{}/99", w.flag.entry))
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for (who, sees) in [
            (Smelter, true),
            (Officer, true),
            // On K1, which the mine held.
            (Mine, true),
            // On C1, made from K1.
            (BuyerA, true),
            (BuyerB, false),
            (Auditor, true),
            (Operator, true),
        ] {
            let answer = w.get(who, &uri).await;
            if sees {
                assert_eq!(answer.status, StatusCode::OK, "{who:?}");
                let flag = answer.json();
                assert_eq!(flag["organisation"], "smelter");
                assert_eq!(flag["decisions"].as_array().unwrap().len(), 1);
            } else {
                assert_eq!(answer.status, StatusCode::NOT_FOUND, "{who:?}");
                let as_missing = missing
                    .text()
                    .replace("/99", &format!("/{}", w.flag.n))
                    .replace("\"n\":99", &format!("\"n\":{}", w.flag.n));
                assert_eq!(answer.text(), as_missing);
            }
        }
    });
}

#[test]
fn writes_need_a_valid_signature_and_no_token() {
    with_world(async |w| {
        let mut n = 0;
        for who in EVERY_ROLE {
            n += 1;
            let signed = w.signed("smelter", n);
            let answer = w.post(who, "/v1/events", event_json(&signed)).await;
            assert_eq!(
                answer.status,
                StatusCode::CREATED,
                "{who:?}: {:?}",
                answer.json()
            );

            n += 1;
            let signed = w.signed("smelter", n);
            let mut forged = event_json(&w.signed("smelter", n + 1000));
            forged["signature"] = json!(signed.signature.to_hex());
            let batch = json!({ "events": [event_json(&signed), forged] });
            let answer = w.post(who, "/v1/events/batch", batch).await;
            assert_eq!(answer.status, StatusCode::OK, "{who:?}");
            let results = answer.json();
            assert_eq!(results["results"][0]["status"], 201, "{who:?}: {results}");
            assert_eq!(results["results"][1]["status"], 400, "{who:?}: {results}");
            assert_eq!(results["results"][1]["error"]["code"], "BAD_SIGNATURE");
        }
        // A token does not make a bad signature good.
        let mut forged = event_json(&w.signed("smelter", 5000));
        forged["signature"] = json!(w.signed("smelter", 5001).signature.to_hex());
        let answer = w.post(Operator, "/v1/events", forged).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.json()["code"], "BAD_SIGNATURE");
    });
}

/// Polls `uri` as the holder of `token` until it answers `want`, for at
/// most ten seconds (the server looks at the token file once a second).
async fn eventually(app: &Router, uri: &str, token: &str, want: StatusCode) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let status = app.clone().oneshot(request).await.unwrap().status();
        if status == want {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn tokens_issued_and_revoked_while_serving_take_effect_within_seconds() {
    with_world(async |w| {
        // The server has read the token file already.
        assert_eq!(w.get(BuyerB, "/v1/lots/C2").await.status, StatusCode::OK);
        let data = w.fixture.path().to_path_buf();
        let fresh = common::issue_token(&data, "buyer-b");
        assert!(eventually(&w.app, "/v1/lots/C2", &fresh, StatusCode::OK).await);
        TokenFile::of(&data)
            .update(|t| t.revoke(&TokenSelector::parse(&fresh).unwrap(), Timestamp::now()))
            .unwrap();
        assert!(eventually(&w.app, "/v1/lots/C2", &fresh, StatusCode::UNAUTHORIZED).await);
        // The other tokens are untouched.
        assert_eq!(w.get(BuyerB, "/v1/lots/C2").await.status, StatusCode::OK);
    });
}

// -- the binary ---------------------------------------------------------------

fn oretrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oretrail"))
        .args(args)
        .env_remove("ORETRAIL_DATA")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn init(data: &Path) {
    let o = oretrail(&[
        "init",
        "--data",
        data.to_str().unwrap(),
        "--name",
        "test.oretrail.example/tokens",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn token_commands_issue_list_and_revoke() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init(&data);
    let d = data.to_str().unwrap();

    let issued = oretrail(&[
        "token",
        "issue",
        "--data",
        d,
        "--participant",
        "operator",
        "--label",
        "ops laptop",
    ]);
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    let token = text(&issued.stdout).trim().to_string();
    assert!(token.starts_with("ot_") && token.len() == 46, "{token}");
    let said = text(&issued.stderr);
    let id = said
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string();
    assert!(
        said.starts_with("issued token ") && id.len() == 16,
        "{said}"
    );
    let file = data.join("access").join("tokens.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !std::fs::read_to_string(&file)
            .unwrap()
            .contains(&token[3..])
    );

    let expiring = oretrail(&[
        "token",
        "issue",
        "--data",
        d,
        "--participant",
        "operator",
        "--expires",
        "1h",
    ]);
    assert!(expiring.status.success(), "{}", text(&expiring.stderr));
    assert!(
        text(&expiring.stderr).contains("expires "),
        "{}",
        text(&expiring.stderr)
    );

    let list = oretrail(&["token", "list", "--data", d]);
    assert!(list.status.success());
    let listed = text(&list.stdout);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains("operator") && line.contains("active") && line.contains("ops laptop"),
        "{line}"
    );
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(!listed.contains(&token[3..]));

    let revoked = oretrail(&["token", "revoke", "--data", d, &id]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert!(text(&revoked.stdout).starts_with(&format!("revoked token {id}")));
    let again = oretrail(&["token", "revoke", "--data", d, &token]);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("already revoked"),
        "{}",
        text(&again.stdout)
    );
    let listed = text(&oretrail(&["token", "list", "--data", d]).stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("revoked")),
        "{listed}"
    );

    // Mistakes are exit 2 with the reason, never a panic.
    for (args, reason) in [
        (
            vec!["token", "revoke", "--data", d, "00000000000000ff"],
            "no token 00000000000000ff",
        ),
        (
            vec!["token", "revoke", "--data", d, "nonsense"],
            "not a token id",
        ),
        (
            vec!["token", "issue", "--data", d, "--participant", "Not An Id"],
            "participant id",
        ),
        (
            vec![
                "token",
                "issue",
                "--data",
                d,
                "--participant",
                "x",
                "--expires",
                "soon",
            ],
            "--expires",
        ),
    ] {
        let o = oretrail(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.contains(reason) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    let nowhere = dir.path().join("nowhere");
    let o = oretrail(&[
        "token",
        "issue",
        "--data",
        nowhere.to_str().unwrap(),
        "--participant",
        "operator",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("holds no ledger"),
        "{}",
        text(&o.stderr)
    );
    assert!(!nowhere.exists());
}

#[test]
fn serve_refuses_a_malformed_token_file_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init(&data);
    std::fs::create_dir_all(data.join("access")).unwrap();
    std::fs::write(data.join("access").join("tokens.json"), "{\"format\": 1").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_oretrail"))
        .args(["serve", "--data", data.to_str().unwrap()])
        .env("ORETRAIL_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("tokens.json") && err.contains("not a valid token file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// One HTTP/1.1 GET over a plain socket, with a bearer token when given;
/// returns the status and the body.
fn http_get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

/// `serve --demo` writes reader tokens beside the demo keys and says where
/// they are; they read what their participants may see, and a revocation
/// with `oretrail token revoke` while the server runs takes effect.
#[test]
fn the_demo_reader_tokens_work_over_a_socket_and_can_be_revoked_while_serving() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = common::ServedDemo::start(&data);
    let addr = served.addr.clone();
    let folder = data.join("keys").join("demo");
    let read = |id: &str| {
        let path = folder.join(format!("{id}.token"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::read_to_string(path).unwrap().trim().to_string()
    };
    let (auditor, buyer, smelter, operator) = (
        read("auditor.trailcheck"),
        read("buyer.rheinkabel"),
        read("smelter.pohjanmeri"),
        read("operator"),
    );

    // The last cathode of the demo year is still at the smelter: the buyer
    // never held it.
    let lot = "/v1/lots/PSO-CA-2026-0462";
    let checks = [
        (lot, None, 401),
        (lot, Some(&smelter), 200),
        (lot, Some(&operator), 200),
        (lot, Some(&buyer), 404),
        ("/v1/participants/buyer.rheinkabel", Some(&buyer), 200),
    ];
    let mut failures = Vec::new();
    for (path, token, want) in checks {
        let (status, body) = http_get(&addr, path, token.map(String::as_str));
        if status != want {
            failures.push(format!("{path}: {status} (wanted {want}): {body}"));
        }
    }
    let (status, body) = http_get(&addr, "/v1/entries/1", Some(&auditor));
    let shown = status == 200 && body.contains("\"leaf\"");
    let (_, anonymous) = http_get(&addr, "/v1/entries/1", None);

    let revoke = oretrail(&["token", "revoke", "--data", data.to_str().unwrap(), &buyer]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let (status, _) = http_get(&addr, "/v1/participants/buyer.rheinkabel", Some(&buyer));
        if status == 401 || Instant::now() > deadline {
            break status == 401;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stopped, rest) = served.stop();

    assert!(stopped.success(), "{rest}");
    // After its address, the server says how to read with a demo token.
    assert!(
        rest.contains(&format!(
            "Authorization: Bearer $(cat {})",
            folder.join("auditor.trailcheck.token").display()
        )),
        "{rest}"
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(shown, "the auditor does not see entry 1's bytes: {body}");
    assert!(!anonymous.contains("\"leaf\""), "{anonymous}");
    assert!(revoke.status.success(), "{}", text(&revoke.stderr));
    assert!(refused, "the revoked token still worked after 10 s");
}
