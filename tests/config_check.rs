//! Configuration that refuses mistakes: unknown keys are refused with their
//! file and line in every file an operator or a station writes
//! (`gateway.toml`, `client.toml`, `witness.toml`, the policy, item files);
//! private key files that group or others can read are refused with the
//! file and the fix; the keys the project writes are created 0600; and
//! `passerelle config check` checks a configuration, its policy and its
//! certificates together.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An example PKI and its configs, written as `passerelle pki init` does.
fn example() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
    let gateway = dir.path().join("gateway.toml");
    (dir, gateway)
}

fn passerelle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_passerelle"))
}

/// Inserts `line` after the first line starting with `after` in `path`.
fn insert_after(path: &Path, after: &str, line: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut done = false;
    for l in text.lines() {
        out.push_str(l);
        out.push('\n');
        if !done && l.starts_with(after) {
            out.push_str(line);
            out.push('\n');
            done = true;
        }
    }
    assert!(
        done,
        "no line starting with {after:?} in {}",
        path.display()
    );
    std::fs::write(path, out).unwrap();
}

/// The 1-based line of the first line of `path` starting with `start`.
fn line_of(path: &Path, start: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l.starts_with(start))
        .unwrap()
        + 1
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_unknown_key_in_gateway_toml_is_refused_with_its_file_and_line() {
    for (after, typo) in [
        ("lease_seconds", "lease_second = 30"),
        ("key = \"gateway/key.pem\"", "kex = \"classical\""),
        ("trust_domain = \"police.example\"", "crl_file = \"x.pem\""),
        ("[limits]", "max_conections = 3"),
    ] {
        let (_dir, gateway) = example();
        insert_after(&gateway, after, typo);
        let line = line_of(&gateway, typo);
        let err = passerelle::config::GatewayConfig::load(&gateway)
            .unwrap_err()
            .to_string();
        let key = typo.split(' ').next().unwrap();
        assert!(err.contains(&gateway.display().to_string()), "{err}");
        assert!(err.contains(&format!("line {line},")), "{typo}: {err}");
        assert!(err.contains(&format!("unknown field `{key}`")), "{err}");
    }
}

#[test]
fn a_key_that_moved_into_limits_is_refused_with_its_line_and_where_it_went() {
    let (_dir, gateway) = example();
    insert_after(&gateway, "lease_seconds", "long_polls = 3");
    let err = passerelle::config::GatewayConfig::load(&gateway)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `long_polls`"), "{err}");

    let (_dir, gateway) = example();
    insert_after(&gateway, "lease_seconds", "max_connections = 3");
    let line = line_of(&gateway, "max_connections = 3");
    let err = passerelle::config::GatewayConfig::load(&gateway)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("line {line},")), "{err}");
    assert!(
        err.contains("moved into the [limits] table (same name)"),
        "{err}"
    );
}

#[test]
fn an_unknown_key_in_client_toml_is_refused_with_its_file_and_line() {
    let (dir, _) = example();
    let client = dir
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("client.toml");
    insert_after(&client, "server_name", "retry = 3");
    let line = line_of(&client, "retry = 3");
    let err = passerelle::station_config::ClientConfig::load(&client)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&client.display().to_string()), "{err}");
    assert!(err.contains(&format!("line {line},")), "{err}");
    assert!(err.contains("unknown field `retry`"), "{err}");
}

#[test]
fn an_unknown_key_in_witness_toml_is_refused_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\nkey = \"w.key\"\nstate = \"state\"\n\n\
         [[log]]\norigin = \"o\"\nkeys = []\nkey = \"x\"\n",
    )
    .unwrap();
    let err = passerelle::witness::config::WitnessConfig::load(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("line 8,"), "{err}");
    assert!(err.contains("unknown field `key`"), "{err}");
}

#[test]
fn an_unknown_key_in_the_policy_is_refused_with_its_file_and_line() {
    let (dir, _) = example();
    let policies = dir.path().join("policies");
    let file = std::fs::read_dir(&policies)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p)
                .map(|t| t.contains("[[principal]]"))
                .unwrap_or(false)
        })
        .unwrap();
    insert_after(&file, "[[principal]]", "clearence = \"SECRET\"");
    let line = line_of(&file, "clearence");
    let out = passerelle()
        .args(["policy", "check"])
        .arg(&policies)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    assert!(text.contains(&format!("{name}:{line}")), "{text}");
    assert!(text.contains("clearence"), "{text}");
}

