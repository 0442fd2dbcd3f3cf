//! Two gateway instances on one PostgreSQL database, one killed with
//! SIGKILL in the middle of a stream of submissions and deliveries.
//!
//! Both instances are the real `passerelle serve` binary as child
//! processes, each with its own configuration (its own port and head file,
//! as on two machines), the same key and the same database. Stations are
//! spread over both; when an instance dies its stations move to the other,
//! as they would behind the balancer, and resubmit what was not answered.
//! Afterwards: every answered submission is there and delivered to every
//! recipient, no item was delivered twice to one recipient while a lease
//! ran, and the exported log verifies with `passerelle audit verify`.
//! Without PostgreSQL this test fails, saying what is missing.

mod common;
#[path = "common/instances.rs"]
mod instances;
#[path = "common/postgres.rs"]
mod postgres_server;

use instances::Instances;
use passerelle::audit::event::{AuditEntry, AuditEvent};
use passerelle::client::Station;
use passerelle::domain::item::SignedItem;
use postgres_server::PgServer;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Items each sender sends.
const ITEMS: usize = 60;
/// Short, so that what the killed instance leased comes back soon.
const LEASE_SECONDS: i64 = 2;
const RECIPIENTS: [&str; 2] = ["vsse/analysis/ct", "vsse/desk/ci"];

/// A station that moves to the surviving instance when its own dies, as
/// behind the balancer: `at` is shared, `alive[i]` says whether instance
/// `i` still runs.
struct Roaming {
    stations: [Station; 2],
    home: usize,
    alive: Arc<[AtomicBool; 2]>,
}

impl Roaming {
    fn current(&self) -> &Station {
        if self.alive[self.home].load(Ordering::Acquire) {
            &self.stations[self.home]
        } else {
            &self.stations[1 - self.home]
        }
    }
}

