//! `/readyz`, distinct from `/healthz`: ready means the store takes a
//! write, a policy is in force and the signing key works. A store that
//! cannot be written makes the gateway not ready (503) while it stays alive.

mod common;

use common::Harness;
use hyper::{Method, StatusCode};
use std::time::Duration;

#[tokio::test]
async fn ready_while_the_store_takes_writes_and_not_while_it_is_locked() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let ready = rabat
        .request(Method::GET, "/readyz", None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(ready.status, StatusCode::OK);

    // Another process holds SQLite's write lock past the busy timeout.
    let blocker = rusqlite::Connection::open(&h.config.store).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let mut station = h.station("police/lo/rabat");
    station.timeout = Duration::from_secs(30);
    let not_ready = station
        .request(Method::GET, "/readyz", None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = String::from_utf8_lossy(&not_ready.body).to_string();
    assert!(
        body.contains("not-ready") && body.contains("store"),
        "{body}"
    );
    assert!(!body.contains("locked"), "no store error text: {body}");
    // Alive all the same.
    let alive = station
        .request(Method::GET, "/healthz", None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(alive.status, StatusCode::OK);
    blocker.execute_batch("ROLLBACK;").unwrap();
    let again = station
        .request(Method::GET, "/readyz", None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::OK);
}
