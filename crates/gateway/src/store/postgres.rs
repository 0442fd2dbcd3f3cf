//! The PostgreSQL store: several gateway instances on one database.
//!
//! Owns the connection to a PostgreSQL server named by a `postgres://` URL
//! (a small pool of synchronous `postgres` clients), the schema (versioned
//! migrations in `postgres/migrations/`, applied at open and by
//! `passerelle db migrate`, see `postgres/migrate.rs`) and the reads of the
//! [`Store`] contract; the write path is in `postgres/append.rs` (the
//! transaction), `postgres/bulk.rs` (a call's items in one statement),
//! `postgres/items.rs` and `postgres/changes.rs`. Like the
//! SQLite backend it persists what the gateway decided and never decides,
//! reads the clock or holds the gateway's key (it signs its seal through
//! the [`Sealer`]).
//!
//! What makes several processes safe is in the database, not here: every
//! appending transaction takes one transaction-level advisory lock (the
//! sequencer) before it reads the next audit index, so indices are
//! gap-free and one Merkle tree results whichever instance appends; an
//! item id is unique per sender by a unique constraint (`ON CONFLICT`);
//! leases update the inbox row under `FOR UPDATE SKIP LOCKED`. Commits are
//! durable when they return: each session sets `synchronous_commit = on`,
//! whatever the server's default.
//!
//! Connections (the URL and a small pool) are in `postgres/pool.rs`; calls
//! are kept off async threads by `postgres/off_runtime.rs`.
//!
//! Over 600 lines: every read of the contract, each with its SQL beside it
//! as in the SQLite backend, so the two can be compared read by read.

mod append;
mod arrivals;
mod bulk;
mod changes;
mod import;
mod items;
mod migrate;
mod off_runtime;
mod pool;
mod tls;

use ::postgres::types::Type;
use ::postgres::{Client, GenericClient, Row};
use std::sync::{Arc, Mutex};

use super::sqlite::{decode, principal, priority_from_rank, stored_receipt};
use super::{
    ArrivalHook, Batch, Durable, InboxEntry, Leased, OpenRequest, Outcome, RequestState, Sealer,
    Store, StoreError, Swept,
};
use crate::audit::rfc9162::{Hash, RightEdge};
use crate::domain::item::Portion;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::Receipt;

pub use import::Imported;
pub(super) use migrate::migrate;
use off_runtime::{off_runtime, OffRuntime};
use pool::Pool;
pub use pool::PostgresUrl;

pub(super) fn backend(e: ::postgres::Error) -> StoreError {
    // The client says only "db error" or "error performing TLS handshake"
    // and keeps the why (the server's message, the certificate's fault)
    // in its sources: the operator needs the why.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    StoreError::Backend(text)
}

/// Column `i` of `row`, as `T`: a type mismatch is corruption, not a panic.
pub(super) fn col<'a, T: ::postgres::types::FromSql<'a>>(
    row: &'a Row,
    i: usize,
) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// An index or size as PostgreSQL's BIGINT.
pub(super) fn int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Proof(format!("{v} is out of range")))
}

/// A stored BIGINT that must be an index or size.
pub(super) fn uint(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative index or size {v}")))
}

/// The PostgreSQL store.
pub(super) struct PostgresStore {
    pool: Pool,
    sealer: Arc<dyn Sealer>,
    /// The right edge of the log as this process last wrote or read it,
    /// only to sign the seal; caught up inside each appending transaction.
    edge: Mutex<RightEdge>,
    /// The thread waking long-polls on arrivals elsewhere, once asked for.
    listener: Mutex<Option<arrivals::Listener>>,
}

