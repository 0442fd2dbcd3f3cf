//! The command tree of `passerelle`: one module per command (or command
//! group), each with its clap arguments, its handler and its tests, as the
//! help shows them: the demo, the gateway's own commands (`serve`,
//! `reload`, `keygen`), `pki`, `config check`, `policy`, `audit`, `db`, and the station commands (`send`,
//! `outbox`, `inbox`, `overdue`, `fetch`, `ack`, `receipt`, sharing
//! [`station`], and the `station` group: the agent and its vault), the
//! oversight body's `witness`, and the load generator `bench`.
//!
//! This is the edge where arguments are checked and errors get context for
//! the person at the terminal (anyhow); the library below keeps typed
//! errors. A handler returns the process's exit code; it never decides,
//! signs or stores anything itself beyond calling the library.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::path::Path;
use std::process::ExitCode;

mod ack;
mod audit;
mod bench;
mod config;
mod db;
mod demo;
mod fetch;
mod gateway;
mod inbox;
mod outbox;
mod overdue;
mod pki;
mod policy;
mod receipt;
mod reload;
mod send;
mod station;
mod witness;

/// passerelle: a mutual-TLS exchange gateway for classified items between
/// the Federal Police and VSSE.
#[derive(Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// The variants' doc comments are the commands' help; their argument
// structs carry no doc comment of their own, so clap takes the variant's.
#[derive(Subcommand)]
enum Command {
    /// Run a scripted exchange over real mTLS in a temporary directory and
    /// print what happened. Exits 0 only if every step behaved as expected.
    Demo(demo::DemoArgs),
    /// Run the gateway.
    Serve(gateway::ServeArgs),
    /// Have the running gateway read its policy, CAs, CRLs and certificate
    /// again (checked here first), and say whether it put them in force.
    /// Exits 0 when it did, 1 when it refused (the configuration in force
    /// stays). The same as SIGHUP to the pid beside its store.
    Reload(reload::ReloadArgs),
    /// Example PKI (for examples and tests only).
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Make the gateway's Ed25519 signing key (mode 0600) and print its
    /// public key, raw and as a C2SP signed-note verifier key for auditors.
    Keygen(gateway::KeygenArgs),
    /// Check a gateway's configuration, policy and certificates together,
    /// and say what expires within 30 days. Exit codes: 0 all is well, 1
    /// something is refused or wrong now, 3 something expires soon.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Security officers' tools for the classification and need-to-know
    /// policy.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Auditor tools for the tamper-evident log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The gateway's store: schema migrations.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Sign and send an item (station).
    Send(send::SendArgs),
    /// Send again every signed item left in the station's outbox by a
    /// `send` that got no answer (station). Safe to repeat: the gateway
    /// recognises an item it already has and returns its receipt.
    Outbox(outbox::OutboxArgs),
    /// List deliverable items (station).
    Inbox(inbox::InboxArgs),
    /// List requests without an answer that are past due, or due within
    /// `--within`, per desk (station; an auditor sees every request, a
    /// station the requests it sent or received).
    Overdue(overdue::OverdueArgs),
    /// Fetch an item, check its signatures, and show it (station).
    Fetch(fetch::FetchArgs),
    /// Acknowledge an item (station).
    Ack(ack::AckArgs),
    /// Show the receipt of one of your items (station).
    Receipt(receipt::ReceiptArgs),
    /// The station agent for stations on poor links: a vault encrypted at
    /// rest, kept in step with the gateway (init, run, unlock, lock,
    /// status, list, read, send).
    #[command(subcommand)]
    Station(station::StationCommand),
    /// A witness for the audit log, run by an oversight body on its own
    /// machine (C2SP tlog-witness): its key and its service.
    #[command(subcommand)]
    Witness(witness::WitnessCommand),
    /// Measure a running gateway from outside: submissions per second and
    /// their latencies over kept-alive connections, as a ratio to this
    /// machine's one-core crypto limit, or (--handshakes) new mTLS
    /// connections per second against any endpoint.
    Bench(bench::BenchArgs),
}

impl Cli {
    /// The log filter when `RUST_LOG` names none: the demo prints its own
    /// table, and the gateway's log would only interleave with it.
    pub fn default_log_filter(&self) -> &'static str {
        if matches!(self.command, Command::Demo(_)) {
            "error"
        } else {
            "passerelle=info,warn"
        }
    }

    /// The log's format: JSON only for a gateway asked to write it.
    pub fn log_format(&self) -> passerelle::config::LogFormat {
        match &self.command {
            Command::Serve(args) => args.log_format(),
            _ => passerelle::config::LogFormat::Text,
        }
    }

    /// Runs the command; its exit code, or an error for `main` to print.
    pub async fn run(self) -> Result<ExitCode> {
        match self.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => gateway::serve(args).await,
            Command::Reload(args) => reload::run(args),
            Command::Pki(cmd) => pki::run(cmd),
            Command::Keygen(args) => gateway::keygen(args),
            Command::Config(ConfigCommand::Check(args)) => config::check(args),
            Command::Policy(cmd) => policy::run(cmd),
            Command::Audit(cmd) => audit::run(cmd).await,
            Command::Db(cmd) => db::run(cmd),
            Command::Send(args) => send::run(args).await,
            Command::Outbox(args) => outbox::run(args).await,
            Command::Inbox(args) => inbox::run(args).await,
            Command::Overdue(args) => overdue::run(args).await,
            Command::Fetch(args) => fetch::run(args).await,
            Command::Ack(args) => ack::run(args).await,
            Command::Receipt(args) => receipt::run(args).await,
            Command::Station(cmd) => station::run_agent_command(cmd).await,
            Command::Witness(cmd) => witness::run(cmd).await,
            Command::Bench(args) => bench::run(args).await,
        }
    }
}

/// `passerelle config …`.
#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a gateway's configuration, its policy and its certificates
    /// together: what a start or a reload would refuse, the audit key, CRLs
    /// that are stale or not signed by their CA, and what expires within
    /// `--within-days`. Exit codes: 0 all is well, 1 something is refused
    /// or wrong now, 3 something expires soon.
    Check(config::CheckArgs),
}

/// Refuses a directory that exists and holds anything: commands that write
/// a tree of files (`pki init`, `audit export`, `demo --keep`) never mix
/// theirs with what is there.
fn ensure_empty(dir: &Path) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty; choose a new directory", dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn only_the_demo_quiets_the_log() {
        let demo = Cli::try_parse_from(["passerelle", "demo"]).unwrap();
        assert_eq!(demo.default_log_filter(), "error");
        let serve = Cli::try_parse_from(["passerelle", "serve", "--config", "g.toml"]).unwrap();
        assert_eq!(serve.default_log_filter(), "passerelle=info,warn");
    }

    #[test]
    fn an_empty_or_missing_directory_is_accepted_and_a_full_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure_empty(&dir.path().join("new")).is_ok());
        assert!(ensure_empty(dir.path()).is_ok());
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert!(ensure_empty(dir.path()).is_err());
    }
}
