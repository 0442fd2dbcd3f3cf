//! Mutual TLS: who is on the other end of a connection.
//!
//! The gateway speaks TLS 1.3 only and requires a client certificate on
//! every connection. Each trusted CA is bound to exactly one agency: a
//! certificate is checked against each agency's CA separately (with that
//! CA's CRLs, when configured), so a certificate from the police CA can only
//! ever yield a police principal. After the handshake, [`Identities::identify`]
//! is the only way to build a [`VerifiedPeer`]: the principal comes from the
//! certificate's SPIFFE URI SAN, whose trust domain must be the one bound to
//! the agency whose CA issued it. This module never reads item content and
//! never decides what a principal may receive.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

use crate::config::{AgencyConfig, KeyExchange};
use crate::domain::cose::PublicKey;
use crate::domain::principal::{Agency, PrincipalId};

/// Why TLS material could not be loaded. The operator's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file is missing, unreadable or holds nothing of the expected kind.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Rustls(String),
    /// A private key file is readable by group or others, or unreadable.
    #[error(transparent)]
    KeyFile(#[from] crate::keys::KeyFileError),
}

/// Most bytes of a certificate's URI quoted in an [`IdentityError`].
const CLAIM_QUOTED: usize = 300;

/// Why an authenticated connection was not accepted as a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The peer sent no certificate.
    #[error("no client certificate was presented")]
    NoCertificate,
    /// No configured agency CA issued the certificate.
    #[error("the client certificate does not chain to any trusted agency CA")]
    UntrustedChain,
    /// The certificate has no usable SPIFFE URI SAN.
    #[error("the client certificate carries no single spiffe:// URI SAN")]
    NoPrincipal,
    /// The certificate's URI names a trust domain not bound to its CA's agency.
    #[error("a certificate from the {agency} CA cannot claim the identity {claimed}")]
    WrongAgency {
        /// The agency whose CA issued the certificate.
        agency: String,
        /// The URI it claimed.
        claimed: String,
    },
    /// The URI's path is not a valid principal id.
    #[error("the certificate's identity {0} is not a valid principal")]
    BadPrincipal(String),
    /// The certificate's key cannot verify item signatures.
    #[error("the certificate's key is neither Ed25519 nor ECDSA P-256")]
    UnsupportedKey,
}

/// A principal that completed the mutual-TLS handshake and whose identity
/// was checked against its agency's binding. Only [`Identities::identify`]
/// (and [`Identities::identify_at`]) makes one, from a certificate chain
/// an agency's CA verifies; its fields are private, so a value of this type
/// is the proof that the identity step ran. The gateway's handlers and
/// every exchange step take one, so a handler without a verified peer does
/// not compile, and outside code cannot build one by hand:
///
/// ```compile_fail
/// use passerelle::domain::cose::PublicKey;
/// use passerelle::domain::principal::{Agency, PrincipalId};
/// use passerelle::tls::VerifiedPeer;
///
/// fn forge(principal: PrincipalId, agency: Agency, public_key: PublicKey) -> VerifiedPeer {
///     VerifiedPeer { principal, agency, certificate: vec![], public_key }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct VerifiedPeer {
    principal: PrincipalId,
    agency: Agency,
    certificate: Vec<u8>,
    public_key: PublicKey,
}

impl VerifiedPeer {
    /// The principal, e.g. `police/lo/rabat`.
    pub fn principal(&self) -> &PrincipalId {
        &self.principal
    }

    /// Its agency, bound to the CA that issued its certificate.
    pub fn agency(&self) -> &Agency {
        &self.agency
    }

    /// DER of the end-entity certificate presented.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Its public key, with which the principal signs items.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
}

/// The hybrid post-quantum key exchange group, X25519 with ML-KEM-768
/// (draft-ietf-tls-ecdhe-mlkem): what the gateway and its stations prefer.
pub const HYBRID_GROUP: rustls::NamedGroup = rustls::NamedGroup::X25519MLKEM768;

/// ring's crypto provider with the key exchange groups `kx` asks for.
///
/// Everything else stays ring's: cipher suites, handshake signatures,
/// certificate verification, randomness. Only X25519MLKEM768 comes from
/// aws-lc-rs, because ring has no ML-KEM; the classical groups are ring's.
pub fn provider_for(kx: KeyExchange) -> Arc<CryptoProvider> {
    let ring = rustls::crypto::ring::default_provider();
    let hybrid = rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768;
    let kx_groups = match kx {
        KeyExchange::HybridPreferred => std::iter::once(hybrid)
            .chain(ring.kx_groups.iter().copied())
            .collect(),
        KeyExchange::HybridRequired => vec![hybrid],
        KeyExchange::Classical => ring.kx_groups.clone(),
    };
    Arc::new(CryptoProvider { kx_groups, ..ring })
}

