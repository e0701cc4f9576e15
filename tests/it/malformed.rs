//! Malformed and random input never panics, and every reply is a valid
//! message (property-style: many generated packets, fixed seeds).

use std::net::SocketAddr;

use lbdns::lb::Picker;
use lbdns::proto::{self, Client, Outcome, Transport};

use crate::support::{self, QueryBuilder, decode};

/// Queries the generator mutates.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (name, qtype) in [
        ("www.example.com.", "A"),
        ("foo.wild.example.com.", "TXT"),
        ("x.deleg.example.com.", "A"),
        ("nothere.example.com.", "MX"),
        ("alias.example.com.", "A"),
        ("big.example.com.", "TXT"),
    ] {
        seeds.push(QueryBuilder::new(name, qtype).build());
        seeds.push(QueryBuilder::new(name, qtype).edns(1232).build());
    }
    seeds
}

fn run(snap: &lbdns::snapshot::Snapshot, packet: &[u8], transport: Transport, rng: &mut Picker, out: &mut Vec<u8>) {
    let client = Client {
        addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
        transport,
        now: || 1_800_000_000,
    };
    match proto::handle(packet, &client, snap, rng, out) {
        Outcome::Drop => assert!(packet.len() < 12 || packet[2] & 0x80 != 0, "dropped {packet:02x?}"),
        Outcome::Reply { .. } => {
            // decode() panics on any malformed reply, pointers included.
            let reply = decode(out);
            assert_eq!(reply.id, u16::from_be_bytes([packet[0], packet[1]]));
            assert!(reply.flags.contains(&"qr"));
            if transport == Transport::Udp {
                assert!(out.len() <= usize::from(proto::OUR_PAYLOAD_SIZE));
            }
        }
    }
}

#[test]
fn mutated_queries_never_panic() {
    let snap = support::test_snapshot();
    let seeds = seeds();
    let mut fuzz = lbdns::lb::Rng::with_seed(0x5eed);
    let mut rng = Picker::with_seed(1);
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    for round in 0..60_000 {
        let mut packet = seeds[fuzz.below(seeds.len() as u32) as usize].clone();
        for _ in 0..=fuzz.below(4) {
            let at = fuzz.below(packet.len() as u32) as usize;
            match fuzz.below(5) {
                0 => packet[at] ^= 1 << fuzz.below(8),
                1 => packet[at] = fuzz.next_u64() as u8,
                2 => packet.truncate(at),
                3 => packet.insert(at, fuzz.next_u64() as u8),
                _ => packet[at] = [0xC0, 0x3F, 0x40, 0xFF, 0x00][fuzz.below(5) as usize],
            }
            if packet.is_empty() {
                break;
            }
        }
        let transport = if round % 5 == 0 { Transport::Tcp } else { Transport::Udp };
        run(&snap, &packet, transport, &mut rng, &mut out);
    }
}

#[test]
fn random_bytes_never_panic() {
    let snap = support::test_snapshot();
    let mut fuzz = lbdns::lb::Rng::with_seed(42);
    let mut rng = Picker::with_seed(2);
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    for _ in 0..60_000 {
        let len = fuzz.below(600) as usize;
        let mut packet: Vec<u8> = (0..len).map(|_| fuzz.next_u64() as u8).collect();
        if packet.len() > 5 && fuzz.below(2) == 0 {
            // Plausible header: a query with one question, odd counts.
            packet[2] &= 0x7F;
            packet[4] = 0;
            packet[5] = 1;
        }
        run(&snap, &packet, Transport::Udp, &mut rng, &mut out);
    }
}

