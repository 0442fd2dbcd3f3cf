//! A restored backup of the database must be consistent with every
//! checkpoint already handed out, or the gateway refuses to start. Two
//! sources outside the database say what was handed out: the head file
//! beside this instance's key (what this instance published) and the
//! configured witnesses (what any instance had cosigned). A backup restored
//! together with the instance's head file (a machine restored whole, or an
//! instance whose head file is older than the other instances'
//! checkpoints) passes the first and is caught by the second.

mod common;
#[path = "common/postgres.rs"]
mod postgres_server;

use common::witness::{keygen, write_config, WitnessProcess};
use common::{item, Harness};
use passerelle::audit::signed_note::VerifierKey;
use passerelle::config::GatewayConfig;
use passerelle::integrity::HeadFile;
use passerelle::server;
use postgres_server::PgServer;
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_behind_what_was_handed_out_is_refused_at_start() {
    let server = PgServer::start();
    let url = server.new_database();
    let wdir = tempfile::tempdir().unwrap();
    let (wkey, witness) = keygen(wdir.path(), "comite-p.test/w1");
    let mut process = None;
    let mut h = Harness::start_with(|config| {
        // The witness trusts the gateway's key, and gateway.toml names the
        // witness and the database.
        let vkey_file = config.audit.vkey.clone().unwrap();
        let gateway_key: VerifierKey = std::fs::read_to_string(&vkey_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let w = WitnessProcess::start(&write_config(wdir.path(), &wkey, &[&gateway_key]));
        let toml = vkey_file
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("gateway.toml");
        let text = std::fs::read_to_string(&toml).unwrap().replace(
            "store = \"data/passerelle.sqlite3\"",
            &format!("store = \"{url}\""),
        );
        std::fs::write(
            &toml,
            format!(
                "{text}\n[[witness]]\nurl = \"http://{}\"\nkey = \"{witness}\"\n",
                w.addr
            ),
        )
        .unwrap();
        *config = GatewayConfig::load(&toml).unwrap();
        process = Some(w);
    })
    .await;
    let _witness = process.unwrap();
    assert_eq!(h.config.store, PathBuf::from(&url));
    let rabat = h.station("police/lo/rabat");
    rabat
        .submit(&item(&rabat, "before-backup", &["vsse/analysis/ct"], "one"))
        .await
        .unwrap();
    // A clean stop: its final checkpoint is cosigned before it exits.
    h.running.take().unwrap().shutdown().await;

    // The backup: the database and the instance's head file.
    let backup = server.copy_database(&url);
    let head = HeadFile::beside(&h.config.audit.key);
    let head_then = head.read().unwrap().unwrap();

    // The exchange goes on; its checkpoints are handed out and cosigned.
    let running = server::start(&h.config).await.unwrap();
    let rabat =
        passerelle::client::Station::new(h.client_config_at("police/lo/rabat", running.addr))
            .unwrap();
    for id in ["after-backup-1", "after-backup-2"] {
        rabat
            .submit(&item(&rabat, id, &["vsse/analysis/ct"], id))
            .await
            .unwrap();
    }
    running.shutdown().await;

    // The database restored from the backup: the head file of now refuses.
    let mut restored = h.config.clone();
    restored.store = PathBuf::from(&backup);
    let err = server::start(&restored).await.err().expect("refused");
    assert!(err.to_string().contains("head file"), "{err}");

    // The head file restored too: the witness, which cosigned what was
    // handed out after the backup, refuses it.
    std::fs::write(head.path(), &head_then).unwrap();
    let err = server::start(&restored).await.err().expect("refused");
    let err = err.to_string();
    assert!(
        err.contains(&format!("checkpoint witness {} cosigned", witness.label()))
            && err.contains("rolled back"),
        "{err}"
    );
    assert!(
        err.contains("--new-log"),
        "says what the operator can do: {err}"
    );

    // The database as it was is still accepted (with the head file of
    // then: the stored log extends it).
    let running = server::start(&h.config).await.unwrap();
    running.shutdown().await;
}
