//! The witness's decision, pure: given what it remembers (the last
//! checkpoint it cosigned) and what the log serves now (a signed
//! checkpoint and a consistency proof from the remembered size), cosign or
//! refuse. Like the rules engine, it is a function of its inputs:
//! [`observe`] returns the next state and the cosignature, or the precise
//! reason it refuses, and the caller does the I/O.
//!
//! | served checkpoint | decision |
//! |---|---|
//! | not signed by the pinned log key, or not a checkpoint | refuse |
//! | another origin than the log key's name | refuse |
//! | first sight (no state) | cosign (trust on first use of the pinned key) |
//! | larger, and the RFC 9162 consistency proof verifies | cosign |
//! | larger, and the proof does not verify | refuse, alarm (`Inconsistent`) |
//! | same size, same root | cosign again with a fresh timestamp |
//! | same size, another root | refuse, alarm (`Fork`) |
//! | smaller | refuse, alarm (`Rollback`) |
//!
//! A refusal leaves the state as it was: the witness's memory only ever
//! moves forward along one consistent history, and its cosignature
//! timestamps never go backwards.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::merkle::checkpoint::{
    self, Checkpoint, Note, NoteError, NoteSignature, NoteVerifier, parse_verifier_key,
};
use crate::merkle::cosignature::{CosignatureError, Cosigner, CosignerVerifier};
use crate::merkle::{Hash, VerifyError, verify_consistency};

/// First line of a witness state file: names the format and its version.
pub const STATE_FORMAT: &str = "oretrail witness state v1";

/// What a witness remembers of one log: who it is, the log key it pinned,
/// the last checkpoint it cosigned (as the log signed it) and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessState {
    witness: CosignerVerifier,
    log: NoteVerifier,
    cosigned_at: u64,
    /// The checkpoint note with the log's signature line only.
    note: Note,
    checkpoint: Checkpoint,
}

/// Why a state file's text is not a witness state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a witness state: {0}")]
pub struct StateError(pub String);

impl WitnessState {
    /// The witness this state belongs to.
    pub fn witness(&self) -> &CosignerVerifier {
        &self.witness
    }

    /// The log key the witness pinned.
    pub fn log(&self) -> &NoteVerifier {
        &self.log
    }

    /// The last checkpoint the witness cosigned.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// When it cosigned it last (POSIX seconds).
    pub fn cosigned_at(&self) -> u64 {
        self.cosigned_at
    }

    /// That checkpoint's note as the log signed it (no cosignatures).
    pub fn note(&self) -> String {
        self.note.to_string()
    }

    /// The state file's text:
    ///
    /// ```text
    /// oretrail witness state v1
    /// witness <witness key line>
    /// log <log verifier key line>
    /// cosigned <POSIX seconds>
    ///
    /// <the checkpoint note, as the log signed it>
    /// ```
    pub fn to_text(&self) -> String {
        format!(
            "{STATE_FORMAT}\nwitness {}\nlog {}\ncosigned {}\n\n{}",
            self.witness.key_line(),
            self.log.verifier_key(),
            self.cosigned_at,
            self.note
        )
    }

    /// Parses a state file's text, checking the note's log signature and
    /// origin again: a state that does not verify is not a memory to act on.
    pub fn parse(text: &str) -> Result<Self, StateError> {
        let bad = |reason: String| StateError(reason);
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint note".into()))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(STATE_FORMAT) {
            return Err(bad(format!("the first line must be {STATE_FORMAT:?}")));
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| bad(format!("a line `{name} ...` is missing")))
        };
        let witness = CosignerVerifier::parse(field("witness")?)
            .map_err(|e| bad(format!("witness key: {e}")))?;
        let log = parse_verifier_key(field("log")?).map_err(|e| bad(format!("log key: {e}")))?;
        let cosigned = field("cosigned")?;
        let cosigned_at = cosigned
            .parse::<u64>()
            .ok()
            .filter(|_| cosigned.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad(format!("cosigned {cosigned:?} is not a number of seconds")))?;
        if lines.next().is_some() {
            return Err(bad("unexpected text before the blank line".into()));
        }
        let note = Note::parse(note).map_err(|e| bad(format!("checkpoint note: {e}")))?;
        let (note, checkpoint) =
            log_signed(&note, &log).map_err(|e| bad(format!("checkpoint note: {e}")))?;
        Ok(Self {
            witness,
            log,
            cosigned_at,
            note,
            checkpoint,
        })
    }
}

