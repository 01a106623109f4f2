//! The log's side of witnessing, pure: checking a submitted cosigned
//! checkpoint ([`check_submission`]) and the book of cosignatures the log
//! keeps and serves with its checkpoints ([`CosignatureBook`]). The file
//! it lives in (`DATA/cosignatures`) is read and written by
//! `witness::files`.
//!
//! The book keeps, for each witness key, its newest cosignature of each
//! checkpoint size, for the [`KEEP_PER_WITNESS`] largest sizes it
//! cosigned: enough to serve a checkpoint with the cosignatures of every
//! witness that saw it, and to serve older cosigned checkpoints (a
//! passport's, a buyer's last one) for a while, in a file that stays small.
//! With each cosignature it keeps the log's own signature of that
//! checkpoint, so an older checkpoint is served exactly as the log signed
//! it, without asking the ledger.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::trust::TrustedWitnesses;
use crate::merkle::Hash;
use crate::merkle::checkpoint::{self, Checkpoint, Note, NoteError, NoteSignature, NoteVerifier};
use crate::merkle::cosignature::{CosignatureError, timestamp_of};

/// First line of the book file: names the format and its version.
pub const BOOK_FORMAT: &str = "oretrail cosignatures v1";

/// Checkpoint sizes kept per witness key (its largest ones).
pub const KEEP_PER_WITNESS: usize = 64;

/// How far in the future (by the log's clock) a cosignature's timestamp
/// may be: witnesses' clocks drift, but a cosignature "as of" next week
/// would outlive what it claims.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// Why a submitted cosigned checkpoint is refused. Each variant is one
/// answer of `POST /v1/checkpoint/cosignatures`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmissionError {
    /// The text is not a signed note.
    #[error("the checkpoint is not a signed note: {0}")]
    Malformed(NoteError),
    /// The note is not a checkpoint of this log signed by its key.
    #[error("the checkpoint is not one this log signed: {0}")]
    NotSignedByLog(NoteError),
    /// Signed by the log key, but with another origin.
    #[error("the checkpoint names the log {found:?}, but this log is {expected:?}")]
    WrongOrigin {
        /// This log's origin.
        expected: String,
        /// The origin in the checkpoint.
        found: String,
    },
    /// No cosignature line besides the log's.
    #[error("the checkpoint carries no cosignature, only the log's own signature")]
    NoCosignature,
    /// A line from a key the operator does not trust.
    #[error(
        "the key {name} (key ID {key_id}) is not a trusted witness of this log; the operator trusts a witness with `oretrail witness trust`"
    )]
    Untrusted {
        /// The line's key name.
        name: String,
        /// The line's key id, hex.
        key_id: String,
    },
    /// A trusted witness's line that does not verify.
    #[error("the cosignature of {name} is not valid: {reason}")]
    BadCosignature {
        /// The witness.
        name: String,
        /// Why.
        reason: CosignatureError,
    },
    /// A timestamp too far ahead of the log's clock.
    #[error(
        "the cosignature of {name} is dated {timestamp}, more than {MAX_CLOCK_SKEW_SECS} s after this log's time {now}"
    )]
    FromTheFuture {
        /// The witness.
        name: String,
        /// Its timestamp.
        timestamp: u64,
        /// The log's time.
        now: u64,
    },
    /// A size the log has not reached.
    #[error("the log has no checkpoint of size {size}; it holds {tree_size} entries")]
    UnknownSize {
        /// The size submitted.
        size: u64,
        /// The log's size.
        tree_size: u64,
    },
    /// Signed by the log key, but not the log's tree at that size: a
    /// checkpoint of a fork (or of another ledger under the same key).
    #[error(
        "the checkpoint of size {size} has root {root}, but this log's tree of that size has root {ours}"
    )]
    Conflict {
        /// The size.
        size: u64,
        /// The submitted root, base64.
        root: String,
        /// The log's root, base64.
        ours: String,
    },
}

/// One verified cosignature of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The cosignature line.
    pub line: NoteSignature,
    /// Its timestamp.
    pub timestamp: u64,
}

/// A submitted checkpoint with its log signature and cosignatures verified.
/// Before recording it, the caller checks that it is the log's own tree
/// ([`Submission::check_tree`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    checkpoint: Checkpoint,
    log_line: NoteSignature,
    cosignatures: Vec<Cosigned>,
}

impl Submission {
    /// The checkpoint submitted.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Its verified cosignatures.
    pub fn cosignatures(&self) -> &[Cosigned] {
        &self.cosignatures
    }

