//! The audit outputs, in one test binary: EPCIS export, audit bundle,
//! reports, audit sample, lot passport, witness and the `/v1/audit`
//! endpoints. Each module says what it checks.

#[path = "../common/mod.rs"]
mod common;

mod bundle;
mod epcis;
mod fixture;
mod http;
mod passport;
mod reports;
mod sourcing;
mod witness;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use oretrail::demo::{self, DemoOptions};
use oretrail::ledger::{Ledger, Options};

/// The demo data folder, built once for the whole binary (in a scratch
/// folder of this process, `common::scratch_folder`). Tests only read it: through `LogSnapshot` or the one ledger
/// [`demo_ledger`] opens on it.
pub fn demo_data() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::scratch_folder("audit-demo-");
        // On a thread of its own: building appends and waits for receipts,
        // which must not happen on a test's async runtime thread.
        std::thread::scope(|s| {
            s.spawn(|| demo::build(&dir, DemoOptions::default()).expect("the demo builds"))
                .join()
                .unwrap()
        });
        dir
    })
}

/// The demo ledger, opened once for the binary (it may be open only once).
pub fn demo_ledger() -> &'static Arc<Ledger> {
    static LEDGER: OnceLock<Arc<Ledger>> = OnceLock::new();
    LEDGER.get_or_init(|| {
        let dir = demo_data();
        // Opened on a thread of its own, like the demo is built.
        std::thread::scope(|s| {
            s.spawn(|| Arc::new(Ledger::open(dir, Options::default()).expect("the demo opens")))
                .join()
                .unwrap()
        })
    })
}

/// GETs `uri` from `router` in process with bearer `token` (none when
/// `None`): the status, the `Oretrail-Tree-Size` header and the body.
pub async fn get(
    router: &axum::Router,
    uri: &str,
    token: Option<&str>,
) -> (axum::http::StatusCode, Option<String>, Vec<u8>) {
    use tower::ServiceExt as _;
    let mut request = axum::http::Request::get(uri);
    if let Some(token) = token {
        request = request.header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let size = response
        .headers()
        .get("oretrail-tree-size")
        .map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, size, body)
}
