//! The PostgreSQL group commit's fast path: every item of an append call,
//! with all their inbox rows, in one statement.
//!
//! Owns [`apply_all`], which applies a call's batches inside the
//! transaction `append.rs` opened, without savepoints, in a number of
//! round trips that does not grow with the items: each change that is not
//! an item (leases, acknowledgements, sweeps: rare beside submissions) in
//! its own statement as before, then every item in one
//! `INSERT … SELECT … FROM UNNEST … ON CONFLICT (sender, item_id) DO
//! NOTHING` with their inbox rows in the same statement. The unique
//! constraint still decides whether an item is new, whichever instance
//! stored the first copy; the copies it did not insert are read back in
//! one statement to tell a duplicate from a conflict. An item's acceptance
//! index depends on which batches before it were written, so the items go
//! in with the indices they take when every one is new, and only when some
//! were not are the others' indices written again, in one statement.
//! Requests and answers (rare) stay one statement each, in batch order.
//!
//! It must never decide differently from the batch-by-batch path: a call
//! where a change names an item of the same call, or that starts a new
//! log, is applied batch by batch (`changes.rs`); any failure is
//! returned, and the caller writes the whole call again with a savepoint
//! per batch.

use ::postgres::types::Type;
use ::postgres::Transaction;
use std::collections::{HashMap, HashSet};

use super::changes::{apply, change_applies, no_acceptance_entry};
use super::items::{already_stored, insert_items, requests};
use super::{backend, int};
use crate::audit::rfc9162::leaf_hash;
use crate::store::steps::Step;
use crate::store::{Batch, Change, NewItem, Outcome, StoreError};

/// What the first pass made of a batch.
enum Pass {
    /// A change other than an item: `None` when it applied, else why not.
    Changed(Option<Outcome>),
    /// An item, to be inserted with the others.
    Item,
}

/// Applies `batches`, their entries taking `next..`: each batch's step, in
/// order. An error means some batch failed (or the database did): nothing
/// of the transaction may be committed.
pub(super) fn apply_all(
    tx: &mut Transaction<'_>,
    batches: &[Batch],
    next: u64,
) -> Result<Vec<Step>, StoreError> {
    if !in_one_statement(batches) {
        let mut next = next;
        let mut steps = Vec::with_capacity(batches.len());
        for batch in batches {
            let step = apply(tx, batch, next)?;
            if let Step::Written { leaves, .. } = &step {
                next += leaves.len() as u64;
            }
            steps.push(step);
        }
        return Ok(steps);
    }
    // The other changes first, in order: none of them names an item of
    // this call, so running them before the items changes nothing they
    // find or do.
    let mut passes = Vec::with_capacity(batches.len());
    for batch in batches {
        passes.push(match &batch.change {
            Change::Item(_) if batch.entries.is_empty() => return Err(no_acceptance_entry()),
            Change::Item(_) => Pass::Item,
            change => Pass::Changed(change_applies(tx, change)?),
        });
    }
    // The items, at the indices they take when every one is new.
    let mut tentative = HashMap::new();
    let mut at = next;
    for (i, (batch, pass)) in batches.iter().zip(&passes).enumerate() {
        match pass {
            Pass::Changed(Some(_)) => {}
            Pass::Changed(None) => at += batch.entries.len() as u64,
            Pass::Item => {
                tentative.insert(i, int(at)?);
                at += batch.entries.len() as u64;
            }
        }
    }
    let items: Vec<(usize, &NewItem)> = batches
        .iter()
        .enumerate()
        .filter_map(|(i, b)| match &b.change {
            Change::Item(item) => Some((i, item.as_ref())),
            _ => None,
        })
        .collect();
    let inserted = insert_items(tx, &items, &tentative)?;
    // Each batch's step at the indices it takes; an item not inserted is
    // resolved below.
    let mut steps: Vec<Option<Step>> = Vec::with_capacity(batches.len());
    let mut moved: (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    let mut stored = Vec::new();
    let mut at = next;
    for (i, (batch, pass)) in batches.iter().zip(passes).enumerate() {
        let seq = tentative.get(&i).and_then(|t| inserted.get(t));
        let written = match pass {
            Pass::Changed(Some(outcome)) => {
                steps.push(Some(Step::Skipped(outcome)));
                continue;
            }
            Pass::Changed(None) => true,
            Pass::Item => seq.is_some(),
        };
        if !written {
            steps.push(None);
            continue;
        }
        if let (Some(seq), Some(was)) = (seq, tentative.get(&i)) {
            if *was != int(at)? {
                moved.0.push(*seq);
                moved.1.push(int(at)?);
            }
            stored.push((i, *seq));
        }
        steps.push(Some(Step::Written {
            first: at,
            leaves: batch.entries.iter().map(|e| leaf_hash(e.bytes())).collect(),
        }));
        at += batch.entries.len() as u64;
    }
    // A copy that was not new moved the later items' indices.
    if !moved.0.is_empty() {
        tx.execute_typed(
            "UPDATE items SET audit_index = u.idx
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS u (seq, idx) WHERE items.seq = u.seq",
            &[(&moved.0, Type::INT8_ARRAY), (&moved.1, Type::INT8_ARRAY)],
        )
        .map_err(backend)?;
    }
    let not_new: Vec<(usize, &NewItem)> = items
        .iter()
        .filter(|(i, _)| steps[*i].is_none())
        .copied()
        .collect();
    for (i, outcome) in already_stored(tx, &not_new)? {
        steps[i] = Some(Step::Skipped(outcome));
    }
    // Requests and answers, in batch order: an answer closes a request of
    // this call only if that request came first, as batch by batch.
    for (i, seq) in stored {
        if let Change::Item(item) = &batches[i].change {
            requests(tx, item, seq)?;
        }
    }
    steps
        .into_iter()
        .map(|s| s.ok_or_else(|| StoreError::Invariant("an item neither new nor stored".into())))
        .collect()
}

/// Whether the call's items can go in one statement: it has items, and no
/// other change of it names one of them (it would run before the item is
/// there) or starts a new log.
fn in_one_statement(batches: &[Batch]) -> bool {
    let refs: HashSet<&str> = batches
        .iter()
        .filter_map(|b| match &b.change {
            Change::Item(item) => Some(item.item_ref.as_str()),
            _ => None,
        })
        .collect();
    !refs.is_empty()
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
