//! Bearer tokens for reading the API, issued and revoked by the operator.
//!
//! A token is 32 random bytes (`getrandom`), written `ot_` followed by
//! their unpadded base64url form (RFC 4648 section 5), 46 characters in
//! all: the prefix lets secret scanners and people recognise one. It is
//! shown once, when issued. The data folder keeps only its SHA-256, with a
//! public id that names it, the participant it is bound to, a label, when
//! it was created, when it expires (if ever) and when it was revoked (if
//! it was), in `DATA/access/tokens.json`.
//!
//! The file is written only by [`TokenFile::update`]: under an exclusive
//! `flock` of `DATA/access/tokens.lock`, so that two `oretrail token`
//! commands cannot lose each other's change (a lost revocation would
//! silently keep a token alive), and atomically (a temporary file, written
//! with mode 0600, `fsync`ed and renamed over the old one, then the folder
//! `fsync`ed), so that a reader sees the old file or the new one, never
//! half of one. The server never writes it: [`TokenStore`] re-reads it when
//! it changes, so tokens are issued and revoked while the server runs.
//!
//! Presented tokens are looked up by their hash. The lookup is not
//! constant-time, and need not be: what timing could reveal is how the
//! SHA-256 of a guessed token compares with the stored hashes, and an
//! attacker can neither choose hashes (that would take a preimage) nor use
//! a stored hash to log in (that too would take a preimage of 256 random
//! bits). The bytes an attacker controls are never compared with a secret.
//!
//! This is the one module of `access` that does I/O, at the edge, the way
//! `crypto` reads key files.

use std::collections::HashMap;
use std::fmt;
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{Digest, sha256};
use crate::files::{self, Stamp};
use crate::model::{ParticipantId, Timestamp};

/// The folder of the data folder that holds the token file.
pub const ACCESS_DIR: &str = "access";
/// The token file, in [`ACCESS_DIR`].
pub const TOKENS_FILE: &str = "tokens.json";
/// Held with an exclusive `flock` while the token file is changed.
const LOCK_FILE: &str = "tokens.lock";
/// Written in full and renamed over [`TOKENS_FILE`] (`crate::files`).
#[cfg(test)]
const TEMP_FILE: &str = "tokens.json.tmp";
/// The first line of defence against reading some other JSON file: the
/// file must say what it is, and in which version.
pub const FORMAT: &str = "oretrail access tokens v1";
/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "ot_";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Characters in a token: the prefix and 43 base64url characters.
const TOKEN_LEN: usize = 3 + 43;
/// Longest label kept with a token.
pub const MAX_LABEL: usize = 200;
/// How often, at most, the server looks at the token file for changes.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(1);

/// Why a token could not be issued, revoked, listed or checked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is not a valid token file: {reason}; fix it, or remove it (which revokes every token)"
    )]
    Malformed { path: PathBuf, reason: String },
    #[error("no token {0} in the token file")]
    Unknown(String),
    #[error("{0:?} is not a token id (16 hex digits, as `oretrail token list` shows) nor a token")]
    BadSelector(String),
    #[error("a label is at most {MAX_LABEL} characters, without control characters")]
    BadLabel,
    #[error("the expiry {expires} is not after the issue time {now}")]
    ExpiryNotAfterNow { expires: Timestamp, now: Timestamp },
    #[error("cannot draw random bytes for a token: {0}")]
    Random(String),
}

