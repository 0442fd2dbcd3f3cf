//! The vault's cryptography, all of it from maintained crates: the data
//! keys are random (ring's system generator), wrapped under a key that
//! Argon2id (RFC 9106) derives from the officer's passphrase, and every
//! vault file is sealed with XChaCha20-Poly1305 under a fresh random
//! 24-byte nonce. A file's name is an HMAC-SHA-256 of what it holds under
//! a second data key, so the name neither reveals the item nor can be
//! computed without the passphrase; the name is also the seal's associated
//! data, so a file renamed or swapped for another fails to open.
//!
//! This module never writes a file and never keeps a key it did not
//! receive; keys live in [`Keys`], which wipes them when dropped.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::VaultError;
use crate::domain::bytes::{from_cbor, to_cbor, Bytes};

/// Version of the key file and of sealed files; bumped on any change.
const FORMAT: u32 = 1;
const NONCE: usize = 24;
const KEY: usize = 32;
const SALT: usize = 16;
// Named in the wrapping's associated data so that a key file can never be
// taken for anything else sealed with a passphrase.
const WRAP_CONTEXT: &str = "passerelle station vault key";

/// Argon2id's cost, recorded in the key file so a vault made with one
/// cost opens with it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, one lane: RFC 9106's second recommended option
    /// (§4), a fraction of a second on a laptop, which is what each
    /// unlock costs, and what each guess costs whoever took the laptop.
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// The least a vault accepts, when it is made and when it is opened (a
    /// key file edited down to a cheap cost is refused): 8 MiB, one pass.
    pub const MINIMUM: KdfParams = KdfParams {
        memory_kib: 8 * 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn check(&self) -> Result<Params, VaultError> {
        let min = Self::MINIMUM;
        if self.memory_kib < min.memory_kib
            || self.iterations < min.iterations
            || self.parallelism < min.parallelism
            || self.parallelism > 16
            || self.memory_kib > 4 * 1024 * 1024
            || self.iterations > 100
        {
            return Err(VaultError::Format(format!(
                "Argon2id cost {self:?} is out of bounds (at least {min:?}, at most 4 GiB, 100 passes, 16 lanes)"
            )));
        }
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY),
        )
        .map_err(|e| VaultError::Format(format!("Argon2id cost: {e}")))
    }
}

/// The part of the key file the wrapping authenticates.
#[derive(Serialize)]
struct WrapContext<'a> {
    context: &'a str,
    format: u32,
    kdf: &'a KdfParams,
    salt: &'a Bytes,
}

/// The vault's key file: the data keys, wrapped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyFile {
    format: u32,
    kdf: KdfParams,
    salt: Bytes,
    nonce: Bytes,
    wrapped: Bytes,
}

/// The two data keys of an unlocked vault: one seals, one names.
pub(crate) struct Keys {
    seal: Zeroizing<[u8; KEY]>,
    name: ring::hmac::Key,
}

fn random<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| VaultError::Format("the system's random generator failed".into()))?;
    Ok(out)
}

fn passphrase_key(
    kdf: &KdfParams,
    salt: &[u8],
    passphrase: &[u8],
) -> Result<Zeroizing<[u8; KEY]>, VaultError> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, kdf.check()?);
    let mut key = Zeroizing::new([0u8; KEY]);
    argon
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|e| VaultError::Format(format!("Argon2id: {e}")))?;
    Ok(key)
}

impl KeyFile {
    /// New data keys, wrapped under `passphrase`.
    pub(crate) fn new(passphrase: &[u8], kdf: KdfParams) -> Result<(KeyFile, Keys), VaultError> {
        let material = Zeroizing::new(random::<{ 2 * KEY }>()?);
        let file = Self::wrap(material.as_ref(), passphrase, kdf)?;
        Ok((file, Keys::from_material(material.as_ref())))
    }

    fn wrap(material: &[u8], passphrase: &[u8], kdf: KdfParams) -> Result<KeyFile, VaultError> {
        let salt = Bytes(random::<SALT>()?.to_vec());
        let nonce = random::<NONCE>()?;
        let kek = passphrase_key(&kdf, &salt.0, passphrase)?;
        let aad = to_cbor(&WrapContext {
            context: WRAP_CONTEXT,
            format: FORMAT,
            kdf: &kdf,
            salt: &salt,
        });
        let wrapped = XChaCha20Poly1305::new(kek.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: material,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Format("wrapping the vault key failed".into()))?;
        Ok(KeyFile {
            format: FORMAT,
            kdf,
            salt,
            nonce: Bytes(nonce.to_vec()),
            wrapped: Bytes(wrapped),
        })
    }

