//! The operator's metrics endpoint (`[metrics]`), scraped over real
//! traffic: a real gateway, real stations over mTLS, a real scrape over
//! HTTP. Each series the README names moves when its event happens; a
//! principal is a label only when the operator allows it; a listener off
//! loopback is refused unless allowed; the endpoint also answers probes.

mod common;

use std::time::Duration;

use common::{item, raw_client, raw_healthz, Harness};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use passerelle::config::{GatewayConfig, MetricsConfig};

fn metrics_on(principal_labels: bool) -> impl FnOnce(&mut GatewayConfig) {
    move |c: &mut GatewayConfig| {
        c.metrics = Some(MetricsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            allow_non_loopback: false,
            principal_labels,
        });
        // A small request budget for one principal's hammering below.
        c.limits.request_burst_per_principal = 8;
        c.limits.requests_per_principal_per_second = 1;
    }
}

/// GET `path` on the metrics endpoint: status, content type and body.
async fn get(h: &Harness, path: &str) -> (u16, String, String) {
    let addr = h.running.as_ref().unwrap().metrics_addr.unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), send.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

async fn scrape(h: &Harness) -> String {
    let (status, content_type, body) = get(h, "/metrics").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/openmetrics-text"));
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

/// The value of the sample `series` (name and labels exactly as written),
/// or 0 when it is absent (a labelled series appears at its first count).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, v) = l.rsplit_once(' ')?;
            (key == series).then(|| v.parse::<f64>().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_scrape_over_real_traffic_sees_each_series_move() {
    let h = Harness::start_with(metrics_on(false)).await;
    let before = scrape(&h).await;
    let digest = h.running.as_ref().unwrap().live.current().policy_digest();
    assert_eq!(
        value(
            &before,
            &format!("passerelle_policy{{digest=\"{digest}\"}}")
        ),
        1.0
    );
    let entries_before = value(&before, "passerelle_audit_log_entries");
    assert!(entries_before > 0.0, "the start is on the log");

    // An item accepted, then waiting in its recipient's inbox.
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let receipt = rabat
        .submit(&item(&rabat, "m-1", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap();
    let reference = receipt.receipt.item_ref.clone();
    let waiting = scrape(&h).await;
    assert_eq!(
        value(
            &waiting,
            "passerelle_items_accepted_total{priority=\"ROUTINE\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&waiting, "passerelle_inbox_depth{priority=\"ROUTINE\"}"),
        1.0
    );
    assert_eq!(value(&waiting, "passerelle_submit_seconds_count"), 1.0);
    assert!(value(&waiting, "passerelle_decision_seconds_count") >= 1.0);
    assert!(
        waiting.lines().any(|l| l
            .starts_with("passerelle_decisions_total{stage=\"submission\",effect=\"allow\",rule=")),
        "{waiting}"
    );
    assert!(value(&waiting, "passerelle_audit_log_entries") > entries_before);
    // The stations' kept connections.
    assert!(value(&waiting, "passerelle_connections_open") >= 1.0);

    // Delivered and acknowledged: the inbox is empty again.
    vsse.fetch(&reference).await.unwrap();
    vsse.ack(&reference).await.unwrap();
    // A refusal with a problem type: an item that is not the caller's.
    assert!(rabat.fetch(&reference).await.is_err());
    // A handshake without a client certificate.
    let no_cert = raw_client(&h.ca_path(), None, &[&rustls::version::TLS13]);
    assert!(raw_healthz(h.addr(), no_cert).await.is_err());
    // One principal over its request budget.
    let spoc = h.station("police/spoc");
    for _ in 0..12 {
        let _ = spoc
            .request(hyper::Method::GET, "/healthz", None, Duration::ZERO)
            .await;
    }
    // A reload, accepted.
    h.running.as_ref().unwrap().reload_policy().await.unwrap();

    let after = scrape(&h).await;
    // Every series (a witness's refusals appear at the first one).
    for name in [
        "passerelle_items_accepted",
        "passerelle_refusals",
        "passerelle_decisions",
        "passerelle_deliveries",
        "passerelle_acks",
        "passerelle_expiries",
        "passerelle_decision_seconds",
        "passerelle_submit_seconds",
        "passerelle_handshakes_refused",
        "passerelle_rate_limited",
        "passerelle_connections_open",
        "passerelle_long_polls_waiting",
        "passerelle_inbox_depth",
        "passerelle_inbox_oldest_unacked_seconds",
        "passerelle_requests_overdue",
        "passerelle_audit_log_entries",
        "passerelle_audit_checkpoint_age_seconds",
        "passerelle_policy",
        "passerelle_reloads",
    ] {
        assert!(
            after.contains(&format!("# TYPE {name} ")),
            "{name} is not exported:\n{after}"
        );
    }
    assert_eq!(value(&after, "passerelle_deliveries_total"), 1.0);
    assert_eq!(value(&after, "passerelle_acks_total"), 1.0);
    assert_eq!(
        value(&after, "passerelle_inbox_depth{priority=\"ROUTINE\"}"),
        0.0
    );
    assert!(
        after.lines().any(|l| l
            .starts_with("passerelle_decisions_total{stage=\"delivery\",effect=\"allow\",rule=")),
        "{after}"
    );
    assert_eq!(
        value(&after, "passerelle_refusals_total{problem=\"not-found\"}"),
        1.0
    );
    assert!(
        value(
            &after,
            "passerelle_refusals_total{problem=\"rate-limited\"}"
        ) >= 1.0
    );
    assert!(
        value(
            &after,
            "passerelle_rate_limited_total{cause=\"request-rate\"}"
        ) >= 1.0
    );
    assert_eq!(
        value(
            &after,
            "passerelle_handshakes_refused_total{cause=\"handshake-failed\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&after, "passerelle_reloads_total{outcome=\"accepted\"}"),
        1.0
    );
    // Principals are not labels unless the operator allows it.
    assert!(!after.contains("principal="), "{after}");
    for p in ["police/lo/rabat", "vsse/analysis/ct", "police/spoc"] {
        assert!(!after.contains(p), "{p} appears:\n{after}");
    }
    // Nothing of the item: its reference or id.
    assert!(!after.contains(&reference) && !after.contains("m-1"));
}

#[tokio::test]
async fn a_principal_is_a_label_when_the_operator_allows_it() {
    let h = Harness::start_with(metrics_on(true)).await;
    let rabat = h.station("police/lo/rabat");
    rabat
        .submit(&item(&rabat, "m-2", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap();
    let text = scrape(&h).await;
    assert_eq!(
        value(
            &text,
            "passerelle_items_accepted_total{priority=\"ROUTINE\",principal=\"police/lo/rabat\"}"
        ),
        1.0,
        "{text}"
    );
}

#[tokio::test]
async fn the_endpoint_answers_probes_without_a_client_certificate() {
    let h = Harness::start_with(metrics_on(false)).await;
    assert_eq!(get(&h, "/healthz").await.0, 200);
    let (status, _, body) = get(&h, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    // Not ready while another process holds the store's write lock.
    let blocker = rusqlite::Connection::open(&h.config.store).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let (status, _, body) = get(&h, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store") && !body.contains("locked"), "{body}");
    blocker.execute_batch("ROLLBACK;").unwrap();
    assert_eq!(get(&h, "/nothing").await.0, 404);
}

#[tokio::test]
async fn a_metrics_listener_off_loopback_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
    let path = dir.path().join("gateway.toml");
    let plain = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{plain}\n[metrics]\nlisten = \"0.0.0.0:0\"\n"),
    )
    .unwrap();
    let err = GatewayConfig::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("[metrics]") && err.contains("loopback"),
        "{err}"
    );
    // A config built otherwise is refused at start, before anything opens.
    std::fs::write(&path, &plain).unwrap();
    let mut config = GatewayConfig::load(&path).unwrap();
    config.metrics = Some(MetricsConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        allow_non_loopback: false,
        principal_labels: false,
    });
    let refused = passerelle::server::start(&config).await;
    assert!(
        matches!(refused, Err(passerelle::server::StartError::Metrics(_))),
        "a non-loopback metrics listener must be refused"
    );
    // Explicitly allowed: accepted.
    std::fs::write(
        &path,
        format!("{plain}\n[metrics]\nlisten = \"0.0.0.0:0\"\nallow_non_loopback = true\n"),
    )
    .unwrap();
    assert!(GatewayConfig::load(&path).is_ok());
}
