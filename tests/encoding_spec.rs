//! The worked examples of `schemas/ENCODING.md`, rebuilt from the library.
//!
//! Regenerate the examples after a deliberate change of format with:
//!
//! ```sh
//! ORETRAIL_BLESS=1 cargo test --test encoding_spec
//! ```
//!
//! Without `ORETRAIL_BLESS=1` the test only compares, so the document cannot
//! drift from the code unnoticed. The field-by-field layouts are produced
//! here by a small encoder written from the document's rules alone, not by
//! slicing the library's output; the test asserts that they concatenate to
//! the library's bytes, that the bytes decode back to the values, and that
//! the example log file passes the library's offline verifier. So the prose
//! rules, the annotated examples and the code are checked against each
//! other, not just copied from one another.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use oretrail::codec::{self, Canonical};
use oretrail::crypto::{Digest, PublicKey, SecretKey, Signature, sha256};
use oretrail::ledger::{CheckpointRecord, verify_log};
use oretrail::merkle::checkpoint::{self, Checkpoint, NoteVerifier};
use oretrail::merkle::{self, Hash, MemoryNodes};
use oretrail::model::{
    CountryCode, Entry, Event, EventBody, Genesis, KeyAdded, KeyRevoked, KeyRotated, ParticipantId,
    ParticipantKind, Registration, Role, SignedEvent, Timestamp,
};
use oretrail::signer::sign_event;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/ENCODING.md");
const BLESS: &str = "ORETRAIL_BLESS=1 cargo test --test encoding_spec";

const ORIGIN: &str = "example.org/oretrail";
/// 2026-01-31T12:00:00.000Z, when the operator signs the genesis event.
const GENESIS_TIME_MS: u64 = 1_769_860_800_000;

/// Bytes per line in annotated layouts and full hex dumps.
const LAYOUT_WIDTH: usize = 16;
const HEX_WIDTH: usize = 32;

// ---------------------------------------------------------------------------
// An encoder written from the rules in ENCODING.md, independent of bincode.
// ---------------------------------------------------------------------------

/// One field, or one part of a field, of an annotated byte layout.
struct Row {
    bytes: Vec<u8>,
    what: String,
}

/// A structure's bytes, field by field, each with a description.
#[derive(Default)]
struct Layout {
    rows: Vec<Row>,
}

impl Layout {
    fn raw(&mut self, bytes: impl AsRef<[u8]>, what: impl Into<String>) -> &mut Self {
        self.rows.push(Row {
            bytes: bytes.as_ref().to_vec(),
            what: what.into(),
        });
        self
    }

    /// The canonical prefix: a 16-byte NUL-padded tag and a `u16` LE version.
    fn prefix(&mut self, tag: &str, version: u16) -> &mut Self {
        let mut padded = [0u8; 16];
        padded[..tag.len()].copy_from_slice(tag.as_bytes());
        self.raw(padded, format!("tag {tag:?}, NUL-padded to 16 bytes"));
        self.raw(
            version.to_le_bytes(),
            format!("format version (u16) = {version}"),
        )
    }

    fn u32(&mut self, field: &str, value: u32) -> &mut Self {
        self.raw(value.to_le_bytes(), format!("{field} (u32) = {value}"))
    }

    fn u64(&mut self, field: &str, value: u64) -> &mut Self {
        self.raw(value.to_le_bytes(), format!("{field} (u64) = {value}"))
    }

    fn time(&mut self, field: &str, time: Timestamp) -> &mut Self {
        self.raw(
            time.as_millis().to_le_bytes(),
            format!("{field} (u64 ms) = {} = {time}", time.as_millis()),
        )
    }

    /// A string: `u64` byte length, then the UTF-8 bytes.
    fn string(&mut self, field: &str, value: &str) -> &mut Self {
        self.raw(
            (value.len() as u64).to_le_bytes(),
            format!("{field} length (u64) = {}", value.len()),
        );
        self.raw(value.as_bytes(), format!("{field} = {value:?}"))
    }

    /// A byte string: `u64` length, then the bytes.
    fn byte_string(&mut self, field: &str, value: &[u8], what: &str) -> &mut Self {
        self.raw(
            (value.len() as u64).to_le_bytes(),
            format!("{field} length (u64) = {}", value.len()),
        );
        self.raw(value, format!("{field}: {what}"))
    }

    /// A fixed-size byte array: the bytes, no length.
    fn fixed(&mut self, field: &str, value: &[u8], what: &str) -> &mut Self {
        self.raw(value, format!("{field} ({} bytes): {what}", value.len()))
    }

    fn count(&mut self, field: &str, n: usize) -> &mut Self {
        self.raw(
            (n as u64).to_le_bytes(),
            format!("{field} element count (u64) = {n}"),
        )
    }

    fn variant(&mut self, field: &str, index: u32, name: &str) -> &mut Self {
        self.raw(
            index.to_le_bytes(),
            format!("{field} variant index (u32) = {index}: {name}"),
        )
    }

    fn bytes(&self) -> Vec<u8> {
        self.rows.iter().flat_map(|r| r.bytes.clone()).collect()
    }

    /// The annotated table: decimal offset, up to 16 bytes of hex, field.
    /// Longer fields continue on following lines without a description.
    fn render(&self) -> String {
        let mut out = format!(
            "{:>6}  {:<w$}  field\n",
            "offset",
            "bytes",
            w = 2 * LAYOUT_WIDTH
        );
        let mut offset = 0usize;
        for row in &self.rows {
            for (i, chunk) in row.bytes.chunks(LAYOUT_WIDTH).enumerate() {
                let what = if i == 0 { row.what.as_str() } else { "" };
                let line = format!(
                    "{offset:>6}  {:<w$}  {what}",
                    hex::encode(chunk),
                    w = 2 * LAYOUT_WIDTH
                );
                out.push_str(line.trim_end());
                out.push('\n');
                offset += chunk.len();
            }
        }
        out
    }
}

