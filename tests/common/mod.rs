//! Shared test harness: a real gateway on loopback with a freshly generated
//! example PKI, and real stations that talk to it over mutual TLS.
#![allow(dead_code)]

pub mod faulty_proxy;
pub mod witness;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use passerelle::client::Station;
use passerelle::config::GatewayConfig;
use passerelle::domain::item::SignedItem;
use passerelle::gateway::unix_now;
use passerelle::pki::{self, ExamplePki, Issued};
use passerelle::server::{self, Running};
use passerelle::spec::ItemSpec;
use passerelle::station_config::ClientConfig;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub pki: ExamplePki,
    pub config: GatewayConfig,
    pub running: Option<Running>,
}

impl Harness {
    /// Writes the example PKI and starts the gateway, after `tune` adjusts
    /// its config.
    pub async fn start_with(tune: impl FnOnce(&mut GatewayConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki::generate().unwrap();
        pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
        let mut config = GatewayConfig::load(&dir.path().join("gateway.toml")).unwrap();
        tune(&mut config);
        let running = server::start(&config).await.unwrap();
        Harness {
            dir,
            pki,
            config,
            running: Some(running),
        }
    }

    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.as_ref().unwrap().addr
    }

    pub fn client_config(&self, principal: &str) -> ClientConfig {
        self.client_config_at(principal, self.addr())
    }

    /// `principal`'s config, talking to the gateway at `addr` (one started
    /// beside the harness's, or after it stopped).
    pub fn client_config_at(&self, principal: &str, addr: std::net::SocketAddr) -> ClientConfig {
        let path = self
            .dir
            .path()
            .join(pki::station_dir(principal))
            .join("client.toml");
        let mut c = ClientConfig::load(&path).unwrap();
        c.gateway = addr.to_string();
        c.retries = 0;
        c
    }

    pub fn station(&self, principal: &str) -> Station {
        Station::new(self.client_config(principal)).unwrap()
    }

    /// A station of `as_principal`'s config but presenting `issued`.
    pub fn station_with(&self, as_principal: &str, issued: &Issued, name: &str) -> Station {
        let dir = self.dir.path().join("extra").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), &issued.cert_pem).unwrap();
        passerelle::keys::write_private(&dir.join("key.pem"), issued.key_pem.as_bytes()).unwrap();
        let mut c = self.client_config(as_principal);
        c.cert = dir.join("cert.pem");
        c.key = dir.join("key.pem");
        Station::new(c).unwrap()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ca_path(&self) -> PathBuf {
        self.path().join("gateway/ca.pem")
    }

    /// Every event on the audit log, in order.
    /// Every event on the audit log, after the counted refusals were
    /// written.
    pub async fn audit_events(&self) -> Vec<passerelle::audit::event::AuditEvent> {
        let gateway = &self.running.as_ref().unwrap().gateway;
        gateway.flush_refusals().await.unwrap();
        let store = gateway.store().clone();
        let size = store.size().unwrap();
        store
            .audit_entries(0, size)
            .unwrap()
            .iter()
            .map(|e| {
                passerelle::audit::event::AuditEntry::decode(e)
                    .unwrap()
                    .event
            })
            .collect()
    }

    /// Replaces the first `from` by `to` in the gateway's policy `file`
    /// (takes effect at the next reload).
    pub fn edit_policy(&self, file: &str, from: &str, to: &str) {
        let path = self.path().join("policies").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }
}

/// A one-portion item from `station` to `to`.
pub fn item(station: &Station, id: &str, to: &[&str], text: &str) -> SignedItem {
    let to: Vec<String> = to.iter().map(|t| format!("\"{t}\"")).collect();
    let spec = format!(
        r#"
id = "{id}"
to = [{}]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "ROUTINE"
[label]
level = "RESTREINT"
[[portion]]
text = "{text}"
[portion.label]
level = "RESTREINT"
"#,
        to.join(", ")
    );
    ItemSpec::parse(&spec).unwrap().sign(
        station.signing_key(),
        &station.config().principal,
        unix_now(),
    )
}

/// A raw TLS client config for handshake tests.
pub fn raw_client(
    ca: &Path,
    cert_and_key: Option<(&Path, &Path)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in passerelle::tls::load_certs(ca).unwrap() {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(passerelle::tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match cert_and_key {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                passerelle::tls::load_certs(cert).unwrap(),
                passerelle::tls::load_key(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

/// Connects with `config`, sends a GET /healthz and returns the status line
/// or the error. A refused handshake shows up as an error here or as a
/// closed connection on first read (TLS 1.3 client auth is checked after
/// the client's Finished).
pub async fn raw_healthz(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\nconnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out).to_string();
        if text.is_empty() {
            return Err("connection closed without an answer".to_string());
        }
        Ok(text)
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// A station presenting a valid certificate of its agency's CA for
/// `principal`, which the policy does not know.
pub fn stranger(h: &Harness, principal: &str) -> Station {
    let id: passerelle::domain::principal::PrincipalId = principal.parse().unwrap();
    let issued = h
        .pki
        .agency(id.agency().as_str())
        .unwrap()
        .issue_client(
            &pki::spiffe_uri(principal),
            &pki::ClientCertOptions::default(),
        )
        .unwrap();
    let mut config = h
        .station_with("police/lo/rabat", &issued, &principal.replace('/', "-"))
        .config()
        .clone();
    config.principal = id;
    Station::new(config).unwrap()
}

/// Runs `passerelle demo --keep DIR` (the real binary of the test crate
/// `bin`) and returns DIR: a real gateway's files and its audit export
/// (`DIR/audit-export`, key `DIR/gateway/audit.vkey`).
pub fn kept_demo(bin: &str, dir: &Path) -> PathBuf {
    let demo = dir.join("demo");
    let out = std::process::Command::new(bin)
        .arg("demo")
        .arg("--keep")
        .arg(&demo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    demo
}
