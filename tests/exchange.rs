//! The exchange path end to end: a real gateway on loopback, real
//! certificates from the example PKI, real mTLS clients.

mod common;

use common::{item, Harness};
use passerelle::client::ClientError;
use passerelle::domain::receipt::Outcome;
use std::time::Duration;

fn slug(e: &ClientError) -> String {
    match e {
        ClientError::Refused(p) => p.slug().to_string(),
        other => format!("not a refusal: {other}"),
    }
}

#[tokio::test]
async fn happy_path_send_fetch_verify_ack() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");

    let receipt = rabat
        .submit(&item(&rabat, "req-1", &["vsse/analysis/ct"], "request"))
        .await
        .unwrap()
        .receipt;
    assert_eq!(receipt.item_id, "req-1");
    assert_eq!(receipt.sender.as_str(), "police/lo/rabat");
    assert_eq!(receipt.outcomes.len(), 1);
    assert_eq!(receipt.outcomes[0].outcome, Outcome::Queued);

    let inbox = vsse.inbox(Duration::from_secs(2)).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].item_ref, receipt.item_ref);
    let delivered = vsse.fetch(&receipt.item_ref).await.unwrap();
    let manifest = vsse.open(&delivered).unwrap().manifest;
    assert_eq!(manifest.header.sender.as_str(), "police/lo/rabat");
    assert_eq!(delivered.portions.len(), 1);
    assert_eq!(delivered.portions[0].portion.body.0, b"request");
    assert_eq!(vsse.ack(&receipt.item_ref).await.unwrap().status, "acked");
    assert_eq!(
        vsse.ack(&receipt.item_ref).await.unwrap().status,
        "already-acked"
    );
    assert!(vsse.inbox(Duration::ZERO).await.unwrap().is_empty());
    // Acknowledged items are not handed out again.
    assert_eq!(
        slug(&vsse.fetch(&receipt.item_ref).await.unwrap_err()),
        "not-found"
    );

    // The sender can read its receipt; nobody else can.
    assert_eq!(
        rabat.receipt(&receipt.item_ref).await.unwrap().receipt,
        receipt
    );
    assert_eq!(
        slug(&vsse.receipt(&receipt.item_ref).await.unwrap_err()),
        "not-found"
    );
    // Nobody but a recipient can fetch it.
    let ankara = h.station("police/lo/ankara");
    assert_eq!(
        slug(&ankara.fetch(&receipt.item_ref).await.unwrap_err()),
        "not-found"
    );
}

#[tokio::test]
async fn es256_station_signs_and_ed25519_station_verifies() {
    let h = Harness::start().await;
    let vsse = h.station("vsse/analysis/ct"); // P-256 certificate: ES256
    let rabat = h.station("police/lo/rabat");
    let r = vsse
        .submit(&item(
            &vsse,
            "ctx-1",
            &["police/lo/rabat", "police/spoc"],
            "context",
        ))
        .await
        .unwrap()
        .receipt;
    assert_eq!(r.outcomes.len(), 2);
    let d = rabat.fetch(&r.item_ref).await.unwrap();
    assert_eq!(
        rabat.open(&d).unwrap().manifest.header.sender.as_str(),
        "vsse/analysis/ct"
    );
    let spoc = h.station("police/spoc");
    assert_eq!(spoc.inbox(Duration::ZERO).await.unwrap().len(), 1);
}

