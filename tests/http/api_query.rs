//! The query API over the catalog, in process through the router: lot
//! listings and their filters, paging, histories, provenance and
//! downstream graphs, participants, the red-flag register and EPCIS-style
//! event filters. The demo ledger is the broad data set (its answers are
//! checked against the ledger state and the log itself); a small ledger
//! built here gives exact, hand-computed expectations.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{ORIGIN, TestClock, key, pid};
use oretrail::api::{self, AppState};
use oretrail::catalog::Catalog;
use oretrail::codec;
use oretrail::demo::{self, DemoOptions};
use oretrail::ledger::{Ledger, Options};
use oretrail::model::{
    Assay, Blend, CahraFinding, CountryCode, Dispatch, Element, Event, EventBody, FlagId, Grams,
    Lot, LotCreation, LotId, LotKind, LotReceipt, Origin, ParticipantKind, Ppb, Registration, Role,
    Sale, SignedEvent, SiteId, SiteRegistration, SiteScale, Split, SplitPart, StateView, Timestamp,
    TransformInput, TransformOutput, Transformation,
};
use oretrail::signer::Signer;
use serde_json::{Value, json};
use tower::ServiceExt as _;

// -- harness -------------------------------------------------------------------

/// The router and the operator's bearer token: queries read as the
/// operator, who sees everything (what others see is `tests/http/access.rs`'s).
#[derive(Clone)]
struct Client {
    router: Router,
    token: String,
}

impl Client {
    fn new(state: AppState, data: &Path) -> Self {
        Self {
            token: common::issue_token(data, "operator"),
            router: api::router(state),
        }
    }
}

