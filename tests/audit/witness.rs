//! The witness, end to end over real sockets: servers run in process on
//! 127.0.0.1 port 0, and the witness rounds (`cli::witness::Witness`) talk
//! to them with the ureq client, as `oretrail witness` does.
//!
//! - A consistent log is cosigned at first sight, again after it grows
//!   and again unchanged; the log serves the cosignature with its
//!   checkpoint, a buyer's `oretrail checkpoint verify` passes with the
//!   witness required and fails naming a witness that did not cosign.
//! - A rollback, a fork (a second ledger with the same origin and log key
//!   but other entries) and a larger but inconsistent tree are refused
//!   as alarms, the state file keeps its bytes, and `oretrail witness`
//!   exits 3 with the alarm; the log refuses the forked cosignature (409).
//! - The server accepts cosignatures only from trusted witnesses (403),
//!   only valid ones (400), only of sizes it has (404); untrusting a
//!   witness takes effect at once; a tampered cosignature fails a buyer's
//!   check.
//! - The witness state and the log's cosignatures survive restarts.
//! - `schemas/ENCODING.md` section 12.5 shows a worked cosignature, and
//!   `ORETRAIL_BLESS=1` rewrites it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use oretrail::api::{self, AppState};
use oretrail::cli::client::Client;
use oretrail::cli::witness::{RoundError, Witness};
use oretrail::crypto::SecretKey;
use oretrail::ledger::{KEYS_DIR, LOG_KEY_FILE, Ledger};
use oretrail::merkle::checkpoint::{self, Checkpoint, Note, NoteSignature, NoteVerifier};
use oretrail::merkle::cosignature::{
    CosignatureError, Cosigner, CosignerVerifier, cosigner_key_id, signed_message, verify_witnessed,
};
use oretrail::model::{CountryCode, EventBody, ParticipantKind, Registration, Role, Timestamp};
use oretrail::signer::Signer;
use oretrail::witness::{Refusal, Sight, TrustFile, WitnessFileError};
use serde_json::{Value, json};

use crate::common::{self, ORIGIN, TestClock, genesis, pid};

const W1: &str = "witness.example.org/w1";
const W2: &str = "witness.example.org/w2";

/// A witness key from a small number (not one of the ledger's keys).
fn cosigner(n: u32, name: &str) -> Cosigner {
    Cosigner::new(name, common::key(9000 + n).signing_key().clone()).unwrap()
}

/// The time the tests cosign at: now, so the server's clock-skew check
/// passes.
fn now() -> u64 {
    Timestamp::now().as_millis() / 1000
}

