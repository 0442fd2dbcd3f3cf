//! `passerelle outbox`: every signed item a `send` left in the station's
//! outbox, sent again. Safe to repeat (the gateway returns the receipt of
//! an item it already has); exits non-zero while items are still waiting.

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;

use super::station::{print_receipt, StationArgs};

#[derive(Args)]
pub struct OutboxArgs {
    #[command(flatten)]
    station: StationArgs,
}

pub async fn run(args: OutboxArgs) -> Result<ExitCode> {
    let station = args.station;
    let s = station.open()?;
    let results = s.flush_outbox().await?;
    let mut left = 0;
    for (path, outcome) in &results {
        match outcome {
            Ok(receipt) => print_receipt(receipt, station.json)?,
            Err(e) => {
                if e.is_transient() {
                    left += 1;
                }
                eprintln!("{}: {e}", path.display());
            }
        }
    }
    if results.is_empty() && !station.json {
        println!("the outbox is empty");
    }
    Ok(if left == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