/// Variant index and name of a participant kind, as ENCODING.md lists them.
/// No wildcard arm: a new kind does not compile until it is documented.
fn kind_number(kind: ParticipantKind) -> (u32, &'static str) {
    match kind {
        ParticipantKind::Operator => (0, "Operator"),
        ParticipantKind::Mine => (1, "Mine"),
        ParticipantKind::Trader => (2, "Trader"),
        ParticipantKind::Transporter => (3, "Transporter"),
        ParticipantKind::Smelter => (4, "Smelter"),
        ParticipantKind::Buyer => (5, "Buyer"),
        ParticipantKind::AssayLab => (6, "AssayLab"),
        ParticipantKind::Auditor => (7, "Auditor"),
    }
}

const ALL_KINDS: [ParticipantKind; 8] = [
    ParticipantKind::Operator,
    ParticipantKind::Mine,
    ParticipantKind::Trader,
    ParticipantKind::Transporter,
    ParticipantKind::Smelter,
    ParticipantKind::Buyer,
    ParticipantKind::AssayLab,
    ParticipantKind::Auditor,
];

/// Variant index and name of a role, as ENCODING.md lists them.
fn role_number(role: Role) -> (u32, &'static str) {
    match role {
        Role::Operator => (0, "Operator"),
        Role::Compliance => (1, "Compliance"),
        Role::Producer => (2, "Producer"),
        Role::Custodian => (3, "Custodian"),
        Role::Processor => (4, "Processor"),
        Role::Seller => (5, "Seller"),
        Role::Purchaser => (6, "Purchaser"),
        Role::Assayer => (7, "Assayer"),
        Role::Auditor => (8, "Auditor"),
    }
}

const ALL_ROLES: [Role; 9] = [
    Role::Operator,
    Role::Compliance,
    Role::Producer,
    Role::Custodian,
    Role::Processor,
    Role::Seller,
    Role::Purchaser,
    Role::Assayer,
    Role::Auditor,
];

/// Variant index and name of an event body, as ENCODING.md lists them.
fn body_number(body: &EventBody) -> (u32, &'static str) {
    match body {
        EventBody::Genesis(_) => (0, "Genesis"),
        EventBody::RegisterParticipant(_) => (1, "RegisterParticipant"),
        EventBody::AddKey(_) => (2, "AddKey"),
        EventBody::RotateKey(_) => (3, "RotateKey"),
        EventBody::RevokeKey(_) => (4, "RevokeKey"),
    }
}

const KEY: &str = "Ed25519 public key";

fn event_layout(e: &Event) -> Layout {
    let mut l = Layout::default();
    l.prefix("oretrail.event", 1)
        .string("Event.ledger", &e.ledger)
        .string("Event.signer", e.signer.as_str())
        .time("Event.time", e.time)
        .u64("Event.nonce", e.nonce);
    let (index, name) = body_number(&e.body);
    l.variant("Event.body", index, name);
    match &e.body {
        EventBody::Genesis(g) => {
            l.string("Genesis.origin", &g.origin)
                .fixed("Genesis.log_key", g.log_key.as_bytes(), KEY)
                .string("Genesis.operator", g.operator.as_str())
                .string("Genesis.operator_name", &g.operator_name)
                .string("Genesis.operator_country", g.operator_country.as_str())
                .fixed("Genesis.operator_key", g.operator_key.as_bytes(), KEY);
        }
        EventBody::RegisterParticipant(r) => {
            l.string("Registration.participant", r.participant.as_str())
                .string("Registration.legal_name", &r.legal_name)
                .string("Registration.country", r.country.as_str())
                .count("Registration.kinds", r.kinds.len());
            for (i, kind) in r.kinds.iter().enumerate() {
                let (index, name) = kind_number(*kind);
                l.variant(&format!("kinds[{i}]"), index, name);
            }
            l.count("Registration.roles", r.roles.len());
            for (i, role) in r.roles.iter().enumerate() {
                let (index, name) = role_number(*role);
                l.variant(&format!("roles[{i}]"), index, name);
            }
            l.count("Registration.keys", r.keys.len());
            for (i, key) in r.keys.iter().enumerate() {
                l.fixed(&format!("keys[{i}]"), key.as_bytes(), KEY);
            }
        }
        EventBody::AddKey(a) => {
            l.string("KeyAdded.participant", a.participant.as_str())
                .fixed("KeyAdded.key", a.key.as_bytes(), KEY);
        }
        EventBody::RotateKey(r) => {
            l.string("KeyRotated.participant", r.participant.as_str())
                .fixed("KeyRotated.old", r.old.as_bytes(), KEY)
                .fixed("KeyRotated.new", r.new.as_bytes(), KEY);
        }
        EventBody::RevokeKey(r) => {
            l.string("KeyRevoked.participant", r.participant.as_str())
                .fixed("KeyRevoked.key", r.key.as_bytes(), KEY)
                .string("KeyRevoked.reason", &r.reason);
        }
    }
    l
}

/// The envelope's fields; `what` names the event it carries.
fn signed_event_fields(l: &mut Layout, field: &str, s: &SignedEvent, what: &str) {
    l.fixed(
        &format!("{field}.key"),
        s.key.as_bytes(),
        "Ed25519 public key of the signer",
    )
    .fixed(
        &format!("{field}.signature"),
        s.signature.as_bytes(),
        "Ed25519 signature (R || S) over the event bytes",
    )
    .byte_string(&format!("{field}.event"), &s.event, what);
}

