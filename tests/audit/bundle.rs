//! Audit bundles: the demo ledger round-trips through a bundle and
//! verifies; one flipped byte anywhere fails naming the right entry (or
//! the header); a truncated bundle, a swapped log key and a dishonest
//! operator's re-signed log all fail clearly; and export works while the
//! ledger is open and appending.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use oretrail::audit::bundle::{self, BundleFailure, BundleHeader, VerifyOptions};
use oretrail::audit::{LogSnapshot, epcis};
use oretrail::codec;
use oretrail::crypto::{Digest, SecretKey};
use oretrail::demo::{self, DemoOptions};
use oretrail::ledger::{CheckpointRecord, KEYS_DIR, LOG_FILE, LOG_KEY_FILE, verify_log};
use oretrail::merkle::{Frontier, checkpoint::Checkpoint, leaf_hash};
use oretrail::model::{Entry, Event, EventBody, LotReceipt, Timestamp};
use oretrail::store::FrameKind;
use oretrail::store::log::{FrameReader, LOG_HEADER, encode_frame};

use crate::common;

fn exported_at() -> Timestamp {
    Timestamp::parse("2027-01-15T09:00:00Z").unwrap()
}

struct Demo {
    dir: tempfile::TempDir,
    entries: Vec<Entry>,
}

impl Demo {
    fn log(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }
    fn log_key(&self) -> SecretKey {
        SecretKey::read_file(&self.dir.path().join(KEYS_DIR).join(LOG_KEY_FILE)).unwrap()
    }
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        demo::build(dir.path(), DemoOptions::default()).expect("the demo builds");
        let bytes = std::fs::read(dir.path().join(LOG_FILE)).unwrap();
        let mut reader = FrameReader::new(&bytes[LOG_HEADER.len()..], bytes.len() as u64);
        let mut entries = Vec::new();
        while let Some(frame) = reader.next_frame().unwrap().unwrap() {
            if frame.kind == FrameKind::Entry {
                entries.push(codec::decode(&frame.payload).unwrap());
            }
        }
        Demo { dir, entries }
    })
}

/// Writes a log of `entries`, re-indexed and re-linked, with a checkpoint
/// signed by `log_key` after each batch, batch sizes taken in turn from
/// `batches`: what an operator holding the log key can write.
fn write_log(path: &Path, entries: &[Entry], log_key: &SecretKey, batches: &[usize]) {
    let mut out = LOG_HEADER.to_vec();
    let mut frontier = Frontier::new();
    let mut prev = Digest::from_bytes([0; 32]);
    let mut sizes = batches.iter().cycle();
    let mut left = *sizes.next().unwrap();
    for (i, entry) in entries.iter().enumerate() {
        let mut entry = entry.clone();
        entry.index = i as u64;
        entry.prev = prev;
        let bytes = codec::encode(&entry).unwrap();
        encode_frame(FrameKind::Entry, &bytes, &mut out);
        let leaf = leaf_hash(&bytes);
        frontier.push(leaf);
        prev = Digest::from_bytes(leaf);
        left -= 1;
        if left == 0 || i + 1 == entries.len() {
            let cp = Checkpoint::new(demo::ORIGIN, frontier.size(), frontier.root()).unwrap();
            let record = CheckpointRecord {
                size: frontier.size(),
                root: Digest::from_bytes(frontier.root()),
                signature: log_key.sign(cp.body().as_bytes()),
            };
            encode_frame(
                FrameKind::Checkpoint,
                &codec::encode(&record).unwrap(),
                &mut out,
            );
            left = *sizes.next().unwrap();
        }
    }
    std::fs::write(path, out).unwrap();
}

/// Exports the bundle of the log at `log` into `dir`; returns its path.
fn export(log: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("audit.bundle");
    bundle::export_file(log, &out, exported_at()).unwrap();
    out
}

fn verify(path: &Path) -> Result<bundle::BundleReport, BundleFailure> {
    bundle::verify_file(path, VerifyOptions::default())
}

