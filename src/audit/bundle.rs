//! Audit bundles: one file with a ledger's entries, every checkpoint and
//! the log key, that anyone can verify offline without trusting the
//! operator's server (`schemas/ENCODING.md`, section 11).
//!
//! Layout: a 16-byte magic, one header frame (kind 3: origin, log key,
//! entry and checkpoint counts, final root), then the log's own frames,
//! byte for byte, from entry 0 to the end of the last intact checkpoint
//! frame. Verification is the log verifier run over those frames
//! (`ledger::verify_frames`), then the header's claims checked against
//! what the frames proved.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AuditError, LogSnapshot};
use crate::codec::{self, Canonical};
use crate::crypto::{Digest, PublicKey};
use crate::ledger::{Container, VerifyFailure, VerifyReport};
use crate::merkle::checkpoint::{parse_verifier_key, verifier_key};
use crate::model::Timestamp;
use crate::store::log::{FRAME_HEADER_LEN, FRAME_MAGIC};

/// First bytes of every bundle: name, a NUL byte and format version 1.
pub const BUNDLE_MAGIC: [u8; 16] = *b"ORETRAIL-AUDIT\0\x01";

/// Frame kind of the bundle header; the log's frames use 1 and 2.
pub const HEADER_FRAME_KIND: u8 = 3;

/// Largest header payload a reader accepts, so a damaged length cannot
/// make it allocate much.
pub const MAX_HEADER_LEN: u32 = 64 * 1024;

/// Byte offset of the first log frame after a header of `payload_len`.
fn frames_start(payload_len: usize) -> u64 {
    (BUNDLE_MAGIC.len() + FRAME_HEADER_LEN + payload_len) as u64
}

/// What a bundle says it holds. Every field is checked against the
/// frames when the bundle is verified, except `exported_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleHeader {
    /// The log's origin line, as its genesis entry names it.
    pub origin: String,
    /// The log key, as its genesis entry names it.
    pub log_key: PublicKey,
    /// Entries in the bundle: the tree size of its final checkpoint.
    pub entries: u64,
    /// Checkpoint frames in the bundle.
    pub checkpoints: u64,
    /// RFC 9162 root of all `entries`, as the final checkpoint signs it.
    pub root: Digest,
    /// When the bundle was written, by the exporter's clock (informative).
    pub exported_at: Timestamp,
}

impl Canonical for BundleHeader {
    const TAG: [u8; 16] = codec::tag("oretrail.bundle");
    const VERSION: u16 = 1;
}

impl BundleHeader {
    /// The verifier key line of the log key the header names.
    pub fn log_key_line(&self) -> Result<String, String> {
        let vk = self
            .log_key
            .verifying_key()
            .map_err(|e| format!("the log key is not a valid Ed25519 key: {e}"))?;
        verifier_key(&self.origin, &vk).map_err(|e| e.to_string())
    }
}

