//! `passerelle demo`: a scripted exchange over real mTLS (the library's
//! [`passerelle::demo`]), printed as a table with what the gateway told the
//! sender. This module only prints and picks the directory; the exchange
//! itself is the library's.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use super::ensure_empty;

#[derive(Args)]
pub struct DemoArgs {
    /// Keep the demo's files in this (new or empty) directory instead of
    /// a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Play the station-abroad demo instead: a liaison officer's agent
    /// writes while the link is down, sends once it is back, receives,
    /// verifies and keeps items encrypted, and a locked laptop shows none
    /// of it.
    #[arg(long)]
    abroad: bool,
}

pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let temp;
    let kept = args.keep.is_some();
    let dir = match args.keep {
        Some(d) => {
            ensure_empty(&d)?;
            d
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let report = if args.abroad {
        println!("passerelle demo --abroad: a liaison station's agent on a link that drops\n");
        passerelle::demo::abroad::run(&dir).await?
    } else {
        println!("passerelle demo: a liaison station abroad and VSSE exchange over mutual TLS\n");
        passerelle::demo::run(&dir).await?
    };
    println!("{}", report.table());
    if !report.notes.is_empty() {
        println!("\nwhat the gateway told the sender:");
        for note in &report.notes {
            println!("  - {note}");
        }
    }
    match (&report.export, kept) {
        (None, true) => println!("\nthe demo's files are kept in {}", dir.display()),
        (None, false) => println!(
            "\nthe demo's files are deleted now; add --keep DIR to keep them"
        ),
        (Some((export, vkey)), true) => println!(
            "\nthe demo's audit log is exported to {}; verify it yourself with:\n  passerelle audit verify {} --key {}",
            export.display(),
            export.display(),
            vkey.display()
        ),
        // The temporary directory goes when the demo ends: do not point
        // at files that will not be there.
        _ => println!(
            "\nthe demo's files are deleted now; run `passerelle demo --keep DIR` to keep them and verify the exported audit log yourself"
        ),
    }
    if report.all_ok() {
        println!("\nevery step behaved as expected");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nSOME STEPS DID NOT BEHAVE AS EXPECTED");
        Ok(ExitCode::FAILURE)
    }
}
