//! Property tests: canonical encodings, random valid histories, and
//! single-byte damage anywhere in the log.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::{Fixture, key, pid};
use oretrail::codec::{self, CodecError};
use oretrail::crypto::{PublicKey, SecretKey};
use oretrail::ledger::{AppendError, Ledger, LedgerError, verify_log, verify_log_in_chunks};
use oretrail::model::{
    CountryCode, Event, EventBody, KeyAdded, KeyRevoked, KeyRotated, MAX_TIME_MS, ParticipantKind,
    Registration, Role, StateView, Timestamp,
};
use oretrail::signer::Signer;
use oretrail::store::FrameKind;
use oretrail::store::log::{FrameReader, LOG_HEADER};
use proptest::prelude::*;

fn arb_text() -> impl Strategy<Value = String> {
    "[ -~]{1,24}"
}

fn arb_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey::from_bytes)
}

fn arb_id() -> impl Strategy<Value = oretrail::model::ParticipantId> {
    "[a-z0-9][a-z0-9.-]{0,20}".prop_map(|s| pid(&s))
}

fn arb_body() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        (
            arb_id(),
            arb_text(),
            arb_key(),
            proptest::collection::vec(arb_key(), 1..4)
        )
            .prop_map(|(p, name, _, keys)| {
                EventBody::RegisterParticipant(Registration {
                    participant: p,
                    legal_name: name,
                    country: CountryCode::new("CL").unwrap(),
                    kinds: vec![ParticipantKind::Mine, ParticipantKind::Trader],
                    roles: vec![Role::Producer, Role::Custodian],
                    keys,
                })
            }),
        (arb_id(), arb_key())
            .prop_map(|(participant, key)| EventBody::AddKey(KeyAdded { participant, key })),
        (arb_id(), arb_key(), arb_key()).prop_map(|(participant, old, new)| EventBody::RotateKey(
            KeyRotated {
                participant,
                old,
                new
            }
        )),
        (arb_id(), arb_key(), arb_text()).prop_map(|(participant, key, reason)| {
            EventBody::RevokeKey(KeyRevoked {
                participant,
                key,
                reason,
            })
        }),
    ]
}

fn arb_event() -> impl Strategy<Value = Event> {
    (
        arb_text(),
        arb_id(),
        0..=MAX_TIME_MS,
        any::<u64>(),
        arb_body(),
    )
        .prop_map(|(ledger, signer, t, nonce, body)| Event {
            ledger,
            signer,
            time: Timestamp::from_millis(t),
            nonce,
            body,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every event round-trips, and decoding accepts only the exact bytes
    /// encoding produces: a trailing byte is refused, and any mutation that
    /// still decodes must be the canonical encoding of what it decodes to.
    #[test]
    fn encodings_are_canonical(event in arb_event(), at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let bytes = codec::encode(&event).unwrap();
        prop_assert_eq!(codec::decode::<Event>(&bytes).unwrap(), event.clone());
        let mut longer = bytes.clone();
        longer.push(0);
        let trailing = matches!(codec::decode::<Event>(&longer), Err(CodecError::TrailingBytes { trailing: 1, .. }));
        prop_assert!(trailing);
        let mut mutated = bytes.clone();
        let i = at.index(mutated.len());
        mutated[i] ^= xor;
        if let Ok(other) = codec::decode::<Event>(&mutated) {
            prop_assert_ne!(&other, &event);
            prop_assert_eq!(codec::encode(&other).unwrap(), mutated);
        }
        prop_assert!(codec::decode::<Event>(&bytes[..bytes.len() - 1]).is_err());
    }
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    Register,
    AddKey(usize),
    Rotate(usize),
    Revoke(usize),
    /// Sign with a key the model knows is no longer valid: must be refused.
    UseEndedKey(usize),
    Advance(u64),
    /// Several registrations submitted together, to exercise group commit.
    Burst(usize),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Register),
        2 => any::<usize>().prop_map(Op::AddKey),
        2 => any::<usize>().prop_map(Op::Rotate),
        1 => any::<usize>().prop_map(Op::Revoke),
        1 => any::<usize>().prop_map(Op::UseEndedKey),
        1 => (1u64..100_000).prop_map(Op::Advance),
        1 => (2usize..12).prop_map(Op::Burst),
    ]
}