impl TokenError {
    fn io(path: &Path, source: io::Error) -> Self {
        TokenError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn from_file(e: files::FileError) -> Self {
        TokenError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// A token as issued: the secret itself, shown once and never stored.
/// Wiped from memory when dropped.
pub struct Token(Zeroizing<String>);

impl Token {
    fn generate() -> Result<Self, TokenError> {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        getrandom::fill(bytes.as_mut()).map_err(|e| TokenError::Random(e.to_string()))?;
        let mut text = Zeroizing::new(String::with_capacity(TOKEN_LEN));
        text.push_str(TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut text);
        Ok(Token(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Whether `text` has the shape of a token: the prefix and 43 base64url
/// characters. Anything else is refused without a lookup.
pub fn is_token_shaped(text: &str) -> bool {
    text.len() == TOKEN_LEN
        && text.starts_with(TOKEN_PREFIX)
        && text[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the token file keeps of a token: SHA-256 of its text.
pub fn token_hash(token: &str) -> Digest {
    sha256(token.as_bytes())
}

/// The public name of a token: 16 hex digits, random, shown by
/// `oretrail token list` and given to `oretrail token revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId(String);

impl TokenId {
    pub fn new(id: impl Into<String>) -> Result<Self, TokenError> {
        let id = id.into();
        if id.len() == 16
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(id))
        } else {
            Err(TokenError::BadSelector(id))
        }
    }

    fn generate() -> Result<Self, TokenError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        Ok(Self(hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TokenId {
    type Error = TokenError;
    fn try_from(s: String) -> Result<Self, TokenError> {
        Self::new(s)
    }
}

impl From<TokenId> for String {
    fn from(id: TokenId) -> String {
        id.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// One token in the file. The token itself is not here, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub id: TokenId,
    /// The participant whose reads the token makes.
    pub participant: ParticipantId,
    /// What the operator wrote to remember it by.
    #[serde(default)]
    pub label: String,
    /// SHA-256 of the token text, hex.
    pub sha256: Digest,
    pub created: Timestamp,
    /// From when it is refused; `None`: never expires.
    pub expires: Option<Timestamp>,
    /// When it was revoked; `None`: not revoked.
    pub revoked: Option<Timestamp>,
}

/// Whether a token may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

impl fmt::Display for TokenStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        })
    }
}

impl TokenRecord {
    /// Its status at `now`; a revocation outranks an expiry.
    pub fn status(&self, now: Timestamp) -> TokenStatus {
        if self.revoked.is_some() {
            TokenStatus::Revoked
        } else if self.expires.is_some_and(|e| e <= now) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }
}

/// The file's JSON shape.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    format: String,
    tokens: Vec<TokenRecord>,
}

/// Which token `oretrail token revoke` means: its id, or the token itself.
#[derive(Debug, Clone)]
pub enum TokenSelector {
    Id(TokenId),
    Hash(Digest),
}

impl TokenSelector {
    /// A token (starting `ot_`) or a token id.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if text.starts_with(TOKEN_PREFIX) {
            if is_token_shaped(text) {
                Ok(TokenSelector::Hash(token_hash(text)))
            } else {
                Err(TokenError::BadSelector("ot_…".into()))
            }
        } else {
            TokenId::new(text).map(TokenSelector::Id)
        }
    }
}

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Revoked now.
    Revoked(TokenRecord),
    /// It was revoked already; nothing changed.
    AlreadyRevoked(TokenRecord),
}

/// Every token the file holds, indexed by hash. Ids and hashes are unique.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    tokens: Vec<TokenRecord>,
    by_hash: HashMap<Digest, usize>,
}

impl TokenTable {
    /// No tokens.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Reads the file's text: the format line must match, every field must
    /// be known and well formed, and no id or hash may appear twice.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let body: FileBody = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            if at == "." {
                inner.to_string()
            } else {
                format!("at {at}: {inner}")
            }
        })?;
        de.end().map_err(|e| e.to_string())?;
        if body.format != FORMAT {
            return Err(format!("its format is {:?}, not {FORMAT:?}", body.format));
        }
        let mut table = TokenTable::empty();
        let mut ids = std::collections::HashSet::new();
        for record in body.tokens {
            if !ids.insert(record.id.clone()) {
                return Err(format!("token id {} appears twice", record.id));
            }
            if table.by_hash.contains_key(&record.sha256) {
                return Err(format!(
                    "token {} has the same hash as an earlier one",
                    record.id
                ));
            }
            table.push(record);
        }
        Ok(table)
    }

    /// The file's text: pretty JSON, one field a line, ending in a newline.
    pub fn to_json(&self) -> String {
        let body = FileBody {
            format: FORMAT.into(),
            tokens: self.tokens.clone(),
        };
        // Serialising plain records of strings cannot fail.
        let mut text = serde_json::to_string_pretty(&body).unwrap_or_default();
        text.push('\n');
        text
    }

    fn push(&mut self, record: TokenRecord) {
        self.by_hash.insert(record.sha256, self.tokens.len());
        self.tokens.push(record);
    }

    /// Every token, in the order issued.
    pub fn records(&self) -> &[TokenRecord] {
        &self.tokens
    }

    /// Issues a token for `participant` at `now`; returns the token (to
    /// show once) and what the table keeps of it.
    pub fn issue(
        &mut self,
        participant: ParticipantId,
        label: &str,
        now: Timestamp,
        expires: Option<Timestamp>,
    ) -> Result<(Token, TokenRecord), TokenError> {
        if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
            return Err(TokenError::BadLabel);
        }
        if let Some(expires) = expires
            && expires <= now
        {
            return Err(TokenError::ExpiryNotAfterNow { expires, now });
        }
        // Collisions of 64 random bits (ids) or 256 (tokens) do not happen
        // in practice; drawing again keeps the table's invariant anyway.
        let (token, sha256) = loop {
            let token = Token::generate()?;
            let hash = token_hash(token.as_str());
            if !self.by_hash.contains_key(&hash) {
                break (token, hash);
            }
        };
        let id = loop {
            let id = TokenId::generate()?;
            if !self.tokens.iter().any(|r| r.id == id) {
                break id;
            }
        };
        let record = TokenRecord {
            id,
            participant,
            label: label.to_string(),
            sha256,
            created: now,
            expires,
            revoked: None,
        };
        self.push(record.clone());
        Ok((token, record))
    }

    /// Revokes the token `which` names, at `now`.
    pub fn revoke(
        &mut self,
        which: &TokenSelector,
        now: Timestamp,
    ) -> Result<Revocation, TokenError> {
        let position = match which {
            TokenSelector::Id(id) => self.tokens.iter().position(|r| r.id == *id),
            TokenSelector::Hash(hash) => self.by_hash.get(hash).copied(),
        };
        let Some(position) = position else {
            return Err(TokenError::Unknown(match which {
                TokenSelector::Id(id) => id.to_string(),
                TokenSelector::Hash(_) => "with that text".into(),
            }));
        };
        let record = &mut self.tokens[position];
        if record.revoked.is_some() {
            return Ok(Revocation::AlreadyRevoked(record.clone()));
        }
        record.revoked = Some(now);
        Ok(Revocation::Revoked(record.clone()))
    }

    /// The record of `presented` if it is a token of this table that is
    /// active at `now`. Unknown, revoked and expired tokens all answer
    /// `None`: the caller cannot tell them apart, and neither can a client.
    pub fn authenticate(&self, presented: &str, now: Timestamp) -> Option<&TokenRecord> {
        if !is_token_shaped(presented) {
            return None;
        }
        let record = &self.tokens[*self.by_hash.get(&token_hash(presented))?];
        (record.status(now) == TokenStatus::Active).then_some(record)
    }
}

