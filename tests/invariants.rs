//! Broken store invariants are fatal: a running gateway whose store breaks
//! a promise behind its back stops appending and refuses new work with
//! `503 halted` (and `/readyz` says not ready), rather than logging and
//! carrying on; a missing audit entry is an error, never empty bytes.
//!
//! Each test edits the running gateway's SQLite file with rusqlite, as
//! another process (or a failing disk) would.

mod common;

use common::{item, Harness};
use hyper::{Method, StatusCode};
use passerelle::client::{ClientError, Station};
use rusqlite::{params, Connection};
use std::time::Duration;

fn db(h: &Harness) -> Connection {
    Connection::open(&h.config.store).unwrap()
}

/// A station that does not retry, so a refusal is seen at once.
fn station(h: &Harness, principal: &str) -> Station {
    let mut c = h.client_config(principal);
    c.retries = 0;
    Station::new(c).unwrap()
}

fn halted<T: std::fmt::Debug>(r: Result<T, ClientError>) {
    match r {
        Err(ClientError::Refused(p)) => {
            assert_eq!(p.slug(), "halted", "{p:?}");
            assert_eq!(p.status, 503);
        }
        other => panic!("expected 503 halted, got {other:?}"),
    }
}

async fn status(station: &Station, path: &str) -> StatusCode {
    station
        .request(Method::GET, path, None, Duration::ZERO)
        .await
        .unwrap()
        .status
}

/// After a halt: no submission, no other work, and not ready.
async fn refuses_new_work(h: &Harness) {
    let rabat = station(h, "police/lo/rabat");
    halted(
        rabat
            .submit(&item(&rabat, "after", &["vsse/analysis/ct"], "x"))
            .await,
    );
    let vsse = station(h, "vsse/analysis/ct");
    halted(vsse.inbox(Duration::ZERO).await);
    assert_eq!(
        status(&vsse, "/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// A gateway whose log holds one exchange, and its sender.
async fn started() -> (Harness, Station) {
    let h = Harness::start().await;
    let rabat = station(&h, "police/lo/rabat");
    rabat
        .submit(&item(&rabat, "one", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap();
    (h, rabat)
}

#[tokio::test]
async fn a_checkpoint_that_would_go_back_stops_the_gateway() {
    let (h, _) = started().await;
    // Someone stores a checkpoint past the log's end: the gateway's next
    // one would take the log back.
    db(&h)
        .execute(
            "INSERT INTO checkpoints (size, note, issued_at) VALUES (1000000, 'forged', 0)",
            [],
        )
        .unwrap();
    // What housekeeping does at its next tick.
    let gateway = h.running.as_ref().unwrap().gateway.clone();
    assert!(gateway.checkpoint().await.is_err());
    refuses_new_work(&h).await;
}

#[tokio::test]
async fn an_entry_removed_behind_a_running_gateway_stops_it() {
    let (h, rabat) = started().await;
    // The last entry goes: the stored log is no longer the sealed one, and
    // appending to it would sign over the removal.
    db(&h)
        .execute(
            "DELETE FROM audit WHERE idx = (SELECT MAX(idx) FROM audit)",
            [],
        )
        .unwrap();
    halted(
        rabat
            .submit(&item(&rabat, "two", &["vsse/analysis/ct"], "y"))
            .await,
    );
    refuses_new_work(&h).await;
}

#[tokio::test]
async fn a_missing_entry_is_an_error_never_empty_bytes() {
    let (h, _) = started().await;
    let auditor = station(&h, "oversight/comite-r");
    assert_eq!(
        status(&auditor, "/v1/audit/inclusion?index=1").await,
        StatusCode::OK
    );
    // An entry inside the log vanishes (its neighbours stay).
    db(&h)
        .execute("DELETE FROM audit WHERE idx = ?1", params![1])
        .unwrap();
    assert_eq!(
        status(&auditor, "/v1/audit/inclusion?index=1").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "a proof of a missing entry is refused, not served with empty bytes"
    );
    refuses_new_work(&h).await;
}
