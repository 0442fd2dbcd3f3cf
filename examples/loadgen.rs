//! Load generator: submits signed items over real mutual TLS to a gateway
//! on loopback and reports throughput and latency percentiles.
//!
//! It starts its own gateway in a temporary directory (example PKI, SQLite
//! store with fsync on every commit), then runs `--concurrency` stations
//! submitting `--items` items in total, each a full submit: TLS handshake,
//! COSE verification, decision, durable commit with its audit entry, signed
//! receipt. Then one recipient drains its inbox (fetch + ack).
//!
//! ```sh
//! cargo run --release --example loadgen -- --items 2000 --concurrency 8
//! ```
//! Latencies go into an HDR histogram (hdrhistogram) so percentiles are
//! exact to three significant digits.

use clap::Parser;
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::{Duration, Instant};

use passerelle::client::Station;
use passerelle::config::GatewayConfig;
use passerelle::gateway::unix_now;
use passerelle::pki;
use passerelle::spec::ItemSpec;
use passerelle::station_config::ClientConfig;

#[derive(Parser)]
struct Args {
    /// Items to submit in total.
    #[arg(long, default_value_t = 2000)]
    items: usize,
    /// Concurrent submitting stations.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

fn station(
    dir: &std::path::Path,
    principal: &str,
    addr: std::net::SocketAddr,
) -> anyhow::Result<Station> {
    let mut c = ClientConfig::load(&dir.join(pki::station_dir(principal)).join("client.toml"))?;
    c.gateway = addr.to_string();
    c.retries = 0;
    Ok(Station::new(c)?)
}

fn report(name: &str, h: &Histogram<u64>, count: usize, elapsed: Duration) {
    println!(
        "{name}: {count} in {:.2} s = {:.0}/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.9) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let example = pki::generate()?;
    pki::write_example(dir.path(), &example, "127.0.0.1:0", None)?;
    let mut config = GatewayConfig::load(&dir.path().join("gateway.toml"))?;
    // One station from one address is the whole load here: lift the
    // per-address and per-principal limits, which exist to stop exactly that.
    let l = &mut config.limits;
    l.handshakes_per_address_per_second = 1_000_000;
    l.handshake_burst_per_address = 1_000_000;
    l.handshakes_pending_per_address = l.handshakes_pending;
    l.requests_per_principal_per_second = 1_000_000;
    l.request_burst_per_principal = 1_000_000;
    l.connections_per_principal = l.max_connections;
    let running = passerelle::server::start(&config).await?;
    let addr = running.addr;
    let rabat = Arc::new(station(dir.path(), "police/lo/rabat", addr)?);
    let spec = ItemSpec::parse(
        "to = [\"vsse/analysis/ct\"]\npurpose = \"terrorism\"\ncases = [\"CT-2026-014\"]\npriority = \"FLASH\"\n\
         [label]\nlevel = \"RESTREINT\"\n[[portion]]\ntext = \"Load test item: a short operational message of a few hundred bytes, as most FLASH messages are.\"\n\
         [portion.label]\nlevel = \"RESTREINT\"\n",
    )?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    let per_task = args.items.div_ceil(args.concurrency);
    for worker in 0..args.concurrency {
        let rabat = rabat.clone();
        let mut spec = spec.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            for n in 0..per_task {
                spec.id = Some(format!("load-{worker}-{n}"));
                let item = spec.sign(rabat.signing_key(), &rabat.config().principal, unix_now());
                let t = Instant::now();
                rabat.submit(&item).await.expect("submit");
                let _ = h.record(t.elapsed().as_micros() as u64);
            }
            h
        }));
    }
    let mut submits = Histogram::<u64>::new(3)?;
    for t in tasks {
        submits.add(t.await?)?;
    }
    let submitted = per_task * args.concurrency;
    report("submit", &submits, submitted, started.elapsed());

    let vsse = station(dir.path(), "vsse/analysis/ct", addr)?;
    let started = Instant::now();
    let mut fetches = Histogram::<u64>::new(3)?;
    let mut drained = 0;
    loop {
        let inbox = vsse.inbox(Duration::ZERO).await?;
        if inbox.is_empty() {
            break;
        }
        for entry in inbox {
            let t = Instant::now();
            let item = vsse.fetch(&entry.item_ref).await?;
            vsse.open(&item)?;
            vsse.ack(&entry.item_ref).await?;
            let _ = fetches.record(t.elapsed().as_micros() as u64);
            drained += 1;
        }
    }
    report("fetch+verify+ack", &fetches, drained, started.elapsed());
    running.shutdown().await;
    Ok(())
}
