//! The station agent against the real gateway: items written on the
//! station reach the gateway once, items delivered reach the station's
//! vault verified once and are acknowledged only then, through a link
//! that drops, cuts, delays and black-holes (tests/common/faulty_proxy.rs),
//! across a crash of the agent. And what the vault refuses: a wrong
//! passphrase, a forged attestation or item, a tampered file; and what a
//! locked vault shows: nothing but sizes and times.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::faulty_proxy::{Fault, FaultyProxy};
use common::{item, Harness};
use passerelle::agent::{read_item, Agent, AgentError};
use passerelle::audit::event::AuditEvent;
use passerelle::client::{ClientError, Station};
use passerelle::domain::item::SignedItem;
use passerelle::station_config::ClientConfig;
use passerelle::vault::{KdfParams, OutgoingState, Record, Vault, VaultError};

const PASS: &[u8] = b"la pluie de Rabat";

/// `principal`'s config, reaching the gateway at `gateway`, with its
/// agent's files under `dir` and short pauses.
fn agent_config(h: &Harness, principal: &str, gateway: SocketAddr, dir: &Path) -> ClientConfig {
    let mut c = h.client_config(principal);
    c.gateway = gateway.to_string();
    c.outbox = dir.join("outbox");
    c.agent.vault = dir.join("vault");
    c.agent.control = dir.join("control");
    c.agent.poll_seconds = 1;
    c.agent.reconnect_min_millis = 50;
    c.agent.reconnect_max_seconds = 1;
    c
}

struct Running {
    agent: Arc<Agent>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn agent(config: ClientConfig) -> Arc<Agent> {
    let mut station = Station::new(config).unwrap();
    // Black holes are detected by this, so it is short here.
    station.timeout = Duration::from_secs(3);
    let vault = Vault::at(&station.config().agent.vault);
    if !vault.exists() {
        vault.create(PASS, KdfParams::MINIMUM).unwrap();
    }
    let agent = Arc::new(Agent::new(station));
    agent.unlock(PASS).unwrap();
    agent
}

fn start(agent: Arc<Agent>) -> Running {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.clone().run(async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    Running { agent, stop, task }
}

async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not done in {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn received_refs(agent: &Agent) -> Vec<String> {
    let vault = agent.unlocked(false).expect("unlocked");
    let mut refs: Vec<String> = vault
        .scan()
        .unwrap()
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Received(r) => Some(r.item_ref.clone()),
            _ => None,
        })
        .collect();
    refs.sort();
    refs
}

fn outgoing_states(agent: &Agent) -> BTreeMap<String, OutgoingState> {
    let vault = agent.unlocked(false).expect("unlocked");
    vault
        .scan()
        .unwrap()
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Outgoing(o) => Some((o.header.id.clone(), o.state())),
            _ => None,
        })
        .collect()
}

/// VSSE sends `text` to Rabat; the item's reference.
async fn vsse_to_rabat(h: &Harness, id: &str, text: &str) -> String {
    let vsse = h.station("vsse/analysis/ct");
    vsse.submit(&item(&vsse, id, &["police/lo/rabat"], text))
        .await
        .unwrap()
        .receipt
        .item_ref
}

