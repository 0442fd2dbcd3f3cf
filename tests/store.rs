//! The store under the log service's group commit: every submitter hears
//! its own outcome, audit indices are dense and never reused, and
//! duplicates within one group are still duplicates; requests keep their
//! due time until the first answer closes them, and databases made by
//! earlier versions (before requests, before leaf hashes) still open.
//! (The backend-neutral promises are checked by `store_conformance.rs`.)

use passerelle::audit::event::{AuditEntry, AuditEvent, BoundedEntry};
use passerelle::domain::item::Priority;
use passerelle::domain::principal::PrincipalId;
use passerelle::domain::receipt::{item_ref, Receipt};
use passerelle::log_service::AuditLog;
use passerelle::store::{Batch, Change, NewItem, Outcome, Store, StoreConfig};
use std::sync::Arc;

/// A store opened by configuration, written through the log service.
struct Opened {
    log: AuditLog,
}

impl std::ops::Deref for Opened {
    type Target = dyn Store;
    fn deref(&self) -> &dyn Store {
        self.log.store().as_ref()
    }
}

impl Opened {
    fn commit_item(&self, item: NewItem, entries: Vec<BoundedEntry>) -> Outcome {
        self.log
            .append(Batch {
                change: Change::Item(Box::new(item)),
                entries,
            })
            .unwrap()
    }
}

fn open_with(dir: &std::path::Path, key: passerelle::keys::GatewayKey) -> Arc<Opened> {
    let store = passerelle::store::open(
        &StoreConfig::from_setting(&dir.join("s.sqlite3")),
        Arc::new(key),
    )
    .unwrap();
    Arc::new(Opened {
        log: AuditLog::load(store).unwrap(),
    })
}

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
        answer_due: None,
        answers: None,
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
fn open_store(dir: &std::path::Path) -> Arc<Opened> {
    let key =
        passerelle::keys::GatewayKey::generate(&dir.join("key.pem"), "test.example/audit").unwrap();
    open_with(dir, key)
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
                    match store.commit_item(item, entry) {
                        Outcome::Appended(d) => indices.push(d.get().first()),
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
    assert_eq!(store.size().unwrap(), 640);
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
                .unwrap()
                .into_inner();
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
    let outcomes: Vec<Outcome> = (0..8)
        .map(|k| {
            let store = store.clone();
            // Half send the same content, half other content, for one id.
            std::thread::spawn(move || {
                let (item, entry) = new_item(
                    "police/lo/ankara",
                    "same-id",
                    if k % 2 == 0 { 1 } else { 2 },
                );
                store.commit_item(item, entry)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let committed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Appended(_)))
        .count();
    assert_eq!(committed, 1, "exactly one commit: {outcomes:?}");
    assert_eq!(
        store.size().unwrap(),
        2,
        "only the committed item has its audit entries"
    );
    let dupes = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Duplicate(_)))
        .count();
    let conflicts = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Conflict))
        .count();
    assert_eq!(dupes + conflicts, 7);
    assert!(dupes == 3 || conflicts == 3, "the three other same-content submissions are duplicates, or the four are conflicts: {outcomes:?}");
}

/// An item of `priority` from `sender` to `police/spoc`, accepted at `at`,
/// that is a request due at `due`, or answers `answers`.
fn request_item(
    sender: &str,
    id: &str,
    priority: Priority,
    at: i64,
    due: Option<i64>,
    answers: Option<&str>,
) -> (NewItem, Vec<BoundedEntry>) {
    let (mut item, entries) = new_item(sender, id, 1);
    item.priority = priority;
    item.accepted_at = at;
    item.answer_due = due;
    item.answers = answers.map(str::to_string);
    item.deliveries = vec![(PrincipalId::new("police/spoc").unwrap(), vec![0])];
    (item, entries)
}

fn commit(store: &Opened, (item, entries): (NewItem, Vec<BoundedEntry>)) -> String {
    let reference = item.item_ref.clone();
    match store.commit_item(item, entries) {
        Outcome::Appended(_) => reference,
        other => panic!("{other:?}"),
    }
}