/// A ledger served on a loopback port by `api::serve` in a thread of its
/// own, with the operator's signer to grow it.
struct Log {
    dir: PathBuf,
    ledger: Arc<Ledger>,
    operator: Signer,
    clock: TestClock,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Participants registered by this test binary's logs: each gets its own
/// key (a key is never reused within a ledger).
static REGISTERED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Log {
    /// A ledger in `dir` with the given log key seed (same seed, same
    /// origin: a fork of the same log) and operator key, served.
    fn create(dir: &Path, log_seed: u8) -> Self {
        let clock = TestClock::new();
        let log_key = SecretKey::from_seed(&[log_seed; 32]);
        let operator_key = SecretKey::from_seed(&[0x77; 32]);
        let ledger = Ledger::create_with_keys(
            dir,
            genesis(),
            log_key,
            SecretKey::from_seed(&[0x77; 32]),
            clock.options(),
        )
        .unwrap();
        let operator = Signer::with_first_nonce(ORIGIN, pid("operator"), operator_key, 1);
        Self::serve(dir, Arc::new(ledger), operator, clock)
    }

    /// Opens the ledger in `dir` again and serves it.
    fn reopen(dir: &Path) -> Self {
        let clock = TestClock::new();
        // Record times never go back: start a day after the first run.
        clock.advance(86_400_000);
        let ledger = Ledger::open(dir, clock.options()).unwrap();
        let operator = Signer::with_first_nonce(
            ORIGIN,
            pid("operator"),
            SecretKey::from_seed(&[0x77; 32]),
            1,
        );
        Self::serve(dir, Arc::new(ledger), operator, clock)
    }

    fn serve(dir: &Path, ledger: Arc<Ledger>, operator: Signer, clock: TestClock) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = ledger.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let shutdown = async move {
                    let _ = stopped.await;
                };
                api::serve(listener, AppState::new(served), shutdown)
                    .await
                    .unwrap();
            });
            runtime.shutdown_timeout(Duration::from_secs(10));
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        Self {
            dir: dir.to_path_buf(),
            ledger,
            operator,
            clock,
            url: format!("http://{addr}"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Appends `n` registrations of participants named `prefix-<i>`.
    fn grow(&mut self, prefix: &str, n: u32) {
        for _ in 0..n {
            let number = REGISTERED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            self.clock.advance(1000);
            let k = common::key(100 + number);
            let body = EventBody::RegisterParticipant(Registration {
                participant: pid(&format!("{prefix}-{number}")),
                legal_name: format!("{prefix} {number} Ltd"),
                country: CountryCode::new("ZM").unwrap(),
                kinds: vec![ParticipantKind::Trader],
                roles: vec![Role::Custodian],
                keys: vec![k.public()],
            });
            let signed = self.operator.sign(self.clock.now(), body).unwrap();
            self.ledger.append(signed).unwrap();
        }
    }

    fn log_key(&self) -> NoteVerifier {
        checkpoint::parse_verifier_key(&self.ledger.log_key_line().unwrap()).unwrap()
    }

    fn log_secret(&self) -> SecretKey {
        SecretKey::read_file(&self.dir.join(KEYS_DIR).join(LOG_KEY_FILE)).unwrap()
    }

    fn trust(&self, witness: &Cosigner) {
        let key = witness.verifier().clone();
        TrustFile::of(&self.dir)
            .update(|t| Ok(t.trust(key)?))
            .unwrap();
    }

    fn client(&self) -> Client {
        Client::new(&self.url).unwrap()
    }

    fn get(&self, path: &str) -> (u16, String) {
        let answer = self.client().request("GET", path, None).unwrap();
        (answer.status, answer.text())
    }

    /// POSTs a cosigned note; the status and the JSON answer.
    fn submit(&self, note: &str) -> (u16, Value) {
        let body = json!({ "checkpoint": note }).to_string();
        let answer = self
            .client()
            .request("POST", "/v1/checkpoint/cosignatures", Some(body.as_bytes()))
            .unwrap();
        (answer.status, serde_json::from_slice(&answer.body).unwrap())
    }

    /// Stops the server and closes the ledger.
    fn stop(self) {
        let Log {
            ledger,
            stop,
            thread,
            ..
        } = self;
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(thread) = thread {
            thread.join().unwrap();
        }
        Arc::try_unwrap(ledger)
            .ok()
            .expect("the server let go of the ledger")
            .close()
            .unwrap();
    }
}

/// The checkpoint note a log serves, verified with the witnesses given.
fn served(log: &Log, witnesses: &[&Cosigner]) -> Result<Checkpoint, CosignatureError> {
    let (status, note) = log.get("/v1/checkpoint");
    assert_eq!(status, 200);
    let required: Vec<CosignerVerifier> = witnesses.iter().map(|w| w.verifier().clone()).collect();
    verify_witnessed(&note, &log.log_key(), &required).map(|w| w.checkpoint().clone())
}

fn witness(log: &Log, state: &Path, cosigner: Cosigner) -> Witness {
    Witness::new(&log.url, state, cosigner, Some(log.log_key()), false).unwrap()
}

fn oretrail(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oretrail"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_consistent_log_is_cosigned_and_served_with_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::create(&dir.path().join("log"), 1);
    log.grow("trader", 1);
    let w1 = cosigner(1, W1);
    log.trust(&w1);
    let state = dir.path().join("w1.state");
    let w = witness(&log, &state, cosigner(1, W1));

    let first = w.round(now()).unwrap();
    assert_eq!(first.advance.sight, Sight::First);
    assert_eq!(first.submitted, Ok(()));
    assert_eq!(first.advance.state.checkpoint().size(), 2);
    let cp = served(&log, &[&w1]).unwrap();
    assert_eq!((cp.size(), *cp.root()), (2, log.ledger.root()));

    log.grow("trader", 3);
    let grew = w.round(now()).unwrap();
    assert_eq!(grew.advance.sight, Sight::Grew { from: 2 });
    assert_eq!(grew.submitted, Ok(()));
    let cp = served(&log, &[&w1]).unwrap();
    assert_eq!((cp.size(), *cp.root()), (5, log.ledger.root()));
    // The cosignature of the older size stays available with its
    // checkpoint, exactly as the log signed it.
    let (status, older) = log.get("/v1/checkpoint/2");
    assert_eq!(status, 200, "{older}");
    let older = verify_witnessed(&older, &log.log_key(), &[w1.verifier().clone()]).unwrap();
    assert_eq!(older.checkpoint().size(), 2);
    assert_eq!(log.get("/v1/checkpoint/3").0, 404);
    assert_eq!(log.get("/v1/checkpoint/99").0, 404);

    let again = w.round(now()).unwrap();
    assert_eq!(again.advance.sight, Sight::Unchanged);
    assert!(again.advance.state.cosigned_at() >= grew.advance.state.cosigned_at());
    assert_eq!(again.submitted, Ok(()));

    // What a buyer runs: passes with w1 required, fails naming w2.
    let key_line = log.ledger.log_key_line().unwrap();
    let w1_line = w1.verifier().key_line();
    let ok = oretrail(&[
        "checkpoint",
        "verify",
        "--url",
        &log.url,
        "--log-key",
        &key_line,
        "--witness",
        &w1_line,
    ]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}");
    assert!(
        out.contains("size 5") && out.contains(&format!("cosigned by {W1}")),
        "{out}"
    );
    let w2_line = cosigner(2, W2).verifier().key_line();
    let missing = oretrail(&[
        "checkpoint",
        "verify",
        "--url",
        &log.url,
        "--log-key",
        &key_line,
        "--witness",
        &w1_line,
        "--witness",
        &w2_line,
    ]);
    let out = String::from_utf8_lossy(&missing.stdout);
    assert_eq!(missing.status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("not cosigned by {W2}")), "{out}");
    let older = oretrail(&[
        "checkpoint",
        "verify",
        "--url",
        &log.url,
        "--size",
        "2",
        "--log-key",
        &key_line,
        "--witness",
        &w1_line,
    ]);
    assert!(
        older.status.success(),
        "{}",
        String::from_utf8_lossy(&older.stdout)
    );
    log.stop();
}