#[test]
fn the_demo_ledger_round_trips_through_a_bundle() {
    let scratch = tempfile::tempdir().unwrap();
    let path = export(&demo().log(), scratch.path());
    let report = verify(&path).unwrap();
    let log = verify_log(&demo().log(), false).unwrap();
    assert_eq!(
        report.verified, log,
        "the bundle proves what the log proves"
    );
    assert_eq!(report.header.entries, demo().entries.len() as u64);
    assert_eq!(report.header.checkpoints, log.checkpoints);
    assert_eq!(report.header.origin, demo::ORIGIN);
    assert_eq!(report.header.exported_at, exported_at());
    // The frames are the log's, byte for byte, after the header.
    let bytes = std::fs::read(&path).unwrap();
    let log_bytes = std::fs::read(demo().log()).unwrap();
    assert!(bytes.ends_with(&log_bytes[LOG_HEADER.len()..]));
    assert!(bytes.starts_with(b"ORETRAIL-AUDIT\0\x01"));

    // Pinned to the right log key it verifies; to another it does not.
    let right = bundle::verify_file(
        &path,
        VerifyOptions {
            trusted_log_key: Some(&log.log_key),
            progress: false,
        },
    );
    assert!(right.is_ok(), "{right:?}");
    let other = SecretKey::from_seed(&[7; 32]).public();
    let other_line =
        oretrail::merkle::checkpoint::verifier_key(demo::ORIGIN, &other.verifying_key().unwrap())
            .unwrap();
    match bundle::verify_file(
        &path,
        VerifyOptions {
            trusted_log_key: Some(&other_line),
            progress: false,
        },
    ) {
        Err(BundleFailure::Header(reason)) => {
            assert!(reason.contains("not the trusted key"), "{reason}")
        }
        other => panic!("a bundle under another key must fail: {other:?}"),
    }
}

