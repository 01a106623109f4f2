//! The append pipeline, key rules, replays, proofs, recovery and rebuild.

use crate::common;

use common::ORIGIN;
use common::{Fixture, key, pid};
use oretrail::codec;
use oretrail::crypto::Signature;
use oretrail::ledger::{AppendError, Ledger, LedgerError, verify_log, verify_log_in_chunks};
use oretrail::merkle::{self, leaf_hash};
use oretrail::model::SignedEvent;
use oretrail::model::{EventBody, KeyAdded, KeyRevoked, KeyRotated, Registration, Role, StateView};
use oretrail::rules::RuleCode;
use oretrail::signer::Signer;

fn refused_code(result: Result<oretrail::ledger::Receipt, AppendError>) -> RuleCode {
    match result {
        Err(AppendError::Refused(r)) => r.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// `signer` (participant `participant`) adding key number `n`.
fn add_key(signer: &mut Signer, f: &Fixture, participant: &str, n: u32) -> SignedEvent {
    signer
        .sign(
            f.clock.now(),
            EventBody::AddKey(KeyAdded {
                participant: pid(participant),
                key: key(n).public(),
            }),
        )
        .unwrap()
}

#[test]
fn genesis_names_the_log_key_and_operator() {
    let f = Fixture::new();
    let l = f.ledger();
    assert_eq!(l.size(), 1);
    let info = l.info().unwrap();
    assert_eq!(info.origin, common::ORIGIN);
    assert_eq!(info.operator, pid("operator"));
    let (entry, bytes) = l.entry(0).unwrap();
    assert_eq!(entry.prev.as_bytes(), &[0u8; 32]);
    assert_eq!(l.root(), leaf_hash(&bytes));
    let line = l.log_key_line().unwrap();
    assert!(line.starts_with(&format!("{}+", common::ORIGIN)), "{line}");
}

#[test]
fn appends_link_entries_and_receipts_carry_a_checkpoint() {
    let mut f = Fixture::new();
    let mut a = f.register("trader.a", 1, vec![Role::Custodian]);
    let k2 = key(2);
    let body = EventBody::AddKey(KeyAdded {
        participant: pid("trader.a"),
        key: k2.public(),
    });
    let receipt = f
        .ledger()
        .append(a.sign(f.clock.now(), body).unwrap())
        .unwrap();
    assert_eq!(receipt.index, 2);
    assert_eq!(receipt.tree_size, 3);
    assert!(!receipt.replay);
    let (e1, b1) = f.ledger().entry(1).unwrap();
    let (e2, b2) = f.ledger().entry(2).unwrap();
    assert_eq!(e2.prev.as_bytes(), &leaf_hash(&b1));
    assert_eq!(receipt.entry_hash.as_bytes(), &leaf_hash(&b2));
    assert!(e1.record_time <= e2.record_time);
    // The receipt's checkpoint opens under the log key and covers the entry.
    let verifier =
        merkle::checkpoint::parse_verifier_key(&f.ledger().log_key_line().unwrap()).unwrap();
    let cp = merkle::checkpoint::open(&receipt.checkpoint, &verifier).unwrap();
    assert_eq!(cp.size(), 3);
    let proof = f.ledger().inclusion_proof(2, 3).unwrap();
    merkle::verify_inclusion(&leaf_hash(&b2), 2, 3, &proof, cp.root()).unwrap();
}

#[test]
fn a_replayed_event_returns_the_original_entry() {
    let mut f = Fixture::new();
    let mut a = f.register("trader.a", 1, vec![Role::Custodian]);
    let signed = add_key(&mut a, &f, "trader.a", 2);
    let first = f.ledger().append(signed.clone()).unwrap();
    let again = f.ledger().append(signed.clone()).unwrap();
    assert!(again.replay);
    assert_eq!(
        (again.index, again.entry_hash),
        (first.index, first.entry_hash)
    );
    assert_eq!(f.ledger().size(), 3);
    // Also within one batch: submit both before either commits.
    let signed = add_key(&mut a, &f, "trader.a", 3);
    let p1 = f.ledger().submit(signed.clone()).unwrap();
    let p2 = f.ledger().submit(signed).unwrap();
    let (r1, r2) = (p1.wait().unwrap(), p2.wait().unwrap());
    assert_eq!(r1.index, r2.index);
    assert!(
        !r1.replay && r2.replay,
        "the first is the original, the second its replay"
    );
    assert_eq!(f.ledger().size(), 4);
    // And after reopening, from the index.
    f.reopen();
    let again = f.ledger().append(add_key(&mut a, &f, "trader.a", 2));
    assert_eq!(refused_code(again), RuleCode::KeyInUse);
}

#[test]
fn replays_submitted_while_the_original_is_in_flight_get_its_receipt() {
    let mut f = Fixture::new();
    let mut a = f.register("trader.a", 1, vec![Role::Custodian]);
    let start = f.ledger().size();
    let events: Vec<_> = (0..60u32)
        .map(|i| add_key(&mut a, &f, "trader.a", 100 + i))
        .collect();
    // Each event twice in a row, without waiting: the second copy meets
    // its original in the same batch, in a batch still being committed,
    // or in the index, as timing has it.
    let pairs: Vec<_> = events
        .iter()
        .map(|e| {
            (
                f.ledger().submit(e.clone()).unwrap(),
                f.ledger().submit(e.clone()).unwrap(),
            )
        })
        .collect();
    for (first, second) in pairs {
        let (first, second) = (first.wait().unwrap(), second.wait().unwrap());
        assert!(!first.replay && second.replay);
        assert_eq!(
            (second.index, second.entry_hash),
            (first.index, first.entry_hash)
        );
        assert!(second.tree_size > second.index);
    }
    assert_eq!(f.ledger().size(), start + 60);
    verify_log(&f.log_path(), false).unwrap();
}

#[test]
fn keys_are_valid_only_inside_their_window() {
    let mut f = Fixture::new();
    let mut a = f.register("trader.a", 1, vec![Role::Custodian]);
    let old = key(1);
    let new = key(2);
    f.clock.advance(1000);
    let rotate = EventBody::RotateKey(KeyRotated {
        participant: pid("trader.a"),
        old: old.public(),
        new: new.public(),
    });
    f.ledger()
        .append(a.sign(f.clock.now(), rotate).unwrap())
        .unwrap();
    f.clock.advance(1000);
    // The old key is no longer valid.
    let body = EventBody::AddKey(KeyAdded {
        participant: pid("trader.a"),
        key: key(3).public(),
    });
    let size = f.ledger().size();
    assert_eq!(
        refused_code(
            f.ledger()
                .append(a.sign(f.clock.now(), body.clone()).unwrap())
        ),
        RuleCode::KeyNotValid
    );
    assert_eq!(f.ledger().size(), size, "a refusal changes nothing");
    // The new one is.
    a.set_key(new);
    f.ledger()
        .append(a.sign(f.clock.now(), body).unwrap())
        .unwrap();
    // Revoke key 3 (by the operator); then it cannot sign.
    let revoke = EventBody::RevokeKey(KeyRevoked {
        participant: pid("trader.a"),
        key: key(3).public(),
        reason: "lost laptop".into(),
    });
    {
        let s = f.operator.sign(f.clock.now(), revoke).unwrap();
        f.ledger().append(s)
    }
    .unwrap();
    a.set_key(key(3));
    let body = EventBody::AddKey(KeyAdded {
        participant: pid("trader.a"),
        key: key(4).public(),
    });
    assert_eq!(
        refused_code(f.ledger().append(a.sign(f.clock.now(), body).unwrap())),
        RuleCode::KeyNotValid
    );
    let rec = f.ledger().state().key(&key(3).public()).unwrap().unwrap();
    assert!(rec.valid_until.is_some());
}

#[test]
fn key_and_registration_rules_refuse_with_stable_codes() {
    let mut f = Fixture::new();
    let mut a = f.register("trader.a", 1, vec![Role::Custodian]);
    let now = f.clock.now();
    let reg = |id: &str, k: oretrail::crypto::PublicKey| {
        EventBody::RegisterParticipant(Registration {
            participant: pid(id),
            legal_name: "X".into(),
            country: oretrail::model::CountryCode::new("PE").unwrap(),
            kinds: vec![oretrail::model::ParticipantKind::Mine],
            roles: vec![Role::Producer],
            keys: vec![k],
        })
    };
    // Only operators register.
    assert_eq!(
        refused_code(
            f.ledger()
                .append(a.sign(now, reg("mine.x", key(9).public())).unwrap())
        ),
        RuleCode::NotAuthorized
    );
    // A weak key is refused at registration.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = oretrail::crypto::PublicKey::from_bytes(identity);
    assert_eq!(
        refused_code({
            let s = f.operator.sign(now, reg("mine.x", weak)).unwrap();
            f.ledger().append(s)
        }),
        RuleCode::KeyWeak
    );
    // A key already on the ledger is refused.
    assert_eq!(
        refused_code({
            let s = f
                .operator
                .sign(now, reg("mine.x", key(1).public()))
                .unwrap();
            f.ledger().append(s)
        }),
        RuleCode::KeyInUse
    );
    // A participant cannot be registered twice.
    assert_eq!(
        refused_code({
            let s = f
                .operator
                .sign(now, reg("trader.a", key(8).public()))
                .unwrap();
            f.ledger().append(s)
        }),
        RuleCode::ParticipantExists
    );
    // An unregistered key cannot sign.
    let mut stranger =
        oretrail::signer::Signer::with_first_nonce(common::ORIGIN, pid("trader.a"), key(77), 1);
    assert_eq!(
        refused_code(
            f.ledger()
                .append(stranger.sign(now, reg("mine.y", key(10).public())).unwrap())
        ),
        RuleCode::KeyUnknown
    );
    // A key used for another participant's name.
    let mut impostor =
        oretrail::signer::Signer::with_first_nonce(common::ORIGIN, pid("operator"), key(1), 1);
    assert_eq!(
        refused_code(
            f.ledger()
                .append(impostor.sign(now, reg("mine.y", key(10).public())).unwrap())
        ),
        RuleCode::KeyNotSigners
    );
    // Events for another ledger and from the future.
    let mut other =
        oretrail::signer::Signer::with_first_nonce("other.example/log", pid("trader.a"), key(1), 1);
    let body = EventBody::AddKey(KeyAdded {
        participant: pid("trader.a"),
        key: key(11).public(),
    });
    assert_eq!(
        refused_code(f.ledger().append(other.sign(now, body.clone()).unwrap())),
        RuleCode::WrongLedger
    );
    let future = now.saturating_add_millis(oretrail::rules::MAX_CLOCK_SKEW_MS + 1);
    assert_eq!(
        refused_code(f.ledger().append(a.sign(future, body).unwrap())),
        RuleCode::EventTimeInFuture
    );
    // The operator's last key cannot be revoked.
    let op_key = f.operator.key().public();
    let revoke = EventBody::RevokeKey(KeyRevoked {
        participant: pid("operator"),
        key: op_key,
        reason: "test".into(),
    });
    assert_eq!(
        refused_code({
            let s = f.operator.sign(now, revoke).unwrap();
            f.ledger().append(s)
        }),
        RuleCode::LastOperatorKey
    );
    assert_eq!(f.ledger().size(), 2, "no refusal added an entry");
    verify_log(&f.log_path(), false).unwrap();
}

#[test]
fn bad_signatures_and_non_canonical_bytes_are_refused_before_sequencing() {
    let mut f = Fixture::new();
    let mut a = f.register("trader.a", 1, vec![Role::Custodian]);
    let body = EventBody::AddKey(KeyAdded {
        participant: pid("trader.a"),
        key: key(2).public(),
    });
    let mut signed = a.sign(f.clock.now(), body).unwrap();
    let mut bad = signed.clone();
    let mut sig = *bad.signature.as_bytes();
    sig[3] ^= 1;
    bad.signature = Signature::from_bytes(sig);
    assert!(matches!(
        f.ledger().append(bad),
        Err(AppendError::BadSignature(_))
    ));
    signed.event.push(0);
    signed.signature = a.key().sign(&signed.event);
    match f.ledger().append(signed) {
        Err(AppendError::Malformed(codec::CodecError::TrailingBytes { trailing: 1, .. })) => {}
        other => panic!("expected trailing-bytes refusal, got {other:?}"),
    }
    assert_eq!(f.ledger().size(), 2);
}

#[test]
fn state_and_root_survive_reopen_and_index_rebuild() {
    let mut f = Fixture::new();
    for i in 0..20u32 {
        f.register(&format!("p{i}"), 100 + i, vec![Role::Custodian]);
    }
    let root = f.ledger().root();
    let size = f.ledger().size();
    let cp = f.ledger().checkpoint();
    f.reopen();
    assert_eq!((f.ledger().root(), f.ledger().size()), (root, size));
    // The index knows the state keys it holds from sled again, so what
    // was written before the close is found, not taken for absent.
    for i in [0, 7, 19] {
        let p = f.ledger().state().participant(&pid(&format!("p{i}")));
        assert!(p.unwrap().is_some(), "p{i} after reopening");
    }
    f.close();
    std::fs::remove_dir_all(f.path().join("index")).unwrap();
    f.reopen();
    assert_eq!((f.ledger().root(), f.ledger().size()), (root, size));
    assert_eq!(f.ledger().checkpoint(), cp);
    let p7 = f.ledger().state().participant(&pid("p7")).unwrap().unwrap();
    assert_eq!(p7.keys, vec![key(107).public()]);
    assert_eq!(f.ledger().root_at(5).unwrap(), {
        let leaves: Vec<_> = (0..5)
            .map(|i| leaf_hash(&f.ledger().entry(i).unwrap().1))
            .collect();
        merkle::MemoryNodes::from_leaves(leaves).root()
    });
    // Appends continue where they left off.
    f.register("after", 999, vec![Role::Custodian]);
    assert_eq!(f.ledger().size(), size + 1);
    verify_log(&f.log_path(), false).unwrap();
}

/// Whether an index was moved aside as `index.broken-*`.
fn old_index_kept(f: &Fixture) -> bool {
    std::fs::read_dir(f.path())
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("index.broken-"))
}

/// The index's sled database of a closed ledger, opened directly. sled's
/// own threads may hold its lock for a moment after the close.
fn open_sled_when_free(f: &Fixture) -> sled::Db {
    let path = f.path().join("index").join("sled");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(&path) {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("sled stays locked: {e}"),
        }
    }
}

