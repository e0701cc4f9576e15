//! The real `lbdns serve` on loopback ports: UDP workers and back ends,
//! TCP (RFC 7766) limits, and the lifecycle.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use lbdns::proto::Transport;

use crate::cases;
use crate::support::{self, QueryBuilder, Reply, Server, decode, temp_config};

fn start(extra: &[&str]) -> Server {
    let zones = support::data_dir().join("zones");
    let parent = format!("example.com.={}", zones.join("example.com.zone").display());
    let child = format!("sub.example.com.={}", zones.join("sub.example.com.zone").display());
    let mut args = vec!["--zone", &parent, "--zone", &child];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn udp_query_from(socket: &UdpSocket, to: SocketAddr, query: &[u8]) -> Option<(Vec<u8>, SocketAddr)> {
    socket.send_to(query, to).unwrap();
    let mut buf = [0u8; 65535];
    socket
        .recv_from(&mut buf)
        .ok()
        .map(|(len, from)| (buf[..len].to_vec(), from))
}

fn udp_query(server: &Server, query: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (reply, from) = udp_query_from(&socket, server.addr, query).expect("udp reply");
    assert_eq!(from, server.addr);
    reply
}

fn tcp_frame(query: &[u8]) -> Vec<u8> {
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    framed
}

fn tcp_read(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply)?;
    Ok(reply)
}

fn tcp_connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
}

/// Whether the server closed the connection (EOF or reset) within 5 s.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => !matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn answers_over_udp_and_tcp() {
    let server = start(&[]);
    let reply = decode(&udp_query(&server, &QueryBuilder::new("www.example.com.", "A").build()));
    assert_eq!(reply.rcode, "NOERROR");
    assert_eq!(reply.flags, ["qr", "aa"]);
    assert_eq!(reply.answer.len(), 3);

    let mut stream = tcp_connect(&server);
    stream
        .write_all(&tcp_frame(&QueryBuilder::new("host.sub.example.com.", "A").build()))
        .unwrap();
    let reply = decode(&tcp_read(&mut stream).unwrap());
    assert_eq!(reply.answer, ["host.sub.example.com. 600 IN A 192.0.2.211"]);
}

#[test]
fn truncated_udp_answer_is_complete_over_tcp() {
    let server = start(&[]);
    let query = QueryBuilder::new("big.example.com.", "TXT").build();
    let reply = decode(&udp_query(&server, &query));
    assert!(reply.flags.contains(&"tc"), "{reply:?}");
    assert!(reply.answer.is_empty());
    let mut stream = tcp_connect(&server);
    stream.write_all(&tcp_frame(&query)).unwrap();
    let reply = decode(&tcp_read(&mut stream).unwrap());
    assert!(!reply.flags.contains(&"tc"));
    assert_eq!(reply.answer.len(), 8);
}

#[test]
fn tcp_pipelines_100_queries_split_across_segments() {
    let server = start(&[]);
    let mut stream = tcp_connect(&server);
    let names = [
        "www.example.com.",
        "mail.example.com.",
        "ns1.example.com.",
        "nothere.example.com.",
    ];
    let mut bytes = Vec::new();
    for i in 0..100u16 {
        let mut q = QueryBuilder::new(names[usize::from(i) % names.len()], "A");
        q.id = 1000 + i;
        bytes.extend_from_slice(&tcp_frame(&q.build()));
    }
    // Odd-sized writes cut frames and length prefixes apart.
    for chunk in bytes.chunks(37) {
        stream.write_all(chunk).unwrap();
        stream.flush().unwrap();
    }
    for i in 0..100u16 {
        let reply = decode(&tcp_read(&mut stream).unwrap());
        assert_eq!(reply.id, 1000 + i, "replies come in query order");
        let expected = if i % 4 == 3 { "NXDOMAIN" } else { "NOERROR" };
        assert_eq!(reply.rcode, expected);
    }
}

