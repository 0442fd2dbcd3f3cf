//! The store conformance suite: every promise of [`Store`], checked against
//! a backend through the trait alone.
//!
//! A backend's own test calls [`run`] with a factory of empty stores (the
//! SQLite backend in `tests/store_conformance.rs`; the PostgreSQL backend
//! will do the same against a real server). Each check takes a fresh store
//! and panics with the promise it found broken. This module only calls the
//! trait: it never names a backend, opens files or reads the clock (times
//! are plain numbers). It is a plain public module rather than test-only
//! code so that a backend living in another crate can run it.
//!
//! Over 600 lines: one short check per promise of the contract, kept in
//! one place so that a backend's author reads the whole contract's checks
//! at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Batch, Change, NewItem, Outcome, Store, StoreError, Swept, Unchanged};
use crate::audit::event::{AuditEvent, BoundedEntry};
use crate::audit::rfc9162::leaf_hash;
use crate::domain::item::Priority;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::{item_ref, Receipt};

/// Runs every check, each on a store `make` returns (empty, sealing with
/// any key). Panics on the first promise broken. See also [`run_shared`].
pub fn run(make: impl Fn() -> Arc<dyn Store>) {
    batches_are_atomic(make());
    indices_are_in_order_without_gaps(make());
    leaf_hashes_and_entries_come_by_range(make());
    resubmission_is_idempotent(make());
    an_id_reused_for_other_content_conflicts(make());
    copies_within_one_call_are_decided_in_order(make());
    leases_expire_and_items_are_delivered_again(make());
    an_acknowledgement_is_recorded_once(make());
    a_refusal_takes_the_item_out_of_the_inbox(make());
    expiry_and_purge_are_swept_once_and_purge_keeps_digests(make());
    checkpoints_never_go_back(make());
    concurrent_batches_share_one_log(make());
    gauges_count_open_deliveries_and_overdue_requests(make());
}

/// Runs the checks that need several handles on one database, as several
/// gateway processes have: `open` returns another handle on the same
/// database each time (empty before the first call). Indices stay gap-free
/// and unique across handles, every handle reads the same log, and an item
/// resubmitted through another handle is still a duplicate.
pub fn run_shared(open: impl Fn() -> Arc<dyn Store>) {
    let handles: Vec<Arc<dyn Store>> = (0..3).map(|_| open()).collect();
    let first = appended(
        &one(handles[0].as_ref(), item_batch(item("shared", 1), 2, 0)),
        "shared: first submission",
    );
    match one(handles[1].as_ref(), item_batch(item("shared", 1), 2, 10)) {
        Outcome::Duplicate(r) => assert_eq!(
            r.get().audit_index,
            first.start,
            "shared: the receipt another handle stored"
        ),
        other => panic!("shared: a resubmission through another handle: {other:?}"),
    }
    assert_eq!(
        one(handles[2].as_ref(), item_batch(item("shared", 2), 2, 20)),
        Outcome::Conflict,
        "shared: a conflict through another handle"
    );
    let threads: Vec<_> = handles
        .iter()
        .enumerate()
        .map(|(t, store)| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut taken = Vec::new();
                for c in 0..10u64 {
                    let tag = 1000 + (t as u64 * 10 + c) * 10;
                    for r in store
                        .append(vec![Batch::entries(entries(tag, 1 + c % 2))])
                        .expect("the append call")
                    {
                        taken.push(appended(&r.expect("batch"), "shared: concurrency"));
                    }
                }
                taken
            })
        })
        .collect();
    let mut seen: BTreeSet<u64> = first.clone().collect();
    for t in threads {
        for range in t.join().expect("a thread") {
            for i in range {
                assert!(seen.insert(i), "shared: index {i} given twice");
            }
        }
    }
    let total = seen.len() as u64;
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>(),
        "shared: every index from 0, no gap, across handles"
    );
    let leaves = handles[0].leaf_hashes(0, total).expect("leaf hashes");
    for h in &handles {
        assert_eq!(size(h.as_ref()), total, "shared: every handle sees the log");
        assert_eq!(
            h.leaf_hashes(0, total).expect("leaf hashes"),
            leaves,
            "shared: every handle reads the same leaves"
        );
    }
}

