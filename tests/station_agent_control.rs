//! The agent's control socket, as `passerelle station …` uses it: only
//! the officer's account can reach it, a wrong passphrase is refused, a
//! locked agent shows and reads nothing, `send` keeps the item sealed and
//! the agent sends it, `lock` forgets the key; a second agent for the same
//! station is refused. And the commands themselves, run as a person
//! would, against a running gateway.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{item, Harness};
use passerelle::agent::{ask, serve_control, Agent, ControlReply, ControlRequest};
use passerelle::client::Station;
use passerelle::vault::{KdfParams, Vault};

const PASS: &str = "le vent du Rif";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_locks_unlocks_lists_reads_and_sends() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = h.client_config("police/lo/rabat");
    config.agent.vault = dir.path().join("vault");
    config.agent.control = dir.path().join("control");
    config.agent.poll_seconds = 1;
    config.agent.reconnect_min_millis = 50;
    Vault::at(&config.agent.vault)
        .create(PASS.as_bytes(), KdfParams::MINIMUM)
        .unwrap();
    let socket = config.agent.socket();
    let agent = Arc::new(Agent::new(Station::new(config).unwrap()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let control = tokio::spawn(serve_control(agent.clone(), wait(stopped.clone())));
    let sync = tokio::spawn(agent.clone().run(wait(stopped.clone())));
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&socket), 0o600);
        assert_eq!(mode(socket.parent().unwrap()), 0o700);
    }
    // A second agent for the same station is refused.
    let second = Arc::new(Agent::new(h.station("police/lo/rabat")));
    let mut second_config = second.station().config().clone();
    second_config.agent.control = socket.parent().unwrap().to_path_buf();
    let second = Arc::new(Agent::new(Station::new(second_config).unwrap()));
    assert!(serve_control(second, std::future::ready(())).await.is_err());

    let ask = |r: ControlRequest| {
        let socket = socket.clone();
        async move { ask(&socket, &r).await.unwrap() }
    };
    match ask(ControlRequest::Status).await {
        ControlReply::Status(s) => assert!(s.locked),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(ask(ControlRequest::List).await, ControlReply::Error(e) if e.contains("locked"))
    );
    let wrong = ControlRequest::Unlock {
        passphrase: "le vent de Tanger".into(),
    };
    assert!(matches!(ask(wrong).await, ControlReply::Error(e) if e.contains("wrong passphrase")));
    let right = ControlRequest::Unlock {
        passphrase: PASS.into(),
    };
    assert!(matches!(ask(right).await, ControlReply::Done));

    // Written through the agent: kept sealed, then sent.
    let it = item(
        agent.station(),
        "req-r1",
        &["vsse/analysis/ct"],
        "a request",
    );
    let reference = match ask(ControlRequest::Send { item: it }).await {
        ControlReply::Queued(r) => r,
        other => panic!("{other:?}"),
    };
    // Sent to Ankara: taken by the agent.
    let vsse = h.station("vsse/analysis/ct");
    let to_rabat = vsse
        .submit(&item(&vsse, "ctx-r1", &["police/lo/rabat"], "the context"))
        .await
        .unwrap()
        .receipt
        .item_ref;
    let start = Instant::now();
    loop {
        if let ControlReply::Status(s) = ask(ControlRequest::Status).await {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "not synced: {s:?}"
            );
            if s.sent == Some(1) && s.received == Some(1) {
                assert_eq!(s.unread, Some(1));
                assert!(s.link.unwrap().up);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match ask(ControlRequest::List).await {
        ControlReply::List(l) => {
            assert_eq!(l.len(), 2);
            assert!(l
                .iter()
                .any(|e| e.item_ref == reference && e.state == "sent"));
            assert!(l
                .iter()
                .any(|e| e.item_ref == to_rabat && e.state == "unread"));
        }
        other => panic!("{other:?}"),
    }
    match ask(ControlRequest::Read {
        item_ref: to_rabat.clone(),
    })
    .await
    {
        ControlReply::Read(r) => {
            assert!(r.verified);
            assert_eq!(r.portions[0].text, "the context");
        }
        other => panic!("{other:?}"),
    }
    match ask(ControlRequest::Status).await {
        ControlReply::Status(s) => assert_eq!(s.unread, Some(0)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ask(ControlRequest::Lock).await,
        ControlReply::Done
    ));
    assert!(matches!(
        ask(ControlRequest::Read { item_ref: to_rabat }).await,
        ControlReply::Error(e) if e.contains("locked")
    ));
    let _ = stop.send(true);
    control.await.unwrap().unwrap();
    sync.await.unwrap();
    assert!(!socket.exists(), "the socket is removed at stop");
}
