//! Ledger entries: what the log stores and the Merkle tree commits to.

use serde::{Deserialize, Serialize};

use super::ids::Timestamp;
use crate::codec::{self, Canonical};
use crate::crypto::{Digest, PublicKey, Signature};

/// A participant's signature over canonical event bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEvent {
    /// The signing key; it is also the key's id on the ledger.
    pub key: PublicKey,
    /// Ed25519 signature over `event`.
    pub signature: Signature,
    /// The canonical encoding of an [`super::Event`].
    #[serde(with = "event_bytes")]
    pub event: Vec<u8>,
}

impl SignedEvent {
    /// SHA-256 of the event bytes: the event's identity for replay
    /// detection. The same claim submitted twice has the same id.
    pub fn event_id(&self) -> Digest {
        crate::crypto::sha256(&self.event)
    }
}

/// One entry of the log. Its canonical encoding is the RFC 9162 leaf data,
/// and its hash (the leaf hash) is what the next entry links to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log, from 0.
    pub index: u64,
    /// Hash of the previous entry; 32 zero bytes for the genesis entry.
    pub prev: Digest,
    /// The operator's clock when the entry was sequenced.
    pub record_time: Timestamp,
    pub signed: SignedEvent,
}

impl Canonical for Entry {
    const TAG: [u8; 16] = codec::tag("oretrail.entry");
    const VERSION: u16 = 1;
}

/// Event bytes are a length-prefixed byte string in the binary encoding and
/// lowercase hex in JSON.
mod event_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            hex::decode(text).map_err(serde::de::Error::custom)
        } else {
            serde_bytes_vec(d)
        }
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}
