//! The real station agent process (`passerelle station run`) killed with
//! SIGKILL in the middle of a sync, through a link that cuts and delays
//! (tests/common/faulty_proxy.rs), then started again: nothing lost,
//! nothing stored twice, every item acknowledged once and every item the
//! station wrote accepted once, counted from the gateway's audit log.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::faulty_proxy::{Fault, FaultyProxy};
use common::{item, Harness};
use passerelle::audit::event::AuditEvent;
use passerelle::client::Station;
use passerelle::station_config::ClientConfig;

const PASS: &str = "harmattan";

struct Agent(std::process::Child);

impl Agent {
    fn start(config: &Path) -> Agent {
        Agent(
            Command::new(env!("CARGO_BIN_EXE_passerelle"))
                .args(["station", "run", "--unlock", "--config"])
                .arg(config)
                .env("PASSERELLE_PASSPHRASE", PASS)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// SIGKILL: no handler runs, nothing is flushed or closed cleanly.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn station(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("station")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("PASSERELLE_PASSPHRASE", PASS)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "station {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn acks(events: &[AuditEvent], r: &str) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, AuditEvent::Acknowledged { item_ref, .. } if item_ref == r))
        .count()
}

fn accepted_from_rabat(events: &[AuditEvent]) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(e, AuditEvent::ItemAccepted { sender, .. } if sender.as_str() == "police/lo/rabat")
        })
        .count()
}

/// Waits (bounded) until the audit log satisfies `done`.
async fn until_logged(h: &Harness, what: &str, done: impl Fn(&[AuditEvent]) -> bool) {
    let start = Instant::now();
    loop {
        if done(&h.audit_events().await) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not done in time: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_sync_and_restarted_loses_nothing_and_repeats_nothing() {
    // A short lease: what the killed agent fetched but did not acknowledge
    // is offered again soon.
    let h = Harness::start_with(|c| c.lease_seconds = 1).await;
    let proxy = FaultyProxy::start(
        h.addr(),
        vec![
            Fault::Delay(Duration::from_millis(300)),
            Fault::CutAnswerAfter(60_000),
            Fault::Refuse,
            Fault::Delay(Duration::from_millis(300)),
            Fault::CutRequestAfter(4_000),
            Fault::CutAnswerAfter(120_000),
        ],
        Duration::from_secs(20),
    )
    .await;
    let config = h
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("client.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("127.0.0.1:0", &proxy.addr.to_string());
    std::fs::write(
        &config,
        format!("{text}\n[agent]\npoll_seconds = 1\nreconnect_min_millis = 50\nreconnect_max_seconds = 1\n"),
    )
    .unwrap();
    station(&config, &["init"]);

    // 25 items for Rabat (three batches), 10 kB each so that batches take
    // a while to cross, while Rabat's outbox holds 4 of its own.
    let vsse = h.station("vsse/analysis/ct");
    let body = "y".repeat(10_000);
    let mut to_rabat = Vec::new();
    for i in 0..25 {
        let it = item(&vsse, &format!("k-{i}"), &["police/lo/rabat"], &body);
        to_rabat.push(vsse.submit(&it).await.unwrap().receipt.item_ref);
    }
    to_rabat.sort();
    let rabat = Station::new(ClientConfig::load(&config).unwrap()).unwrap();
    for i in 0..4 {
        rabat
            .keep_in_outbox(&item(
                &rabat,
                &format!("out-{i}"),
                &["vsse/analysis/ct"],
                "request",
            ))
            .unwrap();
    }

    // Killed once after its first acknowledgements, and once more after
    // more of them, each time while batches remain.
    let first = Agent::start(&config);
    until_logged(&h, "a first acknowledgement", |e| {
        to_rabat.iter().any(|r| acks(e, r) > 0)
    })
    .await;
    first.kill();
    let acked_then = {
        let e = h.audit_events().await;
        to_rabat.iter().filter(|r| acks(&e, r) > 0).count()
    };
    assert!(
        acked_then < to_rabat.len(),
        "killed before the end of the sync"
    );
    let second = Agent::start(&config);
    until_logged(&h, "more acknowledgements", |e| {
        to_rabat.iter().filter(|r| acks(e, r) > 0).count() > acked_then
    })
    .await;
    second.kill();

    let third = Agent::start(&config);
    until_logged(&h, "everything acknowledged and sent", |e| {
        to_rabat.iter().all(|r| acks(e, r) > 0) && accepted_from_rabat(e) >= 4
    })
    .await;
    // Past a lease: whatever was leased and not acknowledged would be
    // offered again and show up as a second acknowledgement or a copy.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    third.kill();

    let events = h.audit_events().await;
    for r in &to_rabat {
        assert_eq!(acks(&events, r), 1, "{r} acknowledged once");
    }
    assert_eq!(
        accepted_from_rabat(&events),
        4,
        "each written item accepted once"
    );
    let mut at_vsse: Vec<String> = vsse
        .inbox(Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.item_id)
        .collect();
    at_vsse.sort();
    assert_eq!(at_vsse, ["out-0", "out-1", "out-2", "out-3"]);

    // The vault, opened with no agent running: each item once.
    let list: serde_json::Value =
        serde_json::from_str(&station(&config, &["list", "--json"])).unwrap();
    let mut received: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["direction"] == "received")
        .map(|e| e["item_ref"].as_str().unwrap().to_string())
        .collect();
    received.sort();
    assert_eq!(received, to_rabat, "every item stored once");
    assert_eq!(list.as_array().unwrap().len(), 29);
}
