//! docs/formats.md against the gateway: every CDDL block of the page is
//! checked (with cddl-cat, an RFC 8610 validator) against what a real
//! gateway sends and accepts, so the page a station in another language is
//! written from cannot drift from the code.

mod common;

use common::Harness;
use hyper::{Method, StatusCode};
use passerelle::client::Station;
use passerelle::domain::bytes::to_cbor;
use passerelle::domain::item::SignedItem;
use passerelle::gateway::unix_now;
use passerelle::spec::ItemSpec;
use std::time::Duration;

/// The CDDL of docs/formats.md: every ```cddl block, in page order. RFC
/// 8610 `.regexp` patterns are XSD regular expressions, which match the
/// whole text; the validator's (Rust regex) match anywhere, so each is
/// anchored here.
fn cddl() -> String {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/formats.md"),
    )
    .unwrap();
    let mut out = String::new();
    let mut inside = false;
    for line in page.lines() {
        match (inside, line.trim_end()) {
            (false, "```cddl") => inside = true,
            (true, "```") => inside = false,
            (true, l) => {
                out.push_str(&anchor_regexps(l));
                out.push('\n');
            }
            _ => {}
        }
    }
    assert!(!inside, "an unclosed cddl block in docs/formats.md");
    out
}

fn anchor_regexps(line: &str) -> String {
    const CTL: &str = ".regexp \"";
    match line.find(CTL) {
        None => line.to_string(),
        Some(at) => {
            let start = at + CTL.len();
            let end = start + line[start..].find('"').unwrap();
            format!(
                "{}^(?:{})${}",
                &line[..start],
                &line[start..end],
                &line[end..]
            )
        }
    }
}

struct Schema(String);

impl Schema {
    fn new() -> Self {
        Schema(cddl())
    }

    /// `bytes` must be CBOR matching `rule`.
    fn check(&self, rule: &str, bytes: &[u8]) {
        if let Err(e) = cddl_cat::validate_cbor_bytes(rule, &self.0, bytes) {
            let value: ciborium::Value = ciborium::from_reader(bytes).unwrap();
            panic!("{rule}: {e}\nvalue: {value:?}");
        }
    }

    /// `bytes` must be a tagged COSE_Sign1 (tag 18, one byte 0xd2) whose
    /// array matches `rule`.
    fn check_sign1(&self, rule: &str, bytes: &[u8]) {
        assert_eq!(bytes.first(), Some(&0xd2), "{rule}: not tagged 18");
        self.check(rule, &bytes[1..]);
    }

    /// `json` must be JSON matching `rule`.
    fn check_json(&self, rule: &str, json: &[u8]) {
        let text = std::str::from_utf8(json).unwrap();
        if let Err(e) = cddl_cat::validate_json_str(rule, &self.0, text) {
            panic!("{rule}: {e}\nvalue: {text}");
        }
    }
}

