//! The OpenAPI 3.1 document of the API (`GET /v1/openapi.json`), the docs
//! page over it (`/docs`), and the JSON Schemas of `schemas/api/`, all
//! generated from the code: the handlers' `#[utoipa::path]` attributes and
//! the `ToSchema` derives of the bodies and model types they send.
//!
//! There is one source of truth: the JSON Schemas are cut out of the same
//! document ([`body_schemas`]), so a type that changes changes both, and
//! `tests/http/schemas.rs` fails until the committed files are regenerated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::error::{ApiError, ErrorBody};
use super::{audit, events, listing, log, lots, metrics, passport, query, witness};

/// Where the document is served; the docs page reads it from here.
pub const DOCUMENT_PATH: &str = "/v1/openapi.json";

/// Where the docs page is served (its assets under `/docs/`).
pub const DOCS_PATH: &str = "/docs";

/// The name of the bearer-token security scheme in the document.
pub const BEARER_SCHEME: &str = "bearer";

/// The API's OpenAPI 3.1 document.
///
/// Adding an endpoint is a one-line change here: give its handler a
/// `#[utoipa::path(...)]` attribute (method, path, parameters, bodies,
/// responses) and name the handler in `paths(...)` below. The bodies it
/// names (types deriving `utoipa::ToSchema`) become components on their
/// own; `ORETRAIL_BLESS=1 cargo test --test http schemas` then writes their
/// JSON Schemas to `schemas/api/`. `tests/http/edge.rs` fails while a route of
/// the router is missing from `paths(...)`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "oretrail",
        description = "A hash-chained, Ed25519-signed, append-only chain-of-custody ledger for copper and zinc lots. Signed events in; entries, RFC 9162 proofs, C2SP checkpoints and the current state of lots, participants and red flags out. Every error is JSON `{\"code\", \"message\", \"details\"}` (`ErrorBody`) with a stable code.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        events::post_event,
        events::post_batch,
        log::checkpoint,
        witness::checkpoint_at,
        witness::post_cosignatures,
        log::log_key,
        log::entries,
        log::entry,
        log::inclusion,
        log::consistency,
        query::lot,
        lots::lots,
        lots::history,
        lots::provenance,
        lots::downstream,
        passport::passport,
        query::participant,
        listing::participants,
        query::flag,
        listing::flags,
        listing::events,
        audit::bundle,
        audit::epcis,
        audit::report,
        document,
        metrics::export,
    ),
    components(schemas(ErrorBody)),
    modifiers(&EdgeConventions),
    tags(
        (name = "write", description = "Signed events in; answered once durable."),
        (name = "log", description = "The log for outside verifiers: checkpoints with their witnesses' cosignatures, the log key, entries and RFC 9162 proofs; witnesses' cosignatures in. Public."),
        (name = "state", description = "The current state of lots, participants and red flags."),
        (name = "audit", description = "Audit outputs built from the log and verified on the way: the audit bundle, EPCIS 2.0 documents, reports."),
        (name = "operations", description = "The API's own description and metrics."),
    )
)]
pub struct ApiDoc;

/// What every operation shares and the attributes do not say: the bearer
/// scheme, and that any status not listed answers with an `ErrorBody`
/// (`405 METHOD_NOT_ALLOWED`, `500 INTERNAL`, `503 UNAVAILABLE` or
/// `TIMEOUT` can come from any endpoint).
struct EdgeConventions;