fn entry_layout(e: &Entry, event_what: &str) -> Layout {
    let mut l = Layout::default();
    let prev_what = if e.index == 0 {
        "32 zero bytes: entry 0 has no predecessor"
    } else {
        "leaf hash of the previous entry"
    };
    l.prefix("oretrail.entry", 1)
        .u64("Entry.index", e.index)
        .fixed("Entry.prev", e.prev.as_bytes(), prev_what)
        .time("Entry.record_time", e.record_time);
    signed_event_fields(&mut l, "Entry.signed", &e.signed, event_what);
    l
}

fn checkpoint_record_layout(r: &CheckpointRecord) -> Layout {
    let mut l = Layout::default();
    l.prefix("oretrail.ckpt", 1)
        .u64("CheckpointRecord.size", r.size)
        .fixed(
            "CheckpointRecord.root",
            r.root.as_bytes(),
            "RFC 9162 root of the first `size` entries",
        )
        .fixed(
            "CheckpointRecord.signature",
            r.signature.as_bytes(),
            "Ed25519 signature of the log key over the note body",
        );
    l
}

const FRAME_MAGIC: &[u8; 4] = b"OTLF";
const LOG_HEADER: &[u8; 16] = b"ORETRAIL-LOG\0\0\0\x01";

/// A log frame: magic, kind, payload length, CRC-32 over kind, length and
/// payload, then the payload.
fn frame(l: &mut Layout, kind: u8, kind_name: &str, payload: &[u8], what: &str) {
    let len = u32::try_from(payload.len()).unwrap();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(&len.to_le_bytes());
    crc.update(payload);
    l.raw(FRAME_MAGIC, "frame magic \"OTLF\"")
        .raw([kind], format!("frame kind (u8) = {kind}: {kind_name}"))
        .u32("payload length", len)
        .raw(
            crc.finalize().to_le_bytes(),
            "CRC-32 (u32) of kind || length || payload",
        )
        .raw(payload, format!("payload: {what}"));
}

// ---------------------------------------------------------------------------
// The example ledger: two entries, two checkpoints, from fixed keys.
// ---------------------------------------------------------------------------

struct World {
    log_key: SecretKey,
    genesis: Event,
    genesis_signed: SignedEvent,
    register: Event,
    register_signed: SignedEvent,
    entry0: Entry,
    entry0_bytes: Vec<u8>,
    leaf0: Hash,
    entry1: Entry,
    entry1_bytes: Vec<u8>,
    leaf1: Hash,
    root2: Hash,
    record1: CheckpointRecord,
    checkpoint2: Checkpoint,
    record2: CheckpointRecord,
    note2: String,
    verifier: NoteVerifier,
}

fn seed(byte: u8) -> SecretKey {
    SecretKey::from_seed(&[byte; 32])
}

fn pid(id: &str) -> ParticipantId {
    ParticipantId::new(id).unwrap()
}

fn country(code: &str) -> CountryCode {
    CountryCode::new(code).unwrap()
}

fn record(cp: &Checkpoint, key: &SecretKey) -> CheckpointRecord {
    CheckpointRecord {
        size: cp.size(),
        root: Digest::from_bytes(*cp.root()),
        signature: key.sign(cp.body().as_bytes()),
    }
}

impl World {
    fn new() -> Self {
        let log_key = seed(0x01);
        let operator_key = seed(0x02);
        let mine_key = seed(0x03);
        let operator = pid("operator");

        let genesis = Event {
            ledger: ORIGIN.into(),
            signer: operator.clone(),
            time: Timestamp::from_millis(GENESIS_TIME_MS),
            nonce: 0,
            body: EventBody::Genesis(Genesis {
                origin: ORIGIN.into(),
                log_key: log_key.public(),
                operator: operator.clone(),
                operator_name: "Example Smelter Ltd".into(),
                operator_country: country("ZM"),
                operator_key: operator_key.public(),
            }),
        };
        let genesis_signed = sign_event(&genesis, &operator_key).unwrap();
        let entry0 = Entry {
            index: 0,
            prev: Digest::from_bytes([0; 32]),
            record_time: Timestamp::from_millis(GENESIS_TIME_MS + 250),
            signed: genesis_signed.clone(),
        };
        let entry0_bytes = codec::encode(&entry0).unwrap();
        let leaf0 = merkle::leaf_hash(&entry0_bytes);

        let register = Event {
            ledger: ORIGIN.into(),
            signer: operator,
            time: Timestamp::from_millis(GENESIS_TIME_MS + 60_000),
            nonce: 1,
            body: EventBody::RegisterParticipant(Registration {
                participant: pid("mine.kansanshi"),
                legal_name: "Kansanshi Mining PLC".into(),
                country: country("ZM"),
                kinds: vec![ParticipantKind::Mine],
                roles: vec![Role::Producer, Role::Custodian],
                keys: vec![mine_key.public()],
            }),
        };
        let register_signed = sign_event(&register, &operator_key).unwrap();
        let entry1 = Entry {
            index: 1,
            prev: Digest::from_bytes(leaf0),
            record_time: Timestamp::from_millis(GENESIS_TIME_MS + 60_500),
            signed: register_signed.clone(),
        };
        let entry1_bytes = codec::encode(&entry1).unwrap();
        let leaf1 = merkle::leaf_hash(&entry1_bytes);
        let root2 = merkle::node_hash(&leaf0, &leaf1);

        let checkpoint1 = Checkpoint::new(ORIGIN, 1, leaf0).unwrap();
        let record1 = record(&checkpoint1, &log_key);
        let checkpoint2 = Checkpoint::new(ORIGIN, 2, root2).unwrap();
        let record2 = record(&checkpoint2, &log_key);
        let note2 = checkpoint::sign(&checkpoint2, ORIGIN, log_key.signing_key()).unwrap();
        let vk = log_key.public().verifying_key().unwrap();
        let verifier = NoteVerifier::new(ORIGIN, vk).unwrap();
        Self {
            log_key,
            genesis,
            genesis_signed,
            register,
            register_signed,
            entry0,
            entry0_bytes,
            leaf0,
            entry1,
            entry1_bytes,
            leaf1,
            root2,
            record1,
            checkpoint2,
            record2,
            note2,
            verifier,
        }
    }

