//! `passerelle bench`: a load generator that runs apart from the gateway
//! it measures, so the same tool measures any running gateway (or, for
//! handshakes, any TLS endpoint that asks for client certificates).
//!
//! [`load`] drives N stations over kept-alive connections, with items
//! signed before timing starts, in a closed loop (each station sends its
//! next item when the previous one is answered) or an open loop at a fixed
//! rate (latency counted from when an item was due, so a slow gateway
//! cannot hide its queue). [`handshakes`] opens new mutual-TLS connections,
//! full or resumed. [`crypto`] times, in the same run, the one-core
//! per-item crypto limit against which throughput is reported, and
//! [`process`] reads the gateway's CPU time and peak memory from `/proc`.
//! This module only measures: it never decides whether a figure is good
//! enough (tests run it briefly to prove it works, never to time it), and
//! it never checks the gateway's signatures on what it receives (that is
//! the stations' work, not the gateway's, and on a shared machine it would
//! take CPU from the gateway being measured).

pub mod crypto;
pub mod handshakes;
pub mod load;
pub mod process;

use hdrhistogram::Histogram;
use std::time::Duration;

/// Latency percentiles of one operation, in microseconds.
#[derive(Debug, Clone)]
pub struct Latencies(pub Histogram<u64>);

impl Latencies {
    /// An empty histogram from 1 µs to 10 minutes, 3 significant digits.
    pub fn new() -> Self {
        // Bounds fixed and valid: 1 ≤ low, high ≥ 2·low, sigfig ≤ 5.
        Latencies(
            Histogram::new_with_bounds(1, 600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("valid histogram bounds")),
        )
    }

    /// Records one latency (saturating at the histogram's top).
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.max(1));
    }

    /// Adds another's recordings.
    pub fn add(&mut self, other: &Latencies) {
        // Same bounds on both sides: cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// How many were recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// `p50 / p99 / p99.9 / max` in milliseconds.
    pub fn summary(&self) -> String {
        let ms = |q: f64| self.0.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            ms(0.5),
            ms(0.99),
            ms(0.999),
            self.0.max() as f64 / 1000.0
        )
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}
