//! Bad input: every refusal gives a clear problem document and stores
//! nothing.

mod common;

use common::{item, Harness};
use hyper::{Method, StatusCode};
use passerelle::api::problem::Problem;
use passerelle::domain::bytes::{to_cbor, Bytes};
use passerelle::domain::cose::SigningKey;
use passerelle::domain::item::SignedItem;
use std::time::Duration;

async fn post_raw(station: &passerelle::client::Station, body: Vec<u8>) -> (StatusCode, Problem) {
    let answer = station
        .request(Method::POST, "/v1/items", Some(body), Duration::ZERO)
        .await
        .unwrap();
    assert!(
        answer.content_type.starts_with("application/problem+json"),
        "refusals are problem documents, got {}",
        answer.content_type
    );
    let problem: Problem = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(problem.status, answer.status.as_u16());
    assert!(!problem.detail.is_empty());
    (answer.status, problem)
}

fn other_key() -> SigningKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    SigningKey::from_pkcs8(pkcs8.as_ref()).unwrap()
}

#[tokio::test]
async fn bad_submissions_are_refused_and_nothing_is_stored() {
    let h = Harness::start_with(|c| c.limits.max_body_bytes = 64 * 1024).await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");

    // Malformed CBOR.
    let (status, p) = post_raw(&rabat, vec![0xff, 0x00, 0x13, 0x37]).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::BAD_REQUEST, "malformed-body")
    );

    // CBOR of the wrong shape.
    let (status, p) = post_raw(&rabat, to_cbor(&vec![1u32, 2, 3])).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::BAD_REQUEST, "malformed-body")
    );

    // A body over the configured limit.
    let big = "x".repeat(100 * 1024);
    let (status, p) = post_raw(
        &rabat,
        to_cbor(&item(&rabat, "big", &["vsse/analysis/ct"], &big)),
    )
    .await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large")
    );

    // Signed with a key other than the certificate's.
    let good = item(&rabat, "forged", &["vsse/analysis/ct"], "text");
    let payload = passerelle::domain::cose::PublicKey::from_certificate_der(
        &passerelle::tls::load_certs(&rabat.config().cert).unwrap()[0],
    )
    .unwrap()
    .verify1_as(
        &good.envelope.0,
        passerelle::domain::item::MANIFEST_CONTENT_TYPE,
    )
    .unwrap();
    let forged = SignedItem {
        envelope: Bytes(other_key().sign1(
            payload.clone(),
            passerelle::domain::item::MANIFEST_CONTENT_TYPE,
        )),
        portions: good.portions.clone(),
    };
    let (status, p) = post_raw(&rabat, to_cbor(&forged)).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::BAD_REQUEST, "bad-signature")
    );

    // No signature at all: the envelope is not a COSE_Sign1.
    let unsigned = SignedItem {
        envelope: Bytes(b"not a signature".to_vec()),
        portions: good.portions.clone(),
    };
    let (status, p) = post_raw(&rabat, to_cbor(&unsigned)).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::BAD_REQUEST, "bad-signature")
    );

    // The sender's own signature without its COSE tag (18): the format
    // says tagged, so the gateway refuses what a strict recipient would.
    let mut untagged = good.clone();
    assert_eq!(untagged.envelope.0.remove(0), 0xd2);
    let (status, p) = post_raw(&rabat, to_cbor(&untagged)).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::BAD_REQUEST, "bad-signature")
    );
    assert!(p.detail.contains("tag 18"), "{}", p.detail);

    // Signed by the right key but not as a manifest: the content type in
    // the protected header must be the manifest's.
    let mistyped = SignedItem {
        envelope: Bytes(
            rabat
                .signing_key()
                .sign1(payload.clone(), "application/cbor"),
        ),
        portions: good.portions.clone(),
    };
    let (status, p) = post_raw(&rabat, to_cbor(&mistyped)).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::BAD_REQUEST, "bad-signature")
    );
    assert!(p.detail.contains("content type"), "{}", p.detail);

    // A portion changed after signing.
    let mut changed = good.clone();
    changed.portions[0].body.0[0] ^= 1;
    let (status, p) = post_raw(&rabat, to_cbor(&changed)).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::BAD_REQUEST, "invalid-item")
    );

    // An item signed by Ankara, replayed over Rabat's connection: Rabat's
    // key does not verify it.
    let ankara = h.station("police/lo/ankara");
    let theirs = item(&ankara, "replay", &["vsse/analysis/ct"], "text");
    let (status, p) = post_raw(&rabat, to_cbor(&theirs)).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::BAD_REQUEST, "bad-signature")
    );

    // Rabat signs, with its own key, an item claiming Ankara as sender.
    let spec = passerelle::spec::ItemSpec::parse(
        "id = \"claim\"\nto = [\"vsse/analysis/ct\"]\npurpose = \"terrorism\"\n[label]\nlevel = \"RESTREINT\"\n\
         [[portion]]\ntext = \"t\"\n[portion.label]\nlevel = \"RESTREINT\"\n",
    )
    .unwrap();
    let claimed = spec.sign(
        rabat.signing_key(),
        &"police/lo/ankara".parse().unwrap(),
        1_790_000_000,
    );
    let (status, p) = post_raw(&rabat, to_cbor(&claimed)).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::FORBIDDEN, "sender-mismatch")
    );

    // An unknown recipient.
    let (status, p) = post_raw(&rabat, to_cbor(&item(&rabat, "u", &["vsse/nobody"], "t"))).await;
    assert_eq!(
        (status, p.slug()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown-recipient")
    );

    // A path the API does not have.
    let answer = rabat
        .request(Method::GET, "/v1/nothing-here", None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::NOT_FOUND);

    // Nothing of the above was stored or delivered.
    assert!(vsse.inbox(Duration::ZERO).await.unwrap().is_empty());
    for id in ["big", "forged", "replay", "claim", "u"] {
        let r = passerelle::domain::receipt::item_ref(&rabat.config().principal, id);
        assert!(rabat.receipt(&r).await.is_err(), "{id} left a receipt");
    }
    // And the gateway still serves.
    rabat
        .submit(&item(&rabat, "fine", &["vsse/analysis/ct"], "ok"))
        .await
        .unwrap();
    assert_eq!(vsse.inbox(Duration::ZERO).await.unwrap().len(), 1);
}