/// How the served checkpoint relates to the remembered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    /// The witness had no state for this log.
    First,
    /// The log grew from `from` entries, consistently.
    Grew {
        /// The size the witness had cosigned before.
        from: u64,
    },
    /// The same checkpoint again.
    Unchanged,
}

/// Why the witness refuses to cosign. [`Refusal::is_alarm`] tells the
/// alarms (evidence that the log is not append-only) from the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The served text is not a signed note.
    #[error("the served checkpoint is not a signed note: {0}")]
    Malformed(NoteError),
    /// The note is not signed (validly) by the pinned log key.
    #[error("the checkpoint is not signed by the log key {key}: {reason}")]
    BadLogSignature {
        /// The pinned log key's line.
        key: String,
        /// Why the signature check failed.
        reason: NoteError,
    },
    /// The signed note is not a checkpoint.
    #[error("the signed note is not a checkpoint: {0}")]
    NotACheckpoint(NoteError),
    /// The checkpoint is of another log than the one the key names.
    #[error("the checkpoint names the log {found:?}, but this witness follows {expected:?}")]
    WrongOrigin {
        /// The origin this witness follows.
        expected: String,
        /// The origin of the served checkpoint.
        found: String,
    },
    /// A log key was given that is not the one in the state.
    #[error(
        "the log key given ({given}) is not the one this witness pinned ({pinned}); a log key never changes"
    )]
    LogKeyChanged {
        /// The key line in the state.
        pinned: String,
        /// The key line given.
        given: String,
    },
    /// The state belongs to another witness key.
    #[error("this state belongs to the witness {owner}, not to {key}")]
    OtherWitness {
        /// The witness key line in the state.
        owner: String,
        /// The key line of the witness asked to cosign.
        key: String,
    },
    /// The log served a smaller tree than one it showed before.
    #[error(
        "ROLLBACK: the log {origin} serves a checkpoint of size {size}, but this witness already cosigned size {known_size}"
    )]
    Rollback {
        /// The log.
        origin: String,
        /// The size the witness cosigned.
        known_size: u64,
        /// The size served.
        size: u64,
    },
    /// The log signed two different trees of the same size.
    #[error(
        "FORK: the log {origin} serves size {size} with root {root}, but this witness cosigned size {size} with root {known_root}"
    )]
    Fork {
        /// The log.
        origin: String,
        /// The common size.
        size: u64,
        /// The remembered root, base64.
        known_root: String,
        /// The served root, base64.
        root: String,
    },
    /// The larger tree is not shown to extend the remembered one.
    #[error(
        "FORK: the log {origin} serves size {size}, but its consistency proof from size {known_size}, which this witness cosigned, does not verify: {reason}"
    )]
    Inconsistent {
        /// The log.
        origin: String,
        /// The size the witness cosigned.
        known_size: u64,
        /// The size served.
        size: u64,
        /// Why the proof failed.
        reason: VerifyError,
    },
    /// The cosignature could not be made.
    #[error(transparent)]
    Cosignature(#[from] CosignatureError),
}

impl Refusal {
    /// Whether this refusal is evidence that the log is not append-only
    /// (a rollback, a fork or an inconsistent history), as opposed to a
    /// checkpoint the witness cannot use.
    pub fn is_alarm(&self) -> bool {
        matches!(
            self,
            Refusal::Rollback { .. } | Refusal::Fork { .. } | Refusal::Inconsistent { .. }
        )
    }
}

/// A decision to cosign: the state to remember and the cosignature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advance {
    /// How the checkpoint relates to what the witness remembered.
    pub sight: Sight,
    /// The witness's state from now on (store it before publishing the
    /// cosignature, so the witness never cosigned what it does not
    /// remember).
    pub state: WitnessState,
    /// The cosignature line.
    pub cosignature: NoteSignature,
}

impl Advance {
    /// The checkpoint as the log signed it with this cosignature appended:
    /// what the witness submits to the log.
    pub fn cosigned_note(&self) -> String {
        let mut note = self.state.note.clone();
        // The log's note has one line; a second cannot pass the limit.
        let _ = note.add_signature(self.cosignature.clone());
        note.to_string()
    }
}

