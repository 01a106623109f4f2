//! The binary, driven as a user would.

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
