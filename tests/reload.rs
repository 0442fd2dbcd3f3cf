//! Reloads on the record: each reload, accepted or refused, is an audit
//! entry naming the files it read by digest and what changed; `passerelle
//! reload` signals a real running gateway and reports its answer.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::Harness;
use passerelle::audit::event::AuditEvent;

fn reload_entries(events: &[AuditEvent]) -> Vec<&AuditEvent> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                AuditEvent::PolicyLoaded { .. } | AuditEvent::PolicyRefused { .. }
            )
        })
        .collect()
}

#[tokio::test]
async fn each_reload_names_its_files_and_what_changed() {
    let h = Harness::start().await;
    let running = h.running.as_ref().unwrap();

    // Nothing changed: the entry names the files, and no change.
    running.reload().await.unwrap();
    // The policy and the gateway's certificate file (the same certificate,
    // written again with a trailing line).
    let purposes = h.path().join("policies/purposes.toml");
    let text = std::fs::read_to_string(&purposes).unwrap();
    std::fs::write(
        &purposes,
        format!("{text}\n[[case]]\nid = \"CT-2026-097\"\npurpose = \"terrorism\"\n"),
    )
    .unwrap();
    let cert = h.config.tls.cert.clone();
    let mut pem = std::fs::read(&cert).unwrap();
    pem.extend_from_slice(b"\n");
    std::fs::write(&cert, pem).unwrap();
    let reloaded = running.reload().await.unwrap();
    assert_eq!(reloaded.changed, ["policy", "tls-cert"]);
    // A CA file emptied: refused whole, the snapshot in force stays.
    let ca = h.config.agencies[0].ca.clone();
    let agency = h.config.agencies[0].name.clone();
    std::fs::write(&ca, "").unwrap();
    assert!(running.reload().await.is_err());

    let events = h.audit_events().await;
    let entries = reload_entries(&events);
    assert_eq!(entries.len(), 3, "{entries:?}");
    let AuditEvent::PolicyLoaded { files, changed, .. } = entries[0] else {
        panic!("{:?}", entries[0])
    };
    assert!(changed.is_empty(), "{changed:?}");
    let roles: Vec<&str> = files.iter().map(|f| f.role.as_str()).collect();
    assert!(roles.contains(&"tls-cert"), "{roles:?}");
    assert!(
        roles.contains(&format!("ca:{agency}").as_str()),
        "{roles:?}"
    );
    assert!(files.iter().all(|f| f.sha256.len() == 64));
    let AuditEvent::PolicyLoaded {
        files: second,
        changed,
        policy_digest,
    } = entries[1]
    else {
        panic!("{:?}", entries[1])
    };
    assert_eq!(changed, &["policy", "tls-cert"]);
    assert_eq!(*policy_digest, reloaded.policy_digest);
    let cert_digest = |files: &[passerelle::audit::event::ConfigFile]| {
        files
            .iter()
            .find(|f| f.role == "tls-cert")
            .map(|f| f.sha256.clone())
    };
    assert_ne!(cert_digest(files), cert_digest(second));
    let AuditEvent::PolicyRefused { files, changed, .. } = entries[2] else {
        panic!("{:?}", entries[2])
    };
    assert_eq!(changed, &[format!("ca:{agency}")]);
    let empty = hex::encode(passerelle::domain::bytes::sha256(b""));
    assert!(
        files
            .iter()
            .any(|f| f.role == format!("ca:{agency}") && f.sha256 == empty),
        "{files:?}"
    );
}

/// `passerelle` with `args`, its exit status and output.
fn passerelle(args: &[&str], config: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passerelle_reload_signals_the_running_gateway_and_reports_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    passerelle::pki::write_example(dir.path(), &pki, &format!("127.0.0.1:{port}"), None).unwrap();
    let config = dir.path().join("gateway.toml");
    // No gateway yet: nothing to signal.
    let (ok, _, err) = passerelle(&["reload"], &config);
    assert!(!ok && err.contains("no running gateway"), "{err}");

    let mut gateway = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = passerelle::config::GatewayConfig::load(&config)
        .unwrap()
        .store;
    let pid_file = store.with_extension("pid");
    for _ in 0..100 {
        if pid_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(pid_file.exists(), "the gateway did not start within 10 s");

    let (ok, out, err) = passerelle(&["reload"], &config);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("reloaded") && out.contains("nothing changed"),
        "{out}"
    );

    let purposes = dir.path().join("policies/purposes.toml");
    let text = std::fs::read_to_string(&purposes).unwrap();
    std::fs::write(
        &purposes,
        format!("{text}\n[[case]]\nid = \"CT-2026-098\"\npurpose = \"terrorism\"\n"),
    )
    .unwrap();
    let (ok, out, err) = passerelle(&["reload"], &config);
    assert!(ok, "{out}{err}");
    assert!(out.contains("changed: policy"), "{out}");

    // An invalid file: said here, with the file, and the gateway is not
    // asked.
    std::fs::write(&purposes, "not [ toml").unwrap();
    let (ok, out, err) = passerelle(&["reload"], &config);
    assert!(!ok, "{out}");
    assert!(err.contains("purposes.toml"), "{err}");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.with_extension("reload")).unwrap()).unwrap();
    assert_eq!(status["reloads"], 2, "{status}");
    assert_eq!(status["accepted"], true, "{status}");

    let _ = gateway.kill();
    gateway.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watch_a_changed_file_is_reloaded_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    passerelle::pki::write_example(dir.path(), &pki, &format!("127.0.0.1:{port}"), None).unwrap();
    let config = dir.path().join("gateway.toml");
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["serve", "--watch", "1", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = passerelle::config::GatewayConfig::load(&config)
        .unwrap()
        .store;
    for _ in 0..100 {
        if store.with_extension("pid").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.with_extension("pid").exists(), "not started in 10 s");
    let purposes = dir.path().join("policies/purposes.toml");
    let text = std::fs::read_to_string(&purposes).unwrap();
    std::fs::write(
        &purposes,
        format!("{text}\n[[case]]\nid = \"CT-2026-096\"\npurpose = \"terrorism\"\n"),
    )
    .unwrap();
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        if let Ok(bytes) = std::fs::read(store.with_extension("reload")) {
            status = serde_json::from_slice(&bytes).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["reloads"], 1, "no reload within 10 s: {status}");
    assert_eq!(status["accepted"], true, "{status}");
    assert_eq!(status["changed"], serde_json::json!(["policy"]), "{status}");
    let _ = gateway.kill();
    gateway.wait().unwrap();
}
