//! The PostgreSQL write path: a call's batches in one transaction, under
//! the sequencer.
//!
//! Owns [`PostgresStore::append`]'s transaction: the sequencer's advisory
//! lock taken first (so that the next index read after it is the log's end
//! for every instance, and indices stay gap-free), the seal checked against
//! the stored log, each batch's change, then every batch's entries with
//! their leaf hashes, the new seal and the arrivals' notification in one
//! statement, one commit. The round trips of a group commit are few and do
//! not grow with its entries: batches run without savepoints, and only when
//! one fails is the transaction written again with a savepoint per batch,
//! so that the failing one is rolled back alone. Like the SQLite write
//! path it never decides whether a change is allowed and keeps only the
//! log's right edge to sign the seal, caught up from the stored leaf hashes
//! when another instance appended meanwhile.

use ::postgres::Transaction;

use super::{
    arrivals, backend, col, int, leaf_of, next_index, read_range, uint, PostgresStore,
    SEQUENCER_LOCK,
};
use crate::audit::rfc9162::{leaf_hash, Hash, RightEdge};
use crate::domain::bytes::to_cbor;
use crate::domain::item::Portion;
use crate::store::sqlite::{priority_rank, stored_receipt};
use crate::store::steps::{appended_entries, committed, starts_a_new_log, Step};
use crate::store::{Batch, Change, NewItem, Outcome, StoreError, TreeHead, Unchanged};

/// Whether a transaction's batches each run in a savepoint of their own.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Savepoints {
    /// None: two round trips fewer per batch. Any batch failing rolls the
    /// whole transaction back, to be written again with savepoints.
    Without,
    /// One per batch, so that a failing batch is rolled back alone.
    PerBatch,
}

/// What a committed transaction did: each batch's step, and the log's
/// right edge after it.
type Written = (Vec<Result<Step, StoreError>>, RightEdge);

impl PostgresStore {
    pub(super) fn append_batches(
        &self,
        batches: Vec<Batch>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        let new_log = starts_a_new_log(&batches)?;
        // The edge's lock orders this process's appends; the advisory lock
        // orders them with every other instance's.
        let mut edge_guard = super::pool::lock(&self.edge);
        let mut client = self.pool.get()?;
        // A failed transaction leaves the edge empty, and the next one
        // catches up from the database.
        let edge = std::mem::take(&mut *edge_guard);
        // Batches rarely fail: first without savepoints, and only if one
        // did, all of them again, each in its own.
        let written = match self.write(
            &mut client,
            &batches,
            new_log,
            edge.clone(),
            Savepoints::Without,
        )? {
            Some(written) => written,
            None => self
                .write(&mut client, &batches, new_log, edge, Savepoints::PerBatch)?
                .ok_or_else(|| {
                    StoreError::Backend("a batch failed without its savepoint".into())
                })?,
        };
        let (steps, edge) = written;
        // Only now is the edge the stored log's.
        *edge_guard = edge;
        Ok(committed(steps))
    }

    /// One transaction of `batches`, committed; `None` when a batch failed
    /// [`Savepoints::Without`] them (nothing was written).
    fn write(
        &self,
        client: &mut ::postgres::Client,
        batches: &[Batch],
        new_log: bool,
        edge: RightEdge,
        savepoints: Savepoints,
    ) -> Result<Option<Written>, StoreError> {
        let mut tx = client.transaction().map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SEQUENCER_LOCK])
            .map_err(backend)?;
        let mut edge = if new_log {
            rehash(&mut tx)?;
            let next = next_index(&mut tx)?;
            let mut edge = RightEdge::new();
            for h in leaves_in(&mut tx, 0, next)? {
                edge.push(h);
            }
            edge
        } else {
            caught_up(&mut tx, edge)?
        };
        let mut steps = Vec::with_capacity(batches.len());
        let mut entries: Vec<&[u8]> = Vec::new();
        for batch in batches {
            let step = match savepoints {
                Savepoints::Without => match apply(&mut tx, batch, edge.size()) {
                    Ok(step) => step,
                    // Dropped: rolled back.
                    Err(_) => return Ok(None),
                },
                Savepoints::PerBatch => {
                    let mut savepoint = tx.savepoint("batch").map_err(backend)?;
                    match apply(&mut savepoint, batch, edge.size()) {
                        Ok(step) => {
                            savepoint.commit().map_err(backend)?;
                            step
                        }
                        Err(e) => {
                            savepoint.rollback().map_err(backend)?;
                            steps.push(Err(e));
                            continue;
                        }
                    }
                }
            };
            if let Step::Written { leaves, .. } = &step {
                for h in leaves {
                    edge.push(*h);
                }
                entries.extend(batch.entries.iter().map(|e| e.bytes()));
            }
            steps.push(Ok(step));
        }
        let seal = if appended_entries(&steps) {
            let head = TreeHead {
                size: edge.size(),
                root: edge.root(),
            };
            let note = self
                .sealer
                .seal(head)
                .map_err(|e| StoreError::Invariant(format!("cannot seal the audit log: {e}")))?;
            Some((head.size, note))
        } else {
            None
        };
        let arrived = recipients_of_stored(batches, &steps);
        finish(&mut tx, &entries, edge.size(), seal, &arrived)?;
        tx.commit().map_err(backend)?;
        Ok(Some((steps, edge)))
    }
}

