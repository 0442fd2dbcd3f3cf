//! What operators' tools read, probed from outside over the real gateway:
//! the text log, written from what an insider at one agency's CA put in a
//! certificate, and the metrics listener, held open by connections that
//! never finish a request.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::Harness;
use hyper::Method;
use passerelle::client::Station;
use passerelle::config::{GatewayConfig, MetricsConfig};
use passerelle::domain::wire::Problem;
use passerelle::pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Everything the gateway logs in this test binary, as the text format
/// writes it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn text_log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .try_init()
            .unwrap();
        captured
    })
}

/// A certificate URI is an IA5String: newlines and escapes are allowed in
/// it, and whoever runs a trusted CA chooses it. Quoted raw in the
/// gateway's text log, it would forge whole log lines for the operator.
#[tokio::test]
async fn a_certificate_uri_cannot_forge_lines_in_the_operators_log() {
    let log = text_log();
    let h = Harness::start().await;
    for tail in ["\nFORGED-LINE", "\r\nFORGED-LINE", "\u{1b}[2JFORGED-LINE"] {
        // A path that is not a principal, and a trust domain that is not
        // the police's: the two refusals that quote the URI.
        for uri in [
            format!("{}{tail}", pki::spiffe_uri("police/lo/rabat")),
            format!("spiffe://elsewhere.example/x{tail}"),
        ] {
            let issued = h
                .pki
                .agency("police")
                .unwrap()
                .issue_client(&uri, &pki::ClientCertOptions::default())
                .unwrap();
            let config = h
                .station_with("police/lo/rabat", &issued, "forger")
                .config()
                .clone();
            let forger = Station::new(config).unwrap();
            let answer = forger
                .request(Method::GET, "/healthz", None, Duration::ZERO)
                .await
                .unwrap();
            let p: Problem = serde_json::from_slice(&answer.body).unwrap();
            assert_eq!((p.status, p.slug()), (403, "identity-refused"));
            assert!(!p.detail.chars().any(char::is_control), "{:?}", p.detail);
        }
    }
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("identity refused"), "{text}");
    for line in text.lines() {
        assert!(!line.starts_with("FORGED-LINE"), "{text}");
        assert!(!line.contains('\u{1b}'), "{line:?}");
    }
}

fn with_metrics(c: &mut GatewayConfig) {
    c.metrics = Some(MetricsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        allow_non_loopback: false,
        principal_labels: false,
    });
}

/// Reads from `tcp` until the server closes it, for at most `within`:
/// whether it was closed.
async fn closed_within(tcp: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_to_end).await.is_ok()
}

/// A request that never finishes its headers, and more connections than
/// a scraper needs, must not hold the metrics listener (nor the process's
/// file descriptors, which the TLS listener shares) for as long as the
/// client likes.
#[tokio::test]
async fn the_metrics_listener_drops_slow_and_surplus_connections() {
    let h = Harness::start_with(with_metrics).await;
    let addr = h.running.as_ref().unwrap().metrics_addr.unwrap();

    // Slowloris: headers begun and never ended.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(60)).await,
        "a request whose headers never end is dropped"
    );

    // Many idle connections: those beyond the listener's budget are
    // closed at once, not queued.
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut closed_at_once = 0;
    for tcp in &mut idle {
        if closed_within(tcp, Duration::from_millis(200)).await {
            closed_at_once += 1;
        }
    }
    assert!(closed_at_once > 0, "64 idle connections all kept");
    drop(idle);
    // And a real scrape still gets its answer once they are gone.
    let mut scrape = None;
    for _ in 0..100 {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
        if answer.starts_with(b"HTTP/1.1 200") {
            scrape = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(scrape.is_some(), "the probe is answered");
}
