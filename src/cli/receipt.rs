//! `passerelle receipt`: the receipt of one of the station's own items,
//! checked against the gateway's key (and its inclusion proof, once a
//! checkpoint covers it) before it is printed.

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;

use super::station::{print_receipt, StationArgs};

#[derive(Args)]
pub struct ReceiptArgs {
    #[command(flatten)]
    station: StationArgs,
    /// The item reference, as in the receipt `send` printed.
    item_ref: String,
}

pub async fn run(args: ReceiptArgs) -> Result<ExitCode> {
    let s = args.station.open()?;
    let r = s.receipt(&args.item_ref).await?;
    print_receipt(&r, args.station.json)?;
    Ok(ExitCode::SUCCESS)
}
