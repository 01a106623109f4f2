//! The rules engine: given the state and a candidate event, the state
//! changes it makes or the precise rule it breaks.
//!
//! Pure code, no I/O: the ledger runs it before accepting an entry, and an
//! offline verifier runs it again over an export to check that every
//! accepted entry was allowed. Refusals carry a stable [`RuleCode`].

mod compliance;
mod custody;
mod flags;
mod keys;

pub use custody::{TRANSFORM_TOLERANCE, WEIGHT_VARIANCE_TOLERANCE};

pub use keys::valid_origin;

use std::fmt;

use crate::crypto::{CryptoError, PublicKey};
use crate::model::{Event, EventBody, StateError, StateValue, StateView, Timestamp};

/// How far ahead of the operator's clock an event's own time may be.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// Longest accepted free-text field (names, reasons), in bytes.
pub const MAX_TEXT_LEN: usize = 1024;

/// Where the candidate entry would go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Index the entry would get.
    pub index: u64,
    /// The operator's record time for the entry.
    pub record_time: Timestamp,
}

/// A stable, machine-readable name for each rule. The strings are part of
/// the API: clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleCode {
    GenesisMissing,
    GenesisNotFirst,
    GenesisInvalid,
    WrongLedger,
    EventTimeInFuture,
    KeyUnknown,
    KeyNotSigners,
    KeyNotValid,
    KeyInvalid,
    KeyWeak,
    KeyInUse,
    LastOperatorKey,
    SignerUnknown,
    NotAuthorized,
    ParticipantExists,
    ParticipantUnknown,
    InvalidField,
    InvalidQuantity,
    SiteExists,
    SiteUnknown,
    NotSiteOperator,
    LotExists,
    LotUnknown,
    LotNotAvailable,
    LotNotInTransit,
    NotCustodian,
    NotReceiver,
    NotOwner,
    MassNotConserved,
    MetalExceedsInputs,
    AssayMissingMetal,
    AssayStageRegressed,
    SupplierSanctioned,
    SupplierNotReviewed,
    CodeNotAcknowledged,
    NoSanctionInForce,
    FlagUnknown,
}

impl RuleCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleCode::GenesisMissing => "GENESIS_MISSING",
            RuleCode::GenesisNotFirst => "GENESIS_NOT_FIRST",
            RuleCode::GenesisInvalid => "GENESIS_INVALID",
            RuleCode::WrongLedger => "WRONG_LEDGER",
            RuleCode::EventTimeInFuture => "EVENT_TIME_IN_FUTURE",
            RuleCode::KeyUnknown => "KEY_UNKNOWN",
            RuleCode::KeyNotSigners => "KEY_NOT_SIGNERS",
            RuleCode::KeyNotValid => "KEY_NOT_VALID",
            RuleCode::KeyInvalid => "KEY_INVALID",
            RuleCode::KeyWeak => "KEY_WEAK",
            RuleCode::KeyInUse => "KEY_IN_USE",
            RuleCode::LastOperatorKey => "LAST_OPERATOR_KEY",
            RuleCode::SignerUnknown => "SIGNER_UNKNOWN",
            RuleCode::NotAuthorized => "NOT_AUTHORIZED",
            RuleCode::ParticipantExists => "PARTICIPANT_EXISTS",
            RuleCode::ParticipantUnknown => "PARTICIPANT_UNKNOWN",
            RuleCode::InvalidField => "INVALID_FIELD",
            RuleCode::InvalidQuantity => "INVALID_QUANTITY",
            RuleCode::SiteExists => "SITE_EXISTS",
            RuleCode::SiteUnknown => "SITE_UNKNOWN",
            RuleCode::NotSiteOperator => "NOT_SITE_OPERATOR",
            RuleCode::LotExists => "LOT_EXISTS",
            RuleCode::LotUnknown => "LOT_UNKNOWN",
            RuleCode::LotNotAvailable => "LOT_NOT_AVAILABLE",
            RuleCode::LotNotInTransit => "LOT_NOT_IN_TRANSIT",
            RuleCode::NotCustodian => "NOT_CUSTODIAN",
            RuleCode::NotReceiver => "NOT_RECEIVER",
            RuleCode::NotOwner => "NOT_OWNER",
            RuleCode::MassNotConserved => "MASS_NOT_CONSERVED",
            RuleCode::MetalExceedsInputs => "METAL_EXCEEDS_INPUTS",
            RuleCode::AssayMissingMetal => "ASSAY_MISSING_METAL",
            RuleCode::AssayStageRegressed => "ASSAY_STAGE_REGRESSED",
            RuleCode::SupplierSanctioned => "SUPPLIER_SANCTIONED",
            RuleCode::SupplierNotReviewed => "SUPPLIER_NOT_REVIEWED",
            RuleCode::CodeNotAcknowledged => "CODE_NOT_ACKNOWLEDGED",
            RuleCode::NoSanctionInForce => "NO_SANCTION_IN_FORCE",
            RuleCode::FlagUnknown => "FLAG_UNKNOWN",
        }
    }
}

impl fmt::Display for RuleCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event the rules refuse, with the rule and a sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: RuleCode,
    pub message: String,
}

/// Why the engine gave no answer: a refusal, or unreadable state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    State(#[from] StateError),
}

pub(crate) fn refuse<T>(code: RuleCode, message: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError::Refused(Refusal {
        code,
        message: message.into(),
    }))
}

