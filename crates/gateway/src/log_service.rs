//! The log service's core: the audit log above the store, with the
//! in-memory Merkle tree, group commit, and the stop on a broken invariant.
//!
//! A module of its own, beside `gateway` rather than inside it, because
//! both the exchange (`gateway`, which serves checkpoints and proofs from
//! it in `gateway/log.rs`) and the start checks (`integrity`, which the
//! gateway also uses) need it: inside `gateway` it would make the two
//! import each other.
//!
//! [`AuditLog`] owns the RFC 9162 tree of leaf hashes (roots, inclusion and
//! consistency proofs), built from the store's leaf hashes at start and
//! extended from what each commit returns. Every write of the gateway goes
//! through [`AuditLog::append`], which batches concurrent operations into
//! one [`Store::append`] call (one transaction, one fsync). It never writes
//! SQL, never decides, and never repairs: a broken store invariant stops
//! all appending for good ([`AuditLog::halted`]) and the gateway refuses
//! new work until an operator looks.
//!
//! # Several processes on one database
//!
//! Another gateway instance (or `passerelle audit export`) may append to
//! the same store. The tree therefore never assumes it saw every append:
//! a commit's indices that start past the tree's size, and
//! [`AuditLog::catch_up`] (called before a checkpoint is signed and before
//! a proof is served), read the missing leaf hashes from the store by
//! range. Indices that fall inside the tree must carry the leaf hashes the
//! tree already has: anything else is a fork, and stops the log.
//!
//! # Why group commit is here
//!
//! The store's contract is "append these batches, each atomically, in one
//! transaction": a backend that can share one fsync (SQLite) or one round
//! trip (PostgreSQL) between batches does. Gathering the batches of
//! concurrent requests is the same for every backend, so it lives here,
//! once: every caller queues its batch, then takes the commit lock;
//! whoever gets it commits everything queued so far in one call and
//! answers each caller. While it writes, the next batches queue up for the
//! next leader, so under load many operations share an fsync and none
//! waits for a timer; alone, a batch is committed at once.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, RwLock};

use crate::audit::rfc9162::{Hash, ProofError, Tree};
use crate::store::{Appended, Batch, Durable, Outcome, Store, StoreError, TreeHead};

/// How many leaf hashes one read asks the store for.
const CHUNK: u64 = 4096;

/// A batch waiting for the next group commit.
struct Queued {
    batch: Batch,
    reply: SyncSender<Result<Outcome, StoreError>>,
}

/// The audit log of one gateway process: the store, the tree of its leaf
/// hashes, and the queue of batches waiting for a commit.
pub struct AuditLog {
    store: Arc<dyn Store>,
    tree: RwLock<Tree>,
    queue: Mutex<Vec<Queued>>,
    /// Held by the leader of a group commit while it writes.
    committing: Mutex<()>,
    /// Why appending stopped, once a store invariant broke.
    halted: Mutex<Option<String>>,
}

fn proof_error(e: ProofError) -> StoreError {
    StoreError::Proof(e.to_string())
}

/// Whether `e` means the store broke a promise: appending stops.
fn is_fatal(e: &StoreError) -> bool {
    matches!(e, StoreError::Invariant(_) | StoreError::Tampered(_))
}

impl AuditLog {
    /// The log over `store`, its tree built from the stored leaf hashes.
    pub fn load(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let log = AuditLog {
            store,
            tree: RwLock::new(Tree::new()),
            queue: Mutex::new(Vec::new()),
            committing: Mutex::new(()),
            halted: Mutex::new(None),
        };
        log.catch_up()?;
        Ok(log)
    }

    /// The store underneath, for reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Why appending stopped, if it did.
    pub fn halted(&self) -> Option<String> {
        self.halted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Passes `r` on; a broken invariant in it stops appending first.
    pub fn watch<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &r {
            if is_fatal(e) {
                let mut halted = self.halted.lock().unwrap_or_else(|p| p.into_inner());
                if halted.is_none() {
                    tracing::error!(error = %e, "a store invariant broke: the gateway stops appending and refuses new work");
                    *halted = Some(e.to_string());
                }
            }
        }
        r
    }

    /// An error once appending stopped: nothing is appended or signed
    /// over a log that broke an invariant.
    pub fn refuse_if_halted(&self) -> Result<(), StoreError> {
        match self.halted() {
            Some(reason) => Err(StoreError::Invariant(format!(
                "appending stopped after a broken invariant: {reason}"
            ))),
            None => Ok(()),
        }
    }

