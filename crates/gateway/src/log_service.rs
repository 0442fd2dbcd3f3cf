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
//! once: one writer thread per log takes everything queued, commits it in
//! one call and answers each caller; while it writes, the next batches
//! queue up for its next round, so under load many operations share an
//! fsync; alone, a batch is committed at once.
//! A request on the async runtime hands its batch over with
//! [`AuditLog::commit`] and awaits the answer: no blocking thread per
//! call, and no lock that every caller takes in turn (an earlier design,
//! where each caller's blocking thread queued, then took a commit lock to
//! find its batch already written, woke the callers one after another).
//!
//! A submission counts itself as [`Coming`] from the start of its checks
//! until its batch is queued. When some are under way, the writer lets
//! them join the group before committing it, for at most as long as its
//! last commit took (and never over [`MAX_LINGER`]): under load each
//! fsync and each rewritten page of the tables' ends is shared by more
//! items; alone, a batch is still committed at once, since nothing is
//! coming.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::audit::rfc9162::{Hash, ProofError, Tree};
use crate::store::{Appended, Batch, Durable, Outcome, Store, StoreError, TreeHead};

/// How many leaf hashes one read asks the store for.
const CHUNK: u64 = 4096;

/// Most batches one group commit writes; more wait for the next round.
const GROUP: usize = 4096;

/// Longest the writer waits for batches that are [`Coming`] before it
/// commits a group: a bound on the latency the wait may add.
pub const MAX_LINGER: Duration = Duration::from_millis(1);

/// What a group commit answers a caller with.
type Answer = Result<Outcome, StoreError>;

/// Where a batch's answer goes: a task on the async runtime, or a thread
/// that blocks for it.
enum Reply {
    Async(tokio::sync::oneshot::Sender<Answer>),
    Blocking(SyncSender<Answer>),
}

impl Reply {
    fn send(self, answer: Answer) {
        // A caller that went away (a dropped request) needs no answer: its
        // batch is committed all the same.
        let _ = match self {
            Reply::Async(tx) => tx.send(answer).map_err(|_| ()),
            Reply::Blocking(tx) => tx.send(answer).map_err(|_| ()),
        };
    }
}

/// A batch waiting for the next group commit.
struct Queued {
    batch: Batch,
    reply: Reply,
}

/// What the log and its writer thread share.
struct Shared {
    store: Arc<dyn Store>,
    tree: RwLock<Tree>,
    /// Why appending stopped, once a store invariant broke.
    halted: Mutex<Option<String>>,
    /// Submissions under way whose batch is not queued yet ([`Coming`]).
    coming: AtomicUsize,
}

/// A submission under way: from the start of its checks until its batch
/// is handed to the writer (or it is refused and dropped), the writer may
/// wait a little for it rather than commit without it. Only a hint for
/// grouping: a guard that is never released delays a commit by at most
/// [`MAX_LINGER`], and never makes one wrong.
pub struct Coming<'a> {
    shared: &'a Shared,
}

