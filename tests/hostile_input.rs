//! Hostile input at the edge: oversized fields, malformed references and
//! bodies, labels that do not fit the scheme, media types that are not ours.
//! Each is refused with a short problem document that never repeats the
//! input, nothing is stored, and the audit log stays exportable.

mod common;

use common::{item, Harness};
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use passerelle::api::problem::Problem;
use passerelle::domain::bytes::to_cbor;
use passerelle::domain::item::SignedItem;
use passerelle::domain::label::Evaluation;
use passerelle::gateway::unix_now;
use passerelle::spec::ItemSpec;
use std::time::Duration;

/// Longest problem detail any of these refusals may have.
const SHORT: usize = 1024;

const BASE_SPEC: &str = r#"
id = "hostile"
to = ["vsse/analysis/ct"]
purpose = "terrorism"
cases = ["CT-2026-014"]
[label]
level = "RESTREINT"
[[portion]]
text = "t"
[portion.label]
level = "RESTREINT"
"#;

fn spec(id: &str) -> ItemSpec {
    let mut s = ItemSpec::parse(BASE_SPEC).unwrap();
    s.id = Some(id.to_string());
    s
}

fn sign(station: &passerelle::client::Station, spec: &ItemSpec) -> SignedItem {
    spec.sign(
        station.signing_key(),
        &station.config().principal,
        unix_now(),
    )
}

