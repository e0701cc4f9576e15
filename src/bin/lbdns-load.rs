//! `lbdns-load`: a saturating DNS load generator for benchmarks.
//!
//! It replays a dnsperf-style query file (`NAME TYPE` per line) over UDP
//! from many source ports, keeps a window of queries outstanding, and
//! batches with `sendmmsg`/`recvmmsg`, so that one client core can keep
//! one server core fully busy (dnsperf cannot, on this machine). It stops
//! after `--count` queries or `--seconds`, then reports QPS, latency
//! percentiles and lost queries. A query unanswered after `--timeout`
//! counts as lost and gives its place in the window back, as in dnsperf:
//! otherwise every loss (the kernel drops datagrams when a CPU's backlog
//! or a socket's buffer is full) would shrink the window for good, and a
//! burst of losses would stop the load. Only loopback addresses are
//! accepted as targets, and as sources.
//!
//! By default every query comes from 127.0.0.1 (or ::1). `--sources N`
//! binds the sockets to N consecutive addresses from `--source` on, so
//! that the server sees N clients instead of one. That matters on many
//! cores: the kernel picks each IPv4 reply's identification from a
//! counter chosen by the pair of addresses, so replies to a single
//! client address share one counter across all the server's CPUs.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::Parser;
use lbdns::io::sys::mmsg::{recv_waiting, send_connected};

#[derive(Parser)]
#[command(name = "lbdns-load", about = "Saturating UDP DNS load generator (loopback only)")]
struct Args {
    /// The server (a loopback address).
    #[arg(long, short, default_value = "127.0.0.1:53")]
    server: SocketAddr,
    /// Queries to replay: `NAME TYPE` per line (dnsperf format).
    #[arg(long, short = 'd')]
    queries: PathBuf,
    /// Stop after this many seconds.
    #[arg(long, default_value = "10")]
    seconds: f64,
    /// Stop after this many queries (0: no limit).
    #[arg(long, default_value = "0")]
    count: u64,
    /// Queries outstanding at most.
    #[arg(long, default_value = "512")]
    window: usize,
    /// Source sockets (ports), spread over the server's workers.
    #[arg(long, default_value = "16")]
    sockets: usize,
    /// Seconds after which an unanswered query counts as lost and frees
    /// its place in the window.
    #[arg(long, default_value = "1")]
    timeout: f64,
    /// Datagrams per sendmmsg/recvmmsg.
    #[arg(long, default_value = "32")]
    batch: usize,
    /// The first source address (loopback; default 127.0.0.1, or ::1 for
    /// an IPv6 server).
    #[arg(long)]
    source: Option<IpAddr>,
    /// Source addresses: socket i is bound to the (i mod N)-th address
    /// from --source on, so at most --sockets of them are used (IPv4
    /// only: ::1 is the one IPv6 loopback address).
    #[arg(long, default_value = "1")]
    sources: u32,
}

/// The address each of `count` sockets binds to, or why the sources asked
/// for are not allowed.
fn source_addresses(
    server: SocketAddr,
    first: Option<IpAddr>,
    sources: u32,
    count: usize,
) -> Result<Vec<IpAddr>, String> {
    let first = first.unwrap_or(if server.is_ipv6() {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    });
    if !first.is_loopback() || first.is_ipv6() != server.is_ipv6() {
        return Err(format!(
            "--source {first}: not a loopback address of the server's family"
        ));
    }
    if sources == 0 {
        return Err("--sources must be at least 1".into());
    }
    let IpAddr::V4(v4) = first else {
        return if sources == 1 {
            Ok(vec![first; count])
        } else {
            Err("--sources above 1 needs IPv4: ::1 is the only IPv6 loopback address".into())
        };
    };
    let base = u32::from(v4);
    // 127.255.255.255 is loopback's broadcast address.
    match base.checked_add(sources - 1) {
        Some(last) if last < 0x7fff_ffff => Ok((0..count)
            .map(|i| IpAddr::V4(Ipv4Addr::from(base + (i as u32 % sources))))
            .collect()),
        _ => Err(format!("--source {first} --sources {sources} leaves 127.0.0.0/8")),
    }
}

/// Latency histogram: 1 µs buckets up to 10 ms, then one overflow bucket.
struct Histogram {
    buckets: Vec<u64>,
    max_us: u64,
}

impl Histogram {
    fn record(&mut self, us: u64) {
        let i = (us as usize).min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.max_us = self.max_us.max(us);
    }

