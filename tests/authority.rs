//! Authority comes from the policy in force: a valid certificate for a
//! principal the policy does not name reaches nothing but `/healthz`, even
//! on a connection opened before a reload removed it; the policy says who
//! may send (auditors send nothing by default) and who reads every audit
//! proof; `gateway.toml` no longer says it.

mod common;

use common::{item, raw_client, Harness};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use passerelle::api::problem::Problem;
use passerelle::audit::event::{AuditEvent, RefusedSubject};
use passerelle::client::Station;
use passerelle::domain::bytes::to_cbor;
use passerelle::domain::principal::PrincipalId;
use passerelle::domain::receipt::item_ref;
use passerelle::pki::ClientCertOptions;
use std::time::Duration;

async fn reload(h: &Harness) {
    h.running.as_ref().unwrap().reload_policy().await.unwrap();
}

/// Sends one request and returns the status and, for refusals, the problem.
async fn call(
    station: &Station,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> (StatusCode, Option<Problem>) {
    let a = station
        .request(method, path, body, Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let problem = a
        .content_type
        .starts_with("application/problem+json")
        .then(|| serde_json::from_slice(&a.body).unwrap());
    (a.status, problem)
}

/// A station for `police/lo/lisbon`: its certificate is issued by the
/// police CA and valid, but no policy names it.
fn stranger(h: &Harness) -> Station {
    let issued = h
        .pki
        .agency("police")
        .unwrap()
        .issue_client(
            "spiffe://police.example/lo/lisbon",
            &ClientCertOptions::default(),
        )
        .unwrap();
    let station = h.station_with("police/lo/rabat", &issued, "stranger");
    let mut config = station.config().clone();
    config.principal = "police/lo/lisbon".parse().unwrap();
    Station::new(config).unwrap()
}

#[tokio::test]
async fn a_principal_the_policy_does_not_know_reaches_no_endpoint_but_healthz() {
    let h = Harness::start().await;
    // Something for it to ask about: an item, a checkpoint over it.
    let rabat = h.station("police/lo/rabat");
    let receipt = rabat
        .submit(&item(&rabat, "for-vsse", &["vsse/analysis/ct"], "x"))
        .await
        .unwrap()
        .receipt;
    let lisbon = stranger(&h);
    let signed = to_cbor(&item(&lisbon, "hello", &["vsse/analysis/ct"], "x"));
    let r = &receipt.item_ref;
    let cases: Vec<(Method, String, Option<Vec<u8>>)> = vec![
        (Method::POST, "/v1/items".into(), Some(signed)),
        (Method::GET, "/v1/inbox".into(), None),
        (Method::GET, "/v1/inbox?wait=30".into(), None),
        (Method::GET, format!("/v1/items/{r}"), None),
        (Method::POST, format!("/v1/items/{r}/ack"), None),
        (Method::GET, format!("/v1/receipts/{r}"), None),
        (Method::GET, "/v1/audit/checkpoint".into(), None),
        (Method::GET, "/v1/audit/inclusion?index=0".into(), None),
        (
            Method::GET,
            "/v1/audit/consistency?old=0&new=1".into(),
            None,
        ),
        (Method::GET, "/v1/no-such-thing".into(), None),
    ];
    let size_before = h.running.as_ref().unwrap().gateway.store().size().unwrap();
    for (method, path, body) in cases {
        let (status, problem) = call(&lisbon, method.clone(), &path, body).await;
        let problem = problem.unwrap_or_else(|| panic!("{method} {path}: {status}, no problem"));
        assert_eq!(
            (status, problem.slug()),
            (StatusCode::FORBIDDEN, "unknown-principal"),
            "{method} {path}: {problem:?}"
        );
        assert!(problem.detail.contains("police/lo/lisbon"), "{problem:?}");
    }
    // /healthz still says who the gateway thinks it is.
    let a = lisbon
        .request(Method::GET, "/healthz", None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    let health: serde_json::Value = passerelle::domain::bytes::from_cbor(&a.body).unwrap();
    assert_eq!(health["principal"], "police/lo/lisbon", "{health}");
    // Nothing it asked for happened: the item is still in VSSE's inbox, no
    // submission, proof or item request of its own is on the log, and the
    // refusals are, as refused connections naming it.
    let vsse = h.station("vsse/analysis/ct");
    assert_eq!(vsse.inbox(Duration::ZERO).await.unwrap().len(), 1);
    let events = h.audit_events().await;
    let lisbon_id = PrincipalId::new("police/lo/lisbon").unwrap();
    let lisbon = RefusedSubject::Principal(lisbon_id.clone());
    assert!(!events.iter().any(|e| matches!(e,
        AuditEvent::Refused { subject, cause, .. }
            if *subject == lisbon && cause != "unknown-principal")));
    assert!(!events
        .iter()
        .any(|e| matches!(e, AuditEvent::ItemAccepted { sender, .. } if *sender == lisbon_id)));
    let refusals = events[size_before as usize..]
        .iter()
        .filter(|e| {
            matches!(e,
            AuditEvent::Refused { subject, cause, .. }
                if *subject == lisbon && cause == "unknown-principal")
        })
        .count();
    assert!(refusals >= 1, "the refusals are on the audit log");
}

/// A TLS connection to the gateway presenting `principal`'s certificate
/// from the example PKI.
async fn connect_as(
    h: &Harness,
    principal: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let dir = h.path().join(passerelle::pki::station_dir(principal));
    let config = raw_client(
        &h.ca_path(),
        Some((&dir.join("cert.pem"), &dir.join("key.pem"))),
        &[&rustls::version::TLS13],
    );
    let tcp = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap()
}

/// One HTTP/1.1 connection kept open across requests.
struct OpenConnection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    _conn: tokio::task::JoinHandle<()>,
}

impl OpenConnection {
    async fn open(h: &Harness, principal: &str) -> OpenConnection {
        let tls = connect_as(h, principal).await;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        OpenConnection {
            sender,
            _conn: conn,
        }
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String) {
        self.sender
            .ready()
            .await
            .expect("the connection is still open");
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("host", "localhost")
            .header("accept", "application/json")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).to_string())
    }
}

