//! Criterion benchmark of the whole answer path, `proto::handle`, over a
//! realistic mix: mostly hits on multi-address names (shuffled), some
//! NXDOMAIN, some with EDNS, mixed letter case, a CNAME, a wildcard.
//! Run with `scripts/bench-criterion.sh` (HTML report under
//! target/criterion/).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lbdns::config::{Config, Overrides};
use lbdns::lb::Picker;
use lbdns::proto::{self, Client, Transport};

/// Builds a query: `name` in presentation form, EDNS optional.
fn query(id: u16, name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if edns {
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    q
}

/// The mix: 20 queries.
fn mix() -> Vec<Vec<u8>> {
    const A: u16 = 1;
    const AAAA: u16 = 28;
    const MX: u16 = 15;
    let mut out = Vec::new();
    let hits = [
        ("www.example.com.", A, false),
        ("www.example.com.", A, true),
        ("WWW.Example.COM.", A, false),
        ("api.example.com.", A, false),
        ("api.example.com.", A, true),
        ("www.example.com.", AAAA, false),
        ("www.example.com.", AAAA, true),
        ("Api.Example.Com.", A, true),
        ("www.example.com.", A, false),
        ("api.example.com.", A, false),
        ("mail.example.com.", A, false),
        ("example.com.", MX, true),
        ("www.example.com.", A, true),
        ("api.example.com.", A, false),
        ("blog.example.com.", A, false),
        ("img.cdn.example.com.", A, true),
    ];
    for (i, (name, qtype, edns)) in hits.iter().enumerate() {
        out.push(query(i as u16, name, *qtype, *edns));
    }
    out.push(query(100, "nothere.example.com.", A, false));
    out.push(query(101, "x.y.NoThere.example.com.", AAAA, true));
    out.push(query(102, "www.example.com.", MX, false));
    out.push(query(103, "www.example.org.", A, false));
    out
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&Overrides {
        config: Some(root.join("examples/lbdns.toml")),
        ..Overrides::default()
    })
    .expect("example config");
    let (snap, diags) = lbdns::load_snapshot(&config);
    let snap = snap.unwrap_or_else(|| panic!("{diags}"));
    let queries = mix();
    let client = Client {
        addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
        transport: Transport::Udp,
        now: || 1_800_000_000,
    };
    let mut rng = Picker::with_seed(1);
    let mut out = Vec::with_capacity(proto::MAX_MESSAGE);

    let mut group = c.benchmark_group("answer");
    group.throughput(Throughput::Elements(queries.len() as u64));
    group.bench_function("handle/mix", |b| {
        b.iter(|| {
            for q in &queries {
                black_box(proto::handle(black_box(q), &client, &snap, &mut rng, &mut out));
            }
        })
    });
    let hit = &queries[0];
    group.throughput(Throughput::Elements(1));
    group.bench_function("handle/hit-3xA", |b| {
        b.iter(|| black_box(proto::handle(black_box(hit), &client, &snap, &mut rng, &mut out)))
    });
    let nx = &queries[16];
    group.bench_function("handle/nxdomain", |b| {
        b.iter(|| black_box(proto::handle(black_box(nx), &client, &snap, &mut rng, &mut out)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
