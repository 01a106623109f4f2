//! The binary, driven as a user would.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

fn oretrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oretrail"))
        .args(args)
        .output()
        .expect("run oretrail")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn init(dir: &Path) {
    let o = oretrail(&[
        "init",
        "--data",
        dir.to_str().unwrap(),
        "--name",
        "cli.example/ledger",
    ]);
    assert!(
        o.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn init_verify_checkpoint_and_log_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    init(&dir);
    let v = oretrail(&["verify", "--data", d]);
    assert_eq!(v.status.code(), Some(0));
    assert!(
        stdout(&v).starts_with("intact: 1 entries, 1 checkpoints"),
        "{}",
        stdout(&v)
    );

    let key_line = stdout(&oretrail(&["log-key", "--data", d]))
        .trim()
        .to_string();
    let note = stdout(&oretrail(&["checkpoint", "--data", d]));
    let verifier = oretrail::merkle::checkpoint::parse_verifier_key(&key_line).unwrap();
    let cp = oretrail::merkle::checkpoint::open(&note, &verifier).unwrap();
    assert_eq!((cp.origin(), cp.size()), ("cli.example/ledger", 1));

    // A second init refuses; with --if-missing it leaves the ledger alone.
    let again = oretrail(&["init", "--data", d, "--name", "other"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a ledger"));
    let keep = oretrail(&["init", "--data", d, "--name", "other", "--if-missing"]);
    assert!(keep.status.success());
    assert_eq!(stdout(&oretrail(&["checkpoint", "--data", d])), note);
}

#[test]
fn verify_names_the_tampered_entry_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    init(&dir);
    let log = dir.join("log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[100] ^= 0x04; // inside the genesis entry frame
    std::fs::write(&log, bytes).unwrap();
    let v = oretrail(&["verify", "--data", dir.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        stdout(&v).starts_with("FAILED at entry 0: damaged frame"),
        "{}",
        stdout(&v)
    );
}

#[test]
fn verify_while_the_ledger_is_open_elsewhere_checks_up_to_its_last_checkpoint() {
    use oretrail::ledger::Ledger;
    use oretrail::store::FrameKind;
    use oretrail::store::log::encode_frame;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    init(&dir);
    let ledger = Ledger::open(&dir, Default::default()).unwrap();
    let err = Ledger::open(&dir, Default::default()).err().unwrap();
    assert!(
        err.to_string().contains("is open in another process"),
        "{err}"
    );
    // Half of a frame after the last checkpoint: a batch being written.
    let mut frame = Vec::new();
    encode_frame(FrameKind::Entry, &[7u8; 64], &mut frame);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("log"))
        .unwrap();
    std::io::Write::write_all(&mut log, &frame[..40]).unwrap();
    let v = oretrail(&["verify", "--data", d]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(
        stdout(&v).starts_with("intact: 1 entries, 1 checkpoints")
            && stdout(&v).contains("open in another process"),
        "{}",
        stdout(&v)
    );
    // With nothing holding the ledger open, the same bytes are a torn tail.
    drop(ledger);
    let v = oretrail(&["verify", "--data", d]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(stdout(&v).contains("torn tail"), "{}", stdout(&v));
}

#[test]
fn keygen_writes_a_private_key_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("me.key");
    let p = path.to_str().unwrap();
    let o = oretrail(&["keygen", "--out", p]);
    assert!(o.status.success());
    let public = stdout(&o).trim().to_string();
    let key = oretrail::crypto::SecretKey::read_file(&path).unwrap();
    assert_eq!(key.public().to_hex(), public);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = oretrail(&["keygen", "--out", p]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        oretrail::crypto::SecretKey::read_file(&path)
            .unwrap()
            .public(),
        key.public()
    );
}

#[test]
fn missing_and_foreign_folders_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    for cmd in ["verify", "checkpoint", "log-key"] {
        let o = oretrail(&[cmd, "--data", d]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("error: "), "{cmd}: {err}");
        assert!(!err.contains("panicked"), "{cmd}: {err}");
    }
    std::fs::write(tmp.path().join("log"), b"this is not a log").unwrap();
    let o = oretrail(&["verify", "--data", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FAILED at entry 0: log header"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn demo_builds_a_ledger_that_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    let o = oretrail(&["demo", "--data", d]);
    assert!(
        o.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    let root = out
        .lines()
        .find_map(|l| l.strip_prefix("root:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no root line in {out}"))
        .to_string();

    let v = oretrail(&["verify", "--data", d]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(stdout(&v).starts_with("intact: "), "{}", stdout(&v));
    assert!(
        stdout(&v).contains(&format!("root {root},")),
        "{}",
        stdout(&v)
    );

    // A second run refuses the folder; with --if-missing it leaves the
    // ledger as it is.
    let note = stdout(&oretrail(&["checkpoint", "--data", d]));
    let again = oretrail(&["demo", "--data", d]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a ledger"));
    let keep = oretrail(&["demo", "--data", d, "--if-missing"]);
    assert!(keep.status.success());
    assert_eq!(stdout(&oretrail(&["checkpoint", "--data", d])), note);

    // A folder holding something else is not a place for the demo.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"keep me").unwrap();
    let o = oretrail(&["demo", "--data", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not empty"));
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A human-friendly JSON event: no time, no nonce.
fn attach_document_json(ledger: Option<&str>, signer: &str, lot: &str) -> String {
    let ledger = ledger
        .map(|l| format!("\"ledger\": {l:?},"))
        .unwrap_or_default();
    format!(
        r#"{{{ledger}
  "signer": "{signer}",
  "body": {{"attach_document": {{
    "lot": "{lot}",
    "document": {{"kind": "WeightCertificate",
                 "sha256": "5f2b0c1e9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180f7e6d5c4b3a291807"}}}}}}
}}"#
    )
}

#[test]
fn event_sign_prints_a_body_whose_signature_verifies_and_whose_bytes_decode() {
    use oretrail::model::{Event, EventBody};
    let tmp = tempfile::tempdir().unwrap();
    let key_path = tmp.path().join("me.key");
    let key = oretrail::crypto::SecretKey::generate().unwrap();
    key.write_file(&key_path).unwrap();
    let event_path = tmp.path().join("event.json");
    std::fs::write(
        &event_path,
        attach_document_json(None, "smelter.example", "LOT-1"),
    )
    .unwrap();

    let o = oretrail(&[
        "event",
        "sign",
        "--key",
        key_path.to_str().unwrap(),
        "--ledger",
        "cli.example/ledger",
        event_path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let body: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(body["key"], key.public().to_hex());
    let bytes = hex::decode(body["event"].as_str().unwrap()).unwrap();
    let signature =
        oretrail::crypto::Signature::from_hex(body["signature"].as_str().unwrap()).unwrap();
    key.public().verify_strict(&bytes, &signature).unwrap();

    let event: Event = oretrail::codec::decode(&bytes).unwrap();
    assert_eq!(event.ledger, "cli.example/ledger");
    assert_eq!(event.signer.as_str(), "smelter.example");
    // The event as JSON, with the time and nonce it was given, parses back
    // to the same event, and so encodes to the same bytes.
    let EventBody::AttachDocument(ref a) = event.body else {
        panic!("{event:?}")
    };
    assert_eq!(a.lot.as_str(), "LOT-1");
    let json = serde_json::to_string(&event).unwrap();
    let again: Event = serde_json::from_str(&json).unwrap();
    assert_eq!(again, event);
    assert_eq!(oretrail::codec::encode(&again).unwrap(), bytes);

    // Two signings of the same file differ by their random nonces.
    let o2 = oretrail(&[
        "event",
        "sign",
        "--key",
        key_path.to_str().unwrap(),
        "--ledger",
        "cli.example/ledger",
        event_path.to_str().unwrap(),
    ]);
    assert_ne!(stdout(&o2), stdout(&o));

    // Without a ledger, the file must name one.
    let o = oretrail(&[
        "event",
        "sign",
        "--key",
        key_path.to_str().unwrap(),
        event_path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--ledger"), "{}", stderr(&o));
}

#[test]
fn event_sign_names_the_bad_field_and_the_missing_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let key_path = tmp.path().join("me.key");
    oretrail::crypto::SecretKey::generate()
        .unwrap()
        .write_file(&key_path)
        .unwrap();
    let k = key_path.to_str().unwrap();

    let bad = tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        attach_document_json(Some("l"), "smelter.example", "LOT-1")
            .replace("WeightCertificate", "Weight"),
    )
    .unwrap();
    let o = oretrail(&["event", "sign", "--key", k, bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    assert!(err.contains("body.attach_document.document.kind"), "{err}");

    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, "{\"signer\": \"x\",").unwrap();
    let o = oretrail(&["event", "sign", "--key", k, broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("broken.json"), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 1"), "{}", stderr(&o));

    let good = tmp.path().join("good.json");
    std::fs::write(&good, attach_document_json(Some("l"), "s.example", "L")).unwrap();
    let missing = tmp.path().join("nobody.key");
    let o = oretrail(&[
        "event",
        "sign",
        "--key",
        missing.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("key file") && err.contains("nobody.key"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// `serve --demo` on a free port, `submit` an accepted and a refused
/// event, then SIGTERM.
#[test]
fn submit_posts_to_a_served_demo_ledger_and_reports_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let served = common::ServedDemo::start(&data);
    let url = format!("http://{}", served.addr);

    let keys = data.join("keys").join("demo");
    let smelter_key = keys.join("smelter.pohjanmeri.key");
    let buyer_key = keys.join("buyer.nordvolt.key");
    // The last cathode of the demo year is still at the smelter.
    let lot = "PSO-CA-2026-0462";
    let good = tmp.path().join("attach.json");
    std::fs::write(
        &good,
        attach_document_json(Some(oretrail::demo::ORIGIN), "smelter.pohjanmeri", lot),
    )
    .unwrap();
    let refused = tmp.path().join("refused.json");
    std::fs::write(
        &refused,
        attach_document_json(Some(oretrail::demo::ORIGIN), "buyer.nordvolt", lot),
    )
    .unwrap();

    let ok = oretrail(&[
        "submit",
        "--url",
        &url,
        "--key",
        smelter_key.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    let no = oretrail(&[
        "submit",
        "--url",
        &url,
        "--key",
        buyer_key.to_str().unwrap(),
        refused.to_str().unwrap(),
    ]);

    let _ = served.stop();

    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let receipt: serde_json::Value = serde_json::from_str(&stdout(&ok)).unwrap();
    assert_eq!(receipt["replay"], false, "{receipt}");
    assert_eq!(
        receipt["tree_size"].as_u64().unwrap(),
        receipt["index"].as_u64().unwrap() + 1
    );
    assert!(
        receipt["checkpoint"]
            .as_str()
            .unwrap()
            .starts_with(oretrail::demo::ORIGIN)
    );

    assert_eq!(no.status.code(), Some(1), "{}", stderr(&no));
    let error: serde_json::Value = serde_json::from_str(&stdout(&no)).unwrap();
    assert_eq!(error["code"], "NOT_AUTHORIZED", "{error}");
    assert!(stderr(&no).contains("NOT_AUTHORIZED"), "{}", stderr(&no));

    // Nothing listens any more: a connection error exits 2.
    let gone = oretrail(&[
        "submit",
        "--url",
        &url,
        "--key",
        smelter_key.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(gone.status.code(), Some(2), "{}", stderr(&gone));
}
