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
//! One connection behind a `std::sync::Mutex`: every call is short and
//! blocking, and the gateway calls it from `spawn_blocking`, so an async
//! mutex would buy nothing. This module never decides and never reads the
//! clock.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::Mutex;

use super::{AckOutcome, CommitOutcome, InboxEntry, Leased, NewItem, Store, StoreError};
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
    UNIQUE (sender, item_id)
);
CREATE TABLE IF NOT EXISTS inbox (
    recipient    TEXT NOT NULL,
    item_seq     INTEGER NOT NULL REFERENCES items(seq),
    released     BLOB NOT NULL,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    deliveries   INTEGER NOT NULL DEFAULT 0,
    acked_at     INTEGER,
    PRIMARY KEY (recipient, item_seq)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (recipient, acked_at, lease_until);
";

/// The embedded SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
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

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
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
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent
        // (the transaction rolls back on drop), so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for SqliteStore {
    fn commit_item(&self, item: NewItem) -> Result<CommitOutcome, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let existing: Option<(Vec<u8>, Vec<u8>)> = tx
            .query_row(
                "SELECT digest, receipt FROM items WHERE sender = ?1 AND item_id = ?2",
                params![item.sender.as_str(), item.item_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?;
        if let Some((digest, receipt)) = existing {
            return if digest[..] == item.digest[..] {
                Ok(CommitOutcome::Duplicate(decode(&receipt)?))
            } else {
                Ok(CommitOutcome::Conflict)
            };
        }
        tx.execute(
            "INSERT INTO items (item_ref, sender, item_id, digest, priority, accepted_at, expires_at,
                                envelope, sender_cert, portions, receipt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
            ],
        )
        .map_err(backend)?;
        let seq = tx.last_insert_rowid();
        for (recipient, released) in &item.deliveries {
            tx.execute(
                "INSERT INTO inbox (recipient, item_seq, released) VALUES (?1, ?2, ?3)",
                params![recipient.as_str(), seq, to_cbor(released)],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(CommitOutcome::Committed(item.receipt))
    }

    fn pending(
        &self,
        recipient: &PrincipalId,
        now: i64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT i.item_ref, i.sender, i.item_id, i.priority, i.accepted_at, b.deliveries
                 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE b.recipient = ?1 AND b.acked_at IS NULL AND b.lease_until <= ?2
                   AND (i.expires_at IS NULL OR i.expires_at > ?2)
                 ORDER BY i.priority, i.seq
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
                ))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (item_ref, sender, item_id, priority, accepted_at, deliveries) =
                row.map_err(backend)?;
            out.push(InboxEntry {
                item_ref,
                sender: principal(sender)?,
                item_id,
                priority: priority_from_rank(priority)?,
                accepted_at,
                deliveries,
            });
        }
        Ok(out)
    }

    fn lease(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        lease_until: i64,
    ) -> Result<Option<Leased>, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        type LeaseRow = (i64, String, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
        let row: Option<LeaseRow> = tx
            .query_row(
                "SELECT i.seq, i.sender, i.envelope, i.sender_cert, i.portions, b.released
                 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE b.recipient = ?1 AND i.item_ref = ?2 AND b.acked_at IS NULL",
                params![recipient.as_str(), item_ref],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
            .map_err(backend)?;
        let Some((seq, sender, envelope, sender_certificate, portions, released)) = row else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE inbox SET lease_until = ?1, deliveries = deliveries + 1
             WHERE recipient = ?2 AND item_seq = ?3",
            params![lease_until, recipient.as_str(), seq],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(Some(Leased {
            sender: principal(sender)?,
            envelope,
            sender_certificate,
            portions: decode::<Vec<Portion>>(&portions)?,
            released: decode(&released)?,
        }))
    }

    fn ack(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        now: i64,
    ) -> Result<AckOutcome, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let row: Option<(i64, Option<i64>)> = tx
            .query_row(
                "SELECT b.item_seq, b.acked_at FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE b.recipient = ?1 AND i.item_ref = ?2",
                params![recipient.as_str(), item_ref],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?;
        let outcome = match row {
            None => AckOutcome::NotFound,
            Some((_, Some(_))) => AckOutcome::AlreadyAcked,
            Some((seq, None)) => {
                tx.execute(
                    "UPDATE inbox SET acked_at = ?1 WHERE recipient = ?2 AND item_seq = ?3",
                    params![now, recipient.as_str(), seq],
                )
                .map_err(backend)?;
                AckOutcome::Acked
            }
        };
        tx.commit().map_err(backend)?;
        Ok(outcome)
    }

    fn receipt(&self, sender: &PrincipalId, item_ref: &str) -> Result<Option<Receipt>, StoreError> {
        let conn = self.conn();
        let bytes: Option<Vec<u8>> = conn
            .query_row(
                "SELECT receipt FROM items WHERE sender = ?1 AND item_ref = ?2",
                params![sender.as_str(), item_ref],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        bytes.map(|b| decode(&b)).transpose()
    }
}