#[tokio::test]
async fn a_principal_removed_by_a_reload_is_refused_on_a_connection_it_already_had() {
    let h = Harness::start().await;
    let mut ankara = OpenConnection::open(&h, "police/lo/ankara").await;
    assert_eq!(ankara.get("/v1/inbox").await.0, StatusCode::OK);

    // The security officer closes the Ankara post.
    h.edit_policy(
        "principals.toml",
        "id = \"police/lo/ankara\"",
        "id = \"police/lo/istanbul\"",
    );
    reload(&h).await;

    let (status, body) = ankara.get("/v1/inbox").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("unknown-principal"), "{body}");
    let (status, body) = ankara.get("/v1/audit/checkpoint").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // It may still ask who the gateway thinks it is.
    let (status, body) = ankara.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("police/lo/ankara"), "{body}");
    // Others are served as before.
    h.station("police/lo/rabat")
        .inbox(Duration::ZERO)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_auditor_may_not_send_unless_the_policy_says_so() {
    let h = Harness::start().await;
    let auditor = h.station("oversight/comite-r");
    let signed = item(&auditor, "review-1", &["vsse/analysis/ct"], "x");
    let (status, problem) = call(&auditor, Method::POST, "/v1/items", Some(to_cbor(&signed))).await;
    let problem = problem.unwrap();
    assert_eq!(
        (status, problem.slug()),
        (StatusCode::FORBIDDEN, "may-not-send"),
        "{problem:?}"
    );
    // Nothing was stored; the refusal is on the log.
    let comite = PrincipalId::new("oversight/comite-r").unwrap();
    let reference = item_ref(&comite, "review-1");
    let store = h.running.as_ref().unwrap().gateway.store().clone();
    assert!(store.receipt(&comite, &reference).unwrap().is_none());
    assert!(h
        .station("vsse/analysis/ct")
        .inbox(Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
    let events = h.audit_events().await;
    assert!(!events
        .iter()
        .any(|e| matches!(e, AuditEvent::ItemAccepted { .. })));
    assert!(events.iter().any(|e| matches!(e,
        AuditEvent::Refused { subject: RefusedSubject::Principal(caller), cause, .. }
            if *caller == comite && cause == "submission:may-not-send")));
    // Reading is still allowed.
    assert_eq!(
        call(&auditor, Method::GET, "/v1/audit/checkpoint", None)
            .await
            .0,
        StatusCode::OK
    );

    // The policy can let it send.
    h.edit_policy("principals.toml", "may_send = false", "may_send = true");
    reload(&h).await;
    auditor.submit(&signed).await.unwrap();

    // And can forbid a station to.
    h.edit_policy(
        "principals.toml",
        "role = \"liaison-officer\"",
        "role = \"liaison-officer\"\nmay_send = false",
    );
    reload(&h).await;
    let rabat = h.station("police/lo/rabat");
    let (status, problem) = call(
        &rabat,
        Method::POST,
        "/v1/items",
        Some(to_cbor(&item(&rabat, "r-1", &["vsse/analysis/ct"], "x"))),
    )
    .await;
    assert_eq!(
        (status, problem.unwrap().slug()),
        (StatusCode::FORBIDDEN, "may-not-send")
    );
}

#[tokio::test]
async fn the_policy_says_who_reads_every_audit_proof() {
    let h = Harness::start().await;
    let spoc = h.station("police/spoc");
    let auditor = h.station("oversight/comite-r");
    // Entry 0 (the gateway's start) concerns no principal.
    let start = "/v1/audit/inclusion?index=0";
    assert_eq!(
        call(&auditor, Method::GET, start, None).await.0,
        StatusCode::OK
    );
    // Not its entry: answered as an index that does not exist.
    assert_eq!(
        call(&spoc, Method::GET, start, None).await.0,
        StatusCode::BAD_REQUEST
    );

    // The policy gives Spoc the whole log and takes it from the committee.
    h.edit_policy("principals.toml", "audit = \"all\"", "audit = \"own\"");
    h.edit_policy(
        "principals.toml",
        "role = \"spoc\"",
        "role = \"spoc\"\naudit = \"all\"",
    );
    reload(&h).await;
    assert_eq!(
        call(&spoc, Method::GET, start, None).await.0,
        StatusCode::OK
    );
    let (status, problem) = call(&auditor, Method::GET, start, None).await;
    assert_eq!(
        (status, problem.unwrap().slug()),
        (StatusCode::BAD_REQUEST, "bad-proof-request")
    );
    // A principal of the same agency as Spoc, without the right, still
    // reads only its own.
    let rabat = h.station("police/lo/rabat");
    assert_eq!(
        call(&rabat, Method::GET, start, None).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn gateway_toml_no_longer_says_who_audits() {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
    let path = dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen(
            "[audit]\n",
            "[audit]\nauditor_agencies = [\"oversight\"]\n",
            1,
        ),
    )
    .unwrap();
    let err = passerelle::config::GatewayConfig::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("auditor_agencies is no longer read") && err.contains("audit = \"all\""),
        "{err}"
    );
}

/// Submits `body` as `principal` in two halves, calling `between` once the
/// first half is sent; returns the status line and the body of the answer.
async fn submit_in_two_halves(
    h: &Harness,
    principal: &str,
    body: &[u8],
    between: impl std::future::Future<Output = ()>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = connect_as(h, principal).await;
    let head = format!(
        "POST /v1/items HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/cbor\r\naccept: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();
    between.await;
    tls.write_all(rest).await.unwrap();
    tls.flush().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut out))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn a_request_keeps_the_policy_it_started_with_across_a_reload() {
    let h = Harness::start().await;
    let ankara = h.station("police/lo/ankara");
    let present = "id = \"police/lo/ankara\"";
    let closed = "id = \"police/lo/istanbul\"";
    // The reload must land while the submission's body is on its way; if
    // it lands before the gateway read the request's head, the request is
    // (rightly) refused as unknown-principal: try again, a bounded number
    // of times, waiting longer each time.
    for attempt in 1..=5u64 {
        let signed = to_cbor(&item(
            &ankara,
            &format!("late-{attempt}"),
            &["vsse/analysis/ct"],
            "x",
        ));
        let before = h.running.as_ref().unwrap().live.current().policy_digest();
        let answer = submit_in_two_halves(&h, "police/lo/ankara", &signed, async {
            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            h.edit_policy("principals.toml", present, closed);
            reload(&h).await;
        })
        .await;
        let after = h.running.as_ref().unwrap().live.current().policy_digest();
        assert_ne!(before, after, "the reload took effect");
        if answer.starts_with("HTTP/1.1 403") && answer.contains("unknown-principal") {
            h.edit_policy("principals.toml", closed, present);
            reload(&h).await;
            continue;
        }
        // Accepted under the policy in force when the request started, and
        // the receipt says which.
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        assert!(answer.contains(&before), "{answer}");
        // A new request is refused under the new policy.
        let again = to_cbor(&item(&ankara, "later", &["vsse/analysis/ct"], "x"));
        let (status, problem) = call(&ankara, Method::POST, "/v1/items", Some(again)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem:?}");
        return;
    }
    panic!("the reload never landed while a body was on its way");
}