    fn material(&self, passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let kek = passphrase_key(&self.kdf, &self.salt.0, passphrase)?;
        let aad = to_cbor(&WrapContext {
            context: WRAP_CONTEXT,
            format: self.format,
            kdf: &self.kdf,
            salt: &self.salt,
        });
        let material = XChaCha20Poly1305::new(kek.as_ref().into())
            .decrypt(
                XNonce::from_slice(&self.nonce.0),
                Payload {
                    msg: &self.wrapped.0,
                    aad: &aad,
                },
            )
            // A wrong passphrase and an edited key file look the same
            // here, and must: either way, nothing opens.
            .map_err(|_| VaultError::WrongPassphrase)?;
        let material = Zeroizing::new(material);
        if material.len() != 2 * KEY {
            return Err(VaultError::Format(
                "the vault key has the wrong size".into(),
            ));
        }
        Ok(material)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<KeyFile, VaultError> {
        let file: KeyFile = from_cbor(bytes)
            .map_err(|e| VaultError::Format(format!("the key file is not a vault key: {e}")))?;
        if file.format != FORMAT || file.nonce.0.len() != NONCE || file.salt.0.len() != SALT {
            return Err(VaultError::Format(format!(
                "the key file is not a version {FORMAT} vault key"
            )));
        }
        Ok(file)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// The data keys, if `passphrase` is the one they were wrapped under.
    pub(crate) fn unwrap_keys(&self, passphrase: &[u8]) -> Result<Keys, VaultError> {
        Ok(Keys::from_material(self.material(passphrase)?.as_ref()))
    }

    /// The same data keys wrapped under a new passphrase (and a new salt).
    pub(crate) fn rewrap(
        &self,
        old: &[u8],
        new: &[u8],
        kdf: KdfParams,
    ) -> Result<KeyFile, VaultError> {
        Self::wrap(self.material(old)?.as_ref(), new, kdf)
    }
}

impl Keys {
    fn from_material(material: &[u8]) -> Keys {
        let mut seal = Zeroizing::new([0u8; KEY]);
        seal.copy_from_slice(&material[..KEY]);
        Keys {
            seal,
            name: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &material[KEY..]),
        }
    }

    /// The file name for `what`: hex HMAC-SHA-256, the same every time for
    /// the same `what` (so an item stored twice lands on one file), and
    /// meaningless without the key.
    pub(crate) fn name(&self, what: &str) -> String {
        hex::encode(ring::hmac::sign(&self.name, what.as_bytes()).as_ref())
    }

    /// `plain` sealed for the file `name`: format, nonce, ciphertext.
    pub(crate) fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, VaultError> {
        let nonce = random::<NONCE>()?;
        let sealed = XChaCha20Poly1305::new(self.seal.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Format("sealing failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(FORMAT as u8);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// What the file `name` holds, if it was sealed by this vault for this
    /// name and not changed since.
    pub(crate) fn open(&self, name: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let tampered = || VaultError::Tampered {
            file: name.to_string(),
        };
        if sealed.len() < 1 + NONCE || sealed[0] != FORMAT as u8 {
            return Err(tampered());
        }
        let (nonce, body) = sealed[1..].split_at(NONCE);
        XChaCha20Poly1305::new(self.seal.as_ref().into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: name.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| tampered())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (KeyFile, Keys) {
        KeyFile::new(b"correct horse", KdfParams::MINIMUM).unwrap()
    }

    #[test]
    fn the_right_passphrase_unwraps_the_same_keys_and_a_wrong_one_nothing() {
        let (file, keys) = keys();
        let file = KeyFile::decode(&file.encode()).unwrap();
        let again = file.unwrap_keys(b"correct horse").unwrap();
        assert_eq!(keys.name("x"), again.name("x"));
        let sealed = keys.seal("n", b"hello").unwrap();
        assert_eq!(again.open("n", &sealed).unwrap().as_slice(), b"hello");
        assert!(matches!(
            file.unwrap_keys(b"correct horsf"),
            Err(VaultError::WrongPassphrase)
        ));
    }

    #[test]
    fn a_key_file_edited_to_a_cheaper_cost_is_refused() {
        let (mut file, _) = keys();
        file.kdf.memory_kib = 64;
        assert!(matches!(
            file.unwrap_keys(b"correct horse"),
            Err(VaultError::Format(_))
        ));
    }

    #[test]
    fn a_sealed_file_changed_or_renamed_does_not_open() {
        let (_, keys) = keys();
        let sealed = keys.seal("a", b"secret").unwrap();
        assert!(keys.open("b", &sealed).is_err(), "renamed");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(keys.open("a", &bad).is_err(), "byte {i} flipped");
        }
        assert!(keys.open("a", &sealed[..sealed.len() - 1]).is_err());
        assert_eq!(keys.open("a", &sealed).unwrap().as_slice(), b"secret");
    }

    #[test]
    fn a_new_passphrase_keeps_the_data_keys() {
        let (file, keys) = keys();
        let new = file
            .rewrap(b"correct horse", b"battery staple", KdfParams::MINIMUM)
            .unwrap();
        assert!(new.unwrap_keys(b"correct horse").is_err());
        assert_eq!(
            new.unwrap_keys(b"battery staple").unwrap().name("x"),
            keys.name("x")
        );
        assert!(matches!(
            file.rewrap(b"wrong", b"x", KdfParams::MINIMUM),
            Err(VaultError::WrongPassphrase)
        ));
    }
}
