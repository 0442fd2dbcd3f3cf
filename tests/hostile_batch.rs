//! Batched delivery (`GET /v1/inbox?fetch=N`, `POST /v1/acks`) probed as
//! a careless or compromised station and a curious recipient would, over
//! the real gateway: a million references in one acknowledgement, query
//! strings nobody writes by hand, the same reference many times, a sender
//! acknowledging its own item, and whether the operator's counters see a
//! batched acknowledgement as they see a single one.

mod common;

use std::time::Duration;

use common::{item, Harness};
use hyper::Method;
use passerelle::audit::event::AuditEvent;
use passerelle::config::{GatewayConfig, MetricsConfig};
use passerelle::domain::wire::{AckBatch, Problem, MAX_BATCH};

const VSSE: &str = "vsse/analysis/ct";
const RABAT: &str = "police/lo/rabat";
const NEVER: &str = "0123456789abcdef0123456789abcdef";

/// `{"refs": [n empty strings]}` in CBOR: one byte per reference, with
/// the array's length given up front (`definite`) or left open.
fn cbor_refs(n: u32, definite: bool) -> Vec<u8> {
    let mut body = vec![0xa1, 0x64, b'r', b'e', b'f', b's'];
    if definite {
        body.push(0x9a);
        body.extend_from_slice(&n.to_be_bytes());
    } else {
        body.push(0x9f);
    }
    body.resize(body.len() + n as usize, 0x60);
    if !definite {
        body.push(0xff);
    }
    body
}

/// A million references cost the sender a byte each; kept as a million
/// `String`s they would cost the gateway dozens of bytes each before the
/// count is even checked. The decoder keeps one more than a batch takes
/// and the gateway answers as for 101.
#[tokio::test]
async fn a_million_references_are_refused_without_being_kept() {
    for definite in [true, false] {
        let bytes = cbor_refs(1_000_000, definite);
        let decoded = passerelle::domain::decode::cbor::<AckBatch>(&bytes).unwrap();
        assert_eq!(decoded.refs.len(), MAX_BATCH as usize + 1, "{definite}");
    }
    let json = format!("{{\"refs\":[{}\"\"]}}", "\"\",".repeat(1_000_000));
    let decoded = passerelle::domain::decode::json::<AckBatch>(json.as_bytes()).unwrap();
    assert_eq!(decoded.refs.len(), MAX_BATCH as usize + 1);
    // Exactly a batch is kept whole.
    let decoded =
        passerelle::domain::decode::cbor::<AckBatch>(&cbor_refs(MAX_BATCH, true)).unwrap();
    assert_eq!(decoded.refs.len(), MAX_BATCH as usize);

    let h = Harness::start().await;
    let vsse = h.station(VSSE);
    let answer = vsse
        .request(
            Method::POST,
            "/v1/acks",
            Some(cbor_refs(1_000_000, true)),
            Duration::ZERO,
        )
        .await
        .unwrap();
    let p: Problem = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!((p.status, p.slug()), (400, "bad-batch"));
    // Nothing was acknowledged, nothing counted as another's reference.
    let events = h.audit_events().await;
    assert!(!events.iter().any(|e| matches!(
        e,
        AuditEvent::Acknowledged { .. } | AuditEvent::Refused { .. }
    )));
}

/// Query strings a client library would never write: each is a 400
/// `bad-query` or a batch as asked, never a 500, a hang or a batch larger
/// than [`MAX_BATCH`].
#[tokio::test]
async fn odd_fetch_queries_are_refused_or_read_strictly() {
    let h = Harness::start().await;
    let rabat = h.station(RABAT);
    let vsse = h.station(VSSE);
    for i in 0..3 {
        rabat
            .submit(&item(&rabat, &format!("q-{i}"), &[VSSE], "query"))
            .await
            .unwrap();
    }
    for path in [
        "/v1/inbox?fetch=1&fetch=100",
        "/v1/inbox?fetch=100&fetch=1",
        "/v1/inbox?fetch=",
        "/v1/inbox?fetch=1e3",
        "/v1/inbox?fetch=0x10",
        "/v1/inbox?fetch=1.0",
        "/v1/inbox?fetch=%31%00",
        "/v1/inbox?fetch=18446744073709551616",
        "/v1/inbox?fetch=4294967297",
        "/v1/inbox?fetch=%FF",
        "/v1/inbox?fetch=1&wait=-1",
        "/v1/inbox?fetch=1&wait=18446744073709551616",
    ] {
        let answer = vsse
            .request(Method::GET, path, None, Duration::ZERO)
            .await
            .unwrap();
        let p: Problem = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|_| panic!("{path}: {}", answer.status));
        assert_eq!((p.status, p.slug()), (400, "bad-query"), "{path}");
    }
    // Read as the number it spells; the longest wait there is is the
    // gateway's own bound, and with items waiting there is no wait at all.
    let answer = vsse
        .request(
            Method::GET,
            "/v1/inbox?fetch=%2B1&wait=18446744073709551615",
            None,
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(answer.status.as_u16(), 200);
    let fetched: passerelle::domain::wire::Fetched =
        passerelle::domain::bytes::from_cbor(&answer.body).unwrap();
    assert_eq!(fetched.items.len(), 1, "fetch=+1 is one item");
}