/// The model: each participant's valid and ended keys.
struct ModelParticipant {
    id: String,
    valid: Vec<SecretKey>,
    ended: Vec<SecretKey>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any sequence of valid appends verifies; the model and the ledger
    /// agree on which keys are valid; reopening and rebuilding the index
    /// reproduce the same root and state.
    #[test]
    fn random_valid_histories_verify(ops in proptest::collection::vec(arb_op(), 1..40)) {
        let mut f = Fixture::new();
        let mut model: Vec<ModelParticipant> = Vec::new();
        let mut next_key = 1000u32;
        let mut fresh = || { next_key += 1; key(next_key) };
        let mut expected_size = f.ledger().size();
        for op in ops {
            let now = f.clock.now();
            match op {
                Op::Register => {
                    let k = fresh();
                    let id = format!("p{}", model.len());
                    let body = registration(&id, k.public());
                    let s = f.operator.sign(now, body).unwrap();
                    f.ledger().append(s).unwrap();
                    model.push(ModelParticipant { id, valid: vec![k], ended: vec![] });
                    expected_size += 1;
                }
                Op::Burst(n) => {
                    let mut pending = Vec::new();
                    for _ in 0..n {
                        let k = fresh();
                        let id = format!("p{}", model.len());
                        let s = f.operator.sign(now, registration(&id, k.public())).unwrap();
                        pending.push(f.ledger().submit(s).unwrap());
                        model.push(ModelParticipant { id, valid: vec![k], ended: vec![] });
                    }
                    let receipts: Vec<_> = pending.into_iter().map(|p| p.wait().unwrap()).collect();
                    let indexes: Vec<u64> = receipts.iter().map(|r| r.index).collect();
                    let want: Vec<u64> = (expected_size..expected_size + n as u64).collect();
                    prop_assert_eq!(indexes, want);
                    expected_size += n as u64;
                }
                Op::AddKey(i) if !model.is_empty() => {
                    let n = model.len();
                    let p = &mut model[i % n];
                    if p.valid.is_empty() { continue; }
                    let k = fresh();
                    let mut s = Signer::with_first_nonce(common::ORIGIN, pid(&p.id), p.valid[0].clone_key(), expected_size);
                    let body = EventBody::AddKey(KeyAdded { participant: pid(&p.id), key: k.public() });
                    f.ledger().append(s.sign(now, body).unwrap()).unwrap();
                    p.valid.push(k);
                    expected_size += 1;
                }
                Op::Rotate(i) if !model.is_empty() => {
                    let n = model.len();
                    let p = &mut model[i % n];
                    if p.valid.is_empty() { continue; }
                    let new = fresh();
                    let old = p.valid.remove(0);
                    let body = EventBody::RotateKey(KeyRotated { participant: pid(&p.id), old: old.public(), new: new.public() });
                    let mut s = Signer::with_first_nonce(common::ORIGIN, pid(&p.id), old.clone_key(), expected_size);
                    f.ledger().append(s.sign(now, body).unwrap()).unwrap();
                    p.ended.push(old);
                    p.valid.push(new);
                    expected_size += 1;
                }
                Op::Revoke(i) if !model.is_empty() => {
                    let n = model.len();
                    let p = &mut model[i % n];
                    if p.valid.is_empty() { continue; }
                    let gone = p.valid.remove(0);
                    let body = EventBody::RevokeKey(KeyRevoked { participant: pid(&p.id), key: gone.public(), reason: "rotation policy".into() });
                    let s = f.operator.sign(now, body).unwrap();
                    f.ledger().append(s).unwrap();
                    p.ended.push(gone);
                    expected_size += 1;
                }
                Op::UseEndedKey(i) if !model.is_empty() => {
                    let p = &model[i % model.len()];
                    let Some(ended) = p.ended.first() else { continue };
                    let mut s = Signer::with_first_nonce(common::ORIGIN, pid(&p.id), ended.clone_key(), expected_size);
                    let body = EventBody::AddKey(KeyAdded { participant: pid(&p.id), key: fresh().public() });
                    let refused = matches!(
                        f.ledger().append(s.sign(now, body).unwrap()),
                        Err(AppendError::Refused(r)) if r.code == oretrail::rules::RuleCode::KeyNotValid
                    );
                    prop_assert!(refused);
                }
                Op::Advance(ms) => f.clock.advance(ms),
                _ => {}
            }
            prop_assert_eq!(f.ledger().size(), expected_size);
        }
        // The model and the ledger agree on every key's validity.
        let now = f.clock.now();
        for p in &model {
            for k in &p.valid {
                let rec = f.ledger().state().key(&k.public()).unwrap().unwrap();
                prop_assert!(rec.valid_at(now));
            }
            for k in &p.ended {
                let rec = f.ledger().state().key(&k.public()).unwrap().unwrap();
                prop_assert!(!rec.valid_at(now));
            }
        }
        let report = verify_log(&f.log_path(), false).unwrap();
        prop_assert_eq!(report.entries, expected_size);
        let root = f.ledger().root();
        prop_assert_eq!(report.root, root);
        f.close();
        fs::remove_dir_all(f.path().join("index")).unwrap();
        f.reopen();
        prop_assert_eq!(f.ledger().root(), root);
        for p in &model {
            let stored = f.ledger().state().participant(&pid(&p.id)).unwrap().unwrap();
            prop_assert_eq!(stored.id.as_str(), p.id.as_str());
        }
    }
}