    fn key_id_layout(&self) -> Layout {
        let mut l = Layout::default();
        l.raw(ORIGIN, format!("key name = origin {ORIGIN:?}"))
            .raw([0x0a], "newline (0x0A)")
            .raw([0x01], "signature type 0x01: Ed25519")
            .fixed("log key", self.log_key.public().as_bytes(), KEY);
        l
    }

    fn node_layout(&self) -> Layout {
        let mut l = Layout::default();
        l.raw([0x01], "interior node prefix 0x01")
            .fixed("left", &self.leaf0, "leaf hash of entry 0")
            .fixed("right", &self.leaf1, "leaf hash of entry 1");
        l
    }

    fn note_body_layout(&self) -> Layout {
        let cp = &self.checkpoint2;
        let size = cp.size().to_string();
        let root = BASE64.encode(cp.root());
        let mut l = Layout::default();
        l.raw(cp.origin(), format!("origin line {:?}", cp.origin()))
            .raw("\n", "newline")
            .raw(&size, format!("tree size, ASCII decimal {size:?}"))
            .raw("\n", "newline")
            .raw(&root, format!("root hash, standard base64 {root:?}"))
            .raw("\n", "newline: the body ends here");
        l
    }

    fn note_signature_layout(&self) -> Layout {
        let body_len = self.checkpoint2.body().len();
        let mut l = Layout::default();
        l.fixed("key id", &self.verifier.key_id(), "see example key-id")
            .fixed(
                "signature",
                self.record2.signature.as_bytes(),
                &format!("Ed25519 over the {body_len} body bytes"),
            );
        l
    }

    fn log_file_layout(&self) -> Layout {
        let mut l = Layout::default();
        l.raw(
            LOG_HEADER,
            "log header \"ORETRAIL-LOG\", 3 NULs, version 0x01",
        );
        let records = [&self.record1, &self.record2].map(|r| codec::encode(r).unwrap());
        frame(
            &mut l,
            1,
            "entry",
            &self.entry0_bytes,
            "entry 0 (example genesis-entry)",
        );
        frame(
            &mut l,
            2,
            "checkpoint",
            &records[0],
            "checkpoint record, size 1",
        );
        frame(
            &mut l,
            1,
            "entry",
            &self.entry1_bytes,
            "entry 1 (example register-entry)",
        );
        frame(
            &mut l,
            2,
            "checkpoint",
            &records[1],
            "checkpoint record, size 2 (example checkpoint-record)",
        );
        l
    }

    fn key_file(&self) -> String {
        format!(
            "oretrail ed25519 secret key v1\npublic {}\nsecret {}\n",
            self.log_key.public(),
            hex::encode([0x01u8; 32])
        )
    }
}

// ---------------------------------------------------------------------------
// Rendering the example blocks.
// ---------------------------------------------------------------------------

struct Example {
    name: &'static str,
    text: String,
}

fn fenced(info: &str, body: &str) -> String {
    format!("```{info}\n{body}```\n")
}

fn full_hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(HEX_WIDTH) {
        out.push_str(&hex::encode(chunk));
        out.push('\n');
    }
    out
}

/// A structure as the document shows it: the annotated table, built by the
/// encoder above from this document's rules, then the full hex of `bytes`,
/// which come from the library wherever it produces them. Whether the two
/// agree is checked on the rendered text by [`block_bytes`].
fn layout_block(title: &str, layout: &Layout, bytes: &[u8]) -> String {
    format!(
        "{title} ({} bytes), field by field:\n\n{}\nFull hex:\n\n{}",
        bytes.len(),
        fenced("text", &layout.render()),
        fenced("hex", &full_hex(bytes))
    )
}

/// A layout with no library function that produces the same bytes (hash
/// inputs, the log file): its checks verify the result instead.
fn own_block(title: &str, layout: &Layout) -> String {
    layout_block(title, layout, &layout.bytes())
}

fn json_block<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_string_pretty(value).unwrap();
    format!(
        "The value, shown as JSON for reading only (JSON is never signed or hashed):\n\n{}\n",
        fenced("json", &format!("{json}\n"))
    )
}

fn proof_list(proof: Vec<Hash>) -> String {
    let hashes: Vec<String> = proof
        .iter()
        .map(|h| format!("`{}`", hex::encode(h)))
        .collect();
    format!("[{}]", hashes.join(", "))
}

fn enum_tables() -> String {
    let mut tables = String::from("| `ParticipantKind` | index |\n|---|---|\n");
    for kind in ALL_KINDS {
        let (index, name) = kind_number(kind);
        writeln!(tables, "| {name} | {index} |").unwrap();
    }
    tables.push_str("\n| `Role` | index |\n|---|---|\n");
    for role in ALL_ROLES {
        let (index, name) = role_number(role);
        writeln!(tables, "| {name} | {index} |").unwrap();
    }
    tables
}

fn event_block(event: &Event, signed: &SignedEvent) -> String {
    format!(
        "{}{}\n- event id = SHA-256(all bytes above): `{}`\n",
        json_block(event),
        layout_block("Canonical encoding", &event_layout(event), &signed.event),
        signed.event_id()
    )
}