/// The crypto provider stations use, and the gateway by default: ring's,
/// offering and preferring the hybrid group, with X25519, P-256 and P-384
/// after it.
pub fn provider() -> Arc<CryptoProvider> {
    provider_for(KeyExchange::HybridPreferred)
}

/// Whether a failed handshake failed because the client offered no key
/// exchange group the gateway accepts (under `kx = "hybrid-required"`, a
/// client without X25519MLKEM768).
pub fn is_key_exchange_refusal(error: &std::io::Error) -> bool {
    matches!(
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::NoKxGroupsInCommon
        ))
    )
}

/// The key exchange group a connection's handshake agreed on, as the
/// server attaches it to each of the connection's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyExchangeGroup(pub rustls::NamedGroup);

impl KeyExchangeGroup {
    /// Whether the group resists a quantum computer (a hybrid with ML-KEM).
    pub fn is_post_quantum(&self) -> bool {
        matches!(
            self.0,
            rustls::NamedGroup::X25519MLKEM768
                | rustls::NamedGroup::secp256r1MLKEM768
                | rustls::NamedGroup::MLKEM768
                | rustls::NamedGroup::MLKEM1024
        )
    }
}

impl std::fmt::Display for KeyExchangeGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // rustls's names are the IANA registry's ("X25519MLKEM768",
        // "secp256r1"); an unknown code point shows as its number.
        write!(f, "{:?}", self.0)
    }
}

fn pem_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Loads every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

/// Loads the first private key in a PEM file; a file group or others can
/// read is refused ([`crate::keys::refuse_open`]).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    crate::keys::refuse_open(path)?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

/// Loads every CRL in a PEM file (at least one: a configured CRL file
/// with none in it, say one cut short while it was copied, would silently
/// un-revoke every certificate it revoked).
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if crls.is_empty() {
        return Err(pem_error(path, "no X509 CRL in the file"));
    }
    Ok(crls)
}

struct AgencyTrust {
    agency: Agency,
    trust_domain: String,
    verifier: Arc<dyn ClientCertVerifier>,
}

/// The CA→agency bindings, used during and after the handshake.
pub struct Identities {
    agencies: Vec<AgencyTrust>,
    hints: Vec<DistinguishedName>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.agencies.iter().map(|a| a.agency.as_str()).collect();
        f.debug_struct("Identities")
            .field("agencies", &names)
            .finish()
    }
}

impl Identities {
    /// Builds one verifier per agency from its CA (and CRLs).
    pub fn new(agencies: &[AgencyConfig]) -> Result<Self, TlsError> {
        let mut out = Vec::new();
        let mut hints = Vec::new();
        for a in agencies {
            let mut roots = RootCertStore::empty();
            for ca in load_certs(&a.ca)? {
                roots.add(ca).map_err(|e| pem_error(&a.ca, e))?;
            }
            hints.extend(roots.subjects());
            let mut builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            if let Some(crl) = &a.crl {
                builder = builder.with_crls(load_crls(crl)?);
            }
            let verifier = builder
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            out.push(AgencyTrust {
                agency: a.name.clone(),
                trust_domain: a.trust_domain.clone(),
                verifier,
            });
        }
        Ok(Identities {
            agencies: out,
            hints,
        })
    }