fn knows_p1(f: &Fixture) -> bool {
    f.ledger()
        .state()
        .participant(&pid("p1"))
        .unwrap()
        .is_some()
}

/// A closed ledger holding one participant, `p1`, and its root.
fn closed_with_one_participant() -> (Fixture, merkle::Hash) {
    let mut f = Fixture::new();
    f.register("p1", 1, vec![Role::Custodian]);
    let root = f.ledger().root();
    f.close();
    (f, root)
}

#[test]
fn an_unreadable_index_is_moved_aside_and_rebuilt() {
    let (mut f, root) = closed_with_one_participant();
    // Replace the index's sled database with garbage files.
    let sled_dir = f.path().join("index").join("sled");
    std::fs::remove_dir_all(&sled_dir).unwrap();
    std::fs::create_dir(&sled_dir).unwrap();
    std::fs::write(sled_dir.join("conf"), b"not a sled config").unwrap();
    std::fs::write(sled_dir.join("db"), vec![0xA5u8; 4096]).unwrap();
    f.reopen();
    assert_eq!(f.ledger().root(), root);
    assert!(
        old_index_kept(&f),
        "the unreadable index is kept for inspection"
    );
}

#[test]
fn opening_waits_for_sled_lock_held_a_moment_after_a_close() {
    let (mut f, root) = closed_with_one_participant();
    // Hold sled's lock, as sled's own threads do for a moment after the
    // last handle of a closed database is dropped, and let it go while
    // the ledger is opening.
    let held = open_sled_when_free(&f);
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    f.reopen();
    release.join().unwrap();
    assert_eq!(f.ledger().root(), root);
    assert!(
        !old_index_kept(&f),
        "an index that was only locked for a moment is opened, not rebuilt"
    );
    assert!(knows_p1(&f), "the state holds p1");
}