/// The token file of a data folder, as `oretrail token` changes it.
#[derive(Debug, Clone)]
pub struct TokenFile {
    dir: PathBuf,
}

impl TokenFile {
    /// The token file of the data folder `data`.
    pub fn of(data: &Path) -> Self {
        Self {
            dir: data.join(ACCESS_DIR),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(TOKENS_FILE)
    }

    /// The tokens now in the file; a missing file holds none.
    pub fn load(&self) -> Result<TokenTable, TokenError> {
        read_table(&self.path())
    }

    /// Changes the file: locks it against other writers, reads it, applies
    /// `change` and, if that succeeds, writes the result atomically (mode
    /// 0600). Creates `DATA/access/` (mode 0700) when missing; the data
    /// folder itself must exist.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut TokenTable) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(TokenError::io(
                parent,
                io::Error::new(io::ErrorKind::NotFound, "no such data folder"),
            ));
        }
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| TokenError::io(&self.dir, e))?;
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = files::lock_exclusive(&lock_path, true).map_err(TokenError::from_file)?;
        let mut table = self.load()?;
        let answer = change(&mut table)?;
        self.write(&table)?;
        // Closing `lock` releases the flock.
        drop(lock);
        Ok(answer)
    }

    /// Writes `table` over the file atomically and durably
    /// (`crate::files`). Only called with the lock held.
    fn write(&self, table: &TokenTable) -> Result<(), TokenError> {
        files::write_atomically(&self.path(), table.to_json().as_bytes())
            .map_err(TokenError::from_file)
    }
}

/// Reads and parses the token file at `path`; a missing file holds no
/// tokens.
fn read_table(path: &Path) -> Result<TokenTable, TokenError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TokenTable::empty()),
        Err(e) => return Err(TokenError::io(path, e)),
    };
    let text = String::from_utf8(text).map_err(|_| TokenError::Malformed {
        path: path.to_path_buf(),
        reason: "it is not UTF-8 text".into(),
    })?;
    TokenTable::parse(&text).map_err(|reason| TokenError::Malformed {
        path: path.to_path_buf(),
        reason,
    })
}

