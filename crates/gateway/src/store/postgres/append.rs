//! The PostgreSQL write path: a call's batches in one transaction, under
//! the sequencer for as short a time as it can.
//!
//! Owns [`PostgresStore::append`]'s transaction. A call of new items (the
//! group commit's usual call, `bulk.rs`) writes its items and inbox rows
//! first, outside the sequencer: they do not need the log's index, and
//! they are the bulk of the bytes. Then the sequencer's advisory lock (so
//! that the next index read after it is the log's end for every instance,
//! and indices stay gap-free) with that read in the same round trip, the
//! seal checked against the stored log, and every batch's entries with
//! their leaf hashes, the items' acceptance indices, the new seal and the
//! arrivals' notification in one statement, one commit: under the lock,
//! two round trips and the commit. Every statement is sent with its
//! parameters' types so that none is prepared first. A call that does not
//! fit (a change naming an item of the same call, a new log) takes the
//! lock first and goes batch by batch. Batches run without savepoints, and
//! only when one fails is the transaction written again, lock first, with
//! a savepoint per batch (`changes.rs`), so that the failing one is rolled
//! back alone. Like the SQLite write path it never decides whether a
//! change is allowed and keeps only the log's right edge to sign the seal,
//! caught up from the stored leaf hashes when another instance appended
//! meanwhile.

use ::postgres::{SimpleQueryMessage, Transaction};

use super::bulk::Indexed;
use super::changes::apply;
use super::{
    arrivals, backend, bulk, col, int, leaf_of, read_range, PostgresStore, SEQUENCER_LOCK,
};
use crate::audit::rfc9162::{leaf_hash, Hash, RightEdge};
use crate::store::steps::{appended_entries, committed, starts_a_new_log, Step};
use crate::store::{Batch, Change, Outcome, StoreError, TreeHead};

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
        // The items first, when the call fits, outside the lock; any
        // failure on this path is written again, lock first, with
        // savepoints.
        let early = match savepoints {
            Savepoints::Without if !new_log && bulk::fits(batches) => {
                match bulk::before_the_lock(&mut tx, batches) {
                    Ok(early) => Some(early),
                    Err(_) => return Ok(None),
                }
            }
            _ => None,
        };
        let mut edge = if new_log {
            let head = sequenced(&mut tx, None)?;
            rehash(&mut tx)?;
            let mut edge = RightEdge::new();
            for h in leaves_in(&mut tx, 0, head.next)? {
                edge.push(h);
            }
            edge
        } else {
            let head = match sequenced(&mut tx, Some(edge.size())) {
                Ok(head) => head,
                // Waiting for the lock while holding items another
                // instance's transaction waits for (its copy of one of
                // them, under the lock) is a deadlock, which the database
                // breaks by failing one of the two: when it is this one,
                // the call is written again, lock first.
                Err(_) if early.is_some() => return Ok(None),
                Err(e) => return Err(e),
            };
            caught_up(edge, head)?
        };
        let (steps, indexed): (Vec<Result<Step, StoreError>>, Indexed) = match (savepoints, early) {
            (Savepoints::Without, early) => {
                let applied = match early {
                    Some(early) => bulk::under_the_lock(&mut tx, batches, early, edge.size()),
                    None => bulk::one_by_one(&mut tx, batches, edge.size())
                        .map(|steps| (steps, Indexed::default())),
                };
                match applied {
                    Ok((steps, indexed)) => (steps.into_iter().map(Ok).collect(), indexed),
                    // Dropped: rolled back.
                    Err(_) => return Ok(None),
                }
            }
            (Savepoints::PerBatch, _) => {
                let mut steps = Vec::with_capacity(batches.len());
                let mut next = edge.size();
                for batch in batches {
                    let mut savepoint = tx.savepoint("batch").map_err(backend)?;
                    match apply(&mut savepoint, batch, next) {
                        Ok(step) => {
                            savepoint.commit().map_err(backend)?;
                            if let Step::Written { leaves, .. } = &step {
                                next += leaves.len() as u64;
                            }
                            steps.push(Ok(step));
                        }
                        Err(e) => {
                            savepoint.rollback().map_err(backend)?;
                            steps.push(Err(e));
                        }
                    }
                }
                (steps, Indexed::default())
            }
        };
        let mut entries: Vec<&[u8]> = Vec::new();
        for (batch, step) in batches.iter().zip(&steps) {
            if let Ok(Step::Written { leaves, .. }) = step {
                for h in leaves {
                    edge.push(*h);
                }
                entries.extend(batch.entries.iter().map(|e| e.bytes()));
            }
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
        finish_and_commit(tx, &entries, edge.size(), seal, &arrived, &indexed)?;
        Ok(Some((steps, edge)))
    }
}

