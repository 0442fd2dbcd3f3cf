//! The `passerelle` command: the gateway, the example PKI, the station
//! commands and the demo. Arguments are checked here, then handed to the
//! library; errors get context for the person at the terminal.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

use passerelle::audit::signed_note::VerifierKey;
use passerelle::client::Station;
use passerelle::config::{ClientConfig, GatewayConfig};
use passerelle::domain::item::Priority;
use passerelle::domain::principal::PrincipalId;
use passerelle::gateway::unix_now;
use passerelle::spec::{ItemSpec, LabelSpec, PortionSpec};
use passerelle::{demo, pki, server};

/// passerelle: a mutual-TLS exchange gateway for classified items between
/// the Federal Police and VSSE.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scripted exchange over real mTLS in a temporary directory and
    /// print what happened. Exits 0 only if every step behaved as expected.
    Demo {
        /// Keep the demo's files in this (new or empty) directory instead of
        /// a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Run the gateway.
    Serve {
        /// The gateway configuration, e.g. certs-example/gateway.toml.
        #[arg(long)]
        config: PathBuf,
        /// Start a new audit log over a store that disagrees with what the
        /// gateway signed (wiped, truncated, rolled back or edited), instead
        /// of refusing to start. The new start is the next entry of the log,
        /// naming the previous head and what was wrong. Refused when there
        /// is nothing to start anew: never leave it in a service file.
        #[arg(long)]
        new_log: bool,
    },
    /// Example PKI (for examples and tests only).
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Make the gateway's Ed25519 signing key (mode 0600) and print its
    /// public key, raw and as a C2SP signed-note verifier key for auditors.
    Keygen {
        /// Where to write the key (PKCS#8 PEM); must not exist.
        #[arg(long)]
        out: PathBuf,
        /// The audit log's origin, which names the key in checkpoints.
        #[arg(long, default_value = pki::AUDIT_ORIGIN)]
        origin: String,
    },
    /// Security officers' tools for the classification and need-to-know
    /// policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Auditor tools for the tamper-evident log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Sign and send an item (station).
    Send(SendArgs),
    /// Send again every signed item left in the station's outbox by a
    /// `send` that got no answer (station). Safe to repeat: the gateway
    /// recognises an item it already has and returns its receipt.
    Outbox {
        #[command(flatten)]
        station: StationArgs,
    },
    /// List deliverable items (station).
    Inbox {
        #[command(flatten)]
        station: StationArgs,
        /// Wait up to this many seconds for an item to arrive.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// List requests without an answer that are past due, or due within
    /// `--within`, per desk (station; an auditor sees every request, a
    /// station the requests it sent or received).
    Overdue {
        #[command(flatten)]
        station: StationArgs,
        /// Also list requests due within this time, e.g. 45m, 8h or 3d.
        #[arg(long)]
        within: Option<String>,
    },
    /// Fetch an item, check its signatures, and show it (station).
    Fetch {
        #[command(flatten)]
        station: StationArgs,
        /// The item reference, as listed by `inbox`.
        item_ref: String,
        /// Acknowledge the item once it is shown.
        #[arg(long)]
        ack: bool,
    },
    /// Acknowledge an item (station).
    Ack {
        #[command(flatten)]
        station: StationArgs,
        /// The item reference.
        item_ref: String,
    },
    /// Show the receipt of one of your items (station).
    Receipt {
        #[command(flatten)]
        station: StationArgs,
        /// The item reference, as in the receipt `send` printed.
        item_ref: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy directory and its test cases; exits non-zero on any
    /// error, each reported with file and line.
    Check {
        /// The policy directory, e.g. policies/.
        dir: PathBuf,
        /// Also compare the policy's agencies with this gateway
        /// configuration's CA bindings, as a start or reload would: a
        /// mismatch the gateway would refuse exits non-zero.
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
        #[arg(long, value_parser = passerelle::auditor::show::parse_time)]
        since: Option<i64>,
        /// Acceptances before this time: RFC 3339, a UTC date or Unix seconds.
        #[arg(long, value_parser = passerelle::auditor::show::parse_time)]
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

#[derive(Subcommand)]
enum AuditCommand {
    /// Export the audit log, up to its latest signed checkpoint (signing a
    /// fresh one first if the log grew), into DIR in the C2SP tlog-tiles
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
    /// Example: passerelle audit verify /tmp/audit-export --key gateway/audit.vkey
    #[command(verbatim_doc_comment)]
    Verify {
        /// The export directory, as `passerelle audit export` wrote it.
        dir: PathBuf,
        /// The gateway's verifier key: the string name+keyid+base64 that
        /// `passerelle keygen` printed, or a file holding it (gateway/audit.vkey).
        #[arg(long)]
        key: String,
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
    /// Example: passerelle audit check-receipt receipt.json --key gateway/audit.vkey
    #[command(verbatim_doc_comment)]
    CheckReceipt {
        /// The receipt file (JSON).
        receipt: PathBuf,
        /// The gateway's verifier key, or a file holding it.
        #[arg(long)]
        key: String,
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
        /// Entries about this principal (sender, recipient or caller), e.g.
        /// police/lo/rabat.
        #[arg(long)]
        principal: Option<passerelle::domain::principal::PrincipalId>,
        /// Entries about a principal of this agency, e.g. vsse.
        #[arg(long)]
        agency: Option<String>,
        /// Entries about items of this case: their acceptance, deliveries,
        /// refusals and acknowledgements.
        #[arg(long)]
        case: Option<String>,
        /// Entries recording a policy decision with this effect.
        #[arg(long, value_parser = passerelle::auditor::show::parse_effect)]
        decision: Option<passerelle::domain::decision::Effect>,
        /// Entries at or after this time: RFC 3339, a UTC date or Unix seconds.
        #[arg(long, value_parser = passerelle::auditor::show::parse_time)]
        since: Option<i64>,
        /// Entries before this time: RFC 3339, a UTC date or Unix seconds.
        #[arg(long, value_parser = passerelle::auditor::show::parse_time)]
        until: Option<i64>,
        /// One JSON object per line per entry.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Write an example PKI (one CA per agency, gateway and station
    /// certificates) and ready configs into DIR.
    Init {
        /// Directory to write into; must not exist or be empty.
        dir: PathBuf,
        /// Address the example gateway config listens on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// Policy directory for the gateway config, relative to DIR (default:
        /// a copy of the built-in example policy in DIR/policies).
        #[arg(long)]
        policy: Option<String>,
    },
}

#[derive(Args)]
struct StationArgs {
    /// The station's client configuration, e.g.
    /// certs-example/stations/police-lo-rabat/client.toml.
    #[arg(long)]
    config: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SendArgs {
    #[command(flatten)]
    station: StationArgs,
    /// An item file (TOML; see the README). Other item options are ignored.
    #[arg(long, conflicts_with_all = ["to", "text"])]
    item: Option<PathBuf>,
    /// Recipient principal; repeat for several.
    #[arg(long, required_unless_present = "item")]
    to: Vec<PrincipalId>,
    /// The text of the single portion.
    #[arg(long, required_unless_present = "item")]
    text: Option<String>,
    /// Classification level of the item and its portion.
    #[arg(long, default_value = "RESTREINT")]
    level: String,
    /// Purpose of the exchange.
    #[arg(long, default_value = "terrorism")]
    purpose: String,
    /// Case reference; repeat for several.
    #[arg(long)]
    case: Vec<String>,
    /// FLASH, URGENT or ROUTINE.
    #[arg(long, default_value = "ROUTINE")]
    priority: Priority,
    /// Item id (default: a fresh UUIDv7, time-ordered and random).
    #[arg(long)]
    id: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The demo prints its own table; the gateway's log would only interleave.
    let default_filter = if matches!(cli.command, Command::Demo { .. }) {
        "error"
    } else {
        "passerelle=info,warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<std::process::ExitCode> {
    match command {
        Command::Demo { keep } => run_demo(keep).await,
        Command::Serve { config, new_log } => serve(&config, new_log)
            .await
            .map(|_| std::process::ExitCode::SUCCESS),
        Command::Pki(PkiCommand::Init {
            dir,
            listen,
            policy,
        }) => {
            ensure_empty(&dir)?;
            let example = pki::generate()?;
            pki::write_example(&dir, &example, &listen, policy.as_deref())?;
            println!("example PKI and configs written to {}", dir.display());
            println!(
                "run the gateway: passerelle serve --config {}",
                dir.join("gateway.toml").display()
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Send(args) => send(args).await,
        Command::Policy(cmd) => policy_command(cmd),
        Command::Outbox { station } => {
            let s = open_station(&station.config)?;
            let results = s.flush_outbox().await?;
            let mut left = 0;
            for (path, outcome) in &results {
                match outcome {
                    Ok(receipt) => print_receipt(receipt, station.json)?,
                    Err(e) => {
                        if e.is_transient() {
                            left += 1;
                        }
                        eprintln!("{}: {e}", path.display());
                    }
                }
            }
            if results.is_empty() && !station.json {
                println!("the outbox is empty");
            }
            Ok(if left == 0 {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::Keygen { out, origin } => {
            let key = passerelle::keys::GatewayKey::generate(&out, &origin)?;
            let raw = match key.public_key() {
                passerelle::domain::cose::PublicKey::Ed25519(k) => k,
                passerelle::domain::cose::PublicKey::Es256(k) => k,
            };
            println!("key written to {} (mode 0600)", out.display());
            println!("public key (Ed25519, hex): {}", hex::encode(&raw));
            println!("verifier key (C2SP signed note): {}", key.verifier_key());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Export { dir, config }) => {
            ensure_empty(&dir)?;
            let c = GatewayConfig::load(&config)?;
            let key = std::sync::Arc::new(passerelle::keys::GatewayKey::load(
                &c.audit.key,
                &c.audit.origin,
            )?);
            // Opening checks the store against its seal and checkpoints: a
            // store edited behind the gateway's back is not exported (and
            // not signed over).
            let store = passerelle::store::sqlite::SqliteStore::open(&c.store, key.clone())
                .with_context(|| format!("opening the store {}", c.store.display()))?;
            passerelle::gateway::sign_checkpoint(&store, &key.note, unix_now())?;
            let summary = passerelle::auditor::export(&store, &dir)?;
            println!(
                "exported {} entries, {} checkpoints, {} hash tiles, {} entry bundles to {}",
                summary.size,
                summary.checkpoints,
                summary.hash_tiles,
                summary.bundles,
                dir.display()
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify { dir, key }) => {
            use passerelle::auditor::verify;
            let key = match auditor_key(&key) {
                Ok(k) => k,
                Err(code) => return Ok(code),
            };
            match verify::verify(&dir, &key) {
                Ok(report) => {
                    print!("{report}");
                    Ok(std::process::ExitCode::from(verify::EXIT_VERIFIED))
                }
                Err(failure) => {
                    eprintln!("{}: {failure}", dir.display());
                    Ok(std::process::ExitCode::from(failure.exit_code()))
                }
            }
        }
        Command::Audit(AuditCommand::Prove { dir, index, key }) => {
            use passerelle::auditor::{prove, verify};
            let key = match auditor_key(&key) {
                Ok(k) => k,
                Err(code) => return Ok(code),
            };
            match prove::prove(&dir, index, &key) {
                Ok(proved) => {
                    println!("{}", serde_json::to_string_pretty(&proved.proof)?);
                    eprintln!(
                        "entry {index} ({}) is included in the signed checkpoint of size {} (proof verified)",
                        passerelle::auditor::show::event_name(&proved.entry.event),
                        proved.proof.size
                    );
                    Ok(std::process::ExitCode::from(verify::EXIT_VERIFIED))
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(std::process::ExitCode::from(e.exit_code()))
                }
            }
        }
        Command::Audit(AuditCommand::CheckReceipt { receipt, key }) => {
            use passerelle::auditor::{prove, verify};
            let key = match auditor_key(&key) {
                Ok(k) => k,
                Err(code) => return Ok(code),
            };
            match prove::check_receipt_file(&receipt, &key) {
                Ok(report) => {
                    print!("{report}");
                    Ok(std::process::ExitCode::from(verify::EXIT_VERIFIED))
                }
                Err(e) => {
                    eprintln!("{}: {e}", receipt.display());
                    Ok(std::process::ExitCode::from(e.exit_code()))
                }
            }
        }
        Command::Audit(AuditCommand::Show {
            dir,
            key,
            principal,
            agency,
            case,
            decision,
            since,
            until,
            json,
        }) => {
            use passerelle::auditor::{show, verify};
            let cannot_run = |e: &dyn std::fmt::Display| {
                eprintln!("error: {e}");
                std::process::ExitCode::from(verify::EXIT_CANNOT_RUN)
            };
            let key = match key.as_deref().map(verify::load_verifier_key).transpose() {
                Ok(k) => k,
                Err(e) => return Ok(cannot_run(&e)),
            };
            let agency = match agency
                .map(passerelle::domain::principal::Agency::new)
                .transpose()
            {
                Ok(a) => a,
                Err(e) => return Ok(cannot_run(&e)),
            };
            let filter = show::Filter {
                principal,
                agency,
                case,
                decision,
                since,
                until,
            };
            let listing = match show::show(&dir, &filter, key.as_ref()) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{}: {e}", dir.display());
                    return Ok(std::process::ExitCode::from(e.exit_code()));
                }
            };
            let verified = listing.verified.is_some();
            match &listing.verified {
                Some(r) => eprintln!(
                    "verified: {} entries under {} signed checkpoints",
                    r.size,
                    r.checkpoints.len()
                ),
                None => eprintln!(
                    "UNVERIFIED listing: pass --key to verify the export before listing it"
                ),
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
                        return Ok(std::process::ExitCode::SUCCESS);
                    }
                }
            }
            eprintln!(
                "{} of {} entries listed",
                listing.entries.len(),
                listing.total
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Inbox { station, wait } => {
            let s = open_station(&station.config)?;
            let items = s.inbox(Duration::from_secs(wait)).await?;
            if station.json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if items.is_empty() {
                println!("no items");
            } else {
                let now = passerelle::gateway::unix_now();
                println!(
                    "{:<32}  {:<8}  {:<24}  {:<32}  id",
                    "reference", "priority", "from", "answer due"
                );
                for e in items {
                    println!(
                        "{:<32}  {:<8}  {:<24}  {:<32}  {}",
                        e.item_ref,
                        format!("{:?}", e.priority).to_uppercase(),
                        e.sender,
                        e.due
                            .map(|d| due_text(d, now))
                            .unwrap_or_else(|| "-".into()),
                        e.item_id
                    );
                }
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Overdue { station, within } => {
            let within = match within {
                None => 0,
                Some(w) => passerelle::policy::parse_duration(&w)
                    .map_err(|e| anyhow::anyhow!("--within: {e}"))?,
            };
            let s = open_station(&station.config)?;
            let listing = s
                .overdue(Duration::from_secs(u64::try_from(within).unwrap_or(0)))
                .await?;
            if station.json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
                return Ok(std::process::ExitCode::SUCCESS);
            }
            if listing.requests.is_empty() {
                println!(
                    "no open request is past due{}",
                    if within > 0 { " or due soon" } else { "" }
                );
                return Ok(std::process::ExitCode::SUCCESS);
            }
            // Per desk: each recipient that has to answer, its requests by
            // due time.
            let mut desks: std::collections::BTreeMap<
                String,
                Vec<&passerelle::store::OpenRequest>,
            > = std::collections::BTreeMap::new();
            for r in &listing.requests {
                for desk in &r.recipients {
                    desks.entry(desk.to_string()).or_default().push(r);
                }
            }
            for (desk, requests) in desks {
                println!("desk {desk}");
                for r in requests {
                    println!(
                        "  {:<32}  {:<8}  from {:<24}  {}  {}",
                        r.item_ref,
                        format!("{:?}", r.priority).to_uppercase(),
                        r.sender,
                        due_text(r.due, listing.now),
                        r.item_id
                    );
                }
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Fetch {
            station,
            item_ref,
            ack,
        } => {
            let s = open_station(&station.config)?;
            let item = s.fetch(&item_ref).await?;
            let delivery = s.open(&item).context("refusing to show the item")?;
            let manifest = &delivery.manifest;
            if station.json {
                let shown = serde_json::json!({
                    "item_ref": item_ref,
                    "header": manifest.header,
                    "label": manifest.label,
                    "portions": item.portions.iter().map(|p| serde_json::json!({
                        "index": p.index,
                        "label": p.portion.label,
                        "content_type": p.portion.content_type,
                        "text": String::from_utf8_lossy(&p.portion.body.0),
                    })).collect::<Vec<_>>(),
                    "verified": true,
                    "attestation": delivery.attestation,
                });
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                let h = &manifest.header;
                println!("item {} from {} (signature verified)", h.id, h.sender);
                println!(
                    "  priority {:?}, purpose {}, cases {}",
                    h.priority,
                    h.purpose,
                    if h.cases.is_empty() {
                        "-".to_string()
                    } else {
                        h.cases.join(", ")
                    }
                );
                println!("  label {}", manifest.label.level);
                println!(
                    "  released to you: portions {:?} under policy {} (gateway attestation verified, audit entry {})",
                    delivery.attestation.portions,
                    &delivery.attestation.policy_digest[..12.min(delivery.attestation.policy_digest.len())],
                    delivery.attestation.audit_index
                );
                for p in &item.portions {
                    println!("  [{}] ({})", p.index, p.portion.label.level);
                    println!("    {}", String::from_utf8_lossy(&p.portion.body.0));
                }
            }
            if ack {
                s.ack(&item_ref).await?;
                if !station.json {
                    println!("acknowledged");
                }
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Ack { station, item_ref } => {
            let s = open_station(&station.config)?;
            let a = s.ack(&item_ref).await?;
            if station.json {
                println!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                println!("{} {}", a.item_ref, a.status);
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Receipt { station, item_ref } => {
            let s = open_station(&station.config)?;
            let r = s.receipt(&item_ref).await?;
            print_receipt(&r, station.json)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// The gateway's verifier key from `--key` (the key string or a file
/// holding it), or the exit code "could not run" after saying why.
fn auditor_key(arg: &str) -> std::result::Result<VerifierKey, std::process::ExitCode> {
    use passerelle::auditor::verify;
    verify::load_verifier_key(arg).map_err(|e| {
        eprintln!("error: {e}");
        std::process::ExitCode::from(verify::EXIT_CANNOT_RUN)
    })
}

fn ensure_empty(dir: &Path) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty; choose a new directory", dir.display());
    }
    Ok(())
}

fn open_station(config: &Path) -> Result<Station> {
    let c = ClientConfig::load(config)?;
    Station::new(c)
        .with_context(|| format!("loading the station files named in {}", config.display()))
}

fn print_receipt(signed: &passerelle::domain::receipt::SignedReceipt, json: bool) -> Result<()> {
    if json {
        // The whole signed receipt: keep it, and an auditor can check it
        // later with `passerelle audit check-receipt`.
        println!("{}", serde_json::to_string_pretty(signed)?);
        return Ok(());
    }
    let r = &signed.receipt;
    println!("item {} accepted as {}", r.item_id, r.item_ref);
    println!("  digest {}", r.digest);
    println!(
        "  audit entry {} (receipt signed by the gateway, verified)",
        r.audit_index
    );
    if let Some(p) = &signed.inclusion {
        println!(
            "  included in the signed checkpoint of size {} (proof verified)",
            p.size
        );
    }
    for o in &r.outcomes {
        println!("  {:<24} {:?}", o.recipient.as_str(), o.outcome);
        for reason in &o.reasons {
            println!("    {reason}");
        }
    }
    Ok(())
}

async fn send(args: SendArgs) -> Result<std::process::ExitCode> {
    let s = open_station(&args.station.config)?;
    let spec = match &args.item {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            ItemSpec::parse(&text)
                .with_context(|| format!("{} is not a valid item file", path.display()))?
        }
        None => {
            let label = LabelSpec {
                level: args.level.clone(),
                caveats: Default::default(),
                rel_to: Default::default(),
                handling: None,
                diffusion_restreinte: false,
                originator: None,
                third_party: None,
                evaluation: None,
                review_date: None,
            };
            ItemSpec {
                id: args.id.clone(),
                to: args.to.clone(),
                purpose: args.purpose.clone(),
                cases: args.case.clone(),
                priority: args.priority,
                language: "fr".into(),
                expires_in_hours: None,
                request: None,
                in_reply_to: None,
                label: label.clone(),
                portions: vec![PortionSpec {
                    label,
                    text: args.text.clone().unwrap_or_default(),
                }],
            }
        }
    };
    let item = spec.sign(s.signing_key(), &s.config().principal, unix_now());
    match s.send_durably(&item).await {
        Ok(receipt) => {
            print_receipt(&receipt, args.station.json)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) if e.is_transient() => {
            eprintln!(
                "error: {e}\nthe signed item is kept in {}; send it with: passerelle outbox --config {}",
                s.config().outbox.display(),
                args.station.config.display()
            );
            Ok(std::process::ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

fn policy_command(cmd: PolicyCommand) -> Result<std::process::ExitCode> {
    use passerelle::policy;
    match cmd {
        PolicyCommand::Check { dir, config } => {
            let report = passerelle::policy_files::check(&dir)?;
            println!("{report}");
            let Some(config) = config else {
                return Ok(std::process::ExitCode::SUCCESS);
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
            if b.errors.is_empty() {
                println!(
                    "the agencies and trust domains of {} match the policy's",
                    config.display()
                );
                Ok(std::process::ExitCode::SUCCESS)
            } else {
                Ok(std::process::ExitCode::FAILURE)
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
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
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
            Ok(std::process::ExitCode::SUCCESS)
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
            use passerelle::auditor::{replay, show, verify};
            let cannot_run = |e: &dyn std::fmt::Display| {
                eprintln!("error: {e}");
                std::process::ExitCode::from(verify::EXIT_CANNOT_RUN)
            };
            let key = match verify::load_verifier_key(&key) {
                Ok(k) => k,
                Err(e) => return Ok(cannot_run(&e)),
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
                    Ok(std::process::ExitCode::from(report.exit_code()))
                }
                Err(e) => Ok(cannot_run(&format!("{}: {e}", export.display()))),
            }
        }
        PolicyCommand::Reload { config } => {
            let c = GatewayConfig::load(&config)?;
            let p = server::load_policy(&c)?;
            let pid_file = pid_file(&c);
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
                p.digest_hex()
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// Where `serve` records its process id, for `policy reload`.
fn pid_file(c: &GatewayConfig) -> PathBuf {
    c.store.with_extension("pid")
}

async fn serve(config: &Path, new_log: bool) -> Result<()> {
    let c = GatewayConfig::load(config)?;
    let running = server::start_with(&c, server::StartOptions { new_log })
        .await
        .context("starting the gateway")?;
    std::fs::write(pid_file(&c), format!("{}\n", std::process::id()))?;
    eprintln!(
        "passerelle gateway listening on {} (Ctrl-C to stop, SIGHUP to reload the policy)",
        running.addr
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => {
                // Refusals are logged and audited by reload_policy; the
                // gateway keeps serving with the policy in force.
                let _ = running.reload_policy().await;
            }
        }
    }
    let _ = std::fs::remove_file(pid_file(&c));
    eprintln!("stopping: letting requests in progress finish");
    running.shutdown().await;
    Ok(())
}

async fn run_demo(keep: Option<PathBuf>) -> Result<std::process::ExitCode> {
    let temp;
    let kept = keep.is_some();
    let dir = match keep {
        Some(d) => {
            ensure_empty(&d)?;
            d
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    println!("passerelle demo: a liaison station abroad and VSSE exchange over mutual TLS\n");
    let report = demo::run(&dir).await?;
    println!("{}", report.table());
    if !report.notes.is_empty() {
        println!("\nwhat the gateway told the sender:");
        for note in &report.notes {
            println!("  - {note}");
        }
    }
    match (&report.export, kept) {
        (Some((export, vkey)), true) => println!(
            "\nthe demo's audit log is exported to {}; verify it yourself with:\n  passerelle audit verify {} --key {}",
            export.display(),
            export.display(),
            vkey.display()
        ),
        // The temporary directory goes when the demo ends: do not point
        // at files that will not be there.
        _ => println!(
            "\nthe demo's files are deleted now; run `passerelle demo --keep DIR` to keep them and verify the exported audit log yourself"
        ),
    }
    if report.all_ok() {
        println!("\nevery step behaved as expected");
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        println!("\nSOME STEPS DID NOT BEHAVE AS EXPECTED");
        Ok(std::process::ExitCode::FAILURE)
    }
}

/// A due time as a person reads it: the UTC time, and how late or how
/// soon relative to `now` (`OVERDUE by 2h` marks what is past due).
fn due_text(due: i64, now: i64) -> String {
    let at = passerelle::auditor::show::rfc3339(due);
    if due < now {
        format!(
            "{at} OVERDUE by {}",
            passerelle::policy::duration_text((now - due).max(60))
        )
    } else {
        format!(
            "{at} (in {})",
            passerelle::policy::duration_text((due - now).max(60))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::due_text;

    #[test]
    fn a_due_time_in_the_past_is_marked_overdue() {
        assert_eq!(due_text(0, 7_200), "1970-01-01T00:00:00Z OVERDUE by 2h");
        assert_eq!(due_text(3_600, 60), "1970-01-01T01:00:00Z (in 59m)");
        assert!(!due_text(100, 100).contains("OVERDUE"));
    }
}
