//! The gateway's JSON log, captured from a real `passerelle serve` run:
//! one event per request with the principal, method, route, status,
//! latency and item reference, and never a payload, the label of a
//! withheld portion, or a key.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use passerelle::client::Station;
use passerelle::gateway::unix_now;
use passerelle::spec::ItemSpec;
use passerelle::station_config::ClientConfig;

/// A SECRET analysis with a CONFIDENTIEL tearline: the Rabat post is
/// accredited CONFIDENTIEL, so the first portion is withheld from it.
const ANALYSIS: &str = r#"
id = "log-analysis-1"
to = ["police/lo/rabat"]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "URGENT"
[label]
level = "SECRET"
[[portion]]
text = "PAYLOAD-WITHHELD contacts avec deux membres de la cellule"
[portion.label]
level = "SECRET"
[[portion]]
text = "PAYLOAD-TEARLINE individu d'interet, prudence recommandee"
[portion.label]
level = "CONFIDENTIEL"
"#;

fn station(dir: &Path, addr: &str, principal: &str) -> Station {
    let mut c = ClientConfig::load(
        &dir.join(passerelle::pki::station_dir(principal))
            .join("client.toml"),
    )
    .unwrap();
    c.gateway = addr.to_string();
    c.retries = 0;
    Station::new(c).unwrap()
}

/// Runs a gateway with `extra_config` appended to its config and `args`
/// after `serve --config`, plays a short exchange against it, stops it
/// with SIGTERM and returns its log and the directory of its files.
async fn run_and_capture(extra_config: &str, args: &[&str]) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    passerelle::pki::write_example(dir.path(), &pki, &addr, None).unwrap();
    let config = dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n{extra_config}")).unwrap();
    let log_path = dir.path().join("gateway.log");
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();

    let rabat = station(dir.path(), &addr, "police/lo/rabat");
    let vsse = station(dir.path(), &addr, "vsse/analysis/ct");
    let mut up = false;
    for _ in 0..100 {
        if rabat.inbox(Duration::ZERO).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the gateway did not come up within 10 s");
    let item = ItemSpec::parse(ANALYSIS).unwrap().sign(
        vsse.signing_key(),
        &vsse.config().principal,
        unix_now(),
    );
    let receipt = vsse.submit(&item).await.unwrap().receipt;
    assert_eq!(receipt.outcomes[0].portions_released, 1, "tearline only");
    let delivered = rabat.fetch(&receipt.item_ref).await.unwrap();
    assert_eq!(delivered.portions.len(), 1);
    rabat.ack(&receipt.item_ref).await.unwrap();
    // Refused: not the sender's to fetch.
    assert!(vsse.fetch(&receipt.item_ref).await.is_err());

    assert!(Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap()
        .success());
    let mut stopped = false;
    for _ in 0..150 {
        if gateway.try_wait().unwrap().is_some() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !stopped {
        let _ = gateway.kill();
        panic!("the gateway did not stop within 15 s of SIGTERM");
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    (log.replace(&receipt.item_ref, "<REF>"), dir)
}

/// Every line of `log` as a JSON object.
fn events(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty() && l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The request events for `method` and `route`.
fn requests<'a>(
    events: &'a [serde_json::Value],
    method: &str,
    route: &str,
) -> Vec<&'a serde_json::Value> {
    events
        .iter()
        .filter(|e| e["target"] == "passerelle::request")
        .filter(|e| e["method"] == method && e["route"] == route)
        .collect()
}

/// No payload, no withheld portion's label, no key of any file in `dir`.
fn assert_no_secrets(log: &str, dir: &Path) {
    for payload in ["PAYLOAD-WITHHELD", "PAYLOAD-TEARLINE", "contacts avec"] {
        assert!(!log.contains(payload), "{payload} in the log:\n{log}");
    }
    // The withheld portion's level, in any form a reason would give it.
    assert!(
        !log.contains("SECRET"),
        "a withheld label in the log:\n{log}"
    );
    let mut keys = vec![
        dir.join("gateway/key.pem"),
        dir.join("gateway/audit-key.pem"),
    ];
    for p in ["police/lo/rabat", "vsse/analysis/ct"] {
        keys.push(dir.join(passerelle::pki::station_dir(p)).join("key.pem"));
    }
    for key in keys {
        let pem = std::fs::read_to_string(&key).unwrap();
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
        {
            assert!(!log.contains(line), "{} in the log", key.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_log_has_one_event_per_request_and_no_secrets() {
    let (log, dir) = run_and_capture("[log]\nformat = \"json\"\n", &[]).await;
    let events = events(&log);
    assert!(
        log.lines().all(|l| l.starts_with('{')),
        "every line is JSON:\n{log}"
    );
    let submit = requests(&events, "POST", "/v1/items");
    assert_eq!(submit.len(), 1, "{log}");
    let submit = submit[0];
    assert_eq!(submit["principal"], "vsse/analysis/ct");
    assert_eq!(submit["status"], 201);
    assert_eq!(submit["item_ref"], "<REF>");
    assert!(submit["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(submit["level"], "INFO");
    assert!(submit["timestamp"].is_string());

    let fetches = requests(&events, "GET", "/v1/items/{item_ref}");
    let ok = fetches.iter().find(|e| e["status"] == 200).unwrap();
    assert_eq!(ok["principal"], "police/lo/rabat");
    assert_eq!(ok["item_ref"], "<REF>");
    let refused = fetches.iter().find(|e| e["status"] == 404).unwrap();
    assert_eq!(refused["principal"], "vsse/analysis/ct");
    assert_eq!(refused["problem"], "not-found");

    let acks = requests(&events, "POST", "/v1/items/{item_ref}/ack");
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["status"], 200);
    assert_no_secrets(&log, dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flag_chooses_the_format_over_the_config() {
    // The flag asks for JSON where the config says nothing.
    let (log, dir) = run_and_capture("", &["--log-format", "json"]).await;
    assert!(
        !requests(&events(&log), "POST", "/v1/items").is_empty(),
        "{log}"
    );
    assert_no_secrets(&log, dir.path());
    // And for text where the config asks for JSON.
    let (log, dir) = run_and_capture("[log]\nformat = \"json\"\n", &["--log-format", "text"]).await;
    assert!(
        log.lines().any(|l| l.contains("passerelle::request")),
        "{log}"
    );
    assert!(!log.lines().any(|l| l.starts_with('{')), "{log}");
    assert_no_secrets(&log, dir.path());
}