async fn get(app: &Client, uri: &str) -> (StatusCode, Value) {
    let response = app
        .router
        .clone()
        .oneshot(
            Request::get(uri)
                .header(header::AUTHORIZATION, format!("Bearer {}", app.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

/// GET that must answer 200.
async fn ok(app: &Client, uri: &str) -> Value {
    let (status, body) = get(app, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body
}

/// GET that must fail with `status` and `code`; returns the error body.
async fn refused(app: &Client, uri: &str, status: StatusCode, code: &str) -> Value {
    let (got, body) = get(app, uri).await;
    assert_eq!(got, status, "{uri}: {body}");
    assert_eq!(body["code"], code, "{uri}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    body
}

/// Every item of a listing, page by page, checking that no page is larger
/// than `limit`; the items' `key` must never repeat.
async fn all_pages(app: &Client, uri: &str, field: &str, limit: usize, key: &str) -> Vec<Value> {
    let sep = if uri.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_uri = match &cursor {
            Some(c) => format!("{uri}{sep}limit={limit}&cursor={c}"),
            None => format!("{uri}{sep}limit={limit}"),
        };
        let body = ok(app, &page_uri).await;
        let page = body[field].as_array().unwrap();
        assert!(page.len() <= limit, "{page_uri}: {} items", page.len());
        for item in page {
            assert!(
                seen.insert(item[key].to_string()),
                "{page_uri}: {} repeated",
                item[key]
            );
            items.push(item.clone());
        }
        match body["next_cursor"].as_str() {
            Some(c) => {
                assert!(
                    !page.is_empty(),
                    "{page_uri}: an empty page with a next cursor"
                );
                cursor = Some(c.to_string());
            }
            None => return items,
        }
    }
}

fn path_id(id: &str) -> String {
    id.replace('/', "%2F")
}

fn lot_id(s: &str) -> LotId {
    LotId::new(s).unwrap()
}

fn strs(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[field].as_str().unwrap().to_string())
        .collect()
}

/// The log's events, decoded, by entry index.
fn events_of(ledger: &Ledger) -> Vec<Event> {
    (0..ledger.size())
        .map(|i| codec::decode(&ledger.entry(i).unwrap().0.signed.event).unwrap())
        .collect()
}

/// Lots the log made, in order, with their kinds.
fn lots_made(events: &[Event]) -> Vec<(LotId, LotKind)> {
    let mut lots = Vec::new();
    for e in events {
        match &e.body {
            EventBody::CreateLot(c) => lots.push((c.lot.clone(), c.kind)),
            EventBody::Blend(b) => lots.push((b.output.clone(), LotKind::Blend)),
            EventBody::Transform(t) => {
                lots.extend(t.outputs.iter().map(|o| (o.lot.clone(), o.kind)))
            }
            EventBody::Split(s) => {
                // Parts keep the parent's kind, which an earlier entry made.
                let kind = lots
                    .iter()
                    .find(|(l, _)| *l == s.lot)
                    .map(|(_, k)| *k)
                    .unwrap();
                lots.extend(s.parts.iter().map(|p| (p.lot.clone(), kind)));
            }
            _ => {}
        }
    }
    lots
}

// -- the demo ledger -------------------------------------------------------------

struct Demo {
    ledger: Arc<Ledger>,
    state: AppState,
    app: Client,
    events: Vec<Event>,
}

static DEMO: OnceLock<Demo> = OnceLock::new();

/// The demo ledger, built once for this test binary in cargo's scratch
/// folder for tests (earlier runs' copies are removed first), open behind
/// one router that every demo test reads.
fn demo() -> &'static Demo {
    DEMO.get_or_init(|| {
        // Building appends and waits for receipts, which must not happen on
        // a test's async thread.
        std::thread::spawn(|| {
            let dir = common::scratch_folder("api_query-demo-");
            demo::build(&dir, DemoOptions::default()).expect("the demo builds");
            let ledger = Arc::new(Ledger::open(&dir, Options::default()).unwrap());
            let events = events_of(&ledger);
            let state = AppState::new(ledger.clone());
            let app = Client::new(state.clone(), &dir);
            Demo {
                ledger,
                state,
                app,
                events,
            }
        })
        .join()
        .unwrap()
    })
}

fn demo_lot(d: &Demo, id: &str) -> Lot {
    d.ledger.state().lot(&lot_id(id)).unwrap().unwrap()
}

#[tokio::test]
async fn demo_lot_listing_pages_every_lot_once_and_its_filters_agree_with_the_state() {
    let d = demo();
    let made = lots_made(&d.events);
    // An odd page size, so that pages end anywhere.
    let listed = all_pages(&d.app, "/v1/lots", "lots", 97, "id").await;
    assert_eq!(
        strs(&listed, "id"),
        made.iter().map(|(l, _)| l.to_string()).collect::<Vec<_>>(),
        "every lot once, in the order made"
    );
    for item in &listed {
        let lot = demo_lot(d, item["id"].as_str().unwrap());
        assert_eq!(item["custodian"], lot.custodian.as_str());
        assert_eq!(item["owner"], lot.owner.as_str());
        assert_eq!(item["status"], serde_json::to_value(&lot.status).unwrap());
        assert_eq!(item["kind"], serde_json::to_value(lot.kind).unwrap());
        assert_eq!(item["created_in"], lot.history[0]);
    }

    let cathodes = all_pages(&d.app, "/v1/lots?kind=Cathode", "lots", 1000, "id").await;
    let want: Vec<String> = made
        .iter()
        .filter(|(_, k)| *k == LotKind::Cathode)
        .map(|(l, _)| l.to_string())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(strs(&cathodes, "id"), want);

    let buyer = "buyer.rheinkabel";
    let held = all_pages(
        &d.app,
        &format!("/v1/lots?holder={buyer}"),
        "lots",
        1000,
        "id",
    )
    .await;
    let want: Vec<String> = made
        .iter()
        .map(|(l, _)| demo_lot(d, l.as_str()))
        .filter(|l| l.custodian.as_str() == buyer || l.owner.as_str() == buyer)
        .map(|l| l.id.to_string())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(strs(&held, "id"), want);

    // Lots created at one site, in a period, still held: each filter holds
    // for every item, and the items are exactly the ones that pass them.
    let site = made
        .iter()
        .find_map(
            |(l, _)| match &d.events[demo_lot(d, l.as_str()).history[0] as usize].body {
                EventBody::CreateLot(c) => Some(c.site.clone()),
                _ => None,
            },
        )
        .unwrap();
    let (from, to) = ("2026-03-01T00:00:00Z", "2026-07-01T00:00:00Z");
    let (from_ms, to_ms) = (
        Timestamp::parse(from).unwrap(),
        Timestamp::parse(to).unwrap(),
    );
    let filtered = all_pages(
        &d.app,
        &format!(
            "/v1/lots?site={site}&created_from={from}&created_to={}",
            to_ms.as_millis()
        ),
        "lots",
        7,
        "id",
    )
    .await;
    let want: Vec<String> = made
        .iter()
        .filter(|(l, _)| {
            let lot = demo_lot(d, l.as_str());
            let e = &d.events[lot.history[0] as usize];
            matches!(&e.body, EventBody::CreateLot(c) if c.site == site)
                && e.time >= from_ms
                && e.time < to_ms
        })
        .map(|(l, _)| l.to_string())
        .collect();
    assert!(want.len() > 7, "more than one page: {}", want.len());
    assert_eq!(strs(&filtered, "id"), want);
    assert!(filtered.iter().all(|l| l["site"] == site.as_str()));

    let consumed = ok(
        &d.app,
        "/v1/lots?status=consumed&kind=Concentrate&limit=1000",
    )
    .await;
    assert!(!consumed["lots"].as_array().unwrap().is_empty());
    for l in consumed["lots"].as_array().unwrap() {
        assert_eq!(
            demo_lot(d, l["id"].as_str().unwrap()).status,
            serde_json::from_value(l["status"].clone()).unwrap()
        );
        assert!(l["status"]["Consumed"].is_object(), "{l}");
    }
}

#[tokio::test]
async fn demo_histories_links_and_quantities_agree_with_the_ledger_state() {
    let d = demo();
    let tables = d.state.catalog().read(&d.ledger).unwrap();
    let (mut live, mut mixed) = (0, 0);
    for (id, _) in lots_made(&d.events) {
        let lot = demo_lot(d, id.as_str());
        // The history: exactly the entries the state lists for the lot.
        assert_eq!(
            tables.lot_entries(&id).unwrap(),
            lot.history.as_slice(),
            "{id}"
        );
        // Quantities the catalog follows match the rules' for live lots.
        if let Some(q) = tables.quantities(&id) {
            assert_eq!((q.wet, q.dry), (lot.wet, lot.dry), "{id}");
            assert_eq!(q.contained, lot.contained, "{id}");
            live += 1;
        }
        let parents = tables.parents(&id).unwrap();
        if parents.is_empty() {
            continue;
        }
        if parents.len() > 1 {
            mixed += 1;
        }
        // The parents' shares add up to one, and mixing the parents'
        // origins by the metal each brought gives the lot's origin exactly:
        // the catalog has the weights the rules used.
        let total: u64 = parents.iter().map(|p| u64::from(p.share.get())).sum();
        assert_eq!(total, 1_000_000_000, "{id}");
        let origins: Vec<Origin> = parents
            .iter()
            .map(|p| demo_lot(d, p.parent.as_str()).origin)
            .collect();
        let parts: Vec<(&Origin, Grams)> = origins
            .iter()
            .zip(&parents)
            .map(|(o, p)| (o, p.grams))
            .collect();
        assert_eq!(Origin::mix(&parts).as_ref(), Some(&lot.origin), "{id}");
        // A blend consumes its inputs whole, and a used-up lot keeps its
        // quantities: each input brought exactly what it contained.
        if lot.kind == LotKind::Blend {
            for p in &parents {
                let input = demo_lot(d, p.parent.as_str());
                assert_eq!(
                    p.grams,
                    input.contained_of(lot.metal),
                    "{id} <- {}",
                    p.parent
                );
            }
        }
    }
    drop(tables);
    // Lots still in stock (partly smelted zinc concentrate among them),
    // and lots made from several others, were all checked.
    assert!(live > 10 && mixed > 10, "{live} live, {mixed} mixed");

    // The history endpoint, for a lot with a long one, in pages of three.
    let lot = lots_made(&d.events)
        .into_iter()
        .map(|(l, _)| demo_lot(d, l.as_str()))
        .max_by_key(|l| l.history.len())
        .unwrap();
    let uri = format!("/v1/lots/{}/history", path_id(lot.id.as_str()));
    let entries = all_pages(&d.app, &uri, "entries", 3, "index").await;
    let indexes: Vec<u64> = entries
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, lot.history);
    for e in &entries {
        let i = e["index"].as_u64().unwrap() as usize;
        assert_eq!(e["type"], d.events[i].body.type_name());
        assert_eq!(e["signer"], d.events[i].signer.as_str());
        assert_eq!(e["event"], serde_json::to_value(&d.events[i]).unwrap());
    }
}

#[tokio::test]
async fn demo_cathode_provenance_reaches_its_mines_with_whole_shares() {
    let d = demo();
    let (cathode, _) = lots_made(&d.events)
        .into_iter()
        .find(|(_, k)| *k == LotKind::Cathode)
        .unwrap();
    let lot = demo_lot(d, cathode.as_str());
    let p = ok(
        &d.app,
        &format!("/v1/lots/{}/provenance", path_id(cathode.as_str())),
    )
    .await;
    assert_eq!(p["lot"], cathode.as_str());
    let nodes = p["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["id"], cathode.as_str());
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), nodes.len(), "each lot once");
    // Cathode <- anode <- blend <- concentrates.
    let kinds: BTreeSet<&str> = nodes.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["Anode", "Blend", "Cathode", "Concentrate"])
    );
    // Every edge joins two nodes, and each child's parents' shares add up
    // to one.
    let mut per_child: BTreeMap<&str, u64> = BTreeMap::new();
    for e in p["edges"].as_array().unwrap() {
        assert!(ids.contains(e["parent"].as_str().unwrap()));
        *per_child.entry(e["child"].as_str().unwrap()).or_default() += e["share"].as_u64().unwrap();
    }
    assert!(
        per_child.values().all(|s| *s == 1_000_000_000),
        "{per_child:?}"
    );
    // Every concentrate node names its site; the mines are the lot's origin.
    for n in nodes.iter().filter(|n| n["kind"] == "Concentrate") {
        assert!(n["site"].is_string(), "{n}");
    }
    let mines = p["mines"].as_array().unwrap();
    let got: BTreeMap<&str, u64> = mines
        .iter()
        .map(|m| (m["site"].as_str().unwrap(), m["share"].as_u64().unwrap()))
        .collect();
    let want: BTreeMap<&str, u64> = lot
        .origin
        .shares()
        .iter()
        .map(|s| (s.site.as_str(), u64::from(s.share.get())))
        .collect();
    assert_eq!(got, want);
    // Aggregates are the sums of the mines' shares.
    let a = &p["aggregates"];
    let sum_where = |pick: &dyn Fn(&Value) -> bool| -> u64 {
        mines
            .iter()
            .filter(|m| pick(m))
            .map(|m| m["share"].as_u64().unwrap())
            .sum()
    };
    let countries: u64 = a["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["share"].as_u64().unwrap())
        .sum();
    assert_eq!(countries, 1_000_000_000);
    assert_eq!(a["cahra_share"], sum_where(&|m| m["cahra"] == true));
    assert_eq!(
        a["artisanal_share"],
        sum_where(&|m| m["scale"] == "Artisanal")
    );
    assert_eq!(
        a["large_scale_share"],
        sum_where(&|m| m["scale"] == "LargeScale")
    );
    let flags: Vec<Value> = lot
        .flags
        .iter()
        .map(|f| json!({ "entry": f.entry, "n": f.n }))
        .collect();
    let got_flags: Vec<Value> = a["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(got_flags, flags);
}

#[tokio::test]
async fn demo_concentrate_downstream_reaches_the_cathodes_and_who_has_them() {
    let d = demo();
    // A copper concentrate lot that went into a blend.
    let blend_input = d
        .events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Blend(b) => Some(b.inputs[0].clone()),
            _ => None,
        })
        .unwrap();
    let body = ok(
        &d.app,
        &format!("/v1/lots/{}/downstream", path_id(blend_input.as_str())),
    )
    .await;
    let lots = body["lots"].as_array().unwrap();
    assert_eq!(lots[0]["id"], blend_input.as_str());
    let kinds: BTreeSet<&str> = lots.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.is_superset(&BTreeSet::from(["Anode", "Blend", "Cathode"])),
        "{kinds:?}"
    );
    for l in lots {
        let state = demo_lot(d, l["id"].as_str().unwrap());
        assert_eq!(l["custodian"], state.custodian.as_str());
        assert_eq!(l["owner"], state.owner.as_str());
    }
    // Every lot downstream has the concentrate's mine in its origin, and
    // the concentrate in its provenance.
    let site = demo_lot(d, blend_input.as_str()).origin.shares()[0]
        .site
        .clone();
    for l in lots.iter().skip(1) {
        let id = l["id"].as_str().unwrap();
        let state = demo_lot(d, id);
        if state.metal != Element::Cu {
            continue; // the anode slime is counted in gold
        }
        assert!(state.origin.shares().iter().any(|s| s.site == site), "{id}");
        let p = ok(&d.app, &format!("/v1/lots/{}/provenance", path_id(id))).await;
        assert!(
            p["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["id"] == blend_input.as_str()),
            "{id}"
        );
    }
}