#[test]
fn an_index_of_another_format_is_moved_aside_and_rebuilt() {
    let mut f = Fixture::new();
    let mut a = f.register("p1", 1, vec![Role::Custodian]);
    let signed = add_key(&mut a, &f, "p1", 2);
    let first = f.ledger().append(signed.clone()).unwrap();
    let root = f.ledger().root();
    f.close();
    // An index written by an older build: format 1 kept event ids in sled
    // and state in the canonical encoding, and named no format.
    {
        let db = open_sled_when_free(&f);
        assert_eq!(db.remove(b"mformat").unwrap().as_deref(), Some(&[2u8][..]));
        db.flush().unwrap();
    }
    f.reopen();
    assert_eq!(f.ledger().root(), root);
    assert!(old_index_kept(&f), "the old index is kept for inspection");
    // The rebuilt index holds the state and the event ids.
    assert!(knows_p1(&f), "the state holds p1");
    let again = f.ledger().append(signed).unwrap();
    assert!(again.replay);
    assert_eq!(again.index, first.index);
}

#[test]
fn proofs_between_any_past_sizes_verify() {
    let mut f = Fixture::new();
    for i in 0..40u32 {
        f.register(&format!("p{i}"), 200 + i, vec![Role::Custodian]);
    }
    let l = f.ledger();
    let n = l.size();
    let leaves: Vec<_> = (0..n).map(|i| leaf_hash(&l.entry(i).unwrap().1)).collect();
    for size in 1..=n {
        let root = l.root_at(size).unwrap();
        for i in (0..size).step_by(3) {
            let proof = l.inclusion_proof(i, size).unwrap();
            merkle::verify_inclusion(&leaves[i as usize], i, size, &proof, &root).unwrap();
        }
        for first in (1..=size).step_by(4) {
            let proof = l.consistency_proof(first, size).unwrap();
            merkle::verify_consistency(first, size, &l.root_at(first).unwrap(), &root, &proof)
                .unwrap();
        }
    }
    assert!(matches!(
        l.inclusion_proof(0, n + 1),
        Err(LedgerError::Invalid(_))
    ));
    assert!(matches!(l.entry(n), Err(LedgerError::NoSuchEntry { .. })));
}

