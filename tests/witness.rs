//! The witness over the real binary on loopback (plain HTTP, which the
//! witness allows on loopback; TLS is for a witness on its own machine):
//! `passerelle witness keygen` and `witness serve`, fed checkpoints signed
//! with the real signing code (core `audit::checkpoint` and `signed_note`)
//! and a real gateway's export (the demo's), answered as C2SP tlog-witness
//! says; and `passerelle audit verify --witness --quorum` on that export.

mod common;

use common::witness::{keygen, passerelle, write_config, WitnessProcess};

use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use passerelle::audit::checkpoint::Checkpoint;
use passerelle::audit::cosignature;
use passerelle::audit::rfc9162::Tree;
use passerelle::audit::signed_note::{SignerKey, VerifierKey};
use passerelle::audit::witness::AddCheckpoint;
use passerelle::witness::client::{ClientError, WitnessClient};

const ORIGIN: &str = "gateway.test/audit";

fn log_key() -> SignerKey {
    SignerKey::from_ed25519_seed(ORIGIN, [11; 32]).unwrap()
}

/// A log of `n` entries; `salt` makes another history.
fn tree(n: u64, salt: u8) -> Tree {
    let mut t = Tree::new();
    for i in 0..n {
        t.append(format!("entry {salt} {i}").as_bytes());
    }
    t
}

fn note_of(t: &Tree, size: u64, key: &SignerKey) -> String {
    Checkpoint::new(key.name(), size, t.root_at(size).unwrap())
        .sign(&[key])
        .unwrap()
}

#[tokio::test]
async fn a_witness_cosigns_a_growing_log_refuses_rollbacks_forks_and_strangers_and_remembers_across_a_kill(
) {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, witness) = keygen(dir.path(), "witness.test/w1");
    let config = write_config(dir.path(), &key_file, &[&log_key().verifier_key()]);
    let w = WitnessProcess::start(&config);
    let t = tree(20, 1);
    let key = log_key();

    // A new log: old size 0, no proof. The answer is a cosignature line
    // that verifies over the checkpoint.
    let note5 = note_of(&t, 5, &key);
    let (status, _, line) = w.add(0, &[], &note5).await;
    assert_eq!(status, 200, "{line}");
    let cosigned = cosignature::attach_cosignatures(&note5, &line, &witness).unwrap();
    let opened = cosignature::open_cosigned(
        cosigned.as_bytes(),
        ORIGIN,
        &key.verifier_key(),
        std::slice::from_ref(&witness),
    )
    .unwrap();
    assert_eq!(opened.count(), 1);

    // It grows, with a consistency proof from 5.
    let note12 = note_of(&t, 12, &key);
    let (status, _, body) = w
        .add(5, &t.consistency_proof(5, 12).unwrap(), &note12)
        .await;
    assert_eq!(status, 200, "{body}");

    // Rollback: the operator presents size 5 again as if new: 409 with the
    // size the witness knows, as text/x.tlog.size.
    let (status, ctype, body) = w.add(0, &[], &note5).await;
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "12\n")
    );
    // An old size above the checkpoint's is a bad request.
    let (status, _, body) = w.add(12, &[], &note5).await;
    assert_eq!(status, 400, "{body}");

    // Fork: the same size with another root.
    let other = tree(20, 2);
    let (status, _, body) = w.add(12, &[], &note_of(&other, 12, &key)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("not consistent"), "{body}");
    // Fork: a larger tree that does not extend the one cosigned.
    let (status, _, body) = w
        .add(
            12,
            &other.consistency_proof(12, 20).unwrap(),
            &note_of(&other, 20, &key),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // A bad proof for the right tree.
    let mut proof = t.consistency_proof(12, 20).unwrap();
    proof[0][0] ^= 1;
    let (status, _, body) = w.add(12, &proof, &note_of(&t, 20, &key)).await;
    assert_eq!(status, 422, "{body}");

    // A log the witness does not witness: 404; the right log signed by
    // another key: 403; a body that is not a request: 400.
    let stranger = SignerKey::from_ed25519_seed("other.test/audit", [12; 32]).unwrap();
    let (status, _, body) = w.add(0, &[], &note_of(&t, 20, &stranger)).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("other.test/audit"), "{body}");
    let impostor = SignerKey::from_ed25519_seed(ORIGIN, [13; 32]).unwrap();
    let (status, _, body) = w
        .add(
            12,
            &t.consistency_proof(12, 20).unwrap(),
            &note_of(&t, 20, &impostor),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = w.request("POST", "/add-checkpoint", "hello".into()).await;
    assert_eq!(status, 400);

    // Killed without warning and started again, it still knows 12.
    w.kill();
    let w = WitnessProcess::start(&config);
    let (status, _, body) = w.add(0, &[], &note5).await;
    assert_eq!((status, body.as_str()), (409, "12\n"));
    let note20 = note_of(&t, 20, &key);
    // The log's side, as the gateway calls it, over plain HTTP.
    let client = WitnessClient::new(
        &format!("http://{}", w.addr),
        witness.clone(),
        None,
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    let cosigned = client
        .add_checkpoint(12, &t.consistency_proof(12, 20).unwrap(), &note20)
        .await
        .unwrap();
    assert!(cosigned.starts_with(&note20));
    match client
        .add_checkpoint(20, &[], &note_of(&other, 20, &key))
        .await
    {
        Err(ClientError::Refused { status: 422, .. }) => {}
        other => panic!("expected a 422, got {other:?}"),
    }

    // Monitors read the last cosigned checkpoint by origin hash.
    let hash = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        ORIGIN.as_bytes(),
    ));
    let (status, _, body) = w
        .request("GET", &format!("/{hash}/checkpoint"), String::new())
        .await;
    assert_eq!(status, 200);
    let opened =
        cosignature::open_cosigned(body.as_bytes(), ORIGIN, &key.verifier_key(), &[witness])
            .unwrap();
    assert_eq!((opened.checkpoint.size, opened.count()), (20, 1));
}

