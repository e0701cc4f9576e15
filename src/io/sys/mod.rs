//! The only place with `unsafe` code: thin wrappers over C interfaces,
//! each block with a `// SAFETY:` comment (after quinn-udp).

pub mod mmsg;
pub mod uring;

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::time::Duration;

/// Room for one pktinfo control message (IPv4 or IPv6).
pub const CONTROL_LEN: usize = 64;

/// Where a datagram came from. (Where it was sent to, with pktinfo, stays
/// with the back end, which sends the reply from there.)
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub peer: SocketAddr,
    /// The datagram was longer than the receive buffer.
    pub truncated: bool,
}

/// Converts a socket address the kernel wrote into `storage`.
pub fn socket_addr(storage: &libc::sockaddr_storage, len: usize) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let sin = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Reads the destination address and interface from received pktinfo
/// control data.
pub fn parse_pktinfo_bytes(control: &[u8]) -> Option<(IpAddr, u32)> {
    if control.is_empty() {
        return None;
    }
    // SAFETY: a zeroed msghdr whose control buffer is `control` (only read
    // through it); the kernel wrote well-formed control messages there and
    // the CMSG macros stay within `msg_controllen`. Data is read unaligned.
    unsafe {
        let mut hdr: libc::msghdr = zeroed();
        hdr.msg_control = control.as_ptr() as *mut libc::c_void;
        hdr.msg_controllen = control.len() as _;
        let mut cmsg = libc::CMSG_FIRSTHDR(&hdr);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_PKTINFO {
                let info = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::in_pktinfo);
                let addr = std::net::Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                return Some((IpAddr::V4(addr), info.ipi_ifindex as u32));
            }
            if c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_PKTINFO {
                let info = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::in6_pktinfo);
                let addr = std::net::Ipv6Addr::from(info.ipi6_addr.s6_addr);
                return Some((IpAddr::V6(addr), info.ipi6_ifindex));
            }
            cmsg = libc::CMSG_NXTHDR(&hdr, cmsg);
        }
    }
    None
}

/// Returns freed memory to the operating system now.
///
/// The global allocator (mimalloc, see `main.rs`) purges freed pages
/// lazily, when the thread that owns them allocates again. Workers do not
/// allocate while answering, so after a large zone is loaded and its
/// intermediate data freed, that memory would stay resident for good.
pub fn release_free_memory() {
    // SAFETY: `mi_collect` takes no pointers and only walks mimalloc's own
    // heaps; it is safe to call at any time from any thread, also when
    // mimalloc is not the global allocator (then there is little to do).
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Waits until one of `fds` is readable or `timeout` passes; returns a
/// readiness flag per descriptor.
pub fn wait_readable(fds: &[RawFd], timeout: Duration, ready: &mut [bool]) -> io::Result<usize> {
    let mut polls: [libc::pollfd; 16] = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 16];
    let n = fds.len().min(polls.len());
    for (p, &fd) in polls.iter_mut().zip(fds) {
        *p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
    }
    // SAFETY: `polls` holds `n` initialised pollfd entries for the call.
    let rc = unsafe {
        libc::poll(
            polls.as_mut_ptr(),
            n as libc::nfds_t,
            timeout.as_millis() as libc::c_int,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(err)
        };
    }
    for (flag, p) in ready.iter_mut().zip(&polls[..n]) {
        *flag = p.revents & (libc::POLLIN | libc::POLLERR) != 0;
    }
    Ok(rc as usize)
}

