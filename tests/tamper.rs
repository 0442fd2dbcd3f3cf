//! The store edited behind the gateway's back, between runs, by someone who
//! has the database but not the gateway: each edit is noticed at start.
//!
//! Each test stops the real gateway, edits its SQLite file with rusqlite
//! directly, as an operator with a shell would, and starts it again.

mod common;

use common::{item, Harness};
use passerelle::audit::event::{AuditEntry, AuditEvent};
use passerelle::client::ClientError;
use passerelle::config::GatewayConfig;
use passerelle::server::{self, StartError, StartOptions};
use rusqlite::{params, Connection};
use std::path::Path;
use std::time::Duration;

fn db(config: &GatewayConfig) -> Connection {
    Connection::open(&config.store).unwrap()
}

fn entries(config: &GatewayConfig) -> Vec<AuditEntry> {
    let conn = db(config);
    let mut stmt = conn
        .prepare("SELECT entry FROM audit ORDER BY idx")
        .unwrap();
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| AuditEntry::decode(&b.unwrap()).unwrap())
        .collect();
    rows
}

fn count(config: &GatewayConfig, sql: &str) -> u64 {
    db(config).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Stops the harness's gateway cleanly (stop entry, final checkpoint).
async fn stop(h: &mut Harness) {
    h.running.take().unwrap().shutdown().await;
}

/// Starts the gateway again; expects a refusal and returns its message.
async fn refused(config: &GatewayConfig) -> String {
    match server::start(config).await {
        Ok(running) => {
            running.shutdown().await;
            panic!("the gateway started on an edited store");
        }
        Err(e) => e.to_string(),
    }
}

/// A gateway whose log holds an exchange: rabat sends two items to VSSE,
/// which fetches and acknowledges the first. Returns the two references.
async fn exchanged() -> (Harness, String, String) {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let one = rabat
        .submit(&item(&rabat, "one", &["vsse/analysis/ct"], "first"))
        .await
        .unwrap()
        .receipt
        .item_ref;
    let two = rabat
        .submit(&item(&rabat, "two", &["vsse/analysis/ct"], "second"))
        .await
        .unwrap()
        .receipt
        .item_ref;
    vsse.fetch(&one).await.unwrap();
    vsse.ack(&one).await.unwrap();
    (h, one, two)
}

#[test]
fn an_entry_written_after_the_last_checkpoint_then_changed_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
    let config = GatewayConfig::load(&dir.path().join("gateway.toml")).unwrap();

    // The gateway dies without its stop (its runtime is torn down, as by a
    // crash): the submission's entry is after the last published checkpoint.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let running = runtime.block_on(async {
        let running = server::start(&config).await.unwrap();
        let path = dir
            .path()
            .join(passerelle::pki::station_dir("police/lo/rabat"))
            .join("client.toml");
        let mut c = passerelle::station_config::ClientConfig::load(&path).unwrap();
        c.gateway = running.addr.to_string();
        c.retries = 0;
        let rabat = passerelle::client::Station::new(c).unwrap();
        rabat
            .submit(&item(&rabat, "late", &["vsse/analysis/ct"], "after"))
            .await
            .unwrap();
        running
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(running);

    let size = count(&config, "SELECT COUNT(*) FROM audit");
    let published = count(&config, "SELECT MAX(size) FROM checkpoints");
    assert!(
        published < size,
        "the last entry must be after the last checkpoint ({published} of {size})"
    );
    // Rewrite the acceptance (followed by its one decision entry): another
    // purpose, still a well-formed entry.
    let mut all = entries(&config);
    all.pop();
    let mut entry = all.pop().unwrap();
    match &mut entry.event {
        AuditEvent::ItemAccepted { purpose, .. } => *purpose = "training".into(),
        other => panic!("expected the acceptance, found {other:?}"),
    }
    db(&config)
        .execute(
            "UPDATE audit SET entry = ?1 WHERE idx = ?2",
            params![entry.encode(), size - 2],
        )
        .unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let message = runtime.block_on(refused(&config));
    assert!(message.contains("were changed"), "{message}");
    assert!(message.contains("--new-log"), "{message}");
}

