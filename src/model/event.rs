//! Events: the claims participants sign.

use serde::{Deserialize, Serialize};

use super::ids::{CountryCode, ParticipantId, Timestamp};
use super::participant::{ParticipantKind, Role};
use crate::codec::{self, Canonical};
use crate::crypto::PublicKey;

/// A claim signed by one participant. Its canonical encoding (see
/// `schemas/ENCODING.md`) is what the signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Origin of the ledger this event is meant for, so an event signed for
    /// one ledger cannot be replayed into another.
    pub ledger: String,
    /// The participant making the claim.
    pub signer: ParticipantId,
    /// When the signer says the event happened.
    pub time: Timestamp,
    /// Chosen by the signer to tell apart otherwise identical events.
    pub nonce: u64,
    pub body: EventBody,
}

impl Canonical for Event {
    const TAG: [u8; 16] = codec::tag("oretrail.event");
    const VERSION: u16 = 1;
}

/// What the event claims. Variant numbers are part of the encoding: new
/// kinds of event are only ever added at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventBody {
    Genesis(Genesis),
    RegisterParticipant(Registration),
    AddKey(KeyAdded),
    RotateKey(KeyRotated),
    RevokeKey(KeyRevoked),
}

impl EventBody {
    /// Stable name of the event type, as used in JSON and error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::Genesis(_) => "genesis",
            EventBody::RegisterParticipant(_) => "register_participant",
            EventBody::AddKey(_) => "add_key",
            EventBody::RotateKey(_) => "rotate_key",
            EventBody::RevokeKey(_) => "revoke_key",
        }
    }
}

/// The first entry: names the ledger, its log key and its operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub origin: String,
    pub log_key: PublicKey,
    pub operator: ParticipantId,
    pub operator_name: String,
    pub operator_country: CountryCode,
    /// The operator's first signing key; the genesis event is signed by it.
    pub operator_key: PublicKey,
}

/// The operator registers a participant with its first keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub participant: ParticipantId,
    pub legal_name: String,
    pub country: CountryCode,
    pub kinds: Vec<ParticipantKind>,
    pub roles: Vec<Role>,
    pub keys: Vec<PublicKey>,
}

/// A further key for a participant, valid from the entry's record time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAdded {
    pub participant: ParticipantId,
    pub key: PublicKey,
}

/// Replaces a key: `old` stops and `new` starts at the entry's record time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotated {
    pub participant: ParticipantId,
    pub old: PublicKey,
    pub new: PublicKey,
}

/// Ends a key at the entry's record time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRevoked {
    pub participant: ParticipantId,
    pub key: PublicKey,
    pub reason: String,
}
