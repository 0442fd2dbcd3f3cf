//! The gateway reaches PostgreSQL over TLS, the server verified: a real
//! server (see `tests/common/postgres.rs`) whose `pg_hba.conf` rejects
//! the gateway's roles in plaintext, certificates made here with rcgen.
//!
//! A network attacker between an instance and its database would read
//! items and labels, or stand in for the database: so the gateway speaks
//! TLS 1.3 to it with the operator's CA and the host's name checked
//! (`sslmode=verify-full`), with a client certificate when the server asks
//! for one, and refuses a server it cannot verify.

mod common;
#[path = "common/postgres.rs"]
mod postgres_server;

use std::path::{Path, PathBuf};

use common::{item, Harness};
use passerelle::store::{self, StoreConfig};
use postgres_server::{PgServer, ServerTls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA, and what it signed: the database server's certificate (for
/// 127.0.0.1 only) and a client certificate for the role `gwcert`.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    server_cert: String,
    server_key: String,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

fn issue(
    names: Vec<String>,
    common_name: &str,
    by: &(rcgen::Certificate, KeyPair),
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let cert = params.signed_by(&key, &by.0, &by.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    path
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let db_ca = ca("passerelle test database CA");
        let (server_cert, server_key) = issue(vec!["127.0.0.1".into()], "db", &db_ca);
        let (client_cert, client_key) = issue(vec![], "gwcert", &db_ca);
        write(dir.path(), "db-ca.pem", &db_ca.0.pem(), 0o644);
        write(dir.path(), "client.pem", &client_cert, 0o644);
        write(dir.path(), "client.key", &client_key, 0o600);
        write(dir.path(), "client-open.key", &client_key, 0o644);
        let other = ca("another CA");
        write(dir.path(), "other-ca.pem", &other.0.pem(), 0o644);
        Pki {
            ca: db_ca.0.pem(),
            server_cert,
            server_key,
            dir,
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A server whose `gw` role must use TLS, and whose `gwcert` role must
    /// also present a client certificate issued to it.
    fn server(&self) -> PgServer {
        PgServer::start_tls(&ServerTls {
            cert_pem: self.server_cert.clone(),
            key_pem: self.server_key.clone(),
            client_ca_pem: self.ca.clone(),
            hba: "local all all trust\n\
                  hostnossl all gw,gwcert 127.0.0.1/32 reject\n\
                  hostssl all gw 127.0.0.1/32 trust\n\
                  hostssl all gwcert 127.0.0.1/32 cert\n\
                  host all postgres 127.0.0.1/32 trust\n"
                .into(),
        })
    }
}

/// `store::migrate` on `url`: Ok, or the error's text.
fn migrate(url: &str) -> Result<(), String> {
    store::migrate(&StoreConfig::from_setting(Path::new(url)))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A gateway whose store is a database reached over verified TLS takes and
/// delivers items as on any store, and its sessions on the server are TLS
/// 1.3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_keeps_its_store_over_verified_tls() {
    let pki = Pki::new();
    let server = pki.server();
    let base = server.new_database_of("gw");
    let url = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        pki.file("db-ca.pem")
    );
    let h = Harness::start_with(|c| c.store = PathBuf::from(&url)).await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let receipt = rabat
        .submit(&item(&rabat, "tls-1", &["vsse/analysis/ct"], "over TLS"))
        .await
        .unwrap()
        .receipt;
    let delivered = vsse.fetch(&receipt.item_ref).await.unwrap();
    assert_eq!(delivered.portions[0].portion.body.0, b"over TLS");

    let port = server.port();
    let sessions: i64 = tokio::task::spawn_blocking(move || {
        let mut admin = ::postgres::Client::connect(
            &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            ::postgres::NoTls,
        )
        .unwrap();
        let row = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.usename = 'gw' AND s.ssl AND s.version = 'TLSv1.3'",
                &[],
            )
            .unwrap();
        row.get(0)
    })
    .await
    .unwrap();
    assert!(sessions >= 1, "the gateway's sessions are TLS 1.3");
    drop(h);
}

/// Plaintext, another CA's server, a server certificate for another name,
/// a missing or open client key: each refused, saying why.
#[test]
fn a_database_that_cannot_be_verified_is_refused() {
    let pki = Pki::new();
    let server = pki.server();
    let gw = server.new_database_of("gw");
    let verified = format!("sslmode=verify-full&sslrootcert={}", pki.file("db-ca.pem"));

    // The server rejects the role in plaintext: what the gateway's TLS
    // sessions above were, the server enforced.
    let why = migrate(&gw).unwrap_err();
    assert!(why.contains("no encryption"), "{why}");
    migrate(&format!("{gw}?{verified}")).unwrap();

    // A server whose certificate another CA issued: not the database.
    let other = format!(
        "{gw}?sslmode=verify-full&sslrootcert={}",
        pki.file("other-ca.pem")
    );
    let why = migrate(&other).unwrap_err();
    assert!(why.contains("certificate"), "{why}");

    // The right CA, but a host the certificate does not name.
    let renamed = format!("{}?{verified}", gw.replace("127.0.0.1", "localhost"));
    let why = migrate(&renamed).unwrap_err();
    assert!(why.contains("certificate"), "{why}");

    // A server that asks for a client certificate gets the one issued to
    // the role; without it, the role is refused.
    let gwcert = server.new_database_of("gwcert");
    migrate(&format!(
        "{gwcert}?{verified}&sslcert={}&sslkey={}",
        pki.file("client.pem"),
        pki.file("client.key")
    ))
    .unwrap_or_else(|e| panic!("{e}\n{}", server.server_log()));
    let why = migrate(&format!("{gwcert}?{verified}")).unwrap_err();
    assert!(why.contains("certificate"), "{why}");
    // A client key others can read is refused before any connection.
    let why = migrate(&format!(
        "{gwcert}?{verified}&sslcert={}&sslkey={}",
        pki.file("client.pem"),
        pki.file("client-open.key")
    ))
    .unwrap_err();
    assert!(why.contains("chmod 600"), "{why}");

    // A mode that would not verify the server is refused outright.
    let why = migrate(&format!("{gw}?sslmode=require")).unwrap_err();
    assert!(why.contains("sslmode=require is refused"), "{why}");
}
