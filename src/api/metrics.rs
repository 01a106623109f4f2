//! Prometheus metrics (`GET /metrics`) and the one log line per request.
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust
//! client: its registry is a value, not a process-wide global, so each
//! [`super::AppState`] owns one and routers in parallel tests never see
//! each other's counts; it also writes the Prometheus text exposition
//! format (0.0.4) that every scraper reads.
//!
//! Labels stay bounded: requests are counted by the route *template*
//! (`/v1/lots/{id}`, never the lot id), by method and by status class;
//! refused appends by their stable error code.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::AppState;
use super::error::ApiError;
use crate::ledger::Receipt;

/// The route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Upper bounds (seconds) of the request duration buckets: from a cached
/// read (well under a millisecond) to the 30 s time-out.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    /// `2xx`, `4xx`, ...
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppendLabels {
    /// `accepted`, `replayed` or `refused`.
    result: &'static str,
    /// The error code of a refusal; empty otherwise.
    code: String,
}

/// One server's metrics and the registry that exports them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    appends: Family<AppendLabels, Counter>,
    tree_size: Gauge,
    last_batch_events: Gauge,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "oretrail_http_requests",
            "HTTP requests answered, by route template, method and status class",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register(
            "oretrail_http_request_duration_seconds",
            "Time from a request's arrival (waiting for a slot included) to its answer, by route template",
            duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "oretrail_http_requests_in_flight",
            "HTTP requests being handled now, this scrape included",
            in_flight.clone(),
        );
        let appends = Family::<AppendLabels, Counter>::default();
        registry.register(
            "oretrail_appends",
            "Events submitted over HTTP (one per event, batches included): accepted, replayed (already recorded) or refused, with the refusal's code",
            appends.clone(),
        );
        let tree_size = Gauge::default();
        registry.register(
            "oretrail_ledger_tree_size",
            "Committed entries in the ledger (the size of the latest checkpoint)",
            tree_size.clone(),
        );
        let last_batch_events = Gauge::default();
        registry.register(
            "oretrail_last_batch_events",
            "Events in the most recent POST /v1/events/batch that could be read",
            last_batch_events.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            in_flight,
            appends,
            tree_size,
            last_batch_events,
        }
    }

    /// Counts one event's answer.
    pub(crate) fn record_append(&self, outcome: &Result<Receipt, ApiError>) {
        let labels = match outcome {
            Ok(receipt) if receipt.replay => AppendLabels {
                result: "replayed",
                code: String::new(),
            },
            Ok(_) => AppendLabels {
                result: "accepted",
                code: String::new(),
            },
            Err(e) => AppendLabels {
                result: "refused",
                code: e.body().code.to_string(),
            },
        };
        self.appends.get_or_create(&labels).inc();
    }

    /// Notes the size of a batch that was read.
    pub(crate) fn record_batch(&self, events: usize) {
        self.last_batch_events
            .set(i64::try_from(events).unwrap_or(i64::MAX));
    }

    fn record_request(&self, method: &Method, route: &str, status: StatusCode, took: Duration) {
        let route = route.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                method: method.as_str().to_string(),
                route: route.clone(),
                status_class: status_class(status),
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// The registry in the Prometheus text exposition format.
    fn encode(&self, tree_size: u64) -> Result<String, std::fmt::Error> {
        self.tree_size
            .set(i64::try_from(tree_size).unwrap_or(i64::MAX));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts a request in flight for as long as it lives, so a request whose
/// connection drops mid-way is still subtracted.
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The outermost layer: counts and times every request and writes its one
/// log line (target `oretrail::request`): method, route template, status
/// and latency. Nothing else of the request is logged: no header (the
/// `Authorization` bearer token least of all), no query string, no body.
pub(super) async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED.to_string());
    let response = {
        let _in_flight = InFlight::enter(&app.metrics.in_flight);
        next.run(request).await
    };
    let took = started.elapsed();
    let status = response.status();
    app.metrics.record_request(&method, &route, status, took);
    tracing::info!(
        target: "oretrail::request",
        method = %method,
        route = %route,
        status = status.as_u16(),
        // Whole microseconds, so the number reads as it was measured.
        latency_ms = took.as_micros() as f64 / 1000.0,
        "request"
    );
    response
}

/// `GET /metrics`: this server's metrics, Prometheus text format 0.0.4.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4: requests by route, method and status class; request durations by route; requests in flight; appends by result and code; ledger tree size; events in the last batch.", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
    )
)]
pub(super) async fn export(State(app): State<AppState>) -> Result<Response, ApiError> {
    let text = app
        .metrics
        .encode(app.ledger.size())
        .map_err(|e| ApiError::internal(&e))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}
