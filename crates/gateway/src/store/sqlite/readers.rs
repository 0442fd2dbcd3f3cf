//! The embedded store's read connections.
//!
//! Owns the read-only connections the store's reads run on, apart from its
//! one writer: in WAL mode a reader sees the last commit made before its
//! read began, and neither waits for a write transaction nor holds one up,
//! so a fetch or a status read does not queue behind the writer's fsync.
//! Connections are opened when a read finds none idle, up to
//! [`MAX_OPEN`], and kept for the next reads; a read beyond them waits for
//! one, so a flood of reads from many callers cannot spend the process's
//! file descriptors (each connection holds the database, its WAL and its
//! shared-memory index open), which the listener and the writer need. It
//! never writes (SQLite refuses it on these
//! connections) and never runs a read that a write depends on: anything
//! that reads then writes (a lease, an acknowledgement, a checkpoint's
//! order) is decided inside the writer's transaction.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::backend;
use crate::store::StoreError;

/// Most read connections open at once. Reads are short and the machine's
/// cores few: more would not read faster, only hold more descriptors.
pub(super) const MAX_OPEN: usize = 8;

pub(super) struct Readers {
    path: PathBuf,
    pool: Mutex<Pool>,
    /// Signalled when a connection goes back idle or an open one closes.
    returned: Condvar,
}

/// The connections not in use, and how many are open in all.
#[derive(Default)]
struct Pool {
    idle: Vec<Connection>,
    open: usize,
}

impl Readers {
    pub(super) fn new(path: &Path) -> Self {
        Readers {
            path: path.to_path_buf(),
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        }
    }

    /// Runs `read` on a read connection: one statement, or several that
    /// need not see one snapshot.
    pub(super) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let lease = Lease {
            readers: self,
            conn: Some(self.take()?),
        };
        match &lease.conn {
            Some(conn) => read(conn),
            None => Err(StoreError::Backend("no read connection".into())),
        }
    }

    /// An idle connection, a new one while fewer than [`MAX_OPEN`] are
    /// open, or else the next one returned.
    fn take(&self) -> Result<Connection, StoreError> {
        let mut pool = self.pool();
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
            if pool.open < MAX_OPEN {
                pool.open += 1;
                drop(pool);
                return self.open().inspect_err(|_| {
                    self.pool().open -= 1;
                    self.returned.notify_one();
                });
            }
            pool = self.returned.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
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
        let mut pool = self.pool();
        pool.open -= pool.idle.len();
        pool.idle.clear();
    }

    fn give_back(&self, conn: Connection) {
        self.pool().idle.push(conn);
        self.returned.notify_one();
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        // Changed only in short steps that cannot panic halfway (a push, a
        // pop, a count): a panic elsewhere cannot leave it half changed.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
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

/// A connection taken for one read, given back however the read ends (a
/// panic included), so that the pool never counts a connection it lost.
struct Lease<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers.give_back(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    /// A database in WAL mode in a directory of its own, removed on drop.
    struct Db(PathBuf);

    impl Db {
        fn new(name: &str) -> Db {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let dir = std::env::temp_dir().join(format!(
                "passerelle-readers-{name}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("s.sqlite3");
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
                .unwrap();
            Db(path)
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// Runs `n` reads at once, each holding its connection a moment, and
    /// returns the most that were inside a read at the same time.
    fn crowd(readers: &Arc<Readers>, n: usize) -> usize {
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (done, finished) = mpsc::channel();
        for _ in 0..n {
            let (readers, inside, most, done) =
                (readers.clone(), inside.clone(), most.clone(), done.clone());
            std::thread::spawn(move || {
                let read = readers.with(|conn| {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    let x: i64 = conn
                        .query_row("SELECT x FROM t", [], |r| r.get(0))
                        .map_err(backend)?;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    Ok(x)
                });
                let _ = done.send(read);
            });
        }
        for _ in 0..n {
            // Generous: a read that never gets a connection fails here
            // rather than hanging the suite.
            let read = finished.recv_timeout(Duration::from_secs(60));
            assert_eq!(read.expect("every read ends").unwrap(), 1);
        }
        most.load(Ordering::SeqCst)
    }

    #[test]
    fn no_more_read_connections_than_the_cap_whatever_the_crowd() {
        let db = Db::new("cap");
        let readers = Arc::new(Readers::new(&db.0));
        let most = crowd(&readers, 4 * MAX_OPEN);
        assert!(most <= MAX_OPEN, "{most} reads held connections at once");
        assert!(readers.pool().open <= MAX_OPEN);
        readers.close();
        assert_eq!(readers.pool().open, 0);
    }

    #[test]
    fn a_read_that_panics_gives_its_connection_back() {
        let db = Db::new("panic");
        let readers = Arc::new(Readers::new(&db.0));
        // As many panics as the cap: had each kept its connection, none
        // would be left, yet none of these would wait for one.
        for _ in 0..MAX_OPEN {
            let readers = readers.clone();
            let panicked = std::thread::spawn(move || {
                readers.with(|_| -> Result<(), StoreError> { panic!("a read's bug") })
            })
            .join();
            assert!(panicked.is_err());
        }
        // Had each panic kept its connection, these would wait for ever
        // (and fail on crowd's bound).
        crowd(&readers, MAX_OPEN);
        assert!(readers.pool().open <= MAX_OPEN);
    }
}
