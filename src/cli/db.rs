//! `passerelle db migrate --config gateway.toml`: brings the store's schema
//! up to date explicitly, as the gateway does when it starts.
//!
//! For operators who migrate before starting (or upgrading) several
//! instances on one PostgreSQL database. It reads the configuration's
//! `store` and calls the library's [`passerelle::store::migrate`]; it never
//! opens the audit log, signs or changes a row. Running it again changes
//! nothing.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use passerelle::config::GatewayConfig;
use passerelle::store::{self, StoreConfig};

#[derive(Subcommand)]
pub enum DbCommand {
    /// Apply the store's schema migrations that the database lacks
    /// (versioned; idempotent), as the gateway does at start.
    ///
    /// Example: passerelle db migrate --config gateway.toml
    Migrate(MigrateArgs),
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
    }
}
