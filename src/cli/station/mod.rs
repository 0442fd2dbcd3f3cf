//! What the station commands share: the `--config` and `--json` options,
//! opening the station from its `client.toml`, printing a receipt, and
//! showing a due time. Each station command has its own module beside this
//! one (`send`, `outbox`, `inbox`, `overdue`, `fetch`, `ack`, `receipt`);
//! the station itself is the library's [`passerelle::client`]. The
//! `station` command group (the agent and its vault) is in [`agent`].

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

use passerelle::client::Station;
use passerelle::domain::item::Priority;
use passerelle::domain::receipt::SignedReceipt;
use passerelle::station_config::ClientConfig;

mod agent;
pub use agent::{run as run_agent_command, StationCommand};

#[derive(Args)]
pub struct StationArgs {
    /// The station's client configuration, e.g.
    /// certs-example/stations/police-lo-rabat/client.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

impl StationArgs {
    /// The station named by `--config`, its files loaded.
    pub fn open(&self) -> Result<Station> {
        let c = ClientConfig::load(&self.config)?;
        Station::new(c).with_context(|| {
            format!(
                "loading the station files named in {}",
                self.config.display()
            )
        })
    }
}

pub fn print_receipt(signed: &SignedReceipt, json: bool) -> Result<()> {
    if json {
        // The whole signed receipt: keep it, and an auditor can check it
        // later with `passerelle audit check-receipt`.
        println!("{}", serde_json::to_string_pretty(signed)?);
        return Ok(());
    }
    let r = &signed.receipt;
    println!("item {} accepted as {}", r.item_id, r.item_ref);
    println!("  digest {}", r.digest);
    println!(
        "  audit entry {} (receipt signed by the gateway, verified)",
        r.audit_index
    );
    if let Some(p) = &signed.inclusion {
        println!(
            "  included in the signed checkpoint of size {} (proof verified)",
            p.size
        );
    }
    for o in &r.outcomes {
        println!("  {:<24} {:?}", o.recipient.as_str(), o.outcome);
        for reason in &o.reasons {
            println!("    {reason}");
        }
    }
    Ok(())
}

/// An item verified and released to this station, for a person: header,
/// label, what the gateway attested, then each portion (`fetch`,
/// `station read`).
pub fn print_item(
    header: &passerelle::domain::item::Header,
    level: &str,
    attestation: &passerelle::domain::attestation::Attestation,
    portions: &[(u32, &str, String)],
) {
    let h = header;
    println!("item {} from {} (signature verified)", h.id, h.sender);
    println!(
        "  priority {:?}, purpose {}, cases {}",
        h.priority,
        h.purpose,
        if h.cases.is_empty() {
            "-".to_string()
        } else {
            h.cases.join(", ")
        }
    );
    println!("  label {level}");
    let a = attestation;
    println!(
        "  released to you: portions {:?} under policy {} (gateway attestation verified, audit entry {})",
        a.portions,
        &a.policy_digest[..12.min(a.policy_digest.len())],
        a.audit_index
    );
    for (index, level, text) in portions {
        println!("  [{index}] ({level})");
        println!("    {text}");
    }
}

/// A priority as the station's listings print it: `FLASH`, `ROUTINE`, ...
pub fn priority_text(p: Priority) -> String {
    format!("{p:?}").to_uppercase()
}

/// A due time as a person reads it: the UTC time, and how late or how
/// soon relative to `now` (`OVERDUE by 2h` marks what is past due).
pub fn due_text(due: i64, now: i64) -> String {
    let at = passerelle::auditor::time::rfc3339(due);
    if due < now {
        format!(
            "{at} OVERDUE by {}",
            passerelle::policy::duration_text((now - due).max(60))
        )
    } else {
        format!(
            "{at} (in {})",
            passerelle::policy::duration_text((due - now).max(60))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::due_text;

    #[test]
    fn a_due_time_in_the_past_is_marked_overdue() {
        assert_eq!(due_text(0, 7_200), "1970-01-01T00:00:00Z OVERDUE by 2h");
        assert_eq!(due_text(3_600, 60), "1970-01-01T01:00:00Z (in 59m)");
        assert!(!due_text(100, 100).contains("OVERDUE"));
    }
}