#[test]
fn opening_bad_data_folders_gives_clear_errors() {
    let empty = tempfile::tempdir().unwrap();
    let err = Ledger::open(empty.path(), Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, LedgerError::NotALedger(_)), "{err}");

    let mut f = Fixture::new();
    f.register("p1", 1, vec![Role::Custodian]);
    f.close();
    // A log whose header is wrong.
    let log = f.log_path();
    let good = std::fs::read(&log).unwrap();
    let mut bad = good.clone();
    bad[0] = b'X';
    std::fs::write(&log, &bad).unwrap();
    let err = Ledger::open(f.path(), Default::default()).err().unwrap();
    assert!(
        matches!(err, LedgerError::Integrity { index: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("header"), "{err}");
    // A corrupt log key file.
    std::fs::write(&log, &good).unwrap();
    let key_path = f.path().join("keys/log.key");
    let key_text = std::fs::read(&key_path).unwrap();
    std::fs::write(&key_path, b"oretrail ed25519 secret key v1\npublic zz\n").unwrap();
    let err = Ledger::open(f.path(), Default::default()).err().unwrap();
    assert!(err.to_string().contains("log.key"), "{err}");
    // The wrong log key.
    std::fs::remove_file(&key_path).unwrap();
    key(5).write_file(&key_path).unwrap();
    let err = Ledger::open(f.path(), Default::default()).err().unwrap();
    assert!(err.to_string().contains("not the log key"), "{err}");
    std::fs::remove_file(&key_path).unwrap();
    std::fs::write(&key_path, key_text).unwrap();
    // A log truncated inside an acknowledged batch (the index knows it).
    std::fs::write(&log, &good[..good.len() - 30]).unwrap();
    let err = Ledger::open(f.path(), Default::default()).err().unwrap();
    assert!(
        matches!(err, LedgerError::Integrity { index: 1, .. }),
        "{err}"
    );
    // Restored, it opens again.
    std::fs::write(&log, &good).unwrap();
    f.reopen();
    assert_eq!(f.ledger().size(), 2);
}

#[test]
fn creating_over_an_existing_ledger_is_refused() {
    let f = Fixture::new();
    let err = Ledger::create(f.path(), common::genesis(), Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, LedgerError::AlreadyExists(_)), "{err}");
    assert_eq!(f.ledger().size(), 1);
}

