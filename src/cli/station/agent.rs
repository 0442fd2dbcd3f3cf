//! `passerelle station …`: the station agent and its vault, for stations
//! on poor links. `init` makes the vault, `run` runs the agent (one kept
//! connection, outbox pushed, inbox fetched, verified, kept encrypted,
//! then acknowledged), `unlock` / `lock` give the running agent the key or
//! take it away, `status`, `list` and `read` show what the station holds
//! (FLASH first), `send` signs an item and hands it to the agent sealed,
//! `passphrase` changes the vault's passphrase.
//!
//! The passphrase is read from the file `--passphrase-file` names, else
//! from `PASSERELLE_PASSPHRASE`, else as one line on standard input (not
//! echoed when it is a terminal); never from the command line, where other
//! accounts could see it. `list` and
//! `read` open the vault themselves when no agent runs.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use zeroize::Zeroizing;

use super::{due_text, print_item, priority_text, StationArgs};
use passerelle::agent::{
    ask, list_of, read_item, serve_control, status_of, unix_now, Agent, ControlReply,
    ControlRequest, ListEntry, Reading, Status,
};
use passerelle::auditor::time::rfc3339;
use passerelle::vault::{KdfParams, Unlocked, Vault};

#[derive(Subcommand)]
pub enum StationCommand {
    /// Make the station's vault, encrypted under a passphrase (Argon2id,
    /// XChaCha20-Poly1305).
    Init(PassArgs),
    /// Run the station agent: keep one connection to the gateway, send
    /// what is written, fetch, verify and keep what arrives (encrypted),
    /// then acknowledge it. Stops on Ctrl-C or SIGTERM.
    Run(RunArgs),
    /// Give the running agent the vault's passphrase.
    Unlock(PassArgs),
    /// Make the running agent forget the vault's key now.
    Lock(StationArgs),
    /// Link up or down and since when, items queued, sent awaiting a
    /// receipt, received, unread, overdue requests.
    Status(StationArgs),
    /// Every item the station holds, FLASH first.
    List(PassArgs),
    /// Show one received item, verified again, and mark it read.
    Read(ReadArgs),
    /// Wrap the vault's key under a new passphrase (read from
    /// --new-passphrase-file or PASSERELLE_NEW_PASSPHRASE); the items stay
    /// as they are.
    Passphrase(NewPassArgs),
    /// Sign an item and hand it to the running agent, which keeps it
    /// sealed and sends it when the link allows (the options of `send`).
    Send(super::super::send::SendArgs),
}

#[derive(Args)]
pub struct PassArgs {
    #[command(flatten)]
    station: StationArgs,
    /// A file holding the vault's passphrase (first line).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pass: PassArgs,
    /// Unlock the vault at start (the passphrase read as for `unlock`);
    /// otherwise the agent starts locked and waits for `station unlock`.
    #[arg(long)]
    unlock: bool,
}

#[derive(Args)]
pub struct NewPassArgs {
    #[command(flatten)]
    pass: PassArgs,
    /// A file holding the new passphrase (first line).
    #[arg(long)]
    new_passphrase_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pass: PassArgs,
    /// The item reference, as `station list` shows it.
    item_ref: String,
}

impl PassArgs {
    fn passphrase(&self) -> Result<Zeroizing<String>> {
        let mut text = Zeroizing::new(String::new());
        if let Some(path) = &self.passphrase_file {
            *text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
        } else if let Ok(value) = std::env::var("PASSERELLE_PASSPHRASE") {
            *text = value;
        } else if std::io::stdin().is_terminal() {
            // Typed at a terminal: not echoed.
            *text = rpassword::prompt_password("vault passphrase: ")
                .context("reading the passphrase from the terminal")?;
        } else {
            std::io::stdin().read_line(&mut text)?;
        }
        let line = Zeroizing::new(text.lines().next().unwrap_or_default().to_string());
        if line.is_empty() {
            bail!("the passphrase is empty");
        }
        Ok(line)
    }

    fn vault(&self) -> Result<Vault> {
        let config = passerelle::station_config::ClientConfig::load(&self.station.config)?;
        Ok(Vault::at(config.agent.vault))
    }
}

