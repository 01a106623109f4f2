//! Keys, signatures and hashes: SHA-256 and Ed25519 (RFC 8032).
//!
//! Single signatures are checked by the rule of ed25519-dalek's
//! `verify_strict`, which refuses small-order keys and nonces and
//! non-canonical encodings. The library applies that rule itself
//! (`strict_check`), more cheaply: it skips decompressing the nonce, and
//! [`KeyCache::verify_strict`] takes an often-used key's multiple from a
//! table; tests check that it accepts exactly what `verify_strict`
//! accepts. Bulk checks use
//! batch verification ([`verify_batch`]: ed25519-dalek's equation, with
//! each key's terms merged) and fall back to strict checks of each
//! signature when a batch fails, so a bad signature is always named. Batch
//! verification uses the cofactorless equation without the small-order
//! checks, so it can accept signatures that `verify_strict` refuses: those
//! whose equation is off by a small-order point. The key's holder can make
//! such a signature, and anyone can make one from a valid signature by
//! adding a small-order point to its nonce (a batch then accepts it with
//! probability at most a half). Either way the holder of the key signed
//! that event. Such signatures never enter the ledger, because every
//! append is checked by the strict rule; an event's id covers its bytes,
//! not its signature, so a second signature never records it twice.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{BasepointTable, IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};
use zeroize::Zeroizing;

/// Defines a fixed-length byte string that is hex in JSON and raw bytes in
/// the canonical binary encoding (a fixed-length tuple: no length prefix).
macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            pub const LEN: usize = $len;
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// Parses exactly `2 * LEN` hex digits.
            pub fn from_hex(text: &str) -> Result<Self, crate::crypto::BytesError> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(text, &mut out).map_err(|_| crate::crypto::BytesError {
                    what: stringify!($name),
                    expected: $len,
                })?;
                Ok(Self(out))
            }
            /// Takes exactly `LEN` bytes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, crate::crypto::BytesError> {
                <[u8; $len]>::try_from(bytes)
                    .map(Self)
                    .map_err(|_| crate::crypto::BytesError { what: stringify!($name), expected: $len })
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                crate::crypto::serialize_fixed(&self.0, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                crate::crypto::deserialize_fixed::<D, $len>(d).map(Self)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::crypto::hex_schema(stringify!($name), $len)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// The JSON form of a fixed-length byte string, for the OpenAPI document
/// and the JSON Schemas in `schemas/`: exactly `2 * len` hex digits. A
/// description of the data, not code that touches it.
fn hex_schema(name: &str, len: usize) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let digits = 2 * len;
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!("{name}: {len} bytes, {digits} hex digits.")))
        .pattern(Some(format!("^[0-9a-fA-F]{{{digits}}}$")))
        .into()
}

/// A byte string of the wrong length or with invalid hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be exactly {expected} bytes ({} hex digits)", expected * 2)]
pub struct BytesError {
    pub what: &'static str,
    pub expected: usize,
}

pub(crate) fn serialize_fixed<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeTuple;
    if s.is_human_readable() {
        s.serialize_str(&hex::encode(bytes))
    } else {
        let mut t = s.serialize_tuple(N)?;
        for b in bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

pub(crate) fn deserialize_fixed<'de, D: Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<[u8; N], D::Error> {
    use serde::de::{Error, SeqAccess, Visitor};
    struct Fixed<const N: usize>;
    impl<'de, const N: usize> Visitor<'de> for Fixed<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{N} bytes")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<[u8; N], E> {
            let mut out = [0u8; N];
            hex::decode_to_slice(v, &mut out)
                .map_err(|_| E::custom(format!("expected {} hex digits", N * 2)))?;
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut out = [0u8; N];
            for (i, slot) in out.iter_mut().enumerate() {
                *slot = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(i, &self))?;
            }
            Ok(out)
        }
    }
    if d.is_human_readable() {
        d.deserialize_str(Fixed::<N>)
    } else {
        d.deserialize_tuple(N, Fixed::<N>)
    }
}

fixed_bytes!(
    /// A SHA-256 digest.
    Digest,
    32
);
fixed_bytes!(
    /// An Ed25519 public key (RFC 8032 encoding). On the ledger a key is
    /// named by these 32 bytes: they are its key id.
    PublicKey,
    32
);
fixed_bytes!(
    /// An Ed25519 signature (R || S, RFC 8032 section 5.1.6).
    Signature,
    64
);

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    Digest(Sha256::digest(bytes).into())
}

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("public key {0} is not a valid Ed25519 point")]
    InvalidKey(PublicKey),
    #[error("public key {0} is weak (small order) and cannot be registered")]
    WeakKey(PublicKey),
    #[error("signature does not verify under key {0}")]
    BadSignature(PublicKey),
}

