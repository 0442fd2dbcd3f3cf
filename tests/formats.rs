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
diffusion_restreinte = true
[[portion]]
text = "the tearline"
[portion.label]
level = "RESTREINT"
diffusion_restreinte = true
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
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
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

    // A request (its inbox entry has a due time), the overdue listing, and
    // an answer that closes the request (item-accepted with `due`, then
    // with `answers`).
    let spoc = h.station("police/spoc");
    let request = ItemSpec::parse(
        r#"
id = "formats-request"
to = ["vsse/analysis/ct"]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "FLASH"
request = { accessibility = "direct" }
[label]
level = "RESTREINT"
[[portion]]
text = "What do you hold on subject X?"
[portion.label]
level = "RESTREINT"
"#,
    )
    .unwrap()
    .sign(spoc.signing_key(), &spoc.config().principal, unix_now());
    let asked = spoc.submit(&request).await.unwrap().receipt.item_ref;
    let inbox = get(&vsse, Method::GET, "/v1/inbox", None).await;
    schema.check("inbox", &inbox);
    assert!(
        String::from_utf8_lossy(&inbox).contains("due"),
        "the inbox should show the request's due time"
    );
    for who in [&auditor, &vsse, &spoc] {
        let overdue = get(who, Method::GET, "/v1/overdue?within=7200", None).await;
        schema.check("overdue", &overdue);
    }
    let answer = ItemSpec::parse(&format!(
        r#"
id = "formats-answer"
to = ["police/spoc"]
purpose = "terrorism"
cases = ["CT-2026-014"]
in_reply_to = "{asked}"
[label]
level = "RESTREINT"
[[portion]]
text = "Nothing held."
[portion.label]
level = "RESTREINT"
"#
    ))
    .unwrap()
    .sign(vsse.signing_key(), &vsse.config().principal, unix_now());
    vsse.submit(&answer).await.unwrap();
    let overdue = get(&auditor, Method::GET, "/v1/overdue?within=7200", None).await;
    schema.check("overdue", &overdue);

    // Batched delivery: the answer fetched in a batch, then acknowledged
    // in a batch beside a reference that is not the caller's.
    let fetched = get(&spoc, Method::GET, "/v1/inbox?wait=2&fetch=10", None).await;
    schema.check("fetched", &fetched);
    let fetched: passerelle::domain::wire::Fetched =
        passerelle::domain::bytes::from_cbor(&fetched).unwrap();
    assert_eq!(fetched.items.len(), 1);
    let acks = to_cbor(&passerelle::domain::wire::AckBatch {
        refs: vec![
            fetched.items[0].entry.item_ref.clone(),
            item_ref.clone(),
            "nope".into(),
        ],
    });
    schema.check("ack-batch", &acks);
    let results = get(&spoc, Method::POST, "/v1/acks", Some(acks)).await;
    schema.check("ack-results", &results);

    // Proofs and health.
    let size = h.running.as_ref().unwrap().gateway.store().size().unwrap();
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
    let size = store.size().unwrap();
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

/// The `witness-refused` entry, which a gateway writes only when a witness
/// refuses (tests/witness_gateway.rs makes one happen), in the bytes the
/// gateway writes, with and without its optional field.
#[test]
fn a_witness_refused_entry_matches_the_cddl() {
    use passerelle::audit::event::{AuditEvent, BoundedEntry};
    let schema = Schema::new();
    for known_size in [Some(20), None] {
        let event = AuditEvent::WitnessRefused {
            size: 3,
            reason: "the witness last cosigned a checkpoint of size 20".into(),
            status: if known_size.is_some() { 409 } else { 422 },
            witness: "comite-p.example/w1+246c3b0c".into(),
            known_size,
        };
        let entry = BoundedEntry::new(1_790_000_000, event).unwrap();
        schema.check("audit-entry", entry.bytes());
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
            (text("key_exchange"), text("X25519MLKEM768")),
            (text("post_quantum"), ciborium::Value::Bool(true)),
        ])
    };
    assert!(ok("health", &health("police/lo/rabat")));
    assert!(!ok("health", &health("Police/lo/rabat")));
    assert!(!ok("health", &health("police/lo/rabat/")));
    assert!(!ok("health", &health("police")));
}

