//! Raising red flags: records with an id, a kind, the organisation whose
//! register holds them and a status, returned as state like any change.

use super::Context;
use crate::model::{Flag, FlagId, FlagKind, LotId, ParticipantId, SiteId, StateValue};

/// The flags one event raises, numbered in the order raised.
pub(super) struct Raised {
    ctx: Context,
    flags: Vec<Flag>,
}

impl Raised {
    pub(super) fn new(ctx: Context) -> Self {
        Self {
            ctx,
            flags: Vec::new(),
        }
    }

    /// Records a new open flag and returns its id.
    pub(super) fn raise(
        &mut self,
        kind: FlagKind,
        organisation: ParticipantId,
        lot: Option<&LotId>,
        site: Option<&SiteId>,
        supplier: Option<&ParticipantId>,
        detail: String,
    ) -> FlagId {
        let id = FlagId {
            entry: self.ctx.index,
            // An event raises a handful of flags at most; the number
            // saturates rather than wrapping onto an earlier id.
            n: u16::try_from(self.flags.len()).unwrap_or(u16::MAX),
        };
        self.flags.push(Flag {
            id,
            kind,
            organisation,
            lot: lot.cloned(),
            site: site.cloned(),
            supplier: supplier.cloned(),
            raised_at: self.ctx.record_time,
            detail,
            decisions: Vec::new(),
        });
        id
    }

    pub(super) fn into_values(self) -> Vec<StateValue> {
        self.flags.into_iter().map(StateValue::Flag).collect()
    }
}
