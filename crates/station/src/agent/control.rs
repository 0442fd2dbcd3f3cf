//! The agent's control socket: how `station status`, `list`, `read`,
//! `send`, `lock` and `unlock` reach a running agent. A Unix socket in a
//! directory of mode 0700 (the socket itself 0600), so only the officer's
//! own account can reach it; one JSON request per line, one JSON reply per
//! line. A passphrase crosses it only inside this account, never on a
//! command line, and is wiped once used.
//!
//! This module never holds the vault's key itself and never talks to the
//! gateway; it asks the [`Agent`].

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroize;

use super::view::{list_of, read_item, ListEntry, Reading, Status};
use super::{unix_now, Agent, AgentError};
use crate::domain::item::SignedItem;

/// Longest request line (a signed item to send is the largest).
const MAX_REQUEST: u64 = 32 * 1024 * 1024;
/// Longest reply line (an item read, or a long list).
const MAX_REPLY: u64 = 256 * 1024 * 1024;
/// Requests served at once; the officer's commands are few.
const CONCURRENT: usize = 4;
/// Longest one request may take to arrive.
const REQUEST_TIME: Duration = Duration::from_secs(30);

/// A request to the running agent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlRequest {
    /// The station's status.
    Status,
    /// Unlock the vault.
    Unlock {
        /// The vault's passphrase.
        passphrase: String,
    },
    /// Forget the vault's key now.
    Lock,
    /// Every item in the vault.
    List,
    /// One received item, verified again, marked read.
    Read {
        /// Its reference.
        item_ref: String,
    },
    /// Keep a signed item in the vault and send it when the link allows.
    Send {
        /// The item.
        item: SignedItem,
    },
}

/// The agent's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlReply {
    /// For `status`.
    Status(Box<Status>),
    /// For `list`.
    List(Vec<ListEntry>),
    /// For `read`.
    Read(Box<Reading>),
    /// For `send`: the item's reference.
    Queued(String),
    /// Done.
    Done,
    /// Refused, and why.
    Error(String),
}

fn control(e: impl std::fmt::Display) -> AgentError {
    AgentError::Control(e.to_string())
}

async fn answer(agent: &Arc<Agent>, request: ControlRequest) -> Result<ControlReply, AgentError> {
    Ok(match request {
        ControlRequest::Status => ControlReply::Status(Box::new(agent.status()?)),
        ControlRequest::Unlock { mut passphrase } => {
            let a = agent.clone();
            let bytes = passphrase.as_bytes().to_vec();
            passphrase.zeroize();
            let mut bytes = zeroize::Zeroizing::new(bytes);
            // Argon2id takes a fraction of a second of one core.
            let unlocked =
                tokio::task::spawn_blocking(move || a.unlock(&std::mem::take(&mut *bytes)))
                    .await
                    .map_err(control)?;
            unlocked?;
            ControlReply::Done
        }
        ControlRequest::Lock => {
            agent.lock();
            ControlReply::Done
        }
        ControlRequest::List => {
            let vault = agent.unlocked(true).ok_or(AgentError::Locked)?;
            ControlReply::List(list_of(&vault.scan()?, unix_now()))
        }
        ControlRequest::Read { item_ref } => {
            let vault = agent.unlocked(true).ok_or(AgentError::Locked)?;
            ControlReply::Read(Box::new(read_item(
                &vault,
                agent.station(),
                &item_ref,
                unix_now(),
            )?))
        }
        ControlRequest::Send { item } => {
            let vault = agent.unlocked(true).ok_or(AgentError::Locked)?;
            ControlReply::Queued(agent.queue(&vault, item)?)
        }
    })
}

async fn serve_one(agent: Arc<Agent>, stream: UnixStream) -> Result<(), AgentError> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    tokio::time::timeout(REQUEST_TIME, reader.read_line(&mut line))
        .await
        .map_err(|_| control("no request in time"))?
        .map_err(control)?;
    let reply = match serde_json::from_str::<ControlRequest>(&line) {
        Ok(request) => answer(&agent, request)
            .await
            .unwrap_or_else(|e| ControlReply::Error(e.to_string())),
        Err(e) => ControlReply::Error(format!("not a request: {e}")),
    };
    line.zeroize();
    let mut out = serde_json::to_vec(&reply).map_err(control)?;
    out.push(b'\n');
    write.write_all(&out).await.map_err(control)?;
    write.shutdown().await.map_err(control)
}

/// Refuses a control directory that another account may enter (or a
/// symbolic link): there, someone else could have put a socket of their
/// own where the agent's should be, and be sent the passphrase.
/// `make_private_dir` leaves a directory that already existed as it was.
fn private(dir: &Path) -> Result<(), AgentError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(dir)
            .map_err(|e| control(format!("{}: {e}", dir.display())))?;
        let mode = meta.permissions().mode() & 0o777;
        if !meta.is_dir() || mode & 0o077 != 0 {
            return Err(control(format!(
                "{} is not a directory only this account may enter (mode {mode:o}); run: chmod 700 {}",
                dir.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Serves the control socket of `agent` until `shutdown` resolves.
/// Refuses to start when another agent answers on the socket.
pub async fn serve_control(
    agent: Arc<Agent>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let settings = agent.settings();
    crate::vault::make_private_dir(&settings.control)?;
    private(&settings.control)?;
    let path = settings.socket();
    if UnixStream::connect(&path).await.is_ok() {
        return Err(control(format!(
            "another agent is running for this station ({})",
            path.display()
        )));
    }
    // Left by an agent that stopped without cleaning up.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(control)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(control)?;
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Too many at once: this one is dropped; the caller retries.
            continue;
        };
        let agent = agent.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_one(agent, stream).await {
                tracing::debug!(error = %e, "control request failed");
            }
            drop(slot);
        });
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Sends `request` to the agent listening on `socket` and returns its
/// reply.
pub async fn ask(socket: &Path, request: &ControlRequest) -> Result<ControlReply, AgentError> {
    if let Some(dir) = socket.parent() {
        private(dir)?;
    }
    let mut stream = UnixStream::connect(socket).await.map_err(|e| {
        control(format!(
            "no agent answers on {} ({e}); start one with `passerelle station run`",
            socket.display()
        ))
    })?;
    let mut line = serde_json::to_vec(request).map_err(control)?;
    line.push(b'\n');
    stream.write_all(&line).await.map_err(control)?;
    line.zeroize();
    let mut reply = Vec::new();
    stream
        .take(MAX_REPLY)
        .read_to_end(&mut reply)
        .await
        .map_err(control)?;
    serde_json::from_slice(&reply).map_err(control)
}