#[test]
fn the_cli_exports_and_verifies_with_a_one_line_verdict_and_exit_code() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("demo.bundle");
    let bin = env!("CARGO_BIN_EXE_oretrail");
    let export = Command::new(bin)
        .args(["audit", "export", "--data"])
        .arg(demo().dir.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    let printed = String::from_utf8(export.stdout).unwrap();
    assert!(printed.contains(&format!("exported {} entries", demo().entries.len())));

    let verify = |args: &[&str]| {
        let output = Command::new(bin)
            .args(["audit", "verify"])
            .arg(&out)
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
        )
    };
    let (code, text) = verify(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(text.starts_with(&format!("intact: {} entries", demo().entries.len())));
    let key_line = verify_log(&demo().log(), false).unwrap().log_key;
    let (code, text) = verify(&["--log-key", &key_line]);
    assert_eq!(code, Some(0), "{text}");

    // A byte of entry 3's frame flipped: exit 1, naming entry 3.
    let mut bytes = std::fs::read(&out).unwrap();
    let layout = Layout::of(&bytes);
    let third = layout.frames.iter().find(|f| f.names == 3).unwrap();
    bytes[third.start + 20] ^= 0x01;
    std::fs::write(&out, &bytes).unwrap();
    let (code, text) = verify(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(text.starts_with("FAILED at entry 3: "), "{text}");
}

/// Where each frame of a bundle lies and which entry it is reported as:
/// an entry frame as its own index, a checkpoint frame as the last entry
/// it covers.
struct Layout {
    /// The magic and the header frame.
    header_end: usize,
    frames: Vec<FrameSpan>,
}

struct FrameSpan {
    start: usize,
    end: usize,
    names: u64,
}

impl Layout {
    fn of(bytes: &[u8]) -> Layout {
        let header_len = u32::from_le_bytes(bytes[21..25].try_into().unwrap()) as usize;
        let header_end = 16 + 13 + header_len;
        let mut reader =
            FrameReader::starting_at(&bytes[header_end..], header_end as u64, bytes.len() as u64);
        let mut frames = Vec::new();
        let mut entries = 0u64;
        while let Some(frame) = reader.next_frame().unwrap().unwrap() {
            let names = match frame.kind {
                FrameKind::Entry => {
                    entries += 1;
                    entries - 1
                }
                FrameKind::Checkpoint => entries - 1,
            };
            frames.push(FrameSpan {
                start: frame.offset as usize,
                end: frame.end() as usize,
                names,
            });
        }
        Layout { header_end, frames }
    }

    /// What a change at byte `at` must be reported as.
    fn expected(&self, at: usize) -> Option<u64> {
        if at < self.header_end {
            return None;
        }
        let frame = self
            .frames
            .iter()
            .find(|f| f.start <= at && at < f.end)
            .expect("every byte after the header is in a frame");
        Some(frame.names)
    }
}

/// A bundle of the demo's first entries, re-batched so that checkpoints
/// cover one to seven entries: entries at the start, middle and end of a
/// batch, and checkpoints in between and at the very end.
fn small_bundle(dir: &Path) -> Vec<u8> {
    let log = dir.join(LOG_FILE);
    write_log(
        &log,
        &demo().entries[..60],
        &demo().log_key(),
        &[1, 4, 2, 7, 3],
    );
    verify_log(&log, false).expect("the re-batched log is sound");
    std::fs::read(export(&log, dir)).unwrap()
}

#[test]
fn one_flipped_byte_anywhere_fails_naming_the_entry_or_the_header() {
    let scratch = tempfile::tempdir().unwrap();
    let original = small_bundle(scratch.path());
    let layout = Layout::of(&original);
    assert!(layout.frames.len() > 70, "entries and checkpoints");
    let path = scratch.path().join("flipped.bundle");
    assert!(verify(&path_with(&path, &original)).is_ok());

    // Every byte of the magic and header frame, and in every frame its
    // magic, kind, length, checksum, first, middle and last payload bytes.
    let mut positions: Vec<usize> = (0..layout.header_end).collect();
    for f in &layout.frames {
        let payload = f.start + 13;
        positions.extend([
            f.start,
            f.start + 4,
            f.start + 6,
            f.start + 11,
            payload,
            (payload + f.end) / 2,
            f.end - 1,
        ]);
    }
    positions.push(original.len() - 1);
    let mut checked = 0;
    for at in positions {
        for mask in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[at] ^= mask;
            let outcome = verify(&path_with(&path, &bytes));
            match (layout.expected(at), outcome) {
                (None, Err(BundleFailure::Header(_))) => {}
                (Some(index), Err(BundleFailure::Entry(failure))) => assert_eq!(
                    failure.index, index,
                    "byte {at} ^ {mask:#04x}: {}",
                    failure.reason
                ),
                (want, got) => panic!("byte {at} ^ {mask:#04x}: expected {want:?}, got {got:?}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 900, "{checked} flips checked");
}

fn path_with(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

#[test]
fn a_truncated_bundle_fails_clearly() {
    let scratch = tempfile::tempdir().unwrap();
    let original = small_bundle(scratch.path());
    let layout = Layout::of(&original);
    let path = scratch.path().join("cut.bundle");
    let last = layout.frames.last().unwrap();
    let mut cuts: Vec<usize> = vec![0, 10, layout.header_end - 1, layout.header_end];
    for f in &layout.frames {
        cuts.extend([f.start + 5, f.end - 1, f.end]);
    }
    cuts.retain(|c| *c < original.len());
    for cut in cuts {
        let outcome = verify(&path_with(&path, &original[..cut]));
        match outcome {
            Err(BundleFailure::Header(reason)) => {
                assert!(cut < layout.header_end, "cut at {cut}: {reason}")
            }
            Err(BundleFailure::Entry(failure)) => {
                assert!(cut >= layout.header_end, "cut at {cut}: {failure}");
                assert!(
                    failure.reason.contains("cut short") || failure.reason.contains("truncated"),
                    "cut at {cut}: {failure}"
                );
                // The entry named is the one the cut reached, or the
                // first missing one when the cut fell between batches.
                let reached = layout
                    .frames
                    .iter()
                    .filter(|f| f.start < cut)
                    .map(|f| f.names)
                    .max()
                    .unwrap_or(0);
                assert!(
                    failure.index == reached || failure.index == reached + 1,
                    "cut at {cut}: {failure} (reached entry {reached})"
                );
            }
            Ok(_) => panic!("a bundle cut at byte {cut} of {} verified", last.end),
            Err(other) => panic!("cut at {cut}: {other}"),
        }
    }
}

#[test]
fn a_bundle_whose_log_key_was_swapped_fails_at_the_header() {
    let scratch = tempfile::tempdir().unwrap();
    let original = std::fs::read(export(&demo().log(), scratch.path())).unwrap();
    let layout = Layout::of(&original);
    let mut header: BundleHeader = codec::decode(&original[16 + 13..layout.header_end]).unwrap();
    header.log_key = SecretKey::from_seed(&[9; 32]).public();
    // A well-formed header frame (right checksum) naming another key.
    let payload = codec::encode(&header).unwrap();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[3]);
    crc.update(&(payload.len() as u32).to_le_bytes());
    crc.update(&payload);
    let mut bytes = original[..16].to_vec();
    bytes.extend_from_slice(b"OTLF");
    bytes.push(3);
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc.finalize().to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes.extend_from_slice(&original[layout.header_end..]);
    let path = path_with(&scratch.path().join("swapped.bundle"), &bytes);
    match verify(&path) {
        Err(BundleFailure::Header(reason)) => {
            assert!(reason.contains("log key"), "{reason}")
        }
        other => panic!("a swapped log key must fail at the header: {other:?}"),
    }
}

#[test]
fn a_dishonest_operators_resigned_log_fails_at_rule_replay_naming_the_entry() {
    // The operator holds the log key, so it can re-link, re-frame and
    // re-checkpoint a log with valid signatures. It slips in a receipt of
    // the first dispatched lot, signed (with a real participant key) by
    // the dispatcher itself rather than the named receiver: the ledger
    // refused it, the replay must too.
    let entries = &demo().entries;
    let (at, dispatch, dispatcher) = entries
        .iter()
        .find_map(|e| {
            let event: Event = codec::decode(&e.signed.event).unwrap();
            match event.body {
                EventBody::Dispatch(d) => Some((e.index as usize, d, event.signer)),
                _ => None,
            }
        })
        .unwrap();
    let key = SecretKey::read_file(
        &demo()
            .dir
            .path()
            .join(KEYS_DIR)
            .join("demo")
            .join(format!("{dispatcher}.key")),
    )
    .unwrap();
    let forged = Event {
        ledger: demo::ORIGIN.into(),
        signer: dispatcher.clone(),
        time: entries[at].record_time,
        nonce: u64::MAX / 2,
        body: EventBody::Receive(LotReceipt {
            lot: dispatch.lot.clone(),
            measured_wet: oretrail::model::Grams(1),
            accepted: true,
            note: String::new(),
            documents: vec![],
        }),
    };
    let mut rewritten = entries[..=at].to_vec();
    rewritten.push(Entry {
        index: 0,
        prev: Digest::from_bytes([0; 32]),
        record_time: entries[at].record_time,
        signed: oretrail::signer::sign_event(&forged, &key).unwrap(),
    });
    rewritten.extend_from_slice(&entries[at + 1..]);
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join(LOG_FILE);
    write_log(&log, &rewritten, &demo().log_key(), &[1]);
    let path = export(&log, scratch.path());
    match verify(&path) {
        Err(BundleFailure::Entry(failure)) => {
            assert_eq!(failure.index, at as u64 + 1, "{failure}");
            assert!(
                failure.reason.contains("the rules refuse the event"),
                "{failure}"
            );
            assert!(failure.reason.contains("NOT_RECEIVER"), "{failure}");
        }
        other => panic!("a rule-breaking entry must fail at replay: {other:?}"),
    }
}

#[test]
fn export_works_while_the_ledger_is_open_and_appending() {
    use oretrail::model::Role;
    let mut f = common::Fixture::new();
    for i in 0..3u32 {
        f.register(&format!("early{i}"), 700 + i, vec![Role::Custodian]);
    }
    let ledger = f.ledger.take().unwrap();
    let log = f.log_path();
    let scratch = tempfile::tempdir().unwrap();
    let mut operator = f.operator;
    let clock = f.clock.clone();
    let exported = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for i in 0..120u32 {
                let body = EventBody::RegisterParticipant(oretrail::model::Registration {
                    participant: common::pid(&format!("late{i}")),
                    legal_name: format!("Late {i} Ltd"),
                    country: oretrail::model::CountryCode::new("ZM").unwrap(),
                    kinds: vec![oretrail::model::ParticipantKind::Trader],
                    roles: vec![Role::Custodian],
                    keys: vec![common::key(800 + i).public()],
                });
                clock.advance(10);
                ledger
                    .append(operator.sign(clock.now(), body).unwrap())
                    .unwrap();
            }
        });
        let mut sizes = Vec::new();
        while !writer.is_finished() {
            let out = scratch.path().join(format!("b{}.bundle", sizes.len()));
            let (header, _) = bundle::export_file(&log, &out, exported_at()).unwrap();
            let report = verify(&out).unwrap();
            assert_eq!(report.verified.entries, header.entries);
            // The EPCIS export reads the same snapshot and verifies too.
            let snapshot = LogSnapshot::open(&log).unwrap();
            epcis::export(
                &snapshot,
                &epcis::Selection::default(),
                exported_at(),
                false,
            )
            .unwrap();
            sizes.push(header.entries);
        }
        writer.join().unwrap();
        sizes
    });
    assert!(!exported.is_empty());
    assert!(exported.windows(2).all(|w| w[0] <= w[1]), "{exported:?}");
    let last = export(&log, scratch.path());
    assert_eq!(verify(&last).unwrap().header.entries, ledger.size());
    ledger.close().unwrap();
}

