//! The real `lbdns serve` on a loopback port, queried over UDP and TCP.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use crate::support::{self, QueryBuilder, Server, decode};

fn start() -> Server {
    let zones = support::data_dir().join("zones");
    let parent = format!("example.com.={}", zones.join("example.com.zone").display());
    let child = format!("sub.example.com.={}", zones.join("sub.example.com.zone").display());
    Server::start(&["--zone", &parent, "--zone", &child])
}

fn udp_query(server: &Server, query: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    socket.send_to(query, server.addr).unwrap();
    let mut buf = [0u8; 65535];
    let (len, from) = socket.recv_from(&mut buf).expect("udp reply");
    assert_eq!(from, server.addr);
    buf[..len].to_vec()
}

fn tcp_frame(query: &[u8]) -> Vec<u8> {
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    framed
}

fn tcp_read(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("tcp length");
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).expect("tcp reply");
    reply
}

#[test]
fn answers_over_udp_and_tcp() {
    let server = start();
    let reply = decode(&udp_query(&server, &QueryBuilder::new("www.example.com.", "A").build()));
    assert_eq!(reply.rcode, "NOERROR");
    assert_eq!(reply.flags, ["qr", "aa"]);
    assert_eq!(reply.answer.len(), 3);

    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
        .write_all(&tcp_frame(&QueryBuilder::new("host.sub.example.com.", "A").build()))
        .unwrap();
    let reply = decode(&tcp_read(&mut stream));
    assert_eq!(reply.answer, ["host.sub.example.com. 600 IN A 192.0.2.211"]);
}

#[test]
fn truncated_udp_answer_is_complete_over_tcp() {
    let server = start();
    let query = QueryBuilder::new("big.example.com.", "TXT").build();
    let reply = decode(&udp_query(&server, &query));
    assert!(reply.flags.contains(&"tc"), "{reply:?}");
    assert!(reply.answer.is_empty());
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(&tcp_frame(&query)).unwrap();
    let reply = decode(&tcp_read(&mut stream));
    assert!(!reply.flags.contains(&"tc"));
    assert_eq!(reply.answer.len(), 8);
}

#[test]
fn tcp_pipelined_and_split_queries() {
    let server = start();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Three queries in one write, the last one split over two writes.
    let mut bytes = Vec::new();
    for (i, name) in ["www.example.com.", "mail.example.com.", "ns1.example.com."]
        .iter()
        .enumerate()
    {
        let mut q = QueryBuilder::new(name, "A");
        q.id = 100 + i as u16;
        bytes.extend_from_slice(&tcp_frame(&q.build()));
    }
    let split = bytes.len() - 7;
    stream.write_all(&bytes[..split]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(&bytes[split..]).unwrap();
    for i in 0..3 {
        let reply = decode(&tcp_read(&mut stream));
        assert_eq!(reply.id, 100 + i);
        assert_eq!(reply.rcode, "NOERROR");
        assert!(!reply.answer.is_empty());
    }
}

#[test]
fn multi_address_answers_come_in_random_order() {
    let server = start();
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