fn who(name: &str) -> PrincipalId {
    PrincipalId::new(name).expect("a valid principal id")
}

/// A distinct audit entry (so that leaf hashes differ).
fn entry(n: u64) -> BoundedEntry {
    BoundedEntry::new(
        n as i64,
        AuditEvent::Acknowledged {
            item_ref: format!("entry-{n}"),
            recipient: who("police/spoc"),
        },
    )
    .expect("a small entry")
}

fn entries(from: u64, n: u64) -> Vec<BoundedEntry> {
    (from..from + n).map(entry).collect()
}

/// An item from `police/lo/rabat` with id `id`, content `content`, to
/// `vsse/analysis/ct` (public for a backend's own tests).
pub fn item(id: &str, content: u8) -> NewItem {
    let sender = who("police/lo/rabat");
    let reference = item_ref(&sender, id);
    NewItem {
        item_ref: reference.clone(),
        sender: sender.clone(),
        item_id: id.into(),
        digest: [content; 32],
        priority: Priority::Routine,
        accepted_at: 1,
        expires_at: None,
        envelope: vec![content; 8],
        sender_certificate: vec![1, 2, 3],
        portions: vec![],
        deliveries: vec![(who("vsse/analysis/ct"), vec![0])],
        receipt: Receipt {
            item_ref: reference,
            item_id: id.into(),
            sender,
            digest: hex::encode([content; 32]),
            accepted_at: 1,
            policy_digest: "policy".into(),
            outcomes: vec![],
            audit_index: 0,
        },
        purge_after: None,
        answer_due: None,
        answers: None,
    }
}

/// `item` with `n_entries` distinct audit entries from `tag` (public for
/// a backend's own tests).
pub fn item_batch(item: NewItem, n_entries: u64, tag: u64) -> Batch {
    Batch {
        change: Change::Item(Box::new(item)),
        entries: entries(tag, n_entries),
    }
}

/// Appends one batch and returns its outcome.
fn one(store: &dyn Store, batch: Batch) -> Outcome {
    let mut results = store.append(vec![batch]).expect("the append call");
    assert_eq!(results.len(), 1, "one result per batch");
    results.remove(0).expect("the batch")
}

/// The indices an outcome appended at; panics if it did not append.
fn appended(outcome: &Outcome, what: &str) -> std::ops::Range<u64> {
    match outcome {
        Outcome::Appended(d) => d.get().indices(),
        other => panic!("{what}: expected the batch appended, got {other:?}"),
    }
}

fn size(store: &dyn Store) -> u64 {
    store.size().expect("the size")
}

fn ct() -> PrincipalId {
    who("vsse/analysis/ct")
}

fn change(store: &dyn Store, change: Change, tag: u64) -> Outcome {
    one(
        store,
        Batch {
            change,
            entries: vec![entry(tag)],
        },
    )
}

