//! Submissions from N stations over kept-alive connections, closed or open
//! loop, against a gateway that runs elsewhere. Items are signed and
//! encoded before timing starts, and each station opens its connection
//! before it, so what is timed is the gateway's work on a submission and
//! the round trip. Only sends; reads nothing of the answers beyond their
//! status.

use hyper::Method;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::crypto::{self, Limit};
use super::process::{self, Usage};
use super::Latencies;
use crate::client::{ClientError, Connections, Station};
use crate::domain::bytes::to_cbor;
use crate::domain::wire::Problem;
use crate::gateway::unix_now;
use crate::spec::ItemSpec;
use crate::station_config::ClientConfig;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Station configs; the stations take them in turn.
    pub stations: Vec<ClientConfig>,
    /// Stations sending at once, each on its own connection.
    pub connections: usize,
    /// How long to send.
    pub duration: Duration,
    /// Items per second offered in all (open loop); `None`: closed loop.
    pub rate: Option<f64>,
    /// Items signed beforehand for a closed loop (the run ends early if
    /// they are all sent).
    pub items: usize,
    /// The item every station sends (with a fresh id each time).
    pub spec: ItemSpec,
    /// The gateway's process id, to read its CPU time and peak memory.
    pub gateway_pid: Option<u32>,
    /// How long to time the crypto limit.
    pub crypto_budget: Duration,
    /// A new connection per submission (as the station client did before
    /// it kept connections), to measure what keeping them saves.
    pub fresh_connections: bool,
    /// A recipient of the items, which lists, fetches and acknowledges
    /// them while they are submitted (the full cycle).
    pub recipient: Option<ClientConfig>,
    /// The recipient fetches up to this many items per request
    /// (`GET /v1/inbox?fetch=N`) and acknowledges them in one
    /// (`POST /v1/acks`), instead of one request per item.
    pub batch: Option<u32>,
}

/// Why a run could not start. Failures of single submissions are not
/// errors: they are counted in the report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A station's files could not be loaded, or its first connection
    /// failed.
    #[error("station: {0}")]
    Station(#[from] ClientError),
    /// The crypto limit could not be measured.
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    /// Nothing to run.
    #[error("{0}")]
    Options(&'static str),
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Stations sending at once.
    pub connections: usize,
    /// Offered rate, for an open loop.
    pub rate: Option<f64>,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Submissions answered with a receipt.
    pub submitted: u64,
    /// Their latencies (open loop: from when each was due).
    pub latencies: Latencies,
    /// Failed submissions, by kind.
    pub errors: BTreeMap<String, u64>,
    /// The crypto limit, timed in this run.
    pub limit: Limit,
    /// The gateway before and after, if its pid was given and readable.
    pub gateway: Option<(Usage, Usage)>,
    /// Connections the stations opened during the timed part.
    pub reconnections: Connections,
    /// Whether each submission had its own connection.
    pub fresh_connections: bool,
    /// The recipient's side, if one ran.
    pub delivery: Option<Delivery>,
}

/// What the recipient did in the timed part: one station on one kept
/// connection, listing its inbox and fetching then acknowledging each
/// item in turn, or fetching and acknowledging batches.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// Items fetched and acknowledged.
    pub delivered: u64,
    /// Batched: the most items per fetch asked for, and the requests
    /// made (so the mean batch is `delivered / batches`).
    pub batched: Option<(u32, u64)>,
    /// `GET /v1/inbox` (no wait).
    pub inbox: Latencies,
    /// `GET /v1/items/{ref}`, or per batch `GET /v1/inbox?fetch=N`.
    pub fetch: Latencies,
    /// `POST /v1/items/{ref}/ack`, or per batch `POST /v1/acks`.
    pub ack: Latencies,
}

