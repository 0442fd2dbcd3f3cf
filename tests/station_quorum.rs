//! Stations that require a quorum of witnesses, over the real gateway (the
//! test harness), a real `passerelle witness serve` process and the real
//! `passerelle receipt` command: a receipt is final only once a checkpoint
//! covering its entry carries the cosignatures of the station's quorum;
//! a quorum the gateway's witnesses cannot meet is never met; and after
//! the operator wipes the log and starts anew, the witness refuses the new
//! log and the station notices, where a station without `[witnesses]`
//! takes the same receipt as it comes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::witness::{keygen, passerelle, write_config, WitnessProcess};
use common::{item, Harness};
use passerelle::audit::signed_note::VerifierKey;
use passerelle::client::finality::{FinalityError, NotFinal};
use passerelle::client::Station;
use passerelle::config::GatewayConfig;
use passerelle::server::{self, StartOptions};
use passerelle::station_config::ClientConfig;

const RABAT: &str = "police/lo/rabat";

/// A copy of the station's `client.toml` beside it (so that its relative
/// paths still hold) pointing at `gateway`, with `extra` appended.
fn station_toml(h: &Harness, name: &str, gateway: &str, extra: &str) -> PathBuf {
    let dir = h
        .path()
        .join(passerelle::pki::station_dir(RABAT))
        .to_path_buf();
    let text = std::fs::read_to_string(dir.join("client.toml")).unwrap();
    let text = text.replace("127.0.0.1:0", gateway);
    assert!(text.contains(gateway), "no gateway address to replace");
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}\n{extra}")).unwrap();
    path
}

