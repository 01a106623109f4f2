//! Participants, their keys and the ledger's own identity, as state
//! derived from the entries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::entry::Entry;
use super::event::{Event, EventBody};
use super::ids::{CountryCode, ParticipantId, Timestamp};
use crate::codec;
use crate::crypto::PublicKey;

/// What kind of organisation a participant is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantKind {
    Operator,
    Mine,
    Trader,
    Transporter,
    Smelter,
    Buyer,
    AssayLab,
    Auditor,
}

/// What a participant may sign. A registration names the roles; the rules
/// engine checks every event against them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Registers participants and manages their keys.
    Operator,
    /// Records supplier compliance, site determinations and red-flag decisions.
    Compliance,
    /// Creates lots at its own mine sites.
    Producer,
    /// Holds custody: dispatches and receives lots.
    Custodian,
    /// Splits, blends and transforms lots it holds.
    Processor,
    /// Sells lots it owns.
    Seller,
    /// Buys lots.
    Purchaser,
    /// Issues assays.
    Assayer,
    /// Reads everything; signs audit observations.
    Auditor,
}

/// A registered participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Participant {
    pub id: ParticipantId,
    pub legal_name: String,
    pub country: CountryCode,
    pub kinds: Vec<ParticipantKind>,
    pub roles: Vec<Role>,
    pub registered_at: Timestamp,
    /// Index of the entry that registered it.
    pub registered_in: u64,
    /// Every key ever registered for it, in registration order.
    pub keys: Vec<PublicKey>,
}

impl Participant {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A participant key and its validity window, in ledger record time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRecord {
    pub key: PublicKey,
    pub participant: ParticipantId,
    pub valid_from: Timestamp,
    /// When the key was rotated out or revoked; `None` while it is valid.
    pub valid_until: Option<Timestamp>,
    /// Index of the entry that added the key.
    pub added_in: u64,
    /// Index of the entry that ended it.
    pub ended_in: Option<u64>,
}

impl KeyRecord {
    /// Whether the key may sign an event recorded at `at`.
    pub fn valid_at(&self, at: Timestamp) -> bool {
        self.valid_from <= at && self.valid_until.is_none_or(|until| at < until)
    }
}

/// The ledger's own identity, fixed by the genesis entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerInfo {
    /// The checkpoint origin line and the name of the log key.
    pub origin: String,
    /// The key that signs checkpoints.
    pub log_key: PublicKey,
    /// The operator participant.
    pub operator: ParticipantId,
    pub created_at: Timestamp,
}

impl LedgerInfo {
    /// The ledger's identity from the canonical bytes of entry 0, which
    /// must hold the genesis event. The error says what is wrong with the
    /// bytes; callers name entry 0 in their own error type.
    pub fn from_genesis_entry(bytes: &[u8]) -> Result<LedgerInfo, String> {
        let entry: Entry = codec::decode(bytes).map_err(|e| format!("genesis entry: {e}"))?;
        let event: Event =
            codec::decode(&entry.signed.event).map_err(|e| format!("genesis event: {e}"))?;
        match event.body {
            EventBody::Genesis(g) => Ok(LedgerInfo {
                origin: g.origin,
                log_key: g.log_key,
                operator: g.operator,
                created_at: entry.record_time,
            }),
            other => Err(format!(
                "entry 0 is a {} event, not genesis",
                other.type_name()
            )),
        }
    }
}
