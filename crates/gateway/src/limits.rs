//! Admission control: which connection may take which slot, how fast, and
//! for how long.
//!
//! [`Admission`] holds the counts and rate limiters that the server asks
//! before each expensive step: before the TLS handshake (per source address
//! and in total), after identity (per principal and in total), before each
//! request (per-principal rate), and before a long-poll waits (its own
//! budget, so that waiting stations never take the slots that submissions
//! need). [`Activity`] and [`Tracked`] tell a connection's idle time from
//! the time its client spends sending headers, and [`collect_body`] reads
//! a body at a minimum rate. Every refusal here is decided from counters in
//! memory, before any work it protects; this module never reads a request's
//! content, never writes to the store, and never waits for a slot: over a
//! limit, the answer is no, at once.
//!
//! It is one file because every limit shares the same bookkeeping (a slot
//! released on drop, a keyed rate, a refusal with its cause and
//! `Retry-After`); about a third of it is the tests of those limits.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::config::LimitsConfig;
use crate::domain::principal::PrincipalId;

/// Why a connection or a request was turned away. The peer's doing (or
/// many peers' together); never a fault of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Too many connections, from all addresses, are in their handshake.
    #[error("too many handshakes in progress")]
    HandshakesPending,
    /// Too many connections from this address are in their handshake.
    #[error("too many handshakes in progress from this address")]
    HandshakesPendingForAddress,
    /// This address opens connections faster than its rate.
    #[error("this address opens connections too fast")]
    HandshakeRate,
    /// Too many authenticated connections, all principals together.
    #[error("the gateway serves as many connections as it may")]
    Connections,
    /// This principal holds as many connections as it may.
    #[error("you hold as many connections as you may")]
    ConnectionsForPrincipal,
    /// Too many long-polls wait, all principals together.
    #[error("the gateway holds as many long-polls as it may")]
    LongPolls,
    /// This principal has as many long-polls waiting as it may.
    #[error("you have as many long-polls waiting as you may")]
    LongPollsForPrincipal,
    /// This principal sends requests faster than its rate.
    #[error("you send requests faster than your rate")]
    RequestRate {
        /// When the next request will be let through.
        retry_after: Duration,
    },
}

impl Refusal {
    /// A short fixed cause for logs and the audit log (never peer text).
    pub fn cause(&self) -> &'static str {
        match self {
            Refusal::HandshakesPending => "handshakes-pending",
            Refusal::HandshakesPendingForAddress => "handshakes-pending-per-address",
            Refusal::HandshakeRate => "handshake-rate",
            Refusal::Connections => "connections",
            Refusal::ConnectionsForPrincipal => "connections-per-principal",
            Refusal::LongPolls => "long-polls",
            Refusal::LongPollsForPrincipal => "long-polls-per-principal",
            Refusal::RequestRate { .. } => "request-rate",
        }
    }

    /// When the caller may try again: the rate limiter's own answer, or a
    /// second for slots (they free as other requests end).
    pub fn retry_after(&self) -> Duration {
        match self {
            Refusal::RequestRate { retry_after } => *retry_after,
            _ => Duration::from_secs(1),
        }
    }
}

