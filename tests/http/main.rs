//! The HTTP API, in one test binary: every endpoint in process through
//! the router (`api`), the query API over the catalog (`api_query`), the
//! access matrix (`access`), the edge (OpenAPI, docs page, metrics, request
//! logs: `edge`), the committed JSON Schemas (`schemas`), the Python
//! verifier against a served ledger (`external_verifier`) and the load
//! generator (`load`).

#[path = "../common/mod.rs"]
mod common;

mod access;
mod api;
mod api_query;
mod edge;
mod external_verifier;
mod load;
mod schemas;
