//! Keeps the synchronous PostgreSQL client off the gateway's async threads.
//!
//! The `postgres` client drives its connection with a runtime of its own,
//! which tokio forbids on a thread that runs async code (a runtime's
//! worker, or a thread inside `block_on`): it would panic there. The store
//! contract is synchronous and some callers (the start checks, the audit
//! export) call it from such a thread, so [`OffRuntime`] runs every call
//! where the blocking client may run, at the least cost: directly on a
//! thread outside any runtime or on tokio's blocking pool (where the
//! gateway's own store calls run), through `block_in_place` on a
//! multi-threaded runtime (which leaves the runtime for the call and hands
//! the thread's other tasks to another worker), and only on a
//! current-thread runtime, where neither is possible, on a short-lived
//! thread of its own. It only forwards: it never changes what a call does
//! or returns.

use super::super::{
    ArrivalHook, Batch, Durable, InboxEntry, Leased, OpenRequest, Outcome, RequestState, Store,
    StoreError, Swept,
};
use crate::audit::rfc9162::Hash;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::Receipt;
use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `f` where the blocking client may run (see the module doc). A
/// panic in `f` is the caller's panic.
pub(in crate::store) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        // On a blocking-pool thread this runs `f` as is; on a worker or in
        // `block_on` it leaves the runtime for the call.
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

/// A store whose every call goes through [`off_runtime`].
pub(in crate::store) struct OffRuntime<S>(pub(in crate::store) S);

impl<S: Store> Store for OffRuntime<S> {
    fn append(&self, batches: Vec<Batch>) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        off_runtime(|| self.0.append(batches))
    }
    fn size(&self) -> Result<u64, StoreError> {
        off_runtime(|| self.0.size())
    }
    fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        off_runtime(|| self.0.leaf_hashes(start, end))
    }
    fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        off_runtime(|| self.0.audit_entries(start, end))
    }
    fn seal(&self) -> Result<Option<String>, StoreError> {
        off_runtime(|| self.0.seal())
    }
    fn sweep_due(&self, now: i64, limit: u32) -> Result<Vec<Swept>, StoreError> {
        off_runtime(|| self.0.sweep_due(now, limit))
    }
    fn pending(
        &self,
        recipient: &PrincipalId,
        now: i64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        off_runtime(|| self.0.pending(recipient, now, limit))
    }
    fn peek(&self, recipient: &PrincipalId, item_ref: &str) -> Result<Option<Leased>, StoreError> {
        off_runtime(|| self.0.peek(recipient, item_ref))
    }
    fn request(&self, item_ref: &str) -> Result<Option<RequestState>, StoreError> {
        off_runtime(|| self.0.request(item_ref))
    }
    fn open_requests(
        &self,
        due_by: i64,
        concerning: Option<&PrincipalId>,
        limit: u32,
    ) -> Result<Vec<OpenRequest>, StoreError> {
        off_runtime(|| self.0.open_requests(due_by, concerning, limit))
    }
    fn receipt(
        &self,
        sender: &PrincipalId,
        item_ref: &str,
    ) -> Result<Option<Durable<Receipt>>, StoreError> {
        off_runtime(|| self.0.receipt(sender, item_ref))
    }
    fn check_writable(&self) -> Result<(), StoreError> {
        off_runtime(|| self.0.check_writable())
    }
    fn gauges(&self, now: i64) -> Result<super::super::StoreGauges, StoreError> {
        off_runtime(|| self.0.gauges(now))
    }
    fn items_present(&self, item_refs: &[String]) -> Result<Vec<bool>, StoreError> {
        off_runtime(|| self.0.items_present(item_refs))
    }
    fn deliveries_open(
        &self,
        deliveries: &[(String, PrincipalId)],
    ) -> Result<Vec<bool>, StoreError> {
        off_runtime(|| self.0.deliveries_open(deliveries))
    }
    fn add_cosignatures(
        &self,
        size: u64,
        current: &str,
        cosigned: &str,
    ) -> Result<bool, StoreError> {
        off_runtime(|| self.0.add_cosignatures(size, current, cosigned))
    }
    fn save_checkpoint(&self, size: u64, note: &str, now: i64) -> Result<(), StoreError> {
        off_runtime(|| self.0.save_checkpoint(size, note, now))
    }
    fn checkpoint_of_size(&self, size: u64) -> Result<Option<String>, StoreError> {
        off_runtime(|| self.0.checkpoint_of_size(size))
    }
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        off_runtime(|| self.0.checkpoints())
    }
    fn latest_checkpoint_above(
        &self,
        index: Option<u64>,
    ) -> Result<Option<(u64, String)>, StoreError> {
        off_runtime(|| self.0.latest_checkpoint_above(index))
    }
    // Starts a thread of its own: nothing to keep off the runtime.
    fn watch_arrivals(&self, wake: ArrivalHook) -> Result<(), StoreError> {
        self.0.watch_arrivals(wake)
    }
}

#[cfg(test)]
mod tests {
    use super::off_runtime;
    use std::thread::{current, ThreadId};

    fn where_it_ran() -> (ThreadId, ThreadId) {
        (current().id(), off_runtime(|| current().id()))
    }

    #[test]
    fn outside_a_runtime_the_call_runs_where_it_is() {
        let (here, ran) = where_it_ran();
        assert_eq!(here, ran);
    }

    /// Where the gateway's store calls run: no thread per call.
    #[test]
    fn on_the_blocking_pool_the_call_runs_where_it_is() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let (here, ran) = runtime
            .block_on(async { tokio::task::spawn_blocking(where_it_ran).await })
            .unwrap();
        assert_eq!(here, ran);
    }

    /// The start checks, on a worker: the call leaves the runtime in place
    /// and the client's own runtime may start (it would panic otherwise).
    #[test]
    fn on_a_worker_the_call_leaves_the_runtime_in_place() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let (here, ran, started) = runtime
            .block_on(async {
                tokio::spawn(async {
                    let here = current().id();
                    off_runtime(|| {
                        let inner = tokio::runtime::Builder::new_current_thread()
                            .build()
                            .unwrap();
                        (here, current().id(), inner.block_on(async { true }))
                    })
                })
                .await
            })
            .unwrap();
        assert_eq!(here, ran);
        assert!(started);
    }

    /// On a current-thread runtime neither is possible: a thread of its own.
    #[test]
    fn on_a_current_thread_runtime_the_call_gets_a_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (here, ran) = runtime.block_on(async { where_it_ran() });
        assert_ne!(here, ran);
    }
}