/// A log read while its ledger appends: batches are written into the zeros
/// reserved after the last frame, so a reader can meet one half written.
/// That is the end of what it can take, never damage: snapshots taken
/// back to back while batches of registrations go in all open, each
/// holding at least what the ledger had committed when it was taken.
#[test]
fn snapshots_taken_while_batches_are_written_never_see_damage() {
    use oretrail::model::{CountryCode, ParticipantKind, Registration, Role};
    let mut f = common::Fixture::new();
    let ledger = f.ledger.take().unwrap();
    let log = f.log_path();
    let mut operator = f.operator;
    let clock = f.clock.clone();
    let events: Vec<_> = (0..2000u32)
        .map(|i| {
            clock.advance(1);
            let body = EventBody::RegisterParticipant(Registration {
                participant: common::pid(&format!("p{i}")),
                legal_name: format!("Participant {i} Ltd"),
                country: CountryCode::new("ZM").unwrap(),
                kinds: vec![ParticipantKind::Trader],
                roles: vec![Role::Custodian],
                keys: vec![common::key(3000 + i).public()],
            });
            operator.sign(clock.now(), body).unwrap()
        })
        .collect();
    let snapshots = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for chunk in events.chunks(20) {
                let pending: Vec<_> = chunk
                    .iter()
                    .map(|e| ledger.submit(e.clone()).unwrap())
                    .collect();
                for p in pending {
                    p.wait().unwrap();
                }
            }
        });
        let mut taken = 0u32;
        while !writer.is_finished() {
            let committed = ledger.size();
            let snapshot = LogSnapshot::open(&log)
                .unwrap_or_else(|e| panic!("snapshot {taken} of a log being appended: {e}"));
            assert!(
                snapshot.entries() >= committed,
                "{} < {committed}",
                snapshot.entries()
            );
            taken += 1;
        }
        writer.join().unwrap();
        taken
    });
    assert!(snapshots > 0);
    assert_eq!(LogSnapshot::open(&log).unwrap().entries(), ledger.size());
    ledger.close().unwrap();
}