#[tokio::test]
async fn demo_event_filters_select_what_the_log_holds() {
    let d = demo();
    let count = |pick: &dyn Fn(&Event) -> bool| d.events.iter().filter(|e| pick(e)).count();

    let all = all_pages(&d.app, "/v1/events", "events", 1000, "index").await;
    assert_eq!(all.len() as u64, d.ledger.size());
    assert!(all.iter().enumerate().all(|(i, e)| e["index"] == i as u64));

    let transformations = all_pages(
        &d.app,
        "/v1/events?eventType=TransformationEvent",
        "events",
        1000,
        "index",
    )
    .await;
    assert_eq!(
        transformations.len(),
        count(&|e| matches!(
            e.body,
            EventBody::Split(_) | EventBody::Blend(_) | EventBody::Transform(_)
        ))
    );
    assert!(
        transformations
            .iter()
            .all(|e| e["epcis"]["eventType"] == "TransformationEvent")
    );

    let shipping = all_pages(
        &d.app,
        "/v1/events?EQ_bizStep=urn:epcglobal:cbv:bizstep:shipping",
        "events",
        1000,
        "index",
    )
    .await;
    assert_eq!(
        shipping.len(),
        count(&|e| matches!(e.body, EventBody::Dispatch(_)))
    );
    let refused = ok(&d.app, "/v1/events?EQ_bizStep=accepting").await;
    assert_eq!(
        refused["events"].as_array().unwrap().len(),
        count(&|e| matches!(&e.body, EventBody::Receive(r) if !r.accepted))
    );
    let epcis_id = shipping[0]["epcis"]["eventID"].as_str().unwrap();
    assert!(epcis_id.starts_with("ni:///sha-256;") && !epcis_id.contains('?'));

    let (from, to) = ("2026-05-01T00:00:00Z", "2026-05-08T00:00:00Z");
    let (from_t, to_t) = (
        Timestamp::parse(from).unwrap(),
        Timestamp::parse(to).unwrap(),
    );
    let week = all_pages(
        &d.app,
        &format!(
            "/v1/events?GE_eventTime={}&LT_eventTime={to}&type=receive",
            from_t.as_millis()
        ),
        "events",
        10,
        "index",
    )
    .await;
    let want =
        count(&|e| matches!(e.body, EventBody::Receive(_)) && e.time >= from_t && e.time < to_t);
    assert!(want > 10, "more than one page: {want}");
    assert_eq!(week.len(), want);

    // A lot by its EPC and by its id: the same entries, its history.
    let cathode = lots_made(&d.events)
        .into_iter()
        .find(|(_, k)| *k == LotKind::Cathode)
        .unwrap()
        .0;
    let by_epc = ok(
        &d.app,
        &format!("/v1/events?MATCH_epc=urn:oretrail:lot:{cathode}"),
    )
    .await;
    let by_id = ok(&d.app, &format!("/v1/events?MATCH_epc={cathode}")).await;
    assert_eq!(by_epc, by_id);
    let indexes: Vec<u64> = by_epc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, demo_lot(d, cathode.as_str()).history);

    // A participant: what it signed or is named in, in order.
    let lab = "lab.nordic-assay";
    let lab_events = all_pages(
        &d.app,
        &format!("/v1/events?participant={lab}"),
        "events",
        1000,
        "index",
    )
    .await;
    let want = count(&|e| {
        e.signer.as_str() == lab
            || serde_json::to_string(&e.body)
                .unwrap()
                .contains(&format!("\"{lab}\""))
    });
    assert_eq!(lab_events.len(), want);
    let assays = ok(
        &d.app,
        &format!(
            "/v1/events?participant={lab}&eventType=ObjectEvent&EQ_bizStep=inspecting&limit=1"
        ),
    )
    .await;
    assert_eq!(assays["events"][0]["type"], "record_assay");
    assert!(assays["next_cursor"].is_string());

    // A step none of our events uses matches nothing; so does an unknown lot.
    assert_eq!(
        ok(&d.app, "/v1/events?EQ_bizStep=loading").await["events"],
        json!([])
    );
    assert_eq!(
        ok(&d.app, "/v1/events?MATCH_epc=NO-SUCH-LOT").await["events"],
        json!([])
    );
}