#[test]
fn damaged_or_missing_dense_index_files_are_recomputed_from_the_log() {
    let mut f = Fixture::new();
    for i in 0..30u32 {
        f.register(&format!("p{i}"), 300 + i, vec![Role::Custodian]);
    }
    let size = f.ledger().size();
    let root = f.ledger().root();
    let leaves: Vec<_> = (0..size)
        .map(|i| leaf_hash(&f.ledger().entry(i).unwrap().1))
        .collect();
    let event_ids: Vec<_> = (0..size)
        .map(|i| f.ledger().entry(i).unwrap().0.signed.event_id())
        .collect();
    let finds_every_event = |l: &Ledger| {
        for (i, id) in event_ids.iter().enumerate() {
            assert_eq!(
                l.find_event(id).unwrap(),
                Some(i as u64),
                "event of entry {i}"
            );
        }
    };
    f.close();
    let index = f.path().join("index");
    // A damaged event id in the middle.
    let ids = index.join("event-ids");
    let mut bytes = std::fs::read(&ids).unwrap();
    bytes[36 * 12 + 5] ^= 0x40;
    std::fs::write(&ids, bytes).unwrap();
    // Zeros in the middle of the tree file (as a power cut may leave them,
    // since these files are not synced), and a location file cut short.
    let tree = index.join("tree");
    let mut bytes = std::fs::read(&tree).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 40].fill(0);
    std::fs::write(&tree, bytes).unwrap();
    let locations = index.join("locations");
    let len = std::fs::metadata(&locations).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&locations)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    f.reopen();
    let l = f.ledger();
    assert_eq!((l.size(), l.root()), (size, root));
    finds_every_event(l);
    for i in 0..size {
        assert_eq!(leaf_hash(&l.entry(i).unwrap().1), leaves[i as usize]);
        let proof = l.inclusion_proof(i, size).unwrap();
        merkle::verify_inclusion(&leaves[i as usize], i, size, &proof, &root).unwrap();
    }
    f.close();
    // All three files gone entirely.
    std::fs::remove_file(&tree).unwrap();
    std::fs::remove_file(&locations).unwrap();
    std::fs::remove_file(&ids).unwrap();
    f.reopen();
    assert_eq!((f.ledger().size(), f.ledger().root()), (size, root));
    finds_every_event(f.ledger());
    assert_eq!(f.ledger().root_at(7).unwrap(), {
        merkle::MemoryNodes::from_leaves(leaves[..7].to_vec()).root()
    });
}

