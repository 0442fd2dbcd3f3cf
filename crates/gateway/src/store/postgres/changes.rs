//! Each batch's change on its own: the batch-by-batch path of the
//! PostgreSQL write path.
//!
//! Owns [`apply`], one batch's statements (the item's through
//! `items.rs`), used when each batch runs in a savepoint of its own and
//! when `bulk.rs` cannot take a call whole, and [`change_applies`], a
//! change other than an item, which `bulk.rs` runs too. Every statement
//! goes with its parameters' types, so that it takes one round trip (no
//! prepare first). Like the rest of the write path it never decides
//! whether a change is allowed: each change's own condition, in SQL, says
//! whether it applies.

use ::postgres::types::Type;
use ::postgres::Transaction;

use super::items::insert_item;
use super::{backend, col, int};
use crate::audit::rfc9162::leaf_hash;
use crate::domain::bytes::to_cbor;
use crate::domain::item::Portion;
use crate::store::steps::Step;
use crate::store::{Batch, Change, Outcome, StoreError, Unchanged};

/// Applies one batch (inside its savepoint, or batch by batch when
/// `bulk.rs` cannot take the call); its entries take `next..`.
pub(super) fn apply(
    tx: &mut Transaction<'_>,
    batch: &Batch,
    next: u64,
) -> Result<Step, StoreError> {
    let skipped = match &batch.change {
        Change::Item(item) => {
            if batch.entries.is_empty() {
                return Err(no_acceptance_entry());
            }
            insert_item(tx, item, next)?
        }
        change => change_applies(tx, change)?,
    };
    if let Some(outcome) = skipped {
        return Ok(Step::Skipped(outcome));
    }
    // Inserted with every batch's, by `finish`.
    let leaves = batch.entries.iter().map(|e| leaf_hash(e.bytes())).collect();
    Ok(Step::Written {
        first: next,
        leaves,
    })
}

pub(super) fn no_acceptance_entry() -> StoreError {
    StoreError::BadBatch("an item batch without its acceptance entry".into())
}

/// Applies a change that is not an item: `None` when it applied, else what
/// to answer instead (nothing written).
pub(super) fn change_applies(
    tx: &mut Transaction<'_>,
    change: &Change,
) -> Result<Option<Outcome>, StoreError> {
    let applies = match change {
        Change::Nothing => true,
        Change::Item(_) => {
            return Err(StoreError::BadBatch(
                "an item is not a change of an existing row".into(),
            ))
        }
        // The inbox row is locked for the update and skipped when another
        // transaction holds it: one lease is never handed to two instances.
        Change::Lease {
            recipient,
            item_ref,
            until,
            free_at,
        } => {
            tx.execute_typed(
                "UPDATE inbox SET lease_until = $1, deliveries = deliveries + 1
                 WHERE (recipient, item_seq) IN (
                     SELECT b.recipient, b.item_seq FROM inbox b JOIN items i ON i.seq = b.item_seq
                     WHERE b.recipient = $2 AND i.item_ref = $3 AND b.acked_at IS NULL
                       AND b.refused_at IS NULL AND b.expired_at IS NULL
                       AND ($4::BIGINT IS NULL OR b.lease_until <= $4)
                     FOR UPDATE OF b SKIP LOCKED)",
                &[
                    (until, Type::INT8),
                    (&recipient.as_str(), Type::TEXT),
                    (item_ref, Type::TEXT),
                    (free_at, Type::INT8),
                ],
            )
            .map_err(backend)?
                > 0
        }
        Change::Refuse {
            recipient,
            item_ref,
            at,
        } => {
            tx.execute_typed(
                "UPDATE inbox SET refused_at = $1
                 WHERE recipient = $2 AND item_seq = (SELECT seq FROM items WHERE item_ref = $3)",
                &[
                    (at, Type::INT8),
                    (&recipient.as_str(), Type::TEXT),
                    (item_ref, Type::TEXT),
                ],
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
                .query_typed_opt(
                    "SELECT b.item_seq, b.acked_at FROM inbox b JOIN items i ON i.seq = b.item_seq
                     WHERE b.recipient = $1 AND i.item_ref = $2 AND b.refused_at IS NULL
                     FOR UPDATE OF b",
                    &[(&recipient.as_str(), Type::TEXT), (item_ref, Type::TEXT)],
                )
                .map_err(backend)?;
            let Some(row) = row else {
                return Ok(Some(Outcome::Unchanged(Unchanged::NotFound)));
            };
            if col::<Option<i64>>(&row, 1)?.is_some() {
                return Ok(Some(Outcome::Unchanged(Unchanged::AlreadyDone)));
            }
            let seq: i64 = col(&row, 0)?;
            tx.execute_typed(
                "UPDATE inbox SET acked_at = $1 WHERE recipient = $2 AND item_seq = $3",
                &[
                    (at, Type::INT8),
                    (&recipient.as_str(), Type::TEXT),
                    (&seq, Type::INT8),
                ],
            )
            .map_err(backend)?;
            true
        }
        Change::Expire {
            item_ref,
            recipient,
            at,
        } => {
            tx.execute_typed(
                "UPDATE inbox SET expired_at = $1
                 WHERE recipient = $2 AND acked_at IS NULL AND refused_at IS NULL AND expired_at IS NULL
                   AND item_seq = (SELECT seq FROM items WHERE item_ref = $3
                                   AND expires_at IS NOT NULL AND expires_at <= $1)",
                &[
                    (at, Type::INT8),
                    (&recipient.as_str(), Type::TEXT),
                    (item_ref, Type::TEXT),
                ],
            )
            .map_err(backend)?
                > 0
        }
        // The envelope holds the header and labels, the portions the
        // content: both go; digest, receipt and audit entries stay.
        Change::Purge { item_ref, at } => {
            tx.execute_typed(
                "UPDATE items SET envelope = ''::bytea, portions = $1, purged_at = $2
                 WHERE item_ref = $3 AND purged_at IS NULL
                   AND purge_after IS NOT NULL AND purge_after <= $2",
                &[
                    (&to_cbor(&Vec::<Portion>::new()), Type::BYTEA),
                    (at, Type::INT8),
                    (item_ref, Type::TEXT),
                ],
            )
            .map_err(backend)?
                > 0
        }
        Change::NewLog { stale } => {
            for size in stale {
                tx.execute_typed(
                    "DELETE FROM checkpoints WHERE size = $1",
                    &[(&int(*size)?, Type::INT8)],
                )
                    .map_err(backend)?;
            }
            true
        }
    };
    Ok((!applies).then_some(Outcome::Unchanged(Unchanged::NotFound)))
}
