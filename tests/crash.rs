//! Crash test, the way sled does it: a child process appends from several
//! threads and is killed with SIGKILL at a random moment; the parent then
//! reopens the ledger, verifies it, and checks that every entry the child
//! had acknowledged is there. The child reports each acknowledgement on a
//! file before moving on, so the parent knows exactly what was promised.
//!
//! This test binary has its own `main` (harness = false): run with no
//! arguments it is the parent; with `ORETRAIL_CRASH_CHILD` set it is the
//! child. Rounds default to 60; `ORETRAIL_CRASH_ROUNDS` overrides.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oretrail::crypto::{Digest, SecretKey};
use oretrail::ledger::{Ledger, OPERATOR_KEY_FILE, Options, verify_log};
use oretrail::model::{
    CountryCode, EventBody, ParticipantId, ParticipantKind, Registration, Role, Timestamp,
};
use oretrail::signer::Signer;

const CHILD_ENV: &str = "ORETRAIL_CRASH_CHILD";
const ROUND_ENV: &str = "ORETRAIL_CRASH_ROUND";
const THREADS: u32 = 4;
const ACKS: &str = "acks";

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round: u32 = std::env::var(ROUND_ENV)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        child(Path::new(&dir), round);
        return;
    }
    let rounds: u32 = std::env::var("ORETRAIL_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(60);
    match parent(rounds) {
        Ok(summary) => {
            println!("{summary}");
            println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
        }
        Err(e) => {
            eprintln!("crash recovery FAILED: {e}");
            println!(
                "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
            );
            std::process::exit(101);
        }
    }
}

/// A small deterministic generator for kill delays; the seed is printed so
/// a failing run can be repeated with `ORETRAIL_CRASH_SEED`.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn parent(rounds: u32) -> Result<String, String> {
    let seed = std::env::var("ORETRAIL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Timestamp::now().as_millis() | 1);
    println!("crash recovery: {rounds} rounds, seed {seed}");
    let mut rng = XorShift(seed);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    Ledger::create(dir.path(), common::genesis(), Options::default())
        .and_then(|l| l.close())
        .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut acknowledged_total = 0usize;
    let mut cut_rounds = 0u32;
    let started = Instant::now();
    for round in 0..rounds {
        let acks_path = dir.path().join(ACKS);
        let _ = std::fs::remove_file(&acks_path);
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning the child: {e}"))?;
        // Wait until the child has opened the ledger and started appending.
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
        stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim() != "appending" {
            let _ = child.kill();
            return Err(format!(
                "round {round}: child did not start (said {line:?})"
            ));
        }
        std::thread::sleep(Duration::from_millis(5 + rng.next() % 120));
        child
            .kill()
            .map_err(|e| format!("killing the child: {e}"))?;
        let status = child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            return Err(format!(
                "round {round}: the child finished before it was killed"
            ));
        }
        let acked = read_acks(&acks_path)?;
        acknowledged_total += acked.len();
        // Whatever verify says before recovery, damage may only lie after
        // every acknowledged entry (a torn tail), never inside them.
        let max_acked = acked.iter().map(|(_, i)| *i).max();
        if let Err(failure) = verify_log(&dir.path().join("log"), false) {
            cut_rounds += 1;
            if !failure.reason.contains("torn tail")
                || max_acked.is_some_and(|m| failure.index <= m)
            {
                return Err(format!(
                    "round {round}: before recovery, verify found {failure}"
                ));
            }
        }
        let ledger = Ledger::open(dir.path(), Options::default())
            .map_err(|e| format!("round {round}: reopening after the kill failed: {e}"))?;
        for (event_id, index) in &acked {
            match ledger.find_event(event_id) {
                Ok(Some(found)) if found == *index => {}
                other => {
                    return Err(format!(
                        "round {round}: acknowledged entry {index} ({event_id}) is missing after recovery: {other:?}"
                    ));
                }
            }
        }
        let size = ledger.size();
        ledger.close().map_err(|e| e.to_string())?;
        let report = verify_log(&dir.path().join("log"), false)
            .map_err(|f| format!("round {round}: verify after recovery failed: {f}"))?;
        if report.entries != size {
            return Err(format!(
                "round {round}: verify saw {} entries, the ledger {size}",
                report.entries
            ));
        }
    }
    let final_size = verify_log(&dir.path().join("log"), false)
        .map_err(|f| f.to_string())?
        .entries;
    Ok(format!(
        "crash recovery: {rounds} rounds in {:.1?}, {acknowledged_total} acknowledged entries all present, \
         {cut_rounds} rounds left a torn tail, {final_size} entries at the end",
        started.elapsed()
    ))
}

/// Acknowledgements the child recorded: event id and entry index. A line
/// the kill cut short was not fully reported and is not counted.
fn read_acks(path: &Path) -> Result<Vec<(Digest, u64)>, String> {
    let Ok(file) = File::open(path) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let Some((id, index)) = line.split_once(' ') else {
            continue;
        };
        let (Ok(id), Ok(index)) = (Digest::from_hex(id), index.parse::<u64>()) else {
            continue;
        };
        out.push((id, index));
    }
    Ok(out)
}

fn child(dir: &Path, round: u32) {
    let ledger = Arc::new(Ledger::open(dir, Options::default()).expect("child: open"));
    let operator_key = SecretKey::read_file(&dir.join("keys").join(OPERATOR_KEY_FILE))
        .expect("child: operator key");
    let acks = Arc::new(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(ACKS))
            .expect("child: acks file"),
    ));
    println!("appending");
    std::io::stdout().flush().expect("child: stdout");
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let ledger = ledger.clone();
            let acks = acks.clone();
            let seed = operator_key.signing_key().to_bytes();
            std::thread::spawn(move || {
                let first_nonce = (u64::from(round) << 40) | (u64::from(t) << 32);
                let mut operator = Signer::with_first_nonce(
                    common::ORIGIN,
                    ParticipantId::new("operator").unwrap(),
                    SecretKey::from_seed(&seed),
                    first_nonce,
                );
                for n in 0u32.. {
                    let mut key_seed = [0u8; 32];
                    key_seed[..4].copy_from_slice(&round.to_le_bytes());
                    key_seed[4..8].copy_from_slice(&t.to_le_bytes());
                    key_seed[8..12].copy_from_slice(&n.to_le_bytes());
                    key_seed[31] = 0xc7;
                    let body = EventBody::RegisterParticipant(Registration {
                        participant: ParticipantId::new(format!("r{round}-t{t}-n{n}")).unwrap(),
                        legal_name: "Crash Test Mining".into(),
                        country: CountryCode::new("CD").unwrap(),
                        kinds: vec![ParticipantKind::Mine],
                        roles: vec![Role::Producer],
                        keys: vec![SecretKey::from_seed(&key_seed).public()],
                    });
                    let signed = operator.sign(Timestamp::now(), body).expect("child: sign");
                    let id = signed.event_id();
                    let receipt = ledger.append(signed).expect("child: append");
                    // One write per line, so a kill leaves whole lines or a
                    // cut-short last line, which the parent ignores.
                    let line = format!("{} {}\n", id.to_hex(), receipt.index);
                    acks.lock()
                        .unwrap()
                        .write_all(line.as_bytes())
                        .expect("child: ack");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
