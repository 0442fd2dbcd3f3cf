//! The store contract's conformance suite on the PostgreSQL backend,
//! against a real server started for the test (see
//! `tests/common/postgres.rs`), opened by configuration as the gateway
//! opens it. Without PostgreSQL these tests fail, saying what is missing.

#[path = "common/postgres.rs"]
mod postgres_server;

use passerelle::store::{self, conformance, Store, StoreConfig};
use postgres_server::PgServer;
use std::path::Path;
use std::sync::Arc;

fn key(dir: &Path) -> Arc<passerelle::keys::GatewayKey> {
    Arc::new(
        passerelle::keys::GatewayKey::generate(&dir.join("key.pem"), "test.example/audit").unwrap(),
    )
}

fn config(url: &str) -> StoreConfig {
    let config = StoreConfig::from_setting(Path::new(url));
    assert!(
        matches!(config, StoreConfig::Postgres(_)),
        "a postgres:// store setting names the PostgreSQL backend"
    );
    config
}

#[test]
fn postgres_keeps_every_promise_of_the_store_contract() {
    let server = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    conformance::run(|| -> Arc<dyn Store> {
        store::open(&config(&server.new_database()), key.clone()).unwrap()
    });
}

#[test]
fn postgres_handles_on_one_database_share_one_log_and_one_seal() {
    let server = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    // Each handle has its own connections, as each gateway instance does.
    let config = config(&server.new_database());
    conformance::run_shared(|| store::open(&config, key.clone()).unwrap());
    // Each handle sealed what its transactions left, catching up on the
    // others' appends under the sequencer: the seal covers the whole log.
    passerelle::integrity::open_checked(&config, key).unwrap();
}

#[test]
fn migrations_are_versioned_and_apply_once() {
    let server = PgServer::start();
    let config = config(&server.new_database());
    assert!(
        !store::holds_a_log(&config).unwrap(),
        "an empty database holds no log, and asking does not create the schema"
    );
    assert_eq!(
        store::migrate(&config).unwrap(),
        ["0001 schema", "0002 index under the lock"]
    );
    assert!(
        store::migrate(&config).unwrap().is_empty(),
        "migrating again changes nothing"
    );
    let dir = tempfile::tempdir().unwrap();
    // Opening an up-to-date database applies nothing and works.
    let opened = store::open(&config, key(dir.path())).unwrap();
    assert_eq!(opened.size().unwrap(), 0);
    assert!(!store::holds_a_log(&config).unwrap());
}

/// An entry written behind the gateway's back (here, straight into the
/// database) is not signed over: the next appending transaction, whichever
/// instance runs it, finds the stored log is not the sealed one.
#[test]
fn an_entry_written_behind_the_seal_stops_every_append() {
    use passerelle::audit::event::{AuditEvent, BoundedEntry};
    use passerelle::store::{Batch, StoreError};
    let server = PgServer::start();
    let url = server.new_database();
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&config(&url), key(dir.path())).unwrap();
    let entry = |n: i64| {
        BoundedEntry::new(
            n,
            AuditEvent::Acknowledged {
                item_ref: format!("entry-{n}"),
                recipient: passerelle::domain::principal::PrincipalId::new("police/spoc").unwrap(),
            },
        )
        .unwrap()
    };
    store.append(vec![Batch::entries(vec![entry(0)])]).unwrap()[0]
        .as_ref()
        .unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .execute(
            "INSERT INTO audit (idx, entry, leaf) VALUES (1, $1, $2)",
            &[&entry(1).bytes(), &&[0u8; 32][..]],
        )
        .unwrap();
    assert!(
        matches!(
            store.append(vec![Batch::entries(vec![entry(2)])]),
            Err(StoreError::Invariant(_))
        ),
        "an append over entries the seal does not cover is refused"
    );
}

