//! The PostgreSQL group commit's fast path: every item of an append call,
//! with all their inbox rows, in one statement, before the sequencer's
//! lock.
//!
//! Owns the two halves of a call that [`fits`]: [`before_the_lock`] inserts
//! every item with its inbox rows in one `INSERT … SELECT … FROM UNNEST …
//! ON CONFLICT (sender, item_id) DO NOTHING` (the bulk of a group commit's
//! bytes), and reads back, in one statement, what to answer for the copies
//! it did not insert (duplicate or conflict); all this before the
//! sequencer's lock, because none of it needs the log's index, so that
//! other instances' transactions are not kept waiting behind it. The
//! unique constraint still decides whether an item is new, whichever
//! instance stored the first copy: a copy whose first is not yet committed
//! waits for that commit, then is a duplicate (or a conflict). Then
//! [`under_the_lock`] applies each change that is not an item (leases,
//! acknowledgements, sweeps: rare beside submissions, a statement each as
//! before) and gives each batch its step at the indices it takes from the
//! log's end, and each inserted item its acceptance index, which
//! `append.rs` writes with the log's entries. Requests and answers (rare)
//! stay one statement each, in batch order. [`one_by_one`] is the path of
//! a call that does not fit, under the lock from the start.
//!
//! It must never decide differently from the batch-by-batch path: a call
//! where a change names an item of the same call, where two items share a
//! sender and id (the second's answer needs the first's index), or that
//! starts a new log, goes batch by batch (`changes.rs`); any failure is
//! returned, and the caller writes the whole call again with a savepoint
//! per batch, taking the lock first.

use ::postgres::Transaction;
use std::collections::{HashMap, HashSet};

use super::changes::{apply, change_applies, no_acceptance_entry};
use super::int;
use super::items::{already_stored, insert_items, requests};
use crate::audit::rfc9162::leaf_hash;
use crate::store::steps::Step;
use crate::store::{Batch, Change, NewItem, Outcome, StoreError};

/// A call's items as [`before_the_lock`] left them.
pub(super) struct Early {
    /// The sequence number of each item inserted, by batch number.
    inserted: HashMap<usize, i64>,
    /// What to answer for each item the database already held, by batch
    /// number.
    not_new: HashMap<usize, Outcome>,
}

/// The acceptance index each item inserted before the lock takes: sequence
/// numbers and indices, side by side, as `append.rs` writes them.
#[derive(Default)]
pub(super) struct Indexed {
    pub(super) seq: Vec<i64>,
    pub(super) index: Vec<i64>,
}

/// Inserts the items of `batches` (a call that [`fits`]) and their inbox
/// rows, without their acceptance indices, and reads what to answer for
/// those not new. An error means nothing of the transaction may be
/// committed.
pub(super) fn before_the_lock(
    tx: &mut Transaction<'_>,
    batches: &[Batch],
) -> Result<Early, StoreError> {
    let mut items: Vec<(usize, &NewItem, Option<i64>)> = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        if let Change::Item(item) = &batch.change {
            if batch.entries.is_empty() {
                return Err(no_acceptance_entry());
            }
            items.push((i, item.as_ref(), None));
        }
    }
    let inserted = insert_items(tx, &items)?;
    let not_new: Vec<(usize, &NewItem)> = items
        .iter()
        .filter(|(i, _, _)| !inserted.contains_key(i))
        .map(|(i, item, _)| (*i, *item))
        .collect();
    let not_new = already_stored(tx, &not_new)?.into_iter().collect();
    Ok(Early { inserted, not_new })
}

/// Under the sequencer's lock, the log's next index being `next`: applies
/// the call's other changes, its requests and answers, and returns each
/// batch's step, in order, with the indices the inserted items take.
pub(super) fn under_the_lock(
    tx: &mut Transaction<'_>,
    batches: &[Batch],
    early: Early,
    next: u64,
) -> Result<(Vec<Step>, Indexed), StoreError> {
    let Early {
        inserted,
        mut not_new,
    } = early;
    let mut steps = Vec::with_capacity(batches.len());
    let mut indexed = Indexed::default();
    let mut stored = Vec::new();
    let mut at = next;
    for (i, batch) in batches.iter().enumerate() {
        // None of the other changes names an item of this call (`fits`),
        // so running them after the items changes nothing they find or do.
        let skipped = match &batch.change {
            Change::Item(item) => match inserted.get(&i) {
                Some(seq) => {
                    indexed.seq.push(*seq);
                    indexed.index.push(int(at)?);
                    stored.push((item.as_ref(), *seq));
                    None
                }
                None => Some(not_new.remove(&i).ok_or_else(|| {
                    StoreError::Invariant("an item neither new nor stored".into())
                })?),
            },
            change => change_applies(tx, change)?,
        };
        steps.push(match skipped {
            Some(outcome) => Step::Skipped(outcome),
            None => {
                let first = at;
                at += batch.entries.len() as u64;
                Step::Written {
                    first,
                    leaves: batch.entries.iter().map(|e| leaf_hash(e.bytes())).collect(),
                }
            }
        });
    }
    // Requests and answers, in batch order: an answer closes a request of
    // this call only if that request came first, as batch by batch.
    for (item, seq) in stored {
        requests(tx, item, seq)?;
    }
    Ok((steps, indexed))
}

/// Applies `batches` one after the other, their entries taking `next..`:
/// each batch's step, in order (a call that does not [`fit`](fits), under
/// the lock from the start). An error means some batch failed (or the
/// database did): nothing of the transaction may be committed.
pub(super) fn one_by_one(
    tx: &mut Transaction<'_>,
    batches: &[Batch],
    next: u64,
) -> Result<Vec<Step>, StoreError> {
    let mut next = next;
    let mut steps = Vec::with_capacity(batches.len());
    for batch in batches {
        let step = apply(tx, batch, next)?;
        if let Step::Written { leaves, .. } = &step {
            next += leaves.len() as u64;
        }
        steps.push(step);
    }
    Ok(steps)
}

/// Whether the call's items can go in one statement before the lock: it
/// has items, no two of them share a sender and id, and no other change
/// of it names one of them (it would run after the item is there) or
/// starts a new log.
pub(super) fn fits(batches: &[Batch]) -> bool {
    let items: Vec<&NewItem> = batches
        .iter()
        .filter_map(|b| match &b.change {
            Change::Item(item) => Some(item.as_ref()),
            _ => None,
        })
        .collect();
    let refs: HashSet<&str> = items.iter().map(|it| it.item_ref.as_str()).collect();
    let ids: HashSet<(&str, &str)> = items
        .iter()
        .map(|it| (it.sender.as_str(), it.item_id.as_str()))
        .collect();
    !items.is_empty()
        && refs.len() == items.len()
        && ids.len() == items.len()
        && batches.iter().all(|b| match &b.change {
            Change::Item(_) | Change::Nothing => true,
            Change::Lease { item_ref, .. }
            | Change::Refuse { item_ref, .. }
            | Change::Ack { item_ref, .. }
            | Change::Expire { item_ref, .. }
            | Change::Purge { item_ref, .. } => !refs.contains(item_ref.as_str()),
            _ => false,
        })
}