impl PublicKey {
    /// Decodes the key as a curve point usable for verification.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CryptoError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| CryptoError::InvalidKey(*self))
    }

    /// Refuses keys that are not valid points or are of small order: such
    /// keys admit signatures that verify for many messages.
    pub fn check_registrable(&self) -> Result<(), CryptoError> {
        if self.verifying_key()?.is_weak() {
            return Err(CryptoError::WeakKey(*self));
        }
        Ok(())
    }

    /// Checks `signature` over `message` by `verify_strict`'s rule (see
    /// [`KeyCache::verify_strict`], which does the same with the key
    /// decoded once).
    pub fn verify_strict(&self, message: &[u8], signature: &Signature) -> Result<(), CryptoError> {
        let point = self.verifying_key()?.to_edwards();
        if strict_check(self, &point, None, message, signature) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature(*self))
        }
    }
}

/// Public keys already decoded to curve points, for signature checks.
/// Decoding (point decompression) is a large share of a signature check,
/// and a ledger sees the same few keys sign over and over, so each is
/// decoded once. A key that has been checked [`TABLE_AFTER_CHECKS`] times
/// also gets a table of multiples of its point, which makes its strict
/// checks about 30 % cheaper (see [`KeyCache::verify_strict`]).
#[derive(Default)]
pub struct KeyCache {
    inner: std::sync::Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    keys: HashMap<PublicKey, CachedKey>,
    /// How many of `keys` have a table.
    tables: usize,
}

impl CacheInner {
    /// `key`'s entry, decoded and inserted if absent (emptying the cache
    /// first when it is full).
    fn cached(&mut self, key: &PublicKey) -> Result<&mut CachedKey, CryptoError> {
        if self.keys.len() >= KEY_CACHE_LIMIT && !self.keys.contains_key(key) {
            self.keys.clear();
            self.tables = 0;
        }
        Ok(match self.keys.entry(*key) {
            Entry::Occupied(cached) => cached.into_mut(),
            Entry::Vacant(slot) => slot.insert(CachedKey {
                point: key.verifying_key()?.to_edwards(),
                checks: 0,
                table: None,
            }),
        })
    }
}

/// A decoded key and how often it has been checked strictly.
struct CachedKey {
    point: EdwardsPoint,
    checks: u32,
    /// Multiples of the key's negated point, for [`strict_check`].
    table: Option<Arc<EdwardsBasepointTable>>,
}

/// Most keys a [`KeyCache`] holds before it starts afresh.
const KEY_CACHE_LIMIT: usize = 1 << 16;

/// Strict checks of one key before the cache builds its table. On the
/// bench machine a table takes about 1.1 ms to build (some 25 checks) and
/// saves about 12 of the 42 µs of each later check, so it repays itself
/// after about 100 checks.
const TABLE_AFTER_CHECKS: u32 = 128;

/// Most tables a [`KeyCache`] holds (30 KiB each).
const TABLE_LIMIT: usize = 256;

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("KeyCache")
            .field("keys", &inner.keys.len())
            .field("tables", &inner.tables)
            .finish()
    }
}

impl KeyCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The key's curve point, from the cache when it is there.
    pub fn get(&self, key: &PublicKey) -> Result<EdwardsPoint, CryptoError> {
        Ok(self.lock().cached(key)?.point)
    }

    /// Builds `key`'s table outside the lock and stores it, unless the
    /// cache was emptied meanwhile or is full of tables.
    fn build_table(&self, key: &PublicKey, point: &EdwardsPoint) -> Arc<EdwardsBasepointTable> {
        let table = Arc::new(EdwardsBasepointTable::create(&-point));
        let mut inner = self.lock();
        let room = inner.tables < TABLE_LIMIT;
        if let Some(cached) = inner.keys.get_mut(key)
            && cached.table.is_none()
            && room
        {
            cached.table = Some(table.clone());
            inner.tables += 1;
        }
        table
    }

    /// Checks `signature` over `message` under `key`, accepting exactly
    /// what ed25519-dalek's `verify_strict` accepts (the tests compare the
    /// two): `s` canonical, neither the key nor the nonce of small order,
    /// and `[s]B - [H(R‖A‖M)]A` encoding to the signature's `R` bytes.
    ///
    /// Two things make it cheaper than calling `verify_strict`:
    /// - the nonce is not decompressed: the computed point must encode to
    ///   its bytes, so it is that point, and its order is checked instead;
    /// - a key with a table (one checked often) has its multiple taken
    ///   from the table (a fixed-base comb, as for `B`) rather than
    ///   computed by doubling.
    pub fn verify_strict(
        &self,
        key: &PublicKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        // Only the check that brings the count to the threshold builds the
        // table, outside the lock.
        let (point, table, build) = {
            let mut inner = self.lock();
            let room = inner.tables < TABLE_LIMIT;
            let cached = inner.cached(key)?;
            cached.checks = cached.checks.saturating_add(1);
            let build = room && cached.table.is_none() && cached.checks == TABLE_AFTER_CHECKS;
            (cached.point, cached.table.clone(), build)
        };
        let table = table.or_else(|| build.then(|| self.build_table(key, &point)));
        if strict_check(key, &point, table.as_deref(), message, signature) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature(*key))
        }
    }

    /// Number of keys that have a table.
    #[cfg(test)]
    fn tables(&self) -> usize {
        self.lock().tables
    }
}

