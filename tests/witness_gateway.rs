//! The gateway's side of witness cosigning, over the real gateway (the
//! test harness) and a real `passerelle witness serve` process: each new
//! checkpoint is sent to the witness of `gateway.toml`'s `[[witness]]`, the
//! cosignature is kept on the checkpoint (served by `/v1/audit/checkpoint`,
//! in receipts' proofs, in `audit export`), and `audit verify --witness`
//! accepts the export. Then the operator wipes the store and starts a new
//! log: the witness refuses, the gateway records the refusal on the new
//! log, and `audit verify --witness` refuses the new export.

mod common;

use std::path::Path;
use std::time::Duration;

use common::witness::{keygen, passerelle, write_config, WitnessProcess};
use common::{item, Harness};
use hyper::Method;
use passerelle::audit::cosignature::{self, CosignatureVerifier};
use passerelle::audit::event::{AuditEntry, AuditEvent};
use passerelle::audit::signed_note::VerifierKey;
use passerelle::config::GatewayConfig;
use passerelle::server::{self, StartOptions};

/// How many times a condition the gateway reaches in the background is
/// polled, 100 ms apart: a generous bound, never a measurement.
const POLLS: usize = 300;

fn cosigned_by(note: &str, gateway: &VerifierKey, witness: &CosignatureVerifier) -> bool {
    cosignature::open_cosigned(
        note.as_bytes(),
        gateway.name(),
        gateway,
        std::slice::from_ref(witness),
    )
    .is_ok_and(|c| c.meets(1))
}

/// The gateway's `audit export` into `dir`, then `audit verify` with the
/// witness's key file: the exit code and what it printed.
fn export_and_verify(config: &Path, dir: &Path, vkey: &Path, witness: &Path) -> (i32, String) {
    let out = passerelle()
        .args(["audit", "export"])
        .arg(dir)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = passerelle()
        .args(["audit", "verify"])
        .arg(dir)
        .arg("--key")
        .arg(vkey)
        .arg("--witness")
        .arg(witness)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn entries(config: &GatewayConfig) -> Vec<AuditEntry> {
    let conn = rusqlite::Connection::open(&config.store).unwrap();
    let mut stmt = conn
        .prepare("SELECT entry FROM audit ORDER BY idx")
        .unwrap();
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| AuditEntry::decode(&b.unwrap()).unwrap())
        .collect();
    rows
}

