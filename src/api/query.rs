//! The query API, first part: one lot, one participant, one red flag, as
//! the ledger state holds them now. Listings with filters and paging need
//! secondary indexes and come later. State reads go to sled, so they run
//! on blocking threads.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::log::path_rejection;
use crate::model::{Flag, StateError};
use crate::model::{
    FlagId, KeyRecord, Lot, LotId, Participant, ParticipantId, StateKey, StateValue, StateView,
};

/// `GET /v1/lots/{id}`: the lot's current state. Lot ids may contain `/`,
/// which must be sent percent-encoded (`%2F`).
pub(super) async fn lot(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Lot>, ApiError> {
    let Path(id) = id.map_err(path_rejection)?;
    let id = LotId::new(id).map_err(|e| ApiError::malformed(e.to_string()))?;
    let ledger = app.ledger.clone();
    let lookup = id.clone();
    let lot = tokio::task::spawn_blocking(move || ledger.state().lot(&lookup)).await??;
    lot.map(Json).ok_or_else(|| {
        ApiError::not_found(format!("no lot {id} on this ledger"))
            .with_details(json!({ "lot": id.as_str() }))
    })
}

/// A participant with the validity windows of its keys.
#[derive(Debug, Serialize)]
pub(super) struct ParticipantBody {
    participant: Participant,
    /// Every key ever registered for it, in registration order, with its
    /// validity window.
    keys: Vec<KeyRecord>,
    /// The organisation it acts for as an appointed officer, if any.
    acts_for: Option<ParticipantId>,
}

fn read_participant(
    state: &impl StateView,
    id: &ParticipantId,
) -> Result<Option<ParticipantBody>, StateError> {
    let Some(participant) = state.participant(id)? else {
        return Ok(None);
    };
    let mut keys = Vec::with_capacity(participant.keys.len());
    for key in &participant.keys {
        if let Some(record) = state.key(key)? {
            keys.push(record);
        }
    }
    let acts_for = match state.get(&StateKey::Affiliation(id.clone()))? {
        Some(StateValue::Affiliation(a)) => Some(a.organisation),
        _ => None,
    };
    Ok(Some(ParticipantBody {
        participant,
        keys,
        acts_for,
    }))
}

/// `GET /v1/participants/{id}`.
pub(super) async fn participant(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ParticipantBody>, ApiError> {
    let Path(id) = id.map_err(path_rejection)?;
    let id = ParticipantId::new(id).map_err(|e| ApiError::malformed(e.to_string()))?;
    let ledger = app.ledger.clone();
    let lookup = id.clone();
    let body =
        tokio::task::spawn_blocking(move || read_participant(ledger.state(), &lookup)).await??;
    body.map(Json).ok_or_else(|| {
        ApiError::not_found(format!("no participant {id} on this ledger"))
            .with_details(json!({ "participant": id.as_str() }))
    })
}

/// `GET /v1/flags/{entry}/{n}`: red flag `n` raised by entry `entry`.
pub(super) async fn flag(
    State(app): State<AppState>,
    id: Result<Path<(u64, u16)>, PathRejection>,
) -> Result<Json<Flag>, ApiError> {
    let Path((entry, n)) = id.map_err(path_rejection)?;
    let id = FlagId { entry, n };
    let ledger = app.ledger.clone();
    let flag = tokio::task::spawn_blocking(move || ledger.state().flag(id)).await??;
    flag.map(Json).ok_or_else(|| {
        ApiError::not_found(format!("no red flag {entry}/{n} on this ledger"))
            .with_details(json!({ "entry": entry, "n": n }))
    })
}
