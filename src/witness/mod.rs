//! Witnessing: an independent party follows the log's checkpoints,
//! checks that each new one extends the last one it saw, and cosigns it
//! (C2SP tlog-cosignature, `merkle::cosignature`); the log keeps and
//! serves those cosignatures with its checkpoints, so a buyer can require
//! that the checkpoint it is shown was also seen by witnesses it trusts.
//! A log that shows different histories to different people (a fork) or
//! takes entries back (a rollback) would need every such witness to
//! cosign both, which they refuse, loudly.
//!
//! - [`state`]: the witness's decision, pure (state + served checkpoint
//!   + consistency proof -> cosign or refuse), and its state file's text.
//! - [`trust`]: the witnesses a log operator trusts (`DATA/witnesses`).
//! - [`book`]: the log's side, pure: checking a submitted cosignature,
//!   and the book of cosignatures it keeps and serves.
//! - [`files`]: the files of all three, at the edge (atomic writes,
//!   locks), and the server's [`files::WitnessDesk`].
//!
//! Nothing here knows HTTP: `api::witness` and `cli::witness` call it.

pub mod book;
pub mod files;
pub mod state;
pub mod trust;

pub use book::{CosignatureBook, Recorded, Submission, SubmissionError, check_submission};
pub use files::{StateFile, TrustFile, WitnessDesk, WitnessFileError};
pub use state::{Advance, Refusal, Sight, WitnessState, claimed_size, observe};
pub use trust::{TrustError, TrustedWitnesses};

#[cfg(test)]
mod tests;