/// The key an address is counted under: an IPv6 host usually holds a whole
/// /64, so it counts as one address; an IPv4-mapped IPv6 address counts as
/// its IPv4 address.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn quota(per_second: u32, burst: u32) -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// Connections in their handshake: in total and per address. An address
/// is in the map only while it has one, so the map never holds more than
/// `handshakes_pending` entries.
#[derive(Default)]
struct Pending {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Authenticated connections and long-polls: in total and per principal.
/// A principal is in the map only while it holds one of either.
#[derive(Default)]
struct Held {
    connections: usize,
    long_polls: usize,
    per_principal: HashMap<PrincipalId, (usize, usize)>,
}

/// The admission state shared by every connection.
pub struct Admission {
    limits: LimitsConfig,
    // std Mutex, not tokio's: each critical section is a few counter
    // updates and never awaits, so a blocking lock is both correct and
    // cheaper (the mini-redis `db.rs` reasoning).
    pending: Mutex<Pending>,
    held: Mutex<Held>,
    handshake_rate: governor::DefaultKeyedRateLimiter<IpAddr>,
    request_rate: governor::DefaultKeyedRateLimiter<PrincipalId>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay consistent even if a holder panicked: each update is
    // complete before the lock is released.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: &LimitsConfig) -> Arc<Self> {
        Arc::new(Admission {
            limits: limits.clone(),
            pending: Mutex::default(),
            held: Mutex::default(),
            handshake_rate: governor::RateLimiter::keyed(quota(
                limits.handshakes_per_address_per_second,
                limits.handshake_burst_per_address,
            )),
            request_rate: governor::RateLimiter::keyed(quota(
                limits.requests_per_principal_per_second,
                limits.request_burst_per_principal,
            )),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    /// Admits a new TCP connection from `ip` to its TLS handshake, or says
    /// why not. The slot is held until the returned value is dropped.
    pub fn handshake(self: &Arc<Self>, ip: IpAddr) -> Result<HandshakeSlot, Refusal> {
        let key = address_key(ip);
        let mut pending = lock(&self.pending);
        if pending.total >= self.limits.handshakes_pending {
            return Err(Refusal::HandshakesPending);
        }
        let mine = pending.per_address.get(&key).copied().unwrap_or(0);
        if mine >= self.limits.handshakes_pending_per_address {
            return Err(Refusal::HandshakesPendingForAddress);
        }
        // The rate is checked last, so that a connection refused for a cap
        // does not also spend the address's rate.
        if self.handshake_rate.check_key(&key).is_err() {
            return Err(Refusal::HandshakeRate);
        }
        pending.total += 1;
        pending.per_address.insert(key, mine + 1);
        Ok(HandshakeSlot {
            admission: self.clone(),
            key,
        })
    }

    /// Admits an authenticated connection of `principal`, or says why not.
    /// The slot is held until the last clone of the session is dropped.
    pub fn session(self: &Arc<Self>, principal: &PrincipalId) -> Result<Arc<Session>, Refusal> {
        let mut held = lock(&self.held);
        if held.connections >= self.limits.max_connections {
            return Err(Refusal::Connections);
        }
        let entry = held.per_principal.entry(principal.clone()).or_default();
        if entry.0 >= self.limits.connections_per_principal {
            if *entry == (0, 0) {
                held.per_principal.remove(principal);
            }
            return Err(Refusal::ConnectionsForPrincipal);
        }
        entry.0 += 1;
        held.connections += 1;
        Ok(Arc::new(Session {
            admission: self.clone(),
            principal: principal.clone(),
        }))
    }

    /// Lets one request of `principal` through, or says when to retry.
    pub fn request(&self, principal: &PrincipalId) -> Result<(), Refusal> {
        self.request_rate.check_key(principal).map_err(|not_until| {
            use governor::clock::Clock;
            Refusal::RequestRate {
                retry_after: not_until.wait_time_from(self.request_rate.clock().now()),
            }
        })
    }

    /// Forgets rate-limiter state of addresses and principals that have
    /// been quiet long enough to be back at full burst, so the maps stay
    /// as small as the recent traffic. Called from housekeeping.
    pub fn forget_quiet(&self) {
        self.handshake_rate.retain_recent();
        self.handshake_rate.shrink_to_fit();
        self.request_rate.retain_recent();
        self.request_rate.shrink_to_fit();
    }

    /// (connections in their handshake, authenticated connections,
    /// long-polls): for logs, tests and benchmarks.
    pub fn counts(&self) -> (usize, usize, usize) {
        let pending = lock(&self.pending).total;
        let held = lock(&self.held);
        (pending, held.connections, held.long_polls)
    }

    /// Moves `delta_connections` and `delta_long_polls` for `principal`,
    /// dropping its entry when it holds nothing.
    fn release(&self, principal: &PrincipalId, connections: usize, long_polls: usize) {
        let mut held = lock(&self.held);
        held.connections = held.connections.saturating_sub(connections);
        held.long_polls = held.long_polls.saturating_sub(long_polls);
        if let Some(entry) = held.per_principal.get_mut(principal) {
            entry.0 = entry.0.saturating_sub(connections);
            entry.1 = entry.1.saturating_sub(long_polls);
            if *entry == (0, 0) {
                held.per_principal.remove(principal);
            }
        }
    }
}

/// A connection's place among those in their handshake.
pub struct HandshakeSlot {
    admission: Arc<Admission>,
    key: IpAddr,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut pending = lock(&self.admission.pending);
        pending.total = pending.total.saturating_sub(1);
        if let Some(n) = pending.per_address.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                pending.per_address.remove(&self.key);
            }
        }
    }
}

