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
//! The audit log lives in the same database: each batch's entries (with
//! their leaf hashes) are inserted in the batch's own transaction, and
//! [`Store::append`] writes a whole group of batches in one transaction and
//! one fsync (the write path is in `sqlite/append.rs`). Every transaction
//! that appends entries also replaces the one-row `seal` table with a signed
//! tree head of the log as that transaction leaves it, signed through the
//! [`Sealer`] the store was opened with: no entry is ever on disk without a
//! signature covering it, and a crash leaves entries and seal together or
//! neither. Seals are internal (the published checkpoints are the
//! `checkpoints` table). The Merkle tree is not here: the gateway's log
//! service builds it from the leaf hashes, and checks the seal at start.
//!
//! Several processes may open the same file (SQLite's own locking orders
//! their transactions); each write transaction reads the next index from
//! the table, inside the transaction. Per process, one writer connection
//! behind one `std::sync::Mutex` takes every write and every read a write
//! depends on; the other reads run on read-only connections of their own
//! (`sqlite/readers.rs`), so they never wait for the writer's commit and
//! fsync. Every call is short and blocking, and the gateway calls it off
//! its async threads, so an async mutex would buy nothing. This module
//! never decides and never reads the clock.
//!
//! Over 600 lines: one backend's reads, schema and migrations, kept beside
//! the SQL they share; the write path is apart.

mod append;
mod readers;

