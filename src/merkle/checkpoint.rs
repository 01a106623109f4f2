//! C2SP checkpoints (c2sp.org/tlog-checkpoint) carried in C2SP signed notes
//! (c2sp.org/signed-note) with Ed25519 signatures.
//!
//! A signed checkpoint looks like this:
//!
//! ```text
//! example.com/oretrail
//! 5
//! <base64 root hash>
//!
//! — example.com/oretrail <base64(key id || Ed25519 signature)>
//! ```
//!
//! The note *text* (here called the body) is everything before the blank
//! line, including its final newline; that is exactly what is signed. The
//! blank line is a separator, not part of the body. Signature lines start
//! with an EM DASH (U+2014) and a space. Lines from keys the verifier does
//! not know are skipped, which is what lets witnesses append cosignatures.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::Hash;

/// Signature type byte for Ed25519 in the C2SP signed-note spec.
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Most signature lines accepted in one note. The signed-note spec requires
/// accepting at least 16; a cap keeps a hostile note from costing unbounded
/// work.
pub const MAX_SIGNATURES: usize = 100;

/// Length of an Ed25519 signature.
const ED25519_SIGNATURE_LEN: usize = 64;

/// Start of every signature line: EM DASH (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Why a note, checkpoint or verifier key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note bytes are not UTF-8.
    #[error("the note is not valid UTF-8")]
    NotUtf8,
    /// Signed notes may contain no control characters except newline.
    #[error("the note contains an ASCII control character other than newline")]
    ControlCharacter,
    /// The note text before the blank line is empty.
    #[error("the note text is empty")]
    EmptyBody,
    /// The note text must end in a newline so the blank line can follow it.
    #[error("the note text does not end in a newline")]
    BodyNotNewlineTerminated,
    /// No blank line separates the text from the signatures.
    #[error("the note has no blank line between its text and its signatures")]
    MissingBlankLine,
    /// The blank line is not followed by any signature line.
    #[error("the note has no signature lines")]
    NoSignatures,
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("the note has more than {max} signature lines")]
    TooManySignatures {
        /// The limit that was exceeded.
        max: usize,
    },
    /// The note has text after its last newline.
    #[error("the note has text after its last signature line that does not end in a newline")]
    TrailingText,
    /// A line after the blank line is not of the form `— <name> <base64>`.
    #[error("signature line {line} is malformed: {reason}")]
    MalformedSignatureLine {
        /// 1-based position among the signature lines.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Key names must be non-empty and contain no whitespace or `+`.
    #[error("the key name {name:?} is empty or contains whitespace, a control character or '+'")]
    BadKeyName {
        /// The offending name.
        name: String,
    },
    /// A field that should be standard base64 is not.
    #[error("the {what} is not valid standard base64")]
    BadBase64 {
        /// Which field failed to decode.
        what: &'static str,
    },
    /// A signature too short to hold a key ID and any signature bytes.
    #[error(
        "a signature decodes to {len} bytes, fewer than the 5 needed for a key ID and a signature"
    )]
    SignatureTooShort {
        /// Decoded length.
        len: usize,
    },
    /// No signature line carries the verifier's name and key ID.
    #[error("the note has no signature from the key {name} with key ID {key_id}")]
    NoMatchingSignature {
        /// The verifier's key name.
        name: String,
        /// The verifier's key ID as lowercase hex.
        key_id: String,
    },
    /// A signature line from the verifier's key does not verify.
    #[error("the signature by the key {name} does not verify over the note text")]
    InvalidSignature {
        /// The verifier's key name.
        name: String,
    },
    /// A verifier key string is not `<name>+<hex key id>+<base64 key>`.
    #[error("the verifier key is malformed: {reason}")]
    BadVerifierKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The verifier key is for a signature type other than Ed25519.
    #[error(
        "the verifier key has signature type {found:#04x}, but only Ed25519 (0x01) is supported"
    )]
    UnsupportedKeyType {
        /// The type byte found.
        found: u8,
    },
    /// The key ID in a verifier key does not match its name and public key.
    #[error("the verifier key states key ID {stated}, but its name and public key give {computed}")]
    KeyIdMismatch {
        /// Key ID written in the verifier key.
        stated: String,
        /// Key ID computed from name and key.
        computed: String,
    },
    /// The public key bytes are not a usable Ed25519 key.
    #[error("the public key is not a valid Ed25519 public key or is a weak (small-order) key")]
    BadPublicKey,
    /// A checkpoint body is exactly origin, size and root hash.
    #[error(
        "a checkpoint body needs exactly 3 lines (origin, tree size, root hash), but has {found}"
    )]
    WrongLineCount {
        /// Number of lines found.
        found: usize,
    },
    /// The origin line is unusable.
    #[error("the checkpoint origin is invalid: {reason}")]
    BadOrigin {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The size line is not a canonical decimal `u64`.
    #[error(
        "the checkpoint tree size is not a decimal number without leading zeros that fits in 64 bits"
    )]
    BadSize,
    /// The root hash line is not base64 of 32 bytes.
    #[error("the checkpoint root hash is not the standard base64 encoding of 32 bytes")]
    BadRootHash,
}

