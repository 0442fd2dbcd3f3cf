//! The store contract under concurrency: group commit answers every
//! submitter with its own outcome, audit indices are dense and never
//! reused, and duplicates within one group are still duplicates.

use passerelle::audit::event::{AuditEntry, AuditEvent, BoundedEntry};
use passerelle::domain::item::Priority;
use passerelle::domain::principal::PrincipalId;
use passerelle::domain::receipt::{item_ref, Receipt};
use passerelle::store::sqlite::SqliteStore;
use passerelle::store::{CommitOutcome, NewItem, Store};
use std::sync::Arc;

/// An item and its two audit entries (as an acceptance is followed by a
/// decision entry per recipient): both must take consecutive indices.
fn new_item(sender: &str, id: &str, content: u8) -> (NewItem, Vec<BoundedEntry>) {
    let sender = PrincipalId::new(sender).unwrap();
    let reference = item_ref(&sender, id);
    let receipt = Receipt {
        item_ref: reference.clone(),
        item_id: id.into(),
        sender: sender.clone(),
        digest: hex::encode([content; 32]),
        accepted_at: 1,
        policy_digest: "p".into(),
        outcomes: vec![],
        audit_index: 0,
    };
    let item = NewItem {
        item_ref: reference.clone(),
        sender: sender.clone(),
        item_id: id.into(),
        digest: [content; 32],
        priority: Priority::Routine,
        accepted_at: 1,
        expires_at: None,
        envelope: vec![content],
        sender_certificate: vec![],
        portions: vec![],
        deliveries: vec![(PrincipalId::new("vsse/analysis/ct").unwrap(), vec![0])],
        receipt,
        purge_after: None,
    };
    let entries = vec![
        BoundedEntry::new(
            1,
            AuditEvent::Acknowledged {
                item_ref: reference.clone(),
                recipient: sender.clone(),
            },
        )
        .unwrap(),
        BoundedEntry::new(
            1,
            AuditEvent::Expired {
                item_ref: reference,
                recipient: sender,
            },
        )
        .unwrap(),
    ];
    (item, entries)
}

/// A store in `dir`, sealed with a fresh gateway key.
fn open_store(dir: &std::path::Path) -> Arc<SqliteStore> {
    let key =
        passerelle::keys::GatewayKey::generate(&dir.join("key.pem"), "test.example/audit").unwrap();
    Arc::new(SqliteStore::open(&dir.join("s.sqlite3"), Arc::new(key)).unwrap())
}

#[test]
fn concurrent_submissions_share_commits_and_keep_their_own_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut indices = Vec::new();
                for n in 0..20 {
                    let (item, entry) = new_item("police/lo/rabat", &format!("t{t}-{n}"), 1);
                    match store.commit_item(item, entry).unwrap() {
                        CommitOutcome::Committed(r) => indices.push(r.audit_index),
                        other => panic!("t{t}-{n}: {other:?}"),
                    }
                }
                indices
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(
        all,
        (0..320).map(|i| 2 * i).collect::<Vec<u64>>(),
        "indices must be dense and unique, each item's entries consecutive"
    );
    assert_eq!(store.tree_head().size, 640);
    // Each receipt's index points at that item's own first entry, and its
    // second entry follows.
    let entries = store.audit_entries(0, 640).unwrap();
    for t in 0..16 {
        for n in 0..20 {
            let id = format!("t{t}-{n}");
            let sender = PrincipalId::new("police/lo/rabat").unwrap();
            let r = store
                .receipt(&sender, &item_ref(&sender, &id))
                .unwrap()
                .unwrap();
            match AuditEntry::decode(&entries[r.audit_index as usize])
                .unwrap()
                .event
            {
                AuditEvent::Acknowledged {
                    item_ref: logged, ..
                } => assert_eq!(logged, r.item_ref),
                other => panic!("{other:?}"),
            }
            match AuditEntry::decode(&entries[r.audit_index as usize + 1])
                .unwrap()
                .event
            {
                AuditEvent::Expired {
                    item_ref: logged, ..
                } => assert_eq!(logged, r.item_ref),
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn duplicates_and_conflicts_within_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let outcomes: Vec<CommitOutcome> = (0..8)
        .map(|k| {
            let store = store.clone();
            // Half send the same content, half other content, for one id.
            std::thread::spawn(move || {
                let (item, entry) = new_item(
                    "police/lo/ankara",
                    "same-id",
                    if k % 2 == 0 { 1 } else { 2 },
                );
                store.commit_item(item, entry).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let committed = outcomes
        .iter()
        .filter(|o| matches!(o, CommitOutcome::Committed(_)))
        .count();
    assert_eq!(committed, 1, "exactly one commit: {outcomes:?}");
    assert_eq!(
        store.tree_head().size,
        2,
        "only the committed item has its audit entries"
    );
    let dupes = outcomes
        .iter()
        .filter(|o| matches!(o, CommitOutcome::Duplicate(_)))
        .count();
    let conflicts = outcomes
        .iter()
        .filter(|o| matches!(o, CommitOutcome::Conflict))
        .count();
    assert_eq!(dupes + conflicts, 7);
    assert!(dupes == 3 || conflicts == 3, "the three other same-content submissions are duplicates, or the four are conflicts: {outcomes:?}");
}
