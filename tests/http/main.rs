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

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

/// A response read whole, as every module here inspects it.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    async fn read(response: axum::response::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Self {
            status,
            headers,
            body,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    fn content_type(&self) -> &str {
        self.header(header::CONTENT_TYPE).unwrap_or("")
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// A fresh ledger in `dir` and a signer for its operator. Creating appends
/// the genesis entry and waits for it, which must not happen on a test's
/// async thread, so it happens on a thread of its own.
fn new_ledger(
    dir: &std::path::Path,
    clock: &common::TestClock,
) -> (
    std::sync::Arc<oretrail::ledger::Ledger>,
    oretrail::signer::Signer,
) {
    let ledger = std::thread::scope(|s| {
        s.spawn(|| {
            oretrail::ledger::Ledger::create(dir, common::genesis(), clock.options()).unwrap()
        })
        .join()
        .unwrap()
    });
    let operator_key = oretrail::crypto::SecretKey::read_file(
        &dir.join("keys").join(oretrail::ledger::OPERATOR_KEY_FILE),
    )
    .unwrap();
    let operator = oretrail::signer::Signer::with_first_nonce(
        common::ORIGIN,
        common::pid("operator"),
        operator_key,
        1,
    );
    (std::sync::Arc::new(ledger), operator)
}
