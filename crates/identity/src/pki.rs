//! The example PKI: one CA per agency, the gateway's server certificate,
//! station certificates, and ready-to-use config files.
//!
//! `passerelle pki init DIR` writes what `certs-example/` holds. It is for
//! examples and tests only: a real deployment uses each agency's own PKI.
//! CA private keys are not written out (nothing in the examples needs them),
//! so the example CAs cannot issue anything after `init` returns; tests that
//! need extra certificates (expired, revoked, wrong agency) get the
//! in-memory [`Authority`] values from [`generate`].

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SanType, SerialNumber,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Why the example PKI could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen refused the parameters: a bug.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A generated key could not be re-encoded: a bug.
    #[error("key encoding failed: {0}")]
    Key(String),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Key algorithm of a generated certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlg {
    /// Ed25519 (items signed with EdDSA).
    Ed25519,
    /// ECDSA P-256 (items signed with ES256).
    P256,
}

impl KeyAlg {
    fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlg::Ed25519 => &rcgen::PKCS_ED25519,
            KeyAlg::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

/// A generated certificate and its key, as PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its serial number.
    pub serial: Vec<u8>,
}

/// A certificate authority held in memory.
pub struct Authority {
    /// Agency (or `gateway`) this CA belongs to.
    pub name: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// Options for a client certificate; the defaults are what a station gets.
#[derive(Clone, Debug)]
pub struct ClientCertOptions {
    /// Key algorithm.
    pub alg: KeyAlg,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Whether the key usage allows digital signatures.
    pub digital_signature: bool,
    /// Whether the certificate carries the extendedKeyUsage extension with
    /// clientAuth; `false` leaves the extension out altogether.
    pub client_auth: bool,
}

impl Default for ClientCertOptions {
    fn default() -> Self {
        let (not_before, not_after) = validity();
        ClientCertOptions {
            alg: KeyAlg::Ed25519,
            not_before,
            not_after,
            digital_signature: true,
            client_auth: true,
        }
    }
}

/// Validity of example certificates: from a day ago, for ten years, so the
/// committed examples keep working.
fn validity() -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - Duration::days(1), now + Duration::days(3650))
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // ring's SystemRandom reads the OS source; failure here means the OS
    // cannot give randomness, and no certificate should be made.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        panic!("the system random number generator failed");
    }
    bytes[0] &= 0x7f; // keep the DER INTEGER positive
    bytes[0] |= 0x01; // and 16 bytes long
    SerialNumber::from_slice(&bytes)
}

impl Authority {
    /// A new self-signed CA named after `name`.
    pub fn new(name: &str) -> Result<Self, PkiError> {
        let (not_before, not_after) = validity();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::OrganizationName, "passerelle example PKI");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} example CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(random_serial());
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            name: name.to_string(),
            cert,
            key,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// Issues a client certificate whose URI SAN is `uri`.
    pub fn issue_client(&self, uri: &str, options: &ClientCertOptions) -> Result<Issued, PkiError> {
        let key = KeyPair::generate_for(options.alg.rcgen())?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::OrganizationName, self.name.clone());
        params
            .distinguished_name
            .push(DnType::CommonName, uri.to_string());
        params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        params.key_usages = if options.digital_signature {
            vec![KeyUsagePurpose::DigitalSignature]
        } else {
            vec![KeyUsagePurpose::KeyAgreement]
        };
        if options.client_auth {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        params.not_before = options.not_before;
        params.not_after = options.not_after;
        self.sign(params, key)
    }

    /// Issues the gateway's server certificate for `names` (DNS names or IP
    /// addresses).
    pub fn issue_server(&self, names: &[&str]) -> Result<Issued, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "passerelle gateway");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (not_before, not_after) = validity();
        params.not_before = not_before;
        params.not_after = not_after;
        self.sign(params, key)
    }

    fn sign(&self, mut params: CertificateParams, key: KeyPair) -> Result<Issued, PkiError> {
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: crate::keys::pkcs8_v1_pem(&key.serialize_der())
                .map_err(|e| PkiError::Key(e.to_string()))?,
            der: cert.der().to_vec(),
            serial: serial.to_bytes(),
        })
    }

    /// A CRL revoking `serials`, PEM.
    pub fn crl(&self, serials: &[Vec<u8>]) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(30),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: now - Duration::hours(1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.cert, &self.key)?.pem()?)
    }
}

/// An agency of the example PKI.
pub struct ExampleAgency {
    /// Agency name.
    pub name: &'static str,
    /// SPIFFE trust domain.
    pub trust_domain: &'static str,
}

