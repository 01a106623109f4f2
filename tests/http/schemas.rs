//! The JSON Schemas of `schemas/api/` against the code and the server.
//!
//! - The committed files are what the types produce: the schemas are cut
//!   out of the OpenAPI document (`api::openapi::body_schemas`), and a
//!   file that differs, is missing or is left over fails the test. After
//!   a deliberate change of a body, regenerate them with:
//!
//!   ```sh
//!   ORETRAIL_BLESS=1 cargo test --test http schemas
//!   ```
//!
//! - Real answers of the server (the demo ledger behind the router, in
//!   process) validate against the committed files: every entry of the
//!   log, every lot, participant and red flag, proofs, receipts, a replay,
//!   a batch and the errors. Which schema applies is read from the OpenAPI
//!   document (method, route and status), so an undocumented status or a
//!   body of the wrong shape fails.
//! - A drift is caught: the same answers with a field renamed or a value
//!   of the wrong kind do not validate.

use crate::Answer;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use oretrail::access::tokens::TokenFile;
use oretrail::api::{self, AppState};
use oretrail::crypto::{SecretKey, Signature, sha256};
use oretrail::demo::{self, DemoOptions};
use oretrail::ledger::{Ledger, Options};
use oretrail::model::{
    Dispatch, DocumentAttachment, DocumentKind, DocumentRef, EventBody, LotId, ParticipantId,
    SignedEvent, Timestamp,
};
use oretrail::signer::Signer;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/api");
const BLESS: &str = "ORETRAIL_BLESS=1 cargo test --test http schemas";
const SMELTER: &str = "smelter.pohjanmeri";
const BUYER: &str = "buyer.rheinkabel";
const AUDITOR: &str = "auditor.trailcheck";

// ---------------------------------------------------------------------------
// The committed files are what the types produce.
// ---------------------------------------------------------------------------

/// The text of every file `schemas/api/` should hold, by file name.
fn generated_files() -> BTreeMap<String, String> {
    let schemas = api::openapi::body_schemas();
    let doc = serde_json::to_value(<api::openapi::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
    let uses = api::openapi::body_uses(&doc);
    let mut files: BTreeMap<String, String> = schemas
        .iter()
        .map(|(name, schema)| {
            let mut text = serde_json::to_string_pretty(schema).unwrap();
            text.push('\n');
            (format!("{name}.schema.json"), text)
        })
        .collect();
    files.insert("README.md".into(), index(&schemas, &uses));
    files
}

/// `schemas/api/README.md`: what each file is and where the API uses it.
fn index(schemas: &BTreeMap<String, Value>, uses: &BTreeMap<String, Vec<String>>) -> String {
    let mut text = String::from(
        "# JSON Schemas of the HTTP API\n\
         \n\
         Generated from the code; do not edit. Each file is the JSON Schema\n\
         (draft 2020-12, the dialect of OpenAPI 3.1) of one JSON body the API\n\
         takes or sends, standing alone: the body's schema with every schema it\n\
         uses under `$defs`. They are cut out of the OpenAPI document the server\n\
         serves at `GET /v1/openapi.json`, which is generated from the Rust\n\
         types, so the two always agree. `tests/http/schemas.rs` fails when a file\n\
         differs from what the types produce, and validates the server's real\n\
         answers against these files. Regenerate after a deliberate change of a\n\
         body with:\n\
         \n\
         ```sh\n\
         ORETRAIL_BLESS=1 cargo test --test http schemas\n\
         ```\n\
         \n\
         Ids and hashes are hex in these bodies except in the log API\n\
         (`EntriesBody`, `InclusionBody`, `ConsistencyBody`), where leaf hashes,\n\
         entry bytes and proof hashes are standard base64, as outside verifiers\n\
         expect. Times are RFC 3339 UTC strings; masses are integer grams and\n\
         grades, moisture and shares integer parts per billion.\n\
         \n\
         | file | what | used by |\n\
         |---|---|---|\n",
    );
    for (name, schema) in schemas {
        let what = schema["description"]
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // Every operation's `default` answer is an error body: say so once
        // rather than list every endpoint.
        let mut used: Vec<String> = uses
            .get(name)
            .into_iter()
            .flatten()
            .filter(|u| !u.ends_with(" default"))
            .map(|u| format!("`{u}`"))
            .collect();
        if uses
            .get(name)
            .is_some_and(|u| u.iter().any(|u| u.ends_with(" default")))
        {
            used = vec!["every error answer of every endpoint".to_string()];
        }
        let used = used.join("<br>");
        text.push_str(&format!(
            "| [`{name}.schema.json`]({name}.schema.json) | {} | {used} |\n",
            what.replace('|', "\\|")
        ));
    }
    text
}

#[test]
fn committed_schemas_are_what_the_types_produce() {
    let files = generated_files();
    assert!(
        files.len() > 10,
        "expected a schema per body, got {:?}",
        files.keys()
    );
    for (name, text) in &files {
        if name.ends_with(".json") {
            let schema: Value = serde_json::from_str(text).unwrap();
            if let Err(e) = jsonschema::meta::validate(&schema) {
                panic!("{name} is not a valid JSON Schema 2020-12: {e}");
            }
        }
    }
    let dir = Path::new(DIR);
    if std::env::var("ORETRAIL_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(dir).unwrap();
        for name in committed_names(dir) {
            if !files.contains_key(&name) {
                std::fs::remove_file(dir.join(&name)).unwrap();
            }
        }
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        return;
    }
    let mut problems = Vec::new();
    for (name, text) in &files {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(committed) if committed == *text => {}
            Ok(committed) => {
                let line = committed
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| committed.lines().count().min(text.lines().count()));
                problems.push(format!(
                    "schemas/api/{name} differs from what the types produce (first at line {})",
                    line + 1
                ));
            }
            Err(_) => problems.push(format!("schemas/api/{name} is missing")),
        }
    }
    for name in committed_names(dir) {
        if !files.contains_key(&name) {
            problems.push(format!(
                "schemas/api/{name} is no longer produced by any body"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nIf the change of the API is deliberate, regenerate with: {BLESS}",
        problems.join("\n")
    );
}

fn committed_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".schema.json") || n == "README.md")
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Real answers validate against the committed files.
// ---------------------------------------------------------------------------

