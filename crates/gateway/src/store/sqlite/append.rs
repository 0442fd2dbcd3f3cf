//! The SQLite write path: batches appended in one IMMEDIATE transaction.
//!
//! Owns [`SqliteStore::append`]'s transaction: the batches written
//! together, or, when one of them fails, the group written again with each
//! batch in its own savepoint (one batch's failure leaves the others, and
//! never a batch half written), its entries inserted
//! with their leaf hashes at the next indices, the seal replaced once for
//! the whole transaction, one commit and so one fsync for the group. It
//! never decides whether a change is allowed (the gateway did) and never
//! holds the Merkle tree: to sign the seal it keeps only the log's right
//! edge (the O(log n) roots of its perfect subtrees), caught up from the
//! stored leaf hashes when another process appended meanwhile.

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::{backend, decode, leaf_of, priority_rank, read_range, rehash, SqliteStore};
use crate::audit::event::BoundedEntry;
use crate::audit::rfc9162::{leaf_hash, Hash, RightEdge};
use crate::domain::bytes::to_cbor;
use crate::domain::item::Portion;
use crate::domain::receipt::Receipt;
use crate::store::steps::{appended_entries, committed, starts_a_new_log, Step};
use crate::store::{
    Batch, Change, Durable, NewItem, Outcome, Sealer, StoreError, TreeHead, Unchanged,
};

/// How the batches of one transaction are kept apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// No savepoints: the first batch that fails abandons the whole
    /// transaction. A savepoint copies every page a batch touches into a
    /// sub-journal first, and the batches of a group touch the same pages
    /// (the ends of the items, inbox and audit tables and their indices),
    /// so this is the form a group is tried in.
    Together,
    /// A savepoint per batch: a batch that fails is rolled back alone and
    /// the others are committed.
    PerBatch,
}

impl SqliteStore {
    pub(super) fn append_batches(
        &self,
        batches: Vec<Batch>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        let new_log = starts_a_new_log(&batches)?;
        let mut guard = self.lock();
        let inner = &mut *guard;
        // Almost every group has no failing batch: it is written without
        // savepoints. One that has is written again, from the start, with
        // a savepoint per batch, so each batch's outcome is the same as if
        // it had been the only form.
        let written = match self.write(inner, &batches, new_log, Isolation::Together) {
            Ok(None) => self.write(inner, &batches, new_log, Isolation::PerBatch),
            other => other,
        };
        match written {
            Ok(Some(outcomes)) => Ok(outcomes),
            Ok(None) => Err(StoreError::Backend(
                "a group written batch by batch was abandoned".into(),
            )),
            Err(e) => {
                // A transaction that failed may have left the stored log
                // other than this process thinks (a commit whose answer was
                // lost): the next one catches up from the store alone.
                inner.edge = RightEdge::default();
                Err(e)
            }
        }
    }

    /// One transaction over `batches`; `None` when, kept [`Isolation::Together`],
    /// a batch failed and the transaction was rolled back whole.
    fn write(
        &self,
        inner: &mut super::Inner,
        batches: &[Batch],
        new_log: bool,
        isolation: Isolation,
    ) -> Result<Option<Vec<Result<Outcome, StoreError>>>, StoreError> {
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let mut edge = if new_log {
            // The operator starts a new log over what is stored, whatever
            // the seal says: the leaf hashes are made again from the
            // entries, and the edge from them.
            rehash(&tx)?;
            edge_from_scratch(&tx)?
        } else {
            // A clone: `inner.edge` stays the stored log's until a commit.
            caught_up(&tx, inner.edge.clone())?
        };
        let mut steps = Vec::with_capacity(batches.len());
        for batch in batches {
            let per_batch = isolation == Isolation::PerBatch;
            if per_batch {
                exec(&tx, "SAVEPOINT batch", []).map_err(backend)?;
            }
            match apply(&tx, batch, edge.size()) {
                Ok(step) => {
                    if per_batch {
                        exec(&tx, "RELEASE batch", []).map_err(backend)?;
                    }
                    if let Step::Written { leaves, .. } = &step {
                        for h in leaves {
                            edge.push(*h);
                        }
                    }
                    steps.push(Ok(step));
                }
                // Dropping `tx` rolls the whole transaction back.
                Err(_) if !per_batch => return Ok(None),
                Err(e) => {
                    exec(&tx, "ROLLBACK TO batch", []).map_err(backend)?;
                    exec(&tx, "RELEASE batch", []).map_err(backend)?;
                    steps.push(Err(e));
                }
            }
        }
        if appended_entries(&steps) {
            seal(&tx, &edge, self.sealer.as_ref())?;
        }
        tx.commit().map_err(backend)?;
        // Only now is the edge the stored log's.
        inner.edge = edge;
        Ok(Some(committed(steps)))
    }
}