    fn tree(&self) -> std::sync::RwLockReadGuard<'_, Tree> {
        // The tree is only ever extended whole leaf by leaf: a panic
        // elsewhere leaves it usable.
        self.tree.read().unwrap_or_else(|p| p.into_inner())
    }

    fn tree_mut(&self) -> std::sync::RwLockWriteGuard<'_, Tree> {
        self.tree.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads what other processes appended since the tree last grew, so
    /// that the tree holds every committed entry. Returns the size.
    pub fn catch_up(&self) -> Result<u64, StoreError> {
        let r = (|| {
            let size = self.store.size()?;
            let mut tree = self.tree_mut();
            if size < tree.size() {
                return Err(StoreError::Invariant(format!(
                    "the audit log went back from {} to {size} entries",
                    tree.size()
                )));
            }
            extend_to(self.store.as_ref(), &mut tree, size)?;
            Ok(tree.size())
        })();
        self.watch(r)
    }

    /// The tree's head as this process knows it (call
    /// [`AuditLog::catch_up`] first to include other processes' appends).
    pub fn head(&self) -> TreeHead {
        let tree = self.tree();
        TreeHead {
            size: tree.size(),
            root: tree.root(),
        }
    }

    /// Root of the tree at an earlier `size`.
    pub fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        self.tree().root_at(size).map_err(proof_error)
    }

    /// Inclusion proof of entry `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.tree()
            .inclusion_proof(index, size)
            .map_err(proof_error)
    }

    /// Consistency proof from `old_size` to `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, StoreError> {
        self.tree()
            .consistency_proof(old_size, new_size)
            .map_err(proof_error)
    }

    /// The stored entry at `index`: an error, never empty bytes, when it
    /// is missing (and a missing entry inside the log stops appending).
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        let r =
            self.store
                .audit_entries(index, index + 1)
                .and_then(|entries| {
                    entries.into_iter().next().ok_or_else(|| {
                        StoreError::Invariant(format!("audit entry {index} is missing"))
                    })
                });
        self.watch(r)
    }

    /// Appends `batch` in the next group commit and extends the tree with
    /// what it appended. Blocking: call it from a blocking task.
    pub fn append(&self, batch: Batch) -> Result<Outcome, StoreError> {
        self.append_all(vec![batch])
            .pop()
            .unwrap_or_else(|| Err(StoreError::Backend("the commit was abandoned".into())))
    }

    /// Appends `batches`, each atomically, in the next group commit; one
    /// result per batch, in order. Blocking.
    pub fn append_all(&self, batches: Vec<Batch>) -> Vec<Result<Outcome, StoreError>> {
        if let Err(e) = self.refuse_if_halted() {
            return batches.iter().map(|_| Err(same(&e))).collect();
        }
        let answers: Vec<_> = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            batches
                .into_iter()
                .map(|batch| {
                    let (reply, answer) = sync_channel(1);
                    queue.push(Queued { batch, reply });
                    answer
                })
                .collect()
        };
        self.commit_queued();
        answers
            .into_iter()
            .map(|answer| {
                answer
                    .recv()
                    .map_err(|_| StoreError::Backend("the commit was abandoned".into()))?
            })
            .collect()
    }

    /// Group commit: commits everything queued in one store call, unless
    /// an earlier leader already took ours.
    fn commit_queued(&self) {
        let _leader = self.committing.lock().unwrap_or_else(|p| p.into_inner());
        let queued = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        if queued.is_empty() {
            return;
        }
        let (batches, replies): (Vec<Batch>, Vec<_>) =
            queued.into_iter().map(|q| (q.batch, q.reply)).unzip();
        let committed = self
            .refuse_if_halted()
            .and_then(|()| self.store.append(batches));
        let outcomes = match self.watch(committed) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(same(&e)));
                }
                return;
            }
        };
        // Extend the tree in index order before anyone hears "committed",
        // so that a receipt's entry is in the tree its proof is cut from.
        let extended = {
            let mut tree = self.tree_mut();
            outcomes
                .iter()
                .filter_map(|o| match o {
                    Ok(Outcome::Appended(d)) => Some(d),
                    _ => None,
                })
                .try_for_each(|d| extend_with(self.store.as_ref(), &mut tree, d))
        };
        let extended = self.watch(extended);
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let outcome = outcome.and_then(|o| match &extended {
                Ok(()) => Ok(o),
                Err(e) => Err(StoreError::Invariant(e.to_string())),
            });
            let _ = reply.send(self.watch(outcome));
        }
    }
}

/// The same failure for another caller of the group (errors are not
/// `Clone`): a broken invariant stays one.
fn same(e: &StoreError) -> StoreError {
    if is_fatal(e) {
        StoreError::Invariant(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// Extends `tree` with the leaf hashes the store holds up to `size`.
fn extend_to(store: &dyn Store, tree: &mut Tree, size: u64) -> Result<(), StoreError> {
    while tree.size() < size {
        let start = tree.size();
        let end = (start + CHUNK).min(size);
        for h in store.leaf_hashes(start, end)? {
            tree.append_leaf_hash(h);
        }
    }
    Ok(())
}

/// Extends `tree` with a commit's entries, first catching up on what other
/// processes appended before them. Entries the tree already holds (read
/// by a catch-up meanwhile) must be the same leaves: otherwise the log
/// forked.
fn extend_with(
    store: &dyn Store,
    tree: &mut Tree,
    d: &Durable<Appended>,
) -> Result<(), StoreError> {
    let appended = d.get();
    extend_to(store, tree, appended.first())?;
    for (index, leaf) in appended.indices().zip(appended.leaves()) {
        if index < tree.size() {
            if tree.leaf_hashes()[index as usize] != *leaf {
                return Err(StoreError::Invariant(format!(
                    "the store returned audit index {index} for an entry, but another entry holds it: the log forked"
                )));
            }
        } else {
            tree.append_leaf_hash(*leaf);
        }
    }
    Ok(())
}
