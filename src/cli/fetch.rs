//! `passerelle fetch`: an item as released to the station, checked before
//! it is shown (the gateway's attestation, the sender's certificate and
//! signature, through the library's [`passerelle::client::Station::open`]),
//! then shown; `--ack` acknowledges it once shown. An item that does not
//! verify is never shown.

use anyhow::{Context, Result};
use clap::Args;
use std::process::ExitCode;

use super::station::{print_item, StationArgs};

#[derive(Args)]
pub struct FetchArgs {
    #[command(flatten)]
    station: StationArgs,
    /// The item reference, as listed by `inbox`.
    item_ref: String,
    /// Acknowledge the item once it is shown.
    #[arg(long)]
    ack: bool,
}

pub async fn run(args: FetchArgs) -> Result<ExitCode> {
    let FetchArgs {
        station,
        item_ref,
        ack,
    } = args;
    let s = station.open()?;
    let item = s.fetch(&item_ref).await?;
    let delivery = s.open(&item).context("refusing to show the item")?;
    let manifest = &delivery.manifest;
    if station.json {
        let shown = serde_json::json!({
            "item_ref": item_ref,
            "header": manifest.header,
            "label": manifest.label,
            "portions": item.portions.iter().map(|p| serde_json::json!({
                "index": p.index,
                "label": p.portion.label,
                "content_type": p.portion.content_type,
                "text": String::from_utf8_lossy(&p.portion.body.0),
            })).collect::<Vec<_>>(),
            "verified": true,
            "attestation": delivery.attestation,
        });
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        let portions: Vec<(u32, &str, String)> = item
            .portions
            .iter()
            .map(|p| {
                (
                    p.index,
                    p.portion.label.level.as_str(),
                    String::from_utf8_lossy(&p.portion.body.0).into_owned(),
                )
            })
            .collect();
        print_item(
            &manifest.header,
            &manifest.label.level,
            &delivery.attestation,
            &portions,
        );
    }
    if ack {
        s.ack(&item_ref).await?;
        if !station.json {
            println!("acknowledged");
        }
    }
    Ok(ExitCode::SUCCESS)
}
