//! The store contract's conformance suite on the embedded SQLite backend,
//! opened by configuration as the gateway opens it. The PostgreSQL backend
//! runs the same suite against a real server.

use passerelle::store::{self, conformance, Store, StoreConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn sqlite_keeps_every_promise_of_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(
        passerelle::keys::GatewayKey::generate(&dir.path().join("key.pem"), "test.example/audit")
            .unwrap(),
    );
    let n = AtomicUsize::new(0);
    conformance::run(|| -> Arc<dyn Store> {
        let file = dir
            .path()
            .join(format!("store-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        store::open(&StoreConfig::from_setting(&file), key.clone()).unwrap()
    });
}

#[test]
fn sqlite_handles_on_one_file_share_one_log_and_one_seal() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(
        passerelle::keys::GatewayKey::generate(&dir.path().join("key.pem"), "test.example/audit")
            .unwrap(),
    );
    let config = StoreConfig::from_setting(&dir.path().join("shared.db"));
    conformance::run_shared(|| store::open(&config, key.clone()).unwrap());
    // Each handle sealed what its transactions left, catching up on the
    // others' appends: the seal covers the whole log, with its root.
    passerelle::integrity::open_checked(&config, key).unwrap();
}