/// Signed-note text rule: no ASCII control characters except newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::ControlCharacter);
    }
    Ok(())
}

/// Whether `name` is a valid key name: non-empty, no Unicode whitespace, no
/// `+` (it separates fields in a verifier key), and no ASCII control
/// characters (notes may not contain them).
fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || u32::from(c) < 0x20)
}

pub(super) fn check_key_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::BadKeyName {
            name: name.to_owned(),
        })
    }
}

/// Body text rule: non-empty, ends in a newline, no control characters.
fn check_body(body: &str) -> Result<(), NoteError> {
    if body.is_empty() {
        return Err(NoteError::EmptyBody);
    }
    if !body.ends_with('\n') {
        return Err(NoteError::BodyNotNewlineTerminated);
    }
    check_text(body)
}

/// The tree head a log commits to: origin, tree size and root hash
/// (c2sp.org/tlog-checkpoint), without extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
}

impl Checkpoint {
    /// A checkpoint for the log `origin` at `size` leaves with root `root`.
    ///
    /// The origin must be non-empty, free of control characters (so no
    /// newline, which would shift the body's lines), and without leading or
    /// trailing whitespace (it would not survive being copied around).
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self, NoteError> {
        let origin = origin.into();
        if origin.is_empty() {
            return Err(NoteError::BadOrigin {
                reason: "it is empty",
            });
        }
        if origin.chars().any(char::is_control) {
            return Err(NoteError::BadOrigin {
                reason: "it contains a newline or another control character",
            });
        }
        if origin.trim() != origin {
            return Err(NoteError::BadOrigin {
                reason: "it starts or ends with whitespace",
            });
        }
        Ok(Self { origin, size, root })
    }

    /// The log identity this checkpoint belongs to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Root hash of the tree at [`Self::size`].
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }
}

/// Parse a checkpoint body (the note text, including its final newline).
///
/// Exactly three lines are accepted: this log never writes extension lines,
/// and accepting unknown ones would let unaudited text ride along with a
/// signature.
pub fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
    check_body(body)?;
    let lines: Vec<&str> = body[..body.len() - 1].split('\n').collect();
    let [origin, size, root] = lines[..] else {
        return Err(NoteError::WrongLineCount { found: lines.len() });
    };
    // tlog-checkpoint: ASCII decimal, no leading zeros except "0" itself.
    // `u64::from_str` alone would also accept a leading '+'.
    if size.is_empty()
        || !size.bytes().all(|b| b.is_ascii_digit())
        || (size.len() > 1 && size.starts_with('0'))
    {
        return Err(NoteError::BadSize);
    }
    let size: u64 = size.parse().map_err(|_| NoteError::BadSize)?;
    let root: Hash = BASE64
        .decode(root)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(NoteError::BadRootHash)?;
    Checkpoint::new(origin, size, root)
}

