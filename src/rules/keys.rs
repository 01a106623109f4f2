//! Rules for the ledger's identity, participants and their keys.

use super::{Context, RuleCode, RuleError, check_text, refuse, registered};
use crate::crypto::{CryptoError, PublicKey};
use crate::model::{
    Event, Genesis, KeyAdded, KeyRecord, KeyRevoked, KeyRotated, LedgerInfo, Participant,
    ParticipantKind, Registration, Role, StateValue, StateView,
};

pub(super) fn genesis<V: StateView>(
    state: &V,
    ctx: Context,
    key: &PublicKey,
    event: &Event,
    g: &Genesis,
) -> Result<Vec<StateValue>, RuleError> {
    let invalid = |msg: String| refuse(RuleCode::GenesisInvalid, msg);
    if !valid_origin(&g.origin) {
        return invalid(format!(
            "origin {:?} must be 1 to 255 printable characters without spaces or '+'",
            g.origin
        ));
    }
    if event.ledger != g.origin {
        return invalid(format!(
            "event names ledger {:?} but genesis names {:?}",
            event.ledger, g.origin
        ));
    }
    if event.signer != g.operator || *key != g.operator_key {
        return invalid("the genesis event must be signed by the operator key it names".into());
    }
    check_text("operator_name", &g.operator_name)?;
    registrable(state, &g.log_key)?;
    registrable(state, &g.operator_key)?;
    if g.log_key == g.operator_key {
        return invalid(
            "the log key signs only checkpoints; the operator needs a key of its own".into(),
        );
    }
    let operator = Participant {
        id: g.operator.clone(),
        legal_name: g.operator_name.clone(),
        country: g.operator_country.clone(),
        kinds: vec![ParticipantKind::Operator],
        roles: vec![Role::Operator],
        registered_at: ctx.record_time,
        registered_in: ctx.index,
        keys: vec![g.operator_key],
    };
    Ok(vec![
        StateValue::Ledger(LedgerInfo {
            origin: g.origin.clone(),
            log_key: g.log_key,
            operator: g.operator.clone(),
            created_at: ctx.record_time,
        }),
        StateValue::Participant(operator),
        StateValue::Key(new_key(ctx, g.operator_key, &g.operator)),
    ])
}

/// A C2SP note key name: non-empty, no whitespace or '+', printable.
pub fn valid_origin(origin: &str) -> bool {
    (1..=255).contains(&origin.len()) && origin.chars().all(|c| c.is_ascii_graphic() && c != '+')
}

/// Checks that the signing key belongs to the signer and is valid now.
pub(super) fn check_signer<V: StateView>(
    state: &V,
    ctx: Context,
    key: &PublicKey,
    event: &Event,
) -> Result<Participant, RuleError> {
    let Some(record) = state.key(key)? else {
        return refuse(
            RuleCode::KeyUnknown,
            format!("key {key} is not registered on this ledger"),
        );
    };
    if record.participant != event.signer {
        return refuse(
            RuleCode::KeyNotSigners,
            format!(
                "key {key} belongs to {}, not to the signer {}",
                record.participant, event.signer
            ),
        );
    }
    if !record.valid_at(ctx.record_time) {
        let until = record
            .valid_until
            .map(|t| t.to_string())
            .unwrap_or_default();
        return refuse(
            RuleCode::KeyNotValid,
            format!(
                "key {key} of {} is not valid at {} (valid until {until})",
                event.signer, ctx.record_time
            ),
        );
    }
    match state.participant(&event.signer)? {
        Some(p) => Ok(p),
        None => refuse(
            RuleCode::SignerUnknown,
            format!("signer {} is not registered", event.signer),
        ),
    }
}

fn registrable<V: StateView>(state: &V, key: &PublicKey) -> Result<(), RuleError> {
    match state.registrable(key) {
        Ok(()) => Ok(()),
        Err(CryptoError::WeakKey(_)) => refuse(
            RuleCode::KeyWeak,
            format!("key {key} is weak (small order)"),
        ),
        Err(_) => refuse(
            RuleCode::KeyInvalid,
            format!("key {key} is not a valid Ed25519 public key"),
        ),
    }
}

fn unused<V: StateView>(state: &V, key: &PublicKey) -> Result<(), RuleError> {
    registrable(state, key)?;
    // The log key signs only checkpoints, so that a checkpoint signature
    // can never be read as a participant's claim or the other way round.
    if state.ledger()?.is_some_and(|l| l.log_key == *key) {
        return refuse(
            RuleCode::KeyInUse,
            format!("key {key} is the ledger's log key and signs only checkpoints"),
        );
    }
    if let Some(existing) = state.key(key)? {
        return refuse(
            RuleCode::KeyInUse,
            format!(
                "key {key} is already registered to {}",
                existing.participant
            ),
        );
    }
    Ok(())
}

fn new_key(ctx: Context, key: PublicKey, participant: &crate::model::ParticipantId) -> KeyRecord {
    KeyRecord {
        key,
        participant: participant.clone(),
        valid_from: ctx.record_time,
        valid_until: None,
        added_in: ctx.index,
        ended_in: None,
    }
}