fn entry_block(title: &str, entry: &Entry, bytes: &[u8], leaf: &Hash, event: &str) -> String {
    format!(
        "{}\n- leaf hash = entry hash = SHA-256(0x00 || all bytes above): `{}`\n",
        layout_block(title, &entry_layout(entry, event), bytes),
        hex::encode(leaf)
    )
}

fn examples(w: &World) -> Vec<Example> {
    let key_id = w.verifier.key_id();
    let key_id_input = w.key_id_layout();
    let key_id_block = format!(
        "{}\n- SHA-256 of those bytes: `{}`\n- key id (its first 4 bytes): `{}`\n\
         - verifier key line: `{}`\n",
        own_block("Key id input for the log key of seed 0x01", &key_id_input),
        sha256(&key_id_input.bytes()),
        hex::encode(key_id),
        w.verifier.verifier_key(),
    );

    let mut envelope = Layout::default();
    signed_event_fields(
        &mut envelope,
        "SignedEvent",
        &w.register_signed,
        "the canonical Event (example register-participant-event)",
    );
    let envelope_block = layout_block(
        "The envelope of the register-participant event, signed by the operator key \
         (seed 0x02), as it appears from offset 66 of entry 1",
        &envelope,
        &w.entry1_bytes[66..],
    );

    let nodes = MemoryNodes::from_leaves([w.leaf0, w.leaf1]);
    let tree_block = format!(
        "{}\n- root of the tree of size 1 = leaf hash of entry 0: `{}`\n\
         - root of the tree of size 2 = SHA-256(all bytes above): `{}`\n\
         - inclusion proof of entry 0 in the tree of size 2 (RFC 9162 section 2.1.3): {}\n\
         - inclusion proof of entry 1 in the tree of size 2: {}\n\
         - consistency proof from size 1 to size 2 (RFC 9162 section 2.1.4): {}\n",
        own_block("Interior node over entries 0 and 1", &w.node_layout()),
        hex::encode(w.leaf0),
        hex::encode(w.root2),
        proof_list(merkle::inclusion_proof(&nodes, 0, 2).unwrap()),
        proof_list(merkle::inclusion_proof(&nodes, 1, 2).unwrap()),
        proof_list(merkle::consistency_proof(&nodes, 1, 2).unwrap()),
    );

    // The signature line as the library wrote it: its last word, decoded.
    let line = w.note2.lines().last().unwrap();
    let blob = BASE64.decode(line.rsplit(' ').next().unwrap()).unwrap();
    let note_block = format!(
        "{}\n{}\nThe signed note (body, blank line, signature line):\n\n{}",
        layout_block(
            "Note body of the checkpoint at size 2",
            &w.note_body_layout(),
            w.checkpoint2.body().as_bytes()
        ),
        layout_block(
            "Decoded base64 of the signature line",
            &w.note_signature_layout(),
            &blob
        ),
        fenced("text", &w.note2)
    );

    let key_file_block = format!(
        "The log key of seed 0x01 as a key file (a published secret: for examples only):\n\n{}",
        fenced("text", &w.key_file())
    );

    vec![
        Example {
            name: "enum-numbers",
            text: enum_tables(),
        },
        Example {
            name: "key-id",
            text: key_id_block,
        },
        Example {
            name: "genesis-event",
            text: event_block(&w.genesis, &w.genesis_signed),
        },
        Example {
            name: "register-participant-event",
            text: event_block(&w.register, &w.register_signed),
        },
        Example {
            name: "signed-event",
            text: envelope_block,
        },
        Example {
            name: "genesis-entry",
            text: entry_block(
                "Entry 0",
                &w.entry0,
                &w.entry0_bytes,
                &w.leaf0,
                "the canonical Event (example genesis-event)",
            ),
        },
        Example {
            name: "register-entry",
            text: entry_block(
                "Entry 1",
                &w.entry1,
                &w.entry1_bytes,
                &w.leaf1,
                "the canonical Event (example register-participant-event)",
            ),
        },
        Example {
            name: "tree-root",
            text: tree_block,
        },
        Example {
            name: "checkpoint-note",
            text: note_block,
        },
        Example {
            name: "checkpoint-record",
            text: layout_block(
                "The checkpoint at size 2 as the log file stores it",
                &checkpoint_record_layout(&w.record2),
                &codec::encode(&w.record2).unwrap(),
            ),
        },
        Example {
            name: "log-file",
            text: own_block(
                "The whole log file of the example ledger",
                &w.log_file_layout(),
            ),
        },
        Example {
            name: "key-file",
            text: key_file_block,
        },
    ]
}

// ---------------------------------------------------------------------------
// Reading the document back.
// ---------------------------------------------------------------------------

const OPEN: &str = "<!-- example:";
const CLOSE: &str = "<!-- /example -->";

/// Byte range of the content between `<!-- example:NAME -->` and the next
/// `<!-- /example -->`, each on its own line.
fn block_range(doc: &str, name: &str) -> std::ops::Range<usize> {
    let open = format!("{OPEN}{name} -->\n");
    let starts: Vec<usize> = doc.match_indices(&open).map(|(i, _)| i).collect();
    assert_eq!(
        starts.len(),
        1,
        "ENCODING.md must contain the marker {open:?} exactly once"
    );
    let start = starts[0] + open.len();
    let end = doc[start..]
        .find(CLOSE)
        .map(|i| start + i)
        .unwrap_or_else(|| panic!("example {name} has no closing {CLOSE:?}"));
    assert!(
        end == start || doc[..end].ends_with('\n'),
        "the closing marker of example {name} must start a line"
    );
    start..end
}

fn marker_names(doc: &str) -> BTreeSet<String> {
    doc.match_indices(OPEN)
        .map(|(i, _)| {
            let rest = &doc[i + OPEN.len()..];
            rest[..rest.find(" -->").expect("unterminated marker")].to_string()
        })
        .collect()
}

