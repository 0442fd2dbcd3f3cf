//! The witness operator's commands: `passerelle witness keygen` (the
//! witness's own Ed25519 key) and `passerelle witness serve` (the C2SP
//! tlog-witness service, until Ctrl-C or SIGTERM). The witness is the
//! library's [`passerelle::witness`]; this module only starts it, prints
//! what an operator needs, and relays signals. It never touches a gateway's
//! configuration, key or store.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use passerelle::witness::{config, server};

#[derive(Subcommand)]
pub enum WitnessCommand {
    /// Make the witness's Ed25519 key (mode 0600) and print its
    /// cosignature/v1 verifier key, for gateways and auditors.
    ///
    /// Example: passerelle witness keygen --name witness.comite-p.example/w1 --out witness.key
    Keygen(KeygenArgs),
    /// Run the witness: cosign each checkpoint a log sends to
    /// POST /add-checkpoint if it extends the last one cosigned for that
    /// log, and refuse (with the reason) one that goes back or forks.
    ///
    /// Example: passerelle witness serve --config witness.toml
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the key; must not exist.
    #[arg(long)]
    out: PathBuf,
    /// The witness's name (a schema-less URL, e.g. witness.example/w1),
    /// which names its cosignatures.
    #[arg(long)]
    name: String,
}

#[derive(Args)]
pub struct ServeArgs {
    /// The witness configuration (listen, key, state, [tls], [[log]]).
    #[arg(long)]
    config: PathBuf,
}

pub async fn run(cmd: WitnessCommand) -> Result<ExitCode> {
    match cmd {
        WitnessCommand::Keygen(args) => {
            let key = config::generate_key(&args.out, &args.name)?;
            println!("key written to {} (mode 0600)", args.out.display());
            println!(
                "witness verifier key (C2SP cosignature/v1): {}",
                key.verifier()
            );
            Ok(ExitCode::SUCCESS)
        }
        WitnessCommand::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> Result<ExitCode> {
    let c = config::WitnessConfig::load(&args.config)?;
    let running = server::start(&c).await.context("starting the witness")?;
    let scheme = if running.tls { "https" } else { "http" };
    // Tests and scripts read this line to learn the port.
    println!(
        "passerelle witness {} listening on {scheme}://{} for {} log(s)",
        running.verifier,
        running.addr,
        c.logs.len()
    );
    if !running.tls && !running.addr.ip().is_loopback() {
        eprintln!("warning: plain HTTP on a non-loopback address; configure [tls] for a witness on its own machine");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
