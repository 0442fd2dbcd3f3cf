//! `passerelle demo --abroad`: the station agent of a liaison officer
//! abroad, over real mutual TLS. The officer makes the vault and starts
//! the agent while the link is down, writes two items that wait sealed in
//! the vault, the link comes back (the gateway restarts on its address)
//! and the agent sends them, once each; VSSE's answer is fetched, verified,
//! kept encrypted and only then acknowledged; the officer reads it, locks
//! the station, and the files on disk hold none of what was exchanged.
//! The same public pieces as `passerelle station`; nothing is simulated
//! but the officer's typing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{station, Report};
use crate::agent::{read_item, unix_now as now, Agent};
use crate::client::ClientError;
use crate::config::GatewayConfig;
use crate::pki;
use crate::server;
use crate::spec::ItemSpec;
use crate::station_config::ClientConfig;
use crate::vault::{KdfParams, Vault};

const PASSPHRASE: &[u8] = b"demo passphrase: choose a long one";

fn item(to: &str, id: &str, priority: &str, text: &str) -> String {
    format!(
        "id = \"{id}\"\nto = [\"{to}\"]\npurpose = \"terrorism\"\ncases = [\"CT-2026-014\"]\n\
         priority = \"{priority}\"\n[label]\nlevel = \"RESTREINT\"\n[[portion]]\ntext = \"{text}\"\n\
         [portion.label]\nlevel = \"RESTREINT\"\n"
    )
}