/// The token file could not be read or parsed while serving: every
/// authenticated request is refused until it is fixed (the last good
/// table is not kept, so that a broken edit cannot keep a revoked token
/// alive).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the token file cannot be used: {0}")]
pub struct TokensUnavailable(pub String);

struct Watch {
    table: Result<Arc<TokenTable>, TokensUnavailable>,
    /// `None`: the file was missing at the last look.
    stamp: Option<Stamp>,
    /// When the file was last looked at; `None`: never.
    checked: Option<Instant>,
}

/// The server's view of the token file: the table as last read, re-read
/// when the file has changed, looked at no more often than every
/// `recheck` (one second by default). So an issued or revoked token takes
/// effect within about a second of `oretrail token` finishing.
pub struct TokenStore {
    path: PathBuf,
    recheck: Duration,
    watch: Mutex<Watch>,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("path", &self.path)
            .field("recheck", &self.recheck)
            .finish_non_exhaustive()
    }
}

impl TokenStore {
    /// Reads the token file of the data folder `data` now: a file that
    /// cannot be read or parsed is an error, so that a server does not
    /// start with it. A missing file holds no tokens (yet).
    pub fn open(data: &Path) -> Result<Self, TokenError> {
        let store = Self::watching(data);
        {
            let mut watch = store.lock();
            let path = store.path.clone();
            let stamp = std::fs::metadata(&path).ok().map(|m| Stamp::of(&m));
            watch.table = Ok(Arc::new(read_table(&path)?));
            watch.stamp = stamp;
            watch.checked = Some(Instant::now());
        }
        Ok(store)
    }

    /// Watches the token file of `data`, reading it on first use.
    pub fn watching(data: &Path) -> Self {
        Self {
            path: TokenFile::of(data).path(),
            recheck: DEFAULT_RECHECK,
            watch: Mutex::new(Watch {
                table: Ok(Arc::new(TokenTable::empty())),
                stamp: None,
                checked: None,
            }),
        }
    }