/// The raw CBOR answer of a request that must succeed.
async fn get(station: &Station, method: Method, path: &str, body: Option<Vec<u8>>) -> Vec<u8> {
    let answer = station
        .request(method, path, body, Duration::ZERO)
        .await
        .unwrap();
    assert!(
        answer.status.is_success(),
        "{path}: {} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.content_type, "application/cbor", "{path}");
    answer.body
}

/// A tearline item with every optional label field set.
fn rich_item(station: &Station, to: &[&str]) -> SignedItem {
    let to: Vec<String> = to.iter().map(|t| format!("\"{t}\"")).collect();
    let spec = format!(
        r#"
id = "formats-1"
to = [{}]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "FLASH"
language = "fr"
expires_in_hours = 48
[label]
level = "SECRET"
caveats = ["HUMINT"]
rel_to = ["police", "vsse"]
handling = "H1"
diffusion_restreinte = true
review_date = "2031-01-01"
evaluation = {{ grade = "B2", system = "6x6" }}
[[portion]]
text = "the whole analysis"
[portion.label]
level = "SECRET"
caveats = ["HUMINT"]
[[portion]]
text = "the tearline"
[portion.label]
level = "RESTREINT"
"#,
        to.join(", ")
    );
    ItemSpec::parse(&spec).unwrap().sign(
        station.signing_key(),
        &station.config().principal,
        unix_now(),
    )
}

#[tokio::test]
async fn the_cddl_of_docs_formats_matches_what_the_gateway_sends_and_accepts() {
    let schema = Schema::new();
    let h = Harness::start().await;
    let vsse = h.station("vsse/analysis/ct");
    let djo = h.station("police/djo/ct");
    let auditor = h.station("oversight/comite-r");

    // What a station sends, and the manifest inside it.
    let item = rich_item(
        &vsse,
        &[
            "police/djo/ct",
            "police/lo/rabat",
            "vsse/desk/ci",
            "oversight/comite-r",
        ],
    );
    let body = to_cbor(&item);
    schema.check("submitted-item", &body);
    schema.check_sign1("manifest-sign1", &item.envelope.0);

    // The receipt, as submitted and as fetched again with its proof.
    let answer = vsse
        .request(
            Method::POST,
            "/v1/items",
            Some(body.clone()),
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::CREATED);
    schema.check("signed-receipt", &answer.body);
    let signed: passerelle::domain::receipt::SignedReceipt =
        passerelle::domain::bytes::from_cbor(&answer.body).unwrap();
    schema.check_sign1("receipt-sign1", &signed.cose.0);
    let outcomes = &signed.receipt.outcomes;
    assert!(
        outcomes.iter().any(|o| !o.reasons.is_empty()),
        "the check should see a denied recipient's reasons: {outcomes:?}"
    );
    let item_ref = signed.receipt.item_ref.clone();
    vsse.request(Method::GET, "/v1/audit/checkpoint", None, Duration::ZERO)
        .await
        .unwrap();
    let again = get(
        &vsse,
        Method::GET,
        &format!("/v1/receipts/{item_ref}"),
        None,
    )
    .await;
    schema.check("signed-receipt", &again);
    let again: passerelle::domain::receipt::SignedReceipt =
        passerelle::domain::bytes::from_cbor(&again).unwrap();
    assert!(again.inclusion.is_some());

    // The recipient's side: inbox, delivery with its attestation, ack.
    let inbox = get(&djo, Method::GET, "/v1/inbox?wait=2", None).await;
    schema.check("inbox", &inbox);
    let delivered = get(&djo, Method::GET, &format!("/v1/items/{item_ref}"), None).await;
    schema.check("delivered-item", &delivered);
    let delivered: passerelle::domain::item::DeliveredItem =
        passerelle::domain::bytes::from_cbor(&delivered).unwrap();
    schema.check_sign1("attestation-sign1", &delivered.attestation.0);
    assert_eq!(delivered.envelope, item.envelope, "delivered byte for byte");
    let ack = get(
        &djo,
        Method::POST,
        &format!("/v1/items/{item_ref}/ack"),
        None,
    )
    .await;
    schema.check("ack-answer", &ack);
    let ack = get(
        &djo,
        Method::POST,
        &format!("/v1/items/{item_ref}/ack"),
        None,
    )
    .await;
    schema.check("ack-answer", &ack);

    // Proofs and health.
    let size = h.running.as_ref().unwrap().gateway.store().tree_head().size;
    let proof = get(
        &auditor,
        Method::GET,
        &format!("/v1/audit/inclusion?index={}", size - 1),
        None,
    )
    .await;
    schema.check("inclusion-proof", &proof);
    let consistency = get(
        &auditor,
        Method::GET,
        &format!("/v1/audit/consistency?old=1&new={size}"),
        None,
    )
    .await;
    schema.check("consistency-proof", &consistency);
    schema.check("health", &get(&djo, Method::GET, "/healthz", None).await);

    // Problems, of several kinds, all problem documents.
    for (station, method, path, body, status, slug) in [
        (
            &djo,
            Method::GET,
            "/v1/items/nope".to_string(),
            None,
            404,
            "not-found",
        ),
        (
            &djo,
            Method::GET,
            "/v1/nothing".to_string(),
            None,
            404,
            "no-such-resource",
        ),
        (
            &djo,
            Method::DELETE,
            "/v1/items".to_string(),
            None,
            405,
            "method-not-allowed",
        ),
        (
            &djo,
            Method::GET,
            "/v1/inbox?wait=soon".to_string(),
            None,
            400,
            "bad-query",
        ),
        (
            &auditor,
            Method::GET,
            "/v1/audit/inclusion?index=x".to_string(),
            None,
            400,
            "bad-query",
        ),
        (
            &auditor,
            Method::GET,
            "/v1/audit/consistency".to_string(),
            None,
            400,
            "bad-query",
        ),
        (
            &djo,
            Method::POST,
            "/v1/items".to_string(),
            Some(vec![0xff]),
            400,
            "malformed-body",
        ),
        (
            &auditor,
            Method::POST,
            "/v1/items".to_string(),
            Some(body.clone()),
            403,
            "may-not-send",
        ),
    ] {
        let answer = station
            .request(method, &path, body, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(answer.status.as_u16(), status, "{path}");
        assert_eq!(answer.content_type, "application/problem+json", "{path}");
        schema.check_json("problem", &answer.body);
        let p: passerelle::api::problem::Problem = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(p.slug(), slug, "{path}");
    }

    // A policy reload, and a refused one.
    let running = h.running.as_ref().unwrap();
    running.reload_policy().await.unwrap();
    std::fs::write(h.path().join("policies/flows.toml"), "not [ toml").unwrap();
    assert!(running.reload_policy().await.is_err());

    // Every audit entry the gateway wrote.
    let gateway = &running.gateway;
    gateway.flush_refusals().await.unwrap();
    let store = gateway.store().clone();
    let size = store.tree_head().size;
    let mut seen = std::collections::BTreeSet::new();
    for entry in store.audit_entries(0, size).unwrap() {
        schema.check("audit-entry", &entry);
        let value: ciborium::Value = ciborium::from_reader(&entry[..]).unwrap();
        let event = &value.as_map().unwrap()[2].1;
        let name = match event {
            ciborium::Value::Text(t) => t.clone(),
            ciborium::Value::Map(m) => m[0].0.as_text().unwrap().to_string(),
            other => panic!("event {other:?}"),
        };
        seen.insert(name);
    }
    for name in [
        "gateway-started",
        "policy-loaded",
        "policy-refused",
        "item-accepted",
        "decided",
        "delivered",
        "acknowledged",
        "refused",
    ] {
        assert!(seen.contains(name), "no {name} entry was checked: {seen:?}");
    }
}

#[test]
fn the_cddl_refuses_what_the_docs_forbid() {
    // The check would be worthless if the schema accepted anything.
    let schema = Schema(cddl());
    let ok = |rule: &str, v: &ciborium::Value| {
        let mut bytes = Vec::new();
        ciborium::into_writer(v, &mut bytes).unwrap();
        cddl_cat::validate_cbor_bytes(rule, &schema.0, &bytes).is_ok()
    };
    let text = |s: &str| ciborium::Value::Text(s.into());
    let ack = |status: &str, extra: bool| {
        let mut m = vec![
            (text("item_ref"), text(&"a".repeat(32))),
            (text("status"), text(status)),
        ];
        if extra {
            m.push((text("other"), text("x")));
        }
        ciborium::Value::Map(m)
    };
    assert!(ok("ack-answer", &ack("acked", false)));
    assert!(!ok("ack-answer", &ack("done", false)));
    assert!(!ok("ack-answer", &ack("acked", true)));
    // Anchored patterns: a principal id with a bad segment anywhere fails.
    let health = |principal: &str| {
        ciborium::Value::Map(vec![
            (text("status"), text("ok")),
            (text("principal"), text(principal)),
            (text("agency"), text("police")),
        ])
    };
    assert!(ok("health", &health("police/lo/rabat")));
    assert!(!ok("health", &health("Police/lo/rabat")));
    assert!(!ok("health", &health("police/lo/rabat/")));
    assert!(!ok("health", &health("police")));
}