pub async fn run(cmd: StationCommand) -> Result<ExitCode> {
    match cmd {
        StationCommand::Init(args) => init(args),
        StationCommand::Run(args) => run_agent(args).await,
        StationCommand::Unlock(args) => {
            let passphrase = args.passphrase()?;
            let socket = args.station.open()?.config().agent.socket();
            expect_done(
                ask(
                    &socket,
                    &ControlRequest::Unlock {
                        passphrase: passphrase.to_string(),
                    },
                )
                .await?,
            )?;
            println!("unlocked");
            Ok(ExitCode::SUCCESS)
        }
        StationCommand::Lock(args) => {
            let socket = args.open()?.config().agent.socket();
            expect_done(ask(&socket, &ControlRequest::Lock).await?)?;
            println!("locked: the agent forgot the vault's key");
            Ok(ExitCode::SUCCESS)
        }
        StationCommand::Status(args) => status(args).await,
        StationCommand::List(args) => list(args).await,
        StationCommand::Read(args) => read(args).await,
        StationCommand::Send(args) => send(args).await,
        StationCommand::Passphrase(args) => {
            let old = args.pass.passphrase()?;
            let new = Zeroizing::new(match &args.new_passphrase_file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                None => std::env::var("PASSERELLE_NEW_PASSPHRASE").context(
                    "give the new passphrase with --new-passphrase-file or PASSERELLE_NEW_PASSPHRASE",
                )?,
            });
            let new = Zeroizing::new(new.lines().next().unwrap_or_default().to_string());
            if new.is_empty() {
                bail!("the new passphrase is empty");
            }
            args.pass.vault()?.change_passphrase(
                old.as_bytes(),
                new.as_bytes(),
                KdfParams::default(),
            )?;
            println!("the vault's passphrase is changed");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn expect_done(reply: ControlReply) -> Result<()> {
    match reply {
        ControlReply::Done => Ok(()),
        ControlReply::Error(e) => bail!("{e}"),
        other => bail!("unexpected answer from the agent: {other:?}"),
    }
}

fn init(args: PassArgs) -> Result<ExitCode> {
    let vault = args.vault()?;
    let passphrase = args.passphrase()?;
    vault
        .create(passphrase.as_bytes(), KdfParams::default())
        .with_context(|| format!("making the vault in {}", vault.dir().display()))?;
    println!("vault made in {}", vault.dir().display());
    Ok(ExitCode::SUCCESS)
}

async fn run_agent(args: RunArgs) -> Result<ExitCode> {
    let station = args.pass.station.open()?;
    // Checked before anything runs: two agents would fetch the same items.
    let socket = station.config().agent.socket();
    if ask(&socket, &ControlRequest::Status).await.is_ok() {
        bail!(
            "another agent is running for this station ({})",
            socket.display()
        );
    }
    let agent = Arc::new(Agent::new(station));
    if args.unlock {
        let passphrase = args.pass.passphrase()?;
        let a = agent.clone();
        tokio::task::spawn_blocking(move || a.unlock(passphrase.as_bytes())).await??;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let control = tokio::spawn(serve_control(agent.clone(), wait(stopped.clone())));
    let sync = tokio::spawn(agent.clone().run(wait(stopped.clone())));
    eprintln!(
        "station agent running for {} (vault {}, control socket {})",
        agent.station().config().principal,
        if agent.unlocked(false).is_some() {
            "unlocked"
        } else {
            "locked"
        },
        agent.settings().socket().display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        r = control => {
            // The control socket could not start (another agent runs).
            r??;
        }
    }
    let _ = stop.send(true);
    let _ = sync.await;
    Ok(ExitCode::SUCCESS)
}

/// The vault opened here when no agent runs.
fn open_directly(args: &PassArgs) -> Result<Unlocked> {
    let vault = args.vault()?;
    let passphrase = args.passphrase()?;
    Ok(vault.unlock(passphrase.as_bytes())?)
}

async fn status(args: StationArgs) -> Result<ExitCode> {
    let socket = args.open()?.config().agent.socket();
    let status = match ask(&socket, &ControlRequest::Status).await {
        Ok(ControlReply::Status(s)) => *s,
        Ok(ControlReply::Error(e)) => bail!("{e}"),
        Ok(other) => bail!("unexpected answer from the agent: {other:?}"),
        // No agent: nothing is known of the link, and the vault is not
        // opened without the officer.
        Err(_) => status_of(None, None, 0, Default::default(), unix_now()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_status(&status);
    }
    Ok(ExitCode::SUCCESS)
}

fn count(n: Option<usize>) -> String {
    n.map_or("?".into(), |n| n.to_string())
}

fn print_status(s: &Status) {
    match &s.link {
        None => println!("agent     not running (passerelle station run)"),
        Some(l) if l.up => println!("link      up since {}", rfc3339(l.since)),
        Some(l) => println!(
            "link      down since {}{}",
            rfc3339(l.since),
            l.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
    }
    if s.locked {
        println!("vault     locked (passerelle station unlock)");
        if s.link.is_some() {
            println!("waiting   {} item(s) at the gateway", s.waiting_at_gateway);
        }
    } else {
        println!(
            "received  {} ({} unread, {} FLASH unread), {} overdue request(s)",
            count(s.received),
            count(s.unread),
            count(s.unread_flash),
            count(s.overdue)
        );
        println!(
            "outgoing  {} queued, {} sent awaiting receipt, {} sent, {} refused",
            count(s.queued),
            count(s.awaiting_receipt),
            count(s.sent),
            count(s.refused)
        );
    }
    for (item_ref, why) in &s.not_verified {
        println!("NOT TAKEN {item_ref}: {why}");
    }
    if s.tampered > 0 {
        println!(
            "TAMPERED  {} vault file(s) do not open: report the laptop",
            s.tampered
        );
    }
}

async fn list(args: PassArgs) -> Result<ExitCode> {
    let socket = args.station.open()?.config().agent.socket();
    let entries: Vec<ListEntry> = match ask(&socket, &ControlRequest::List).await {
        Ok(ControlReply::List(l)) => l,
        Ok(ControlReply::Error(e)) => bail!("{e}"),
        Ok(other) => bail!("unexpected answer from the agent: {other:?}"),
        Err(_) => list_of(&open_directly(&args)?.scan()?, unix_now()),
    };
    if args.station.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no items");
        return Ok(ExitCode::SUCCESS);
    }
    let now = unix_now();
    println!(
        "{:<32}  {:<8}  {:<9}  {:<17}  {:<24}  {:<12}  at",
        "reference", "priority", "direction", "state", "from", "level"
    );
    for e in entries {
        println!(
            "{:<32}  {:<8}  {:<9}  {:<17}  {:<24}  {:<12}  {}{}",
            e.item_ref,
            priority_text(e.priority),
            e.direction,
            e.state,
            e.from,
            e.level,
            rfc3339(e.at),
            e.due
                .map(|d| format!("  answer due {}", due_text(d, now)))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn read(args: ReadArgs) -> Result<ExitCode> {
    let station = args.pass.station.open()?;
    let socket = station.config().agent.socket();
    let request = ControlRequest::Read {
        item_ref: args.item_ref.clone(),
    };
    let reading: Reading = match ask(&socket, &request).await {
        Ok(ControlReply::Read(r)) => *r,
        Ok(ControlReply::Error(e)) => bail!("{e}"),
        Ok(other) => bail!("unexpected answer from the agent: {other:?}"),
        Err(_) => read_item(
            &open_directly(&args.pass)?,
            &station,
            &args.item_ref,
            unix_now(),
        )
        .context("refusing to show the item")?,
    };
    if args.pass.station.json {
        println!("{}", serde_json::to_string_pretty(&reading)?);
        return Ok(ExitCode::SUCCESS);
    }
    let portions: Vec<(u32, &str, String)> = reading
        .portions
        .iter()
        .map(|p| (p.index, p.label.level.as_str(), p.text.clone()))
        .collect();
    print_item(
        &reading.header,
        &reading.label.level,
        &reading.attestation,
        &portions,
    );
    println!("  received {}", rfc3339(reading.received_at));
    Ok(ExitCode::SUCCESS)
}

async fn send(args: super::super::send::SendArgs) -> Result<ExitCode> {
    let s = args.station().open()?;
    let spec = super::super::send::item_spec(&args)?;
    let item = spec.sign(s.signing_key(), &s.config().principal, unix_now());
    let socket = s.config().agent.socket();
    match ask(&socket, &ControlRequest::Send { item }).await? {
        ControlReply::Queued(item_ref) => {
            if args.station().json {
                println!(
                    "{}",
                    serde_json::json!({ "item_ref": item_ref, "queued": true })
                );
            } else {
                println!(
                    "{item_ref} kept sealed in the vault; the agent sends it when the link allows"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ControlReply::Error(e) => bail!("{e}"),
        other => bail!("unexpected answer from the agent: {other:?}"),
    }
}