#[tokio::test]
async fn demo_participants_and_the_red_flag_register() {
    let d = demo();
    let mines = all_pages(
        &d.app,
        "/v1/participants?kind=mine",
        "participants",
        3,
        "id",
    )
    .await;
    assert_eq!(mines.len(), 7);
    assert!(mines.iter().all(|m| m["kinds"] == json!(["mine"])));
    let everyone = all_pages(&d.app, "/v1/participants", "participants", 1000, "id").await;
    let registered = d
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.body,
                EventBody::Genesis(_) | EventBody::RegisterParticipant(_)
            )
        })
        .count();
    assert_eq!(everyone.len(), registered);

    // The blacklisted supplier: its sites, and a sanction in force in the
    // smelter's file on it.
    let (smelter, sanctioned) = d
        .events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::SanctionSupplier(s) => Some((s.organisation.clone(), s.supplier.clone())),
            _ => None,
        })
        .unwrap();
    let p = ok(&d.app, &format!("/v1/participants/{sanctioned}")).await;
    assert_eq!(p["participant"]["id"], sanctioned.as_str());
    assert!(!p["sites"].as_array().unwrap().is_empty());
    assert!(
        p["sites"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["operator"] == sanctioned.as_str())
    );
    let standing = p["compliance"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["organisation"] == smelter.as_str())
        .unwrap();
    assert!(
        standing["sanction_in_force"]["kind"]["Blacklisted"].is_object(),
        "{standing}"
    );
    assert_eq!(standing["file"]["supplier"], sanctioned.as_str());

    // The register: open and decided partition it; filters hold per item.
    let all = all_pages(&d.app, "/v1/flags", "flags", 10, "id").await;
    // The register lists every flag the state holds, whichever entry
    // raised it, in the order raised.
    let mut in_state = Vec::new();
    for entry in 0..d.ledger.size() {
        for n in 0.. {
            match d.ledger.state().flag(FlagId { entry, n }).unwrap() {
                Some(_) => in_state.push(json!({ "entry": entry, "n": n })),
                None => break,
            }
        }
    }
    assert!(!in_state.is_empty());
    let listed: Vec<Value> = all.iter().map(|f| f["id"].clone()).collect();
    assert_eq!(listed, in_state);
    let open = all_pages(&d.app, "/v1/flags?status=open", "flags", 1000, "id").await;
    let decided = all_pages(&d.app, "/v1/flags?status=decided", "flags", 1000, "id").await;
    assert!(!decided.is_empty());
    assert_eq!(open.len() + decided.len(), all.len());
    assert!(
        open.iter()
            .all(|f| f["decisions"] == json!([]) && f["status"] == "open")
    );
    assert!(
        decided
            .iter()
            .all(|f| !f["decisions"].as_array().unwrap().is_empty())
    );
    let decisions = d
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::DecideFlag(f) => Some((f.flag.entry, f.flag.n)),
            _ => None,
        })
        .collect::<BTreeSet<_>>();
    assert_eq!(decided.len(), decisions.len());
    let flagged_lot = all.iter().find_map(|f| f["lot"].as_str()).unwrap();
    let on_lot = all_pages(
        &d.app,
        &format!("/v1/flags?lot={}", path_id(flagged_lot)),
        "flags",
        1000,
        "id",
    )
    .await;
    assert_eq!(
        on_lot.len(),
        all.iter().filter(|f| f["lot"] == flagged_lot).count()
    );
    let artisanal = all_pages(
        &d.app,
        "/v1/flags?kind=ArtisanalOrigin",
        "flags",
        1000,
        "id",
    )
    .await;
    assert!(!artisanal.is_empty());
    assert!(artisanal.iter().all(|f| f["kind"] == "ArtisanalOrigin"));
    let about = all_pages(
        &d.app,
        &format!("/v1/flags?participant={smelter}"),
        "flags",
        1000,
        "id",
    )
    .await;
    assert!(
        about
            .iter()
            .all(|f| f["organisation"] == smelter.as_str() || f["supplier"] == smelter.as_str())
    );
}