fn flash(station: &Station, id: &str, to: &str, text: &str) -> SignedItem {
    passerelle::spec::ItemSpec::parse(&format!(
        "id = \"{id}\"\nto = [\"{to}\"]\npurpose = \"terrorism\"\ncases = [\"CT-2026-014\"]\npriority = \"FLASH\"\n\
         [label]\nlevel = \"RESTREINT\"\n[[portion]]\ntext = \"{text}\"\n[portion.label]\nlevel = \"RESTREINT\"\n"
    ))
    .unwrap()
    .sign(
        station.signing_key(),
        &station.config().principal,
        passerelle::gateway::unix_now(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_script_of_faults_every_item_arrives_once_each_way_across_a_crash() {
    // A short lease: an item fetched but not acknowledged (answer cut,
    // crash) is offered again soon, and must not be stored twice.
    let h = Harness::start_with(|c| c.lease_seconds = 1).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = FaultyProxy::start(
        h.addr(),
        vec![
            Fault::Refuse,
            Fault::CutAnswerAfter(200),
            Fault::Delay(Duration::from_millis(500)),
            Fault::CutRequestAfter(1_500),
            Fault::CutAnswerAfter(2_500),
            Fault::BlackHole(Duration::from_secs(4)),
            Fault::CutAnswerAfter(4_000),
            Fault::Refuse,
            Fault::CutAnswerAfter(6_000),
            Fault::CutRequestAfter(3_000),
        ],
        Duration::from_secs(3),
    )
    .await;
    let vsse = h.station("vsse/analysis/ct");
    // What VSSE sends to Rabat while Rabat is cut off.
    let mut sent_to_rabat = Vec::new();
    for i in 0..5 {
        let it = if i == 2 {
            flash(
                &vsse,
                &format!("ctx-{i}"),
                "police/lo/rabat",
                &format!("context {i}"),
            )
        } else {
            item(
                &vsse,
                &format!("ctx-{i}"),
                &["police/lo/rabat"],
                &format!("context {i}"),
            )
        };
        sent_to_rabat.push(vsse.submit(&it).await.unwrap().receipt.item_ref);
    }
    sent_to_rabat.sort();

    // What Rabat writes offline: through the agent, and with `send`'s
    // plain outbox while no agent ran.
    let config = agent_config(&h, "police/lo/rabat", proxy.addr, dir.path());
    let first = agent(config.clone());
    let writer = first.station();
    for i in 0..3 {
        let vault = first.unlocked(true).unwrap();
        first
            .queue(
                &vault,
                item(
                    writer,
                    &format!("req-{i}"),
                    &["vsse/analysis/ct"],
                    "request",
                ),
            )
            .unwrap();
    }
    writer
        .keep_in_outbox(&item(writer, "req-plain", &["vsse/analysis/ct"], "request"))
        .unwrap();

    // The first agent runs through part of the script, then crashes.
    let running = start(first);
    until(
        "two items received before the crash",
        Duration::from_secs(60),
        || received_refs(&running.agent).len() >= 2 || proxy.remaining() == 0,
    )
    .await;
    running.task.abort();
    let _ = running.task.await;

    // A new agent (a new process after the crash) finishes the work.
    let second = start(agent(config.clone()));
    until("everything synced", Duration::from_secs(90), || {
        proxy.remaining() == 0
            && received_refs(&second.agent) == sent_to_rabat
            && outgoing_states(&second.agent)
                .values()
                .all(|s| *s == OutgoingState::Sent)
            && outgoing_states(&second.agent).len() == 4
    })
    .await;
    // Acknowledged after the vault write: the gateway's log records each
    // acknowledgement (an inbox that looks empty may only be leased).
    let acked = |events: &[AuditEvent], r: &str| {
        events
            .iter()
            .filter(|e| matches!(e, AuditEvent::Acknowledged { item_ref, .. } if item_ref == r))
            .count()
    };
    let start = Instant::now();
    loop {
        let events = h.audit_events().await;
        if sent_to_rabat.iter().all(|r| acked(&events, r) > 0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not all acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rabat = h.station("police/lo/rabat");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let left = rabat.inbox(Duration::ZERO).await.unwrap();
    assert!(left.is_empty(), "not acknowledged: {left:?}");
    second.stop().await;
    assert_eq!(proxy.remaining(), 0, "every fault of the script was played");

    // Rabat's items reached VSSE's inbox exactly once each.
    let mut at_vsse: Vec<String> = vsse
        .inbox(Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.item_id)
        .collect();
    at_vsse.sort();
    assert_eq!(at_vsse, ["req-0", "req-1", "req-2", "req-plain"]);
    assert!(
        std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .next()
            .is_none(),
        "the plain outbox was moved into the vault"
    );

    let events = h.audit_events().await;
    let accepted_from_rabat = events
        .iter()
        .filter(|e| matches!(e, AuditEvent::ItemAccepted { sender, .. } if sender.as_str() == "police/lo/rabat"))
        .count();
    assert_eq!(
        accepted_from_rabat, 4,
        "each of Rabat's items accepted once"
    );
    for r in &sent_to_rabat {
        assert_eq!(acked(&events, r), 1, "{r} acknowledged once");
    }

    // Each stored item verifies again when read; FLASH was taken first.
    let reader = agent(config);
    let vault = reader.unlocked(true).unwrap();
    for r in &sent_to_rabat {
        let reading = read_item(&vault, reader.station(), r, 0).unwrap();
        assert!(reading.verified);
        assert!(reading.portions[0].text.starts_with("context "));
    }
    assert_eq!(
        vault.vault().files().unwrap().len(),
        9,
        "5 received + 4 sent, one file each"
    );
}

#[tokio::test]
async fn an_item_stored_but_not_acknowledged_is_acknowledged_again_and_stored_once() {
    let h = Harness::start_with(|c| c.lease_seconds = 1).await;
    let dir = tempfile::tempdir().unwrap();
    vsse_to_rabat(&h, "ctx-1", "context").await;
    let agent = agent(agent_config(&h, "police/lo/rabat", h.addr(), dir.path()));
    let vault = agent.unlocked(true).unwrap();
    // Fetched and stored, then the power went: no ack.
    let entry = agent
        .station()
        .inbox(Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    let fetched = agent.station().fetch(&entry.item_ref).await.unwrap();
    agent
        .receive(&vault, &entry, &fetched, passerelle::agent::unix_now())
        .unwrap();
    read_item(&vault, agent.station(), &entry.item_ref, 5).unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    agent
        .sync_once(&vault, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(vault.vault().files().unwrap().len(), 1, "stored once");
    let kept = vault.received(&entry.item_ref).unwrap().unwrap();
    assert_eq!(kept.read_at, Some(5), "what the officer did is kept");
    assert_eq!(
        h.audit_events()
            .await
            .iter()
            .filter(|e| matches!(e, AuditEvent::Acknowledged { .. }))
            .count(),
        1
    );
}

#[tokio::test]
async fn an_item_is_acknowledged_only_once_the_vault_has_written_it() {
    let h = Harness::start_with(|c| c.lease_seconds = 1).await;
    let dir = tempfile::tempdir().unwrap();
    let sent = vsse_to_rabat(&h, "ctx-1", "context").await;
    let agent = agent(agent_config(&h, "police/lo/rabat", h.addr(), dir.path()));
    let vault = agent.unlocked(true).unwrap();
    // The vault's disk fails under the running agent: its files' directory
    // is gone, so the write of the fetched item fails.
    let sealed = dir.path().join("vault/sealed");
    std::fs::remove_dir(&sealed).unwrap();
    let failed = agent.sync_once(&vault, Duration::from_secs(2)).await;
    assert!(
        matches!(failed, Err(AgentError::Vault(VaultError::Io { .. }))),
        "{failed:?}"
    );
    let acks = |events: Vec<AuditEvent>| {
        events
            .iter()
            .filter(|e| matches!(e, AuditEvent::Acknowledged { .. }))
            .count()
    };
    assert_eq!(acks(h.audit_events().await), 0, "not acknowledged");
    // The disk is back: offered again after its lease, stored, then
    // acknowledged.
    std::fs::create_dir(&sealed).unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    agent
        .sync_once(&vault, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(received_refs(&agent), vec![sent]);
    assert_eq!(acks(h.audit_events().await), 1);
}

#[tokio::test]
async fn an_unused_key_is_forgotten_and_nothing_more_is_fetched() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config(&h, "police/lo/rabat", h.addr(), dir.path());
    config.agent.lock_after_idle_seconds = 1;
    let agent = agent(config);
    assert!(agent.unlocked(false).is_some());
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(
        agent.unlocked(false).is_none(),
        "forgotten after its idle time"
    );
    assert!(agent.status().unwrap().locked);
    agent.unlock(PASS).unwrap();
    assert!(agent.unlocked(true).is_some());
}

#[tokio::test]
async fn a_forged_attestation_is_refused_stored_nowhere_and_not_acknowledged() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sent = vsse_to_rabat(&h, "ctx-1", "context").await;
    // The station trusts another key than the gateway's: to it, the
    // gateway's attestations are forgeries.
    let mut config = agent_config(&h, "police/lo/rabat", h.addr(), dir.path());
    let origin = config.gateway_key.split('+').next().unwrap().to_string();
    let other =
        passerelle::keys::GatewayKey::generate(&dir.path().join("other.key"), &origin).unwrap();
    config.gateway_key = other.verifier_key().to_string();
    let agent = agent(config);
    let vault = agent.unlocked(true).unwrap();
    agent.sync_once(&vault, Duration::ZERO).await.unwrap();
    assert!(received_refs(&agent).is_empty(), "nothing stored");
    let status = agent.status().unwrap();
    assert!(
        status.not_verified[&sent].contains("attestation"),
        "{status:?}"
    );
    // Not acknowledged: the gateway still holds it for Rabat (an
    // acknowledged item is not found any more).
    let rabat = h.station("police/lo/rabat");
    rabat.fetch(&sent).await.unwrap();
    // A second round does not fetch it again.
    agent.sync_once(&vault, Duration::ZERO).await.unwrap();
    assert!(received_refs(&agent).is_empty());
    assert!(!h
        .audit_events()
        .await
        .iter()
        .any(|e| matches!(e, AuditEvent::Acknowledged { .. })));
}

#[tokio::test]
async fn an_item_changed_after_signing_is_refused_and_never_stored() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    vsse_to_rabat(&h, "ctx-1", "the real text").await;
    let agent = agent(agent_config(&h, "police/lo/rabat", h.addr(), dir.path()));
    let entry = agent
        .station()
        .inbox(Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    let mut delivered = agent.station().fetch(&entry.item_ref).await.unwrap();
    delivered.portions[0].portion.body.0 = b"the forged text".to_vec();
    let vault = agent.unlocked(true).unwrap();
    let refused = agent.receive(&vault, &entry, &delivered, 0).unwrap_err();
    assert!(
        matches!(refused, AgentError::Client(ClientError::Unverified(_))),
        "{refused:?}"
    );
    assert!(vault.vault().files().unwrap().is_empty());
    // The real one, fetched again, is taken.
    let real = agent.station().fetch(&entry.item_ref).await.unwrap();
    agent.receive(&vault, &entry, &real, 0).unwrap();
    assert_eq!(received_refs(&agent), vec![entry.item_ref.clone()]);
}

/// Every byte under `dir`, file names included.
fn everything_on_disk(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.extend_from_slice(p.to_string_lossy().as_bytes());
            if p.is_dir() {
                todo.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.extend(bytes);
            }
        }
    }
    out
}

#[tokio::test]
async fn a_locked_station_shows_no_plaintext_refuses_a_wrong_passphrase_and_detects_tampering() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let subject = "meeting point moved to the old medina";
    let sent = vsse_to_rabat(&h, "ctx-secret-77", subject).await;
    let agent = agent(agent_config(&h, "police/lo/rabat", h.addr(), dir.path()));
    {
        let vault = agent.unlocked(true).unwrap();
        agent
            .queue(
                &vault,
                item(
                    agent.station(),
                    "req-secret-78",
                    &["vsse/analysis/ct"],
                    "who is the courier",
                ),
            )
            .unwrap();
        agent.sync_once(&vault, Duration::ZERO).await.unwrap();
    }
    assert_eq!(received_refs(&agent), vec![sent.clone()]);
    agent.lock();
    assert!(agent.unlocked(true).is_none());
    let disk = everything_on_disk(dir.path());
    for secret in [
        subject,
        "who is the courier",
        "ctx-secret-77",
        "req-secret-78",
        sent.as_str(),
        "vsse/analysis/ct",
        "police/lo/rabat",
        "CT-2026-014",
        "RESTREINT",
    ] {
        assert!(
            !disk.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret:?} is readable on the station's disk"
        );
    }
    let status = agent.status().unwrap();
    assert!(status.locked && status.received.is_none());

    // Locked, the agent takes nothing: items wait at the gateway.
    vsse_to_rabat(&h, "ctx-2", "more").await;
    let files_before = Vault::at(dir.path().join("vault")).files().unwrap().len();
    let running = start(agent.clone());
    until(
        "the locked agent saw the waiting item",
        Duration::from_secs(20),
        || agent.status().unwrap().waiting_at_gateway == 1,
    )
    .await;
    assert_eq!(
        Vault::at(dir.path().join("vault")).files().unwrap().len(),
        files_before
    );

    assert!(matches!(
        agent.unlock(b"la pluie de Tanger"),
        Err(AgentError::Vault(VaultError::WrongPassphrase))
    ));
    assert!(agent.unlocked(true).is_none());
    agent.unlock(PASS).unwrap();
    until(
        "unlocked, the waiting item is taken",
        Duration::from_secs(20),
        || received_refs(&agent).len() == 2,
    )
    .await;
    running.stop().await;

    let received = received_refs(&agent);
    assert_eq!(received.len(), 2);
    // Sealed files changed on disk: each detected, none shown.
    let sealed = dir.path().join("vault/sealed");
    let files: Vec<_> = std::fs::read_dir(&sealed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 3, "two received, one sent");
    for path in &files {
        let mut bytes = std::fs::read(path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        std::fs::write(path, bytes).unwrap();
    }
    let status = agent.status().unwrap();
    assert_eq!(status.tampered, 3, "{status:?}");
    assert_eq!(status.received, Some(0));
    let vault = agent.unlocked(true).unwrap();
    for r in &received {
        assert!(matches!(
            read_item(&vault, agent.station(), r, 0),
            Err(AgentError::Vault(VaultError::Tampered { .. }))
        ));
    }
    // Left for an investigator, not deleted.
    assert_eq!(vault.vault().files().unwrap().len(), 3);
}

fn acks_of(events: &[AuditEvent], r: &str) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, AuditEvent::Acknowledged { item_ref, .. } if item_ref == r))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_in_the_middle_of_its_body_loses_nothing_and_stores_nothing_twice() {
    let h = Harness::start_with(|c| c.lease_seconds = 1).await;
    let dir = tempfile::tempdir().unwrap();
    // Three items of 100 kB: the batch that carries them is the only
    // answer longer than the cut, so the cut falls inside its body.
    let big = "x".repeat(100_000);
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(vsse_to_rabat(&h, &format!("big-{i}"), &big).await);
    }
    sent.sort();
    let proxy = FaultyProxy::start(
        h.addr(),
        vec![Fault::CutAnswerAfter(150_000)],
        Duration::from_secs(30),
    )
    .await;
    let running = start(agent(agent_config(
        &h,
        "police/lo/rabat",
        proxy.addr,
        dir.path(),
    )));
    until(
        "the cut batch fetched again",
        Duration::from_secs(60),
        || received_refs(&running.agent) == sent,
    )
    .await;
    let start = Instant::now();
    loop {
        let events = h.audit_events().await;
        if sent.iter().all(|r| acks_of(&events, r) > 0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not all acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Past a lease: nothing comes back to be taken twice.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    running.stop().await;
    assert_eq!(proxy.remaining(), 0, "the cut was played");
    assert!(proxy.connections.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    let events = h.audit_events().await;
    for r in &sent {
        assert_eq!(acks_of(&events, r), 1, "{r} acknowledged once");
    }
    let files = Vault::at(dir.path().join("vault")).files().unwrap();
    assert_eq!(files.len(), 3, "each stored once");
}

#[tokio::test]
async fn an_acknowledgement_refused_for_one_reference_does_not_lose_the_others() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sent = vsse_to_rabat(&h, "ctx-1", "context").await;
    let agent = agent(agent_config(&h, "police/lo/rabat", h.addr(), dir.path()));
    // A reference that is not Rabat's (VSSE's own item to the SPOC): the
    // gateway refuses its acknowledgement, as a single ack would.
    let vsse = h.station("vsse/analysis/ct");
    let not_ours = vsse
        .submit(&item(&vsse, "to-spoc", &["police/spoc"], "not for Rabat"))
        .await
        .unwrap()
        .receipt
        .item_ref;
    let done = agent
        .acknowledge(&[not_ours.clone(), sent.clone()])
        .await
        .unwrap();
    assert_eq!(done, 1);
    let events = h.audit_events().await;
    assert_eq!(acks_of(&events, &sent), 1, "the other one is acknowledged");
    assert_eq!(acks_of(&events, &not_ours), 0);
    // Repeated: recorded before, counted done, not acknowledged twice.
    assert_eq!(
        agent
            .acknowledge(std::slice::from_ref(&sent))
            .await
            .unwrap(),
        1
    );
    assert_eq!(acks_of(&h.audit_events().await, &sent), 1);
}
