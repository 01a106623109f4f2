//! The edge's own endpoints, in process through the router: the OpenAPI
//! document (`/v1/openapi.json`) names every route the router serves, the
//! docs page (`/docs`) is served whole from the binary, and the metrics
//! (`/metrics`) move with the requests of their own server only. And one
//! test of the binary: `oretrail --log-format json serve` writes one JSON
//! line per request, with nothing secret in it.

use crate::common;
use crate::{Answer, new_ledger};

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{TestClock, pid};
use oretrail::api::{self, AppState};
use oretrail::crypto::Signature;
use oretrail::ledger::Ledger;
use oretrail::model::{CountryCode, EventBody, ParticipantKind, Registration, Role, SignedEvent};
use oretrail::signer::Signer;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// A fresh ledger behind the router.
struct Edge {
    _dir: tempfile::TempDir,
    ledger: Arc<Ledger>,
    app: Router,
    clock: TestClock,
    operator: Signer,
}

impl Edge {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new();
        let (ledger, operator) = new_ledger(dir.path(), &clock);
        let app = api::router(AppState::new(ledger.clone()));
        Self {
            _dir: dir,
            ledger,
            app,
            clock,
            operator,
        }
    }

    async fn send(&self, app: &Router, method: Method, uri: &str, body: Body) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        Answer::read(app.clone().oneshot(request).await.unwrap()).await
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send(&self.app, Method::GET, uri, Body::empty()).await
    }

    async fn post(&self, uri: &str, body: &Value) -> Answer {
        self.send(&self.app, Method::POST, uri, Body::from(body.to_string()))
            .await
    }

    /// The operator's registration of a participant, signed.
    fn registration(&mut self, id: &str, key: u32) -> SignedEvent {
        let body = EventBody::RegisterParticipant(Registration {
            participant: pid(id),
            legal_name: format!("{id} Ltd"),
            country: CountryCode::new("ZM").unwrap(),
            kinds: vec![ParticipantKind::Trader],
            roles: vec![Role::Custodian],
            keys: vec![common::key(key).public()],
        });
        self.operator.sign(self.clock.now(), body).unwrap()
    }
}

fn event_body(signed: &SignedEvent) -> Value {
    json!({
        "key": signed.key.to_hex(),
        "signature": signed.signature.to_hex(),
        "event": hex::encode(&signed.event),
    })
}

// ---------------------------------------------------------------------------
// The OpenAPI document.
// ---------------------------------------------------------------------------

/// Every `(METHOD, path)` the router serves, read from the `.route(...)`
/// calls of `src/api/`: the list a forgotten endpoint would be missing
/// from the document. (axum cannot list a router's routes.)
fn routed() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut routes = BTreeSet::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).unwrap();
            for (route, methods) in route_calls(&source) {
                for method in methods {
                    routes.insert((method, route.clone()));
                }
            }
        }
    }
    assert!(routes.len() > 10, "found only {routes:?} in src/api");
    routes
}

/// The path and the methods of each `.route("path", ...)` call in
/// `source`.
fn route_calls(source: &str) -> Vec<(String, Vec<String>)> {
    let mut calls = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let args = rest.trim_start();
        let Some(quoted) = args.strip_prefix('"') else {
            panic!(
                "a .route( call whose path is not a string literal: {}",
                &args[..args.len().min(60)]
            );
        };
        let path = &quoted[..quoted.find('"').unwrap()];
        // The call's arguments end at the parenthesis that closes it.
        let mut depth = 1;
        let mut end = 0;
        let mut in_string = false;
        for (i, c) in rest.char_indices() {
            match c {
                '"' => in_string = !in_string,
                '(' if !in_string => depth += 1,
                ')' if !in_string => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &rest[..end];
        let methods = ["get", "post", "put", "delete", "patch"]
            .into_iter()
            .filter(|m| {
                call.match_indices(&format!("{m}(")).any(|(i, _)| {
                    i == 0
                        || !call[..i]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                })
            })
            .map(str::to_uppercase)
            .collect();
        calls.push((path.to_string(), methods));
    }
    calls
}

#[test]
fn route_calls_are_read_with_their_methods() {
    let source = r#"
        .route("/a", post(x::y).layer(DefaultBodyLimit::max(n)).get(z::w))
        .route(
            "/b/{id}",
            get(q::r),
        )
    "#;
    assert_eq!(
        route_calls(source),
        [
            (
                "/a".to_string(),
                vec!["GET".to_string(), "POST".to_string()]
            ),
            ("/b/{id}".to_string(), vec!["GET".to_string()]),
        ]
    );
}

/// `path` with every `{param}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "0" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_names_every_route_of_the_router() {
    let edge = Edge::new();
    let answer = edge.get("/v1/openapi.json").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type(), "application/json");
    let doc = answer.json();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi: {version}");
    assert_eq!(
        doc,
        serde_json::to_value(<api::openapi::ApiDoc as utoipa::OpenApi>::openapi()).unwrap(),
        "the served document is the generated one"
    );

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let forgotten: Vec<String> = routed()
        .difference(&documented)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        forgotten.is_empty(),
        "served but not in the OpenAPI document: {forgotten:?}. Give each handler a \
         #[utoipa::path(...)] attribute and name it in ApiDoc's paths(...) \
         (src/api/openapi.rs)"
    );

    // The other way: every documented operation is served (answered by
    // its handler, not by the router's not-found or wrong-method answers).
    for (method, path) in &documented {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let uri = concrete(path);
        let answer = edge
            .send(&edge.app, method.clone(), &uri, Body::from("{}"))
            .await;
        assert_ne!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        if answer.status == StatusCode::NOT_FOUND {
            let message = answer.json()["message"].as_str().unwrap().to_string();
            assert!(
                !message.contains("no such endpoint"),
                "{method} {path} is documented but not served"
            );
        }
    }

    // Every operation answers errors with the error body, and the bearer
    // scheme is described.
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert_eq!(
            op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{method} {path}"
        );
    }
    let bearer = &doc["components"]["securitySchemes"][api::openapi::BEARER_SCHEME];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");

    // Every stable code the edge defines (`pub mod code` blocks of
    // src/api/) is listed in the error body's schema.
    let listed: BTreeSet<&str> =
        doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
    let defined = defined_codes();
    assert!(defined.len() >= 11, "{defined:?}");
    let unlisted: Vec<&String> = defined
        .iter()
        .filter(|c| !listed.contains(c.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "codes missing from ErrorBody's schema: {unlisted:?}; add them to error::code::ALL \
         or to code_schema in src/api/error.rs"
    );
}

