//! `passerelle receipt`: the receipt of one of the station's own items,
//! checked against the gateway's key (and its inclusion proof, once a
//! checkpoint covers it) before it is printed. When the station's
//! `client.toml` names `[witnesses]`, the receipt is printed only once it
//! is final: its entry included in a checkpoint that the quorum of those
//! witnesses cosigned (see [`passerelle::client::finality`]).

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

use super::station::{print_receipt, StationArgs};
use passerelle::client::finality::FinalityError;

#[derive(Args)]
pub struct ReceiptArgs {
    #[command(flatten)]
    station: StationArgs,
    /// The item reference, as in the receipt `send` printed.
    item_ref: String,
    /// With `[witnesses]` in client.toml: how many seconds to keep asking
    /// while the receipt is not final yet (the gateway's witnesses cosign
    /// each checkpoint shortly after it is signed). Exit 1 when it is not
    /// final by then.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    wait: u64,
}

pub async fn run(args: ReceiptArgs) -> Result<ExitCode> {
    let s = args.station.open()?;
    let Some(quorum) = s.quorum()? else {
        let r = s.receipt(&args.item_ref).await?;
        print_receipt(&r, args.station.json)?;
        return Ok(ExitCode::SUCCESS);
    };
    match s
        .final_receipt(&args.item_ref, &quorum, Duration::from_secs(args.wait))
        .await
    {
        Ok(done) => {
            print_receipt(&done.signed, args.station.json)?;
            if args.station.json {
                eprintln!("{}", done.finality);
            } else {
                println!("  {}", done.finality);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(FinalityError::NotFinal(why)) => {
            // The receipt itself verified; what it lacks is the witnesses.
            eprintln!("{}: NOT FINAL: {why}", args.item_ref);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