/// The committed schemas, compiled, and the OpenAPI document that says
/// which one applies to which answer.
struct Schemas {
    doc: Value,
    validators: BTreeMap<String, jsonschema::Validator>,
    /// How many answers each schema checked.
    checked: BTreeMap<String, usize>,
}

impl Schemas {
    fn load() -> Self {
        let mut validators = BTreeMap::new();
        for name in committed_names(Path::new(DIR)) {
            let Some(body) = name.strip_suffix(".schema.json") else {
                continue;
            };
            let text = std::fs::read_to_string(Path::new(DIR).join(&name)).unwrap();
            let schema: Value = serde_json::from_str(&text).unwrap();
            let validator = jsonschema::validator_for(&schema)
                .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
            validators.insert(body.to_string(), validator);
        }
        let doc =
            serde_json::to_value(<api::openapi::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
        Self {
            doc,
            validators,
            checked: BTreeMap::new(),
        }
    }

    /// The documented response of `method route` with `status` (or the
    /// operation's `default`).
    fn response(&self, method: &Method, route: &str, status: StatusCode) -> &Value {
        let operation = self
            .doc
            .pointer(&format!(
                "/paths/{}/{}",
                route.replace('~', "~0").replace('/', "~1"),
                method.as_str().to_lowercase()
            ))
            .unwrap_or_else(|| panic!("{method} {route} is not in the OpenAPI document"));
        let responses = &operation["responses"];
        let response = responses
            .get(status.as_str())
            .or_else(|| responses.get("default"));
        response.unwrap_or_else(|| {
            panic!("{method} {route} answered {status}, which the document does not list")
        })
    }

    /// Validates `body` against the schema named `name`; returns the
    /// errors.
    fn errors(&self, name: &str, body: &Value) -> Vec<String> {
        let validator = self.validators.get(name).unwrap_or_else(|| {
            panic!("no committed schemas/api/{name}.schema.json; regenerate with: {BLESS}")
        });
        validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// Asserts `answer` is what the document says `method route` answers:
    /// its content type, and for JSON bodies named in the document, a body
    /// that validates against the committed schema.
    fn check(&mut self, method: &Method, route: &str, answer: &Answer) {
        let response = self.response(method, route, answer.status).clone();
        let content = response["content"].as_object().cloned().unwrap_or_default();
        let documented: Vec<&String> = content.keys().collect();
        let media = answer.content_type().split(';').next().unwrap_or("").trim();
        assert!(
            content
                .keys()
                .any(|k| k.split(';').next().unwrap_or("").trim() == media),
            "{method} {route} answered {} as {:?}; the document says {documented:?}",
            answer.status,
            answer.content_type()
        );
        let name = response
            .pointer("/content/application~1json/schema/$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next());
        if let (Some(name), "application/json") = (name, media) {
            let body = answer.json();
            let errors = self.errors(name, &body);
            assert!(
                errors.is_empty(),
                "{method} {route} ({}) does not match {name}.schema.json:\n{}\n{body}",
                answer.status,
                errors.join("\n")
            );
            *self.checked.entry(name.to_string()).or_default() += 1;
        }
    }

    /// Asserts a request body the server accepts is valid for the
    /// documented request schema.
    fn check_request(&mut self, route: &str, body: &Value) {
        let name = self
            .doc
            .pointer(&format!(
                "/paths/{}/post/requestBody/content/application~1json/schema/$ref",
                route.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or_else(|| panic!("POST {route} documents no JSON request body"))
            .to_string();
        let errors = self.errors(&name, body);
        assert!(
            errors.is_empty(),
            "a request the server takes does not match {name}.schema.json:\n{}",
            errors.join("\n")
        );
        *self.checked.entry(name).or_default() += 1;
    }

    fn documents(&self, route: &str) -> bool {
        self.doc
            .pointer(&format!("/paths/{}", route.replace('/', "~1")))
            .is_some()
    }
}

struct Demo {
    _dir: tempfile::TempDir,
    keys: PathBuf,
    app: Router,
    /// Bearer tokens of the demo's auditor (sees everything) and of a
    /// buyer (sees its own lots in full, others' participants in part).
    auditor: String,
    buyer: String,
}

impl Demo {
    /// The demo ledger, built and opened off the async threads.
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let opened = data.clone();
        let (ledger, auditor, buyer) = tokio::task::spawn_blocking(move || {
            demo::build(&opened, DemoOptions::default()).unwrap();
            let issue = |id: &str| {
                TokenFile::of(&opened)
                    .update(|table| {
                        table.issue(
                            ParticipantId::new(id).unwrap(),
                            "schemas test",
                            Timestamp::now(),
                            None,
                        )
                    })
                    .unwrap()
                    .0
                    .as_str()
                    .to_string()
            };
            let tokens = (issue(AUDITOR), issue(BUYER));
            let ledger = Ledger::open(&opened, Options::default()).unwrap();
            (ledger, tokens.0, tokens.1)
        })
        .await
        .unwrap();
        let app = api::router(AppState::new(Arc::new(ledger)));
        Self {
            _dir: dir,
            keys: data.join("keys").join("demo"),
            app,
            auditor,
            buyer,
        }
    }

    fn signer(&self, id: &str) -> Signer {
        let key = SecretKey::read_file(&self.keys.join(format!("{id}.key"))).unwrap();
        Signer::new(demo::ORIGIN, ParticipantId::new(id).unwrap(), key)
    }

    /// Sends a request as the auditor.
    async fn send(&self, method: Method, uri: &str, body: Option<&Value>) -> Answer {
        self.send_as(Some(&self.auditor), method, uri, body).await
    }

    async fn send_as(
        &self,
        token: Option<&str>,
        method: Method,
        uri: &str,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        Answer::read(response).await
    }

    /// GETs `uri` as the auditor, checks the answer against the document
    /// and schemas for `route`, and returns it.
    async fn get(&self, schemas: &mut Schemas, route: &str, uri: &str) -> Answer {
        self.get_as(Some(&self.auditor), schemas, route, uri).await
    }

    async fn get_as(
        &self,
        token: Option<&str>,
        schemas: &mut Schemas,
        route: &str,
        uri: &str,
    ) -> Answer {
        let answer = self.send_as(token, Method::GET, uri, None).await;
        schemas.check(&Method::GET, route, &answer);
        answer
    }

    /// POSTs `body` to `route`, checks the answer against the document
    /// and schemas, and returns it.
    async fn post(&self, schemas: &mut Schemas, route: &str, body: &Value) -> Answer {
        let answer = self.send(Method::POST, route, Some(body)).await;
        schemas.check(&Method::POST, route, &answer);
        answer
    }
}

fn event_body(signed: &SignedEvent) -> Value {
    json!({
        "key": signed.key.to_hex(),
        "signature": signed.signature.to_hex(),
        "event": hex::encode(&signed.event),
    })
}

/// Every lot and participant id the log names, and every flag raised.
fn census(entries: &[Value]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut lots = BTreeSet::new();
    let mut participants = BTreeSet::new();
    for item in entries {
        let event = &item["entry"]["event"];
        participants.insert(event["signer"].as_str().unwrap().to_string());
        let (kind, body) = event["body"].as_object().unwrap().iter().next().unwrap();
        match kind.as_str() {
            "register_participant" => {
                participants.insert(body["participant"].as_str().unwrap().to_string());
            }
            "create_lot" => {
                lots.insert(body["lot"].as_str().unwrap().to_string());
            }
            "split" => lots.extend(
                body["parts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["lot"].as_str().unwrap().to_string()),
            ),
            "blend" => {
                lots.insert(body["output"].as_str().unwrap().to_string());
            }
            "transform" => lots.extend(
                body["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["lot"].as_str().unwrap().to_string()),
            ),
            _ => {}
        }
    }
    (lots, participants)
}

fn path_segment(id: &str) -> String {
    id.replace('/', "%2F")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_validate_against_the_committed_schemas_and_drift_fails() {
    let demo = Demo::start().await;
    let mut schemas = Schemas::load();

    // The log: every entry, page by page, so every kind of event the demo
    // records is checked against the schema of events.
    demo.get(&mut schemas, "/v1/checkpoint", "/v1/checkpoint")
        .await;
    demo.get(&mut schemas, "/v1/log/key", "/v1/log/key").await;
    let mut entries = Vec::new();
    loop {
        let start = entries.len();
        let page = demo
            .get(
                &mut schemas,
                "/v1/entries",
                &format!("/v1/entries?start={start}&end={}", start + 1000),
            )
            .await;
        if page.status == StatusCode::BAD_REQUEST {
            break;
        }
        assert_eq!(page.status, StatusCode::OK);
        entries.extend(page.json()["entries"].as_array().unwrap().iter().cloned());
    }
    let size = entries.len();
    assert!(size > 1000, "the demo has {size} entries");
    let kinds: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["entry"]["event"]["body"].as_object()?.keys().next())
        .map(String::as_str)
        .collect();
    assert!(kinds.len() >= 15, "the demo exercises {kinds:?}");
    let one = demo
        .get(&mut schemas, "/v1/entries/{index}", "/v1/entries/7")
        .await;
    assert_eq!(one.status, StatusCode::OK);
    let missing = demo
        .get(
            &mut schemas,
            "/v1/entries/{index}",
            &format!("/v1/entries/{size}"),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad = demo
        .get(&mut schemas, "/v1/entries/{index}", "/v1/entries/seven")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let proof = demo
        .get(
            &mut schemas,
            "/v1/proofs/inclusion",
            &format!("/v1/proofs/inclusion?index=3&tree_size={size}"),
        )
        .await;
    assert_eq!(proof.status, StatusCode::OK);
    let proof = demo
        .get(
            &mut schemas,
            "/v1/proofs/consistency",
            &format!("/v1/proofs/consistency?first=10&second={size}"),
        )
        .await;
    assert_eq!(proof.status, StatusCode::OK);
    let out_of_range = demo
        .get(
            &mut schemas,
            "/v1/proofs/consistency",
            &format!("/v1/proofs/consistency?first=0&second={size}"),
        )
        .await;
    assert_eq!(out_of_range.status, StatusCode::BAD_REQUEST);

    // The state: every lot, participant and red flag the log names.
    let (lots, participants) = census(&entries);
    let mut flags = BTreeSet::new();
    let mut held_cathode = None;
    for id in &lots {
        let answer = demo
            .get(
                &mut schemas,
                "/v1/lots/{id}",
                &format!("/v1/lots/{}", path_segment(id)),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "lot {id}");
        let lot = answer.json();
        for flag in lot["flags"].as_array().unwrap() {
            flags.insert((flag["entry"].as_u64().unwrap(), flag["n"].as_u64().unwrap()));
        }
        if lot["kind"] == "Cathode" && lot["custodian"] == SMELTER && lot["status"] == "Held" {
            held_cathode = Some(id.clone());
        }
    }
    for id in &participants {
        let answer = demo
            .get(
                &mut schemas,
                "/v1/participants/{id}",
                &format!("/v1/participants/{id}"),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "participant {id}");
    }
    assert!(!flags.is_empty());
    for (entry, n) in &flags {
        let answer = demo
            .get(
                &mut schemas,
                "/v1/flags/{entry}/{n}",
                &format!("/v1/flags/{entry}/{n}"),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "flag {entry}/{n}");
    }
    // What others see: anonymous entries carry only index and leaf hash; a
    // buyer sees other organisations' participants in part, and needs a
    // token at all.
    let anonymous = demo
        .get_as(
            None,
            &mut schemas,
            "/v1/entries",
            "/v1/entries?start=0&end=20",
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert!(anonymous.json()["entries"][3].get("leaf").is_none());
    for id in &participants {
        let answer = demo
            .get_as(
                Some(&demo.buyer),
                &mut schemas,
                "/v1/participants/{id}",
                &format!("/v1/participants/{id}"),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "participant {id} for a buyer"
        );
    }
    let no_token = demo
        .get_as(None, &mut schemas, "/v1/lots/{id}", "/v1/lots/NO-SUCH-LOT")
        .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    let unknown = demo
        .get(&mut schemas, "/v1/lots/{id}", "/v1/lots/NO-SUCH-LOT")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let malformed = demo
        .get(
            &mut schemas,
            "/v1/participants/{id}",
            "/v1/participants/Not%20An%20Id",
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);

    // Listings and graph walks, once the document lists them.
    let cathode = held_cathode.expect("the smelter still holds a demo cathode");
    for (route, uri) in [
        ("/v1/lots", "/v1/lots".to_string()),
        ("/v1/lots", "/v1/lots?kind=Cathode&limit=5".to_string()),
        ("/v1/participants", "/v1/participants".to_string()),
        ("/v1/flags", "/v1/flags".to_string()),
        ("/v1/flags", "/v1/flags?status=decided&limit=5".to_string()),
        ("/v1/events", "/v1/events?limit=500".to_string()),
        (
            "/v1/events",
            "/v1/events?eventType=TransformationEvent".to_string(),
        ),
        (
            "/v1/lots/{id}/history",
            format!("/v1/lots/{}/history", path_segment(&cathode)),
        ),
        (
            "/v1/lots/{id}/provenance",
            format!("/v1/lots/{}/provenance", path_segment(&cathode)),
        ),
        (
            "/v1/lots/{id}/downstream",
            format!("/v1/lots/{}/downstream", path_segment(&cathode)),
        ),
    ] {
        if schemas.documents(route) {
            let answer = demo.get(&mut schemas, route, &uri).await;
            assert_eq!(answer.status, StatusCode::OK, "{uri}");
        }
    }

    // The write API: a receipt, its replay, refusals and a batch.
    let mut smelter = demo.signer(SMELTER);
    let mut buyer = demo.signer(BUYER);
    let lot = LotId::new(cathode.clone()).unwrap();
    let attach = |n: u8| {
        EventBody::AttachDocument(DocumentAttachment {
            lot: lot.clone(),
            document: DocumentRef {
                kind: DocumentKind::WeightCertificate,
                sha256: sha256(&[n]),
            },
        })
    };
    let first = event_body(&smelter.sign(Timestamp::now(), attach(1)).unwrap());
    schemas.check_request("/v1/events", &first);
    let created = demo.post(&mut schemas, "/v1/events", &first).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    let replay = demo.post(&mut schemas, "/v1/events", &first).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.json()["replay"], true);
    // The buyer does not hold the lot, so it may not dispatch it.
    let refused_event = event_body(
        &buyer
            .sign(
                Timestamp::now(),
                EventBody::Dispatch(Dispatch {
                    lot: lot.clone(),
                    to: ParticipantId::new(SMELTER).unwrap(),
                    route: vec![],
                    documents: vec![],
                }),
            )
            .unwrap(),
    );
    let refused = demo.post(&mut schemas, "/v1/events", &refused_event).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut forged = smelter.sign(Timestamp::now(), attach(2)).unwrap();
    forged.signature = Signature::from_bytes([7; 64]);
    let bad_signature = demo
        .post(&mut schemas, "/v1/events", &event_body(&forged))
        .await;
    assert_eq!(bad_signature.status, StatusCode::BAD_REQUEST);
    let malformed = demo
        .post(&mut schemas, "/v1/events", &json!({"key": "zz"}))
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let second = event_body(&smelter.sign(Timestamp::now(), attach(3)).unwrap());
    let batch = json!({"events": [second, refused_event, {"key": 1}]});
    schemas.check_request("/v1/events/batch", &json!({"events": [second]}));
    let answered = demo.post(&mut schemas, "/v1/events/batch", &batch).await;
    assert_eq!(answered.status, StatusCode::OK);
    let statuses: Vec<u64> = answered.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 422, 400]);

    // A witness's cosignature: refused from an untrusted key, accepted
    // once the operator trusts it, then served with its checkpoint.
    let witness = oretrail::merkle::cosignature::Cosigner::new(
        "witness.example.org/w1",
        SecretKey::from_seed(&[0x57; 32]).signing_key().clone(),
    )
    .unwrap();
    let latest = demo.send(Method::GET, "/v1/checkpoint", None).await;
    let mut note =
        oretrail::merkle::checkpoint::Note::parse(String::from_utf8_lossy(&latest.body).as_ref())
            .unwrap();
    let checkpoint = oretrail::merkle::checkpoint::parse_body(note.body()).unwrap();
    note.add_signature(
        witness
            .cosign(&checkpoint, Timestamp::now().as_millis() / 1000)
            .unwrap(),
    )
    .unwrap();
    let cosigned = json!({ "checkpoint": note.to_string() });
    let route = "/v1/checkpoint/cosignatures";
    let untrusted = demo.post(&mut schemas, route, &cosigned).await;
    assert_eq!(untrusted.status, StatusCode::FORBIDDEN);
    let data = demo.keys.parent().and_then(Path::parent).unwrap();
    let trusted = witness.verifier().clone();
    oretrail::witness::TrustFile::of(data)
        .update(|t| Ok(t.trust(trusted)?))
        .unwrap();
    schemas.check_request(route, &cosigned);
    let accepted = demo.post(&mut schemas, route, &cosigned).await;
    assert_eq!(accepted.status, StatusCode::OK);
    let size = checkpoint.size();
    let served = demo
        .get(
            &mut schemas,
            "/v1/checkpoint/{size}",
            &format!("/v1/checkpoint/{size}"),
        )
        .await;
    assert_eq!(String::from_utf8_lossy(&served.body), note.to_string());

    // Errors of the edge itself, outside any documented operation: a
    // method the route does not take, and a path no route has.
    for (method, uri, status) in [
        (
            Method::DELETE,
            "/v1/checkpoint",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::GET, "/v2/checkpoint", StatusCode::NOT_FOUND),
    ] {
        let answer = demo.send(method, uri, None).await;
        assert_eq!(answer.status, status);
        let errors = schemas.errors("ErrorBody", &answer.json());
        assert!(errors.is_empty(), "{uri}: {errors:?}");
    }

    // Every body schema the API sends or takes checked something real.
    let unchecked: Vec<&String> = schemas
        .validators
        .keys()
        .filter(|name| !schemas.checked.contains_key(*name))
        .collect();
    assert!(
        unchecked.is_empty(),
        "no real answer was checked against {unchecked:?}; add requests that produce them"
    );

    // Drift: the same real answers, changed as a careless edit of a type
    // would change them, no longer validate.
    let lot_answer = demo
        .get(
            &mut schemas,
            "/v1/lots/{id}",
            &format!("/v1/lots/{}", path_segment(&cathode)),
        )
        .await
        .json();
    let mut renamed = lot_answer.clone();
    let custodian = renamed
        .as_object_mut()
        .unwrap()
        .remove("custodian")
        .unwrap();
    renamed["holder"] = custodian;
    // The answer is a `LotAnswer`: the lot in full, or a former holder's
    // summary; a renamed field fits neither.
    let errors = schemas.errors("LotAnswer", &renamed);
    assert!(
        !errors.is_empty(),
        "a lot with `custodian` renamed `holder` passed"
    );
    let mut retyped = lot_answer.clone();
    retyped["wet"] = json!(format!("{} g", retyped["wet"]));
    assert!(!schemas.errors("LotAnswer", &retyped).is_empty());
    let mut restatused = lot_answer;
    restatused["status"] = json!("OnHold");
    assert!(!schemas.errors("LotAnswer", &restatused).is_empty());

    let mut receipt = created.json();
    let hash = receipt
        .as_object_mut()
        .unwrap()
        .remove("entry_hash")
        .unwrap();
    receipt["leaf_hash"] = hash;
    assert!(!schemas.errors("ReceiptBody", &receipt).is_empty());

    let mut page = one.json();
    let body = page["entries"][0]["entry"]["event"]["body"]
        .as_object_mut()
        .unwrap();
    let (kind, inner) = body
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    body.remove(&kind);
    body.insert(format!("{kind}_v2"), inner);
    assert!(
        !schemas.errors("EntriesBody", &page).is_empty(),
        "an entry whose event type `{kind}` was renamed passed"
    );

    let mut error = refused.json();
    error.as_object_mut().unwrap().remove("details");
    assert!(!schemas.errors("ErrorBody", &error).is_empty());
}
