//! Need to know, also in the audit API: a principal reads an audit entry
//! only when it was written for it (the sender's acceptance entry, a
//! recipient's own delivery), an entry that is not yours answers exactly as
//! one that does not exist, and a sender's reasons name the kind of rule
//! that refused, never an attribute of the recipient. Auditors read all.

mod common;

use common::Harness;
use hyper::{Method, StatusCode};
use passerelle::audit::event::{AuditEntry, AuditEvent};
use passerelle::client::Station;
use passerelle::domain::bytes::from_cbor;
use passerelle::domain::item::SignedItem;
use passerelle::domain::receipt::{InclusionProof, SignedReceipt};
use passerelle::gateway::unix_now;
use passerelle::spec::ItemSpec;
use std::time::Duration;

async fn get(station: &Station, path: &str) -> (StatusCode, Vec<u8>) {
    let a = station
        .request(Method::GET, path, None, Duration::ZERO)
        .await
        .unwrap();
    (a.status, a.body)
}

fn vkey(h: &Harness) -> passerelle::audit::signed_note::VerifierKey {
    std::fs::read_to_string(h.path().join("gateway/audit.vkey"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A SECRET analysis with a CONFIDENTIEL tearline from VSSE, for Rabat
/// (accredited up to CONFIDENTIEL: the tearline only) and Ankara (not
/// assigned to the case: denied).
fn analysis(vsse: &Station) -> SignedItem {
    let spec = r#"
id = "analysis-1"
to = ["police/lo/rabat", "police/lo/ankara"]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "URGENT"
[label]
level = "SECRET"
[[portion]]
text = "Full analysis: source network in the north."
[portion.label]
level = "SECRET"
[[portion]]
text = "Tearline: heightened threat, no sources."
[portion.label]
level = "CONFIDENTIEL"
"#;
    ItemSpec::parse(spec)
        .unwrap()
        .sign(vsse.signing_key(), &vsse.config().principal, unix_now())
}

struct Scene {
    h: Harness,
    vsse: Station,
    rabat: Station,
    ankara: Station,
    auditor: Station,
    receipt: SignedReceipt,
}

async fn scene() -> Scene {
    let h = Harness::start().await;
    let vsse = h.station("vsse/analysis/ct");
    let rabat = h.station("police/lo/rabat");
    let ankara = h.station("police/lo/ankara");
    let auditor = h.station("oversight/comite-r");
    let receipt = vsse.submit(&analysis(&vsse)).await.unwrap();
    // A checkpoint now covers the acceptance and decision entries.
    assert_eq!(
        get(&auditor, "/v1/audit/checkpoint").await.0,
        StatusCode::OK
    );
    Scene {
        h,
        vsse,
        rabat,
        ankara,
        auditor,
        receipt,
    }
}

fn inclusion(index: u64) -> String {
    format!("/v1/audit/inclusion?index={index}")
}

#[tokio::test]
async fn the_denied_learn_nothing_from_the_audit_api() {
    let s = scene().await;
    let first = s.receipt.receipt.audit_index;
    let nowhere = get(&s.ankara, &inclusion(1_000_000)).await;
    assert_eq!(nowhere.0, StatusCode::BAD_REQUEST);
    // The acceptance entry and both decision entries: for Ankara, exactly
    // as an index that does not exist.
    for index in first..first + 3 {
        assert_eq!(
            get(&s.ankara, &inclusion(index)).await,
            nowhere,
            "entry {index} must look like no entry at all to a denied recipient"
        );
    }
    // The gateway's own entries are not Ankara's either.
    assert_eq!(get(&s.ankara, &inclusion(0)).await, nowhere);
    // Its inbox is empty and the item is not its to fetch.
    assert!(s.ankara.inbox(Duration::ZERO).await.unwrap().is_empty());
    assert!(s.ankara.fetch(&s.receipt.receipt.item_ref).await.is_err());
}

#[tokio::test]
async fn a_tearline_recipient_reads_its_own_delivery_and_nothing_of_the_rest() {
    let s = scene().await;
    let first = s.receipt.receipt.audit_index;
    let nowhere = get(&s.rabat, &inclusion(1_000_000)).await;
    // Before and after delivery, the acceptance entry (which holds the
    // SECRET portion's label) and the decision entries stay closed.
    for index in first..first + 3 {
        assert_eq!(get(&s.rabat, &inclusion(index)).await, nowhere);
    }
    let delivered = s.rabat.fetch(&s.receipt.receipt.item_ref).await.unwrap();
    let opened = s.rabat.open(&delivered).unwrap();
    assert_eq!(opened.attestation.portions, [1], "the tearline only");
    let index = opened.attestation.audit_index;
    assert_eq!(
        get(&s.auditor, "/v1/audit/checkpoint").await.0,
        StatusCode::OK
    );
    let (status, body) = get(&s.rabat, &inclusion(index)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "its own delivery is Rabat's to prove"
    );
    let proof: InclusionProof = from_cbor(&body).unwrap();
    let entry = passerelle::audit::receipts::check_inclusion(&proof, &vkey(&s.h)).unwrap();
    match entry.event {
        AuditEvent::Delivered { decision, .. } => {
            assert_eq!(decision.recipient.as_str(), "police/lo/rabat");
            assert_eq!(decision.portions, [1]);
            assert!(
                decision.reasons.is_empty(),
                "reasons name withheld portions' levels: {:?}",
                decision.reasons
            );
        }
        other => panic!("expected its delivery, got {other:?}"),
    }
    assert!(
        !String::from_utf8_lossy(&proof.entry.0).contains("SECRET"),
        "nothing of the withheld portion's label"
    );
    // Its acknowledgement is its own too.
    s.rabat.ack(&s.receipt.receipt.item_ref).await.unwrap();
    assert_eq!(
        get(&s.auditor, "/v1/audit/checkpoint").await.0,
        StatusCode::OK
    );
    assert_eq!(get(&s.rabat, &inclusion(index + 1)).await.0, StatusCode::OK);
    // The sender may not read the recipient's delivery.
    assert_eq!(
        get(&s.vsse, &inclusion(index)).await,
        get(&s.vsse, &inclusion(1_000_000)).await
    );
}

#[tokio::test]
async fn the_sender_reads_its_acceptance_with_reasons_that_name_no_attribute() {
    let s = scene().await;
    let receipt = &s.receipt.receipt;
    let first = receipt.audit_index;
    // The receipt: Rabat queued with one portion, Ankara denied, and the
    // reason says which kind of rule refused, not why about Ankara.
    let outcomes: Vec<_> = receipt.outcomes.iter().collect();
    assert_eq!(outcomes[0].portions_released, 1);
    assert!(outcomes[0].reasons.is_empty());
    let denied = &outcomes[1].reasons;
    assert!(!denied.is_empty());
    for reason in denied.iter().chain(outcomes[0].reasons.iter()) {
        for attribute in [
            "clearance",
            "accreditation",
            "caveat",
            "case",
            "assigned",
            "CONFIDENTIEL",
        ] {
            assert!(
                !reason.contains(attribute),
                "a sender's reason names {attribute}: {reason}"
            );
        }
    }
    assert!(
        denied
            .iter()
            .any(|r| r.contains("no grant") || r.contains("mandatory")),
        "{denied:?}"
    );
    // The acceptance entry is the sender's to prove, and says the same.
    let (status, body) = get(&s.vsse, &inclusion(first)).await;
    assert_eq!(status, StatusCode::OK);
    let proof: InclusionProof = from_cbor(&body).unwrap();
    match AuditEntry::decode(&proof.entry.0).unwrap().event {
        AuditEvent::ItemAccepted { outcomes, .. } => assert_eq!(outcomes, receipt.outcomes),
        other => panic!("{other:?}"),
    }
    // The decision entries, with the full reasons, are not.
    let nowhere = get(&s.vsse, &inclusion(1_000_000)).await;
    for index in first + 1..first + 3 {
        assert_eq!(get(&s.vsse, &inclusion(index)).await, nowhere);
    }
}

#[tokio::test]
async fn auditors_read_every_decision_with_its_full_reasons() {
    let s = scene().await;
    let first = s.receipt.receipt.audit_index;
    let mut full = Vec::new();
    for index in first + 1..first + 3 {
        let (status, body) = get(&s.auditor, &inclusion(index)).await;
        assert_eq!(status, StatusCode::OK);
        let proof: InclusionProof = from_cbor(&body).unwrap();
        let entry = passerelle::audit::receipts::check_inclusion(&proof, &vkey(&s.h)).unwrap();
        match entry.event {
            AuditEvent::Decided {
                decision, item_ref, ..
            } => {
                assert_eq!(item_ref, s.receipt.receipt.item_ref);
                full.push(decision);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(full[0].recipient.as_str(), "police/lo/rabat");
    assert!(
        full[0].reasons.iter().any(|r| r.contains("accreditation")),
        "the auditor sees why the SECRET portion was withheld: {:?}",
        full[0].reasons
    );
    assert_eq!(full[1].recipient.as_str(), "police/lo/ankara");
    assert!(!full[1].reasons.is_empty());
}
