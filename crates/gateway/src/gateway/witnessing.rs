//! Witness cosigning, the gateway's side: each new signed checkpoint is
//! sent to every witness of `gateway.toml`'s `[[witness]]` (C2SP
//! `tlog-witness` `add-checkpoint`, through
//! [`crate::witness::client::WitnessClient`]), and the cosignatures that
//! come back are kept on the stored checkpoint itself.
//!
//! This module owns one background task per witness, the consistency proof
//! from the size that witness last cosigned (cut from the log service's
//! tree; after a `409` it sends again once from the size the witness
//! gives), the keeping of the answer, and the report of a refusal (an
//! error log line and one `witness-refused` audit entry per witness and
//! cause). [`ask`], one exchange about the latest stored checkpoint, is
//! also what `passerelle audit export` calls for the checkpoint it signs.
//! It never blocks a submission or a checkpoint: the tasks run beside the
//! exchange and are only woken by [`Gateway::checkpoint`]. It
//! never changes a stored checkpoint's body or the gateway's signature:
//! the store only lets lines be added ([`crate::store::Store::add_cosignatures`]),
//! so the stored note is the signed one with `cosignature/v1` lines after
//! it, which every reader of checkpoints (start checks, proofs, receipts,
//! `/v1/audit/checkpoint`, `audit export`) already accepts, since
//! signature lines of unknown keys are skipped.
//!
//! Why on the note rather than beside it: every place that hands out a
//! checkpoint then hands out the cosigned one with no change, and an export
//! carries the cosignatures in the C2SP layout auditors and other tools
//! read. A checkpoint handed out before its witnesses answered has fewer
//! lines than later; its signed body is the same.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::{blocking, AuditLog, Gateway};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::cosignature::{self, CosignatureVerifier};
use crate::audit::event::{clip, AuditEvent, MAX_TEXT};
use crate::audit::signed_note::{self, VerifierKey};
use crate::config::WitnessEndpoint;
use crate::store::{StoreError, Tamper};
use crate::witness::client::{ClientError, WitnessClient};

/// Bounds one exchange with a witness (connect, TLS, answer).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a witness could not be reached, when to try again if no new
/// checkpoint comes first.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How long a clean stop waits for the witnesses to answer on the final
/// checkpoint: two exchanges each, and the store write.
const SETTLE: Duration = Duration::from_secs(25);
/// Attempts to add a cosignature to a note that other writers change.
const STORE_ATTEMPTS: usize = 4;

/// The witnesses' tasks, as the gateway wakes and waits for them.
pub struct Witnessing {
    /// The size of the latest checkpoint signed, for the tasks.
    latest: watch::Sender<u64>,
    /// Per witness, the latest size it was asked about and answered (or
    /// failed to), for [`Gateway::settle_witnesses`].
    handled: Vec<watch::Receiver<u64>>,
}

/// The clients of the configured witnesses: the TLS roots of each come
/// from its `ca` file (TLS 1.3 only).
pub fn clients(endpoints: &[WitnessEndpoint]) -> Result<Vec<WitnessClient>, String> {
    endpoints
        .iter()
        .map(|w| {
            let tls = match &w.ca {
                None => None,
                Some(ca) => {
                    let mut roots = rustls::RootCertStore::empty();
                    for cert in crate::tls::load_certs(ca).map_err(|e| e.to_string())? {
                        roots
                            .add(cert)
                            .map_err(|e| format!("{}: {e}", ca.display()))?;
                    }
                    let config =
                        rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                            .with_protocol_versions(&[&rustls::version::TLS13])
                            .map_err(|e| e.to_string())?
                            .with_root_certificates(roots)
                            .with_no_client_auth();
                    Some(Arc::new(config))
                }
            };
            WitnessClient::new(&w.url, w.key.clone(), tls, EXCHANGE_TIMEOUT)
                .map_err(|e| format!("[[witness]] {}: {e}", w.key.label()))
        })
        .collect()
}

