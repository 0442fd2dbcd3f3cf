//! Hybrid post-quantum key exchange (X25519MLKEM768) over real mutual TLS:
//! what a station negotiates, what a classical-only client gets under each
//! `[tls] kx` policy, and that refusals for it reach the audit log.

mod common;

use common::Harness;
use passerelle::audit::event::AuditEvent;
use passerelle::config::{GatewayConfig, KeyExchange};
use rustls::NamedGroup;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The station's certificate, key and the gateway's CA, as its client.toml names them.
fn station_files(h: &Harness, principal: &str) -> passerelle::station_config::ClientConfig {
    h.client_config(principal)
}

/// The TLS client config a station uses (`Station::new` builds the same).
fn station_tls(h: &Harness, principal: &str) -> Arc<rustls::ClientConfig> {
    let c = station_files(h, principal);
    passerelle::tls::client_config(&c.cert, &c.key, &c.ca).unwrap()
}

/// A client with ring's provider alone: X25519, P-256, P-384 and no ML-KEM,
/// like curl on OpenSSL 3.0 or a station built before the hybrid group.
fn classical_tls(h: &Harness, principal: &str) -> Arc<rustls::ClientConfig> {
    let c = station_files(h, principal);
    let mut roots = rustls::RootCertStore::empty();
    for ca in passerelle::tls::load_certs(&c.ca).unwrap() {
        roots.add(ca).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    assert!(provider
        .kx_groups
        .iter()
        .all(|g| g.name() != NamedGroup::X25519MLKEM768));
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                passerelle::tls::load_certs(&c.cert).unwrap(),
                passerelle::tls::load_key(&c.key).unwrap(),
            )
            .unwrap(),
    )
}

/// What one connection agreed on, seen from the client, and the gateway's
/// `/healthz` answer on it (JSON).
struct Seen {
    group: NamedGroup,
    health: serde_json::Value,
}

/// Connects, reads the negotiated group from the client's side of the
/// handshake, then asks `/healthz`. A handshake the gateway refuses is an
/// error here (or a connection closed before any answer).
async fn connect(h: &Harness, config: Arc<rustls::ClientConfig>) -> Result<Seen, String> {
    let work = async {
        let tcp = tokio::net::TcpStream::connect(h.addr())
            .await
            .map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let group = tls
            .get_ref()
            .1
            .negotiated_key_exchange_group()
            .ok_or("no key exchange group after the handshake")?
            .name();
        tls.write_all(
            b"GET /healthz HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\nconnection: close\r\n\r\n",
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out).to_string();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("not 200: {head}"));
        }
        let health = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
        Ok(Seen { group, health })
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// Waits (bounded) until the audit log holds a refused connection of `cause`.
async fn refused_on_log(h: &Harness, cause: &str) -> bool {
    for _ in 0..50 {
        let found = h
            .audit_events()
            .await
            .iter()
            .any(|e| matches!(e, AuditEvent::Refused { cause: c, .. } if c == cause));
        if found {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn with_kx(kx: KeyExchange) -> impl FnOnce(&mut GatewayConfig) {
    move |c| c.tls.kx = kx
}

#[tokio::test]
async fn a_station_negotiates_the_hybrid_group_by_default() {
    let h = Harness::start().await;
    assert_eq!(h.config.tls.kx, KeyExchange::HybridPreferred);
    let seen = connect(&h, station_tls(&h, "police/lo/rabat"))
        .await
        .unwrap();
    assert_eq!(seen.group, NamedGroup::X25519MLKEM768);
    assert_eq!(
        seen.health["key_exchange"], "X25519MLKEM768",
        "{}",
        seen.health
    );
    assert_eq!(seen.health["post_quantum"], true);
    assert_eq!(seen.health["principal"], "police/lo/rabat");
    // And the station's own client, which builds the same config, works.
    h.station("police/lo/rabat")
        .inbox(Duration::ZERO)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_classical_client_is_accepted_under_hybrid_preferred() {
    let h = Harness::start().await;
    let seen = connect(&h, classical_tls(&h, "police/lo/rabat"))
        .await
        .unwrap();
    assert_eq!(seen.group, NamedGroup::X25519);
    assert_eq!(seen.health["key_exchange"], "X25519", "{}", seen.health);
    assert_eq!(seen.health["post_quantum"], false);
}

#[tokio::test]
async fn a_classical_client_is_refused_under_hybrid_required_and_audited() {
    let h = Harness::start_with(with_kx(KeyExchange::HybridRequired)).await;
    let r = connect(&h, classical_tls(&h, "police/lo/rabat")).await;
    assert!(
        r.is_err(),
        "a client without X25519MLKEM768 must be refused"
    );
    assert!(
        refused_on_log(&h, "handshake-kx").await,
        "the refusal is on the audit log as handshake-kx"
    );
    // Stations, which offer the hybrid group, are still served.
    let seen = connect(&h, station_tls(&h, "police/lo/rabat"))
        .await
        .unwrap();
    assert_eq!(seen.group, NamedGroup::X25519MLKEM768);
    h.station("vsse/analysis/ct")
        .inbox(Duration::ZERO)
        .await
        .unwrap();
}

#[tokio::test]
async fn classical_mode_never_negotiates_the_hybrid_group() {
    let h = Harness::start_with(with_kx(KeyExchange::Classical)).await;
    let seen = connect(&h, station_tls(&h, "police/lo/rabat"))
        .await
        .unwrap();
    assert_eq!(seen.group, NamedGroup::X25519);
    assert_eq!(seen.health["post_quantum"], false);
}

#[test]
fn kx_is_read_from_gateway_toml_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
    let path = dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("kx = \"hybrid-preferred\""));
    let load_with = |value: &str| {
        std::fs::write(
            &path,
            text.replace("kx = \"hybrid-preferred\"", &format!("kx = {value}")),
        )
        .unwrap();
        GatewayConfig::load(&path)
    };
    assert_eq!(
        load_with("\"hybrid-required\"").unwrap().tls.kx,
        KeyExchange::HybridRequired
    );
    assert_eq!(
        load_with("\"classical\"").unwrap().tls.kx,
        KeyExchange::Classical
    );
    let err = load_with("\"post-quantum\"").unwrap_err().to_string();
    assert!(err.contains("hybrid-required"), "{err}");
    // Absent, it is hybrid-preferred.
    std::fs::write(&path, text.replace("kx = \"hybrid-preferred\"\n", "")).unwrap();
    assert_eq!(
        GatewayConfig::load(&path).unwrap().tls.kx,
        KeyExchange::HybridPreferred
    );
}
