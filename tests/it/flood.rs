//! A packet flood against the running server (short form for CI):
//! 100,000 malformed and random datagrams, then normal queries must be
//! answered by every worker, and memory must not have grown.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use lbdns::lb::Rng;

use crate::support::{QueryBuilder, Server, decode, temp_config};

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_flood_of_garbage_leaves_every_worker_answering() {
    let config = temp_config("");
    let server = Server::start(&["--config", config.to_str().unwrap(), "--workers", "2"]);
    let query = QueryBuilder::new("www.example.com.", "A").edns(1232).build();
    // Warm up, then measure.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..100 {
        probe.send_to(&query, server.addr).unwrap();
        probe.recv_from(&mut buf).unwrap();
    }
    let before = rss_kb(server.pid());
    let mut rng = Rng::with_seed(0xF100D);
    let senders: Vec<UdpSocket> = (0..16).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    for i in 0..100_000u32 {
        let mut packet = query.clone();
        match i % 4 {
            // Random bytes of random length.
            0 => {
                let len = rng.below(600) as usize;
                packet = (0..len).map(|_| rng.next_u64() as u8).collect();
            }
            // A query with random bit flips.
            1 => {
                for _ in 0..=rng.below(8) {
                    let at = rng.below(packet.len() as u32) as usize;
                    packet[at] ^= 1 << rng.below(8);
                }
            }
            // Truncated.
            2 => packet.truncate(rng.below(packet.len() as u32) as usize),
            // Counts that lie.
            _ => {
                packet[4..12].copy_from_slice(&(rng.next_u64()).to_be_bytes());
            }
        }
        let _ = senders[(i % 16) as usize].send_to(&packet, server.addr);
        if i % 2000 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    // Every worker still answers: queries from many source ports.
    for port in 0..64 {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut q = QueryBuilder::new("www.example.com.", "A");
        q.id = port;
        socket.send_to(&q.build(), server.addr).unwrap();
        let (len, _) = socket.recv_from(&mut buf).expect("answered after the flood");
        let reply = decode(&buf[..len]);
        assert_eq!(
            (reply.id, reply.rcode.as_str(), reply.answer.len()),
            (port, "NOERROR", 3)
        );
    }
    let after = rss_kb(server.pid());
    eprintln!("RSS before the flood {before} kB, after {after} kB");
    assert!(after < before + 16 * 1024, "memory grew from {before} kB to {after} kB");
    let stopped = server.stop();
    assert_eq!(stopped.code, Some(0), "{:?}", stopped.log);
    let answered: Vec<u64> = stopped
        .log
        .iter()
        .filter(|l| l.contains("stopped worker="))
        .map(|l| {
            l.split("replies=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(answered.len(), 2);
    assert!(answered.iter().all(|&r| r > 0), "both workers answered: {answered:?}");
}

/// Sends `n` copies of `query` from one socket and sorts the replies:
/// (full answers, truncated slips); the rest were dropped.
fn blast(server: &Server, from: &str, query: &[u8], n: usize) -> (usize, usize) {
    let socket = UdpSocket::bind(from).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    for _ in 0..n {
        socket.send_to(query, server.addr).unwrap();
    }
    let (mut full, mut slipped) = (0, 0);
    let mut buf = [0u8; 2048];
    while let Ok((len, _)) = socket.recv_from(&mut buf) {
        let reply = decode(&buf[..len]);
        if reply.flags.contains(&"tc") {
            assert!(reply.answer.is_empty());
            slipped += 1;
        } else {
            full += 1;
        }
    }
    (full, slipped)
}

#[test]
fn rate_limiting_through_the_server() {
    let config = temp_config("[server.rrl]\nrate = 5\nslip = 2\nexempt = [\"127.0.2.0/24\"]");
    let server = Server::start(&["--config", config.to_str().unwrap(), "--workers", "1"]);
    let query = QueryBuilder::new("www.example.com.", "A").build();
    let (full, slipped) = blast(&server, "127.0.0.1:0", &query, 200);
    assert!((5..=12).contains(&full), "about the bucket of 5: {full}");
    assert!(
        (80..=110).contains(&slipped),
        "every second limited one slips: {slipped}"
    );
    // Another network is not affected; an exempt one is never limited.
    let (full, _) = blast(&server, "127.0.1.1:0", &query, 5);
    assert_eq!(full, 5);
    let (full, slipped) = blast(&server, "127.0.2.1:0", &query, 100);
    assert_eq!((full, slipped), (100, 0));
    // A client with a valid server cookie is exempt (RFC 7873 §5.2.3
    // proves the source is not spoofed).
    let socket = UdpSocket::bind("127.0.3.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut q = QueryBuilder::new("www.example.com.", "A").edns(1232);
    q.edns.as_mut().unwrap().3.push((10, vec![9, 8, 7, 6, 5, 4, 3, 2]));
    socket.send_to(&q.build(), server.addr).unwrap();
    let mut buf = [0u8; 2048];
    let (len, _) = socket.recv_from(&mut buf).unwrap();
    let reply = decode(&buf[..len]);
    let cookie = reply
        .edns
        .unwrap()
        .3
        .into_iter()
        .find(|o| o.starts_with("10:"))
        .expect("a cookie");
    let hex = &cookie[3..];
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(bytes.len(), 24, "client cookie and a 16-byte server cookie");
    let mut q = QueryBuilder::new("www.example.com.", "A").edns(1232);
    q.edns.as_mut().unwrap().3.push((10, bytes));
    let local = socket.local_addr().unwrap().to_string();
    drop(socket);
    let (full, slipped) = blast(&server, &local, &q.build(), 100);
    assert_eq!((full, slipped), (100, 0), "valid cookies are not limited");
    // TCP is never limited.
    for _ in 0..30 {
        let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        use std::io::{Read, Write};
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        stream.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
    }
    let stopped = server.stop();
    assert_eq!(stopped.code, Some(0));
}

/// `lbdns-load` aimed at `server` with the bench queries.
fn load_command(server: &str) -> std::process::Command {
    let queries = crate::support::data_dir().join("../../benches/data/queries.txt");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lbdns-load"));
    cmd.args(["--server", server, "-d", queries.to_str().unwrap()]);
    cmd
}

/// Runs `lbdns-load` against `server` with `args`; its report, once it
/// has exited 0.
fn load(server: SocketAddr, args: &[&str]) -> String {
    let out = load_command(&server.to_string()).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn the_load_generator_counts_every_answer() {
    let server = Server::start(&["--config", temp_config("").to_str().unwrap()]);
    let text = load(
        server.addr,
        &[
            "--count",
            "20000",
            "--seconds",
            "30",
            "--window",
            "64",
            "--sockets",
            "4",
        ],
    );
    assert!(text.contains("sent:     20000"), "{text}");
    assert!(text.contains("answered: 20000"), "{text}");
    assert!(text.contains("lost:     0 "), "{text}");
    let refused = load_command("192.0.2.1:53").output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "only loopback targets");
    // From three loopback sources, every query is still answered.
    let text = load(
        server.addr,
        &[
            "--count",
            "3000",
            "--seconds",
            "30",
            "--sockets",
            "6",
            "--source",
            "127.0.3.1",
            "--sources",
            "3",
        ],
    );
    assert!(text.contains("answered: 3000"), "{text}");
    for bad in [
        &["--source", "192.0.2.1"][..],
        &["--source", "127.255.255.250", "--sources", "10"],
        &["--sources", "0"],
    ] {
        let out = load_command(&server.addr.to_string()).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn the_load_generator_sends_from_each_source_address() {
    // A bare socket in place of a server: it sees where queries come from.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let addr = sink.local_addr().unwrap();
    let child = load_command(&addr.to_string())
        // One query per socket in the first pass over them (batch 1).
        .args([
            "--count",
            "8",
            "--window",
            "8",
            "--batch",
            "1",
            "--seconds",
            "5",
            "--timeout",
            "0.2",
        ])
        .args(["--sockets", "8", "--source", "127.0.5.7", "--sources", "3"])
        .output()
        .unwrap();
    assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stderr));
    let mut seen = std::collections::BTreeSet::new();
    let mut buf = [0u8; 512];
    for _ in 0..8 {
        let (_, from) = sink.recv_from(&mut buf).unwrap();
        seen.insert(from.ip().to_string());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["127.0.5.7", "127.0.5.8", "127.0.5.9"]
    );
}

/// A query that is never answered frees its place in the window after
/// `--timeout`, so losses cannot stop the load: against a socket that
/// reads nothing, the generator keeps sending windows for as long as it
/// runs, counts them all lost, and says they timed out.
#[test]
fn the_load_generator_reclaims_the_window_from_lost_queries() {
    let hole = UdpSocket::bind("127.0.0.1:0").unwrap(); // never read
    let text = load(
        hole.local_addr().unwrap(),
        &[
            "--seconds",
            "1.5",
            "--timeout",
            "0.1",
            "--window",
            "16",
            "--sockets",
            "2",
        ],
    );
    let field = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{text}"));
        line[name.len()..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let sent = field("sent:");
    // One window every 0.1 s for 1.5 s; without the timeout, just one.
    assert!(sent >= 16 * 5, "windows sent again after the timeout: {text}");
    assert_eq!(field("answered:"), 0, "{text}");
    assert_eq!(field("lost:"), sent, "{text}");
    let timed_out: u64 = text
        .split(" of them timed out")
        .next()
        .and_then(|t| t.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(timed_out + 16 >= sent, "all but the last window timed out: {text}");
}

/// A lost query whose 16-bit ID comes round again (65,536 sends on its
/// socket) before it times out is given up then, so that its place in
/// the window comes back: against a responder that drops only the first
/// query, one of 70,000 is lost, and counted as given up long before the
/// 100 s timeout.
#[test]
fn the_load_generator_gives_up_a_query_whose_id_comes_round() {
    let responder = UdpSocket::bind("127.0.0.1:0").unwrap();
    responder.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let addr = responder.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let mut first = true;
        while let Ok((len, from)) = responder.recv_from(&mut buf) {
            if std::mem::take(&mut first) {
                continue; // the one lost query
            }
            buf[2] |= 0x80;
            let _ = responder.send_to(&buf[..len], from);
        }
    });
    let text = load(
        addr,
        &[
            "--count",
            "70000",
            "--seconds",
            "60",
            "--timeout",
            "100",
            "--window",
            "32",
            "--sockets",
            "1",
        ],
    );
    assert!(text.contains("sent:     70000"), "{text}");
    assert!(text.contains("answered: 69999"), "{text}");
    assert!(
        text.contains("lost:     1 ") && text.contains("1 of them timed out"),
        "{text}"
    );
    thread.join().unwrap();
}
