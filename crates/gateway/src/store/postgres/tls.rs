//! How the gateway reaches PostgreSQL: TLS with the server verified, or
//! plaintext only where the operator said so or the database is on this
//! machine.
//!
//! Owns the TLS part of the store URL, in libpq's words so that operators
//! read it as they read every other PostgreSQL client's:
//! `sslmode=verify-full` with `sslrootcert=CA.pem` (the CA that issued the
//! server's certificate; the host name or address in the URL must be in
//! that certificate), and `sslcert`/`sslkey` for a client certificate when
//! the server asks for one (`hostssl … cert` in `pg_hba.conf`). Item
//! contents, labels and the audit log cross this connection: a mode that
//! encrypts without verifying the server (`require`, `prefer`, `allow`)
//! or without checking its name (`verify-ca`) would hand them to whoever
//! sits on the network, so those modes are refused. Without `sslmode`,
//! a database on this machine (a Unix socket, `localhost`, a loopback
//! address) is reached in plaintext, and any other host is refused until
//! the operator chooses `verify-full`, or `disable` for a network they
//! vouch for.
//!
//! It builds the connector and never runs a query. The certificates are
//! this project's rustls with ring (TLS 1.3) and the operator's CA only,
//! never the system's roots.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ::postgres::config::{Host, SslMode};
use ::postgres::{Client, NoTls};
use rustls::RootCertStore;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;
use crate::tls;