/// Writes the entries of the written batches (taking the indices up to
/// `size`, with their leaf hashes), the seal of the log they leave, and
/// the arrivals' notification, in one statement: one round trip for the
/// log's part of a group commit, whatever the number of batches.
fn finish(
    tx: &mut Transaction<'_>,
    entries: &[&[u8]],
    size: u64,
    seal: Option<(u64, String)>,
    arrived: &[&str],
) -> Result<(), StoreError> {
    if entries.is_empty() && arrived.is_empty() {
        return Ok(());
    }
    let first = size - entries.len() as u64;
    let indices = (0..entries.len() as u64)
        .map(|i| int(first + i))
        .collect::<Result<Vec<i64>, _>>()?;
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let hashes: Vec<&[u8]> = leaves.iter().map(|h| &h[..]).collect();
    let (sealed, note) = match seal {
        Some((size, note)) => (Some(int(size)?), Some(note)),
        None => (None, None),
    };
    // Data-modifying CTEs run once, whether or not the query reads them;
    // the seal's row is written only when there is a seal to write.
    tx.execute(
        "WITH entries AS (
             INSERT INTO audit (idx, entry, leaf)
             SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[], $3::BYTEA[])
         ), sealed AS (
             INSERT INTO seal (id, size, note) SELECT 0, $4::BIGINT, $5::TEXT WHERE $5::TEXT IS NOT NULL
             ON CONFLICT (id) DO UPDATE SET size = EXCLUDED.size, note = EXCLUDED.note
         )
         SELECT pg_notify($6, r) FROM UNNEST($7::TEXT[]) AS r",
        &[
            &indices,
            &entries,
            &hashes,
            &sealed,
            &note,
            &arrivals::CHANNEL,
            &arrived,
        ],
    )
    .map_err(backend)?;
    Ok(())
}

/// The recipients, each once, of the items the written batches store.
fn recipients_of_stored<'a>(
    batches: &'a [Batch],
    steps: &[Result<Step, StoreError>],
) -> Vec<&'a str> {
    let mut recipients: Vec<&str> = batches
        .iter()
        .zip(steps)
        .filter(|(_, step)| matches!(step, Ok(Step::Written { .. })))
        .filter_map(|(batch, _)| match &batch.change {
            Change::Item(item) => Some(item),
            _ => None,
        })
        .flat_map(|item| item.deliveries.iter().map(|(r, _)| r.as_str()))
        .collect();
    recipients.sort_unstable();
    recipients.dedup();
    recipients
}

