//! Versioned schema migrations of the PostgreSQL store.
//!
//! Owns the list of migrations (SQL files in `migrations/`, numbered, never
//! edited once released: a change of schema is a new file) and the table
//! `schema_migrations` that records which were applied. [`migrate`] applies
//! the missing ones in one transaction under an advisory lock, so that
//! instances starting together apply each once; running it again changes
//! nothing. It never touches the rows of the store, and refuses a database
//! migrated by a newer gateway rather than run on a schema it does not know.

use ::postgres::Client;

use super::{backend, col, MIGRATIONS_LOCK};
use crate::store::StoreError;

/// Every migration, in order: version, name, SQL.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "schema", include_str!("migrations/0001_schema.sql")),
    (
        2,
        "index under the lock",
        include_str!("migrations/0002_index_under_the_lock.sql"),
    ),
];

/// Applies the migrations the database lacks; returns those applied, as
/// `0001 schema`, none when it was up to date.
pub(in crate::store) fn migrate(client: &mut Client) -> Result<Vec<String>, StoreError> {
    let mut tx = client.transaction().map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATIONS_LOCK])
        .map_err(backend)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     INTEGER PRIMARY KEY,
             name        TEXT NOT NULL,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .map_err(backend)?;
    let rows = tx
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .map_err(backend)?;
    let done: Vec<i32> = rows.iter().map(|r| col(r, 0)).collect::<Result<_, _>>()?;
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if let Some(&newest) = done.last() {
        if newest > known {
            return Err(StoreError::Backend(format!(
                "the database's schema is version {newest}, newer than this gateway knows \
                 ({known}): run the gateway version that migrated it, or a newer one"
            )));
        }
    }
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        if done.contains(&version) {
            continue;
        }
        tx.batch_execute(sql).map_err(backend)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .map_err(backend)?;
        applied.push(format!("{version:04} {name}"));
    }
    tx.commit().map_err(backend)?;
    Ok(applied)
}