/// MUST: a batch is written whole or not at all, and a failing batch does
/// not touch the others of its call.
pub fn batches_are_atomic(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut broken = item("broken", 2);
    // The same recipient twice: the second inbox entry cannot be stored,
    // after the item row was.
    broken.deliveries.push((ct(), vec![0]));
    let results = store
        .append(vec![
            item_batch(item("before", 1), 2, 100),
            item_batch(broken, 2, 200),
            Batch::entries(entries(300, 1)),
            Batch {
                change: Change::Item(Box::new(item("no-entry", 3))),
                entries: vec![],
            },
        ])
        .expect("the append call");
    assert_eq!(results.len(), 4, "one result per batch");
    let first = match &results[0] {
        Ok(o) => appended(o, "atomicity: the batch before"),
        Err(e) => panic!("atomicity: the batch before a failing one failed: {e}"),
    };
    assert!(
        results[1].is_err(),
        "atomicity: an item naming a recipient twice must fail"
    );
    let third = match &results[2] {
        Ok(o) => appended(o, "atomicity: the batch after"),
        Err(e) => panic!("atomicity: the batch after a failing one failed: {e}"),
    };
    assert!(
        results[3].is_err(),
        "atomicity: an item batch without its acceptance entry must fail"
    );
    assert_eq!(first, 0..2);
    assert_eq!(
        third,
        2..3,
        "atomicity: a failed batch takes no index (no gap)"
    );
    assert_eq!(size(store), 3);
    let refs = [item("broken", 2).item_ref, item("no-entry", 3).item_ref];
    assert_eq!(
        store.items_present(&refs).expect("items_present"),
        [false, false],
        "atomicity: a failed batch leaves no item row"
    );
    assert!(
        store
            .pending(&ct(), 10, 10)
            .expect("pending")
            .iter()
            .all(|e| e.item_ref == item("before", 1).item_ref),
        "atomicity: a failed batch leaves no inbox entry"
    );
    assert!(
        store.seal().expect("seal").is_some(),
        "sealed: a transaction that appended stored a seal"
    );
}

/// MUST: indices start at 0, follow commit order, each batch's entries
/// consecutive and in the order given.
pub fn indices_are_in_order_without_gaps(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert_eq!(size(store), 0, "an empty store has no entries");
    let mut next = 0;
    for (round, n) in [1u64, 3, 2, 5].into_iter().enumerate() {
        let results = store
            .append(vec![
                Batch::entries(entries(1000 * round as u64, n)),
                Batch::entries(entries(1000 * round as u64 + 500, 1)),
            ])
            .expect("the append call");
        let a = appended(results[0].as_ref().expect("batch"), "order");
        let b = appended(results[1].as_ref().expect("batch"), "order");
        assert_eq!(a, next..next + n, "order: consecutive from the log's end");
        assert_eq!(b, a.end..a.end + 1, "order: the next batch follows");
        next = b.end;
    }
    assert_eq!(size(store), next);
    let stored = store.audit_entries(0, next).expect("entries");
    // Round 0 took 0 and 1; round 1's first batch, entries 1000..1003,
    // took 2..5.
    assert_eq!(
        [&stored[1], &stored[2], &stored[3]],
        [entry(500).bytes(), entry(1000).bytes(), entry(1001).bytes()],
        "order: the batches in the order given, each one's entries too"
    );
}

/// MUST: leaf hashes and entries by range, exactly the range, each leaf
/// the RFC 9162 hash of its entry; past the end is an error.
pub fn leaf_hashes_and_entries_come_by_range(store: Arc<dyn Store>) {
    let store = store.as_ref();
    one(store, Batch::entries(entries(0, 7)));
    let all = store.audit_entries(0, 7).expect("entries");
    let leaves = store.leaf_hashes(0, 7).expect("leaf hashes");
    assert_eq!((all.len(), leaves.len()), (7, 7));
    for (i, (e, l)) in all.iter().zip(&leaves).enumerate() {
        assert_eq!(
            e.as_slice(),
            entry(i as u64).bytes(),
            "entry {i} as appended"
        );
        assert_eq!(leaf_hash(e), *l, "leaf hash {i} is the entry's");
    }
    assert_eq!(
        store.leaf_hashes(2, 5).expect("a middle range"),
        leaves[2..5],
        "by range: a middle range"
    );
    assert!(store.leaf_hashes(3, 3).expect("empty").is_empty());
    assert!(
        store.leaf_hashes(5, 8).is_err() && store.audit_entries(5, 8).is_err(),
        "by range: past the end is an error, not a shorter answer"
    );
}