/// Writes the entries of the written batches (taking the indices up to
/// `size`, with their leaf hashes), the acceptance index of each item
/// inserted before the lock, the seal of the log they leave, and the
/// arrivals' notification, in one statement, and commits: one round trip
/// for the log's part of a group commit and its commit, whatever the
/// number of batches.
///
/// The statement and COMMIT go as one simple query, so that the commit
/// is sent without waiting for the statement's answer: a round trip fewer
/// under the sequencer's lock (the synchronous client waits for each typed
/// statement's answer before it sends the next: it cannot pipeline). A
/// simple query carries its values in its text: each is a number this
/// process computed or hex digits (entries, leaf hashes, the seal's note,
/// the recipients' names) that the database decodes, so nothing in it is
/// quoted or escaped, and no input reaches it but as hex.
fn finish_and_commit(
    mut tx: Transaction<'_>,
    entries: &[&[u8]],
    size: u64,
    seal: Option<(u64, String)>,
    arrived: &[&str],
    indexed: &Indexed,
) -> Result<(), StoreError> {
    if entries.is_empty() && arrived.is_empty() {
        return tx.commit().map_err(backend);
    }
    let first = size - entries.len() as u64;
    let indices = (0..entries.len() as u64)
        .map(|i| int(first + i))
        .collect::<Result<Vec<i64>, _>>()?;
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let (sealed, note) = match seal {
        Some((size, note)) => (int(size)?.to_string(), format!("'{}'", hex::encode(note))),
        None => ("NULL".into(), "NULL".into()),
    };
    let channel = arrivals::CHANNEL;
    let (indices, seqs, taken) = (
        numbers(&indices),
        numbers(&indexed.seq),
        numbers(&indexed.index),
    );
    let entries = hex_array(entries.iter().copied());
    let leaves = hex_array(leaves.iter().map(|h| &h[..]));
    let arrived = hex_array(arrived.iter().map(|r| r.as_bytes()));
    // Data-modifying CTEs run once, whether or not the query reads them;
    // the seal's row is written only when there is a seal to write.
    tx.simple_query(&format!(
        "WITH entries AS (
             INSERT INTO audit (idx, entry, leaf)
             SELECT i, decode(e, 'hex'), decode(l, 'hex')
             FROM UNNEST({indices}::BIGINT[], {entries}::TEXT[], {leaves}::TEXT[]) AS u (i, e, l)
         ), indexed AS (
             UPDATE items SET audit_index = u.idx
             FROM UNNEST({seqs}::BIGINT[], {taken}::BIGINT[]) AS u (seq, idx)
             WHERE items.seq = u.seq
         ), sealed AS (
             INSERT INTO seal (id, size, note)
             SELECT 0, {sealed}::BIGINT, convert_from(decode(n, 'hex'), 'UTF8')
             FROM (SELECT {note}::TEXT AS n) AS s WHERE n IS NOT NULL
             ON CONFLICT (id) DO UPDATE SET size = EXCLUDED.size, note = EXCLUDED.note
         )
         SELECT pg_notify('{channel}', convert_from(decode(r, 'hex'), 'UTF8'))
         FROM UNNEST({arrived}::TEXT[]) AS r;
         COMMIT"
    ))
    .map_err(backend)?;
    // Committed by the query: the wrapper, dropped, would send a ROLLBACK
    // of a transaction that is over and wait for its answer (a round trip
    // for a warning). It holds nothing but its borrow of the client.
    std::mem::forget(tx);
    Ok(())
}