/// Where to connect and how: the client configuration and, for
/// `verify-full`, the TLS connector.
#[derive(Clone)]
pub(super) struct Connector {
    config: ::postgres::Config,
    tls: Option<MakeRustlsConnect>,
    /// The certificate files the URL names, and what each is.
    certificates: Vec<(&'static str, PathBuf)>,
}

/// The TLS settings the store URL's query may hold.
#[derive(Debug, Default)]
struct TlsSettings {
    mode: Option<String>,
    root_cert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl TlsSettings {
    /// Whether the URL names a CA, certificate or key file.
    fn names_files(&self) -> bool {
        self.root_cert.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

impl Connector {
    /// The connector for `url` (shown as `shown`, its password hidden).
    pub(super) fn new(url: &str, shown: &str) -> Result<Self, StoreError> {
        let refused = |why: String| StoreError::Backend(format!("URL {shown}: {why}"));
        let (rest, settings) = split_tls_settings(url).map_err(refused)?;
        let mut config: ::postgres::Config = rest.parse().map_err(|e| refused(format!("{e}")))?;
        let tls = match settings.mode.as_deref() {
            Some("verify-full") => {
                let Some(root) = &settings.root_cert else {
                    return Err(refused(
                        "sslmode=verify-full needs sslrootcert=FILE: the CA that issued the database server's certificate".into(),
                    ));
                };
                config.ssl_mode(SslMode::Require);
                Some(connector(root, settings.cert.as_ref(), settings.key.as_ref()).map_err(refused)?)
            }
            Some("disable") => {
                if settings.names_files() {
                    return Err(refused(
                        "sslmode=disable takes no sslrootcert, sslcert or sslkey".into(),
                    ));
                }
                config.ssl_mode(SslMode::Disable);
                None
            }
            Some(other) => {
                return Err(refused(format!(
                    "sslmode={other} is refused: it would send items and the audit log to a server whose certificate (or name) is not checked. Use sslmode=verify-full with sslrootcert=CA.pem, or sslmode=disable for a network you vouch for"
                )))
            }
            None => {
                if settings.names_files() {
                    return Err(refused(
                        "sslrootcert, sslcert and sslkey need sslmode=verify-full".into(),
                    ));
                }
                // `hostaddr` is where the client really connects when it
                // is given: a `localhost` host beside a remote address is
                // remote.
                let remote = config
                    .get_hosts()
                    .iter()
                    .find(|h| !on_this_machine(h))
                    .map(host_name)
                    .or_else(|| {
                        config
                            .get_hostaddrs()
                            .iter()
                            .find(|a| !a.is_loopback())
                            .map(IpAddr::to_string)
                    });
                if let Some(host) = remote {
                    return Err(refused(format!(
                        "the database at {host} is not on this machine and the URL does not say how to reach it: add sslmode=verify-full&sslrootcert=CA.pem (TLS, the server verified), or sslmode=disable to send items in plaintext over a network you vouch for"
                    )));
                }
                config.ssl_mode(SslMode::Disable);
                None
            }
        };
        let certificates = [
            ("database CA (sslrootcert)", settings.root_cert),
            ("database client certificate (sslcert)", settings.cert),
        ]
        .into_iter()
        .filter_map(|(what, file)| file.map(|f| (what, f)))
        .collect();
        Ok(Connector {
            config,
            tls,
            certificates,
        })
    }

    /// The certificate files the URL names, and what each is.
    pub(super) fn certificate_files(&self) -> Vec<(&'static str, PathBuf)> {
        self.certificates.clone()
    }

    /// The client configuration (hosts, user, database, timeouts).
    pub(super) fn config_mut(&mut self) -> &mut ::postgres::Config {
        &mut self.config
    }

    /// A new connection, over TLS when the URL asks for it.
    pub(super) fn connect(&self) -> Result<Client, ::postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
    }
}

/// The rustls client of `verify-full`: TLS 1.3 with ring, `root` the only
/// trusted CA, and a client certificate when both `cert` and `key` are
/// given. The server's name is checked by the adapter against the host the
/// URL names.
fn connector(
    root: &Path,
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
) -> Result<MakeRustlsConnect, String> {
    let mut roots = RootCertStore::empty();
    for c in tls::load_certs(root).map_err(|e| e.to_string())? {
        roots
            .add(c)
            .map_err(|e| format!("sslrootcert {}: {e}", root.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (cert, key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                tls::load_certs(cert).map_err(|e| e.to_string())?,
                tls::load_key(key).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("sslcert and sslkey go together".into()),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// `url` without the TLS settings of its query, and those settings. A
/// setting given twice is refused rather than one of them chosen.
fn split_tls_settings(url: &str) -> Result<(String, TlsSettings), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), TlsSettings::default()));
    };
    let mut settings = TlsSettings::default();
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot_taken = |taken: bool| {
            if taken {
                Err(format!("{name} is given twice"))
            } else {
                Ok(())
            }
        };
        let decoded = || {
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| format!("{name} is not UTF-8"))
        };
        match name {
            "sslmode" => {
                slot_taken(settings.mode.is_some())?;
                settings.mode = Some(decoded()?);
            }
            "sslrootcert" => {
                slot_taken(settings.root_cert.is_some())?;
                settings.root_cert = Some(PathBuf::from(decoded()?));
            }
            "sslcert" => {
                slot_taken(settings.cert.is_some())?;
                settings.cert = Some(PathBuf::from(decoded()?));
            }
            "sslkey" => {
                slot_taken(settings.key.is_some())?;
                settings.key = Some(PathBuf::from(decoded()?));
            }
            "sslnegotiation" | "sslcrl" | "sslpassword" | "sslsni" => {
                return Err(format!("{name} is not supported"))
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, settings))
}

/// Whether `host` is this machine: a Unix socket's directory, `localhost`
/// or a loopback address.
fn on_this_machine(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

fn host_name(host: &Host) -> String {
    match host {
        Host::Unix(path) => path.display().to_string(),
        Host::Tcp(name) => name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::Connector;

    fn refusal(url: &str) -> String {
        match Connector::new(url, url) {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_database_on_this_machine_needs_no_tls() {
        for url in [
            "postgres://gw@127.0.0.1:5432/passerelle",
            "postgres://gw@localhost/passerelle",
            "postgres://gw@[::1]:5432/passerelle",
            "postgresql://gw@%2Frun%2Fpostgresql/passerelle",
        ] {
            let c = Connector::new(url, url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(c.tls.is_none(), "{url}");
        }
    }

    #[test]
    fn a_remote_database_must_say_how_it_is_reached() {
        let why = refusal("postgres://gw@db.internal:5432/passerelle");
        assert!(why.contains("not on this machine"), "{why}");
        // A local name in front of a remote address is remote.
        let why = refusal("postgres://gw@localhost:5432/passerelle?hostaddr=10.1.2.3");
        assert!(why.contains("10.1.2.3 is not on this machine"), "{why}");
        Connector::new(
            "postgres://gw@localhost:5432/passerelle?hostaddr=127.0.0.1",
            "shown",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(why.contains("sslmode=verify-full"), "{why}");
        // Said explicitly, plaintext is the operator's choice.
        let plain = Connector::new(
            "postgres://gw@db.internal/passerelle?sslmode=disable",
            "shown",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(plain.tls.is_none());
    }

    #[test]
    fn modes_that_do_not_verify_the_server_are_refused() {
        for mode in ["require", "prefer", "allow", "verify-ca", "VERIFY-FULL", ""] {
            let why = refusal(&format!("postgres://gw@db.internal/p?sslmode={mode}"));
            assert!(why.contains("is refused"), "{mode}: {why}");
        }
    }

    #[test]
    fn tls_settings_are_checked_together() {
        let why = refusal("postgres://gw@db.internal/p?sslmode=verify-full");
        assert!(why.contains("needs sslrootcert"), "{why}");
        let why = refusal("postgres://gw@127.0.0.1/p?sslrootcert=/etc/ca.pem");
        assert!(why.contains("need sslmode=verify-full"), "{why}");
        let why = refusal("postgres://gw@db.internal/p?sslmode=disable&sslrootcert=/etc/ca.pem");
        assert!(why.contains("takes no sslrootcert"), "{why}");
        let why = refusal("postgres://gw@db.internal/p?sslmode=verify-full&sslmode=disable");
        assert!(why.contains("given twice"), "{why}");
        let why = refusal(
            "postgres://gw@db.internal/p?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        );
        assert!(why.contains("/nonexistent/ca.pem"), "{why}");
    }

    #[test]
    fn a_password_in_a_refused_url_is_not_shown() {
        let shown = "postgres://gw:***@db.internal/p";
        let e = match Connector::new("postgres://gw:s3cret@db.internal/p", shown) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        };
        assert!(!e.contains("s3cret") && e.contains(shown), "{e}");
    }
}
