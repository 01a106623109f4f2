//! The HTTP API: every endpoint in process through the router
//! (`tower::ServiceExt::oneshot`), its happy path and its main error codes,
//! and one test of the binary serving on a real socket.

use crate::common;
use crate::{Answer, new_ledger};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{ORIGIN, TestClock, key, pid};
use oretrail::api::{self, AppState, Limits, MAX_ENTRIES_PER_PAGE};
use oretrail::crypto::{SecretKey, Signature};
use oretrail::ledger::{Ledger, OPERATOR_KEY_FILE};
use oretrail::merkle::{self, Hash};
use oretrail::model::{
    Assay, CountryCode, Dispatch, Element, EventBody, Grams, LotCreation, LotId, LotKind,
    LotReceipt, ParticipantKind, Ppb, Registration, Role, SignedEvent, SiteId, SiteRegistration,
    SiteScale,
};
use oretrail::signer::Signer;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// A ledger on a simulated clock behind the router, and the operator's
/// signer.
struct Api {
    _dir: tempfile::TempDir,
    ledger: Arc<Ledger>,
    app: Router,
    clock: TestClock,
    operator: Signer,
    /// The operator's bearer token: `get` reads as the operator, who sees
    /// everything (`tests/http/access.rs` covers every other reader).
    token: String,
}

impl Answer {
    /// Asserts a JSON error with this status and code; returns its body.
    fn error(&self, status: StatusCode, code: &str) -> Value {
        let body = self.json();
        assert_eq!(self.status, status, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body.get("details").is_some(), "{body}");
        assert_eq!(self.content_type(), "application/json");
        body
    }
}

impl Api {
    fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    fn with_limits(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new();
        let (ledger, operator) = new_ledger(dir.path(), &clock);
        let token = common::issue_token(dir.path(), "operator");
        let app = api::router(AppState::with_limits(ledger.clone(), limits));
        Self {
            _dir: dir,
            ledger,
            app,
            clock,
            operator,
            token,
        }
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        Answer::read(self.app.clone().oneshot(request).await.unwrap()).await
    }