#[test]
fn an_unknown_key_in_an_item_file_is_refused_with_its_file_and_line() {
    let (dir, _) = example();
    let client = dir
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("client.toml");
    let item = dir.path().join("item.toml");
    std::fs::write(
        &item,
        "to = [\"vsse/analysis/ct\"]\npriority = \"ROUTINE\"\nprioritee = \"FLASH\"\n",
    )
    .unwrap();
    let out = passerelle()
        .args(["send", "--config"])
        .arg(&client)
        .arg("--item")
        .arg(&item)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&item.display().to_string()), "{err}");
    assert!(err.contains("line 3,"), "{err}");
    assert!(err.contains("unknown field `prioritee`"), "{err}");
}

/// Every private key file a gateway, a station or a witness reads.
#[tokio::test]
async fn a_private_key_that_others_can_read_is_refused_with_the_file_and_the_fix() {
    let (dir, gateway) = example();
    let config = passerelle::config::GatewayConfig::load(&gateway).unwrap();
    let expect_refused = |err: String, path: &Path| {
        assert!(
            err.contains(&format!(
                "{} is readable by group or others",
                path.display()
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );
    };

    // The gateway's TLS key: refused at start and by a reload's check.
    assert!(passerelle::snapshot::check(&config).is_ok());
    for m in [0o640, 0o604, 0o644] {
        chmod(&config.tls.key, m);
        let err = passerelle::snapshot::check(&config)
            .unwrap_err()
            .to_string();
        expect_refused(err, &config.tls.key);
    }
    let err = passerelle::server::start(&config)
        .await
        .err()
        .unwrap()
        .to_string();
    expect_refused(err, &config.tls.key);
    chmod(&config.tls.key, 0o600);

    // The gateway's audit signing key.
    chmod(&config.audit.key, 0o644);
    let err = passerelle::server::start(&config)
        .await
        .err()
        .unwrap()
        .to_string();
    expect_refused(err, &config.audit.key);
    chmod(&config.audit.key, 0o600);

    // A station's key (its TLS key, which also signs its items).
    let client = dir
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("client.toml");
    let c = passerelle::station_config::ClientConfig::load(&client).unwrap();
    assert!(passerelle::client::Station::new(c.clone()).is_ok());
    chmod(&c.key, 0o644);
    let err = passerelle::client::Station::new(c.clone())
        .err()
        .unwrap()
        .to_string();
    expect_refused(err, &c.key);
}

#[test]
fn a_witness_key_or_witness_tls_key_that_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("w.key");
    passerelle::witness::config::generate_key(&key, "witness.test/w1").unwrap();
    assert_eq!(mode(&key), 0o600, "witness keygen writes 0600");
    chmod(&key, 0o644);
    let err = passerelle::witness::config::load_key(&key)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("is readable by group or others") && err.contains("chmod 600"),
        "{err}"
    );

    // Its TLS key: `witness serve` refuses to start.
    chmod(&key, 0o600);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("w.crt"), cert.cert.pem()).unwrap();
    let tls_key = dir.path().join("w.pem");
    std::fs::write(&tls_key, cert.key_pair.serialize_pem()).unwrap();
    chmod(&tls_key, 0o644);
    let config = dir.path().join("witness.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nkey = \"w.key\"\nstate = \"state\"\n\n\
         [tls]\ncert = \"w.crt\"\nkey = \"w.pem\"\n",
    )
    .unwrap();
    // Bounded: a witness that wrongly starts is killed, not waited on.
    let mut child = passerelle()
        .args(["witness", "serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..600 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("witness serve started with a TLS key others can read");
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} is readable by group or others",
            tls_key.display()
        )),
        "{err}"
    );
}

#[test]
fn the_keys_the_project_writes_are_created_0600() {
    // `passerelle pki init`: the gateway's TLS and audit keys, every station key.
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("pki");
    let out = passerelle()
        .args(["pki", "init"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut keys = vec![
        out_dir.join("gateway/key.pem"),
        out_dir.join("gateway/audit-key.pem"),
    ];
    for (principal, _) in passerelle::pki::STATIONS {
        keys.push(
            out_dir
                .join(passerelle::pki::station_dir(principal))
                .join("key.pem"),
        );
    }
    for k in &keys {
        assert_eq!(mode(k), 0o600, "{}", k.display());
    }
    // Public files stay readable.
    assert_eq!(mode(&out_dir.join("gateway/cert.pem")) & 0o044, 0o044);

    // `passerelle keygen`.
    let key = dir.path().join("audit-key.pem");
    let out = passerelle()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&key), 0o600);

    // A key file rewritten over a loose one ends 0600 too.
    let loose = dir.path().join("loose.pem");
    std::fs::write(&loose, "old").unwrap();
    chmod(&loose, 0o644);
    passerelle::keys::write_private(&loose, b"new").unwrap();
    assert_eq!(mode(&loose), 0o600);
}