/// The worked example of `schemas/ENCODING.md`, section 11.4: the magic
/// and header frame of a bundle of the example ledger of section 10.
#[test]
fn the_encoding_spec_shows_the_bytes_of_a_bundle_header() {
    let header = BundleHeader {
        origin: "example.org/oretrail".into(),
        log_key: SecretKey::from_seed(&[1; 32]).public(),
        entries: 2,
        checkpoints: 2,
        root: Digest::from_hex("c9865d5597e7e80c2bb4cb768abfba376046f26909dbcd67e880d1d4c63baec6")
            .unwrap(),
        exported_at: Timestamp::parse("2026-02-01T00:00:00Z").unwrap(),
    };
    assert_eq!(
        hex::encode(header.log_key.as_bytes()),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
        "the example log key of section 10.1"
    );
    let bytes = bundle::header_bytes(&header).unwrap();
    let want = hex::encode(&bytes);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/ENCODING.md"))
        .unwrap();
    let section = &doc[doc.find("## 11. Audit bundles").expect("section 11")..];
    let hex_only: String = section
        .split("```hex")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("a hex block in section 11")
        .split_whitespace()
        .collect();
    assert_eq!(
        hex_only,
        want,
        "schemas/ENCODING.md section 11.4 is out of date; the bytes are:\n{}",
        want.as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(bytes.len(), 29 + codec::encode(&header).unwrap().len());
}
