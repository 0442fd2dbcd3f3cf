//! Gateway instances on one PostgreSQL database as child processes: the
//! real `passerelle serve` binary, each instance with its own
//! configuration (its own port, and its own copy of the key, so its own
//! head file, as on two machines), the same key and database. Include it
//! with `#[path = "common/instances.rs"] mod instances;` beside `common`.
#![allow(dead_code)]

use passerelle::client::Station;
use passerelle::station_config::ClientConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example PKI and two instances' configurations.
pub struct Instances {
    pub dir: tempfile::TempDir,
    pub pki: passerelle::pki::ExamplePki,
    /// Instance A's and B's configurations and addresses.
    pub configs: [PathBuf; 2],
    pub addrs: [String; 2],
}

impl Instances {
    /// The example PKI with its gateway configuration on the database
    /// `url`, leases of `lease_seconds`, the rates that stop one station
    /// hammering lifted; and a second configuration beside it for
    /// instance B: another port, a copy of the key in `gateway-b/`.
    pub fn new(url: &str, lease_seconds: u64) -> Instances {
        let dir = tempfile::tempdir().unwrap();
        let pki = passerelle::pki::generate().unwrap();
        let addrs = [0, 1].map(|_| format!("127.0.0.1:{}", free_port()));
        passerelle::pki::write_example(dir.path(), &pki, &addrs[0], None).unwrap();
        let a = dir.path().join("gateway.toml");
        let text = std::fs::read_to_string(&a)
            .unwrap()
            .replace(
                "store = \"data/passerelle.sqlite3\"",
                &format!("store = \"{url}\""),
            )
            .replace(
                "lease_seconds = 60",
                &format!("lease_seconds = {lease_seconds}"),
            )
            .replace(
                "[limits]\n",
                "[limits]\nhandshakes_per_address_per_second = 100000\nhandshake_burst_per_address = 100000\n\
                 requests_per_principal_per_second = 100000\nrequest_burst_per_principal = 100000\n",
            );
        assert!(text.contains(url) && text.contains(&format!("lease_seconds = {lease_seconds}")));
        std::fs::write(&a, &text).unwrap();
        std::fs::create_dir(dir.path().join("gateway-b")).unwrap();
        std::fs::copy(
            dir.path().join("gateway/audit-key.pem"),
            dir.path().join("gateway-b/audit-key.pem"),
        )
        .unwrap();
        let b = dir.path().join("gateway-b.toml");
        let text = text
            .replace(
                &format!("listen = \"{}\"", addrs[0]),
                &format!("listen = \"{}\"", addrs[1]),
            )
            .replace(
                "key = \"gateway/audit-key.pem\"",
                "key = \"gateway-b/audit-key.pem\"",
            );
        assert!(text.contains(&addrs[1]) && text.contains("gateway-b/audit-key.pem"));
        std::fs::write(&b, text).unwrap();
        Instances {
            dir,
            pki,
            configs: [a, b],
            addrs,
        }
    }

    /// Starts instance `i`; what it logs goes to `<config>.log`, for a
    /// failure.
    pub fn spawn(&self, i: usize) -> Child {
        let config = &self.configs[i];
        let log = std::fs::File::create(config.with_extension("log")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Starts A, then B once A is up, with a head file copied from A (an
    /// instance that finds a log in the database and no head file beside
    /// its key refuses to start: docs/operations-postgres.md).
    pub async fn start_both(&self) -> [Child; 2] {
        let a = self.spawn(0);
        self.wait_until_up(0).await;
        std::fs::copy(
            self.dir.path().join("gateway/audit-key.head"),
            self.dir.path().join("gateway-b/audit-key.head"),
        )
        .unwrap();
        let b = self.spawn(1);
        self.wait_until_up(1).await;
        [a, b]
    }

    /// A station of `principal` talking to `gateway`, retrying `retries`
    /// times.
    pub fn station_at(&self, principal: &str, gateway: &str, retries: u32) -> Station {
        let mut c = ClientConfig::load(
            &self
                .dir
                .path()
                .join(passerelle::pki::station_dir(principal))
                .join("client.toml"),
        )
        .unwrap();
        c.gateway = gateway.to_string();
        c.retries = retries;
        Station::new(c).unwrap()
    }

    /// A station of `principal` on instance `i`, without retries.
    pub fn station(&self, principal: &str, i: usize) -> Station {
        self.station_at(principal, &self.addrs[i], 0)
    }

    /// Waits (at most 20 s) until instance `i` answers.
    pub async fn wait_until_up(&self, i: usize) {
        let station = self.station("police/spoc", i);
        for _ in 0..200 {
            if station.inbox(Duration::ZERO).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "instance {i} did not come up within 20 s:\n{}",
            self.log(&self.configs[i])
        );
    }

    pub fn log(&self, config: &Path) -> String {
        std::fs::read_to_string(config.with_extension("log")).unwrap_or_default()
    }
}
