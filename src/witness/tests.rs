//! The pure parts of witnessing that the end-to-end tests
//! (`tests/audit/witness.rs`) do not reach: the book's limits and its
//! file text, and the state file's text.

use ed25519_dalek::SigningKey;

use super::book::{CosignatureBook, KEEP_PER_WITNESS, Recorded, check_submission};
use super::state::{Sight, WitnessState, observe};
use super::trust::TrustedWitnesses;
use crate::merkle::checkpoint::{Checkpoint, Note, NoteVerifier};
use crate::merkle::cosignature::{Cosigner, verify_witnessed};

const ORIGIN: &str = "example.org/log";
const TIME: u64 = 1_800_000_000;

fn log_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn log_verifier() -> NoteVerifier {
    NoteVerifier::new(ORIGIN, log_key().verifying_key()).unwrap()
}

fn witness(seed: u8) -> Cosigner {
    Cosigner::new(
        &format!("w{seed}.example.org"),
        SigningKey::from_bytes(&[seed; 32]),
    )
    .unwrap()
}

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint::new(ORIGIN, size, [size as u8; 32]).unwrap()
}

/// The log's note of `size` cosigned by `by` at `time`.
fn cosigned(size: u64, by: &Cosigner, time: u64) -> String {
    let cp = checkpoint(size);
    let mut note = Note::new(cp.body()).unwrap();
    note.sign(ORIGIN, &log_key()).unwrap();
    note.add_signature(by.cosign(&cp, time).unwrap()).unwrap();
    note.to_string()
}

#[test]
fn the_book_keeps_the_newest_line_per_size_and_the_largest_sizes_per_witness() {
    let (w1, w2) = (witness(5), witness(6));
    let mut trusted = TrustedWitnesses::default();
    trusted.trust(w1.verifier().clone()).unwrap();
    trusted.trust(w2.verifier().clone()).unwrap();
    let submit = |size, by: &Cosigner, time| {
        check_submission(&cosigned(size, by, time), &log_verifier(), &trusted, TIME).unwrap()
    };
    let mut book = CosignatureBook::new(ORIGIN);
    assert_eq!(book.record(&submit(3, &w1, TIME)), [Recorded::New]);
    assert_eq!(book.record(&submit(3, &w1, TIME - 5)), [Recorded::Kept]);
    assert_eq!(book.record(&submit(3, &w1, TIME + 5)), [Recorded::Newer]);
    assert_eq!(book.record(&submit(3, &w2, TIME)), [Recorded::New]);
    let lines = book.lines(3, checkpoint(3).root(), &trusted);
    assert_eq!(lines.len(), 2);
    let served = book.note(3, &trusted).unwrap();
    let witnessed = verify_witnessed(
        &served,
        &log_verifier(),
        &[w1.verifier().clone(), w2.verifier().clone()],
    )
    .unwrap();
    assert_eq!(witnessed.cosignatures()[0].timestamp, TIME + 5);

    // Only the largest sizes are kept per witness; the other witness's
    // line stays.
    for size in 4..4 + KEEP_PER_WITNESS as u64 {
        assert_eq!(book.record(&submit(size, &w1, TIME)), [Recorded::New]);
    }
    assert_eq!(book.len(), KEEP_PER_WITNESS + 1);
    assert_eq!(book.lines(3, checkpoint(3).root(), &trusted).len(), 1);
    // A size below all of them is not kept.
    assert_eq!(book.record(&submit(2, &w1, TIME)), [Recorded::Kept]);
    assert_eq!(book.note(2, &trusted), None);

    // The file text round-trips, and a witness no longer trusted is not
    // served.
    let text = book.to_text();
    assert_eq!(CosignatureBook::parse(&text).unwrap(), book);
    let mut fewer = trusted.clone();
    fewer.untrust(w2.verifier().name()).unwrap();
    assert_eq!(book.note(3, &fewer), None);
    let doubled = format!("{text}{}\n", text.lines().last().unwrap());
    assert!(
        CosignatureBook::parse(&doubled)
            .unwrap_err()
            .contains("second cosignature")
    );
    assert!(CosignatureBook::parse("something else\n").is_err());
}

#[test]
fn the_state_text_round_trips_and_a_tampered_note_is_refused() {
    let w = witness(5);
    let cp = checkpoint(4);
    let mut note = Note::new(cp.body()).unwrap();
    note.sign(ORIGIN, &log_key()).unwrap();
    let advance = observe(None, &log_verifier(), &w, &note.to_string(), &[], TIME).unwrap();
    assert_eq!(advance.sight, Sight::First);
    let text = advance.state.to_text();
    assert!(text.starts_with("oretrail witness state v1\nwitness w5.example.org+"));
    assert_eq!(WitnessState::parse(&text).unwrap(), advance.state);
    // The remembered note must still verify under the pinned key.
    let tampered = text.replace(&format!("\n{}\n", cp.size()), "\n5\n");
    assert!(WitnessState::parse(&tampered).is_err());
    // The clock went back: the next cosignature keeps the last time.
    let again = observe(
        Some(&advance.state),
        &log_verifier(),
        &w,
        &note.to_string(),
        &[],
        TIME - 100,
    )
    .unwrap();
    assert_eq!(again.sight, Sight::Unchanged);
    assert_eq!(again.state.cosigned_at(), TIME);
}