/// At start, before anything is appended: what the witnesses say against
/// the stored log. A witness that cosigned a larger checkpoint of this log
/// than the store holds (a restored backup, or a database rolled back with
/// the instance's head file) saw checkpoints that the stored log no longer
/// extends. Each witness is sent a checkpoint of the stored head, signed
/// now and not stored, from that same size: a witness that last cosigned
/// that size cosigns it again (nothing changes), one that knows another
/// size answers 409 with it, one that cosigned another tree of that size
/// refuses it as inconsistent (422). A witness that cannot be reached is
/// logged and skipped: the start does not wait on a witness being up.
pub async fn behind_witnesses(
    clients: &[WitnessClient],
    log: &AuditLog,
    key: &crate::keys::GatewayKey,
) -> Result<Vec<Tamper>, StoreError> {
    use crate::store::Sealer as _;
    let head = log.head();
    let mut found = Vec::new();
    if clients.is_empty() {
        return Ok(found);
    }
    let note = key
        .seal(head)
        .map_err(|e| StoreError::Invariant(format!("cannot sign the head: {e}")))?;
    for client in clients {
        let what = format!("checkpoint witness {} cosigned", client.verifier().label());
        match client.add_checkpoint(head.size, &[], &note).await {
            Err(ClientError::Conflict { known_size, .. }) if known_size > head.size => {
                // Another instance on the same database may have appended
                // and been cosigned since the head was read.
                log.catch_up()?;
                let stored = log.head().size;
                if known_size > stored {
                    found.push(Tamper::Truncated {
                        what,
                        signed: known_size,
                        stored,
                    });
                }
            }
            Err(ClientError::Refused { status: 422, .. }) => found.push(Tamper::EntriesChanged {
                what,
                size: head.size,
            }),
            Ok(_) | Err(ClientError::Conflict { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, "a witness could not be asked at start; starting without its view");
            }
        }
    }
    Ok(found)
}

/// Starts one task per witness for `gateway` and hooks them to its
/// checkpoints. Call once, before the first checkpoint is signed.
pub fn start(gateway: &Arc<Gateway>, clients: Vec<WitnessClient>) {
    if clients.is_empty() {
        return;
    }
    let (latest, _) = watch::channel(0u64);
    let mut handled = Vec::new();
    for client in clients {
        let (done, done_rx) = watch::channel(0u64);
        handled.push(done_rx);
        let task = Task {
            verifier: client.verifier().clone(),
            client,
            gateway: Arc::downgrade(gateway),
            known: 0,
            refused: None,
            done,
        };
        tokio::spawn(task.run(latest.subscribe()));
    }
    if gateway
        .witnessing
        .set(Witnessing { latest, handled })
        .is_err()
    {
        tracing::error!("witnesses were started twice; the second set is ignored");
    }
}

impl Gateway {
    /// Wakes the witnesses' tasks when `note` is a newer checkpoint than
    /// the last one they were woken for.
    pub(super) fn checkpoint_signed(&self, note: &str) {
        let Some(w) = self.witnessing.get() else {
            return;
        };
        let Some(size) = signed_note::parse(note.as_bytes())
            .ok()
            .and_then(|n| Checkpoint::from_note_text(n.text).ok())
            .map(|c| c.size)
        else {
            return;
        };
        w.latest.send_if_modified(|v| {
            let newer = size > *v;
            if newer {
                *v = size;
            }
            newer
        });
    }

    /// Waits (at most a bounded time) until every witness answered about
    /// the latest checkpoint signed: at a clean stop, so that the final
    /// checkpoint leaves cosigned when the witnesses agree.
    pub async fn settle_witnesses(&self) {
        let Some(w) = self.witnessing.get() else {
            return;
        };
        let target = *w.latest.borrow();
        for handled in &w.handled {
            let mut handled = handled.clone();
            if tokio::time::timeout(SETTLE, handled.wait_for(|h| *h >= target))
                .await
                .is_err()
            {
                tracing::warn!(
                    size = target,
                    "a witness did not answer on the final checkpoint in time"
                );
            }
        }
    }
}

