//! `passerelle ack`: acknowledges an item; repeating it is harmless (the
//! gateway answers `already-acked`).

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;

use super::station::StationArgs;

#[derive(Args)]
pub struct AckArgs {
    #[command(flatten)]
    station: StationArgs,
    /// The item reference.
    item_ref: String,
}

pub async fn run(args: AckArgs) -> Result<ExitCode> {
    let AckArgs { station, item_ref } = args;
    let s = station.open()?;
    let a = s.ack(&item_ref).await?;
    if station.json {
        println!("{}", serde_json::to_string_pretty(&a)?);
    } else {
        println!("{} {}", a.item_ref, a.status);
    }
    Ok(ExitCode::SUCCESS)
}
