//! Locating damage in the log: which entry it concerns, and whether it is
//! a torn tail (an unacknowledged, incomplete final batch) or damage
//! inside the acknowledged log.

use std::fs::File;
use std::io;

use crate::codec;
use crate::model::Entry;
use crate::store::log::{AfterDamage, after_damage};
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
    let next = match after_damage(file, damage, file_len)? {
        AfterDamage::Intact(next) => next,
        AfterDamage::Nothing => {
            return Ok(DamageVerdict::TornTail {
                acked,
                entries,
                reason,
            });
        }
        AfterDamage::BeingWritten => {
            return Ok(DamageVerdict::TornTail {
                acked,
                entries,
                reason: format!("{reason}, being written while it was read"),
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::{FrameReader, LOG_HEADER, LogWriter, encode_frame};
    use std::io::{BufReader, Seek, SeekFrom};
    use std::os::unix::fs::FileExt;

    /// Reads the log at `path` as a reader of a live log does, up to the
    /// first damage.
    fn first_damage(path: &std::path::Path) -> (u64, Damage) {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        let mut buffered = BufReader::new(&file);
        buffered
            .seek(SeekFrom::Start(LOG_HEADER.len() as u64))
            .unwrap();
        let mut reader = FrameReader::new(buffered, len).with_reserved_tail();
        let mut entries = 0;
        loop {
            match reader.next_frame().unwrap() {
                Ok(Some(frame)) => entries += u64::from(frame.kind == FrameKind::Entry),
                Ok(None) => panic!("no damage found"),
                Err(damage) => return (entries, damage),
            }
        }
    }

    /// A reader of a log whose ledger is appending can read a batch while
    /// it is being written: part of it, then the reserved zeros. If intact
    /// frames follow by the time it looks, that is damage inside the log
    /// only if the bytes it read are still there; if they have changed,
    /// they were the batch in progress, a torn tail for that reader.
    #[test]
    fn a_batch_read_while_it_was_written_is_a_torn_tail_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = LogWriter::create(&path).unwrap();
        let batch = |n: u8| {
            let mut frames = Vec::new();
            encode_frame(FrameKind::Entry, &[n; 200], &mut frames);
            encode_frame(FrameKind::Checkpoint, &[n + 1; 90], &mut frames);
            frames
        };
        log.append_durable(&batch(1)).unwrap();
        let second_at = log.end();
        let (second, third) = (batch(3), batch(5));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();

        // What a reader sees mid-write: 40 bytes of the second batch.
        file.write_all_at(&second[..40], second_at).unwrap();
        let (entries, damage) = first_damage(&path);
        assert_eq!((entries, damage.offset), (1, second_at));
        // The writer finishes it and writes the next; the reader looks on.
        log.append_durable(&second).unwrap();
        log.append_durable(&third).unwrap();
        let ro = File::open(&path).unwrap();
        let len = ro.metadata().unwrap().len();
        match classify(&ro, len, &damage, entries, 1).unwrap() {
            DamageVerdict::TornTail {
                acked,
                entries,
                reason,
            } => {
                assert_eq!((acked, entries), (1, 1));
                assert!(
                    reason.ends_with("being written while it was read"),
                    "{reason}"
                );
            }
            other => panic!("expected a torn tail, got {other:?}"),
        }

        // The same frame damaged for good (one byte of the second batch's
        // entry flipped), with the third batch intact after it.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[second_at as usize + 50] ^= 0x04;
        std::fs::write(&path, &bytes).unwrap();
        let (entries, damage) = first_damage(&path);
        let ro = File::open(&path).unwrap();
        let len = ro.metadata().unwrap().len();
        assert_eq!(
            classify(&ro, len, &damage, entries, 1).unwrap(),
            DamageVerdict::Inside {
                index: 1,
                reason: format!("damaged frame at byte {second_at}: frame checksum does not match"),
            }
        );
    }
}