/// The strict verification rule of [`PublicKey::verify_strict`] and
/// [`KeyCache::verify_strict`]. `point` is
/// `key` decoded; `table`, when given, holds multiples of `-point`.
fn strict_check(
    key: &PublicKey,
    point: &EdwardsPoint,
    table: Option<&EdwardsBasepointTable>,
    message: &[u8],
    signature: &Signature,
) -> bool {
    let (r_bytes, s) = signature.nonce_and_scalar();
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
        return false;
    };
    if point.is_small_order() {
        return false;
    }
    let k = challenge(&r_bytes, key, message);
    let nonce = match table {
        Some(table) => table * &k + EdwardsPoint::mul_base(&s),
        None => EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-point, &s),
    };
    // Equal bytes make `nonce` the signature's R, so its order is R's.
    nonce.compress().0 == r_bytes && !nonce.is_small_order()
}

/// The challenge `H(R ‖ A ‖ M)` of RFC 8032, reduced mod the group order.
fn challenge(r_bytes: &[u8; 32], key: &PublicKey, message: &[u8]) -> Scalar {
    let digest = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(key.as_bytes())
        .chain_update(message)
        .finalize();
    Scalar::from_bytes_mod_order_wide(&digest.into())
}

impl Signature {
    /// The nonce bytes `R` and the scalar bytes `s`.
    fn nonce_and_scalar(&self) -> ([u8; 32], [u8; 32]) {
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&self.0[..32]);
        s.copy_from_slice(&self.0[32..]);
        (r, s)
    }
}

/// An Ed25519 secret key. The secret bytes are wiped from memory on drop.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// Generates a key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyFileError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyFileError::Random(e.to_string()))?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Builds a key from a 32-byte seed (RFC 8032 private key). Used for
    /// deterministic test and demo keys.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }

    /// The underlying signing key, for signed-note code that needs it.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }

    /// Writes the key file described in `schemas/ENCODING.md`: created with
    /// mode 0600, never overwriting an existing file.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyFileError> {
        let text = Zeroizing::new(format!(
            "{KEY_FILE_HEADER}\npublic {}\nsecret {}\n",
            self.public().to_hex(),
            hex::encode(self.0.to_bytes())
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| KeyFileError::Io(path.display().to_string(), e.to_string()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| KeyFileError::Io(path.display().to_string(), e.to_string()))
    }

    /// Reads a key file, checking its header and that the public key on
    /// file is the one the secret derives.
    pub fn read_file(path: &Path) -> Result<Self, KeyFileError> {
        let where_ = path.display().to_string();
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| KeyFileError::Io(where_.clone(), e.to_string()))?,
        );
        Self::parse(&text).map_err(|reason| KeyFileError::Malformed(where_, reason))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(format!("first line must be {KEY_FILE_HEADER:?}"));
        }
        let public = lines
            .next()
            .and_then(|l| l.strip_prefix("public "))
            .ok_or("second line must be `public <64 hex digits>`")?;
        let public = PublicKey::from_hex(public).map_err(|e| e.to_string())?;
        let secret_hex = lines
            .next()
            .and_then(|l| l.strip_prefix("secret "))
            .ok_or("third line must be `secret <64 hex digits>`")?;
        if lines.next().is_some() {
            return Err("unexpected text after the secret line".into());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(secret_hex, seed.as_mut())
            .map_err(|_| "secret must be 64 hex digits".to_string())?;
        let key = Self::from_seed(&seed);
        if key.public() != public {
            return Err("public key does not match the secret key".into());
        }
        Ok(key)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public())
    }
}