/// `passerelle config check`: its exit code and its output.
fn config_check(gateway: &Path, extra: &[&str]) -> (i32, String) {
    let out = passerelle()
        .args(["config", "check"])
        .arg(gateway)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// An example written to disk, with its PKI kept to issue more.
fn example_with_pki() -> (tempfile::TempDir, PathBuf, passerelle::pki::ExamplePki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
    let gateway = dir.path().join("gateway.toml");
    (dir, gateway, pki)
}

#[test]
fn config_check_passes_a_good_config_and_reports_what_expires_within_the_window() {
    let (_dir, gateway) = example();
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok: server certificate"), "{text}");
    assert!(text.contains("ok: agency police CA"), "{text}");
    assert!(text.contains("ok: audit key"), "{text}");
    assert!(!text.contains("error:"), "{text}");

    // The example's certificates run ten years: a wider window sees them.
    let (code, text) = config_check(&gateway, &["--within-days", "4000"]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("expires: server certificate") && text.contains("(in 36"),
        "{text}"
    );
}

#[test]
fn config_check_refuses_what_a_start_would_refuse() {
    // An unknown key, with its line.
    let (_dir, gateway) = example();
    insert_after(&gateway, "lease_seconds", "lease_second = 30");
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("line 7,") && text.contains("lease_second"),
        "{text}"
    );

    // A TLS key others can read.
    let (dir, gateway) = example();
    let key = dir.path().join("gateway/key.pem");
    chmod(&key, 0o644);
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("chmod 600 {}", key.display())),
        "{text}"
    );

    // A key that is not the certificate's.
    let (dir, gateway) = example();
    let station_key = dir
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("key.pem");
    std::fs::copy(&station_key, dir.path().join("gateway/key.pem")).unwrap();
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("error: "), "{text}");
    assert!(text.to_lowercase().contains("key"), "{text}");
    drop(dir);

    // A policy that does not load.
    let (dir, gateway) = example();
    std::fs::write(
        dir.path().join("policies/zz.toml"),
        "[[principal]]\nid = 3\n",
    )
    .unwrap();
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("zz.toml:"), "{text}");
}

#[test]
fn config_check_refuses_an_audit_key_others_can_read_or_a_verifier_key_that_disagrees() {
    let (dir, gateway) = example();
    let audit = dir.path().join("gateway/audit-key.pem");
    chmod(&audit, 0o640);
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("chmod 600 {}", audit.display())),
        "{text}"
    );
    chmod(&audit, 0o600);

    let vkey = dir.path().join("gateway/audit.vkey");
    let other = passerelle::keys::GatewayKey::generate(
        &dir.path().join("other.pem"),
        passerelle::pki::AUDIT_ORIGIN,
    )
    .unwrap();
    std::fs::write(&vkey, format!("{}\n", other.verifier_key())).unwrap();
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not the verifier key of"), "{text}");

    // No key yet: a new log's first start makes it.
    std::fs::remove_file(&audit).unwrap();
    std::fs::remove_file(&vkey).unwrap();
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("the first start of a new log makes it"),
        "{text}"
    );
}

#[test]
fn config_check_refuses_an_expired_certificate_and_reports_one_about_to() {
    let (dir, gateway, pki) = example_with_pki();
    let now = time::OffsetDateTime::now_utc();
    let police = pki.agency("police").unwrap();
    let issue = |days_left: i64| {
        police
            .issue_client(
                "spiffe://police.example/lo/rabat",
                &passerelle::pki::ClientCertOptions {
                    not_before: now - time::Duration::days(100),
                    not_after: now + time::Duration::days(days_left),
                    ..Default::default()
                },
            )
            .unwrap()
    };
    // A server certificate that runs out in ten days.
    let soon = issue(10);
    std::fs::write(dir.path().join("gateway/cert.pem"), &soon.cert_pem).unwrap();
    passerelle::keys::write_private(&dir.path().join("gateway/key.pem"), soon.key_pem.as_bytes())
        .unwrap();
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("expires: server certificate")
            && (text.contains("(in 9 days)") || text.contains("(in 10 days)")),
        "{text}"
    );
    let (code, text) = config_check(&gateway, &["--within-days", "5"]);
    assert_eq!(code, 0, "{text}");

    // One that ran out yesterday.
    let gone = issue(-1);
    std::fs::write(dir.path().join("gateway/cert.pem"), &gone.cert_pem).unwrap();
    passerelle::keys::write_private(&dir.path().join("gateway/key.pem"), gone.key_pem.as_bytes())
        .unwrap();
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("error: server certificate") && text.contains("expired on"),
        "{text}"
    );
}

