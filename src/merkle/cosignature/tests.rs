use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{SigningKey, Verifier as _};
use sha2::{Digest, Sha256};

use super::*;
use crate::merkle::checkpoint::{self, Checkpoint, Note, NoteVerifier};

const ORIGIN: &str = "example.org/oretrail";
const WITNESS: &str = "witness.example.org/w1";
const TIME: u64 = 1_769_904_000;

fn log_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn cosigner(seed: u8, name: &str) -> Cosigner {
    Cosigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
}

fn log_verifier() -> NoteVerifier {
    NoteVerifier::new(ORIGIN, log_key().verifying_key()).unwrap()
}

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint::new(ORIGIN, size, [size as u8; 32]).unwrap()
}

/// The log's signed note of `cp` with the given cosignature lines.
fn cosigned(cp: &Checkpoint, lines: &[NoteSignature]) -> String {
    let mut note = Note::new(cp.body()).unwrap();
    note.sign(ORIGIN, &log_key()).unwrap();
    for line in lines {
        note.add_signature(line.clone()).unwrap();
    }
    note.to_string()
}

#[test]
fn key_id_and_key_line_follow_the_spec() {
    let w = cosigner(5, WITNESS);
    let pk = w.verifier().key().to_bytes();
    let mut preimage = WITNESS.as_bytes().to_vec();
    preimage.extend_from_slice(&[0x0a, 0x04]);
    preimage.extend_from_slice(&pk);
    let digest = Sha256::digest(&preimage);
    assert_eq!(w.verifier().key_id(), digest[..4]);
    // The same key as a log key (type 0x01) has another id.
    assert_ne!(
        w.verifier().key_id(),
        checkpoint::key_id_of_bytes(WITNESS, &pk)
    );
    let line = w.verifier().key_line();
    assert_eq!(
        line,
        format!(
            "{WITNESS}+{}+{}",
            hex::encode(&digest[..4]),
            BASE64.encode([&[4u8][..], &pk].concat())
        )
    );
    assert_eq!(CosignerVerifier::parse(&line).unwrap(), *w.verifier());
    assert_eq!(w.verifier().to_string(), line);
}

#[test]
fn the_line_is_key_id_big_endian_time_and_a_signature_over_the_v1_message() {
    let w = cosigner(5, WITNESS);
    let cp = checkpoint(7);
    let line = w.cosign(&cp, TIME).unwrap();
    assert_eq!(line.name(), WITNESS);
    assert_eq!(line.key_id(), w.verifier().key_id());
    let payload = line.signature();
    assert_eq!(payload.len(), 72);
    assert_eq!(payload[..8], TIME.to_be_bytes());
    // The message, built here from the spec's words, verifies with plain
    // Ed25519.
    let message = format!("cosignature/v1\ntime {TIME}\n{ORIGIN}\n7\n{}\n", {
        BASE64.encode([7u8; 32])
    });
    assert_eq!(signed_message(&cp.body(), TIME), message);
    let signature = ed25519_dalek::Signature::from_slice(&payload[8..]).unwrap();
    w.verifier()
        .key()
        .verify(message.as_bytes(), &signature)
        .unwrap();
    assert_eq!(w.verifier().verify_line(&cp.body(), &line), Ok(TIME));
    assert_eq!(timestamp_of(&line), Ok(TIME));
}

