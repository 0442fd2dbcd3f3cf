//! When a station may take the audit log's record of its item as final:
//! its acceptance is included in a checkpoint that enough of the station's
//! own witnesses cosigned.
//!
//! The gateway's signature alone proves what the gateway said, not that it
//! will keep saying it: an operator with the key can wipe or roll back the
//! log and sign a new history. Witnesses cosign a checkpoint only if it
//! extends every one they cosigned before, so a checkpoint cosigned by a
//! quorum of witnesses the station trusts cannot later be rolled back or
//! forked without those witnesses seeing it. Cosigning is asynchronous (the
//! gateway asks its witnesses after signing a checkpoint), so a receipt is
//! never final when `send` returns: it becomes final once a checkpoint that
//! covers its entry carries the quorum's cosignatures, usually within
//! seconds. [`Station::final_receipt`] asks again until then or until its
//! deadline; a gateway whose witnesses refuse (the log went back or forked)
//! never gets there, and the station says so.
//!
//! The station also keeps the largest final checkpoint it saw (`state` in
//! `[witnesses]`) and holds the gateway to it: a checkpoint served later
//! must extend it (an RFC 9162 consistency proof from the gateway, checked
//! here), so a log that went back or forked is named at once, before any
//! witness is asked.
//!
//! This module owns the station's quorum (from `client.toml`'s
//! `[witnesses]`), the finality check and that kept checkpoint. It never
//! trusts a cosignature it did not verify with a key the station
//! configured, never counts a witness twice, never calls a receipt final on
//! the gateway's word, and never replaces its kept checkpoint by a smaller
//! one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hyper::Method;

use super::{ClientError, Station};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::cosignature::{self, CosignatureError, CosignatureVerifier};
use crate::audit::rfc9162::{verify_consistency, Hash};
use crate::audit::signed_note::VerifierKey;
use crate::domain::bytes::Bytes;
use crate::domain::receipt::{InclusionProof, SignedReceipt};
use crate::station_config::WitnessQuorum;

/// How long to wait between two tries while a receipt is not yet final.
const RETRY: Duration = Duration::from_millis(500);

/// The witnesses a station requires, and how many of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    witnesses: Vec<CosignatureVerifier>,
    quorum: usize,
    /// Where the largest final checkpoint seen is kept.
    state: PathBuf,
}

impl Quorum {
    /// The quorum of `[witnesses]`: every key parsed (a file's content was
    /// read at load), `quorum` between 1 and their number (all by default).
    pub fn from_config(config: &WitnessQuorum) -> Result<Quorum, String> {
        let witnesses = config
            .keys
            .iter()
            .map(|k| {
                k.parse::<CosignatureVerifier>()
                    .map_err(|e| format!("witness key {k:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if witnesses.is_empty() {
            return Err("[witnesses] keys is empty: name at least one witness".into());
        }
        let quorum = config.quorum.unwrap_or(witnesses.len());
        if quorum == 0 || quorum > witnesses.len() {
            return Err(format!(
                "[witnesses] quorum must be between 1 and the number of keys ({}), not {quorum}",
                witnesses.len()
            ));
        }
        Ok(Quorum {
            witnesses,
            quorum,
            state: config.state.clone(),
        })
    }

    /// How many witnesses must have cosigned.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Checks a checkpoint note the gateway served: signed by the gateway,
    /// cosigned by at least the quorum.
    pub fn check(&self, note: &str, gateway: &VerifierKey) -> Result<Final, NotFinal> {
        let opened =
            cosignature::open_cosigned(note.as_bytes(), gateway.name(), gateway, &self.witnesses)
                .map_err(NotFinal::Bad)?;
        let cosigned: Vec<(String, u64)> = opened
            .cosignatures
            .iter()
            .map(|c| (c.witness.label(), c.timestamp))
            .collect();
        if opened.meets(self.quorum) {
            return Ok(Final {
                size: opened.checkpoint.size,
                quorum: self.quorum,
                witnesses: self.witnesses.len(),
                cosigned,
            });
        }
        Err(NotFinal::Short {
            size: opened.checkpoint.size,
            quorum: self.quorum,
            cosigned: cosigned.into_iter().map(|(w, _)| w).collect(),
            missing: opened.missing(&self.witnesses),
        })
    }
}

/// A checkpoint the quorum cosigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Final {
    /// Its size.
    pub size: u64,
    /// The quorum required.
    pub quorum: usize,
    /// The witnesses configured.
    pub witnesses: usize,
    /// The witnesses that cosigned (`name+keyid`) and when (POSIX seconds,
    /// as each states it).
    pub cosigned: Vec<(String, u64)>,
}

impl std::fmt::Display for Final {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "final: included in the checkpoint of size {}, cosigned by {} of {} witnesses (quorum {}):",
            self.size,
            self.cosigned.len(),
            self.witnesses,
            self.quorum
        )?;
        for (w, _) in &self.cosigned {
            write!(f, " {w}")?;
        }
        Ok(())
    }
}

