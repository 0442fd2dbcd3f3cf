//! The gateway killed with SIGKILL: what was answered survives, and what
//! was not answered is either wholly there or wholly absent.
//!
//! These tests run the real `passerelle serve` binary.

mod common;

use passerelle::client::Station;
use passerelle::domain::receipt::item_ref;
use passerelle::station_config::ClientConfig;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_gateway(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_until_up(station: &Station) {
    for _ in 0..100 {
        if station.inbox(Duration::ZERO).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway did not come up within 10 s");
}

struct Setup {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    addr: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    passerelle::pki::write_example(dir.path(), &pki, &addr, None).unwrap();
    let config = dir.path().join("gateway.toml");
    // These tests hammer from one station on one address, and then check
    // every item one request at a time: lift the rates that exist to stop that.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[limits]\n",
        "[limits]\nhandshakes_per_address_per_second = 100000\nhandshake_burst_per_address = 100000\n\
         requests_per_principal_per_second = 100000\nrequest_burst_per_principal = 100000\n",
    );
    std::fs::write(&config, text).unwrap();
    Setup { dir, config, addr }
}

fn station(s: &Setup, principal: &str) -> Station {
    let mut c = ClientConfig::load(
        &s.dir
            .path()
            .join(passerelle::pki::station_dir(principal))
            .join("client.toml"),
    )
    .unwrap();
    c.gateway = s.addr.clone();
    c.retries = 0;
    Station::new(c).unwrap()
}

#[tokio::test]
async fn an_answered_submit_survives_sigkill() {
    let s = setup();
    let mut gateway = spawn_gateway(&s.config);
    let rabat = station(&s, "police/lo/rabat");
    let vsse = station(&s, "vsse/analysis/ct");
    wait_until_up(&rabat).await;

    let receipt = rabat
        .submit(&common::item(
            &rabat,
            "before-kill",
            &["vsse/analysis/ct"],
            "durable",
        ))
        .await
        .unwrap()
        .receipt;
    gateway.kill().unwrap(); // SIGKILL, right after the answer
    gateway.wait().unwrap();

    let mut gateway = spawn_gateway(&s.config);
    wait_until_up(&rabat).await;
    let inbox = vsse.inbox(Duration::ZERO).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].item_ref, receipt.item_ref);
    let delivered = vsse.fetch(&receipt.item_ref).await.unwrap();
    vsse.open(&delivered).unwrap();
    assert_eq!(
        rabat.receipt(&receipt.item_ref).await.unwrap().receipt,
        receipt
    );
    gateway.kill().unwrap();
    gateway.wait().unwrap();
}