/// `passerelle receipt` as a station would run it, off the runtime that
/// serves the gateway.
async fn receipt(config: &Path, item_ref: &str, wait: u64) -> Output {
    let mut cmd = passerelle();
    cmd.args(["receipt", item_ref, "--wait", &wait.to_string(), "--config"])
        .arg(config);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn station(config: &Path, gateway: &str) -> Station {
    let mut c = ClientConfig::load(config).unwrap();
    c.gateway = gateway.to_string();
    c.retries = 0;
    Station::new(c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_takes_a_receipt_as_final_only_with_its_quorum_and_notices_a_rolled_back_gateway()
{
    let wdir = tempfile::tempdir().unwrap();
    let (wkey, w1) = keygen(wdir.path(), "comite-p.test/w1");
    // A second witness the gateway never asks.
    let (_, w2) = keygen(wdir.path(), "comite-r.test/w2");
    let w1_file = wdir.path().join("w1.vkey");
    std::fs::write(&w1_file, format!("{w1}\n")).unwrap();
    let mut process = None;
    let mut h = Harness::start_with(|config| {
        let vkey_file = config.audit.vkey.clone().unwrap();
        let gateway_key: VerifierKey = std::fs::read_to_string(&vkey_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let w = WitnessProcess::start(&write_config(wdir.path(), &wkey, &[&gateway_key]));
        let toml = vkey_file
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("gateway.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        std::fs::write(
            &toml,
            format!(
                "{text}\n[[witness]]\nurl = \"http://{}\"\nkey = \"{w1}\"\n",
                w.addr
            ),
        )
        .unwrap();
        *config = GatewayConfig::load(&toml).unwrap();
        process = Some(w);
    })
    .await;
    let _witness = process.unwrap();
    let addr = h.addr().to_string();

    // A key file or the key itself; a quorum the keys cannot meet, or a
    // log key given as a witness's, is refused when the file is read.
    let quorum_1 = station_toml(
        &h,
        "final-1.toml",
        &addr,
        &format!(
            "[witnesses]\nkeys = [{:?}]\nquorum = 1\n",
            w1_file.display().to_string()
        ),
    );
    let quorum_2 = station_toml(
        &h,
        "final-2.toml",
        &addr,
        &format!("[witnesses]\nkeys = [\"{w1}\", \"{w2}\"]\n"),
    );
    for bad in [
        format!("[witnesses]\nkeys = [\"{w1}\"]\nquorum = 2\n"),
        "[witnesses]\nkeys = []\n".to_string(),
        format!(
            "[witnesses]\nkeys = [\"{}\"]\n",
            h.running.as_ref().unwrap().gateway.key().verifier_key()
        ),
    ] {
        let path = station_toml(&h, "bad.toml", &addr, &bad);
        assert!(ClientConfig::load(&path).is_err(), "{bad}");
    }

    // Sent; final once the witness has cosigned a checkpoint covering it.
    let rabat = station(&quorum_1, &addr);
    let sent = rabat
        .submit(&item(&rabat, "one", &["vsse/analysis/ct"], "first"))
        .await
        .unwrap()
        .receipt
        .item_ref;
    let out = receipt(&quorum_1, &sent, 120).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("final: included in the checkpoint of size"),
        "{shown}"
    );
    assert!(shown.contains(&w1.label()), "{shown}");
    // The library gives the same, with a proof against a cosigned checkpoint.
    let quorum = rabat.quorum().unwrap().unwrap();
    let done = rabat
        .final_receipt(&sent, &quorum, Duration::from_secs(120))
        .await
        .unwrap();
    let proof = done.signed.inclusion.as_ref().unwrap();
    assert!(proof.index == done.signed.receipt.audit_index && proof.size == done.finality.size);

    // An auditor checks the kept receipt's finality offline, with the
    // witnesses' keys: final with the one that cosigned; not final when
    // the quorum needs one that did not, or when the receipt carries no
    // cosigned checkpoint; a cosignature altered on the way is named.
    let vkey = h.config.audit.vkey.clone().unwrap();
    let kept = h.path().join("kept-receipt.json");
    std::fs::write(&kept, serde_json::to_vec(&done.signed).unwrap()).unwrap();
    let check = |file: &Path, extra: &[String]| {
        let out = passerelle()
            .args(["audit", "check-receipt"])
            .arg(file)
            .arg("--key")
            .arg(&vkey)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), text(&out))
    };
    let (code, shown) = check(&kept, &["--witness".into(), w1.to_string()]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains(&format!(
            "cosigned by 1 of 1 witnesses (quorum 1): {}",
            w1.label()
        )),
        "{shown}"
    );
    let (code, shown) = check(
        &kept,
        &[
            "--witness".into(),
            w1.to_string(),
            "--witness".into(),
            w2.to_string(),
        ],
    );
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains("NOT FINAL") && shown.contains(&format!("not cosigned: {}", w2.label())),
        "{shown}"
    );
    let (code, shown) = check(
        &kept,
        &[
            "--witness".into(),
            w1.to_string(),
            "--quorum".into(),
            "2".into(),
        ],
    );
    assert_eq!(
        code,
        Some(2),
        "a quorum larger than the witnesses given: {shown}"
    );
    let mut unproved = done.signed.clone();
    unproved.inclusion = None;
    let unproved_file = h.path().join("unproved-receipt.json");
    std::fs::write(&unproved_file, serde_json::to_vec(&unproved).unwrap()).unwrap();
    let (code, shown) = check(&unproved_file, &["--witness".into(), w1.to_string()]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains("NOT FINAL") && shown.contains("no inclusion proof"),
        "{shown}"
    );
    // The witness's line, its signature bytes changed: forged.
    let mut forged = done.signed.clone();
    let note = &mut forged.inclusion.as_mut().unwrap().checkpoint;
    let prefix = format!("\u{2014} {} ", w1.name());
    let start = note.find(&prefix).expect("the witness's cosignature line") + prefix.len();
    let end = start + note[start..].find('\n').unwrap();
    // A character inside the signature's bytes (keyid and timestamp
    // come first), so that the line still parses.
    let at = start + (end - start) / 2;
    let swapped = if &note[at..at + 1] == "A" { "B" } else { "A" };
    note.replace_range(at..at + 1, swapped);
    let forged_file = h.path().join("forged-receipt.json");
    std::fs::write(&forged_file, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (code, shown) = check(&forged_file, &["--witness".into(), w1.to_string()]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("does NOT verify"), "{shown}");
    // Without witnesses the same receipt is valid, and said not to be
    // checked for finality (no "final" line).
    let (code, shown) = check(&kept, &[]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(!shown.contains("  final "), "{shown}");

    // The station keeps the final checkpoint, to hold the gateway to it.
    let held = h
        .path()
        .join(passerelle::pki::station_dir(RABAT))
        .join("final-checkpoint");
    let held = std::fs::read_to_string(held).unwrap();
    assert_eq!(
        held.lines().nth(1),
        Some(done.finality.size.to_string().as_str())
    );

    // A quorum that needs a witness the gateway never asks is not met.
    let out = receipt(&quorum_2, &sent, 1).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("NOT FINAL"), "{shown}");
    assert!(
        shown.contains(&format!("not cosigned: {}", w2.label())),
        "{shown}"
    );

    // The operator wipes the audit log and starts a new one: the witness
    // refuses to cosign anything of it.
    h.running.take().unwrap().shutdown().await;
    rusqlite::Connection::open(&h.config.store)
        .unwrap()
        .execute_batch("DELETE FROM audit; DELETE FROM checkpoints; DROP TABLE IF EXISTS seal;")
        .unwrap();
    let running = server::start_with(&h.config, StartOptions { new_log: true })
        .await
        .unwrap();
    let addr = running.addr.to_string();
    let quorum_1 = station_toml(
        &h,
        "final-1.toml",
        &addr,
        &format!("[witnesses]\nkeys = [\"{w1}\"]\n"),
    );
    let plain = station_toml(&h, "plain.toml", &addr, "");
    let rabat = station(&quorum_1, &addr);
    let after = rabat
        .submit(&item(
            &rabat,
            "two",
            &["vsse/analysis/ct"],
            "after the wipe",
        ))
        .await
        .unwrap()
        .receipt
        .item_ref;

    // A checkpoint of the new log covers it: signed by the same key.
    running.gateway.checkpoint().await.unwrap();
    // A station without witnesses takes the new log's receipt as it comes.
    let out = receipt(&plain, &after, 0).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("included in the signed checkpoint"),
        "{}",
        text(&out)
    );

    // The station that holds a final checkpoint of the old log notices
    // at once: the new log went back below it, or does not extend it.
    let out = receipt(&quorum_1, &after, 30).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("NOT FINAL"), "{shown}");
    assert!(
        shown.contains("the gateway's log went back") || shown.contains("the gateway's log forked"),
        "{shown}"
    );
    let quorum = rabat.quorum().unwrap().unwrap();
    match rabat
        .final_receipt(&after, &quorum, Duration::from_secs(30))
        .await
    {
        Err(FinalityError::NotFinal(NotFinal::RolledBack { .. } | NotFinal::Forked { .. })) => {}
        other => panic!("a rolled-back log's receipt taken as final: {other:?}"),
    }

    // A station that never saw the old log notices too: the witness
    // refuses the new log, so its checkpoints never reach the quorum.
    let fresh = station_toml(
        &h,
        "fresh.toml",
        &addr,
        &format!("[witnesses]\nkeys = [\"{w1}\"]\nstate = \"fresh-final-checkpoint\"\n"),
    );
    let out = receipt(&fresh, &after, 3).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("rolled back or forked"), "{shown}");
    assert!(
        shown.contains(&format!("not cosigned: {}", w1.label())),
        "{shown}"
    );
    let fresh = station(&fresh, &addr);
    let quorum = fresh.quorum().unwrap().unwrap();
    match fresh
        .final_receipt(&after, &quorum, Duration::from_secs(1))
        .await
    {
        Err(FinalityError::NotFinal(NotFinal::Short { cosigned, .. })) => {
            assert!(cosigned.is_empty(), "{cosigned:?}")
        }
        other => panic!("a rolled-back log's receipt taken as final: {other:?}"),
    }
    running.shutdown().await;
}
