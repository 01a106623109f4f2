//! Audit outputs built from the log: the GS1 EPCIS 2.0 export of custody
//! events ([`epcis`]) and the audit bundle that anyone can verify offline
//! ([`bundle`]).
//!
//! Everything here reads the log file alone, read-only, up to its last
//! intact checkpoint ([`LogSnapshot`]): no index, no lock, so it works
//! while a server holds the ledger open and appends (the writer only ever
//! appends whole batches after that point). Exports that need the state at
//! each entry ride along the verifier's replay (`ledger::verify_frames`
//! with an `Observer`), so an export is only ever produced from a log that
//! verifies. The document builders are pure functions of the entries and
//! that state; only [`LogSnapshot`] and the file functions of [`bundle`]
//! touch files. Nothing here knows HTTP: an endpoint calls these functions
//! and writes what they return.
//!
//! The lot passport ([`passport`]) is the one output that may also be built
//! from an open ledger (the server's, with its catalog and index, at its
//! latest checkpoint) instead of a snapshot; both sources feed one builder
//! and give the same bytes at the same checkpoint.

pub mod bundle;
pub mod epcis;
pub mod passport;
pub mod report;
mod snapshot;

use std::path::PathBuf;

pub use snapshot::LogSnapshot;

use crate::ledger::VerifyFailure;

/// Why an audit output could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The data folder has no log file.
    #[error("{0} holds no oretrail log (no `log` file)")]
    NoLog(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The log is damaged inside its acknowledged part, or is not a log.
    #[error(
        "the log is damaged at entry {index}: {reason}; run `oretrail verify` (for a bundle, `oretrail audit verify`) for details"
    )]
    Damaged { index: u64, reason: String },
    /// The log holds no checkpoint yet: nothing is acknowledged.
    #[error("the log holds no acknowledged entries yet (no intact checkpoint)")]
    NothingCommitted,
    /// The log does not verify, so nothing is exported from it.
    #[error("the log does not verify: {0}")]
    Verify(#[from] VerifyFailure),
    /// Writing the export failed.
    #[error("writing the export: {0}")]
    Write(std::io::Error),
    /// A filter names something the ledger does not hold.
    #[error("{0}")]
    Filter(String),
}

impl AuditError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.into(),
            source,
        }
    }
}