/// Fenced code blocks of a text: (info string, content).
fn fences(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.to_string(), String::new())),
            (Some(_), Some("")) => out.extend(current.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "unterminated code fence");
    out
}

/// Parses an annotated table back into bytes, checking that every offset
/// equals the number of bytes before it.
fn parse_layout(table: &str) -> Vec<u8> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.trim_start().starts_with("offset"), "{header:?}");
    let mut bytes = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let offset: usize = words.next().unwrap().parse().unwrap();
        assert_eq!(offset, bytes.len(), "wrong offset on line {line:?}");
        let hex_column = words.next().unwrap_or_else(|| panic!("no bytes: {line:?}"));
        bytes.extend(hex::decode(hex_column).unwrap());
    }
    bytes
}

fn parse_hex(dump: &str) -> Vec<u8> {
    hex::decode(dump.lines().collect::<String>()).unwrap()
}

/// The byte strings an example block shows, checking on the way that each
/// annotated table concatenates to the full hex that follows it.
fn block_bytes(name: &str, block: &str) -> Vec<Vec<u8>> {
    let fences = fences(block);
    let tables: Vec<&String> = fences
        .iter()
        .filter(|(info, body)| info == "text" && body.trim_start().starts_with("offset"))
        .map(|(_, body)| body)
        .collect();
    let dumps: Vec<&String> = fences
        .iter()
        .filter(|(info, _)| info == "hex")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(
        tables.len(),
        dumps.len(),
        "example {name}: tables and dumps"
    );
    tables
        .iter()
        .zip(&dumps)
        .map(|(table, dump)| {
            let annotated = parse_layout(table);
            let full = parse_hex(dump);
            assert_eq!(
                hex::encode(&annotated),
                hex::encode(&full),
                "example {name}: the annotated fields do not concatenate to the full hex"
            );
            full
        })
        .collect()
}

fn text_fences(block: &str) -> Vec<String> {
    fences(block)
        .into_iter()
        .filter(|(info, body)| info == "text" && !body.trim_start().starts_with("offset"))
        .map(|(_, body)| body)
        .collect()
}

// ---------------------------------------------------------------------------
// What each example's bytes must decode to.
// ---------------------------------------------------------------------------

fn only(name: &str, shown: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(shown.len(), 1, "example {name} shows one byte string");
    shown[0].clone()
}

