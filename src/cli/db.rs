//! `passerelle db migrate --config gateway.toml`: brings the store's schema
//! up to date explicitly, as the gateway does when it starts; and
//! `passerelle db import --config gateway.toml --from store.sqlite3`: moves
//! an embedded store into the configuration's PostgreSQL database.
//!
//! For operators who migrate before starting (or upgrading) several
//! instances on one PostgreSQL database, and who move a gateway from the
//! embedded store to PostgreSQL. `migrate` calls the library's
//! [`passerelle::store::migrate`]; it never opens the audit log, signs or
//! changes a row, and running it again changes nothing. `import` checks the
//! embedded store against the gateway's signatures (seal, latest
//! checkpoint, leaf hashes), copies it ([`passerelle::store::import_embedded`]),
//! and checks the copy the same way and against the source's head and
//! checkpoints: it never signs, and never copies a store that does not
//! verify or into a database that holds anything.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use passerelle::config::GatewayConfig;
use passerelle::integrity;
use passerelle::keys::GatewayKey;
use passerelle::store::{self, StoreConfig};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Apply the store's schema migrations that the database lacks
    /// (versioned; idempotent), as the gateway does at start.
    ///
    /// Example: passerelle db migrate --config gateway.toml
    Migrate(MigrateArgs),
    /// Copy an embedded (SQLite) store, audit log included, into the
    /// configuration's PostgreSQL database (which must be empty), and
    /// verify the copy. Stop the gateway on the embedded store first.
    ///
    /// Example: passerelle db import --config gateway.toml --from data/passerelle.sqlite3
    Import(ImportArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// The gateway configuration: its `store` (a postgres:// URL) receives
    /// the copy; its `[audit] key` checks both stores.
    #[arg(long)]
    config: PathBuf,
    /// The embedded store's file.
    #[arg(long)]
    from: PathBuf,
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The gateway configuration whose `store` to migrate.
    #[arg(long)]
    config: PathBuf,
}

pub fn run(cmd: DbCommand) -> Result<ExitCode> {
    match cmd {
        DbCommand::Migrate(args) => {
            let c = GatewayConfig::load(&args.config)?;
            let config = StoreConfig::from_setting(&c.store);
            let applied =
                store::migrate(&config).with_context(|| format!("migrating the store {config}"))?;
            if applied.is_empty() {
                println!("store {config}: schema up to date");
            } else {
                for m in &applied {
                    println!("store {config}: applied migration {m}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Import(args) => import(args),
    }
}

fn import(args: ImportArgs) -> Result<ExitCode> {
    let c = GatewayConfig::load(&args.config)?;
    let to = StoreConfig::from_setting(&c.store);
    anyhow::ensure!(
        matches!(to, StoreConfig::Postgres(_)),
        "the configuration's store {to} is not a PostgreSQL database: give the configuration \
         of the gateway on PostgreSQL (store = \"postgres://…\")"
    );
    // Opening would create an empty store where none is.
    anyhow::ensure!(
        args.from.is_file(),
        "no embedded store at {}",
        args.from.display()
    );
    let key = Arc::new(GatewayKey::load(&c.audit.key, &c.audit.origin)?);
    let from = StoreConfig::Sqlite(args.from.clone());
    let source = integrity::open_checked(&from, key.clone())
        .with_context(|| format!("the embedded store {from} does not verify; nothing copied"))?;
    let head = source.head();
    let checkpoints = source.store().checkpoints()?;
    drop(source);
    let imported = store::import_embedded(&args.from, &to)
        .with_context(|| format!("copying {from} into {to}"))?;
    let copy = integrity::open_checked(&to, key)
        .with_context(|| format!("the copy in {to} does not verify"))?;
    let copied = copy.head();
    anyhow::ensure!(
        copied.size == head.size && copied.root == head.root,
        "the copy's audit log ({} entries) is not the embedded store's ({} entries)",
        copied.size,
        head.size
    );
    anyhow::ensure!(
        copy.store().checkpoints()? == checkpoints,
        "the copy's checkpoints are not the embedded store's"
    );
    println!(
        "imported {from} into {to}: {} items, {} deliveries, {} requests, {} audit entries, {} checkpoints",
        imported.items, imported.deliveries, imported.requests, imported.entries, imported.checkpoints
    );
    println!(
        "verified: the copy's audit log has {} entries under the gateway's seal, root {}, and the same checkpoints",
        copied.size,
        hex::encode(copied.root)
    );
    Ok(ExitCode::SUCCESS)
}
