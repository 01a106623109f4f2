use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::*;
use crate::merkle::{MemoryNodes, leaf_hash};

const NAME: &str = "example.com/oretrail";

fn key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32])
}

fn verifier(name: &str, key: &SigningKey) -> NoteVerifier {
    NoteVerifier::new(name, key.verifying_key()).unwrap()
}

fn checkpoint() -> Checkpoint {
    let nodes = MemoryNodes::from_leaves((0..5u8).map(|i| leaf_hash(&[i])));
    Checkpoint::new(NAME, 5, nodes.root()).unwrap()
}

fn signed() -> String {
    sign(&checkpoint(), NAME, &key(1)).unwrap()
}

#[test]
fn fixed_key_note_is_pinned() {
    let sk = key(1);
    let pk = sk.verifying_key();

    // Independent key ID computation: one SHA-256 over the concatenation.
    let mut preimage = NAME.as_bytes().to_vec();
    preimage.push(0x0a);
    preimage.push(0x01);
    preimage.extend_from_slice(pk.as_bytes());
    let digest = Sha256::digest(&preimage);
    assert_eq!(key_id(NAME, &pk), digest[..4]);

    let vkey = verifier_key(NAME, &pk).unwrap();
    assert_eq!(vkey, PINNED_VERIFIER_KEY);
    assert_eq!(
        vkey,
        format!(
            "{NAME}+{}+{}",
            hex::encode(&digest[..4]),
            BASE64.encode([&[1u8][..], pk.as_bytes()].concat())
        )
    );

    let note = signed();
    assert_eq!(note, PINNED_NOTE);
    let v = parse_verifier_key(&vkey).unwrap();
    assert_eq!(open(&note, &v).unwrap(), checkpoint());
}

/// Regenerated from this implementation; the key ID part is cross-checked
/// above, and `02f9e112` also opens the signature blob (`AvnhEk...`).
const PINNED_VERIFIER_KEY: &str =
    "example.com/oretrail+02f9e112+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
const PINNED_NOTE: &str = "example.com/oretrail
5
uFW0LWww9bCH4FJmeD+9bjlPe5JgE8yqZ3AKiwxaWW8=

\u{2014} example.com/oretrail AvnhEko0/JHAaUReDRNBMBUg4A72qO6ZJpiQT5ko0HBxsWELHoI2xFsav3JHNLEgNVGR2uXRU7DSARJknCApSRAmSg0=
";