impl utoipa::Modify for EdgeConventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <token>`: a token the operator issued to a \
                         participant. The log API and appends need none.",
                    ))
                    .build(),
            ),
        );
        let error = ResponseBuilder::new()
            .description(
                "Any other failure: `ErrorBody` with a stable code (`METHOD_NOT_ALLOWED`, \
                 `INTERNAL`, `UNAVAILABLE`, `TIMEOUT`, ...).",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                operation
                    .responses
                    .responses
                    .entry("default".to_string())
                    .or_insert_with(|| RefOr::T(error.clone()));
            }
        }
    }
}

/// The document as JSON text, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"the OpenAPI document failed: {e}\"}}"))
});

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object),
    )
)]
pub(super) async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// The docs page (Swagger UI) at `/docs/`. Its HTML, scripts and styles
/// are compiled into the binary (`utoipa-swagger-ui`'s `vendored`
/// feature) and served from here; it fetches nothing but
/// [`DOCUMENT_PATH`] (the online validator badge is off), so it works
/// without a network.
pub(super) fn docs<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let config = Config::new([DOCUMENT_PATH]).validator_url("none");
    Router::from(SwaggerUi::new(DOCS_PATH).config(config))
        .layer(axum::middleware::map_response(missing_asset_as_json))
}

/// The docs router answers a missing asset with an empty 404; make it the
/// API's JSON error like every other.
async fn missing_asset_as_json(response: Response) -> Response {
    if response.status() == StatusCode::NOT_FOUND {
        ApiError::not_found("no such file of the docs page").into_response()
    } else {
        response
    }
}

const COMPONENT_PREFIX: &str = "#/components/schemas/";

/// The JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) of every
/// JSON request and response body that is a named component, by name:
/// the component's schema, with every component it refers to under
/// `$defs` (references rewritten to `#/$defs/...`), so each stands alone.
/// These are the files of `schemas/api/` (`<name>.schema.json`).
pub fn body_schemas() -> BTreeMap<String, Value> {
    let doc = match serde_json::to_value(ApiDoc::openapi()) {
        Ok(doc) => doc,
        Err(_) => return BTreeMap::new(),
    };
    let components = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    body_uses(&doc)
        .into_keys()
        .filter_map(|name| {
            let schema = components.get(&name)?;
            let mut defs = BTreeSet::new();
            collect_refs(schema, &components, &mut defs);
            defs.remove(&name);
            let mut out = Map::new();
            out.insert(
                "$schema".into(),
                json!("https://json-schema.org/draft/2020-12/schema"),
            );
            out.insert("title".into(), json!(name));
            if let Value::Object(fields) = rewrite_refs(schema, &name) {
                out.extend(fields);
            }
            if !defs.is_empty() {
                let defs: Map<String, Value> = defs
                    .iter()
                    .map(|d| (d.clone(), rewrite_refs(&components[d], &name)))
                    .collect();
                out.insert("$defs".into(), Value::Object(defs));
            }
            Some((name, sorted(Value::Object(out))))
        })
        .collect()
}

/// For each body component, the operations that send or take it, as
/// `"<METHOD> <path> <status or request>"`, sorted.
pub fn body_uses(doc: &Value) -> BTreeMap<String, Vec<String>> {
    let mut uses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return uses;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, operation) in item {
            let method = method.to_uppercase();
            let mut add = |content: Option<&Value>, what: String| {
                let name = content
                    .and_then(|c| c.pointer("/application~1json/schema/$ref"))
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix(COMPONENT_PREFIX));
                if let Some(name) = name {
                    uses.entry(name.to_string())
                        .or_default()
                        .push(format!("{method} {path} {what}"));
                }
            };
            add(
                operation.pointer("/requestBody/content"),
                "request".to_string(),
            );
            if let Some(responses) = operation.get("responses").and_then(Value::as_object) {
                for (status, response) in responses {
                    add(response.get("content"), status.clone());
                }
            }
        }
    }
    for list in uses.values_mut() {
        list.sort();
        list.dedup();
    }
    uses
}

/// Adds to `out` every component `schema` refers to, transitively.
fn collect_refs(schema: &Value, components: &Map<String, Value>, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref" {
                    let name = value
                        .as_str()
                        .and_then(|r| r.strip_prefix(COMPONENT_PREFIX));
                    if let Some(name) = name
                        && out.insert(name.to_string())
                        && let Some(target) = components.get(name)
                    {
                        collect_refs(target, components, out);
                    }
                } else {
                    collect_refs(value, components, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_refs(item, components, out);
            }
        }
        _ => {}
    }
}

/// Points component references into `$defs` (or at the root, for the
/// body's own name).
fn rewrite_refs(schema: &Value, root: &str) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value.as_str()) {
                        ("$ref", Some(r)) => match r.strip_prefix(COMPONENT_PREFIX) {
                            Some(name) if name == root => json!("#"),
                            Some(name) => json!(format!("#/$defs/{name}")),
                            None => value.clone(),
                        },
                        _ => rewrite_refs(value, root),
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|i| rewrite_refs(i, root)).collect()),
        other => other.clone(),
    }
}

/// The same value with every object's keys in sorted order, so the files
/// are byte-for-byte stable whatever order the generator used.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
