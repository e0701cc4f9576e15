//! DNS over TCP (RFC 7766), on its own small runtime, at lower priority
//! than the UDP workers.
//!
//! - Two-byte length framing (RFC 1035 §4.2.2); queries on a connection
//!   are read and answered in order, and replies to pipelined queries are
//!   written together (RFC 7766 §6.2.1.1).
//! - A connection idle for `idle_timeout` is closed; a query must arrive
//!   whole within `idle_timeout` of its first byte, and replies must be
//!   taken by the client within it, so a client that trickles bytes or
//!   never reads holds nothing past its timeout (RFC 7766 §6.2.3).
//! - At most `max_connections`: a new connection closes the one idle the
//!   longest (RFC 7766 §6.2.2); at most `max_buffer` bytes of replies wait
//!   for one client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::Cache;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant as Deadline, timeout, timeout_at};

use super::SharedSnapshot;
use crate::lb::Picker;
use crate::proto::{self, Client, Transport};

/// The TCP limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_buffer: usize,
}

/// A connection as the registry sees it.
struct Conn {
    /// Milliseconds since `State::epoch` of the last complete query.
    last_active: AtomicU64,
    /// A query is being read or answered.
    busy: AtomicBool,
    close: Notify,
}

/// Shared by the acceptors and connections.
pub struct State {
    limits: Limits,
    snap: SharedSnapshot,
    counter_row: usize,
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    queries: AtomicU64,
    evicted: AtomicU64,
}

impl State {
    pub fn new(limits: Limits, snap: SharedSnapshot, counter_row: usize) -> State {
        State {
            limits,
            snap,
            counter_row,
            epoch: Instant::now(),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Connections accepted, queries answered, idle connections evicted.
    pub fn stats(&self) -> (u64, u64, u64) {
        (
            self.accepted.load(Ordering::Relaxed),
            self.queries.load(Ordering::Relaxed),
            self.evicted.load(Ordering::Relaxed),
        )
    }

    /// Registers a new connection, closing the longest-idle one if the cap
    /// is reached; `None` when every connection is busy.
    fn admit(&self) -> Option<(u64, Arc<Conn>)> {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if conns.len() >= self.limits.max_connections {
            let victim = conns
                .iter()
                .filter(|(_, c)| !c.busy.load(Ordering::Relaxed))
                .min_by_key(|(_, c)| c.last_active.load(Ordering::Relaxed))
                .map(|(&id, _)| id)?;
            if let Some(conn) = conns.remove(&victim) {
                conn.close.notify_one();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            last_active: AtomicU64::new(self.now_ms()),
            busy: AtomicBool::new(false),
            close: Notify::new(),
        });
        conns.insert(id, conn.clone());
        Some((id, conn))
    }

    fn forget(&self, id: u64) {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// Accepts connections on `listener` forever.
pub async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(got) => got,
            Err(err) => {
                tracing::debug!(%err, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some((id, conn)) = state.admit() else {
            tracing::debug!(%peer, "tcp connection limit reached and none idle; closing the new one");
            continue;
        };
        state.accepted.fetch_add(1, Ordering::Relaxed);
        let state = state.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = conn.close.notified() => {}
                _ = serve(stream, peer, &state, &conn) => {}
            }
            state.forget(id);
        });
    }
}

/// Why a connection ended (for nothing but control flow).
struct Closed;

/// Answers framed queries until the client closes, idles out, or stalls.
async fn serve(stream: TcpStream, peer: SocketAddr, state: &State, conn: &Conn) -> Result<(), Closed> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(16 * 1024, read);
    let idle = state.limits.idle_timeout;
    let client = Client {
        addr: peer,
        transport: Transport::Tcp,
        now: super::clock::now_secs,
    };
    let mut cache = Cache::new(&*state.snap);
    // TCP runs on one runtime thread: it owns the last counter row.
    let mut rng = Picker::for_row(state.counter_row);
    let mut query = Vec::new();
    let mut reply = Vec::with_capacity(1024);
    let mut pending: Vec<u8> = Vec::with_capacity(4096);
    loop {
        conn.busy.store(false, Ordering::Relaxed);
        // Wait (idle) for the next length prefix.
        let first = timeout(idle, read.read_u8())
            .await
            .map_err(|_| Closed)?
            .map_err(|_| Closed)?;
        conn.busy.store(true, Ordering::Relaxed);
        let deadline = Deadline::now() + idle;
        let second = timeout_at(deadline, read.read_u8())
            .await
            .map_err(|_| Closed)?
            .map_err(|_| Closed)?;
        let len = usize::from(u16::from_be_bytes([first, second]));
        query.resize(len, 0);
        timeout_at(deadline, read.read_exact(&mut query))
            .await
            .map_err(|_| Closed)?
            .map_err(|_| Closed)?;
        conn.last_active.store(state.now_ms(), Ordering::Relaxed);
        state.queries.fetch_add(1, Ordering::Relaxed);
        if let proto::Outcome::Reply { .. } = proto::handle(&query, &client, cache.load(), &mut rng, &mut reply) {
            pending.extend_from_slice(&(reply.len() as u16).to_be_bytes());
            pending.extend_from_slice(&reply);
        }
        // Write when no further query is already here, or too much waits.
        if read.buffer().is_empty() || pending.len() >= state.limits.max_buffer {
            timeout(idle, write.write_all(&pending))
                .await
                .map_err(|_| Closed)?
                .map_err(|_| Closed)?;
            pending.clear();
            if pending.capacity() > state.limits.max_buffer {
                pending.shrink_to(4096);
            }
        }
    }
}