/// An authenticated connection's slot, counted for its principal.
pub struct Session {
    admission: Arc<Admission>,
    principal: PrincipalId,
}

impl Session {
    /// The principal the slot is counted for.
    pub fn principal(&self) -> &PrincipalId {
        &self.principal
    }

    /// Moves this connection from the connection budget to the long-poll
    /// budget while the returned slot lives: a waiting station holds no
    /// slot that a submission needs. Refused when the long-poll budget,
    /// in total or for the principal, is spent.
    pub fn long_poll(self: &Arc<Self>) -> Result<LongPollSlot, Refusal> {
        let limits = &self.admission.limits;
        let mut held = lock(&self.admission.held);
        if held.long_polls >= limits.long_polls {
            return Err(Refusal::LongPolls);
        }
        let entry = held
            .per_principal
            .entry(self.principal.clone())
            .or_default();
        if entry.1 >= limits.long_polls_per_principal {
            return Err(Refusal::LongPollsForPrincipal);
        }
        entry.1 += 1;
        entry.0 = entry.0.saturating_sub(1);
        held.long_polls += 1;
        held.connections = held.connections.saturating_sub(1);
        Ok(LongPollSlot {
            session: self.clone(),
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.admission.release(&self.principal, 1, 0);
    }
}

/// A long-poll's place in its budget; on drop the connection counts as a
/// connection again (possibly over the cap for a moment: it was admitted,
/// and its request is about to end).
pub struct LongPollSlot {
    // Keeps the session alive, so its connection is given back after the
    // long-poll is taken back.
    session: Arc<Session>,
}

impl Drop for LongPollSlot {
    fn drop(&mut self) {
        let admission = &self.session.admission;
        let mut held = lock(&admission.held);
        held.long_polls = held.long_polls.saturating_sub(1);
        held.connections += 1;
        if let Some(entry) = held.per_principal.get_mut(&self.session.principal) {
            entry.1 = entry.1.saturating_sub(1);
            entry.0 += 1;
        }
    }
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request in progress and no byte of the next one, since then.
    Idle(Instant),
    /// The first byte of a request arrived then; its headers are not
    /// complete yet.
    Head(Instant),
    /// This many requests are being served.
    Busy(usize),
}

/// What a connection's watcher should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing yet; look again at this time (or when woken).
    Wait(Option<Instant>),
    /// Idle too long: close it between requests.
    Idle,
    /// The headers took too long: drop it.
    HeaderTimeout,
}

/// One connection's activity, told apart into idle time (between
/// requests) and header time (from a request's first byte to its
/// dispatch), so each has its own timeout and a client that reuses a
/// connection never races a close in the middle of its request.
pub struct Activity {
    phase: Mutex<Phase>,
    changed: tokio::sync::Notify,
}

impl Activity {
    /// A connection that has just finished its handshake: idle.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            changed: tokio::sync::Notify::new(),
        })
    }

    fn bytes_read(&self) {
        let mut phase = lock(&self.phase);
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// A request was dispatched; it counts as in progress until the
    /// returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> RequestInProgress {
        let mut phase = lock(&self.phase);
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        };
        drop(phase);
        self.changed.notify_one();
        RequestInProgress {
            activity: self.clone(),
        }
    }

    /// What to do now, given the idle and header timeouts.
    pub fn verdict(&self, idle: Duration, header: Duration) -> Verdict {
        let now = Instant::now();
        match *lock(&self.phase) {
            Phase::Idle(since) if now >= since + idle => Verdict::Idle,
            Phase::Idle(since) => Verdict::Wait(Some(since + idle)),
            Phase::Head(since) if now >= since + header => Verdict::HeaderTimeout,
            Phase::Head(since) => Verdict::Wait(Some(since + header)),
            // A request in progress has its own bounds (body rate, the
            // long-poll's wait); the watcher is woken when it ends.
            Phase::Busy(_) => Verdict::Wait(None),
        }
    }

    /// Resolves when the phase changed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

