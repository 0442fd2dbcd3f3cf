//! Moving an embedded store into PostgreSQL (`passerelle db import`).
//!
//! Owns the copy of every row of an SQLite store (items, inbox entries,
//! requests, audit entries with their leaf hashes, checkpoints with their
//! cosignatures, the seal) into an empty PostgreSQL database, as they are:
//! one read transaction on the source, one write transaction on the target
//! under the sequencer's lock, so that the copy is whole or absent and no
//! instance appends while it runs. It never decides, re-signs or changes a
//! row, and it never writes into a database that holds anything: the
//! caller checks the source against its signatures before and the target
//! after (see `passerelle db import`), this only copies.

use ::postgres::Transaction;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

use super::{backend, col, migrate, pool::Pool, PostgresUrl, SEQUENCER_LOCK};
use crate::store::StoreError;

/// How many rows of each kind were copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Item rows (purged ones included: they keep their digest and receipt).
    pub items: u64,
    /// Inbox entries, open or closed.
    pub deliveries: u64,
    /// Requests with their deadlines.
    pub requests: u64,
    /// Audit entries.
    pub entries: u64,
    /// Signed checkpoints.
    pub checkpoints: u64,
}

fn source(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("the embedded store: {e}"))
}

/// Copies the SQLite store at `from` into the empty database `to`.
pub(in crate::store) fn import_sqlite(
    from: &Path,
    to: &PostgresUrl,
) -> Result<Imported, StoreError> {
    let mut sqlite = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Backend(format!("{}: {e}", from.display())))?;
    // One snapshot of the source for the whole copy.
    let read = sqlite.transaction().map_err(source)?;
    let pool = Pool::new(to)?;
    let mut client = pool.get()?;
    migrate(&mut client)?;
    let mut tx = client.transaction().map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SEQUENCER_LOCK])
        .map_err(backend)?;
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM items) OR EXISTS (SELECT 1 FROM audit)
                 OR EXISTS (SELECT 1 FROM seal) OR EXISTS (SELECT 1 FROM checkpoints)",
            &[],
        )
        .map_err(backend)?;
    if col::<bool>(&row, 0)? {
        return Err(StoreError::BadBatch(format!(
            "the database {to} is not empty: an import goes into a new database only"
        )));
    }
    let imported = Imported {
        items: items(&read, &mut tx)?,
        deliveries: inbox(&read, &mut tx)?,
        requests: requests(&read, &mut tx)?,
        entries: audit(&read, &mut tx)?,
        checkpoints: checkpoints(&read, &mut tx)?,
    };
    seal(&read, &mut tx)?;
    tx.commit().map_err(backend)?;
    Ok(imported)
}

/// Runs `select` on the source and `insert` on the target for each row,
/// with the row's columns read by `get`; returns the rows copied.
fn copy<P>(
    read: &rusqlite::Transaction<'_>,
    tx: &mut Transaction<'_>,
    select: &str,
    insert: &str,
    get: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<P>,
    params: impl Fn(&P) -> Vec<&(dyn ::postgres::types::ToSql + Sync)>,
) -> Result<u64, StoreError> {
    let stmt = tx.prepare(insert).map_err(backend)?;
    let mut rows = read.prepare(select).map_err(source)?;
    let mut rows = rows.query([]).map_err(source)?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(source)? {
        let values = get(row).map_err(source)?;
        tx.execute(&stmt, &params(&values)).map_err(backend)?;
        n += 1;
    }
    Ok(n)
}

