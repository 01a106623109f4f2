//! Witness cosignatures: C2SP tlog-cosignature/v1 with Ed25519
//! (c2sp.org/tlog-cosignature), carried as extra signature lines of a
//! C2SP signed note (c2sp.org/signed-note).
//!
//! A cosignature is a witness's statement that, as of a time, the largest
//! checkpoint of the log it has seen, and found consistent with every
//! earlier one it saw, has this root. It is a note signature line
//!
//! ```text
//! — <witness name> base64(key id || timestamp || Ed25519 signature)
//! ```
//!
//! where the key id is the first four bytes of
//! `SHA-256(name || 0x0A || 0x04 || public key)` (type 0x04 marks a
//! cosignature/v1 key, so a witness key can never be mistaken for a log
//! key, whose type is 0x01), the timestamp is eight bytes big-endian
//! (POSIX seconds, at most 2^63 - 1), and the signature covers
//!
//! ```text
//! cosignature/v1
//! time <timestamp in decimal>
//! <the checkpoint note body>
//! ```
//!
//! A buyer pins the log key and the witness keys it trusts, and accepts a
//! checkpoint only when the log signed it and every required witness
//! cosigned it ([`verify_witnessed`]); an attacker who shows that buyer a
//! forked log must then also get each of those witnesses to cosign both
//! branches, which a witness refuses (`crate::witness`).

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::checkpoint::{self, Checkpoint, Note, NoteError, NoteSignature, NoteVerifier};

/// Signature type byte of a cosignature/v1 (Ed25519) key
/// (c2sp.org/tlog-cosignature, "Format").
pub const SIGNATURE_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Largest timestamp a cosignature may carry: 2^63 - 1.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// First line of every cosigned message: the domain separation of
/// cosignature/v1 from any other use of the key.
const HEADER_LINE: &str = "cosignature/v1";

/// Bytes after the key id in a cosignature line: the big-endian timestamp
/// and the Ed25519 signature.
const PAYLOAD_LEN: usize = 8 + 64;

/// Why a cosigner key, a cosignature or a witnessed checkpoint was
/// rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// The note, its log signature or its checkpoint body is not valid.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A cosigner key line is not `<name>+<key id>+<base64 key>`.
    #[error("the cosigner key is malformed: {reason}")]
    BadCosignerKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key line is for another signature type (0x01 is a log key).
    #[error(
        "the key has signature type {found:#04x}, but a witness (cosignature/v1) key has type 0x04"
    )]
    WrongKeyType {
        /// The type byte found.
        found: u8,
    },
    /// The key id in a key line does not match its name and public key.
    #[error("the cosigner key states key ID {stated}, but its name and public key give {computed}")]
    KeyIdMismatch {
        /// Key id written in the key line.
        stated: String,
        /// Key id computed from name and key.
        computed: String,
    },
    /// The public key bytes are not a usable Ed25519 key.
    #[error("the public key is not a valid Ed25519 public key or is a weak (small-order) key")]
    BadPublicKey,
    /// A cosignature line whose payload is not a timestamp and a signature.
    #[error(
        "the cosignature by {name} holds {len} bytes after its key ID, not 72 (timestamp and signature)"
    )]
    WrongLength {
        /// The witness's key name.
        name: String,
        /// Bytes found after the key id.
        len: usize,
    },
    /// A timestamp beyond what the spec allows.
    #[error("the cosignature timestamp {timestamp} is larger than 2^63 - 1")]
    TimestampTooLarge {
        /// The timestamp found or asked for.
        timestamp: u64,
    },
    /// A line from the witness's key does not verify: the checkpoint or the
    /// line was altered, or it was made for another checkpoint.
    #[error("the cosignature by {name} does not verify over the checkpoint")]
    InvalidCosignature {
        /// The witness's key name.
        name: String,
    },
    /// A signature line checked against a witness it is not from.
    #[error("the signature line of {found} is not from the witness {name}")]
    OtherKey {
        /// The witness's key name.
        name: String,
        /// The name on the line.
        found: String,
    },
    /// Required witnesses did not cosign the checkpoint.
    #[error("the checkpoint is not cosigned by {}", names.join(", "))]
    MissingCosignatures {
        /// Names of the required witnesses without a cosignature.
        names: Vec<String>,
    },
}

/// Key id of a cosignature/v1 key: the first four bytes of
/// `SHA-256(name || 0x0A || 0x04 || public key)` (c2sp.org/tlog-cosignature).
pub fn cosigner_key_id(name: &str, pk: &[u8; 32]) -> [u8; 4] {
    checkpoint::typed_key_id(name, SIGNATURE_TYPE_COSIGNATURE_V1, pk)
}

