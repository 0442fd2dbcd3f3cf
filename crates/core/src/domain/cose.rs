//! COSE_Sign1 (RFC 9052 §4.2) signatures with EdDSA (Ed25519) and ES256.
//!
//! This is the one place the crate makes or checks a signature over a
//! payload: a station's signature on its item manifest, and (later) the
//! gateway's attestations. Structures come from `coset`, the signature
//! arithmetic from `ring`; nothing here is hand-made crypto. The algorithm in
//! the protected header must match the key's type, so a signature can never be
//! checked under an algorithm the signer did not choose.

use coset::{iana, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use ring::signature::{self, KeyPair as _};

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operator's key file is not a PKCS#8 Ed25519 or P-256 key.
    #[error("the private key is neither a PKCS#8 Ed25519 nor a PKCS#8 ECDSA P-256 key")]
    UnsupportedPrivateKey,
    /// The certificate could not be parsed.
    #[error("the certificate is not valid DER X.509: {0}")]
    BadCertificate(String),
    /// The certificate's key is of a type we do not sign with.
    #[error("the certificate's public key is neither Ed25519 nor ECDSA P-256")]
    UnsupportedPublicKey,
}

/// Why a COSE_Sign1 did not verify. Each variant is the signer's fault, or
/// tampering on the way.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoseError {
    /// The bytes are not a tagged COSE_Sign1 (an untagged one included).
    #[error("not a tagged COSE_Sign1 structure (CBOR tag 18)")]
    Malformed,
    /// The protected header does not name the content type the verifier
    /// expects, so the signed payload may be another kind of document.
    #[error("the protected header does not carry the expected content type")]
    ContentType,
    /// The protected header has no algorithm, or one that does not match the key.
    #[error("the signature algorithm is missing or does not match the signer's key")]
    AlgorithmMismatch,
    /// The payload is detached or missing.
    #[error("the COSE_Sign1 carries no payload")]
    NoPayload,
    /// The signature is not valid for this key and payload.
    #[error("the signature does not verify")]
    BadSignature,
}

/// A private key that signs COSE_Sign1 structures.
pub enum SigningKey {
    /// Ed25519, COSE algorithm EdDSA (-8).
    Ed25519(signature::Ed25519KeyPair),
    /// ECDSA P-256 with SHA-256, COSE algorithm ES256 (-7).
    Es256(signature::EcdsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        match self {
            SigningKey::Ed25519(_) => f.write_str("SigningKey::Ed25519(..)"),
            SigningKey::Es256(_) => f.write_str("SigningKey::Es256(..)"),
        }
    }
}

impl SigningKey {
    /// Loads a PKCS#8 (DER) Ed25519 or P-256 private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(SigningKey::Ed25519(k));
        }
        let rng = ring::rand::SystemRandom::new();
        signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map(SigningKey::Es256)
            .map_err(|_| KeyError::UnsupportedPrivateKey)
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            SigningKey::Ed25519(k) => PublicKey::Ed25519(k.public_key().as_ref().to_vec()),
            SigningKey::Es256(k) => PublicKey::Es256(k.public_key().as_ref().to_vec()),
        }
    }

    fn algorithm(&self) -> iana::Algorithm {
        match self {
            SigningKey::Ed25519(_) => iana::Algorithm::EdDSA,
            SigningKey::Es256(_) => iana::Algorithm::ES256,
        }
    }

    fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            SigningKey::Es256(k) => {
                let rng = ring::rand::SystemRandom::new();
                match k.sign(&rng, message) {
                    Ok(sig) => sig.as_ref().to_vec(),
                    // ring fails here only if the OS random source fails,
                    // which leaves no safe way to continue signing.
                    Err(_) => panic!("the system random number generator failed"),
                }
            }
        }
    }

    /// Signs `payload` as a tagged COSE_Sign1 with `content_type` in the
    /// protected header.
    pub fn sign1(&self, payload: Vec<u8>, content_type: &str) -> Vec<u8> {
        let protected = HeaderBuilder::new()
            .algorithm(self.algorithm())
            .content_type(content_type.to_string())
            .build();
        let sign1 = CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .create_signature(b"", |tbs| self.sign_raw(tbs))
            .build();
        match sign1.to_tagged_vec() {
            Ok(v) => v,
            Err(e) => panic!("bug: encoding a COSE_Sign1 we built failed: {e:?}"),
        }
    }
}

/// The payload of a tagged COSE_Sign1, WITHOUT checking its signature: only
/// for a signer reading back what it signed itself (a station's outbox).
pub fn payload_unverified(cose: &[u8]) -> Result<Vec<u8>, CoseError> {
    let sign1 = CoseSign1::from_tagged_slice(cose).map_err(|_| CoseError::Malformed)?;
    sign1.payload.ok_or(CoseError::NoPayload)
}

/// A public key that verifies COSE_Sign1 structures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// A raw 32-byte Ed25519 key.
    Ed25519(Vec<u8>),
    /// An uncompressed SEC1 P-256 point.
    Es256(Vec<u8>),
}

const OID_ED25519: &str = "1.3.101.112";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

