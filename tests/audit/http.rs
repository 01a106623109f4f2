//! The `/v1/audit` endpoints on the demo ledger: the streamed audit
//! bundle verifies and only the operator and auditors get it; the EPCIS
//! endpoint gives an auditor what the library export gives, and a buyer
//! exactly the events the access policy discloses to it (the same ones the
//! log API shows it the bytes of), valid against the GS1 schema either way;
//! the report endpoint serves what the library computes, as JSON or CSV,
//! to auditors for anything and to an organisation for its own scope only.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use axum::Router;
use axum::http::StatusCode;
use oretrail::api::{self, AppState};
use oretrail::audit::LogSnapshot;
use oretrail::audit::bundle::{self, VerifyOptions};
use oretrail::audit::epcis::{self, Selection, TypeFilter};
use oretrail::audit::report::mass_balance::MassBalanceRequest;
use oretrail::audit::report::receipts::ReceiptsRequest;
use oretrail::audit::report::{self, Params, Period, Scope};
use oretrail::ledger::LOG_FILE;
use oretrail::model::Timestamp;
use serde_json::Value;

use crate::common;

const AUDITOR: &str = "auditor.trailcheck";
const BUYER: &str = "buyer.rheinkabel";
const SMELTER: &str = "smelter.pohjanmeri";

struct Server {
    router: Router,
    auditor: String,
    buyer: String,
    smelter: String,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let data = crate::demo_data();
        Server {
            router: api::router(AppState::new(crate::demo_ledger().clone())),
            auditor: common::issue_token(data, AUDITOR),
            buyer: common::issue_token(data, BUYER),
            smelter: common::issue_token(data, SMELTER),
        }
    })
}

/// GETs `uri` with `token` (none when `None`); the status, the headers we
/// look at, and the body.
async fn get(uri: &str, token: Option<&str>) -> (StatusCode, Option<String>, Vec<u8>) {
    crate::get(&server().router, uri, token).await
}

