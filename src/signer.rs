//! Building and signing events on the client side.

use crate::codec::{self, CodecError};
use crate::crypto::SecretKey;
use crate::model::{Event, EventBody, ParticipantId, SignedEvent, Timestamp};

/// Signs events for one participant on one ledger, numbering them with
/// increasing nonces so that otherwise identical events stay distinct.
#[derive(Debug)]
pub struct Signer {
    ledger: String,
    participant: ParticipantId,
    key: SecretKey,
    next_nonce: u64,
}

impl Signer {
    /// A signer whose nonces start from a random value, so that restarts
    /// do not repeat earlier events by accident.
    pub fn new(ledger: impl Into<String>, participant: ParticipantId, key: SecretKey) -> Self {
        let mut seed = [0u8; 8];
        // A failed random source only loses the restart protection; the
        // counter still keeps this signer's events distinct.
        let _ = getrandom::fill(&mut seed);
        Self::with_first_nonce(ledger, participant, key, u64::from_le_bytes(seed) >> 1)
    }

    /// A signer with deterministic nonces (tests and the demo ledger).
    pub fn with_first_nonce(
        ledger: impl Into<String>,
        participant: ParticipantId,
        key: SecretKey,
        nonce: u64,
    ) -> Self {
        Self {
            ledger: ledger.into(),
            participant,
            key,
            next_nonce: nonce,
        }
    }

    pub fn participant(&self) -> &ParticipantId {
        &self.participant
    }

    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// Replaces the signing key (after a rotation).
    pub fn set_key(&mut self, key: SecretKey) {
        self.key = key;
    }

    /// The event this signer would sign next, without signing it.
    pub fn event(&mut self, time: Timestamp, body: EventBody) -> Event {
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        Event {
            ledger: self.ledger.clone(),
            signer: self.participant.clone(),
            time,
            nonce,
            body,
        }
    }

    /// Builds, encodes and signs an event.
    pub fn sign(&mut self, time: Timestamp, body: EventBody) -> Result<SignedEvent, CodecError> {
        let event = self.event(time, body);
        sign_event(&event, &self.key)
    }
}

/// Encodes `event` canonically and signs the bytes with `key`.
pub fn sign_event(event: &Event, key: &SecretKey) -> Result<SignedEvent, CodecError> {
    let bytes = codec::encode(event)?;
    Ok(SignedEvent {
        key: key.public(),
        signature: key.sign(&bytes),
        event: bytes,
    })
}
