//! The embedded store's own promises beyond the contract: its reads do not
//! wait for its writer (they have their own connections, WAL mode lets
//! them read the last commit while a write transaction is open).

use passerelle::store::conformance::{item, item_batch};
use passerelle::store::{self, Outcome, Sealer, StoreConfig, TreeHead};
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

#[test]
fn a_closed_store_is_whole_in_its_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite3");
    let config = StoreConfig::from_setting(&db);
    let store = store::open(&config, Arc::new(key(dir.path()))).unwrap();
    for outcome in store
        .append(vec![item_batch(item("one", 1), 1, 0)])
        .unwrap()
    {
        appended(&outcome.unwrap());
    }
    // A read leaves a read connection open beside the writer.
    assert_eq!(store.size().unwrap(), 1);
    drop(store);
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    assert!(
        !std::path::Path::new(&wal).exists(),
        "the last connection to close copied the WAL into the file"
    );
    // A copy of the file alone (as a backup after a clean stop) holds it.
    let copy = dir.path().join("copy.sqlite3");
    std::fs::copy(&db, &copy).unwrap();
    let items: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(items, 1);
}
