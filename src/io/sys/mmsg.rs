//! `recvmmsg`/`sendmmsg` batches with `IP_PKTINFO`/`IPV6_PKTINFO`, over
//! buffers owned by one worker and allocated once.
//!
//! The kernel structures (`mmsghdr`, `iovec`, `sockaddr_storage`, control
//! buffers) live in boxed slices allocated once and never replaced, so
//! their heap addresses are stable even when the batch moves. The receive
//! headers point into them from the start; before each receive only the
//! fields the kernel wrote back in the last one are reset, instead of
//! rebuilding a whole batch of headers for what is often one datagram.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::RawFd;

use super::{Meta, parse_pktinfo_bytes, write_pktinfo};

/// Receive buffer per datagram: queries are small; a larger one is cut
/// (MSG_TRUNC) and answered as malformed.
pub const RECV_BUF: usize = 4096;
/// Reply capacity per datagram: UDP replies are at most our EDNS payload
/// size (1232), error replies far smaller.
pub const REPLY_BUF: usize = 4096;
use super::CONTROL_LEN;

/// One worker's batch of datagrams in flight.
pub struct Batch {
    size: usize,
    recv_bufs: Box<[u8]>,
    lens: Box<[usize]>,
    names: Box<[libc::sockaddr_storage]>,
    name_lens: Box<[libc::socklen_t]>,
    controls: Box<[u8]>,
    /// Receive headers the kernel may have written since they were set.
    dirty: usize,
    /// Per datagram received: the length of its control data (pktinfo),
    /// and whether it was cut short.
    control_lens: Box<[usize]>,
    truncated: Box<[bool]>,
    replies: Box<[Vec<u8>]>,
    /// Indices of datagrams whose replies are to be sent.
    outgoing: Vec<usize>,
    recv_hdrs: Box<[libc::mmsghdr]>,
    recv_iovs: Box<[libc::iovec]>,
    send_hdrs: Box<[libc::mmsghdr]>,
    send_iovs: Box<[libc::iovec]>,
    send_controls: Box<[u8]>,
}

// SAFETY: the raw pointers inside the libc structures point only into this
// struct's own boxed slices (heap memory that moves with the batch, never
// freed before it); moving the batch to another thread moves the buffers
// with it.
unsafe impl Send for Batch {}