/// The string constants of every `pub mod code { ... }` in `src/api/`.
fn defined_codes() -> BTreeSet<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut codes = BTreeSet::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(file.unwrap().path()).unwrap();
        let Some(start) = source.find("pub mod code {") else {
            continue;
        };
        let block = &source[start..];
        let block = &block[..block.find("\n}").unwrap()];
        for line in block.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("pub const ")
                && let Some((_, value)) = rest.split_once(": &str = \"")
            {
                codes.insert(value.trim_end_matches("\";").to_string());
            }
        }
    }
    codes
}

// ---------------------------------------------------------------------------
// The docs page.
// ---------------------------------------------------------------------------

/// The values of `attr="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

#[tokio::test]
async fn the_docs_page_and_all_its_assets_are_served_by_the_server() {
    let edge = Edge::new();
    let redirect = edge.get("/docs").await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_eq!(redirect.headers[header::LOCATION], "/docs/");

    let page = edge.get("/docs/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type().starts_with("text/html"));
    let html = page.text();
    let assets: Vec<&str> = attribute_values(&html, "src")
        .into_iter()
        .chain(attribute_values(&html, "href"))
        .collect();
    assert!(assets.len() >= 4, "{assets:?}");
    for asset in &assets {
        assert!(
            !asset.contains("//") && !asset.contains(':'),
            "the docs page loads {asset} from elsewhere"
        );
        let name = asset.trim_start_matches("./");
        let answer = edge.get(&format!("/docs/{name}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{asset}");
        assert!(!answer.body.is_empty(), "{asset}");
    }
    let scripts = attribute_values(&html, "src");
    assert!(scripts.iter().any(|s| s.ends_with("swagger-ui-bundle.js")));

    // The page reads our document, and nothing from a network: no online
    // validator, no absolute URL in what configures it.
    let init = edge.get("/docs/swagger-initializer.js").await.text();
    assert!(init.contains("\"url\": \"/v1/openapi.json\""), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    for text in [&html, &init] {
        assert!(!text.contains("http://") && !text.contains("https://"));
    }

    let missing = edge.get("/docs/no-such-file.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["code"], "NOT_FOUND");
}

// ---------------------------------------------------------------------------
// Metrics.
// ---------------------------------------------------------------------------

/// The samples of a Prometheus text exposition: `name{labels}` to value.
/// Every line must be a comment or a well-formed sample.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a sample value: {line:?}"));
        assert!(
            series.starts_with("oretrail_"),
            "a series outside the oretrail_ namespace: {line:?}"
        );
        out.insert(series.to_string(), value);
    }
    out
}

async fn scrape(edge: &Edge, app: &Router) -> BTreeMap<String, f64> {
    let answer = edge.send(app, Method::GET, "/metrics", Body::empty()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .content_type()
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        answer.content_type()
    );
    samples(&answer.text())
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_appends_and_ledger_size() {
    let mut edge = Edge::new();
    let before = scrape(&edge, &edge.app).await;
    let checkpoint =
        r#"oretrail_http_requests_total{method="GET",route="/v1/checkpoint",status_class="2xx"}"#;
    assert_eq!(value(&before, checkpoint), 0.0);

    edge.get("/v1/checkpoint").await;
    edge.get("/v1/checkpoint").await;
    edge.get("/v1/entries/99").await;
    edge.get("/no/such/path").await;
    let registration = edge.registration("trader.one", 11);
    assert_eq!(
        edge.post("/v1/events", &event_body(&registration))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        edge.post("/v1/events", &event_body(&registration))
            .await
            .status,
        StatusCode::OK
    );
    let mut forged = edge.registration("trader.two", 12);
    forged.signature = Signature::from_bytes([9; 64]);
    edge.post("/v1/events", &event_body(&forged)).await;
    let batch = json!({"events": [
        event_body(&edge.registration("trader.three", 13)),
        event_body(&edge.registration("trader.one", 14)),
    ]});
    assert_eq!(
        edge.post("/v1/events/batch", &batch).await.status,
        StatusCode::OK
    );

    let after = scrape(&edge, &edge.app).await;
    assert_eq!(value(&after, checkpoint), 2.0);
    assert_eq!(
        value(
            &after,
            r#"oretrail_http_request_duration_seconds_count{route="/v1/checkpoint"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            r#"oretrail_http_requests_total{method="GET",route="/v1/entries/{index}",status_class="4xx"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"oretrail_http_requests_total{method="GET",route="unmatched",status_class="4xx"}"#
        ),
        1.0
    );
    // The first scrape is counted once its answer was made.
    assert_eq!(
        value(
            &after,
            r#"oretrail_http_requests_total{method="GET",route="/metrics",status_class="2xx"}"#
        ),
        1.0
    );
    // One registration accepted alone and one in the batch; one replay;
    // one bad signature; one refusal by the rules (the participant exists).
    assert_eq!(
        value(
            &after,
            r#"oretrail_appends_total{result="accepted",code=""}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            r#"oretrail_appends_total{result="replayed",code=""}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"oretrail_appends_total{result="refused",code="BAD_SIGNATURE"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"oretrail_appends_total{result="refused",code="PARTICIPANT_EXISTS"}"#
        ),
        1.0
    );
    assert_eq!(value(&after, "oretrail_last_batch_events"), 2.0);
    assert_eq!(
        value(&after, "oretrail_ledger_tree_size"),
        edge.ledger.size() as f64
    );
    assert_eq!(edge.ledger.size(), 3);
    // The scrape itself is the one request in flight.
    assert_eq!(value(&after, "oretrail_http_requests_in_flight"), 1.0);
}

#[tokio::test]
async fn each_server_state_has_its_own_metrics() {
    let edge = Edge::new();
    let other = api::router(AppState::new(edge.ledger.clone()));
    edge.get("/v1/checkpoint").await;
    let counted = scrape(&edge, &edge.app).await;
    let elsewhere = scrape(&edge, &other).await;
    let series =
        r#"oretrail_http_requests_total{method="GET",route="/v1/checkpoint",status_class="2xx"}"#;
    assert_eq!(value(&counted, series), 1.0);
    assert_eq!(value(&elsewhere, series), 0.0);
}

// ---------------------------------------------------------------------------
// Request logs of the binary.
// ---------------------------------------------------------------------------

/// A GET over a fresh connection; returns the status code.
fn http_get(addr: &str, path: &str, authorization: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(value) = authorization {
        request.push_str(&format!("Authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

#[test]
fn serve_logs_one_json_line_per_request_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bin = env!("CARGO_BIN_EXE_oretrail");
    let init = std::process::Command::new(bin)
        .args(["init", "--name", "edge.oretrail.example/log", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");

    let mut child = std::process::Command::new(bin)
        .args(["--log-format", "json", "serve", "--data"])
        .arg(&data)
        .env("ORETRAIL_ADDR", "127.0.0.1:0")
        .env_remove("ORETRAIL_LOG")
        .env_remove("ORETRAIL_LOG_FORMAT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!("serve exited early: {}", logged.join().unwrap());
        }
        if let Some(addr) = line.trim().strip_prefix("listening on http://") {
            break addr.to_string();
        }
    };

    let secret = "ot_thisTokenMustNeverAppearInAnyLogLine00000000";
    let bearer = format!("Bearer {secret}");
    assert_eq!(http_get(&addr, "/v1/checkpoint", Some(&bearer)), 200);
    // A bad token on an endpoint that reads it: refused, and still not
    // logged.
    assert_eq!(http_get(&addr, "/v1/entries/0", Some(&bearer)), 401);
    assert_eq!(http_get(&addr, "/no/such/path", None), 404);

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut waited = 0;
    while child.try_wait().unwrap().is_none() {
        assert!(waited < 300, "serve did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    let text = logged.join().unwrap();

    assert!(!text.contains(secret), "a secret reached the log:\n{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"))
        })
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "oretrail::request")
        .collect();
    let seen: Vec<(String, String, u64)> = requests
        .iter()
        .map(|l| {
            let f = &l["fields"];
            assert!(f["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{l}");
            assert_eq!(l["level"], "INFO", "{l}");
            (
                f["method"].as_str().unwrap().to_string(),
                f["route"].as_str().unwrap().to_string(),
                f["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("GET", "/v1/checkpoint", 200),
        ("GET", "/v1/entries/{index}", 401),
        ("GET", "unmatched", 404),
    ]
    .map(|(m, r, s)| (m.to_string(), r.to_string(), s));
    assert_eq!(seen, expected, "{text}");
}