/// One request on a fresh connection as `principal`, with the content type
/// given (or none): the station client always says `application/cbor`.
async fn raw_request(
    h: &Harness,
    principal: &str,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String, Vec<u8>) {
    let dir = h.path().join(passerelle::pki::station_dir(principal));
    let tls = common::raw_client(
        &h.ca_path(),
        Some((&dir.join("cert.pem"), &dir.join("key.pem"))),
        &[&rustls::version::TLS13],
    );
    let config = h.client_config(principal);
    let work = async {
        let tcp = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(config.server_name.clone()).unwrap();
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        let conn = tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, config.server_name.as_str())
            .header(hyper::header::ACCEPT, "application/cbor");
        if let Some(ct) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, ct);
        }
        let resp = sender
            .send_request(req.body(Full::new(bytes::Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        conn.abort();
        (status, ct, body)
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .expect("the gateway answered in time")
}

/// The problem document of a refusal, checked to be short and clean.
fn problem(status: StatusCode, content_type: &str, body: &[u8]) -> Problem {
    assert!(
        content_type.starts_with("application/problem+json"),
        "refusals are problem documents, got {status} {content_type}"
    );
    let p: Problem = serde_json::from_slice(body).unwrap();
    assert_eq!(p.status, status.as_u16());
    assert_clean(&p);
    p
}

/// A detail is short and shows no Rust debug formatting.
fn assert_clean(p: &Problem) {
    assert!(
        p.detail.len() <= SHORT,
        "a detail of {} bytes: {}…",
        p.detail.len(),
        &p.detail[..200.min(p.detail.len())]
    );
    for debug in ["{", "}", "Core(", "Eof", "Custom(", "Some("] {
        assert!(
            !p.detail.contains(debug),
            "debug text {debug:?} in the detail {:?}",
            p.detail
        );
    }
}

async fn submit_refused(station: &passerelle::client::Station, item: &SignedItem) -> Problem {
    let answer = station
        .request(
            Method::POST,
            "/v1/items",
            Some(to_cbor(item)),
            Duration::ZERO,
        )
        .await
        .unwrap();
    problem(answer.status, &answer.content_type, &answer.body)
}

/// The three requests that each made the audit log unexportable, then an
/// export that must succeed.
#[tokio::test]
async fn oversized_input_is_refused_and_the_log_stays_exportable() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");

    // An item whose evaluation grade is 70 KB: refused at the edge, naming
    // the field, without repeating it.
    let mut s = spec("big-evaluation");
    s.label.evaluation = Some(Evaluation {
        grade: "A".repeat(70_000),
        system: "6x6".into(),
    });
    let p = submit_refused(&rabat, &sign(&rabat, &s)).await;
    assert_eq!((p.status, p.slug()), (400, "invalid-item"), "{p:?}");
    assert!(p.detail.contains("label.evaluation.grade"), "{}", p.detail);
    assert!(!p.detail.contains("AAAAAAAA"), "{}", p.detail);

    // The same with an evaluation system of 100 KB (its value was echoed).
    let mut s = spec("big-system");
    s.portions[0].label.evaluation = Some(Evaluation {
        grade: "B2".into(),
        system: "x".repeat(100_000),
    });
    let p = submit_refused(&rabat, &sign(&rabat, &s)).await;
    assert_eq!((p.status, p.slug()), (400, "invalid-item"), "{p:?}");
    assert!(
        p.detail.contains("portions[0].label.evaluation.system"),
        "{}",
        p.detail
    );

    // A 65,500-character item reference, from a station of the policy and
    // from a valid certificate the policy does not know: answered exactly
    // as a reference that does not exist, never echoed.
    let long = format!("/v1/items/{}", "a".repeat(65_500));
    let missing = format!("/v1/items/{}", "0".repeat(32));
    let lisbon = common::stranger(&h, "police/lo/lisbon");
    for station in [&rabat, &lisbon] {
        for (long, missing) in [
            (long.clone(), missing.clone()),
            (format!("{long}/ack"), format!("{missing}/ack")),
            (
                long.replace("/v1/items/", "/v1/receipts/"),
                missing.replace("/v1/items/", "/v1/receipts/"),
            ),
        ] {
            let method = if long.ends_with("/ack") {
                Method::POST
            } else {
                Method::GET
            };
            let a = station
                .request(method.clone(), &long, None, Duration::ZERO)
                .await
                .unwrap();
            let b = station
                .request(method, &missing, None, Duration::ZERO)
                .await
                .unwrap();
            assert_eq!(a.status, b.status, "{long:.40}");
            assert_eq!(a.body, b.body, "{long:.40}");
            let p = problem(a.status, &a.content_type, &a.body);
            assert!(!p.detail.contains("aaaaaaaa"));
        }
    }
    let upper = format!("/v1/items/{}", "A".repeat(32));
    let a = rabat
        .request(Method::GET, &upper, None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "upper-case hex is not a ref"
    );

    // A malformed JSON body holding a 1 MB string: a short detail that
    // says where and what was expected, without the string.
    let huge = "x".repeat(1_000_000);
    for body in [
        format!(r#"{{"envelope": "AAAA", "portions": "{huge}"}}"#),
        format!(r#"{{"envelope": "AAAA", "portions": [{{"body": "{huge}"#),
        format!(r#"["{huge}"]"#),
    ] {
        let (status, ct, body) = raw_request(
            &h,
            "police/lo/rabat",
            Method::POST,
            "/v1/items",
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
        let p = problem(status, &ct, &body);
        assert_eq!((p.status, p.slug()), (400, "malformed-body"), "{p:?}");
        assert!(!p.detail.contains("xxxxxxxx"), "{}", p.detail);
    }

    // A 60 KB content type is neither echoed nor accepted.
    let ct = format!("application/{}", "y".repeat(60_000));
    let (status, ct, body) = raw_request(
        &h,
        "police/lo/rabat",
        Method::POST,
        "/v1/items",
        Some(&ct),
        to_cbor(&item(&rabat, "ct", &["vsse/analysis/ct"], "t")),
    )
    .await;
    let p = problem(status, &ct, &body);
    assert_eq!((p.status, p.slug()), (415, "unsupported-media-type"));
    assert!(!p.detail.contains("yyyyyyyy"), "{}", p.detail);

    // Nothing was delivered, and the log exports.
    assert!(vsse.inbox(Duration::ZERO).await.unwrap().is_empty());
    let gateway = h.running.as_ref().unwrap().gateway.clone();
    gateway.checkpoint().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let summary = passerelle::export::export(gateway.store().as_ref(), &out.path().join("x"))
        .expect("the audit log exports after hostile input");
    assert!(summary.size > 0);
}

#[tokio::test]
async fn labels_that_do_not_fit_the_scheme_are_refused_before_storing() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");

    // A level that is not in the scheme.
    let mut s = spec("top");
    s.label.level = "TOP".into();
    let p = submit_refused(&rabat, &sign(&rabat, &s)).await;
    assert_eq!((p.status, p.slug()), (400, "invalid-item"), "{p:?}");
    assert!(p.detail.contains("label.level"), "{}", p.detail);
    assert!(p.detail.contains("\"TOP\""), "{}", p.detail);
    assert!(
        p.detail.contains("SECRET") && p.detail.contains("RESTREINT"),
        "the allowed levels are named: {}",
        p.detail
    );

    // A portion's level not in the scheme.
    let mut s = spec("top-portion");
    s.portions[0].label.level = "TOP".into();
    let p = submit_refused(&rabat, &sign(&rabat, &s)).await;
    assert_eq!((p.status, p.slug()), (400, "invalid-item"), "{p:?}");
    assert!(p.detail.contains("portions[0].label.level"), "{}", p.detail);

    // An item label that does not dominate a portion's label.
    let mut s = spec("low-item");
    s.portions[0].label.level = "SECRET".into();
    let p = submit_refused(&rabat, &sign(&rabat, &s)).await;
    assert_eq!((p.status, p.slug()), (400, "invalid-item"), "{p:?}");
    assert!(p.detail.contains("portions[0].label"), "{}", p.detail);
    assert!(p.detail.contains("dominate"), "{}", p.detail);

    // A caveat the policy does not declare.
    let mut s = spec("caveat");
    s.label.caveats.insert("NOFORN".into());
    s.portions[0].label.caveats.insert("NOFORN".into());
    let p = submit_refused(&rabat, &sign(&rabat, &s)).await;
    assert_eq!((p.status, p.slug()), (400, "invalid-item"), "{p:?}");
    assert!(p.detail.contains("label.caveats"), "{}", p.detail);
    assert!(p.detail.contains("HUMINT"), "allowed caveats: {}", p.detail);

    // An originating agency that is not one of the gateway's.
    let mut s = spec("origin");
    s.label.originator = Some(passerelle::domain::principal::Agency::new("interpol").unwrap());
    let p = submit_refused(&rabat, &sign(&rabat, &s)).await;
    assert_eq!((p.status, p.slug()), (400, "invalid-item"), "{p:?}");
    assert!(p.detail.contains("label.originator.agency"), "{}", p.detail);

    // Nothing was stored: no inbox entry, no receipt.
    assert!(vsse.inbox(Duration::ZERO).await.unwrap().is_empty());
    for id in ["top", "top-portion", "low-item", "caveat", "origin"] {
        let r = passerelle::domain::receipt::item_ref(&rabat.config().principal, id);
        assert!(rabat.receipt(&r).await.is_err(), "{id} left a receipt");
    }
    // A well-formed item still goes through.
    rabat.submit(&sign(&rabat, &spec("fine"))).await.unwrap();
    assert_eq!(vsse.inbox(Duration::ZERO).await.unwrap().len(), 1);
}

#[tokio::test]
async fn only_cbor_and_json_are_bodies_and_decode_errors_are_clean() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let body = |id: &str| to_cbor(&item(&rabat, id, &["vsse/analysis/ct"], "t"));

    for ct in [
        "application/cbor-seq",
        "application/cbor+xml",
        "application/jsonx",
        "text/plain",
        "application/cbor, application/json",
    ] {
        let (status, rct, b) = raw_request(
            &h,
            "police/lo/rabat",
            Method::POST,
            "/v1/items",
            Some(ct),
            body(&format!("seq-{}", ct.len())),
        )
        .await;
        let p = problem(status, &rct, &b);
        assert_eq!(
            (p.status, p.slug()),
            (415, "unsupported-media-type"),
            "{ct}"
        );
    }
    // Parameters and letter case do not matter.
    for (i, ct) in ["application/cbor; x=y", "Application/CBOR"]
        .iter()
        .enumerate()
    {
        let (status, _, _) = raw_request(
            &h,
            "police/lo/rabat",
            Method::POST,
            "/v1/items",
            Some(ct),
            body(&format!("ok-{i}")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{ct}");
    }

    // A truncated CBOR body: a short, clean detail.
    let mut truncated = body("truncated");
    truncated.truncate(truncated.len() / 2);
    let answer = rabat
        .request(Method::POST, "/v1/items", Some(truncated), Duration::ZERO)
        .await
        .unwrap();
    let p = problem(answer.status, &answer.content_type, &answer.body);
    assert_eq!((p.status, p.slug()), (400, "malformed-body"), "{p:?}");

    // CBOR of the wrong shape names where.
    let mut value = ciborium::Value::serialized(&item(&rabat, "shape", &["x/y"], "t")).unwrap();
    if let ciborium::Value::Map(entries) = &mut value {
        for (k, v) in entries.iter_mut() {
            if k.as_text() == Some("portions") {
                *v = ciborium::Value::Text("z".repeat(100_000));
            }
        }
    }
    let mut wrong = Vec::new();
    ciborium::into_writer(&value, &mut wrong).unwrap();
    let answer = rabat
        .request(Method::POST, "/v1/items", Some(wrong), Duration::ZERO)
        .await
        .unwrap();
    let p = problem(answer.status, &answer.content_type, &answer.body);
    assert_eq!((p.status, p.slug()), (400, "malformed-body"), "{p:?}");
    assert!(p.detail.contains("portions"), "{}", p.detail);
    assert!(!p.detail.contains("zzzzzzzz"), "{}", p.detail);
}

#[test]
fn default_item_ids_made_in_the_same_second_differ() {
    let s = ItemSpec::parse(&BASE_SPEC.replace("id = \"hostile\"\n", "")).unwrap();
    assert!(s.id.is_none());
    let sender = "police/lo/rabat".parse().unwrap();
    let now = 1_790_000_000;
    let ids: std::collections::BTreeSet<String> =
        (0..100).map(|_| s.header(&sender, now).id).collect();
    assert_eq!(ids.len(), 100, "default ids collide within one second");
    for id in &ids {
        let mut h = s.header(&sender, now);
        h.id = id.clone();
        h.check_shape().unwrap();
    }
}