#[test]
fn requests_keep_their_due_time_until_the_first_answer_closes_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let spoc = PrincipalId::new("police/spoc").unwrap();
    let vsse = "vsse/analysis/ct";
    // Accepted in this order; due times chosen so that inbox order differs
    // from acceptance order.
    let plain = commit(
        &store,
        request_item(vsse, "plain", Priority::Urgent, 10, None, None),
    );
    let late = commit(
        &store,
        request_item(vsse, "late", Priority::Urgent, 11, Some(500), None),
    );
    let soon = commit(
        &store,
        request_item(vsse, "soon", Priority::Urgent, 12, Some(100), None),
    );
    let routine = commit(
        &store,
        request_item(vsse, "routine", Priority::Routine, 13, Some(50), None),
    );
    let flash = commit(
        &store,
        request_item(vsse, "flash", Priority::Flash, 14, None, None),
    );

    // Within a priority, open requests by due time, then the rest.
    let inbox = store.pending(&spoc, 20, 100).unwrap();
    let order: Vec<(&str, Option<i64>)> =
        inbox.iter().map(|e| (e.item_ref.as_str(), e.due)).collect();
    assert_eq!(
        order,
        [
            (flash.as_str(), None),
            (soon.as_str(), Some(100)),
            (late.as_str(), Some(500)),
            (plain.as_str(), None),
            (routine.as_str(), Some(50)),
        ]
    );

    // Open requests due by a time, soonest first; a due time in the past
    // is simply a smaller number.
    let due_by = |t| -> Vec<String> {
        store
            .open_requests(t, None, 100)
            .unwrap()
            .into_iter()
            .map(|r| r.item_ref)
            .collect()
    };
    assert_eq!(due_by(99), vec![routine.clone()]);
    assert_eq!(due_by(1_000), [routine.clone(), soon.clone(), late.clone()]);
    // Only what a principal sent or was released, and at most `limit`.
    let vsse_id = PrincipalId::new(vsse).unwrap();
    let rabat = PrincipalId::new("police/lo/rabat").unwrap();
    let count =
        |who: Option<&PrincipalId>, limit| store.open_requests(1_000, who, limit).unwrap().len();
    assert_eq!(count(Some(&spoc), 100), 3);
    assert_eq!(count(Some(&vsse_id), 100), 3);
    assert_eq!(count(Some(&rabat), 100), 0);
    assert_eq!(count(None, 2), 2);
    let listed = &store.open_requests(1_000, None, 100).unwrap()[1];
    assert_eq!(listed.recipients, vec![spoc.clone()]);
    assert_eq!((listed.accepted_at, listed.due), (12, 100));

    // The first answer closes the request at its own acceptance time; a
    // second changes nothing; an answer to what is not a request is
    // harmless.
    let state = store.request(&soon).unwrap().unwrap();
    assert_eq!(state.sender.as_str(), vsse);
    assert_eq!((state.due, state.answered_at), (100, None));
    commit(
        &store,
        request_item("police/spoc", "a1", Priority::Urgent, 60, None, Some(&soon)),
    );
    commit(
        &store,
        request_item("police/spoc", "a2", Priority::Urgent, 70, None, Some(&soon)),
    );
    commit(
        &store,
        request_item(
            "police/spoc",
            "a3",
            Priority::Urgent,
            80,
            None,
            Some(&plain),
        ),
    );
    assert_eq!(store.request(&soon).unwrap().unwrap().answered_at, Some(60));
    assert_eq!(store.request(&plain).unwrap(), None);
    assert_eq!(due_by(1_000), [routine.clone(), late.clone()]);
    // Still pending for its recipient (not acknowledged), without a due
    // time now, so after the open request of its priority.
    let inbox = store.pending(&spoc, 20, 100).unwrap();
    let soon_entry = inbox.iter().find(|e| e.item_ref == soon).unwrap();
    assert_eq!(soon_entry.due, None);
    let position = |r: &str| inbox.iter().position(|e| e.item_ref == r).unwrap();
    assert!(position(&late) < position(&soon));

    // Durable: the same after reopening.
    drop(store);
    let store = open_store_again(dir.path());
    assert_eq!(store.request(&soon).unwrap().unwrap().answered_at, Some(60));
    assert_eq!(
        store
            .open_requests(1_000, None, 100)
            .unwrap()
            .into_iter()
            .map(|r| r.item_ref)
            .collect::<Vec<_>>(),
        [routine, late]
    );
}

/// The store in `dir` opened again with the key `open_store` made.
fn open_store_again(dir: &std::path::Path) -> Arc<Opened> {
    let key =
        passerelle::keys::GatewayKey::load(&dir.join("key.pem"), "test.example/audit").unwrap();
    open_with(dir, key)
}

#[test]
fn a_database_made_before_requests_existed_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let before = commit(&store, new_item("police/lo/rabat", "old", 1));
    drop(store);
    // What a database of the previous version holds: no requests table.
    let conn = rusqlite::Connection::open(dir.path().join("s.sqlite3")).unwrap();
    conn.execute_batch("DROP INDEX requests_open; DROP TABLE requests;")
        .unwrap();
    drop(conn);
    let store = open_store_again(dir.path());
    let ct = PrincipalId::new("vsse/analysis/ct").unwrap();
    let inbox = store.pending(&ct, 10, 10).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        (inbox[0].item_ref.as_str(), inbox[0].due),
        (before.as_str(), None)
    );
    let asked = commit(
        &store,
        request_item(
            "police/lo/rabat",
            "new",
            Priority::Routine,
            5,
            Some(9),
            None,
        ),
    );
    assert_eq!(store.request(&asked).unwrap().unwrap().due, 9);
}