/// The message a cosignature/v1 signature covers: the header line, the
/// time line and the checkpoint note body (c2sp.org/tlog-cosignature,
/// "Ed25519 signed message").
pub fn signed_message(body: &str, timestamp: u64) -> String {
    format!("{HEADER_LINE}\ntime {timestamp}\n{body}")
}

/// A witness key as a log operator or a buyer trusts it: name, key id and
/// Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignerVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl CosignerVerifier {
    /// The verifier of `key` under `name`; the key id is derived. Weak
    /// (small-order) keys are refused, as for log keys.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, CosignatureError> {
        checkpoint::check_key_name(name)?;
        if key.is_weak() {
            return Err(CosignatureError::BadPublicKey);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: cosigner_key_id(name, key.as_bytes()),
            key,
        })
    }

    /// Parses a key line `<name>+<key id hex>+<base64(0x04 || public key)>`
    /// (the verifier key form of c2sp.org/signed-note with type 0x04),
    /// checking the name, the type, the key and that the key id matches.
    pub fn parse(line: &str) -> Result<Self, CosignatureError> {
        let malformed = |reason| CosignatureError::BadCosignerKey { reason };
        let parts =
            checkpoint::split_key_line(line.trim_end_matches(['\n', '\r'])).map_err(|fault| {
                match fault {
                    checkpoint::KeyLineFault::Malformed(reason) => malformed(reason),
                    checkpoint::KeyLineFault::Base64 => malformed("the key is not standard base64"),
                }
            })?;
        checkpoint::check_key_name(parts.name)?;
        if parts.key_type != SIGNATURE_TYPE_COSIGNATURE_V1 {
            return Err(CosignatureError::WrongKeyType {
                found: parts.key_type,
            });
        }
        let pk: [u8; 32] = parts
            .key
            .as_slice()
            .try_into()
            .map_err(|_| malformed("an Ed25519 public key must be 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| CosignatureError::BadPublicKey)?;
        let verifier = Self::new(parts.name, key)?;
        if verifier.key_id != parts.stated_id {
            return Err(CosignatureError::KeyIdMismatch {
                stated: hex::encode(parts.stated_id),
                computed: hex::encode(verifier.key_id),
            });
        }
        Ok(verifier)
    }

    /// The witness's key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The key line `<name>+<key id hex>+<base64(0x04 || public key)>`.
    pub fn key_line(&self) -> String {
        checkpoint::key_line(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            self.key.as_bytes(),
        )
    }

    /// Whether a signature line carries this witness's name and key id
    /// (lines of other keys are none of its business).
    pub fn is_signer_of(&self, line: &NoteSignature) -> bool {
        line.name() == self.name && line.key_id() == self.key_id
    }

    /// Checks one cosignature line over the checkpoint note `body`; returns
    /// its timestamp. `verify_strict` refuses malleable signatures, so a
    /// cosignature cannot be altered into another valid one.
    pub fn verify_line(&self, body: &str, line: &NoteSignature) -> Result<u64, CosignatureError> {
        if !self.is_signer_of(line) {
            return Err(CosignatureError::OtherKey {
                name: self.name.clone(),
                found: line.name().to_owned(),
            });
        }
        let (timestamp, signature) = split_payload(line)?;
        self.key
            .verify_strict(
                signed_message(body, timestamp).as_bytes(),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| CosignatureError::InvalidCosignature {
                name: self.name.clone(),
            })?;
        Ok(timestamp)
    }

    /// Checks a note for this witness's cosignature, per signed-note rules:
    /// lines of other keys are ignored, every line of this key must verify
    /// (a failing one means tampering), and the newest timestamp among them
    /// is returned; `None` when the witness did not cosign.
    pub fn verify_note(&self, note: &Note) -> Result<Option<u64>, CosignatureError> {
        let mut newest = None;
        for line in note.signatures().iter().filter(|l| self.is_signer_of(l)) {
            let timestamp = self.verify_line(note.body(), line)?;
            newest = newest.max(Some(timestamp));
        }
        Ok(newest)
    }
}

impl fmt::Display for CosignerVerifier {
    /// The key line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key_line())
    }
}

/// The timestamp and signature of a cosignature line.
fn split_payload(line: &NoteSignature) -> Result<(u64, [u8; 64]), CosignatureError> {
    let payload = line.signature();
    let wrong_length = || CosignatureError::WrongLength {
        name: line.name().to_owned(),
        len: payload.len(),
    };
    if payload.len() != PAYLOAD_LEN {
        return Err(wrong_length());
    }
    let (time, signature) = payload.split_at(8);
    let timestamp = u64::from_be_bytes(time.try_into().map_err(|_| wrong_length())?);
    if timestamp > MAX_TIMESTAMP {
        return Err(CosignatureError::TimestampTooLarge { timestamp });
    }
    Ok((timestamp, signature.try_into().map_err(|_| wrong_length())?))
}

