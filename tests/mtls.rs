//! Handshake and identity refusals: each is refused at the handshake or
//! with 403, and the gateway keeps serving others.

mod common;

use common::{raw_client, raw_healthz, Harness};
use passerelle::pki::{Authority, ClientCertOptions, KeyAlg};
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;
use time::OffsetDateTime;

async fn good_station_still_served(h: &Harness) {
    let rabat = h.station("police/lo/rabat");
    rabat
        .inbox(Duration::ZERO)
        .await
        .expect("the gateway must keep serving good stations");
}

/// Presents `issued` over TLS 1.3: the handshake (or the first read) must
/// fail, and the gateway must go on serving good stations.
async fn assert_refused_at_handshake(
    h: &Harness,
    name: &str,
    issued: &passerelle::pki::Issued,
    what: &str,
) {
    let (cert, key) = write_pair(h, name, issued);
    let r = raw_healthz(
        h.addr(),
        raw_client(
            &h.ca_path(),
            Some((&cert, &key)),
            &[&rustls::version::TLS13],
        ),
    )
    .await;
    assert!(r.is_err(), "{what}");
    good_station_still_served(h).await;
}

fn write_pair(
    h: &Harness,
    name: &str,
    issued: &passerelle::pki::Issued,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = h.path().join("raw").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &issued.cert_pem).unwrap();
    passerelle::keys::write_private(&dir.join("key.pem"), issued.key_pem.as_bytes()).unwrap();
    (dir.join("cert.pem"), dir.join("key.pem"))
}

#[tokio::test]
async fn no_client_certificate_is_refused_at_the_handshake() {
    let h = Harness::start().await;
    let config = raw_client(&h.ca_path(), None, &[&rustls::version::TLS13]);
    let r = raw_healthz(h.addr(), config).await;
    assert!(r.is_err(), "a client without certificate");
    good_station_still_served(&h).await;
}

#[tokio::test]
async fn tls12_only_client_is_refused() {
    let h = Harness::start().await;
    let dir = h
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"));
    let config = raw_client(
        &h.ca_path(),
        Some((&dir.join("cert.pem"), &dir.join("key.pem"))),
        &[&rustls::version::TLS12],
    );
    let r = raw_healthz(h.addr(), config).await;
    assert!(r.is_err(), "a TLS 1.2 client");
    // The same certificate over TLS 1.3 works.
    let config = raw_client(
        &h.ca_path(),
        Some((&dir.join("cert.pem"), &dir.join("key.pem"))),
        &[&rustls::version::TLS13],
    );
    let ok = raw_healthz(h.addr(), config).await.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("police/lo/rabat"), "{ok}");
    good_station_still_served(&h).await;
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let h = Harness::start().await;
    let now = OffsetDateTime::now_utc();
    let expired = h
        .pki
        .agency("police")
        .unwrap()
        .issue_client(
            "spiffe://police.example/lo/rabat",
            &ClientCertOptions {
                not_before: now - time::Duration::days(30),
                not_after: now - time::Duration::days(1),
                ..Default::default()
            },
        )
        .unwrap();
    assert_refused_at_handshake(&h, "expired", &expired, "an expired certificate").await;
}

#[tokio::test]
async fn certificate_from_unknown_ca_is_refused() {
    let h = Harness::start().await;
    let rogue = Authority::new("rogue").unwrap();
    let issued = rogue
        .issue_client(
            "spiffe://police.example/lo/rabat",
            &ClientCertOptions::default(),
        )
        .unwrap();
    assert_refused_at_handshake(&h, "rogue", &issued, "a certificate from an unknown CA").await;
}

#[tokio::test]
async fn certificate_without_signing_key_usage_is_refused() {
    let h = Harness::start().await;
    let issued = h
        .pki
        .agency("police")
        .unwrap()
        .issue_client(
            "spiffe://police.example/lo/rabat",
            &ClientCertOptions {
                digital_signature: false,
                alg: KeyAlg::P256,
                ..Default::default()
            },
        )
        .unwrap();
    assert_refused_at_handshake(
        &h,
        "no-ku",
        &issued,
        "a certificate without digitalSignature",
    )
    .await;
}

