//! `passerelle inbox`: the station's deliverable items, FLASH first, with
//! the answer due for requests; `--wait` long-polls the gateway.

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

use super::station::{due_text, priority_text, StationArgs};

#[derive(Args)]
pub struct InboxArgs {
    #[command(flatten)]
    station: StationArgs,
    /// Wait up to this many seconds for an item to arrive.
    #[arg(long, default_value_t = 0)]
    wait: u64,
}

pub async fn run(args: InboxArgs) -> Result<ExitCode> {
    let InboxArgs { station, wait } = args;
    let s = station.open()?;
    let items = s.inbox(Duration::from_secs(wait)).await?;
    if station.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if items.is_empty() {
        println!("no items");
    } else {
        let now = passerelle::gateway::unix_now();
        println!(
            "{:<32}  {:<8}  {:<24}  {:<32}  id",
            "reference", "priority", "from", "answer due"
        );
        for e in items {
            println!(
                "{:<32}  {:<8}  {:<24}  {:<32}  {}",
                e.item_ref,
                priority_text(e.priority),
                e.sender,
                e.due
                    .map(|d| due_text(d, now))
                    .unwrap_or_else(|| "-".into()),
                e.item_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