/// Why a checkpoint is not final for the station.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotFinal {
    /// No signed checkpoint covers the item's entry yet.
    #[error("no signed checkpoint covers the item's audit entry yet")]
    NotCovered,
    /// Fewer witnesses than the quorum cosigned. Pending while the
    /// witnesses are being asked; for good when they refuse (the log went
    /// back or forked).
    #[error(
        "the checkpoint of size {size} is cosigned by {} witness(es), fewer than the quorum of {quorum} (not cosigned: {}): the gateway's log may have been rolled back or forked, or its witnesses were not reached",
        cosigned.len(),
        missing.join(", ")
    )]
    Short {
        /// The checkpoint's size.
        size: u64,
        /// The quorum required.
        quorum: usize,
        /// The witnesses that cosigned.
        cosigned: Vec<String>,
        /// The witnesses that did not.
        missing: Vec<String>,
    },
    /// A cosignature that claims to be a configured witness's does not
    /// verify (or the gateway's signature does not): altered or forged.
    #[error("the checkpoint does not verify: {0}")]
    Bad(CosignatureError),
    /// The gateway serves a checkpoint smaller than a final one this
    /// station holds: its log went back.
    #[error("the gateway's log went back: it serves a checkpoint of size {served}, and this station holds a final checkpoint of size {held}, cosigned by its witnesses")]
    RolledBack {
        /// The size of the final checkpoint the station holds.
        held: u64,
        /// The size of the checkpoint the gateway serves.
        served: u64,
    },
    /// The gateway serves a checkpoint that does not extend a final one
    /// this station holds: its log forked.
    #[error("the gateway's log forked: its checkpoint of size {served} does not extend the final checkpoint of size {held} this station holds, cosigned by its witnesses")]
    Forked {
        /// The size of the final checkpoint the station holds.
        held: u64,
        /// The size of the checkpoint the gateway serves.
        served: u64,
    },
}

impl NotFinal {
    /// Whether asking again cannot help: a forged cosignature, or a log
    /// that went back or forked.
    pub fn is_conclusive(&self) -> bool {
        matches!(
            self,
            NotFinal::Bad(_) | NotFinal::RolledBack { .. } | NotFinal::Forked { .. }
        )
    }
}

/// Why [`Station::final_receipt`] gave no final receipt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FinalityError {
    /// The receipt could not be had or did not verify.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// It did not become final before the deadline, or cannot.
    #[error("NOT FINAL: {0}")]
    NotFinal(NotFinal),
    /// The final checkpoint the station keeps could not be read or
    /// written, or does not verify with the gateway's key.
    #[error("the station's final checkpoint: {0}")]
    State(String),
}

/// What `GET /v1/audit/consistency` answers, as far as the station reads it.
#[derive(serde::Deserialize)]
struct ConsistencyProof {
    hashes: Vec<Bytes>,
}

/// A receipt whose inclusion proof is against a checkpoint the quorum
/// cosigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalReceipt {
    /// The receipt, checked, with that proof.
    pub signed: SignedReceipt,
    /// The cosigned checkpoint it is included in.
    pub finality: Final,
}