/// The participant itself or an operator may manage its keys.
fn may_manage_keys(
    signer: &Participant,
    subject: &crate::model::ParticipantId,
) -> Result<(), RuleError> {
    if signer.id == *subject || signer.has_role(Role::Operator) {
        return Ok(());
    }
    refuse(
        RuleCode::NotAuthorized,
        format!("{} may not manage the keys of {subject}", signer.id),
    )
}

/// A key of `participant` that is valid at the entry's record time.
fn current_key<V: StateView>(
    state: &V,
    ctx: Context,
    participant: &crate::model::ParticipantId,
    key: &PublicKey,
) -> Result<KeyRecord, RuleError> {
    match state.key(key)? {
        Some(k) if k.participant == *participant && k.valid_at(ctx.record_time) => Ok(k),
        Some(k) if k.participant == *participant => refuse(
            RuleCode::KeyNotValid,
            format!("key {key} of {participant} is no longer valid"),
        ),
        _ => refuse(
            RuleCode::KeyUnknown,
            format!("key {key} is not a key of {participant}"),
        ),
    }
}

pub(super) fn register<V: StateView>(
    state: &V,
    ctx: Context,
    signer: &Participant,
    r: &Registration,
) -> Result<Vec<StateValue>, RuleError> {
    if !signer.has_role(Role::Operator) {
        return refuse(
            RuleCode::NotAuthorized,
            format!(
                "only an operator may register participants; {} is not one",
                signer.id
            ),
        );
    }
    if state.participant(&r.participant)?.is_some() {
        return refuse(
            RuleCode::ParticipantExists,
            format!("participant {} is already registered", r.participant),
        );
    }
    check_text("legal_name", &r.legal_name)?;
    if r.kinds.is_empty() || r.roles.is_empty() || r.keys.is_empty() {
        return refuse(
            RuleCode::InvalidField,
            "a registration needs at least one kind, role and key",
        );
    }
    let mut changes = Vec::with_capacity(r.keys.len() + 1);
    for (i, key) in r.keys.iter().enumerate() {
        unused(state, key)?;
        if r.keys[..i].contains(key) {
            return refuse(RuleCode::InvalidField, format!("key {key} is listed twice"));
        }
        changes.push(StateValue::Key(new_key(ctx, *key, &r.participant)));
    }
    changes.push(StateValue::Participant(Participant {
        id: r.participant.clone(),
        legal_name: r.legal_name.clone(),
        country: r.country.clone(),
        kinds: r.kinds.clone(),
        roles: r.roles.clone(),
        registered_at: ctx.record_time,
        registered_in: ctx.index,
        keys: r.keys.clone(),
    }));
    Ok(changes)
}

pub(super) fn add_key<V: StateView>(
    state: &V,
    ctx: Context,
    signer: &Participant,
    a: &KeyAdded,
) -> Result<Vec<StateValue>, RuleError> {
    may_manage_keys(signer, &a.participant)?;
    let mut participant = registered(state, &a.participant)?;
    unused(state, &a.key)?;
    participant.keys.push(a.key);
    Ok(vec![
        StateValue::Key(new_key(ctx, a.key, &a.participant)),
        StateValue::Participant(participant),
    ])
}

pub(super) fn rotate_key<V: StateView>(
    state: &V,
    ctx: Context,
    signer: &Participant,
    r: &KeyRotated,
) -> Result<Vec<StateValue>, RuleError> {
    may_manage_keys(signer, &r.participant)?;
    let mut participant = registered(state, &r.participant)?;
    let mut old = current_key(state, ctx, &r.participant, &r.old)?;
    unused(state, &r.new)?;
    old.valid_until = Some(ctx.record_time);
    old.ended_in = Some(ctx.index);
    participant.keys.push(r.new);
    Ok(vec![
        StateValue::Key(old),
        StateValue::Key(new_key(ctx, r.new, &r.participant)),
        StateValue::Participant(participant),
    ])
}

pub(super) fn revoke_key<V: StateView>(
    state: &V,
    ctx: Context,
    signer: &Participant,
    ledger: &LedgerInfo,
    r: &KeyRevoked,
) -> Result<Vec<StateValue>, RuleError> {
    may_manage_keys(signer, &r.participant)?;
    check_text("reason", &r.reason)?;
    let participant = registered(state, &r.participant)?;
    let mut record = current_key(state, ctx, &r.participant, &r.key)?;
    if participant.id == ledger.operator {
        // Revoking the operator's last key would leave nobody able to
        // register participants or manage keys.
        let mut others_valid = 0;
        for k in participant.keys.iter().filter(|k| **k != r.key) {
            if state
                .key(k)?
                .is_some_and(|rec| rec.valid_at(ctx.record_time))
            {
                others_valid += 1;
            }
        }
        if others_valid == 0 {
            return refuse(
                RuleCode::LastOperatorKey,
                "the operator's last valid key cannot be revoked",
            );
        }
    }
    record.valid_until = Some(ctx.record_time);
    record.ended_in = Some(ctx.index);
    Ok(vec![StateValue::Key(record)])
}
