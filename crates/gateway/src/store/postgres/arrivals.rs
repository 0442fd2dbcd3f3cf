//! Arrivals across instances: PostgreSQL's LISTEN/NOTIFY.
//!
//! Owns the channel's name (an appending transaction notifies on it the
//! recipients of the items it stores, see `append.rs`; the server delivers
//! the notifications only if and when that transaction commits) and the listening
//! thread that hands each notified recipient to the gateway's hook, on a
//! connection of its own, connecting again after a failure. It is a
//! wake-up and nothing more: it never reads or changes a row, and a lost
//! notification only leaves a long-poll to its next look at the inbox.

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::backend;
use super::tls::Connector;
use crate::domain::principal::PrincipalId;
use crate::store::{ArrivalHook, StoreError};

/// The channel every instance of one database listens on.
pub(super) const CHANNEL: &str = "passerelle_arrivals";

/// How often the listening thread looks whether its store was dropped.
const POLL: Duration = Duration::from_millis(500);

/// Pause before connecting again after a failure.
const RECONNECT: Duration = Duration::from_secs(1);

/// The listening thread; it stops (within [`POLL`]) once this is dropped.
pub(super) struct Listener {
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Starts a thread listening on the database `connector` reaches, calling
/// `wake` with each notified recipient.
pub(super) fn listen(connector: Connector, wake: ArrivalHook) -> Listener {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("passerelle-arrivals".into())
        .spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                match connector.connect() {
                    Ok(mut client) => match client.batch_execute(&format!("LISTEN {CHANNEL}")) {
                        Ok(()) => {
                            if let Err(e) = pump(&mut client, &stopped, &wake) {
                                tracing::warn!(error = %e, "listening for arrivals on other instances: connecting again");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                    },
                    Err(e) => tracing::warn!(error = %e, "listening for arrivals on other instances"),
                }
                if !stopped.load(Ordering::Acquire) {
                    std::thread::sleep(RECONNECT);
                }
            }
        });
    if let Err(e) = spawned {
        // Long-polls still look again at their recheck period.
        tracing::warn!(error = %e, "cannot start the thread listening for arrivals");
    }
    Listener { stop }
}

/// Hands notifications to `wake` until `stop` or a connection error.
fn pump(client: &mut Client, stop: &AtomicBool, wake: &ArrivalHook) -> Result<(), StoreError> {
    while !stop.load(Ordering::Acquire) {
        {
            let mut notifications = client.notifications();
            let mut batch = notifications.timeout_iter(POLL);
            while let Some(note) = batch.next().map_err(backend)? {
                if note.channel() != CHANNEL {
                    continue;
                }
                // Anything else on the channel is not ours to act on.
                if let Ok(who) = note.payload().parse::<PrincipalId>() {
                    wake(&who);
                }
            }
        }
        if client.is_closed() {
            return Err(StoreError::Backend("the connection closed".into()));
        }
    }
    Ok(())
}