/// First line of every key file; names the format and its version.
pub const KEY_FILE_HEADER: &str = "oretrail ed25519 secret key v1";

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {0}: {1}")]
    Io(String, String),
    #[error("key file {0} is malformed: {1}")]
    Malformed(String, String),
    #[error("operating system random source failed: {0}")]
    Random(String),
}

/// One signature to check in bulk.
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck<'a> {
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Signatures per batch. The multiscalar multiplication costs less per
/// point with more points: batches of 1,024 check about two fifths faster
/// per signature than batches of 64, and batches of 2,048 at most a tenth
/// faster again (BENCHMARKS.md). A failing batch falls back to 1,024
/// strict checks, about 50 ms on one core.
const BATCH: usize = 1024;

/// The smallest batch [`batches`] makes of the last signatures.
const SMALLEST_BATCH: usize = 128;

/// Splits `n` signatures into batches of [`BATCH`], except the last
/// `2 * BATCH` or so, which are halved down to [`SMALLEST_BATCH`]: whoever
/// takes the last batch works alone until it is done, so it should be
/// short. Ranges are in input order.
fn batches(n: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let left = n - start;
        let size = if left > 2 * BATCH {
            BATCH
        } else if left > SMALLEST_BATCH {
            (left / 2).max(SMALLEST_BATCH)
        } else {
            left
        };
        out.push(start..start + size);
        start += size;
    }
    out
}

