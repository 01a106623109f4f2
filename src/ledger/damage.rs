//! Locating damage in the log: which entry it concerns, and whether it is
//! a torn tail (an unacknowledged, incomplete final batch) or damage
//! inside the acknowledged log.

use std::fs::File;
use std::io;

use crate::codec;
use crate::model::Entry;
use crate::store::log::next_intact_frame;
use crate::store::{Damage, FrameKind};

/// What a stretch of damaged bytes is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DamageVerdict {
    /// Intact frames follow: acknowledged data is damaged. `index` is the
    /// entry concerned; for a damaged checkpoint frame, the last entry it
    /// covers.
    Inside { index: u64, reason: String },
    /// Nothing intact follows: the final batch never completed. Entries
    /// `acked..` lack a checkpoint and were never acknowledged.
    TornTail {
        acked: u64,
        entries: u64,
        reason: String,
    },
}

/// Classifies `damage`, found after `entries` intact entry frames, the last
/// intact checkpoint covering `acked` of them.
pub(crate) fn classify(
    file: &File,
    file_len: u64,
    damage: &Damage,
    entries: u64,
    acked: u64,
) -> io::Result<DamageVerdict> {
    let reason = format!("damaged frame at byte {}: {}", damage.offset, damage.reason);
    let Some(next) = next_intact_frame(file, damage.offset, file_len)? else {
        return Ok(DamageVerdict::TornTail {
            acked,
            entries,
            reason,
        });
    };
    // The next intact frame tells what the damaged stretch held: if it is
    // the very entry expected next, only a checkpoint frame was lost.
    let only_a_checkpoint = next.kind == FrameKind::Entry
        && entries > 0
        && codec::decode::<Entry>(&next.payload).is_ok_and(|e| e.index == entries);
    if only_a_checkpoint {
        return Ok(DamageVerdict::Inside {
            index: entries - 1,
            reason: format!("the checkpoint frame after this entry is damaged ({reason})"),
        });
    }
    Ok(DamageVerdict::Inside {
        index: entries,
        reason,
    })
}