/// Asks the kernel to report each datagram's destination address
/// (`IP_PKTINFO`, `IPV6_RECVPKTINFO`), so that replies can leave from it.
pub fn enable_pktinfo(fd: RawFd, ipv6: bool) -> io::Result<()> {
    if ipv6 {
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
    } else {
        set_int_option(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
    }
}

/// Ignores path-MTU information, so that forged ICMP "fragmentation
/// needed" messages cannot shrink the packets sent to a victim (RFC 9715;
/// BIND and gdnsd do the same). Replies already fit 1232 bytes.
///
/// By default without the DF bit (`IP_PMTUDISC_OMIT`): a router may
/// fragment a reply larger than its link. With `dont_fragment`
/// (`IP_PMTUDISC_PROBE`), DF is set, as RFC 9715 recommends: such a reply
/// is dropped instead, and the client retries (smaller, or over TCP). The
/// kernel then also skips choosing an IPv4 identification for each
/// reply. For IPv6, where routers never fragment, the two differ only for
/// a reply larger than the interface's MTU (the sender fragments it or
/// refuses it), which lbdns never sends.
pub fn ignore_path_mtu(fd: RawFd, ipv6: bool, dont_fragment: bool) -> io::Result<()> {
    if ipv6 {
        let mode = if dont_fragment {
            libc::IPV6_PMTUDISC_PROBE
        } else {
            libc::IPV6_PMTUDISC_OMIT
        };
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, mode)
    } else {
        let mode = if dont_fragment {
            libc::IP_PMTUDISC_PROBE
        } else {
            libc::IP_PMTUDISC_OMIT
        };
        set_int_option(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, mode)
    }
}

/// Sets an integer socket option.
fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid option value pointer and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lowers the calling thread's scheduling priority (nice +10), so that
/// the threads doing TCP never take CPU time from the UDP workers.
pub fn lower_thread_priority() {
    // SAFETY: gettid takes no arguments; setpriority on our own thread id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// Writes a pktinfo control message choosing the reply's source address;
/// returns its length.
pub fn write_pktinfo(buf: &mut [u8], (addr, ifindex): (IpAddr, u32)) -> usize {
    buf.fill(0);
    // SAFETY: a zeroed msghdr whose control buffer is `buf`; CMSG_FIRSTHDR
    // returns a header inside it because `buf` holds CONTROL_LEN bytes,
    // enough for one in6_pktinfo message; the data is written unaligned.
    unsafe {
        let mut hdr: libc::msghdr = zeroed();
        hdr.msg_control = buf.as_mut_ptr().cast();
        hdr.msg_controllen = buf.len() as _;
        let cmsg = libc::CMSG_FIRSTHDR(&hdr);
        if cmsg.is_null() {
            return 0;
        }
        match addr {
            IpAddr::V4(v4) => {
                let len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32);
                (*cmsg).cmsg_level = libc::IPPROTO_IP;
                (*cmsg).cmsg_type = libc::IP_PKTINFO;
                (*cmsg).cmsg_len = len as _;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(v4).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::in_pktinfo, info);
                libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize
            }
            IpAddr::V6(v6) => {
                let len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32);
                (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
                (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
                (*cmsg).cmsg_len = len as _;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: v6.octets() },
                    ipi6_ifindex: ifindex,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::in6_pktinfo, info);
                libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid value pointer and its length, both written by the call.
        let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut libc::c_int).cast(), &mut len) };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn path_mtu_is_ignored_on_both_families_with_or_without_df() {
        for (dont_fragment, v4_mode, v6_mode) in [
            (false, libc::IP_PMTUDISC_OMIT, libc::IPV6_PMTUDISC_OMIT),
            (true, libc::IP_PMTUDISC_PROBE, libc::IPV6_PMTUDISC_PROBE),
        ] {
            let v4 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            assert_ne!(
                int_option(v4.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
                v4_mode
            );
            ignore_path_mtu(v4.as_raw_fd(), false, dont_fragment).unwrap();
            assert_eq!(
                int_option(v4.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
                v4_mode
            );
            if let Ok(v6) = std::net::UdpSocket::bind("[::1]:0") {
                ignore_path_mtu(v6.as_raw_fd(), true, dont_fragment).unwrap();
                assert_eq!(
                    int_option(v6.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
                    v6_mode
                );
            }
        }
    }
}
