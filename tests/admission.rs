//! Admission control against the network attacker and the careless
//! station: floods of silent connections, stalled bodies and long-polls
//! must not keep an honest station out; rates answer 429 with Retry-After;
//! bodies and idle connections are bounded in time and size.
//!
//! Floods come from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to the
//! loopback interface), the honest station from 127.0.0.1, as an attacker
//! and a station would come from different addresses. Every wait is
//! bounded; the only time bound asserted is the generous 2 s per
//! honest submission (and a few seconds for a refusal to come).

mod common;

use common::{item, raw_client, Harness};
use passerelle::audit::event::AuditEntry;
use passerelle::client::Station;
use passerelle::config::GatewayConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const HONEST: &str = "police/lo/rabat";
const RECIPIENT: &str = "vsse/analysis/ct";
const FLOODER: &str = "police/lo/ankara";
/// Each honest submission must be answered within this, during a flood.
const PER_ITEM: Duration = Duration::from_secs(2);

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A TCP connection to `addr` from `source` (any port).
async fn connect_from(addr: SocketAddr, source: &str) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{source}:0").parse().expect("source address"))?;
    tokio::time::timeout(Duration::from_secs(3), socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}

/// A raw TLS client config presenting `principal`'s certificate.
fn client_of(h: &Harness, principal: &str) -> Arc<rustls::ClientConfig> {
    let station = h.path().join(passerelle::pki::station_dir(principal));
    raw_client(
        &h.ca_path(),
        Some((&station.join("cert.pem"), &station.join("key.pem"))),
        &[&rustls::version::TLS13],
    )
}

/// A mutual-TLS connection as `principal`, from `source`.
async fn tls_as(h: &Harness, principal: &str, source: &str) -> Result<Tls, String> {
    tls_with(h.addr(), client_of(h, principal), source).await
}

/// A mutual-TLS connection with `config` to `addr`, from `source`.
async fn tls_with(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    source: &str,
) -> Result<Tls, String> {
    let tcp = connect_from(addr, source)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| "handshake timed out".to_string())?
    .map_err(|e| e.to_string())
}

/// Reads one HTTP response (headers and a Content-Length body) within
/// `within`; `None` if the connection closed or nothing complete came.
async fn read_response(tls: &mut Tls, within: Duration) -> Option<String> {
    let work = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    return Some(text);
                }
            }
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(within, work).await.ok().flatten()
}

