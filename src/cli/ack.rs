//! `passerelle ack`: acknowledges items; repeating it is harmless (the
//! gateway answers `already-acked`). Several references go in one batched
//! request; one reference keeps the single acknowledgement.

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;

use super::station::StationArgs;

#[derive(Args)]
pub struct AckArgs {
    #[command(flatten)]
    station: StationArgs,
    /// The item references.
    #[arg(required = true)]
    item_refs: Vec<String>,
}

pub async fn run(args: AckArgs) -> Result<ExitCode> {
    let AckArgs { station, item_refs } = args;
    let s = station.open()?;
    if let [item_ref] = &item_refs[..] {
        let a = s.ack(item_ref).await?;
        if station.json {
            println!("{}", serde_json::to_string_pretty(&a)?);
        } else {
            println!("{} {}", a.item_ref, a.status);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let results = s.ack_batch(&item_refs).await?;
    let refused = results.iter().any(|a| a.problem.is_some());
    if station.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for (r, a) in item_refs.iter().zip(&results) {
            match &a.problem {
                Some(p) => println!("{r} {} ({}: {})", a.status, p.slug(), p.detail),
                None => println!("{r} {}", a.status),
            }
        }
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
