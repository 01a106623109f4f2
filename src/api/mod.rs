//! The HTTP API: the only room that knows HTTP, axum and status codes.
//!
//! It maps requests onto the library's boundary (`ledger::Ledger`) and
//! the library's errors onto JSON error bodies with stable codes
//! ([`error::code`] and the rules' `RuleCode` strings). It never runs
//! blocking ledger work on the async worker threads: appends go through
//! `Ledger::submit` on a blocking thread and their durable receipt is
//! awaited; reads that touch sled or the log run with `spawn_blocking`.
//!
//! Who may read what is decided by `crate::access` alone; [`access`] turns
//! a request's bearer token into a `Viewer` (extractors) and handlers apply
//! the policy's answers (README, "Who sees what").
//!
//! Endpoints (all under `/v1`, documented in `README.md`):
//!
//! | method and path | what |
//! |---|---|
//! | `POST /v1/events` | append one signed event |
//! | `POST /v1/events/batch` | append many, each accepted or refused on its own |
//! | `GET /v1/checkpoint` | latest C2SP checkpoint note, with its witnesses' cosignatures |
//! | `GET /v1/checkpoint/{size}`, `POST /v1/checkpoint/cosignatures` | a cosigned checkpoint of that size; a trusted witness's cosignature in ([`witness`]) |
//! | `GET /v1/log/key` | C2SP verifier key line of the log key |
//! | `GET /v1/entries/{index}`, `GET /v1/entries?start=S&end=E` | entries, leaf hashes and bytes |
//! | `GET /v1/proofs/inclusion?index=I&tree_size=N` | RFC 9162 inclusion proof |
//! | `GET /v1/proofs/consistency?first=M&second=N` | RFC 9162 consistency proof |
//! | `GET /v1/lots/{id}`, `/v1/participants/{id}`, `/v1/flags/{entry}/{n}` | current state |
//! | `GET /v1/lots`, `/v1/participants`, `/v1/flags` | listings with filters and cursor paging (catalog) |
//! | `GET /v1/lots/{id}/history` | the entries naming a lot |
//! | `GET /v1/lots/{id}/provenance`, `/v1/lots/{id}/downstream` | backward graph to the mines with shares and exposure; every lot made from it |
//! | `GET /v1/lots/{id}/passport` | the lot passport: its graph and every entry behind it with inclusion proofs, one file to verify offline ([`passport`]) |
//! | `GET /v1/events` | entries with EPCIS-style filters (`eventType`, `EQ_bizStep`, `GE_`/`LT_eventTime`, `MATCH_epc`, `participant`) |
//! | `GET /v1/audit/bundle`, `/v1/audit/epcis`, `/v1/audit/reports/{kind}` | the audit bundle (operator and auditors); an EPCIS 2.0 document of a selection; the audit reports ([`audit`]) |
//! | `GET /v1/openapi.json`, `GET /docs/` | OpenAPI 3.1 document ([`openapi::ApiDoc`]) and the docs page over it |
//! | `GET /metrics` | Prometheus metrics (per [`AppState`]) |

pub mod access;
mod audit;
pub mod error;
mod events;
mod listing;
mod log;
mod lots;
mod metrics;
pub mod openapi;
mod passport;
mod query;
mod witness;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower_http::trace::{DefaultMakeSpan, TraceLayer};

pub use error::{ApiError, ErrorBody};
pub use log::MAX_ENTRIES_PER_PAGE;

use crate::access::tokens::TokenStore;
use crate::catalog::Catalog;
use crate::ledger::Ledger;
use crate::witness::WitnessDesk;

/// The edge's limits. Requests beyond them are refused with a JSON error
/// before they reach the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body of `POST /v1/events`.
    pub max_event_body: usize,
    /// Largest body of `POST /v1/events/batch`.
    pub max_batch_body: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Longest a request may take, from arrival (waiting for a slot
    /// included) to the answer.
    pub request_timeout: Duration,
    /// Most requests handled at once; later ones wait for a slot.
    pub max_concurrent_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_body: 1 << 20,
            max_batch_body: 16 << 20,
            max_batch_events: 1000,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 512,
        }
    }
}

/// What every handler shares: the open ledger, its catalog and the limits.
#[derive(Clone)]
pub struct AppState {
    ledger: Arc<Ledger>,
    /// Secondary indexes for listings and graph walks, following the ledger.
    catalog: Arc<Catalog>,
    limits: Limits,
    /// The verifier key line; fixed for the ledger's life.
    key_line: Option<Arc<str>>,
    /// This server's Prometheus registry (not a process-wide one).
    metrics: Arc<metrics::Metrics>,
    /// The bearer tokens readers authenticate with (`api::access`).
    tokens: Arc<TokenStore>,
    /// The trusted witnesses and the cosignatures kept (`api::witness`).
    witnesses: Arc<WitnessDesk>,
}