/// MUST: the same item (sender, id, digest) again writes nothing and
/// returns the stored receipt with its acceptance entry's index.
pub fn resubmission_is_idempotent(store: Arc<dyn Store>) {
    let store = store.as_ref();
    one(store, Batch::entries(entries(0, 3)));
    let first = appended(&one(store, item_batch(item("same", 1), 2, 10)), "first");
    let results = store
        .append(vec![
            item_batch(item("same", 1), 2, 20),
            item_batch(item("same", 1), 2, 30),
        ])
        .expect("the append call");
    for r in results {
        match r.expect("a duplicate is not an error") {
            Outcome::Duplicate(receipt) => {
                assert_eq!(
                    receipt.get().audit_index,
                    first.start,
                    "idempotent: the stored receipt, with its acceptance entry's index"
                );
                assert_eq!(receipt.get().item_ref, item("same", 1).item_ref);
            }
            other => panic!("idempotent: expected a duplicate, got {other:?}"),
        }
    }
    assert_eq!(size(store), first.end, "idempotent: nothing appended");
    let sender = who("police/lo/rabat");
    let stored = store
        .receipt(&sender, &item("same", 1).item_ref)
        .expect("receipt")
        .expect("the receipt is stored");
    assert_eq!(stored.get().audit_index, first.start);
    assert!(
        store
            .receipt(&ct(), &item("same", 1).item_ref)
            .expect("receipt")
            .is_none(),
        "a receipt is its sender's only"
    );
    assert_eq!(store.pending(&ct(), 10, 10).expect("pending").len(), 1);
}

/// MUST: the same sender and id with other content conflicts and writes
/// nothing.
pub fn an_id_reused_for_other_content_conflicts(store: Arc<dyn Store>) {
    let store = store.as_ref();
    one(store, item_batch(item("id", 1), 1, 0));
    let results = store
        .append(vec![
            item_batch(item("id", 2), 1, 10),
            item_batch(item("fresh", 3), 1, 20),
        ])
        .expect("the append call");
    assert_eq!(
        results[0].as_ref().ok(),
        Some(&Outcome::Conflict),
        "id conflict"
    );
    assert_eq!(
        appended(results[1].as_ref().expect("batch"), "after a conflict"),
        1..2,
        "id conflict: no index taken"
    );
}

/// MUST: copies of one item within one call are decided in order, as if
/// each batch were appended alone: the first new copy is stored, a later
/// one with the same content is its duplicate (with its index), one with
/// other content conflicts, and the items after a copy take the indices
/// left free, with their stored receipts saying so.
pub fn copies_within_one_call_are_decided_in_order(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let stored = appended(&one(store, item_batch(item("stored", 1), 1, 0)), "first");
    let results = store
        .append(vec![
            item_batch(item("stored", 1), 2, 10),
            item_batch(item("new", 2), 2, 20),
            item_batch(item("new", 2), 1, 30),
            Batch::entries(entries(40, 1)),
            item_batch(item("new", 3), 1, 50),
            item_batch(item("after", 4), 1, 60),
        ])
        .expect("the append call");
    let outcomes: Vec<Outcome> = results
        .into_iter()
        .map(|r| r.expect("no batch fails"))
        .collect();
    match &outcomes[0] {
        Outcome::Duplicate(r) => assert_eq!(r.get().audit_index, stored.start),
        other => panic!("in one call: a copy of a stored item, got {other:?}"),
    }
    let new = appended(&outcomes[1], "in one call: a new item");
    assert_eq!(
        new,
        1..3,
        "in one call: after the stored copy, no index taken"
    );
    match &outcomes[2] {
        Outcome::Duplicate(r) => assert_eq!(
            r.get().audit_index,
            new.start,
            "in one call: a second copy is the first's duplicate, with its index"
        ),
        other => panic!("in one call: a second copy, got {other:?}"),
    }
    assert_eq!(appended(&outcomes[3], "in one call: entries"), 3..4);
    assert_eq!(
        outcomes[4],
        Outcome::Conflict,
        "in one call: the same id for other content"
    );
    let after = appended(&outcomes[5], "in one call: the item after");
    assert_eq!(after, 4..5, "in one call: the indices the copies left free");
    let sender = who("police/lo/rabat");
    for (id, content, index) in [("new", 2, new.start), ("after", 4, after.start)] {
        let receipt = store
            .receipt(&sender, &item(id, content).item_ref)
            .expect("receipt")
            .expect("stored");
        assert_eq!(
            receipt.get().audit_index,
            index,
            "in one call: the stored receipt of {id} names its acceptance entry"
        );
    }
    assert_eq!(size(store), 5);
    assert_eq!(
        store.pending(&ct(), 10, 10).expect("pending").len(),
        3,
        "in one call: one inbox entry per item stored"
    );
}

