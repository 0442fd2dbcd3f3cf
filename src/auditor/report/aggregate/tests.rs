use super::*;
use crate::domain::label::SecurityLabel;
use crate::domain::principal::{Agency, PrincipalId};
use crate::domain::receipt::RecipientOutcome;

fn p(s: &str) -> PrincipalId {
    PrincipalId::new(s).unwrap()
}

fn label() -> SecurityLabel {
    SecurityLabel::new("RESTREINT", Agency::new("police").unwrap())
}

fn accepted(item: &str, priority: Priority, cases: &[&str]) -> AuditEvent {
    AuditEvent::ItemAccepted {
        due: None,
        answers: None,
        item_ref: item.into(),
        item_id: "i".into(),
        sender: p("police/lo/rabat"),
        digest: "d".into(),
        purpose: "terrorism".into(),
        cases: cases.iter().map(|c| c.to_string()).collect(),
        label: label(),
        portion_labels: vec![label(), label()],
        outcomes: Vec::<RecipientOutcome>::new(),
        priority: Some(priority),
        policy_digest: "p".into(),
    }
}

fn decision(to: &str, effect: Effect, portions: &[u32], rules: &[&str]) -> RecordedDecision {
    RecordedDecision {
        rules: rules.iter().map(|r| r.to_string()).collect(),
        effect,
        reasons: Vec::new(),
        portions: portions.to_vec(),
        recipient: p(to),
    }
}

fn decided(item: &str, d: RecordedDecision) -> AuditEvent {
    AuditEvent::Decided {
        digest: "d".into(),
        decision: d,
        item_ref: item.into(),
        policy_digest: "p".into(),
    }
}

fn delivered(item: &str, to: &str, portions: &[u32]) -> AuditEvent {
    AuditEvent::Delivered {
        digest: "d".into(),
        sender: p("police/lo/rabat"),
        decision: decision(to, Effect::Allow, portions, &["g"]),
        item_ref: item.into(),
        policy_digest: "p".into(),
    }
}

fn refused(subject: RefusedSubject, cause: &str, count: u64, at: i64) -> AuditEvent {
    AuditEvent::Refused {
        last: at,
        cause: cause.into(),
        count,
        first: at,
        samples: vec![],
        subject,
    }
}

fn log(events: Vec<(i64, AuditEvent)>) -> Vec<Shown> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, (t, e))| Shown {
            index: i as u64,
            entry: Ok(AuditEntry::new(t, e)),
        })
        .collect()
}

/// A FLASH item to three recipients (released, partial, denied by default)
/// delivered late to one; a ROUTINE item denied by a deny rule and by the
/// third-party rule; a connection refused twice.
fn sample() -> Vec<Shown> {
    log(vec![
        (1000, accepted("a", Priority::Flash, &["CT-1"])),
        (
            1000,
            decided(
                "a",
                decision("vsse/analysis/ct", Effect::Allow, &[0, 1], &["g"]),
            ),
        ),
        (
            1000,
            decided(
                "a",
                decision(
                    "police/spoc",
                    Effect::Allow,
                    &[0],
                    &["mandatory.accreditation", "g"],
                ),
            ),
        ),
        (
            1000,
            decided(
                "a",
                decision("vsse/desk/x", Effect::Deny, &[], &[DEFAULT_DENY_RULE]),
            ),
        ),
        (1100, accepted("b", Priority::Routine, &[])),
        (
            1100,
            decided(
                "b",
                decision(
                    "vsse/analysis/ct",
                    Effect::Deny,
                    &[],
                    &["vsse.no-routine", THIRD_PARTY_RULE],
                ),
            ),
        ),
        (
            1200,
            refused(
                RefusedSubject::Address("192.0.2.7".into()),
                "handshake-failed",
                2,
                1200,
            ),
        ),
        (
            1200,
            refused(
                RefusedSubject::Principal(p("police/lo/rabat")),
                "not-yours-to-fetch",
                5,
                1200,
            ),
        ),
        (1000 + 4000, delivered("a", "vsse/analysis/ct", &[0, 1])),
        (1000 + 4100, delivered("a", "vsse/analysis/ct", &[0, 1])),
    ])
}