fn registration(id: &str, key: PublicKey) -> EventBody {
    EventBody::RegisterParticipant(Registration {
        participant: pid(id),
        legal_name: format!("{id} S.A."),
        country: CountryCode::new("PE").unwrap(),
        kinds: vec![ParticipantKind::Mine],
        roles: vec![Role::Producer],
        keys: vec![key],
    })
}

trait CloneKey {
    fn clone_key(&self) -> SecretKey;
}

impl CloneKey for SecretKey {
    fn clone_key(&self) -> SecretKey {
        SecretKey::from_seed(&self.signing_key().to_bytes())
    }
}

/// Which entry each byte of the log belongs to: entry frames map to their
/// entry, checkpoint frames to the last entry they cover, the header to 0.
fn byte_owners(log: &[u8]) -> Vec<u64> {
    let mut owners = vec![0u64; LOG_HEADER.len()];
    let mut reader = FrameReader::new(&log[LOG_HEADER.len()..], log.len() as u64);
    let mut entries = 0u64;
    while let Ok(Ok(Some(frame))) = reader.next_frame() {
        let owner = match frame.kind {
            FrameKind::Entry => {
                entries += 1;
                entries - 1
            }
            FrameKind::Checkpoint => entries - 1,
        };
        owners.resize(frame.end() as usize, owner);
    }
    assert_eq!(owners.len(), log.len(), "the whole log is frames");
    owners
}