/// The first bytes of a bundle with `header`: the 16-byte magic and the
/// header frame (`schemas/ENCODING.md`, section 11.1).
pub fn header_bytes(header: &BundleHeader) -> Result<Vec<u8>, codec::CodecError> {
    let payload = codec::encode(header)?;
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = BUNDLE_MAGIC.to_vec();
    out.extend_from_slice(&FRAME_MAGIC);
    out.push(HEADER_FRAME_KIND);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&header_crc(len, &payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// CRC-32 (IEEE) of kind, length and payload, as for the log's frames.
fn header_crc(len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[HEADER_FRAME_KIND]);
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Writes the bundle of `snapshot` to `out`: the log's frames up to its
/// last intact checkpoint, behind a header that names them. Returns the
/// header and the number of bytes written.
pub fn export(
    snapshot: &LogSnapshot,
    out: &mut impl Write,
    exported_at: Timestamp,
) -> Result<(BundleHeader, u64), AuditError> {
    let header = BundleHeader {
        origin: snapshot.info().origin.clone(),
        log_key: snapshot.info().log_key,
        entries: snapshot.entries(),
        checkpoints: snapshot.checkpoints(),
        root: snapshot.latest().root,
        exported_at,
    };
    // Only an absurd origin (megabytes long) could fail to encode.
    let head = header_bytes(&header).map_err(|e| AuditError::Damaged {
        index: 0,
        reason: format!("the genesis entry's origin does not fit a bundle header: {e}"),
    })?;
    out.write_all(&head).map_err(AuditError::Write)?;
    // Positional reads of a range that no writer touches again (see
    // `snapshot`), so a server appending meanwhile changes nothing here.
    let range = snapshot.frames();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = range.start;
    while at < range.end {
        let n = usize::try_from(range.end - at)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        snapshot
            .file()
            .read_exact_at(&mut buf[..n], at)
            .map_err(|e| AuditError::io(snapshot.path(), e))?;
        out.write_all(&buf[..n]).map_err(AuditError::Write)?;
        at += n as u64;
    }
    out.flush().map_err(AuditError::Write)?;
    Ok((header, head.len() as u64 + (range.end - range.start)))
}

/// Exports the bundle of the log at `log` to the file `out`, written
/// beside it under a temporary name and renamed into place once complete
/// and synced, so `out` is never a partial bundle.
pub fn export_file(
    log: &Path,
    out: &Path,
    exported_at: Timestamp,
) -> Result<(BundleHeader, u64), AuditError> {
    let snapshot = LogSnapshot::open(log)?;
    let partial = partial_path(out);
    let file = File::create(&partial).map_err(|e| AuditError::io(&partial, e))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let result = export(&snapshot, &mut writer, exported_at).and_then(|done| {
        let file = writer
            .into_inner()
            .map_err(|e| AuditError::io(&partial, e.into_error()))?;
        file.sync_all().map_err(|e| AuditError::io(&partial, e))?;
        std::fs::rename(&partial, out).map_err(|e| AuditError::io(out, e))?;
        Ok(done)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// What an intact bundle holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    pub header: BundleHeader,
    /// What the frames proved: entries, checkpoints, root, the final
    /// checkpoint note and the log key's verifier key line.
    pub verified: VerifyReport,
}

/// The first problem found in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleFailure {
    /// The file could not be read at all.
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    /// The magic or header is damaged, or the header's claims (origin,
    /// log key, counts, root) are not what the frames prove, or the log key
    /// is not the trusted one.
    #[error("bundle header: {0}")]
    Header(String),
    /// An entry or the checkpoint after it fails a check: frame, encoding,
    /// position, link, signature, record time, replay, rule, tree or
    /// checkpoint signature.
    #[error(transparent)]
    Entry(#[from] VerifyFailure),
}

/// How to verify a bundle.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// The log's verifier key line (`<origin>+<key id>+<base64 key>`) as
    /// obtained independently of the bundle; when given, the bundle must
    /// be signed by exactly that key.
    pub trusted_log_key: Option<&'a str>,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
}

/// Verifies the bundle at `path`: every frame, signature, link, rule,
/// tree root and checkpoint signature, then the header's claims.
pub fn verify_file(path: &Path, options: VerifyOptions<'_>) -> Result<BundleReport, BundleFailure> {
    let unreadable = |e: std::io::Error| BundleFailure::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let file = File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let (header, start) = read_header(&file, len)?;
    let key_line = header.log_key_line().map_err(BundleFailure::Header)?;
    if let Some(trusted) = options.trusted_log_key {
        let trusted = parse_verifier_key(trusted.trim()).map_err(|e| {
            BundleFailure::Header(format!(
                "the trusted log key is not a verifier key line: {e}"
            ))
        })?;
        if trusted.name() != header.origin || trusted.key().as_bytes() != header.log_key.as_bytes()
        {
            return Err(BundleFailure::Header(format!(
                "the bundle's log key {key_line} is not the trusted key {}",
                trusted.verifier_key()
            )));
        }
    }
    let (verified, ()) = crate::ledger::verify_frames(
        &file,
        start..len,
        Container::Bundle {
            entries: header.entries,
        },
        (),
        options.progress,
    )?;
    check_claims(&header, &key_line, &verified)?;
    Ok(BundleReport { header, verified })
}

/// Reads and checks the magic and the header frame; returns the header
/// and the offset of the first log frame.
pub(crate) fn read_header(file: &File, len: u64) -> Result<(BundleHeader, u64), BundleFailure> {
    let header = |reason: String| BundleFailure::Header(reason);
    let read = |buf: &mut [u8], at: u64| {
        file.read_exact_at(buf, at)
            .map_err(|e| header(format!("cannot read bytes {at}..: {e}")))
    };
    let prefix = (BUNDLE_MAGIC.len() + FRAME_HEADER_LEN) as u64;
    if len < prefix {
        return Err(header(format!(
            "the file is {len} bytes, too short for the magic and a header frame"
        )));
    }
    let mut magic = [0u8; 16];
    read(&mut magic, 0)?;
    if magic[..15] != BUNDLE_MAGIC[..15] {
        return Err(header(
            "the file does not start with the oretrail audit bundle magic".into(),
        ));
    }
    if magic[15] != BUNDLE_MAGIC[15] {
        return Err(header(format!(
            "bundle format version {} is not supported (this build reads version {})",
            magic[15], BUNDLE_MAGIC[15]
        )));
    }
    let mut frame = [0u8; FRAME_HEADER_LEN];
    read(&mut frame, BUNDLE_MAGIC.len() as u64)?;
    if frame[..4] != FRAME_MAGIC {
        return Err(header("the header frame's magic is missing".into()));
    }
    if frame[4] != HEADER_FRAME_KIND {
        return Err(header(format!(
            "the first frame is of kind {}, not a bundle header (kind {HEADER_FRAME_KIND})",
            frame[4]
        )));
    }
    let payload_len = u32::from_le_bytes([frame[5], frame[6], frame[7], frame[8]]);
    let crc = u32::from_le_bytes([frame[9], frame[10], frame[11], frame[12]]);
    if payload_len > MAX_HEADER_LEN || u64::from(payload_len) > len - prefix {
        return Err(header(format!(
            "the header frame claims {payload_len} bytes, more than the limit or the file"
        )));
    }
    let mut payload = vec![0u8; payload_len as usize];
    read(&mut payload, prefix)?;
    if header_crc(payload_len, &payload) != crc {
        return Err(header("the header frame's checksum does not match".into()));
    }
    let decoded: BundleHeader =
        codec::decode(&payload).map_err(|e| header(format!("header bytes: {e}")))?;
    Ok((decoded, frames_start(payload.len())))
}

/// The header's claims against what the frames proved.
fn check_claims(
    header: &BundleHeader,
    key_line: &str,
    verified: &VerifyReport,
) -> Result<(), BundleFailure> {
    let claim = |reason: String| Err(BundleFailure::Header(reason));
    if verified.origin != header.origin {
        return claim(format!(
            "the header names origin {:?}, the genesis entry {:?}",
            header.origin, verified.origin
        ));
    }
    if verified.log_key != key_line {
        return claim(format!(
            "the header names log key {key_line}, but the genesis entry names {}",
            verified.log_key
        ));
    }
    if verified.entries < header.entries {
        return Err(BundleFailure::Entry(VerifyFailure {
            index: verified.entries,
            reason: format!(
                "the header says the bundle holds {} entries, but its frames end after {}: \
                 the bundle is cut short",
                header.entries, verified.entries
            ),
        }));
    }
    if verified.entries != header.entries {
        return claim(format!(
            "the header says {} entries, the frames hold {}",
            header.entries, verified.entries
        ));
    }
    if verified.checkpoints != header.checkpoints {
        return claim(format!(
            "the header says {} checkpoints, the frames hold {}",
            header.checkpoints, verified.checkpoints
        ));
    }
    if verified.root != *header.root.as_bytes() {
        return claim(format!(
            "the header names root {}, the entries give {}",
            header.root,
            hex::encode(verified.root)
        ));
    }
    Ok(())
}