#[tokio::test]
async fn demo_catalog_rebuilt_from_the_log_equals_the_live_one() {
    let d = demo();
    let ledger = d.ledger.clone();
    let rebuilt = tokio::task::spawn_blocking(move || Catalog::build(&ledger).unwrap())
        .await
        .unwrap();
    let live = d.state.catalog().read(&d.ledger).unwrap();
    let fresh = rebuilt.snapshot().unwrap();
    assert_eq!(fresh.applied(), d.ledger.size());
    assert!(
        *live == *fresh,
        "the live catalog differs from one rebuilt from the log"
    );
}

#[tokio::test]
async fn bad_parameters_are_refused_with_clear_errors() {
    let d = demo();
    let bad = StatusCode::BAD_REQUEST;
    let e = refused(
        &d.app,
        "/v1/lots?cursor=not-a-cursor",
        bad,
        "MALFORMED_REQUEST",
    )
    .await;
    assert_eq!(e["details"]["parameter"], "cursor");
    // A cursor from one listing is refused by another.
    let page = ok(&d.app, "/v1/lots?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    refused(
        &d.app,
        &format!("/v1/events?cursor={cursor}"),
        bad,
        "MALFORMED_REQUEST",
    )
    .await;
    refused(
        &d.app,
        &format!("/v1/flags?cursor={cursor}x"),
        bad,
        "MALFORMED_REQUEST",
    )
    .await;
    for limit in ["0", "1001", "ten", "-1"] {
        let e = refused(
            &d.app,
            &format!("/v1/events?limit={limit}"),
            bad,
            "MALFORMED_REQUEST",
        )
        .await;
        assert_eq!(e["details"]["parameter"], "limit");
    }
    for (uri, parameter) in [
        ("/v1/events?GE_eventTime=yesterday", "GE_eventTime"),
        ("/v1/events?eventType=Shipment", "eventType"),
        ("/v1/events?type=ship", "type"),
        ("/v1/events?MATCH_epc=urn:oretrail:lot:", "MATCH_epc"),
        ("/v1/events?participant=Not%20An%20Id", "participant"),
        ("/v1/lots?kind=Gold", "kind"),
        ("/v1/lots?status=lost", "status"),
        ("/v1/lots?created_to=2026-13-01T00:00:00Z", "created_to"),
        ("/v1/participants?kind=miner", "kind"),
        ("/v1/flags?status=closed", "status"),
    ] {
        let e = refused(&d.app, uri, bad, "MALFORMED_REQUEST").await;
        assert_eq!(e["details"]["parameter"], parameter, "{uri}");
    }
    // Unknown parameters are refused rather than ignored.
    refused(
        &d.app,
        "/v1/events?eventtype=ObjectEvent",
        bad,
        "MALFORMED_REQUEST",
    )
    .await;
    for path in ["history", "provenance", "downstream"] {
        let e = refused(
            &d.app,
            &format!("/v1/lots/NO-SUCH-LOT/{path}"),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        )
        .await;
        assert_eq!(e["details"]["lot"], "NO-SUCH-LOT");
        refused(
            &d.app,
            &format!("/v1/lots/-bad-/{path}"),
            bad,
            "MALFORMED_REQUEST",
        )
        .await;
    }
}