/// A request in progress; its end starts the connection's idle time.
pub struct RequestInProgress {
    activity: Arc<Activity>,
}

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        let mut phase = lock(&self.activity.phase);
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
        drop(phase);
        self.activity.changed.notify_one();
    }
}

/// A stream whose reads are reported to an [`Activity`]: the first byte
/// after an idle time starts the header timeout.
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Tracked { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// How a body must arrive: at most `max_bytes`, and after `grace`, at
/// least `min_bytes_per_second` on average (each `min_bytes_per_second`
/// bytes received buy one more second).
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    /// Largest body accepted.
    pub max_bytes: usize,
    /// Time before the minimum rate applies.
    pub grace: Duration,
    /// Minimum average rate after the grace.
    pub min_bytes_per_second: u64,
}

impl BodyPace {
    /// The pace `limits` ask for.
    pub fn from_limits(limits: &LimitsConfig) -> Self {
        BodyPace {
            max_bytes: limits.max_body_bytes,
            grace: Duration::from_secs(limits.body_grace_seconds),
            min_bytes_per_second: limits.body_min_bytes_per_second.max(1),
        }
    }
}

/// Why a body was not read whole. The client's doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is (or is declared) larger than the limit.
    #[error("bodies are limited to {0} bytes")]
    TooLarge(usize),
    /// The body arrived slower than the minimum rate.
    #[error("the body arrived slower than {0} bytes per second")]
    TooSlow(u64),
    /// The client closed the connection (or broke the framing) before the
    /// body was complete.
    #[error("the connection ended before the body was complete")]
    Incomplete,
}

