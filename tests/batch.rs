//! Batched delivery over the real gateway: several items fetched in one
//! request (`GET /v1/inbox?fetch=N`), each with its attestation and its own
//! audit entry, and several acknowledged in one (`POST /v1/acks`), with
//! the adversary's cases: another recipient's references in a batch ack,
//! batch sizes out of bounds, and two fetchers of one station at once.

mod common;

use common::{item, Harness};
use hyper::{Method, StatusCode};
use passerelle::audit::event::AuditEvent;
use passerelle::client::{ClientError, Station};
use passerelle::domain::bytes::to_cbor;
use passerelle::domain::wire::{AckBatch, Problem};
use std::collections::BTreeSet;
use std::time::Duration;

const VSSE: &str = "vsse/analysis/ct";

async fn send_many(from: &Station, to: &str, n: usize, prefix: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for i in 0..n {
        let signed = item(from, &format!("{prefix}-{i}"), &[to], "batched");
        refs.push(from.submit(&signed).await.unwrap().receipt.item_ref);
    }
    refs
}

fn problem(e: ClientError) -> Problem {
    match e {
        ClientError::Refused(p) => p,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_batch_is_fetched_with_attestations_and_acknowledged_each_audited() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station(VSSE);
    let sent = send_many(&rabat, VSSE, 3, "b").await;

    let fetched = vsse.fetch_batch(Duration::ZERO, 10).await.unwrap();
    assert!(fetched.refused.is_empty());
    let got: Vec<String> = fetched
        .items
        .iter()
        .map(|f| f.entry.item_ref.clone())
        .collect();
    assert_eq!(got, sent, "all three, in inbox order");
    let mut indices = BTreeSet::new();
    for f in &fetched.items {
        // Each is checked as a single fetch's item is: the attestation is
        // for this item and this station.
        let delivery = vsse.open(&f.item).unwrap();
        assert_eq!(delivery.attestation.item_ref, f.entry.item_ref);
        assert_eq!(f.item.portions[0].portion.body.0, b"batched");
        indices.insert(delivery.attestation.audit_index);
    }
    assert_eq!(indices.len(), 3, "one audit entry per item");
    // Leased: out of the inbox until acknowledged or the lease ends.
    assert!(vsse.inbox(Duration::ZERO).await.unwrap().is_empty());
    assert!(vsse
        .fetch_batch(Duration::ZERO, 10)
        .await
        .unwrap()
        .items
        .is_empty());

    let acked = vsse.ack_batch(&sent).await.unwrap();
    assert!(acked.iter().all(|a| a.status == "acked"), "{acked:?}");
    assert_eq!(
        acked.iter().map(|a| a.item_ref.clone()).collect::<Vec<_>>(),
        sent.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    let again = vsse.ack_batch(&sent).await.unwrap();
    assert!(again.iter().all(|a| a.status == "already-acked"));

    let events = h.audit_events().await;
    for r in &sent {
        let delivered = events
            .iter()
            .filter(|e| matches!(e, AuditEvent::Delivered { item_ref, .. } if item_ref == r))
            .count();
        let acked = events
            .iter()
            .filter(|e| matches!(e, AuditEvent::Acknowledged { item_ref, .. } if item_ref == r))
            .count();
        assert_eq!((delivered, acked), (1, 1), "{r}");
    }
}

#[tokio::test]
async fn a_batched_fetch_waits_for_an_arrival() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station(VSSE);
    let waiting = tokio::spawn(async move { vsse.fetch_batch(Duration::from_secs(20), 5).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = send_many(&rabat, VSSE, 1, "late").await;
    let fetched = waiting.await.unwrap().unwrap();
    assert_eq!(fetched.items.len(), 1);
    assert_eq!(fetched.items[0].entry.item_ref, sent[0]);
}

#[tokio::test]
async fn another_recipients_references_in_a_batch_ack_are_refused_as_a_single_ack_refuses_them() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station(VSSE);
    let djo = h.station("police/djo/ct");
    let theirs = send_many(&rabat, VSSE, 2, "theirs").await;
    let mine = send_many(&vsse, "police/djo/ct", 1, "mine").await;
    assert_eq!(
        djo.inbox(Duration::ZERO).await.unwrap().len(),
        1,
        "djo receives it"
    );

    // What a single ack of another's item answers.
    let single = problem(djo.ack(&theirs[0]).await.unwrap_err());
    assert_eq!((single.status, single.slug()), (404, "not-found"));

    let refs = vec![
        theirs[0].clone(),
        mine[0].clone(),
        "not a reference".to_string(),
        theirs[1].clone(),
        // Never an item: answered as the others are.
        "0123456789abcdef0123456789abcdef".to_string(),
    ];
    let results = djo.ack_batch(&refs).await.unwrap();
    assert_eq!(results.len(), refs.len());
    assert_eq!(results[1].status, "acked", "{results:?}");
    for i in [0, 2, 3, 4] {
        assert_eq!(results[i].status, "refused", "{i}");
        assert_eq!(results[i].problem.as_ref(), Some(&single), "{i}");
    }
    // A malformed reference is not repeated.
    assert_eq!(results[2].item_ref, None);

    // The other recipient's items are untouched.
    let still = vsse.inbox(Duration::ZERO).await.unwrap();
    assert_eq!(still.len(), 2);
    assert!(vsse
        .ack_batch(&theirs)
        .await
        .unwrap()
        .iter()
        .all(|a| a.status == "acked"));

    // Counted as the single ack's refusal is: one for the single ack, three
    // for the well-formed references that are not Ankara's (a malformed
    // one is not counted, as a malformed path is not).
    let events = h.audit_events().await;
    let counted: u64 = events
        .iter()
        .filter_map(|e| match e {
            AuditEvent::Refused { cause, count, .. } if cause == "not-yours-to-ack" => Some(*count),
            _ => None,
        })
        .sum();
    assert_eq!(counted, 4);
    let acked_by_djo = events
        .iter()
        .filter(|e| matches!(e, AuditEvent::Acknowledged { recipient, .. } if recipient.as_str() == "police/djo/ct"))
        .count();
    assert_eq!(acked_by_djo, 1);
}

#[tokio::test]
async fn batch_sizes_out_of_bounds_are_refused_with_a_problem() {
    let h = Harness::start().await;
    let vsse = h.station(VSSE);
    for (path, status, slug) in [
        ("/v1/inbox?fetch=0", 400, "bad-batch"),
        ("/v1/inbox?fetch=101", 400, "bad-batch"),
        ("/v1/inbox?wait=30&fetch=1000000", 400, "bad-batch"),
        ("/v1/inbox?fetch=99999999999999999999", 400, "bad-query"),
        ("/v1/inbox?fetch=-1", 400, "bad-query"),
    ] {
        let answer = vsse
            .request(Method::GET, path, None, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(answer.status.as_u16(), status, "{path}");
        let p: Problem = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(p.slug(), slug, "{path}");
    }
    for refs in [vec![], vec!["0".repeat(32); 101]] {
        let body = to_cbor(&AckBatch { refs });
        let answer = vsse
            .request(Method::POST, "/v1/acks", Some(body), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let p: Problem = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(p.slug(), "bad-batch");
    }
    let answer = vsse
        .request(Method::POST, "/v1/acks", Some(vec![0xff]), Duration::ZERO)
        .await
        .unwrap();
    let p: Problem = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!((p.status, p.slug()), (400, "malformed-body"));
    // The station client splits a long list into batches the gateway takes.
    let many = vec!["0".repeat(32); 150];
    let results = vsse.ack_batch(&many).await.unwrap();
    assert_eq!(results.len(), 150);
}

#[tokio::test]
async fn two_fetchers_of_one_station_never_get_the_same_lease() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let sent = send_many(&rabat, VSSE, 24, "race").await;
    // Two agents of one station, each on its own connection.
    let fetchers: Vec<_> = (0..2)
        .map(|_| {
            let s = h.station(VSSE);
            tokio::spawn(async move {
                let mut got = Vec::new();
                // Bounded: 24 items, at least one each turn until none.
                for _ in 0..24 {
                    let f = s.fetch_batch(Duration::ZERO, 3).await.unwrap();
                    if f.items.is_empty() {
                        break;
                    }
                    got.extend(f.items.into_iter().map(|i| i.entry.item_ref));
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for f in fetchers {
        all.extend(f.await.unwrap());
    }
    let distinct: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), distinct.len(), "an item was leased twice");
    assert_eq!(distinct, sent.into_iter().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn a_batched_fetch_refuses_what_the_policy_now_refuses_and_says_so() {
    let h = Harness::start().await;
    let vsse = h.station(VSSE);
    let rabat = h.station("police/lo/rabat");
    let spec = r#"
id = "ctx-1"
to = ["police/lo/rabat"]
purpose = "terrorism"
cases = ["CT-2026-014"]
[label]
level = "CONFIDENTIEL"
[[portion]]
text = "Context."
[portion.label]
level = "CONFIDENTIEL"
"#;
    let signed = passerelle::spec::ItemSpec::parse(spec).unwrap().sign(
        vsse.signing_key(),
        &vsse.config().principal,
        passerelle::gateway::unix_now(),
    );
    let r = vsse.submit(&signed).await.unwrap().receipt.item_ref;
    // The security officer withdraws Rabat's clearance.
    h.edit_policy(
        "principals.toml",
        "clearance = \"SECRET\"\naccreditation = \"CONFIDENTIEL\"",
        "clearance = \"RESTREINT\"\naccreditation = \"CONFIDENTIEL\"",
    );
    h.running.as_ref().unwrap().reload_policy().await.unwrap();
    let fetched = rabat.fetch_batch(Duration::ZERO, 5).await.unwrap();
    assert!(fetched.items.is_empty());
    assert_eq!(fetched.refused, vec![r.clone()]);
    assert!(rabat.inbox(Duration::ZERO).await.unwrap().is_empty());
    let events = h.audit_events().await;
    assert!(events
        .iter()
        .any(|e| matches!(e, AuditEvent::DeliveryRefused { item_ref, .. } if *item_ref == r)));
}

// The CLI blocks its thread, so the gateway needs another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_fetches_the_next_items_in_one_batch_and_acknowledges_several() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station(VSSE);
    let sent = send_many(&rabat, VSSE, 3, "cli").await;
    let config = h
        .path()
        .join(passerelle::pki::station_dir(VSSE))
        .join("client.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("127.0.0.1:0", &h.addr().to_string());
    std::fs::write(&config, text).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let shown = run(&["fetch", "--next", "2", "--ack"]);
    let shown = shown.as_array().unwrap();
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[0]["item_ref"], sent[0].as_str());
    assert_eq!(shown[1]["verified"], true);
    assert_eq!(vsse.inbox(Duration::ZERO).await.unwrap().len(), 1);
    let acked = run(&["ack", &sent[0], &sent[2]]);
    assert_eq!(acked[0]["status"], "already-acked");
    assert_eq!(acked[1]["status"], "acked");
    assert!(vsse.inbox(Duration::ZERO).await.unwrap().is_empty());
}