impl Drop for Coming<'_> {
    fn drop(&mut self) {
        self.shared.coming.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The audit log of one gateway process: the store, the tree of its leaf
/// hashes, and the queue of its writer thread (started at the first
/// append; it ends when the log is dropped, and the drop waits for it, so
/// that a stopped gateway has closed its store: a file copied after
/// `shutdown` is whole).
pub struct AuditLog {
    shared: Arc<Shared>,
    writer: OnceLock<(Sender<Queued>, Option<std::thread::JoinHandle<()>>)>,
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Some((queue, thread)) = self.writer.take() {
            // The writer ends once its queue is closed and what was queued
            // is committed.
            drop(queue);
            if let Some(thread) = thread {
                if thread.join().is_err() {
                    tracing::error!("the audit log's writer thread panicked");
                }
            }
        }
    }
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
            shared: Arc::new(Shared {
                store,
                tree: RwLock::new(Tree::new()),
                halted: Mutex::new(None),
                coming: AtomicUsize::new(0),
            }),
            writer: OnceLock::new(),
        };
        log.catch_up()?;
        Ok(log)
    }

    /// Why appending stopped, if it did.
    pub fn halted(&self) -> Option<String> {
        self.shared.halted()
    }

    /// Passes `r` on; a broken invariant in it stops appending first.
    pub fn watch<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        self.shared.watch(r)
    }

    /// An error once appending stopped: nothing is appended or signed
    /// over a log that broke an invariant.
    pub fn refuse_if_halted(&self) -> Result<(), StoreError> {
        self.shared.refuse_if_halted()
    }

    /// The store underneath, for reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Reads what other processes appended since the tree last grew, so
    /// that the tree holds every committed entry. Returns the size.
    pub fn catch_up(&self) -> Result<u64, StoreError> {
        let r = (|| {
            let size = self.shared.store.size()?;
            let mut tree = self.shared.tree_mut();
            if size < tree.size() {
                return Err(StoreError::Invariant(format!(
                    "the audit log went back from {} to {size} entries",
                    tree.size()
                )));
            }
            extend_to(self.shared.store.as_ref(), &mut tree, size)?;
            Ok(tree.size())
        })();
        self.shared.watch(r)
    }

    /// The tree's head as this process knows it (call
    /// [`AuditLog::catch_up`] first to include other processes' appends).
    pub fn head(&self) -> TreeHead {
        let tree = self.shared.tree();
        TreeHead {
            size: tree.size(),
            root: tree.root(),
        }
    }

    /// Root of the tree at an earlier `size`.
    pub fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        self.shared.tree().root_at(size).map_err(proof_error)
    }

    /// Inclusion proof of entry `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.shared
            .tree()
            .inclusion_proof(index, size)
            .map_err(proof_error)
    }

    /// Consistency proof from `old_size` to `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, StoreError> {
        self.shared
            .tree()
            .consistency_proof(old_size, new_size)
            .map_err(proof_error)
    }

    /// The stored entry at `index`: an error, never empty bytes, when it
    /// is missing (and a missing entry inside the log stops appending).
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        let r =
            self.shared
                .store
                .audit_entries(index, index + 1)
                .and_then(|entries| {
                    entries.into_iter().next().ok_or_else(|| {
                        StoreError::Invariant(format!("audit entry {index} is missing"))
                    })
                });
        self.shared.watch(r)
    }

    /// Appends `batch` in the next group commit and extends the tree with
    /// what it appended. Blocking: call it from a blocking task or outside
    /// the async runtime ([`AuditLog::commit`] is the async form).
    pub fn append(&self, batch: Batch) -> Result<Outcome, StoreError> {
        self.append_all(vec![batch])
            .pop()
            .unwrap_or_else(|| Err(abandoned()))
    }

    /// Appends `batches`, each atomically, in the next group commit; one
    /// result per batch, in order. Blocking.
    pub fn append_all(&self, batches: Vec<Batch>) -> Vec<Result<Outcome, StoreError>> {
        let answers: Vec<_> = batches
            .into_iter()
            .map(|batch| {
                let (reply, answer) = sync_channel(1);
                self.queue(batch, Reply::Blocking(reply));
                answer
            })
            .collect();
        answers
            .into_iter()
            .map(|answer| answer.recv().unwrap_or_else(|_| Err(abandoned())))
            .collect()
    }

    /// Counts a submission as under way until the guard is dropped or
    /// handed to [`AuditLog::commit_coming`] with its batch.
    pub fn coming(&self) -> Coming<'_> {
        self.shared.coming.fetch_add(1, Ordering::AcqRel);
        Coming {
            shared: &self.shared,
        }
    }

    /// Appends `batches`, each atomically, in the next group commit, and
    /// waits for their outcomes without holding a thread: the form for
    /// requests on the async runtime. One result per batch, in order.
    pub async fn commit(&self, batches: Vec<Batch>) -> Vec<Result<Outcome, StoreError>> {
        self.commit_coming(batches, None).await
    }

    /// [`AuditLog::commit`] for the batches of a submission that was
    /// [`Coming`]: it stops counting once they are queued.
    pub async fn commit_coming(
        &self,
        batches: Vec<Batch>,
        coming: Option<Coming<'_>>,
    ) -> Vec<Result<Outcome, StoreError>> {
        let answers: Vec<_> = batches
            .into_iter()
            .map(|batch| {
                let (reply, answer) = tokio::sync::oneshot::channel();
                self.queue(batch, Reply::Async(reply));
                answer
            })
            .collect();
        // Queued first, then no longer counted: a writer that sees the
        // count fall finds the batches in its queue.
        drop(coming);
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            outcomes.push(answer.await.unwrap_or_else(|_| Err(abandoned())));
        }
        outcomes
    }

    /// Hands `batch` to the writer thread, started on first use.
    fn queue(&self, batch: Batch, reply: Reply) {
        if let Err(e) = self.shared.refuse_if_halted() {
            return reply.send(Err(e));
        }
        let (writer, _) = self.writer.get_or_init(|| {
            let (tx, rx) = channel();
            let shared = self.shared.clone();
            let thread = std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || shared.write(rx))
                .map_err(|e| {
                    // The receiver went with the failed thread: every
                    // batch is answered "abandoned" below.
                    tracing::error!(error = %e, "the audit log's writer thread did not start");
                })
                .ok();
            (tx, thread)
        });
        if let Err(std::sync::mpsc::SendError(q)) = writer.send(Queued { batch, reply }) {
            q.reply.send(Err(abandoned()));
        }
    }
}

