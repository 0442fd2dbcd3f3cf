//! `passerelle overdue`: requests without an answer that are past due, or
//! due within `--within`, grouped per desk (each recipient that has to
//! answer), soonest first. The gateway decides what the caller may see.

use anyhow::Result;
use clap::Args;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use super::station::{due_text, priority_text, StationArgs};
use passerelle::domain::wire::OpenRequest;

#[derive(Args)]
pub struct OverdueArgs {
    #[command(flatten)]
    station: StationArgs,
    /// Also list requests due within this time, e.g. 45m, 8h or 3d.
    #[arg(long)]
    within: Option<String>,
}

pub async fn run(args: OverdueArgs) -> Result<ExitCode> {
    let OverdueArgs { station, within } = args;
    let within = match within {
        None => 0,
        Some(w) => {
            passerelle::policy::parse_duration(&w).map_err(|e| anyhow::anyhow!("--within: {e}"))?
        }
    };
    let s = station.open()?;
    let listing = s
        .overdue(Duration::from_secs(u64::try_from(within).unwrap_or(0)))
        .await?;
    if station.json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(ExitCode::SUCCESS);
    }
    if listing.requests.is_empty() {
        println!(
            "no open request is past due{}",
            if within > 0 { " or due soon" } else { "" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (desk, requests) in per_desk(&listing.requests) {
        println!("desk {desk}");
        for r in requests {
            println!(
                "  {:<32}  {:<8}  from {:<24}  {}  {}",
                r.item_ref,
                priority_text(r.priority),
                r.sender,
                due_text(r.due, listing.now),
                r.item_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Per desk: each recipient that has to answer, its requests in the order
/// the gateway listed them (by due time), desks by name.
fn per_desk(requests: &[OpenRequest]) -> BTreeMap<String, Vec<&OpenRequest>> {
    let mut desks: BTreeMap<String, Vec<&OpenRequest>> = BTreeMap::new();
    for r in requests {
        for desk in &r.recipients {
            desks.entry(desk.to_string()).or_default().push(r);
        }
    }
    desks
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle::domain::item::Priority;

    fn request(item_ref: &str, due: i64, recipients: &[&str]) -> OpenRequest {
        OpenRequest {
            item_ref: item_ref.into(),
            sender: "police/lo/rabat".parse().unwrap(),
            item_id: format!("id-{item_ref}"),
            priority: Priority::Urgent,
            accepted_at: 0,
            due,
            recipients: recipients.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_request_to_two_desks_is_listed_under_each() {
        let requests = [
            request("a", 10, &["vsse/analysis/ct", "vsse/analysis/cyber"]),
            request("b", 20, &["vsse/analysis/ct"]),
        ];
        let desks = per_desk(&requests);
        let refs =
            |desk: &str| -> Vec<&str> { desks[desk].iter().map(|r| r.item_ref.as_str()).collect() };
        assert_eq!(
            desks.keys().collect::<Vec<_>>(),
            ["vsse/analysis/ct", "vsse/analysis/cyber"]
        );
        assert_eq!(refs("vsse/analysis/ct"), ["a", "b"]);
        assert_eq!(refs("vsse/analysis/cyber"), ["a"]);
    }
}