/// Waits (bounded) until `done` says so.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Runs the demo in `dir` (which should be empty) and returns its report.
pub async fn run(dir: &Path) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let example = pki::generate()?;
    pki::write_example(dir, &example, "127.0.0.1:0", None)?;
    let mut config = GatewayConfig::load(&dir.join("gateway.toml"))?;
    // Started once to learn its address, then stopped: the link is down.
    let first = server::start(&config).await?;
    let addr = first.addr;
    config.listen = addr;
    first.shutdown().await;

    let station_dir = dir.join(pki::station_dir("police/lo/rabat"));
    let mut rabat_config = ClientConfig::load(&station_dir.join("client.toml"))?;
    rabat_config.gateway = addr.to_string();
    rabat_config.retries = 0;
    rabat_config.agent.poll_seconds = 1;
    rabat_config.agent.reconnect_min_millis = 100;
    rabat_config.agent.reconnect_max_seconds = 1;
    let vault = Vault::at(&rabat_config.agent.vault);
    // The demo's cost is the least a vault accepts; `station init` uses
    // 64 MiB and 3 passes.
    vault.create(PASSPHRASE, KdfParams::MINIMUM)?;
    let agent = Arc::new(Agent::new(crate::client::Station::new(rabat_config)?));
    agent.unlock(PASSPHRASE)?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.clone().run(async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    let down = until(Duration::from_secs(10), || {
        agent
            .status()
            .is_ok_and(|s| s.link.is_some_and(|l| !l.up && l.error.is_some()))
    })
    .await;
    report.record(
        "police/lo/rabat",
        "makes its vault and starts the agent; the link is down",
        "agent running, link down",
        format!("link {}", if down { "down" } else { "not seen down" }),
        down,
    );

    let key = agent.station().signing_key();
    let me = agent.station().config().principal.clone();
    let written = {
        let vault = agent
            .unlocked(true)
            .ok_or_else(|| anyhow::anyhow!("the vault locked itself"))?;
        for (id, priority, text) in [
            (
                "rabat-offline-1",
                "ROUTINE",
                "Compte rendu de la réunion de mardi.",
            ),
            (
                "rabat-offline-2",
                "FLASH",
                "Demande urgente: véhicule signalé à Tanger.",
            ),
        ] {
            let signed = ItemSpec::parse(&item("vsse/analysis/ct", id, priority, text))?.sign(
                key,
                &me,
                now(),
            );
            agent.queue(&vault, signed)?;
        }
        // The agent may already have tried one of them on the dead link
        // (then it awaits a receipt): both count as kept, not yet sent.
        let status = agent.status()?;
        status
            .queued
            .zip(status.awaiting_receipt)
            .map(|(queued, tried)| queued + tried)
    };
    report.record(
        "police/lo/rabat",
        "writes a report and a FLASH request while offline",
        "2 items kept sealed in the vault, not yet sent",
        format!("{} not yet sent", written.unwrap_or(0)),
        written == Some(2),
    );

    let running = server::start(&config).await?;
    let vsse = station(dir, "vsse/analysis/ct", running.addr)?;
    let synced = until(Duration::from_secs(30), || {
        agent.status().is_ok_and(|s| s.sent == Some(2))
    })
    .await;
    let at_vsse = vsse.inbox(Duration::from_secs(2)).await?;
    let flash_first = at_vsse
        .first()
        .is_some_and(|e| e.item_id == "rabat-offline-2");
    report.record(
        "police/lo/rabat",
        "the link comes back; the agent sends what waited",
        "both accepted, once each; VSSE lists the FLASH first",
        format!(
            "{} sent with receipts; VSSE's inbox: {}",
            agent.status()?.sent.unwrap_or(0),
            at_vsse
                .iter()
                .map(|e| e.item_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        synced && at_vsse.len() == 2 && flash_first,
    );

    let answer = ItemSpec::parse(&item(
        "police/lo/rabat",
        "vsse-context-0042",
        "URGENT",
        "Le véhicule est connu: voir l'analyse jointe.",
    ))?
    .sign(vsse.signing_key(), &vsse.config().principal, now());
    let reference = vsse.submit(&answer).await?.receipt.item_ref;
    let received = until(Duration::from_secs(30), || {
        agent.status().is_ok_and(|s| s.received == Some(1))
    })
    .await;
    // An acknowledged item is no longer found for its recipient.
    let mut acked = false;
    for _ in 0..50 {
        match agent.station().fetch(&reference).await {
            Err(ClientError::Refused(p)) if p.slug() == "not-found" => {
                acked = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    report.record(
        "police/lo/rabat",
        "its agent fetches VSSE's answer",
        "verified, kept encrypted, then acknowledged",
        format!(
            "{} in the vault, {}",
            agent.status()?.received.unwrap_or(0),
            if acked {
                "acknowledged"
            } else {
                "not acknowledged"
            }
        ),
        received && acked,
    );

    let reading = match agent.unlocked(true) {
        Some(vault) => read_item(&vault, agent.station(), &reference, now()).ok(),
        None => None,
    };
    let unread = agent.status()?.unread;
    report.record(
        "police/lo/rabat",
        "the officer reads it (station read)",
        "verified again, shown, no longer unread",
        match &reading {
            Some(r) => format!(
                "\"{}\"; unread now {}",
                r.portions[0].text,
                unread.unwrap_or(0)
            ),
            None => "not shown".into(),
        },
        reading.is_some() && unread == Some(0),
    );

    let _ = stop.send(true);
    let _ = task.await;
    agent.lock();
    let mut disk = Vec::new();
    let files = vault.files()?;
    for entry in std::fs::read_dir(vault.dir().join("sealed"))? {
        let path = entry?.path();
        disk.extend(path.to_string_lossy().as_bytes());
        disk.extend(std::fs::read(&path)?);
    }
    let leaked: Vec<&str> = [
        "véhicule",
        "rabat-offline-1",
        "vsse-context-0042",
        reference.as_str(),
        "vsse/analysis/ct",
        "CT-2026-014",
    ]
    .into_iter()
    .filter(|s| contains(&disk, s))
    .collect();
    let wrong = vault.unlock(b"a guess").is_err();
    report.record(
        "police/lo/rabat",
        "locks the station; someone reads its disk and guesses",
        "only sizes and times; a wrong passphrase opens nothing",
        format!(
            "{} sealed files, {} bytes, {} readable; wrong passphrase {}",
            files.len(),
            files.iter().map(|f| f.size).sum::<u64>(),
            if leaked.is_empty() {
                "nothing".to_string()
            } else {
                leaked.join(", ")
            },
            if wrong { "refused" } else { "ACCEPTED" }
        ),
        leaked.is_empty() && wrong && files.len() == 3,
    );
    running.shutdown().await;
    Ok(report)
}
