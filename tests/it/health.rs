//! Pools through the real server, with real backends started here on
//! 127.0.0.x ports: health checks take members out and bring them back,
//! all-down behaviours, the admin override, and policies seen over UDP.
//!
//! Each test uses its own 127.0.0.x addresses so that tests can run at the
//! same time. Waits poll with a deadline; nothing asserts on timing.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{self, QueryBuilder, Server, decode};

/// A config with the test zones and `pools` (TOML) appended.
fn config_with(pools: &str) -> std::path::PathBuf {
    let path = support::temp_config("");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(pools);
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &std::path::Path) -> Server {
    Server::start(&["--config", config.to_str().unwrap()])
}

/// The addresses in the answer to `name` A (or AAAA), and the reply.
fn addresses(server: &Server, query: &[u8]) -> (BTreeSet<String>, support::Reply) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    socket.send_to(query, server.addr).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).unwrap();
    let reply = decode(&buf[..len]);
    let set = reply
        .answer
        .iter()
        .filter(|r| r.contains(" IN A ") || r.contains(" IN AAAA "))
        .map(|r| r.rsplit(' ').next().unwrap().to_string())
        .collect();
    (set, reply)
}

fn a(server: &Server, name: &str) -> BTreeSet<String> {
    addresses(server, &QueryBuilder::new(name, "A").build()).0
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Polls `check` until it holds or 10 s pass.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("never happened: {what}");
}

