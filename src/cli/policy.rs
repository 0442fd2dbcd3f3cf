//! `passerelle policy`: the security officers' tools for the classification
//! and need-to-know policy: `check` (and, with `--config`, the agencies
//! against the gateway's CA bindings), `test`, `explain`, `replay` (a
//! candidate policy over an exported, verified audit log) and `reload` (the
//! running gateway, by SIGHUP). The policy's loader and engine decide; this
//! module prints what they say and picks the exit code.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

use super::audit::{auditor_key, cannot_run};
use super::gateway::pid_file;
use passerelle::auditor::{replay, show, time};
use passerelle::config::GatewayConfig;
use passerelle::domain::principal::PrincipalId;
use passerelle::gateway::unix_now;
use passerelle::policy;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy directory and its test cases; exits non-zero on any
    /// error, each reported with file and line.
    Check {
        /// The policy directory, e.g. policies/.
        dir: PathBuf,
        /// Also check the policy with this gateway configuration, as a
        /// start or reload would: its CA bindings, and the CA, CRL,
        /// certificate and key files it names. Anything the gateway would
        /// refuse exits non-zero.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the test cases in DIR/tests/*.toml against the policy in DIR.
    Test {
        /// The policy directory.
        dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Explain, in plain words, what the policy decides for an item and a
    /// recipient: which rules matched, which mandatory check failed, which
    /// portions would be released.
    Explain {
        /// The policy directory.
        dir: PathBuf,
        /// The item, in the test-case format of DIR/tests (sender, label,
        /// portions, purpose, cases, priority).
        #[arg(long)]
        item: PathBuf,
        /// The recipient to decide for.
        #[arg(long)]
        to: PrincipalId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decide every acceptance on an exported audit log again under a
    /// candidate policy, and print what would change, per recipient and
    /// portion (allow → deny, deny → allow), grouped by the rules that
    /// decided before and after, with counts and example item references.
    /// The export is verified first.
    ///
    /// Exit codes: 0 nothing would change, 1 something would change, 2
    /// could not run (including an export that does not verify).
    ///
    /// Example: passerelle policy replay policies-next/ --export /tmp/audit-export --key gateway/audit.vkey
    #[command(verbatim_doc_comment)]
    Replay {
        /// The candidate policy directory.
        dir: PathBuf,
        /// The audit export directory (`passerelle audit export`).
        #[arg(long)]
        export: PathBuf,
        /// The gateway's verifier key (or file).
        #[arg(long)]
        key: String,
        /// Acceptances of this case only.
        #[arg(long)]
        case: Option<String>,
        /// Acceptances at or after this time: RFC 3339, a UTC date or Unix seconds.
        #[arg(long, value_parser = time::parse_time)]
        since: Option<i64>,
        /// Acceptances before this time: RFC 3339, a UTC date or Unix seconds.
        #[arg(long, value_parser = time::parse_time)]
        until: Option<i64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the running gateway's policy directory, then ask the gateway
    /// to reload it (SIGHUP to the pid in its store directory). An invalid
    /// policy is refused by the gateway too, and the old one stays.
    Reload {
        /// The gateway configuration.
        #[arg(long)]
        config: PathBuf,
    },
}

pub fn run(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { dir, config } => {
            let report = passerelle::policy_files::check(&dir)?;
            println!("{report}");
            let Some(config) = config else {
                return Ok(ExitCode::SUCCESS);
            };
            let c = GatewayConfig::load(&config)?;
            let p = passerelle::policy_files::load_dir(&dir)?;
            let configured: Vec<policy::ConfiguredAgency<'_>> = c
                .agencies
                .iter()
                .map(|a| policy::ConfiguredAgency {
                    agency: a.name.as_str(),
                    trust_domain: &a.trust_domain,
                })
                .collect();
            let b = policy::compare_bindings(&p, &configured);
            for w in &b.warnings {
                println!("warning: {w}");
            }
            for e in &b.errors {
                println!("error: {e}");
            }
            if !b.errors.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "the agencies and trust domains of {} match the policy's",
                config.display()
            );
            // The check a start or a reload makes, on this policy: the CA,
            // CRL, certificate and key files the config names load too.
            let mut c = c;
            c.policy = dir;
            match passerelle::snapshot::check(&c) {
                Ok(_) => {
                    println!("its CA, CRL, certificate and key files load");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("error: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        PolicyCommand::Test { dir, json } => {
            let report = passerelle::policy_files::run_tests(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PolicyCommand::Explain {
            dir,
            item,
            to,
            json,
        } => {
            let p = passerelle::policy_files::load_dir(&dir)?;
            let text = std::fs::read_to_string(&item)
                .with_context(|| format!("reading {}", item.display()))?;
            let name = item.display().to_string();
            let spec =
                policy::ItemSpec::from_toml(&name, &text).map_err(|d| anyhow::anyhow!("{d}"))?;
            let explanation = p.explain(&spec.facts(), &to, spec.now.unwrap_or_else(unix_now));
            if json {
                println!("{}", serde_json::to_string_pretty(&explanation)?);
            } else {
                println!("{explanation}");
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Replay {
            dir,
            export,
            key,
            case,
            since,
            until,
            json,
        } => {
            let key = match auditor_key(&key) {
                Ok(k) => k,
                Err(code) => return Ok(code),
            };
            let candidate = match passerelle::policy_files::load_dir(&dir) {
                Ok(p) => p,
                Err(e) => return Ok(cannot_run(&e)),
            };
            let filter = show::Filter {
                case,
                since,
                until,
                ..show::Filter::default()
            };
            match replay::replay(&export, &key, &candidate, &filter) {
                Ok(report) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        print!("{report}");
                    }
                    Ok(ExitCode::from(report.exit_code()))
                }
                Err(e) => Ok(cannot_run(&format!("{}: {e}", export.display()))),
            }
        }
        PolicyCommand::Reload { config } => {
            let c = GatewayConfig::load(&config)?;
            // The same check as the gateway's reload: policy, CAs, CRLs,
            // certificate and key, so a refusal is said here, not only in
            // the gateway's log.
            let p = passerelle::snapshot::check(&c)?;
            let pid_file = pid_file(&c.store, &c.audit.key);
            let pid = std::fs::read_to_string(&pid_file).with_context(|| {
                format!("no running gateway: cannot read {}", pid_file.display())
            })?;
            let pid = pid.trim();
            let status = std::process::Command::new("kill")
                .args(["-HUP", pid])
                .status()?;
            if !status.success() {
                bail!("could not signal the gateway (pid {pid})");
            }
            println!(
                "policy {} is valid; gateway {pid} asked to reload it",
                p.policy_digest()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