impl Batch {
    /// A batch of `size` datagrams.
    pub fn new(size: usize) -> Batch {
        let size = size.max(1);
        // SAFETY: all-zero bytes are valid values of these plain C structs
        // (null pointers, zero lengths).
        let zero_hdr = || unsafe { zeroed::<libc::mmsghdr>() };
        // SAFETY: as above.
        let zero_iov = || unsafe { zeroed::<libc::iovec>() };
        // SAFETY: as above.
        let zero_name = || unsafe { zeroed::<libc::sockaddr_storage>() };
        let mut batch = Batch {
            size,
            recv_bufs: vec![0u8; size * RECV_BUF].into(),
            lens: vec![0; size].into(),
            names: (0..size).map(|_| zero_name()).collect(),
            name_lens: vec![0; size].into(),
            controls: vec![0u8; size * CONTROL_LEN].into(),
            dirty: size,
            control_lens: vec![0; size].into(),
            truncated: vec![false; size].into(),
            replies: (0..size).map(|_| Vec::with_capacity(REPLY_BUF)).collect(),
            outgoing: Vec::with_capacity(size),
            recv_hdrs: (0..size).map(|_| zero_hdr()).collect(),
            recv_iovs: (0..size).map(|_| zero_iov()).collect(),
            send_hdrs: (0..size).map(|_| zero_hdr()).collect(),
            send_iovs: (0..size).map(|_| zero_iov()).collect(),
            send_controls: vec![0u8; size * CONTROL_LEN].into(),
        };
        for i in 0..size {
            batch.recv_iovs[i] = libc::iovec {
                iov_base: batch.recv_bufs[i * RECV_BUF..].as_mut_ptr().cast(),
                iov_len: RECV_BUF,
            };
            let hdr = &mut batch.recv_hdrs[i].msg_hdr;
            hdr.msg_name = (&mut batch.names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_iov = &mut batch.recv_iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = batch.controls[i * CONTROL_LEN..].as_mut_ptr().cast();
        }
        batch
    }

    /// How many datagrams one call can carry.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Receives up to a batch; returns how many arrived (0 when none is
    /// waiting). With `wait`, on a blocking socket, it waits for the first
    /// datagram (up to the socket's receive timeout) and takes what else
    /// is waiting then (`MSG_WAITFORONE`); without, it never waits.
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        // The kernel wrote lengths and flags back into the headers of the
        // datagrams it delivered last time; the pointers stand.
        for entry in &mut self.recv_hdrs[..self.dirty] {
            let hdr = &mut entry.msg_hdr;
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_controllen = CONTROL_LEN as _;
            hdr.msg_flags = 0;
            entry.msg_len = 0;
        }
        self.dirty = 0;
        // SAFETY: every header points at buffers of this batch that live
        // for the call, with their true lengths; `size` headers exist.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.recv_hdrs.as_mut_ptr(),
                self.size as libc::c_uint,
                if wait { libc::MSG_WAITFORONE } else { libc::MSG_DONTWAIT },
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                // Nothing was delivered, nothing written back.
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => {
                    self.dirty = self.size;
                    Err(err)
                }
            };
        }
        let n = n as usize;
        self.dirty = n;
        // Only lengths and flags are kept here; each datagram's source
        // becomes a `Meta` right before it is answered, and its pktinfo is
        // read when its reply is sent. (An array of `Meta`s holding both
        // cost a copy per datagram through misaligned stack slots.)
        for i in 0..n {
            let hdr = &self.recv_hdrs[i];
            self.lens[i] = (hdr.msg_len as usize).min(RECV_BUF);
            self.name_lens[i] = hdr.msg_hdr.msg_namelen;
            self.control_lens[i] = hdr.msg_hdr.msg_controllen.min(CONTROL_LEN);
            self.truncated[i] = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        Ok(n)
    }

    /// The destination address and interface of datagram `i`, when
    /// pktinfo told them.
    fn local(&self, i: usize) -> Option<(std::net::IpAddr, u32)> {
        match self.control_lens[i] {
            0 => None,
            len => parse_pktinfo_bytes(&self.controls[i * CONTROL_LEN..i * CONTROL_LEN + len]),
        }
    }

    /// Hands each of the first `n` datagrams to `answer`, which writes the
    /// reply into the given buffer and says whether to send it. A datagram
    /// from an address of no family we know is dropped.
    pub fn answer(&mut self, n: usize, mut answer: impl FnMut(&[u8], &Meta, &mut Vec<u8>) -> bool) {
        self.outgoing.clear();
        for i in 0..n {
            let Some(peer) = super::socket_addr(&self.names[i], self.name_lens[i] as usize) else {
                continue;
            };
            let meta = Meta {
                peer,
                truncated: self.truncated[i],
            };
            let query = &self.recv_bufs[i * RECV_BUF..i * RECV_BUF + self.lens[i]];
            if answer(query, &meta, &mut self.replies[i]) {
                self.outgoing.push(i);
            }
        }
    }

    /// Sends the replies `answer` kept, from the address each query was
    /// sent to when pktinfo told it. Returns how many went out.
    pub fn send(&mut self, fd: RawFd) -> io::Result<usize> {
        let count = self.outgoing.len();
        for (j, &i) in self.outgoing.iter().enumerate() {
            let local = self.local(i);
            self.send_iovs[j] = libc::iovec {
                iov_base: self.replies[i].as_mut_ptr().cast(),
                iov_len: self.replies[i].len(),
            };
            let control = &mut self.send_controls[j * CONTROL_LEN..(j + 1) * CONTROL_LEN];
            let control_len = local.map_or(0, |local| write_pktinfo(control, local));
            let hdr = &mut self.send_hdrs[j].msg_hdr;
            // Back to the address the query came from, as received.
            hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = self.name_lens[i];
            hdr.msg_iov = &mut self.send_iovs[j];
            hdr.msg_iovlen = 1;
            hdr.msg_control = if control_len > 0 {
                control.as_mut_ptr().cast()
            } else {
                std::ptr::null_mut()
            };
            hdr.msg_controllen = control_len as _;
            hdr.msg_flags = 0;
        }
        let mut sent = 0;
        while sent < count {
            // SAFETY: headers `sent..count` point at this batch's reply
            // buffers, addresses and control data, all alive for the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.send_hdrs[sent..].as_mut_ptr(),
                    (count - sent) as libc::c_uint,
                    // Never wait for room in the send buffer, even on a
                    // blocking socket: a worker must not hang on a stuck
                    // device (a reply that finds no room is lost).
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    // A full send buffer or an unreachable peer loses this
                    // reply only; skip it and send the rest.
                    _ => {
                        sent += 1;
                        continue;
                    }
                }
            }
            sent += n as usize;
        }
        Ok(count)
    }
}

/// One message header per iovec, no addresses or control data (for
/// connected sockets).
fn headers_for(iovs: &mut [libc::iovec]) -> Vec<libc::mmsghdr> {
    iovs.iter_mut()
        .map(|iov| {
            // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
            let mut hdr: libc::mmsghdr = unsafe { zeroed() };
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            hdr
        })
        .collect()
}

/// Sends each of `packets` on the connected socket `fd` with one
/// `sendmmsg` call (or a few, if the kernel takes fewer); returns how many
/// went out before the socket buffer filled.
pub fn send_connected(fd: RawFd, packets: &[&[u8]]) -> io::Result<usize> {
    let mut iovs: Vec<libc::iovec> = packets
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    let mut hdrs = headers_for(&mut iovs);
    let mut sent = 0;
    while sent < hdrs.len() {
        // SAFETY: headers `sent..` point at `iovs`, which point at the
        // caller's packets; all live across the call.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                hdrs[sent..].as_mut_ptr(),
                (hdrs.len() - sent) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock => Ok(sent),
                io::ErrorKind::Interrupted => continue,
                _ => Err(err),
            };
        }
        sent += n as usize;
    }
    Ok(sent)
}

/// Receives up to `bufs.len()` datagrams waiting on `fd` without blocking;
/// their lengths go to `lens`. Returns how many arrived.
pub fn recv_waiting(fd: RawFd, bufs: &mut [[u8; 512]], lens: &mut [usize]) -> io::Result<usize> {
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut hdrs = headers_for(&mut iovs);
    // SAFETY: every header points at one of `bufs` with its true length.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            hdrs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            _ => Err(err),
        };
    }
    for (len, hdr) in lens.iter_mut().zip(&hdrs[..n as usize]) {
        *len = hdr.msg_len as usize;
    }
    Ok(n as usize)
}