/// A TCP backend accepting (and closing) connections until dropped.
struct TcpBackend {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl TcpBackend {
    fn start(addr: SocketAddr) -> TcpBackend {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => drop(stream),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TcpBackend {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for TcpBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A free port on `ip` (bound and released).
fn free_port(ip: [u8; 4]) -> u16 {
    TcpListener::bind(SocketAddr::from((ip, 0)))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tcp_checks_take_members_out_and_back() {
    let port = free_port([127, 0, 0, 11]);
    let addr = |last: u8| SocketAddr::from(([127, 0, 0, last], port));
    let _b1 = TcpBackend::start(addr(11));
    let mut b2 = Some(TcpBackend::start(addr(12)));
    let _b3 = TcpBackend::start(addr(13));
    let config = config_with(&format!(
        r#"
[[pool]]
name = "hc"
names = ["hc.example.com."]
answers = 3
members = [{{ address = "127.0.0.11" }}, {{ address = "127.0.0.12" }}, {{ address = "127.0.0.13" }}]
[pool.check]
kind = "tcp"
port = {port}
interval = "100ms"
timeout = "300ms"
rise = 2
fall = 2
"#
    ));
    let server = start(&config);
    let all = set(&["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    assert_eq!(
        a(&server, "hc.example.com."),
        all,
        "initial = up: served from the start"
    );
    drop(b2.take());
    eventually("127.0.0.12 leaves the answers", || {
        a(&server, "hc.example.com.") == set(&["127.0.0.11", "127.0.0.13"])
    });
    b2 = Some(TcpBackend::start(addr(12)));
    eventually("127.0.0.12 comes back", || a(&server, "hc.example.com.") == all);
    let log = server.stop().log.join("\n");
    assert!(
        log.contains("health: hc 127.0.0.12 is down: 2 checks in a row failed"),
        "{log}"
    );
    assert!(
        log.contains("health: hc 127.0.0.12 is up: 2 checks in a row passed"),
        "{log}"
    );
    drop(b2);
}

/// A tiny HTTP server: `/health` answers with the status line `status`
/// (e.g. "HTTP/1.1 200 OK") and `body`; with `hang`, it accepts and never
/// answers.
fn http_backend(addr: SocketAddr, status: &'static str, body: &'static str, hang: bool) -> thread::JoinHandle<()> {
    let listener = TcpListener::bind(addr).unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if hang {
                held.push(stream); // never read, never answer
                continue;
            }
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let reply = format!(
                "{status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    })
}

#[test]
fn http_checks_status_body_and_hanging_backends() {
    let port = free_port([127, 0, 0, 21]);
    let addr = |last: u8| SocketAddr::from(([127, 0, 0, last], port));
    http_backend(addr(21), "HTTP/1.1 200 OK", "all ok", false);
    http_backend(addr(22), "HTTP/1.1 503 Service Unavailable", "all ok", false);
    http_backend(addr(23), "HTTP/1.1 200 OK", "failing", false);
    http_backend(addr(24), "HTTP/1.1 200 OK", "all ok", true);
    // A streaming (ICY) server's "200" is not an HTTP status.
    http_backend(addr(25), "ICY 200 OK", "all ok", false);
    let config = config_with(&format!(
        r#"
[[pool]]
name = "http"
names = ["http.example.com."]
answers = 4
members = [{{ address = "127.0.0.21" }}, {{ address = "127.0.0.22" }}, {{ address = "127.0.0.23" }}, {{ address = "127.0.0.24" }}, {{ address = "127.0.0.25" }}]
[pool.check]
kind = "http"
port = {port}
path = "/health"
expect = [200]
body = "ok"
host = "www.example.com"
interval = "100ms"
timeout = "300ms"
rise = 1
fall = 2
"#
    ));
    only_member_stays(
        start(&config),
        "http.example.com.",
        "127.0.0.21",
        &[
            ("http 127.0.0.22 is down", "HTTP status 503"),
            ("127.0.0.23 is down", "body lacks"),
            ("127.0.0.24 is down", "no result within"),
            ("127.0.0.25 is down", "not an HTTP response"),
        ],
    );
}

/// Polls `name` until `member` alone answers (10 s at most), stops the
/// server, and checks that its log holds both texts of each pair: a member
/// going down, and the reason.
fn only_member_stays(server: Server, name: &str, member: &str, downs: &[(&str, &str)]) {
    let mut last = BTreeSet::new();
    let alone = (0..200).any(|_| {
        last = a(&server, name);
        thread::sleep(Duration::from_millis(50));
        last == set(&[member])
    });
    let log = server.stop().log.join("\n");
    assert!(alone, "only {member} should stay; got {last:?}\n{log}");
    for (down, reason) in downs {
        assert!(log.contains(down) && log.contains(reason), "{down}: {reason}\n{log}");
    }
}

/// How a test DNS backend answers.
#[derive(Clone, Copy)]
enum DnsBackend {
    /// One A record for the question asked (the name in its own case
    /// changed, which a check must accept).
    Answers,
    /// The query sent back as it came, claiming an answer: QR stays 0.
    Reflects,
    /// A response with an answer, but for another name.
    OtherQuestion,
}

fn dns_backend(addr: SocketAddr, kind: DnsBackend) {
    let socket = UdpSocket::bind(addr).unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            if len < 13 {
                continue;
            }
            let mut reply = buf[..len].to_vec();
            match kind {
                DnsBackend::Answers => {
                    reply[2] |= 0x80;
                    reply[13..len - 4].make_ascii_uppercase();
                }
                DnsBackend::Reflects => {}
                DnsBackend::OtherQuestion => {
                    reply[2] |= 0x80;
                    reply[13] ^= 0x01;
                }
            }
            reply[6..8].copy_from_slice(&1u16.to_be_bytes());
            reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
            let _ = socket.send_to(&reply, from);
        }
    });
}

#[test]
fn dns_checks() {
    let port = free_port([127, 0, 0, 31]);
    let addr = |last: u8| SocketAddr::from(([127, 0, 0, last], port));
    dns_backend(addr(31), DnsBackend::Answers);
    // 127.0.0.32 stays silent.
    dns_backend(addr(33), DnsBackend::Reflects);
    dns_backend(addr(34), DnsBackend::OtherQuestion);
    let config = config_with(&format!(
        r#"
[[pool]]
name = "dns"
names = ["dns.example.com."]
answers = 4
members = [{{ address = "127.0.0.31" }}, {{ address = "127.0.0.32" }}, {{ address = "127.0.0.33" }}, {{ address = "127.0.0.34" }}]
[pool.check]
kind = "dns"
name = "health.example."
port = {port}
interval = "100ms"
timeout = "300ms"
rise = 1
fall = 1
"#
    ));
    only_member_stays(
        start(&config),
        "dns.example.com.",
        "127.0.0.31",
        &[
            ("127.0.0.32 is down", "no result within"),
            ("127.0.0.33 is down", "not a DNS response (QR is 0)"),
            ("127.0.0.34 is down", "not for the question health.example."),
        ],
    );
}

#[test]
fn all_down_behaviours_and_degraded_ttl() {
    // Nothing listens on these ports: every check fails.
    let port = free_port([127, 0, 0, 41]);
    let config = config_with(&format!(
        r#"
[[pool]]
name = "none"
names = ["none.example.com."]
all_down = "none"
members = [{{ address = "127.0.0.41" }}]
[pool.check]
kind = "tcp"
port = {port}
interval = "100ms"
fall = 1

[[pool]]
name = "other"
names = ["other.example.com."]
all_down = "spare"
members = [{{ address = "127.0.0.42" }}]
[pool.check]
kind = "tcp"
port = {port}
interval = "100ms"
fall = 1

[[pool]]
name = "open"
names = ["open.example.com."]
answers = 2
ttl = 60
ttl_when_degraded = 5
members = [{{ address = "127.0.0.43" }}, {{ address = "127.0.0.44" }}]
[pool.check]
kind = "tcp"
port = {port}
interval = "100ms"
fall = 1

[[pool]]
name = "spare"
names = []
members = [{{ address = "127.0.0.49" }}]
"#
    ));
    let server = start(&config);
    eventually("none: NODATA with the SOA", || {
        let (set, reply) = addresses(&server, &QueryBuilder::new("none.example.com.", "A").build());
        set.is_empty() && reply.rcode == "NOERROR" && reply.authority.iter().any(|r| r.contains(" SOA "))
    });
    eventually("another pool answers", || {
        a(&server, "other.example.com.") == set(&["127.0.0.49"])
    });
    eventually("all: every member, at the degraded TTL", || {
        let (set, reply) = addresses(&server, &QueryBuilder::new("open.example.com.", "A").build());
        set.len() == 2 && reply.answer.iter().all(|r| r.contains(" 5 IN A "))
    });
}

#[test]
fn admin_state_drains_a_member() {
    let dir = support::temp_config("").parent().unwrap().to_path_buf();
    let admin = dir.join("admin-state");
    std::fs::write(&admin, "# nothing drained\n").unwrap();
    let config = config_with(
        r#"
[[pool]]
name = "drain"
names = ["drain.example.com."]
answers = 3
members = [{ address = "127.0.0.51" }, { address = "127.0.0.52" }, { address = "127.0.0.53" }]
"#,
    );
    // admin_state belongs in [server]: put it there.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "[server]\n",
        &format!("[server]\nadmin_state = \"{}\"\n", admin.display()),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let server = start(&config);
    let all = set(&["127.0.0.51", "127.0.0.52", "127.0.0.53"]);
    assert_eq!(a(&server, "drain.example.com."), all);
    // Modification times have a coarse granularity: make sure it changes.
    thread::sleep(Duration::from_millis(1100));
    std::fs::write(&admin, "127.0.0.52 down\n").unwrap();
    eventually("127.0.0.52 drained", || {
        a(&server, "drain.example.com.") == set(&["127.0.0.51", "127.0.0.53"])
    });
    thread::sleep(Duration::from_millis(1100));
    std::fs::write(&admin, "").unwrap();
    eventually("127.0.0.52 back", || a(&server, "drain.example.com.") == all);
}

#[test]
fn policies_over_udp() {
    let config = config_with(
        r#"
[[pool]]
name = "rr"
names = ["rr.example.com."]
policy = "round-robin"
members = [{ address = "192.0.2.61" }, { address = "192.0.2.62" }, { address = "192.0.2.63" }]

[[pool]]
name = "sticky"
names = ["sticky.example.com."]
policy = "sticky"
members = [{ address = "192.0.2.71" }, { address = "192.0.2.72" }, { address = "192.0.2.73" }, { address = "192.0.2.74" }]

[[pool]]
name = "fo"
names = ["fo.example.com."]
policy = "failover"
members = [{ address = "192.0.2.81", tier = 2 }, { address = "192.0.2.82", tier = 1 }]
"#,
    );
    let server = Server::start(&["--config", config.to_str().unwrap(), "--workers", "1"]);
    // Round-robin on one worker: three queries see three members.
    let seen: BTreeSet<String> = (0..3).flat_map(|_| a(&server, "rr.example.com.")).collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    // Sticky: one client network keeps its member; ECS networks spread.
    let first = a(&server, "sticky.example.com.");
    for _ in 0..20 {
        assert_eq!(a(&server, "sticky.example.com."), first);
    }
    let mut spread = BTreeSet::new();
    for net in 0..64u8 {
        let mut q = QueryBuilder::new("sticky.example.com.", "A").edns(1232);
        q.edns.as_mut().unwrap().3.push((8, vec![0, 1, 24, 0, 10, net, 7]));
        let (set, reply) = addresses(&server, &q.build());
        let (_, _, _, options) = reply.edns.expect("OPT");
        assert!(options[0].starts_with("8:00011818"), "scope 24: {options:?}");
        spread.extend(set);
    }
    assert_eq!(spread.len(), 4, "64 networks reach all 4 members: {spread:?}");
    // Failover: tier 1 first.
    assert_eq!(a(&server, "fo.example.com."), set(&["192.0.2.82"]));
}
