//! The log file: the durable copy of the truth.
//!
//! Layout (see `schemas/ENCODING.md`): a 16-byte header, then frames. A
//! frame is `magic "OTLF" | kind u8 | len u32 LE | crc32 u32 LE | payload`,
//! where the CRC-32 (IEEE) covers kind, len and payload. Kind 1 carries an
//! entry's canonical bytes; kind 2 a checkpoint record. The writer appends
//! each committed batch as its entry frames followed by one checkpoint
//! frame, in a single write, then `fdatasync`s before acknowledging. So a
//! batch is acknowledged only if its checkpoint frame is on disk, and only
//! the final batch can be incomplete after a crash.
//!
//! The writer keeps [`RESERVE`] bytes of zeros written after the last
//! frame, so that most syncs find the file's length unchanged and write
//! the data alone (a file that grows also needs its inode written, a
//! second device write before the sync returns). A log reader therefore
//! takes a run of zero bytes from a frame boundary to the end of the file
//! as the log's end ([`FrameReader::with_reserved_tail`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// First bytes of every log file: name and format version 1.
pub const LOG_HEADER: [u8; 16] = *b"ORETRAIL-LOG\0\0\0\x01";
/// First bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"OTLF";
/// Bytes of frame header before the payload.
pub const FRAME_HEADER_LEN: usize = 13;
/// Largest payload a frame may carry.
pub const MAX_FRAME_PAYLOAD: u32 = crate::codec::MAX_ENCODED_LEN as u32;
/// Zero bytes the writer keeps after the last frame.
pub const RESERVE: u64 = 256 * 1024;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Entry,
    Checkpoint,
}

impl FrameKind {
    fn byte(self) -> u8 {
        match self {
            FrameKind::Entry => 1,
            FrameKind::Checkpoint => 2,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(FrameKind::Entry),
            2 => Some(FrameKind::Checkpoint),
            _ => None,
        }
    }
}

