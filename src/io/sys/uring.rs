//! The io_uring back end: one ring per worker, run by that worker alone
//! (`SINGLE_ISSUER`, `DEFER_TASKRUN`), its sockets registered; a multishot
//! `recvmsg` per socket drawing from a provided buffer ring; replies sent
//! straight from per-slot buffers (`send` to the peer, or `sendmsg` when
//! pktinfo picks the source address), all submitted in batches.
//!
//! Queries are parsed where the kernel put them (in the provided buffer)
//! and the buffer goes back to the ring once answered. Buffer-ring
//! exhaustion (`ENOBUFS`) and a multishot request ending are handled by
//! re-arming; other kernel errors are counted and re-armed too, so the
//! worker never stops.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use io_uring::types::{BufRingEntry, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, types};
use socket2::SockAddr;

use super::Meta;

/// Provided buffers: count (a power of two) and size. A buffer holds the
/// `io_uring_recvmsg_out` header, the peer address, control data and the
/// datagram.
const BUFFERS: u16 = 256;
const BUF_SIZE: usize = 4096 + 256;
const CONTROL_LEN: usize = 64;
/// Reply slots (a reply's buffers must live until its send completes).
const SLOTS: usize = 256;
/// The buffer group id of our ring.
const BGID: u16 = 7;
/// How long a wait lasts before the stop flag is looked at again.
const WAIT: Duration = Duration::from_millis(100);

const RECV: u64 = 1 << 32;
const SEND: u64 = 2 << 32;
/// With `SEND`: the reply went by `IORING_OP_SEND` to an address.
const SEND_TO: u64 = 4 << 32;

/// Page-aligned memory for the buffer ring's entries.
struct RingMemory {
    ptr: *mut BufRingEntry,
    layout: Layout,
}

impl Drop for RingMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `Uring::new` with this layout; the ring that
        // used it is dropped before (field order of `Uring`).
        unsafe { dealloc(self.ptr.cast(), self.layout) };
    }
}

struct Slot {
    reply: Vec<u8>,
    name: SockAddr,
    iov: libc::iovec,
    hdr: libc::msghdr,
    control: [u8; CONTROL_LEN],
}

/// A worker's ring and everything the kernel may be reading or writing.
pub struct Uring {
    // Dropped first: the kernel lets go of the memory below.
    ring: IoUring,
    entries: RingMemory,
    buffers: Box<[u8]>,
    /// Our copy of the buffer ring's tail.
    tail: u16,
    fds: Vec<RawFd>,
    /// The msghdr each multishot receive was armed with (name and control
    /// lengths); must stay put while the request lives.
    templates: Box<[libc::msghdr]>,
    slots: Box<[Slot]>,
    free: Vec<usize>,
    completions: Vec<(u64, i32, u32)>,
    /// Kernel errors seen on receive (re-armed each time), and a refused
    /// send to an address.
    pub errors: u64,
    /// `IORING_OP_SEND` takes a destination (Linux 6.1, like
    /// `DEFER_TASKRUN`); turned off if the kernel refuses one.
    sendto: bool,
}

// SAFETY: the raw pointers point into memory this struct owns; the
// kernel's use of it is tied to the ring, which moves with the struct.
unsafe impl Send for Uring {}

impl Uring {
    /// A ring serving `sockets`. Build it on the thread that runs it:
    /// only that thread may submit to it (`SINGLE_ISSUER`).
    pub fn new(sockets: &[UdpSocket]) -> io::Result<Uring> {
        Uring::with_ring(new_ring(1024)?, sockets)
    }