/// The timestamp a cosignature line states, without checking its
/// signature (for ordering lines already verified).
pub fn timestamp_of(line: &NoteSignature) -> Result<u64, CosignatureError> {
    split_payload(line).map(|(timestamp, _)| timestamp)
}

/// A witness's signing key under its name.
pub struct Cosigner {
    verifier: CosignerVerifier,
    key: SigningKey,
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cosigner({})", self.verifier)
    }
}

impl Cosigner {
    /// The cosigner `name` signing with `key`.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, CosignatureError> {
        Ok(Self {
            verifier: CosignerVerifier::new(name, key.verifying_key())?,
            key,
        })
    }

    /// The verifier of this cosigner's signatures (its key line).
    pub fn verifier(&self) -> &CosignerVerifier {
        &self.verifier
    }

    /// Cosigns `checkpoint` as of `timestamp` (POSIX seconds): the line to
    /// append to the log's signed note.
    pub fn cosign(
        &self,
        checkpoint: &Checkpoint,
        timestamp: u64,
    ) -> Result<NoteSignature, CosignatureError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::TimestampTooLarge { timestamp });
        }
        let message = signed_message(&checkpoint.body(), timestamp);
        let signature = self.key.sign(message.as_bytes());
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.extend_from_slice(&timestamp.to_be_bytes());
        payload.extend_from_slice(&signature.to_bytes());
        Ok(NoteSignature::new(
            self.verifier.name(),
            self.verifier.key_id(),
            payload,
        )?)
    }
}

/// One verified cosignature of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessCosignature {
    /// The witness's key name.
    pub name: String,
    /// The witness's key id.
    pub key_id: [u8; 4],
    /// When the witness cosigned (POSIX seconds); the newest of its lines.
    pub timestamp: u64,
}

/// A checkpoint the log signed, with the cosignatures of the given
/// witnesses that it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    checkpoint: Checkpoint,
    cosignatures: Vec<WitnessCosignature>,
}

impl Witnessed {
    /// The checkpoint, verified under the log key.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The witnesses that cosigned it, in the order they were asked about.
    pub fn cosignatures(&self) -> &[WitnessCosignature] {
        &self.cosignatures
    }

    /// Fails naming every witness of `required` that did not cosign.
    pub fn require(&self, required: &[CosignerVerifier]) -> Result<(), CosignatureError> {
        let names: Vec<String> = required
            .iter()
            .filter(|w| {
                !self
                    .cosignatures
                    .iter()
                    .any(|c| c.name == w.name() && c.key_id == w.key_id())
            })
            .map(|w| w.name().to_owned())
            .collect();
        if names.is_empty() {
            Ok(())
        } else {
            Err(CosignatureError::MissingCosignatures { names })
        }
    }
}

/// Opens a cosigned checkpoint note: the log's signature must verify under
/// `log` (as [`checkpoint::open`] checks it), and every line of each of
/// `witnesses` must verify; returns the checkpoint and which of the
/// witnesses cosigned it. Lines of keys not named are ignored.
pub fn open_witnessed(
    note: impl AsRef<[u8]>,
    log: &NoteVerifier,
    witnesses: &[CosignerVerifier],
) -> Result<Witnessed, CosignatureError> {
    let note = Note::parse(note)?;
    note.verify(log)?;
    let checkpoint = checkpoint::parse_body(note.body())?;
    let mut cosignatures = Vec::new();
    for witness in witnesses {
        if let Some(timestamp) = witness.verify_note(&note)? {
            cosignatures.push(WitnessCosignature {
                name: witness.name().to_owned(),
                key_id: witness.key_id(),
                timestamp,
            });
        }
    }
    Ok(Witnessed {
        checkpoint,
        cosignatures,
    })
}

/// [`open_witnessed`], failing unless every witness of `required` cosigned:
/// "this checkpoint is signed by the log key and cosigned by these
/// witnesses".
pub fn verify_witnessed(
    note: impl AsRef<[u8]>,
    log: &NoteVerifier,
    required: &[CosignerVerifier],
) -> Result<Witnessed, CosignatureError> {
    let witnessed = open_witnessed(note, log, required)?;
    witnessed.require(required)?;
    Ok(witnessed)
}

#[cfg(test)]
mod tests;
