//! Gateways on PostgreSQL end to end: real gateways on loopback with the
//! example PKI, their store a database of a real PostgreSQL server (see
//! `tests/common/postgres.rs`), and `passerelle db migrate`. Without
//! PostgreSQL these tests fail, saying what is missing.

mod common;
#[path = "common/postgres.rs"]
mod postgres_server;

use common::{item, Harness};
use passerelle::store::StoreConfig;
use postgres_server::PgServer;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Two instances on one database, as an operator runs them behind one
/// address: an item submitted to one is delivered and acknowledged
/// through the other, a resubmission to the other gets the first receipt,
/// and both append to one audit log that one seal covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_inboxes_ids_and_one_audit_log() {
    let server = PgServer::start();
    let url = server.new_database();
    let mut a = Harness::start_with(|c| c.store = PathBuf::from(&url)).await;
    let mut config_b = a.config.clone();
    config_b.listen = "127.0.0.1:0".parse().unwrap();
    let b = passerelle::server::start(&config_b).await.unwrap();

    let rabat_a = a.station("police/lo/rabat");
    let mut rabat_b_config = a.client_config("police/lo/rabat");
    rabat_b_config.gateway = b.addr.to_string();
    let rabat_b = passerelle::client::Station::new(rabat_b_config).unwrap();
    let mut vsse_config = a.client_config("vsse/analysis/ct");
    vsse_config.gateway = b.addr.to_string();
    let vsse_b = passerelle::client::Station::new(vsse_config).unwrap();

    let signed = item(&rabat_a, "two-1", &["vsse/analysis/ct"], "across instances");
    let receipt = rabat_a.submit(&signed).await.unwrap().receipt;
    // The same item again, through the other instance: the database
    // decides it is the same one.
    let again = rabat_b.submit(&signed).await.unwrap().receipt;
    assert_eq!(again, receipt, "a resubmission to the other instance");

    let inbox = vsse_b.inbox(Duration::from_secs(5)).await.unwrap();
    assert_eq!(inbox.len(), 1, "the other instance sees the inbox");
    assert_eq!(inbox[0].item_ref, receipt.item_ref);
    let delivered = vsse_b.fetch(&receipt.item_ref).await.unwrap();
    assert_eq!(delivered.portions[0].portion.body.0, b"across instances");
    assert_eq!(vsse_b.ack(&receipt.item_ref).await.unwrap().status, "acked");
    // Sent through B after A's appends: B's tree caught up on A's.
    let second = rabat_b
        .submit(&item(&rabat_b, "two-2", &["vsse/analysis/ct"], "second"))
        .await
        .unwrap()
        .receipt;
    assert!(second.audit_index > receipt.audit_index);

    let size = b.gateway.store().size().unwrap();
    assert_eq!(
        a.running.as_ref().unwrap().gateway.store().size().unwrap(),
        size
    );
    b.shutdown().await;
    let key = std::sync::Arc::new(
        passerelle::keys::GatewayKey::load(&a.config.audit.key, &a.config.audit.origin).unwrap(),
    );
    a.running.take().unwrap().shutdown().await;
    // One log, gap-free, every entry under the seal, whichever instance
    // appended it.
    let log =
        passerelle::integrity::open_checked(&StoreConfig::from_setting(&PathBuf::from(&url)), key)
            .unwrap();
    assert!(log.head().size >= size);
}

/// A long-poll on one instance wakes when an item for its principal is
/// committed through the other (PostgreSQL's NOTIFY), not at its next
/// look: both instances look again only every 10 minutes, and the
/// long-poll asks to wait 40 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_wakes_on_an_item_committed_on_the_other_instance() {
    let server = PgServer::start();
    let url = server.new_database();
    let a = Harness::start_with(|c| {
        c.store = PathBuf::from(&url);
        c.inbox_recheck_seconds = Some(600);
    })
    .await;
    let mut config_b = a.config.clone();
    config_b.listen = "127.0.0.1:0".parse().unwrap();
    let b = passerelle::server::start(&config_b).await.unwrap();
    let mut vsse_config = a.client_config("vsse/analysis/ct");
    vsse_config.gateway = b.addr.to_string();
    let vsse_b = passerelle::client::Station::new(vsse_config).unwrap();
    let rabat_a = a.station("police/lo/rabat");

    let started = std::time::Instant::now();
    let waiting = tokio::spawn(async move { vsse_b.inbox(Duration::from_secs(40)).await });
    // Give the long-poll time to make its first look (which finds
    // nothing) on B before the item is committed on A. Were it slower, its
    // first look would find the item and the test would pass without
    // proving anything, never fail.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let receipt = rabat_a
        .submit(&item(&rabat_a, "woken", &["vsse/analysis/ct"], "wake up"))
        .await
        .unwrap()
        .receipt;
    let inbox = waiting.await.unwrap().unwrap();
    let waited = started.elapsed();
    assert_eq!(
        inbox.len(),
        1,
        "the long-poll returned empty after {waited:?}"
    );
    assert_eq!(inbox[0].item_ref, receipt.item_ref);
    // Generous: the wait asked for is 40 s, the next look 600 s away.
    assert!(waited < Duration::from_secs(20), "woken after {waited:?}");
    b.shutdown().await;
}