#[test]
fn multi_address_answers_come_in_random_order() {
    let server = start(&[]);
    let query = QueryBuilder::new("www.example.com.", "A").build();
    let mut firsts = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let reply = decode(&udp_query(&server, &query));
        let mut sorted = reply.answer.clone();
        sorted.sort();
        assert_eq!(sorted.len(), 3);
        firsts.insert(reply.answer[0].clone());
    }
    // With 3 records shuffled uniformly, 60 replies all starting with the
    // same two records has probability below 1e-10.
    assert_eq!(firsts.len(), 3, "{firsts:?}");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let zone = support::data_dir().join("zones/sub.example.com.zone");
    let out = Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .args(["serve", "--listen", &addr, "--zone"])
        .arg(format!("sub.example.com.={}", zone.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on udp {addr}")), "{stderr}");
    assert!(stderr.contains("another process is using this port"), "{stderr}");
}

/// The data-driven cases of `cases.txt`, over a real socket.
fn socket_cases(server: &Server) -> Vec<String> {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.addr;
    let mut exchange = |query: &[u8], transport: Transport| -> Option<Vec<u8>> {
        match transport {
            Transport::Udp => {
                // Cases expecting no reply wait this long.
                udp.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
                udp.send_to(query, addr).unwrap();
                let mut buf = [0u8; 65535];
                let (len, _) = udp.recv_from(&mut buf).ok()?;
                Some(buf[..len].to_vec())
            }
            Transport::Tcp => {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                stream.write_all(&tcp_frame(query)).unwrap();
                tcp_read(&mut stream).ok()
            }
        }
    };
    cases::run_all(&mut exchange, true)
}

#[test]
fn every_io_backend_passes_the_cases() {
    let config = support::data_dir().join("zones/lbdns.toml");
    let config = config.to_str().unwrap();
    for io in ["mmsg", "portable", "uring"] {
        // The test config, pools included (their checks probe 127.0.0.x
        // ports where nothing listens, so those members stay down).
        let server = Server::start(&[
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--io",
            io,
            "--workers",
            "2",
        ]);
        let startup = server.startup.join("\n");
        if io == "uring" && startup.contains("io_uring is not usable here") {
            eprintln!("io_uring back end skipped: {startup}");
            assert!(startup.contains("io=mmsg"), "falls back to mmsg:\n{startup}");
        } else {
            assert!(startup.contains(&format!("io={io}")), "{startup}");
        }
        let failures = socket_cases(&server);
        assert!(
            failures.is_empty(),
            "--io {io}: {} cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

#[test]
fn uring_falls_back_when_unavailable() {
    let zone = support::data_dir().join("zones/sub.example.com.zone");
    let zone = format!("sub.example.com.={}", zone.display());
    let server = Server::start_with_env(&["--zone", &zone, "--io", "uring"], &[("LBDNS_NO_URING", "1")]);
    let startup = server.startup.join("\n");
    let fallbacks = startup
        .matches("io_uring is not usable here (disabled by LBDNS_NO_URING); using mmsg")
        .count();
    assert_eq!(fallbacks, 1, "one log line:\n{startup}");
    assert!(startup.contains("io=mmsg"), "{startup}");
    let reply = decode(&udp_query(
        &server,
        &QueryBuilder::new("host.sub.example.com.", "A").build(),
    ));
    assert_eq!(reply.answer, ["host.sub.example.com. 600 IN A 192.0.2.211"]);
}

#[test]
fn all_workers_serve() {
    let server = start(&["--workers", "2"]);
    // Many source ports: SO_REUSEPORT spreads them over the workers.
    let query = QueryBuilder::new("www.example.com.", "A").build();
    for _ in 0..64 {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for _ in 0..5 {
            udp_query_from(&socket, server.addr, &query).expect("reply");
        }
    }
    let stopped = server.stop();
    let per_worker: Vec<u64> = stopped
        .log
        .iter()
        .filter(|l| l.contains("stopped worker="))
        .map(|l| {
            let q = l.split("queries=").nth(1).expect("queries=");
            q.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(per_worker.len(), 2, "{:?}", stopped.log);
    assert_eq!(per_worker.iter().sum::<u64>(), 320, "{per_worker:?}");
    assert!(
        per_worker.iter().all(|&q| q > 0),
        "every worker answered some: {per_worker:?}"
    );
}

#[test]
fn sigterm_stops_cleanly() {
    let server = start(&["--workers", "2"]);
    udp_query(&server, &QueryBuilder::new("www.example.com.", "A").build());
    let mut idle = tcp_connect(&server); // an open TCP connection does not hold the exit up
    idle.write_all(&[0]).unwrap();
    let stopped = server.stop();
    eprintln!("stopped in {:?}", stopped.elapsed);
    assert_eq!(stopped.code, Some(0), "{:?}", stopped.log);
    assert!(
        stopped
            .log
            .iter()
            .any(|l| l.contains("stopping") && l.contains("SIGTERM")),
        "{:?}",
        stopped.log
    );
    assert!(
        stopped
            .log
            .iter()
            .any(|l| l.ends_with("stopped") || l.contains(" stopped ")),
        "{:?}",
        stopped.log
    );
}

#[test]
fn replies_leave_from_the_address_queried() {
    for io in ["mmsg", "uring"] {
        let zone = support::data_dir().join("zones/sub.example.com.zone");
        let zone = format!("sub.example.com.={}", zone.display());
        let server = Server::start(&["--zone", &zone, "--listen", "0.0.0.0:0", "--io", io]);
        let port = server.addr.port();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let to = SocketAddr::from(([127, 0, 0, 2], port));
        let (reply, from) =
            udp_query_from(&socket, to, &QueryBuilder::new("host.sub.example.com.", "A").build()).expect("reply");
        assert_eq!(decode(&reply).rcode, "NOERROR");
        assert_eq!(from, to, "--io {io}: the reply comes from the address queried");
    }
}

#[test]
fn tcp_idle_connections_are_closed() {
    let config = temp_config("tcp_idle_timeout = \"300ms\"");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let mut stream = tcp_connect(&server);
    stream
        .write_all(&tcp_frame(&QueryBuilder::new("www.example.com.", "A").build()))
        .unwrap();
    tcp_read(&mut stream).unwrap();
    assert!(closed_by_server(&mut stream), "idle connection closed");
}

#[test]
fn tcp_trickling_client_is_cut_off() {
    let config = temp_config("tcp_idle_timeout = \"500ms\"");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let mut stream = tcp_connect(&server);
    let frame = tcp_frame(&QueryBuilder::new("www.example.com.", "A").build());
    // One byte every 150 ms: each arrives before the idle timeout, but the
    // whole query does not arrive within it.
    let started = Instant::now();
    let mut cut = false;
    for byte in &frame {
        if stream.write_all(&[*byte]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(
        cut || closed_by_server(&mut stream),
        "trickler was cut off after {:?}",
        started.elapsed()
    );
}

#[test]
fn tcp_connection_cap_evicts_the_longest_idle() {
    let config = temp_config("tcp_max_connections = 3");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let query = tcp_frame(&QueryBuilder::new("www.example.com.", "A").build());
    let mut conns: Vec<TcpStream> = Vec::new();
    for _ in 0..3 {
        let mut c = tcp_connect(&server);
        c.write_all(&query).unwrap();
        tcp_read(&mut c).unwrap();
        conns.push(c);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut newest = tcp_connect(&server);
    newest.write_all(&query).unwrap();
    assert!(tcp_read(&mut newest).is_ok(), "the new connection is served");
    assert!(
        closed_by_server(&mut conns[0]),
        "the longest-idle connection was closed"
    );
    conns[1].write_all(&query).unwrap();
    assert!(tcp_read(&mut conns[1]).is_ok(), "the others stay");
}

#[test]
fn slow_clients_do_not_block_others() {
    let server = start(&[]);
    let query = tcp_frame(&QueryBuilder::new("www.example.com.", "A").build());
    // One stalls halfway through a frame; one sends many queries and never
    // reads its replies.
    let mut staller = tcp_connect(&server);
    staller.write_all(&query[..5]).unwrap();
    let mut flooder = tcp_connect(&server);
    flooder.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    for _ in 0..2000 {
        if flooder.write_all(&query).is_err() {
            break;
        }
    }
    let mut polite = tcp_connect(&server);
    polite.write_all(&query).unwrap();
    let reply = decode(&tcp_read(&mut polite).expect("answered despite the others"));
    assert_eq!(reply.rcode, "NOERROR");
    let reply = decode(&udp_query(&server, &QueryBuilder::new("www.example.com.", "A").build()));
    assert_eq!(reply.rcode, "NOERROR");
}

#[test]
fn privileges_are_dropped_after_binding() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "skipped: dropping privileges needs root, and these tests run as uid {}",
            nix::unistd::Uid::effective()
        );
        return;
    }
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        eprintln!("skipped: no user 'nobody' here");
        return;
    };
    let config = temp_config("user = \"nobody\"");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let ids = |key: &str| -> Vec<u32> {
        let line = status.lines().find(|l| l.starts_with(key)).expect("status line");
        line.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect()
    };
    assert!(ids("Uid:").iter().all(|&u| u == nobody.uid.as_raw()), "{status}");
    assert!(ids("Gid:").iter().all(|&g| g == nobody.gid.as_raw()), "{status}");
    // Still serving, on the socket bound before the switch.
    let reply = decode(&udp_query(&server, &QueryBuilder::new("www.example.com.", "A").build()));
    assert_eq!(reply.rcode, "NOERROR");
    assert_eq!(server.stop().code, Some(0));
}

/// Writes a parent zone with no NS records for its hosted child (and
/// `extra` lines), and the child, in folder `tag`; returns their `--zone`
/// arguments.
fn undelegated_child(tag: &str, extra: &str) -> [String; 2] {
    let dir = std::env::temp_dir().join(format!("lbdns-undelegated-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let parent = dir.join("parent.zone");
    std::fs::write(
        &parent,
        format!("$TTL 300\n@ SOA ns1 hm 1 2 3 4 60\n  NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n{extra}"),
    )
    .unwrap();
    let child = dir.join("child.zone");
    std::fs::write(
        &child,
        "$TTL 300\n@ SOA ns1 hm 7 2 3 4 60\n  NS ns1\n  A 192.0.2.9\nns1 A 192.0.2.3\n",
    )
    .unwrap();
    [
        format!("example.org.={}", parent.display()),
        format!("child.example.org.={}", child.display()),
    ]
}

/// A hosted child its parent does not delegate to: `check` warns, and DS
/// at its apex is still the parent's to answer (RFC 4035 §3.1.4.1):
/// NODATA with the parent's SOA, as NSD answers, not the child's NODATA
/// (nor NXDOMAIN, which would deny the child, RFC 8020).
#[test]
fn an_undelegated_child_warns_and_ds_at_its_apex_is_the_parents() {
    let [parent, child] = undelegated_child("plain", "");
    let out = Command::new(env!("CARGO_BIN_EXE_lbdns"))
        .args(["check", "--zone", &parent, "--zone", &child])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "child.zone:2: warning: zone child.example.org. is served here, but example.org. has no NS \
             records for it"
        ),
        "{stderr}"
    );
    let reply = ds_at_undelegated_child(&parent, &child);
    assert!(reply.answer.is_empty(), "{reply:?}");
}

/// DS at the apex of the undelegated child, from a server that serves
/// both zones: NOERROR with the parent's SOA (the caller checks the
/// answer). A there is the child's.
fn ds_at_undelegated_child(parent: &str, child: &str) -> Reply {
    let server = Server::start(&["--zone", parent, "--zone", child]);
    let ask = |rtype| {
        decode(&udp_query(
            &server,
            &QueryBuilder::new("child.example.org.", rtype).build(),
        ))
    };
    let reply = ask("A");
    assert_eq!(reply.answer, ["child.example.org. 300 IN A 192.0.2.9"], "{reply:?}");
    let reply = ask("DS");
    assert_eq!(reply.rcode, "NOERROR", "{reply:?}");
    assert_eq!(reply.authority.len(), 1, "{reply:?}");
    assert!(reply.authority[0].starts_with("example.org. 60 IN SOA"), "{reply:?}");
    reply
}

/// DS at the apex of an undelegated child where the parent has a CNAME:
/// the parent's chain, then its NODATA, as NSD and Knot answer; the
/// other types are the child's.
#[test]
fn ds_at_an_undelegated_child_follows_the_parents_cname() {
    let [parent, child] = undelegated_child("cname", "child CNAME www\n");
    let reply = ds_at_undelegated_child(&parent, &child);
    assert_eq!(
        reply.answer,
        ["child.example.org. 300 IN CNAME www.example.org."],
        "{reply:?}"
    );
}

/// `udp_dont_fragment`: the DF bit of the IPv4 reply as it arrives,
/// read off a raw socket (which needs CAP_NET_RAW: root, as in CI).
#[test]
fn udp_dont_fragment_sets_df_on_replies() {
    use socket2::{Domain, Protocol, Socket, Type};
    let raw = match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)) {
        Ok(raw) => UdpSocket::from(raw),
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("not run: a raw socket needs CAP_NET_RAW ({err})");
            return;
        }
        Err(err) => panic!("raw socket: {err}"),
    };
    raw.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    for (setting, want_df) in [("", false), ("udp_dont_fragment = true", true)] {
        let config = temp_config(setting);
        let server = Server::start(&["--config", config.to_str().unwrap()]);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (from, to) = (server.addr.port(), client.local_addr().unwrap().port());
        let query = QueryBuilder::new("www.example.com.", "A").build();
        let (reply, _) = udp_query_from(&client, server.addr, &query).expect("a reply");
        assert_eq!(decode(&reply).rcode, "NOERROR");
        // The raw socket sees every UDP datagram the host receives: find
        // this reply's (a retry resends the query if the copy was missed).
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 2048];
        let flags = 'found: loop {
            assert!(Instant::now() < deadline, "the reply never reached the raw socket");
            while let Ok(len) = raw.recv(&mut buf) {
                let header = usize::from(buf[0] & 0x0F) * 4;
                let Some(udp) = buf[..len].get(header..header + 4) else {
                    continue;
                };
                if u16::from_be_bytes([udp[0], udp[1]]) == from && u16::from_be_bytes([udp[2], udp[3]]) == to {
                    break 'found u16::from_be_bytes([buf[6], buf[7]]);
                }
            }
            udp_query_from(&client, server.addr, &query);
        };
        assert_eq!(flags & 0x4000 != 0, want_df, "DF with {setting:?}");
        assert_eq!(flags & 0x1FFF, 0, "not a fragment");
    }
}