/// Sends `items` in order; an unanswered submission is sent again (to the
/// survivor, once its instance is dead) until answered. Returns the ids
/// answered.
async fn send(from: Roaming, items: Vec<(String, SignedItem)>, answered: Arc<AtomicUsize>) {
    for (id, item) in items {
        let mut tries = 0;
        loop {
            tries += 1;
            match from.current().submit(&item).await {
                Ok(r) => {
                    assert_eq!(r.receipt.item_id, id);
                    answered.fetch_add(1, Ordering::AcqRel);
                    break;
                }
                Err(e) => {
                    assert!(tries < 100, "{id} never answered: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Takes the inbox until `expected` item ids were fetched and acknowledged
/// (bounded: at most 600 rounds). Returns each acknowledged id.
async fn receive(at: Roaming, expected: usize, acked: Arc<AtomicUsize>) -> BTreeSet<String> {
    let mut done = BTreeSet::new();
    // The first item fetched is left unacknowledged, as by a station that
    // dies holding it: it must come back once its lease ran out, not before.
    let mut held_back = false;
    for _ in 0..600 {
        if done.len() == expected {
            return done;
        }
        let Ok(inbox) = at.current().inbox(Duration::from_secs(1)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        for entry in inbox {
            // Fetched but not acknowledged when its instance died: the
            // lease runs out and the item comes back, through the other.
            if at.current().fetch(&entry.item_ref).await.is_err() {
                continue;
            }
            if !held_back {
                held_back = true;
                continue;
            }
            if at.current().ack(&entry.item_ref).await.is_ok() && done.insert(entry.item_id) {
                acked.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
    panic!(
        "{} of {expected} items acknowledged after 600 rounds",
        done.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_instances_loses_nothing_and_the_log_verifies() {
    let server = PgServer::start();
    let url = server.new_database();
    let s = Instances::new(&url, LEASE_SECONDS as u64);
    let [mut a, mut b] = s.start_both().await;

    let alive = Arc::new([AtomicBool::new(true), AtomicBool::new(true)]);
    let roaming = |principal: &str, home: usize| Roaming {
        stations: [s.station(principal, 0), s.station(principal, 1)],
        home,
        alive: alive.clone(),
    };
    // Senders and recipients spread over both instances.
    let senders = [("police/lo/rabat", 0), ("police/spoc", 1)];
    let answered = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut sent = BTreeSet::new();
    let mut sending = Vec::new();
    for (principal, home) in senders {
        let from = roaming(principal, home);
        // Signed once: a resubmission is the same item.
        let items: Vec<_> = (0..ITEMS)
            .map(|n| {
                let id = format!("{}-{n}", principal.replace('/', "-"));
                let item = common::item(from.current(), &id, &RECIPIENTS, "kill test");
                (id, item)
            })
            .collect();
        sent.extend(items.iter().map(|(id, _)| id.clone()));
        sending.push(tokio::spawn(send(from, items, answered.clone())));
    }
    let mut receiving = Vec::new();
    for (principal, home) in [(RECIPIENTS[0], 0), (RECIPIENTS[1], 1)] {
        receiving.push(tokio::spawn(receive(
            roaming(principal, home),
            sent.len(),
            acked.clone(),
        )));
    }

    // In the middle of the stream: some items answered and some delivered,
    // most not yet.
    for _ in 0..600 {
        if answered.load(Ordering::Acquire) >= 20 && acked.load(Ordering::Acquire) >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (before_answered, before_acked) = (
        answered.load(Ordering::Acquire),
        acked.load(Ordering::Acquire),
    );
    assert!(
        before_answered >= 20 && before_acked >= 10,
        "the stream did not get going ({before_answered} answered, {before_acked} acknowledged)"
    );
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    alive[0].store(false, Ordering::Release);
    assert!(
        before_answered < 2 * ITEMS,
        "every item was answered before the kill: the kill proves nothing"
    );

    for t in sending {
        t.await.unwrap();
    }
    for t in receiving {
        // Every recipient acknowledged every item sent (each was answered).
        assert_eq!(t.await.unwrap(), sent);
    }
    b.kill().unwrap();
    b.wait().unwrap();

    // The log: each item accepted once; for each recipient, a delivery
    // again only once the lease of the one before ran out.
    let config = passerelle::config::GatewayConfig::load(&s.configs[0]).unwrap();
    let key = Arc::new(
        passerelle::keys::GatewayKey::load(&config.audit.key, &config.audit.origin).unwrap(),
    );
    let log = passerelle::integrity::open_checked(
        &passerelle::store::StoreConfig::from_setting(&config.store),
        key,
    )
    .unwrap();
    let store = log.store();
    let mut accepted = BTreeSet::new();
    let mut last_delivery: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut redelivered = 0;
    for bytes in store.audit_entries(0, log.head().size).unwrap() {
        let entry = AuditEntry::decode(&bytes).unwrap();
        match entry.event {
            AuditEvent::ItemAccepted { item_id, .. } => {
                assert!(accepted.insert(item_id.clone()), "{item_id} accepted twice");
            }
            AuditEvent::Delivered {
                item_ref, decision, ..
            } => {
                let key = (item_ref, decision.recipient.to_string());
                if let Some(before) = last_delivery.insert(key.clone(), entry.time) {
                    redelivered += 1;
                    assert!(
                        entry.time >= before + LEASE_SECONDS,
                        "{key:?} delivered at {} while its lease from {before} ran",
                        entry.time
                    );
                }
            }
            _ => {}
        }
    }
    assert_eq!(accepted, sent);
    assert!(
        redelivered >= RECIPIENTS.len(),
        "each recipient's held-back item was delivered again"
    );
    eprintln!(
        "{before_answered} answered and {before_acked} acknowledged before the kill; \
         {redelivered} deliveries again after a lease ran out"
    );
    drop(log);

    // The exported log verifies.
    let export = s.dir.path().join("export");
    let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["audit", "export", "--config"])
        .arg(&s.configs[1])
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["audit", "verify"])
        .arg(&export)
        .arg("--key")
        .arg(s.dir.path().join("gateway/audit.vkey"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified"));
}