/// The next index, checked against the seal, and the right edge of the
/// stored log: `edge` extended by the leaf hashes appended since it was
/// last seen (by another process), read inside `tx`.
fn caught_up(tx: &Transaction<'_>, mut edge: RightEdge) -> Result<RightEdge, StoreError> {
    let next: u64 = cached_row(tx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit", [], |r| {
        r.get(0)
    })
    .map_err(backend)?;
    let sealed: Option<u64> =
        cached_row(tx, "SELECT size FROM seal WHERE id = 0", [], |r| r.get(0))
            .optional()
            .map_err(backend)?;
    // Every appending transaction seals what it leaves: a log that is not
    // the sealed one was changed behind the gateway's back, and appending
    // to it would sign over the change.
    if sealed.unwrap_or(0) != next {
        return Err(StoreError::Invariant(format!(
            "the stored audit log holds {next} entries but its seal covers {}: refusing to append",
            sealed.unwrap_or(0)
        )));
    }
    if edge.size() > next {
        return Err(StoreError::Invariant(format!(
            "the audit log went back from {} to {next} entries",
            edge.size()
        )));
    }
    for h in leaves_in(tx, edge.size(), next)? {
        edge.push(h);
    }
    Ok(edge)
}

fn edge_from_scratch(tx: &Transaction<'_>) -> Result<RightEdge, StoreError> {
    let next: u64 = cached_row(tx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit", [], |r| {
        r.get(0)
    })
    .map_err(backend)?;
    let mut edge = RightEdge::new();
    for h in leaves_in(tx, 0, next)? {
        edge.push(h);
    }
    Ok(edge)
}

/// Leaf hashes `start..end` read inside `tx`; a missing one is an error.
fn leaves_in(tx: &Transaction<'_>, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
    read_range(tx, start, end, "leaf", |idx, row| {
        leaf_of(idx, row.get(1).map_err(backend)?)
    })
}

/// Applies one batch inside its savepoint; its entries take `next..`.
fn apply(tx: &Transaction<'_>, batch: &Batch, next: u64) -> Result<Step, StoreError> {
    let applies = match &batch.change {
        Change::Nothing => true,
        Change::Item(item) => {
            if batch.entries.is_empty() {
                return Err(StoreError::BadBatch(
                    "an item batch without its acceptance entry".into(),
                ));
            }
            if let Some(outcome) = insert_item(tx, item, next)? {
                return Ok(Step::Skipped(outcome));
            }
            true
        }
        Change::Lease {
            recipient,
            item_ref,
            until,
            free_at,
        } => {
            exec(
                tx,
                "UPDATE inbox SET lease_until = ?1, deliveries = deliveries + 1
                 WHERE recipient = ?2 AND acked_at IS NULL AND refused_at IS NULL AND expired_at IS NULL
                   AND item_seq = (SELECT seq FROM items WHERE item_ref = ?3)
                   AND (?4 IS NULL OR lease_until <= ?4)",
                params![until, recipient.as_str(), item_ref, free_at],
            )
            .map_err(backend)?
                > 0
        }
        Change::Refuse {
            recipient,
            item_ref,
            at,
        } => {
            exec(
                tx,
                "UPDATE inbox SET refused_at = ?1
                 WHERE recipient = ?2 AND item_seq = (SELECT seq FROM items WHERE item_ref = ?3)",
                params![at, recipient.as_str(), item_ref],
            )
            .map_err(backend)?;
            true
        }
        Change::Ack {
            recipient,
            item_ref,
            at,
        } => {
            let row: Option<(i64, Option<i64>)> = cached_row(
                tx,
                    "SELECT b.item_seq, b.acked_at FROM inbox b JOIN items i ON i.seq = b.item_seq
                     WHERE b.recipient = ?1 AND i.item_ref = ?2 AND b.refused_at IS NULL",
                    params![recipient.as_str(), item_ref],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            match row {
                None => return Ok(Step::Skipped(Outcome::Unchanged(Unchanged::NotFound))),
                Some((_, Some(_))) => {
                    return Ok(Step::Skipped(Outcome::Unchanged(Unchanged::AlreadyDone)))
                }
                Some((seq, None)) => {
                    exec(
                tx,
                        "UPDATE inbox SET acked_at = ?1 WHERE recipient = ?2 AND item_seq = ?3",
                        params![at, recipient.as_str(), seq],
                    )
                    .map_err(backend)?;
                    true
                }
            }
        }
        Change::Expire {
            item_ref,
            recipient,
            at,
        } => {
            exec(
                tx,
                "UPDATE inbox SET expired_at = ?1
                 WHERE recipient = ?2 AND acked_at IS NULL AND refused_at IS NULL AND expired_at IS NULL
                   AND item_seq = (SELECT seq FROM items WHERE item_ref = ?3
                                   AND expires_at IS NOT NULL AND expires_at <= ?1)",
                params![at, recipient.as_str(), item_ref],
            )
            .map_err(backend)?
                > 0
        }
        // The envelope holds the header and labels, the portions the
        // content: both go; digest, receipt and audit entries stay.
        Change::Purge { item_ref, at } => {
            exec(
                tx,
                "UPDATE items SET envelope = x'', portions = ?1, purged_at = ?2
                 WHERE item_ref = ?3 AND purged_at IS NULL
                   AND purge_after IS NOT NULL AND purge_after <= ?2",
                params![to_cbor(&Vec::<Portion>::new()), at, item_ref],
            )
            .map_err(backend)?
                > 0
        }
        Change::NewLog { stale } => {
            for size in stale {
                exec(tx, "DELETE FROM checkpoints WHERE size = ?1", params![size])
                    .map_err(backend)?;
            }
            true
        }
    };
    if !applies {
        return Ok(Step::Skipped(Outcome::Unchanged(Unchanged::NotFound)));
    }
    let leaves = insert_audit(tx, next, &batch.entries)?;
    Ok(Step::Written {
        first: next,
        leaves,
    })
}

/// `tx.execute` through the connection's statement cache: every statement
/// of the write path runs once or more per commit, so it is parsed once
/// per connection rather than at each call.
fn exec(tx: &Transaction<'_>, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params)
}

/// `tx.query_row` through the connection's statement cache.
fn cached_row<T>(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    tx.prepare_cached(sql)?.query_row(params, f)
}

/// Inserts `entries` at `next..` inside `tx`, each with its leaf hash.
fn insert_audit(
    tx: &Transaction<'_>,
    next: u64,
    entries: &[BoundedEntry],
) -> Result<Vec<Hash>, StoreError> {
    let mut stmt = tx
        .prepare_cached("INSERT INTO audit (idx, entry, leaf) VALUES (?1, ?2, ?3)")
        .map_err(backend)?;
    let mut leaves = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let leaf = leaf_hash(entry.bytes());
        stmt.execute(params![next + i as u64, entry.bytes(), &leaf[..]])
            .map_err(backend)?;
        leaves.push(leaf);
    }
    Ok(leaves)
}

