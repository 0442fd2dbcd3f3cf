//! The embedded store's own promises beyond the contract: its reads do not
//! wait for its writer (they have their own connections, WAL mode lets
//! them read the last commit while a write transaction is open), and each
//! sender certificate is stored once, however many items carry it, with
//! databases written the earlier way (a certificate in every item's row)
//! still opening and reading the exact certificates they held.

use passerelle::store::conformance::{item, item_batch};
use passerelle::store::{self, Outcome, Sealer, Store, StoreConfig, TreeHead};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A bound no read on a healthy machine comes near: the test fails on it
/// only when a read waits for the writer, which holds it forever.
const GENEROUS: Duration = Duration::from_secs(30);

/// The gateway's key as the store's sealer, which, once armed, stops the
/// next seal (inside the writer's open transaction) until released.
struct Gate {
    key: passerelle::keys::GatewayKey,
    armed: AtomicBool,
    entered: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl Sealer for Gate {
    fn seal(&self, head: TreeHead) -> Result<String, String> {
        if self.armed.swap(false, Ordering::SeqCst) {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self.release.lock().unwrap().recv();
        }
        self.key.seal(head)
    }
    fn unseal(&self, note: &str) -> Result<TreeHead, String> {
        self.key.unseal(note)
    }
}

fn key(dir: &std::path::Path) -> passerelle::keys::GatewayKey {
    passerelle::keys::GatewayKey::generate(&dir.join("key.pem"), "test.example/audit").unwrap()
}

fn appended(outcome: &Outcome) {
    assert!(
        matches!(outcome, Outcome::Appended(_)),
        "appended: {outcome:?}"
    );
}

#[test]
fn reads_do_not_wait_for_an_open_write_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let gate = Arc::new(Gate {
        key: key(dir.path()),
        armed: AtomicBool::new(false),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    });
    let config = StoreConfig::from_setting(&dir.path().join("s.sqlite3"));
    let store = store::open(&config, gate.clone()).unwrap();
    for outcome in store
        .append(vec![item_batch(item("one", 1), 1, 0)])
        .unwrap()
    {
        appended(&outcome.unwrap());
    }

    // The writer opens its transaction, writes the second item and stops
    // in the seal, before its commit.
    gate.armed.store(true, Ordering::SeqCst);
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.append(vec![item_batch(item("two", 2), 1, 1)]))
    };
    entered.recv_timeout(GENEROUS).expect("the writer seals");

    // Every kind of read, from another thread, while the transaction is
    // open: each returns, and sees the last commit only.
    let (done_tx, done) = channel();
    {
        let store = store.clone();
        std::thread::spawn(move || {
            let ct = passerelle::domain::principal::PrincipalId::new("vsse/analysis/ct").unwrap();
            let sender =
                passerelle::domain::principal::PrincipalId::new("police/lo/rabat").unwrap();
            let one = item("one", 1).item_ref;
            let read = (
                store.size().unwrap(),
                store.pending(&ct, 10, 10).unwrap().len(),
                store.peek(&ct, &one).unwrap().is_some(),
                store.receipt(&sender, &one).unwrap().is_some(),
                store.leaf_hashes(0, 1).unwrap().len(),
                store.seal().unwrap().is_some(),
            );
            let _ = done_tx.send(read);
        });
    }
    let read = done.recv_timeout(GENEROUS);
    // Let the writer finish whatever the outcome, then judge.
    release.send(()).unwrap();
    let written = writer.join().unwrap().unwrap();
    let read = read.expect("reads returned while the writer's transaction was open");
    assert_eq!(
        read,
        (1, 1, true, true, 1, true),
        "the reads saw the last commit, not the open transaction"
    );
    for outcome in written {
        appended(&outcome.unwrap());
    }
    // A read that starts after the commit returned sees it.
    assert_eq!(store.size().unwrap(), 2);
    let ct = passerelle::domain::principal::PrincipalId::new("vsse/analysis/ct").unwrap();
    assert_eq!(store.pending(&ct, 10, 10).unwrap().len(), 2);
}