/// MUST: a lease hides the entry until it ends, then it is pending again,
/// with its delivery count.
pub fn leases_expire_and_items_are_delivered_again(store: Arc<dyn Store>) {
    let store = store.as_ref();
    one(store, item_batch(item("leased", 1), 1, 0));
    let reference = item("leased", 1).item_ref;
    let pending = store.pending(&ct(), 10, 10).expect("pending");
    assert_eq!(pending.len(), 1, "leases: pending before any lease");
    assert_eq!(pending[0].deliveries, 0);
    assert!(store.peek(&ct(), &reference).expect("peek").is_some());
    let lease = |until, tag| {
        change(
            store,
            Change::Lease {
                recipient: ct(),
                item_ref: reference.clone(),
                until,
                free_at: None,
            },
            tag,
        )
    };
    appended(&lease(20, 1), "leases: a first lease");
    assert!(
        store.pending(&ct(), 15, 10).expect("pending").is_empty(),
        "leases: not pending under a lease"
    );
    let again = store.pending(&ct(), 20, 10).expect("pending");
    assert_eq!(again.len(), 1, "leases: pending again once the lease ended");
    assert_eq!(again[0].deliveries, 1, "leases: the delivery counted");
    appended(&lease(40, 2), "leases: redelivery");
    let before = size(store);
    let taken = |free_at, tag| {
        change(
            store,
            Change::Lease {
                recipient: ct(),
                item_ref: reference.clone(),
                until: 60,
                free_at: Some(free_at),
            },
            tag,
        )
    };
    assert_eq!(
        taken(39, 4),
        Outcome::Unchanged(Unchanged::NotFound),
        "leases: a lease only of a free entry is not taken while another runs"
    );
    assert_eq!(size(store), before, "leases: no entry without the change");
    appended(
        &taken(40, 5),
        "leases: a lease only of a free entry, once the other ended",
    );
    let before = size(store);
    let other = change(
        store,
        Change::Lease {
            recipient: who("police/spoc"),
            item_ref: reference.clone(),
            until: 40,
            free_at: None,
        },
        3,
    );
    assert_eq!(
        other,
        Outcome::Unchanged(Unchanged::NotFound),
        "leases: not someone else's item"
    );
    assert_eq!(size(store), before, "leases: no entry without the change");
}

/// MUST: an acknowledgement is recorded once, with its entry; the item
/// leaves the inbox and is no longer leased.
pub fn an_acknowledgement_is_recorded_once(store: Arc<dyn Store>) {
    let store = store.as_ref();
    one(store, item_batch(item("acked", 1), 1, 0));
    let reference = item("acked", 1).item_ref;
    let ack = |recipient: PrincipalId, tag| {
        change(
            store,
            Change::Ack {
                recipient,
                item_ref: reference.clone(),
                at: 5,
            },
            tag,
        )
    };
    assert_eq!(appended(&ack(ct(), 1), "ack"), 1..2);
    assert_eq!(
        ack(ct(), 2),
        Outcome::Unchanged(Unchanged::AlreadyDone),
        "ack: once"
    );
    assert_eq!(
        ack(who("police/spoc"), 3),
        Outcome::Unchanged(Unchanged::NotFound),
        "ack: only the recipient's own"
    );
    assert_eq!(size(store), 2, "ack: no entry when nothing changed");
    assert!(store.pending(&ct(), 100, 10).expect("pending").is_empty());
    assert!(store.peek(&ct(), &reference).expect("peek").is_none());
    assert_eq!(
        change(
            store,
            Change::Lease {
                recipient: ct(),
                item_ref: reference.clone(),
                until: 50,
                free_at: None,
            },
            4,
        ),
        Outcome::Unchanged(Unchanged::NotFound),
        "ack: an acknowledged item is not leased again"
    );
    assert_eq!(
        store
            .deliveries_open(&[(reference, ct())])
            .expect("deliveries_open"),
        [false]
    );
}