impl PublicKey {
    /// The subject public key of a DER certificate.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, KeyError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| KeyError::BadCertificate(e.to_string()))?;
        let spki = cert.public_key();
        let key = spki.subject_public_key.data.to_vec();
        match spki.algorithm.algorithm.to_id_string().as_str() {
            OID_ED25519 => Ok(PublicKey::Ed25519(key)),
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                if curve.as_deref() == Some(OID_P256) {
                    Ok(PublicKey::Es256(key))
                } else {
                    Err(KeyError::UnsupportedPublicKey)
                }
            }
            _ => Err(KeyError::UnsupportedPublicKey),
        }
    }

    fn algorithm(&self) -> iana::Algorithm {
        match self {
            PublicKey::Ed25519(_) => iana::Algorithm::EdDSA,
            PublicKey::Es256(_) => iana::Algorithm::ES256,
        }
    }

    fn verify_raw(&self, message: &[u8], sig: &[u8]) -> bool {
        let (alg, key): (&dyn signature::VerificationAlgorithm, &[u8]) = match self {
            PublicKey::Ed25519(k) => (&signature::ED25519, k),
            PublicKey::Es256(k) => (&signature::ECDSA_P256_SHA256_FIXED, k),
        };
        signature::UnparsedPublicKey::new(alg, key)
            .verify(message, sig)
            .is_ok()
    }

    /// Verifies a tagged COSE_Sign1 whose protected header names
    /// `content_type`, and returns its payload. What every passerelle
    /// signature (envelope, receipt, attestation) is checked with.
    pub fn verify1_as(&self, cose: &[u8], content_type: &str) -> Result<Vec<u8>, CoseError> {
        let sign1 = self.verified(cose)?;
        let expected = coset::ContentType::Text(content_type.to_string());
        if sign1.protected.header.content_type.as_ref() != Some(&expected) {
            return Err(CoseError::ContentType);
        }
        sign1.payload.ok_or(CoseError::NoPayload)
    }

    /// Verifies a tagged COSE_Sign1 whatever its content type, and returns
    /// its payload: for signatures that are not passerelle documents (the
    /// COSE working group's examples).
    pub fn verify1(&self, cose: &[u8]) -> Result<Vec<u8>, CoseError> {
        self.verified(cose)?.payload.ok_or(CoseError::NoPayload)
    }

    /// The COSE_Sign1 in `cose`, once its tag, algorithm and signature are
    /// checked. The tag is required, as docs/formats.md says: a gateway
    /// that let an untagged envelope through would deliver to recipients
    /// what a strict reader of the format must refuse.
    fn verified(&self, cose: &[u8]) -> Result<CoseSign1, CoseError> {
        let sign1 = CoseSign1::from_tagged_slice(cose).map_err(|_| CoseError::Malformed)?;
        let expected = coset::RegisteredLabelWithPrivate::Assigned(self.algorithm());
        if sign1.protected.header.alg.as_ref() != Some(&expected) {
            return Err(CoseError::AlgorithmMismatch);
        }
        if sign1.payload.is_none() {
            return Err(CoseError::NoPayload);
        }
        sign1
            .verify_signature(b"", |sig, tbs| {
                if self.verify_raw(tbs, sig) {
                    Ok(())
                } else {
                    Err(())
                }
            })
            .map_err(|_| CoseError::BadSignature)?;
        Ok(sign1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed25519() -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        SigningKey::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn es256() -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        SigningKey::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    #[test]
    fn round_trip_both_algorithms() {
        for key in [ed25519(), es256()] {
            let cose = key.sign1(b"manifest".to_vec(), "application/cbor");
            assert_eq!(key.public_key().verify1(&cose).unwrap(), b"manifest");
        }
    }

    #[test]
    fn wrong_key_and_tampering_fail() {
        let (a, b) = (ed25519(), ed25519());
        let mut cose = a.sign1(b"manifest".to_vec(), "application/cbor");
        assert_eq!(b.public_key().verify1(&cose), Err(CoseError::BadSignature));
        // An ES256 key must not accept an EdDSA-labelled signature.
        assert_eq!(
            es256().public_key().verify1(&cose),
            Err(CoseError::AlgorithmMismatch)
        );
        let pos = cose.windows(8).position(|w| w == b"manifest").unwrap();
        cose[pos] ^= 1;
        assert_eq!(a.public_key().verify1(&cose), Err(CoseError::BadSignature));
        assert_eq!(
            a.public_key().verify1(b"\x01\x02"),
            Err(CoseError::Malformed)
        );
    }

    #[test]
    fn only_a_tagged_sign1_of_the_expected_content_type_verifies() {
        let key = ed25519();
        let tagged = key.sign1(b"manifest".to_vec(), "application/x-one");
        // RFC 9052 §4.2: tag 18 is one byte, 0xd2, before the array.
        assert_eq!(tagged[0], 0xd2);
        let public = key.public_key();
        assert_eq!(
            public.verify1_as(&tagged, "application/x-one").unwrap(),
            b"manifest"
        );
        // The same signature without its tag: refused, since the format
        // says tagged and a recipient following it would refuse it too.
        assert_eq!(public.verify1(&tagged[1..]), Err(CoseError::Malformed));
        assert_eq!(
            public.verify1_as(&tagged[1..], "application/x-one"),
            Err(CoseError::Malformed)
        );
        assert_eq!(
            public.verify1_as(&tagged, "application/x-two"),
            Err(CoseError::ContentType)
        );
    }
}
