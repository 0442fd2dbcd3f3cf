//! The gateway operator's commands: `passerelle serve` (run the gateway
//! until Ctrl-C or SIGTERM, reloading the policy on SIGHUP) and
//! `passerelle keygen` (the gateway's signing key). It also names the pid
//! file `serve` writes, which `policy reload` signals. The gateway itself
//! is the library's [`passerelle::server`]; this module only starts it and
//! relays signals.

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use passerelle::config::GatewayConfig;
use passerelle::{pki, server};

#[derive(Args)]
pub struct ServeArgs {
    /// The gateway configuration, e.g. certs-example/gateway.toml.
    #[arg(long)]
    config: PathBuf,
    /// Start a new audit log over a store that disagrees with what the
    /// gateway signed (wiped, truncated, rolled back or edited), instead
    /// of refusing to start. The new start is the next entry of the log,
    /// naming the previous head and what was wrong. Refused when there
    /// is nothing to start anew: never leave it in a service file.
    #[arg(long)]
    new_log: bool,
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the key (PKCS#8 PEM); must not exist.
    #[arg(long)]
    out: PathBuf,
    /// The audit log's origin, which names the key in checkpoints.
    #[arg(long, default_value = pki::AUDIT_ORIGIN)]
    origin: String,
}

/// Where `serve` records its process id, for `policy reload`: beside the
/// store's file (`store`, as in the gateway's config), or, when the store
/// is a database server that several instances share, beside this
/// instance's audit key (`key`), where its head file is too.
pub fn pid_file(store: &Path, key: &Path) -> PathBuf {
    if passerelle::store::StoreConfig::names_a_server(store) {
        key.with_extension("pid")
    } else {
        store.with_extension("pid")
    }
}

pub async fn serve(args: ServeArgs) -> Result<ExitCode> {
    let c = GatewayConfig::load(&args.config)?;
    let running = server::start_with(
        &c,
        server::StartOptions {
            new_log: args.new_log,
        },
    )
    .await
    .context("starting the gateway")?;
    std::fs::write(
        pid_file(&c.store, &c.audit.key),
        format!("{}\n", std::process::id()),
    )?;
    eprintln!(
        "passerelle gateway listening on {} (Ctrl-C to stop, SIGHUP to reload the policy)",
        running.addr
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => {
                // Refusals are logged and audited by reload_policy; the
                // gateway keeps serving with the policy in force.
                let _ = running.reload_policy().await;
            }
        }
    }
    let _ = std::fs::remove_file(pid_file(&c.store, &c.audit.key));
    eprintln!("stopping: letting requests in progress finish");
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let KeygenArgs { out, origin } = args;
    let key = passerelle::keys::GatewayKey::generate(&out, &origin)?;
    let raw = match key.public_key() {
        passerelle::domain::cose::PublicKey::Ed25519(k) => k,
        passerelle::domain::cose::PublicKey::Es256(k) => k,
    };
    println!("key written to {} (mode 0600)", out.display());
    println!("public key (Ed25519, hex): {}", hex::encode(&raw));
    println!("verifier key (C2SP signed note): {}", key.verifier_key());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_sits_beside_the_store_or_the_instances_key() {
        assert_eq!(
            pid_file(
                Path::new("/var/lib/passerelle/store.sqlite"),
                Path::new("/etc/passerelle/audit-key.pem")
            ),
            PathBuf::from("/var/lib/passerelle/store.pid")
        );
        assert_eq!(
            pid_file(Path::new("data/passerelle"), Path::new("k.pem")),
            PathBuf::from("data/passerelle.pid")
        );
        // Several instances share a database: each has its own.
        assert_eq!(
            pid_file(
                Path::new("postgres://gw@db.example/passerelle"),
                Path::new("/etc/passerelle/audit-key.pem")
            ),
            PathBuf::from("/etc/passerelle/audit-key.pid")
        );
    }
}
