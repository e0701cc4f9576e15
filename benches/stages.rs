//! Criterion benchmarks of each stage of the answer path, on a hit with
//! three shuffled A records and on a pool name: parse (with `domain`),
//! lookup (the hash index), render (copy, fix up, shuffle or select).
//! The whole of `proto::handle` is in benches/answer.rs.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use lbdns::config::{Config, Overrides};
use lbdns::lb::Picker;
use lbdns::proto::stages;

fn query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&Overrides {
        config: Some(root.join("tests/data/zones/lbdns.toml")),
        ..Overrides::default()
    })
    .expect("test config");
    let (snap, diags) = lbdns::load_snapshot(&config);
    let snap = snap.unwrap_or_else(|| panic!("{diags}"));
    let mut out = Vec::with_capacity(lbdns::proto::MAX_MESSAGE);
    let mut picker = Picker::with_seed(1);
    let mut group = c.benchmark_group("stage");
    for (label, name) in [
        ("hit-3xA", "www.example.com."),
        ("pool", "one.example.com."),
        ("nxdomain", "x.nothere.example.com."),
    ] {
        let q = query(name);
        group.bench_function(format!("parse/{label}"), |b| {
            b.iter(|| black_box(stages::parse(black_box(&q), &mut out)))
        });
        let parsed = stages::parse(&q, &mut out).expect("parses");
        group.bench_function(format!("lookup/{label}"), |b| {
            b.iter(|| black_box(stages::lookup(&snap, black_box(&parsed))))
        });
        let answer = stages::lookup(&snap, &parsed).expect("found");
        group.bench_function(format!("render/{label}"), |b| {
            b.iter(|| black_box(stages::render(&mut out, &snap, answer, &parsed, &mut picker)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
