//! `udp-echo`: the physical ceiling for UDP benchmarks. It answers every
//! datagram with itself (QR set, so DNS tools count it as a reply), through
//! the same `recvmmsg`/`sendmmsg` back end as lbdns, doing no DNS work.

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use lbdns::config::IoKind;

#[derive(Parser)]
#[command(name = "udp-echo", about = "recvmmsg/sendmmsg UDP echo (benchmark ceiling)")]
struct Args {
    /// Where to listen (loopback).
    #[arg(long, default_value = "127.0.0.1:5399")]
    listen: SocketAddr,
    /// Datagrams per batch.
    #[arg(long, default_value = "32")]
    batch: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let socket = match UdpSocket::bind(args.listen) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("udp-echo: cannot listen on {}: {err}", args.listen);
            return ExitCode::from(3);
        }
    };
    if socket.set_nonblocking(true).is_err() {
        return ExitCode::from(3);
    }
    // The same path-MTU setting as lbdns's sockets, so that the ceiling
    // differs from lbdns only by the DNS work.
    {
        use std::os::fd::AsRawFd;
        let _ = lbdns::io::sys::omit_path_mtu(socket.as_raw_fd(), args.listen.is_ipv6());
    }
    let stop = AtomicBool::new(false);
    let result = lbdns::io::serve(IoKind::Mmsg, &[socket], args.batch, &stop, |query, _, reply| {
        if query.len() < 12 {
            return false;
        }
        reply.extend_from_slice(query);
        reply[2] |= 0x80;
        true
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("udp-echo: {err}");
            ExitCode::from(1)
        }
    }
}