impl Delivery {
    /// Items delivered per second in `elapsed`.
    pub fn throughput(&self, elapsed: Duration) -> f64 {
        self.delivered as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

impl LoadReport {
    /// Submissions per second.
    pub fn throughput(&self) -> f64 {
        self.submitted as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Throughput as a fraction of the one-core crypto limit.
    pub fn ratio(&self) -> f64 {
        self.throughput() / self.limit.items_per_second()
    }

    /// The gateway's CPU seconds per 1,000 submissions.
    pub fn gateway_cpu_per_1000(&self) -> Option<f64> {
        let (before, after) = self.gateway?;
        (self.submitted > 0)
            .then(|| (after.cpu_seconds - before.cpu_seconds) * 1000.0 / self.submitted as f64)
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.rate {
            Some(r) => format!("open loop, {r:.0} items/s offered"),
            None => "closed loop".to_string(),
        };
        let connections = if self.fresh_connections {
            "a new connection per submission"
        } else {
            "kept-alive connections"
        };
        writeln!(
            f,
            "submit: {} stations on {connections}, {mode}",
            self.connections
        )?;
        writeln!(
            f,
            "  {} items in {:.2} s = {:.0} items/s; {}",
            self.submitted,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.latencies.summary()
        )?;
        writeln!(
            f,
            "  crypto limit (one core, ring: 1 Ed25519 verify {:.1} µs + 2 signs {:.1} µs each): {:.0} items/s; ratio {:.2}",
            self.limit.verify.as_secs_f64() * 1e6,
            self.limit.sign.as_secs_f64() * 1e6,
            self.limit.items_per_second(),
            self.ratio()
        )?;
        if let Some((_, after)) = self.gateway {
            let per_item = self.gateway_cpu_per_1000().unwrap_or(0.0);
            writeln!(
                f,
                "  gateway: {per_item:.3} CPU s per 1,000 items ({:.1}× its signature work of 1 verify + 1 sign), peak RSS {:.1} MiB",
                per_item / 1000.0
                    / (self.limit.verify + self.limit.sign)
                        .as_secs_f64()
                        .max(f64::MIN_POSITIVE),
                after.peak_rss_kib as f64 / 1024.0
            )?;
        }
        if let Some(d) = &self.delivery {
            let rate = d.throughput(self.elapsed);
            let ratio = rate / self.limit.items_per_second();
            match d.batched {
                None => {
                    writeln!(
                        f,
                        "delivery: one recipient station, fetch then ack per item: {} items = {rate:.0} items/s; ratio {ratio:.2}",
                        d.delivered,
                    )?;
                    writeln!(f, "  inbox: {}", d.inbox.summary())?;
                }
                Some((n, requests)) => writeln!(
                    f,
                    "full cycle: one recipient station, batched fetch (up to {n}, {:.1} per request on average) with attestations and batched ack: {} items = {rate:.0} items/s; full-cycle ratio {ratio:.2}",
                    d.delivered as f64 / requests.max(1) as f64,
                    d.delivered,
                )?,
            }
            writeln!(f, "  fetch: {}", d.fetch.summary())?;
            writeln!(f, "  ack:   {}", d.ack.summary())?;
        }
        writeln!(
            f,
            "  new connections while timed: {} ({} resumed)",
            self.reconnections.opened, self.reconnections.resumed
        )?;
        if self.errors.is_empty() {
            writeln!(f, "  errors: none")
        } else {
            for (kind, n) in &self.errors {
                writeln!(f, "  errors: {n} × {kind}")?;
            }
            Ok(())
        }
    }
}

/// The kind of a failed submission, for counting.
fn kind(e: &ClientError) -> String {
    match e {
        ClientError::Refused(p) => format!("HTTP {} {}", p.status, p.slug()),
        ClientError::Network(m) => format!(
            "network: {}",
            crate::domain::bounds::truncate(m.clone(), 80)
        ),
        other => crate::domain::bounds::truncate(other.to_string(), 80),
    }
}

/// One submission of an encoded item; the status says whether it holds a
/// receipt.
async fn submit(station: &Station, body: &[u8]) -> Result<(), ClientError> {
    let answer = station
        .request(
            Method::POST,
            "/v1/items",
            Some(body.to_vec()),
            Duration::ZERO,
        )
        .await?;
    if answer.status.is_success() {
        return Ok(());
    }
    match serde_json::from_slice::<Problem>(&answer.body) {
        Ok(p) => Err(ClientError::Refused(p)),
        Err(_) => Err(ClientError::Protocol(format!("status {}", answer.status))),
    }
}

/// Opens the stations and their connections, signs the items, times the
/// crypto limit, then sends for `options.duration`.
pub async fn run(options: LoadOptions) -> Result<LoadReport, BenchError> {
    if options.stations.is_empty() || options.connections == 0 {
        return Err(BenchError::Options(
            "at least one station and one connection",
        ));
    }
    let mut stations = Vec::with_capacity(options.connections);
    for n in 0..options.connections {
        let mut station = Station::new(options.stations[n % options.stations.len()].clone())?;
        if options.fresh_connections {
            station = station.with_fresh_connections();
        }
        // The connection is opened now, outside the timed part.
        station
            .request(Method::GET, "/healthz", None, Duration::ZERO)
            .await?;
        stations.push(Arc::new(station));
    }
    let count = match options.rate {
        Some(rate) => (rate * options.duration.as_secs_f64()).ceil() as usize,
        None => options.items,
    }
    .max(1);
    let now = unix_now();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..count)
            .map(|n| {
                let s = &stations[n % stations.len()];
                to_cbor(
                    &options
                        .spec
                        .sign(s.signing_key(), &s.config().principal, now),
                )
            })
            .collect(),
    );
    let budget = options.crypto_budget;
    let limit = tokio::task::spawn_blocking(move || crypto::measure(budget))
        .await
        .map_err(|_| BenchError::Options("the crypto measurement stopped"))??;
    let recipient = match &options.recipient {
        Some(c) => {
            let station = Station::new(c.clone())?;
            station.inbox(Duration::ZERO).await?;
            Some(station)
        }
        None => None,
    };
    let opened_before = total(&stations);

    let before = options.gateway_pid.and_then(process::usage);
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut workers = Vec::new();
    for station in &stations {
        let (station, bodies, next, errors) = (
            station.clone(),
            bodies.clone(),
            next.clone(),
            errors.clone(),
        );
        let rate = options.rate;
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(n) else { break };
                // Open loop: item n is due at n / rate, whether or not the
                // gateway kept up; its latency counts from then.
                let due = match rate {
                    Some(r) => started + Duration::from_secs_f64(n as f64 / r),
                    None => Instant::now(),
                };
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                match submit(&station, body).await {
                    Ok(()) => latencies.record(due.elapsed()),
                    Err(e) => {
                        let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
                        *errors.entry(kind(&e)).or_default() += 1;
                    }
                }
            }
            latencies
        }));
    }
    let batch = options.batch;
    let receiving = recipient.map(|r| {
        let errors = errors.clone();
        tokio::spawn(async move {
            match batch {
                Some(n) => receive_batched(&r, n, deadline, &errors).await,
                None => receive(&r, deadline, &errors).await,
            }
        })
    });
    let mut latencies = Latencies::new();
    for w in workers {
        if let Ok(l) = w.await {
            latencies.add(&l);
        }
    }
    let delivery = match receiving {
        Some(task) => task.await.ok(),
        None => None,
    };
    let elapsed = started.elapsed();
    let after = options.gateway_pid.and_then(process::usage);
    let opened_after = total(&stations);
    let errors = errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(LoadReport {
        connections: options.connections,
        rate: options.rate,
        elapsed,
        submitted: latencies.count(),
        latencies,
        errors,
        limit,
        gateway: before.zip(after),
        reconnections: Connections {
            opened: opened_after.opened - opened_before.opened,
            resumed: opened_after.resumed - opened_before.resumed,
        },
        fresh_connections: options.fresh_connections,
        delivery,
    })
}