/// MUST: the metrics' gauges count open inbox entries per priority with
/// their oldest acceptance, and past-due requests without an answer; an
/// acknowledgement takes its entry out.
pub fn gauges_count_open_deliveries_and_overdue_requests(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let g = store.gauges(100).expect("gauges");
    assert!(g.inbox.is_empty() && g.overdue == 0, "gauges: empty store");
    one(store, item_batch(item("g-1", 1), 1, 0));
    let mut request = item("g-2", 2);
    request.accepted_at = 3;
    request.answer_due = Some(50);
    one(store, item_batch(request, 1, 1));
    let g = store.gauges(49).expect("gauges");
    assert_eq!(
        g.inbox,
        [(Priority::Routine, 2, 1)],
        "gauges: two open, oldest at 1"
    );
    assert_eq!(g.overdue, 0, "gauges: not yet due");
    assert_eq!(store.gauges(50).expect("gauges").overdue, 1, "gauges: due");
    change(
        store,
        Change::Ack {
            recipient: ct(),
            item_ref: item("g-1", 1).item_ref,
            at: 5,
        },
        2,
    );
    let g = store.gauges(50).expect("gauges");
    assert_eq!(
        g.inbox,
        [(Priority::Routine, 1, 3)],
        "gauges: the ack is out"
    );
}

/// MUST: a refused delivery takes the item out of the recipient's inbox,
/// with its entry.
pub fn a_refusal_takes_the_item_out_of_the_inbox(store: Arc<dyn Store>) {
    let store = store.as_ref();
    one(store, item_batch(item("refused", 1), 1, 0));
    let reference = item("refused", 1).item_ref;
    appended(
        &change(
            store,
            Change::Refuse {
                recipient: ct(),
                item_ref: reference.clone(),
                at: 3,
            },
            1,
        ),
        "refusal",
    );
    assert!(store.pending(&ct(), 10, 10).expect("pending").is_empty());
    assert!(store.peek(&ct(), &reference).expect("peek").is_none());
}

/// MUST: what a sweep finds is due; each change applies once; purging
/// keeps the item's row, digest and receipt and drops its content.
pub fn expiry_and_purge_are_swept_once_and_purge_keeps_digests(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut expiring = item("expiring", 1);
    expiring.expires_at = Some(30);
    let mut purged = item("purged", 2);
    purged.purge_after = Some(50);
    one(store, item_batch(expiring, 1, 0));
    one(store, item_batch(purged, 1, 1));
    let (expiring, purged) = (item("expiring", 1).item_ref, item("purged", 2).item_ref);
    assert!(
        store.sweep_due(29, 100).expect("sweep_due").is_empty(),
        "sweep: nothing due yet"
    );
    assert_eq!(
        store.sweep_due(30, 100).expect("sweep_due"),
        [Swept::Expired {
            item_ref: expiring.clone(),
            recipient: ct(),
        }]
    );
    let expire = || {
        change(
            store,
            Change::Expire {
                item_ref: expiring.clone(),
                recipient: ct(),
                at: 30,
            },
            2,
        )
    };
    appended(&expire(), "expiry");
    assert_eq!(
        expire(),
        Outcome::Unchanged(Unchanged::NotFound),
        "expiry: once"
    );
    assert!(store
        .pending(&ct(), 31, 10)
        .expect("pending")
        .iter()
        .all(|e| e.item_ref != expiring));
    assert_eq!(
        store.sweep_due(50, 100).expect("sweep_due"),
        [Swept::Purged {
            item_ref: purged.clone(),
            digest: [2; 32],
        }],
        "sweep: the purge due, with the digest its entry records"
    );
    let purge = || {
        change(
            store,
            Change::Purge {
                item_ref: purged.clone(),
                at: 50,
            },
            3,
        )
    };
    appended(&purge(), "purge");
    assert_eq!(
        purge(),
        Outcome::Unchanged(Unchanged::NotFound),
        "purge: once"
    );
    assert!(store.sweep_due(60, 100).expect("sweep_due").is_empty());
    assert!(
        store.peek(&ct(), &purged).expect("peek").is_none(),
        "purge: the content is gone"
    );
    assert_eq!(
        store
            .items_present(std::slice::from_ref(&purged))
            .expect("items_present"),
        [true],
        "purge: the row stays"
    );
    let receipt = store
        .receipt(&who("police/lo/rabat"), &purged)
        .expect("receipt")
        .expect("purge keeps the receipt");
    assert_eq!(
        receipt.get().digest,
        hex::encode([2u8; 32]),
        "purge keeps the digest"
    );
    assert_eq!(size(store), 4);
}