#[tokio::test]
async fn an_entry_added_behind_the_gateways_back_refuses_to_start() {
    let (mut h, _, _) = exchanged().await;
    stop(&mut h).await;
    let size = count(&h.config, "SELECT COUNT(*) FROM audit");
    let forged = AuditEntry::new(1, AuditEvent::GatewayStopped).encode();
    // With its leaf hash, as the gateway writes it: the tree is consistent
    // and only the seal tells.
    db(&h.config)
        .execute(
            "INSERT INTO audit (idx, entry, leaf) VALUES (?1, ?2, ?3)",
            params![
                size,
                forged,
                &passerelle::audit::rfc9162::leaf_hash(&forged)[..]
            ],
        )
        .unwrap();
    let message = refused(&h.config).await;
    assert!(message.contains("not written by the gateway"), "{message}");
}

#[tokio::test]
async fn a_rolled_back_tail_refuses_to_start() {
    let (mut h, _, _) = exchanged().await;
    stop(&mut h).await;
    // The last three entries go, with the checkpoints that covered them, so
    // that what is left agrees with the checkpoints that are left.
    let size = count(&h.config, "SELECT COUNT(*) FROM audit");
    let conn = db(&h.config);
    conn.execute("DELETE FROM audit WHERE idx >= ?1", params![size - 3])
        .unwrap();
    conn.execute("DELETE FROM checkpoints WHERE size > ?1", params![size - 3])
        .unwrap();
    drop(conn);
    let message = refused(&h.config).await;
    assert!(
        message.contains("truncated, rolled back or wiped"),
        "{message}"
    );
}