#[test]
fn a_witness_refuses_a_key_file_others_can_read_and_a_damaged_state() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (key_file, _) = keygen(dir.path(), "witness.test/w1");
    let config = write_config(dir.path(), &key_file, &[&log_key().verifier_key()]);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = passerelle()
        .args(["witness", "serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A state file the witness did not cosign (planted to roll it back).
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let hash = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        ORIGIN.as_bytes(),
    ));
    std::fs::write(state.join(hash), note_of(&tree(3, 1), 3, &log_key())).unwrap();
    let out = passerelle()
        .args(["witness", "serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no cosignature by this witness"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn verify(export: &Path, vkey: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = passerelle()
        .args(["audit", "verify"])
        .arg(export)
        .arg("--key")
        .arg(vkey)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A real gateway's export (the demo's): its checkpoint, sent to a witness
/// configured with the gateway's verifier key, is cosigned; `audit verify
/// --witness` then passes with the cosignature on the `checkpoint` file and
/// fails without it or below the quorum, naming the witnesses.
#[tokio::test]
async fn audit_verify_requires_a_quorum_of_witnesses_on_a_real_gateways_export() {
    let dir = tempfile::tempdir().unwrap();
    let demo = common::kept_demo(env!("CARGO_BIN_EXE_passerelle"), dir.path());
    let export = demo.join("audit-export");
    let vkey_file = demo.join("gateway/audit.vkey");
    let gateway_key: VerifierKey = std::fs::read_to_string(&vkey_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let (key1, w1) = keygen(dir.path(), "comite-p.test/w1");
    let (_, w2) = keygen(dir.path(), "comite-r.test/w2");
    let w1_file = dir.path().join("w1.vkey");
    let w2_file = dir.path().join("w2.vkey");
    std::fs::write(&w1_file, format!("{w1}\n")).unwrap();
    std::fs::write(&w2_file, format!("{w2}\n")).unwrap();
    let config = write_config(dir.path(), &key1, &[&gateway_key]);
    let witness = WitnessProcess::start(&config);

    let checkpoint_file = export.join("checkpoint");
    let note = std::fs::read_to_string(&checkpoint_file).unwrap();
    let (status, _, line) = witness.add(0, &[], &note).await;
    assert_eq!(status, 200, "{line}");
    // An older checkpoint of the same gateway is now a rollback.
    let mut sizes: Vec<u64> = std::fs::read_dir(export.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    sizes.sort();
    assert!(sizes.len() > 1, "the demo signs more than one checkpoint");
    let older =
        std::fs::read_to_string(export.join("checkpoints").join(sizes[0].to_string())).unwrap();
    let (status, _, _) = witness.add(0, &[], &older).await;
    assert_eq!(status, 409);

    let w1s = w1_file.to_str().unwrap();
    let w2s = w2_file.to_str().unwrap();
    // Not cosigned yet: fails (1), naming the witness that did not cosign.
    let (code, _, err) = verify(&export, &vkey_file, &["--witness", w1s]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("NOT WITNESSED") && err.contains(&w1.label()),
        "{err}"
    );

    std::fs::write(
        &checkpoint_file,
        cosignature::attach_cosignatures(&note, &line, &w1).unwrap(),
    )
    .unwrap();
    // Cosigned: the log and the witness verify.
    let (code, _, _) = verify(&export, &vkey_file, &[]);
    assert_eq!(code, 0, "the cosignature does not disturb a plain verify");
    let (code, out, err) = verify(&export, &vkey_file, &["--witness", w1s]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("cosigned     {}", w1.label())),
        "{out}"
    );
    // Two witnesses, quorum all (the default): w2 did not cosign.
    let (code, _, err) = verify(&export, &vkey_file, &["--witness", w1s, "--witness", w2s]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("not cosigned {}", w2.label())),
        "{err}"
    );
    // Quorum 1 of 2: passes.
    let (code, out, err) = verify(
        &export,
        &vkey_file,
        &["--witness", w1s, "--witness", w2s, "--quorum", "1"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 of 2 witnesses cosigned"), "{out}");
    // A quorum above the witnesses given cannot run.
    let (code, _, err) = verify(&export, &vkey_file, &["--witness", w1s, "--quorum", "2"]);
    assert_eq!(code, 2, "{err}");
    // A forged cosignature (w2's name and key ID, w1's signature bytes) is
    // refused outright.
    let w2_signer_claim = {
        let raw_line = line.trim_end();
        let b64 = raw_line.rsplit(' ').next().unwrap();
        use base64::Engine as _;
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        raw[..4].copy_from_slice(&w2.key_id().to_be_bytes());
        format!(
            "\u{2014} {} {}\n",
            w2.name(),
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    let cosigned = std::fs::read_to_string(&checkpoint_file).unwrap();
    std::fs::write(&checkpoint_file, format!("{cosigned}{w2_signer_claim}")).unwrap();
    let (code, _, err) = verify(
        &export,
        &vkey_file,
        &["--witness", w1s, "--witness", w2s, "--quorum", "1"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not verify"), "{err}");
}

/// With `[tls]`, the witness speaks TLS 1.3 only, with the certificate
/// given: a client that trusts it gets a cosignature over HTTPS.
#[tokio::test]
async fn a_witness_with_tls_answers_over_tls_13() {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, witness) = keygen(dir.path(), "witness.test/w1");
    let config = write_config(dir.path(), &key_file, &[&log_key().verifier_key()]);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("w.crt"), cert.cert.pem()).unwrap();
    passerelle::keys::write_private(
        &dir.path().join("w.pem"),
        cert.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml = toml.replacen(
        "\n\n[[log]]",
        "\n[tls]\ncert = \"w.crt\"\nkey = \"w.pem\"\n\n[[log]]",
        1,
    );
    std::fs::write(&config, toml).unwrap();
    let w = WitnessProcess::start_scheme(&config, "https");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let port = w.addr.rsplit(':').next().unwrap();
    // The log's side, as the gateway calls it.
    let witness_client = WitnessClient::new(
        &format!("https://localhost:{port}"),
        witness.clone(),
        Some(std::sync::Arc::new(client)),
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    let note = note_of(&tree(4, 1), 4, &log_key());
    let cosigned = witness_client.add_checkpoint(0, &[], &note).await.unwrap();
    let opened = cosignature::open_cosigned(
        cosigned.as_bytes(),
        ORIGIN,
        &log_key().verifier_key(),
        std::slice::from_ref(&witness),
    )
    .unwrap();
    assert_eq!(opened.count(), 1);
    // Sent again from 0, the client reports the size the witness knows.
    match witness_client.add_checkpoint(0, &[], &note).await {
        Err(ClientError::Conflict { known_size: 4, .. }) => {}
        other => panic!("expected a conflict at 4, got {other:?}"),
    }
    // Plain HTTP to the TLS port gets no cosignature.
    let tcp = tokio::net::TcpStream::connect(&w.addr).await.unwrap();
    let handshake =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(hyper_util::rt::TokioIo::new(tcp))
            .await;
    if let Ok((mut send, conn)) = handshake {
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method("POST")
            .uri("/add-checkpoint")
            .header("host", "localhost")
            .body(Full::new(Bytes::from(AddCheckpoint::body(0, &[], &note))))
            .unwrap();
        assert!(send.send_request(req).await.is_err());
    }
}