#[tokio::test]
async fn certificate_without_the_client_auth_extended_key_usage_is_refused() {
    let h = Harness::start().await;
    // No extendedKeyUsage extension at all: webpki alone would accept it.
    let issued = h
        .pki
        .agency("police")
        .unwrap()
        .issue_client(
            "spiffe://police.example/lo/rabat",
            &ClientCertOptions {
                client_auth: false,
                ..Default::default()
            },
        )
        .unwrap();
    assert_refused_at_handshake(
        &h,
        "no-eku",
        &issued,
        "a certificate without the clientAuth extended key usage",
    )
    .await;
}

#[tokio::test]
async fn police_certificate_claiming_a_vsse_identity_is_forbidden() {
    let h = Harness::start().await;
    let forged = h
        .pki
        .agency("police")
        .unwrap()
        .issue_client(
            "spiffe://vsse.example/analysis/ct",
            &ClientCertOptions::default(),
        )
        .unwrap();
    let impostor = h.station_with("police/lo/rabat", &forged, "impostor");
    let err = impostor.inbox(Duration::ZERO).await.unwrap_err();
    match err {
        passerelle::client::ClientError::Refused(p) => {
            assert_eq!(p.status, 403);
            assert_eq!(p.slug(), "identity-refused");
            assert!(p.detail.contains("police CA"), "{}", p.detail);
        }
        other => panic!("expected a 403, got {other}"),
    }
    // Nor can it submit.
    let signed = common::item(&impostor, "x", &["police/spoc"], "t");
    assert!(impostor.submit(&signed).await.is_err());
    good_station_still_served(&h).await;
}

/// An impostor refused just before the operator stops the gateway is on
/// the log all the same: the refusal is counted before the answer, so the
/// stop's last flush writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_refused_just_before_a_stop_is_on_the_log() {
    let mut h = Harness::start().await;
    let forged = h
        .pki
        .agency("police")
        .unwrap()
        .issue_client(
            "spiffe://vsse.example/analysis/ct",
            &ClientCertOptions::default(),
        )
        .unwrap();
    let impostor = h.station_with("police/lo/rabat", &forged, "impostor");
    let err = impostor.inbox(Duration::ZERO).await.unwrap_err();
    assert!(
        matches!(&err, passerelle::client::ClientError::Refused(p) if p.slug() == "identity-refused"),
        "{err}"
    );
    h.running.take().unwrap().shutdown().await;
    let key = std::sync::Arc::new(
        passerelle::keys::GatewayKey::load(&h.config.audit.key, &h.config.audit.origin).unwrap(),
    );
    let log = passerelle::integrity::open_checked(
        &passerelle::store::StoreConfig::from_setting(&h.config.store),
        key,
    )
    .unwrap();
    let store = log.store();
    let size = store.size().unwrap();
    let refused = store
        .audit_entries(0, size)
        .unwrap()
        .iter()
        .map(|e| passerelle::audit::event::AuditEntry::decode(e).unwrap())
        .any(|e| {
            matches!(
                &e.event,
                passerelle::audit::event::AuditEvent::Refused { cause, .. } if cause == "identity-refused"
            )
        });
    assert!(refused, "the impostor's refusal is not on the log");
}

/// A gateway over a fresh example PKI whose police CA has a CRL file, and
/// a second certificate for `police/lo/rabat` beside the station's own.
struct WithCrl {
    dir: tempfile::TempDir,
    pki: passerelle::pki::ExamplePki,
    second: passerelle::pki::Issued,
    running: passerelle::server::Running,
}