    /// `GET uri` as the operator.
    async fn get(&self, uri: &str) -> Answer {
        self.send(
            Request::get(uri)
                .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post(&self, uri: &str, body: impl Into<Body>) -> Answer {
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    async fn post_event(&self, signed: &SignedEvent) -> Answer {
        self.post("/v1/events", event_json(signed).to_string())
            .await
    }

    /// Signs `body` with `signer` one simulated second later.
    fn sign(&self, signer: &mut Signer, body: EventBody) -> SignedEvent {
        self.clock.advance(1000);
        signer.sign(self.clock.now(), body).unwrap()
    }

    fn sign_op(&mut self, body: EventBody) -> SignedEvent {
        self.clock.advance(1000);
        self.operator.sign(self.clock.now(), body).unwrap()
    }

    /// Registers a participant over HTTP; returns its signer.
    async fn register(&mut self, id: &str, n: u32, roles: Vec<Role>) -> Signer {
        let signed = self.sign_op(registration(id, n, roles));
        let answer = self.post_event(&signed).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        Signer::with_first_nonce(ORIGIN, pid(id), key(n), 1)
    }

    fn size_and_root(&self) -> (u64, Hash) {
        (self.ledger.size(), self.ledger.root())
    }
}

fn registration(id: &str, n: u32, roles: Vec<Role>) -> EventBody {
    EventBody::RegisterParticipant(Registration {
        participant: pid(id),
        legal_name: format!("{id} Ltd"),
        country: CountryCode::new("ZM").unwrap(),
        kinds: vec![ParticipantKind::Trader],
        roles,
        keys: vec![key(n).public()],
    })
}

fn event_json(signed: &SignedEvent) -> Value {
    json!({
        "key": signed.key.to_hex(),
        "signature": signed.signature.to_hex(),
        "event": hex::encode(&signed.event),
    })
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn hash_b64(text: &Value) -> Hash {
    STANDARD
        .decode(text.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn proof(body: &Value) -> Vec<Hash> {
    body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash_b64)
        .collect()
}

fn lot_id(s: &str) -> LotId {
    LotId::new(s).unwrap()
}

/// A mine with a large-scale and an artisanal site, a smelter and a
/// compliance officer, registered over HTTP.
struct Chain {
    api: Api,
    mine: Signer,
    smelter: Signer,
}

impl Chain {
    async fn new() -> Self {
        let mut api = Api::new();
        let mine = api
            .register(
                "mine",
                10,
                vec![Role::Producer, Role::Custodian, Role::Seller],
            )
            .await;
        let smelter = api
            .register(
                "smelter",
                11,
                vec![Role::Custodian, Role::Processor, Role::Purchaser],
            )
            .await;
        let mut compliance = api.register("compliance", 13, vec![Role::Compliance]).await;
        for (site, scale) in [
            ("KAN", SiteScale::LargeScale),
            ("ART", SiteScale::Artisanal),
        ] {
            let signed = api.sign(
                &mut compliance,
                EventBody::RegisterSite(SiteRegistration {
                    site: SiteId::new(site).unwrap(),
                    operator: pid("mine"),
                    name: format!("{site} pit"),
                    country: CountryCode::new("ZM").unwrap(),
                    latitude_micro: -12_100_000,
                    longitude_micro: 26_400_000,
                    scale,
                    metal: Element::Cu,
                    annual_capacity: Grams(50_000_000_000),
                }),
            );
            assert_eq!(api.post_event(&signed).await.status, StatusCode::CREATED);
        }
        Chain { api, mine, smelter }
    }

    fn create_lot(&mut self, lot: &str, site: &str) -> SignedEvent {
        let now = self.api.clock.now();
        self.api.sign(
            &mut self.mine,
            EventBody::CreateLot(LotCreation {
                lot: lot_id(lot),
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
        )
    }

    fn dispatch(&mut self, who: Who, lot: &str) -> SignedEvent {
        let signer = match who {
            Who::Mine => &mut self.mine,
            Who::Smelter => &mut self.smelter,
        };
        self.api.sign(
            signer,
            EventBody::Dispatch(Dispatch {
                lot: lot_id(lot),
                to: pid("smelter"),
                route: vec![CountryCode::new("ZM").unwrap()],
                documents: vec![],
            }),
        )
    }

    fn receive(&mut self, lot: &str) -> SignedEvent {
        self.api.sign(
            &mut self.smelter,
            EventBody::Receive(LotReceipt {
                lot: lot_id(lot),
                measured_wet: Grams(1_000_000_000),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        )
    }

    async fn ok(&self, signed: &SignedEvent) -> Value {
        let answer = self.api.post_event(signed).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        answer.json()
    }
}

#[derive(Clone, Copy)]
enum Who {
    Mine,
    Smelter,
}

#[tokio::test]
async fn an_append_answers_with_its_durable_entry_and_a_replay_with_the_original() {
    let mut api = Api::new();
    let signed = api.sign_op(registration("mine", 10, vec![Role::Producer]));
    let answer = api.post_event(&signed).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.content_type(), "application/json");
    let receipt = answer.json();
    assert_eq!(receipt["index"], 1);
    assert_eq!(receipt["tree_size"], 2);
    assert_eq!(receipt["replay"], false);
    // The entry hash is the RFC 9162 leaf hash of the entry's bytes, and
    // the checkpoint is the ledger's signed note covering it.
    let (_, bytes) = api.ledger.entry(1).unwrap();
    assert_eq!(
        receipt["entry_hash"],
        hex::encode(merkle::leaf_hash(&bytes))
    );
    assert_eq!(receipt["checkpoint"], &*api.ledger.checkpoint());
    assert!(receipt["checkpoint"].as_str().unwrap().contains("\n2\n"));

    // The same signed event again: the original entry, nothing appended.
    api.clock.advance(1000);
    let before = api.size_and_root();
    let again = api.post_event(&signed).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    let replay = again.json();
    assert_eq!(replay["replay"], true);
    assert_eq!(replay["index"], 1);
    assert_eq!(replay["entry_hash"], receipt["entry_hash"]);
    assert_eq!(api.size_and_root(), before);
}

#[tokio::test]
async fn base64_bodies_are_accepted_when_the_encoding_is_named() {
    let mut api = Api::new();
    let signed = api.sign_op(registration("mine", 10, vec![Role::Producer]));
    let body = json!({
        "key": b64(signed.key.as_bytes()),
        "signature": b64(signed.signature.as_bytes()),
        "event": b64(&signed.event),
        "encoding": "base64",
    });
    let answer = api.post("/v1/events", body.to_string()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.json()["index"], 1);
    // Base64 text sent without naming the encoding is read as hex, and
    // refused as such.
    let unnamed = json!({
        "key": b64(signed.key.as_bytes()),
        "signature": b64(signed.signature.as_bytes()),
        "event": b64(&signed.event),
    });
    let answer = api.post("/v1/events", unnamed.to_string()).await;
    let body = answer.error(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST");
    assert_eq!(body["details"]["field"], "key");
}

#[tokio::test]
async fn a_rule_refusal_is_422_with_the_rule_code_and_changes_nothing() {
    let mut chain = Chain::new().await;
    let created = chain.create_lot("KAN-1", "KAN");
    chain.ok(&created).await;
    let before = chain.api.size_and_root();
    let lot_before = chain.api.get("/v1/lots/KAN-1").await.json();

    // Only the custodian dispatches: the smelter is not.
    let wrong = chain.dispatch(Who::Smelter, "KAN-1");
    let answer = chain.api.post_event(&wrong).await;
    let body = answer.error(StatusCode::UNPROCESSABLE_ENTITY, "NOT_CUSTODIAN");
    assert!(
        body["message"].as_str().unwrap().contains("KAN-1"),
        "{body}"
    );
    assert_eq!(chain.api.size_and_root(), before);
    assert_eq!(chain.api.get("/v1/lots/KAN-1").await.json(), lot_before);

    // A refused event was not recorded, so it is refused again, not
    // answered as a replay.
    let again = chain.api.post_event(&wrong).await;
    again.error(StatusCode::UNPROCESSABLE_ENTITY, "NOT_CUSTODIAN");
    assert_eq!(chain.api.size_and_root(), before);
}

#[tokio::test]
async fn malformed_events_are_400_with_stable_codes() {
    let mut api = Api::new();
    let signed = api.sign_op(registration("mine", 10, vec![Role::Producer]));
    let good = event_json(&signed);
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body.to_string()
    };
    let other_signature = SecretKey::from_seed(&[7; 32]).sign(&signed.event);
    let mut flipped = signed.event.clone();
    flipped[20] ^= 1;
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("not json".into(), "MALFORMED_REQUEST", None),
        (
            json!({"key": good["key"]}).to_string(),
            "MALFORMED_REQUEST",
            None,
        ),
        (with("extra", json!(1)), "MALFORMED_REQUEST", None),
        (with("key", json!("zz")), "MALFORMED_REQUEST", Some("key")),
        (with("key", json!("abcd")), "MALFORMED_REQUEST", Some("key")),
        (
            with("signature", json!("00")),
            "MALFORMED_REQUEST",
            Some("signature"),
        ),
        (
            with("event", json!("xyz")),
            "MALFORMED_REQUEST",
            Some("event"),
        ),
        (with("encoding", json!("base32")), "MALFORMED_REQUEST", None),
        (with("event", json!("00ff")), "MALFORMED_EVENT", None),
        (
            with("event", json!(hex::encode(&flipped))),
            "MALFORMED_EVENT",
            None,
        ),
        (
            with("signature", json!(other_signature.to_hex())),
            "BAD_SIGNATURE",
            None,
        ),
    ];
    let before = api.size_and_root();
    for (body, code, field) in cases {
        let answer = api.post("/v1/events", body.clone()).await;
        let error = answer.error(StatusCode::BAD_REQUEST, code);
        if let Some(field) = field {
            assert_eq!(error["details"]["field"], field, "{body}");
        }
    }
    assert_eq!(api.size_and_root(), before);
    // The untouched event is still accepted.
    assert_eq!(api.post_event(&signed).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn bodies_over_the_size_limits_are_413() {
    let mut api = Api::with_limits(Limits {
        max_event_body: 2048,
        max_batch_body: 4096,
        ..Limits::default()
    });
    let signed = api.sign_op(registration("mine", 10, vec![Role::Producer]));
    let padded = format!("{}{}", event_json(&signed), " ".repeat(2048));
    let answer = api.post("/v1/events", padded).await;
    answer.error(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE");
    let batch = json!({ "events": vec![event_json(&signed); 20] }).to_string();
    assert!(batch.len() > 4096);
    let answer = api.post("/v1/events/batch", batch).await;
    answer.error(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE");
    assert_eq!(api.ledger.size(), 1);
    // Within the limit it goes through.
    assert_eq!(api.post_event(&signed).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_batch_answers_each_event_on_its_own_in_order() {
    let mut chain = Chain::new().await;
    let recorded = chain.create_lot("KAN-1", "KAN");
    chain.ok(&recorded).await;
    let size = chain.api.ledger.size();

    // A lot created and dispatched in the same batch: the dispatch sees
    // the creation before it.
    let create = chain.create_lot("KAN-2", "KAN");
    let dispatch = chain.dispatch(Who::Mine, "KAN-2");
    let refused = chain.dispatch(Who::Smelter, "KAN-1");
    let mut bad_signature = event_json(&chain.create_lot("KAN-3", "KAN"));
    bad_signature["signature"] = json!(Signature::from_bytes([1; 64]).to_hex());
    let items = vec![
        event_json(&create),
        event_json(&recorded),
        event_json(&dispatch),
        event_json(&refused),
        json!({"key": "00"}),
        bad_signature,
        event_json(&create),
    ];
    let answer = chain
        .api
        .post("/v1/events/batch", json!({ "events": items }).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let results = answer.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 7);
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 200, 201, 422, 400, 400, 200]);
    assert_eq!(results[0]["receipt"]["index"], size);
    assert_eq!(results[0]["receipt"]["replay"], false);
    assert_eq!(results[1]["receipt"]["replay"], true);
    assert_eq!(results[1]["receipt"]["index"], size - 1);
    assert_eq!(results[2]["receipt"]["index"], size + 1);
    assert_eq!(results[3]["error"]["code"], "NOT_CUSTODIAN");
    assert_eq!(results[4]["error"]["code"], "MALFORMED_REQUEST");
    assert_eq!(results[5]["error"]["code"], "BAD_SIGNATURE");
    // The same event twice in one batch is recorded once.
    assert_eq!(results[6]["receipt"]["replay"], true);
    assert_eq!(results[6]["receipt"]["index"], size);
    for r in &results {
        assert!(
            r.get("receipt").is_some() != r.get("error").is_some(),
            "{r}"
        );
    }
    assert_eq!(chain.api.ledger.size(), size + 2);
    let lot = chain.api.get("/v1/lots/KAN-2").await.json();
    assert_eq!(lot["status"]["InTransit"]["to"], "smelter");
    assert_eq!(lot["status"]["InTransit"]["dispatched_in"], size + 1);
}

#[tokio::test]
async fn a_batch_over_the_event_limit_is_refused_whole() {
    let mut api = Api::with_limits(Limits {
        max_batch_events: 2,
        ..Limits::default()
    });
    let items: Vec<Value> = (0..3)
        .map(|i| {
            event_json(&api.sign_op(registration(
                &format!("p{i}"),
                100 + i,
                vec![Role::Producer],
            )))
        })
        .collect();
    let answer = api
        .post("/v1/events/batch", json!({ "events": items }).to_string())
        .await;
    let body = answer.error(StatusCode::PAYLOAD_TOO_LARGE, "BATCH_TOO_LARGE");
    assert_eq!(body["details"]["max_events"], 2);
    assert_eq!(api.ledger.size(), 1);
    let answer = api
        .post(
            "/v1/events/batch",
            json!({ "events": &items[..2] }).to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(api.ledger.size(), 3);
    // A body that is not a batch.
    let answer = api
        .post("/v1/events/batch", json!([1, 2]).to_string())
        .await;
    answer.error(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST");
}

#[tokio::test]
async fn the_checkpoint_and_the_log_key_are_plain_text_that_verify() {
    let mut api = Api::new();
    api.register("mine", 10, vec![Role::Producer]).await;
    let note = api.get("/v1/checkpoint").await;
    assert_eq!(note.status, StatusCode::OK);
    assert_eq!(note.content_type(), "text/plain; charset=utf-8");
    assert_eq!(note.text(), &*api.ledger.checkpoint());
    let key = api.get("/v1/log/key").await;
    assert_eq!(key.status, StatusCode::OK);
    assert_eq!(key.content_type(), "text/plain; charset=utf-8");
    assert_eq!(
        key.text(),
        format!("{}\n", api.ledger.log_key_line().unwrap())
    );

    let verifier = merkle::checkpoint::parse_verifier_key(key.text().trim_end()).unwrap();
    let checkpoint = merkle::checkpoint::open(note.text(), &verifier).unwrap();
    assert_eq!(checkpoint.origin(), ORIGIN);
    assert_eq!(checkpoint.size(), 2);
    assert_eq!(checkpoint.root(), &api.ledger.root());
}

#[tokio::test]
async fn entries_carry_leaf_hashes_exact_bytes_and_the_decoded_entry() {
    let mut api = Api::new();
    api.register("mine", 10, vec![Role::Producer]).await;
    api.register("smelter", 11, vec![Role::Custodian]).await;

    let answer = api.get("/v1/entries/1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let item = &entries[0];
    let (entry, bytes) = api.ledger.entry(1).unwrap();
    assert_eq!(item["index"], 1);
    assert_eq!(item["leaf"], b64(&bytes));
    assert_eq!(hash_b64(&item["leaf_hash"]), merkle::leaf_hash(&bytes));
    let decoded = &item["entry"];
    assert_eq!(decoded["index"], 1);
    assert_eq!(decoded["prev"], entry.prev.to_hex());
    assert_eq!(decoded["record_time"], entry.record_time.to_string());
    assert_eq!(decoded["key"], entry.signed.key.to_hex());
    assert_eq!(decoded["event_id"], entry.signed.event_id().to_hex());
    assert_eq!(decoded["event"]["signer"], "operator");
    assert_eq!(
        decoded["event"]["body"]["register_participant"]["participant"],
        "mine"
    );

    // The whole log: the root recomputed from the leaf hashes alone is the
    // checkpoint's root.
    let all = api.get("/v1/entries?start=0&end=3").await.json();
    let leaves: Vec<Hash> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| hash_b64(&e["leaf_hash"]))
        .collect();
    assert_eq!(leaves.len(), 3);
    let tree = merkle::MemoryNodes::from_leaves(leaves);
    assert_eq!(tree.root(), api.ledger.root());

    let missing = api.get("/v1/entries/3").await;
    let error = missing.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(error["details"]["tree_size"], 3);
    api.get("/v1/entries/x")
        .await
        .error(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST");
}

#[tokio::test]
async fn entry_ranges_are_cut_at_the_tree_and_the_page_size() {
    let mut api = Api::new();
    // One full batch: 1,000 registrations, the most a batch takes.
    let items: Vec<Value> = (0..1000u32)
        .map(|i| {
            event_json(&api.sign_op(registration(
                &format!("p{i:04}"),
                1000 + i,
                vec![Role::Producer],
            )))
        })
        .collect();
    let answer = api
        .post("/v1/events/batch", json!({ "events": items }).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let results = answer.json()["results"].as_array().unwrap().clone();
    assert!(results.iter().all(|r| r["status"] == 201));
    assert_eq!(api.ledger.size(), 1001);

    let indexes = |body: &Value| -> Vec<u64> {
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect()
    };
    let page = api.get("/v1/entries?start=0&end=5000").await.json();
    assert_eq!(
        indexes(&page),
        (0..MAX_ENTRIES_PER_PAGE).collect::<Vec<_>>()
    );
    let rest = api.get("/v1/entries?start=1000&end=5000").await.json();
    assert_eq!(indexes(&rest), [1000]);
    let some = api.get("/v1/entries?start=10&end=13").await.json();
    assert_eq!(indexes(&some), [10, 11, 12]);

    for bad in [
        "/v1/entries?start=5&end=5",
        "/v1/entries?start=6&end=5",
        "/v1/entries?start=1001&end=1002",
    ] {
        api.get(bad)
            .await
            .error(StatusCode::BAD_REQUEST, "BAD_RANGE");
    }
    for malformed in [
        "/v1/entries?start=1",
        "/v1/entries?start=-1&end=2",
        "/v1/entries",
    ] {
        api.get(malformed)
            .await
            .error(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST");
    }
}

#[tokio::test]
async fn inclusion_proofs_verify_and_bad_sizes_are_refused() {
    let mut api = Api::new();
    for i in 0..6 {
        api.register(&format!("p{i}"), 20 + i, vec![Role::Producer])
            .await;
    }
    let size = api.ledger.size();
    assert_eq!(size, 7);
    for tree_size in 1..=size {
        let root = api.ledger.root_at(tree_size).unwrap();
        for index in 0..tree_size {
            let answer = api
                .get(&format!(
                    "/v1/proofs/inclusion?index={index}&tree_size={tree_size}"
                ))
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            let body = answer.json();
            assert_eq!(
                (body["index"].as_u64(), body["tree_size"].as_u64()),
                (Some(index), Some(tree_size))
            );
            let (_, bytes) = api.ledger.entry(index).unwrap();
            merkle::verify_inclusion(
                &merkle::leaf_hash(&bytes),
                index,
                tree_size,
                &proof(&body),
                &root,
            )
            .unwrap();
        }
    }
    for bad in [
        "/v1/proofs/inclusion?index=7&tree_size=7",
        "/v1/proofs/inclusion?index=0&tree_size=8",
        "/v1/proofs/inclusion?index=0&tree_size=0",
    ] {
        api.get(bad)
            .await
            .error(StatusCode::BAD_REQUEST, "BAD_RANGE");
    }
    api.get("/v1/proofs/inclusion?index=0")
        .await
        .error(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST");
}

#[tokio::test]
async fn consistency_proofs_verify_and_bad_sizes_are_refused() {
    let mut api = Api::new();
    for i in 0..6 {
        api.register(&format!("p{i}"), 20 + i, vec![Role::Producer])
            .await;
    }
    let size = api.ledger.size();
    for second in 1..=size {
        for first in 1..=second {
            let answer = api
                .get(&format!(
                    "/v1/proofs/consistency?first={first}&second={second}"
                ))
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            let body = answer.json();
            assert_eq!(
                (body["first"].as_u64(), body["second"].as_u64()),
                (Some(first), Some(second))
            );
            merkle::verify_consistency(
                first,
                second,
                &api.ledger.root_at(first).unwrap(),
                &api.ledger.root_at(second).unwrap(),
                &proof(&body),
            )
            .unwrap();
        }
    }
    for bad in [
        "/v1/proofs/consistency?first=0&second=3",
        "/v1/proofs/consistency?first=4&second=3",
        "/v1/proofs/consistency?first=1&second=8",
    ] {
        api.get(bad)
            .await
            .error(StatusCode::BAD_REQUEST, "BAD_RANGE");
    }
    api.get("/v1/proofs/consistency?first=a&second=3")
        .await
        .error(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST");
}

#[tokio::test]
async fn lots_participants_and_flags_are_read_from_the_state() {
    let mut chain = Chain::new().await;
    // Material from the artisanal site raises a red flag at its receipt.
    let created = chain.create_lot("ART/2026/1", "ART");
    chain.ok(&created).await;
    let dispatched = chain.dispatch(Who::Mine, "ART/2026/1");
    chain.ok(&dispatched).await;
    let received = chain.receive("ART/2026/1");
    let receipt = chain.ok(&received).await;
    let receipt_index = receipt["index"].as_u64().unwrap();

    // Slashes in lot ids are sent percent-encoded.
    let answer = chain.api.get("/v1/lots/ART%2F2026%2F1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let lot = answer.json();
    assert_eq!(lot["id"], "ART/2026/1");
    assert_eq!(lot["custodian"], "smelter");
    assert_eq!(lot["owner"], "mine");
    assert_eq!(lot["kind"], "Concentrate");
    assert_eq!(lot["wet"], 1_000_000_000);
    assert_eq!(lot["origin"][0]["site"], "ART");
    let flags = lot["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{lot}");
    assert_eq!(flags[0]["entry"], receipt_index);

    let n = flags[0]["n"].as_u64().unwrap();
    let answer = chain
        .api
        .get(&format!("/v1/flags/{receipt_index}/{n}"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let flag = answer.json();
    assert_eq!(flag["kind"], "ArtisanalOrigin");
    assert_eq!(flag["organisation"], "smelter");
    assert_eq!(flag["lot"], "ART/2026/1");
    assert_eq!(flag["decisions"], json!([]));

    let answer = chain.api.get("/v1/participants/mine").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let mine = answer.json();
    assert_eq!(mine["participant"]["id"], "mine");
    assert_eq!(
        mine["participant"]["roles"],
        json!(["producer", "custodian", "seller"])
    );
    assert_eq!(mine["keys"][0]["key"], key(10).public().to_hex());
    assert_eq!(mine["keys"][0]["valid_until"], Value::Null);
    assert_eq!(mine["acts_for"], Value::Null);

    // Unknown: 404; not an id at all: 400.
    for missing in [
        "/v1/lots/NOPE-1",
        "/v1/participants/nobody",
        "/v1/flags/1/0",
        &format!("/v1/flags/{receipt_index}/{}", n + 1),
    ] {
        chain
            .api
            .get(missing)
            .await
            .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    for malformed in [
        "/v1/lots/-bad",
        "/v1/participants/Mine",
        "/v1/flags/x/0",
        "/v1/flags/1/70000",
    ] {
        chain
            .api
            .get(malformed)
            .await
            .error(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json_errors() {
    let api = Api::new();
    api.get("/v1/nothing-here")
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.get("/").await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let answer = api
        .send(
            Request::builder()
                .method(Method::DELETE)
                .uri("/v1/checkpoint")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    answer.error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    api.get("/v1/events/batch")
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

/// A request body that arrives only when the test sends it, so that a
/// request can be held in flight.
fn held_body() -> (tokio::sync::oneshot::Sender<Bytes>, Body) {
    let (tx, rx) = tokio::sync::oneshot::channel::<Bytes>();
    let stream = futures_util::stream::once(async move { rx.await.map_err(std::io::Error::other) });
    (tx, Body::from_stream(stream))
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_503_timeout() {
    let api = Api::with_limits(Limits {
        request_timeout: Duration::from_millis(100),
        ..Limits::default()
    });
    let (_tx, body) = held_body();
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        api.send(Request::post("/v1/events").body(body).unwrap()),
    )
    .await
    .expect("the server's time limit ended the request");
    answer.error(StatusCode::SERVICE_UNAVAILABLE, "TIMEOUT");
    // Other requests are unaffected.
    assert_eq!(api.get("/v1/checkpoint").await.status, StatusCode::OK);
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_wait_for_a_slot() {
    let mut api = Api::with_limits(Limits {
        max_concurrent_requests: 1,
        ..Limits::default()
    });
    let signed = api.sign_op(registration("mine", 10, vec![Role::Producer]));
    let (tx, body) = held_body();
    let first = tokio::spawn(
        api.app
            .clone()
            .oneshot(Request::post("/v1/events").body(body).unwrap()),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = tokio::spawn(
        api.app
            .clone()
            .oneshot(Request::get("/v1/checkpoint").body(Body::empty()).unwrap()),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second request did not wait");
    assert!(!first.is_finished());

    tx.send(Bytes::from(event_json(&signed).to_string()))
        .unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second request got a slot")
        .unwrap()
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);
}

/// Sends one HTTP/1.1 request over a plain socket; returns the status and
/// the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The binary as an operator runs it: `serve --demo` on an empty folder
/// builds the demo ledger, listens on a free port (`ORETRAIL_ADDR`), takes
/// an event over a plain socket and, on SIGTERM, finishes and closes the
/// ledger with the entry in it.
#[test]
fn serve_demo_appends_over_a_real_socket_and_shuts_down_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = common::ServedDemo::start(&data);
    let (addr, printed) = (served.addr.clone(), served.printed.clone());
    assert!(printed.starts_with("built demo ledger"), "{printed}");

    let (status, before) = http(&addr, "GET", "/v1/checkpoint", "");
    assert_eq!(status, 200);
    let size: u64 = before.lines().nth(1).unwrap().parse().unwrap();
    assert!(size > 4000, "{before}");

    // The demo's operator registers a participant.
    let operator_key = SecretKey::read_file(&data.join("keys").join(OPERATOR_KEY_FILE)).unwrap();
    let mut operator = Signer::new(oretrail::demo::ORIGIN, pid("operator"), operator_key);
    let signed = operator
        .sign(
            oretrail::model::Timestamp::now(),
            registration("mine.socket-test", 10, vec![Role::Producer]),
        )
        .unwrap();
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/events",
        &event_json(&signed).to_string(),
    );
    assert_eq!(status, 201, "{body}");
    let receipt: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(receipt["index"], size);
    assert_eq!(receipt["tree_size"], size + 1);
    let (status, note) = http(&addr, "GET", "/v1/checkpoint", "");
    assert_eq!(status, 200);
    assert_eq!(receipt["checkpoint"], note);

    let (status, rest) = served.stop();
    assert!(
        status.success(),
        "serve exited with {status}: {printed}{rest}"
    );
    assert!(
        rest.contains(&format!("stopped; ledger closed with {} entries", size + 1)),
        "{rest}"
    );
    // The acknowledged entry is in the log, which verifies from scratch.
    let report = oretrail::ledger::verify_log(&data.join("log"), false).unwrap();
    assert_eq!(report.entries, size + 1);
    assert_eq!(report.checkpoint, note);
}

#[test]
fn serve_without_a_ledger_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oretrail"))
        .args(["serve", "--data", dir.path().to_str().unwrap()])
        .env("ORETRAIL_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("holds no ledger") && stderr.contains("--demo"),
        "{stderr}"
    );
    // Nothing was created.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