#[test]
fn altered_lines_and_other_checkpoints_fail() {
    let w = cosigner(5, WITNESS);
    let cp = checkpoint(7);
    let line = w.cosign(&cp, TIME).unwrap();
    let invalid = Err(CosignatureError::InvalidCosignature {
        name: WITNESS.into(),
    });
    // Another checkpoint.
    assert_eq!(
        w.verifier().verify_line(&checkpoint(8).body(), &line),
        invalid
    );
    // Every byte of the payload matters: the time is signed too.
    for at in [0, 7, 8, 40, 71] {
        let mut payload = line.signature().to_vec();
        payload[at] ^= 0x01;
        let altered = NoteSignature::new(WITNESS, line.key_id(), payload).unwrap();
        assert_eq!(
            w.verifier().verify_line(&cp.body(), &altered),
            invalid,
            "byte {at}"
        );
    }
    // A line cut short.
    let short =
        NoteSignature::new(WITNESS, line.key_id(), line.signature()[..71].to_vec()).unwrap();
    assert_eq!(
        w.verifier().verify_line(&cp.body(), &short),
        Err(CosignatureError::WrongLength {
            name: WITNESS.into(),
            len: 71
        })
    );
    // Another witness's line is not this witness's to check.
    let other = cosigner(6, "witness.example.org/w2");
    assert!(matches!(
        other.verifier().verify_line(&cp.body(), &line),
        Err(CosignatureError::OtherKey { .. })
    ));
    assert_eq!(
        w.cosign(&cp, MAX_TIMESTAMP + 1),
        Err(CosignatureError::TimestampTooLarge {
            timestamp: MAX_TIMESTAMP + 1
        })
    );
}

#[test]
fn key_lines_are_checked() {
    let w = cosigner(5, WITNESS);
    let line = w.verifier().key_line();
    // A log key line (type 0x01) is not a witness key.
    let log_line = checkpoint::verifier_key(WITNESS, w.verifier().key()).unwrap();
    assert_eq!(
        CosignerVerifier::parse(&log_line),
        Err(CosignatureError::WrongKeyType { found: 0x01 })
    );
    let renamed = line.replacen(WITNESS, "witness.example.org/w9", 1);
    assert!(matches!(
        CosignerVerifier::parse(&renamed),
        Err(CosignatureError::KeyIdMismatch { .. })
    ));
    for bad in [
        "",
        "name-only",
        "a+zzzzzzzz+AAAA",
        "a+0011223+BA==",
        "a+00112233+!!!",
    ] {
        assert!(
            matches!(
                CosignerVerifier::parse(bad),
                Err(CosignatureError::BadCosignerKey { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        CosignerVerifier::parse(&line.replacen(WITNESS, "two words", 1)),
        Err(CosignatureError::Note(_))
    ));
}

#[test]
fn a_witnessed_note_names_who_cosigned_and_what_is_missing() {
    let w1 = cosigner(5, WITNESS);
    let w2 = cosigner(6, "witness.example.org/w2");
    let cp = checkpoint(9);
    let older = w1.cosign(&cp, TIME).unwrap();
    let newer = w1.cosign(&cp, TIME + 60).unwrap();
    let note = cosigned(&cp, &[older, newer]);
    let required = [w1.verifier().clone(), w2.verifier().clone()];

    let witnessed = open_witnessed(&note, &log_verifier(), &required).unwrap();
    assert_eq!(witnessed.checkpoint(), &cp);
    assert_eq!(
        witnessed.cosignatures(),
        [WitnessCosignature {
            name: WITNESS.into(),
            key_id: w1.verifier().key_id(),
            timestamp: TIME + 60,
        }]
    );
    assert_eq!(
        verify_witnessed(&note, &log_verifier(), &required),
        Err(CosignatureError::MissingCosignatures {
            names: vec!["witness.example.org/w2".into()]
        })
    );
    verify_witnessed(&note, &log_verifier(), &required[..1]).unwrap();

    // A note whose log signature fails is refused before any cosignature.
    let other_log =
        NoteVerifier::new(ORIGIN, SigningKey::from_bytes(&[2; 32]).verifying_key()).unwrap();
    assert!(matches!(
        verify_witnessed(&note, &other_log, &required[..1]),
        Err(CosignatureError::Note(
            NoteError::NoMatchingSignature { .. }
        ))
    ));

    // One bad line of a required witness spoils the note, even beside a
    // good one.
    let good = w1.cosign(&cp, TIME).unwrap();
    let mut payload = good.signature().to_vec();
    payload[20] ^= 0x80;
    let bad = NoteSignature::new(WITNESS, good.key_id(), payload).unwrap();
    let tampered = cosigned(&cp, &[good, bad]);
    assert_eq!(
        verify_witnessed(&tampered, &log_verifier(), &required[..1]),
        Err(CosignatureError::InvalidCosignature {
            name: WITNESS.into()
        })
    );
}