impl WithCrl {
    /// Starts it, the CRL revoking the second certificate or nothing.
    async fn start(revoke_second: bool) -> WithCrl {
        let dir = tempfile::tempdir().unwrap();
        let pki = passerelle::pki::generate().unwrap();
        passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
        let second = pki
            .agency("police")
            .unwrap()
            .issue_client(
                "spiffe://police.example/lo/rabat",
                &ClientCertOptions::default(),
            )
            .unwrap();
        std::fs::write(dir.path().join("second.pem"), &second.cert_pem).unwrap();
        passerelle::keys::write_private(&dir.path().join("second.key"), second.key_pem.as_bytes())
            .unwrap();
        let crl = dir.path().join("police/crl.pem");
        let revoked = if revoke_second {
            vec![second.serial.clone()]
        } else {
            vec![]
        };
        std::fs::write(&crl, pki.agency("police").unwrap().crl(&revoked).unwrap()).unwrap();
        let mut config =
            passerelle::config::GatewayConfig::load(&dir.path().join("gateway.toml")).unwrap();
        for a in &mut config.agencies {
            if a.name.as_str() == "police" {
                a.crl = Some(crl.clone());
            }
        }
        let running = passerelle::server::start(&config).await.unwrap();
        WithCrl {
            dir,
            pki,
            second,
            running,
        }
    }

    fn crl(&self) -> std::path::PathBuf {
        self.dir.path().join("police/crl.pem")
    }

    /// `/healthz` over a connection presenting the second certificate.
    async fn second_healthz(&self) -> Result<String, String> {
        let dir = self.dir.path();
        raw_healthz(
            self.running.addr,
            raw_client(
                &dir.join("gateway/ca.pem"),
                Some((&dir.join("second.pem"), &dir.join("second.key"))),
                &[&rustls::version::TLS13],
            ),
        )
        .await
    }

    /// Asserts that the station's own certificate still works, and so do
    /// other agencies'.
    async fn others_are_served(&self) {
        let dir = self.dir.path();
        for station in ["police/lo/rabat", "vsse/analysis/ct"] {
            let sdir = dir.join(passerelle::pki::station_dir(station));
            let ok = raw_healthz(
                self.running.addr,
                raw_client(
                    &dir.join("gateway/ca.pem"),
                    Some((&sdir.join("cert.pem"), &sdir.join("key.pem"))),
                    &[&rustls::version::TLS13],
                ),
            )
            .await
            .unwrap();
            assert!(ok.starts_with("HTTP/1.1 200"), "{station}: {ok}");
        }
    }
}

#[tokio::test]
async fn revoked_certificate_is_refused_when_a_crl_is_configured() {
    // A second Rabat certificate, revoked by the police CA's CRL.
    let g = WithCrl::start(true).await;
    assert!(g.second_healthz().await.is_err(), "a revoked certificate");
    // The station's own (unrevoked) certificate still works, and so do
    // other agencies, whose CAs have no CRL configured.
    g.others_are_served().await;
    g.running.shutdown().await;
}