/// Whether `note`, a checkpoint signed with `key`, carries a valid
/// cosignature of `witness`.
fn carries(note: &str, key: &VerifierKey, witness: &CosignatureVerifier) -> bool {
    cosignature::open_cosigned(
        note.as_bytes(),
        key.name(),
        key,
        std::slice::from_ref(witness),
    )
    .is_ok_and(|c| c.meets(1))
}

/// What asking a witness about the latest checkpoint came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// The log has no checkpoint yet.
    Nothing,
    /// The latest checkpoint, of `size`, carries the witness's
    /// cosignature: added `now`, or already there.
    Cosigned {
        /// Its size.
        size: u64,
        /// Whether it was added by this call.
        now: bool,
    },
    /// The witness refused the latest checkpoint, of `size`.
    Refused {
        /// Its size.
        size: u64,
        /// The witness's HTTP status.
        status: u16,
        /// With 409: the size the witness last cosigned, above `size`.
        known_size: Option<u64>,
        /// Why, as the witness said it or as the gateway concluded.
        reason: String,
    },
}

/// Asks `client` to cosign the latest checkpoint stored in `log` (signed
/// with `key`) unless it already carries its cosignature, with the
/// consistency proof from `known`, the size the witness last cosigned as
/// far as the caller knows (0 when it does not: a `409` gives the right
/// one, and the request is sent once more from it), and adds the
/// cosignature to the stored checkpoint. `Err` is a failure to try again
/// later (unreachable, a bad answer, the store).
pub async fn ask(
    client: &WitnessClient,
    log: &Arc<AuditLog>,
    key: &VerifierKey,
    known: u64,
) -> Result<Asked, String> {
    let store = log.store().clone();
    let latest = blocking(move || store.latest_checkpoint_above(None))
        .await
        .map_err(|e| e.to_string())?;
    let Some((size, note)) = latest else {
        return Ok(Asked::Nothing);
    };
    if carries(&note, key, client.verifier()) {
        return Ok(Asked::Cosigned { size, now: false });
    }
    let mut old = if known <= size { known } else { 0 };
    for attempt in 0..2 {
        let tree = log.clone();
        let proof = blocking(move || {
            if tree.head().size < size {
                tree.catch_up()?;
            }
            tree.consistency_proof(old, size)
        })
        .await
        .map_err(|e| e.to_string())?;
        match client.add_checkpoint(old, &proof, &note).await {
            Ok(cosigned) => {
                keep(log, key, client.verifier(), size, &note, &cosigned).await?;
                return Ok(Asked::Cosigned { size, now: true });
            }
            Err(ClientError::Conflict { known_size, .. }) if known_size > size => {
                return Ok(Asked::Refused {
                    size,
                    status: 409,
                    known_size: Some(known_size),
                    reason: format!(
                        "the witness last cosigned a checkpoint of size {known_size}, above this log's {size}: the log was rolled back or wiped since"
                    ),
                });
            }
            Err(ClientError::Conflict { known_size, .. }) if attempt == 0 => {
                old = known_size;
            }
            Err(ClientError::Refused { status, reason, .. }) if (400..500).contains(&status) => {
                return Ok(Asked::Refused {
                    size,
                    status,
                    known_size: None,
                    reason,
                });
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("the witness changed its size twice during one exchange".into())
}

/// Adds the witness's lines (what `cosigned` has beyond `sent`) to the
/// stored checkpoint of `size`, as it is now: another witness's task (or
/// another process) may have added its own meanwhile.
async fn keep(
    log: &Arc<AuditLog>,
    key: &VerifierKey,
    witness: &CosignatureVerifier,
    size: u64,
    sent: &str,
    cosigned: &str,
) -> Result<(), String> {
    let Some(lines) = cosigned.strip_prefix(sent).map(str::to_string) else {
        return Err("the cosigned note does not extend the one sent".into());
    };
    let store = log.store().clone();
    let (key, witness) = (key.clone(), witness.clone());
    let kept = blocking(move || {
        for _ in 0..STORE_ATTEMPTS {
            let Some(current) = store.checkpoint_of_size(size)? else {
                return Ok(false);
            };
            if carries(&current, &key, &witness) {
                return Ok(true);
            }
            let merged = cosignature::attach_cosignatures(&current, &lines, &witness)
                .map_err(|e| StoreError::Backend(format!("cosignature: {e}")))?;
            if store.add_cosignatures(size, &current, &merged)? {
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await
    .map_err(|e| e.to_string())?;
    if kept {
        Ok(())
    } else {
        Err("the stored checkpoint kept changing; its cosignature was not kept".into())
    }
}

/// Why a round ended without an answer to keep or report: tried again
/// later.
struct Transient;

/// One witness's task.
struct Task {
    client: WitnessClient,
    verifier: CosignatureVerifier,
    gateway: Weak<Gateway>,
    /// The size this witness last cosigned, as far as this process knows
    /// (0 at start: a `409` then gives the right one).
    known: u64,
    /// The refusal last recorded on the audit log (status, known size), so
    /// that a witness refusing every checkpoint is recorded once per cause,
    /// not once per checkpoint (each entry leads to a new checkpoint).
    refused: Option<(u16, Option<u64>)>,
    done: watch::Sender<u64>,
}

impl Task {
    async fn run(mut self, mut latest: watch::Receiver<u64>) {
        loop {
            let target = *latest.borrow_and_update();
            let failed = self.round().await.is_err();
            self.done.send_replace(target);
            tokio::select! {
                changed = latest.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(RETRY_AFTER), if failed => {}
            }
        }
    }

    /// Asks the witness about the latest stored checkpoint, and keeps or
    /// reports the answer.
    async fn round(&mut self) -> Result<(), Transient> {
        let Some(gateway) = self.gateway.upgrade() else {
            return Ok(());
        };
        let key = gateway.key.verifier_key();
        match ask(&self.client, &gateway.log, &key, self.known).await {
            Ok(Asked::Nothing) => Ok(()),
            Ok(Asked::Cosigned { size, now }) => {
                self.known = size;
                if now {
                    tracing::info!(witness = %self.verifier.label(), size, "checkpoint cosigned");
                }
                if self.refused.take().is_some() {
                    tracing::info!(witness = %self.verifier.label(), size, "the witness cosigns again");
                }
                Ok(())
            }
            Ok(Asked::Refused {
                size,
                status,
                known_size,
                reason,
            }) => {
                self.refusal(&gateway, size, status, known_size, reason)
                    .await;
                Ok(())
            }
            Err(e) => Err(self.failed(&e)),
        }
    }

    /// Reports a refusal: an error line every time, an audit entry once
    /// per cause.
    async fn refusal(
        &mut self,
        gateway: &Gateway,
        size: u64,
        status: u16,
        known_size: Option<u64>,
        reason: String,
    ) {
        let witness = self.verifier.label();
        gateway.metrics.witness_refused(&witness);
        tracing::error!(
            %witness,
            size,
            status,
            known_size,
            %reason,
            "a witness refused to cosign the gateway's checkpoint: auditors requiring it will not accept the log"
        );
        let cause = (status, known_size);
        if self.refused == Some(cause) {
            return;
        }
        let event = AuditEvent::WitnessRefused {
            size,
            reason: clip(&reason, MAX_TEXT),
            status,
            witness,
            known_size,
        };
        match gateway.record(vec![event]).await {
            Ok(()) => self.refused = Some(cause),
            Err(e) => tracing::error!(error = %e, "could not record the witness's refusal"),
        }
    }

    fn failed(&self, e: &dyn std::fmt::Display) -> Transient {
        tracing::warn!(witness = %self.verifier.label(), error = %e, "could not get the checkpoint cosigned; trying again later");
        Transient
    }
}