/// Rows `start..end` of the audit table, `column` read by `get`: exactly
/// `end - start` of them, or [`StoreError::Invariant`] naming the first
/// index missing.
pub(super) fn read_range<T>(
    client: &mut impl GenericClient,
    start: u64,
    end: u64,
    column: &str,
    get: impl Fn(u64, &Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = client
        .query_typed(
            &format!("SELECT idx, {column} FROM audit WHERE idx >= $1 AND idx < $2 ORDER BY idx"),
            &[(&int(start)?, Type::INT8), (&int(end)?, Type::INT8)],
        )
        .map_err(backend)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let idx = uint(col(row, 0)?)?;
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

/// A stored leaf hash, which must be 32 bytes.
pub(super) fn leaf_of(idx: u64, row: &Row) -> Result<Hash, StoreError> {
    let leaf: Vec<u8> = col(row, 1)?;
    Hash::try_from(leaf.as_slice()).map_err(|_| {
        StoreError::Invariant(format!("the leaf hash of audit entry {idx} is malformed"))
    })
}

pub(super) fn next_index(client: &mut impl GenericClient) -> Result<u64, StoreError> {
    let row = client
        .query_typed_one("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit", &[])
        .map_err(backend)?;
    uint(col(&row, 0)?)
}

/// The recipients an item was released to at submission, sorted.
fn recipients_of(client: &mut Client, seq: i64) -> Result<Vec<PrincipalId>, StoreError> {
    let rows = client
        .query(
            "SELECT recipient FROM inbox WHERE item_seq = $1 ORDER BY recipient",
            &[&seq],
        )
        .map_err(backend)?;
    rows.iter().map(|r| principal(col(r, 0)?)).collect()
}

/// Opens the store at `url` (see [`PostgresStore::open`]), every call of
/// it kept off async threads.
pub(super) fn open(
    url: &PostgresUrl,
    sealer: Arc<dyn Sealer>,
) -> Result<OffRuntime<PostgresStore>, StoreError> {
    off_runtime(|| PostgresStore::open(url, sealer)).map(OffRuntime)
}

/// Copies the embedded store at `from` into the empty database `to`
/// (see `postgres/import.rs`).
pub(super) fn import(from: &std::path::Path, to: &PostgresUrl) -> Result<Imported, StoreError> {
    off_runtime(|| import::import_sqlite(from, to))
}

impl PostgresStore {
    /// Connects to the database `url` names and brings its schema up to
    /// date. Checks nothing against signed heads: the gateway's start
    /// checks do.
    fn open(url: &PostgresUrl, sealer: Arc<dyn Sealer>) -> Result<Self, StoreError> {
        let pool = Pool::new(url)?;
        migrate(&mut *pool.get()?)?;
        Ok(PostgresStore {
            pool,
            sealer,
            edge: Mutex::new(RightEdge::new()),
            listener: Mutex::new(None),
        })
    }

    /// Applies the migrations the database `url` names lacks; returns
    /// those applied (none when it was up to date).
    pub(super) fn migrate_only(url: &PostgresUrl) -> Result<Vec<String>, StoreError> {
        off_runtime(|| {
            let pool = Pool::new(url)?;
            let applied = migrate(&mut *pool.get()?)?;
            Ok(applied)
        })
    }

    /// Whether the database holds anything of an audit log. A database
    /// without the schema holds nothing (and is not changed).
    pub(super) fn holds_a_log(url: &PostgresUrl) -> Result<bool, StoreError> {
        off_runtime(|| Self::holds_a_log_here(url))
    }

    fn holds_a_log_here(url: &PostgresUrl) -> Result<bool, StoreError> {
        let pool = Pool::new(url)?;
        let mut client = pool.get()?;
        let row = client
            .query_one(
                "SELECT to_regclass('audit') IS NOT NULL AND to_regclass('seal') IS NOT NULL
                        AND to_regclass('checkpoints') IS NOT NULL",
                &[],
            )
            .map_err(backend)?;
        if !col::<bool>(&row, 0)? {
            return Ok(false);
        }
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM audit) OR EXISTS (SELECT 1 FROM seal)
                     OR EXISTS (SELECT 1 FROM checkpoints)",
                &[],
            )
            .map_err(backend)?;
        col(&row, 0)
    }

    fn range<T>(
        &self,
        start: u64,
        end: u64,
        column: &str,
        get: impl Fn(u64, &Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        if start > end {
            return Err(StoreError::Proof(format!("no entries {start}..{end}")));
        }
        let mut client = self.pool.get()?;
        let size = next_index(&mut *client)?;
        if end > size {
            return Err(StoreError::Proof(format!(
                "entries {start}..{end} are past the end of the log ({size})"
            )));
        }
        read_range(&mut *client, start, end, column, get)
    }
}

impl Store for PostgresStore {
    fn append(&self, batches: Vec<Batch>) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        self.append_batches(batches)
    }

    fn size(&self) -> Result<u64, StoreError> {
        next_index(&mut *self.pool.get()?)
    }

    fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        self.range(start, end, "leaf", leaf_of)
    }

    fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.range(start, end, "entry", |_, row| col(row, 1))
    }

    fn seal(&self) -> Result<Option<String>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt("SELECT note FROM seal WHERE id = 0", &[])
            .map_err(backend)?;
        row.map(|r| col(&r, 0)).transpose()
    }

    fn pending(
        &self,
        recipient: &PrincipalId,
        now: i64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let rows = self
            .pool
            .get()?
            .query(
                "SELECT i.item_ref, i.sender, i.item_id, i.priority, i.accepted_at, b.deliveries, q.due
                 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 LEFT JOIN requests q ON q.item_seq = i.seq AND q.answered_at IS NULL
                 WHERE b.recipient = $1 AND b.acked_at IS NULL AND b.refused_at IS NULL
                   AND b.expired_at IS NULL AND i.purged_at IS NULL
                   AND b.lease_until <= $2 AND (i.expires_at IS NULL OR i.expires_at > $2)
                 ORDER BY i.priority, q.due IS NULL, q.due, i.audit_index
                 LIMIT $3",
                &[&recipient.as_str(), &now, &i64::from(limit)],
            )
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let deliveries: i64 = col(r, 5)?;
                Ok(InboxEntry {
                    item_ref: col(r, 0)?,
                    sender: principal(col(r, 1)?)?,
                    item_id: col(r, 2)?,
                    priority: priority_from_rank(col(r, 3)?)?,
                    accepted_at: col(r, 4)?,
                    deliveries: u32::try_from(deliveries)
                        .map_err(|_| StoreError::Corrupt(format!("delivery count {deliveries}")))?,
                    due: col(r, 6)?,
                })
            })
            .collect()
    }

    fn peek(&self, recipient: &PrincipalId, item_ref: &str) -> Result<Option<Leased>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT i.sender, i.envelope, i.sender_cert, i.portions, b.released, i.accepted_at
                 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE b.recipient = $1 AND i.item_ref = $2 AND b.acked_at IS NULL
                   AND b.refused_at IS NULL AND b.expired_at IS NULL AND i.purged_at IS NULL",
                &[&recipient.as_str(), &item_ref],
            )
            .map_err(backend)?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(Leased {
            sender: principal(col(&r, 0)?)?,
            envelope: col(&r, 1)?,
            sender_certificate: col(&r, 2)?,
            portions: decode::<Vec<Portion>>(col(&r, 3)?)?,
            released: decode(col(&r, 4)?)?,
            accepted_at: col(&r, 5)?,
        }))
    }

    fn sweep_due(&self, now: i64, limit: u32) -> Result<Vec<Swept>, StoreError> {
        let mut client = self.pool.get()?;
        let mut swept = Vec::new();
        let rows = client
            .query(
                "SELECT i.item_ref, b.recipient FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE i.expires_at IS NOT NULL AND i.expires_at <= $1
                   AND b.acked_at IS NULL AND b.refused_at IS NULL AND b.expired_at IS NULL
                 ORDER BY i.seq, b.recipient LIMIT $2",
                &[&now, &i64::from(limit)],
            )
            .map_err(backend)?;
        for r in &rows {
            swept.push(Swept::Expired {
                item_ref: col(r, 0)?,
                recipient: principal(col(r, 1)?)?,
            });
        }
        let left = i64::from(limit) - swept.len() as i64;
        let rows = client
            .query(
                "SELECT item_ref, digest FROM items
                 WHERE purge_after IS NOT NULL AND purge_after <= $1 AND purged_at IS NULL
                 ORDER BY seq LIMIT $2",
                &[&now, &left.max(0)],
            )
            .map_err(backend)?;
        for r in &rows {
            let digest: Vec<u8> = col(r, 1)?;
            let digest: [u8; 32] = digest
                .try_into()
                .map_err(|_| StoreError::Corrupt("digest is not 32 bytes".into()))?;
            swept.push(Swept::Purged {
                item_ref: col(r, 0)?,
                digest,
            });
        }
        Ok(swept)
    }

    fn request(&self, item_ref: &str) -> Result<Option<RequestState>, StoreError> {
        let mut client = self.pool.get()?;
        let row = client
            .query_opt(
                "SELECT i.seq, i.sender, q.due, q.answered_at
                 FROM requests q JOIN items i ON i.seq = q.item_seq WHERE i.item_ref = $1",
                &[&item_ref],
            )
            .map_err(backend)?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(RequestState {
            sender: principal(col(&r, 1)?)?,
            recipients: recipients_of(&mut client, col(&r, 0)?)?,
            due: col(&r, 2)?,
            answered_at: col(&r, 3)?,
        }))
    }

    fn open_requests(
        &self,
        due_by: i64,
        concerning: Option<&PrincipalId>,
        limit: u32,
    ) -> Result<Vec<OpenRequest>, StoreError> {
        let mut client = self.pool.get()?;
        let rows = client
            .query(
                "SELECT i.seq, i.item_ref, i.sender, i.item_id, i.priority, i.accepted_at, q.due
                 FROM requests q JOIN items i ON i.seq = q.item_seq
                 WHERE q.answered_at IS NULL AND q.due <= $1
                   AND ($2::TEXT IS NULL OR i.sender = $2
                        OR EXISTS (SELECT 1 FROM inbox b WHERE b.item_seq = i.seq AND b.recipient = $2
                                   AND b.refused_at IS NULL AND b.expired_at IS NULL))
                 ORDER BY q.due, i.audit_index
                 LIMIT $3",
                &[&due_by, &concerning.map(|p| p.as_str()), &i64::from(limit)],
            )
            .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(OpenRequest {
                item_ref: col(r, 1)?,
                sender: principal(col(r, 2)?)?,
                item_id: col(r, 3)?,
                priority: priority_from_rank(col(r, 4)?)?,
                accepted_at: col(r, 5)?,
                due: col(r, 6)?,
                recipients: recipients_of(&mut client, col(r, 0)?)?,
            });
        }
        Ok(out)
    }

    fn receipt(
        &self,
        sender: &PrincipalId,
        item_ref: &str,
    ) -> Result<Option<Durable<Receipt>>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT receipt, audit_index FROM items WHERE sender = $1 AND item_ref = $2",
                &[&sender.as_str(), &item_ref],
            )
            .map_err(backend)?;
        row.map(|r| {
            let bytes: Vec<u8> = col(&r, 0)?;
            stored_receipt(&bytes, Some(uint(col(&r, 1)?)?))
        })
        .transpose()
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        // A standby in recovery, or a session forced read-only, cannot
        // write; a lost server fails to give a client. Changes nothing.
        let mut client = self.pool.get()?;
        let mut tx = client.transaction().map_err(backend)?;
        let row = tx
            .query_one(
                "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'",
                &[],
            )
            .map_err(backend)?;
        let writable: bool = col(&row, 0)?;
        tx.rollback().map_err(backend)?;
        if writable {
            Ok(())
        } else {
            Err(StoreError::Backend(
                "the database is read-only (a standby, or read-only sessions)".into(),
            ))
        }
    }

    fn gauges(&self, now: i64) -> Result<super::StoreGauges, StoreError> {
        let mut client = self.pool.get()?;
        let rows = client
            .query(
                "SELECT i.priority, COUNT(*), MIN(i.accepted_at)
                 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE b.acked_at IS NULL AND b.refused_at IS NULL AND b.expired_at IS NULL
                   AND i.purged_at IS NULL
                 GROUP BY i.priority",
                &[],
            )
            .map_err(backend)?;
        let mut inbox = Vec::with_capacity(rows.len());
        for r in &rows {
            let depth: i64 = col(r, 1)?;
            inbox.push((
                priority_from_rank(col(r, 0)?)?,
                depth.max(0) as u64,
                col(r, 2)?,
            ));
        }
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM requests WHERE answered_at IS NULL AND due <= $1",
                &[&now],
            )
            .map_err(backend)?;
        let overdue: i64 = col(&row, 0)?;
        Ok(super::StoreGauges {
            inbox,
            overdue: overdue.max(0) as u64,
        })
    }

    fn items_present(&self, item_refs: &[String]) -> Result<Vec<bool>, StoreError> {
        let mut client = self.pool.get()?;
        let mut present = std::collections::HashSet::new();
        for chunk in item_refs.chunks(1000) {
            let rows = client
                .query(
                    "SELECT item_ref FROM items WHERE item_ref = ANY($1)",
                    &[&chunk],
                )
                .map_err(backend)?;
            for r in &rows {
                present.insert(col::<String>(r, 0)?);
            }
        }
        Ok(item_refs.iter().map(|r| present.contains(r)).collect())
    }

    fn deliveries_open(
        &self,
        deliveries: &[(String, PrincipalId)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut client = self.pool.get()?;
        let stmt = client
            .prepare(
                "SELECT EXISTS (SELECT 1 FROM inbox b JOIN items i ON i.seq = b.item_seq
                 WHERE i.item_ref = $1 AND b.recipient = $2 AND b.acked_at IS NULL
                   AND b.refused_at IS NULL AND b.expired_at IS NULL AND i.purged_at IS NULL)",
            )
            .map_err(backend)?;
        deliveries
            .iter()
            .map(|(r, who)| {
                let row = client
                    .query_one(&stmt, &[r, &who.as_str()])
                    .map_err(backend)?;
                col(&row, 0)
            })
            .collect()
    }

    fn add_cosignatures(
        &self,
        size: u64,
        current: &str,
        cosigned: &str,
    ) -> Result<bool, StoreError> {
        super::ensure_extends(size, current, cosigned)?;
        let mut client = self.pool.get()?;
        // Compare and swap in one statement: an instance that cosigned
        // first wins, the other sees `false` and reads the note again.
        let changed = client
            .execute(
                "UPDATE checkpoints SET note = $1 WHERE size = $2 AND note = $3",
                &[&cosigned, &int(size)?, &current],
            )
            .map_err(backend)?;
        Ok(changed == 1)
    }

    fn save_checkpoint(&self, size: u64, note: &str, now: i64) -> Result<(), StoreError> {
        let mut client = self.pool.get()?;
        let mut tx = client.transaction().map_err(backend)?;
        // Instances save checkpoints one at a time, so that "never below
        // the latest" holds across them.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHECKPOINTS_LOCK])
            .map_err(backend)?;
        let row = tx
            .query_one("SELECT MAX(size) FROM checkpoints", &[])
            .map_err(backend)?;
        if let Some(latest) = col::<Option<i64>>(&row, 0)? {
            let latest = uint(latest)?;
            if size < latest {
                return Err(StoreError::Invariant(format!(
                    "checkpoint of size {size} after one of size {latest}: the log would go back"
                )));
            }
            if size == latest {
                return Ok(());
            }
        }
        tx.execute(
            "INSERT INTO checkpoints (size, note, issued_at) VALUES ($1, $2, $3)",
            &[&int(size)?, &note, &now],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn checkpoint_of_size(&self, size: u64) -> Result<Option<String>, StoreError> {
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT note FROM checkpoints WHERE size = $1",
                &[&int(size)?],
            )
            .map_err(backend)?;
        row.map(|r| col(&r, 0)).transpose()
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let rows = self
            .pool
            .get()?
            .query("SELECT size, note FROM checkpoints ORDER BY size", &[])
            .map_err(backend)?;
        rows.iter()
            .map(|r| Ok((uint(col(r, 0)?)?, col(r, 1)?)))
            .collect()
    }

    fn latest_checkpoint_above(
        &self,
        index: Option<u64>,
    ) -> Result<Option<(u64, String)>, StoreError> {
        // -1 is below every size: with no index, any checkpoint qualifies.
        let above = match index {
            Some(i) => int(i)?,
            None => -1,
        };
        let row = self
            .pool
            .get()?
            .query_opt(
                "SELECT size, note FROM checkpoints WHERE size > $1 ORDER BY size DESC LIMIT 1",
                &[&above],
            )
            .map_err(backend)?;
        row.map(|r| Ok((uint(col(&r, 0)?)?, col(&r, 1)?)))
            .transpose()
    }

    fn watch_arrivals(&self, wake: ArrivalHook) -> Result<(), StoreError> {
        let listener = arrivals::listen(self.pool.connector().clone(), wake);
        *pool::lock(&self.listener) = Some(listener);
        Ok(())
    }
}

/// The advisory lock keys of this schema: one sequencer for every
/// appending transaction, one for saving checkpoints, one for migrations.
/// Transaction-level, so that a crashed instance's lock ends with its
/// session ("passerel" in ASCII, then +1, +2).
pub(super) const SEQUENCER_LOCK: i64 = 0x7061_7373_6572_656c;
const CHECKPOINTS_LOCK: i64 = SEQUENCER_LOCK + 1;
pub(super) const MIGRATIONS_LOCK: i64 = SEQUENCER_LOCK + 2;
