//! One address in front of two gateway instances: HAProxy (Debian's
//! `haproxy`) running `deploy/haproxy.cfg` as shipped, only its addresses
//! and file paths replaced, in front of two `passerelle serve` processes
//! on one PostgreSQL database. Stations know only the balancer's address;
//! each instance in turn is killed with SIGKILL (the other restarted
//! between the two), and the stations keep submitting, receiving and
//! acknowledging through that one address. Mutual TLS still ends at the
//! gateway (TCP passthrough): the stations check the gateway's
//! certificate, and the gateway sees theirs. Without HAProxy or PostgreSQL
//! the test fails, saying what is missing (`.ci/run` installs both).

mod common;
#[path = "common/instances.rs"]
mod instances;
#[path = "common/postgres.rs"]
mod postgres_server;

use instances::{free_port, Instances};
use passerelle::client::Station;
use postgres_server::PgServer;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// HAProxy running the shipped configuration with two servers.
struct Balancer {
    child: Child,
    addr: String,
}

impl Balancer {
    /// What HAProxy logged (server state changes).
    fn log(s: &Instances) -> String {
        std::fs::read_to_string(s.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    /// Waits (at most 20 s) until HAProxy logged `what` after its last
    /// line holding `after` (anywhere, if none).
    async fn wait_for(s: &Instances, after: &str, what: &str) {
        for _ in 0..100 {
            let log = Self::log(s);
            let from = log.rfind(after).unwrap_or(0);
            if log[from..].contains(what) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("HAProxy never logged {what:?}:\n{}", Self::log(s));
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy_binary() -> &'static str {
    for path in [
        "/usr/sbin/haproxy",
        "/usr/bin/haproxy",
        "/usr/local/sbin/haproxy",
    ] {
        if Path::new(path).is_file() {
            return path;
        }
    }
    panic!(
        "\n\nHAProxy is needed by this test and was not found: on Debian, \
         `apt-get install haproxy` (.ci/run installs it when missing).\n\n"
    )
}

/// Writes `deploy/haproxy.cfg` with this test's addresses and files, and
/// starts HAProxy in the foreground on it.
fn balancer(s: &Instances) -> Balancer {
    let dir = s.dir.path();
    // The health checker's certificate: an agency CA's, for a principal the
    // policy does not name (it may read /healthz and nothing else).
    let issued = s
        .pki
        .agency("police")
        .unwrap()
        .issue_client(
            &passerelle::pki::spiffe_uri("police/ops/haproxy"),
            &passerelle::pki::ClientCertOptions::default(),
        )
        .unwrap();
    let check = dir.join("haproxy-check.pem");
    std::fs::write(&check, format!("{}{}", issued.cert_pem, issued.key_pem)).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg"))
            .unwrap();
    let mut config = String::new();
    for line in shipped.lines() {
        let line = match line.trim() {
            // Server state changes on stderr, for the checks below.
            "global" => "global\n    log stderr format short local0 info".to_string(),
            "defaults" => "defaults\n    log global".to_string(),
            "bind :8443" => format!("    bind {addr}"),
            "server gw1 10.0.0.11:8443" => format!("    server gw1 {}", s.addrs[0]),
            "server gw2 10.0.0.12:8443" => format!("    server gw2 {}", s.addrs[1]),
            "server gw3 10.0.0.13:8443" => continue,
            _ => line
                .replace(
                    "/etc/passerelle/gateway-ca.pem",
                    &dir.join("gateway/ca.pem").display().to_string(),
                )
                .replace(
                    "/etc/passerelle/haproxy-check.pem",
                    &check.display().to_string(),
                ),
        };
        config.push_str(&line);
        config.push('\n');
    }
    for expected in [addr.as_str(), &s.addrs[0], &s.addrs[1], "haproxy-check.pem"] {
        assert!(
            config.contains(expected),
            "deploy/haproxy.cfg changed shape"
        );
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, &config).unwrap();
    let binary = haproxy_binary();
    let checked = Command::new(binary)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "deploy/haproxy.cfg does not check:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
    let child = Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Balancer { child, addr }
}

/// Submits `n` new items from `rabat` (through the balancer), each until
/// answered, at most 100 tries 200 ms apart; returns their ids.
async fn submit(rabat: &Station, round: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{round}-{i}");
        let item = common::item(rabat, &id, &["vsse/analysis/ct"], round);
        let mut tries = 0;
        while let Err(e) = rabat.submit(&item).await {
            tries += 1;
            assert!(
                tries < 100,
                "{id} was never answered through the balancer: {e}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ids.push(id);
    }
    ids
}

/// Receives and acknowledges, through the balancer, until every id of
/// `expected` was acknowledged (at most 200 rounds).
async fn receive_all(vsse: &Station, expected: &[String], done: &mut BTreeSet<String>) {
    for _ in 0..200 {
        if expected.iter().all(|id| done.contains(id)) {
            return;
        }
        let Ok(inbox) = vsse.inbox(Duration::from_secs(1)).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for entry in inbox {
            if vsse.fetch(&entry.item_ref).await.is_ok() && vsse.ack(&entry.item_ref).await.is_ok()
            {
                done.insert(entry.item_id);
            }
        }
    }
    let missing: Vec<_> = expected.iter().filter(|id| !done.contains(*id)).collect();
    panic!("never received through the balancer: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stations_keep_working_through_haproxy_when_an_instance_is_killed() {
    let server = PgServer::start();
    let url = server.new_database();
    let s = Instances::new(&url, 2);
    let [mut a, mut b] = s.start_both().await;
    let front = balancer(&s);
    // Stations know only the balancer; their clients retry a failed
    // request on a new connection.
    let rabat = s.station_at("police/lo/rabat", &front.addr, 5);
    let vsse = s.station_at("vsse/analysis/ct", &front.addr, 5);
    let mut done = BTreeSet::new();

    let first = submit(&rabat, "both-up", 5).await;
    receive_all(&vsse, &first, &mut done).await;
    // The health checks (GET /healthz over mutual TLS) pass on both.
    assert!(
        !Balancer::log(&s).contains("is DOWN"),
        "{}",
        Balancer::log(&s)
    );

    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    Balancer::wait_for(&s, "gateways/gw1 is DOWN", "gateways/gw1 is DOWN").await;
    let second = submit(&rabat, "a-killed", 5).await;
    receive_all(&vsse, &second, &mut done).await;

    // A back (with its own head file), then B killed: every station has
    // now lost the instance its connection went to.
    let mut a = s.spawn(0);
    s.wait_until_up(0).await;
    Balancer::wait_for(&s, "gateways/gw1 is DOWN", "gateways/gw1 is UP").await;
    b.kill().unwrap();
    b.wait().unwrap();
    let third = submit(&rabat, "b-killed", 5).await;
    receive_all(&vsse, &third, &mut done).await;

    // Each answer was checked by the station against the gateway's key and
    // certificate: TLS was never ended by the balancer.
    assert_eq!(done.len(), 15);
    a.kill().unwrap();
    a.wait().unwrap();
    drop(front);
}