type ItemRow = (
    i64,
    String,
    String,
    String,
    Vec<u8>,
    i64,
    i64,
    Option<i64>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn items(read: &rusqlite::Transaction<'_>, tx: &mut Transaction<'_>) -> Result<u64, StoreError> {
    let n = copy(
        read,
        tx,
        "SELECT seq, item_ref, sender, item_id, digest, priority, accepted_at, expires_at,
                envelope, sender_cert, portions, receipt, purge_after, purged_at, audit_index
         FROM items ORDER BY seq",
        "INSERT INTO items (seq, item_ref, sender, item_id, digest, priority, accepted_at,
                            expires_at, envelope, sender_cert, portions, receipt, purge_after,
                            purged_at, audit_index)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        |r| -> rusqlite::Result<ItemRow> {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
                r.get(12)?,
                r.get(13)?,
                r.get(14)?,
            ))
        },
        |v| {
            vec![
                &v.0, &v.1, &v.2, &v.3, &v.4, &v.5, &v.6, &v.7, &v.8, &v.9, &v.10, &v.11, &v.12,
                &v.13, &v.14,
            ]
        },
    );
    // A NOT NULL column here: only a store of a version before acceptance
    // indices were kept has NULLs, and those items cannot be moved as is.
    let n = n.map_err(|e| match e {
        StoreError::Backend(m) if m.contains("audit_index") => StoreError::Corrupt(format!(
            "an item without its acceptance index (a store older than this gateway's): {m}"
        )),
        e => e,
    })?;
    // Later items take the ids after the imported ones.
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('items', 'seq'), COALESCE(MAX(seq), 0) + 1, false)
         FROM items",
        &[],
    )
    .map_err(backend)?;
    Ok(n)
}

type InboxRow = (
    String,
    i64,
    Vec<u8>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn inbox(read: &rusqlite::Transaction<'_>, tx: &mut Transaction<'_>) -> Result<u64, StoreError> {
    copy(
        read,
        tx,
        "SELECT recipient, item_seq, released, lease_until, deliveries, acked_at, refused_at,
                expired_at
         FROM inbox ORDER BY item_seq, recipient",
        "INSERT INTO inbox (recipient, item_seq, released, lease_until, deliveries, acked_at,
                            refused_at, expired_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        |r| -> rusqlite::Result<InboxRow> {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        },
        |v| vec![&v.0, &v.1, &v.2, &v.3, &v.4, &v.5, &v.6, &v.7],
    )
}

fn requests(read: &rusqlite::Transaction<'_>, tx: &mut Transaction<'_>) -> Result<u64, StoreError> {
    copy(
        read,
        tx,
        "SELECT item_seq, due, answered_at, answer_ref FROM requests ORDER BY item_seq",
        "INSERT INTO requests (item_seq, due, answered_at, answer_ref) VALUES ($1, $2, $3, $4)",
        |r| -> rusqlite::Result<(i64, i64, Option<i64>, Option<String>)> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        },
        |v| vec![&v.0, &v.1, &v.2, &v.3],
    )
}

fn audit(read: &rusqlite::Transaction<'_>, tx: &mut Transaction<'_>) -> Result<u64, StoreError> {
    // Opening the embedded store (the caller's check) fills every leaf
    // hash; one missing here is refused by the target's NOT NULL.
    copy(
        read,
        tx,
        "SELECT idx, entry, leaf FROM audit ORDER BY idx",
        "INSERT INTO audit (idx, entry, leaf) VALUES ($1, $2, $3)",
        |r| -> rusqlite::Result<(i64, Vec<u8>, Option<Vec<u8>>)> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        },
        |v| vec![&v.0, &v.1, &v.2],
    )
}

fn checkpoints(
    read: &rusqlite::Transaction<'_>,
    tx: &mut Transaction<'_>,
) -> Result<u64, StoreError> {
    copy(
        read,
        tx,
        "SELECT size, note, issued_at FROM checkpoints ORDER BY size",
        "INSERT INTO checkpoints (size, note, issued_at) VALUES ($1, $2, $3)",
        |r| -> rusqlite::Result<(i64, String, i64)> { Ok((r.get(0)?, r.get(1)?, r.get(2)?)) },
        |v| vec![&v.0, &v.1, &v.2],
    )
}

fn seal(read: &rusqlite::Transaction<'_>, tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    copy(
        read,
        tx,
        "SELECT id, size, note FROM seal",
        "INSERT INTO seal (id, size, note) VALUES ($1, $2, $3)",
        |r| -> rusqlite::Result<(i64, i64, String)> { Ok((r.get(0)?, r.get(1)?, r.get(2)?)) },
        // SMALLINT on this side.
        |v| vec![&0i16, &v.1, &v.2],
    )
    .map(|_| ())
}
