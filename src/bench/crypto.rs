//! The one-core per-item crypto limit: how many items per second one core
//! could take if the gateway did nothing but the signature work of a
//! submitted item, one Ed25519 verification (the sender's signature) and
//! two Ed25519 signatures (the receipt, and the audit or delivery
//! signature), with ring, as the gateway does. Throughput figures are
//! reported as a ratio to it, measured in the same run, so that figures
//! from a busier or quieter machine stay comparable. Only times ring.

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use std::time::{Duration, Instant};

/// What one core did.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// One Ed25519 signature over a 256-byte message.
    pub sign: Duration,
    /// One Ed25519 verification over a 1 KiB message.
    pub verify: Duration,
}

impl Limit {
    /// The signature work of one item: one verification, two signatures.
    pub fn per_item(&self) -> Duration {
        self.verify + self.sign * 2
    }

    /// Items per second on one core at that cost.
    pub fn items_per_second(&self) -> f64 {
        1.0 / self.per_item().as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Why the limit could not be measured.
#[derive(Debug, thiserror::Error)]
#[error("ring could not make or use an Ed25519 key")]
pub struct CryptoError;

/// Times signatures and verifications on this thread for about `budget`
/// (half each), and answers the mean of each.
pub fn measure(budget: Duration) -> Result<Limit, CryptoError> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| CryptoError)?;
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| CryptoError)?;
    let item = vec![0x5a_u8; 1024];
    let receipt = vec![0xa5_u8; 256];
    let signature = key.sign(&item);
    let public = UnparsedPublicKey::new(&ED25519, key.public_key().as_ref().to_vec());
    let half = budget / 2;

    let (mut signs, started) = (0u32, Instant::now());
    while started.elapsed() < half || signs == 0 {
        std::hint::black_box(key.sign(std::hint::black_box(&receipt)));
        signs += 1;
    }
    let sign = started.elapsed() / signs;

    let (mut verifies, started) = (0u32, Instant::now());
    while started.elapsed() < half || verifies == 0 {
        public
            .verify(std::hint::black_box(&item), signature.as_ref())
            .map_err(|_| CryptoError)?;
        verifies += 1;
    }
    let verify = started.elapsed() / verifies;
    Ok(Limit { sign, verify })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_inverse_of_one_verify_and_two_signs() {
        let l = Limit {
            sign: Duration::from_micros(20),
            verify: Duration::from_micros(60),
        };
        assert_eq!(l.per_item(), Duration::from_micros(100));
        assert!((l.items_per_second() - 10_000.0).abs() < 1e-6);
    }

    #[test]
    fn a_short_measurement_gives_positive_times() {
        let l = measure(Duration::from_millis(20)).unwrap();
        assert!(l.sign > Duration::ZERO && l.verify > Duration::ZERO);
    }
}