/// A ledger of several batches, some with many entries.
fn build_small_ledger() -> Fixture {
    let mut f = Fixture::new();
    f.register("a", 1, vec![Role::Custodian]);
    let mut pending = Vec::new();
    for i in 0..4u32 {
        let s = f
            .operator
            .sign(
                f.clock.now(),
                registration(&format!("b{i}"), key(10 + i).public()),
            )
            .unwrap();
        pending.push(f.ledger().submit(s).unwrap());
    }
    for p in pending {
        p.wait().unwrap();
    }
    f.register("c", 2, vec![Role::Custodian]);
    f.register("d", 3, vec![Role::Custodian]);
    f.close();
    f
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Flipping any single byte of the log makes `verify` fail, naming the
/// entry whose frame holds the byte (for a checkpoint frame, the last entry
/// it covers). Every byte position is tried, with the log checked whole
/// and in chunks of two entries (the pipeline replays one chunk while it
/// prepares the next: a chunk's problems must wait for the earlier ones).
#[test]
fn flipping_any_byte_fails_verify_at_that_entry() {
    let f = build_small_ledger();
    let log = fs::read(f.log_path()).unwrap();
    let owners = byte_owners(&log);
    verify_log(&f.log_path(), false).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("log");
    for (pos, &owner) in owners.iter().enumerate() {
        for xor in [0x01u8, 0x80] {
            let mut bad = log.clone();
            bad[pos] ^= xor;
            fs::write(&path, &bad).unwrap();
            for chunk in [8192, 2] {
                match verify_log_in_chunks(&path, false, chunk) {
                    Ok(_) => panic!("flipping byte {pos} (xor {xor:#x}) went unnoticed"),
                    Err(failure) => assert_eq!(
                        failure.index, owner,
                        "byte {pos} belongs to entry {owner}, verify in chunks of {chunk} \
                         named {failure}"
                    ),
                }
            }
        }
    }
}

/// Opening a ledger whose log has a flipped byte is refused, never
/// silently cut: every flipped byte here is inside acknowledged batches.
#[test]
fn opening_a_log_with_any_flipped_byte_is_refused() {
    let f = build_small_ledger();
    let log = fs::read(f.log_path()).unwrap();
    let owners = byte_owners(&log);
    for pos in (0..log.len()).step_by(11).chain([log.len() - 1]) {
        let scratch = tempfile::tempdir().unwrap();
        copy_dir(f.path(), scratch.path());
        let mut bad = log.clone();
        bad[pos] ^= 0x20;
        fs::write(scratch.path().join("log"), &bad).unwrap();
        match Ledger::open(scratch.path(), f.clock.options()) {
            Ok(_) => panic!("a ledger with byte {pos} flipped was opened"),
            Err(LedgerError::Integrity { index, .. }) => {
                assert_eq!(
                    index, owners[pos],
                    "byte {pos} belongs to entry {}",
                    owners[pos]
                );
            }
            Err(other) => panic!("byte {pos}: expected an integrity error, got {other}"),
        }
    }
}

/// An unacknowledged, incomplete final batch is cut on open (its bytes kept
/// beside the log), and what was acknowledged stays intact.
#[test]
fn a_torn_tail_is_cut_on_open_and_kept_aside() {
    let mut f = build_small_ledger();
    let log = fs::read(f.log_path()).unwrap();
    let size_before = verify_log(&f.log_path(), false).unwrap().entries;
    // Keep the folder as it is now: the state a crash would leave, since
    // the index only learns of a batch after its sync.
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(f.path(), crashed.path());
    // Append two more entries to learn the exact bytes the next batch has.
    f.reopen();
    f.register("e", 4, vec![Role::Custodian]);
    f.register("g", 5, vec![Role::Custodian]);
    f.close();
    let longer = fs::read(f.log_path()).unwrap();
    let mut reader = FrameReader::new(&longer[log.len()..], longer.len() as u64);
    let first = reader.next_frame().unwrap().unwrap().unwrap();
    assert_eq!(first.kind, FrameKind::Entry);
    // A crash between write and sync: the batch's entry frame made it, half
    // of what followed did not, and its checkpoint never did.
    let cut = log.len() + (first.end() as usize - LOG_HEADER.len()) + 20;
    let torn = &longer[..cut];
    fs::write(crashed.path().join("log"), torn).unwrap();
    let failure = verify_log(&crashed.path().join("log"), false).unwrap_err();
    assert!(failure.reason.contains("torn tail"), "{failure}");
    assert_eq!(failure.index, size_before, "{failure}");
    let ledger = Ledger::open(crashed.path(), f.clock.options()).unwrap();
    assert_eq!(ledger.size(), size_before);
    ledger.close().unwrap();
    assert_eq!(fs::read(crashed.path().join("log")).unwrap(), log);
    let kept: BTreeMap<_, _> = fs::read_dir(crashed.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("log.torn-at-"))
        .map(|e| (e.file_name(), fs::read(e.path()).unwrap()))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept.values().next().unwrap().as_slice(), &torn[log.len()..]);
    verify_log(&crashed.path().join("log"), false).unwrap();
}