/// A PostgreSQL store URL: checked as a start would before connecting
/// (how a remote database is reached), and the database CA's dates read.
#[test]
fn config_check_reads_the_store_url_and_the_database_ca() {
    let (dir, gateway, pki) = example_with_pki();
    let set_store = |value: &str| {
        let text = std::fs::read_to_string(&gateway).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("store =") {
                    format!("store = {value:?}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&gateway, text.join("\n") + "\n").unwrap();
    };
    // A remote database, the URL silent on TLS: a start would refuse it.
    set_store("postgres://gw@db.internal:5432/passerelle");
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("error: store: URL postgres://gw@db.internal:5432/passerelle")
            && text.contains("not on this machine"),
        "{text}"
    );
    set_store("postgres://gw@db.internal:5432/passerelle?sslmode=require");
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("sslmode=require is refused"), "{text}");

    // Verified TLS with a CA that runs out in ten days.
    let now = time::OffsetDateTime::now_utc();
    let soon = pki
        .agency("police")
        .unwrap()
        .issue_client(
            "spiffe://police.example/db-ca",
            &passerelle::pki::ClientCertOptions {
                not_before: now - time::Duration::days(100),
                not_after: now + time::Duration::days(10),
                ..Default::default()
            },
        )
        .unwrap();
    let ca = dir.path().join("db-ca.pem");
    std::fs::write(&ca, &soon.cert_pem).unwrap();
    set_store(&format!(
        "postgres://gw@db.internal:5432/passerelle?sslmode=verify-full&sslrootcert={}",
        ca.display()
    ));
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("ok: store postgres://gw@db.internal")
            && text.contains("expires: database CA (sslrootcert)"),
        "{text}"
    );
}

#[test]
fn config_check_reads_crls_their_signer_and_their_next_update() {
    let (dir, gateway, pki) = example_with_pki();
    let crl = dir.path().join("police/crl.pem");
    let with_crl = |ca: &str| {
        let text = std::fs::read_to_string(&gateway).unwrap().replacen(
            "trust_domain = \"police.example\"",
            &format!("trust_domain = \"police.example\"\ncrl = \"police/crl.pem\"\nca = \"{ca}\""),
            1,
        );
        // The police block's own `ca` line goes: the inserted one wins.
        let text = text.replacen("ca = \"police/ca.pem\"\n", "", 1);
        std::fs::write(&gateway, text).unwrap();
    };
    with_crl("police/ca.pem");

    // The example CA's CRL promises its next update in 30 days: within the
    // default window, so it is reported; outside a shorter one.
    std::fs::write(&crl, pki.agency("police").unwrap().crl(&[]).unwrap()).unwrap();
    let (code, text) = config_check(&gateway, &[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("expires: agency police CRL") && text.contains("must be replaced by"),
        "{text}"
    );
    let (code, text) = config_check(&gateway, &["--within-days", "7"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok: agency police CRL"), "{text}");

    // A CRL the police CA did not sign (the VSSE CA's): it revokes nothing
    // the police CA issued.
    std::fs::write(&crl, pki.agency("vsse").unwrap().crl(&[]).unwrap()).unwrap();
    let (code, text) = config_check(&gateway, &["--within-days", "7"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is not signed by the agency's CA"), "{text}");

    // A stale CRL: its next update is past, so it misses revocations.
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "stale test CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = params.self_signed(&key).unwrap();
    std::fs::write(dir.path().join("police/other-ca.pem"), ca.pem()).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let stale = rcgen::CertificateRevocationListParams {
        this_update: now - time::Duration::days(40),
        next_update: now - time::Duration::days(10),
        crl_number: rcgen::SerialNumber::from(7u64),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca, &key)
    .unwrap();
    std::fs::write(&crl, stale.pem().unwrap()).unwrap();
    let text = std::fs::read_to_string(&gateway)
        .unwrap()
        .replace("ca = \"police/ca.pem\"", "ca = \"police/other-ca.pem\"");
    std::fs::write(&gateway, text).unwrap();
    let (code, text) = config_check(&gateway, &["--within-days", "7"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is stale"), "{text}");
}

/// The config the systemd unit reads parses (its files are the operator's).
#[test]
fn the_deployment_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gateway.toml");
    let c = passerelle::config::GatewayConfig::load(&path).unwrap();
    assert_eq!(
        c.tls.key,
        Path::new("/run/credentials/passerelle-gateway.service/tls-key")
    );
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/passerelle-gateway.service"),
    )
    .unwrap();
    assert!(unit.contains("LoadCredential=tls-key:"), "{unit}");
    let exec: Vec<&str> = unit.lines().filter(|l| l.starts_with("Exec")).collect();
    assert!(exec.iter().all(|l| !l.contains("--new-log")), "{exec:?}");
}