// -- a small ledger with hand-computed figures -------------------------------------

/// A ledger built here over HTTP, on a simulated clock.
struct Small {
    _dir: tempfile::TempDir,
    ledger: Arc<Ledger>,
    state: Option<AppState>,
    app: Client,
    clock: TestClock,
    signers: BTreeMap<&'static str, Signer>,
}

impl Small {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new();
        let (ledger, operator) = crate::new_ledger(dir.path(), &clock);
        let state = AppState::new(ledger.clone());
        let app = Client::new(state.clone(), dir.path());
        let mut small = Small {
            _dir: dir,
            ledger,
            state: Some(state),
            app,
            clock,
            signers: BTreeMap::from([("operator", operator)]),
        };
        let parties: [(&'static str, u32, ParticipantKind, Vec<Role>); 5] = [
            (
                "mine.a",
                20,
                ParticipantKind::Mine,
                vec![Role::Producer, Role::Custodian, Role::Seller],
            ),
            (
                "mine.b",
                21,
                ParticipantKind::Mine,
                vec![Role::Producer, Role::Custodian, Role::Seller],
            ),
            (
                "smelter",
                22,
                ParticipantKind::Smelter,
                vec![
                    Role::Custodian,
                    Role::Processor,
                    Role::Seller,
                    Role::Purchaser,
                ],
            ),
            (
                "buyer",
                23,
                ParticipantKind::Buyer,
                vec![Role::Purchaser, Role::Custodian],
            ),
            (
                "compliance",
                24,
                ParticipantKind::Smelter,
                vec![Role::Compliance],
            ),
        ];
        for (id, n, kind, roles) in parties {
            small
                .post(
                    "operator",
                    EventBody::RegisterParticipant(Registration {
                        participant: pid(id),
                        legal_name: format!("{id} Ltd"),
                        country: CountryCode::new("FI").unwrap(),
                        kinds: vec![kind],
                        roles,
                        keys: vec![key(n).public()],
                    }),
                )
                .await;
            small
                .signers
                .insert(id, Signer::with_first_nonce(ORIGIN, pid(id), key(n), 1));
        }
        small
    }

    /// Signs `body` as `who` a minute later, appends it over HTTP and
    /// returns its entry index.
    async fn post(&mut self, who: &str, body: EventBody) -> u64 {
        self.clock.advance(60_000);
        let signed: SignedEvent = self
            .signers
            .get_mut(who)
            .unwrap()
            .sign(self.clock.now(), body)
            .unwrap();
        let body = json!({
            "key": signed.key.to_hex(),
            "signature": signed.signature.to_hex(),
            "event": hex::encode(&signed.event),
        });
        let response = self
            .app
            .router
            .clone()
            .oneshot(
                Request::post("/v1/events")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let receipt: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, StatusCode::CREATED, "{receipt}");
        receipt["index"].as_u64().unwrap()
    }

    async fn site(&mut self, id: &str, operator: &str, country: &str, scale: SiteScale) {
        self.post(
            "compliance",
            EventBody::RegisterSite(SiteRegistration {
                site: SiteId::new(id).unwrap(),
                operator: pid(operator),
                name: format!("{id} pit"),
                country: CountryCode::new(country).unwrap(),
                latitude_micro: -11_000_000,
                longitude_micro: 27_000_000,
                scale,
                metal: Element::Cu,
                annual_capacity: Grams(1 << 40),
            }),
        )
        .await;
    }

    async fn create(&mut self, mine: &str, lot: &str, site: &str, wet: u64, cu_ppb: u64) -> u64 {
        let now = self.clock.now();
        self.post(
            mine,
            EventBody::CreateLot(LotCreation {
                lot: lot_id(lot),
                site: SiteId::new(site).unwrap(),
                kind: LotKind::Concentrate,
                wet: Grams(wet),
                moisture: Ppb::ZERO,
                assays: vec![Assay {
                    element: Element::Cu,
                    grade: Ppb::new(cu_ppb).unwrap(),
                }],
                produced_from: now,
                produced_until: now,
            }),
        )
        .await
    }

    /// Dispatch by `from` to `to`, receipt by `to` weighing `measured`.
    async fn deliver(&mut self, from: &str, to: &str, lot: &str, measured: u64, country: &str) {
        self.post(
            from,
            EventBody::Dispatch(Dispatch {
                lot: lot_id(lot),
                to: pid(to),
                route: vec![CountryCode::new(country).unwrap()],
                documents: vec![],
            }),
        )
        .await;
        self.post(
            to,
            EventBody::Receive(LotReceipt {
                lot: lot_id(lot),
                measured_wet: Grams(measured),
                accepted: true,
                note: String::new(),
                documents: vec![],
            }),
        )
        .await;
    }

    async fn sell(&mut self, seller: &str, lot: &str, buyer: &str) {
        self.post(
            seller,
            EventBody::Sell(Sale {
                lot: lot_id(lot),
                buyer: pid(buyer),
                documents: vec![],
            }),
        )
        .await;
    }
}