/// The signed-note example published in the documentation of Go's
/// golang.org/x/mod/sumdb/note package (an independent implementation):
/// a verifier key, the signer key's seed and the resulting note.
#[test]
fn go_sumdb_note_example_interoperates() {
    let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    let seed_b64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    let text = "If you think cryptography is the answer to your problem,\n\
                then you don't know what your problem is.\n";
    let go_note = format!(
        "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    );

    let v = parse_verifier_key(vkey).unwrap();
    assert_eq!(v.name(), "PeterNeumann");
    assert_eq!(v.verifier_key(), vkey);
    let note = Note::parse(&go_note).unwrap();
    assert_eq!(note.body(), text);
    note.verify(&v).unwrap();

    let seed = BASE64.decode(seed_b64).unwrap();
    assert_eq!(seed[0], SIGNATURE_TYPE_ED25519);
    let sk = SigningKey::from_bytes(&seed[1..].try_into().unwrap());
    assert_eq!(&sk.verifying_key(), v.key());
    let mut ours = Note::new(text).unwrap();
    ours.sign("PeterNeumann", &sk).unwrap();
    assert_eq!(ours.to_string(), go_note);
}

#[test]
fn round_trip() {
    let sk = key(7);
    let cp = Checkpoint::new("log.example/a", 123_456, [0xab; 32]).unwrap();
    let note = sign(&cp, "log.example/a", &sk).unwrap();
    assert!(note.starts_with(&cp.body()));
    assert_eq!(&note[cp.body().len()..cp.body().len() + 1], "\n");
    let v =
        parse_verifier_key(&verifier_key("log.example/a", &sk.verifying_key()).unwrap()).unwrap();
    assert_eq!(v, verifier("log.example/a", &sk));
    let opened = open(&note, &v).unwrap();
    assert_eq!(opened, cp);
    assert_eq!(opened.origin(), "log.example/a");
    assert_eq!(opened.size(), 123_456);
    assert_eq!(opened.root(), &[0xab; 32]);
    // Bytes work as well as text.
    assert_eq!(open(note.as_bytes(), &v).unwrap(), cp);
}

#[test]
fn body_format() {
    let cp = Checkpoint::new("o", 0, [0; 32]).unwrap();
    assert_eq!(
        cp.body(),
        "o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    );
    assert_eq!(parse_body(&cp.body()).unwrap(), cp);
}

#[test]
fn stored_signature_rebuilds_the_same_note() {
    let note_text = signed();
    let note = Note::parse(&note_text).unwrap();
    let v = verifier(NAME, &key(1));
    let sig = note.verify(&v).unwrap();
    assert_eq!(sig.key_id(), v.key_id());
    let stored: [u8; 64] = sig.signature().try_into().unwrap();
    let rebuilt = sign_with_signature(&checkpoint(), NAME, v.key_id(), &stored).unwrap();
    assert_eq!(rebuilt, note_text);
    // A stored signature for a different checkpoint does not verify.
    let other = Checkpoint::new(NAME, 6, *checkpoint().root()).unwrap();
    let wrong = sign_with_signature(&other, NAME, v.key_id(), &stored).unwrap();
    assert_eq!(
        open(&wrong, &v),
        Err(NoteError::InvalidSignature { name: NAME.into() })
    );
}

#[test]
fn tampered_body_is_rejected() {
    let note = signed().replacen("\n5\n", "\n6\n", 1);
    assert_eq!(
        open(&note, &verifier(NAME, &key(1))),
        Err(NoteError::InvalidSignature { name: NAME.into() })
    );
}

#[test]
fn wrong_key_is_rejected() {
    let v = verifier(NAME, &key(2));
    assert_eq!(
        open(signed(), &v),
        Err(NoteError::NoMatchingSignature {
            name: NAME.into(),
            key_id: hex::encode(v.key_id()),
        })
    );
}

#[test]
fn wrong_name_is_rejected() {
    let v = verifier("example.com/other", &key(1));
    assert!(matches!(
        open(signed(), &v),
        Err(NoteError::NoMatchingSignature { name, .. }) if name == "example.com/other"
    ));
}

#[test]
fn truncated_notes_are_rejected() {
    let note = signed();
    let v = verifier(NAME, &key(1));
    // Missing the final newline, or cut inside the signature line.
    assert_eq!(
        open(&note[..note.len() - 1], &v),
        Err(NoteError::TrailingText)
    );
    assert_eq!(
        open(&note[..note.len() - 20], &v),
        Err(NoteError::TrailingText)
    );
    // Cut right after the blank line.
    let body_len = checkpoint().body().len();
    assert_eq!(
        open(&note[..body_len + 1], &v),
        Err(NoteError::NoSignatures)
    );
    // Cut inside the body.
    assert_eq!(open(&note[..10], &v), Err(NoteError::MissingBlankLine));
    assert_eq!(open("", &v), Err(NoteError::MissingBlankLine));
}

#[test]
fn missing_blank_line_is_rejected() {
    let note = signed().replacen("\n\n", "\n", 1);
    assert_eq!(
        open(&note, &verifier(NAME, &key(1))),
        Err(NoteError::MissingBlankLine)
    );
}

#[test]
fn empty_body_is_rejected() {
    let note = signed();
    let sig_line = &note[checkpoint().body().len() + 1..];
    assert_eq!(
        Note::parse(format!("\n{sig_line}")),
        Err(NoteError::EmptyBody)
    );
    assert_eq!(Note::new(""), Err(NoteError::EmptyBody));
    assert_eq!(
        Note::new("no newline"),
        Err(NoteError::BodyNotNewlineTerminated)
    );
    assert_eq!(
        parse_body("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Err(NoteError::BodyNotNewlineTerminated)
    );
}

#[test]
fn foreign_signature_lines_are_ignored() {
    let v = verifier(NAME, &key(1));
    // A witness-style cosignature: another name, opaque 72-byte payload.
    let witness = NoteSignature::new("witness.example/w1", [9, 9, 9, 9], vec![0x55; 72]).unwrap();
    // Same name, different key ID: an unknown key too (e.g. after rotation).
    let rotated = NoteSignature::new(NAME, [0, 0, 0, 0], vec![0x66; 64]).unwrap();
    let mut note = Note::parse(signed()).unwrap();
    note.add_signature(witness.clone()).unwrap();
    note.add_signature(rotated).unwrap();
    let text = note.to_string();
    assert!(text.contains(&format!("\n{witness}\n")));
    assert_eq!(open(&text, &v).unwrap(), checkpoint());

    // Foreign line first works too.
    let mut first = Note::new(checkpoint().body()).unwrap();
    first.add_signature(witness).unwrap();
    first.sign(NAME, &key(1)).unwrap();
    assert_eq!(open(first.to_string(), &v).unwrap(), checkpoint());
    assert_eq!(Note::parse(first.to_string()).unwrap(), first);
}

#[test]
fn a_bad_line_from_the_known_key_rejects_the_note() {
    let v = verifier(NAME, &key(1));
    let mut note = Note::parse(signed()).unwrap();
    note.add_signature(NoteSignature::new(NAME, v.key_id(), vec![0; 64]).unwrap())
        .unwrap();
    assert_eq!(
        open(note.to_string(), &v),
        Err(NoteError::InvalidSignature { name: NAME.into() })
    );
    // A known-key signature of the wrong length fails the same way.
    let mut short = Note::new(checkpoint().body()).unwrap();
    short
        .add_signature(NoteSignature::new(NAME, v.key_id(), vec![1; 10]).unwrap())
        .unwrap();
    assert_eq!(
        open(short.to_string(), &v),
        Err(NoteError::InvalidSignature { name: NAME.into() })
    );
}

#[test]
fn non_utf8_and_control_characters_are_rejected() {
    let v = verifier(NAME, &key(1));
    let mut bytes = signed().into_bytes();
    bytes[2] = 0xff;
    assert_eq!(open(&bytes, &v), Err(NoteError::NotUtf8));
    let crlf = signed().replace('\n', "\r\n");
    assert_eq!(open(&crlf, &v), Err(NoteError::ControlCharacter));
    assert_eq!(Note::new("tab\there\n"), Err(NoteError::ControlCharacter));
}

#[test]
fn malformed_signature_lines_are_rejected() {
    let body = checkpoint().body();
    let blob = BASE64.encode([7u8; 68]);
    let parse = |line: &str| Note::parse(format!("{body}\n{line}\n"));
    assert_eq!(
        parse(&format!("-- {NAME} {blob}")),
        Err(NoteError::MalformedSignatureLine {
            line: 1,
            reason: "it does not start with an em dash and a space"
        })
    );
    assert!(matches!(
        parse(&format!("\u{2014} {NAME}{blob}")),
        Err(NoteError::MalformedSignatureLine { line: 1, .. })
    ));
    assert!(matches!(
        parse(&format!("\u{2014} {NAME} {blob} extra")),
        Err(NoteError::MalformedSignatureLine { line: 1, .. })
    ));
    assert_eq!(
        parse(&format!("\u{2014} {NAME} not*base64")),
        Err(NoteError::BadBase64 { what: "signature" })
    );
    assert_eq!(
        parse(&format!("\u{2014} {NAME} {}", BASE64.encode([1u8; 4]))),
        Err(NoteError::SignatureTooShort { len: 4 })
    );
    assert!(matches!(
        parse(&format!("\u{2014} a+b {blob}")),
        Err(NoteError::BadKeyName { .. })
    ));
    // Extra text after a valid signature line, on its own line.
    let good = signed();
    assert!(matches!(
        Note::parse(format!("{good}garbage\n")),
        Err(NoteError::MalformedSignatureLine { line: 2, .. })
    ));
    // Too many signature lines.
    let line = format!("\u{2014} w {blob}\n");
    let many = format!("{body}\n{}", line.repeat(MAX_SIGNATURES + 1));
    assert_eq!(
        Note::parse(many),
        Err(NoteError::TooManySignatures {
            max: MAX_SIGNATURES
        })
    );
    let enough = format!("{body}\n{}", line.repeat(MAX_SIGNATURES));
    assert_eq!(
        Note::parse(enough).unwrap().signatures().len(),
        MAX_SIGNATURES
    );
}

#[test]
fn notes_split_at_the_last_blank_line() {
    let sk = key(3);
    let v = verifier("n", &sk);
    let mut note = Note::new("first\n\nsecond\n").unwrap();
    note.sign("n", &sk).unwrap();
    let parsed = Note::parse(note.to_string()).unwrap();
    assert_eq!(parsed.body(), "first\n\nsecond\n");
    parsed.verify(&v).unwrap();
}

#[test]
fn checkpoint_bodies_are_validated() {
    let root = BASE64.encode([3u8; 32]);
    assert_eq!(
        parse_body(&format!("o\n5\n{root}\n")).unwrap(),
        Checkpoint::new("o", 5, [3; 32]).unwrap()
    );
    assert_eq!(
        parse_body(&format!("o\n{}\n{root}\n", u64::MAX))
            .unwrap()
            .size(),
        u64::MAX
    );
    assert_eq!(
        parse_body("o\n5\n"),
        Err(NoteError::WrongLineCount { found: 2 })
    );
    assert_eq!(
        parse_body(&format!("o\n5\n{root}\nextension\n")),
        Err(NoteError::WrongLineCount { found: 4 })
    );
    for size in [
        "",
        "05",
        "+5",
        "-1",
        " 5",
        "5 ",
        "0x5",
        "18446744073709551616",
    ] {
        assert_eq!(
            parse_body(&format!("o\n{size}\n{root}\n")),
            Err(NoteError::BadSize),
            "size {size:?}"
        );
    }
    for bad_root in [
        BASE64.encode([3u8; 31]),
        BASE64.encode([3u8; 33]),
        "not base64!".to_owned(),
        root.trim_end_matches('=').to_owned(),
        String::new(),
    ] {
        assert_eq!(
            parse_body(&format!("o\n5\n{bad_root}\n")),
            Err(NoteError::BadRootHash),
            "root {bad_root:?}"
        );
    }
    assert!(matches!(
        parse_body(&format!(" o\n5\n{root}\n")),
        Err(NoteError::BadOrigin { .. })
    ));
    assert!(matches!(
        parse_body(&format!("\n5\n{root}\n")),
        Err(NoteError::BadOrigin { .. })
    ));

    // A correctly signed note whose body is not a checkpoint.
    let sk = key(1);
    let mut note = Note::new("just some text\n").unwrap();
    note.sign(NAME, &sk).unwrap();
    assert_eq!(
        open(note.to_string(), &verifier(NAME, &sk)),
        Err(NoteError::WrongLineCount { found: 1 })
    );
}

#[test]
fn origins_are_validated() {
    for origin in ["", "a\nb", "tab\tin", " lead", "trail ", "trail\u{a0}"] {
        assert!(
            matches!(
                Checkpoint::new(origin, 1, [0; 32]),
                Err(NoteError::BadOrigin { .. })
            ),
            "origin {origin:?}"
        );
    }
    assert!(Checkpoint::new("inner space ok", 1, [0; 32]).is_ok());
}

#[test]
fn key_names_are_validated() {
    let sk = key(1);
    for name in ["", "has space", "plus+sign", "nl\n", "nbsp\u{a0}x"] {
        assert!(
            matches!(
                sign(&checkpoint(), name, &sk),
                Err(NoteError::BadKeyName { .. })
            ),
            "name {name:?}"
        );
        assert!(matches!(
            verifier_key(name, &sk.verifying_key()),
            Err(NoteError::BadKeyName { .. })
        ));
    }
}

#[test]
fn verifier_keys_are_validated() {
    let pk = key(1).verifying_key();
    let good = verifier_key(NAME, &pk).unwrap();
    let (prefix, key_b64) = good.rsplit_once('+').unwrap();
    let id_hex = &prefix[NAME.len() + 1..];

    assert_eq!(parse_verifier_key(&good).unwrap().verifier_key(), good);
    // Uppercase hex for the key ID is accepted on input.
    let upper = format!("{NAME}+{}+{key_b64}", id_hex.to_uppercase());
    assert_eq!(parse_verifier_key(&upper).unwrap().verifier_key(), good);

    assert!(matches!(
        parse_verifier_key(NAME),
        Err(NoteError::BadVerifierKey { .. })
    ));
    assert!(matches!(
        parse_verifier_key(&format!("{NAME}+{id_hex}")),
        Err(NoteError::BadVerifierKey { .. })
    ));
    assert!(matches!(
        parse_verifier_key(&format!("{NAME}+1234567+{key_b64}")),
        Err(NoteError::BadVerifierKey { .. })
    ));
    assert!(matches!(
        parse_verifier_key(&format!("{NAME}+1234567g+{key_b64}")),
        Err(NoteError::BadVerifierKey { .. })
    ));
    assert!(matches!(
        parse_verifier_key(&format!("bad name+{id_hex}+{key_b64}")),
        Err(NoteError::BadKeyName { .. })
    ));
    let other_id = if id_hex == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    assert_eq!(
        parse_verifier_key(&format!("{NAME}+{other_id}+{key_b64}")),
        Err(NoteError::KeyIdMismatch {
            stated: other_id.into(),
            computed: id_hex.into(),
        })
    );
    // Same key under another name: the key ID no longer matches.
    assert!(matches!(
        parse_verifier_key(&format!("other+{id_hex}+{key_b64}")),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    let typed = |t: u8, len: usize| {
        let mut bytes = vec![t];
        bytes.extend_from_slice(&pk.as_bytes()[..len]);
        format!("{NAME}+{id_hex}+{}", BASE64.encode(bytes))
    };
    assert_eq!(
        parse_verifier_key(&typed(0x04, 32)),
        Err(NoteError::UnsupportedKeyType { found: 0x04 })
    );
    assert!(matches!(
        parse_verifier_key(&typed(0x01, 31)),
        Err(NoteError::BadVerifierKey { .. })
    ));
    assert_eq!(
        parse_verifier_key(&format!("{NAME}+{id_hex}+AQ==!")),
        Err(NoteError::BadBase64 {
            what: "verifier public key"
        })
    );
    // The identity point is a small-order (weak) key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    assert_eq!(NoteVerifier::new(NAME, weak), Err(NoteError::BadPublicKey));
}

#[test]
fn error_messages_are_sentences() {
    let e = NoteError::NoMatchingSignature {
        name: NAME.into(),
        key_id: "01020304".into(),
    };
    assert_eq!(
        e.to_string(),
        "the note has no signature from the key example.com/oretrail with key ID 01020304"
    );
}
