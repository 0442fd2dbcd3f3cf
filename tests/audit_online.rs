//! The audit log as the running gateway keeps it: receipts proved against
//! later checkpoints, refusals on the log, who may read which proof,
//! consistency between checkpoints, and refusing to start on a broken log.

mod common;

use common::{item, Harness};
use hyper::{Method, StatusCode};
use passerelle::audit::checkpoint::Checkpoint;
use passerelle::audit::event::{AuditEntry, AuditEvent, RefusedSubject};
use passerelle::audit::rfc9162::{verify_consistency, Hash};
use passerelle::audit::signed_note::VerifierKey;
use passerelle::domain::bytes::from_cbor;
use passerelle::domain::receipt::InclusionProof;
use std::time::Duration;

async fn get(station: &passerelle::client::Station, path: &str) -> (StatusCode, Vec<u8>) {
    let a = station
        .request(Method::GET, path, None, Duration::ZERO)
        .await
        .unwrap();
    (a.status, a.body)
}

fn vkey(h: &Harness) -> VerifierKey {
    std::fs::read_to_string(h.path().join("gateway/audit.vkey"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn checkpoint(h: &Harness, station: &passerelle::client::Station) -> Checkpoint {
    let (status, body) = get(station, "/v1/audit/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    let key = vkey(h);
    Checkpoint::open(&body, key.name(), std::slice::from_ref(&key))
        .unwrap()
        .0
}

#[tokio::test]
async fn receipt_is_proved_against_a_later_checkpoint() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let signed = rabat
        .submit(&item(&rabat, "proof-1", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap();
    assert!(
        signed.inclusion.is_none(),
        "no checkpoint covers a fresh receipt yet"
    );
    let cp = checkpoint(&h, &rabat).await;
    assert!(cp.size > signed.receipt.audit_index);
    // The station checks the signature and the proof (Station::receipt).
    let later = rabat.receipt(&signed.receipt.item_ref).await.unwrap();
    let proof = later
        .inclusion
        .clone()
        .expect("a checkpoint now covers the entry");
    assert_eq!(proof.size, cp.size);
    let checked = passerelle::audit::receipts::check_receipt(&later, &vkey(&h)).unwrap();
    assert_eq!(checked.included_in, Some(cp.size));

    // A changed receipt no longer verifies; neither does one checked with
    // another log's key.
    let mut forged = later.clone();
    forged.receipt.outcomes.clear();
    assert!(passerelle::audit::receipts::check_receipt(&forged, &vkey(&h)).is_err());
    let other = Harness::start().await;
    assert!(passerelle::audit::receipts::check_receipt(&later, &vkey(&other)).is_err());
}

/// The `refused` entries on the log after the counted refusals were
/// written: (subject, cause, count, samples).
async fn refused_entries(h: &Harness) -> Vec<(RefusedSubject, String, u64, Vec<String>)> {
    h.audit_events()
        .await
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::Refused {
                subject,
                cause,
                count,
                samples,
                ..
            } => Some((subject, cause, count, samples)),
            _ => None,
        })
        .collect()
}

fn signed_checkpoints(h: &Harness) -> usize {
    let gateway = &h.running.as_ref().unwrap().gateway;
    gateway.store().checkpoints().unwrap().len()
}

fn principal(p: &str) -> RefusedSubject {
    RefusedSubject::Principal(passerelle::domain::principal::PrincipalId::new(p).unwrap())
}

#[tokio::test]
async fn refusals_are_counted_on_the_log_and_read_by_auditors_only() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let auditor = h.station("oversight/comite-r");
    // 25 refused submissions of a large item: one entry, with the count and
    // the digests of what was refused, never the refused bytes.
    let big = "x".repeat(200_000);
    for n in 0..25 {
        assert!(rabat
            .submit(&item(&rabat, &format!("bad-{n}"), &["vsse/nobody"], &big))
            .await
            .is_err());
    }
    let size_before = h.running.as_ref().unwrap().gateway.store().size().unwrap();
    let refused = refused_entries(&h).await;
    let size_after = h.running.as_ref().unwrap().gateway.store().size().unwrap();
    assert_eq!(size_after - size_before, 1, "25 refusals, one entry");
    let (subject, cause, count, samples) = &refused[0];
    assert_eq!(*subject, principal("police/lo/rabat"));
    assert_eq!(cause, "submission:unknown-recipient");
    assert_eq!(*count, 25);
    assert!(
        samples.len() <= 8 && samples.iter().all(|s| s.len() == 64),
        "{samples:?}"
    );
    let db_size = std::fs::metadata(&h.config.store).unwrap().len()
        + std::fs::metadata(h.config.store.with_extension("sqlite3-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    assert!(db_size < 5_000_000, "the store grew to {db_size} bytes");

    // Counted refusals are covered by the checkpoint of the next real event.
    rabat
        .submit(&item(&rabat, "good", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap();
    let cp = checkpoint(&h, &auditor).await;
    let index = size_after - 1;
    assert!(cp.size > index);
    let path = format!("/v1/audit/inclusion?index={index}");
    let (status, body) = get(&auditor, &path).await;
    assert_eq!(status, StatusCode::OK);
    let proof: InclusionProof = from_cbor(&body).unwrap();
    let entry = passerelle::audit::receipts::check_inclusion(&proof, &vkey(&h)).unwrap();
    assert!(matches!(entry.event, AuditEvent::Refused { count: 25, .. }));
    // A station does not read refusal counts, not even its own; asking is
    // itself counted, and answered as for an index that does not exist.
    let nowhere = get(&rabat, "/v1/audit/inclusion?index=999999").await;
    assert_eq!(nowhere.0, StatusCode::BAD_REQUEST);
    assert_eq!(get(&rabat, &path).await, nowhere);
    assert_eq!(get(&rabat, "/v1/audit/inclusion?index=0").await, nowhere);
    let asked: Vec<_> = refused_entries(&h)
        .await
        .into_iter()
        .filter(|(s, c, _, _)| *s == principal("police/lo/rabat") && c == "proof-refused")
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].2, 3);
    assert_eq!(asked[0].3, ["999999", index.to_string().as_str(), "0"]);
    // Out of range is a clear 400 for auditors too.
    assert_eq!(
        get(&auditor, "/v1/audit/inclusion?index=5&size=999999")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn refusals_alone_never_cause_a_checkpoint() {
    // One station asks 320 times in a row: lift its rates so that what is
    // measured is the audit log, not admission control.
    let h = Harness::start_with(|c| {
        c.limits.handshakes_per_address_per_second = 10_000;
        c.limits.handshake_burst_per_address = 10_000;
        c.limits.requests_per_principal_per_second = 10_000;
        c.limits.request_burst_per_principal = 10_000;
    })
    .await;
    let rabat = h.station("police/lo/rabat");
    let first = get(&rabat, "/v1/audit/checkpoint").await;
    let signed_before = signed_checkpoints(&h);
    for n in 0..300 {
        let path = format!("/v1/audit/inclusion?index={}", n % 3);
        assert_eq!(get(&rabat, &path).await.0, StatusCode::BAD_REQUEST);
    }
    for n in 0..20 {
        assert!(rabat.ack(&format!("{n:032x}")).await.is_err());
    }
    refused_entries(&h).await;
    assert_eq!(get(&rabat, "/v1/audit/checkpoint").await, first);
    let signed_after = signed_checkpoints(&h);
    assert_eq!(
        signed_before, signed_after,
        "no signature spent on refusals"
    );
    // The next real event's checkpoint covers the counts.
    rabat
        .submit(&item(&rabat, "real", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap();
    let (_, note) = get(&rabat, "/v1/audit/checkpoint").await;
    assert_ne!(note, first.1);
}

#[tokio::test]
async fn refused_handshakes_are_counted_by_address() {
    let h = Harness::start().await;
    let config = common::raw_client(&h.ca_path(), None, &[&rustls::version::TLS13]);
    for _ in 0..5 {
        assert!(common::raw_healthz(h.addr(), config.clone()).await.is_err());
    }
    // Each refusal is counted by its connection's task: give them a moment.
    let mut counted = 0;
    for _ in 0..50 {
        counted += refused_entries(&h)
            .await
            .iter()
            .filter(|(s, _, _, _)| *s == RefusedSubject::Address("127.0.0.1".into()))
            .map(|(_, _, c, _)| *c)
            .sum::<u64>();
        if counted >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        counted = 0;
    }
    assert!(
        counted >= 5,
        "refused handshakes must be counted on the log"
    );
}

#[tokio::test]
async fn later_checkpoints_are_consistent_with_earlier_ones() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let first = checkpoint(&h, &rabat).await;
    for n in 0..5 {
        rabat
            .submit(&item(&rabat, &format!("c-{n}"), &["vsse/analysis/ct"], "x"))
            .await
            .unwrap();
    }
    let second = checkpoint(&h, &rabat).await;
    assert!(second.size > first.size);
    let path = format!(
        "/v1/audit/consistency?old={}&new={}",
        first.size, second.size
    );
    let (status, body) = get(&rabat, &path).await;
    assert_eq!(status, StatusCode::OK);
    let proof: passerelle::api::ConsistencyProof = from_cbor(&body).unwrap();
    let hashes: Vec<Hash> = proof
        .hashes
        .iter()
        .map(|b| b.0.as_slice().try_into().unwrap())
        .collect();
    verify_consistency(first.size, second.size, &first.root, &second.root, &hashes).unwrap();
}

#[tokio::test]
async fn the_gateway_refuses_an_open_key_file_and_a_rewritten_log() {
    let mut h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    rabat
        .submit(&item(&rabat, "k-1", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap();
    h.running.take().unwrap().shutdown().await;

    use std::os::unix::fs::PermissionsExt;
    let key = h.config.audit.key.clone();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = passerelle::server::start(&h.config)
        .await
        .err()
        .expect("an open key must be refused");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Rewrite one stored entry behind the gateway's back.
    let conn = rusqlite::Connection::open(&h.config.store).unwrap();
    conn.execute("UPDATE audit SET entry = x'a0' WHERE idx = 1", [])
        .unwrap();
    drop(conn);
    let err = passerelle::server::start(&h.config)
        .await
        .err()
        .expect("a rewritten log must be refused");
    assert!(
        err.to_string().contains("audit entries were changed"),
        "{err}"
    );
}

fn count_events(h: &Harness, pred: impl Fn(&AuditEvent) -> bool) -> usize {
    let store = h.running.as_ref().unwrap().gateway.store().clone();
    let size = store.size().unwrap();
    store
        .audit_entries(0, size)
        .unwrap()
        .iter()
        .filter(|e| pred(&AuditEntry::decode(e).unwrap().event))
        .count()
}

#[tokio::test]
async fn housekeeping_checkpoints_expires_and_purges_on_its_own() {
    let h = Harness::start_with(|c| c.audit.checkpoint_seconds = 1).await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    // An item that expires one second after it is made.
    let spec = passerelle::spec::ItemSpec::parse(
        "id = \"soon\"\nto = [\"vsse/analysis/ct\"]\npurpose = \"terrorism\"\n[label]\nlevel = \"RESTREINT\"\n\
         [[portion]]\ntext = \"t\"\n[portion.label]\nlevel = \"RESTREINT\"\n",
    )
    .unwrap();
    let now = passerelle::gateway::unix_now();
    let mut header = spec.header(&rabat.config().principal, now);
    header.expires = Some(now + 1);
    let agency = rabat.config().principal.agency();
    let item = passerelle::domain::item::SignedItem::sign(
        rabat.signing_key(),
        header,
        spec.label.to_label(&agency),
        spec.portions(&agency),
    );
    let receipt = rabat.submit(&item).await.unwrap().receipt;
    // Its retention (five years for RESTREINT) is set at acceptance; move
    // it into the past, as if five years went by.
    let conn = rusqlite::Connection::open(&h.config.store).unwrap();
    let retained: i64 = conn
        .query_row(
            "SELECT purge_after FROM items WHERE item_ref = ?1",
            [&receipt.item_ref],
            |r| r.get(0),
        )
        .unwrap();
    assert!(retained >= now + 1825 * 86_400);
    conn.execute(
        "UPDATE items SET purge_after = ?1 WHERE item_ref = ?2",
        rusqlite::params![now, receipt.item_ref],
    )
    .unwrap();
    drop(conn);
    let size_after_submit = h.running.as_ref().unwrap().gateway.store().size().unwrap();

    // No request: the gateway signs checkpoints, expires and purges by itself.
    let mut done = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let expired = count_events(
            &h,
            |e| matches!(e, AuditEvent::Expired { item_ref, .. } if *item_ref == receipt.item_ref),
        );
        let purged = count_events(
            &h,
            |e| matches!(e, AuditEvent::Purged { item_ref, .. } if *item_ref == receipt.item_ref),
        );
        let store = h.running.as_ref().unwrap().gateway.store().clone();
        let covered = store
            .checkpoints()
            .unwrap()
            .last()
            .map(|c| c.0)
            .unwrap_or(0)
            > size_after_submit;
        if expired == 1 && purged == 1 && covered {
            done = true;
            break;
        }
    }
    assert!(
        done,
        "within 10 s the item must be expired, purged and covered by a new checkpoint"
    );
    assert!(vsse.inbox(Duration::ZERO).await.unwrap().is_empty());
    assert!(vsse.fetch(&receipt.item_ref).await.is_err());
    // The receipt survives the purge.
    assert_eq!(
        rabat
            .receipt(&receipt.item_ref)
            .await
            .unwrap()
            .receipt
            .digest,
        receipt.digest
    );
}

#[tokio::test]
async fn asking_for_someone_elses_item_is_on_the_log() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let ankara = h.station("police/lo/ankara");
    let receipt = rabat
        .submit(&item(&rabat, "mine", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap()
        .receipt;
    assert!(ankara.fetch(&receipt.item_ref).await.is_err());
    assert!(ankara.ack(&receipt.item_ref).await.is_err());
    assert!(ankara.receipt(&receipt.item_ref).await.is_err());
    let refused: Vec<String> = refused_entries(&h)
        .await
        .into_iter()
        .filter(|(subject, _, _, _)| *subject == principal("police/lo/ankara"))
        .map(|(_, cause, count, samples)| {
            assert_eq!(count, 1);
            assert_eq!(samples, std::slice::from_ref(&receipt.item_ref));
            cause
        })
        .collect();
    assert_eq!(
        refused,
        [
            "not-yours-to-ack",
            "not-yours-to-fetch",
            "not-yours-to-receipt"
        ]
    );
}

#[tokio::test]
async fn inclusion_proofs_come_with_the_checkpoint_they_are_for() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let auditor = h.station("oversight/comite-r");
    let receipt = rabat
        .submit(&item(&rabat, "p-1", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap()
        .receipt;
    let older = checkpoint(&h, &auditor).await;
    for n in 0..3 {
        rabat
            .submit(&item(
                &rabat,
                &format!("p-{}", n + 2),
                &["vsse/analysis/ct"],
                "x",
            ))
            .await
            .unwrap();
    }
    let index = receipt.audit_index;
    // Against an older checkpoint, after the log grew: the proof is for that
    // checkpoint's size and verifies with it.
    for path in [
        format!("/v1/audit/inclusion?index={index}&size={}", older.size),
        format!("/v1/audit/inclusion?index={index}"),
    ] {
        let (status, body) = get(&auditor, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let proof: InclusionProof = from_cbor(&body).unwrap();
        passerelle::audit::receipts::check_inclusion(&proof, &vkey(&h)).unwrap();
        if path.contains("size=") {
            assert_eq!(proof.size, older.size);
        } else {
            assert!(
                proof.size > older.size,
                "the default is a fresh, latest checkpoint"
            );
        }
    }
    // A size no checkpoint has is a clear 400.
    let (status, _) = get(
        &auditor,
        &format!("/v1/audit/inclusion?index={index}&size={}", older.size + 1),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Counted refusals reach the log at each housekeeping tick, without
/// anyone asking: a crash loses at most one interval's counts.
#[tokio::test]
async fn counted_refusals_are_written_every_interval() {
    let h = Harness::start_with(|c| c.audit.checkpoint_seconds = 1).await;
    let ankara = h.station("police/lo/ankara");
    assert!(ankara.fetch(&format!("{:032x}", 7)).await.is_err());
    let store = h.running.as_ref().unwrap().gateway.store().clone();
    let mut written = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let size = store.size().unwrap();
        written = store.audit_entries(0, size).unwrap().iter().any(|e| {
            matches!(
                AuditEntry::decode(e).unwrap().event,
                AuditEvent::Refused { ref cause, .. } if cause == "not-yours-to-fetch"
            )
        });
        if written {
            break;
        }
    }
    assert!(written, "the refusal must reach the log within a few ticks");
}
