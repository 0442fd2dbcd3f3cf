//! The station agent's control socket probed as another account on the
//! officer's laptop would: a control directory that others may enter lets
//! them put a socket of their own where the agent's should be, and be sent
//! the vault's passphrase by `passerelle station unlock`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use passerelle::agent::{ask, serve_control, Agent, ControlRequest};
use passerelle::client::Station;
use tokio::io::{AsyncBufReadExt, BufReader};

const PASS: &str = "le vent du Rif";

fn open_to_all(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
}

#[tokio::test]
async fn no_passphrase_goes_to_a_socket_another_account_could_have_planted() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    open_to_all(&control);
    let socket = control.join("agent.sock");
    // Another account's listener, where the agent's socket would be.
    let impostor = tokio::net::UnixListener::bind(&socket).unwrap();
    let heard = tokio::spawn(async move {
        let (stream, _) = impostor.accept().await.unwrap();
        let mut line = String::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stream).read_line(&mut line),
        )
        .await;
        line
    });
    let unlock = ControlRequest::Unlock {
        passphrase: PASS.into(),
    };
    let refused = ask(&socket, &unlock).await.unwrap_err().to_string();
    assert!(refused.contains("chmod 700"), "{refused}");
    // The impostor never heard from us (it would have by now).
    match tokio::time::timeout(Duration::from_millis(500), heard).await {
        Err(_) => {}
        Ok(line) => panic!("the impostor was sent {:?}", line.unwrap()),
    }

    // A symbolic link to a private directory is refused too: whoever owns
    // the link's directory can point it elsewhere.
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    assert!(ask(&link.join("agent.sock"), &ControlRequest::Status)
        .await
        .is_err());
}

#[tokio::test]
async fn the_agent_does_not_listen_in_a_directory_others_may_enter() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = h.client_config("police/lo/rabat");
    config.agent.vault = dir.path().join("vault");
    config.agent.control = dir.path().join("control");
    open_to_all(&config.agent.control);
    let socket = config.agent.socket();
    let agent = Arc::new(Agent::new(Station::new(config).unwrap()));
    let refused = serve_control(agent, std::future::ready(()))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("chmod 700"), "{refused}");
    assert!(!socket.exists());
}