/// The audit log origin of the example gateway.
pub const AUDIT_ORIGIN: &str = "passerelle.example/audit";

/// The agencies of the example PKI.
pub const AGENCIES: [ExampleAgency; 3] = [
    ExampleAgency {
        name: "police",
        trust_domain: "police.example",
    },
    ExampleAgency {
        name: "vsse",
        trust_domain: "vsse.example",
    },
    ExampleAgency {
        name: "oversight",
        trust_domain: "oversight.example",
    },
];

/// The stations of the example PKI: principal id and key algorithm.
pub const STATIONS: [(&str, KeyAlg); 7] = [
    ("police/lo/rabat", KeyAlg::Ed25519),
    ("police/lo/ankara", KeyAlg::Ed25519),
    ("police/spoc", KeyAlg::Ed25519),
    ("police/djo/ct", KeyAlg::Ed25519),
    ("vsse/analysis/ct", KeyAlg::P256),
    ("vsse/desk/ci", KeyAlg::P256),
    ("oversight/comite-r", KeyAlg::Ed25519),
];

/// The SPIFFE URI of an example principal.
pub fn spiffe_uri(principal: &str) -> String {
    let (agency, path) = principal.split_once('/').unwrap_or((principal, ""));
    let domain = AGENCIES
        .iter()
        .find(|a| a.name == agency)
        .map(|a| a.trust_domain)
        .unwrap_or("unknown.example");
    format!("spiffe://{domain}/{path}")
}

/// The example PKI, in memory.
pub struct ExamplePki {
    /// CA of the gateway's server certificate.
    pub gateway_ca: Authority,
    /// The gateway's server certificate.
    pub gateway: Issued,
    /// One CA per agency, in [`AGENCIES`] order.
    pub agencies: Vec<Authority>,
    /// Station certificates, in [`STATIONS`] order.
    pub stations: Vec<(String, Issued)>,
}

impl ExamplePki {
    /// The CA of `agency`.
    pub fn agency(&self, agency: &str) -> Option<&Authority> {
        self.agencies.iter().find(|a| a.name == agency)
    }
}

/// Generates the example PKI in memory.
pub fn generate() -> Result<ExamplePki, PkiError> {
    let gateway_ca = Authority::new("gateway")?;
    let gateway = gateway_ca.issue_server(&["localhost", "127.0.0.1", "::1"])?;
    let agencies = AGENCIES
        .iter()
        .map(|a| Authority::new(a.name))
        .collect::<Result<Vec<_>, _>>()?;
    let mut stations = Vec::new();
    for (principal, alg) in STATIONS {
        let agency = principal.split('/').next().unwrap_or_default();
        let ca = agencies
            .iter()
            .find(|a| a.name == agency)
            .ok_or(PkiError::Key(format!("no example CA for {principal}")))?;
        let issued = ca.issue_client(
            &spiffe_uri(principal),
            &ClientCertOptions {
                alg,
                ..Default::default()
            },
        )?;
        stations.push((principal.to_string(), issued));
    }
    Ok(ExamplePki {
        gateway_ca,
        gateway,
        agencies,
        stations,
    })
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if private {
        return crate::keys::write_private(path, contents.as_bytes()).map_err(|e| match e {
            crate::keys::KeyFileError::Io { path, source } => PkiError::Write { path, source },
            other => PkiError::Key(other.to_string()),
        });
    }
    std::fs::write(path, contents).map_err(err)
}

/// Directory of a station's files inside the PKI directory.
pub fn station_dir(principal: &str) -> PathBuf {
    PathBuf::from("stations").join(principal.replace('/', "-"))
}