impl AppState {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self::with_limits(ledger, Limits::default())
    }

    pub fn with_limits(ledger: Arc<Ledger>, limits: Limits) -> Self {
        let key_line = ledger.log_key_line().map(Arc::from);
        let catalog = Arc::new(Catalog::follow(&ledger));
        let tokens = Arc::new(TokenStore::watching(ledger.dir()));
        let witnesses = Arc::new(WitnessDesk::new(
            ledger.dir(),
            ledger.info().map(|i| i.origin),
        ));
        Self {
            ledger,
            catalog,
            limits,
            key_line,
            metrics: Arc::new(metrics::Metrics::new()),
            tokens,
            witnesses,
        }
    }

    /// Uses `tokens` (for example one opened with [`TokenStore::open`],
    /// which refuses a malformed token file up front) instead of watching
    /// the ledger folder's token file from the first request on.
    pub fn with_tokens(mut self, tokens: TokenStore) -> Self {
        self.tokens = Arc::new(tokens);
        self
    }

    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }
}

/// The API's router, with its limits, time-out and request logs.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    let api = Router::new()
        .route(
            "/v1/events",
            post(events::post_event)
                .layer(DefaultBodyLimit::max(limits.max_event_body))
                .get(listing::events),
        )
        .route(
            "/v1/events/batch",
            post(events::post_batch).layer(DefaultBodyLimit::max(limits.max_batch_body)),
        )
        .route("/v1/checkpoint", get(log::checkpoint))
        .route("/v1/checkpoint/{size}", get(witness::checkpoint_at))
        .route(
            "/v1/checkpoint/cosignatures",
            post(witness::post_cosignatures)
                .layer(DefaultBodyLimit::max(witness::MAX_COSIGNATURE_BODY)),
        )
        .route("/v1/log/key", get(log::log_key))
        .route("/v1/entries", get(log::entries))
        .route("/v1/entries/{index}", get(log::entry))
        .route("/v1/proofs/inclusion", get(log::inclusion))
        .route("/v1/proofs/consistency", get(log::consistency))
        .route("/v1/lots", get(lots::lots))
        .route("/v1/lots/{id}", get(query::lot))
        .route("/v1/lots/{id}/history", get(lots::history))
        .route("/v1/lots/{id}/provenance", get(lots::provenance))
        .route("/v1/lots/{id}/downstream", get(lots::downstream))
        .route("/v1/lots/{id}/passport", get(passport::passport))
        .route("/v1/participants", get(listing::participants))
        .route("/v1/participants/{id}", get(query::participant))
        .route("/v1/flags", get(listing::flags))
        .route("/v1/flags/{entry}/{n}", get(query::flag))
        .route("/v1/audit/bundle", get(audit::bundle))
        .route("/v1/audit/epcis", get(audit::epcis))
        .route("/v1/audit/reports/{kind}", get(audit::report))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics::export))
        .merge(openapi::docs())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    // Outermost first: the error handler turns a time-out into JSON; the
    // time-out covers waiting for a slot; the slot limit is one semaphore
    // shared by every route.
    api.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(edge_error))
            .layer(TimeoutLayer::new(limits.request_timeout))
            .layer(GlobalConcurrencyLimitLayer::new(
                limits.max_concurrent_requests,
            )),
    )
    .layer(
        TraceLayer::new_for_http()
            .make_span_with(DefaultMakeSpan::new().level(tracing::Level::INFO))
            .on_response(()),
    )
    // Outermost: metrics and the one log line per request (`metrics::track`)
    // see every answer, time-outs and waits for a slot included.
    .layer(axum::middleware::from_fn_with_state(state, metrics::track))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; the API is under /v1 (see the README)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        error::code::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method",
    )
}

/// Errors of the edge's own layers (time-out), as JSON.
async fn edge_error(e: tower::BoxError) -> ApiError {
    if e.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            error::code::TIMEOUT,
            "the request took too long; an event sent in it may still be recorded: \
             send the same signed event again to get its entry",
        )
    } else {
        ApiError::internal(&e)
    }
}

/// Serves the API on `listener` until `shutdown` completes, then stops
/// taking connections and waits for the requests in flight to finish
/// (their appends are answered only once durable). The caller closes the
/// ledger afterwards.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