/// Rewrites the log with `change` applied to the payload of frame number
/// `target` (counting every frame), re-framed with a valid CRC: a forgery
/// by someone who can write the file, which only signatures can catch.
fn reframe_log(path: &std::path::Path, target: usize, change: impl Fn(&mut Vec<u8>)) {
    use oretrail::store::log::{FrameReader, LOG_HEADER, encode_frame};
    let log = std::fs::read(path).unwrap();
    let mut reader = FrameReader::new(&log[LOG_HEADER.len()..], log.len() as u64);
    let mut out = LOG_HEADER.to_vec();
    let mut n = 0;
    while let Some(mut frame) = reader.next_frame().unwrap().unwrap() {
        if n == target {
            change(&mut frame.payload);
        }
        encode_frame(frame.kind, &frame.payload, &mut out);
        n += 1;
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn verify_names_a_forged_event_or_checkpoint_signature() {
    let mut f = Fixture::new();
    for i in 0..6u32 {
        f.register(&format!("p{i}"), 400 + i, vec![Role::Custodian]);
    }
    f.close();
    let original = std::fs::read(f.log_path()).unwrap();
    // Frames: genesis, its checkpoint, then entry and checkpoint per append.
    // Frame 6 is entry 3; flip a bit of its signature (the payload's last
    // bytes are the signature, see schemas/ENCODING.md).
    reframe_log(&f.log_path(), 6, |p| {
        let n = p.len();
        p[n - 5] ^= 1;
    });
    let failure = verify_log(&f.log_path(), false).unwrap_err();
    assert_eq!(failure.index, 3, "{failure}");
    assert!(failure.reason.contains("signature"), "{failure}");
    // Frame 9 is the checkpoint after entry 4: its signature is last too.
    std::fs::write(f.log_path(), &original).unwrap();
    reframe_log(&f.log_path(), 9, |p| {
        let n = p.len();
        p[n - 1] ^= 0x40;
    });
    let failure = verify_log(&f.log_path(), false).unwrap_err();
    assert_eq!(failure.index, 4, "{failure}");
    assert!(failure.reason.contains("checkpoint signature"), "{failure}");
}

/// Rewrites the whole log as a dishonest operator holding the log key
/// could: entries changed by `change`, then re-linked, re-framed and
/// re-checkpointed (one checkpoint per entry) with valid signatures. What
/// is left for `verify` to catch is only what the rules forbid.
fn rewrite_as_operator(
    dir: &std::path::Path,
    change: impl FnOnce(&mut Vec<oretrail::model::Entry>),
) {
    use oretrail::crypto::{Digest, SecretKey};
    use oretrail::ledger::{CheckpointRecord, KEYS_DIR, LOG_FILE, LOG_KEY_FILE};
    use oretrail::merkle::{Frontier, checkpoint::Checkpoint};
    use oretrail::model::Entry;
    use oretrail::store::FrameKind;
    use oretrail::store::log::{FrameReader, LOG_HEADER, encode_frame};
    let path = dir.join(LOG_FILE);
    let log = std::fs::read(&path).unwrap();
    let mut reader = FrameReader::new(&log[LOG_HEADER.len()..], log.len() as u64);
    let mut entries: Vec<Entry> = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap().unwrap() {
        if frame.kind == FrameKind::Entry {
            entries.push(codec::decode(&frame.payload).unwrap());
        }
    }
    change(&mut entries);
    let log_key = SecretKey::read_file(&dir.join(KEYS_DIR).join(LOG_KEY_FILE)).unwrap();
    let mut out = LOG_HEADER.to_vec();
    let mut frontier = Frontier::new();
    let mut prev = Digest::from_bytes([0; 32]);
    for (i, mut entry) in entries.into_iter().enumerate() {
        entry.index = i as u64;
        entry.prev = prev;
        let bytes = codec::encode(&entry).unwrap();
        encode_frame(FrameKind::Entry, &bytes, &mut out);
        let leaf = leaf_hash(&bytes);
        frontier.push(leaf);
        prev = Digest::from_bytes(leaf);
        let cp = Checkpoint::new(ORIGIN, frontier.size(), frontier.root()).unwrap();
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
    }
    std::fs::write(&path, out).unwrap();
}

/// A closed ledger of `n` registrations a second apart (keys from seed
/// `seed` on), with its log's bytes.
fn closed_with_registrations(n: u32, seed: u32) -> (Fixture, Vec<u8>) {
    let mut f = Fixture::new();
    for i in 0..n {
        f.clock.advance(1000);
        f.register(&format!("p{i}"), seed + i, vec![Role::Custodian]);
    }
    f.close();
    let log = std::fs::read(f.log_path()).unwrap();
    (f, log)
}

/// Dates entry `i` a millisecond before entry `i - 1`.
fn backdate(entries: &mut [oretrail::model::Entry], i: usize) {
    entries[i].record_time =
        oretrail::model::Timestamp::from_millis(entries[i - 1].record_time.as_millis() - 1);
}

#[test]
fn verify_refuses_backdated_entries_and_recorded_twice_events() {
    let (f, original) = closed_with_registrations(5, 500);
    // Untouched but re-written: still verifies (the rewrite itself is sound).
    rewrite_as_operator(f.path(), |_| {});
    verify_log(&f.log_path(), false).unwrap();
    // Entry 3 backdated before entry 2.
    rewrite_as_operator(f.path(), |entries| backdate(entries, 3));
    let failure = verify_log(&f.log_path(), false).unwrap_err();
    assert_eq!(failure.index, 3, "{failure}");
    assert!(failure.reason.contains("record time"), "{failure}");
    // Rebuilding the index replays the same rules and refuses too.
    std::fs::remove_dir_all(f.path().join("index")).unwrap();
    match Ledger::open(f.path(), f.clock.options()) {
        Err(LedgerError::Integrity { index: 3, reason }) => {
            assert!(reason.contains("record time"), "{reason}")
        }
        Err(other) => panic!("expected an integrity error at entry 3, got {other}"),
        Ok(_) => panic!("a backdated log opened"),
    }
    // Entry 2's event recorded again as entry 5.
    std::fs::write(f.log_path(), &original).unwrap();
    rewrite_as_operator(f.path(), |entries| {
        let mut again = entries[2].clone();
        again.record_time = entries[5].record_time;
        entries.push(again);
    });
    let failure = verify_log(&f.log_path(), false).unwrap_err();
    assert_eq!(failure.index, 6, "{failure}");
    assert!(failure.reason.contains("already holds"), "{failure}");
}

/// `verify` replays one chunk of entries while it checks the next one's
/// signatures: whatever the chunk size, the problem reported is the first
/// in log order, found by the replay (a backdated entry) or by the
/// signature checks (a forged signature), whichever comes first.
#[test]
fn verify_names_the_first_problem_whatever_its_chunks() {
    let (f, original) = closed_with_registrations(7, 600);
    fn forge(entries: &mut [oretrail::model::Entry], i: usize) {
        let mut sig = *entries[i].signed.signature.as_bytes();
        sig[63] ^= 1;
        entries[i].signed.signature = Signature::from_bytes(sig);
    }
    type Change = Box<dyn Fn(&mut Vec<oretrail::model::Entry>)>;
    // (name, change to the entries, checkpoint whose signature to forge
    // (named by the entry it follows), first problem's index and reason)
    let cases: [(&str, Change, Option<usize>, u64, &str); 6] = [
        (
            "backdated 3, forged 6",
            Box::new(|e| {
                backdate(e, 3);
                forge(e, 6);
            }),
            None,
            3,
            "record time",
        ),
        (
            "forged 2, backdated 5",
            Box::new(|e| {
                forge(e, 2);
                backdate(e, 5);
            }),
            None,
            2,
            "signature",
        ),
        ("forged 7", Box::new(|e| forge(e, 7)), None, 7, "signature"),
        (
            "checkpoint after 4 forged, forged 6",
            Box::new(|e| forge(e, 6)),
            Some(4),
            4,
            "checkpoint signature",
        ),
        (
            "forged 3, checkpoint after 2 forged",
            Box::new(|e| forge(e, 3)),
            Some(2),
            2,
            "checkpoint signature",
        ),
        (
            "backdated 5, checkpoint after 5 forged",
            Box::new(|e| backdate(e, 5)),
            Some(5),
            5,
            "record time",
        ),
    ];
    for (name, change, checkpoint, index, reason) in cases {
        std::fs::write(f.log_path(), &original).unwrap();
        rewrite_as_operator(f.path(), change);
        if let Some(after) = checkpoint {
            // One checkpoint per entry: entry k is frame 2k, its checkpoint
            // frame 2k + 1, whose payload ends with the signature.
            reframe_log(&f.log_path(), 2 * after + 1, |p| {
                let n = p.len();
                p[n - 1] ^= 0x40;
            });
        }
        for chunk in [1, 2, 3, 8192] {
            let failure = verify_log_in_chunks(&f.log_path(), false, chunk).unwrap_err();
            assert_eq!(failure.index, index, "{name}, chunks of {chunk}: {failure}");
            assert!(
                failure.reason.contains(reason),
                "{name}, chunks of {chunk}: {failure}"
            );
        }
    }
}

#[test]
fn the_log_key_can_never_be_a_participant_key() {
    let mut f = Fixture::new();
    let log_key = f.ledger().info().unwrap().log_key;
    let body = EventBody::RegisterParticipant(Registration {
        participant: pid("sneaky"),
        legal_name: "Sneaky Ltd".into(),
        country: oretrail::model::CountryCode::new("ZM").unwrap(),
        kinds: vec![oretrail::model::ParticipantKind::Trader],
        roles: vec![Role::Custodian],
        keys: vec![log_key],
    });
    let signed = f.operator.sign(f.clock.now(), body).unwrap();
    assert_eq!(refused_code(f.ledger().append(signed)), RuleCode::KeyInUse);
}