#[tokio::test]
async fn a_gateway_gets_its_checkpoints_cosigned_and_a_wiped_log_is_refused_recorded_and_fails_the_quorum(
) {
    let wdir = tempfile::tempdir().unwrap();
    let (wkey, witness) = keygen(wdir.path(), "comite-p.test/w1");
    let witness_file = wdir.path().join("w1.vkey");
    std::fs::write(&witness_file, format!("{witness}\n")).unwrap();
    let mut process = None;
    let mut h = Harness::start_with(|config| {
        // The example PKI made the gateway's key: the witness trusts it,
        // and gateway.toml names the witness.
        let vkey_file = config.audit.vkey.clone().unwrap();
        let gateway_key: VerifierKey = std::fs::read_to_string(&vkey_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let w = WitnessProcess::start(&write_config(wdir.path(), &wkey, &[&gateway_key]));
        let base = vkey_file.parent().unwrap().parent().unwrap().to_path_buf();
        let toml = base.join("gateway.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        // Unknown keys in [[witness]] are refused, and https needs a CA.
        for bad in [
            format!(
                "url = \"http://{}\"\nkey = \"{witness}\"\nname = \"w1\"\n",
                w.addr
            ),
            format!("url = \"https://{}\"\nkey = \"{witness}\"\n", w.addr),
            format!("url = \"http://{}\"\nkey = \"{gateway_key}\"\n", w.addr),
        ] {
            std::fs::write(&toml, format!("{text}\n[[witness]]\n{bad}")).unwrap();
            assert!(GatewayConfig::load(&toml).is_err(), "{bad}");
        }
        std::fs::write(
            &toml,
            format!(
                "{text}\n[[witness]]\nurl = \"http://{}\"\nkey = \"{witness}\"\n",
                w.addr
            ),
        )
        .unwrap();
        *config = GatewayConfig::load(&toml).unwrap();
        assert_eq!(config.witnesses.len(), 1);
        process = Some(w);
    })
    .await;
    let _witness_process = process.unwrap();
    let toml = h.path().join("gateway.toml");
    let vkey_file = h.config.audit.vkey.clone().unwrap();
    let gateway_key = h.running.as_ref().unwrap().gateway.key().verifier_key();

    // An exchange, then the latest checkpoint: the witness's cosignature
    // arrives in the background and stays on the stored checkpoint.
    let rabat = h.station("police/lo/rabat");
    let sent = rabat
        .submit(&item(&rabat, "one", &["vsse/analysis/ct"], "first"))
        .await
        .unwrap()
        .receipt
        .item_ref;
    let mut served = String::new();
    for _ in 0..POLLS {
        let answer = rabat
            .request(Method::GET, "/v1/audit/checkpoint", None, Duration::ZERO)
            .await
            .unwrap();
        served = String::from_utf8(answer.body).unwrap();
        if served.lines().nth(1) != Some("0") && cosigned_by(&served, &gateway_key, &witness) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cosigned_by(&served, &gateway_key, &witness),
        "/v1/audit/checkpoint never carried the witness's cosignature: {served}"
    );
    // The receipt's proof is against a checkpoint that carries it too.
    let receipt = rabat.receipt(&sent).await.unwrap();
    let proof = receipt.inclusion.expect("a checkpoint covers the item");
    assert!(
        cosigned_by(&proof.checkpoint, &gateway_key, &witness),
        "{}",
        proof.checkpoint
    );

    // The log grows after the gateway's last checkpoint: `audit export`
    // signs a fresh one, and asks the witness for it as the gateway would.
    rabat
        .submit(&item(&rabat, "two", &["vsse/analysis/ct"], "second"))
        .await
        .unwrap();
    let (code, out) =
        export_and_verify(&toml, &h.path().join("export-0"), &vkey_file, &witness_file);
    assert_eq!(code, 0, "{out}");

    // A clean stop: the final checkpoint is cosigned before the gateway
    // exits, so the export verifies with the witness required.
    h.running.take().unwrap().shutdown().await;
    let (code, out) =
        export_and_verify(&toml, &h.path().join("export-1"), &vkey_file, &witness_file);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("cosigned     {}", witness.label())),
        "{out}"
    );
    let size_before = entries(&h.config).len() as u64;

    // The operator wipes the audit log and starts a new one.
    rusqlite::Connection::open(&h.config.store)
        .unwrap()
        .execute_batch("DELETE FROM audit; DELETE FROM checkpoints; DROP TABLE IF EXISTS seal;")
        .unwrap();
    let running = server::start_with(&h.config, StartOptions { new_log: true })
        .await
        .unwrap();
    // The witness refuses the new log's checkpoints; the gateway records
    // that on the new log.
    let mut refused = Vec::new();
    for _ in 0..POLLS {
        refused = entries(&h.config)
            .into_iter()
            .filter(|e| matches!(e.event, AuditEvent::WitnessRefused { .. }))
            .collect();
        if !refused.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match refused.first().map(|e| &e.event) {
        Some(AuditEvent::WitnessRefused {
            witness: w,
            status,
            known_size,
            reason,
            ..
        }) => {
            assert_eq!(w, &witness.label());
            assert_eq!(*status, 409);
            assert!(
                known_size.is_some_and(|k| k >= size_before),
                "{known_size:?}"
            );
            assert!(reason.contains("rolled back or wiped"), "{reason}");
        }
        other => panic!("no witness-refused entry on the new log: {other:?}"),
    }
    // Every later checkpoint is refused too (the entry itself leads to
    // one, and so does the stop): once the new log reaches the size the
    // witness knows, as a fork (422). One entry per cause, never one per
    // checkpoint, which would feed itself.
    // The operator's metrics count each refusal.
    let metrics = running
        .gateway
        .metrics()
        .encode(&passerelle::metrics::Sample::default());
    let series = format!(
        "passerelle_witness_refusals_total{{witness=\"{}\"}} ",
        witness.label()
    );
    assert!(metrics.contains(&series), "{metrics}");
    running.gateway.checkpoint().await.unwrap();
    running.shutdown().await;
    let causes: Vec<(u16, Option<u64>)> = entries(&h.config)
        .into_iter()
        .filter_map(|e| match e.event {
            AuditEvent::WitnessRefused {
                status, known_size, ..
            } => Some((status, known_size)),
            _ => None,
        })
        .collect();
    let mut distinct = causes.clone();
    distinct.dedup();
    assert_eq!(causes, distinct, "one entry per cause");
    assert!(
        causes.iter().all(|(s, _)| [409, 422].contains(s)),
        "{causes:?}"
    );

    // An auditor who requires the witness notices.
    let (code, out) =
        export_and_verify(&toml, &h.path().join("export-2"), &vkey_file, &witness_file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("not cosigned {}", witness.label())),
        "{out}"
    );
    let out = passerelle()
        .args(["audit", "show"])
        .arg(h.path().join("export-2"))
        .arg("--key")
        .arg(&vkey_file)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("witness-refused"), "{shown}");
}