#[test]
fn a_fork_and_a_rollback_are_refused_and_leave_the_state_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    // Two ledgers of the same log (same origin, same log key): one honest
    // history shown to the witness, one other shown to someone else.
    let mut honest = Log::create(&dir.path().join("honest"), 1);
    honest.grow("trader", 2);
    let mut forked = Log::create(&dir.path().join("forked"), 1);
    forked.grow("other", 1);
    assert_eq!(honest.log_key(), forked.log_key());
    let w1 = cosigner(1, W1);
    honest.trust(&w1);
    forked.trust(&w1);

    let state = dir.path().join("w1.state");
    let cosigned = witness(&honest, &state, cosigner(1, W1))
        .round(now())
        .unwrap();
    assert_eq!(cosigned.advance.state.checkpoint().size(), 3);
    let remembered = std::fs::read(&state).unwrap();

    let refuse = |log: &Log| -> Refusal {
        match witness(log, &state, cosigner(1, W1)).round(now()) {
            Err(RoundError::Refused(rejection)) => rejection.refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    // Smaller: a rollback.
    let refusal = refuse(&forked);
    assert!(
        matches!(
            refusal,
            Refusal::Rollback {
                known_size: 3,
                size: 2,
                ..
            }
        ),
        "{refusal}"
    );
    assert!(refusal.is_alarm());
    assert_eq!(std::fs::read(&state).unwrap(), remembered);
    // The same size with another root: a fork.
    forked.grow("other", 1);
    let refusal = refuse(&forked);
    assert!(
        matches!(refusal, Refusal::Fork { size: 3, .. }),
        "{refusal}"
    );
    assert!(refusal.to_string().starts_with("FORK"), "{refusal}");
    assert_eq!(std::fs::read(&state).unwrap(), remembered);
    // Larger, but its consistency proof does not start from our tree.
    forked.grow("other", 2);
    let refusal = refuse(&forked);
    assert!(
        matches!(
            refusal,
            Refusal::Inconsistent {
                known_size: 3,
                size: 5,
                ..
            }
        ),
        "{refusal}"
    );
    assert_eq!(std::fs::read(&state).unwrap(), remembered);

    // The binary says so loudly and exits 3.
    let key = dir.path().join("w1.key");
    common::key(9001).write_file(&key).unwrap();
    let key_line = forked.ledger.log_key_line().unwrap();
    let alarm = oretrail(&[
        "witness",
        "--url",
        &forked.url,
        "--state",
        state.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--name",
        W1,
        "--log-key",
        &key_line,
    ]);
    let stderr = String::from_utf8_lossy(&alarm.stderr);
    assert_eq!(alarm.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("WITNESS ALARM") && stderr.contains("FORK"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&state).unwrap(), remembered);

    // The honest log still grows and is cosigned from where we were.
    honest.grow("trader", 1);
    let grew = witness(&honest, &state, cosigner(1, W1))
        .round(now())
        .unwrap();
    assert_eq!(grew.advance.sight, Sight::Grew { from: 3 });

    // The forked ledger refuses a cosignature of the honest tree at a size
    // it also has: same key, other root.
    let honest_at_3 = {
        let (_, note) = honest.get("/v1/checkpoint/3");
        note
    };
    let (status, body) = forked.submit(&honest_at_3);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("CHECKPOINT_CONFLICT")),
        "{body}"
    );
    honest.stop();
    forked.stop();
}

