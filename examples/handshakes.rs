//! Full TLS 1.3 mutual handshakes per second against a real gateway on
//! loopback, with and without the hybrid post-quantum group, side by side.
//!
//! It starts a gateway with the default `kx = "hybrid-preferred"` in a
//! temporary directory (example PKI), then opens new connections as the
//! Rabat station with two client configs that differ only in their key
//! exchange groups: the station's own (X25519MLKEM768 first) and ring's
//! alone (X25519 first, no ML-KEM). Each connection is a full handshake
//! (resumption off, so no session tickets are reused: certificates are
//! sent and verified, both sides sign) followed by one `GET /healthz`,
//! which also says which group the gateway saw. The two kinds run in
//! alternating rounds, so drift on the machine hits both alike.
//!
//! ```sh
//! cargo run --release --example handshakes -- --connections 2000 --concurrency 4
//! ```

use clap::Parser;
use hdrhistogram::Histogram;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use passerelle::config::GatewayConfig;
use passerelle::pki;

#[derive(Parser)]
struct Args {
    /// Connections per kind of client, in total.
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Alternating rounds (each kind runs `connections / rounds` per round).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

/// A TCP stream that counts the bytes each way.
struct Counting {
    inner: tokio::net::TcpStream,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.received.fetch_add(n, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r {
            self.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One kind of client and what it measured.
struct Kind {
    name: &'static str,
    config: Arc<rustls::ClientConfig>,
    latency: Histogram<u64>,
    elapsed: Duration,
    done: u64,
    sent: u64,
    received: u64,
    groups: std::collections::BTreeMap<String, u64>,
}

/// What one connection measured.
struct One {
    micros: u64,
    sent: u64,
    received: u64,
    group: String,
}

/// One new connection: full handshake, then `GET /healthz`.
async fn connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> anyhow::Result<One> {
    let start = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let stream = Counting {
        inner: tcp,
        sent: sent.clone(),
        received: received.clone(),
    };
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await?;
    // The handshake's bytes, before any HTTP.
    let (hs_sent, hs_received) = (
        sent.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed),
    );
    let group = tls
        .get_ref()
        .1
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()))
        .unwrap_or_default();
    tls.write_all(
        b"GET /healthz HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\nconnection: close\r\n\r\n",
    )
    .await?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out);
    anyhow::ensure!(text.starts_with("HTTP/1.1 200"), "not 200: {text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let health: serde_json::Value = serde_json::from_str(body)?;
    anyhow::ensure!(
        health["key_exchange"] == group.as_str(),
        "the gateway saw another group than {group}: {health}"
    );
    Ok(One {
        micros: start.elapsed().as_micros() as u64,
        sent: hs_sent,
        received: hs_received,
        group,
    })
}

async fn round(addr: std::net::SocketAddr, kind: &mut Kind, count: usize, concurrency: usize) {
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let config = kind.config.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count as u64 {
                match connect(addr, config.clone()).await {
                    Ok(one) => mine.push(one),
                    Err(e) => eprintln!("connection failed: {e}"),
                }
            }
            mine
        }));
    }
    for t in tasks {
        let Ok(results) = t.await else { continue };
        for one in results {
            let _ = kind.latency.record(one.micros);
            kind.done += 1;
            kind.sent += one.sent;
            kind.received += one.received;
            *kind.groups.entry(one.group).or_default() += 1;
        }
    }
    kind.elapsed += start.elapsed();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let example = pki::generate()?;
    pki::write_example(dir.path(), &example, "127.0.0.1:0", None)?;
    let mut config = GatewayConfig::load(&dir.path().join("gateway.toml"))?;
    // One address opens every connection here: lift the per-address and
    // per-principal limits, which exist to stop exactly that.
    let l = &mut config.limits;
    l.handshakes_per_address_per_second = 1_000_000;
    l.handshake_burst_per_address = 1_000_000;
    l.handshakes_pending_per_address = l.handshakes_pending;
    l.requests_per_principal_per_second = 1_000_000;
    l.request_burst_per_principal = 1_000_000;
    l.connections_per_principal = l.max_connections;
    let running = passerelle::server::start(&config).await?;
    let addr = running.addr;

    let station = dir.path().join(pki::station_dir("police/lo/rabat"));
    let (cert, key, ca) = (
        station.join("cert.pem"),
        station.join("key.pem"),
        dir.path().join("gateway/ca.pem"),
    );
    let full_handshakes = |provider: Arc<rustls::crypto::CryptoProvider>| -> anyhow::Result<_> {
        let mut roots = rustls::RootCertStore::empty();
        for c in passerelle::tls::load_certs(&ca)? {
            roots.add(c)?;
        }
        let mut c = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                passerelle::tls::load_certs(&cert)?,
                passerelle::tls::load_key(&key)?,
            )?;
        c.resumption = rustls::client::Resumption::disabled();
        Ok(Arc::new(c))
    };
    let kind = |name, config| Kind {
        name,
        config,
        latency: Histogram::new(3).expect("3 significant digits is valid"),
        elapsed: Duration::ZERO,
        done: 0,
        sent: 0,
        received: 0,
        groups: Default::default(),
    };
    let mut kinds = [
        kind(
            "hybrid (X25519MLKEM768)",
            full_handshakes(passerelle::tls::provider())?,
        ),
        kind(
            "classical (X25519)",
            full_handshakes(Arc::new(rustls::crypto::ring::default_provider()))?,
        ),
    ];
    // Warm up both paths (page faults, allocator), unmeasured.
    for k in &kinds {
        for _ in 0..20 {
            connect(addr, k.config.clone()).await?;
        }
    }
    let rounds = args.rounds.max(1);
    let per_round = (args.connections / rounds).max(1);
    for r in 0..rounds {
        // Alternate which kind goes first.
        let order: [usize; 2] = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            round(addr, &mut kinds[i], per_round, args.concurrency).await;
        }
    }
    println!(
        "{} connections per kind, {} at once, {rounds} alternating rounds; each a full TLS 1.3 mutual handshake + GET /healthz",
        per_round * rounds,
        args.concurrency
    );
    let mut rates = Vec::new();
    for k in &kinds {
        let rate = k.done as f64 / k.elapsed.as_secs_f64();
        rates.push(rate);
        let n = k.done.max(1);
        println!(
            "{:<24} {:>7.0} conn/s; p50 {:.2} ms, p99 {:.2} ms; handshake bytes client->gateway {}, gateway->client {}; groups {:?}",
            k.name,
            rate,
            k.latency.value_at_quantile(0.5) as f64 / 1000.0,
            k.latency.value_at_quantile(0.99) as f64 / 1000.0,
            k.sent / n,
            k.received / n,
            k.groups,
        );
    }
    println!("hybrid / classical rate: {:.3}", rates[0] / rates[1]);
    running.shutdown().await;
    Ok(())
}