    /// Looks at the file for changes at most every `every` (zero: on every
    /// use, for tests).
    pub fn with_recheck(mut self, every: Duration) -> Self {
        self.recheck = every;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watch> {
        // The lock guards plain data that every update leaves whole.
        self.watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The table as the file holds it, looking at the file first when a
    /// look is due. Blocking: a `stat`, and a read when the file changed.
    pub fn current(&self) -> Result<Arc<TokenTable>, TokensUnavailable> {
        let mut watch = self.lock();
        let due = watch.checked.is_none_or(|at| at.elapsed() >= self.recheck);
        if due {
            let first = watch.checked.is_none();
            watch.checked = Some(Instant::now());
            match std::fs::metadata(&self.path) {
                Ok(meta) => {
                    let stamp = Some(Stamp::of(&meta));
                    if first || stamp != watch.stamp || watch.table.is_err() {
                        watch.stamp = stamp;
                        watch.table = self.reload();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if first || watch.stamp.is_some() || watch.table.is_err() {
                        watch.stamp = None;
                        watch.table = Ok(Arc::new(TokenTable::empty()));
                    }
                }
                Err(e) => {
                    watch.stamp = None;
                    watch.table = Err(TokensUnavailable(TokenError::io(&self.path, e).to_string()));
                }
            }
        }
        watch.table.clone()
    }

    fn reload(&self) -> Result<Arc<TokenTable>, TokensUnavailable> {
        match read_table(&self.path) {
            Ok(table) => {
                tracing::info!(path = %self.path.display(), tokens = table.records().len(), "token file read");
                Ok(Arc::new(table))
            }
            Err(e) => {
                tracing::error!(error = %e, "token file unusable; refusing every token until it is fixed");
                Err(TokensUnavailable(e.to_string()))
            }
        }
    }

    /// The record of `presented` if it is an active token. Blocking, as
    /// [`TokenStore::current`].
    pub fn authenticate(
        &self,
        presented: &str,
        now: Timestamp,
    ) -> Result<Option<TokenRecord>, TokensUnavailable> {
        Ok(self.current()?.authenticate(presented, now).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn pid(id: &str) -> ParticipantId {
        ParticipantId::new(id).unwrap()
    }

    const NOW: Timestamp = Timestamp::from_millis(1_767_225_600_000);

    #[test]
    fn issued_tokens_have_the_prefix_and_authenticate_until_revoked() {
        let mut table = TokenTable::empty();
        let (token, record) = table.issue(pid("buyer.a"), "laptop", NOW, None).unwrap();
        assert!(token.as_str().starts_with("ot_"), "{}", token.as_str());
        assert_eq!(token.as_str().len(), TOKEN_LEN);
        assert!(is_token_shaped(token.as_str()));
        assert_eq!(record.sha256, token_hash(token.as_str()));
        assert_eq!(
            table
                .authenticate(token.as_str(), NOW)
                .map(|r| &r.participant),
            Some(&pid("buyer.a"))
        );
        let revoked = table
            .revoke(&TokenSelector::Id(record.id.clone()), NOW)
            .unwrap();
        assert!(matches!(revoked, Revocation::Revoked(ref r) if r.revoked == Some(NOW)));
        assert_eq!(table.authenticate(token.as_str(), NOW), None);
        assert_eq!(table.records()[0].status(NOW), TokenStatus::Revoked);
        // Revoking again changes nothing and says so.
        assert!(matches!(
            table.revoke(&TokenSelector::Id(record.id), NOW).unwrap(),
            Revocation::AlreadyRevoked(_)
        ));
    }

    #[test]
    fn a_token_can_be_revoked_by_its_own_text() {
        let mut table = TokenTable::empty();
        let (token, _) = table.issue(pid("buyer.a"), "", NOW, None).unwrap();
        let which = TokenSelector::parse(token.as_str()).unwrap();
        assert!(matches!(
            table.revoke(&which, NOW).unwrap(),
            Revocation::Revoked(_)
        ));
        assert!(matches!(
            TokenSelector::parse("ot_short"),
            Err(TokenError::BadSelector(_))
        ));
        assert!(matches!(
            TokenSelector::parse("nope"),
            Err(TokenError::BadSelector(_))
        ));
    }

    #[test]
    fn expired_and_unknown_tokens_do_not_authenticate() {
        let mut table = TokenTable::empty();
        let later = NOW.saturating_add_millis(1000);
        let (token, record) = table.issue(pid("buyer.a"), "", NOW, Some(later)).unwrap();
        assert!(table.authenticate(token.as_str(), NOW).is_some());
        assert_eq!(table.authenticate(token.as_str(), later), None);
        assert_eq!(record.status(later), TokenStatus::Expired);
        let other = Token::generate().unwrap();
        assert_eq!(table.authenticate(other.as_str(), NOW), None);
        assert_eq!(table.authenticate("", NOW), None);
        assert_eq!(table.authenticate("Bearer x", NOW), None);
        assert!(matches!(
            table.issue(pid("buyer.a"), "", NOW, Some(NOW)),
            Err(TokenError::ExpiryNotAfterNow { .. })
        ));
        assert!(matches!(
            table.issue(pid("buyer.a"), "a\nb", NOW, None),
            Err(TokenError::BadLabel)
        ));
    }

    #[test]
    fn the_file_text_round_trips_and_holds_no_token() {
        let mut table = TokenTable::empty();
        let (token, _) = table.issue(pid("buyer.a"), "one", NOW, None).unwrap();
        table
            .issue(
                pid("auditor.b"),
                "two",
                NOW,
                Some(NOW.saturating_add_millis(5)),
            )
            .unwrap();
        let text = table.to_json();
        assert!(!text.contains(token.as_str()));
        assert!(!text.contains(&token.as_str()[3..]));
        let again = TokenTable::parse(&text).unwrap();
        assert_eq!(again.records(), table.records());
        assert!(again.authenticate(token.as_str(), NOW).is_some());
    }

    #[test]
    fn malformed_files_are_refused_with_the_reason() {
        let mut table = TokenTable::empty();
        table.issue(pid("buyer.a"), "", NOW, None).unwrap();
        let good: serde_json::Value = serde_json::from_str(&table.to_json()).unwrap();

        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "expected"),
            ("{}".into(), "missing field"),
            (
                good.to_string().replace(FORMAT, "something else v9"),
                "format",
            ),
            (
                good.to_string().replace("\"buyer.a\"", "\"Buyer A\""),
                "tokens[0].participant",
            ),
            (
                good.to_string().replace("\"label\"", "\"colour\""),
                "tokens[0]",
            ),
            (format!("{good} trailing"), "trailing"),
        ];
        for (text, wanted) in cases {
            let reason = TokenTable::parse(&text).unwrap_err();
            assert!(reason.contains(wanted), "{text}: {reason}");
        }
        let mut twice = good.clone();
        let first = twice["tokens"][0].clone();
        twice["tokens"].as_array_mut().unwrap().push(first);
        assert!(
            TokenTable::parse(&twice.to_string())
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn the_file_is_written_atomically_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::of(dir.path());
        assert_eq!(file.load().unwrap().records().len(), 0);
        let (token, record) = file
            .update(|t| t.issue(pid("buyer.a"), "x", NOW, None))
            .unwrap();
        let meta = std::fs::metadata(file.path()).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        let folder = std::fs::metadata(dir.path().join(ACCESS_DIR)).unwrap();
        assert_eq!(folder.mode() & 0o777, 0o700);
        assert!(!dir.path().join(ACCESS_DIR).join(TEMP_FILE).exists());
        let loaded = file.load().unwrap();
        assert_eq!(loaded.records(), std::slice::from_ref(&record));
        assert!(loaded.authenticate(token.as_str(), NOW).is_some());
        // A failed change writes nothing.
        let before = std::fs::read(file.path()).unwrap();
        assert!(
            file.update(|t| t.revoke(
                &TokenSelector::Id(TokenId::new("00000000000000ff").unwrap()),
                NOW
            ))
            .is_err()
        );
        assert_eq!(std::fs::read(file.path()).unwrap(), before);
    }

    #[test]
    fn updates_from_many_threads_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::of(dir.path());
        std::thread::scope(|s| {
            for n in 0..8 {
                let file = file.clone();
                s.spawn(move || {
                    for _ in 0..5 {
                        file.update(|t| t.issue(pid(&format!("p{n}")), "", NOW, None))
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(file.load().unwrap().records().len(), 40);
    }

    #[test]
    fn a_missing_data_folder_is_an_error_not_a_new_folder() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let file = TokenFile::of(&missing);
        assert!(matches!(
            file.update(|t| t.issue(pid("a"), "", NOW, None)),
            Err(TokenError::Io { .. })
        ));
        assert!(!missing.exists());
    }

    #[test]
    fn the_store_sees_issues_and_revocations_and_refuses_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::of(dir.path());
        let store = TokenStore::open(dir.path())
            .unwrap()
            .with_recheck(Duration::ZERO);
        let (token, record) = file
            .update(|t| t.issue(pid("buyer.a"), "", NOW, None))
            .unwrap();
        assert_eq!(
            store
                .authenticate(token.as_str(), NOW)
                .unwrap()
                .map(|r| r.id),
            Some(record.id.clone())
        );
        file.update(|t| t.revoke(&TokenSelector::Id(record.id.clone()), NOW))
            .unwrap();
        assert_eq!(store.authenticate(token.as_str(), NOW).unwrap(), None);

        // A broken file refuses everything, and is not accepted at startup.
        std::fs::write(file.path(), "{").unwrap();
        assert!(store.authenticate(token.as_str(), NOW).is_err());
        let err = TokenStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, TokenError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("tokens.json"), "{err}");

        // Removing the file revokes every token.
        std::fs::remove_file(file.path()).unwrap();
        assert_eq!(store.authenticate(token.as_str(), NOW).unwrap(), None);
    }

    #[test]
    fn the_store_looks_at_the_file_no_more_often_than_asked() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::of(dir.path());
        let store = TokenStore::open(dir.path())
            .unwrap()
            .with_recheck(Duration::from_secs(3600));
        let (token, _) = file
            .update(|t| t.issue(pid("buyer.a"), "", NOW, None))
            .unwrap();
        // Read at open, before the token existed; the next look is an hour
        // away.
        assert_eq!(store.authenticate(token.as_str(), NOW).unwrap(), None);
        let lazy = TokenStore::watching(dir.path()).with_recheck(Duration::from_secs(3600));
        // A watching store reads the file on first use.
        assert!(lazy.authenticate(token.as_str(), NOW).unwrap().is_some());
    }
}