#[tokio::test]
async fn a_database_restored_from_an_older_copy_refuses_to_start() {
    let mut h = Harness::start().await;
    stop(&mut h).await;
    let copy = h.path().join("older.db");
    std::fs::copy(&h.config.store, &copy).unwrap();
    // More happens; then the older copy, whole and self-consistent, is put
    // back in place.
    h.running = Some(server::start(&h.config).await.unwrap());
    let rabat = h.station("police/lo/rabat");
    rabat
        .submit(&item(&rabat, "later", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap();
    stop(&mut h).await;
    remove_store(&h.config.store);
    std::fs::copy(&copy, &h.config.store).unwrap();
    let message = refused(&h.config).await;
    assert!(message.contains("the head file covers"), "{message}");
}

fn remove_store(store: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = store.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
async fn a_wiped_log_refuses_to_start_unless_a_new_log_is_started_and_recorded() {
    let (mut h, _, _) = exchanged().await;
    stop(&mut h).await;
    let size = count(&h.config, "SELECT COUNT(*) FROM audit");
    // The whole audit log goes; the key stays.
    db(&h.config)
        .execute_batch("DELETE FROM audit; DELETE FROM checkpoints; DROP TABLE IF EXISTS seal;")
        .unwrap();
    let message = refused(&h.config).await;
    assert!(
        message.contains("truncated, rolled back or wiped"),
        "{message}"
    );

    // The operator starts a new log, explicitly: its first entry says so
    // and names the previous head.
    let running = server::start_with(&h.config, StartOptions { new_log: true })
        .await
        .unwrap();
    running.shutdown().await;
    let log = entries(&h.config);
    match &log[0].event {
        AuditEvent::NewLog {
            previous_head: Some(note),
            found,
        } => {
            assert_eq!(note.lines().nth(1), Some(size.to_string().as_str()));
            assert!(found.contains("head file"), "{found}");
        }
        other => panic!("the new log does not start with its new-log entry: {other:?}"),
    }
    // The new log then restarts like any other; the switch is refused when
    // there is nothing to start anew.
    server::start(&h.config).await.unwrap().shutdown().await;
    let again = server::start_with(&h.config, StartOptions { new_log: true }).await;
    assert!(
        matches!(&again, Err(StartError::Integrity(_))),
        "{:?}",
        again.as_ref().err()
    );

    // The database file itself deleted: refused as well.
    remove_store(&h.config.store);
    let message = refused(&h.config).await;
    assert!(
        message.contains("truncated, rolled back or wiped"),
        "{message}"
    );
}

#[tokio::test]
async fn a_deleted_item_row_is_reported_audited_and_not_a_silent_404() {
    let (mut h, acked, pending) = exchanged().await;
    let rabat = h.station("police/lo/rabat");
    let third = rabat
        .submit(&item(&rabat, "three", &["vsse/analysis/ct"], "third"))
        .await
        .unwrap()
        .receipt
        .item_ref;
    stop(&mut h).await;
    let conn = db(&h.config);
    // The pending item's rows go altogether; the third one loses only its
    // inbox entry.
    conn.execute(
        "DELETE FROM inbox WHERE item_seq IN (SELECT seq FROM items WHERE item_ref IN (?1, ?2))",
        params![pending, third],
    )
    .unwrap();
    conn.execute("DELETE FROM items WHERE item_ref = ?1", params![pending])
        .unwrap();
    drop(conn);

    h.running = Some(server::start(&h.config).await.unwrap());
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let spoc = h.station("police/spoc");
    let lost = |r: Result<(), ClientError>| match r {
        Err(ClientError::Refused(p)) => {
            assert_eq!(p.slug(), "item-lost", "{p:?}");
            assert_eq!(p.status, 500);
        }
        other => panic!("expected item-lost, got {other:?}"),
    };
    lost(vsse.fetch(&pending).await.map(|_| ()));
    lost(vsse.ack(&pending).await.map(|_| ()));
    lost(rabat.receipt(&pending).await.map(|_| ()));
    lost(vsse.fetch(&third).await.map(|_| ()));
    // The item whose rows are intact still answers; a principal it does not
    // concern learns nothing new.
    rabat.receipt(&acked).await.unwrap();
    rabat.receipt(&third).await.unwrap();
    match spoc.fetch(&pending).await {
        Err(ClientError::Refused(p)) => assert_eq!(p.slug(), "not-found"),
        other => panic!("{other:?}"),
    }
    stop(&mut h).await;

    let reported = entries(&h.config)
        .into_iter()
        .find_map(|e| match e.event {
            AuditEvent::StoreInconsistency {
                items_lost,
                deliveries_lost,
                item_refs,
            } => Some((items_lost, deliveries_lost, item_refs)),
            _ => None,
        })
        .expect("no store-inconsistency entry on the log");
    assert_eq!((reported.0, reported.1), (1, 1));
    let mut expected = vec![pending, third];
    expected.sort();
    assert_eq!(reported.2, expected);
}

#[tokio::test]
async fn an_unedited_store_restarts_many_times() {
    let (mut h, _, pending) = exchanged().await;
    stop(&mut h).await;
    for round in 0..4 {
        h.running = Some(server::start(&h.config).await.unwrap());
        let rabat = h.station("police/lo/rabat");
        let vsse = h.station("vsse/analysis/ct");
        let r = rabat
            .submit(&item(
                &rabat,
                &format!("round-{round}"),
                &["vsse/analysis/ct"],
                "again",
            ))
            .await
            .unwrap()
            .receipt
            .item_ref;
        vsse.fetch(&r).await.unwrap();
        vsse.ack(&r).await.unwrap();
        stop(&mut h).await;
    }
    h.running = Some(server::start(&h.config).await.unwrap());
    let vsse = h.station("vsse/analysis/ct");
    vsse.fetch(&pending).await.unwrap();
    assert!(!entries(&h.config)
        .iter()
        .any(|e| matches!(e.event, AuditEvent::StoreInconsistency { .. })));
    stop(&mut h).await;
}

#[tokio::test]
async fn an_entry_changed_with_its_leaf_hash_refuses_to_start() {
    let (mut h, _, _) = exchanged().await;
    stop(&mut h).await;
    // Whoever changes an entry may also write its leaf hash, so that the
    // entries and the tree agree: the seal (and the checkpoints) do not.
    let mut all = entries(&h.config);
    let index = all
        .iter()
        .position(|e| matches!(e.event, AuditEvent::ItemAccepted { .. }))
        .unwrap();
    match &mut all[index].event {
        AuditEvent::ItemAccepted { purpose, .. } => *purpose = "training".into(),
        _ => unreachable!(),
    }
    let bytes = all[index].encode();
    db(&h.config)
        .execute(
            "UPDATE audit SET entry = ?1, leaf = ?2 WHERE idx = ?3",
            params![
                bytes,
                &passerelle::audit::rfc9162::leaf_hash(&bytes)[..],
                index as i64
            ],
        )
        .unwrap();
    let message = refused(&h.config).await;
    assert!(message.contains("were changed"), "{message}");
}