async fn get_json(uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let (status, _, body) = get(uri, token).await;
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

fn entries_of(document: &Value) -> Vec<u64> {
    document["epcisBody"]["eventList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["oretrail:entry"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_bundle_endpoint_streams_a_bundle_that_verifies_and_only_auditors_get_it() {
    let s = server();
    let snapshot = LogSnapshot::open(&crate::demo_data().join(LOG_FILE)).unwrap();

    let (status, size, body) = get("/v1/audit/bundle", Some(&s.auditor)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(size, Some(snapshot.entries().to_string()));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.bundle");
    std::fs::write(&file, &body).unwrap();
    let report = bundle::verify_file(
        &file,
        VerifyOptions {
            trusted_log_key: None,
            progress: false,
        },
    )
    .unwrap_or_else(|e| panic!("the served bundle does not verify: {e}"));
    assert_eq!(report.verified.entries, snapshot.entries());

    // Cut short, it fails: what a client sees if the stream stops.
    std::fs::write(&file, &body[..body.len() - 100]).unwrap();
    assert!(bundle::verify_file(&file, VerifyOptions::default()).is_err());

    let (status, refused) = get_json("/v1/audit/bundle", Some(&s.buyer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["code"], "FORBIDDEN");
    let (status, refused) = get_json("/v1/audit/bundle", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_epcis_endpoint_gives_auditors_the_library_export_and_buyers_only_what_they_may_see() {
    let s = server();
    let snapshot = LogSnapshot::open(&crate::demo_data().join(LOG_FILE)).unwrap();

    // The auditor: the same events as the library's export of the same
    // selection, and a valid document.
    let (status, served) = get_json(
        "/v1/audit/epcis?eventType=receive,TransformationEvent",
        Some(&s.auditor),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{served}");
    crate::epcis::assert_valid(&served, "the auditor's receipts and transformations");
    let library = epcis::export(
        &snapshot,
        &Selection {
            types: vec![
                "receive".parse::<TypeFilter>().unwrap(),
                "TransformationEvent".parse::<TypeFilter>().unwrap(),
            ],
            ..Selection::default()
        },
        Timestamp::now(),
        false,
    )
    .unwrap();
    let library: Vec<u64> = library.events().iter().map(|e| e.entry).collect();
    assert!(!library.is_empty());
    assert_eq!(entries_of(&served), library);
    assert!(
        served["oretrail:selection"]
            .get("oretrail:disclosedOnly")
            .is_none()
    );

    // The buyer: only the events whose bytes the log API shows it too.
    let (status, everything) = get_json("/v1/audit/epcis", Some(&s.auditor)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, mine) = get_json("/v1/audit/epcis", Some(&s.buyer)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    crate::epcis::assert_valid(&mine, "the buyer's disclosed events");
    assert_eq!(mine["oretrail:selection"]["oretrail:disclosedOnly"], true);
    let mut disclosed = BTreeSet::new();
    let size = snapshot.entries();
    let mut start = 0;
    while start < size {
        let end = (start + 1000).min(size);
        let (status, page) = get_json(
            &format!("/v1/entries?start={start}&end={end}"),
            Some(&s.buyer),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["entries"].as_array().unwrap() {
            if item.get("leaf").is_some() {
                disclosed.insert(item["index"].as_u64().unwrap());
            }
        }
        start = end;
    }
    let all: BTreeSet<u64> = entries_of(&everything).into_iter().collect();
    let want: Vec<u64> = all.intersection(&disclosed).copied().collect();
    let got = entries_of(&mine);
    assert!(!got.is_empty(), "the buyer sees its own purchases");
    assert!(got.len() < all.len(), "and not the whole ledger");
    assert_eq!(got, want);
}

#[tokio::test]
async fn the_epcis_endpoint_hides_lots_like_missing_ones_and_names_bad_parameters() {
    let s = server();
    // A lot the buyer never held: 404, word for word as a missing lot.
    let (_, lots) = get_json("/v1/lots?kind=Concentrate&limit=50", Some(&s.auditor)).await;
    let mut hidden = None;
    for lot in lots["lots"].as_array().unwrap() {
        let id = lot["id"].as_str().unwrap();
        let (status, _) = get_json(&format!("/v1/lots/{id}"), Some(&s.buyer)).await;
        if status == StatusCode::NOT_FOUND {
            hidden = Some(id.to_string());
            break;
        }
    }
    let hidden = hidden.expect("some concentrate lot is hidden from the buyer");
    let (status, auditor) =
        get_json(&format!("/v1/audit/epcis?lot={hidden}"), Some(&s.auditor)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!entries_of(&auditor).is_empty());
    let (status, refused) =
        get_json(&format!("/v1/audit/epcis?lot={hidden}"), Some(&s.buyer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    let (status, missing) = get_json("/v1/audit/epcis?lot=NO-SUCH-LOT", Some(&s.buyer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        refused["message"].as_str().unwrap().replace(&hidden, "X"),
        missing["message"]
            .as_str()
            .unwrap()
            .replace("NO-SUCH-LOT", "X")
    );

    for (query, parameter) in [
        ("reach=upstream", "reach"),
        ("lot=K&reach=sideways", "reach"),
        ("eventType=teleport", "eventType"),
        ("from=yesterday", "from"),
        (
            "from=2026-03-01T00:00:00Z&until=2026-02-01T00:00:00Z",
            "until",
        ),
    ] {
        let (status, error) = get_json(&format!("/v1/audit/epcis?{query}"), Some(&s.auditor)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(error["code"], "MALFORMED_REQUEST");
        assert_eq!(error["details"]["parameter"], parameter, "{query}: {error}");
    }
    let (status, _) = get_json("/v1/audit/epcis", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A report's JSON without the moment it was generated.
fn timeless(mut report: Value) -> Value {
    report["header"]
        .as_object_mut()
        .expect("a report header")
        .remove("generated_at");
    report
}

#[tokio::test]
async fn the_report_endpoint_serves_the_library_report_as_json_or_csv_within_the_access_policy() {
    let s = server();
    let snapshot = LogSnapshot::open(&crate::demo_data().join(LOG_FILE)).unwrap();
    let params = Params {
        scope: Some(Scope::Site(common::pid(SMELTER))),
        period: Period::new(
            Some(Timestamp::parse("2026-03-01T00:00:00Z").unwrap()),
            Some(Timestamp::parse("2026-07-01T00:00:00Z").unwrap()),
        )
        .unwrap(),
    };
    let library = report::compute(
        &snapshot,
        &[
            &MassBalanceRequest(params.clone()),
            &ReceiptsRequest(params),
        ],
        Timestamp::now(),
        false,
    )
    .unwrap();
    let mut json = Vec::new();
    library[0].write_json(&mut json).unwrap();
    let mut csv = Vec::new();
    library[1].write_csv(&mut csv).unwrap();
    let query = format!("site={SMELTER}&from=2026-03-01T00:00:00Z&until=2026-07-01T00:00:00Z");

    // The smelter asks for its own balance, and gets the library's.
    let (status, served) = get_json(
        &format!("/v1/audit/reports/mass-balance?{query}"),
        Some(&s.smelter),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{served}");
    assert_eq!(
        timeless(served),
        timeless(serde_json::from_slice(&json).unwrap())
    );
    let (status, _, served) = get(
        &format!("/v1/audit/reports/receipts?{query}&format=csv"),
        Some(&s.auditor),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.iter().filter(|b| **b == b'\n').count() > 1,
        "receipts in the period"
    );
    assert_eq!(
        served, csv,
        "CSV holds no generation time, so it is equal byte for byte"
    );

    // What an organisation may not ask for.
    for (uri, who) in [
        (format!("/v1/audit/reports/receipts?{query}"), &s.buyer),
        ("/v1/audit/reports/flags".to_string(), &s.smelter),
        (
            "/v1/audit/reports/impact?mine=LUS-OP".to_string(),
            &s.smelter,
        ),
        (
            "/v1/audit/reports/sample?seed=1&count=3".to_string(),
            &s.smelter,
        ),
    ] {
        let (status, error) = get_json(&uri, Some(who)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {error}");
        assert_eq!(error["code"], "FORBIDDEN");
    }
    let (status, _) = get_json("/v1/audit/reports/impact?mine=LUS-OP", Some(&s.auditor)).await;
    assert_eq!(status, StatusCode::OK);

    // Bad requests name their parameter; unknown names are 404.
    for (uri, parameter) in [
        ("/v1/audit/reports/receipts?format=xml", "format"),
        ("/v1/audit/reports/receipts?seed=1", "seed"),
        ("/v1/audit/reports/kpis", "org"),
        ("/v1/audit/reports/sample?seed=1&count=0", "count"),
        ("/v1/audit/reports/impact", "mine"),
        (
            "/v1/audit/reports/origin?from=2026-05-01T00:00:00Z&until=2026-04-01T00:00:00Z",
            "until",
        ),
    ] {
        let (status, error) = get_json(uri, Some(&s.auditor)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {error}");
        assert_eq!(error["details"]["parameter"], parameter, "{uri}: {error}");
    }
    for uri in [
        "/v1/audit/reports/balance-sheet",
        "/v1/audit/reports/receipts?site=nobody.at.all",
    ] {
        let (status, error) = get_json(uri, Some(&s.auditor)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {error}");
    }
}
