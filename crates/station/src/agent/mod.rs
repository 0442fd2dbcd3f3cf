//! The station agent (`passerelle station run`): one process on the
//! officer's laptop that keeps the station in step with the gateway over
//! one kept mTLS connection ([`crate::client`]), and keeps what it
//! received and what it has to send in the vault ([`crate::vault`]).
//!
//! Each round, with the vault unlocked: signed items left in the plain
//! outbox by `passerelle send` move into the vault; every item not yet
//! accepted is submitted again as the same signed bytes (idempotent at the
//! gateway), FLASH first; then the inbox is long-polled and, when items
//! wait, up to [`FETCH_BATCH`] are fetched in one request (in the
//! gateway's order, FLASH first), each verified
//! ([`crate::client::Station::open`]: the sender's certificate and
//! signature, the gateway's attestation) and stored durably, and only then
//! are the stored ones acknowledged, in one request. An item the vault
//! holds already is acknowledged again without being stored twice, so a
//! crash or a cut link between the write and the ack loses nothing and
//! duplicates nothing: the gateway offers the unacknowledged items again
//! after their lease. An item that does not verify is neither stored nor
//! acknowledged. When the link
//! fails, the agent waits a growing, jittered, bounded pause and tries
//! again. With the vault locked it fetches nothing: it only watches the
//! link and how many items wait at the gateway.
//!
//! This module never decides, never signs an item and never writes
//! anything outside the vault but the outbox files it moves into it.

mod control;
mod settings;
mod view;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use control::{ask, serve_control, ControlReply, ControlRequest};
pub use settings::AgentSettings;
pub use view::{list_of, read_item, status_of, ListEntry, ReadPortion, Reading, Status};

use crate::client::{ClientError, Station};
use crate::domain::bytes::from_cbor;
use crate::domain::item::SignedItem;
use crate::domain::receipt::item_ref;
use crate::domain::wire::InboxEntry;
use crate::vault::{
    Outgoing, OutgoingState, Received, Record, Stored, Unlocked, Vault, VaultError,
};

/// Why the agent could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The gateway, the link or the station's files.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The vault.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The vault is locked: unlock it first.
    #[error("the vault is locked (passerelle station unlock)")]
    Locked,
    /// No such item in the vault.
    #[error("no item {0} in the vault")]
    NotFound(String),
    /// The control socket.
    #[error("agent control: {0}")]
    Control(String),
}

impl AgentError {
    fn is_transient(&self) -> bool {
        matches!(self, AgentError::Client(e) if e.is_transient())
    }
}

/// Whether the link to the gateway works, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkState {
    /// The last exchange with the gateway worked.
    pub up: bool,
    /// Since when it is up or down, seconds since the Unix epoch.
    pub since: i64,
    /// Why it is down.
    pub error: Option<String>,
}

struct Held {
    vault: Arc<Unlocked>,
    last_used: Instant,
}