/// Where the frames of `log` end: a running ledger's log has reserved
/// zeros after them.
fn data_end(log: &[u8]) -> usize {
    let mut reader =
        FrameReader::new(&log[LOG_HEADER.len()..], log.len() as u64).with_reserved_tail();
    while let Some(_frame) = reader.next_frame().unwrap().unwrap() {}
    reader.offset() as usize
}

/// The torn tails opening has set aside in `dir`.
fn kept_tails(dir: &Path) -> Vec<Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("log.torn-at-"))
        .map(|e| fs::read(e.path()).unwrap())
        .collect()
}

/// While the ledger runs, its log ends with zeros the writer reserved (so
/// that most syncs leave the file's length alone), and a crash leaves them
/// there. `verify` reads them as the log's end; opening keeps them and
/// sets nothing aside; closing gives them back. A stray byte in them, or a
/// batch torn inside them, is a torn tail: cut on open and kept aside.
#[test]
fn a_crash_leaves_reserved_zeros_that_read_as_the_end_of_the_log() {
    let mut f = build_small_ledger();
    let closed = fs::read(f.log_path()).unwrap();
    assert_eq!(data_end(&closed), closed.len(), "a closed log has no zeros");
    let acked = verify_log(&f.log_path(), false).unwrap().entries;
    // The folder as a crash just before the next batch would leave it.
    let before = tempfile::tempdir().unwrap();
    copy_dir(f.path(), before.path());
    f.reopen();
    f.register("e", 4, vec![Role::Custodian]);
    let running = fs::read(f.log_path()).unwrap();
    let end = data_end(&running);
    assert!(running.len() > end, "the running log has reserved space");
    assert!(running[end..].iter().all(|&b| b == 0));
    let crash_with = |log: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(before.path(), dir.path());
        fs::write(dir.path().join("log"), log).unwrap();
        dir
    };

    // As the crash left it.
    let dir = crash_with(&running);
    let log = dir.path().join("log");
    assert_eq!(verify_log(&log, false).unwrap().entries, acked + 1);
    let ledger = Ledger::open(dir.path(), f.clock.options()).unwrap();
    assert_eq!(ledger.size(), acked + 1);
    assert_eq!(fs::metadata(&log).unwrap().len(), running.len() as u64);
    ledger.close().unwrap();
    assert_eq!(fs::read(&log).unwrap(), &running[..end]);
    assert!(kept_tails(dir.path()).is_empty());

    // A stray byte in the zeros.
    let mut stray = running.clone();
    stray[end + 5000] = 0x5a;
    let dir = crash_with(&stray);
    let log = dir.path().join("log");
    let failure = verify_log(&log, false).unwrap_err();
    assert!(failure.reason.contains("torn tail"), "{failure}");
    assert_eq!(failure.index, acked + 1, "{failure}");
    let ledger = Ledger::open(dir.path(), f.clock.options()).unwrap();
    assert_eq!(ledger.size(), acked + 1);
    ledger.close().unwrap();
    assert_eq!(fs::read(&log).unwrap(), &running[..end]);
    assert_eq!(kept_tails(dir.path()), vec![stray[end..].to_vec()]);

    // The batch torn inside them: only its first 20 bytes made it.
    let mut torn = running.clone();
    torn[closed.len() + 20..end].fill(0);
    let dir = crash_with(&torn);
    let log = dir.path().join("log");
    let failure = verify_log(&log, false).unwrap_err();
    assert!(failure.reason.contains("torn tail"), "{failure}");
    assert_eq!(failure.index, acked, "{failure}");
    let ledger = Ledger::open(dir.path(), f.clock.options()).unwrap();
    assert_eq!(ledger.size(), acked);
    ledger.close().unwrap();
    assert_eq!(fs::read(&log).unwrap(), closed);
    assert_eq!(kept_tails(dir.path()), vec![torn[closed.len()..].to_vec()]);
    verify_log(&log, false).unwrap();
}
