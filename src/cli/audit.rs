//! `passerelle audit`: the auditor's commands. `export` is the one that
//! opens the gateway's store (read-only use, after signing a fresh
//! checkpoint); `verify`, `prove`, `check-receipt`, `show` and `report` work offline
//! on an export with nothing but the gateway's verifier key (the library's
//! [`passerelle::auditor`]). Their exit codes are stable: 0 verified, 1 the
//! export or receipt does not verify, 2 could not run.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::ensure_empty;
use passerelle::audit::cosignature::CosignatureVerifier;
use passerelle::audit::signed_note::VerifierKey;
use passerelle::auditor::{prove, report, show, time, verify, witnesses};
use passerelle::config::GatewayConfig;
use passerelle::domain::decision::Effect;
use passerelle::domain::principal::{Agency, PrincipalId};
use passerelle::gateway::unix_now;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Export the audit log, up to its latest signed checkpoint (signing a
    /// fresh one first if the log grew, and asking the [[witness]] of the
    /// configuration to cosign it), into DIR in the C2SP tlog-tiles
    /// layout.
    Export {
        /// Directory to write into; must not exist or be empty.
        dir: PathBuf,
        /// The gateway configuration (for the store and the signing key).
        #[arg(long)]
        config: PathBuf,
    },
    /// Verify an exported log offline with the gateway's public key: every
    /// checkpoint's signature, the tree recomputed from the entries, each
    /// later checkpoint consistent with the earlier ones, the hash tiles.
    ///
    /// On any change, deletion, insertion or reordering, an entry appended
    /// without a checkpoint, a checkpoint signed by another key or
    /// inconsistent with another, it names the first entry (index) or the
    /// checkpoint (size and file) at fault.
    ///
    /// Exit codes: 0 verified, 1 verification failed (the export does not
    /// prove the log: tampering, damage or the wrong key), 2 could not run
    /// (usage, unreadable directory or key).
    ///
    /// With --witness, the latest checkpoint must also carry valid
    /// cosignatures (C2SP cosignature/v1) from at least --quorum of the
    /// witnesses given (all of them by default); the verdict names which
    /// witnesses cosigned and which did not.
    ///
    /// Example: passerelle audit verify /tmp/audit-export --key gateway/audit.vkey
    /// Example: passerelle audit verify /tmp/audit-export --key gateway/audit.vkey \
    ///            --witness comite-p.vkey --witness comite-r.vkey --quorum 1
    #[command(verbatim_doc_comment)]
    Verify {
        /// The export directory, as `passerelle audit export` wrote it.
        dir: PathBuf,
        /// The gateway's verifier key: the string name+keyid+base64 that
        /// `passerelle keygen` printed, or a file holding it (gateway/audit.vkey).
        #[arg(long)]
        key: String,
        #[command(flatten)]
        witnesses: WitnessArgs,
    },
    /// Print the inclusion proof of one entry against the export's latest
    /// signed checkpoint, as JSON (the shape receipts carry). The proof is
    /// checked with the key before it is printed.
    ///
    /// Exit codes: 0 proof printed, 1 the export cannot prove the entry
    /// (tampered or damaged), 2 could not run (usage, no such entry,
    /// unreadable input).
    ///
    /// Example: passerelle audit prove /tmp/audit-export --index 3 --key gateway/audit.vkey
    #[command(verbatim_doc_comment)]
    Prove {
        /// The export directory.
        dir: PathBuf,
        /// The entry's index in the log (a receipt's audit_index).
        #[arg(long)]
        index: u64,
        /// The gateway's verifier key, or a file holding it.
        #[arg(long)]
        key: String,
    },
    /// Check a signed receipt a sender kept (the JSON that `passerelle send
    /// --json` or `passerelle receipt --json` print): the gateway's signature
    /// and, if it carries one, the inclusion proof of its audit entry against
    /// a signed checkpoint. Prints what it proves.
    ///
    /// Exit codes: 0 valid, 1 not valid (altered, or from another log),
    /// 2 could not run (usage, unreadable file, not a receipt).
    ///
    /// With --witness, the receipt must also be final: the checkpoint its
    /// proof is against must carry valid cosignatures (C2SP cosignature/v1)
    /// from at least --quorum of the witnesses given (all by default), as
    /// `passerelle receipt REF --wait S --json` prints it for a station
    /// whose client.toml has [witnesses]. Exit 1 when it is not.
    ///
    /// Example: passerelle audit check-receipt receipt.json --key gateway/audit.vkey
    /// Example: passerelle audit check-receipt receipt.json --key gateway/audit.vkey \
    ///            --witness comite-p.vkey --witness comite-r.vkey --quorum 1
    #[command(verbatim_doc_comment)]
    CheckReceipt {
        /// The receipt file (JSON).
        receipt: PathBuf,
        /// The gateway's verifier key, or a file holding it.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        witnesses: WitnessArgs,
    },
    /// List the entries of an exported log: index, time (RFC 3339, UTC),
    /// event, principals, item reference, decisions and rules.
    ///
    /// With --key the export is verified first and nothing is listed unless
    /// it verifies; without --key the listing is marked UNVERIFIED.
    /// Filters combine: an entry is listed only if it passes every one.
    ///
    /// Exit codes: 0 listed, 1 verification failed (with --key), 2 could not
    /// run.
    ///
    /// Example: passerelle audit show /tmp/audit-export --case CT-2026-17 --key gateway/audit.vkey
    #[command(verbatim_doc_comment)]
    Show {
        /// The export directory.
        dir: PathBuf,
        /// Verify the export with this verifier key (or file) first.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// One JSON object per line per entry.
        #[arg(long)]
        json: bool,
    },
    /// Write an auditor's report: one self-contained HTML file (inline SVG,
    /// no script, nothing fetched) with the checkpoint and key verified, the
    /// flows between agencies and principals (released, partially released,
    /// denied), denials over time by reason, the time from acceptance to
    /// delivery per priority against the one-hour FLASH target, refused
    /// connections over time and, per case, who received what.
    ///
    /// The export is verified first, as by `audit verify` (with --witness,
    /// the quorum too); nothing is written unless it verifies. Filters as
    /// for `audit show` pick the entries counted.
    ///
    /// Exit codes: 0 written, 1 verification failed, 2 could not run.
    ///
    /// Example: passerelle audit report /tmp/audit-export --key gateway/audit.vkey --out report.html
    #[command(verbatim_doc_comment)]
    Report {
        /// The export directory.
        dir: PathBuf,
        /// The gateway's verifier key, or a file holding it.
        #[arg(long)]
        key: String,
        /// The HTML file to write (replaced if it exists).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        witnesses: WitnessArgs,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

/// `--witness KEY… [--quorum N]`, for the commands that verify an export
/// or a receipt.
#[derive(Args)]
pub struct WitnessArgs {
    /// A witness's verifier key (name+keyid+base64 of type 0x04, as
    /// `passerelle witness keygen` printed it, or a file holding it).
    /// Repeat for each witness.
    #[arg(long = "witness", value_name = "KEY")]
    witnesses: Vec<String>,
    /// How many of the witnesses must have cosigned the latest
    /// checkpoint (default: all of them). Needs --witness.
    #[arg(long, requires = "witnesses")]
    quorum: Option<usize>,
}

/// The filters of `audit show` and `audit report`.
#[derive(Args)]
pub struct FilterArgs {
    /// Entries about this principal (sender, recipient or caller), e.g.
    /// police/lo/rabat.
    #[arg(long)]
    principal: Option<PrincipalId>,
    /// Entries about a principal of this agency, e.g. vsse.
    #[arg(long)]
    agency: Option<String>,
    /// Entries about items of this case: their acceptance, deliveries,
    /// refusals and acknowledgements.
    #[arg(long)]
    case: Option<String>,
    /// Entries recording a policy decision with this effect.
    #[arg(long, value_parser = show::parse_effect)]
    decision: Option<Effect>,
    /// Entries at or after this time: RFC 3339, a UTC date or Unix seconds.
    #[arg(long, value_parser = time::parse_time)]
    since: Option<i64>,
    /// Entries before this time: RFC 3339, a UTC date or Unix seconds.
    #[arg(long, value_parser = time::parse_time)]
    until: Option<i64>,
}

pub async fn run(cmd: AuditCommand) -> Result<ExitCode> {
    match cmd {
        AuditCommand::Export { dir, config } => export(&dir, &config).await,
        AuditCommand::Verify {
            dir,
            key,
            witnesses,
        } => Ok(verify_export(&dir, &key, &witnesses)),
        AuditCommand::Prove { dir, index, key } => prove_entry(&dir, index, &key),
        AuditCommand::CheckReceipt {
            receipt,
            key,
            witnesses,
        } => Ok(check_receipt(&receipt, &key, &witnesses)),
        AuditCommand::Show {
            dir,
            key,
            filter,
            json,
        } => {
            let key = match key.as_deref().map(auditor_key).transpose() {
                Ok(key) => key,
                Err(code) => return Ok(code),
            };
            let filter = match filter.filter() {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            list(&dir, key.as_ref(), &filter, json)
        }
        AuditCommand::Report {
            dir,
            key,
            out,
            witnesses,
            filter,
        } => write_report(&dir, &key, &out, &witnesses, filter),
    }
}

impl FilterArgs {
    /// The filter, or the exit code "could not run" after saying why.
    fn filter(self) -> std::result::Result<show::Filter, ExitCode> {
        let agency = self
            .agency
            .map(Agency::new)
            .transpose()
            .map_err(|e| cannot_run(&e))?;
        Ok(show::Filter {
            principal: self.principal,
            agency,
            case: self.case,
            decision: self.decision,
            since: self.since,
            until: self.until,
        })
    }
}

impl WitnessArgs {
    /// The witnesses' keys and the quorum (all of them by default), or the
    /// exit code "could not run" after saying why.
    fn quorum(&self) -> std::result::Result<report::Quorum, ExitCode> {
        let witnesses: Vec<CosignatureVerifier> = self
            .witnesses
            .iter()
            .map(|w| verify::load_key_arg(w))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| cannot_run(&e))?;
        let quorum = self.quorum.unwrap_or(witnesses.len());
        if !witnesses.is_empty() && (quorum == 0 || quorum > witnesses.len()) {
            return Err(cannot_run(&format!(
                "--quorum must be between 1 and the number of --witness keys ({}), not {quorum}",
                witnesses.len()
            )));
        }
        Ok(report::Quorum { witnesses, quorum })
    }
}

/// Says why an auditor command could not run, and gives its exit code
/// ("could not run", 2), shared by every command that verifies an export.
pub fn cannot_run(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(verify::EXIT_CANNOT_RUN)
}

/// The gateway's verifier key from `--key` (the key string or a file
/// holding it), or the exit code "could not run" after saying why.
pub fn auditor_key(arg: &str) -> std::result::Result<VerifierKey, ExitCode> {
    verify::load_verifier_key(arg).map_err(|e| cannot_run(&e))
}

async fn export(dir: &Path, config: &Path) -> Result<ExitCode> {
    ensure_empty(dir)?;
    let c = GatewayConfig::load(config)?;
    let key = std::sync::Arc::new(passerelle::keys::GatewayKey::load(
        &c.audit.key,
        &c.audit.origin,
    )?);
    // Opening checks the store against its seal and checkpoints: a
    // store edited behind the gateway's back is not exported (and
    // not signed over).
    let log = passerelle::integrity::open_checked(
        &passerelle::store::StoreConfig::from_setting(&c.store),
        key.clone(),
    )
    .with_context(|| format!("opening the store {}", c.store.display()))?;
    passerelle::gateway::sign_checkpoint(&log, &key.note, unix_now())?;
    let log = std::sync::Arc::new(log);
    ask_witnesses(&c, &log, &key.verifier_key()).await?;
    let summary = passerelle::export::export(log.store().as_ref(), dir)?;
    println!(
        "exported {} entries, {} checkpoints, {} hash tiles, {} entry bundles to {}",
        summary.size,
        summary.checkpoints,
        summary.hash_tiles,
        summary.bundles,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The checkpoint just signed may be newer than the gateway's last one:
/// the configured witnesses are asked for it as the gateway would, so that
/// the export carries their cosignatures. A refusal or a failure is said,
/// not fatal: the export is still the log as stored (and a running
/// gateway records refusals on its log).
async fn ask_witnesses(
    c: &GatewayConfig,
    log: &std::sync::Arc<passerelle::gateway::AuditLog>,
    key: &VerifierKey,
) -> Result<()> {
    use passerelle::gateway::witnessing::{self, Asked};
    for client in witnessing::clients(&c.witnesses).map_err(anyhow::Error::msg)? {
        let label = client.verifier().label();
        match witnessing::ask(&client, log, key, 0).await {
            Ok(Asked::Nothing) => {}
            Ok(Asked::Cosigned { size, .. }) => {
                println!("witness {label} cosigned the checkpoint of size {size}")
            }
            Ok(Asked::Refused {
                size,
                status,
                reason,
                ..
            }) => eprintln!(
                "warning: witness {label} REFUSED the checkpoint of size {size} ({status}): {reason}"
            ),
            Err(e) => eprintln!("warning: witness {label} did not cosign: {e}"),
        }
    }
    Ok(())
}

fn verify_export(dir: &Path, key: &str, witnesses: &WitnessArgs) -> ExitCode {
    // The key is read before the witnesses: a wrong key is the first thing said.
    let key = match auditor_key(key) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let quorum = match witnesses.quorum() {
        Ok(q) => q,
        Err(code) => return code,
    };
    let report = match verify::verify(dir, &key) {
        Ok(report) => report,
        Err(failure) => {
            eprintln!("{}: {failure}", dir.display());
            return ExitCode::from(failure.exit_code());
        }
    };
    if quorum.witnesses.is_empty() {
        print!("{report}");
        return ExitCode::from(verify::EXIT_VERIFIED);
    }
    match witnesses::check(dir, &key, &quorum.witnesses, quorum.quorum) {
        Ok(cosigned) => {
            print!("{report}");
            println!("  witnesses    {cosigned}");
            ExitCode::from(verify::EXIT_VERIFIED)
        }
        Err(failure) => {
            // The log itself verified: say so, then why the witnesses do not.
            print!("{report}");
            eprintln!("{}: NOT WITNESSED: {failure}", dir.display());
            ExitCode::from(failure.exit_code())
        }
    }
}

/// `audit report`: verified (and witnessed, when asked) first, then
/// counted and written; nothing is written for an export that does not
/// verify.
fn write_report(
    dir: &Path,
    key: &str,
    out: &Path,
    witnesses: &WitnessArgs,
    filter: FilterArgs,
) -> Result<ExitCode> {
    let key = match auditor_key(key) {
        Ok(k) => k,
        Err(code) => return Ok(code),
    };
    let (quorum, filter) = match (witnesses.quorum(), filter.filter()) {
        (Ok(q), Ok(f)) => (q, f),
        (Err(code), _) | (_, Err(code)) => return Ok(code),
    };
    let built = match report::build(dir, &key, &quorum, &filter) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    let html = report::render::render(&built);
    if let Err(e) = std::fs::write(out, html) {
        return Ok(cannot_run(&format!("writing {}: {e}", out.display())));
    }
    eprintln!(
        "verified: {} entries under {} signed checkpoints{}",
        built.verified.size,
        built.verified.checkpoints.len(),
        built.witnessed.as_ref().map_or(String::new(), |w| format!(
            "; {} witnesses cosigned",
            w.cosigned.len()
        ))
    );
    println!(
        "wrote the report of {} entries to {}",
        built.summary.counted,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn prove_entry(dir: &Path, index: u64, key: &str) -> Result<ExitCode> {
    let key = match auditor_key(key) {
        Ok(k) => k,
        Err(code) => return Ok(code),
    };
    match prove::prove(dir, index, &key) {
        Ok(proved) => {
            println!("{}", serde_json::to_string_pretty(&proved.proof)?);
            eprintln!(
                "entry {index} ({}) is included in the signed checkpoint of size {} (proof verified)",
                show::event_name(&proved.entry.event),
                proved.proof.size
            );
            Ok(ExitCode::from(verify::EXIT_VERIFIED))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

fn check_receipt(receipt: &Path, key: &str, witnesses: &WitnessArgs) -> ExitCode {
    let (key, quorum) = match (auditor_key(key), witnesses.quorum()) {
        (Ok(k), Ok(q)) => (k, q),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    match prove::check_receipt_file(receipt, &key, &quorum.witnesses, quorum.quorum) {
        Ok(report) => {
            print!("{report}");
            ExitCode::from(verify::EXIT_VERIFIED)
        }
        Err(e) => {
            eprintln!("{}: {e}", receipt.display());
            ExitCode::from(e.exit_code())
        }
    }
}

/// `audit show`: verified first when a key is given, then listed, one line
/// (or one JSON object) per entry on stdout, the verdict on stderr.
fn list(
    dir: &Path,
    key: Option<&VerifierKey>,
    filter: &show::Filter,
    json: bool,
) -> Result<ExitCode> {
    let listing = match show::show(dir, filter, key) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    let verified = listing.verified.is_some();
    match &listing.verified {
        Some(r) => eprintln!(
            "verified: {} entries under {} signed checkpoints",
            r.size,
            r.checkpoints.len()
        ),
        None => eprintln!("UNVERIFIED listing: pass --key to verify the export before listing it"),
    }
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        for shown in &listing.entries {
            let written = if json {
                writeln!(out, "{}", serde_json::to_string(&shown.to_json(verified))?)
            } else {
                writeln!(out, "{shown}")
            };
            // A closed pipe (`| head`) ends the listing, quietly.
            if written.is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    eprintln!(
        "{} of {} entries listed",
        listing.entries.len(),
        listing.total
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_does_not_load_means_could_not_run() {
        assert_eq!(
            auditor_key("not a verifier key").unwrap_err(),
            ExitCode::from(verify::EXIT_CANNOT_RUN)
        );
    }
}
