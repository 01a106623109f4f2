//! Authentication at the edge: the bearer token of a request becomes the
//! [`Viewer`] that the policy (`crate::access`) decides for.
//!
//! Handlers take `viewer: Viewer` where reading needs a token (missing or
//! invalid credentials: `401 UNAUTHENTICATED`), and `viewer: Option<Viewer>`
//! where reading is public but a viewer may see more (no `Authorization`
//! header: `None`; a header with a bad token is still a 401, so that a
//! client with a revoked token finds out instead of silently seeing less).
//! Endpoints that take neither ignore the header. What a viewer may see is
//! then asked of [`Disclosure`] over [`LedgerRecords`], on a blocking
//! thread (it reads the state and the log):
//!
//! ```text
//! let ledger = app.ledger().clone();
//! tokio::task::spawn_blocking(move || {
//!     let records = LedgerRecords(&ledger);
//!     let disclosure = Disclosure::new(Some(&viewer), &records);
//!     match records.lot(&id)? {
//!         Some(lot) if disclosure.lot(&lot)? => Ok(Some(lot)),
//!         _ => Ok(None), // answered 404, hidden or missing alike
//!     }
//! })
//! ```
//!
//! Something that exists but is hidden from the viewer is answered exactly
//! as if it did not exist (`404 NOT_FOUND`), so that ids reveal nothing.
//! `403 FORBIDDEN` ([`require_everything`]) is for endpoints that only the
//! operator and auditors may use at all, whose existence is no secret.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, code};
use crate::access::{Records, Viewer};
use crate::codec;
use crate::ledger::Ledger;
use crate::model::{Event, StateError, StateKey, StateValue, StateView, Timestamp};

pub use crate::access::Disclosure;

/// Why a request was not authenticated: a JSON error and, for a 401, the
/// `WWW-Authenticate` challenge RFC 7235 requires (realm `oretrail`, and
/// the RFC 6750 section 3 error when a token was sent).
#[derive(Debug)]
pub struct AuthRejection {
    error: ApiError,
    challenge: Option<&'static str>,
}

impl AuthRejection {
    /// No `Authorization` header where a token is needed.
    fn missing() -> Self {
        Self {
            error: ApiError::new(
                StatusCode::UNAUTHORIZED,
                code::UNAUTHENTICATED,
                "this endpoint needs a bearer token: `Authorization: Bearer <token>` \
                 (the operator issues them with `oretrail token issue`)",
            ),
            challenge: Some("Bearer realm=\"oretrail\""),
        }
    }

    /// A header that is not `Bearer <token>`.
    fn malformed() -> Self {
        Self {
            error: ApiError::new(
                StatusCode::UNAUTHORIZED,
                code::UNAUTHENTICATED,
                "the Authorization header must be `Bearer <token>`",
            ),
            challenge: Some("Bearer realm=\"oretrail\", error=\"invalid_request\""),
        }
    }

    /// A token that is unknown, revoked, expired or bound to a participant
    /// the ledger does not hold; the client is not told which.
    fn invalid() -> Self {
        Self {
            error: ApiError::new(
                StatusCode::UNAUTHORIZED,
                code::UNAUTHENTICATED,
                "the bearer token is not valid: unknown, revoked or expired",
            ),
            challenge: Some("Bearer realm=\"oretrail\", error=\"invalid_token\""),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.error.status()
    }
}

impl From<ApiError> for AuthRejection {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            challenge: None,
        }
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is
/// case-insensitive, RFC 7235 section 2.1).
fn bearer_token(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// The viewer a request's credentials name: `None` without an
/// `Authorization` header; a rejection for a bad one. Checking the token
/// (a look at the token file at most once a second) and resolving the
/// participant (state reads) run on a blocking thread.
async fn authenticate(parts: &Parts, app: &AppState) -> Result<Option<Viewer>, AuthRejection> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = bearer_token(value).ok_or_else(AuthRejection::malformed)?;
    let tokens = app.tokens.clone();
    let ledger = app.ledger.clone();
    let viewer = tokio::task::spawn_blocking(move || -> Result<Option<Viewer>, ApiError> {
        let record = tokens
            .authenticate(&token, Timestamp::now())
            .map_err(|e| ApiError::unavailable(&e))?;
        let Some(record) = record else {
            return Ok(None);
        };
        let viewer = Viewer::resolve(ledger.state(), &record.participant)?;
        match &viewer {
            Some(v) => tracing::debug!(
                token = %record.id,
                participant = %record.participant,
                standing = ?v.standing(),
                "authenticated"
            ),
            None => tracing::info!(
                token = %record.id,
                participant = %record.participant,
                "refused a token bound to a participant the ledger does not hold"
            ),
        }
        Ok(viewer)
    })
    .await
    .map_err(ApiError::from)??;
    viewer.map(Some).ok_or_else(AuthRejection::invalid)
}

/// A viewer is required: no credentials is a 401.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, app)
            .await?
            .ok_or_else(AuthRejection::missing)
    }
}

/// `Option<Viewer>`: anonymous readers are welcome, bad tokens are not.
impl OptionalFromRequestParts<AppState> for Viewer {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        authenticate(parts, app).await
    }
}

/// Refuses viewers who do not see everything, for endpoints only the
/// operator and auditors may use: `403 FORBIDDEN`.
pub fn require_everything(viewer: &Viewer) -> Result<(), ApiError> {
    if viewer.sees_everything() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            format!(
                "only the operator and auditors may use this endpoint; {} reads for {}",
                viewer.participant(),
                viewer.organisation()
            ),
        ))
    }
}

/// What the policy reads, from the open ledger: its state, and the event
/// of any committed entry. Blocking.
pub struct LedgerRecords<'a>(pub &'a Ledger);

impl StateView for LedgerRecords<'_> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        self.0.state().get(key)
    }
}

impl Records for LedgerRecords<'_> {
    fn event(&self, index: u64) -> Result<Event, StateError> {
        let (entry, _) = self
            .0
            .entry(index)
            .map_err(|e| StateError(format!("entry {index}: {e}")))?;
        codec::decode(&entry.signed.event)
            .map_err(|e| StateError(format!("entry {index} holds an undecodable event: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers_are_parsed_case_insensitively_and_strictly() {
        let parse = |s: &'static str| bearer_token(&HeaderValue::from_static(s));
        assert_eq!(parse("Bearer ot_abc").as_deref(), Some("ot_abc"));
        assert_eq!(parse("bearer  ot_abc ").as_deref(), Some("ot_abc"));
        assert_eq!(parse("Basic dXNlcjpwdw=="), None);
        assert_eq!(parse("Bearer "), None);
        assert_eq!(parse("ot_abc"), None);
    }

    #[test]
    fn rejections_carry_the_challenge_and_a_stable_code() {
        for (rejection, error) in [
            (AuthRejection::missing(), None),
            (AuthRejection::malformed(), Some("invalid_request")),
            (AuthRejection::invalid(), Some("invalid_token")),
        ] {
            assert_eq!(rejection.error.body().code, code::UNAUTHENTICATED);
            let response = rejection.into_response();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            let challenge = response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .to_string();
            assert!(challenge.starts_with("Bearer realm=\"oretrail\""));
            assert_eq!(challenge.contains("error="), error.is_some(), "{challenge}");
            if let Some(e) = error {
                assert!(challenge.contains(e));
            }
        }
    }
}