fn check_decodes(w: &World, name: &str, block: &str) {
    let shown = block_bytes(name, block);
    match name {
        "enum-numbers" => assert!(shown.is_empty()),
        "key-id" => {
            let bytes = only(name, &shown);
            let (name_bytes, rest) = bytes.split_at(bytes.len() - 34);
            assert_eq!(&rest[..2], &[0x0a, 0x01]);
            let key = PublicKey::from_slice(&rest[2..]).unwrap();
            let verifier = NoteVerifier::new(
                std::str::from_utf8(name_bytes).unwrap(),
                key.verifying_key().unwrap(),
            )
            .unwrap();
            assert_eq!(verifier.key_id(), sha256(&bytes).as_bytes()[..4]);
            assert_eq!(verifier, w.verifier);
            assert_eq!(
                checkpoint::parse_verifier_key(&verifier.verifier_key()).unwrap(),
                w.verifier
            );
        }
        "genesis-event" | "register-participant-event" => {
            let bytes = only(name, &shown);
            let want = if name == "genesis-event" {
                (&w.genesis, &w.genesis_signed)
            } else {
                (&w.register, &w.register_signed)
            };
            assert_eq!(&codec::decode::<Event>(&bytes).unwrap(), want.0);
            assert_eq!(sha256(&bytes), want.1.event_id());
        }
        "signed-event" => {
            let bytes = only(name, &shown);
            // The envelope has no tag of its own: it is read with the
            // plain bincode configuration the prefix is followed by.
            let config = bincode::config::standard()
                .with_little_endian()
                .with_fixed_int_encoding();
            let (envelope, read): (SignedEvent, usize) =
                bincode::serde::decode_from_slice(&bytes, config).unwrap();
            assert_eq!(read, bytes.len());
            assert_eq!(envelope, w.register_signed);
            assert_eq!(&w.entry1_bytes[66..], bytes.as_slice());
            envelope
                .key
                .verify_strict(&envelope.event, &envelope.signature)
                .unwrap();
            assert_eq!(codec::decode::<Event>(&envelope.event).unwrap(), w.register);
        }
        "genesis-entry" | "register-entry" => {
            let bytes = only(name, &shown);
            let (want, leaf) = if name == "genesis-entry" {
                (&w.entry0, w.leaf0)
            } else {
                (&w.entry1, w.leaf1)
            };
            assert_eq!(&codec::decode::<Entry>(&bytes).unwrap(), want);
            let mut preimage = vec![0x00];
            preimage.extend(&bytes);
            assert_eq!(sha256(&preimage).as_bytes(), &leaf);
            assert_eq!(merkle::leaf_hash(&bytes), leaf);
        }
        "tree-root" => {
            let bytes = only(name, &shown);
            assert_eq!(bytes[0], 0x01);
            let left: Hash = bytes[1..33].try_into().unwrap();
            let right: Hash = bytes[33..].try_into().unwrap();
            assert_eq!((left, right), (w.leaf0, w.leaf1));
            let root = *sha256(&bytes).as_bytes();
            assert_eq!(root, merkle::node_hash(&left, &right));
            assert_eq!(root, MemoryNodes::from_leaves([left, right]).root());
            // The proofs the block lists are one sibling each.
            merkle::verify_inclusion(&left, 0, 2, &[right], &root).unwrap();
            merkle::verify_inclusion(&right, 1, 2, &[left], &root).unwrap();
            merkle::verify_consistency(1, 2, &left, &root, &[right]).unwrap();
            for listed in [
                format!("section 2.1.3): [`{}`]", hex::encode(right)),
                format!("entry 1 in the tree of size 2: [`{}`]", hex::encode(left)),
                format!("section 2.1.4): [`{}`]", hex::encode(right)),
            ] {
                assert!(block.contains(&listed), "the block lists {listed}");
            }
        }
        "checkpoint-note" => {
            assert_eq!(shown.len(), 2, "body and signature");
            let body = std::str::from_utf8(&shown[0]).unwrap();
            assert_eq!(checkpoint::parse_body(body).unwrap(), w.checkpoint2);
            assert_eq!(&shown[1][..4], &w.verifier.key_id());
            let signature = Signature::from_slice(&shown[1][4..]).unwrap();
            w.log_key
                .public()
                .verify_strict(body.as_bytes(), &signature)
                .unwrap();
            let notes = text_fences(block);
            assert_eq!(notes.len(), 1);
            let note = &notes[0];
            assert!(note.starts_with(body));
            assert_eq!(checkpoint::open(note, &w.verifier).unwrap(), w.checkpoint2);
            let stored = w.record2.note(ORIGIN, &w.log_key.public()).unwrap();
            assert_eq!(&stored, note, "the note rebuilt from the stored record");
        }
        "checkpoint-record" => {
            let bytes = only(name, &shown);
            assert_eq!(
                codec::decode::<CheckpointRecord>(&bytes).unwrap(),
                w.record2
            );
        }
        "log-file" => {
            let bytes = only(name, &shown);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log");
            std::fs::write(&path, &bytes).unwrap();
            let report = verify_log(&path, false).unwrap();
            assert_eq!((report.entries, report.checkpoints), (2, 2));
            assert_eq!(report.root, w.root2);
            assert_eq!(report.origin, ORIGIN);
            assert_eq!(report.checkpoint, w.note2);
            assert_eq!(report.log_key, w.verifier.verifier_key());
            // Cutting the final checkpoint frame leaves a torn tail.
            let record_len = codec::encode(&w.record2).unwrap().len();
            std::fs::write(&path, &bytes[..bytes.len() - 13 - record_len]).unwrap();
            let torn = verify_log(&path, false).unwrap_err();
            assert_eq!(torn.index, 1, "{torn}");
        }
        "key-file" => {
            assert!(shown.is_empty());
            let texts = text_fences(block);
            assert_eq!(texts.len(), 1);
            let dir = tempfile::tempdir().unwrap();
            let written = dir.path().join("written.key");
            w.log_key.write_file(&written).unwrap();
            assert_eq!(std::fs::read_to_string(&written).unwrap(), texts[0]);
            let shown_path = dir.path().join("shown.key");
            std::fs::write(&shown_path, &texts[0]).unwrap();
            let read = SecretKey::read_file(&shown_path).unwrap();
            assert_eq!(read.public(), w.log_key.public());
        }
        other => panic!("no check for example {other}"),
    }
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

#[test]
fn document_examples_match_the_library() {
    let world = World::new();
    let examples = examples(&world);
    let mut doc = std::fs::read_to_string(DOC).unwrap();

    let generated: BTreeSet<String> = examples.iter().map(|e| e.name.to_string()).collect();
    assert_eq!(
        marker_names(&doc),
        generated,
        "ENCODING.md must have one marker pair per generated example"
    );

    if std::env::var("ORETRAIL_BLESS").as_deref() == Ok("1") {
        // Check before writing, so that a bless never leaves behind a
        // document whose examples contradict themselves.
        for example in &examples {
            check_decodes(&world, example.name, &example.text);
        }
        for example in &examples {
            let range = block_range(&doc, example.name);
            doc.replace_range(range, &example.text);
        }
        std::fs::write(DOC, &doc).unwrap();
    } else {
        let stale: Vec<&str> = examples
            .iter()
            .filter(|e| doc[block_range(&doc, e.name)] != e.text)
            .map(|e| e.name)
            .collect();
        for name in &stale {
            let shown = &doc[block_range(&doc, name)];
            let want = &examples.iter().find(|e| e.name == *name).unwrap().text;
            let first = shown
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(shown.lines().count().min(want.lines().count()));
            eprintln!(
                "example {name} differs from line {} of its block: document has {:?}, library gives {:?}",
                first + 1,
                shown.lines().nth(first),
                want.lines().nth(first)
            );
        }
        assert!(
            stale.is_empty(),
            "examples {stale:?} in schemas/ENCODING.md are out of date; if the format change is \
             deliberate, regenerate them with `{BLESS}`"
        );
    }

    for example in &examples {
        check_decodes(&world, example.name, &doc[block_range(&doc, example.name)]);
    }
}

/// The document's layout rules, as implemented by [`event_layout`], give
/// the library's bytes for every kind of event, not only those shown.
#[test]
fn layout_rules_match_the_codec_for_every_event_kind() {
    let w = World::new();
    let mine = pid("mine.kansanshi");
    let key = |b: u8| seed(b).public();
    let bodies = [
        w.genesis.body.clone(),
        w.register.body.clone(),
        EventBody::RegisterParticipant(Registration {
            participant: pid("lab-1_x"),
            legal_name: "Ünïcode Assay GmbH".into(),
            country: country("DE"),
            kinds: ALL_KINDS.to_vec(),
            roles: ALL_ROLES.to_vec(),
            keys: vec![key(4), key(5)],
        }),
        EventBody::AddKey(KeyAdded {
            participant: mine.clone(),
            key: key(6),
        }),
        EventBody::RotateKey(KeyRotated {
            participant: mine.clone(),
            old: key(3),
            new: key(7),
        }),
        EventBody::RevokeKey(KeyRevoked {
            participant: mine,
            key: key(7),
            reason: "laptop stolen".into(),
        }),
    ];
    let mut seen = BTreeSet::new();
    for (nonce, body) in bodies.into_iter().enumerate() {
        seen.insert(body_number(&body).0);
        let event = Event {
            nonce: u64::MAX - nonce as u64,
            body,
            ..w.register.clone()
        };
        let layout = event_layout(&event);
        let bytes = codec::encode(&event).unwrap();
        assert_eq!(
            hex::encode(layout.bytes()),
            hex::encode(&bytes),
            "{event:?}"
        );
        assert_eq!(codec::decode::<Event>(&bytes).unwrap(), event);
    }
    assert_eq!(seen.len(), 5, "every event body variant is covered");
}

/// The tags and versions the document lists are the ones the code uses.
#[test]
fn tags_and_versions_match_the_document() {
    fn tag_of<T: Canonical>() -> (String, u16) {
        let tag = String::from_utf8(T::TAG.to_vec()).unwrap();
        (tag.trim_end_matches('\0').to_string(), T::VERSION)
    }
    assert_eq!(tag_of::<Event>(), ("oretrail.event".into(), 1));
    assert_eq!(tag_of::<Entry>(), ("oretrail.entry".into(), 1));
    assert_eq!(tag_of::<CheckpointRecord>(), ("oretrail.ckpt".into(), 1));
    assert_eq!(
        tag_of::<oretrail::model::StateValue>(),
        ("oretrail.state".into(), 1)
    );
    assert_eq!(&oretrail::store::log::LOG_HEADER, LOG_HEADER);
    assert_eq!(&oretrail::store::log::FRAME_MAGIC, FRAME_MAGIC);
    let doc = std::fs::read_to_string(DOC).unwrap();
    for tag in [
        "oretrail.event",
        "oretrail.entry",
        "oretrail.ckpt",
        "oretrail.state",
    ] {
        assert!(doc.contains(&format!("`{tag}`")), "ENCODING.md names {tag}");
    }
}

/// Decoding refuses what the document says a verifier must refuse.
#[test]
fn decoding_refuses_what_the_document_says_it_refuses() {
    let w = World::new();
    let good = codec::encode(&w.register).unwrap();
    let refused = |bytes: &[u8]| codec::decode::<Event>(bytes).is_err();
    assert!(!refused(&good));

    let mut wrong_tag = good.clone();
    wrong_tag[..16].copy_from_slice(&codec::tag("oretrail.entry"));
    assert!(refused(&wrong_tag), "a wrong tag");

    let mut wrong_version = good.clone();
    wrong_version[16] = 2;
    assert!(refused(&wrong_version), "an unknown version");

    let mut trailing = good.clone();
    trailing.push(0);
    assert!(refused(&trailing), "trailing bytes");
    assert!(refused(&good[..good.len() - 1]), "a truncated structure");

    // Offsets in the register-participant-event layout: the signer string
    // starts at 18 + 8 + 20, its length at 46 and its first byte at 54.
    let mut bad_id = good.clone();
    bad_id[54] = b'O';
    assert!(refused(&bad_id), "a participant id with a capital letter");

    let body_at = 18 + 28 + 16 + 8 + 8;
    let mut bad_variant = good.clone();
    bad_variant[body_at] = 5;
    assert!(refused(&bad_variant), "an unknown event body variant");

    let mut huge_length = good.clone();
    huge_length[18..26].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(refused(&huge_length), "a length past the end of the input");

    let mut not_utf8 = good.clone();
    not_utf8[26] = 0xff;
    assert!(refused(&not_utf8), "a string that is not UTF-8");

    let mut bad_country = good;
    let country_at = body_at + 4 + 8 + 14 + 8 + 20 + 8;
    assert_eq!(&bad_country[country_at..country_at + 2], b"ZM");
    bad_country[country_at] = b'z';
    assert!(refused(&bad_country), "a lowercase country code");
}

/// Stored state follows the same rules; it is the only place options
/// occur, so this pins their encoding (`00`, or `01` then the value).
#[test]
fn state_values_follow_the_layout_rules() {
    use oretrail::model::{KeyRecord, StateValue};
    let record = KeyRecord {
        key: seed(0x03).public(),
        participant: pid("mine.kansanshi"),
        valid_from: Timestamp::from_millis(GENESIS_TIME_MS),
        valid_until: Some(Timestamp::from_millis(GENESIS_TIME_MS + 1)),
        added_in: 1,
        ended_in: None,
    };
    let mut l = Layout::default();
    l.prefix("oretrail.state", 1)
        .variant("StateValue", 2, "Key")
        .fixed("KeyRecord.key", record.key.as_bytes(), KEY)
        .string("KeyRecord.participant", record.participant.as_str())
        .time("KeyRecord.valid_from", record.valid_from)
        .raw([0x01], "KeyRecord.valid_until: some")
        .time(
            "KeyRecord.valid_until",
            Timestamp::from_millis(GENESIS_TIME_MS + 1),
        )
        .u64("KeyRecord.added_in", record.added_in)
        .raw([0x00], "KeyRecord.ended_in: none");
    let value = StateValue::Key(record);
    let bytes = codec::encode(&value).unwrap();
    assert_eq!(hex::encode(l.bytes()), hex::encode(&bytes));
    assert_eq!(codec::decode::<StateValue>(&bytes).unwrap(), value);

    let mut bad_option = bytes.clone();
    let at = bytes.len() - 1;
    bad_option[at] = 2;
    assert!(codec::decode::<StateValue>(&bad_option).is_err());
}