impl Shared {
    /// Why appending stopped, if it did.
    fn halted(&self) -> Option<String> {
        self.halted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Passes `r` on; a broken invariant in it stops appending first.
    fn watch<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
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
    fn refuse_if_halted(&self) -> Result<(), StoreError> {
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

    /// The writer thread: commits what is queued, round after round, until
    /// the log is dropped.
    fn write(&self, queue: Receiver<Queued>) {
        let mut last_commit = Duration::ZERO;
        while let Ok(first) = queue.recv() {
            let mut group = vec![first];
            take_queued(&queue, &mut group);
            self.linger(&queue, &mut group, last_commit.min(MAX_LINGER));
            let started = Instant::now();
            // A bug that panics in one group must not stop every later
            // commit: that group's callers hear "abandoned" (their reply
            // senders drop with it), the next group is written as usual.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.commit_group(group)))
                .is_err()
            {
                tracing::error!("a group commit panicked; its callers were answered with an error");
            }
            last_commit = started.elapsed();
        }
    }

    /// While submissions are [`Coming`], waits up to `linger` for their
    /// batches to join `group`.
    fn linger(&self, queue: &Receiver<Queued>, group: &mut Vec<Queued>, linger: Duration) {
        let deadline = Instant::now() + linger;
        while group.len() < GROUP && self.coming.load(Ordering::Acquire) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match queue.recv_timeout(left) {
                Ok(q) => {
                    group.push(q);
                    take_queued(queue, group);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Group commit: commits `queued` in one store call, extends the tree
    /// and answers each caller.
    fn commit_group(&self, queued: Vec<Queued>) {
        let (batches, replies): (Vec<Batch>, Vec<_>) =
            queued.into_iter().map(|q| (q.batch, q.reply)).unzip();
        let committed = self
            .refuse_if_halted()
            .and_then(|()| self.store.append(batches));
        let outcomes = match self.watch(committed) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                for reply in replies {
                    reply.send(Err(same(&e)));
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
            reply.send(self.watch(outcome));
        }
    }
}

/// Moves what is queued now into `group`, up to [`GROUP`] batches.
fn take_queued(queue: &Receiver<Queued>, group: &mut Vec<Queued>) {
    while group.len() < GROUP {
        match queue.try_recv() {
            Ok(q) => group.push(q),
            Err(_) => break,
        }
    }
}

fn abandoned() -> StoreError {
    StoreError::Backend("the commit was abandoned".into())
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