/// Two mines deliver concentrate to a smelter, which blends it, splits
/// the blend, refines all of one part and a third of the other into a
/// cathode and sells it to a buyer. Site A is artisanal and in a CAHRA.
async fn refinery() -> Small {
    let mut s = Small::new().await;
    s.site("A", "mine.a", "CD", SiteScale::Artisanal).await;
    s.site("B", "mine.b", "ZM", SiteScale::LargeScale).await;
    s.post(
        "compliance",
        EventBody::DetermineCahra(CahraFinding {
            site: SiteId::new("A").unwrap(),
            cahra: true,
            effective: Timestamp::from_millis(common::START_MS),
            source: "EU CAHRA list".into(),
        }),
    )
    .await;
    // 1 t at 20 % Cu = 200,000 g; B-1: 3 t at 10 % = 300,000 g.
    s.create("mine.a", "A-1", "A", 1_000_000, 200_000_000).await;
    s.create("mine.b", "B-1", "B", 3_000_000, 100_000_000).await;
    s.deliver("mine.a", "smelter", "A-1", 1_000_000, "CD").await;
    // B-1 weighs 1 % less at the smelter (a weight-variance flag): dry and
    // Cu scale to 2,970,000 and 297,000 g.
    s.deliver("mine.b", "smelter", "B-1", 2_970_000, "ZM").await;
    s.sell("mine.a", "A-1", "smelter").await;
    s.sell("mine.b", "B-1", "smelter").await;
    s.post(
        "smelter",
        EventBody::Blend(Blend {
            inputs: vec![lot_id("A-1"), lot_id("B-1")],
            output: lot_id("BL-1"),
        }),
    )
    .await;
    s.post(
        "smelter",
        EventBody::Split(Split {
            lot: lot_id("BL-1"),
            parts: vec![
                SplitPart {
                    lot: lot_id("BL-1a"),
                    wet: Grams(1_000_000),
                },
                SplitPart {
                    lot: lot_id("BL-1b"),
                    wet: Grams(2_970_000),
                },
            ],
        }),
    )
    .await;
    s.post(
        "smelter",
        EventBody::Transform(Transformation {
            process: "electrorefining".into(),
            inputs: vec![
                TransformInput {
                    lot: lot_id("BL-1a"),
                    consumed_wet: Grams(1_000_000),
                },
                TransformInput {
                    lot: lot_id("BL-1b"),
                    consumed_wet: Grams(990_000),
                },
            ],
            outputs: vec![TransformOutput {
                lot: lot_id("CA-1"),
                kind: LotKind::Cathode,
                metal: Element::Cu,
                wet: Grams(240_000),
                moisture: Ppb::ZERO,
                assays: vec![Assay {
                    element: Element::Cu,
                    grade: Ppb::new(999_900_000).unwrap(),
                }],
            }],
        }),
    )
    .await;
    s.sell("smelter", "CA-1", "buyer").await;
    s.deliver("smelter", "buyer", "CA-1", 240_000, "FI").await;
    s
}

fn edge_share(edges: &Value, child: &str, parent: &str) -> (u64, u64) {
    let e = edges
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["child"] == child && e["parent"] == parent)
        .unwrap_or_else(|| panic!("no edge {child} <- {parent} in {edges}"));
    (e["share"].as_u64().unwrap(), e["grams"].as_u64().unwrap())
}