    /// Serves `sockets` on `ring`; `sendto` says whether the kernel takes
    /// a destination in `IORING_OP_SEND`.
    fn with_ring((ring, sendto): (IoUring, bool), sockets: &[UdpSocket]) -> io::Result<Uring> {
        let layout = Layout::from_size_align(usize::from(BUFFERS) * size_of::<BufRingEntry>(), 4096)
            .map_err(|_| io::Error::other("bad buffer ring layout"))?;
        // SAFETY: a non-zero size with a valid alignment.
        let ptr = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        if ptr.is_null() {
            return Err(io::Error::other("cannot allocate the buffer ring"));
        }
        let entries = RingMemory { ptr, layout };
        // SAFETY: `ptr` is page-aligned memory for BUFFERS entries that
        // lives as long as `ring` (see the field order).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(ptr as u64, BUFFERS, BGID, 0)?;
        }
        let template = || {
            // SAFETY: an all-zero msghdr is valid (null pointers).
            let mut hdr: libc::msghdr = unsafe { zeroed() };
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_controllen = CONTROL_LEN as _;
            hdr
        };
        let slots = (0..SLOTS)
            .map(|_| Slot {
                reply: Vec::with_capacity(4096),
                name: SockAddr::from(SocketAddr::from(([0, 0, 0, 0], 0))),
                iov: libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
                // SAFETY: an all-zero msghdr is valid (null pointers).
                hdr: unsafe { zeroed() },
                control: [0; CONTROL_LEN],
            })
            .collect();
        let mut uring = Uring {
            ring,
            entries,
            buffers: vec![0u8; usize::from(BUFFERS) * BUF_SIZE].into(),
            tail: 0,
            fds: sockets.iter().map(|s| s.as_raw_fd()).collect(),
            templates: sockets.iter().map(|_| template()).collect(),
            slots,
            free: (0..SLOTS).rev().collect(),
            completions: Vec::with_capacity(2048),
            errors: 0,
            sendto,
        };
        // Registered once, the sockets cost no file lookup per request.
        uring.ring.submitter().register_files(&uring.fds)?;
        for bid in 0..BUFFERS {
            uring.provide(bid);
        }
        uring.publish_tail();
        for i in 0..uring.fds.len() {
            uring.arm(i)?;
        }
        Ok(uring)
    }

    /// Puts buffer `bid` back into the ring (visible after `publish_tail`).
    fn provide(&mut self, bid: u16) {
        let index = usize::from(self.tail & (BUFFERS - 1));
        let addr = self.buffers[usize::from(bid) * BUF_SIZE..].as_ptr() as u64;
        // SAFETY: `index` < BUFFERS, inside the ring memory we own.
        let entry = unsafe { &mut *self.entries.ptr.add(index) };
        entry.set_addr(addr);
        entry.set_len(BUF_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the provided buffers visible to the kernel.
    fn publish_tail(&self) {
        // SAFETY: the ring's base is page-aligned and initialised; the tail
        // field overlays the first entry's reserved field, and is written
        // with release ordering as the kernel expects.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.ptr).cast_mut();
            (*(tail as *const AtomicU16)).store(self.tail, Ordering::Release);
        }
    }

    /// Arms (again) the multishot receive of socket `i`.
    fn arm(&mut self, i: usize) -> io::Result<()> {
        let entry = opcode::RecvMsgMulti::new(types::Fixed(i as u32), &self.templates[i], BGID)
            .build()
            .user_data(RECV | i as u64);
        self.push(entry)
    }

    fn push(&mut self, entry: io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every pointer in `entry` (msghdr, buffers) points
            // into memory owned by `self` that stays put until its
            // completion arrives.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?; // the queue is full: hand it over first
        }
    }

    /// Serves until `stop` is set. `answer` writes the reply for a query
    /// and says whether to send it.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        mut answer: impl FnMut(&[u8], &Meta, &mut Vec<u8>) -> bool,
    ) -> io::Result<()> {
        let wait = Timespec::new().sec(WAIT.as_secs()).nsec(WAIT.subsec_nanos());
        while !stop.load(Ordering::Relaxed) {
            let args = SubmitArgs::new().timespec(&wait);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(err) if matches!(err.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => {}
                Err(err) => return Err(err),
            }
            self.completions.clear();
            for cqe in self.ring.completion() {
                self.completions.push((cqe.user_data(), cqe.result(), cqe.flags()));
            }
            let mut provided = false;
            for k in 0..self.completions.len() {
                let (user_data, result, flags) = self.completions[k];
                let index = (user_data & 0xFFFF_FFFF) as usize;
                if user_data & SEND != 0 {
                    self.free.push(index);
                    if result == -libc::EINVAL && user_data & SEND_TO != 0 && self.sendto {
                        // A kernel with the ring flags but not `send` to
                        // an address (a partial backport): that reply is
                        // lost, the next ones go by `sendmsg`.
                        self.sendto = false;
                        self.errors += 1;
                    }
                    continue;
                }
                if result >= 0 {
                    if let Some(bid) = cqueue::buffer_select(flags) {
                        self.receive(index, bid, result as usize, &mut answer)?;
                        self.provide(bid);
                        provided = true;
                    }
                } else if result != -libc::ENOBUFS {
                    self.errors += 1;
                }
                if !cqueue::more(flags) {
                    self.arm(index)?;
                }
            }
            if provided {
                self.publish_tail();
            }
        }
        Ok(())
    }

    /// Answers one received datagram and queues its reply.
    fn receive(
        &mut self,
        socket: usize,
        bid: u16,
        len: usize,
        answer: &mut impl FnMut(&[u8], &Meta, &mut Vec<u8>) -> bool,
    ) -> io::Result<()> {
        let start = usize::from(bid) * BUF_SIZE;
        let buffer = &self.buffers[start..start + len.min(BUF_SIZE)];
        let Ok(msg) = RecvMsgOut::parse(buffer, &self.templates[socket]) else {
            return Ok(());
        };
        let Some(peer) = sockaddr(msg.name_data()) else {
            return Ok(());
        };
        let meta = Meta {
            peer,
            truncated: msg.is_payload_truncated(),
        };
        let Some(slot_index) = self.free.pop() else {
            return Ok(()); // every reply slot is in flight: drop this one
        };
        let slot = &mut self.slots[slot_index];
        slot.reply.clear();
        if !answer(msg.payload_data(), &meta, &mut slot.reply) {
            self.free.push(slot_index);
            return Ok(());
        }
        slot.name = SockAddr::from(peer);
        slot.iov = libc::iovec {
            iov_base: slot.reply.as_mut_ptr().cast(),
            iov_len: slot.reply.len(),
        };
        let control_len = super::parse_pktinfo_bytes(msg.control_data())
            .map_or(0, |local| super::write_pktinfo(&mut slot.control, local));
        slot.hdr.msg_name = slot.name.as_ptr() as *mut libc::c_void;
        slot.hdr.msg_namelen = slot.name.len();
        slot.hdr.msg_iov = &mut slot.iov;
        slot.hdr.msg_iovlen = 1;
        slot.hdr.msg_control = if control_len > 0 {
            slot.control.as_mut_ptr().cast()
        } else {
            std::ptr::null_mut()
        };
        slot.hdr.msg_controllen = control_len as _;
        let (entry, kind) = if control_len == 0 && self.sendto {
            // No source address to choose: a plain `sendto`, with no
            // msghdr nor iovec for the kernel to copy in.
            let entry = opcode::Send::new(
                types::Fixed(socket as u32),
                slot.reply.as_ptr(),
                slot.reply.len() as u32,
            )
            .dest_addr(slot.name.as_ptr().cast())
            .dest_addr_len(slot.name.len())
            .build();
            (entry, SEND | SEND_TO)
        } else {
            (
                opcode::SendMsg::new(types::Fixed(socket as u32), &slot.hdr).build(),
                SEND,
            )
        };
        self.push(entry.user_data(kind | slot_index as u64))
    }
}