/// A registered participant, or `PARTICIPANT_UNKNOWN`.
pub(crate) fn registered(
    state: &impl StateView,
    id: &crate::model::ParticipantId,
) -> Result<crate::model::Participant, RuleError> {
    match state.participant(id)? {
        Some(p) => Ok(p),
        None => refuse(
            RuleCode::ParticipantUnknown,
            format!("participant {id} is not registered"),
        ),
    }
}

pub(crate) fn check_text(field: &str, value: &str) -> Result<(), RuleError> {
    if value.trim().is_empty() || value.len() > MAX_TEXT_LEN {
        return refuse(
            RuleCode::InvalidField,
            format!("{field} must be non-empty and at most {MAX_TEXT_LEN} bytes"),
        );
    }
    Ok(())
}

/// The keys `event` would register, each with whether it may be: the
/// costly, state-free part of the rules, for callers to run in parallel
/// and hand to [`apply`] through a [`crate::model::PrecheckedKeys`] view.
pub fn precheck_keys(event: &Event) -> Vec<(PublicKey, Result<(), CryptoError>)> {
    let keys: Vec<PublicKey> = match &event.body {
        EventBody::Genesis(g) => vec![g.log_key, g.operator_key],
        EventBody::RegisterParticipant(r) => r.keys.clone(),
        EventBody::AddKey(a) => vec![a.key],
        EventBody::RotateKey(r) => vec![r.new],
        _ => Vec::new(),
    };
    keys.into_iter()
        .map(|k| (k, k.check_registrable()))
        .collect()
}

/// Checks `event`, signed with `key` (whose signature the caller has already
/// verified), against the state, and returns the values it changes.
pub fn apply<V: StateView>(
    state: &V,
    ctx: Context,
    key: &PublicKey,
    event: &Event,
) -> Result<Vec<StateValue>, RuleError> {
    if ctx.index == 0 {
        return match &event.body {
            EventBody::Genesis(genesis) => keys::genesis(state, ctx, key, event, genesis),
            other => refuse(
                RuleCode::GenesisMissing,
                format!("entry 0 must be a genesis event, not {}", other.type_name()),
            ),
        };
    }
    let Some(ledger) = state.ledger()? else {
        return refuse(RuleCode::GenesisMissing, "the ledger has no genesis entry");
    };
    if event.ledger != ledger.origin {
        return refuse(
            RuleCode::WrongLedger,
            format!(
                "event is for ledger {:?}, this is {:?}",
                event.ledger, ledger.origin
            ),
        );
    }
    if event.time > ctx.record_time.saturating_add_millis(MAX_CLOCK_SKEW_MS) {
        return refuse(
            RuleCode::EventTimeInFuture,
            format!(
                "event time {} is after the ledger's time {}",
                event.time, ctx.record_time
            ),
        );
    }
    let signer = keys::check_signer(state, ctx, key, event)?;
    match &event.body {
        EventBody::Genesis(_) => refuse(
            RuleCode::GenesisNotFirst,
            format!(
                "a genesis event can only be entry 0, not entry {}",
                ctx.index
            ),
        ),
        EventBody::RegisterParticipant(r) => keys::register(state, ctx, &signer, r),
        EventBody::AddKey(a) => keys::add_key(state, ctx, &signer, a),
        EventBody::RotateKey(r) => keys::rotate_key(state, ctx, &signer, r),
        EventBody::RevokeKey(r) => keys::revoke_key(state, ctx, &signer, &ledger, r),
        EventBody::RegisterSite(r) => custody::register_site(state, ctx, &signer, r),
        EventBody::DetermineCahra(f) => custody::determine_cahra(state, ctx, &signer, f),
        EventBody::CreateLot(c) => custody::create_lot(state, ctx, &signer, event, c),
        EventBody::RecordAssay(a) => custody::record_assay(state, ctx, &signer, a),
        EventBody::Dispatch(d) => custody::dispatch(state, ctx, &signer, d),
        EventBody::Receive(r) => custody::receive(state, ctx, &signer, r),
        EventBody::Split(s) => custody::split(state, ctx, &signer, s),
        EventBody::Blend(b) => custody::blend(state, ctx, &signer, b),
        EventBody::Transform(t) => custody::transform(state, ctx, &signer, t),
        EventBody::Sell(s) => custody::sell(state, ctx, &signer, s),
        EventBody::AppointOfficer(a) => compliance::appoint_officer(state, ctx, &signer, a),
        EventBody::AssessOnboarding(o) => compliance::assess_onboarding(state, ctx, &signer, o),
        EventBody::ReviewSupplier(r) => compliance::review_supplier(state, ctx, &signer, r),
        EventBody::SanctionSupplier(s) => compliance::sanction_supplier(state, ctx, &signer, s),
        EventBody::ReinstateSupplier(r) => compliance::reinstate_supplier(state, ctx, &signer, r),
        EventBody::AcknowledgeCode(a) => compliance::acknowledge_code(state, ctx, &signer, a),
        EventBody::ReportGrievance(g) => compliance::report_grievance(state, ctx, &signer, g),
        EventBody::SetReceiptPolicy(p) => compliance::set_receipt_policy(state, &signer, p),
        EventBody::AttachDocument(a) => compliance::attach_document(state, ctx, &signer, a),
        EventBody::Correct(c) => compliance::correct(state, ctx, &signer, c),
        EventBody::DecideFlag(d) => compliance::decide_flag(state, ctx, &signer, d),
        EventBody::DetermineCountryCahra(f) => {
            custody::determine_country_cahra(state, ctx, &signer, f)
        }
    }
}