impl Station {
    /// The quorum of `client.toml`'s `[witnesses]`, when it has one.
    pub fn quorum(&self) -> Result<Option<Quorum>, ClientError> {
        self.config
            .witnesses
            .as_ref()
            .map(Quorum::from_config)
            .transpose()
            .map_err(ClientError::Key)
    }

    /// The receipt of one of this station's items, once final: its entry
    /// included (proof checked) in a checkpoint cosigned by `quorum`. Asks
    /// the gateway again, [`RETRY`] apart, until `wait` has passed; a
    /// cosignature that does not verify ends it at once.
    ///
    /// Each try looks at the checkpoint the receipt's first proof was
    /// against (its cosignatures arrive after it is signed; on a busy
    /// gateway the latest checkpoint is always a fresh one) and at the
    /// latest checkpoint (a witness that was away is asked again only for
    /// a later one).
    pub async fn final_receipt(
        &self,
        item_ref: &str,
        quorum: &Quorum,
        wait: Duration,
    ) -> Result<FinalReceipt, FinalityError> {
        let deadline = Instant::now() + wait;
        let held = self.held(quorum)?;
        let signed = self.receipt(item_ref).await?;
        let mut pinned = signed.inclusion.as_ref().map(|p| p.size);
        let mut candidate = signed.clone();
        loop {
            let why = match self.accept(&candidate, quorum, held.as_ref()).await? {
                Ok(done) => {
                    self.remember(quorum, held.as_ref(), &done)?;
                    return Ok(done);
                }
                Err(why) => why,
            };
            if why.is_conclusive() || Instant::now() + RETRY > deadline {
                return Err(FinalityError::NotFinal(why));
            }
            tokio::time::sleep(RETRY).await;
            let latest = self.latest_checkpoint().await?;
            if let Some(held) = &held {
                if let Err(why) = self.extends(held, &latest).await? {
                    return Err(FinalityError::NotFinal(why));
                }
            }
            // The size to prove against: the latest when the quorum
            // cosigned it, else the one the receipt was first proved
            // against.
            let size = match quorum.check(&latest, self.gateway_key()) {
                Ok(f) if f.size > signed.receipt.audit_index => Some(f.size),
                Err(NotFinal::Bad(e)) => return Err(FinalityError::NotFinal(NotFinal::Bad(e))),
                _ => pinned,
            };
            candidate = match size {
                Some(size) => self.proved_at(&signed, size).await?,
                // No checkpoint covered the entry yet: the receipt again,
                // with a proof once one does.
                None => {
                    let again = self.receipt(item_ref).await?;
                    pinned = again.inclusion.as_ref().map(|p| p.size);
                    again
                }
            };
        }
    }

    /// `signed` as final, when its proof's checkpoint extends the one the
    /// station holds and is cosigned by the quorum.
    async fn accept(
        &self,
        signed: &SignedReceipt,
        quorum: &Quorum,
        held: Option<&Checkpoint>,
    ) -> Result<Result<FinalReceipt, NotFinal>, ClientError> {
        let Some(proof) = &signed.inclusion else {
            return Ok(Err(NotFinal::NotCovered));
        };
        if let Some(held) = held {
            if let Err(why) = self.extends(held, &proof.checkpoint).await? {
                return Ok(Err(why));
            }
        }
        Ok(quorum
            .check(&proof.checkpoint, self.gateway_key())
            .map(|finality| FinalReceipt {
                signed: signed.clone(),
                finality,
            }))
    }

