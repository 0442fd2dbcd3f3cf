//! The embedded store's read connections.
//!
//! Owns the read-only connections the store's reads run on, apart from its
//! one writer: in WAL mode a reader sees the last commit made before its
//! read began, and neither waits for a write transaction nor holds one up,
//! so a fetch or a status read does not queue behind the writer's fsync.
//! Connections are opened when a read finds none idle and a few are kept
//! for the next reads. It never writes (SQLite refuses it on these
//! connections) and never runs a read that a write depends on: anything
//! that reads then writes (a lease, an acknowledgement, a checkpoint's
//! order) is decided inside the writer's transaction.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::backend;
use crate::store::StoreError;

/// Idle connections kept for the next reads: a read beyond them opens one
/// of its own, which is closed after.
const KEEP: usize = 8;

pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: &Path) -> Self {
        Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on a read connection: one statement, or several that
    /// need not see one snapshot.
    pub(super) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = match self.idle().pop() {
            Some(conn) => conn,
            None => self.open()?,
        };
        let out = read(&conn);
        let mut idle = self.idle();
        if idle.len() < KEEP {
            idle.push(conn);
        }
        out
    }

    /// Runs `read` in one read transaction: its statements see one
    /// snapshot of the database, whatever commits meanwhile.
    pub(super) fn snapshot<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(|conn| {
            // Dropped without commit on an error: a read transaction
            // ends either way.
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let out = read(&tx)?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })
    }

    /// Closes the idle connections.
    pub(super) fn close(&self) {
        self.idle().clear();
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The list is only pushed to and popped from: a panic elsewhere
        // cannot leave it half changed.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) -> Result<Connection, StoreError> {
        // The writer opened the file first (and made it WAL, which the
        // file keeps): a read-only connection reads its WAL and index.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(backend)?;
        // A reader waits only in SQLite's rare moments of WAL recovery.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}