/// Appends one frame to `out`.
pub fn encode_frame(kind: FrameKind, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("payloads are bounded by the codec limit");
    out.extend_from_slice(&FRAME_MAGIC);
    out.push(kind.byte());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&frame_crc(kind.byte(), len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn frame_crc(kind: u8, len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// A frame read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Byte offset of the frame's first byte.
    pub offset: u64,
    pub kind: FrameKind,
    pub payload: Vec<u8>,
}

impl Frame {
    /// Offset just past this frame.
    pub fn end(&self) -> u64 {
        self.offset + (FRAME_HEADER_LEN + self.payload.len()) as u64
    }
    /// Offset of the payload.
    pub fn payload_offset(&self) -> u64 {
        self.offset + FRAME_HEADER_LEN as u64
    }
}

/// Why the bytes at some offset are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub reason: String,
    /// The bytes read there, from `offset` on, before the reader gave up:
    /// a reader of a log that a writer is appending to compares them with
    /// the file again ([`after_damage`]).
    pub seen: Vec<u8>,
}

/// What follows damage found in a log.
#[derive(Debug)]
pub enum AfterDamage {
    /// Nothing intact: a torn tail.
    Nothing,
    /// Intact frames, but the damaged bytes have changed since they were
    /// read: the batch a writer was writing into the reserved zeros (a log
    /// read while its ledger appends), so what follows is that batch or
    /// later ones, never acknowledged data.
    BeingWritten,
    /// The first intact frame after it: the damage is inside the log.
    Intact(Frame),
}

/// Looks past `damage` in a log of `file_len` bytes. A writer never
/// rewrites a frame once written and writes a batch from its start, so
/// damaged bytes that change are part of the batch in progress, and real
/// damage reads the same every time. The intact frames are looked for
/// first: any the writer had completed by then follow bytes it had
/// already written over what was seen, so the second look cannot miss
/// the change.
pub fn after_damage(file: &File, damage: &Damage, file_len: u64) -> io::Result<AfterDamage> {
    let Some(next) = next_intact_frame(file, damage.offset, file_len)? else {
        return Ok(AfterDamage::Nothing);
    };
    Ok(if changed_since(file, damage)? {
        AfterDamage::BeingWritten
    } else {
        AfterDamage::Intact(next)
    })
}

/// Whether the bytes `damage` was found in have changed since they were
/// read.
fn changed_since(file: &File, damage: &Damage) -> io::Result<bool> {
    let mut now = vec![0u8; damage.seen.len()];
    match file.read_exact_at(&mut now, damage.offset) {
        Ok(()) => Ok(now != damage.seen),
        // Shorter now: cut since (a torn tail dropped), so changed.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(true),
        Err(e) => Err(e),
    }
}

/// Reads frames one after another from a byte stream.
pub struct FrameReader<R: Read> {
    reader: R,
    offset: u64,
    file_len: u64,
    /// Zero bytes from a frame boundary to the end are the end (a log's
    /// reserved space), not damage.
    reserved_tail: bool,
}

impl<R: Read> FrameReader<R> {
    /// `reader` must be positioned just after the header.
    pub fn new(reader: R, file_len: u64) -> Self {
        Self {
            reader,
            offset: LOG_HEADER.len() as u64,
            file_len,
            reserved_tail: false,
        }
    }

    /// A reader positioned at byte `offset` of a file of `file_len` bytes,
    /// for frames that follow some other header (an audit bundle's), so
    /// that the offsets it reports are the file's own.
    pub fn starting_at(reader: R, offset: u64, file_len: u64) -> Self {
        Self {
            reader,
            offset,
            file_len,
            reserved_tail: false,
        }
    }

    /// Reads a log, whose writer keeps zeros after its last frame: where a
    /// frame would start, zero bytes up to the end of the file end the log
    /// cleanly. A bundle is read without this, so zeros there are damage.
    pub fn with_reserved_tail(mut self) -> Self {
        self.reserved_tail = true;
        self
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next frame, `Ok(None)` at a clean end, or the damage found.
    pub fn next_frame(&mut self) -> io::Result<Result<Option<Frame>, Damage>> {
        let offset = self.offset;
        let remaining = self.file_len.saturating_sub(offset);
        if remaining == 0 {
            return Ok(Ok(None));
        }
        let damage = |reason: String, seen: &[u8]| {
            Ok(Err(Damage {
                offset,
                reason,
                seen: seen.to_vec(),
            }))
        };
        let mut header = [0u8; FRAME_HEADER_LEN];
        let start = (remaining as usize).min(FRAME_HEADER_LEN);
        self.reader.read_exact(&mut header[..start])?;
        if self.reserved_tail && header[..start].iter().all(|&b| b == 0) {
            let mut seen = header[..start].to_vec();
            if let Some(at) = self.first_non_zero(offset + start as u64, &mut seen)? {
                return damage(
                    format!("zero bytes where a frame should start, then data at byte {at}"),
                    &seen,
                );
            }
            // The reserved space: the log ends here.
            self.file_len = offset;
            return Ok(Ok(None));
        }
        let header_seen = &header[..start];
        if remaining < FRAME_HEADER_LEN as u64 {
            return damage(
                format!("{remaining} bytes at the end are too short for a frame header"),
                header_seen,
            );
        }
        if header[..4] != FRAME_MAGIC {
            return damage("frame magic is missing".into(), header_seen);
        }
        let Some(kind) = FrameKind::from_byte(header[4]) else {
            return damage(format!("unknown frame kind {}", header[4]), header_seen);
        };
        let len = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
        let crc = u32::from_le_bytes([header[9], header[10], header[11], header[12]]);
        if len > MAX_FRAME_PAYLOAD {
            return damage(format!("frame length {len} exceeds the limit"), header_seen);
        }
        if u64::from(len) > remaining - FRAME_HEADER_LEN as u64 {
            return damage(
                format!("frame of {len} bytes runs past the end of the file"),
                header_seen,
            );
        }
        let mut payload = vec![0u8; len as usize];
        self.reader.read_exact(&mut payload)?;
        if frame_crc(header[4], len, &payload) != crc {
            let mut seen = header.to_vec();
            seen.extend_from_slice(&payload);
            return damage("frame checksum does not match".into(), &seen);
        }
        self.offset += (FRAME_HEADER_LEN + payload.len()) as u64;
        Ok(Ok(Some(Frame {
            offset,
            kind,
            payload,
        })))
    }
}

impl<R: Read> FrameReader<R> {
    /// Reads on from byte `from` to the end of the file: the offset of the
    /// first byte that is not zero, if any, with what was read up to and
    /// including it added to `seen`.
    fn first_non_zero(&mut self, from: u64, seen: &mut Vec<u8>) -> io::Result<Option<u64>> {
        let mut block = [0u8; 8192];
        let mut at = from;
        while at < self.file_len {
            let n = (self.file_len - at).min(block.len() as u64) as usize;
            self.reader.read_exact(&mut block[..n])?;
            if let Some(i) = block[..n].iter().position(|&b| b != 0) {
                seen.extend_from_slice(&block[..=i]);
                return Ok(Some(at + i as u64));
            }
            seen.extend_from_slice(&block[..n]);
            at += n as u64;
        }
        Ok(None)
    }
}

/// Whether bytes `from..to` of `file` are all zero (a log's reserved
/// space).
pub fn is_zero(file: &File, from: u64, to: u64) -> io::Result<bool> {
    let mut block = vec![0u8; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = (to - at).min(block.len() as u64) as usize;
        file.read_exact_at(&mut block[..n], at)?;
        if block[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// The first intact frame that starts after `offset` in `file`, if any.
/// Used to tell a torn tail (nothing intact follows) from damage inside
/// the log, and to see what the damaged stretch held.
pub fn next_intact_frame(file: &File, offset: u64, file_len: u64) -> io::Result<Option<Frame>> {
    let start = offset + 1;
    if start >= file_len {
        return Ok(None);
    }
    let mut rest = vec![0u8; (file_len - start) as usize];
    file.read_exact_at(&mut rest, start)?;
    for at in memchr_all(&rest, FRAME_MAGIC[0]) {
        let candidate = &rest[at..];
        if candidate.len() < FRAME_HEADER_LEN || candidate[..4] != FRAME_MAGIC {
            continue;
        }
        let Some(kind) = FrameKind::from_byte(candidate[4]) else {
            continue;
        };
        let len =
            u32::from_le_bytes([candidate[5], candidate[6], candidate[7], candidate[8]]) as usize;
        let crc = u32::from_le_bytes([candidate[9], candidate[10], candidate[11], candidate[12]]);
        if let Some(payload) = candidate.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len)
            && frame_crc(candidate[4], len as u32, payload) == crc
        {
            return Ok(Some(Frame {
                offset: start + at as u64,
                kind,
                payload: payload.to_vec(),
            }));
        }
    }
    Ok(None)
}

fn memchr_all(haystack: &[u8], needle: u8) -> impl Iterator<Item = usize> + '_ {
    haystack
        .iter()
        .enumerate()
        .filter(move |(_, b)| **b == needle)
        .map(|(i, _)| i)
}

/// Checks the header of an open log file.
pub fn check_header(file: &File) -> Result<(), String> {
    let mut header = [0u8; LOG_HEADER.len()];
    file.read_exact_at(&mut header, 0)
        .map_err(|_| "the file is shorter than the 16-byte log header".to_string())?;
    if header[..12] != LOG_HEADER[..12] {
        return Err("the file does not start with the oretrail log header".into());
    }
    if header != LOG_HEADER {
        return Err(format!(
            "log format version {} is not supported",
            header[15]
        ));
    }
    Ok(())
}

/// The writer's handle on the log: positional appends and data syncs.
pub struct LogWriter {
    file: File,
    path: PathBuf,
    /// Just past the last frame.
    end: u64,
    /// The file's length: `end..reserved` holds zeros.
    reserved: u64,
}

impl LogWriter {
    /// Creates a new log with its header, failing if one exists.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        file.write_all_at(&LOG_HEADER, 0)?;
        file.sync_all()?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
            end: LOG_HEADER.len() as u64,
            reserved: LOG_HEADER.len() as u64,
        })
    }

    /// Opens an existing log for appending at `end`. With `zeros_after`
    /// (the caller found only zeros after `end`, see [`is_zero`]) they are
    /// kept as reserved space; otherwise anything after `end` is cut (a
    /// torn tail the caller has decided to drop).
    pub fn open_at(path: &Path, end: u64, zeros_after: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        let reserved = if zeros_after {
            len
        } else {
            if len != end {
                file.set_len(end)?;
                file.sync_all()?;
            }
            end
        };
        Ok(Self {
            file,
            path: path.to_path_buf(),
            end,
            reserved,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Writes `bytes` at the end and makes them durable. When they reach
    /// past the reserved space, [`RESERVE`] more zeros are written after
    /// them in the same sync.
    pub fn append_durable(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.end + bytes.len() as u64;
        self.file.write_all_at(bytes, self.end)?;
        if end > self.reserved {
            self.file.write_all_at(&vec![0u8; RESERVE as usize], end)?;
            self.reserved = end + RESERVE;
        }
        self.file.sync_data()?;
        self.end = end;
        Ok(())
    }

    /// Gives the reserved space back, for a clean close: a closed log ends
    /// with its last frame.
    pub fn close(self) -> io::Result<()> {
        if self.reserved > self.end {
            self.file.set_len(self.end)?;
            self.file.sync_all()?;
        }
        Ok(())
    }
}

/// Read-only positional access for readers; never blocks the writer.
#[derive(Debug)]
pub struct LogReader {
    file: File,
}

impl LogReader {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
        })
    }

    /// Reads `len` payload bytes at `offset`, re-checking the frame CRC.
    pub fn read_payload(&self, frame_offset: u64, len: u32) -> io::Result<Result<Vec<u8>, Damage>> {
        let mut buf = vec![0u8; FRAME_HEADER_LEN + len as usize];
        self.file.read_exact_at(&mut buf, frame_offset)?;
        let stored_len = u32::from_le_bytes([buf[5], buf[6], buf[7], buf[8]]);
        let crc = u32::from_le_bytes([buf[9], buf[10], buf[11], buf[12]]);
        if buf[..4] != FRAME_MAGIC
            || stored_len != len
            || frame_crc(buf[4], len, &buf[FRAME_HEADER_LEN..]) != crc
        {
            return Ok(Err(Damage {
                offset: frame_offset,
                reason: "frame does not match its index entry or checksum".into(),
                seen: buf,
            }));
        }
        buf.drain(..FRAME_HEADER_LEN);
        Ok(Ok(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(file: &File) -> FrameReader<std::io::BufReader<&File>> {
        let len = file.metadata().unwrap().len();
        let mut buffered = std::io::BufReader::new(file);
        std::io::Seek::seek(&mut buffered, std::io::SeekFrom::Start(16)).unwrap();
        FrameReader::new(buffered, len)
    }

    #[test]
    fn frames_round_trip_and_damage_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut w = LogWriter::create(&path).unwrap();
        let mut buf = Vec::new();
        encode_frame(FrameKind::Entry, b"hello", &mut buf);
        encode_frame(FrameKind::Checkpoint, b"cp", &mut buf);
        w.append_durable(&buf).unwrap();
        let end = w.end();
        w.close().unwrap();
        let file = File::open(&path).unwrap();
        check_header(&file).unwrap();
        let len = file.metadata().unwrap().len();
        assert_eq!(len, end, "a closed log ends with its last frame");
        let mut r = reader(&file);
        let a = r.next_frame().unwrap().unwrap().unwrap();
        assert_eq!(
            (a.kind, a.payload.as_slice(), a.offset),
            (FrameKind::Entry, b"hello".as_slice(), 16)
        );
        let b = r.next_frame().unwrap().unwrap().unwrap();
        assert_eq!(b.kind, FrameKind::Checkpoint);
        assert_eq!(r.next_frame().unwrap(), Ok(None));
        assert_eq!(next_intact_frame(&file, 15, len).unwrap(), Some(a));
        assert_eq!(next_intact_frame(&file, 16, len).unwrap(), Some(b.clone()));
        assert_eq!(next_intact_frame(&file, b.offset, len).unwrap(), None);
    }

    /// The writer keeps zeros after the last frame, so that syncs within
    /// them leave the file's length alone; a log reader ends there, a
    /// bundle reader (without the reserved tail) calls them damage.
    #[test]
    fn the_reserved_tail_reads_as_the_end_of_a_log_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut w = LogWriter::create(&path).unwrap();
        let mut frames = Vec::new();
        encode_frame(FrameKind::Entry, &[7u8; 300], &mut frames);
        w.append_durable(&frames).unwrap();
        let first_end = w.end();
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, first_end + RESERVE);
        w.append_durable(&frames).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            len,
            "no growth within the reserve"
        );
        let end = w.end();
        let file = File::open(&path).unwrap();

        let mut log = reader(&file).with_reserved_tail();
        assert!(log.next_frame().unwrap().unwrap().is_some());
        assert!(log.next_frame().unwrap().unwrap().is_some());
        assert_eq!(log.next_frame().unwrap(), Ok(None));
        assert_eq!(log.offset(), end);
        assert_eq!(log.next_frame().unwrap(), Ok(None));

        let mut bundle = reader(&file);
        bundle.next_frame().unwrap().unwrap().unwrap();
        bundle.next_frame().unwrap().unwrap().unwrap();
        let damage = bundle.next_frame().unwrap().unwrap_err();
        assert_eq!(
            (damage.offset, damage.reason.as_str()),
            (end, "frame magic is missing")
        );

        // Data after zeros is damage at the frame boundary, naming the byte.
        for at in [end + 3, end + 100_000, len - 1] {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[at as usize] = 0x42;
            let bad = dir.path().join("bad");
            std::fs::write(&bad, &bytes).unwrap();
            let bad = File::open(&bad).unwrap();
            let mut r = reader(&bad).with_reserved_tail();
            r.next_frame().unwrap().unwrap().unwrap();
            r.next_frame().unwrap().unwrap().unwrap();
            let damage = r.next_frame().unwrap().unwrap_err();
            assert_eq!(damage.offset, end, "byte {at}");
            let expected = if at < end + FRAME_HEADER_LEN as u64 {
                "frame magic is missing".to_string()
            } else {
                format!("zero bytes where a frame should start, then data at byte {at}")
            };
            assert_eq!(damage.reason, expected, "byte {at}");
        }

        // Reopened, the zeros stay reserved; anything else after the end
        // is cut.
        drop(w);
        let zeros = |path: &Path| is_zero(&File::open(path).unwrap(), end, len).unwrap();
        let w = LogWriter::open_at(&path, end, zeros(&path)).unwrap();
        assert_eq!((w.end(), w.reserved), (end, len));
        drop(w);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[end as usize + 10] = 1;
        std::fs::write(&path, &bytes).unwrap();
        let w = LogWriter::open_at(&path, end, zeros(&path)).unwrap();
        assert_eq!(w.reserved, end);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
    }
}