/// Three items from one sender: two carry one certificate, the third
/// another (as after a renewal).
fn three_items() -> Vec<passerelle::store::NewItem> {
    let mut items = vec![item("a", 1), item("b", 2), item("c", 3)];
    items[0].sender_certificate = vec![0x30, 1, 1, 1];
    items[1].sender_certificate = vec![0x30, 1, 1, 1];
    items[2].sender_certificate = vec![0x30, 2, 2, 2, 2];
    items
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// Each item's certificate as a recipient's fetch reads it.
fn certificates(store: &dyn Store, items: &[passerelle::store::NewItem]) -> Vec<Vec<u8>> {
    let ct = passerelle::domain::principal::PrincipalId::new("vsse/analysis/ct").unwrap();
    items
        .iter()
        .map(|i| {
            store
                .peek(&ct, &i.item_ref)
                .unwrap()
                .expect("the item")
                .sender_certificate
        })
        .collect()
}

#[test]
fn each_sender_certificate_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite3");
    let store = store::open(&StoreConfig::from_setting(&db), Arc::new(key(dir.path()))).unwrap();
    let items = three_items();
    for (n, i) in items.iter().enumerate() {
        for outcome in store
            .append(vec![item_batch(i.clone(), 1, n as u64)])
            .unwrap()
        {
            appended(&outcome.unwrap());
        }
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM certificates"), 2);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM pragma_table_info('items') WHERE name = 'sender_cert'"
        ),
        0,
        "no certificate in the item rows"
    );
    let stored = certificates(store.as_ref(), &items);
    let sent: Vec<_> = items.iter().map(|i| i.sender_certificate.clone()).collect();
    assert_eq!(stored, sent, "each item reads back its exact certificate");
}

/// The items table as versions before the certificates table wrote it.
const ITEMS_WITH_CERTIFICATES: &str = "
PRAGMA foreign_keys = OFF;
CREATE TABLE items_old (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    item_ref     TEXT NOT NULL UNIQUE,
    sender       TEXT NOT NULL,
    item_id      TEXT NOT NULL,
    digest       BLOB NOT NULL,
    priority     INTEGER NOT NULL,
    accepted_at  INTEGER NOT NULL,
    expires_at   INTEGER,
    envelope     BLOB NOT NULL,
    sender_cert  BLOB NOT NULL,
    portions     BLOB NOT NULL,
    receipt      BLOB NOT NULL,
    purge_after  INTEGER,
    purged_at    INTEGER,
    audit_index  INTEGER,
    UNIQUE (sender, item_id)
);
INSERT INTO items_old
    SELECT i.seq, i.item_ref, i.sender, i.item_id, i.digest, i.priority, i.accepted_at,
           i.expires_at, i.envelope, c.der, i.portions, i.receipt, i.purge_after,
           i.purged_at, i.audit_index
    FROM items i JOIN certificates c ON c.digest = i.cert_digest;
DROP TABLE items;
ALTER TABLE items_old RENAME TO items;
DROP TABLE certificates;
";

#[test]
fn a_database_with_a_certificate_in_every_item_row_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite3");
    let config = StoreConfig::from_setting(&db);
    let items = three_items();
    let sent: Vec<_> = items.iter().map(|i| i.sender_certificate.clone()).collect();
    let seal = {
        let store = store::open(&config, Arc::new(key(dir.path()))).unwrap();
        for (n, i) in items.iter().enumerate() {
            for outcome in store
                .append(vec![item_batch(i.clone(), 1, n as u64)])
                .unwrap()
            {
                appended(&outcome.unwrap());
            }
        }
        store.seal().unwrap()
    };
    // What a database of the previous version holds: each item's
    // certificate in its own row, no certificates table.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(ITEMS_WITH_CERTIFICATES)
        .unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM items WHERE length(sender_cert) > 0"
        ),
        3
    );

    let key = passerelle::keys::GatewayKey::load(&dir.path().join("key.pem"), "test.example/audit")
        .unwrap();
    let store = store::open(&config, Arc::new(key)).unwrap();
    assert_eq!(
        certificates(store.as_ref(), &items),
        sent,
        "the exact certificates of the earlier rows"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM certificates"), 2);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM pragma_table_info('items') WHERE name = 'sender_cert'"
        ),
        0,
        "the copies are gone"
    );
    assert_eq!(store.seal().unwrap(), seal, "the log untouched");
    // The migrated store takes new items as a new one does.
    let mut next = item("d", 4);
    next.sender_certificate = sent[0].clone();
    for outcome in store.append(vec![item_batch(next.clone(), 1, 3)]).unwrap() {
        appended(&outcome.unwrap());
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM certificates"), 2);
    assert_eq!(certificates(store.as_ref(), &[next]), vec![sent[0].clone()]);
    // Opening it again changes nothing.
    drop(store);
    passerelle::store::migrate(&config).unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM items"), 4);
}
