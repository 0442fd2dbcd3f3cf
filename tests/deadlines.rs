//! Requests, answers and their deadlines (Directive (EU) 2023/977), over
//! real mTLS: the gateway stores each request's due time at acceptance,
//! the inbox orders by deadline within priority and shows it, the first
//! real answer closes the request, both are on the audit log, and the
//! overdue listing shows each principal only what it sent or received.

mod common;

use common::Harness;
use passerelle::audit::event::AuditEvent;
use passerelle::client::Station;
use passerelle::domain::item::SignedItem;
use passerelle::domain::receipt::{Outcome, SignedReceipt};
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

/// A RESTREINT terrorism item on CT-2026-014; `extra` adds header lines
/// (`request = ...`, `in_reply_to = ...`).
fn spec(id: &str, to: &[&str], priority: &str, extra: &str) -> String {
    let to: Vec<String> = to.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        r#"
id = "{id}"
to = [{}]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "{priority}"
{extra}
[label]
level = "RESTREINT"
[[portion]]
text = "Text of {id}."
[portion.label]
level = "RESTREINT"
"#,
        to.join(", ")
    )
}

async fn send(
    station: &Station,
    id: &str,
    to: &[&str],
    priority: &str,
    extra: &str,
) -> SignedReceipt {
    let r = station
        .submit(&signed(station, &spec(id, to, priority, extra)))
        .await
        .unwrap();
    for o in &r.receipt.outcomes {
        assert_eq!(
            o.outcome,
            Outcome::Queued,
            "{id} to {}: {:?}",
            o.recipient,
            o.reasons
        );
    }
    r
}

const DIRECT: &str = r#"request = { accessibility = "direct" }"#;
const INDIRECT: &str = r#"request = { accessibility = "indirect" }"#;

fn reply_to(r: &SignedReceipt) -> String {
    format!("in_reply_to = \"{}\"", r.receipt.item_ref)
}

/// The `item-accepted` entry of `item_ref`.
async fn accepted(h: &Harness, item_ref: &str) -> (Option<i64>, Option<String>) {
    h.audit_events()
        .await
        .into_iter()
        .find_map(|e| match e {
            AuditEvent::ItemAccepted {
                item_ref: r,
                due,
                answers,
                ..
            } if r == item_ref => Some((due, answers)),
            _ => None,
        })
        .expect("an item-accepted entry")
}

#[tokio::test]
async fn the_inbox_orders_requests_by_deadline_within_priority_and_shows_it() {
    let h = Harness::start().await;
    let spoc = h.station("police/spoc");
    let vsse = h.station("vsse/analysis/ct");

    // Accepted in this order; expected in the inbox: FLASH first, then
    // within URGENT the request due in 8 hours, the one due in 3 days,
    // then the URGENT item that asks nothing; ROUTINE last.
    let routine = send(
        &spoc,
        "routine-request",
        &["vsse/analysis/ct"],
        "ROUTINE",
        DIRECT,
    )
    .await;
    let plain = send(&spoc, "urgent-plain", &["vsse/analysis/ct"], "URGENT", "").await;
    let indirect = send(
        &spoc,
        "urgent-indirect",
        &["vsse/analysis/ct"],
        "URGENT",
        INDIRECT,
    )
    .await;
    let direct = send(
        &spoc,
        "urgent-direct",
        &["vsse/analysis/ct"],
        "URGENT",
        DIRECT,
    )
    .await;
    let flash = send(&spoc, "flash-plain", &["vsse/analysis/ct"], "FLASH", "").await;

    let inbox = vsse.inbox(Duration::ZERO).await.unwrap();
    let order: Vec<&str> = inbox.iter().map(|e| e.item_id.as_str()).collect();
    assert_eq!(
        order,
        [
            "flash-plain",
            "urgent-direct",
            "urgent-indirect",
            "urgent-plain",
            "routine-request"
        ]
    );
    let due = |r: &SignedReceipt| {
        inbox
            .iter()
            .find(|e| e.item_ref == r.receipt.item_ref)
            .unwrap()
            .due
    };
    // The due time is the acceptance time plus the deadline of the
    // Directive's defaults (the example policy declares none).
    let at = |r: &SignedReceipt| r.receipt.accepted_at;
    assert_eq!(due(&direct), Some(at(&direct) + 8 * 3_600));
    assert_eq!(due(&indirect), Some(at(&indirect) + 3 * 86_400));
    assert_eq!(due(&routine), Some(at(&routine) + 7 * 86_400));
    assert_eq!(due(&plain), None);
    assert_eq!(due(&flash), None);

    // The due time is on the audit log, in the sender's item-accepted
    // entry; an item that asks nothing has none.
    assert_eq!(
        accepted(&h, &direct.receipt.item_ref).await.0,
        Some(at(&direct) + 8 * 3_600)
    );
    assert_eq!(accepted(&h, &plain.receipt.item_ref).await.0, None);
}

