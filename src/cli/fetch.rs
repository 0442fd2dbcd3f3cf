//! `passerelle fetch`: items as released to the station, checked before
//! they are shown (the gateway's attestation, the sender's certificate and
//! signature, through the library's [`passerelle::client::Station::open`]),
//! then shown; `--ack` acknowledges what was shown. One item by its
//! reference, or with `--next N` the next `N` of the inbox in one batched
//! request (acknowledged in one too). An item that does not verify is
//! never shown, and never acknowledged: it comes back after its lease.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

use super::station::{print_item, StationArgs};
use passerelle::client::{Delivery, Station};
use passerelle::domain::item::DeliveredItem;

#[derive(Args)]
pub struct FetchArgs {
    #[command(flatten)]
    station: StationArgs,
    /// The item reference, as listed by `inbox`.
    #[arg(required_unless_present = "next", conflicts_with = "next")]
    item_ref: Option<String>,
    /// Instead of one reference: the next N items of the inbox, in its
    /// order (FLASH first), fetched in one request (1 to 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    next: Option<u32>,
    /// With --next: wait up to this many seconds for an item to arrive.
    #[arg(long, default_value_t = 0, requires = "next")]
    wait: u64,
    /// Acknowledge the items once shown.
    #[arg(long)]
    ack: bool,
}

pub async fn run(args: FetchArgs) -> Result<ExitCode> {
    let FetchArgs {
        station,
        item_ref,
        next,
        wait,
        ack,
    } = args;
    let s = station.open()?;
    let Some(n) = next else {
        let Some(item_ref) = item_ref else {
            bail!("give an item reference or --next N");
        };
        let item = s.fetch(&item_ref).await?;
        let delivery = s.open(&item).context("refusing to show the item")?;
        if station.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&as_json(&item_ref, &item, &delivery))?
            );
        } else {
            show(&item, &delivery);
        }
        if ack {
            s.ack(&item_ref).await?;
            if !station.json {
                println!("acknowledged");
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    fetch_next(&s, &station, n, wait, ack).await
}

/// `--next N`: one batched fetch, each item checked and shown, and the
/// shown ones acknowledged in one request.
async fn fetch_next(
    s: &Station,
    station: &StationArgs,
    n: u32,
    wait: u64,
    ack: bool,
) -> Result<ExitCode> {
    let fetched = s.fetch_batch(Duration::from_secs(wait), n).await?;
    let mut shown = Vec::new();
    let mut shown_json = Vec::new();
    let mut unverified = 0;
    for f in &fetched.items {
        let item_ref = &f.entry.item_ref;
        match s.open(&f.item) {
            Ok(delivery) => {
                if station.json {
                    shown_json.push(as_json(item_ref, &f.item, &delivery));
                } else {
                    show(&f.item, &delivery);
                }
                shown.push(item_ref.clone());
            }
            Err(e) => {
                unverified += 1;
                eprintln!("refusing to show {item_ref}: {e}");
            }
        }
    }
    for r in &fetched.refused {
        eprintln!("{r}: the policy in force no longer allows its delivery to you");
    }
    if station.json {
        println!("{}", serde_json::to_string_pretty(&shown_json)?);
    } else if fetched.items.is_empty() && fetched.refused.is_empty() {
        println!("no items");
    }
    if ack && !shown.is_empty() {
        for a in s.ack_batch(&shown).await? {
            let r = a.item_ref.unwrap_or_default();
            match a.problem {
                Some(p) => eprintln!("{r}: not acknowledged: {} ({})", p.detail, p.slug()),
                None if !station.json => println!("{r} {}", a.status),
                None => {}
            }
        }
    }
    Ok(if unverified > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A checked item as `--json` prints it.
fn as_json(item_ref: &str, item: &DeliveredItem, delivery: &Delivery) -> serde_json::Value {
    let manifest = &delivery.manifest;
    serde_json::json!({
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
    })
}

/// A checked item as a person reads it.
fn show(item: &DeliveredItem, delivery: &Delivery) {
    let manifest = &delivery.manifest;
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