    fn issuing_agency(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<&AgencyTrust, rustls::Error> {
        let mut last = rustls::Error::General("no agency CA configured".into());
        for a in &self.agencies {
            match a
                .verifier
                .verify_client_cert(end_entity, intermediates, now)
            {
                Ok(_) => return Ok(a),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Turns the certificate chain of a completed handshake into a principal.
    pub fn identify(&self, chain: &[CertificateDer<'_>]) -> Result<VerifiedPeer, IdentityError> {
        self.identify_at(chain, UnixTime::now())
    }

    /// Like [`Identities::identify`], with the certificate checked as of
    /// `time`: a recipient checks a sender's certificate as of the moment
    /// the gateway accepted the item, so an item that waited in an inbox
    /// past the certificate's expiry still verifies.
    pub fn identify_at(
        &self,
        chain: &[CertificateDer<'_>],
        time: UnixTime,
    ) -> Result<VerifiedPeer, IdentityError> {
        let (end_entity, intermediates) =
            chain.split_first().ok_or(IdentityError::NoCertificate)?;
        let trust = self
            .issuing_agency(end_entity, intermediates, time)
            .map_err(|_| IdentityError::UntrustedChain)?;
        let uri = spiffe_uri(end_entity).ok_or(IdentityError::NoPrincipal)?;
        let rest = uri
            .strip_prefix("spiffe://")
            .ok_or(IdentityError::NoPrincipal)?;
        let (domain, path) = rest.split_once('/').ok_or(IdentityError::NoPrincipal)?;
        // The URI is quoted in the refusal and on the audit log: bounded,
        // since whoever runs a trusted CA can make it as long as it likes.
        // Control characters are allowed in an IA5String; escaped, so that
        // the URI cannot start a forged line in the operator's text log.
        let quoted = || {
            let head = crate::domain::bounds::truncate(uri.clone(), CLAIM_QUOTED);
            crate::domain::bounds::truncate(head.escape_debug().to_string(), CLAIM_QUOTED)
        };
        if domain != trust.trust_domain {
            return Err(IdentityError::WrongAgency {
                agency: trust.agency.to_string(),
                claimed: quoted(),
            });
        }
        let principal = PrincipalId::in_agency(&trust.agency, path)
            .map_err(|_| IdentityError::BadPrincipal(quoted()))?;
        let public_key = PublicKey::from_certificate_der(end_entity)
            .map_err(|_| IdentityError::UnsupportedKey)?;
        Ok(VerifiedPeer {
            principal,
            agency: trust.agency.clone(),
            certificate: end_entity.to_vec(),
            public_key,
        })
    }

    /// Which agency's CA issued `certificate`, if any (used by stations to
    /// check a sender's certificate offline).
    pub fn agency_of(&self, certificate: &[u8]) -> Option<Agency> {
        let der = CertificateDer::from(certificate.to_vec());
        self.issuing_agency(&der, &[], UnixTime::now())
            .ok()
            .map(|a| a.agency.clone())
    }
}

/// The end of a certificate's validity, in Unix seconds (`i64::MIN`, so
/// already past, if it cannot be read).
pub fn not_after(der: &[u8]) -> i64 {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .unwrap_or(i64::MIN)
}

/// What the identity step reads from a certificate's extensions, apart
/// from its chain: its single spiffe:// URI SAN, whether its key usages
/// let a station connect, and its end of validity. For bytes no CA has
/// vouched for yet (the fuzz targets call it).
pub fn read_claims(der: &[u8]) -> (Option<String>, bool, i64) {
    (
        spiffe_uri(der),
        usage_problem(der).is_none(),
        not_after(der),
    )
}

/// The single spiffe:// URI SAN of a certificate, if it has exactly one.
fn spiffe_uri(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) if u.starts_with("spiffe://") => Some(*u),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    }
}

/// What a client certificate is for, as far as the gateway requires it:
/// `None` when it may connect, else why not.
///
/// Stations sign the TLS handshake and their items with this key, so the
/// digitalSignature key usage is required. The certificate must also say it
/// is for TLS client authentication: webpki refuses an extendedKeyUsage
/// that lacks clientAuth but accepts a certificate with no such extension
/// at all, which would let any certificate of an agency CA (a server's, a
/// code-signing one) connect as a principal.
fn usage_problem(der: &[u8]) -> Option<UsageProblem> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Some(UsageProblem::NoDigitalSignature);
    };
    if !matches!(cert.key_usage(), Ok(Some(ku)) if ku.value.digital_signature()) {
        return Some(UsageProblem::NoDigitalSignature);
    }
    if !matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.client_auth) {
        return Some(UsageProblem::NoClientAuth);
    }
    None
}

/// The handshake-time verifier: accepts a chain that one agency's CA
/// verifies and whose key usages allow signing and client authentication.
struct AgencyVerifier(Arc<Identities>);

impl std::fmt::Debug for AgencyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl AgencyVerifier {
    fn any(&self) -> Result<&Arc<dyn ClientCertVerifier>, rustls::Error> {
        self.0
            .agencies
            .first()
            .map(|a| &a.verifier)
            .ok_or_else(|| rustls::Error::General("no agency CA configured".into()))
    }
}

impl ClientCertVerifier for AgencyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.0.hints
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0.issuing_agency(end_entity, intermediates, now)?;
        if let Some(problem) = usage_problem(end_entity) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(problem))),
            ));
        }
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.any()?.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.any()?.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.any()
            .map(|v| v.supported_verify_schemes())
            .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
enum UsageProblem {
    #[error("the certificate's key usage does not allow digital signatures")]
    NoDigitalSignature,
    #[error("the certificate's extended key usage does not include TLS client authentication")]
    NoClientAuth,
}

/// The gateway's TLS server configuration: TLS 1.3 only, client
/// certificate required, HTTP/1.1, the key exchange groups `kx` allows.
pub fn server_config(
    identities: Arc<Identities>,
    cert: &Path,
    key: &Path,
    kx: KeyExchange,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider_for(kx))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(Arc::new(AgencyVerifier(identities)))
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A station's TLS client configuration: TLS 1.3, its own certificate, the
/// CA that issued the gateway's certificate, and X25519MLKEM768 offered
/// first (with a classical share beside it, so a classical gateway costs
/// no extra round trip).
pub fn client_config(
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c).map_err(|e| pem_error(ca, e))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok(Arc::new(config))
}
