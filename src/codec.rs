//! Canonical binary encoding of every signed or hashed structure.
//!
//! This is the one place that turns structures into the bytes that are
//! signed, hashed and stored. The layout is specified in
//! `schemas/ENCODING.md`; in short: a 16-byte domain-separation tag, a
//! little-endian `u16` format version, then the structure in bincode 2.0.1
//! with fixed-width little-endian integers.
//!
//! Decoding is strict: the tag and version must match, no bytes may trail
//! the structure, and re-encoding the decoded value must reproduce the input
//! exactly. So every value has exactly one accepted byte string, and a
//! signature or hash over it cannot be replayed under a different reading.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian, Varint};
use serde::{Serialize, de::DeserializeOwned};

/// Largest structure the codec will encode or decode, in bytes. Length
/// prefixes claiming more are refused before anything is allocated.
pub const MAX_ENCODED_LEN: usize = 4 << 20;

/// Length of the domain-separation tag at the start of every encoding.
pub const TAG_LEN: usize = 16;

/// Bytes before the bincode body: tag and format version.
pub const PREFIX_LEN: usize = TAG_LEN + 2;

type Config = Configuration<LittleEndian, Fixint, Limit<MAX_ENCODED_LEN>>;

fn config() -> Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_ENCODED_LEN>()
}

/// A structure with a canonical byte encoding.
///
/// `TAG` separates the domains of different message kinds, so bytes signed
/// as one kind can never be read as another. `VERSION` names the layout.
pub trait Canonical: Serialize + DeserializeOwned {
    /// 16 ASCII bytes, NUL-padded, unique per structure kind.
    const TAG: [u8; TAG_LEN];
    /// Format version of the layout that follows the tag.
    const VERSION: u16;
}

/// Why bytes were refused as the canonical encoding of a structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("input is {len} bytes, shorter than the {PREFIX_LEN}-byte tag and version prefix")]
    TooShort { len: usize },
    #[error("domain tag is {found:?}, expected {expected:?}")]
    WrongTag { expected: String, found: String },
    #[error("format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("malformed body: {0}")]
    Malformed(String),
    #[error("{trailing} trailing bytes after the structure ended at byte {consumed}")]
    TrailingBytes { consumed: usize, trailing: usize },
    #[error("bytes are not the canonical encoding of the value they decode to")]
    NotCanonical,
    #[error("structure is larger than the {MAX_ENCODED_LEN}-byte limit")]
    TooLarge,
}

/// Encodes `value` canonically: tag, version, body.
///
/// Fails only when the value exceeds [`MAX_ENCODED_LEN`], which callers
/// that build values from validated parts rule out beforehand.
pub fn encode<T: Canonical>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&T::TAG);
    out.extend_from_slice(&T::VERSION.to_le_bytes());
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|_| CodecError::TooLarge)?;
    if out.len() > MAX_ENCODED_LEN {
        return Err(CodecError::TooLarge);
    }
    Ok(out)
}

/// Decodes canonical bytes, refusing anything [`encode`] would not produce.
pub fn decode<T: Canonical>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() < PREFIX_LEN {
        return Err(CodecError::TooShort { len: bytes.len() });
    }
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(CodecError::TooLarge);
    }
    let (tag, rest) = bytes.split_at(TAG_LEN);
    if tag != T::TAG {
        return Err(CodecError::WrongTag {
            expected: printable(&T::TAG),
            found: printable(tag),
        });
    }
    let version = u16::from_le_bytes([rest[0], rest[1]]);
    if version != T::VERSION {
        return Err(CodecError::UnsupportedVersion {
            found: version,
            supported: T::VERSION,
        });
    }
    let body = &rest[2..];
    let (value, consumed): (T, usize) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if consumed != body.len() {
        return Err(CodecError::TrailingBytes {
            consumed: PREFIX_LEN + consumed,
            trailing: body.len() - consumed,
        });
    }
    // Bincode accepts a few encodings that ours never emits (for example,
    // values our constructors would reject are caught by `try_from`
    // conversions, but this check also guards anything they miss).
    reencodes_to(&value, body, config())?;
    Ok(value)
}

/// Checks that `value` encodes to exactly `bytes`, comparing as it encodes
/// rather than building a second copy to compare.
fn reencodes_to<T: Serialize>(
    value: &T,
    bytes: &[u8],
    config: impl bincode::config::Config,
) -> Result<(), CodecError> {
    let mut rest = SameAs(bytes);
    bincode::serde::encode_into_writer(value, &mut rest, config)
        .map_err(|_| CodecError::NotCanonical)?;
    if !rest.0.is_empty() {
        return Err(CodecError::NotCanonical);
    }
    Ok(())
}

/// A bincode writer that accepts only the bytes it still holds, in order.
struct SameAs<'a>(&'a [u8]);

impl bincode::enc::write::Writer for SameAs<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        match self.0.split_at_checked(bytes.len()) {
            Some((expected, rest)) if expected == bytes => {
                self.0 = rest;
                Ok(())
            }
            _ => Err(bincode::error::EncodeError::Other(
                "not the canonical encoding",
            )),
        }
    }
}

