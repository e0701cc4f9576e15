//! UDP I/O back ends behind one seam (after Knot's `udp_api_t` and
//! quinn-udp's `imp`): each worker calls [`serve`] with its sockets and a
//! closure that answers one datagram. `io` knows bytes and addresses,
//! nothing of DNS.
//!
//! - `mmsg`: `recvmmsg`/`sendmmsg` in batches. It takes what is waiting
//!   and never waits to fill a batch, so low load adds no latency. With one
//!   socket (the usual worker) it sleeps in `recvmmsg` itself
//!   (`MSG_WAITFORONE` on a blocking socket with a receive timeout): a
//!   wake-up costs one receive and one send, as in gdnsd. With several it
//!   sleeps in `poll` once every socket came back with less than a batch.
//! - `uring`: io_uring, multishot `recvmsg` on a provided buffer ring,
//!   replies sent from per-slot buffers, one submission per batch.
//! - `portable`: `std` `recv_from`/`send_to` (no pktinfo).
//!
//! Every back end looks at the stop flag at least every 100 ms.

#[allow(unsafe_code)]
pub mod sys;

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use crate::config::IoKind;
pub use sys::Meta;

/// How long an idle worker sleeps before looking at the stop flag again.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// What `auto` means here, by measurement (README, "I/O back ends").
const AUTO_PREFERS_URING: bool = false;

/// Resolves `auto` and checks that io_uring works. Returns the back end
/// to use and, when it is not the one asked for, why.
pub fn choose(requested: IoKind) -> (IoKind, Option<String>) {
    match requested {
        IoKind::Auto if !AUTO_PREFERS_URING => (IoKind::Mmsg, None),
        IoKind::Auto | IoKind::Uring => match sys::uring::probe() {
            Ok(()) => (IoKind::Uring, None),
            Err(why) => (
                IoKind::Mmsg,
                Some(format!("io_uring is not usable here ({why}); using mmsg")),
            ),
        },
        other => (other, None),
    }
}

/// Serves `sockets` with back end `kind` (not `Auto`) until `stop` is set.
/// `answer` gets each datagram and its addresses, writes the reply into
/// the buffer (empty on entry) and returns whether to send it.
pub fn serve(
    kind: IoKind,
    sockets: &[UdpSocket],
    batch: usize,
    stop: &AtomicBool,
    mut answer: impl FnMut(&[u8], &Meta, &mut Vec<u8>) -> bool,
) -> io::Result<()> {
    match kind {
        IoKind::Uring => sys::uring::Uring::new(sockets)?.run(stop, answer),
        IoKind::Mmsg | IoKind::Auto => serve_mmsg(sockets, batch, stop, answer),
        IoKind::Portable => serve_portable(sockets, batch, stop, &mut answer),
    }
}

fn serve_mmsg(
    sockets: &[UdpSocket],
    batch: usize,
    stop: &AtomicBool,
    mut answer: impl FnMut(&[u8], &Meta, &mut Vec<u8>) -> bool,
) -> io::Result<()> {
    let mut batch = sys::mmsg::Batch::new(batch);
    let mut reported = false;
    let mut round = |fd, wait, batch: &mut sys::mmsg::Batch, reported: &mut bool| {
        let n = match batch.recv(fd, wait) {
            Ok(n) => n,
            Err(err) => {
                report_once(reported, &err);
                0
            }
        };
        if n > 0 {
            batch.answer(n, |query, meta, reply| {
                reply.clear();
                answer(query, meta, reply)
            });
            if let Err(err) = batch.send(fd) {
                report_once(reported, &err);
            }
        }
        n
    };
    if let [socket] = sockets {
        // One socket: block in the receive itself, waking at least every
        // IDLE_WAIT to look at the stop flag.
        let sock = socket2::SockRef::from(socket);
        sock.set_nonblocking(false)?;
        sock.set_read_timeout(Some(IDLE_WAIT))?;
        let fd = socket.as_raw_fd();
        while !stop.load(Ordering::Relaxed) {
            round(fd, true, &mut batch, &mut reported);
        }
        return Ok(());
    }
    let fds: Vec<_> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    let mut ready = vec![true; fds.len()];
    let size = batch.size();
    while !stop.load(Ordering::Relaxed) {
        // Whether some socket filled a batch (and may hold more).
        let mut more = false;
        for (i, &fd) in fds.iter().enumerate() {
            if ready[i] && round(fd, false, &mut batch, &mut reported) == size {
                more = true;
            }
        }
        settle(more, &fds, &mut ready)?;
    }
    Ok(())
}

fn serve_portable(
    sockets: &[UdpSocket],
    batch: usize,
    stop: &AtomicBool,
    answer: &mut impl FnMut(&[u8], &Meta, &mut Vec<u8>) -> bool,
) -> io::Result<()> {
    let fds: Vec<_> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    let mut ready = vec![true; fds.len()];
    let mut buf = vec![0u8; 65535];
    let mut reply = Vec::with_capacity(65535);
    let mut reported = false;
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        for (i, socket) in sockets.iter().enumerate() {
            if !ready[i] {
                continue;
            }
            for _ in 0..batch {
                let (len, peer) = match socket.recv_from(&mut buf) {
                    Ok(got) => got,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) => {
                        report_once(&mut reported, &err);
                        break;
                    }
                };
                busy = true;
                let meta = Meta { peer, truncated: false };
                reply.clear();
                if answer(&buf[..len], &meta, &mut reply)
                    && let Err(err) = socket.send_to(&reply, peer)
                {
                    report_once(&mut reported, &err);
                }
            }
        }
        settle(busy, &fds, &mut ready)?;
    }
    Ok(())
}

/// After a round over the sockets: when some may hold more, try them all
/// again; otherwise sleep in `poll` until one has data (or the stop flag
/// is due).
fn settle(more: bool, fds: &[std::os::fd::RawFd], ready: &mut [bool]) -> io::Result<()> {
    if more {
        ready.iter_mut().for_each(|r| *r = true);
    } else {
        ready.iter_mut().for_each(|r| *r = false);
        sys::wait_readable(fds, IDLE_WAIT, ready)?;
    }
    Ok(())
}

/// Logs the first socket error of a worker (later ones would flood).
fn report_once(reported: &mut bool, err: &io::Error) {
    if !*reported {
        tracing::warn!(%err, "udp socket error (further errors of this worker are not logged)");
        *reported = true;
    }
}