/// Lowercase hex, 64 digits to a line, for a code block.
fn hex_block(bytes: &[u8]) -> String {
    let hex = hex::encode(bytes);
    let lines: Vec<&str> = hex
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("```\n{}\n```\n", lines.join("\n"))
}

fn ed25519(seed: u8) -> passerelle::domain::cose::SigningKey {
    passerelle::domain::cose::SigningKey::Ed25519(
        ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap(),
    )
}

/// The signed bytes of a tagged COSE_Sign1: RFC 9052 §4.4 Sig_structure.
fn signature_input(cose: &[u8]) -> Vec<u8> {
    use coset::TaggedCborSerializable;
    coset::CoseSign1::from_tagged_slice(cose)
        .unwrap()
        .tbs_data(b"")
}

/// docs/worked-example.md: one item byte for byte, from fixed keys, salts
/// and times, with what the gateway makes of it. Ed25519 signatures are
/// deterministic, so the page is the same on every run; the test checks
/// every value with the library and the signatures with ring alone, then
/// compares the page with the file. Run with PASSERELLE_WRITE_EXAMPLE=1 to
/// write it after a deliberate format change.
#[test]
fn the_worked_example_is_true() {
    use passerelle::audit::receipts::{check_attestation, check_receipt};
    use passerelle::audit::signed_note::SignerKey;
    use passerelle::domain::attestation::{Attestation, ATTESTATION_CONTENT_TYPE};
    use passerelle::domain::bytes::{sha256, Bytes};
    use passerelle::domain::decision::Effect;
    use passerelle::domain::item::{Header, Portion, Priority};
    use passerelle::domain::label::SecurityLabel;
    use passerelle::domain::principal::{Agency, PrincipalId};
    use passerelle::domain::receipt::{
        item_ref, Outcome, Receipt, RecipientOutcome, SignedReceipt, RECEIPT_CONTENT_TYPE,
    };
    use std::fmt::Write as _;

    let schema = Schema::new();
    let sender_seed = 1u8;
    let gateway_seed = 2u8;
    let sender = ed25519(sender_seed);
    let gateway = ed25519(gateway_seed);
    let origin = "passerelle.example/audit";
    let note_key = SignerKey::from_ed25519_seed(origin, [gateway_seed; 32]).unwrap();
    let vkey = note_key.verifier_key();
    let gateway_public = *vkey.public_key();

    let police = Agency::new("police").unwrap();
    let rabat = PrincipalId::new("police/lo/rabat").unwrap();
    let vsse = PrincipalId::new("vsse/analysis/ct").unwrap();
    let header = Header {
        id: "rabat-2026-0001".into(),
        cases: vec!["CT-2026-014".into()],
        sender: rabat.clone(),
        created: 1_790_000_000,
        expires: None,
        purpose: "terrorism".into(),
        language: "fr".into(),
        priority: Priority::Flash,
        recipients: vec![vsse.clone()],
        request: None,
        in_reply_to: None,
    };
    let portion = |level: &str, body: &str, salt: u8| Portion {
        body: Bytes(body.as_bytes().to_vec()),
        salt: Bytes((salt..salt + 16).collect()),
        label: SecurityLabel::new(level, police.clone()),
        content_type: "text/plain; charset=utf-8".into(),
    };
    let portions = vec![
        portion(
            "CONFIDENTIEL",
            "Full report: the subject met X in Tangier.",
            0x00,
        ),
        portion("RESTREINT", "Tearline: a meeting took place.", 0x10),
    ];
    let item = SignedItem::sign(
        &sender,
        header,
        SecurityLabel::new("CONFIDENTIEL", police.clone()),
        portions.clone(),
    );
    let verified = item.clone().verify(&sender.public_key()).unwrap();
    let manifest = to_cbor(verified.manifest());
    let digest = hex::encode(verified.digest());
    let envelope = item.envelope.0.clone();
    let tbs = signature_input(&envelope);
    let sender_public = match sender.public_key() {
        passerelle::domain::cose::PublicKey::Ed25519(k) => k,
        other => panic!("{other:?}"),
    };
    // Independently of coset: the last 64 bytes are the signature over the
    // Sig_structure, with the sender's public key.
    let signature = &envelope[envelope.len() - 64..];
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &sender_public)
        .verify(&tbs, signature)
        .unwrap();
    let body = to_cbor(&item);
    schema.check("submitted-item", &body);
    schema.check_sign1("manifest-sign1", &envelope);

    let reference = item_ref(&rabat, "rabat-2026-0001");
    let policy_digest = hex::encode(sha256(b"example policy"));
    let receipt = Receipt {
        item_ref: reference.clone(),
        item_id: "rabat-2026-0001".into(),
        sender: rabat.clone(),
        digest: digest.clone(),
        accepted_at: 1_790_000_005,
        policy_digest: policy_digest.clone(),
        outcomes: vec![RecipientOutcome {
            recipient: vsse.clone(),
            outcome: Outcome::Queued,
            portions_released: 1,
            reasons: vec![],
        }],
        audit_index: 3,
    };
    let receipt_payload = to_cbor(&receipt);
    let receipt_cose = gateway.sign1(receipt_payload.clone(), RECEIPT_CONTENT_TYPE);
    let signed = SignedReceipt {
        receipt,
        cose: Bytes(receipt_cose.clone()),
        inclusion: None,
    };
    check_receipt(&signed, &vkey).unwrap();
    schema.check("signed-receipt", &to_cbor(&signed));
    schema.check_sign1("receipt-sign1", &receipt_cose);

    let attestation = Attestation {
        item_ref: reference.clone(),
        item_digest: digest.clone(),
        sender: rabat.clone(),
        recipient: vsse.clone(),
        portions: vec![1],
        effect: Effect::Allow,
        rules: vec!["police.lo-to-vsse".into()],
        policy_digest,
        accepted_at: 1_790_000_005,
        time: 1_790_000_100,
        audit_index: 7,
    };
    let attestation_payload = to_cbor(&attestation);
    let attestation_cose = gateway.sign1(attestation_payload.clone(), ATTESTATION_CONTENT_TYPE);
    assert_eq!(
        check_attestation(&Bytes(attestation_cose.clone()), &vkey).unwrap(),
        attestation
    );
    schema.check_sign1("attestation-sign1", &attestation_cose);
    for (cose, payload) in [
        (&receipt_cose, &receipt_payload),
        (&attestation_cose, &attestation_payload),
    ] {
        assert!(cose.windows(payload.len()).any(|w| w == payload.as_slice()));
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &gateway_public)
            .verify(&signature_input(cose), &cose[cose.len() - 64..])
            .unwrap();
    }

    // The page.
    let mut page = String::new();
    let w = &mut page;
    writeln!(w, "# A worked example, byte for byte\n").unwrap();
    writeln!(
        w,
        "This page is written by `cargo test` (`tests/formats.rs`, \
         `the_worked_example_is_true`) from fixed keys, salts and times, and \
         checked on every run: each value below is what passerelle computes. \
         Use it to test a station or a verifier written from \
         [formats.md](formats.md). The keys are public: never use them.\n"
    )
    .unwrap();
    writeln!(w, "## Keys\n").unwrap();
    writeln!(
        w,
        "The sender, `police/lo/rabat`, signs with the Ed25519 key whose \
         32-byte seed is `{}` (32 bytes of 0x{sender_seed:02x}). Its public key \
         (the one in its certificate):\n\n{}",
        hex::encode([sender_seed; 32]),
        hex_block(&sender_public)
    )
    .unwrap();
    writeln!(
        w,
        "The gateway signs with the Ed25519 key of seed 32 bytes of \
         0x{gateway_seed:02x}. Its public key:\n\n{}\nIts key id is the first 4 \
         bytes of SHA-256(`{origin}` ‖ 0x0a ‖ 0x01 ‖ public key), `{:08x}`, and \
         its verifier key is:\n\n```\n{vkey}\n```\n",
        hex_block(&gateway_public),
        vkey.key_id()
    )
    .unwrap();
    writeln!(w, "## Portions\n").unwrap();
    for (i, p) in portions.iter().enumerate() {
        let bytes = to_cbor(p);
        writeln!(
            w,
            "Portion {i}: level `{}`, body `{}`, salt `{}`. Its deterministic \
             CBOR:\n\n{}\nIts digest, SHA-256 of those bytes:\n\n{}",
            p.label.level,
            String::from_utf8_lossy(&p.body.0),
            hex::encode(&p.salt.0),
            hex_block(&bytes),
            hex_block(&sha256(&bytes))
        )
        .unwrap();
    }
    writeln!(w, "## Manifest\n").unwrap();
    writeln!(
        w,
        "Header: id `rabat-2026-0001`, cases `[\"CT-2026-014\"]`, sender \
         `police/lo/rabat`, created {}, no expiry, purpose `terrorism`, \
         language `fr`, priority `FLASH`, recipients `[\"vsse/analysis/ct\"]`; \
         item label `CONFIDENTIEL`, originator `police`. The manifest's \
         deterministic CBOR:\n\n{}\nThe item's digest, SHA-256 of the \
         manifest:\n\n```\n{digest}\n```\n",
        1_790_000_000,
        hex_block(&manifest)
    )
    .unwrap();
    writeln!(w, "## The sender's signature\n").unwrap();
    writeln!(
        w,
        "The signature input (RFC 9052 Sig_structure: `[\"Signature1\", \
         protected, h'', payload]`, with the protected header `{{1: -8, 3: \
         \"application/vnd.passerelle.manifest+cbor\"}}`):\n\n{}\nThe envelope, a \
         tagged COSE_Sign1 (its first byte, 0xd2, is tag 18; its last 64 bytes \
         are the Ed25519 signature of the input above):\n\n{}\nThe body of \
         `POST /v1/items` (`Content-Type: application/cbor`), \
         `{{envelope, portions}}`:\n\n{}",
        hex_block(&tbs),
        hex_block(&envelope),
        hex_block(&body)
    )
    .unwrap();
    writeln!(w, "## Receipt\n").unwrap();
    writeln!(
        w,
        "The item reference is the first 16 bytes of \
         SHA-256(`police/lo/rabat` ‖ 0x00 ‖ `rabat-2026-0001`), in hex: \
         `{reference}`.\n\nSay the gateway accepts the item at {} under a \
         policy whose digest is SHA-256(`example policy`), writes its \
         `item-accepted` entry at index 3, and releases the tearline (portion 1) \
         to `vsse/analysis/ct`. The receipt's CBOR (the COSE payload):\n\n{}\nThe \
         receipt's COSE_Sign1, signed by the gateway (content type \
         `application/vnd.passerelle.receipt+cbor`):\n\n{}",
        1_790_000_005,
        hex_block(&receipt_payload),
        hex_block(&receipt_cose)
    )
    .unwrap();
    writeln!(w, "## Attestation\n").unwrap();
    writeln!(
        w,
        "When `vsse/analysis/ct` fetches the item at {}, with its `delivered` \
         entry at index 7 and the rule `police.lo-to-vsse` deciding, it gets \
         portion 1 only (as `{{index: 1, portion: …}}`, the portion bytes above) \
         and this attestation. Its CBOR:\n\n{}\nIts COSE_Sign1 (content type \
         `application/vnd.passerelle.attestation+cbor`):\n\n{}",
        1_790_000_100,
        hex_block(&attestation_payload),
        hex_block(&attestation_cose)
    )
    .unwrap();
    writeln!(
        w,
        "The recipient checks the attestation with the gateway's key, the \
         envelope with the sender's certificate key, that SHA-256 of portion \
         1's CBOR is the manifest's second digest, and that the attestation \
         names the digest above, itself, the sender and exactly `[1]`."
    )
    .unwrap();

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/worked-example.md");
    if std::env::var_os("PASSERELLE_WRITE_EXAMPLE").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == page,
        "docs/worked-example.md is not what passerelle computes; after a \
         deliberate format change, run: PASSERELLE_WRITE_EXAMPLE=1 cargo test --test formats"
    );
}
