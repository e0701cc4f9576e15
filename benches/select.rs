//! Criterion benchmarks of selection: each policy over 8 members (weights 1
//! to 8; sticky-equal: all of weight 1; sticky-repeated: weights 1, 1, 2,
//! 2, 3, 3, 4, 4, which can tie), one answer (random-3-answers and
//! weighted-3-answers: three distinct members), topology
//! over 10,000 prefixes of each family (IPv4 and IPv6 clients), and the
//! whole answer path for a pool name.
//! Run with `scripts/bench-criterion.sh`.

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lbdns::config::pool::{MapConfig, MemberConfig};
use lbdns::config::{AllDownConfig, PolicyKind, PoolConfig};
use lbdns::diag::Diagnostics;
use lbdns::lb::{ClientNet, Live, Picker, Pools, Selection, select};

fn pool(name: &str, policy: PolicyKind, answers: usize) -> PoolConfig {
    PoolConfig {
        name: name.into(),
        names: vec![],
        policy,
        answers,
        ttl: 30,
        ttl_when_degraded: None,
        all_down: AllDownConfig::All,
        sticky_prefix_v4: 24,
        sticky_prefix_v6: 56,
        default: None,
        members: (1..=8)
            .map(|i| MemberConfig {
                address: IpAddr::from([192, 0, 2, i as u8]),
                weight: i,
                tier: 1 + i % 2,
            })
            .collect(),
        check: None,
        map: vec![],
        loc: None,
    }
}

fn bench(c: &mut Criterion) {
    // Clients from many networks, as sticky and topology would see them.
    let clients: Vec<ClientNet> = (0..1024u32)
        .map(|i| ClientNet {
            addr: IpAddr::from((i.wrapping_mul(2_654_435_761)).to_be_bytes()),
            ecs_prefix: None,
        })
        .collect();
    let mut group = c.benchmark_group("select");
    group.throughput(Throughput::Elements(clients.len() as u64));
    for (label, policy, answers) in [
        ("random", PolicyKind::Random, 1),
        ("random-3-answers", PolicyKind::Random, 3),
        ("round-robin", PolicyKind::RoundRobin, 1),
        ("weighted", PolicyKind::Weighted, 1),
        ("weighted-3-answers", PolicyKind::Weighted, 3),
        ("sticky", PolicyKind::Sticky, 1),
        ("sticky-equal", PolicyKind::Sticky, 1),
        ("sticky-repeated", PolicyKind::Sticky, 1),
        ("failover", PolicyKind::Failover, 1),
    ] {
        let mut config = pool("p", policy, answers);
        if label == "sticky-equal" {
            // Every member of weight 1: sticky's unweighted scores.
            config.members.iter_mut().for_each(|m| m.weight = 1);
        }
        if label == "sticky-repeated" {
            config.members.iter_mut().for_each(|m| m.weight = m.weight.div_ceil(2));
        }
        let mut diags = Diagnostics::default();
        let pools = Pools::build(&[config], &mut diags);
        let live = Live::all_up(&pools);
        let mut picker = Picker::with_seed(1);
        let mut sel = Selection::default();
        group.bench_function(format!("{label}/8-members"), |b| {
            b.iter(|| {
                for client in &clients {
                    select(&pools, &live, 0, false, black_box(client), &mut picker, &mut sel);
                    black_box(&sel);
                }
            })
        });
    }
    // Topology over 10,000 IPv4 prefixes (/12 to /28) spread over the
    // space, and 10,000 IPv6 ones (/20 to /48) spread over 2000::/3.
    let mut geo = pool("geo", PolicyKind::Topology, 1);
    geo.members.clear();
    let mut rng = lbdns::lb::Rng::with_seed(7);
    let mut maps: Vec<MapConfig> = vec![
        MapConfig {
            networks: vec![],
            pool: "a".into(),
        },
        MapConfig {
            networks: vec![],
            pool: "b".into(),
        },
    ];
    for i in 0..10_000 {
        let len = 12 + rng.below(17) as u8;
        let addr = (rng.next_u64() as u32) & (u32::MAX << (32 - u32::from(len)));
        maps[i % 2].networks.push((IpAddr::from(addr.to_be_bytes()), len));
    }
    let global_v6 = |rng: &mut lbdns::lb::Rng| 1u128 << 125 | u128::from(rng.next_u64()) << 61;
    for i in 0..10_000 {
        let len = 20 + rng.below(29) as u8;
        let addr = global_v6(&mut rng) & (u128::MAX << (128 - u32::from(len)));
        maps[i % 2].networks.push((IpAddr::from(addr.to_be_bytes()), len));
    }
    let clients_v6: Vec<ClientNet> = (0..1024)
        .map(|_| ClientNet {
            addr: IpAddr::from(global_v6(&mut rng).to_be_bytes()),
            ecs_prefix: None,
        })
        .collect();
    geo.map = maps;
    geo.default = Some("a".into());
    let pools_cfg = [geo, pool("a", PolicyKind::Random, 1), pool("b", PolicyKind::Random, 1)];
    let mut diags = Diagnostics::default();
    let pools = Pools::build(&pools_cfg, &mut diags);
    let live = Live::all_up(&pools);
    let mut picker = Picker::with_seed(2);
    let mut sel = Selection::default();
    for (label, clients) in [
        ("topology/10000-prefixes", &clients),
        ("topology/10000-prefixes-v6", &clients_v6),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| {
                for client in clients {
                    select(&pools, &live, 0, false, black_box(client), &mut picker, &mut sel);
                    black_box(&sel);
                }
            })
        });
    }
    group.finish();

    // The whole answer path for a pool name (the test config's pools).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = lbdns::config::Config::load(&lbdns::config::Overrides {
        config: Some(root.join("tests/data/zones/lbdns.toml")),
        ..Default::default()
    })
    .expect("test config");
    let (snap, diags) = lbdns::load_snapshot(&config);
    let snap = snap.unwrap_or_else(|| panic!("{diags}"));
    let mut query = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["one", "example", "com"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let client = lbdns::proto::Client {
        addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
        transport: lbdns::proto::Transport::Udp,
        now: || 1_800_000_000,
    };
    let mut picker = Picker::with_seed(3);
    let mut out = Vec::with_capacity(lbdns::proto::MAX_MESSAGE);
    let mut group = c.benchmark_group("answer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("handle/pool-name", |b| {
        b.iter(|| {
            black_box(lbdns::proto::handle(
                black_box(&query),
                &client,
                &snap,
                &mut picker,
                &mut out,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
