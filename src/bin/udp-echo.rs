//! `udp-echo`: the physical ceiling for UDP benchmarks. It answers every
//! datagram with itself (QR set, so DNS tools count it as a reply), through
//! the same `recvmmsg`/`sendmmsg` back end as lbdns, doing no DNS work.
//!
//! With `--threads N` it runs N threads, each with its own `SO_REUSEPORT`
//! socket and pinned to one of the CPUs it may use, as lbdns's workers are:
//! the ceiling for a many-core run (`scripts/bench-scale.sh`).

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use lbdns::config::IoKind;
use socket2::{Domain, Protocol, Socket, Type};

#[derive(Parser)]
#[command(name = "udp-echo", about = "recvmmsg/sendmmsg UDP echo (benchmark ceiling)")]
struct Args {
    /// Where to listen (loopback).
    #[arg(long, default_value = "127.0.0.1:5399")]
    listen: SocketAddr,
    /// Datagrams per batch.
    #[arg(long, default_value = "32")]
    batch: usize,
    /// Threads, each with its own SO_REUSEPORT socket, pinned to the
    /// 1st, 2nd, ... CPU this process may use.
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// SO_RCVBUF of each socket, bytes (default: lbdns's `recv_buffer`).
    #[arg(long, default_value_t = lbdns::config::ServerConfig::default().recv_buffer)]
    recv_buffer: usize,
}

fn bind(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // The same buffer and path-MTU setting as lbdns's sockets, so that the
    // ceiling differs from lbdns only by the DNS work. As in lbdns, a
    // refused setting keeps the kernel's default.
    let _ = socket.set_recv_buffer_size(recv_buffer);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let socket: UdpSocket = socket.into();
    use std::os::fd::AsRawFd;
    let _ = lbdns::io::sys::ignore_path_mtu(socket.as_raw_fd(), addr.is_ipv6(), false);
    Ok(socket)
}

fn echo(socket: &UdpSocket, batch: usize) -> std::io::Result<()> {
    let stop = AtomicBool::new(false);
    lbdns::io::serve(
        IoKind::Mmsg,
        std::slice::from_ref(socket),
        batch,
        &stop,
        |query, _, reply| {
            if query.len() < 12 {
                return false;
            }
            reply.extend_from_slice(query);
            reply[2] |= 0x80;
            true
        },
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut sockets = Vec::new();
    for _ in 0..args.threads {
        match bind(args.listen, args.recv_buffer) {
            Ok(s) => sockets.push(s),
            Err(err) => {
                eprintln!("udp-echo: cannot listen on {}: {err}", args.listen);
                return ExitCode::from(3);
            }
        }
    }
    if args.threads == 1 {
        // One thread stays unpinned: bench-peers pins the whole process.
        return match echo(&sockets[0], args.batch) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("udp-echo: {err}");
                ExitCode::from(1)
            }
        };
    }
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    let batch = args.batch;
    let threads: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, socket)| {
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            std::thread::spawn(move || {
                if let Some(cpu) = cpu {
                    core_affinity::set_for_current(cpu);
                }
                echo(&socket, batch)
            })
        })
        .collect();
    let mut status = ExitCode::SUCCESS;
    for thread in threads {
        if let Ok(Err(err)) = thread.join() {
            eprintln!("udp-echo: {err}");
            status = ExitCode::from(1);
        }
    }
    status
}
