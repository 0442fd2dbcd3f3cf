//! `passerelle pki init`: the example PKI and ready configs, written by the
//! library's [`passerelle::pki`] into a new or empty directory. For
//! examples and tests only; this module never touches a real PKI.

use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

use super::ensure_empty;
use passerelle::pki;

#[derive(Subcommand)]
pub enum PkiCommand {
    /// Write an example PKI (one CA per agency, gateway and station
    /// certificates) and ready configs into DIR.
    Init {
        /// Directory to write into; must not exist or be empty.
        dir: PathBuf,
        /// Address the example gateway config listens on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// Policy directory for the gateway config, relative to DIR (default:
        /// a copy of the built-in example policy in DIR/policies).
        #[arg(long)]
        policy: Option<String>,
    },
}

pub fn run(cmd: PkiCommand) -> Result<ExitCode> {
    match cmd {
        PkiCommand::Init {
            dir,
            listen,
            policy,
        } => {
            ensure_empty(&dir)?;
            let example = pki::generate()?;
            pki::write_example(&dir, &example, &listen, policy.as_deref())?;
            println!("example PKI and configs written to {}", dir.display());
            println!(
                "run the gateway: passerelle serve --config {}",
                dir.join("gateway.toml").display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
