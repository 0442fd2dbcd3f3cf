//! Items and their inbox rows, as the PostgreSQL write path stores them.
//!
//! Owns the statements that store accepted items: [`insert_items`], any
//! number of items with all their inbox rows in one statement (`INSERT …
//! SELECT … FROM UNNEST … ON CONFLICT DO NOTHING`, so that the unique
//! constraints decide, whichever instance stored a first copy), [`already_stored`], what to answer for the copies not inserted
//! (the stored receipt, or a conflict) in one statement, and [`requests`],
//! a request's due time and the request an answer closes. One item alone
//! ([`insert_item`], the batch-by-batch path) goes through the same
//! statements. It never decides whether an item is accepted: the gateway
//! did, and the constraint decides only whether it is new.

use ::postgres::types::Type;
use ::postgres::Transaction;
use std::collections::HashMap;

use super::{backend, col, int, uint};
use crate::domain::bytes::to_cbor;
use crate::store::sqlite::{priority_rank, stored_receipt};
use crate::store::{NewItem, Outcome, StoreError};

/// Every item of the call and its inbox rows, inserted when new, in the
/// call's order. A copy is not new when it meets a stored or uncommitted
/// row of the same sender and id, or of the same reference (made from
/// them): without a conflict target, both unique constraints decide, so
/// that two instances inserting one item at once never fail on the one
/// that is not the target. Returns each inserted row's sequence number
/// and reference, which also ties each inbox row to its item. The acceptance
/// index is NULL for an item inserted before the sequencer's lock, and
/// filled in under it, with the log's entries (`append.rs`).
const INSERT_ITEMS: &str = "
    WITH new AS (
        INSERT INTO items (item_ref, sender, item_id, digest, priority, accepted_at, expires_at,
                           envelope, sender_cert, portions, receipt, purge_after, audit_index)
        SELECT item_ref, sender, item_id, digest, priority, accepted_at, expires_at,
               envelope, sender_cert, portions, receipt, purge_after, audit_index
        FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::BIGINT[], $6::BIGINT[],
                    $7::BIGINT[], $8::BYTEA[], $9::BYTEA[], $10::BYTEA[], $11::BYTEA[],
                    $12::BIGINT[], $13::BIGINT[])
             WITH ORDINALITY AS u (item_ref, sender, item_id, digest, priority, accepted_at,
                                   expires_at, envelope, sender_cert, portions, receipt,
                                   purge_after, audit_index, n)
        ORDER BY n
        ON CONFLICT DO NOTHING
        RETURNING seq, item_ref
    ), delivered AS (
        INSERT INTO inbox (recipient, item_seq, released)
        SELECT d.recipient, new.seq, d.released
        FROM UNNEST($14::TEXT[], $15::TEXT[], $16::BYTEA[]) AS d (item_ref, recipient, released)
        JOIN new ON new.item_ref = d.item_ref
    )
    SELECT seq, item_ref FROM new";

/// Inserts one item and its inbox entries, its acceptance entry at
/// `index`; or, when the sender already stored this id (the unique
/// constraint decides, whichever instance stored it), what to answer
/// instead (nothing written).
pub(super) fn insert_item(
    tx: &mut Transaction<'_>,
    item: &NewItem,
    index: u64,
) -> Result<Option<Outcome>, StoreError> {
    let inserted = insert_items(tx, &[(0, item, Some(int(index)?))])?;
    match inserted.into_values().next() {
        Some(seq) => {
            requests(tx, item, seq)?;
            Ok(None)
        }
        None => Ok(already_stored(tx, &[(0, item)])?
            .into_iter()
            .next()
            .map(|(_, outcome)| outcome)),
    }
}