#[test]
fn flows_are_counted_between_principals_and_agencies() {
    let s = summarize(&sample(), &Filter::default());
    let from = |a: &str, b: &str| s.principal_flows[&(a.to_string(), b.to_string())];
    assert_eq!(
        from("police/lo/rabat", "vsse/analysis/ct"),
        FlowCount {
            released: 1,
            partial: 0,
            denied: 1
        }
    );
    assert_eq!(
        from("police/lo/rabat", "police/spoc"),
        FlowCount {
            released: 0,
            partial: 1,
            denied: 0
        }
    );
    assert_eq!(from("police/lo/rabat", "vsse/desk/x").denied, 1);
    assert_eq!(
        s.agency_flows[&("police".to_string(), "vsse".to_string())],
        FlowCount {
            released: 1,
            partial: 0,
            denied: 2
        }
    );
    assert_eq!(
        s.agency_flows[&("police".to_string(), "police".to_string())].partial,
        1
    );
}

#[test]
fn denials_are_counted_by_reason_over_time() {
    let s = summarize(&sample(), &Filter::default());
    let axis = s.axis().unwrap();
    let total: Vec<u64> = (0..4)
        .map(|i| s.denials_over(&axis).iter().map(|b| b[i]).sum())
        .collect();
    // mandatory (partial), deny rule, no grant, third party
    assert_eq!(total, [1, 1, 1, 1]);
    assert_eq!(
        s.deny_rules,
        BTreeMap::from([("vsse.no-routine".to_string(), 1)])
    );
    // A grant named in a fully released decision is no deny rule.
    assert!(DenialReason::of(&decision("a/b", Effect::Allow, &[0], &["g"])).is_empty());
    // A rule that withheld a portion of a partial release is one.
    let mut partial = decision("a/b", Effect::Allow, &[0], &["g", "x.deny"]);
    partial.reasons = vec!["portion 1 (SECRET) withheld by rule x.deny: no".into()];
    assert_eq!(
        DenialReason::of(&partial),
        BTreeSet::from([DenialReason::DenyRule])
    );
}

#[test]
fn deliveries_are_timed_from_acceptance_once_per_recipient() {
    let s = summarize(&sample(), &Filter::default());
    let flash = &s.timeliness["FLASH"];
    assert_eq!(
        flash.delivered.len(),
        1,
        "a delivery offered again is not counted twice"
    );
    assert_eq!(flash.delivered[0].seconds, 4000);
    assert_eq!(flash.late(FLASH_TARGET_SECONDS), 1);
    // Released to police/spoc, never delivered.
    assert_eq!(flash.waiting, 1);
    assert_eq!(s.cases["CT-1"].len(), 1);
    assert_eq!(s.cases["CT-1"][0].of, Some(2));
}

#[test]
fn only_connection_refusals_are_counted_as_refused_connections() {
    let s = summarize(&sample(), &Filter::default());
    let axis = s.axis().unwrap();
    let by_cause = s.refusals_over(&axis);
    assert_eq!(by_cause.len(), 1);
    assert_eq!(by_cause["handshake-failed"].iter().sum::<u64>(), 2);
}

#[test]
fn the_filter_picks_what_is_counted_and_the_rest_gives_context() {
    let filter = Filter {
        decision: Some(Effect::Deny),
        ..Filter::default()
    };
    let s = summarize(&sample(), &filter);
    // The acceptances are filtered out, but still name the sender.
    assert_eq!(
        s.principal_flows
            .keys()
            .map(|(a, _)| a.as_str())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["police/lo/rabat"])
    );
    assert_eq!(s.principal_flows.values().map(|c| c.denied).sum::<u64>(), 2);
    assert!(s.timeliness.values().all(|t| t.delivered.is_empty()));
    let case = Filter {
        case: Some("CT-1".into()),
        ..Filter::default()
    };
    let s = summarize(&sample(), &case);
    assert_eq!(
        s.principal_flows
            .values()
            .map(FlowCount::total)
            .sum::<u64>(),
        3
    );
}

#[test]
fn a_time_axis_keeps_within_its_bucket_count() {
    let a = TimeAxis::over(0, 10);
    assert_eq!((a.width, a.buckets), (1, 11));
    let a = TimeAxis::over(1_790_000_000, 1_790_000_000 + 30 * 86_400);
    assert!(a.buckets as i64 <= MAX_BUCKETS);
    assert_eq!(
        a.bucket(1_790_000_000 + 30 * 86_400).map(|b| b < a.buckets),
        Some(true)
    );
    assert_eq!(a.bucket(0), None);
    assert_eq!(TimeAxis::over(5, 5).buckets, 1);
}