/// `values` as an array literal of a simple query: numbers only.
fn numbers(values: &[i64]) -> String {
    let list: Vec<String> = values.iter().map(i64::to_string).collect();
    format!("'{{{}}}'", list.join(","))
}

/// `values` as an array literal of a simple query, each as hex digits.
fn hex_array<'a>(values: impl Iterator<Item = &'a [u8]>) -> String {
    let list: Vec<String> = values.map(|v| format!("\"{}\"", hex::encode(v))).collect();
    format!("'{{{}}}'", list.join(","))
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

/// The log as the sequencer's holder finds it.
struct Head {
    /// The next index (the number of entries).
    next: u64,
    /// The size the seal covers.
    sealed: u64,
    /// The leaf hashes from the index asked for, by index.
    leaves: Vec<(u64, Hash)>,
}

/// Takes the sequencer's lock, then reads the log's end, the size its
/// seal covers and, from index `from` when given, the leaf hashes other
/// instances appended: one round trip for all. Statements of one simple
/// query: in READ COMMITTED each statement reads a snapshot of its own,
/// so those after the lock's see every commit made before it. `from` is a
/// number this process computed, not input, so it may be written into
/// the query; leaf hashes come as hex, the simple protocol being text.
fn sequenced(tx: &mut Transaction<'_>, from: Option<u64>) -> Result<Head, StoreError> {
    let leaves = match from {
        Some(from) => format!(
            "; SELECT idx, encode(leaf, 'hex') FROM audit WHERE idx >= {} ORDER BY idx",
            int(from)?
        ),
        None => String::new(),
    };
    let messages = tx
        .simple_query(&format!(
            "SELECT pg_advisory_xact_lock({SEQUENCER_LOCK});
             SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit),
                    (SELECT COALESCE(MAX(size), 0) FROM seal WHERE id = 0){leaves}"
        ))
        .map_err(backend)?;
    // The first row is the lock's, the second the log's end, then leaves.
    let mut rows = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .skip(1);
    let head = rows
        .next()
        .ok_or_else(|| StoreError::Corrupt("the log's end was not read".into()))?;
    let number = |row: &::postgres::SimpleQueryRow, i: usize| -> Result<u64, StoreError> {
        row.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("the log's end, column {i}")))
    };
    let (next, sealed) = (number(head, 0)?, number(head, 1)?);
    let leaves = rows
        .map(|row| {
            let idx = number(row, 0)?;
            let leaf = row
                .get(1)
                .and_then(|h| hex::decode(h).ok())
                .and_then(|h| Hash::try_from(h.as_slice()).ok())
                .ok_or_else(|| {
                    StoreError::Invariant(format!(
                        "the leaf hash of audit entry {idx} is malformed"
                    ))
                })?;
            Ok((idx, leaf))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Head {
        next,
        sealed,
        leaves,
    })
}

/// The right edge of the stored log, checked against the seal: `edge`
/// extended by the leaf hashes other instances appended since this one
/// last saw the log, as `head` read them under the sequencer.
fn caught_up(mut edge: RightEdge, head: Head) -> Result<RightEdge, StoreError> {
    let Head {
        next,
        sealed,
        leaves,
    } = head;
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
    for (idx, leaf) in leaves {
        if idx != edge.size() {
            return Err(StoreError::Invariant(format!(
                "audit entry {} is missing",
                edge.size()
            )));
        }
        edge.push(leaf);
    }
    if edge.size() != next {
        return Err(StoreError::Invariant(format!(
            "audit entry {} is missing",
            edge.size()
        )));
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
