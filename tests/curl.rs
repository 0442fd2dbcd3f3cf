//! A person with curl and a station's certificate can read everything as
//! JSON. Uses the system's curl (installed by `.ci/run` when missing).

mod common;

use common::{item, Harness};
use std::process::Command;

fn curl(h: &Harness, principal: &str, args: &[&str]) -> (String, String) {
    let dir = h.path().join(passerelle::pki::station_dir(principal));
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--tlsv1.3",
            "-H",
            "Accept: application/json",
        ])
        .arg("--cert")
        .arg(dir.join("cert.pem"))
        .arg("--key")
        .arg(dir.join("key.pem"))
        .arg("--cacert")
        .arg(h.ca_path())
        .args(["--write-out", "\n%{http_code} %{content_type}"])
        .args(args)
        .output()
        .expect("curl must be installed (see .ci/run)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, meta) = text.rsplit_once('\n').unwrap_or(("", &text));
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (body.to_string(), meta.to_string())
}

// curl blocks its thread, so the gateway needs another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_reads_inbox_item_and_receipt_as_json() {
    let h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let receipt = rabat
        .submit(&item(&rabat, "curl-1", &["vsse/analysis/ct"], "lisible"))
        .await
        .unwrap()
        .receipt;
    let base = format!("https://localhost:{}", h.addr().port());
    let resolve = format!("localhost:{}:127.0.0.1", h.addr().port());

    let (body, meta) = curl(
        &h,
        "vsse/analysis/ct",
        &["--resolve", &resolve, &format!("{base}/v1/inbox")],
    );
    assert!(meta.starts_with("200 application/json"), "{meta}");
    let inbox: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(inbox["items"][0]["item_ref"], receipt.item_ref.as_str());
    assert_eq!(inbox["items"][0]["sender"], "police/lo/rabat");

    let (body, meta) = curl(
        &h,
        "vsse/analysis/ct",
        &[
            "--resolve",
            &resolve,
            &format!("{base}/v1/items/{}", receipt.item_ref),
        ],
    );
    assert!(meta.starts_with("200 application/json"), "{meta}");
    let item: serde_json::Value = serde_json::from_str(&body).unwrap();
    // Bytes are base64 in JSON.
    assert_eq!(item["portions"][0]["portion"]["body"], "bGlzaWJsZQ==");

    let (body, meta) = curl(
        &h,
        "police/lo/rabat",
        &[
            "--resolve",
            &resolve,
            &format!("{base}/v1/receipts/{}", receipt.item_ref),
        ],
    );
    assert!(meta.starts_with("200 application/json"), "{meta}");
    assert!(body.contains("\"item_id\": \"curl-1\""), "{body}");

    // Errors are problem documents, also for curl.
    let (body, meta) = curl(
        &h,
        "police/lo/rabat",
        &[
            "--resolve",
            &resolve,
            "-X",
            "POST",
            "-H",
            "Content-Type: text/plain",
            "--data",
            "hello",
            &format!("{base}/v1/items"),
        ],
    );
    assert!(meta.starts_with("415 application/problem+json"), "{meta}");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        problem["type"],
        "urn:passerelle:problem:unsupported-media-type"
    );

    // A JSON body with bad base64 is a clear 400.
    let (_, meta) = curl(
        &h,
        "police/lo/rabat",
        &[
            "--resolve",
            &resolve,
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            "{\"envelope\":\"%%%\",\"portions\":[]}",
            &format!("{base}/v1/items"),
        ],
    );
    assert!(meta.starts_with("400 application/problem+json"), "{meta}");

    // Under the default kx = "hybrid-preferred", curl is served whatever
    // its OpenSSL offers: a classical group on OpenSSL 3.0 (no ML-KEM),
    // X25519MLKEM768 on OpenSSL 3.5 and later; /healthz says which.
    let (body, meta) = curl(
        &h,
        "police/lo/rabat",
        &["--resolve", &resolve, &format!("{base}/healthz")],
    );
    assert!(meta.starts_with("200 application/json"), "{meta}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    let group = health["key_exchange"].as_str().unwrap_or_default();
    assert!(
        ["X25519MLKEM768", "X25519", "secp256r1", "secp384r1"].contains(&group),
        "{health}"
    );
    assert_eq!(health["post_quantum"], group == "X25519MLKEM768");
}