/// Key ID of an Ed25519 note key: the first four bytes of
/// `SHA-256(name || 0x0A || 0x01 || public key)` (c2sp.org/signed-note).
pub fn key_id(name: &str, pk: &VerifyingKey) -> [u8; 4] {
    key_id_of_bytes(name, pk.as_bytes())
}

/// [`key_id`] from the key's 32 encoded bytes, without decoding the point
/// (the id hashes the bytes, so decoding would be wasted work).
pub fn key_id_of_bytes(name: &str, pk: &[u8; 32]) -> [u8; 4] {
    typed_key_id(name, SIGNATURE_TYPE_ED25519, pk)
}

/// Key ID of a signed-note key of signature type `key_type`: the first four
/// bytes of `SHA-256(name || 0x0A || key_type || public key)`.
pub(crate) fn typed_key_id(name: &str, key_type: u8, pk: &[u8; 32]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', key_type]);
    hasher.update(pk);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A signed-note key line `<name>+<key id hex>+<base64(key_type || pk)>`.
pub(crate) fn key_line(name: &str, key_id: [u8; 4], key_type: u8, pk: &[u8; 32]) -> String {
    let mut typed = Vec::with_capacity(33);
    typed.push(key_type);
    typed.extend_from_slice(pk);
    format!("{name}+{}+{}", hex::encode(key_id), BASE64.encode(typed))
}

/// What is wrong with the form of a key line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyLineFault {
    Malformed(&'static str),
    /// The key is not standard base64.
    Base64,
}

/// A key line split into its name (checked), stated key id, type byte and
/// key bytes (not yet checked to be a key of that type).
pub(crate) struct KeyLineParts<'a> {
    pub name: &'a str,
    pub stated_id: [u8; 4],
    pub key_type: u8,
    pub key: Vec<u8>,
}

/// Splits `<name>+<key id hex>+<base64(type || key)>`.
pub(crate) fn split_key_line(line: &str) -> Result<KeyLineParts<'_>, KeyLineFault> {
    // The name cannot contain '+', but the base64 key may, so split twice.
    let mut parts = line.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyLineFault::Malformed(
            "it does not have the form <name>+<key id>+<key>",
        ));
    };
    let mut stated_id = [0u8; 4];
    if id_hex.len() != 8 || hex::decode_to_slice(id_hex, &mut stated_id).is_err() {
        return Err(KeyLineFault::Malformed(
            "the key ID is not 8 hexadecimal digits",
        ));
    }
    let typed = BASE64.decode(key_b64).map_err(|_| KeyLineFault::Base64)?;
    let Some((&key_type, key)) = typed.split_first() else {
        return Err(KeyLineFault::Malformed("the key data is empty"));
    };
    Ok(KeyLineParts {
        name,
        stated_id,
        key_type,
        key: key.to_vec(),
    })
}

/// The verifier key string `<name>+<key id hex>+<base64(0x01 || pk)>`, the
/// form used by Go's sumdb/note and by witnesses to name a trusted key.
pub fn verifier_key(name: &str, pk: &VerifyingKey) -> Result<String, NoteError> {
    Ok(NoteVerifier::new(name, *pk)?.verifier_key())
}

/// Parse a verifier key string, checking the name, the Ed25519 type byte,
/// the public key, and that the stated key ID matches name and key.
pub fn parse_verifier_key(text: &str) -> Result<NoteVerifier, NoteError> {
    let parts = split_key_line(text).map_err(|fault| match fault {
        KeyLineFault::Malformed(reason) => NoteError::BadVerifierKey { reason },
        KeyLineFault::Base64 => NoteError::BadBase64 {
            what: "verifier public key",
        },
    })?;
    check_key_name(parts.name)?;
    if parts.key_type != SIGNATURE_TYPE_ED25519 {
        return Err(NoteError::UnsupportedKeyType {
            found: parts.key_type,
        });
    }
    let pk: [u8; 32] = parts
        .key
        .as_slice()
        .try_into()
        .map_err(|_| NoteError::BadVerifierKey {
            reason: "an Ed25519 public key must be 32 bytes",
        })?;
    let verifier = NoteVerifier::new(
        parts.name,
        VerifyingKey::from_bytes(&pk).map_err(|_| NoteError::BadPublicKey)?,
    )?;
    if verifier.key_id != parts.stated_id {
        return Err(NoteError::KeyIdMismatch {
            stated: hex::encode(parts.stated_id),
            computed: hex::encode(verifier.key_id),
        });
    }
    Ok(verifier)
}