/// True when the peer closes `tls` within `within` (EOF or error).
async fn closed_within(tls: &mut Tls, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let work = async {
        loop {
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, work).await.is_ok()
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The soft limit on open files of this process, from /proc (Linux).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

/// The per-address limits opened wide, as if the flood came from many
/// addresses (or from behind one NAT): the per-principal defences are
/// then the ones that must hold.
fn wide_open_per_address(c: &mut GatewayConfig) {
    c.limits.handshakes_pending = 4096;
    c.limits.handshakes_pending_per_address = 4096;
    c.limits.handshakes_per_address_per_second = 100_000;
    c.limits.handshake_burst_per_address = 100_000;
}

/// The honest station sends `n` items; returns each one's latency, and
/// fails the test if one is refused or takes longer than [`PER_ITEM`].
async fn honest_sends(station: &Station, tag: &str, n: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let it = item(station, &format!("{tag}-{i}"), &[RECIPIENT], "honest");
        let start = Instant::now();
        let result = tokio::time::timeout(PER_ITEM, station.submit(&it)).await;
        let took = start.elapsed();
        match result {
            Ok(Ok(_)) => latencies.push(took),
            Ok(Err(e)) => panic!("honest item {i} during {tag} refused: {e}"),
            Err(_) => panic!("honest item {i} during {tag} took more than {PER_ITEM:?}"),
        }
    }
    latencies
}

/// A flood running on its own thread and runtime, as an attacker's
/// process would: it competes with the gateway for the CPU, not for the
/// test runtime's workers. Stops when dropped.
struct Flood {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Flood {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Keeps `n` TCP connections from 127.0.0.2 open that never start TLS:
/// each one closed by the gateway is opened again two seconds later, as an
/// attacker would. Returns once `n` connections were made (or after 20 s).
async fn silent_flood(addr: SocketAddr, n: usize) -> Flood {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let made = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let counter = made.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut flood = tokio::task::JoinSet::new();
            for _ in 0..n {
                let made = counter.clone();
                flood.spawn(async move {
                    loop {
                        if let Ok(mut tcp) = connect_from(addr, "127.0.0.2").await {
                            made.fetch_add(1, Ordering::Relaxed);
                            // Sends nothing; waits until the gateway closes it.
                            let mut byte = [0u8; 1];
                            let _ = tcp.read(&mut byte).await;
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                });
            }
            let _ = stopped.await;
            flood.shutdown().await;
        });
    });
    for _ in 0..200 {
        if made.load(Ordering::Relaxed) >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let flood = Flood {
        stop: Some(stop),
        thread: Some(thread),
    };
    assert!(
        made.load(Ordering::Relaxed) >= n / 2,
        "the flood made only {} connections",
        made.load(Ordering::Relaxed)
    );
    flood
}

/// Up to `n` connections of [`FLOODER`] from 127.0.0.2 that each send
/// `request` and then nothing more, 32 handshakes at a time. Returns the
/// connections still held by the flood.
async fn request_flood(h: &Harness, n: usize, request: &'static [u8]) -> Vec<Tls> {
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    let config = client_of(h, FLOODER);
    for _ in 0..n {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let (addr, config) = (h.addr(), config.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let mut tls = tls_with(addr, config, "127.0.0.2").await.ok()?;
            tls.write_all(request).await.ok()?;
            tls.flush().await.ok()?;
            Some(tls)
        });
    }
    let mut held = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(tls)) = done {
            held.push(tls);
        }
    }
    held
}

