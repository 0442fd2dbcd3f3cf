//! `passerelle bench`: measures a running gateway from outside it, with
//! stations' own files: submissions over kept-alive connections (closed
//! loop, or open loop with `--rate`), or, with `--handshakes`, new
//! mutual-TLS connections per second, full and resumed, against any
//! endpoint. The measuring is the library's [`passerelle::bench`]; this
//! module reads the options and prints the report.

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use passerelle::bench::handshakes::{self, HandshakeOptions};
use passerelle::bench::load::{self, LoadOptions};
use passerelle::spec::ItemSpec;
use passerelle::station_config::ClientConfig;

/// The item sent when no `--item` file is given: what the example policy
/// lets the example police station send to the VSSE's CT desk.
const DEFAULT_ITEM: &str = "to = [\"vsse/analysis/ct\"]\npurpose = \"terrorism\"\n\
cases = [\"CT-2026-014\"]\npriority = \"FLASH\"\n[label]\nlevel = \"RESTREINT\"\n\
[[portion]]\ntext = \"\"\n[portion.label]\nlevel = \"RESTREINT\"\n";

#[derive(Args)]
pub struct BenchArgs {
    /// A station's client configuration; repeat to spread the stations
    /// over several principals (they take the configs in turn).
    #[arg(long, required = true)]
    config: Vec<PathBuf>,
    /// The gateway's address (default: the one in the station config).
    #[arg(long)]
    gateway: Option<String>,
    /// Stations sending at once, each on its own kept-alive connection.
    #[arg(long, default_value_t = 16)]
    stations: usize,
    /// Seconds to send.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Open loop: items per second offered in all, latency counted from
    /// when each item was due. Without it, a closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Closed loop: items signed beforehand (the run ends early once all
    /// are sent).
    #[arg(long, default_value_t = 50_000)]
    items: usize,
    /// An item file (TOML, as for `send`); its id is replaced per item.
    /// Default: a FLASH item to vsse/analysis/ct.
    #[arg(long)]
    item: Option<PathBuf>,
    /// Bytes of text in the item's single portion, when no `--item`.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// A new connection per submission, as the station client did before
    /// it kept connections: to measure what keeping them saves.
    #[arg(long)]
    fresh_connections: bool,
    /// A recipient station's client configuration: it lists, fetches and
    /// acknowledges the items while they are submitted (the full cycle).
    /// It must be a recipient of the item (the default item's is
    /// vsse/analysis/ct).
    #[arg(long)]
    recipient: Option<PathBuf>,
    /// With --recipient: the full cycle with batches, the recipient
    /// fetching up to this many items per request (1 to 100), each with
    /// its attestation, and acknowledging them in one request.
    #[arg(long, requires = "recipient", value_parser = clap::value_parser!(u32).range(1..=100))]
    batch: Option<u32>,
    /// The gateway's process id, to report its CPU time per 1,000 items
    /// and its peak memory (read from /proc).
    #[arg(long)]
    pid: Option<u32>,
    /// Measure new mTLS connections per second (full and resumed) instead
    /// of submissions, against any endpoint asking for client certificates.
    #[arg(long)]
    handshakes: bool,
    /// With --handshakes: connections of each kind.
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// With --handshakes: connections opened at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// With --handshakes: alternating rounds of full and resumed.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

/// A station config, pointed at `--gateway` if given, without retries:
/// a failure is counted, not retried, since retries would hide it.
fn load_station(path: &Path, gateway: Option<&String>) -> Result<ClientConfig> {
    let mut c = ClientConfig::load(path).with_context(|| format!("reading {}", path.display()))?;
    if let Some(g) = gateway {
        c.gateway = g.clone();
    }
    c.retries = 0;
    Ok(c)
}

fn item_spec(args: &BenchArgs) -> Result<ItemSpec> {
    let mut spec = match &args.item {
        Some(path) => ItemSpec::parse(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{} is not an item file", path.display()))?,
        None => {
            let mut spec = ItemSpec::parse(DEFAULT_ITEM).context("the built-in item")?;
            for p in &mut spec.portions {
                p.text = "x".repeat(args.size);
            }
            spec
        }
    };
    // A fresh UUIDv7 per item: a repeated id would be answered from the
    // store as a duplicate, far cheaper than a submission.
    spec.id = None;
    Ok(spec)
}

pub async fn run(args: BenchArgs) -> Result<ExitCode> {
    let stations = args
        .config
        .iter()
        .map(|p| load_station(p, args.gateway.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    if args.handshakes {
        let report = handshakes::run(HandshakeOptions {
            station: stations[0].clone(),
            connections: args.connections,
            concurrency: args.concurrency,
            rounds: args.rounds,
        })
        .await?;
        print!("{report}");
        let failed = report.full.failed + report.resumed.failed;
        return Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let report = load::run(LoadOptions {
        stations,
        connections: args.stations,
        duration: Duration::try_from_secs_f64(args.duration).context("--duration")?,
        rate: args.rate,
        items: args.items,
        spec: item_spec(&args)?,
        gateway_pid: args.pid,
        crypto_budget: Duration::from_secs(1),
        fresh_connections: args.fresh_connections,
        recipient: args
            .recipient
            .as_ref()
            .map(|p| load_station(p, args.gateway.as_ref()))
            .transpose()?,
        batch: args.batch,
    })
    .await?;
    print!("{report}");
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