    /// Checks the checkpoint against the log's tree: `tree_size` is the
    /// log's size now and `root_at` its root at a size up to that.
    pub fn check_tree<E>(
        &self,
        tree_size: u64,
        root_at: impl FnOnce(u64) -> Result<Hash, E>,
    ) -> Result<Result<(), SubmissionError>, E> {
        let size = self.checkpoint.size();
        if size > tree_size {
            return Ok(Err(SubmissionError::UnknownSize { size, tree_size }));
        }
        let ours = root_at(size)?;
        if ours != *self.checkpoint.root() {
            return Ok(Err(SubmissionError::Conflict {
                size,
                root: BASE64.encode(self.checkpoint.root()),
                ours: BASE64.encode(ours),
            }));
        }
        Ok(Ok(()))
    }
}

/// Checks a submitted checkpoint note: signed by the log key `log` with
/// this log's origin, and carrying at least one cosignature line; every
/// line besides the log's must come from a `trusted` witness key, verify,
/// and be dated no later than `now` plus [`MAX_CLOCK_SKEW_SECS`].
pub fn check_submission(
    note: &str,
    log: &NoteVerifier,
    trusted: &TrustedWitnesses,
    now: u64,
) -> Result<Submission, SubmissionError> {
    let note = Note::parse(note).map_err(SubmissionError::Malformed)?;
    let log_line = note
        .verify(log)
        .map_err(SubmissionError::NotSignedByLog)?
        .clone();
    let checkpoint =
        checkpoint::parse_body(note.body()).map_err(SubmissionError::NotSignedByLog)?;
    if checkpoint.origin() != log.name() {
        return Err(SubmissionError::WrongOrigin {
            expected: log.name().to_owned(),
            found: checkpoint.origin().to_owned(),
        });
    }
    let mut cosignatures = Vec::new();
    for line in note.signatures() {
        if line.name() == log.name() && line.key_id() == log.key_id() {
            continue;
        }
        let witness = trusted
            .signer_of(line)
            .ok_or_else(|| SubmissionError::Untrusted {
                name: line.name().to_owned(),
                key_id: hex::encode(line.key_id()),
            })?;
        let timestamp = witness.verify_line(note.body(), line).map_err(|reason| {
            SubmissionError::BadCosignature {
                name: witness.name().to_owned(),
                reason,
            }
        })?;
        if timestamp > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(SubmissionError::FromTheFuture {
                name: witness.name().to_owned(),
                timestamp,
                now,
            });
        }
        cosignatures.push(Cosigned {
            line: line.clone(),
            timestamp,
        });
    }
    if cosignatures.is_empty() {
        return Err(SubmissionError::NoCosignature);
    }
    Ok(Submission {
        checkpoint,
        log_line,
        cosignatures,
    })
}

/// One kept cosignature: the checkpoint, the log's signature of it, and a
/// witness's cosignature.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Page {
    size: u64,
    root: Hash,
    log_line: NoteSignature,
    cosignature: NoteSignature,
    timestamp: u64,
}

impl Page {
    fn witness(&self) -> (&str, [u8; 4]) {
        (self.cosignature.name(), self.cosignature.key_id())
    }
}

/// What recording one cosignature did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The first cosignature of this witness at this size.
    New,
    /// Newer than the one kept, which it replaced.
    Newer,
    /// Not newer than the one kept: nothing changed.
    Kept,
}

/// The cosignatures a log keeps (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureBook {
    origin: String,
    /// Sorted by witness (name, key id), then size.
    pages: Vec<Page>,
}

