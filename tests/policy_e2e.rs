//! The policy in the exchange path, over real mTLS: partial release,
//! tearlines, the third-party rule, a withdrawn clearance stopping delivery
//! after a reload, and an invalid reload leaving the old policy in force.

mod common;

use common::Harness;
use passerelle::audit::event::AuditEvent;
use passerelle::client::{ClientError, Station};
use passerelle::domain::item::SignedItem;
use passerelle::domain::receipt::Outcome;
use passerelle::gateway::unix_now;
use passerelle::spec::ItemSpec;
use std::time::Duration;

fn signed(station: &Station, toml: &str) -> SignedItem {
    ItemSpec::parse(toml).unwrap().sign(
        station.signing_key(),
        &station.config().principal,
        unix_now(),
    )
}

const TEARLINE: &str = r#"
id = "ctx-tearline"
to = ["police/lo/rabat", "police/lo/ankara"]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "URGENT"
[label]
level = "SECRET"
[[portion]]
text = "SECRET analysis: sources and methods."
[portion.label]
level = "SECRET"
[[portion]]
text = "Tearline: subject is of interest; take care."
[portion.label]
level = "CONFIDENTIEL"
"#;

#[tokio::test]
async fn partial_and_tearline_release() {
    let h = Harness::start().await;
    let vsse = h.station("vsse/analysis/ct");
    let rabat = h.station("police/lo/rabat");
    let ankara = h.station("police/lo/ankara");

    let receipt = vsse.submit(&signed(&vsse, TEARLINE)).await.unwrap().receipt;
    let by: std::collections::BTreeMap<_, _> = receipt
        .outcomes
        .iter()
        .map(|o| (o.recipient.as_str().to_string(), o))
        .collect();
    // Rabat is assigned to the case but its post is accredited CONFIDENTIEL:
    // it gets the tearline only.
    assert_eq!(by["police/lo/rabat"].outcome, Outcome::Queued);
    assert_eq!(by["police/lo/rabat"].portions_released, 1);
    // Ankara is not assigned to the case: denied, with reasons that do not
    // reveal its clearance.
    let denied = by["police/lo/ankara"];
    assert_eq!(denied.outcome, Outcome::Denied);
    assert!(!denied.reasons.is_empty());
    for r in &denied.reasons {
        // The rule that failed may be named; the recipient's own levels and
        // case assignments may not.
        for secret in [
            "clearance CONFIDENTIEL",
            "accreditation CONFIDENTIEL",
            "CT-2026-031",
        ] {
            assert!(!r.contains(secret), "leaky reason: {r}");
        }
    }

    let delivered = rabat.fetch(&receipt.item_ref).await.unwrap();
    assert_eq!(delivered.portions.len(), 1);
    assert_eq!(delivered.portions[0].index, 1);
    assert!(String::from_utf8_lossy(&delivered.portions[0].portion.body.0).starts_with("Tearline"));
    // The station verifies the sender's signature over a partial item and
    // the gateway's attestation of exactly this release.
    let opened = rabat.open(&delivered).unwrap();
    assert_eq!(opened.attestation.portions, vec![1]);
    assert!(ankara.inbox(Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(
        match ankara.fetch(&receipt.item_ref).await.unwrap_err() {
            ClientError::Refused(p) => p.slug().to_string(),
            e => e.to_string(),
        },
        "not-found"
    );
}

#[tokio::test]
async fn third_party_material_needs_a_consent() {
    let h = Harness::start().await;
    let vsse = h.station("vsse/analysis/ct");
    let spoc = h.station("police/spoc");
    let item = |id: &str, partner: &str| {
        format!(
            r#"
id = "{id}"
to = ["police/spoc"]
purpose = "terrorism"
cases = ["CT-2026-014"]
[label]
level = "CONFIDENTIEL"
third_party = "{partner}"
handling = "H2"
[[portion]]
text = "Partner report."
[portion.label]
level = "CONFIDENTIEL"
third_party = "{partner}"
handling = "H2"
"#
        )
    };
    // The Moroccan service consented to release to the police up to
    // CONFIDENTIEL with H2.
    let ok = vsse
        .submit(&signed(&vsse, &item("tp-ma", "partner/ma-dgst")))
        .await
        .unwrap()
        .receipt;
    assert_eq!(ok.outcomes[0].outcome, Outcome::Queued);
    // The Turkish service's consent has expired.
    let refused = vsse
        .submit(&signed(&vsse, &item("tp-tr", "partner/tr-mit")))
        .await
        .unwrap()
        .receipt;
    assert_eq!(refused.outcomes[0].outcome, Outcome::Denied);
    assert!(
        refused.outcomes[0]
            .reasons
            .iter()
            .any(|r| r.contains("consent")),
        "{:?}",
        refused.outcomes[0].reasons
    );
    let inbox = spoc.inbox(Duration::ZERO).await.unwrap();
    assert_eq!(
        inbox.iter().map(|e| e.item_id.as_str()).collect::<Vec<_>>(),
        ["tp-ma"]
    );
    // The refusal is on the audit log with the rule that decided it.
    let denied_on_log = h.audit_events().await.into_iter().any(|e| match e {
        AuditEvent::Decided {
            item_ref, decision, ..
        } => {
            item_ref == refused.item_ref
                && decision.rules.iter().any(|r| r == "mandatory.third_party")
        }
        _ => false,
    });
    assert!(denied_on_log);
}

#[tokio::test]
async fn a_withdrawn_clearance_stops_delivery_after_reload() {
    let h = Harness::start().await;
    let vsse = h.station("vsse/analysis/ct");
    let rabat = h.station("police/lo/rabat");
    let ctx = r#"
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
    let receipt = vsse.submit(&signed(&vsse, ctx)).await.unwrap().receipt;
    assert_eq!(receipt.outcomes[0].outcome, Outcome::Queued);
    let before = receipt.policy_digest.clone();

    // The security officer withdraws Rabat's clearance to RESTREINT.
    h.edit_policy(
        "principals.toml",
        "clearance = \"SECRET\"\naccreditation = \"CONFIDENTIEL\"",
        "clearance = \"RESTREINT\"\naccreditation = \"CONFIDENTIEL\"",
    );
    let digest = h.running.as_ref().unwrap().reload_policy().await.unwrap();
    assert_ne!(digest, before);

    match rabat.fetch(&receipt.item_ref).await.unwrap_err() {
        ClientError::Refused(p) => assert_eq!((p.status, p.slug()), (403, "delivery-refused")),
        e => panic!("expected a refusal, got {e}"),
    }
    // It leaves the inbox, and the refusal is on the log under the new policy.
    assert!(rabat.inbox(Duration::ZERO).await.unwrap().is_empty());
    let events = h.audit_events().await;
    assert!(events.iter().any(
        |e| matches!(e, AuditEvent::PolicyLoaded { policy_digest, .. } if *policy_digest == digest)
    ));
    assert!(events.iter().any(|e| matches!(e,
        AuditEvent::DeliveryRefused { item_ref, policy_digest, .. }
            if *item_ref == receipt.item_ref && *policy_digest == digest)));
}

#[tokio::test]
async fn an_invalid_reload_leaves_the_old_policy_in_force() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let first = rabat
        .submit(&common::item(&rabat, "r-1", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap()
        .receipt;

    // A typo in a level name: the reload is refused, naming file and line.
    h.edit_policy(
        "principals.toml",
        "clearance = \"SECRET\"",
        "clearance = \"SECRETT\"",
    );
    let err = h
        .running
        .as_ref()
        .unwrap()
        .reload_policy()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("principals.toml:") && err.contains("SECRETT"),
        "{err}"
    );

    // The old policy still decides, and the refusal is on the log.
    let second = rabat
        .submit(&common::item(&rabat, "r-2", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap()
        .receipt;
    assert_eq!(second.policy_digest, first.policy_digest);
    assert_eq!(second.outcomes[0].outcome, Outcome::Queued);
    assert!(h
        .audit_events()
        .await
        .iter()
        .any(|e| matches!(e, AuditEvent::PolicyRefused { .. })));
}

fn outcome_for<'a>(
    receipt: &'a passerelle::domain::receipt::Receipt,
    who: &str,
) -> &'a passerelle::domain::receipt::RecipientOutcome {
    receipt
        .outcomes
        .iter()
        .find(|o| o.recipient.as_str() == who)
        .expect("an outcome for the recipient")
}

/// The constructs a security officer writes, in the exchange path: the
/// sender's own clearance, Diffusion restreinte and its purposes, every
/// case, any/all case matching, and requests and answers.
#[tokio::test]
async fn the_new_policy_constructs_over_mtls() {
    let h = Harness::start().await;
    let vsse = h.station("vsse/analysis/ct");
    let ci = h.station("vsse/desk/ci");
    let ankara = h.station("police/lo/ankara");
    let spoc = h.station("police/spoc");
    let djo = h.station("police/djo/ct");

    // Ankara is cleared CONFIDENTIEL: it cannot originate SECRET, and is
    // told why (its own clearance is no secret to itself).
    let over = r#"
id = "ankara-over"
to = ["vsse/analysis/ct"]
purpose = "terrorism"
[label]
level = "SECRET"
[[portion]]
text = "Above my clearance."
[portion.label]
level = "SECRET"
"#;
    let r = ankara.submit(&signed(&ankara, over)).await.unwrap().receipt;
    let o = outcome_for(&r, "vsse/analysis/ct");
    assert_eq!(o.outcome, Outcome::Denied);
    assert!(
        o.reasons
            .iter()
            .any(|x| x.contains("mandatory.sender_clearance") && x.contains("your own clearance")),
        "{:?}",
        o.reasons
    );

    // Diffusion restreinte: for terrorism it goes, and the marking travels
    // with the delivered portion; for espionage it does not.
    let dr = |id: &str, purpose: &str, case: &str| {
        format!(
            r#"
id = "{id}"
to = ["police/spoc", "police/djo/ct"]
purpose = "{purpose}"
cases = ["{case}"]
[label]
level = "RESTREINT"
diffusion_restreinte = true
[[portion]]
text = "Purpose-bound."
[portion.label]
level = "RESTREINT"
diffusion_restreinte = true
"#
        )
    };
    let r = vsse
        .submit(&signed(&vsse, &dr("dr-ct", "terrorism", "CT-2026-014")))
        .await
        .unwrap()
        .receipt;
    assert_eq!(outcome_for(&r, "police/djo/ct").outcome, Outcome::Queued);
    let delivered = djo.fetch(&r.item_ref).await.unwrap();
    assert!(delivered.portions[0].portion.label.diffusion_restreinte);
    let r = ci
        .submit(&signed(&ci, &dr("dr-ci", "espionage", "CI-2026-007")))
        .await
        .unwrap()
        .receipt;
    for who in ["police/spoc", "police/djo/ct"] {
        let o = outcome_for(&r, who);
        assert_eq!(o.outcome, Outcome::Denied);
        assert!(
            o.reasons
                .iter()
                .any(|x| x.contains("mandatory.marking_purpose")),
            "{:?}",
            o.reasons
        );
    }

    // The SPOC is on every case (cases = ["*"]); the DJO desk's grant says
    // `any`: an item on two cases reaches it though it is on one of them.
    let two = r#"
id = "two-cases"
to = ["police/spoc", "police/djo/ct", "police/lo/ankara"]
purpose = "extremism"
cases = ["EX-2026-011", "CI-2026-007"]
[label]
level = "CONFIDENTIEL"
[[portion]]
text = "On two cases."
[portion.label]
level = "CONFIDENTIEL"
"#;
    let r = vsse.submit(&signed(&vsse, two)).await.unwrap().receipt;
    assert_eq!(outcome_for(&r, "police/spoc").outcome, Outcome::Queued);
    assert_eq!(outcome_for(&r, "police/djo/ct").outcome, Outcome::Queued);
    assert_eq!(outcome_for(&r, "police/lo/ankara").outcome, Outcome::Denied);

    // A request and its answer: the header fields travel signed, and the
    // policy gives the request's answer deadline.
    let request = r#"
id = "req-1"
to = ["vsse/analysis/ct"]
purpose = "terrorism"
priority = "URGENT"
request = { accessibility = "direct" }
[label]
level = "RESTREINT"
[[portion]]
text = "What do you hold on subject X?"
[portion.label]
level = "RESTREINT"
"#;
    let asked = spoc.submit(&signed(&spoc, request)).await.unwrap().receipt;
    assert_eq!(
        outcome_for(&asked, "vsse/analysis/ct").outcome,
        Outcome::Queued
    );
    let got = vsse.fetch(&asked.item_ref).await.unwrap();
    let opened = vsse.open(&got).unwrap();
    let policy = passerelle::policy_files::load_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
    )
    .unwrap();
    assert_eq!(
        policy.answer_due(&opened.manifest.header, 1_000),
        Some(1_000 + 8 * 3_600),
        "URGENT, directly accessible: 8 hours"
    );
    let answer = format!(
        r#"
id = "ans-1"
to = ["police/spoc"]
purpose = "terrorism"
cases = ["CT-2026-014"]
in_reply_to = "{}"
[label]
level = "RESTREINT"
[[portion]]
text = "Subject X: nothing held."
[portion.label]
level = "RESTREINT"
"#,
        asked.item_ref
    );
    let answered = vsse.submit(&signed(&vsse, &answer)).await.unwrap().receipt;
    assert_eq!(
        outcome_for(&answered, "police/spoc").outcome,
        Outcome::Queued
    );
    let got = spoc.fetch(&answered.item_ref).await.unwrap();
    assert_eq!(
        spoc.open(&got)
            .unwrap()
            .manifest
            .header
            .in_reply_to
            .as_deref(),
        Some(asked.item_ref.as_str())
    );
    // An answer that names no well-formed request is refused at the edge.
    let bad = answer
        .replace(&asked.item_ref, "not-an-item-ref")
        .replace("ans-1", "ans-2");
    match vsse.submit(&signed(&vsse, &bad)).await {
        Err(ClientError::Refused(p)) => assert_eq!(p.slug(), "invalid-item"),
        other => panic!(
            "accepted a malformed in_reply_to: {:?}",
            other.map(|r| r.receipt.item_ref)
        ),
    }
}
