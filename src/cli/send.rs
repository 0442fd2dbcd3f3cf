//! `passerelle send`: an item, given by options or read from an item file,
//! signed with the station's key and sent through its outbox: kept on disk
//! until the gateway answers, so a broken link never loses it (`outbox`
//! sends what is left). Item files are the library's [`passerelle::spec`];
//! this module only builds the one-portion item the options describe.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use super::station::{print_receipt, StationArgs};
use passerelle::domain::item::Priority;
use passerelle::domain::principal::PrincipalId;
use passerelle::gateway::unix_now;
use passerelle::spec::{ItemSpec, LabelSpec, PortionSpec};

#[derive(Args)]
pub struct SendArgs {
    #[command(flatten)]
    station: StationArgs,
    /// An item file (TOML; see the README). Other item options are ignored.
    #[arg(long, conflicts_with_all = ["to", "text"])]
    item: Option<PathBuf>,
    /// Recipient principal; repeat for several.
    #[arg(long, required_unless_present = "item")]
    to: Vec<PrincipalId>,
    /// The text of the single portion.
    #[arg(long, required_unless_present = "item")]
    text: Option<String>,
    /// Classification level of the item and its portion.
    #[arg(long, default_value = "RESTREINT")]
    level: String,
    /// Purpose of the exchange.
    #[arg(long, default_value = "terrorism")]
    purpose: String,
    /// Case reference; repeat for several.
    #[arg(long)]
    case: Vec<String>,
    /// FLASH, URGENT or ROUTINE.
    #[arg(long, default_value = "ROUTINE")]
    priority: Priority,
    /// Item id (default: a fresh UUIDv7, time-ordered and random).
    #[arg(long)]
    id: Option<String>,
}

pub async fn run(args: SendArgs) -> Result<ExitCode> {
    let s = args.station.open()?;
    let spec = item_spec(&args)?;
    let item = spec.sign(s.signing_key(), &s.config().principal, unix_now());
    match s.send_durably(&item).await {
        Ok(receipt) => {
            print_receipt(&receipt, args.station.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_transient() => {
            eprintln!(
                "error: {e}\nthe signed item is kept in {}; send it with: passerelle outbox --config {}",
                s.config().outbox.display(),
                args.station.config.display()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

impl SendArgs {
    /// The station options.
    pub(crate) fn station(&self) -> &StationArgs {
        &self.station
    }
}

/// The item to sign: the item file, or the one-portion item the options
/// describe (`send` and `station send`).
pub(crate) fn item_spec(args: &SendArgs) -> Result<ItemSpec> {
    Ok(match &args.item {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            ItemSpec::parse(&text)
                .with_context(|| format!("{} is not a valid item file", path.display()))?
        }
        None => {
            let label = LabelSpec {
                level: args.level.clone(),
                caveats: Default::default(),
                rel_to: Default::default(),
                handling: None,
                diffusion_restreinte: false,
                originator: None,
                third_party: None,
                evaluation: None,
                review_date: None,
            };
            ItemSpec {
                id: args.id.clone(),
                to: args.to.clone(),
                purpose: args.purpose.clone(),
                cases: args.case.clone(),
                priority: args.priority,
                language: "fr".into(),
                expires_in_hours: None,
                request: None,
                in_reply_to: None,
                label: label.clone(),
                portions: vec![PortionSpec {
                    label,
                    text: args.text.clone().unwrap_or_default(),
                }],
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Send {
        #[command(flatten)]
        args: SendArgs,
    }

    fn parse(args: &[&str]) -> Result<SendArgs, clap::Error> {
        let argv = ["send", "--config", "client.toml"].iter().chain(args);
        Send::try_parse_from(argv).map(|s| s.args)
    }

    #[test]
    fn options_make_one_portion_under_the_items_label() {
        let args = parse(&[
            "--to",
            "vsse/analysis/ct",
            "--text",
            "hello",
            "--case",
            "CT-1",
        ])
        .unwrap();
        let spec = item_spec(&args).unwrap();
        assert_eq!(spec.label.level, "RESTREINT");
        assert_eq!(spec.purpose, "terrorism");
        assert_eq!(spec.priority, Priority::Routine);
        assert_eq!(spec.cases, ["CT-1"]);
        assert_eq!(spec.portions.len(), 1);
        assert_eq!(spec.portions[0].text, "hello");
        assert_eq!(spec.portions[0].label.level, spec.label.level);
    }

    #[test]
    fn an_item_file_excludes_the_item_options_and_is_otherwise_required() {
        assert!(parse(&["--item", "i.toml", "--to", "vsse/analysis/ct"]).is_err());
        assert!(parse(&["--text", "hello"]).is_err());
        assert!(parse(&["--item", "i.toml"]).is_ok());
    }
}