type CompactConfig = Configuration<LittleEndian, Varint, Limit<MAX_ENCODED_LEN>>;

fn compact_config() -> CompactConfig {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<MAX_ENCODED_LEN>()
}

/// The index's own encoding of the values it derives from the log (the
/// ledger state): bincode with variable-length integers and no tag, about
/// half the size of the canonical encoding. These bytes are never signed,
/// hashed or read by anyone but this build's index, which names its format
/// so that another build rebuilds it from the log rather than misread it.
pub fn encode_compact<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(256);
    bincode::serde::encode_into_std_write(value, &mut out, compact_config())
        .map_err(|_| CodecError::TooLarge)?;
    if out.len() > MAX_ENCODED_LEN {
        return Err(CodecError::TooLarge);
    }
    Ok(out)
}

/// Decodes [`encode_compact`]'s bytes as strictly as [`decode`]: no
/// trailing bytes, and only the one encoding of the value.
pub fn decode_compact<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(CodecError::TooLarge);
    }
    let (value, consumed): (T, usize) = bincode::serde::decode_from_slice(bytes, compact_config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if consumed != bytes.len() {
        return Err(CodecError::TrailingBytes {
            consumed,
            trailing: bytes.len() - consumed,
        });
    }
    reencodes_to(&value, bytes, compact_config())?;
    Ok(value)
}

/// Builds a tag constant from a short ASCII name, padding with NUL bytes.
pub const fn tag(name: &str) -> [u8; TAG_LEN] {
    let bytes = name.as_bytes();
    assert!(bytes.len() <= TAG_LEN, "tag names are at most 16 bytes");
    let mut out = [0u8; TAG_LEN];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

fn printable(tag: &[u8]) -> String {
    String::from_utf8_lossy(tag)
        .trim_end_matches('\0')
        .escape_debug()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        a: u32,
        b: Option<bool>,
        s: String,
    }
    impl Canonical for Probe {
        const TAG: [u8; 16] = tag("oretrail.probe");
        const VERSION: u16 = 1;
    }

    fn probe() -> Probe {
        Probe {
            a: 7,
            b: Some(true),
            s: "ok".into(),
        }
    }

    #[test]
    fn layout_is_tag_version_then_fixed_width_little_endian() {
        let bytes = encode(&probe()).unwrap();
        let mut want = tag("oretrail.probe").to_vec();
        want.extend([1, 0]); // version 1
        want.extend([7, 0, 0, 0]); // u32 a
        want.extend([1, 1]); // Some(true)
        want.extend([2, 0, 0, 0, 0, 0, 0, 0, b'o', b'k']); // u64 length + UTF-8
        assert_eq!(bytes, want);
        assert_eq!(decode::<Probe>(&bytes).unwrap(), probe());
    }

    #[test]
    fn compact_encoding_round_trips_and_is_as_strict() {
        let bytes = encode_compact(&probe()).unwrap();
        // u32 7 as one byte, Some(true), length 2 as one byte, "ok".
        assert_eq!(bytes, [7, 1, 1, 2, b'o', b'k']);
        assert_eq!(decode_compact::<Probe>(&bytes).unwrap(), probe());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode_compact::<Probe>(&trailing),
            Err(CodecError::TrailingBytes {
                consumed: 6,
                trailing: 1
            })
        ));
        // 7 written as a two-byte varint (251, 7, 0) is not the one encoding.
        let long = [251, 7, 0, 1, 1, 2, b'o', b'k'];
        assert!(decode_compact::<Probe>(&long).is_err());
    }

    #[test]
    fn refuses_trailing_bytes() {
        let mut bytes = encode(&probe()).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<Probe>(&bytes),
            Err(CodecError::TrailingBytes { trailing: 1, .. })
        ));
    }

    #[test]
    fn refuses_wrong_tag_and_version() {
        let mut bytes = encode(&probe()).unwrap();
        bytes[0] = b'X';
        assert!(matches!(
            decode::<Probe>(&bytes),
            Err(CodecError::WrongTag { .. })
        ));
        let mut bytes = encode(&probe()).unwrap();
        bytes[16] = 2;
        assert!(matches!(
            decode::<Probe>(&bytes),
            Err(CodecError::UnsupportedVersion { found: 2, .. })
        ));
    }

    #[test]
    fn refuses_invalid_bool_option_tag_and_utf8() {
        let good = encode(&probe()).unwrap();
        let mut bad_bool = good.clone();
        bad_bool[PREFIX_LEN + 5] = 2;
        assert!(decode::<Probe>(&bad_bool).is_err());
        let mut bad_option = good.clone();
        bad_option[PREFIX_LEN + 4] = 2;
        assert!(decode::<Probe>(&bad_option).is_err());
        let mut bad_utf8 = good;
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert!(decode::<Probe>(&bad_utf8).is_err());
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        let mut bytes = encode(&probe()).unwrap();
        let len_at = PREFIX_LEN + 6;
        bytes[len_at..len_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Probe>(&bytes),
            Err(CodecError::Malformed(_))
        ));
    }
}