#[tokio::test]
async fn the_committed_example_runs_as_it_is() {
    // A copy of certs-example/ and policies/, as a fresh clone has them: no
    // gateway key yet (the first start makes it).
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(
        &repo.join("certs-example"),
        &tmp.path().join("certs-example"),
    );
    copy_tree(&repo.join("policies"), &tmp.path().join("policies"));
    let root = tmp.path().join("certs-example");
    let _ = std::fs::remove_file(root.join("gateway/audit-key.pem"));
    let _ = std::fs::remove_file(root.join("gateway/audit.vkey"));
    let _ = std::fs::remove_dir_all(root.join("data"));
    // Git keeps no file mode but 0644 and 0755, and private keys others
    // can read are refused: the README's first step after a clone.
    let mut keys = vec![root.join("gateway/key.pem")];
    for (principal, _) in passerelle::pki::STATIONS {
        keys.push(
            root.join(passerelle::pki::station_dir(principal))
                .join("key.pem"),
        );
    }
    for key in keys {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let mut config = passerelle::config::GatewayConfig::load(&root.join("gateway.toml")).unwrap();
    assert!(config.listen.ip().is_loopback());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = passerelle::server::start(&config).await.unwrap();
    assert!(
        root.join("gateway/audit.vkey").exists(),
        "the first start writes the verifier key"
    );
    for (principal, _) in passerelle::pki::STATIONS {
        let path = root
            .join(passerelle::pki::station_dir(principal))
            .join("client.toml");
        let mut c = passerelle::station_config::ClientConfig::load(&path).unwrap();
        c.gateway = running.addr.to_string();
        let station = passerelle::client::Station::new(c).unwrap();
        station
            .inbox(Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("{principal}: {e}"));
    }
    running.shutdown().await;
    // A restart loads the key it made; a lost key is refused, not replaced.
    let running = passerelle::server::start(&config).await.unwrap();
    running.shutdown().await;
    std::fs::remove_file(root.join("gateway/audit-key.pem")).unwrap();
    let err = passerelle::server::start(&config)
        .await
        .err()
        .expect("a lost key must not be replaced");
    assert!(err.to_string().contains("audit-key.pem"), "{err}");
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_reload_puts_new_crls_in_force_for_new_connections_as_one_snapshot() {
    // At start, the police CA's CRL revokes nothing.
    let g = WithCrl::start(false).await;
    let ok = g.second_healthz().await.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");

    // A CRL file cut short holds no CRL: the reload is refused whole, and
    // the snapshot in force (with its CRL) stays.
    let police = g.pki.agency("police").unwrap();
    let revoking = police.crl(std::slice::from_ref(&g.second.serial)).unwrap();
    std::fs::write(g.crl(), "").unwrap();
    assert!(
        g.running.reload_policy().await.is_err(),
        "an empty CRL file"
    );
    let ok = g.second_healthz().await.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");

    // A CRL revoking the certificate, reloaded: new connections presenting
    // it are refused at the handshake; the station's other certificate and
    // other agencies are still served.
    std::fs::write(g.crl(), revoking).unwrap();
    g.running.reload_policy().await.unwrap();
    assert!(
        g.second_healthz().await.is_err(),
        "a certificate revoked by the reloaded CRL"
    );
    g.others_are_served().await;
    g.running.shutdown().await;
}

/// A station revoked by a reloaded CRL while it holds a kept-alive
/// connection is refused at its next request on that connection, not at
/// its next handshake, and the refusal is counted under its name.
#[tokio::test]
async fn a_revoked_station_is_refused_on_its_open_connection_after_a_reload() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let g = WithCrl::start(false).await;
    let dir = g.dir.path();
    let config = raw_client(
        &dir.join("gateway/ca.pem"),
        Some((&dir.join("second.pem"), &dir.join("second.key"))),
        &[&rustls::version::TLS13],
    );
    let tcp = tokio::net::TcpStream::connect(g.running.addr)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    // One request and its whole answer (small: it fits one read or a few).
    async fn ask(tls: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin)) -> String {
        tls.write_all(
            b"GET /healthz HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\n\r\n",
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..50 {
            let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
                .await
                .expect("an answer within 10 s")
                .unwrap();
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length || n == 0 {
                    return text;
                }
            }
            if n == 0 {
                return text;
            }
        }
        panic!("no whole answer");
    }
    let first = ask(&mut tls).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let police = g.pki.agency("police").unwrap();
    std::fs::write(
        g.crl(),
        police.crl(std::slice::from_ref(&g.second.serial)).unwrap(),
    )
    .unwrap();
    g.running.reload_policy().await.unwrap();
    let second = ask(&mut tls).await;
    assert!(second.starts_with("HTTP/1.1 403"), "{second}");
    assert!(second.contains("identity-refused"), "{second}");
    assert!(
        second.to_ascii_lowercase().contains("connection: close"),
        "{second}"
    );
    g.running.gateway.flush_refusals().await.unwrap();
    let store = g.running.gateway.store();
    let size = store.size().unwrap();
    let last = store.audit_entries(size - 1, size).unwrap();
    let entry = passerelle::audit::event::AuditEntry::decode(&last[0]).unwrap();
    assert!(
        matches!(
            &entry.event,
            passerelle::audit::event::AuditEvent::Refused { cause, count: 1, .. } if cause == "identity-refused"
        ),
        "{:?}",
        entry.event
    );
    g.others_are_served().await;
    g.running.shutdown().await;
}