/// A ring for one worker thread. Only that thread submits, and it runs
/// the kernel's completion work itself when it asks for completions
/// (`SINGLE_ISSUER`, `DEFER_TASKRUN`, Linux 6.1): a datagram arriving
/// then neither interrupts the worker nor wakes it before it waits. On
/// this VM that cut the CPU per answer at 150k QPS from 5.75 to 4.95 µs
/// (README, "I/O back ends"). Older kernels refuse the flags (EINVAL) and
/// get a plain ring. Also says whether the kernel is new enough for
/// `IORING_OP_SEND` with a destination address, which came in the same
/// release.
fn new_ring(entries: u32) -> io::Result<(IoUring, bool)> {
    match IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
    {
        Ok(ring) => Ok((ring, true)),
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => Ok((IoUring::builder().build(entries)?, false)),
        Err(err) => Err(err),
    }
}

/// A socket address from the bytes the kernel wrote.
fn sockaddr(bytes: &[u8]) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = bytes.len().min(size_of::<libc::sockaddr_storage>());
    // SAFETY: copies at most the storage's size from a valid slice.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            len,
        );
    }
    super::socket_addr(&storage, len)
}

/// Whether io_uring, provided buffer rings and multishot `recvmsg` work
/// here: a loopback socket receives one datagram through them. The error
/// says why not (EPERM in containers, ENOSYS, `kernel.io_uring_disabled`,
/// an old kernel).
///
/// `LBDNS_NO_URING=1` in the environment makes the probe fail, to test
/// and to force the fallback.
///
/// The probe's ring lives on a thread of its own: tearing down a ring
/// whose receive is still armed hands the cancellation to the ring's
/// thread as task work, which interrupts that thread's next blocking
/// call with EINTR (seen on a socket read with a timeout).
pub fn probe() -> Result<(), String> {
    if std::env::var_os("LBDNS_NO_URING").is_some_and(|v| v != "0") {
        return Err("disabled by LBDNS_NO_URING".into());
    }
    std::thread::Builder::new()
        .name("uring-probe".into())
        .spawn(probe_here)
        .map_err(|e| format!("probe thread: {e}"))?
        .join()
        .map_err(|_| "the probe panicked".to_string())?
}