    fn percentile(&self, p: f64) -> u64 {
        let total: u64 = self.buckets.iter().sum();
        let want = (total as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (us, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want && n > 0 {
                return us as u64;
            }
        }
        self.max_us
    }
}

fn build_query(name: &str, qtype: &str) -> Option<Vec<u8>> {
    let name = domain::base::name::Name::<Vec<u8>>::from_str(name).ok()?;
    let qtype = domain::base::iana::Rtype::from_str(qtype).ok()?;
    let mut q = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(name.as_slice());
    q.extend_from_slice(&qtype.to_int().to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    Some(q)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.server.ip().is_loopback() {
        eprintln!("lbdns-load: only loopback servers may be targeted, not {}", args.server);
        return ExitCode::from(2);
    }
    let text = match std::fs::read_to_string(&args.queries) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("lbdns-load: {}: {err}", args.queries.display());
            return ExitCode::from(2);
        }
    };
    let queries: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            build_query(w.next()?, w.next().unwrap_or("A"))
        })
        .collect();
    if queries.is_empty() {
        eprintln!("lbdns-load: no queries in {}", args.queries.display());
        return ExitCode::from(2);
    }
    let addresses = match source_addresses(args.server, args.source, args.sources, args.sockets.max(1)) {
        Ok(addresses) => addresses,
        Err(why) => {
            eprintln!("lbdns-load: {why}");
            return ExitCode::from(2);
        }
    };
    let sockets: Vec<UdpSocket> = addresses
        .into_iter()
        .map(|ip| {
            let s = UdpSocket::bind((ip, 0)).expect("bind a loopback socket");
            s.connect(args.server).expect("connect to the server");
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect();
    // Per socket: the send time of each of 65536 IDs (0: none outstanding).
    let mut sent_at: Vec<Vec<u64>> = vec![vec![0; 65536]; sockets.len()];
    let mut next_id = vec![0u16; sockets.len()];
    let mut histogram = Histogram {
        buckets: vec![0; 10_001],
        max_us: 0,
    };
    let batch = args.batch.clamp(1, 1024);
    let mut bufs = vec![[0u8; 512]; batch];
    let mut lens = vec![0usize; batch];
    let mut packets: Vec<Vec<u8>> = (0..batch).map(|_| Vec::with_capacity(512)).collect();
    let (mut sent, mut received, mut outstanding) = (0u64, 0u64, 0usize);
    let mut cursor = 0usize;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let elapsed_us = |t: Instant| t.duration_since(start).as_micros() as u64 + 1;
    let mut sending = true;
    let mut last_reply = Instant::now();
    // Every query sent, oldest first: (socket, ID, send time). One whose
    // `sent_at` still holds that time when it expires was never answered.
    let mut pending: VecDeque<(u32, u16, u64)> = VecDeque::new();
    let timeout_us = (args.timeout.max(0.001) * 1e6) as u64;
    let mut timed_out = 0u64;
    loop {
        let now = Instant::now();
        if sending && (now >= deadline || (args.count > 0 && sent >= args.count)) {
            sending = false;
        }
        let now_us = elapsed_us(now);
        while let Some(&(s, id, at)) = pending.front() {
            if at + timeout_us > now_us {
                break;
            }
            pending.pop_front();
            let slot = &mut sent_at[s as usize][usize::from(id)];
            if *slot == at {
                *slot = 0;
                outstanding -= 1;
                timed_out += 1;
            }
        }
        for (s, socket) in sockets.iter().enumerate() {
            // Fill the window.
            if sending {
                let room = args.window.saturating_sub(outstanding).min(batch);
                let room = if args.count > 0 {
                    room.min((args.count - sent) as usize)
                } else {
                    room
                };
                if room > 0 {
                    let stamp = elapsed_us(Instant::now());
                    for packet in packets.iter_mut().take(room) {
                        packet.clear();
                        packet.extend_from_slice(&queries[cursor % queries.len()]);
                        cursor += 1;
                        let id = next_id[s];
                        next_id[s] = id.wrapping_add(1);
                        // Its ID came round again (65,536 sends on this
                        // socket) before it was answered or timed out:
                        // it is given up now, so that its place is not
                        // lost.
                        if sent_at[s][usize::from(id)] != 0 {
                            outstanding -= 1;
                            timed_out += 1;
                        }
                        packet[..2].copy_from_slice(&id.to_be_bytes());
                        sent_at[s][usize::from(id)] = stamp;
                    }
                    let refs: Vec<&[u8]> = packets[..room].iter().map(|p| &p[..]).collect();
                    let n = send_connected(socket.as_raw_fd(), &refs).unwrap_or(0);
                    for packet in &packets[..n] {
                        pending.push_back((s as u32, u16::from_be_bytes([packet[0], packet[1]]), stamp));
                    }
                    // Unsent ones are not outstanding.
                    for packet in &packets[n..room] {
                        let id = u16::from_be_bytes([packet[0], packet[1]]);
                        sent_at[s][usize::from(id)] = 0;
                    }
                    sent += n as u64;
                    outstanding += n;
                }
            }
            // Collect replies.
            let n = recv_waiting(socket.as_raw_fd(), &mut bufs, &mut lens).unwrap_or(0);
            if n > 0 {
                let now_us = elapsed_us(Instant::now());
                last_reply = Instant::now();
                for (buf, &len) in bufs[..n].iter().zip(&lens[..n]) {
                    if len < 12 {
                        continue;
                    }
                    let id = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
                    let at = std::mem::replace(&mut sent_at[s][id], 0);
                    if at > 0 {
                        histogram.record(now_us.saturating_sub(at));
                        received += 1;
                        outstanding = outstanding.saturating_sub(1);
                    }
                }
            }
        }
        if !sending && (outstanding == 0 || last_reply.elapsed() > Duration::from_secs(1)) {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64().min(args.seconds.max(0.001));
    let lost = sent - received;
    println!("server:   {}", args.server);
    println!("sent:     {sent}");
    println!("answered: {received}");
    println!(
        "lost:     {lost} ({:.3} %, {timed_out} of them timed out after {} s)",
        100.0 * lost as f64 / sent.max(1) as f64,
        args.timeout
    );
    println!("qps:      {:.0}", received as f64 / elapsed);
    // The last bucket holds everything from 10 ms up.
    let cap = (histogram.buckets.len() - 1) as u64;
    let p = |q| match histogram.percentile(q) {
        us if us >= cap => format!("{cap}+"),
        us => us.to_string(),
    };
    println!(
        "latency:  p50 {} us, p90 {} us, p99 {} us, max {} us",
        p(0.50),
        p(0.90),
        p(0.99),
        histogram.max_us
    );
    ExitCode::SUCCESS
}
