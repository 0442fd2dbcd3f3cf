//! The gateway operator's commands: `passerelle serve` (run the gateway
//! until Ctrl-C or SIGTERM, reloading its configuration on SIGHUP) and
//! `passerelle keygen` (the gateway's signing key). `serve` writes its pid
//! file, which `reload` and `policy reload` signal, and after each reload
//! the status file they read the outcome from ([`super::reload`]). It also
//! says which log format the gateway writes. The gateway itself is the
//! library's [`passerelle::server`]; this module only starts it and relays
//! signals.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use super::reload::{pid_file, status_file, write_status, ReloadStatus};
use passerelle::config::{GatewayConfig, LogFormat};
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
    /// The log's format: `text` for a terminal, `json` (one object per
    /// line) for a log shipper. Overrides `[log] format` of the config.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// Also reload when a file a reload reads changes (the policy
    /// directory, the certificate, key, CA and CRL files), looking every
    /// SECONDS. A file caught half-written is refused like any invalid
    /// file (and audited), and reloaded once complete.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    watch: Option<u64>,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl ServeArgs {
    /// The log format: the flag, else the config's `[log] format`, else
    /// text. A config that does not load gets text: `serve` then says
    /// what is wrong with it.
    pub fn log_format(&self) -> LogFormat {
        match self.log_format {
            Some(LogFormatArg::Json) => LogFormat::Json,
            Some(LogFormatArg::Text) => LogFormat::Text,
            None => GatewayConfig::load(&self.config).map_or(LogFormat::Text, |c| c.log.format),
        }
    }
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

pub async fn serve(args: ServeArgs) -> Result<ExitCode> {
    let c = GatewayConfig::load(&args.config)?;
    // What `--watch` compares with, read before the start loads the
    // files: a change made while the gateway starts is then reloaded, not
    // taken as the baseline and missed.
    let mut seen = passerelle::snapshot::on_disk(&c);
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
    // A status left by an earlier run is not this gateway's answer.
    let _ = std::fs::remove_file(status_file(&c.store, &c.audit.key));
    // In JSON, every line is an object: the gateway's own events already
    // say where it listens.
    let json = args.log_format() == LogFormat::Json;
    if !json {
        eprintln!(
            "passerelle gateway listening on {} (Ctrl-C to stop, SIGHUP or `passerelle reload` to reload)",
            running.addr
        );
        if let Some(addr) = running.metrics_addr {
            eprintln!("metrics on http://{addr}/metrics");
        }
    }
    let mut reloads = 0;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut watch = args
        .watch
        .map(|s| tokio::time::interval(std::time::Duration::from_secs(s)));
    loop {
        let reload = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => true,
            _ = async {
                match watch.as_mut() {
                    Some(every) => every.tick().await,
                    None => std::future::pending().await,
                }
            } => {
                let now = passerelle::snapshot::on_disk(&c);
                std::mem::replace(&mut seen, now) != now
            }
        };
        if reload {
            reloads += 1;
            reload_and_report(&running, &c, reloads, json).await;
            seen = passerelle::snapshot::on_disk(&c);
        }
    }
    let _ = std::fs::remove_file(pid_file(&c.store, &c.audit.key));
    let _ = std::fs::remove_file(status_file(&c.store, &c.audit.key));
    if !json {
        eprintln!("stopping: letting requests in progress finish");
    }
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Reloads (refusals are logged and audited by the gateway, which keeps
/// serving with the configuration in force) and writes the outcome where
/// `passerelle reload` waits for it.
async fn reload_and_report(running: &server::Running, c: &GatewayConfig, reloads: u64, json: bool) {
    let outcome = running.reload().await;
    let status = ReloadStatus {
        pid: std::process::id(),
        reloads,
        accepted: outcome.is_ok(),
        policy_digest: Some(running.live.current().policy_digest()),
        changed: outcome
            .as_ref()
            .map(|r| r.changed.clone())
            .unwrap_or_default(),
        error: outcome.err().map(|e| e.to_string()),
    };
    if let Err(e) = write_status(&c.store, &c.audit.key, &status) {
        // Only `passerelle reload` misses it (it says so); the reload
        // itself is logged and audited.
        if !json {
            eprintln!("warning: could not write the reload status: {e:#}");
        }
    }
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