fn probe_here() -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("probe socket: {e}"))?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    let mut uring = Uring::new(std::slice::from_ref(&socket)).map_err(|e| format!("io_uring setup: {e}"))?;
    uring.ring.submit().map_err(|e| format!("io_uring submit: {e}"))?;
    socket.send_to(b"probe", addr).map_err(|e| e.to_string())?;
    let wait = Timespec::new().sec(1);
    let args = SubmitArgs::new().timespec(&wait);
    match uring.ring.submitter().submit_with_args(1, &args) {
        Ok(_) => {}
        Err(err) if err.raw_os_error() == Some(libc::ETIME) => return Err("no completion within 1 s".into()),
        Err(err) => return Err(format!("io_uring wait: {err}")),
    }
    let cqe = uring.ring.completion().next().ok_or("no completion")?;
    if cqe.result() < 0 {
        return Err(format!(
            "multishot recvmsg: {}",
            io::Error::from_raw_os_error(-cqe.result())
        ));
    }
    let bid = cqueue::buffer_select(cqe.flags()).ok_or("no provided buffer used")?;
    let start = usize::from(bid) * BUF_SIZE;
    let buffer = &uring.buffers[start..start + cqe.result() as usize];
    let msg = RecvMsgOut::parse(buffer, &uring.templates[0]).map_err(|_| "unparseable recvmsg output")?;
    if msg.payload_data() != b"probe" {
        return Err("probe datagram garbled".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Both kinds of ring (this kernel's and the plain one older kernels
    /// get), both families: a datagram in, its reply back from the address
    /// queried. The v4 socket is bound to its address (replies by
    /// `IORING_OP_SEND` to a destination when the ring allows it), the v6
    /// one to the wildcard with pktinfo (replies by `sendmsg`).
    #[test]
    fn both_rings_answer_on_both_families() {
        if let Err(why) = probe() {
            eprintln!("io_uring unavailable here, skipped: {why}");
            return;
        }
        for modern in [true, false] {
            let v4 = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let v6 = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).unwrap();
            v6.set_only_v6(true).unwrap();
            v6.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into()).unwrap();
            let v6: UdpSocket = v6.into();
            super::super::enable_pktinfo(v6.as_raw_fd(), true).unwrap();
            let targets = [
                v4.local_addr().unwrap(),
                SocketAddr::from((Ipv6Addr::LOCALHOST, v6.local_addr().unwrap().port())),
            ];
            let stop = AtomicBool::new(false);
            // Stops the server however this side ends, a failed assertion
            // included, so that the scope can be left.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            std::thread::scope(|scope| {
                let sockets = [v4, v6];
                let stop = &stop;
                let server = scope.spawn(move || -> io::Result<bool> {
                    let ring = if modern {
                        new_ring(64)?
                    } else {
                        (IoUring::builder().build(64)?, false)
                    };
                    let mut uring = Uring::with_ring(ring, &sockets)?;
                    let sendto = uring.sendto;
                    uring.run(stop, |query, _, reply| {
                        reply.extend_from_slice(b"re:");
                        reply.extend_from_slice(query);
                        true
                    })?;
                    Ok(sendto)
                });
                let guard = StopOnDrop(stop);
                for (i, &to) in targets.iter().enumerate() {
                    let client = UdpSocket::bind(SocketAddr::new(to.ip(), 0)).unwrap();
                    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let query = format!("query {i}");
                    client.send_to(query.as_bytes(), to).unwrap();
                    let mut buf = [0u8; 64];
                    let (n, from) = client.recv_from(&mut buf).expect("a reply");
                    assert_eq!(&buf[..n], format!("re:{query}").as_bytes(), "ring modern={modern}");
                    assert_eq!(from, to, "the reply comes from the address queried");
                }
                drop(guard);
                let sendto = server.join().unwrap().expect("the ring serves");
                assert!(!sendto || modern, "a plain ring never sends with a destination");
            });
        }
    }
}