#[test]
fn a_database_made_before_leaf_hashes_and_receipt_indices_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let first = commit(&store, new_item("police/lo/rabat", "one", 1));
    commit(&store, new_item("police/lo/rabat", "two", 2));
    let head = store.log.head();
    drop(store);
    // What a database of the previous version holds: no leaf hashes, and
    // each receipt's audit index only inside the stored receipt.
    let conn = rusqlite::Connection::open(dir.path().join("s.sqlite3")).unwrap();
    let sender = PrincipalId::new("police/lo/rabat").unwrap();
    let second = item_ref(&sender, "two");
    let (item, _) = new_item("police/lo/rabat", "two", 2);
    let mut receipt = item.receipt;
    receipt.audit_index = 2;
    let mut bytes = Vec::new();
    cbor4ii::serde::to_writer(&mut bytes, &receipt).unwrap();
    conn.execute(
        "UPDATE items SET receipt = ?1 WHERE item_ref = ?2",
        rusqlite::params![bytes, second],
    )
    .unwrap();
    conn.execute_batch(
        "CREATE TABLE audit_old (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
         INSERT INTO audit_old SELECT idx, entry FROM audit;
         DROP TABLE audit; ALTER TABLE audit_old RENAME TO audit;
         ALTER TABLE items DROP COLUMN audit_index;",
    )
    .unwrap();
    drop(conn);
    let store = open_store_again(dir.path());
    assert_eq!(
        store.log.head(),
        head,
        "the same tree from the migrated leaf hashes"
    );
    let r = store
        .receipt(&sender, &first)
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(r.audit_index, 0);
    let r = store
        .receipt(&sender, &second)
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(r.audit_index, 2, "copied out of the stored receipt");
    let third = commit(&store, new_item("police/lo/rabat", "three", 3));
    let r = store
        .receipt(&sender, &third)
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(r.audit_index, 4, "after the two items' two entries each");
}

#[test]
fn a_log_service_catches_up_with_another_process_appends() {
    let dir = tempfile::tempdir().unwrap();
    let key =
        passerelle::keys::GatewayKey::generate(&dir.path().join("key.pem"), "test.example/audit")
            .unwrap();
    let key2 =
        passerelle::keys::GatewayKey::load(&dir.path().join("key.pem"), "test.example/audit")
            .unwrap();
    // Two handles on one database, each with its own log service, as two
    // gateway processes would have.
    let (a, b) = (open_with(dir.path(), key), open_with(dir.path(), key2));
    commit(&a, new_item("police/lo/rabat", "one", 1));
    assert_eq!(b.log.head().size, 0, "b has not looked yet");
    assert_eq!(b.log.catch_up().unwrap(), 2);
    assert_eq!(b.log.head(), a.log.head());
    // b appends after a's entries it never saw committed: its tree reads
    // them first, then takes its own.
    commit(&a, new_item("police/lo/rabat", "two", 2));
    commit(&b, new_item("police/lo/rabat", "three", 3));
    assert_eq!(b.log.head().size, 6);
    a.log.catch_up().unwrap();
    assert_eq!(a.log.head(), b.log.head(), "one log, whichever process");
    let signer =
        passerelle::keys::GatewayKey::load(&dir.path().join("key.pem"), "test.example/audit")
            .unwrap();
    let note = passerelle::gateway::sign_checkpoint(&a.log, &signer.note, 1).unwrap();
    assert_eq!(note.lines().nth(1), Some("6"));
}

#[test]
fn a_submission_counted_as_coming_delays_a_commit_only_briefly() {
    // The writer waits for submissions under way before it commits; one
    // that never hands over its batch (a refusal not yet dropped, a stuck
    // request) must cost the others at most the bounded wait, never their
    // answer.
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stuck = store.log.coming();
    runtime.block_on(async {
        for n in 0..5 {
            let (item, entries) = new_item("police/lo/rabat", &format!("c{n}"), 1);
            let batch = Batch {
                change: Change::Item(Box::new(item)),
                entries,
            };
            let coming = Some(store.log.coming());
            let outcomes = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                store.log.commit_coming(vec![batch], coming),
            )
            .await
            .expect("a commit waited for a submission that never came");
            assert!(matches!(outcomes.as_slice(), [Ok(Outcome::Appended(_))]));
        }
    });
    drop(stuck);
    assert_eq!(store.size().unwrap(), 10);
}