/// A second instance starting (or `audit export` opening the store) while
/// another instance appends: every appending transaction seals what it
/// wrote, so what is stored agrees with a seal at every moment, and the
/// check must not call the log tampered because it read the entries and the
/// seal at different moments.
#[test]
fn a_store_checked_while_another_instance_appends_is_not_called_tampered() {
    use passerelle::audit::event::{AuditEvent, BoundedEntry};
    use passerelle::store::Batch;
    let server = PgServer::start();
    let config = config(&server.new_database());
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let writer = store::open(&config, key.clone()).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appending = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut n = 0i64;
            // Bounded: stops when the checks are over, or after 5,000 appends.
            while !done.load(std::sync::atomic::Ordering::Relaxed) && n < 5_000 {
                let entry = BoundedEntry::new(
                    n,
                    AuditEvent::Acknowledged {
                        item_ref: format!("entry-{n}"),
                        recipient: passerelle::domain::principal::PrincipalId::new("police/spoc")
                            .unwrap(),
                    },
                )
                .unwrap();
                writer.append(vec![Batch::entries(vec![entry])]).unwrap()[0]
                    .as_ref()
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let mut checks = Vec::new();
    for _ in 0..30 {
        checks.push(passerelle::integrity::open_checked(&config, key.clone()).map(|_| ()));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let appended = appending.join().unwrap();
    assert!(
        appended > 0,
        "the other instance appended while the checks ran"
    );
    for (i, check) in checks.iter().enumerate() {
        assert!(check.is_ok(), "check {i} of 30: {:?}", check.as_ref().err());
    }
}

/// A group commit's round trips do not grow with its items: the items of
/// one call go in one statement, their inbox rows with them, and all their
/// entries in one, with the items' acceptance indices. Each statement that writes takes a command id of its
/// own in the transaction (`cmin`), so the database itself tells which
/// statement wrote each row.
#[test]
fn a_group_commit_writes_all_its_items_in_one_statement() {
    use passerelle::store::conformance::{item, item_batch};
    let server = PgServer::start();
    let url = server.new_database();
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&config(&url), key(dir.path())).unwrap();
    let batches = (0..40u8)
        .map(|n| {
            item_batch(
                item(&format!("item-{n}"), n),
                1 + u64::from(n % 3),
                100 * u64::from(n),
            )
        })
        .collect();
    for r in store.append(batches).unwrap() {
        assert!(matches!(
            r.unwrap(),
            passerelle::store::Outcome::Appended(_)
        ));
    }
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut commands = |table: &str| -> Vec<i64> {
        client
            .query(
                &format!("SELECT DISTINCT cmin::TEXT::BIGINT FROM {table} ORDER BY 1"),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let inbox = commands("inbox");
    assert_eq!(
        inbox.len(),
        1,
        "40 items' inbox rows in one statement, not {inbox:?}"
    );
    let audit = commands("audit");
    assert_eq!(
        audit.len(),
        1,
        "their entries in one statement, not {audit:?}"
    );
    assert!(
        inbox < audit,
        "the items and their inbox rows come before the entries (and the sequencer's lock)"
    );
    // Each item's row as it stands was last written by the statement that
    // gave it its acceptance index: the entries'.
    assert_eq!(commands("items"), audit, "their indices with the entries");
}

/// The sequencer's advisory lock (`store/postgres.rs`): "passerel" in ASCII.
const SEQUENCER_LOCK: i64 = 0x7061_7373_6572_656c;

/// Backends of the database `url` waiting on a lock of kind `event`
/// (`advisory`, `transactionid`), as `pg_stat_activity` shows them.
fn waiting_on(watcher: &mut postgres::Client, event: &str) -> i64 {
    watcher
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = $1",
            &[&event],
        )
        .unwrap()
        .get(0)
}

/// An instance writes a call's items before it takes the sequencer's lock,
/// so that other instances wait for its index, not for its items. A copy
/// of such an item reaching another instance meanwhile waits on the
/// unique constraint for the first copy's commit, and is then answered
/// as a duplicate with the first copy's receipt: the database still
/// decides once. Here the test holds the sequencer, so that instance A's
/// item stays written and uncommitted while instance B's copy arrives.
#[test]
fn a_copy_reaching_another_instance_while_the_first_waits_for_the_sequencer_is_a_duplicate() {
    use passerelle::store::Outcome;
    let server = PgServer::start();
    let url = server.new_database();
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path());
    let config = config(&url);
    let a = store::open(&config, key.clone()).unwrap();
    let b = store::open(&config, key).unwrap();
    let mut holder = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&SEQUENCER_LOCK])
        .unwrap();
    let mut watcher = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let first = std::thread::spawn(move || {
        a.append(vec![conformance::item_batch(
            conformance::item("twice", 7),
            2,
            10,
        )])
    });
    // Generous bounds: each wait is met within milliseconds.
    let waits_for = |watcher: &mut postgres::Client, event: &str, what: &str| {
        for _ in 0..600 {
            if waiting_on(watcher, event) == 1 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{what}");
    };
    waits_for(
        &mut watcher,
        "advisory",
        "instance A waits for the sequencer",
    );
    let second = std::thread::spawn(move || {
        b.append(vec![conformance::item_batch(
            conformance::item("twice", 7),
            2,
            20,
        )])
    });
    waits_for(
        &mut watcher,
        "transactionid",
        "instance B's copy waits for instance A's uncommitted item, not for the sequencer: \
         A wrote its item before taking the lock",
    );
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&SEQUENCER_LOCK])
        .unwrap();
    let first = first.join().unwrap().unwrap().remove(0).unwrap();
    let second = second.join().unwrap().unwrap().remove(0).unwrap();
    let stored = match first {
        Outcome::Appended(appended) => appended,
        other => panic!("the first copy is stored, got {other:?}"),
    };
    match second {
        Outcome::Duplicate(receipt) => assert_eq!(
            receipt.get().audit_index,
            stored.get().first(),
            "the duplicate is answered with the first copy's receipt and index"
        ),
        other => panic!("the second copy is a duplicate, got {other:?}"),
    }
    let rows: i64 = watcher
        .query_one("SELECT count(*) FROM items WHERE item_id = 'twice'", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "one copy stored");
    let audited: i64 = watcher
        .query_one("SELECT count(*) FROM audit", &[])
        .unwrap()
        .get(0);
    assert_eq!(audited, 2, "only the first copy's entries are in the log");
    let index: i64 = watcher
        .query_one("SELECT audit_index FROM items WHERE item_id = 'twice'", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        index, 0,
        "the item's acceptance index, written under the lock"
    );
}
