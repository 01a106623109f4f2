//! Storage: the append-only log file (the truth) and the sled index
//! (derived, rebuildable). The only module that names sled.

pub mod deferred;
pub mod dense;
pub mod index;
pub mod log;

pub use index::{EntryLocation, Index, IndexBatch, IndexError};
pub use log::{Damage, Frame, FrameKind, FrameReader, LogReader, LogWriter};