    /// The final checkpoint this station holds, verified with the
    /// gateway's key; none before its first final receipt.
    fn held(&self, quorum: &Quorum) -> Result<Option<Checkpoint>, FinalityError> {
        let path = &quorum.state;
        let note = match std::fs::read(path) {
            Ok(note) => note,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FinalityError::State(format!("{}: {e}", path.display()))),
        };
        let key = self.gateway_key();
        Checkpoint::open(&note, key.name(), std::slice::from_ref(key))
            .map(|(checkpoint, _)| Some(checkpoint))
            .map_err(|e| {
                FinalityError::State(format!(
                    "{} does not verify with the gateway's key: {e}",
                    path.display()
                ))
            })
    }

    /// Whether the checkpoint `note` the gateway serves extends `held`:
    /// not smaller, the same root at the same size, and a consistency
    /// proof from the gateway otherwise.
    async fn extends(
        &self,
        held: &Checkpoint,
        note: &str,
    ) -> Result<Result<(), NotFinal>, ClientError> {
        let key = self.gateway_key();
        let served = match Checkpoint::open(note.as_bytes(), key.name(), std::slice::from_ref(key))
        {
            Ok((checkpoint, _)) => checkpoint,
            Err(e) => return Ok(Err(NotFinal::Bad(e.into()))),
        };
        let (held_size, size) = (held.size, served.size);
        let forked = NotFinal::Forked {
            held: held_size,
            served: size,
        };
        if size < held_size {
            return Ok(Err(NotFinal::RolledBack {
                held: held_size,
                served: size,
            }));
        }
        if size == held_size {
            return Ok(if served.root == held.root {
                Ok(())
            } else {
                Err(forked)
            });
        }
        let path = format!("/v1/audit/consistency?old={held_size}&new={size}");
        let proof: ConsistencyProof = self.call(Method::GET, &path, None, Duration::ZERO).await?.1;
        let hashes: Option<Vec<Hash>> = proof
            .hashes
            .iter()
            .map(|h| h.0.as_slice().try_into().ok())
            .collect();
        let consistent = hashes.is_some_and(|hashes| {
            verify_consistency(held_size, size, &held.root, &served.root, &hashes).is_ok()
        });
        Ok(if consistent { Ok(()) } else { Err(forked) })
    }

    /// Keeps `done`'s checkpoint as the station's final one when it is
    /// larger than the one held: written aside, synced, then renamed, so
    /// that a crash leaves the old one or the new one, never half of one.
    fn remember(
        &self,
        quorum: &Quorum,
        held: Option<&Checkpoint>,
        done: &FinalReceipt,
    ) -> Result<(), FinalityError> {
        if held.is_some_and(|h| h.size >= done.finality.size) {
            return Ok(());
        }
        let Some(proof) = &done.signed.inclusion else {
            return Ok(());
        };
        let path = &quorum.state;
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let aside = path.with_extension("new");
            let mut file = std::fs::File::create(&aside)?;
            file.write_all(proof.checkpoint.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&aside, path)
        };
        write().map_err(|e| FinalityError::State(format!("{}: {e}", path.display())))
    }

    /// The latest checkpoint the gateway serves, with the cosignatures it
    /// holds.
    async fn latest_checkpoint(&self) -> Result<String, ClientError> {
        let answer = self
            .request(Method::GET, "/v1/audit/checkpoint", None, Duration::ZERO)
            .await?;
        if !answer.status.is_success() {
            return Err(ClientError::Protocol(format!(
                "/v1/audit/checkpoint answered {}",
                answer.status
            )));
        }
        String::from_utf8(answer.body)
            .map_err(|_| ClientError::Protocol("a checkpoint that is not text".into()))
    }

    /// `signed` with the inclusion proof of its entry against the stored
    /// checkpoint of `size`, checked as a receipt's proof is: against the
    /// checkpoint's signature and root, and the entry being this item's
    /// acceptance.
    async fn proved_at(
        &self,
        signed: &SignedReceipt,
        size: u64,
    ) -> Result<SignedReceipt, ClientError> {
        let index = signed.receipt.audit_index;
        let path = format!("/v1/audit/inclusion?index={index}&size={size}");
        let proof: InclusionProof = self.call(Method::GET, &path, None, Duration::ZERO).await?.1;
        if proof.size != size {
            return Err(ClientError::Protocol(format!(
                "asked for a proof against size {size}, got one against size {}",
                proof.size
            )));
        }
        self.check_receipt(SignedReceipt {
            inclusion: Some(proof),
            ..signed.clone()
        })
    }
}

#[cfg(test)]
mod tests;