/// The note cut down to the log's own signature line, and its checkpoint:
/// verified under `log`, with an origin equal to the log key's name.
fn log_signed(note: &Note, log: &NoteVerifier) -> Result<(Note, Checkpoint), Refusal> {
    let line = note
        .verify(log)
        .map_err(|reason| Refusal::BadLogSignature {
            key: log.verifier_key(),
            reason,
        })?;
    let checkpoint = checkpoint::parse_body(note.body()).map_err(Refusal::NotACheckpoint)?;
    if checkpoint.origin() != log.name() {
        return Err(Refusal::WrongOrigin {
            expected: log.name().to_owned(),
            found: checkpoint.origin().to_owned(),
        });
    }
    let mut own = Note::new(note.body()).map_err(Refusal::Malformed)?;
    own.add_signature(line.clone())
        .map_err(Refusal::Malformed)?;
    Ok((own, checkpoint))
}

/// The size a served note claims, unverified: what the caller needs to ask
/// the log for a consistency proof before calling [`observe`] (which
/// verifies everything).
pub fn claimed_size(served: &str) -> Option<u64> {
    let note = Note::parse(served).ok()?;
    checkpoint::parse_body(note.body()).ok().map(|c| c.size())
}

/// The witness's decision. `known` is its state (`None` at first sight),
/// `log` the log key (the pinned one; at first sight the one to trust),
/// `served` the checkpoint note the log serves now (other signature lines,
/// such as other witnesses' cosignatures, are ignored), `proof` the RFC
/// 9162 consistency proof from the known size to the served one (empty
/// unless the log grew), `now` the time in POSIX seconds.
///
/// A cosignature's timestamp is `now`, or the last one if the clock went
/// back: the witness never states an older "as of" time than it did.
pub fn observe(
    known: Option<&WitnessState>,
    log: &NoteVerifier,
    cosigner: &Cosigner,
    served: &str,
    proof: &[Hash],
    now: u64,
) -> Result<Advance, Refusal> {
    if let Some(known) = known {
        if known.log != *log {
            return Err(Refusal::LogKeyChanged {
                pinned: known.log.verifier_key(),
                given: log.verifier_key(),
            });
        }
        if known.witness != *cosigner.verifier() {
            return Err(Refusal::OtherWitness {
                owner: known.witness.key_line(),
                key: cosigner.verifier().key_line(),
            });
        }
    }
    let note = Note::parse(served).map_err(Refusal::Malformed)?;
    let (note, checkpoint) = log_signed(&note, log)?;
    let sight = match known {
        None => Sight::First,
        Some(known) => compare(known, &checkpoint, proof)?,
    };
    let timestamp = known.map_or(now, |k| now.max(k.cosigned_at));
    let cosignature = cosigner.cosign(&checkpoint, timestamp)?;
    Ok(Advance {
        sight,
        state: WitnessState {
            witness: cosigner.verifier().clone(),
            log: log.clone(),
            cosigned_at: timestamp,
            note,
            checkpoint,
        },
        cosignature,
    })
}

/// Rollback, fork, consistent growth or the same checkpoint again.
fn compare(known: &WitnessState, served: &Checkpoint, proof: &[Hash]) -> Result<Sight, Refusal> {
    let old = &known.checkpoint;
    let origin = old.origin().to_owned();
    if served.size() < old.size() {
        return Err(Refusal::Rollback {
            origin,
            known_size: old.size(),
            size: served.size(),
        });
    }
    if served.size() == old.size() {
        if served.root() != old.root() {
            return Err(Refusal::Fork {
                origin,
                size: served.size(),
                known_root: BASE64.encode(old.root()),
                root: BASE64.encode(served.root()),
            });
        }
        return Ok(Sight::Unchanged);
    }
    // The empty tree is a prefix of every tree (RFC 9162 section 2.1.4);
    // there is nothing to prove from it.
    if old.size() > 0 {
        verify_consistency(old.size(), served.size(), old.root(), served.root(), proof).map_err(
            |reason| Refusal::Inconsistent {
                origin,
                known_size: old.size(),
                size: served.size(),
                reason,
            },
        )?;
    }
    Ok(Sight::Grew { from: old.size() })
}