#[test]
fn db_migrate_applies_the_schema_once() {
    let server = PgServer::start();
    let url = server.new_database();
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
    let toml = dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let line = "store = \"data/passerelle.sqlite3\"";
    assert!(text.contains(line));
    std::fs::write(&toml, text.replace(line, &format!("store = \"{url}\""))).unwrap();
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .args(["db", "migrate", "--config"])
            .arg(&toml)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run().contains("applied migration 0001 schema"));
    assert!(
        run().contains("schema up to date"),
        "the second run changes nothing"
    );
}

/// The recheck period is a positive number of seconds, and defaults to a
/// quarter of the lease between 1 and 15 s.
#[test]
fn inbox_recheck_seconds_is_checked_and_defaults_to_a_quarter_lease() {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
    let toml = dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let config = passerelle::config::GatewayConfig::load(&toml).unwrap();
    assert_eq!(config.inbox_recheck(), Duration::from_secs(15));
    let with = |line: &str| {
        std::fs::write(
            &toml,
            text.replace("lease_seconds = 60", &format!("lease_seconds = 60\n{line}")),
        )
        .unwrap();
        passerelle::config::GatewayConfig::load(&toml)
    };
    let err = with("inbox_recheck_seconds = 0").unwrap_err().to_string();
    assert!(
        err.contains("inbox_recheck_seconds must be at least 1"),
        "{err}"
    );
    assert_eq!(
        with("inbox_recheck_seconds = 600").unwrap().inbox_recheck(),
        Duration::from_secs(600)
    );
    assert_eq!(
        with("").unwrap().inbox_recheck(),
        Duration::from_secs(15),
        "a quarter of 60 s, at most 15"
    );
}

/// `passerelle db import` moves an embedded store into PostgreSQL with
/// its audit log, checked before and after; the gateway then runs on
/// PostgreSQL where the embedded one stopped. A store that does not
/// verify, or a database that is not empty, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_import_moves_an_embedded_store_and_its_log_into_postgres() {
    let server = PgServer::start();
    let url = server.new_database();
    let mut h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let first = rabat
        .submit(&item(&rabat, "moved-1", &["vsse/analysis/ct"], "one"))
        .await
        .unwrap()
        .receipt;
    rabat
        .submit(&item(&rabat, "moved-2", &["vsse/analysis/ct"], "two"))
        .await
        .unwrap();
    vsse.fetch(&first.item_ref).await.unwrap();
    vsse.ack(&first.item_ref).await.unwrap();
    h.running.take().unwrap().shutdown().await;
    let sqlite = h.config.store.clone();

    let toml = h.path().join("gateway.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let line = "store = \"data/passerelle.sqlite3\"";
    assert!(text.contains(line));
    std::fs::write(&toml, text.replace(line, &format!("store = \"{url}\""))).unwrap();
    let import = |from: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .args(["db", "import", "--config"])
            .arg(&toml)
            .arg("--from")
            .arg(from)
            .output()
            .unwrap()
    };

    // A copy of the embedded store with an audit entry changed behind the
    // gateway's back is not imported.
    let tampered = h.path().join("tampered.sqlite3");
    std::fs::copy(&sqlite, &tampered).unwrap();
    rusqlite::Connection::open(&tampered)
        .unwrap()
        .execute("UPDATE audit SET entry = X'00' WHERE idx = 1", [])
        .unwrap();
    let out = import(&tampered);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not verify; nothing copied"), "{err}");

    let out = import(&sqlite);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("2 items, 2 deliveries"), "{said}");
    assert!(said.contains("verified"), "{said}");
    // Never into a database that holds anything.
    let out = import(&sqlite);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not empty"), "{err}");

    // The gateway on PostgreSQL goes on where the embedded one stopped:
    // the same log (its head file agrees), inbox and receipts.
    let config = passerelle::config::GatewayConfig::load(&toml).unwrap();
    let running = passerelle::server::start(&config).await.unwrap();
    let at = |principal: &str| {
        passerelle::client::Station::new(h.client_config_at(principal, running.addr)).unwrap()
    };
    let (rabat, vsse) = (at("police/lo/rabat"), at("vsse/analysis/ct"));
    let inbox = vsse.inbox(Duration::ZERO).await.unwrap();
    assert_eq!(inbox.len(), 1, "the acknowledged item stays acknowledged");
    assert_eq!(inbox[0].item_id, "moved-2");
    assert_eq!(rabat.receipt(&first.item_ref).await.unwrap().receipt, first);
    let third = rabat
        .submit(&item(&rabat, "moved-3", &["vsse/analysis/ct"], "three"))
        .await
        .unwrap()
        .receipt;
    assert!(third.audit_index > first.audit_index);
    running.shutdown().await;
}