/// The log-signed note of `cp`, signed with `log_key` under the origin.
fn log_note(cp: &Checkpoint, log_key: &SecretKey) -> Note {
    let mut note = Note::new(cp.body()).unwrap();
    note.sign(ORIGIN, log_key.signing_key()).unwrap();
    note
}

fn with_lines(note: &Note, lines: &[NoteSignature]) -> String {
    let mut note = note.clone();
    for line in lines {
        note.add_signature(line.clone()).unwrap();
    }
    note.to_string()
}

#[test]
fn the_log_takes_only_valid_cosignatures_of_trusted_witnesses() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::create(&dir.path().join("log"), 1);
    log.grow("trader", 2);
    let (w1, w2) = (cosigner(1, W1), cosigner(2, W2));
    log.trust(&w1);
    let cp = Checkpoint::new(ORIGIN, log.ledger.size(), log.ledger.root()).unwrap();
    let signed = log_note(&cp, &log.log_secret());
    let code = |answer: &(u16, Value)| (answer.0, answer.1["code"].as_str().unwrap().to_string());

    // An untrusted witness: 403.
    let answer = log.submit(&with_lines(&signed, &[w2.cosign(&cp, now()).unwrap()]));
    assert_eq!(
        code(&answer),
        (403, "UNTRUSTED_WITNESS".into()),
        "{}",
        answer.1
    );
    assert_eq!(answer.1["details"]["witness"], W2);
    // A trusted witness's line with a flipped bit: 400.
    let good = w1.cosign(&cp, now()).unwrap();
    let mut payload = good.signature().to_vec();
    payload[30] ^= 0x04;
    let bad = NoteSignature::new(W1, good.key_id(), payload).unwrap();
    let answer = log.submit(&with_lines(&signed, &[bad]));
    assert_eq!(
        code(&answer),
        (400, "BAD_COSIGNATURE".into()),
        "{}",
        answer.1
    );
    // Dated an hour ahead: 400.
    let answer = log.submit(&with_lines(
        &signed,
        &[w1.cosign(&cp, now() + 3600).unwrap()],
    ));
    assert_eq!(
        code(&answer),
        (400, "BAD_COSIGNATURE".into()),
        "{}",
        answer.1
    );
    // No cosignature at all: 400.
    assert_eq!(
        code(&log.submit(&signed.to_string())),
        (400, "BAD_COSIGNATURE".into())
    );
    // Not signed by this log's key: 400.
    let other = log_note(&cp, &SecretKey::from_seed(&[9; 32]));
    let answer = log.submit(&with_lines(&other, &[w1.cosign(&cp, now()).unwrap()]));
    assert_eq!(
        code(&answer),
        (400, "BAD_CHECKPOINT".into()),
        "{}",
        answer.1
    );
    // A size the log has not reached, signed with its key: 404.
    let ahead = Checkpoint::new(ORIGIN, 99, [7; 32]).unwrap();
    let answer = log.submit(&with_lines(
        &log_note(&ahead, &log.log_secret()),
        &[w1.cosign(&ahead, now()).unwrap()],
    ));
    assert_eq!(code(&answer), (404, "NOT_FOUND".into()), "{}", answer.1);
    // Not a signed note, not JSON: 400.
    assert_eq!(
        code(&log.submit("hello")),
        (400, "MALFORMED_REQUEST".into())
    );
    let answer = log
        .client()
        .request("POST", "/v1/checkpoint/cosignatures", Some(b"{"))
        .unwrap();
    assert_eq!(answer.status, 400);
    // Nothing was kept: the checkpoint is served as the log signed it.
    assert_eq!(log.get("/v1/checkpoint").1, signed.to_string());

    // A valid one is kept, served, and a repeat changes nothing.
    let time = now();
    let line = w1.cosign(&cp, time).unwrap();
    let answer = log.submit(&with_lines(&signed, std::slice::from_ref(&line)));
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["tree_size"], cp.size());
    assert_eq!(answer.1["cosignatures"][0]["witness"], W1);
    assert_eq!(answer.1["cosignatures"][0]["timestamp"], time);
    assert_eq!(answer.1["cosignatures"][0]["recorded"], "new");
    let again = log.submit(&with_lines(&signed, std::slice::from_ref(&line)));
    assert_eq!(again.1["cosignatures"][0]["recorded"], "kept");
    assert_eq!(served(&log, &[&w1]).unwrap(), cp);

    // A buyer holding a tampered copy: the cosignature fails.
    let (_, note) = log.get("/v1/checkpoint");
    let w1_b64 = note
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let mut bytes = BASE64.decode(&w1_b64).unwrap();
    bytes[50] ^= 0x01;
    let tampered = note.replace(&w1_b64, &BASE64.encode(bytes));
    assert_eq!(
        verify_witnessed(&tampered, &log.log_key(), &[w1.verifier().clone()]),
        Err(CosignatureError::InvalidCosignature { name: W1.into() })
    );

    // Untrusting takes effect at once, while serving.
    TrustFile::of(&log.dir)
        .update(|t| Ok(t.untrust(W1)?))
        .unwrap();
    assert!(matches!(
        served(&log, &[&w1]),
        Err(CosignatureError::MissingCosignatures { .. })
    ));
    let answer = log.submit(&with_lines(&signed, &[line]));
    assert_eq!(code(&answer), (403, "UNTRUSTED_WITNESS".into()));
    log.stop();
}

