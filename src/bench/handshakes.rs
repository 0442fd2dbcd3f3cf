//! New mutual-TLS connections per second against any endpoint that asks
//! for client certificates (the gateway, or a reference server such as
//! nginx with `ssl_verify_client on` on the same certificates): full
//! handshakes (no session offered: certificates sent and verified, both
//! sides sign) and resumed ones (a TLS 1.3 session from an earlier
//! connection offered), in alternating rounds so that drift on the machine
//! hits both alike. Each connection sends one `GET /healthz` and reads the
//! answer to its end, which also delivers the session tickets a resumed
//! round needs. Only connects; never reads more than the status line.

use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Latencies;
use crate::station_config::ClientConfig;
use crate::tls::{self, TlsError};

/// What to run.
#[derive(Debug, Clone)]
pub struct HandshakeOptions {
    /// The client certificate, key and CA (and, unless `address` is set,
    /// the endpoint and its name).
    pub station: ClientConfig,
    /// Connections of each kind, in all.
    pub connections: usize,
    /// Connections opened at once.
    pub concurrency: usize,
    /// Alternating rounds.
    pub rounds: usize,
}

/// One kind's figures.
#[derive(Debug, Clone, Default)]
pub struct KindReport {
    /// Connections answered `200`.
    pub ok: u64,
    /// Of these, how many resumed a session.
    pub resumed: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Time spent in this kind's rounds.
    pub elapsed: Duration,
    /// Connect to last byte, per connection.
    pub latencies: Latencies,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

impl KindReport {
    /// Connections per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Full and resumed handshakes, side by side.
#[derive(Debug, Clone)]
pub struct HandshakeReport {
    /// The endpoint.
    pub address: String,
    /// Connections opened at once.
    pub concurrency: usize,
    /// No session offered.
    pub full: KindReport,
    /// A session offered.
    pub resumed: KindReport,
}

impl fmt::Display for HandshakeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "handshakes against {}, {} at once (connect, TLS 1.3 with a client certificate, GET /healthz, close)",
            self.address, self.concurrency
        )?;
        for (name, k) in [("full", &self.full), ("resumed", &self.resumed)] {
            writeln!(
                f,
                "  {name:<8} {:.0} connections/s ({} ok, {} of them resumed, {} failed); {}",
                k.rate(),
                k.ok,
                k.resumed,
                k.failed,
                k.latencies.summary()
            )?;
            if let Some(e) = &k.first_error {
                writeln!(f, "           first failure: {e}")?;
            }
        }
        writeln!(
            f,
            "  resumed / full: {:.2}",
            self.resumed.rate() / self.full.rate().max(f64::MIN_POSITIVE)
        )
    }
}

struct Target {
    connector: TlsConnector,
    address: String,
    name: ServerName<'static>,
    host: String,
}

/// One connection; whether it resumed.
async fn one(t: &Target) -> Result<bool, String> {
    let tcp = TcpStream::connect(&t.address)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut tls = t
        .connector
        .connect(t.name.clone(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nhost: {}\r\naccept: application/json\r\nconnection: close\r\n\r\n",
        t.host
    );
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    // Bounded: a server that keeps sending is cut at 64 KiB.
    let _ = (&mut tls).take(64 * 1024).read_to_end(&mut answer).await;
    if answer.starts_with(b"HTTP/1.1 200") {
        Ok(resumed)
    } else {
        let line = answer.split(|b| *b == b'\r').next().unwrap_or_default();
        Err(format!(
            "answer: {:?}",
            String::from_utf8_lossy(line)
                .chars()
                .take(80)
                .collect::<String>()
        ))
    }
}

async fn round(t: Arc<Target>, n: usize, concurrency: usize, report: &mut KindReport) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (t, next) = (t.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = KindReport::default();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let began = Instant::now();
                match one(&t).await {
                    Ok(resumed) => {
                        k.latencies.record(began.elapsed());
                        k.ok += 1;
                        k.resumed += u64::from(resumed);
                    }
                    Err(e) => {
                        k.failed += 1;
                        k.first_error.get_or_insert(e);
                    }
                }
            }
            k
        }));
    }
    for task in tasks {
        if let Ok(k) = task.await {
            report.ok += k.ok;
            report.resumed += k.resumed;
            report.failed += k.failed;
            report.latencies.add(&k.latencies);
            if report.first_error.is_none() {
                report.first_error = k.first_error;
            }
        }
    }
    report.elapsed += started.elapsed();
}

/// Runs `rounds` alternating rounds of full and resumed connections.
pub async fn run(options: HandshakeOptions) -> Result<HandshakeReport, TlsError> {
    let s = &options.station;
    let base = tls::client_config(&s.cert, &s.key, &s.ca)?;
    let name = ServerName::try_from(s.server_name.clone())
        .map_err(|e| TlsError::Rustls(format!("server_name: {e}")))?;
    let target = |config: rustls::ClientConfig| {
        Arc::new(Target {
            connector: TlsConnector::from(Arc::new(config)),
            address: s.gateway.clone(),
            name: name.clone(),
            host: s.server_name.clone(),
        })
    };
    let mut full_config = (*base).clone();
    full_config.resumption = Resumption::disabled();
    let full = target(full_config);
    // The station's own config: rustls' in-memory session cache.
    let resumed = target((*base).clone());
    // One connection first, so the resumed rounds have a session to offer.
    let _ = one(&resumed).await;
    let rounds = options.rounds.max(1);
    let per_round = options.connections.div_ceil(rounds);
    let mut report = HandshakeReport {
        address: s.gateway.clone(),
        concurrency: options.concurrency,
        full: KindReport::default(),
        resumed: KindReport::default(),
    };
    for _ in 0..rounds {
        round(
            full.clone(),
            per_round,
            options.concurrency,
            &mut report.full,
        )
        .await;
        round(
            resumed.clone(),
            per_round,
            options.concurrency,
            &mut report.resumed,
        )
        .await;
    }
    Ok(report)
}
