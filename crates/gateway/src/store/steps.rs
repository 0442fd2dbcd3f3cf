//! What each batch of an append call did inside a backend's transaction,
//! shared by the backends' write paths.
//!
//! Owns the bookkeeping around the SQL, which is the same for every
//! backend: refusing a new log beside other batches, whether a seal is
//! due, and turning each batch's step into its [`Outcome`] once the
//! transaction committed (the only place a write path makes a
//! [`Durable`]). It never touches a database.

use super::{Appended, Batch, Change, Durable, Outcome, StoreError};
use crate::audit::rfc9162::Hash;

/// What one batch did inside the transaction, before the commit.
pub(in crate::store) enum Step {
    /// Applied; its entries take `first..first + leaves.len()`.
    Written { first: u64, leaves: Vec<Hash> },
    /// Not applied, for this reason (nothing written).
    Skipped(Outcome),
}

/// Whether the call starts a new log; refused unless that batch is alone.
pub(in crate::store) fn starts_a_new_log(batches: &[Batch]) -> Result<bool, StoreError> {
    let new_log = batches
        .iter()
        .any(|b| matches!(b.change, Change::NewLog { .. }));
    if new_log && batches.len() != 1 {
        return Err(StoreError::BadBatch(
            "a new log is started by a batch of its own".into(),
        ));
    }
    Ok(new_log)
}

/// Whether some batch appended entries (so the transaction must seal).
pub(in crate::store) fn appended_entries(steps: &[Result<Step, StoreError>]) -> bool {
    steps
        .iter()
        .any(|s| matches!(s, Ok(Step::Written { leaves, .. }) if !leaves.is_empty()))
}

/// Each batch's outcome. Call only once the transaction committed: a
/// written batch becomes a [`Durable`] proof.
pub(in crate::store) fn committed(
    steps: Vec<Result<Step, StoreError>>,
) -> Vec<Result<Outcome, StoreError>> {
    steps
        .into_iter()
        .map(|s| {
            s.map(|step| match step {
                Step::Written { first, leaves } => {
                    Outcome::Appended(Durable::committed(Appended::new(first, leaves)))
                }
                Step::Skipped(outcome) => outcome,
            })
        })
        .collect()
}