const STALLED_BODY: &[u8] = b"POST /v1/items HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/cbor\r\ncontent-length: 100000\r\n\r\n0123456789";
const LONG_POLL: &[u8] = b"GET /v1/inbox?wait=60 HTTP/1.1\r\nhost: localhost\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_do_not_keep_a_station_out() {
    let h = Harness::start().await;
    let rabat = h.station(HONEST);
    // Client and (refused) server ends share this process's descriptors.
    let n = 2000.min(open_files_limit().saturating_sub(1000) / 2);
    if n < 2000 {
        eprintln!("open-file limit allows a flood of {n} connections, not 2000");
    }
    let held = silent_flood(h.addr(), n).await;
    honest_sends(&rabat, "silent", 20).await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_do_not_keep_a_station_out() {
    let h = Harness::start_with(wide_open_per_address).await;
    let rabat = h.station(HONEST);
    let held = request_flood(&h, 600, STALLED_BODY).await;
    honest_sends(&rabat, "stalled", 20).await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_of_one_station_do_not_keep_another_out() {
    let h = Harness::start_with(wide_open_per_address).await;
    let rabat = h.station(HONEST);
    let held = request_flood(&h, 600, LONG_POLL).await;
    honest_sends(&rabat, "long-polls", 20).await;
    let (_, _, long_polls) = h.running.as_ref().unwrap().admission.counts();
    assert!(
        long_polls <= h.config.limits.long_polls_per_principal,
        "{long_polls} long-polls wait for one principal"
    );
    drop(held);
}

#[tokio::test]
async fn a_principal_over_its_rate_gets_429_with_retry_after() {
    let h = Harness::start_with(|c| {
        c.limits.requests_per_principal_per_second = 1;
        c.limits.request_burst_per_principal = 3;
    })
    .await;
    let mut tls = tls_as(&h, FLOODER, "127.0.0.1").await.unwrap();
    let mut statuses = Vec::new();
    let mut last = String::new();
    for _ in 0..4 {
        tls.write_all(
            b"GET /healthz HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\n\r\n",
        )
        .await
        .unwrap();
        last = read_response(&mut tls, Duration::from_secs(5))
            .await
            .expect("an answer");
        statuses.push(status_of(&last));
    }
    assert_eq!(statuses, [200, 200, 200, 429], "{last}");
    let lower = last.to_ascii_lowercase();
    assert!(lower.contains("\r\nretry-after: 1\r\n"), "{last}");
    assert!(lower.contains("application/problem+json"), "{last}");
    assert!(
        last.contains("urn:passerelle:problem:rate-limited"),
        "{last}"
    );
    // The refusal is on the audit log, under the principal's name.
    let counted = h.audit_events().await.into_iter().any(|e| {
        matches!(e, passerelle::audit::event::AuditEvent::Refused {
            subject: passerelle::audit::event::RefusedSubject::Principal(p),
            cause,
            ..
        } if p.as_str() == FLOODER && cause == "request-rate")
    });
    assert!(counted, "a 429 is counted for oversight");
    // Another principal is not affected.
    let other = h.station(HONEST);
    other
        .submit(&item(&other, "unaffected", &[RECIPIENT], "t"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_reading() {
    let h = Harness::start().await;
    let mut tls = tls_as(&h, FLOODER, "127.0.0.1").await.unwrap();
    let mut request = b"POST /v1/items HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/cbor\r\ncontent-length: 1099511627776\r\n\r\n".to_vec();
    request.extend_from_slice(&[0u8; 100]);
    tls.write_all(&request).await.unwrap();
    let answer = read_response(&mut tls, Duration::from_secs(5))
        .await
        .expect("an answer within 5 s");
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("body-too-large"), "{answer}");
    assert!(
        closed_within(&mut tls, Duration::from_secs(5)).await,
        "the connection is closed"
    );
}

/// GET /healthz on a kept-alive connection.
const HEALTHZ: &[u8] =
    b"GET /healthz HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\n\r\n";

#[tokio::test]
async fn idle_connections_close_but_requests_in_progress_do_not() {
    let h = Harness::start_with(|c| {
        c.limits.idle_timeout_seconds = 1;
        c.limits.header_timeout_seconds = 4;
        c.limits.max_wait_seconds = 3;
    })
    .await;

    // Idle after a request: closed after about a second, well before the
    // header timeout.
    let mut tls = tls_as(&h, HONEST, "127.0.0.1").await.unwrap();
    tls.write_all(HEALTHZ).await.unwrap();
    let answer = read_response(&mut tls, Duration::from_secs(5)).await;
    assert_eq!(answer.as_deref().map(status_of), Some(200));
    let start = Instant::now();
    assert!(closed_within(&mut tls, Duration::from_secs(3)).await);
    assert!(start.elapsed() < Duration::from_secs(4));

    // A long-poll longer than the idle timeout is answered.
    let mut tls = tls_as(&h, RECIPIENT, "127.0.0.1").await.unwrap();
    tls.write_all(
        b"GET /v1/inbox?wait=3 HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = read_response(&mut tls, Duration::from_secs(8)).await;
    assert_eq!(answer.as_deref().map(status_of), Some(200), "long-poll");

    // On a reused connection, headers sent in two halves, the pause longer
    // than the idle timeout (but shorter than the header timeout): the
    // request is answered.
    let mut tls = tls_as(&h, HONEST, "127.0.0.1").await.unwrap();
    tls.write_all(HEALTHZ).await.unwrap();
    let answer = read_response(&mut tls, Duration::from_secs(5)).await;
    assert_eq!(answer.as_deref().map(status_of), Some(200));
    let (first, second) = HEALTHZ.split_at(20);
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    tls.write_all(second).await.unwrap();
    let answer = read_response(&mut tls, Duration::from_secs(5)).await;
    assert_eq!(answer.as_deref().map(status_of), Some(200), "split headers");

    // Headers that never end: dropped at the header timeout.
    let mut tls = tls_as(&h, HONEST, "127.0.0.1").await.unwrap();
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();
    assert!(closed_within(&mut tls, Duration::from_secs(8)).await);
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_the_header_timeout_until_the_idle_timeout() {
    // The header timeout shorter than the idle one: waiting between
    // requests is idle time, not header time.
    let h = Harness::start_with(|c| {
        c.limits.header_timeout_seconds = 1;
        c.limits.idle_timeout_seconds = 4;
    })
    .await;
    let mut tls = tls_as(&h, HONEST, "127.0.0.1").await.unwrap();
    tls.write_all(HEALTHZ).await.unwrap();
    let answer = read_response(&mut tls, Duration::from_secs(5)).await;
    assert_eq!(answer.as_deref().map(status_of), Some(200));
    // Idle for longer than the header timeout: still usable.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    tls.write_all(HEALTHZ).await.unwrap();
    let answer = read_response(&mut tls, Duration::from_secs(5)).await;
    assert_eq!(
        answer.as_deref().map(status_of),
        Some(200),
        "a request after an idle time longer than the header timeout"
    );
    // Idle past the idle timeout: closed (by 12 s at the latest).
    let start = Instant::now();
    assert!(closed_within(&mut tls, Duration::from_secs(12)).await);
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "closed too early"
    );
}

/// Every audit entry, decoded, as debug text.
fn audit_texts(h: &Harness) -> Vec<String> {
    let store = h.running.as_ref().unwrap().gateway.store().clone();
    let size = store.size().unwrap();
    store
        .audit_entries(0, size)
        .unwrap()
        .iter()
        .map(|bytes| format!("{:?}", AuditEntry::decode(bytes).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_client_that_leaves_mid_upload_is_not_a_refused_submission() {
    let h = Harness::start_with(|c| {
        c.limits.body_grace_seconds = 1;
        c.limits.body_min_bytes_per_second = 1000;
    })
    .await;
    let before = audit_texts(&h).len();

    // Leaves after 100 of 10,000 bytes.
    let mut tls = tls_as(&h, HONEST, "127.0.0.1").await.unwrap();
    tls.write_all(b"POST /v1/items HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/cbor\r\ncontent-length: 10000\r\n\r\n")
        .await
        .unwrap();
    tls.write_all(&[0u8; 100]).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(tls);

    // Stalls after 10 bytes: answered 408 once the grace is over.
    let mut tls = tls_as(&h, HONEST, "127.0.0.1").await.unwrap();
    tls.write_all(STALLED_BODY).await.unwrap();
    let answer = read_response(&mut tls, Duration::from_secs(8))
        .await
        .expect("an answer");
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(answer.contains("body-too-slow"), "{answer}");

    // Give a late audit write of the cut upload time to land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = audit_texts(&h);
    let new: Vec<&String> = after[before..]
        .iter()
        .filter(|t| t.contains("SubmissionRefused") || t.contains("body-"))
        .collect();
    assert!(
        new.is_empty(),
        "a cut or stalled upload is not a refused submission: {new:?}"
    );
}

/// Benchmark (not a check): an honest station's submit latency without a
/// flood and during each flood, in one run. Prints a table.
///
/// `cargo test --release --test admission -- --ignored --nocapture submit_latency_during_floods`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn submit_latency_during_floods() {
    fn row(name: &str, l: &mut [Duration], reference: Duration) {
        l.sort();
        let p50 = l[l.len() / 2];
        let max = l[l.len() - 1];
        println!(
            "| {name} | {:.1} ms | {:.2} | {:.1} ms | {:.2} |",
            p50.as_secs_f64() * 1e3,
            p50.as_secs_f64() / reference.as_secs_f64(),
            max.as_secs_f64() * 1e3,
            max.as_secs_f64() / reference.as_secs_f64()
        );
    }
    let n = 50;
    let h = Harness::start_with(wide_open_per_address).await;
    let rabat = h.station(HONEST);
    let mut none = honest_sends(&rabat, "warm", n).await;
    none = {
        let mut again = honest_sends(&rabat, "none", n).await;
        again.sort();
        drop(none);
        again
    };
    let reference = none[none.len() / 2];
    println!("| flood | p50 | p50 / no flood | max | max / no flood |");
    println!("| --- | --- | --- | --- | --- |");
    row("none", &mut none, reference);
    drop(h);

    let h = Harness::start().await;
    let rabat = h.station(HONEST);
    let held = silent_flood(h.addr(), 2000).await;
    row(
        "2,000 silent TCP connections, reopened when closed",
        &mut honest_sends(&rabat, "silent", n).await,
        reference,
    );
    drop((held, h));

    let h = Harness::start_with(wide_open_per_address).await;
    let rabat = h.station(HONEST);
    let held = request_flood(&h, 600, STALLED_BODY).await;
    row(
        "600 stalled bodies",
        &mut honest_sends(&rabat, "stalled", n).await,
        reference,
    );
    drop((held, h));

    let h = Harness::start_with(wide_open_per_address).await;
    let rabat = h.station(HONEST);
    let held = request_flood(&h, 600, LONG_POLL).await;
    row(
        "600 long-polls of one station",
        &mut honest_sends(&rabat, "long-polls", n).await,
        reference,
    );
    drop((held, h));
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Benchmark (not a check): the RSS of a real `passerelle serve` process
/// with 1,000 idle long-polls, against the same process before them.
///
/// `cargo test --release --test admission -- --ignored --nocapture rss_of_idle_long_polls`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn rss_of_idle_long_polls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    // A fixed high port: the child must be reachable at a known address.
    let addr: SocketAddr = "127.0.0.1:18943".parse().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, &addr.to_string(), None).unwrap();
    let config = dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[limits]\n",
        "[limits]\nlong_polls = 2000\nlong_polls_per_principal = 1100\nconnections_per_principal = 1100\n\
         handshakes_pending = 2000\nhandshakes_pending_per_address = 2000\n\
         handshakes_per_address_per_second = 100000\nhandshake_burst_per_address = 100000\n\
         requests_per_principal_per_second = 100000\nrequest_burst_per_principal = 100000\n\
         idle_timeout_seconds = 600\n",
    );
    std::fs::write(&config, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let ca = dir.path().join("gateway/ca.pem");
    let station = dir.path().join(passerelle::pki::station_dir(RECIPIENT));
    let tls_config = raw_client(
        &ca,
        Some((&station.join("cert.pem"), &station.join("key.pem"))),
        &[&rustls::version::TLS13],
    );
    let connect = |tls_config: Arc<rustls::ClientConfig>| async move {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
        let mut tls = tokio_rustls::TlsConnector::from(tls_config)
            .connect(name, tcp)
            .await
            .ok()?;
        tls.write_all(LONG_POLL).await.ok()?;
        Some(tls)
    };
    // Wait for the child to listen, then one request to warm it up.
    let mut up = false;
    for _ in 0..100 {
        if let Some(mut tls) = connect(tls_config.clone()).await {
            tls.write_all(HEALTHZ).await.ok();
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the gateway did not start");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = vm_rss_kib(pid);
    let mut held = Vec::new();
    for _ in 0..1000 {
        if let Some(tls) = connect(tls_config.clone()).await {
            held.push(tls);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = vm_rss_kib(pid);
    println!("| state | VmRSS | ratio to the idle gateway |");
    println!("| --- | --- | --- |");
    println!(
        "| idle gateway, one connection served | {:.1} MiB | 1.00 |",
        before as f64 / 1024.0
    );
    println!(
        "| {} idle long-polls | {:.1} MiB | {:.2} |",
        held.len(),
        after as f64 / 1024.0,
        after as f64 / before as f64
    );
    println!(
        "per long-poll: {:.1} KiB",
        (after - before.min(after)) as f64 / held.len().max(1) as f64
    );
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
    assert!(Path::new(&config).exists());
}