// Shared with the PostgreSQL backend, which stores the same records.
pub(super) use append::stored_receipt;

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{
    Batch, Durable, InboxEntry, Leased, OpenRequest, Outcome, RequestState, Sealer, Store,
    StoreError, Swept,
};
use crate::audit::rfc9162::{leaf_hash, Hash, RightEdge};
use crate::domain::bytes::from_cbor;
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
    -- Index of the item's acceptance entry (the first of its batch).
    audit_index  INTEGER,
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
-- `leaf` is the entry's RFC 9162 leaf hash, written with it: the log
-- service builds its tree from these. Nullable only because a database of
-- an earlier version gains the column by ALTER TABLE (filled at open).
CREATE TABLE IF NOT EXISTS audit (
    idx          INTEGER PRIMARY KEY,
    entry        BLOB NOT NULL,
    leaf         BLOB
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

/// The writer: every write, and every read a write depends on.
struct Inner {
    conn: Connection,
    /// The right edge of the log as this process last wrote or read it,
    /// only to sign the seal; caught up inside each write transaction.
    edge: RightEdge,
}

/// The embedded SQLite store.
pub(super) struct SqliteStore {
    inner: Mutex<Inner>,
    readers: readers::Readers,
    sealer: Arc<dyn Sealer>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(super) fn priority_rank(p: Priority) -> i64 {
    match p {
        Priority::Flash => 0,
        Priority::Urgent => 1,
        Priority::Routine => 2,
    }
}

pub(super) fn priority_from_rank(r: i64) -> Result<Priority, StoreError> {
    match r {
        0 => Ok(Priority::Flash),
        1 => Ok(Priority::Urgent),
        2 => Ok(Priority::Routine),
        other => Err(StoreError::Corrupt(format!("priority rank {other}"))),
    }
}

pub(super) fn principal(s: String) -> Result<PrincipalId, StoreError> {
    PrincipalId::new(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    from_cbor(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A stored leaf hash, which must be 32 bytes.
fn leaf_of(idx: u64, leaf: Option<Vec<u8>>) -> Result<Hash, StoreError> {
    leaf.and_then(|l| Hash::try_from(l.as_slice()).ok())
        .ok_or_else(|| {
            StoreError::Invariant(format!("the leaf hash of audit entry {idx} is missing"))
        })
}

/// Makes every stored leaf hash (again) from its entry, inside `tx`.
fn rehash(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let rows: Vec<(u64, Vec<u8>)> = {
        let mut stmt = tx
            .prepare("SELECT idx, entry FROM audit ORDER BY idx")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    for (idx, entry) in rows {
        tx.execute(
            "UPDATE audit SET leaf = ?1 WHERE idx = ?2",
            params![&leaf_hash(&entry)[..], idx],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// Whether `table` has `column` (a database of an earlier version may not).
fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .map_err(backend)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))
        .map_err(backend)?;
    for name in names {
        if name.map_err(backend)? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Brings a database of an earlier version to this schema, in one
/// transaction: leaf hashes computed from the stored entries, and each
/// item's audit index copied out of its stored receipt.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let leaf = has_column(conn, "audit", "leaf")?;
    let index = has_column(conn, "items", "audit_index")?;
    if leaf && index {
        return Ok(());
    }
    let tx = conn.transaction().map_err(backend)?;
    if !leaf {
        tx.execute_batch("ALTER TABLE audit ADD COLUMN leaf BLOB")
            .map_err(backend)?;
        rehash(&tx)?;
    }
    if !index {
        tx.execute_batch("ALTER TABLE items ADD COLUMN audit_index INTEGER")
            .map_err(backend)?;
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut stmt = tx
                .prepare("SELECT seq, receipt FROM items")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        for (seq, receipt) in rows {
            let receipt: Receipt = decode(&receipt)?;
            tx.execute(
                "UPDATE items SET audit_index = ?1 WHERE seq = ?2",
                params![receipt.audit_index, seq],
            )
            .map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)
}

/// Rows `start..end` of the audit table, `column` read by `get`: exactly
/// `end - start` of them, or [`StoreError::Invariant`] naming the first
/// index missing.
fn read_range<T>(
    conn: &Connection,
    start: u64,
    end: u64,
    column: &str,
    get: impl Fn(u64, &rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT idx, {column} FROM audit WHERE idx >= ?1 AND idx < ?2 ORDER BY idx"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query(params![start, end]).map_err(backend)?;
    let mut out = Vec::with_capacity((end - start).min(4096) as usize);
    while let Some(row) = rows.next().map_err(backend)? {
        let idx: u64 = row.get(0).map_err(backend)?;
        let expected = start + out.len() as u64;
        if idx != expected {
            return Err(StoreError::Invariant(format!(
                "audit entry {expected} is missing"
            )));
        }
        out.push(get(idx, row)?);
    }
    if (out.len() as u64) < end - start {
        return Err(StoreError::Invariant(format!(
            "audit entry {} is missing",
            start + out.len() as u64
        )));
    }
    Ok(out)
}

/// How many entries the audit log holds.
fn log_size(conn: &Connection) -> Result<u64, StoreError> {
    conn.query_row("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit", [], |r| {
        r.get(0)
    })
    .map_err(backend)
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

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, bringing an
    /// earlier version's schema up to date. Checks nothing against signed
    /// heads: the gateway's start checks do.
    pub(super) fn open(path: &Path, sealer: Arc<dyn Sealer>) -> Result<Self, StoreError> {
        let mut conn = Self::connect(path)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                edge: RightEdge::new(),
            }),
            readers: readers::Readers::new(path),
            sealer,
        })
    }

    /// Brings the database at `path` (created if needed) to this
    /// schema, as opening it does.
    pub(super) fn migrate_only(path: &Path) -> Result<(), StoreError> {
        migrate(&mut Self::connect(path)?)
    }

    /// Whether the database at `path` holds anything of an audit log
    /// (entries, a seal or checkpoints). A missing file holds nothing.
    pub(super) fn holds_a_log(path: &Path) -> Result<bool, StoreError> {
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
        // Room for every statement of the write path and the reads, so
        // that none is parsed again per call (the default keeps 16).
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(conn)
    }

    /// Rows `start..end` of the audit table, `column` read by `get`:
    /// exactly `end - start` of them, or an error.
    fn range<T>(
        &self,
        start: u64,
        end: u64,
        column: &str,
        get: impl Fn(u64, &rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        if start > end {
            return Err(StoreError::Proof(format!("no entries {start}..{end}")));
        }
        self.readers.snapshot(|conn| {
            let size = log_size(conn)?;
            if end > size {
                return Err(StoreError::Proof(format!(
                    "entries {start}..{end} are past the end of the log ({size})"
                )));
            }
            read_range(conn, start, end, column, get)
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves SQLite itself consistent
        // (the transaction rolls back on drop) and the edge is replaced only
        // after a commit, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for SqliteStore {
    /// The readers close before the writer: SQLite copies the WAL into the
    /// database file and removes it when the last connection closes, but
    /// only a connection that may write does that. Closed last, the writer
    /// leaves the whole store in the one file after a clean stop, as it
    /// did when it was the only connection (a copy of that file alone is a
    /// whole backup).
    fn drop(&mut self) {
        self.readers.close();
    }
}

impl Store for SqliteStore {
    fn append(&self, batches: Vec<Batch>) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        self.append_batches(batches)
    }

    fn size(&self) -> Result<u64, StoreError> {
        self.readers.with(log_size)
    }

    fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        self.range(start, end, "leaf", |idx, row| {
            leaf_of(idx, row.get(1).map_err(backend)?)
        })
    }

    fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.range(start, end, "entry", |_, row| row.get(1).map_err(backend))
    }

    fn seal(&self) -> Result<Option<String>, StoreError> {
        self.readers.with(|conn| {
            conn.query_row("SELECT note FROM seal WHERE id = 0", [], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
    }

    fn pending(
        &self,
        recipient: &PrincipalId,
        now: i64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn
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
        })
    }

    fn peek(&self, recipient: &PrincipalId, item_ref: &str) -> Result<Option<Leased>, StoreError> {
        self.readers.with(|conn| {
            type Row = (String, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64);
            // Through the statement cache: a batched fetch peeks at each of
            // its items in turn.
            let row: Option<Row> = conn
                .prepare_cached(
                    "SELECT i.sender, i.envelope, i.sender_cert, i.portions, b.released, i.accepted_at
                     FROM inbox b JOIN items i ON i.seq = b.item_seq
                     WHERE b.recipient = ?1 AND i.item_ref = ?2 AND b.acked_at IS NULL AND b.refused_at IS NULL
                       AND b.expired_at IS NULL AND i.purged_at IS NULL",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![recipient.as_str(), item_ref], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                    })
                })
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
        })
    }

    fn sweep_due(&self, now: i64, limit: u32) -> Result<Vec<Swept>, StoreError> {
        self.readers.snapshot(|conn| {
            let mut swept = Vec::new();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT i.item_ref, b.recipient FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE i.expires_at IS NOT NULL AND i.expires_at <= ?1
                   AND b.acked_at IS NULL AND b.refused_at IS NULL AND b.expired_at IS NULL
                 ORDER BY i.seq, b.recipient LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![now, limit], |r| {
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
            let left = u64::from(limit).saturating_sub(swept.len() as u64);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT item_ref, digest FROM items
                 WHERE purge_after IS NOT NULL AND purge_after <= ?1 AND purged_at IS NULL
                 ORDER BY seq LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![now, left], |r| {
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
            Ok(swept)
        })
    }

    fn request(&self, item_ref: &str) -> Result<Option<RequestState>, StoreError> {
        self.readers.snapshot(|conn| {
            let row: Option<(i64, String, i64, Option<i64>)> = conn
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
            let recipients = recipients_of(conn, seq)?;
            Ok(Some(RequestState {
                sender: principal(sender)?,
                recipients,
                due,
                answered_at,
            }))
        })
    }

    fn open_requests(
        &self,
        due_by: i64,
        concerning: Option<&PrincipalId>,
        limit: u32,
    ) -> Result<Vec<OpenRequest>, StoreError> {
        self.readers.snapshot(|conn| {
            let mut stmt = conn
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
                    recipients: recipients_of(conn, seq)?,
                });
            }
            Ok(out)
        })
    }

    fn receipt(
        &self,
        sender: &PrincipalId,
        item_ref: &str,
    ) -> Result<Option<Durable<Receipt>>, StoreError> {
        self.readers.with(|conn| {
            let row: Option<(Vec<u8>, Option<u64>)> = conn
                .query_row(
                    "SELECT receipt, audit_index FROM items WHERE sender = ?1 AND item_ref = ?2",
                    params![sender.as_str(), item_ref],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            row.map(|(bytes, index)| append::stored_receipt(&bytes, index))
                .transpose()
        })
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

    fn gauges(&self, now: i64) -> Result<super::StoreGauges, StoreError> {
        self.readers.snapshot(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT i.priority, COUNT(*), MIN(i.accepted_at)
                 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE b.acked_at IS NULL AND b.refused_at IS NULL AND b.expired_at IS NULL
                   AND i.purged_at IS NULL
                 GROUP BY i.priority",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(backend)?;
            let mut inbox = Vec::new();
            for row in rows {
                let (rank, depth, oldest) = row.map_err(backend)?;
                inbox.push((priority_from_rank(rank)?, depth.max(0) as u64, oldest));
            }
            let overdue: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM requests WHERE answered_at IS NULL AND due <= ?1",
                    params![now],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            Ok(super::StoreGauges {
                inbox,
                overdue: overdue.max(0) as u64,
            })
        })
    }

    fn items_present(&self, item_refs: &[String]) -> Result<Vec<bool>, StoreError> {
        // One query per thousand references rather than one per reference:
        // at start this runs over every accepted item of the log.
        self.readers.snapshot(|conn| {
            let mut present = std::collections::HashSet::new();
            for chunk in item_refs.chunks(1000) {
                let marks = vec!["?"; chunk.len()].join(",");
                let mut stmt = conn
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
        })
    }

    fn deliveries_open(
        &self,
        deliveries: &[(String, PrincipalId)],
    ) -> Result<Vec<bool>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn
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
        })
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

    fn add_cosignatures(
        &self,
        size: u64,
        current: &str,
        cosigned: &str,
    ) -> Result<bool, StoreError> {
        super::ensure_extends(size, current, cosigned)?;
        let changed = self
            .lock()
            .conn
            .execute(
                "UPDATE checkpoints SET note = ?1 WHERE size = ?2 AND note = ?3",
                params![cosigned, size, current],
            )
            .map_err(backend)?;
        Ok(changed == 1)
    }

    fn latest_checkpoint_above(
        &self,
        index: Option<u64>,
    ) -> Result<Option<(u64, String)>, StoreError> {
        self.readers.with(|conn| {
            // -1 is below every size: with no index, any checkpoint qualifies.
            let above = index.map(|i| i as i64).unwrap_or(-1);
            conn.query_row(
                "SELECT size, note FROM checkpoints WHERE size > ?1 ORDER BY size DESC LIMIT 1",
                params![above],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)
        })
    }

    fn checkpoint_of_size(&self, size: u64) -> Result<Option<String>, StoreError> {
        self.readers.with(|conn| {
            conn.query_row(
                "SELECT note FROM checkpoints WHERE size = ?1",
                params![size],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT size, note FROM checkpoints ORDER BY size")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }
}