#[tokio::test]
async fn a_policy_deadline_sets_the_stored_due_time() {
    let h = Harness::start().await;
    let purposes = h.path().join("policies/purposes.toml");
    let mut text = std::fs::read_to_string(&purposes).unwrap();
    text.push_str(
        "\n[[deadline]]\npriority = \"URGENT\"\naccessibility = \"direct\"\npurposes = [\"terrorism\"]\nwithin = \"2h\"\n",
    );
    std::fs::write(&purposes, text).unwrap();
    h.running.as_ref().unwrap().reload_policy().await.unwrap();
    let spoc = h.station("police/spoc");
    let vsse = h.station("vsse/analysis/ct");
    let r = send(
        &spoc,
        "urgent-direct",
        &["vsse/analysis/ct"],
        "URGENT",
        DIRECT,
    )
    .await;
    let inbox = vsse.inbox(Duration::ZERO).await.unwrap();
    assert_eq!(inbox[0].due, Some(r.receipt.accepted_at + 2 * 3_600));
}

#[tokio::test]
async fn the_first_real_answer_closes_the_request_and_is_audited() {
    let h = Harness::start().await;
    let spoc = h.station("police/spoc");
    let vsse = h.station("vsse/analysis/ct");
    let ci = h.station("vsse/desk/ci");
    let auditor = h.station("oversight/comite-r");
    let week = Duration::from_secs(8 * 86_400);

    let request = send(&spoc, "req", &["vsse/analysis/ct"], "URGENT", DIRECT).await;
    let listed = |o: &passerelle::api::Overdue| {
        o.requests
            .iter()
            .any(|r| r.item_ref == request.receipt.item_ref)
    };
    assert!(listed(&auditor.overdue(week).await.unwrap()));

    // Not an answer: sent by the asked desk, but not to the asker.
    let aside = send(
        &vsse,
        "aside",
        &["police/djo/ct"],
        "ROUTINE",
        &reply_to(&request),
    )
    .await;
    // Not an answer: sent to the asker, but by a desk that was not asked.
    let stranger = send(
        &ci,
        "stranger",
        &["police/spoc"],
        "ROUTINE",
        &reply_to(&request),
    )
    .await;
    assert_eq!(accepted(&h, &aside.receipt.item_ref).await.1, None);
    assert_eq!(accepted(&h, &stranger.receipt.item_ref).await.1, None);
    assert!(
        listed(&auditor.overdue(week).await.unwrap()),
        "closed by an item that does not answer it"
    );
    let open_due = vsse.inbox(Duration::ZERO).await.unwrap()[0].due;
    assert!(open_due.is_some());

    // The answer: from the asked desk, released to the asker.
    let answer = send(
        &vsse,
        "answer",
        &["police/spoc"],
        "URGENT",
        &reply_to(&request),
    )
    .await;
    assert_eq!(
        accepted(&h, &answer.receipt.item_ref).await.1.as_deref(),
        Some(request.receipt.item_ref.as_str())
    );
    assert!(!listed(&auditor.overdue(week).await.unwrap()));
    let store = h.running.as_ref().unwrap().gateway.store().clone();
    let state = store.request(&request.receipt.item_ref).unwrap().unwrap();
    assert_eq!(state.answered_at, Some(answer.receipt.accepted_at));
    // Still in the asked desk's inbox (it has not acknowledged it), but no
    // longer with a deadline.
    let inbox = vsse.inbox(Duration::ZERO).await.unwrap();
    let entry = inbox
        .iter()
        .find(|e| e.item_ref == request.receipt.item_ref)
        .unwrap();
    assert_eq!(entry.due, None);

    // A second answer is recorded as one, but the request was closed by
    // the first.
    let again = send(
        &vsse,
        "answer-2",
        &["police/spoc"],
        "URGENT",
        &reply_to(&request),
    )
    .await;
    assert_eq!(
        accepted(&h, &again.receipt.item_ref).await.1.as_deref(),
        Some(request.receipt.item_ref.as_str())
    );
    let state = store.request(&request.receipt.item_ref).unwrap().unwrap();
    assert_eq!(state.answered_at, Some(answer.receipt.accepted_at));
}