/// Reads `body` whole under `pace`. A declared length over the limit is
/// refused before a byte of it is read.
pub async fn collect_body(mut body: Body, pace: BodyPace) -> Result<Bytes, BodyError> {
    use hyper::body::Body as _;
    if body.size_hint().lower() > pace.max_bytes as u64 {
        return Err(BodyError::TooLarge(pace.max_bytes));
    }
    let start = Instant::now();
    let mut got = BytesMut::new();
    loop {
        // Each min_bytes_per_second bytes received buy one more second.
        let earned = Duration::from_secs_f64(got.len() as f64 / pace.min_bytes_per_second as f64);
        let deadline = start + pace.grace + earned;
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::TooSlow(pace.min_bytes_per_second)),
            Ok(None) => return Ok(got.freeze()),
            Ok(Some(Err(_))) => return Err(BodyError::Incomplete),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if got.len() + data.len() > pace.max_bytes {
                return Err(BodyError::TooLarge(pace.max_bytes));
            }
            got.extend_from_slice(&data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsConfig {
        LimitsConfig {
            handshakes_pending: 3,
            handshakes_pending_per_address: 2,
            handshake_burst_per_address: 100,
            handshakes_per_address_per_second: 100,
            max_connections: 3,
            connections_per_principal: 2,
            long_polls: 2,
            long_polls_per_principal: 1,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn handshake_slots_per_address_and_in_total() {
        let a = Admission::new(&limits());
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = a.handshake(one).unwrap();
        let _s2 = a.handshake(one).unwrap();
        assert_eq!(
            a.handshake(one).err(),
            Some(Refusal::HandshakesPendingForAddress)
        );
        let _s3 = a.handshake(two).unwrap();
        assert_eq!(a.handshake(two).err(), Some(Refusal::HandshakesPending));
        drop(s1);
        let _s4 = a.handshake(one).unwrap();
        assert_eq!(a.counts().0, 3);
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let a = Admission::new(&limits());
        let _x = a.handshake("2001:db8::1".parse().unwrap()).unwrap();
        let _y = a.handshake("2001:db8::2:3".parse().unwrap()).unwrap();
        assert_eq!(
            a.handshake("2001:db8::ffff".parse().unwrap()).err(),
            Some(Refusal::HandshakesPendingForAddress)
        );
    }

    #[test]
    fn handshake_rate_per_address() {
        let a = Admission::new(&LimitsConfig {
            handshakes_per_address_per_second: 1,
            handshake_burst_per_address: 2,
            ..LimitsConfig::default()
        });
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(a.handshake(ip).is_ok());
        assert!(a.handshake(ip).is_ok());
        assert_eq!(a.handshake(ip).err(), Some(Refusal::HandshakeRate));
        assert!(a.handshake("198.51.100.8".parse().unwrap()).is_ok());
    }

    #[test]
    fn long_polls_leave_the_connection_budget() {
        let a = Admission::new(&limits());
        let p: PrincipalId = "police/lo/rabat".parse().unwrap();
        let q: PrincipalId = "vsse/analysis/ct".parse().unwrap();
        let s1 = a.session(&p).unwrap();
        let s2 = a.session(&p).unwrap();
        assert_eq!(a.session(&p).err(), Some(Refusal::ConnectionsForPrincipal));
        let waiting = s1.long_poll().unwrap();
        assert_eq!(s2.long_poll().err(), Some(Refusal::LongPollsForPrincipal));
        // The waiting connection gave its slot back.
        let s3 = a.session(&p).unwrap();
        let _t = a.session(&q).unwrap();
        assert_eq!(a.session(&q).err(), Some(Refusal::Connections));
        assert_eq!(a.counts(), (0, 3, 1));
        drop(waiting);
        assert_eq!(a.counts(), (0, 4, 0));
        drop((s1, s2, s3));
        assert_eq!(a.counts(), (0, 1, 0));
    }

    #[test]
    fn request_rate_says_when_to_retry() {
        let a = Admission::new(&LimitsConfig {
            requests_per_principal_per_second: 1,
            request_burst_per_principal: 2,
            ..LimitsConfig::default()
        });
        let p: PrincipalId = "police/lo/rabat".parse().unwrap();
        assert!(a.request(&p).is_ok());
        assert!(a.request(&p).is_ok());
        let refusal = a.request(&p).unwrap_err();
        assert!(refusal.retry_after() > Duration::ZERO);
        assert!(refusal.retry_after() <= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_or_too_slow_or_cut() {
        let pace = BodyPace {
            max_bytes: 1024,
            grace: Duration::from_millis(100),
            min_bytes_per_second: 1000,
        };
        let ok = collect_body(Body::from(vec![1u8; 1000]), pace).await;
        assert_eq!(ok.unwrap().len(), 1000);
        let big = collect_body(Body::from(vec![1u8; 1025]), pace).await;
        assert_eq!(big.unwrap_err(), BodyError::TooLarge(1024));

        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        tx.send(Ok(Bytes::from_static(b"abc"))).await.unwrap();
        let slow = collect_body(Body::new(Frames(rx)), pace).await;
        assert_eq!(slow.unwrap_err(), BodyError::TooSlow(1000));
        drop(tx);

        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        tx.send(Ok(Bytes::from_static(b"abc"))).await.unwrap();
        tx.send(Err(std::io::Error::other("reset"))).await.unwrap();
        let cut = collect_body(Body::new(Frames(rx)), pace).await;
        assert_eq!(cut.unwrap_err(), BodyError::Incomplete);
    }

    /// A body whose chunks come from a channel.
    struct Frames(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

    impl hyper::body::Body for Frames {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
        }
    }
}