/// The same reference a hundred times is one acknowledgement on the audit
/// log; a reference to an item the caller sent, or one never made, gets
/// the answer a single acknowledgement gets for another station's item:
/// a sender learns nothing of its recipients' inboxes from a batch.
#[tokio::test]
async fn repeated_and_foreign_references_in_a_batch_ack_say_nothing_new() {
    let h = Harness::start().await;
    let rabat = h.station(RABAT);
    let vsse = h.station(VSSE);
    let mine = rabat
        .submit(&item(&rabat, "dup-0", &[VSSE], "dup"))
        .await
        .unwrap()
        .receipt
        .item_ref;

    // The sender acknowledging the item it sent, before and after its
    // recipient did: as an unknown reference, both times.
    let never = rabat.ack_batch(&[NEVER.to_string()]).await.unwrap();
    let unknown = never[0].problem.clone().expect("refused");
    let before = rabat.ack_batch(std::slice::from_ref(&mine)).await.unwrap();
    assert_eq!(before[0].status, "refused");
    assert_eq!(before[0].problem.as_ref(), Some(&unknown));

    let results = vsse
        .ack_batch(&vec![mine.clone(); MAX_BATCH as usize])
        .await
        .unwrap();
    assert_eq!(results[0].status, "acked");
    assert!(results[1..].iter().all(|r| r.status == "already-acked"));

    let after = rabat.ack_batch(std::slice::from_ref(&mine)).await.unwrap();
    assert_eq!(after[0].problem.as_ref(), Some(&unknown));

    let events = h.audit_events().await;
    let acks = events
        .iter()
        .filter(|e| matches!(e, AuditEvent::Acknowledged { item_ref, .. } if *item_ref == mine))
        .count();
    assert_eq!(acks, 1, "one acknowledgement, however often repeated");
    // The sender's attempts are counted as a single ack's would be.
    let counted: u64 = events
        .iter()
        .filter_map(|e| match e {
            AuditEvent::Refused { cause, count, .. } if cause == "not-yours-to-ack" => Some(*count),
            _ => None,
        })
        .sum();
    assert_eq!(counted, 3);
}

fn with_metrics(c: &mut GatewayConfig) {
    c.metrics = Some(MetricsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        allow_non_loopback: false,
        principal_labels: false,
    });
}

/// The value of `series` on the metrics endpoint (0 when absent).
async fn metric(h: &Harness, series: &str) -> f64 {
    use http_body_util::{BodyExt, Empty};
    let addr = h.running.as_ref().unwrap().metrics_addr.unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Empty<hyper::body::Bytes>>(
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get("/metrics")
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), send.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .find_map(|l| {
            let (key, v) = l.rsplit_once(' ')?;
            (key == series).then(|| v.parse::<f64>().unwrap())
        })
        .unwrap_or(0.0)
}

/// An operator alerting on acknowledgements falling behind deliveries
/// must see a batched acknowledgement as a single one: otherwise every
/// station that batches looks as if it never acknowledged.
#[tokio::test]
async fn batched_acknowledgements_are_counted_as_single_ones_are() {
    let h = Harness::start_with(with_metrics).await;
    let rabat = h.station(RABAT);
    let vsse = h.station(VSSE);
    let mut refs = Vec::new();
    for i in 0..3 {
        let signed = item(&rabat, &format!("m-{i}"), &[VSSE], "metrics");
        refs.push(rabat.submit(&signed).await.unwrap().receipt.item_ref);
    }
    let fetched = vsse.fetch_batch(Duration::ZERO, 10).await.unwrap();
    assert_eq!(fetched.items.len(), 3);
    vsse.ack(&refs[0]).await.unwrap();
    let results = vsse.ack_batch(&refs).await.unwrap();
    assert_eq!(results[0].status, "already-acked");
    assert_eq!(metric(&h, "passerelle_deliveries_total").await, 3.0);
    assert_eq!(
        metric(&h, "passerelle_acks_total").await,
        3.0,
        "one single and two batched acknowledgements, the repeat not counted"
    );
}