/// The recipient's loop until `deadline`: list, then fetch and acknowledge
/// each listed item.
async fn receive(
    station: &Station,
    deadline: Instant,
    errors: &Mutex<BTreeMap<String, u64>>,
) -> Delivery {
    let mut d = Delivery::default();
    let count = |what: &str, e: &ClientError| {
        let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
        *errors.entry(format!("{what}: {}", kind(e))).or_default() += 1;
    };
    while Instant::now() < deadline {
        let t = Instant::now();
        let entries = match station.inbox(Duration::ZERO).await {
            Ok(entries) => entries,
            Err(e) => {
                count("inbox", &e);
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        d.inbox.record(t.elapsed());
        if entries.is_empty() {
            // Nothing yet: the submitters are ahead of nobody.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        for entry in entries {
            if Instant::now() >= deadline {
                break;
            }
            let t = Instant::now();
            if let Err(e) = station.fetch(&entry.item_ref).await {
                count("fetch", &e);
                continue;
            }
            d.fetch.record(t.elapsed());
            let t = Instant::now();
            match station.ack(&entry.item_ref).await {
                Ok(_) => {
                    d.ack.record(t.elapsed());
                    d.delivered += 1;
                }
                Err(e) => count("ack", &e),
            }
        }
    }
    d
}

/// The recipient's loop until `deadline` with batches: fetch up to `n`
/// items with their attestations in one request, acknowledge them in one.
async fn receive_batched(
    station: &Station,
    n: u32,
    deadline: Instant,
    errors: &Mutex<BTreeMap<String, u64>>,
) -> Delivery {
    let mut d = Delivery {
        batched: Some((n, 0)),
        ..Delivery::default()
    };
    let mut requests = 0;
    let count = |what: &str, e: &ClientError| {
        let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
        *errors.entry(format!("{what}: {}", kind(e))).or_default() += 1;
    };
    while Instant::now() < deadline {
        let t = Instant::now();
        // No long-poll: its wait would run past the deadline and into the
        // timed part.
        let fetched = match station.fetch_batch(Duration::ZERO, n).await {
            Ok(fetched) => fetched,
            Err(e) => {
                count("fetch", &e);
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        if fetched.items.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        d.fetch.record(t.elapsed());
        requests += 1;
        let refs: Vec<String> = fetched
            .items
            .into_iter()
            .map(|f| f.entry.item_ref)
            .collect();
        let t = Instant::now();
        match station.ack_batch(&refs).await {
            Ok(results) => {
                d.ack.record(t.elapsed());
                d.delivered += results.iter().filter(|r| r.problem.is_none()).count() as u64;
            }
            Err(e) => count("ack", &e),
        }
    }
    d.batched = Some((n, requests));
    d
}

fn total(stations: &[Arc<Station>]) -> Connections {
    stations.iter().fold(Connections::default(), |mut t, s| {
        let c = s.connections();
        t.opened += c.opened;
        t.resumed += c.resumed;
        t
    })
}