#[test]
fn the_witness_state_and_the_logs_cosignatures_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let mut log = Log::create(&data, 1);
    log.grow("trader", 2);
    let w1 = cosigner(1, W1);
    log.trust(&w1);
    let state = dir.path().join("w1.state");
    {
        // At first sight a log key is needed: given, or trusted on first
        // use from the server.
        let unpinned = Witness::new(&log.url, &state, cosigner(1, W1), None, false).unwrap();
        match unpinned.round(now()) {
            Err(RoundError::Failed(e)) => assert!(e.to_string().contains("--log-key"), "{e:#}"),
            other => panic!("expected a failure asking for the log key, got {other:?}"),
        }
        assert!(!state.exists());
        drop(unpinned);
        let w = Witness::new(&log.url, &state, cosigner(1, W1), None, true).unwrap();
        // One witness process per state file.
        let second = Witness::new(&log.url, &state, cosigner(1, W1), None, false).unwrap_err();
        assert!(
            matches!(
                second.downcast_ref::<WitnessFileError>(),
                Some(WitnessFileError::InUse { .. })
            ),
            "{second:#}"
        );
        let first = w.round(now()).unwrap();
        assert_eq!(first.advance.sight, Sight::First);
        assert_eq!(first.advance.state.log(), &log.log_key());
    }
    log.stop();

    let mut log = Log::reopen(&data);
    // The log kept the cosignature across its restart.
    assert_eq!(served(&log, &[&w1]).unwrap().size(), 3);
    // The witness remembers: no log key needed, and it is not a first
    // sight.
    let w = Witness::new(&log.url, &state, cosigner(1, W1), None, false).unwrap();
    let known = w.state().unwrap().unwrap();
    assert_eq!(known.checkpoint().size(), 3);
    assert_eq!(w.round(now()).unwrap().advance.sight, Sight::Unchanged);
    log.grow("late", 1);
    assert_eq!(
        w.round(now()).unwrap().advance.sight,
        Sight::Grew { from: 3 }
    );
    assert_eq!(served(&log, &[&w1]).unwrap().size(), 4);
    // Another witness key, or another log key, on the same state is
    // refused.
    drop(w);
    let other_log = NoteVerifier::new(
        ORIGIN,
        SecretKey::from_seed(&[2; 32]).signing_key().verifying_key(),
    )
    .unwrap();
    let repinned = Witness::new(&log.url, &state, cosigner(1, W1), Some(other_log), false).unwrap();
    assert!(matches!(
        repinned.round(now()),
        Err(RoundError::Refused(rejection))
            if matches!(rejection.refusal, Refusal::LogKeyChanged { .. })
    ));
    drop(repinned);
    let other = Witness::new(&log.url, &state, cosigner(2, W2), None, false).unwrap();
    assert!(matches!(
        other.round(now()),
        Err(RoundError::Refused(rejection))
            if matches!(rejection.refusal, Refusal::OtherWitness { .. })
    ));
    log.stop();
}