/// The right edge of the stored log, checked against the seal: `edge`
/// extended by the leaf hashes other instances appended since this one
/// last saw the log, read under the sequencer.
fn caught_up(tx: &mut Transaction<'_>, mut edge: RightEdge) -> Result<RightEdge, StoreError> {
    // One round trip for both; after the lock, so that it sees every
    // commit before it.
    let row = tx
        .query_one(
            "SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit),
                    (SELECT COALESCE(MAX(size), 0) FROM seal WHERE id = 0)",
            &[],
        )
        .map_err(backend)?;
    let next = uint(col(&row, 0)?)?;
    let sealed = uint(col(&row, 1)?)?;
    // Every appending transaction seals what it leaves: a log that is not
    // the sealed one was changed behind the gateway's back, and appending
    // to it would sign over the change.
    if sealed != next {
        return Err(StoreError::Invariant(format!(
            "the stored audit log holds {next} entries but its seal covers {sealed}: refusing to append"
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

fn leaves_in(tx: &mut Transaction<'_>, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
    read_range(tx, start, end, "leaf", leaf_of)
}

/// Makes every stored leaf hash again from its entry (a new log started
/// over what is stored).
fn rehash(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    let rows = tx
        .query("SELECT idx, entry FROM audit ORDER BY idx", &[])
        .map_err(backend)?;
    let stmt = tx
        .prepare("UPDATE audit SET leaf = $1 WHERE idx = $2")
        .map_err(backend)?;
    for row in &rows {
        let idx: i64 = col(row, 0)?;
        let entry: Vec<u8> = col(row, 1)?;
        tx.execute(&stmt, &[&&leaf_hash(&entry)[..], &idx])
            .map_err(backend)?;
    }
    Ok(())
}

/// Applies one batch inside its savepoint; its entries take `next..`.
fn apply(tx: &mut Transaction<'_>, batch: &Batch, next: u64) -> Result<Step, StoreError> {
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
        // The inbox row is locked for the update and skipped when another
        // transaction holds it: one lease is never handed to two instances.
        Change::Lease {
            recipient,
            item_ref,
            until,
            free_at,
        } => {
            tx.execute(
                "UPDATE inbox SET lease_until = $1, deliveries = deliveries + 1
                 WHERE (recipient, item_seq) IN (
                     SELECT b.recipient, b.item_seq FROM inbox b JOIN items i ON i.seq = b.item_seq
                     WHERE b.recipient = $2 AND i.item_ref = $3 AND b.acked_at IS NULL
                       AND b.refused_at IS NULL AND b.expired_at IS NULL
                       AND ($4::BIGINT IS NULL OR b.lease_until <= $4)
                     FOR UPDATE OF b SKIP LOCKED)",
                &[until, &recipient.as_str(), item_ref, free_at],
            )
            .map_err(backend)?
                > 0
        }
        Change::Refuse {
            recipient,
            item_ref,
            at,
        } => {
            tx.execute(
                "UPDATE inbox SET refused_at = $1
                 WHERE recipient = $2 AND item_seq = (SELECT seq FROM items WHERE item_ref = $3)",
                &[at, &recipient.as_str(), item_ref],
            )
            .map_err(backend)?;
            true
        }
        Change::Ack {
            recipient,
            item_ref,
            at,
        } => {
            let row = tx
                .query_opt(
                    "SELECT b.item_seq, b.acked_at FROM inbox b JOIN items i ON i.seq = b.item_seq
                     WHERE b.recipient = $1 AND i.item_ref = $2 AND b.refused_at IS NULL
                     FOR UPDATE OF b",
                    &[&recipient.as_str(), item_ref],
                )
                .map_err(backend)?;
            let Some(row) = row else {
                return Ok(Step::Skipped(Outcome::Unchanged(Unchanged::NotFound)));
            };
            if col::<Option<i64>>(&row, 1)?.is_some() {
                return Ok(Step::Skipped(Outcome::Unchanged(Unchanged::AlreadyDone)));
            }
            let seq: i64 = col(&row, 0)?;
            tx.execute(
                "UPDATE inbox SET acked_at = $1 WHERE recipient = $2 AND item_seq = $3",
                &[at, &recipient.as_str(), &seq],
            )
            .map_err(backend)?;
            true
        }
        Change::Expire {
            item_ref,
            recipient,
            at,
        } => {
            tx.execute(
                "UPDATE inbox SET expired_at = $1
                 WHERE recipient = $2 AND acked_at IS NULL AND refused_at IS NULL AND expired_at IS NULL
                   AND item_seq = (SELECT seq FROM items WHERE item_ref = $3
                                   AND expires_at IS NOT NULL AND expires_at <= $1)",
                &[at, &recipient.as_str(), item_ref],
            )
            .map_err(backend)?
                > 0
        }
        // The envelope holds the header and labels, the portions the
        // content: both go; digest, receipt and audit entries stay.
        Change::Purge { item_ref, at } => {
            tx.execute(
                "UPDATE items SET envelope = ''::bytea, portions = $1, purged_at = $2
                 WHERE item_ref = $3 AND purged_at IS NULL
                   AND purge_after IS NOT NULL AND purge_after <= $2",
                &[&to_cbor(&Vec::<Portion>::new()), at, item_ref],
            )
            .map_err(backend)?
                > 0
        }
        Change::NewLog { stale } => {
            for size in stale {
                tx.execute("DELETE FROM checkpoints WHERE size = $1", &[&int(*size)?])
                    .map_err(backend)?;
            }
            true
        }
    };
    if !applies {
        return Ok(Step::Skipped(Outcome::Unchanged(Unchanged::NotFound)));
    }
    // Inserted with every batch's, by `finish`.
    let leaves = batch.entries.iter().map(|e| leaf_hash(e.bytes())).collect();
    Ok(Step::Written {
        first: next,
        leaves,
    })
}

/// Inserts one item and its inbox entries, its acceptance entry at
/// `index`; or, when the sender already stored this id (the unique
/// constraint decides, whichever instance stored it), what to answer
/// instead (nothing written).
fn insert_item(
    tx: &mut Transaction<'_>,
    item: &NewItem,
    index: u64,
) -> Result<Option<Outcome>, StoreError> {
    let inserted = tx
        .query_opt(
            "INSERT INTO items (item_ref, sender, item_id, digest, priority, accepted_at, expires_at,
                                envelope, sender_cert, portions, receipt, purge_after, audit_index)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (sender, item_id) DO NOTHING
             RETURNING seq",
            &[
                &item.item_ref,
                &item.sender.as_str(),
                &item.item_id,
                &&item.digest[..],
                &priority_rank(item.priority),
                &item.accepted_at,
                &item.expires_at,
                &item.envelope,
                &item.sender_certificate,
                &to_cbor(&item.portions),
                &to_cbor(&item.receipt),
                &item.purge_after,
                &int(index)?,
            ],
        )
        .map_err(backend)?;
    let Some(row) = inserted else {
        let row = tx
            .query_one(
                "SELECT digest, receipt, audit_index FROM items WHERE sender = $1 AND item_id = $2",
                &[&item.sender.as_str(), &item.item_id],
            )
            .map_err(backend)?;
        let digest: Vec<u8> = col(&row, 0)?;
        return Ok(Some(if digest[..] == item.digest[..] {
            let receipt: Vec<u8> = col(&row, 1)?;
            Outcome::Duplicate(stored_receipt(&receipt, Some(uint(col(&row, 2)?)?))?)
        } else {
            Outcome::Conflict
        }));
    };
    let seq: i64 = col(&row, 0)?;
    if let Some(due) = item.answer_due {
        tx.execute(
            "INSERT INTO requests (item_seq, due) VALUES ($1, $2)",
            &[&seq, &due],
        )
        .map_err(backend)?;
    }
    if let Some(request) = &item.answers {
        // The first answer closes the request; a later one finds it
        // closed and changes nothing.
        tx.execute(
            "UPDATE requests SET answered_at = $1, answer_ref = $2
             WHERE answered_at IS NULL
               AND item_seq = (SELECT seq FROM items WHERE item_ref = $3)",
            &[&item.accepted_at, &item.item_ref, request],
        )
        .map_err(backend)?;
    }
    let recipients: Vec<&str> = item.deliveries.iter().map(|(r, _)| r.as_str()).collect();
    let released: Vec<Vec<u8>> = item.deliveries.iter().map(|(_, p)| to_cbor(p)).collect();
    tx.execute(
        "INSERT INTO inbox (recipient, item_seq, released)
         SELECT r, $1, p FROM UNNEST($2::TEXT[], $3::BYTEA[]) AS d (r, p)",
        &[&seq, &recipients, &released],
    )
    .map_err(backend)?;
    Ok(None)
}