#[tokio::test]
async fn unanswered_submits_are_all_or_nothing() {
    let s = setup();
    let mut gateway = spawn_gateway(&s.config);
    let rabat = std::sync::Arc::new(station(&s, "police/lo/rabat"));
    let vsse = station(&s, "vsse/analysis/ct");
    wait_until_up(&rabat).await;

    // Submit continuously from two tasks and kill the gateway mid-stream.
    let mut tasks = Vec::new();
    for worker in 0..2 {
        let rabat = rabat.clone();
        tasks.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            for n in 0..200 {
                let id = format!("w{worker}-{n}");
                match rabat
                    .submit(&common::item(&rabat, &id, &["vsse/analysis/ct"], "x"))
                    .await
                {
                    Ok(_) => answered.push(id),
                    Err(_) => break,
                }
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    gateway.kill().unwrap();
    gateway.wait().unwrap();
    let mut answered = Vec::new();
    for t in tasks {
        answered.extend(t.await.unwrap());
    }
    assert!(
        !answered.is_empty(),
        "no submit was answered before the kill; the test proves nothing"
    );

    let mut gateway = spawn_gateway(&s.config);
    wait_until_up(&rabat).await;
    let inbox: std::collections::BTreeSet<String> = vsse
        .inbox(Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.item_id)
        .collect();
    for worker in 0..2 {
        for n in 0..200 {
            let id = format!("w{worker}-{n}");
            let has_receipt = rabat
                .receipt(&item_ref(&rabat.config().principal, &id))
                .await
                .is_ok();
            let in_inbox = inbox.contains(&id);
            assert_eq!(
                has_receipt, in_inbox,
                "{id}: receipt {has_receipt} but inbox entry {in_inbox}"
            );
            if answered.contains(&id) {
                assert!(has_receipt, "{id} was answered but is gone after the kill");
            }
        }
    }
    // A fresh checkpoint after the crash, then stop hard again.
    let answer = rabat
        .request(
            hyper::Method::GET,
            "/v1/audit/checkpoint",
            None,
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert!(answer.status.is_success());
    gateway.kill().unwrap();
    gateway.wait().unwrap();

    // The log continued: every checkpoint is consistent with the one
    // before, and each accepted item is on the log exactly once.
    let config = passerelle::config::GatewayConfig::load(&s.config).unwrap();
    let gateway_key = std::sync::Arc::new(
        passerelle::keys::GatewayKey::load(&config.audit.key, &config.audit.origin).unwrap(),
    );
    let log = passerelle::integrity::open_checked(
        &passerelle::store::StoreConfig::from_setting(&config.store),
        gateway_key,
    )
    .unwrap();
    let store = log.store();
    let checkpoints = store.checkpoints().unwrap();
    assert!(checkpoints.len() >= 2);
    let key: passerelle::audit::signed_note::VerifierKey =
        std::fs::read_to_string(s.dir.path().join("gateway/audit.vkey"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    let open = |note: &str| {
        passerelle::audit::checkpoint::Checkpoint::open(
            note.as_bytes(),
            key.name(),
            std::slice::from_ref(&key),
        )
        .unwrap()
        .0
    };
    for pair in checkpoints.windows(2) {
        let (old, new) = (open(&pair[0].1), open(&pair[1].1));
        let proof = log.consistency_proof(old.size, new.size).unwrap();
        passerelle::audit::rfc9162::verify_consistency(
            old.size, new.size, &old.root, &new.root, &proof,
        )
        .unwrap();
    }
    let head = log.head();
    let mut accepted = std::collections::BTreeSet::new();
    for bytes in store.audit_entries(0, head.size).unwrap() {
        let entry = passerelle::audit::event::AuditEntry::decode(&bytes).unwrap();
        if let passerelle::audit::event::AuditEvent::ItemAccepted { item_id, .. } = entry.event {
            assert!(
                accepted.insert(item_id.clone()),
                "{item_id} is on the log twice"
            );
        }
    }
    for worker in 0..2 {
        for n in 0..200 {
            let id = format!("w{worker}-{n}");
            assert_eq!(
                accepted.contains(&id),
                inbox.contains(&id),
                "{id}: log and inbox disagree"
            );
        }
    }
}

#[tokio::test]
async fn sighup_and_policy_reload_switch_the_running_gateways_policy() {
    let s = setup();
    let mut gateway = spawn_gateway(&s.config);
    let rabat = station(&s, "police/lo/rabat");
    wait_until_up(&rabat).await;
    let first = rabat
        .submit(&common::item(&rabat, "before", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap()
        .receipt;

    // A valid edit: `policy reload` checks it and signals the gateway.
    let purposes = s.dir.path().join("policies/purposes.toml");
    let text = std::fs::read_to_string(&purposes).unwrap();
    std::fs::write(
        &purposes,
        format!("{text}\n# reviewed\n[[case]]\nid = \"CT-2026-099\"\npurpose = \"terrorism\"\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["policy", "reload", "--config"])
        .arg(&s.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut second = first.clone();
    for n in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        second = rabat
            .submit(&common::item(
                &rabat,
                &format!("after-{n}"),
                &["vsse/analysis/ct"],
                "x",
            ))
            .await
            .unwrap()
            .receipt;
        if second.policy_digest != first.policy_digest {
            break;
        }
    }
    assert_ne!(
        second.policy_digest, first.policy_digest,
        "the reloaded policy must decide within 5 s"
    );

    // An invalid edit: `policy reload` refuses to signal, and a bare SIGHUP
    // is refused by the gateway, which keeps the policy in force.
    std::fs::write(&purposes, "this is not toml [").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["policy", "reload", "--config"])
        .arg(&s.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("purposes.toml"));
    let pid = gateway.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let third = rabat
        .submit(&common::item(
            &rabat,
            "after-bad",
            &["vsse/analysis/ct"],
            "x",
        ))
        .await
        .unwrap()
        .receipt;
    assert_eq!(third.policy_digest, second.policy_digest);
    gateway.kill().unwrap();
    gateway.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_without_answer_stays_in_the_outbox_until_flushed() {
    let s = setup();
    let rabat_toml = s
        .dir
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("client.toml");
    let text = std::fs::read_to_string(&rabat_toml).unwrap();
    std::fs::write(&rabat_toml, format!("retries = 0\n{text}")).unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .args(args)
            .arg("--config")
            .arg(&rabat_toml)
            .output()
            .unwrap()
    };
    // The gateway is down: the send fails, and the signed item is kept.
    let out = cli(&[
        "send",
        "--to",
        "vsse/analysis/ct",
        "--text",
        "keep me",
        "--id",
        "kept-1",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("passerelle outbox"));
    let outbox = s
        .dir
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("outbox");
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1);

    // The link is back: flushing delivers it, once, and empties the outbox.
    let mut gateway = spawn_gateway(&s.config);
    let vsse = station(&s, "vsse/analysis/ct");
    wait_until_up(&vsse).await;
    for _ in 0..2 {
        let out = cli(&["outbox"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 0);
    let inbox = vsse.inbox(Duration::ZERO).await.unwrap();
    assert_eq!(
        inbox.iter().map(|e| e.item_id.as_str()).collect::<Vec<_>>(),
        ["kept-1"]
    );
    gateway.kill().unwrap();
    gateway.wait().unwrap();
}
