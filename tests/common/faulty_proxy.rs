//! A loopback TCP proxy that breaks connections on purpose, between a
//! station and the real gateway: the poor links of posts abroad, on a
//! script. Each new connection takes the next fault of the script (then
//! passes faithfully once the script is spent): refused at once, cut after
//! so many bytes in either direction (mid-handshake or mid-body), delayed,
//! or black-holed (held open, nothing forwarded) for a while. TLS runs
//! end to end through it, so it can break the link but never read or
//! forge what crosses it. Every connection it carries ends within a
//! lifetime the test sets.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded faithfully.
    Pass,
    /// Closed as soon as accepted.
    Refuse,
    /// The gateway's first `n` bytes reach the station, then both sides
    /// are closed (an answer cut in the middle).
    CutAnswerAfter(usize),
    /// The station's first `n` bytes reach the gateway, then both sides
    /// are closed (a request cut in the middle).
    CutRequestAfter(usize),
    /// Nothing is forwarded for this long, then the connection passes.
    Delay(Duration),
    /// Accepted and held open without forwarding anything for this long,
    /// then closed.
    BlackHole(Duration),
}

pub struct FaultyProxy {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Fault>>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Listens on 127.0.0.1 and forwards to `target` under `script`; no
    /// connection lives longer than `lifetime` (a link that drops every
    /// so often, whatever the script says).
    pub async fn start(target: SocketAddr, script: Vec<Fault>, lifetime: Duration) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let connections = Arc::new(AtomicUsize::new(0));
        let (s, c) = (script.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let fault = s.lock().unwrap().pop_front().unwrap_or(Fault::Pass);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(lifetime, one(client, target, fault)).await;
                });
            }
        });
        FaultyProxy {
            addr,
            script,
            connections,
            task,
        }
    }

    /// Adds faults at the end of the script.
    pub fn then(&self, faults: &[Fault]) {
        self.script.lock().unwrap().extend(faults.iter().copied());
    }

    /// Faults not yet applied.
    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn one(mut client: TcpStream, target: SocketAddr, fault: Fault) {
    let (up_limit, down_limit) = match fault {
        Fault::Refuse => return,
        Fault::BlackHole(d) => {
            tokio::time::sleep(d).await;
            return;
        }
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            (None, None)
        }
        Fault::Pass => (None, None),
        Fault::CutAnswerAfter(n) => (None, Some(n)),
        Fault::CutRequestAfter(n) => (Some(n), None),
    };
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    // Either direction ending (or reaching its cut) ends the connection.
    tokio::select! {
        _ = pump(&mut cr, &mut sw, up_limit) => {}
        _ = pump(&mut sr, &mut cw, down_limit) => {}
    }
}

/// Copies `from` to `to`, at most `limit` bytes when given.
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    from: &mut R,
    to: &mut W,
    limit: Option<usize>,
) {
    let mut left = limit.unwrap_or(usize::MAX);
    let mut buf = vec![0u8; 16 * 1024];
    while left > 0 {
        let want = buf.len().min(left);
        let n = match from.read(&mut buf[..want]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        left -= n;
    }
    let _ = to.flush().await;
    let _ = to.shutdown().await;
}
