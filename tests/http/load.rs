//! `oretrail load` at a tiny scale: the run finishes by itself, every
//! phase appends what it says, the JSON and the tables are well formed,
//! and the ledger it leaves verifies. The figures themselves are not
//! checked (performance belongs in BENCHMARKS.md, not in tests).

use std::process::{Command, Output};

use serde_json::Value;

fn oretrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oretrail"))
        .args(args)
        .output()
        .expect("run oretrail")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_latency(l: &Value, requests: u64, what: &str) {
    assert_eq!(l["requests"], requests, "{what}: {l}");
    let (p50, p99, max) = (
        l["p50_ms"].as_f64().unwrap(),
        l["p99_ms"].as_f64().unwrap(),
        l["max_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{what}: {l}");
}

#[test]
fn a_tiny_load_run_reports_every_phase_as_json_and_leaves_a_ledger_that_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let o = oretrail(&[
        "load",
        "--data",
        d,
        "--entries",
        "300",
        "--upstream",
        "20",
        "--events",
        "60",
        "--clients",
        "1,3",
        "--batch",
        "10",
        "--reads",
        "20",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o.stdout)));

    // 20 lots blended in two blends of ten, then smelted.
    let ledger = &report["ledger"];
    assert_eq!(ledger["entries"], 300, "{ledger}");
    assert_eq!(
        (&ledger["upstream_lots"], &ledger["blend_lots"]),
        (&Value::from(20), &Value::from(2))
    );
    // Two modes, two client counts, over HTTP and in process: 60 each.
    assert_eq!(ledger["entries_after"], 300 + 2 * 2 * 2 * 60, "{ledger}");
    assert!(
        report["server"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    let rows = report["ingest"].as_array().unwrap();
    let shape: Vec<(&str, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["mode"].as_str().unwrap(),
                r["clients"].as_u64().unwrap(),
                r["batch"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("single", 1, 1),
            ("single", 3, 1),
            ("batch", 1, 10),
            ("batch", 3, 10)
        ]
    );
    for row in rows {
        for side in ["http", "in_process"] {
            let t = &row[side];
            let what = format!("{} {} {side}", row["mode"], row["clients"]);
            assert_eq!(
                (&t["events"], &t["unsent"], &t["failed"]),
                (&Value::from(60), &Value::from(0), &Value::from(0)),
                "{what}: {t}"
            );
            assert!(t["events_per_second"].as_f64().unwrap() > 0.0, "{what}");
            // A request per event, or per batch of ten (each of three
            // clients sends 20 events: two batches).
            let requests = 60 / row["batch"].as_u64().unwrap();
            assert_latency(&t["latency"], requests, &what);
        }
        let ratio = row["ratio"].as_f64().unwrap();
        let expected = row["http"]["events_per_second"].as_f64().unwrap()
            / row["in_process"]["events_per_second"].as_f64().unwrap();
        assert!((ratio - expected).abs() < 1e-9, "{row}");
    }

    let provenance = &report["provenance"];
    assert_eq!(provenance["status"], "measured", "{provenance}");
    assert_eq!(provenance["lot"], ledger["cathode"]);
    // The cathode, its 20 concentrate lots and the two blends.
    assert_eq!(provenance["lots_in_answer"], 23, "{provenance}");
    assert_latency(&provenance["latency"], 20, "provenance");

    let goals = &report["goals"];
    assert!(goals["batch_ingest_ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(goals["batch_ingest_goal"], 0.6);
    assert_eq!(goals["provenance_goal_ms"], 5.0);
    assert_eq!(
        goals["provenance_met"],
        goals["provenance_p99_ms"].as_f64().unwrap() < 5.0
    );

    // Every event the run appended is durable and passes the rules again.
    let v = oretrail(&["verify", "--data", d]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stdout));
    assert!(
        text(&v.stdout).starts_with("intact: 780 entries"),
        "{}",
        text(&v.stdout)
    );
}

#[test]
fn the_tables_name_each_phase_and_the_temporary_ledger_is_removed() {
    let o = oretrail(&[
        "load",
        "--entries",
        "80",
        "--upstream",
        "3",
        "--events",
        "8",
        "--clients",
        "2",
        "--batch",
        "4",
        "--reads",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let folder = out
        .lines()
        .find_map(|l| l.strip_prefix("ledger: 80 entries (112 after the ingest phases) in "))
        .and_then(|rest| rest.split(", built in").next())
        .unwrap_or_else(|| panic!("no ledger line in:\n{out}"));
    assert!(
        !std::path::Path::new(folder).exists(),
        "{folder} was left behind"
    );
    for line in [
        "cathode LOAD-CATHODE-0001 from 3 concentrate lots through 0 blends",
        "ingest  clients  batch |  HTTP ev/s",
        "single        2      1 |",
        "batch         2      4 |",
        "latency is per request: one event (single) or one batch (batch)",
        "provenance of LOAD-CATHODE-0001: 3 requests, p50 ",
        "goal: best HTTP batch ingest is ",
        "goal: provenance p99 ",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }

    let bad = oretrail(&["load", "--clients", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("--clients needs one or more numbers above zero"),
        "{}",
        text(&bad.stderr)
    );
}