/// Records a stored item's request (when its answer is due) and closes
/// the request it answers: the first answer closes it, a later one finds
/// it closed and changes nothing. Rare beside other items: a statement
/// each.
pub(super) fn requests(
    tx: &mut Transaction<'_>,
    item: &NewItem,
    seq: i64,
) -> Result<(), StoreError> {
    if let Some(due) = item.answer_due {
        tx.execute_typed(
            "INSERT INTO requests (item_seq, due) VALUES ($1, $2)",
            &[(&seq, Type::INT8), (&due, Type::INT8)],
        )
        .map_err(backend)?;
    }
    if let Some(request) = &item.answers {
        tx.execute_typed(
            "UPDATE requests SET answered_at = $1, answer_ref = $2
             WHERE answered_at IS NULL
               AND item_seq = (SELECT seq FROM items WHERE item_ref = $3)",
            &[
                (&item.accepted_at, Type::INT8),
                (&item.item_ref, Type::TEXT),
                (request, Type::TEXT),
            ],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// Inserts `items` (batch number, item, acceptance index when known)
/// with their inbox rows, in one statement; returns the sequence number
/// of each inserted one by its batch number.
pub(super) fn insert_items(
    tx: &mut Transaction<'_>,
    items: &[(usize, &NewItem, Option<i64>)],
) -> Result<HashMap<usize, i64>, StoreError> {
    let n = items.len();
    let mut item_ref = Vec::with_capacity(n);
    let mut sender = Vec::with_capacity(n);
    let mut item_id = Vec::with_capacity(n);
    let mut digest = Vec::with_capacity(n);
    let mut priority = Vec::with_capacity(n);
    let mut accepted_at = Vec::with_capacity(n);
    let mut expires_at = Vec::with_capacity(n);
    let mut envelope = Vec::with_capacity(n);
    let mut sender_cert = Vec::with_capacity(n);
    let mut portions = Vec::with_capacity(n);
    let mut receipt = Vec::with_capacity(n);
    let mut purge_after = Vec::with_capacity(n);
    let mut audit_index = Vec::with_capacity(n);
    let (mut of, mut recipient, mut released) = (Vec::new(), Vec::new(), Vec::new());
    let mut batch_of = HashMap::with_capacity(n);
    for (i, item, index) in items {
        batch_of.insert(item.item_ref.as_str(), *i);
        item_ref.push(item.item_ref.as_str());
        sender.push(item.sender.as_str());
        item_id.push(item.item_id.as_str());
        digest.push(&item.digest[..]);
        priority.push(priority_rank(item.priority));
        accepted_at.push(item.accepted_at);
        expires_at.push(item.expires_at);
        envelope.push(item.envelope.as_slice());
        sender_cert.push(item.sender_certificate.as_slice());
        portions.push(to_cbor(&item.portions));
        receipt.push(to_cbor(&item.receipt));
        purge_after.push(item.purge_after);
        audit_index.push(*index);
        for (r, p) in &item.deliveries {
            of.push(item.item_ref.as_str());
            recipient.push(r.as_str());
            released.push(to_cbor(p));
        }
    }
    let rows = tx
        .query_typed(
            INSERT_ITEMS,
            &[
                (&item_ref, Type::TEXT_ARRAY),
                (&sender, Type::TEXT_ARRAY),
                (&item_id, Type::TEXT_ARRAY),
                (&digest, Type::BYTEA_ARRAY),
                (&priority, Type::INT8_ARRAY),
                (&accepted_at, Type::INT8_ARRAY),
                (&expires_at, Type::INT8_ARRAY),
                (&envelope, Type::BYTEA_ARRAY),
                (&sender_cert, Type::BYTEA_ARRAY),
                (&portions, Type::BYTEA_ARRAY),
                (&receipt, Type::BYTEA_ARRAY),
                (&purge_after, Type::INT8_ARRAY),
                (&audit_index, Type::INT8_ARRAY),
                (&of, Type::TEXT_ARRAY),
                (&recipient, Type::TEXT_ARRAY),
                (&released, Type::BYTEA_ARRAY),
            ],
        )
        .map_err(backend)?;
    rows.iter()
        .map(|r| {
            let item_ref: String = col(r, 1)?;
            let i = batch_of.get(item_ref.as_str()).ok_or_else(|| {
                StoreError::Invariant(format!("{item_ref} was inserted but not asked for"))
            })?;
            Ok((*i, col(r, 0)?))
        })
        .collect()
}

/// What to answer for each of `items` (batch number, item) that the
/// database already held, stored by this call or before it: the stored
/// receipt for the same content, a conflict for other content. One
/// statement for all of them.
pub(super) fn already_stored(
    tx: &mut Transaction<'_>,
    items: &[(usize, &NewItem)],
) -> Result<Vec<(usize, Outcome)>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let sender: Vec<&str> = items.iter().map(|(_, it)| it.sender.as_str()).collect();
    let item_id: Vec<&str> = items.iter().map(|(_, it)| it.item_id.as_str()).collect();
    let rows = tx
        .query_typed(
            "SELECT u.n, i.digest, i.receipt, i.audit_index
             FROM UNNEST($1::TEXT[], $2::TEXT[]) WITH ORDINALITY AS u (sender, item_id, n)
             JOIN items i ON i.sender = u.sender AND i.item_id = u.item_id",
            &[(&sender, Type::TEXT_ARRAY), (&item_id, Type::TEXT_ARRAY)],
        )
        .map_err(backend)?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let n: i64 = col(row, 0)?;
        let digest: Vec<u8> = col(row, 1)?;
        let receipt: Vec<u8> = col(row, 2)?;
        found.insert(n, (digest, receipt, uint(col(row, 3)?)?));
    }
    let mut out = Vec::with_capacity(items.len());
    for (n, (i, item)) in (1_i64..).zip(items) {
        let (digest, receipt, index) = found.remove(&n).ok_or_else(|| {
            StoreError::Invariant(format!(
                "item {} was neither inserted nor found stored",
                item.item_id
            ))
        })?;
        out.push((
            *i,
            if digest[..] == item.digest[..] {
                Outcome::Duplicate(stored_receipt(&receipt, Some(index))?)
            } else {
                Outcome::Conflict
            },
        ));
    }
    Ok(out)
}