/// Replaces the seal inside `tx` with a signed head of the log `edge`
/// describes (as `tx` leaves it).
fn seal(tx: &Transaction<'_>, edge: &RightEdge, sealer: &dyn Sealer) -> Result<(), StoreError> {
    let head = TreeHead {
        size: edge.size(),
        root: edge.root(),
    };
    let note = sealer
        .seal(head)
        .map_err(|e| StoreError::Invariant(format!("cannot seal the audit log: {e}")))?;
    exec(
        tx,
        "INSERT OR REPLACE INTO seal (id, size, note) VALUES (0, ?1, ?2)",
        params![head.size, note],
    )
    .map_err(backend)?;
    Ok(())
}

/// Inserts one item and its inbox entries inside `tx`, its acceptance
/// entry at `index`; or, when the sender already stored this id, what to
/// answer instead (nothing written).
fn insert_item(
    tx: &Transaction<'_>,
    item: &NewItem,
    index: u64,
) -> Result<Option<Outcome>, StoreError> {
    let existing: Option<(Vec<u8>, Vec<u8>, Option<u64>)> = cached_row(
        tx,
        "SELECT digest, receipt, audit_index FROM items WHERE sender = ?1 AND item_id = ?2",
        params![item.sender.as_str(), item.item_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
    .map_err(backend)?;
    if let Some((digest, receipt, audit_index)) = existing {
        return Ok(Some(if digest[..] == item.digest[..] {
            Outcome::Duplicate(stored_receipt(&receipt, audit_index)?)
        } else {
            Outcome::Conflict
        }));
    }
    exec(
        tx,
        "INSERT INTO items (item_ref, sender, item_id, digest, priority, accepted_at, expires_at,
                            envelope, sender_cert, portions, receipt, purge_after, audit_index)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
            index,
        ],
    )
    .map_err(backend)?;
    let seq = tx.last_insert_rowid();
    if let Some(due) = item.answer_due {
        exec(
            tx,
            "INSERT INTO requests (item_seq, due) VALUES (?1, ?2)",
            params![seq, due],
        )
        .map_err(backend)?;
    }
    if let Some(request) = &item.answers {
        // The first answer closes the request; a later one finds it
        // closed and changes nothing.
        exec(
            tx,
            "UPDATE requests SET answered_at = ?1, answer_ref = ?2
             WHERE answered_at IS NULL
               AND item_seq = (SELECT seq FROM items WHERE item_ref = ?3)",
            params![item.accepted_at, item.item_ref, request],
        )
        .map_err(backend)?;
    }
    for (recipient, released) in &item.deliveries {
        exec(
            tx,
            "INSERT INTO inbox (recipient, item_seq, released) VALUES (?1, ?2, ?3)",
            params![recipient.as_str(), seq, to_cbor(released)],
        )
        .map_err(backend)?;
    }
    Ok(None)
}

/// A stored receipt with the index its acceptance entry took, recorded
/// beside it at commit (a database made before that column existed has
/// it in the receipt itself, copied into the column when opened).
pub(in crate::store) fn stored_receipt(
    bytes: &[u8],
    audit_index: Option<u64>,
) -> Result<Durable<Receipt>, StoreError> {
    let mut receipt: Receipt = decode(bytes)?;
    match audit_index {
        Some(index) => receipt.audit_index = index,
        None => {
            return Err(StoreError::Corrupt(format!(
                "the receipt of {} has no audit index",
                receipt.item_ref
            )))
        }
    }
    Ok(Durable::committed(receipt))
}