/// A running agent's state, shared by its sync loop and its control
/// socket.
pub struct Agent {
    station: Station,
    settings: AgentSettings,
    vault: Vault,
    key: Mutex<Option<Held>>,
    link: Mutex<LinkState>,
    // Items the gateway delivered that did not verify (or could not be
    // fetched for good), by reference: never stored, never acknowledged,
    // not fetched again by this process.
    not_verified: Mutex<BTreeMap<String, String>>,
    waiting_at_gateway: AtomicUsize,
    // Whether the vault may hold items to send: set at start, by `queue`
    // and by a failed push. A round opens every vault file only then, not
    // each time it polls.
    to_push: AtomicBool,
    // When retention was last applied: at most every PURGE_EVERY.
    last_purge: Mutex<Option<Instant>>,
    wake: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each guarded value is valid whatever a panicking holder left.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most items one batched fetch asks for: on a link that drops, a batch
/// cut in the middle comes back whole after its lease, so batches are kept
/// small enough to get through between two drops.
const FETCH_BATCH: u32 = 10;

/// How often retention is applied while the agent runs (and once at
/// its first round): items are kept for days, so this is soon enough, and
/// a purge opens every vault file.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Agent {
    /// An agent for `station`, its vault locked.
    pub fn new(station: Station) -> Agent {
        let settings = station.config().agent.clone();
        Agent {
            vault: Vault::at(&settings.vault),
            settings,
            station,
            key: Mutex::new(None),
            link: Mutex::new(LinkState {
                up: false,
                since: unix_now(),
                error: Some("not connected yet".into()),
            }),
            not_verified: Mutex::new(BTreeMap::new()),
            waiting_at_gateway: AtomicUsize::new(0),
            to_push: AtomicBool::new(true),
            last_purge: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The station the agent speaks for.
    pub fn station(&self) -> &Station {
        &self.station
    }

    /// The agent's settings.
    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    /// Unlocks the vault with `passphrase` (an Argon2id derivation: call
    /// it off the async threads).
    pub fn unlock(&self, passphrase: &[u8]) -> Result<(), AgentError> {
        let vault = self.vault.unlock(passphrase)?;
        *lock(&self.key) = Some(Held {
            vault: Arc::new(vault),
            last_used: Instant::now(),
        });
        self.wake.notify_waiters();
        Ok(())
    }

    /// Forgets the vault's key.
    pub fn lock(&self) {
        *lock(&self.key) = None;
    }

    /// The unlocked vault, unless it is locked or its idle time ran out
    /// (then the key is forgotten here). `touch`: the officer is using it.
    pub fn unlocked(&self, touch: bool) -> Option<Arc<Unlocked>> {
        let mut key = lock(&self.key);
        let held = key.as_mut()?;
        if let Some(idle) = self.settings.idle_lock() {
            if held.last_used.elapsed() >= idle {
                tracing::info!("the vault was not used for a while; forgetting its key");
                *key = None;
                return None;
            }
        }
        if touch {
            held.last_used = Instant::now();
        }
        Some(held.vault.clone())
    }

    /// The link's state.
    pub fn link(&self) -> LinkState {
        lock(&self.link).clone()
    }

    fn link_is(&self, up: bool, error: Option<String>) {
        let mut link = lock(&self.link);
        if link.up != up {
            link.since = unix_now();
        }
        link.up = up;
        link.error = error;
    }

    /// What the officer sees in `station status`.
    pub fn status(&self) -> Result<Status, AgentError> {
        let scan = match self.unlocked(false) {
            Some(vault) => Some(vault.scan()?),
            None => None,
        };
        Ok(status_of(
            scan.as_ref(),
            Some(self.link()),
            self.waiting_at_gateway.load(Ordering::Relaxed),
            lock(&self.not_verified).clone(),
            unix_now(),
        ))
    }

    /// Runs until `shutdown` resolves: rounds of sync, with pauses after
    /// failures.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let min = Duration::from_millis(self.settings.reconnect_min_millis.max(1));
        let max = Duration::from_secs(self.settings.reconnect_max_seconds).max(min);
        let mut pause = min;
        loop {
            let round = tokio::select! {
                _ = &mut shutdown => return,
                r = self.round() => r,
            };
            let wait = match round {
                Ok(()) => {
                    pause = min;
                    Duration::ZERO
                }
                Err(e) => {
                    if e.is_transient() {
                        self.link_is(false, Some(e.to_string()));
                    }
                    tracing::warn!(error = %e, pause = ?pause, "sync failed; trying again");
                    let wait = jittered(pause);
                    pause = next_pause(pause, max);
                    wait
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn round(&self) -> Result<(), AgentError> {
        let wait = Duration::from_secs(self.settings.poll_seconds);
        let Some(vault) = self.unlocked(false) else {
            // Locked: nothing can be stored, so nothing is fetched; the
            // long-poll only tells whether the link works and what waits.
            // An unlock ends the wait.
            let inbox = tokio::select! {
                r = self.station.inbox(wait) => r?,
                _ = self.wake.notified() => return Ok(()),
            };
            self.link_is(true, None);
            self.waiting_at_gateway
                .store(inbox.len(), Ordering::Relaxed);
            if !inbox.is_empty() {
                // Items wait, but cannot be taken until an unlock: no
                // point asking again at once.
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                }
            }
            return Ok(());
        };
        self.sync_once(&vault, wait).await
    }

    /// One round with the vault unlocked: outbox moved in and pushed,
    /// retention purged, inbox long-polled up to `wait`, one batch of
    /// items fetched, each verified and stored, then the stored ones
    /// acknowledged together.
    pub async fn sync_once(&self, vault: &Unlocked, wait: Duration) -> Result<(), AgentError> {
        self.take_outbox(vault)?;
        if self.to_push.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.push(vault).await {
                self.to_push.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        let due = lock(&self.last_purge).map_or(true, |t| t.elapsed() >= PURGE_EVERY);
        if due {
            let purged = vault.purge(unix_now())?;
            *lock(&self.last_purge) = Some(Instant::now());
            if purged > 0 {
                tracing::info!(count = purged, "purged at the end of their retention");
            }
        }
        // An item handed to the agent (`station send`) or an unlock ends
        // the wait: a long-poll is only a GET, safe to drop. The batched
        // fetch that follows leases what it hands out, so it is never
        // dropped half way: it does not wait.
        let entries = tokio::select! {
            r = self.station.inbox(wait) => r?,
            _ = self.wake.notified() => return Ok(()),
        };
        self.link_is(true, None);
        self.waiting_at_gateway
            .store(entries.len(), Ordering::Relaxed);
        let new = {
            let not_verified = lock(&self.not_verified);
            entries
                .iter()
                .any(|e| !not_verified.contains_key(&e.item_ref))
        };
        if !new {
            return Ok(());
        }
        let fetched = self
            .station
            .fetch_batch(Duration::ZERO, FETCH_BATCH)
            .await?;
        if fetched.items.is_empty() && fetched.refused.is_empty() {
            // Listed but not handed out (taken meanwhile, or an item the
            // gateway cannot deliver): not asked again at once.
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
            return Ok(());
        }
        for r in fetched.refused {
            tracing::error!(item = %r, "the gateway's policy refused to deliver an item to this station");
            lock(&self.not_verified).insert(
                r,
                "the gateway's policy refused to deliver it to this station".into(),
            );
        }
        // In the gateway's order (FLASH first), each verified and on disk
        // before the one acknowledgement of them all. An item the vault
        // holds already (stored, then the ack was lost) is acknowledged
        // again, not stored twice.
        let mut kept = Vec::with_capacity(fetched.items.len());
        for f in &fetched.items {
            let reference = &f.entry.item_ref;
            if lock(&self.not_verified).contains_key(reference) {
                continue;
            }
            match self.receive(vault, &f.entry, &f.item, unix_now()) {
                Ok(_) => kept.push(reference.clone()),
                Err(
                    e @ (AgentError::Client(_) | AgentError::Vault(VaultError::Tampered { .. })),
                ) => {
                    tracing::error!(item = %reference, error = %e, "item not taken");
                    lock(&self.not_verified).insert(reference.clone(), e.to_string());
                }
                // The disk failed: what is already on it is acknowledged,
                // the rest comes back after its lease.
                Err(e) => {
                    self.acknowledge(&kept).await?;
                    return Err(e);
                }
            }
        }
        self.acknowledge(&kept).await?;
        self.waiting_at_gateway
            .store(entries.len().saturating_sub(kept.len()), Ordering::Relaxed);
        Ok(())
    }

    /// Acknowledges `refs`, each already stored, in one request; returns
    /// how many the gateway recorded (now or before). A reference it
    /// refuses is logged and does not stop the others: its item stays in
    /// the vault, and if the gateway offers it again it is acknowledged
    /// again without being stored twice.
    pub async fn acknowledge(&self, refs: &[String]) -> Result<usize, AgentError> {
        if refs.is_empty() {
            return Ok(0);
        }
        let results = self.station.ack_batch(refs).await?;
        let mut done = 0;
        for (sent, result) in refs.iter().zip(results) {
            if result.item_ref.as_deref().is_some_and(|r| r != sent) {
                tracing::error!(item = %sent, answer = ?result.item_ref, "the gateway answered an acknowledgement for another reference");
                continue;
            }
            match result.status.as_str() {
                "acked" | "already-acked" => done += 1,
                _ => tracing::warn!(
                    item = %sent,
                    problem = ?result.problem.as_ref().map(|p| p.slug().to_string()),
                    "the gateway refused the acknowledgement of a stored item"
                ),
            }
        }
        Ok(done)
    }

    /// Verifies `item` as delivered for `entry` and stores it durably.
    /// Nothing that fails a check reaches the vault.
    pub fn receive(
        &self,
        vault: &Unlocked,
        entry: &InboxEntry,
        item: &crate::domain::item::DeliveredItem,
        now: i64,
    ) -> Result<Stored, AgentError> {
        let delivery = self.station.open(item)?;
        if delivery.attestation.item_ref != entry.item_ref {
            return Err(ClientError::Unverified(
                "the gateway's attestation is for another item".into(),
            )
            .into());
        }
        let received = Received {
            item_ref: entry.item_ref.clone(),
            received_at: now,
            read_at: None,
            purge_after: Some(
                now.saturating_add(
                    self.settings
                        .retention_seconds(&delivery.manifest.label.level),
                ),
            ),
            due: entry.due,
            header: delivery.manifest.header,
            label: delivery.manifest.label,
            attestation: delivery.attestation,
            item: item.clone(),
        };
        Ok(vault.store_received(&received)?)
    }

    /// Puts a signed item in the vault to be sent (`station send`).
    pub fn queue(&self, vault: &Unlocked, item: SignedItem) -> Result<String, AgentError> {
        let header = item
            .own_manifest()
            .map_err(|e| ClientError::Outbox(format!("the item's manifest cannot be read: {e}")))?
            .header;
        let reference = item_ref(&self.station.config().principal, &header.id);
        if vault.outgoing(&reference)?.is_none() {
            vault.put(&Record::Outgoing(Outgoing {
                item_ref: reference.clone(),
                kept_at: unix_now(),
                attempts: 0,
                last_attempt: None,
                header,
                item,
                receipt: None,
                refused: None,
                purge_after: None,
            }))?;
        }
        self.to_push.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
        Ok(reference)
    }

    /// Moves what `passerelle send` left in the plain outbox into the
    /// vault; each plain file goes only once its sealed copy is durable.
    fn take_outbox(&self, vault: &Unlocked) -> Result<(), AgentError> {
        let dir = &self.station.config().outbox;
        let io = |e: std::io::Error| ClientError::Outbox(format!("{}: {e}", dir.display()));
        let files: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
            Ok(d) => d
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cbor"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e).into()),
        };
        for path in files {
            let bytes = std::fs::read(&path).map_err(io)?;
            match from_cbor::<SignedItem>(&bytes) {
                Ok(item) => {
                    self.queue(vault, item)?;
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "not a signed item; left in the outbox");
                    continue;
                }
            }
            std::fs::remove_file(&path).map_err(io)?;
        }
        Ok(())
    }

    /// Submits every item not yet accepted, FLASH first. Each attempt is
    /// recorded before it is made, so `status` counts what was sent
    /// without an answer even after a crash.
    async fn push(&self, vault: &Unlocked) -> Result<(), AgentError> {
        let mut pending: Vec<Outgoing> = vault
            .scan()?
            .records
            .into_iter()
            .filter_map(|r| match r {
                Record::Outgoing(o)
                    if matches!(
                        o.state(),
                        OutgoingState::Queued | OutgoingState::AwaitingReceipt
                    ) =>
                {
                    Some(o)
                }
                _ => None,
            })
            .collect();
        pending.sort_by_key(|o| (o.header.priority, o.kept_at));
        for mut o in pending {
            let now = unix_now();
            o.attempts = o.attempts.saturating_add(1);
            o.last_attempt = Some(now);
            vault.put(&Record::Outgoing(o.clone()))?;
            match self.station.submit(&o.item).await {
                Ok(receipt) => {
                    self.link_is(true, None);
                    o.receipt = Some(receipt);
                }
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => {
                    tracing::error!(item = %o.item_ref, error = %e, "the gateway refused an item for good");
                    o.refused = Some(e.to_string());
                }
            }
            o.purge_after = Some(
                now.saturating_add(
                    self.settings.retention_seconds(
                        &o.item
                            .own_manifest()
                            .map(|m| m.label.level)
                            .unwrap_or_default(),
                    ),
                ),
            );
            vault.put(&Record::Outgoing(o))?;
        }
        Ok(())
    }
}

/// The pause after one more failure in a row: twice the last, at most
/// `max`.
fn next_pause(pause: Duration, max: Duration) -> Duration {
    pause.saturating_mul(2).min(max)
}

/// A pause drawn between half of `pause` and `pause`.
fn jittered(pause: Duration) -> Duration {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    let r = ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map(|_| u16::from_le_bytes(b))
        .unwrap_or(u16::MAX);
    let half = pause / 2;
    half + half.mul_f64(f64::from(r) / f64::from(u16::MAX))
}

#[cfg(test)]
mod tests {
    use super::{jittered, next_pause};
    use std::time::Duration;

    #[test]
    fn pauses_grow_to_their_bound_and_stay_there() {
        let max = Duration::from_secs(60);
        let mut pause = Duration::from_millis(500);
        let mut seen = vec![pause];
        for _ in 0..20 {
            pause = next_pause(pause, max);
            seen.push(pause);
        }
        assert_eq!(seen[1], Duration::from_secs(1));
        assert!(seen.windows(2).all(|w| w[1] >= w[0] && w[1] <= max));
        assert_eq!(*seen.last().unwrap(), max);
    }

    #[test]
    fn pauses_are_jittered_within_their_bounds() {
        let p = Duration::from_millis(1000);
        let draws: Vec<Duration> = (0..50).map(|_| jittered(p)).collect();
        assert!(draws.iter().all(|d| *d >= p / 2 && *d <= p));
        assert!(draws.iter().any(|d| *d != draws[0]), "not all the same");
    }
}
