//! `passerelle reload`: has the running gateway read its policy, CAs, CRLs
//! and certificate again, and says whether it put them in force.
//!
//! The command checks the files first, as the gateway will (so a mistake
//! is said here, with file and line, and the gateway is not disturbed),
//! then sends SIGHUP to the process id `serve` recorded beside its store,
//! and waits for the gateway's answer in the status file `serve` writes
//! beside it after each reload. A signal rather than an admin endpoint:
//! the gateway opens no listener that would need its own authentication,
//! the operating system already limits who may signal the process (its
//! user, or root), and a service manager reloads it the same way
//! (`ExecReload=kill -HUP $MAINPID`). The reload itself, its audit entry
//! and its refusal are the gateway's ([`passerelle::server::Running::reload`]);
//! this module only signals and reports.

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use passerelle::config::GatewayConfig;

#[derive(Args)]
pub struct ReloadArgs {
    /// The gateway configuration the running gateway was started with.
    #[arg(long)]
    config: PathBuf,
    /// How long to wait for the gateway's answer, in seconds.
    #[arg(long, default_value_t = 10)]
    wait: u64,
}

/// What the pid and status files of one gateway instance sit beside: the
/// store's file (`store`, as in the gateway's config), or, when the store
/// is a database server that several instances share, this instance's
/// audit key (`key`), where its head file is too.
fn instance_path<'a>(store: &'a Path, key: &'a Path) -> &'a Path {
    if passerelle::store::StoreConfig::names_a_server(store) {
        key
    } else {
        store
    }
}

/// Where `serve` records its process id.
pub fn pid_file(store: &Path, key: &Path) -> PathBuf {
    instance_path(store, key).with_extension("pid")
}

/// Where `serve` writes the outcome of its latest reload, beside its pid
/// file.
pub fn status_file(store: &Path, key: &Path) -> PathBuf {
    instance_path(store, key).with_extension("reload")
}

/// The outcome of the latest reload of a running gateway, as `serve`
/// writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// The gateway's process id.
    pub pid: u32,
    /// Reloads since it started, this one included.
    pub reloads: u64,
    /// Whether the new configuration was put in force.
    pub accepted: bool,
    /// The policy in force after it.
    pub policy_digest: Option<String>,
    /// What changed (`policy`, `tls-cert`, `ca:<agency>`, `crl:<agency>`).
    pub changed: Vec<String>,
    /// Why it was refused.
    pub error: Option<String>,
}

/// Writes `status` whole (a reader never sees half of it).
pub fn write_status(store: &Path, key: &Path, status: &ReloadStatus) -> Result<()> {
    let path = status_file(store, key);
    let partial = path.with_extension("reload.partial");
    std::fs::write(&partial, serde_json::to_vec(status)?)?;
    std::fs::rename(&partial, &path)?;
    Ok(())
}

fn read_status(store: &Path, key: &Path) -> Option<ReloadStatus> {
    serde_json::from_slice(&std::fs::read(status_file(store, key)).ok()?).ok()
}

/// Checks `config`'s files as the gateway's reload will, then sends
/// SIGHUP to the running gateway; returns its pid and the status that
/// was there before, to wait for the next one.
pub fn check_and_signal(config: &GatewayConfig) -> Result<(String, Option<ReloadStatus>)> {
    // The same check as the gateway's reload: a refusal is said here, not
    // only in the gateway's log.
    passerelle::snapshot::check(config)?;
    let pid_file = pid_file(&config.store, &config.audit.key);
    let pid = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("no running gateway: cannot read {}", pid_file.display()))?;
    // Only one process: to `kill`, a negative number is a process group,
    // -1 every process we may signal and 0 our own group.
    let pid = match pid.trim().parse::<u32>() {
        Ok(n) if n > 1 => n.to_string(),
        _ => bail!("{} holds not a process id", pid_file.display()),
    };
    let before = read_status(&config.store, &config.audit.key);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()?;
    if !status.success() {
        bail!("could not signal the gateway (pid {pid})");
    }
    Ok((pid, before))
}

/// Waits, up to `wait`, for a status other than `before`.
pub fn wait_for_status(
    config: &GatewayConfig,
    before: Option<&ReloadStatus>,
    wait: Duration,
) -> Option<ReloadStatus> {
    let step = Duration::from_millis(100);
    let polls = (wait.as_millis() / step.as_millis()).max(1);
    for _ in 0..polls {
        if let Some(now) = read_status(&config.store, &config.audit.key) {
            if Some(&now) != before {
                return Some(now);
            }
        }
        std::thread::sleep(step);
    }
    None
}

/// Prints what the gateway answered and the exit code for it: 0 accepted,
/// 1 refused.
pub fn report(status: &ReloadStatus) -> ExitCode {
    if status.accepted {
        let changed = if status.changed.is_empty() {
            "nothing changed".to_string()
        } else {
            format!("changed: {}", status.changed.join(", "))
        };
        println!(
            "gateway {} reloaded: policy {} in force; {changed}",
            status.pid,
            status.policy_digest.as_deref().unwrap_or("?"),
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "gateway {} refused the reload and keeps its configuration: {}",
            status.pid,
            status.error.as_deref().unwrap_or("see its log"),
        );
        ExitCode::FAILURE
    }
}

pub fn run(args: ReloadArgs) -> Result<ExitCode> {
    let c = GatewayConfig::load(&args.config)?;
    let (pid, before) = check_and_signal(&c)?;
    match wait_for_status(&c, before.as_ref(), Duration::from_secs(args.wait)) {
        Some(status) => Ok(report(&status)),
        None => bail!(
            "gateway {pid} was signalled but did not report within {} s; see its log",
            args.wait
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_and_status_files_sit_beside_the_store_or_the_instances_key() {
        let key = Path::new("/etc/passerelle/audit-key.pem");
        assert_eq!(
            pid_file(Path::new("/var/lib/passerelle/store.sqlite"), key),
            PathBuf::from("/var/lib/passerelle/store.pid")
        );
        assert_eq!(
            pid_file(Path::new("data/passerelle"), Path::new("k.pem")),
            PathBuf::from("data/passerelle.pid")
        );
        assert_eq!(
            status_file(Path::new("/var/lib/passerelle/store.sqlite"), key),
            PathBuf::from("/var/lib/passerelle/store.reload")
        );
        // Several instances share a database: each has its own.
        let db = Path::new("postgres://gw@db.example/passerelle");
        assert_eq!(
            pid_file(db, key),
            PathBuf::from("/etc/passerelle/audit-key.pid")
        );
        assert_eq!(
            status_file(db, key),
            PathBuf::from("/etc/passerelle/audit-key.reload")
        );
    }

    #[test]
    fn a_status_is_written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.sqlite");
        let key = dir.path().join("audit-key.pem");
        assert!(read_status(&store, &key).is_none());
        let status = ReloadStatus {
            pid: 7,
            reloads: 1,
            accepted: false,
            policy_digest: None,
            changed: vec!["crl:police".into()],
            error: Some("bad CRL".into()),
        };
        write_status(&store, &key, &status).unwrap();
        assert_eq!(read_status(&store, &key), Some(status));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