#[tokio::test]
async fn resubmit_is_idempotent_and_other_content_conflicts() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let signed = item(&rabat, "req-7", &["vsse/analysis/ct"], "first");
    let first = rabat.submit(&signed).await.unwrap().receipt;
    let again = rabat.submit(&signed).await.unwrap().receipt;
    assert_eq!(first, again);
    assert_eq!(
        vsse.inbox(Duration::ZERO).await.unwrap().len(),
        1,
        "a resubmit must not duplicate"
    );

    let other = item(&rabat, "req-7", &["vsse/analysis/ct"], "second");
    assert_eq!(
        slug(&rabat.submit(&other).await.unwrap_err()),
        "id-conflict"
    );
    // The same id from another sender is another item.
    let ankara = h.station("police/lo/ankara");
    let theirs = ankara
        .submit(&item(&ankara, "req-7", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap()
        .receipt;
    assert_ne!(theirs.item_ref, first.item_ref);
    assert_eq!(vsse.inbox(Duration::ZERO).await.unwrap().len(), 2);
}

#[tokio::test]
async fn unacked_item_is_offered_again_after_its_lease() {
    let h = Harness::start_with(|c| c.lease_seconds = 3).await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let r = rabat
        .submit(&item(&rabat, "req-2", &["vsse/analysis/ct"], "lease"))
        .await
        .unwrap()
        .receipt;
    vsse.fetch(&r.item_ref).await.unwrap();
    // Leased: not offered while the lease runs.
    assert!(vsse.inbox(Duration::ZERO).await.unwrap().is_empty());
    // The long poll returns it once the lease expires.
    let again = vsse.inbox(Duration::from_secs(10)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].item_ref, r.item_ref);
    assert_eq!(again[0].deliveries, 1);
    vsse.fetch(&r.item_ref).await.unwrap();
    vsse.ack(&r.item_ref).await.unwrap();
}

#[tokio::test]
async fn long_poll_returns_when_an_item_arrives() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let waiting = tokio::spawn(async move { vsse.inbox(Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    rabat
        .submit(&item(&rabat, "req-3", &["vsse/analysis/ct"], "wake up"))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
}

#[tokio::test]
async fn flash_items_come_first() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    rabat
        .submit(&item(&rabat, "routine-1", &["vsse/analysis/ct"], "r"))
        .await
        .unwrap();
    let flash = passerelle::spec::ItemSpec::parse(
        "id = \"flash-1\"\nto = [\"vsse/analysis/ct\"]\npurpose = \"terrorism\"\npriority = \"FLASH\"\n\
         [label]\nlevel = \"RESTREINT\"\n[[portion]]\ntext = \"now\"\n[portion.label]\nlevel = \"RESTREINT\"\n",
    )
    .unwrap()
    .sign(rabat.signing_key(), &rabat.config().principal, passerelle::gateway::unix_now());
    rabat.submit(&flash).await.unwrap();
    let inbox = vsse.inbox(Duration::ZERO).await.unwrap();
    assert_eq!(
        inbox.iter().map(|e| e.item_id.as_str()).collect::<Vec<_>>(),
        ["flash-1", "routine-1"]
    );
}

#[tokio::test]
async fn an_item_still_verifies_after_the_senders_certificate_expired() {
    let h = Harness::start().await;
    // Rabat's certificate is about to expire (validity is in whole seconds).
    let now = time::OffsetDateTime::now_utc();
    let short = h
        .pki
        .agency("police")
        .unwrap()
        .issue_client(
            "spiffe://police.example/lo/rabat",
            &passerelle::pki::ClientCertOptions {
                not_before: now - time::Duration::hours(1),
                not_after: now + time::Duration::seconds(2),
                ..Default::default()
            },
        )
        .unwrap();
    let rabat = h.station_with("police/lo/rabat", &short, "short-lived");
    let receipt = rabat
        .submit(&item(&rabat, "late", &["vsse/analysis/ct"], "still good"))
        .await
        .unwrap()
        .receipt;
    // VSSE's station was offline until after the certificate expired.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let vsse = h.station("vsse/analysis/ct");
    let delivered = vsse.fetch(&receipt.item_ref).await.unwrap();
    let opened = vsse
        .open(&delivered)
        .expect("checked as of acceptance, the item verifies");
    assert_eq!(opened.manifest.header.sender.as_str(), "police/lo/rabat");
    assert_eq!(opened.attestation.accepted_at, receipt.accepted_at);
}