/// MUST: checkpoints are kept by size and never go back; cosignatures
/// only add to a stored checkpoint.
pub fn checkpoints_never_go_back(store: Arc<dyn Store>) {
    let store = store.as_ref();
    store.check_writable().expect("a fresh store is writable");
    assert_eq!(store.latest_checkpoint_above(None).expect("latest"), None);
    store.save_checkpoint(2, "two", 1).expect("a checkpoint");
    store.save_checkpoint(5, "five", 2).expect("a checkpoint");
    store.save_checkpoint(5, "five", 3).expect("the same again");
    assert!(
        matches!(
            store.save_checkpoint(3, "three", 4),
            Err(StoreError::Invariant(_))
        ),
        "checkpoints: one below the latest is refused"
    );
    assert_eq!(
        store.checkpoints().expect("checkpoints"),
        [(2, "two".to_string()), (5, "five".to_string())]
    );
    assert_eq!(
        store.checkpoint_of_size(2).expect("by size"),
        Some("two".into())
    );
    assert_eq!(store.checkpoint_of_size(3).expect("by size"), None);
    assert_eq!(
        store.latest_checkpoint_above(Some(1)).expect("above"),
        Some((5, "five".into()))
    );
    assert_eq!(store.latest_checkpoint_above(Some(5)).expect("above"), None);
    // Cosignatures only add lines, and only to the note as it is now.
    assert!(store
        .add_cosignatures(5, "five", "five+w1")
        .expect("cosigned"));
    assert!(!store
        .add_cosignatures(5, "five", "five+w2")
        .expect("changed meanwhile: not replaced"));
    assert!(
        matches!(
            store.add_cosignatures(5, "five+w1", "six"),
            Err(StoreError::BadBatch(_))
        ),
        "checkpoints: a replacement that does not extend the note is refused"
    );
    assert!(!store.add_cosignatures(4, "four", "four+w1").expect("none"));
    assert_eq!(
        store.latest_checkpoint_above(None).expect("latest"),
        Some((5, "five+w1".into()))
    );
}

/// MUST: batches appended from several threads at once get every index
/// exactly once, each batch's consecutively.
pub fn concurrent_batches_share_one_log(store: Arc<dyn Store>) {
    const THREADS: u64 = 6;
    const CALLS: u64 = 15;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut taken = Vec::new();
                for c in 0..CALLS {
                    let tag = (t * CALLS + c) * 10;
                    let mut batches = vec![Batch::entries(entries(tag, 1 + c % 3))];
                    if c % 2 == 0 {
                        batches.push(item_batch(item(&format!("t{t}-{c}"), 1), 2, tag + 5));
                    }
                    for r in store.append(batches).expect("the append call") {
                        let range = appended(&r.expect("batch"), "concurrency");
                        taken.push(range);
                    }
                }
                taken
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for t in threads {
        for range in t.join().expect("a thread") {
            total += range.end - range.start;
            for i in range {
                assert!(seen.insert(i), "concurrency: index {i} given twice");
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>(),
        "concurrency: every index from 0, no gap"
    );
    assert_eq!(size(store.as_ref()), total);
    assert_eq!(
        store.leaf_hashes(0, total).expect("leaf hashes").len() as u64,
        total
    );
}