#[tokio::test]
async fn provenance_of_a_blended_and_refined_lot_has_the_hand_computed_shares() {
    let s = refinery().await;
    let p = ok(&s.app, "/v1/lots/CA-1/provenance").await;
    let nodes: Vec<&str> = p["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["CA-1", "BL-1a", "BL-1b", "BL-1", "A-1", "B-1"]);
    let edges = &p["edges"];
    assert_eq!(edges.as_array().unwrap().len(), 6);
    // The blend: 200,000 and 297,000 g of 497,000 g Cu, that is
    // 402,414,486.9 and 597,585,513.1 ppb; the spare ppb goes to the
    // larger remainder.
    assert_eq!(edge_share(edges, "BL-1", "A-1"), (402_414_487, 200_000));
    assert_eq!(edge_share(edges, "BL-1", "B-1"), (597_585_513, 297_000));
    // The split divides 497,000 g by wet mass 1 : 2.97 (125,188.9 and
    // 371,811.1 g, so 125,189 and 371,811); each part has one parent.
    assert_eq!(edge_share(edges, "BL-1a", "BL-1"), (1_000_000_000, 125_189));
    assert_eq!(edge_share(edges, "BL-1b", "BL-1"), (1_000_000_000, 371_811));
    // Refining took all of BL-1a and a third of BL-1b's wet mass:
    // floor(371,811 × 990,000 / 2,970,000) = 123,937 g; 125,189 and
    // 123,937 of 249,126 g are 502,512,785 and 497,487,215 ppb.
    assert_eq!(edge_share(edges, "CA-1", "BL-1a"), (502_512_785, 125_189));
    assert_eq!(edge_share(edges, "CA-1", "BL-1b"), (497_487_215, 123_937));

    // Both parts carry the blend's origin, so the cathode's mines have the
    // blend's shares: B (ZM, large scale) 597,585,513; A (CD, artisanal,
    // CAHRA) 402,414,487.
    let mines = p["mines"].as_array().unwrap();
    assert_eq!(mines.len(), 2);
    assert_eq!(
        (
            &mines[0]["site"],
            &mines[0]["share"],
            &mines[0]["country"],
            &mines[0]["scale"],
            &mines[0]["cahra"]
        ),
        (
            &json!("B"),
            &json!(597_585_513),
            &json!("ZM"),
            &json!("LargeScale"),
            &json!(false)
        )
    );
    assert_eq!(
        (
            &mines[1]["site"],
            &mines[1]["share"],
            &mines[1]["country"],
            &mines[1]["scale"],
            &mines[1]["cahra"]
        ),
        (
            &json!("A"),
            &json!(402_414_487),
            &json!("CD"),
            &json!("Artisanal"),
            &json!(true)
        )
    );
    assert_eq!(mines[1]["operator"], "mine.a");
    assert_eq!(mines[1]["determinations"][0]["source"], "EU CAHRA list");
    let a = &p["aggregates"];
    assert_eq!(
        a["countries"],
        json!([{ "country": "ZM", "share": 597_585_513 }, { "country": "CD", "share": 402_414_487 }])
    );
    assert_eq!(a["cahra_share"], 402_414_487);
    assert_eq!(a["artisanal_share"], 402_414_487);
    assert_eq!(a["large_scale_share"], 597_585_513);
    assert_eq!(a["recycled_share"], 0);
    // A-1's receipt raised CAHRA and artisanal origin flags for the
    // smelter, B-1's a weight variance, and the buyer's receipt of the
    // cathode the two origin flags again, for the buyer's register.
    let flags = a["flags"].as_array().unwrap();
    let kinds: Vec<&str> = flags.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "CahraOrigin",
            "ArtisanalOrigin",
            "WeightVariance",
            "CahraOrigin",
            "ArtisanalOrigin"
        ]
    );
    let registers: Vec<&str> = flags
        .iter()
        .map(|f| f["organisation"].as_str().unwrap())
        .collect();
    assert_eq!(
        registers,
        ["smelter", "smelter", "smelter", "buyer", "buyer"]
    );
    assert!(
        a["flags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "open")
    );
    // The cathode node: who has it now.
    assert_eq!(p["nodes"][0]["custodian"], "buyer");
    assert_eq!(p["nodes"][0]["owner"], "buyer");
    assert_eq!(p["nodes"][4]["site"], "A");

    // Downstream of A-1: the blend, both parts and the cathode; B-1, the
    // blend's other parent, is not downstream.
    let down = ok(&s.app, "/v1/lots/A-1/downstream").await;
    let lots: Vec<&str> = down["lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(lots, ["A-1", "BL-1", "BL-1a", "BL-1b", "CA-1"]);
    assert_eq!(down["edges"].as_array().unwrap().len(), 5);
    assert_eq!(down["lots"][4]["owner"], "buyer");
    assert_eq!(down["lots"][3]["status"], "Held");
    assert_eq!(
        down["lots"][2]["status"]["Consumed"]["in_entry"],
        down["lots"][4]["created_in"]
    );

    // The cathode's history and the lots listing.
    let history = ok(&s.app, "/v1/lots/CA-1/history").await;
    let types: Vec<&str> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["transform", "sell", "dispatch", "receive"]);
    assert_eq!(history["entries"][0]["epcis"]["bizStep"], "commissioning");
    let held = ok(&s.app, "/v1/lots?holder=smelter&status=held").await;
    assert_eq!(strs(held["lots"].as_array().unwrap(), "id"), ["BL-1b"]);
    let events = ok(&s.app, "/v1/events?MATCH_epc=urn:oretrail:lot:A-1").await;
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["create_lot", "dispatch", "receive", "sell", "blend"]
    );
}

#[tokio::test]
async fn a_query_after_an_append_sees_the_append() {
    let mut s = Small::new().await;
    s.site("A", "mine.a", "ZM", SiteScale::LargeScale).await;
    for n in 0..30 {
        // Lot ids may hold a `/`: `%2F` in a path, as it is in a query.
        let lot = format!("A-2026/{n:03}");
        let index = s.create("mine.a", &lot, "A", 1_000_000, 200_000_000).await;
        // Straight after the receipt, with no waiting: every listing
        // already has the entry.
        let listed = ok(&s.app, "/v1/lots?site=A&limit=1000").await;
        assert_eq!(listed["lots"].as_array().unwrap().len(), n + 1);
        assert_eq!(listed["lots"][n]["id"], lot.as_str());
        let events = ok(
            &s.app,
            &format!("/v1/events?MATCH_epc=urn:oretrail:lot:{lot}"),
        )
        .await;
        assert_eq!(events["events"][0]["index"], index);
        let history = ok(&s.app, &format!("/v1/lots/{}/history", path_id(&lot))).await;
        assert_eq!(history["entries"].as_array().unwrap().len(), 1);
        assert_eq!(history["lot"], lot.as_str());
    }
}

#[tokio::test]
async fn a_catalog_rebuilt_on_reopen_equals_the_one_that_followed_the_appends() {
    let mut s = refinery().await;
    // The follower applies the appends without any query asking it to;
    // wait (bounded) until it has.
    let state = s.state.take().unwrap();
    let size = s.ledger.size();
    let mut waited = 0;
    while state.catalog().snapshot().unwrap().applied() < size {
        assert!(waited < 1000, "the follower did not catch up within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    let live = state.catalog().snapshot().unwrap().clone();
    // Close the ledger: the router and the state let go of it first.
    drop(state);
    drop(s.app);
    let dir = s._dir.path().to_path_buf();
    let ledger = Arc::try_unwrap(s.ledger)
        .ok()
        .expect("nothing else holds the ledger");
    let clock = s.clock.clone();
    let rebuilt = tokio::task::spawn_blocking(move || {
        ledger.close().unwrap();
        let ledger = Ledger::open(&dir, clock.options()).unwrap();
        let catalog = Catalog::build(&ledger).unwrap();
        catalog.snapshot().unwrap().clone()
    })
    .await
    .unwrap();
    assert_eq!(rebuilt.applied(), size);
    assert!(
        rebuilt == live,
        "the rebuilt catalog differs from the live one"
    );
}
