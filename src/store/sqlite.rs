//! The embedded store: SQLite in WAL mode with `synchronous = FULL`.
//!
//! Why SQLite: it is the most widely deployed and tested embedded database,
//! its durability under power loss is documented and tested by its authors,
//! and its SQL schema carries over almost unchanged to the PostgreSQL backend
//! that several gateway instances will share. WAL mode lets readers proceed
//! during a write; `synchronous = FULL` makes every commit fsync the WAL, so
//! a transaction that returned is on disk. `rusqlite` with the `bundled`
//! feature builds a known SQLite version into the binary, so nothing needs
//! to be installed.
//!
//! The audit log lives in the same database: each event's entry is inserted
//! in the event's own transaction, and the in-memory RFC 9162 tree (used for
//! roots and proofs) is extended only after that transaction committed,
//! under the same lock, so its order is the commit order. Every transaction
//! that appends entries also replaces the one-row `seal` table with a signed
//! tree head of the log as that transaction leaves it, signed through the
//! [`Sealer`] the store was opened with: no entry is ever on disk without a
//! signature covering it, and a crash leaves entries and seal together or
//! neither. Seals are internal (the published checkpoints are the
//! `checkpoints` table). At open the tree is rebuilt from the stored
//! entries and checked against the seal and the latest checkpoint, whose
//! signatures are verified: entries after the seal, entries changed, or a
//! log shorter than a signed head refuse to open ([`StoreError::Tampered`]).
//!
//! One connection and the tree behind one `std::sync::Mutex`: every call is
//! short and blocking, and the gateway calls it from `spawn_blocking`, so an
//! async mutex would buy nothing. This module never decides and never reads
//! the clock.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{
    AckOutcome, CommitOutcome, InboxEntry, Leased, NewItem, OpenRequest, RequestState, Sealer,
    Store, StoreError, Swept, Tamper, TreeHead,
};
use crate::audit::event::{BoundedEntry, EntryTooLarge};
use crate::audit::rfc9162::{leaf_hash, Hash, Tree};
use crate::domain::bytes::{from_cbor, to_cbor};
use crate::domain::item::{Portion, Priority};
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::Receipt;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
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
    UNIQUE (sender, item_id)
);
CREATE TABLE IF NOT EXISTS inbox (
    recipient    TEXT NOT NULL,
    item_seq     INTEGER NOT NULL REFERENCES items(seq),
    released     BLOB NOT NULL,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    deliveries   INTEGER NOT NULL DEFAULT 0,
    acked_at     INTEGER,
    refused_at   INTEGER,
    expired_at   INTEGER,
    PRIMARY KEY (recipient, item_seq)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (recipient, acked_at, lease_until);
-- An item's recipients: without it, looking them up scans the whole inbox
-- under the store lock (and its timing would tell a sender which item
-- references are requests).
CREATE INDEX IF NOT EXISTS inbox_item ON inbox (item_seq, recipient);
CREATE TABLE IF NOT EXISTS audit (
    idx          INTEGER PRIMARY KEY,
    entry        BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size         INTEGER PRIMARY KEY,
    note         TEXT NOT NULL,
    issued_at    INTEGER NOT NULL
);
-- Requests and their answer deadlines. A table of its own rather than
-- columns of `items`, so that a database made before deadlines existed
-- gains it at open (CREATE TABLE IF NOT EXISTS) with nothing to migrate.
CREATE TABLE IF NOT EXISTS requests (
    item_seq     INTEGER PRIMARY KEY REFERENCES items(seq),
    due          INTEGER NOT NULL,
    answered_at  INTEGER,
    answer_ref   TEXT
);
CREATE INDEX IF NOT EXISTS requests_open ON requests (answered_at, due);
CREATE TABLE IF NOT EXISTS seal (
    id           INTEGER PRIMARY KEY CHECK (id = 0),
    size         INTEGER NOT NULL,
    note         TEXT NOT NULL
);
";

struct Inner {
    conn: Connection,
    tree: Tree,
}

/// The embedded SQLite store.
pub struct SqliteStore {
    inner: Mutex<Inner>,
    sealer: Arc<dyn Sealer>,
    /// Submissions waiting for a group commit (see [`SqliteStore::commit_queued`]).
    queue: Mutex<Vec<Queued>>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn priority_rank(p: Priority) -> i64 {
    match p {
        Priority::Flash => 0,
        Priority::Urgent => 1,
        Priority::Routine => 2,
    }
}

fn priority_from_rank(r: i64) -> Result<Priority, StoreError> {
    match r {
        0 => Ok(Priority::Flash),
        1 => Ok(Priority::Urgent),
        2 => Ok(Priority::Routine),
        other => Err(StoreError::Corrupt(format!("priority rank {other}"))),
    }
}

fn principal(s: String) -> Result<PrincipalId, StoreError> {
    PrincipalId::new(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    from_cbor(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn proof_error(e: crate::audit::rfc9162::ProofError) -> StoreError {
    StoreError::Proof(e.to_string())
}

/// Inserts `entries` at the end of the audit table inside `tx`; returns the
/// leaf hashes to add to the tree once `tx` committed.
fn insert_audit(
    tx: &Transaction<'_>,
    next: u64,
    entries: &[&BoundedEntry],
) -> Result<Vec<Hash>, StoreError> {
    let mut hashes = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let bytes = entry.bytes();
        hashes.push(leaf_hash(bytes));
        tx.execute(
            "INSERT INTO audit (idx, entry) VALUES (?1, ?2)",
            params![next + i as u64, bytes],
        )
        .map_err(backend)?;
    }
    Ok(hashes)
}

/// Replaces the seal inside `tx` with a signed head of `tree` extended by
/// `hashes` (the entries `tx` appends). Nothing to do when `tx` appends
/// nothing: the seal in place still covers the log.
fn seal(
    tx: &Transaction<'_>,
    tree: &Tree,
    hashes: &[Hash],
    sealer: &dyn Sealer,
) -> Result<(), StoreError> {
    if hashes.is_empty() {
        return Ok(());
    }
    let mut edge = tree.right_edge();
    for h in hashes {
        edge.push(*h);
    }
    let head = TreeHead {
        size: edge.size(),
        root: edge.root(),
    };
    let note = sealer
        .seal(head)
        .map_err(|e| StoreError::Invariant(format!("cannot seal the audit log: {e}")))?;
    tx.execute(
        "INSERT OR REPLACE INTO seal (id, size, note) VALUES (0, ?1, ?2)",
        params![head.size, note],
    )
    .map_err(backend)?;
    Ok(())
}

impl Inner {
    fn next_index(&self) -> u64 {
        self.tree.size()
    }

    /// Seals, commits `tx` and, only then, extends the tree.
    fn commit(
        tx: Transaction<'_>,
        tree: &mut Tree,
        hashes: Vec<Hash>,
        sealer: &dyn Sealer,
    ) -> Result<(), StoreError> {
        seal(&tx, tree, &hashes, sealer)?;
        tx.commit().map_err(backend)?;
        for h in hashes {
            tree.append_leaf_hash(h);
        }
        Ok(())
    }
}

/// Whether `tree` holds the signed `head` (`what` names it): as many
/// entries at least, giving the same root at its size.
pub(crate) fn compare(tree: &Tree, what: &str, head: TreeHead) -> Option<Tamper> {
    match tree.root_at(head.size) {
        Err(_) => Some(Tamper::Truncated {
            what: what.into(),
            signed: head.size,
            stored: tree.size(),
        }),
        Ok(root) if root != head.root => Some(Tamper::EntriesChanged {
            what: what.into(),
            size: head.size,
        }),
        Ok(_) => None,
    }
}

/// A store as [`SqliteStore::open_for_new_log`] found it.
pub struct Opened {
    /// The store, usable.
    pub store: SqliteStore,
    /// What disagrees with the signed heads, most telling first; empty when
    /// the store is as the gateway left it.
    pub found: Vec<Tamper>,
    /// The seal, when its signature verified: the last head the gateway
    /// signed in this database.
    pub seal: Option<(TreeHead, String)>,
}

/// A submission waiting for the next group commit.
struct Queued {
    item: NewItem,
    entries: Vec<BoundedEntry>,
    reply: std::sync::mpsc::SyncSender<Result<CommitOutcome, StoreError>>,
}

/// Inserts one item and its inbox entries inside `tx`, or finds it already
/// stored. Its audit entry will take `index`.
fn insert_item(
    tx: &Transaction<'_>,
    item: &mut NewItem,
    index: u64,
) -> Result<CommitOutcome, StoreError> {
    let existing: Option<(Vec<u8>, Vec<u8>)> = tx
        .query_row(
            "SELECT digest, receipt FROM items WHERE sender = ?1 AND item_id = ?2",
            params![item.sender.as_str(), item.item_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    if let Some((digest, receipt)) = existing {
        return Ok(if digest[..] == item.digest[..] {
            CommitOutcome::Duplicate(decode(&receipt)?)
        } else {
            CommitOutcome::Conflict
        });
    }
    item.receipt.audit_index = index;
    tx.execute(
        "INSERT INTO items (item_ref, sender, item_id, digest, priority, accepted_at, expires_at,
                            envelope, sender_cert, portions, receipt, purge_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            item.item_ref,
            item.sender.as_str(),
            item.item_id,
            &item.digest[..],
            priority_rank(item.priority),
            item.accepted_at,
            item.expires_at,
            item.envelope,
            item.sender_certificate,
            to_cbor(&item.portions),
            to_cbor(&item.receipt),
            item.purge_after,
        ],
    )
    .map_err(backend)?;
    let seq = tx.last_insert_rowid();
    if let Some(due) = item.answer_due {
        tx.execute(
            "INSERT INTO requests (item_seq, due) VALUES (?1, ?2)",
            params![seq, due],
        )
        .map_err(backend)?;
    }
    if let Some(request) = &item.answers {
        // The first answer closes the request; a later one finds it
        // closed and changes nothing.
        tx.execute(
            "UPDATE requests SET answered_at = ?1, answer_ref = ?2
             WHERE answered_at IS NULL
               AND item_seq = (SELECT seq FROM items WHERE item_ref = ?3)",
            params![item.accepted_at, item.item_ref, request],
        )
        .map_err(backend)?;
    }
    for (recipient, released) in &item.deliveries {
        tx.execute(
            "INSERT INTO inbox (recipient, item_seq, released) VALUES (?1, ?2, ?3)",
            params![recipient.as_str(), seq, to_cbor(released)],
        )
        .map_err(backend)?;
    }
    Ok(CommitOutcome::Committed(item.receipt.clone()))
}

/// The recipients an item was released to at submission (its inbox
/// entries, in any state), sorted.
fn recipients_of(conn: &Connection, seq: i64) -> Result<Vec<PrincipalId>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT recipient FROM inbox WHERE item_seq = ?1 ORDER BY recipient")
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![seq], |r| r.get::<_, String>(0))
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(principal(row.map_err(backend)?)?);
    }
    Ok(out)
}

/// What a write transaction returns: its result, and the audit entries to
/// append in the same transaction.
type Written<'e, T> = (T, Vec<Cow<'e, BoundedEntry>>);

impl SqliteStore {
    /// Runs `body` in one IMMEDIATE transaction, given the index the first
    /// new audit entry will take; appends the entries `body` returns in the
    /// same transaction, commits (fsync), and only then extends the tree.
    /// If `body` fails, nothing is written.
    fn write<'e, T>(
        &self,
        body: impl FnOnce(&Transaction<'_>, u64) -> Result<Written<'e, T>, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let next = inner.next_index();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let (value, entries) = body(&tx, next)?;
        let refs: Vec<&BoundedEntry> = entries.iter().map(|e| e.as_ref()).collect();
        let hashes = insert_audit(&tx, next, &refs)?;
        Inner::commit(tx, &mut inner.tree, hashes, self.sealer.as_ref())?;
        Ok(value)
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Group commit. Every submitter queues its item, then takes the write
    /// lock; whoever gets it commits everything queued so far in one
    /// transaction and one fsync, and answers each submitter. While it
    /// writes, the next submissions queue up for the next leader, so under
    /// load many items share an fsync and none waits for a timer. Each item
    /// sits in its own savepoint, so one item's failure does not touch the
    /// others; the commit itself is all or nothing, and no submitter hears
    /// "committed" before it returned.
    fn commit_queued(&self) {
        let mut guard = self.lock();
        let batch = std::mem::take(&mut *self.queued());
        if batch.is_empty() {
            return; // an earlier leader committed ours
        }
        let mut batch = batch;
        let inner = &mut *guard;
        let next = inner.next_index();
        let mut outcomes = Vec::with_capacity(batch.len());
        // Queue positions of the items newly stored, and how many entries
        // they log: the next item's first entry takes `next + logged`.
        let mut stored = Vec::new();
        let mut logged = 0u64;
        let committed = (|| -> Result<Vec<Hash>, StoreError> {
            let tx = inner
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            for (position, q) in batch.iter_mut().enumerate() {
                tx.execute_batch("SAVEPOINT item").map_err(backend)?;
                match insert_item(&tx, &mut q.item, next + logged) {
                    Ok(outcome) => {
                        tx.execute_batch("RELEASE item").map_err(backend)?;
                        if matches!(outcome, CommitOutcome::Committed(_)) {
                            stored.push(position);
                            logged += q.entries.len() as u64;
                        }
                        outcomes.push(Ok(outcome));
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO item; RELEASE item")
                            .map_err(backend)?;
                        outcomes.push(Err(e));
                    }
                }
            }
            let entries: Vec<&BoundedEntry> = stored
                .iter()
                .flat_map(|&position| batch[position].entries.iter())
                .collect();
            let hashes = insert_audit(&tx, next, &entries)?;
            seal(&tx, &inner.tree, &hashes, self.sealer.as_ref())?;
            tx.commit().map_err(backend)?;
            Ok(hashes)
        })();
        match committed {
            Ok(hashes) => {
                for h in hashes {
                    inner.tree.append_leaf_hash(h);
                }
                for (q, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = q.reply.send(outcome);
                }
            }
            Err(e) => {
                for q in batch {
                    let _ = q.reply.send(Err(StoreError::Backend(e.to_string())));
                }
            }
        }
    }

    /// Opens (creating if needed) the database at `path`, rebuilds the
    /// audit tree and checks it against the seal and the latest published
    /// checkpoint, whose signatures `sealer` verifies. Any disagreement
    /// refuses to open with [`StoreError::Tampered`].
    pub fn open(path: &Path, sealer: Arc<dyn Sealer>) -> Result<Self, StoreError> {
        let opened = Self::open_inner(path, sealer)?;
        match opened.found.into_iter().next() {
            Some(tamper) => Err(StoreError::Tampered(tamper)),
            None => Ok(opened.store),
        }
    }

    /// Opens the database at `path` as [`SqliteStore::open`] does, but
    /// hands back what disagrees with the signed heads instead of refusing:
    /// for the operator's explicit start of a new log (see
    /// [`Store::start_new_log`]), never for a normal start.
    pub fn open_for_new_log(path: &Path, sealer: Arc<dyn Sealer>) -> Result<Opened, StoreError> {
        Self::open_inner(path, sealer)
    }

    /// Whether the database at `path` holds anything of an audit log
    /// (entries, a seal or checkpoints). A missing file holds nothing.
    pub fn holds_a_log(path: &Path) -> Result<bool, StoreError> {
        if !path.exists() {
            return Ok(false);
        }
        let conn = Self::connect(path)?;
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM audit) OR EXISTS (SELECT 1 FROM seal)
                 OR EXISTS (SELECT 1 FROM checkpoints)",
            [],
            |r| r.get(0),
        )
        .map_err(backend)
    }

    fn connect(path: &Path) -> Result<Connection, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let conn = Connection::open(path).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(conn)
    }

    fn open_inner(path: &Path, sealer: Arc<dyn Sealer>) -> Result<Opened, StoreError> {
        let conn = Self::connect(path)?;
        // One read transaction: another process (`audit export`, a running
        // gateway) may commit meanwhile, and entries and seal must be read
        // from the same snapshot.
        let snapshot = conn.unchecked_transaction().map_err(backend)?;
        let mut tree = Tree::new();
        {
            let mut stmt = snapshot
                .prepare("SELECT idx, entry FROM audit ORDER BY idx")
                .map_err(backend)?;
            let mut rows = stmt.query([]).map_err(backend)?;
            while let Some(row) = rows.next().map_err(backend)? {
                let idx: u64 = row.get(0).map_err(backend)?;
                let entry: Vec<u8> = row.get(1).map_err(backend)?;
                if idx != tree.size() {
                    return Err(StoreError::Invariant(format!(
                        "audit entry {} is missing",
                        tree.size()
                    )));
                }
                tree.append_leaf_hash(leaf_hash(&entry));
            }
        }
        let sealed: Option<String> = snapshot
            .query_row("SELECT note FROM seal WHERE id = 0", [], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        let latest: Option<(u64, String)> = snapshot
            .query_row(
                "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?;
        snapshot.commit().map_err(backend)?;
        let mut found = Vec::new();
        let mut seal = None;
        match sealed {
            None if tree.size() > 0 => found.push(Tamper::Unsealed {
                stored: tree.size(),
            }),
            None => {}
            Some(note) => match sealer.unseal(&note) {
                Err(reason) => found.push(Tamper::BadSignature {
                    what: "seal".into(),
                    reason,
                }),
                Ok(head) => {
                    if let Some(t) = compare(&tree, "seal", head) {
                        found.push(t);
                    } else if head.size < tree.size() {
                        found.push(Tamper::EntriesAfterSeal {
                            sealed: head.size,
                            stored: tree.size(),
                        });
                    }
                    seal = Some((head, note));
                }
            },
        }
        if let Some((size, note)) = latest {
            match sealer.unseal(&note) {
                Err(reason) => found.push(Tamper::BadSignature {
                    what: format!("checkpoint of size {size}"),
                    reason,
                }),
                Ok(head) => found.extend(compare(&tree, "latest published checkpoint", head)),
            }
        }
        Ok(Opened {
            store: SqliteStore {
                queue: Mutex::new(Vec::new()),
                inner: Mutex::new(Inner { conn, tree }),
                sealer,
            },
            found,
            seal,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves SQLite itself consistent
        // (the transaction rolls back on drop) and the tree is only extended
        // after a commit, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for SqliteStore {
    fn commit_item(
        &self,
        item: NewItem,
        entries: Vec<BoundedEntry>,
    ) -> Result<CommitOutcome, StoreError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.queued().push(Queued {
            item,
            entries,
            reply,
        });
        self.commit_queued();
        answer
            .recv()
            .map_err(|_| StoreError::Backend("the commit was abandoned".into()))?
    }

    fn pending(
        &self,
        recipient: &PrincipalId,
        now: i64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let guard = self.lock();
        let mut stmt = guard
            .conn
            .prepare_cached(
                "SELECT i.item_ref, i.sender, i.item_id, i.priority, i.accepted_at, b.deliveries, q.due
                 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 LEFT JOIN requests q ON q.item_seq = i.seq AND q.answered_at IS NULL
                 WHERE b.recipient = ?1 AND b.acked_at IS NULL AND b.refused_at IS NULL
                   AND b.expired_at IS NULL AND i.purged_at IS NULL
                   AND b.lease_until <= ?2 AND (i.expires_at IS NULL OR i.expires_at > ?2)
                 ORDER BY i.priority, q.due IS NULL, q.due, i.seq
                 LIMIT ?3",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![recipient.as_str(), now, limit], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (item_ref, sender, item_id, priority, accepted_at, deliveries, due) =
                row.map_err(backend)?;
            out.push(InboxEntry {
                item_ref,
                sender: principal(sender)?,
                item_id,
                priority: priority_from_rank(priority)?,
                accepted_at,
                deliveries,
                due,
            });
        }
        Ok(out)
    }

    fn peek(&self, recipient: &PrincipalId, item_ref: &str) -> Result<Option<Leased>, StoreError> {
        let guard = self.lock();
        type Row = (String, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64);
        let row: Option<Row> = guard
            .conn
            .query_row(
                "SELECT i.sender, i.envelope, i.sender_cert, i.portions, b.released, i.accepted_at
                 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE b.recipient = ?1 AND i.item_ref = ?2 AND b.acked_at IS NULL AND b.refused_at IS NULL
                   AND b.expired_at IS NULL AND i.purged_at IS NULL",
                params![recipient.as_str(), item_ref],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()
            .map_err(backend)?;
        let Some((sender, envelope, sender_certificate, portions, released, accepted_at)) = row
        else {
            return Ok(None);
        };
        Ok(Some(Leased {
            sender: principal(sender)?,
            envelope,
            sender_certificate,
            portions: decode::<Vec<Portion>>(&portions)?,
            released: decode(&released)?,
            accepted_at,
        }))
    }

    fn deliver(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        lease_until: i64,
        entry: &BoundedEntry,
    ) -> Result<Option<u64>, StoreError> {
        self.write(|tx, next| {
        let changed = tx
            .execute(
                "UPDATE inbox SET lease_until = ?1, deliveries = deliveries + 1
                 WHERE recipient = ?2 AND acked_at IS NULL AND refused_at IS NULL AND expired_at IS NULL
                   AND item_seq = (SELECT seq FROM items WHERE item_ref = ?3)",
                params![lease_until, recipient.as_str(), item_ref],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Ok((None, vec![]));
        }
        Ok((Some(next), vec![Cow::Borrowed(entry)]))
        })
    }

    fn refuse_delivery(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        now: i64,
        entry: &BoundedEntry,
    ) -> Result<u64, StoreError> {
        self.write(|tx, next| {
            tx.execute(
                "UPDATE inbox SET refused_at = ?1
             WHERE recipient = ?2 AND item_seq = (SELECT seq FROM items WHERE item_ref = ?3)",
                params![now, recipient.as_str(), item_ref],
            )
            .map_err(backend)?;
            Ok((next, vec![Cow::Borrowed(entry)]))
        })
    }

    fn ack(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        now: i64,
        entry: &BoundedEntry,
    ) -> Result<AckOutcome, StoreError> {
        self.write(|tx, next| {
            let row: Option<(i64, Option<i64>)> = tx
                .query_row(
                    "SELECT b.item_seq, b.acked_at FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE b.recipient = ?1 AND i.item_ref = ?2 AND b.refused_at IS NULL",
                    params![recipient.as_str(), item_ref],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            match row {
                None => Ok((AckOutcome::NotFound, vec![])),
                Some((_, Some(_))) => Ok((AckOutcome::AlreadyAcked, vec![])),
                Some((seq, None)) => {
                    tx.execute(
                        "UPDATE inbox SET acked_at = ?1 WHERE recipient = ?2 AND item_seq = ?3",
                        params![now, recipient.as_str(), seq],
                    )
                    .map_err(backend)?;
                    Ok((AckOutcome::Acked(next), vec![Cow::Borrowed(entry)]))
                }
            }
        })
    }

    fn sweep(
        &self,
        now: i64,
        entry_for: &dyn Fn(&Swept) -> Result<BoundedEntry, EntryTooLarge>,
    ) -> Result<Vec<Swept>, StoreError> {
        self.write(|tx, _| {
        let mut swept = Vec::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT i.item_ref, b.recipient FROM inbox b JOIN items i ON i.seq = b.item_seq
                     WHERE i.expires_at IS NOT NULL AND i.expires_at <= ?1
                       AND b.acked_at IS NULL AND b.refused_at IS NULL AND b.expired_at IS NULL
                     ORDER BY i.seq, b.recipient",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![now], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(backend)?;
            for row in rows {
                let (item_ref, recipient) = row.map_err(backend)?;
                swept.push(Swept::Expired {
                    item_ref,
                    recipient: principal(recipient)?,
                });
            }
            let mut stmt = tx
                .prepare(
                    "SELECT item_ref, digest FROM items
                     WHERE purge_after IS NOT NULL AND purge_after <= ?1 AND purged_at IS NULL ORDER BY seq",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![now], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(backend)?;
            for row in rows {
                let (item_ref, digest) = row.map_err(backend)?;
                let digest: [u8; 32] = digest
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("digest is not 32 bytes".into()))?;
                swept.push(Swept::Purged { item_ref, digest });
            }
        }
        for s in &swept {
            match s {
                Swept::Expired { item_ref, recipient } => tx.execute(
                    "UPDATE inbox SET expired_at = ?1
                     WHERE recipient = ?2 AND item_seq = (SELECT seq FROM items WHERE item_ref = ?3)",
                    params![now, recipient.as_str(), item_ref],
                ),
                // The envelope holds the header and labels, the portions the
                // content: both go; digest, receipt and audit entries stay.
                Swept::Purged { item_ref, .. } => tx.execute(
                    "UPDATE items SET envelope = x'', portions = ?1, purged_at = ?2 WHERE item_ref = ?3",
                    params![to_cbor(&Vec::<Portion>::new()), now, item_ref],
                ),
            }
            .map_err(backend)?;
        }
        let entries = swept
            .iter()
            .map(|s| {
                entry_for(s)
                    .map(Cow::Owned)
                    .map_err(|e| StoreError::Invariant(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok((swept, entries))
        })
    }

    fn request(&self, item_ref: &str) -> Result<Option<RequestState>, StoreError> {
        let guard = self.lock();
        let row: Option<(i64, String, i64, Option<i64>)> = guard
            .conn
            .query_row(
                "SELECT i.seq, i.sender, q.due, q.answered_at
                 FROM requests q JOIN items i ON i.seq = q.item_seq WHERE i.item_ref = ?1",
                params![item_ref],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(backend)?;
        let Some((seq, sender, due, answered_at)) = row else {
            return Ok(None);
        };
        let recipients = recipients_of(&guard.conn, seq)?;
        Ok(Some(RequestState {
            sender: principal(sender)?,
            recipients,
            due,
            answered_at,
        }))
    }

    fn open_requests(
        &self,
        due_by: i64,
        concerning: Option<&PrincipalId>,
        limit: u32,
    ) -> Result<Vec<OpenRequest>, StoreError> {
        let guard = self.lock();
        let mut stmt = guard
            .conn
            .prepare_cached(
                "SELECT i.seq, i.item_ref, i.sender, i.item_id, i.priority, i.accepted_at, q.due
                 FROM requests q JOIN items i ON i.seq = q.item_seq
                 WHERE q.answered_at IS NULL AND q.due <= ?1
                   AND (?2 IS NULL OR i.sender = ?2
                        OR EXISTS (SELECT 1 FROM inbox b WHERE b.item_seq = i.seq AND b.recipient = ?2
                                   AND b.refused_at IS NULL AND b.expired_at IS NULL))
                 ORDER BY q.due, i.seq
                 LIMIT ?3",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![due_by, concerning.map(|p| p.as_str()), limit],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                },
            )
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, item_ref, sender, item_id, priority, accepted_at, due) =
                row.map_err(backend)?;
            out.push(OpenRequest {
                item_ref,
                sender: principal(sender)?,
                item_id,
                priority: priority_from_rank(priority)?,
                accepted_at,
                due,
                recipients: recipients_of(&guard.conn, seq)?,
            });
        }
        Ok(out)
    }

    fn receipt(&self, sender: &PrincipalId, item_ref: &str) -> Result<Option<Receipt>, StoreError> {
        let guard = self.lock();
        let bytes: Option<Vec<u8>> = guard
            .conn
            .query_row(
                "SELECT receipt FROM items WHERE sender = ?1 AND item_ref = ?2",
                params![sender.as_str(), item_ref],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        bytes.map(|b| decode(&b)).transpose()
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        // Takes SQLite's write lock and lets it go: fails when the file is
        // read-only, the disk refuses, or another writer holds the lock
        // past the busy timeout.
        self.lock()
            .conn
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(backend)
    }

    fn append_audit(&self, entries: &[BoundedEntry]) -> Result<u64, StoreError> {
        self.write(|_, next| Ok((next, entries.iter().map(Cow::Borrowed).collect())))
    }

    fn start_new_log(&self, entry: &BoundedEntry) -> Result<u64, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let next = inner.next_index();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let stale: Vec<u64> = {
            let mut stmt = tx
                .prepare("SELECT size, note FROM checkpoints ORDER BY size")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))
                .map_err(backend)?;
            let mut stale = Vec::new();
            for row in rows {
                let (size, note) = row.map_err(backend)?;
                let keep = self
                    .sealer
                    .unseal(&note)
                    .ok()
                    .is_some_and(|head| compare(&inner.tree, "", head).is_none());
                if !keep {
                    stale.push(size);
                }
            }
            stale
        };
        for size in stale {
            tx.execute("DELETE FROM checkpoints WHERE size = ?1", params![size])
                .map_err(backend)?;
        }
        let hashes = insert_audit(&tx, next, &[entry])?;
        Inner::commit(tx, &mut inner.tree, hashes, self.sealer.as_ref())?;
        Ok(next)
    }

    fn items_present(&self, item_refs: &[String]) -> Result<Vec<bool>, StoreError> {
        // One query per thousand references rather than one per reference:
        // at start this runs over every accepted item of the log.
        let guard = self.lock();
        let mut present = std::collections::HashSet::new();
        for chunk in item_refs.chunks(1000) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut stmt = guard
                .conn
                .prepare_cached(&format!(
                    "SELECT item_ref FROM items WHERE item_ref IN ({marks})"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(chunk), |r| r.get::<_, String>(0))
                .map_err(backend)?;
            for row in rows {
                present.insert(row.map_err(backend)?);
            }
        }
        Ok(item_refs.iter().map(|r| present.contains(r)).collect())
    }

    fn deliveries_open(
        &self,
        deliveries: &[(String, PrincipalId)],
    ) -> Result<Vec<bool>, StoreError> {
        let guard = self.lock();
        let mut stmt = guard
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE i.item_ref = ?1 AND b.recipient = ?2 AND b.acked_at IS NULL
                   AND b.refused_at IS NULL AND b.expired_at IS NULL AND i.purged_at IS NULL)",
            )
            .map_err(backend)?;
        deliveries
            .iter()
            .map(|(r, who)| {
                stmt.query_row(params![r, who.as_str()], |row| row.get(0))
                    .map_err(backend)
            })
            .collect()
    }

    fn tree_head(&self) -> TreeHead {
        let guard = self.lock();
        TreeHead {
            size: guard.tree.size(),
            root: guard.tree.root(),
        }
    }

    fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        self.lock().tree.root_at(size).map_err(proof_error)
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.lock()
            .tree
            .inclusion_proof(index, size)
            .map_err(proof_error)
    }

    fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, StoreError> {
        self.lock()
            .tree
            .consistency_proof(old_size, new_size)
            .map_err(proof_error)
    }

    fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let guard = self.lock();
        let mut stmt = guard
            .conn
            .prepare_cached("SELECT entry FROM audit WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![start, end], |r| r.get::<_, Vec<u8>>(0))
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn save_checkpoint(&self, size: u64, note: &str, now: i64) -> Result<(), StoreError> {
        let guard = self.lock();
        let latest: Option<u64> = guard
            .conn
            .query_row("SELECT MAX(size) FROM checkpoints", [], |r| r.get(0))
            .map_err(backend)?;
        if let Some(latest) = latest {
            if size < latest {
                return Err(StoreError::Invariant(format!(
                    "checkpoint of size {size} after one of size {latest}: the log would go back"
                )));
            }
            if size == latest {
                return Ok(());
            }
        }
        guard
            .conn
            .execute(
                "INSERT INTO checkpoints (size, note, issued_at) VALUES (?1, ?2, ?3)",
                params![size, note, now],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn latest_checkpoint_above(
        &self,
        index: Option<u64>,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let guard = self.lock();
        // -1 is below every size: with no index, any checkpoint qualifies.
        let above = index.map(|i| i as i64).unwrap_or(-1);
        guard
            .conn
            .query_row(
                "SELECT size, note FROM checkpoints WHERE size > ?1 ORDER BY size DESC LIMIT 1",
                params![above],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)
    }

    fn checkpoint_of_size(&self, size: u64) -> Result<Option<String>, StoreError> {
        self.lock()
            .conn
            .query_row(
                "SELECT note FROM checkpoints WHERE size = ?1",
                params![size],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let guard = self.lock();
        let mut stmt = guard
            .conn
            .prepare_cached("SELECT size, note FROM checkpoints ORDER BY size")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }
}
