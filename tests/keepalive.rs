//! Kept-alive connections: a station reuses one connection for its
//! requests, reconnects (resuming its TLS session) when the gateway closed
//! it, and a certificate that expires is refused on a kept or resumed
//! connection as it is on a new one.

mod common;

use common::{item, Harness};
use passerelle::client::{ClientError, Connections};
use passerelle::pki::ClientCertOptions;
use std::time::Duration;
use time::OffsetDateTime;

const RABAT: &str = "police/lo/rabat";
const CT: &str = "vsse/analysis/ct";

#[tokio::test]
async fn a_station_sends_every_request_on_one_connection() {
    let h = Harness::start().await;
    let rabat = h.station(RABAT);
    for n in 0..5 {
        let signed = item(&rabat, &format!("kept-{n}"), &[CT], "one connection");
        rabat.submit(&signed).await.unwrap();
    }
    rabat.inbox(Duration::ZERO).await.unwrap();
    assert_eq!(
        rabat.connections(),
        Connections {
            opened: 1,
            resumed: 0
        }
    );
}

#[tokio::test]
async fn a_station_reconnects_and_resumes_after_an_idle_close() {
    let h = Harness::start_with(|c| c.limits.idle_timeout_seconds = 1).await;
    // No retries of its own: only the link's resend on a new connection
    // may carry the second submission.
    let rabat = h.station(RABAT);
    let first = item(&rabat, "before-idle", &[CT], "first");
    rabat.submit(&first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = item(&rabat, "after-idle", &[CT], "second");
    rabat.submit(&second).await.unwrap();
    assert_eq!(
        rabat.connections(),
        Connections {
            opened: 2,
            resumed: 1
        },
        "the second connection resumes the first one's TLS session"
    );
}

fn is_identity_refusal(r: Result<Vec<passerelle::domain::wire::InboxEntry>, ClientError>) -> bool {
    matches!(r, Err(ClientError::Refused(p)) if p.slug() == "identity-refused")
}

#[tokio::test]
async fn an_expired_certificate_is_refused_on_kept_and_resumed_connections() {
    let h = Harness::start().await;
    let now = OffsetDateTime::now_utc();
    let short = h
        .pki
        .agency("police")
        .unwrap()
        .issue_client(
            "spiffe://police.example/lo/rabat",
            &ClientCertOptions {
                not_before: now - time::Duration::days(1),
                not_after: now + time::Duration::seconds(3),
                ..Default::default()
            },
        )
        .unwrap();
    let rabat = h.station_with(RABAT, &short, "short-lived");
    rabat
        .inbox(Duration::ZERO)
        .await
        .expect("valid for a few more seconds");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    // The connection of the full handshake is still open: refused on it.
    assert!(is_identity_refusal(rabat.inbox(Duration::ZERO).await));
    // That answer closed it; the next connection resumes the session,
    // whose certificate is checked again at the identity step.
    assert!(is_identity_refusal(rabat.inbox(Duration::ZERO).await));
    let c = rabat.connections();
    assert_eq!(c.opened, 2, "{c:?}");
    assert_eq!(
        c.resumed, 1,
        "the refused connection was a resumed one: {c:?}"
    );
}