// ---------------------------------------------------------------------------
// The worked example of schemas/ENCODING.md section 12.5.
// ---------------------------------------------------------------------------

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/ENCODING.md");
const OPEN: &str = "<!-- witness-example -->\n";
const CLOSE: &str = "<!-- /witness-example -->";
const EXAMPLE_ORIGIN: &str = "example.org/oretrail";
/// The root of the example ledger's tree of size 2 (section 10.7).
const EXAMPLE_ROOT: &str = "c9865d5597e7e80c2bb4cb768abfba376046f26909dbcd67e880d1d4c63baec6";
/// 2026-02-01T00:00:00Z.
const EXAMPLE_TIME: u64 = 1_769_904_000;

fn hex_lines(bytes: &[u8]) -> String {
    hex::encode(bytes)
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The example, built by hand from the spec's rules, and checked against
/// the library.
fn cosignature_example() -> (String, String) {
    let log_key = SecretKey::from_seed(&[1; 32]);
    let witness_key = SecretKey::from_seed(&[5; 32]);
    let pk = witness_key.public();
    let root: [u8; 32] = hex::decode(EXAMPLE_ROOT).unwrap().try_into().unwrap();
    let cp = Checkpoint::new(EXAMPLE_ORIGIN, 2, root).unwrap();
    let mut note = Note::new(cp.body()).unwrap();
    note.sign(EXAMPLE_ORIGIN, log_key.signing_key()).unwrap();
    let log_signed = note.to_string();

    let mut id_input = W1.as_bytes().to_vec();
    id_input.extend_from_slice(&[0x0a, 0x04]);
    id_input.extend_from_slice(pk.as_bytes());
    let digest = oretrail::crypto::sha256(&id_input);
    let key_id = &digest.as_bytes()[..4];
    let mut typed = vec![0x04];
    typed.extend_from_slice(pk.as_bytes());
    let key_line = format!("{W1}+{}+{}", hex::encode(key_id), BASE64.encode(&typed));

    let message = format!("cosignature/v1\ntime {EXAMPLE_TIME}\n{}", cp.body());
    let signature = witness_key.sign(message.as_bytes());
    let mut payload = key_id.to_vec();
    payload.extend_from_slice(&EXAMPLE_TIME.to_be_bytes());
    payload.extend_from_slice(signature.as_bytes());
    let line = format!("\u{2014} {W1} {}", BASE64.encode(&payload));
    let cosigned = format!("{log_signed}{line}\n");

    // The library agrees on every part.
    let cosigner = Cosigner::new(W1, witness_key.signing_key().clone()).unwrap();
    assert_eq!(cosigner.verifier().key_id(), key_id);
    assert_eq!(cosigner_key_id(W1, pk.as_bytes()), key_id);
    assert_eq!(cosigner.verifier().key_line(), key_line);
    assert_eq!(signed_message(&cp.body(), EXAMPLE_TIME), message);
    assert_eq!(
        cosigner.cosign(&cp, EXAMPLE_TIME).unwrap().to_string(),
        line
    );
    let log_verifier =
        NoteVerifier::new(EXAMPLE_ORIGIN, log_key.signing_key().verifying_key()).unwrap();
    let witnessed = verify_witnessed(
        &cosigned,
        &log_verifier,
        &[CosignerVerifier::parse(&key_line).unwrap()],
    )
    .unwrap();
    assert_eq!(witnessed.cosignatures()[0].timestamp, EXAMPLE_TIME);

    let mut text = String::new();
    text.push_str(&format!(
        "The witness key of seed 32 bytes 0x05, named `{W1}`, cosigns the\n\
         checkpoint of section 10.8 (size 2) as of {EXAMPLE_TIME}\n\
         (2026-02-01T00:00:00Z).\n\n"
    ));
    text.push_str(&format!(
        "Key id input ({} bytes): the name, 0x0A, 0x04, the public key:\n\n```hex\n{}\n```\n\n",
        id_input.len(),
        hex_lines(&id_input)
    ));
    text.push_str(&format!(
        "- SHA-256 of those bytes: `{}`\n- key id (its first 4 bytes): `{}`\n- witness key line: `{key_line}`\n\n",
        digest.to_hex(),
        hex::encode(key_id)
    ));
    text.push_str(&format!(
        "The signed message ({} bytes):\n\n```text\n{message}```\n\n",
        message.len()
    ));
    text.push_str(&format!(
        "Decoded base64 of the cosignature line ({} bytes), field by field:\n\n```text\n\
         offset  bytes                             field\n\
         {:>6}  {:<32}  key id (4 bytes)\n\
         {:>6}  {:<32}  timestamp (u64, big-endian) = {EXAMPLE_TIME}\n",
        payload.len(),
        0,
        hex::encode(&payload[..4]),
        4,
        hex::encode(&payload[4..12]),
    ));
    for (i, chunk) in payload[12..].chunks(16).enumerate() {
        let what = if i == 0 {
            "Ed25519 signature (64 bytes) over the message"
        } else {
            ""
        };
        text.push_str(format!("{:>6}  {:<32}  {what}", 12 + 16 * i, hex::encode(chunk)).trim_end());
        text.push('\n');
    }
    text.push_str(
        "```\n\nThe cosigned note (the log's note of section 10.8 and the cosignature line):\n\n",
    );
    text.push_str(&format!("```text\n{cosigned}```\n"));
    (text, log_signed)
}

#[test]
fn the_encoding_spec_shows_a_worked_cosignature() {
    let (example, log_signed) = cosignature_example();
    let mut doc = std::fs::read_to_string(DOC).unwrap();
    // The log's note is the one section 10.8 shows.
    assert!(doc.contains(&log_signed), "section 10.8 shows another note");
    let start = doc
        .find(OPEN)
        .expect("ENCODING.md has the witness example marker")
        + OPEN.len();
    let end = start + doc[start..].find(CLOSE).expect("and its closing marker");
    if std::env::var("ORETRAIL_BLESS").as_deref() == Ok("1") {
        doc.replace_range(start..end, &example);
        std::fs::write(DOC, &doc).unwrap();
    } else {
        assert_eq!(
            doc[start..end],
            example,
            "schemas/ENCODING.md section 12.5 is out of date; regenerate it with \
             ORETRAIL_BLESS=1 cargo test --test audit witness::"
        );
    }
}