impl CosignatureBook {
    /// An empty book for the log `origin`.
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            pages: Vec::new(),
        }
    }

    /// The log this book belongs to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of cosignatures kept.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether it keeps none.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Records the cosignatures of a submission whose tree was checked;
    /// one answer per cosignature, in order.
    pub fn record(&mut self, submission: &Submission) -> Vec<Recorded> {
        submission
            .cosignatures
            .iter()
            .map(|c| {
                self.insert(Page {
                    size: submission.checkpoint.size(),
                    root: *submission.checkpoint.root(),
                    log_line: submission.log_line.clone(),
                    cosignature: c.line.clone(),
                    timestamp: c.timestamp,
                })
            })
            .collect()
    }

    fn position(&self, page: &Page) -> Result<usize, usize> {
        let key = |p: &Page| (p.witness().0.to_owned(), p.witness().1, p.size);
        self.pages.binary_search_by_key(&key(page), key)
    }

    fn insert(&mut self, page: Page) -> Recorded {
        let recorded = match self.position(&page) {
            Ok(at) if self.pages[at].timestamp >= page.timestamp => return Recorded::Kept,
            Ok(at) => {
                self.pages[at] = page.clone();
                Recorded::Newer
            }
            Err(at) => {
                self.pages.insert(at, page.clone());
                Recorded::New
            }
        };
        // Forget this witness's smallest sizes beyond the limit.
        let witness = page.witness();
        let mine: Vec<usize> = (0..self.pages.len())
            .filter(|&i| self.pages[i].witness() == witness)
            .collect();
        if mine.len() > KEEP_PER_WITNESS {
            let drop = mine.len() - KEEP_PER_WITNESS;
            // Sorted by size within a witness: its first pages are the
            // smallest.
            self.pages.drain(mine[0]..mine[0] + drop);
            if self.position(&page).is_err() {
                // It was one of the smallest: nothing kept changed.
                return Recorded::Kept;
            }
        }
        recorded
    }

    /// The cosignature lines of the checkpoint `size` with root `root`,
    /// one per witness that `trusted` still trusts, ordered by name.
    pub fn lines(&self, size: u64, root: &Hash, trusted: &TrustedWitnesses) -> Vec<NoteSignature> {
        self.pages
            .iter()
            .filter(|p| p.size == size && p.root == *root)
            .filter(|p| trusted.signer_of(&p.cosignature).is_some())
            .map(|p| p.cosignature.clone())
            .collect()
    }

    /// The checkpoint of `size` as the log signed it, with the lines of
    /// [`CosignatureBook::lines`]; `None` when no trusted witness's
    /// cosignature of that size is kept.
    pub fn note(&self, size: u64, trusted: &TrustedWitnesses) -> Option<String> {
        let first = self
            .pages
            .iter()
            .find(|p| p.size == size && trusted.signer_of(&p.cosignature).is_some())?;
        let checkpoint = Checkpoint::new(&self.origin, size, first.root).ok()?;
        let mut note = Note::new(checkpoint.body()).ok()?;
        note.add_signature(first.log_line.clone()).ok()?;
        for line in self.lines(size, &first.root, trusted) {
            note.add_signature(line).ok()?;
        }
        Some(note.to_string())
    }

    /// The book file's text: the format line, `origin <origin>`, then one
    /// line per cosignature: `<size> <base64 root> <base64 log signature>
    /// <witness name> <base64 cosignature>`, each signature as in its note
    /// line (key id first).
    pub fn to_text(&self) -> String {
        let mut text = format!("{BOOK_FORMAT}\norigin {}\n", self.origin);
        for p in &self.pages {
            text.push_str(&format!(
                "{} {} {} {} {}\n",
                p.size,
                BASE64.encode(p.root),
                line_payload(&p.log_line),
                p.cosignature.name(),
                line_payload(&p.cosignature),
            ));
        }
        text
    }

    /// Parses the book file's text. Signatures are not checked again here
    /// (the log checked each before writing it, and every reader of a
    /// served note checks it anyway); shapes are.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(BOOK_FORMAT) {
            return Err(format!("the first line must be {BOOK_FORMAT:?}"));
        }
        let origin = lines
            .next()
            .and_then(|l| l.strip_prefix("origin "))
            .ok_or("the second line must be `origin <origin>`")?;
        Checkpoint::new(origin, 0, [0; 32]).map_err(|e| format!("origin: {e}"))?;
        let mut book = Self::new(origin);
        for (n, line) in lines.enumerate() {
            let page = parse_page(origin, line).map_err(|e| format!("line {}: {e}", n + 3))?;
            if book.position(&page).is_ok() {
                return Err(format!(
                    "line {}: a second cosignature of one witness at one size",
                    n + 3
                ));
            }
            book.insert(page);
        }
        Ok(book)
    }
}

/// The base64 part of a signature line: key id then signature.
fn line_payload(line: &NoteSignature) -> String {
    let mut bytes = line.key_id().to_vec();
    bytes.extend_from_slice(line.signature());
    BASE64.encode(bytes)
}

fn parse_line_payload(name: &str, b64: &str) -> Result<NoteSignature, String> {
    let bytes = BASE64
        .decode(b64)
        .map_err(|_| format!("the signature of {name} is not base64"))?;
    if bytes.len() < 5 {
        return Err(format!("the signature of {name} is too short"));
    }
    let (id, signature) = bytes.split_at(4);
    NoteSignature::new(name, [id[0], id[1], id[2], id[3]], signature.to_vec())
        .map_err(|e| e.to_string())
}

fn parse_page(origin: &str, line: &str) -> Result<Page, String> {
    let fields: Vec<&str> = line.split(' ').collect();
    let [size, root, log_sig, name, cosig] = fields[..] else {
        return Err("a cosignature line has five fields separated by single spaces".into());
    };
    let size: u64 = size
        .parse()
        .ok()
        .filter(|_| size.bytes().all(|b| b.is_ascii_digit()))
        .ok_or("the size is not a number")?;
    let root: Hash = BASE64
        .decode(root)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the root is not base64 of 32 bytes")?;
    let log_line = parse_line_payload(origin, log_sig)?;
    let cosignature = parse_line_payload(name, cosig)?;
    let timestamp = timestamp_of(&cosignature).map_err(|e| e.to_string())?;
    Ok(Page {
        size,
        root,
        log_line,
        cosignature,
        timestamp,
    })
}