#[test]
fn long_names_and_many_labels() {
    let snap = support::test_snapshot();
    let mut rng = Picker::with_seed(3);
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    // 127 one-letter labels under example.com (253 bytes): legal, and
    // below the wildcard *.wild: the compression fixups move by ~230 bytes.
    let mut long = String::new();
    while long.len() + "wild.example.com.".len() + 2 < 254 {
        long.push_str("a.");
    }
    long.push_str("wild.example.com.");
    let q = QueryBuilder::new(&long, "A").build();
    run(&snap, &q, Transport::Udp, &mut rng, &mut out);
    let reply = decode(&out);
    assert_eq!(reply.answer, [format!("{long} 3600 IN A 192.0.2.100")]);
    // A name over 255 bytes: hand-made, FORMERR.
    let mut packet = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for _ in 0..130 {
        packet.extend_from_slice(&[1, b'a']);
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    run(&snap, &packet, Transport::Udp, &mut rng, &mut out);
    assert_eq!(decode(&out).rcode, "FORMERR");
}

#[test]
fn compressed_question_names_are_formerr_and_mixed_case_is_echoed() {
    let snap = support::test_snapshot();
    let mut rng = Picker::with_seed(4);
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    // www, then a pointer to offset 4 (inside the header): nothing a
    // question name can point to.
    let packet = [
        0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w', 0xC0, 4, 0, 1, 0, 1,
    ];
    run(&snap, &packet, Transport::Udp, &mut rng, &mut out);
    let reply = decode(&out);
    assert_eq!(reply.rcode, "FORMERR");
    assert_eq!(&out[..2], &[0x12, 0x34]);
    assert_eq!(u16::from_be_bytes([out[4], out[5]]), 0, "no question echoed");
    // A name that is only a pointer, to a valid name made of header bytes
    // (ID 0x01 'a', then a zero flags byte: "a."), is compressed too.
    let packet = [1, b'a', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0, 0, 1, 0, 1];
    run(&snap, &packet, Transport::Udp, &mut rng, &mut out);
    assert_eq!(decode(&out).rcode, "FORMERR");
    assert_eq!(u16::from_be_bytes([out[4], out[5]]), 0, "no question echoed");
    // The question is echoed byte for byte, letter case included.
    let q = QueryBuilder::new("WwW.ExAmple.COM.", "A").build();
    run(&snap, &q, Transport::Udp, &mut rng, &mut out);
    let end = 12 + "WwW.ExAmple.COM.".len() + 1 + 4;
    assert_eq!(&out[12..end], &q[12..end]);
    assert_eq!(decode(&out).rcode, "NOERROR");
}

#[test]
fn random_names_get_consistent_answers() {
    // Names below wildcards, delegations and non-existent names use
    // templates whose compression pointers move with the qname length.
    let snap = support::test_snapshot();
    let mut fuzz = lbdns::lb::Rng::with_seed(9);
    let mut rng = Picker::with_seed(4);
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);
    for _ in 0..3000 {
        let labels = 1 + fuzz.below(4);
        let mut prefix = String::new();
        for _ in 0..labels {
            let len = 1 + fuzz.below(20);
            for _ in 0..len {
                prefix.push(char::from(b'a' + fuzz.below(26) as u8));
            }
            prefix.push('.');
        }
        let (suffix, expect) = match fuzz.below(4) {
            0 => ("wild.example.com.", "A 192.0.2.100"),
            1 => ("deleg.example.com.", "NS"),
            2 => ("nowhere.example.com.", "SOA"),
            _ => ("wcname.example.com.", "CNAME www.example.com."),
        };
        let name = format!("{prefix}{suffix}");
        run(
            &snap,
            &QueryBuilder::new(&name, "A").edns(1232).build(),
            Transport::Udp,
            &mut rng,
            &mut out,
        );
        let reply = decode(&out);
        let all: Vec<String> = reply.answer.iter().chain(&reply.authority).cloned().collect();
        assert!(all.iter().any(|r| r.contains(expect)), "{name}: {all:?}");
        for r in &all {
            let owner = r.split_whitespace().next().unwrap().to_ascii_lowercase();
            assert!(owner.ends_with("example.com."), "{name}: {r}");
        }
    }
}