/// A trusted Ed25519 note key: its name, key ID and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for `key` under `name`; the key ID is derived.
    ///
    /// Weak (small-order) public keys are refused: any signature "verifies"
    /// under some of them, and `verify_strict` would reject every signature
    /// anyway, so failing early gives the clearer error.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_key_name(name)?;
        if key.is_weak() {
            return Err(NoteError::BadPublicKey);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The verifier key string `<name>+<key id hex>+<base64(0x01 || pk)>`.
    pub fn verifier_key(&self) -> String {
        key_line(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_ED25519,
            self.key.as_bytes(),
        )
    }

    /// Whether `signature` is this key's line and verifies over `body`.
    ///
    /// `verify_strict` rejects malleable (non-canonical) signatures, so one
    /// checkpoint has only one valid signature per key.
    fn verifies(&self, body: &str, signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; ED25519_SIGNATURE_LEN]>::try_from(signature) else {
            return false;
        };
        self.key
            .verify_strict(body.as_bytes(), &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

/// One signature line of a note: key name, key ID and the signature bytes
/// (without the key ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    name: String,
    key_id: [u8; 4],
    signature: Vec<u8>,
}

impl NoteSignature {
    /// A signature line from its parts. The signature bytes are opaque here
    /// (a witness cosignature has a different layout than a log signature),
    /// but must not be empty.
    pub fn new(name: &str, key_id: [u8; 4], signature: Vec<u8>) -> Result<Self, NoteError> {
        check_key_name(name)?;
        if signature.is_empty() {
            return Err(NoteError::SignatureTooShort { len: 4 });
        }
        Ok(Self {
            name: name.to_owned(),
            key_id,
            signature,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The signature bytes, without the leading key ID.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Parse one line (without its newline); `line` numbers errors.
    fn parse_line(text: &str, line: usize) -> Result<Self, NoteError> {
        let malformed = |reason| NoteError::MalformedSignatureLine { line, reason };
        let rest = text
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| malformed("it does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("it has no space between key name and signature"))?;
        if b64.contains(' ') {
            return Err(malformed("it has more than a key name and a signature"));
        }
        check_key_name(name)?;
        let bytes = BASE64
            .decode(b64)
            .map_err(|_| NoteError::BadBase64 { what: "signature" })?;
        if bytes.len() < 5 {
            return Err(NoteError::SignatureTooShort { len: bytes.len() });
        }
        let (id, signature) = bytes.split_at(4);
        Ok(Self {
            name: name.to_owned(),
            key_id: [id[0], id[1], id[2], id[3]],
            signature: signature.to_vec(),
        })
    }
}

impl fmt::Display for NoteSignature {
    /// The line `— <name> <base64(key id || signature)>`, without newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut blob = Vec::with_capacity(4 + self.signature.len());
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&self.signature);
        write!(f, "{SIGNATURE_PREFIX}{} {}", self.name, BASE64.encode(blob))
    }
}

/// A signed note: the text (body) and its signature lines, in order.
///
/// Parsing does not verify anything; use [`Note::verify`] (or [`open`]) before
/// trusting the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    body: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// An unsigned note with the given text, which must be non-empty, end in
    /// a newline and contain no control characters other than newline.
    pub fn new(body: impl Into<String>) -> Result<Self, NoteError> {
        let body = body.into();
        check_body(&body)?;
        Ok(Self {
            body,
            signatures: Vec::new(),
        })
    }

    /// Parse a signed note per c2sp.org/signed-note: UTF-8 text without
    /// control characters (except newline), split at the *last* blank line
    /// into the text and one or more signature lines, each ending in a
    /// newline.
    pub fn parse(note: impl AsRef<[u8]>) -> Result<Self, NoteError> {
        let text = std::str::from_utf8(note.as_ref()).map_err(|_| NoteError::NotUtf8)?;
        check_text(text)?;
        // The text may itself contain blank lines; signature lines never
        // can, so the last "\n\n" is the separator. Its first newline ends
        // the body; the second is the blank line.
        let Some(split) = text.rfind("\n\n") else {
            return Err(if text.starts_with('\n') {
                NoteError::EmptyBody
            } else {
                NoteError::MissingBlankLine
            });
        };
        let body = &text[..=split];
        let block = &text[split + 2..];
        if block.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let Some(block) = block.strip_suffix('\n') else {
            return Err(NoteError::TrailingText);
        };
        let lines: Vec<&str> = block.split('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let signatures = lines
            .iter()
            .enumerate()
            .map(|(i, line)| NoteSignature::parse_line(line, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The note text, including its final newline.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Append a signature line (for example a witness cosignature).
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// Sign the text with an Ed25519 key under `name` and append the line.
    pub fn sign(&mut self, name: &str, key: &SigningKey) -> Result<(), NoteError> {
        let verifier = NoteVerifier::new(name, key.verifying_key())?;
        let signature = key.sign(self.body.as_bytes()).to_bytes().to_vec();
        self.add_signature(NoteSignature {
            name: verifier.name,
            key_id: verifier.key_id,
            signature,
        })
    }

    /// Check the note against one trusted key, per c2sp.org/signed-note:
    /// lines from other keys (other name or other key ID) are ignored; every
    /// line from this key must verify, since a failing signature from a
    /// known key means the note was tampered with; and at least one must
    /// exist. Returns the verified signature line.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<&NoteSignature, NoteError> {
        let mut verified = None;
        for sig in self
            .signatures
            .iter()
            .filter(|s| s.name == verifier.name && s.key_id == verifier.key_id)
        {
            if !verifier.verifies(&self.body, &sig.signature) {
                return Err(NoteError::InvalidSignature {
                    name: verifier.name.clone(),
                });
            }
            verified.get_or_insert(sig);
        }
        verified.ok_or_else(|| NoteError::NoMatchingSignature {
            name: verifier.name.clone(),
            key_id: hex::encode(verifier.key_id),
        })
    }
}

impl fmt::Display for Note {
    /// The note text: body, blank line, one line per signature.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body ends in a newline, so this newline is the blank line.
        writeln!(f, "{}", self.body)?;
        for sig in &self.signatures {
            writeln!(f, "{sig}")?;
        }
        Ok(())
    }
}

/// Sign a checkpoint: returns the full signed note text, body, blank line
/// and one signature line by `key` under `name`.
pub fn sign(cp: &Checkpoint, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    let mut note = Note::new(cp.body())?;
    note.sign(name, key)?;
    Ok(note.to_string())
}

/// Rebuild a signed checkpoint note from a stored 64-byte Ed25519 signature,
/// without the signing key. The signature is not checked here; [`open`] it
/// with the log's verifier to do that.
pub fn sign_with_signature(
    cp: &Checkpoint,
    name: &str,
    key_id: [u8; 4],
    signature: &[u8; ED25519_SIGNATURE_LEN],
) -> Result<String, NoteError> {
    let mut note = Note::new(cp.body())?;
    note.add_signature(NoteSignature::new(name, key_id, signature.to_vec())?)?;
    Ok(note.to_string())
}

/// Parse a signed checkpoint note, verify it against `verifier` and return
/// the checkpoint. Accepts `&str` or raw bytes (which must be UTF-8).
pub fn open(note: impl AsRef<[u8]>, verifier: &NoteVerifier) -> Result<Checkpoint, NoteError> {
    let note = Note::parse(note)?;
    note.verify(verifier)?;
    // Parse only after verifying: an unverified body is not to be trusted,
    // and a signed one that is not a checkpoint is still an error.
    parse_body(note.body())
}

#[cfg(test)]
mod tests;
