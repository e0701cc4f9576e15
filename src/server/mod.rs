//! The simple server: one UDP thread and one TCP acceptor per listen
//! address, each answering through [`proto::handle`]. (The pinned,
//! batched multi-core engine replaces the UDP side later.)
//!
//! TCP follows RFC 7766: two-byte length framing, several queries per
//! connection answered in order, an idle timeout, and a cap on open
//! connections.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::lb::Rng;
use crate::proto::{self, Client, MAX_MESSAGE, Transport};
use crate::snapshot::Snapshot;

/// How long a TCP connection may sit idle (RFC 7766 §6.2.3).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open TCP connections allowed at once; more are closed at accept.
pub const TCP_MAX_CONNECTIONS: usize = 1024;

/// A failure to start serving.
#[derive(Debug)]
pub struct BindError {
    pub addr: SocketAddr,
    pub proto: &'static str,
    pub source: io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hint = match self.source.kind() {
            io::ErrorKind::AddrInUse => " (another process is using this port)",
            io::ErrorKind::PermissionDenied => " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
            io::ErrorKind::AddrNotAvailable => " (no interface has this address)",
            _ => "",
        };
        write!(
            f,
            "cannot listen on {} {}: {}{hint}",
            self.proto, self.addr, self.source
        )
    }
}

impl std::error::Error for BindError {}

/// Bound sockets, ready to serve.
pub struct Listeners {
    pairs: Vec<(UdpSocket, TcpListener)>,
}

impl Listeners {
    /// Binds UDP and TCP on every address. Port 0 picks one free port for
    /// both protocols.
    pub fn bind(addrs: &[SocketAddr]) -> Result<Listeners, BindError> {
        let mut pairs = Vec::new();
        for &addr in addrs {
            pairs.push(bind_pair(addr)?);
        }
        Ok(Listeners { pairs })
    }

    /// The addresses actually bound.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.pairs.iter().filter_map(|(udp, _)| udp.local_addr().ok()).collect()
    }

    /// Serves forever.
    pub fn serve(self, snap: Arc<Snapshot>) {
        let open = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for (udp, tcp) in self.pairs {
            let s = snap.clone();
            handles.push(thread::spawn(move || serve_udp(udp, s)));
            let s = snap.clone();
            let open = open.clone();
            handles.push(thread::spawn(move || serve_tcp(tcp, s, open)));
        }
        for h in handles {
            let _ = h.join();
        }
    }
}

fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), BindError> {
    let err = |proto, source| BindError { addr, proto, source };
    // With port 0, retry until a port is free for both protocols.
    let tries = if addr.port() == 0 { 32 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = UdpSocket::bind(addr).map_err(|e| err("udp", e))?;
        let bound = udp.local_addr().map_err(|e| err("udp", e))?;
        match TcpListener::bind(bound) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(err("tcp", last.unwrap_or_else(|| io::Error::other("no free port"))))
}

fn serve_udp(socket: UdpSocket, snap: Arc<Snapshot>) {
    let mut rng = Rng::from_entropy();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut out = Vec::with_capacity(MAX_MESSAGE);
    loop {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                tracing::warn!(%err, "udp receive failed");
                continue;
            }
        };
        let client = Client {
            addr: from,
            transport: Transport::Udp,
        };
        if let proto::Outcome::Reply { .. } = proto::handle(&buf[..len], &client, &snap, &mut rng, &mut out)
            && let Err(err) = socket.send_to(&out, from)
        {
            tracing::debug!(%err, %from, "udp send failed");
        }
    }
}

fn serve_tcp(listener: TcpListener, snap: Arc<Snapshot>, open: Arc<AtomicUsize>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(%err, "tcp accept failed");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::AcqRel) >= TCP_MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::AcqRel);
            tracing::debug!("tcp connection limit reached; closing a new connection");
            continue;
        }
        let snap = snap.clone();
        let open = open.clone();
        thread::spawn(move || {
            let _ = serve_connection(stream, &snap);
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Answers framed queries on one connection until the client closes it
/// or stays idle past the timeout.
fn serve_connection(mut stream: TcpStream, snap: &Snapshot) -> io::Result<()> {
    stream.set_read_timeout(Some(TCP_IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(TCP_IDLE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let client = Client {
        addr: peer,
        transport: Transport::Tcp,
    };
    let mut rng = Rng::from_entropy();
    let mut query = vec![0u8; MAX_MESSAGE];
    let mut out = Vec::with_capacity(MAX_MESSAGE + 2);
    let mut framed = Vec::with_capacity(MAX_MESSAGE + 2);
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len)?;
        let len = usize::from(u16::from_be_bytes(len));
        stream.read_exact(&mut query[..len])?;
        if let proto::Outcome::Reply { .. } = proto::handle(&query[..len], &client, snap, &mut rng, &mut out) {
            framed.clear();
            framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
            framed.extend_from_slice(&out);
            stream.write_all(&framed)?;
        }
    }
}