#[tokio::test]
async fn overdue_shows_each_principal_only_what_it_sent_or_received() {
    let h = Harness::start().await;
    let spoc = h.station("police/spoc");
    let vsse = h.station("vsse/analysis/ct");
    let djo = h.station("police/djo/ct");
    let rabat = h.station("police/lo/rabat");
    let auditor = h.station("oversight/comite-r");

    // FLASH: due within the hour. Asked of two desks.
    let asked = send(
        &vsse,
        "flash-req",
        &["police/spoc", "police/djo/ct"],
        "FLASH",
        DIRECT,
    )
    .await;
    let refs = |o: passerelle::api::Overdue| -> Vec<(String, Vec<String>)> {
        o.requests
            .into_iter()
            .map(|r| {
                (
                    r.item_ref,
                    r.recipients.iter().map(|p| p.to_string()).collect(),
                )
            })
            .collect()
    };
    let two_hours = Duration::from_secs(2 * 3_600);
    let both = vec!["police/djo/ct".to_string(), "police/spoc".to_string()];

    // Nothing is past due yet.
    let now = auditor.overdue(Duration::ZERO).await.unwrap();
    assert!(now.requests.is_empty());
    assert!(now.now >= asked.receipt.accepted_at);

    // Due within two hours: the auditor and the sender see both desks;
    // each desk sees itself only; anyone else sees nothing.
    let it = &asked.receipt.item_ref;
    assert_eq!(
        refs(auditor.overdue(two_hours).await.unwrap()),
        [(it.clone(), both.clone())]
    );
    assert_eq!(
        refs(vsse.overdue(two_hours).await.unwrap()),
        [(it.clone(), both)]
    );
    assert_eq!(
        refs(spoc.overdue(two_hours).await.unwrap()),
        [(it.clone(), vec!["police/spoc".to_string()])]
    );
    assert_eq!(
        refs(djo.overdue(two_hours).await.unwrap()),
        [(it.clone(), vec!["police/djo/ct".to_string()])]
    );
    assert!(rabat.overdue(two_hours).await.unwrap().requests.is_empty());
    let listed = auditor.overdue(two_hours).await.unwrap();
    assert_eq!(listed.requests[0].due, asked.receipt.accepted_at + 3_600);
}

/// A request past due: the gateway is stopped, the request's stored due
/// time is moved two hours back (standing for two hours passing: the
/// gateway has no clock to wind), and the gateway started again on the
/// same store.
#[tokio::test]
async fn a_request_past_due_is_listed_until_a_late_answer_closes_it() {
    let mut h = Harness::start().await;
    let request = send(
        &h.station("police/spoc"),
        "late-req",
        &["vsse/analysis/ct"],
        "FLASH",
        DIRECT,
    )
    .await;
    h.running.take().unwrap().shutdown().await;
    let conn = rusqlite::Connection::open(&h.config.store).unwrap();
    let moved = conn
        .execute("UPDATE requests SET due = due - 7200", [])
        .unwrap();
    assert_eq!(moved, 1);
    drop(conn);
    h.running = Some(passerelle::server::start(&h.config).await.unwrap());
    let vsse = h.station("vsse/analysis/ct");
    let spoc = h.station("police/spoc");

    let due = request.receipt.accepted_at + 3_600 - 7_200;
    let past = spoc.overdue(Duration::ZERO).await.unwrap();
    assert_eq!(past.requests.len(), 1);
    assert_eq!(past.requests[0].item_ref, request.receipt.item_ref);
    assert!(past.requests[0].due == due && due < past.now);
    let inbox = vsse.inbox(Duration::ZERO).await.unwrap();
    assert_eq!(inbox[0].due, Some(due));

    // A late answer still closes it.
    send(
        &vsse,
        "late-answer",
        &["police/spoc"],
        "URGENT",
        &reply_to(&request),
    )
    .await;
    assert!(spoc
        .overdue(Duration::ZERO)
        .await
        .unwrap()
        .requests
        .is_empty());
    let store = h.running.as_ref().unwrap().gateway.store().clone();
    let state = store.request(&request.receipt.item_ref).unwrap().unwrap();
    assert!(state.answered_at.is_some_and(|at| at > state.due));
}