/// Checks many signatures on all cores with batch verification, falling
/// back to `verify_strict` per signature in any batch that fails. Returns
/// the positions (in input order) of the signatures that do not verify.
///
/// Each pool thread takes the next batch in order until none is left, so
/// the large batches go first and the small ones last, and a thread that
/// joins late (one busy replaying, say) still finds work.
pub fn verify_many(checks: &[SignatureCheck<'_>]) -> Vec<usize> {
    let cache = KeyCache::new();
    let batches = batches(checks.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = rayon::current_num_threads().min(batches.len());
    let mut bad: Vec<usize> = (0..workers)
        .into_par_iter()
        .flat_map_iter(|_| {
            let mut bad = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(range) = batches.get(i) else { break };
                let base = range.start;
                bad.extend(
                    verify_chunk(&checks[range.clone()], &cache)
                        .into_iter()
                        .map(|j| base + j),
                );
            }
            bad
        })
        .collect();
    bad.sort_unstable();
    bad
}

fn verify_chunk(chunk: &[SignatureCheck<'_>], cache: &KeyCache) -> Vec<usize> {
    if verify_batch(chunk, cache) {
        return Vec::new();
    }
    chunk
        .iter()
        .enumerate()
        .filter(|(_, c)| cache.verify_strict(c.key, c.message, c.signature).is_err())
        .map(|(i, _)| i)
        .collect()
}

/// Batch verification of `checks` on this thread: true when the batch
/// equation holds, false when it does not or cannot be formed (a key or
/// nonce that is not a curve point, a non-canonical `s`, no randomness).
///
/// The equation is ed25519-dalek's `verify_batch` (cofactorless, no
/// small-order checks): for random 128-bit weights z,
/// `[-Σ z·s] B + Σ [z] R + Σ [z·H(R‖A‖M)] A = 0`. Two things differ:
/// - the terms of one key are summed into one scalar before the
///   multiscalar multiplication, `Σ [z·h] A = [Σ z·h] A`, so a batch of
///   n signatures by k keys multiplies n + k + 1 points instead of
///   2n + 1. A ledger's signers each sign many events, so k is small.
///   The point is the same, so the verdict is the same.
/// - the weights come from the operating system's random source, as in
///   the original batch verification, rather than from a transcript of
///   the inputs (ed25519-dalek 3 derives them so, at a few microseconds
///   per signature).
pub fn verify_batch(checks: &[SignatureCheck<'_>], cache: &KeyCache) -> bool {
    let mut weights = vec![[0u8; 16]; checks.len()];
    if getrandom::fill(weights.as_flattened_mut()).is_err() {
        return false;
    }
    // Scalars and points: the nonces' first, then each key's, then B's.
    let mut scalars: Vec<Scalar> = Vec::with_capacity(checks.len() + 2);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(checks.len() + 2);
    let mut key_scalars: Vec<Scalar> = Vec::new();
    let mut key_points: Vec<EdwardsPoint> = Vec::new();
    let mut key_slot: HashMap<&PublicKey, usize> = HashMap::new();
    let mut basepoint = Scalar::ZERO;
    for (check, weight) in checks.iter().zip(&weights) {
        let (r_bytes, s_bytes) = check.signature.nonce_and_scalar();
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let Some(nonce) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        let slot = match key_slot.get(check.key) {
            Some(&slot) => slot,
            None => {
                let Ok(point) = cache.get(check.key) else {
                    return false;
                };
                key_points.push(point);
                key_scalars.push(Scalar::ZERO);
                key_slot.insert(check.key, key_points.len() - 1);
                key_points.len() - 1
            }
        };
        let challenge = challenge(&r_bytes, check.key, check.message);
        let z = Scalar::from(u128::from_le_bytes(*weight));
        basepoint += z * s;
        key_scalars[slot] += z * challenge;
        scalars.push(z);
        points.push(nonce);
    }
    scalars.extend(key_scalars);
    points.extend(key_points);
    scalars.push(-basepoint);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_signature_once_and_end_small() {
        for n in [0, 1, 127, 128, 129, 1000, 2048, 2049, 3000, 8192, 10_000] {
            let b = batches(n);
            let mut at = 0;
            for r in &b {
                assert_eq!(r.start, at, "{n}: {b:?}");
                assert!(!r.is_empty() && r.len() <= BATCH, "{n}: {b:?}");
                at = r.end;
            }
            assert_eq!(at, n, "{n}: {b:?}");
            if let Some(last) = b.last() {
                assert!(last.len() <= SMALLEST_BATCH, "{n}: {b:?}");
            }
        }
        assert_eq!(
            batches(8192)[..6],
            vec![
                0..1024,
                1024..2048,
                2048..3072,
                3072..4096,
                4096..5120,
                5120..6144
            ]
        );
        assert_eq!(
            batches(8192)[6..],
            vec![6144..7168, 7168..7680, 7680..7936, 7936..8064, 8064..8192]
        );
    }

    #[test]
    fn verify_many_names_every_bad_signature_across_batches() {
        let key = SecretKey::from_seed(&[7; 32]);
        let public = key.public();
        let messages: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut signatures: Vec<Signature> = messages.iter().map(|m| key.sign(m)).collect();
        let forged = [0, 1023, 1024, 2500, 2999];
        for &i in &forged {
            signatures[i] = key.sign(b"something else");
        }
        let checks: Vec<SignatureCheck<'_>> = messages
            .iter()
            .zip(&signatures)
            .map(|(message, signature)| SignatureCheck {
                key: &public,
                message,
                signature,
            })
            .collect();
        assert_eq!(verify_many(&checks), forged);
        assert_eq!(verify_many(&checks[1..1023]), Vec::<usize>::new());
    }

    #[test]
    fn key_file_round_trip_mode_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = SecretKey::generate().unwrap();
        key.write_file(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(SecretKey::read_file(&path).unwrap().public(), key.public());
        assert!(matches!(key.write_file(&path), Err(KeyFileError::Io(..))));
    }

    #[test]
    fn key_file_with_mismatched_public_key_is_refused() {
        let a = SecretKey::from_seed(&[1; 32]);
        let b = SecretKey::from_seed(&[2; 32]);
        let text = format!(
            "{KEY_FILE_HEADER}\npublic {}\nsecret {}\n",
            b.public(),
            hex::encode([1u8; 32])
        );
        assert!(
            SecretKey::parse(&text)
                .unwrap_err()
                .contains("does not match")
        );
        assert!(SecretKey::parse("garbage").is_err());
        let _ = a;
    }

    #[test]
    fn strict_and_batch_agree_and_name_the_bad_signature() {
        let keys: Vec<SecretKey> = (0..3u8)
            .map(|i| SecretKey::from_seed(&[i + 1; 32]))
            .collect();
        let messages: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let publics: Vec<PublicKey> = keys.iter().map(SecretKey::public).collect();
        let mut sigs: Vec<Signature> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| keys[i % 3].sign(m))
            .collect();
        sigs[77].0[5] ^= 1;
        sigs[150].0[40] ^= 0x80;
        let checks: Vec<SignatureCheck<'_>> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| SignatureCheck {
                key: &publics[i % 3],
                message: m,
                signature: &sigs[i],
            })
            .collect();
        assert_eq!(verify_many(&checks), vec![77, 150]);
        assert!(publics[0].verify_strict(&messages[0], &sigs[0]).is_ok());
        assert_eq!(
            publics[2].verify_strict(&messages[77], &sigs[77]),
            Err(CryptoError::BadSignature(publics[2]))
        );
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey(identity).check_registrable(),
            Err(CryptoError::WeakKey(PublicKey(identity)))
        );
        assert!(
            SecretKey::from_seed(&[9; 32])
                .public()
                .check_registrable()
                .is_ok()
        );
    }

    /// Signatures by `keys` keys (in turn) over distinct messages.
    fn signed_by(keys: u8, n: usize) -> (Vec<PublicKey>, Vec<Vec<u8>>, Vec<Signature>) {
        let secrets: Vec<SecretKey> = (0..keys)
            .map(|i| SecretKey::from_seed(&[i + 1; 32]))
            .collect();
        let messages: Vec<Vec<u8>> = (0..n).map(|i| format!("event {i}").into_bytes()).collect();
        let signatures = messages
            .iter()
            .enumerate()
            .map(|(i, m)| secrets[i % secrets.len()].sign(m))
            .collect();
        let publics = (0..n)
            .map(|i| secrets[i % secrets.len()].public())
            .collect();
        (publics, messages, signatures)
    }

    fn checks<'a>(
        keys: &'a [PublicKey],
        messages: &'a [Vec<u8>],
        signatures: &'a [Signature],
    ) -> Vec<SignatureCheck<'a>> {
        (0..keys.len())
            .map(|i| SignatureCheck {
                key: &keys[i],
                message: &messages[i],
                signature: &signatures[i],
            })
            .collect()
    }

    /// ed25519-dalek's own batch verification of the same signatures.
    fn dalek_batch(keys: &[PublicKey], messages: &[Vec<u8>], signatures: &[Signature]) -> bool {
        let keys: Vec<VerifyingKey> = keys.iter().map(|k| k.verifying_key().unwrap()).collect();
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<ed25519_dalek::Signature> = signatures
            .iter()
            .map(|s| ed25519_dalek::Signature::from_bytes(&s.0))
            .collect();
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    }

    /// 32 bytes that are not the encoding of a curve point.
    fn not_a_point() -> [u8; 32] {
        (2u8..)
            .map(|y| {
                let mut bytes = [0u8; 32];
                bytes[0] = y;
                bytes
            })
            .find(|b| CompressedEdwardsY(*b).decompress().is_none())
            .unwrap()
    }

    /// The order l of the base point, little-endian.
    const GROUP_ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn merged_batch_agrees_with_ed25519_dalek_batch() {
        assert_eq!(Scalar::from_bytes_mod_order(GROUP_ORDER), Scalar::ZERO);
        for keys in [1u8, 2, 5, 40] {
            let (publics, messages, signatures) = signed_by(keys, 40);
            let cache = KeyCache::new();
            let verdicts = |p: &[PublicKey], m: &[Vec<u8>], s: &[Signature]| {
                (verify_batch(&checks(p, m, s), &cache), dalek_batch(p, m, s))
            };
            assert_eq!(verdicts(&publics, &messages, &signatures), (true, true));
            let mut m = messages.clone();
            m[17][0] ^= 1;
            assert_eq!(
                verdicts(&publics, &m, &signatures),
                (false, false),
                "{keys}"
            );
            let mut s = signatures.clone();
            s[39].0[40] ^= 4;
            assert_eq!(verdicts(&publics, &messages, &s), (false, false), "{keys}");
            let mut s = signatures.clone();
            s.swap(3, 4);
            assert_eq!(verdicts(&publics, &messages, &s), (false, false), "{keys}");
            // A signature under another signer's key.
            let mut p = publics.clone();
            p[0] = SecretKey::from_seed(&[99; 32]).public();
            assert_eq!(
                verdicts(&p, &messages, &signatures),
                (false, false),
                "{keys}"
            );
            // s + l: the same scalar, not canonically encoded.
            let mut s = signatures.clone();
            let mut carry = 0u16;
            for (byte, l) in s[5].0[32..].iter_mut().zip(GROUP_ORDER) {
                let sum = u16::from(*byte) + u16::from(l) + carry;
                *byte = sum.to_le_bytes()[0];
                carry = sum >> 8;
            }
            assert!(publics[5].verify_strict(&messages[5], &s[5]).is_err());
            assert_eq!(verdicts(&publics, &messages, &s), (false, false), "{keys}");
            // A nonce that is not a curve point.
            let mut s = signatures.clone();
            s[9].0[..32].copy_from_slice(&not_a_point());
            assert_eq!(verdicts(&publics, &messages, &s), (false, false), "{keys}");
        }
        assert!(verify_batch(&[], &KeyCache::new()));
    }

    /// ed25519-dalek's `verify_strict`, the rule [`strict_check`] follows.
    fn dalek_strict(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        VerifyingKey::from_bytes(&key.0).is_ok_and(|vk| vk.verify_strict(message, &sig).is_ok())
    }

    /// [`strict_check`]'s verdicts without and with a table, which must be
    /// the same.
    fn strict_verdict(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
        let point = CompressedEdwardsY(key.0).decompress().expect("a point");
        let table = EdwardsBasepointTable::create(&-point);
        let plain = strict_check(key, &point, None, message, signature);
        let tabled = strict_check(key, &point, Some(&table), message, signature);
        assert_eq!(plain, tabled, "with and without a table");
        plain
    }

    /// A signature made from its parts, for signatures no honest signer
    /// makes: nonce `[r]B + extra` and `s = r + H(R‖A‖M)·a`, where `a` is
    /// the secret scalar of `key`.
    fn forge(
        a: &Scalar,
        key: &PublicKey,
        r: &Scalar,
        extra: &EdwardsPoint,
        message: &[u8],
    ) -> Signature {
        let nonce = (EdwardsPoint::mul_base(r) + extra).compress().0;
        forge_with_nonce(a, key, r, nonce, message)
    }

    /// As [`forge`], with the nonce's bytes given as they are.
    fn forge_with_nonce(
        a: &Scalar,
        key: &PublicKey,
        r: &Scalar,
        nonce: [u8; 32],
        message: &[u8],
    ) -> Signature {
        let s = r + challenge(&nonce, key, message) * a;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&nonce);
        bytes[32..].copy_from_slice(s.as_bytes());
        Signature(bytes)
    }

    #[test]
    fn strict_check_accepts_exactly_what_verify_strict_accepts() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let agree = |key: &PublicKey, message: &[u8], signature: &Signature| {
            let dalek = dalek_strict(key, message, signature);
            assert_eq!(strict_verdict(key, message, signature), dalek);
            dalek
        };
        let a = Scalar::from(0x1234_5678_9abc_def0u64) * Scalar::from(0xfedc_ba98_7654_3210u64);
        let key = PublicKey(EdwardsPoint::mul_base(&a).compress().0);
        let message = b"lot ANDINA-7 received".as_slice();
        let r = Scalar::from(987_654_321u64);
        let identity = EIGHT_TORSION[0];

        // An honest signature, and the same with another message or key.
        let good = forge(&a, &key, &r, &identity, message);
        assert!(agree(&key, message, &good));
        assert!(!agree(&key, b"lot ANDINA-8 received", &good));
        let other = PublicKey(EdwardsPoint::mul_base(&(a + Scalar::ONE)).compress().0);
        assert!(!agree(&other, message, &good));

        // s + l: the right scalar, not canonically encoded.
        let mut high = good;
        let mut carry = 0u16;
        for (byte, l) in high.0[32..].iter_mut().zip(GROUP_ORDER) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = sum.to_le_bytes()[0];
            carry = sum >> 8;
        }
        assert!(!agree(&key, message, &high));

        // A nonce off by each small-order point.
        for torsion in &EIGHT_TORSION[1..] {
            assert!(!agree(
                &key,
                message,
                &forge(&a, &key, &r, torsion, message)
            ));
        }

        // The equation holds but the nonce is the identity (r = 0): only
        // the small-order check refuses it.
        let zero = Scalar::ZERO;
        let small = forge(&a, &key, &zero, &identity, message);
        let (nonce, s) = small.nonce_and_scalar();
        let k = challenge(&nonce, &key, message);
        assert_eq!(
            EdwardsPoint::vartime_double_scalar_mul_basepoint(
                &k,
                &-CompressedEdwardsY(key.0).decompress().unwrap(),
                &Scalar::from_canonical_bytes(s).unwrap()
            )
            .compress()
            .0,
            nonce,
            "the equation holds"
        );
        assert!(!agree(&key, message, &small));

        // The identity encoded with y = p + 1 (not canonical), s = k·a.
        let mut not_canonical = [0xffu8; 32];
        not_canonical[0] = 0xee;
        not_canonical[31] = 0x7f;
        let sig = forge_with_nonce(&a, &key, &zero, not_canonical, message);
        assert!(!agree(&key, message, &sig));

        // A nonce that is not a point.
        let sig = forge_with_nonce(&a, &key, &r, not_a_point(), message);
        assert!(!agree(&key, message, &sig));

        // Small-order keys are refused whatever the signature.
        for torsion in &EIGHT_TORSION {
            let weak = PublicKey(torsion.compress().0);
            let sig = forge(&zero, &weak, &r, &identity, message);
            assert!(!agree(&weak, message, &sig));
        }

        // A key with a small-order part: a signature verifies when the
        // challenge kills that part, and the two rules must agree on which.
        let torsioned_point = EdwardsPoint::mul_base(&a) + EIGHT_TORSION[1];
        let torsioned = PublicKey(torsioned_point.compress().0);
        let (mut accepted, mut refused) = (0, 0);
        for i in 0..64u64 {
            let r = Scalar::from(1_000 + i);
            let extra = EIGHT_TORSION[(i % 8) as usize];
            if agree(
                &torsioned,
                message,
                &forge(&a, &torsioned, &r, &extra, message),
            ) {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        assert!(
            accepted > 0 && refused > 0,
            "{accepted} accepted, {refused} refused"
        );
    }

    #[test]
    fn a_key_checked_often_gets_one_table_and_the_same_verdicts() {
        // Two keys in turn, each signature checked twice (as it is and
        // spoiled): before step i each key has had i checks, rounded up
        // to even.
        let (publics, messages, signatures) = signed_by(2, TABLE_AFTER_CHECKS as usize + 40);
        let cache = KeyCache::new();
        for i in 0..publics.len() {
            if i == TABLE_AFTER_CHECKS as usize - 2 {
                assert_eq!(
                    cache.tables(),
                    0,
                    "no table before {TABLE_AFTER_CHECKS} checks"
                );
            }
            assert!(
                cache
                    .verify_strict(&publics[i], &messages[i], &signatures[i])
                    .is_ok()
            );
            let mut spoiled = signatures[i];
            spoiled.0[i % 64] ^= 0x10;
            assert_eq!(
                cache.verify_strict(&publics[i], &messages[i], &spoiled),
                Err(CryptoError::BadSignature(publics[i]))
            );
        }
        assert_eq!(cache.tables(), 2, "each key's table built once");
        assert_eq!(
            cache.verify_strict(&publics[0], &messages[1], &signatures[0]),
            Err(CryptoError::BadSignature(publics[0]))
        );
    }

    #[test]
    fn threads_checking_one_key_build_one_table_and_agree() {
        let (publics, messages, signatures) = signed_by(1, 64);
        let cache = KeyCache::new();
        std::thread::scope(|scope| {
            for t in 0..8usize {
                let (cache, publics, messages, signatures) =
                    (&cache, &publics, &messages, &signatures);
                scope.spawn(move || {
                    for round in 0..TABLE_AFTER_CHECKS as usize / 4 {
                        let i = (t * 7 + round) % 64;
                        let mut signature = signatures[i];
                        let spoil = round % 3 == 0;
                        if spoil {
                            signature.0[(t + round) % 64] ^= 0x20;
                        }
                        let verdict = cache.verify_strict(&publics[i], &messages[i], &signature);
                        assert_eq!(verdict.is_ok(), !spoil, "thread {t}, round {round}");
                    }
                });
            }
        });
        assert_eq!(cache.tables(), 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Bulk checks name exactly the signatures that were spoiled,
        /// whatever the mix of keys and the batches they fall in.
        #[test]
        fn verify_many_names_exactly_the_spoiled_signatures(
            keys in 1u8..6,
            n in 1usize..300,
            spoil in proptest::collection::vec((0usize..300, 0usize..96), 0..4),
        ) {
            let (publics, mut messages, mut signatures) = signed_by(keys, n);
            let mut spoiled: Vec<usize> = Vec::new();
            for (i, byte) in spoil {
                let i = i % n;
                if byte < 64 {
                    signatures[i].0[byte] ^= 1;
                } else {
                    let len = messages[i].len();
                    messages[i][(byte - 64) % len] ^= 1;
                }
                spoiled.push(i);
            }
            spoiled.sort_unstable();
            spoiled.dedup();
            // A byte flipped twice is no change.
            spoiled.retain(|&i| publics[i].verify_strict(&messages[i], &signatures[i]).is_err());
            proptest::prop_assert_eq!(verify_many(&checks(&publics, &messages, &signatures)), spoiled);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// The strict check, with and without a table, agrees with
        /// `verify_strict` on signatures with any bytes changed.
        #[test]
        fn strict_check_agrees_with_verify_strict_on_changed_bytes(
            changes in proptest::collection::vec((0usize..80, proptest::prelude::any::<u8>()), 0..3),
        ) {
            let (publics, mut messages, mut signatures) = signed_by(1, 1);
            for (at, value) in changes {
                if at < 64 {
                    signatures[0].0[at] = value;
                } else {
                    let len = messages[0].len();
                    messages[0][(at - 64) % len] = value;
                }
            }
            proptest::prop_assert_eq!(
                strict_verdict(&publics[0], &messages[0], &signatures[0]),
                dalek_strict(&publics[0], &messages[0], &signatures[0])
            );
        }
    }
}