/// The `[[agency]]` blocks of a config, with paths relative to `to_root`.
fn agency_blocks(to_root: &str) -> String {
    AGENCIES
        .iter()
        .map(|a| {
            format!(
                "[[agency]]\nname = \"{}\"\nca = \"{to_root}{}/ca.pem\"\ntrust_domain = \"{}\"\n",
                a.name, a.name, a.trust_domain
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The example policy of the cooperation protocol (the repository's
/// `policies/`), built in so that `pki init` and the demo work anywhere.
pub const EXAMPLE_POLICY: [(&str, &str); 6] = [
    (
        "agencies.toml",
        include_str!("../../../policies/agencies.toml"),
    ),
    ("flows.toml", include_str!("../../../policies/flows.toml")),
    (
        "principals.toml",
        include_str!("../../../policies/principals.toml"),
    ),
    (
        "purposes.toml",
        include_str!("../../../policies/purposes.toml"),
    ),
    ("scheme.toml", include_str!("../../../policies/scheme.toml")),
    (
        "third_parties.toml",
        include_str!("../../../policies/third_parties.toml"),
    ),
];

/// Writes the example PKI and configs under `dir`; the gateway config
/// listens on `listen` and uses the policy directory `policy` (relative to
/// `dir`), or, when `None`, a copy of [`EXAMPLE_POLICY`] written to
/// `dir/policies`.
pub fn write_example(
    dir: &Path,
    pki: &ExamplePki,
    listen: &str,
    policy: Option<&str>,
) -> Result<(), PkiError> {
    let policy = match policy {
        Some(p) => p.to_string(),
        None => {
            for (name, text) in EXAMPLE_POLICY {
                write(&dir.join("policies").join(name), text, false)?;
            }
            "policies".to_string()
        }
    };
    write(
        &dir.join("gateway/ca.pem"),
        &pki.gateway_ca.cert_pem(),
        false,
    )?;
    write(&dir.join("gateway/cert.pem"), &pki.gateway.cert_pem, false)?;
    write(&dir.join("gateway/key.pem"), &pki.gateway.key_pem, true)?;
    for a in &pki.agencies {
        write(&dir.join(&a.name).join("ca.pem"), &a.cert_pem(), false)?;
    }
    let audit_key =
        crate::keys::GatewayKey::generate(&dir.join("gateway/audit-key.pem"), AUDIT_ORIGIN)
            .map_err(|e| PkiError::Key(e.to_string()))?;
    let vkey = audit_key.verifier_key().to_string();
    write(&dir.join("gateway/audit.vkey"), &format!("{vkey}\n"), false)?;
    let gateway_toml = format!(
        "# passerelle gateway configuration for the example PKI (examples and tests only).\n\
         # Paths are relative to this file.\n\
         listen = \"{listen}\"\n\
         store = \"data/passerelle.sqlite3\"\n\
         policy = \"{policy}\"\n\
         lease_seconds = 60\n\n\
         # Admission control (README, Configuration): these are the defaults.\n\
         [limits]\nmax_body_bytes = 4194304\nmax_connections = 512\nmax_wait_seconds = 60\n\n\
         # kx: \"hybrid-preferred\" (X25519MLKEM768 first, classical groups for\n\
         # clients without it), \"hybrid-required\" (refuse those clients) or \"classical\".\n\
         [tls]\ncert = \"gateway/cert.pem\"\nkey = \"gateway/key.pem\"\nkx = \"hybrid-preferred\"\n\n\
         # The audit log: the gateway's signing key (must be mode 0600) and checkpoints.\n\
         # A new log's first start makes the key if the file is missing. Beside it,\n\
         # audit-key.head keeps the last head the gateway published: keep them together.\n\
         [audit]\nkey = \"gateway/audit-key.pem\"\nvkey = \"gateway/audit.vkey\"\norigin = \"{AUDIT_ORIGIN}\"\n\
         checkpoint_seconds = 60\n\n\
         # Each trusted CA is bound to exactly one agency and SPIFFE trust domain, here\n\
         # only: the policy declares the agencies and their trust domains, which must agree.\n\
         {}\n\
",
        agency_blocks("")
    );
    write(&dir.join("gateway.toml"), &gateway_toml, false)?;
    for (principal, issued) in &pki.stations {
        let sdir = dir.join(station_dir(principal));
        write(&sdir.join("cert.pem"), &issued.cert_pem, false)?;
        write(&sdir.join("key.pem"), &issued.key_pem, true)?;
        let client_toml = format!(
            "# Station configuration for {principal} (examples and tests only).\n\
             # Paths are relative to this file.\n\
             principal = \"{principal}\"\n\
             gateway = \"{listen}\"\n\
             server_name = \"localhost\"\n\
             cert = \"cert.pem\"\nkey = \"key.pem\"\nca = \"../../gateway/ca.pem\"\n\
             # The gateway's verifier key (or a file holding it), to check receipts,\n\
             # attestations and checkpoints. The gateway writes that file when it makes its key.\n\
             gateway_key = \"../../gateway/audit.vkey\"\n\n\
             # Agency CAs, to check the certificate each sender signed with.\n{}",
            agency_blocks("../../")
        );
        write(&sdir.join("client.toml"), &client_toml, false)?;
    }
    Ok(())
}
