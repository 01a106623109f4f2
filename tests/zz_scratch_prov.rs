use std::sync::Arc;
use std::time::Instant;
use oretrail::catalog::{self, Catalog};
use oretrail::ledger::{Ledger, Options};
use oretrail::model::{LotId, StateView, Timestamp};

#[test]
#[ignore]
fn scratch() {
    let ledger = Arc::new(Ledger::open(std::path::Path::new("/tmp/loadled"), Options::default()).unwrap());
    let t = Instant::now();
    let cat = Catalog::build(&ledger).unwrap();
    println!("catalog build of {} entries: {:?}", ledger.size(), t.elapsed());
    let id = LotId::new("LOAD-CATHODE-0001").unwrap();
    let mut parts = vec![vec![]; 5];
    for _ in 0..300 {
        let t0 = Instant::now();
        let tables = cat.read(&ledger).unwrap();
        let t1 = Instant::now();
        let lot = ledger.state().lot(&id).unwrap().unwrap();
        let t2 = Instant::now();
        let g = tables.upstream(&id).unwrap();
        let t3 = Instant::now();
        let p = catalog::provenance(&tables, &lot, Timestamp::now()).unwrap().unwrap();
        let t4 = Instant::now();
        let json = serde_json::to_vec(&p).unwrap();
        let t5 = Instant::now();
        assert!(json.len() > 1000 && g.nodes.len() > 1000);
        for (i, d) in [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4].into_iter().enumerate() {
            parts[i].push(d);
        }
    }
    for (name, mut v) in ["read", "lot", "walk", "provenance", "json"].into_iter().zip(parts) {
        v.sort();
        println!("{name}: p50 {:?} p99 {:?}", v[150], v[297]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn scratch_router() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt as _;
    let ledger = Arc::new(Ledger::open(std::path::Path::new("/tmp/loadled"), Options::default()).unwrap());
    let token = std::fs::read_to_string("/tmp/loadled.token").unwrap().trim().to_string();
    let app = oretrail::api::router(oretrail::api::AppState::new(ledger.clone()));
    for uri in ["/v1/lots/LOAD-CATHODE-0001/provenance", "/v1/lots/LOAD-CATHODE-0001"] {
        let mut v = vec![];
        for i in 0..310 {
            let t = Instant::now();
            let r = app.clone().oneshot(Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap()).await.unwrap();
            assert_eq!(r.status(), 200);
            let b = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
            assert!(b.len() > 10);
            if i >= 10 { v.push(t.elapsed()); }
        }
        v.sort();
        println!("{uri}: p50 {:?} p99 {:?}", v[150], v[297]);
    }
}
