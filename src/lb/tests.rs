//! Selection tests: distributions (chi-squared at p = 0.001 over 10,000+
//! draws with fixed seeds), distinctness, sticky stability, failover,
//! topology and ECS scope.

use std::net::IpAddr;

use super::*;
use crate::config::pool::{MapConfig, MemberConfig};
use crate::config::{AllDownConfig, PoolConfig};
use crate::diag::Diagnostics;

fn member(addr: &str, weight: u32, tier: u32) -> MemberConfig {
    MemberConfig {
        address: addr.parse().unwrap(),
        weight,
        tier,
    }
}

fn pool(name: &str, policy: PolicyKind, answers: usize, members: Vec<MemberConfig>) -> PoolConfig {
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
        members,
        check: None,
        map: vec![],
        loc: None,
    }
}

/// `n` members 192.0.2.1, .2, ... of weight 1 in tier 1.
fn equal_members(n: u8) -> Vec<MemberConfig> {
    (1..=n).map(|i| member(&format!("192.0.2.{i}"), 1, 1)).collect()
}

fn compile(configs: &[PoolConfig]) -> Pools {
    let mut diags = Diagnostics::default();
    let pools = Pools::build(configs, &mut diags);
    assert!(!diags.has_errors(), "{diags}");
    pools
}

fn client(addr: &str) -> ClientNet {
    ClientNet {
        addr: addr.parse().unwrap(),
        ecs_prefix: None,
    }
}

/// Draws `n` single answers; returns counts per member.
fn draw(pools: &Pools, live: &Live, n: usize, seed: u64) -> Vec<u64> {
    let mut picker = Picker::with_seed(seed);
    let mut counts = vec![0u64; pools.pools[0].members.len()];
    let mut sel = Selection::default();
    for i in 0..n {
        let c = ClientNet {
            // A different /24 each time (sticky hashes the network).
            addr: IpAddr::from([10 + (i >> 16) as u8, (i >> 8) as u8, i as u8, 1]),
            ecs_prefix: None,
        };
        select(pools, live, 0, false, &c, &mut picker, &mut sel);
        assert_eq!(sel.count, 1);
        counts[usize::from(sel.members[0])] += 1;
    }
    counts
}

/// Chi-squared critical values at p = 0.001 by degrees of freedom.
fn chi2_critical(df: usize) -> f64 {
    [
        0.0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59,
    ][df]
}

fn assert_fits(counts: &[u64], expected_share: &[f64]) {
    let total: u64 = counts.iter().sum();
    let mut chi2 = 0.0;
    let mut df = 0;
    for (&c, &share) in counts.iter().zip(expected_share) {
        if share == 0.0 {
            assert_eq!(c, 0, "{counts:?}");
            continue;
        }
        let e = share * total as f64;
        chi2 += (c as f64 - e).powi(2) / e;
        df += 1;
    }
    assert!(
        chi2 < chi2_critical(df - 1),
        "chi2 {chi2:.2} over {} df: {counts:?}",
        df - 1
    );
}

#[test]
fn random_is_uniform() {
    let pools = compile(&[pool("p", PolicyKind::Random, 1, equal_members(5))]);
    let counts = draw(&pools, &Live::all_up(&pools), 20_000, 1);
    assert_fits(&counts, &[0.2; 5]);
}

/// Three answers of five members: each of the 10 sets of three, and each
/// member in first place, come out equally often (the draws are batched,
/// several from one random word).
#[test]
fn random_k_of_n_is_uniform() {
    let (mut sets, mut first) = ([0u64; 32], [0u64; 5]);
    random_answers(5, 3, 30_000, 16, |members| {
        sets[members.iter().fold(0, |bits, &m| bits | 1 << m)] += 1;
        first[usize::from(members[0])] += 1;
    });
    let three: Vec<u64> = (0..32usize).filter(|b| b.count_ones() == 3).map(|b| sets[b]).collect();
    assert_eq!(three.iter().sum::<u64>(), 30_000, "only sets of three distinct members");
    assert_fits(&three, &[0.1; 10]);
    assert_fits(&first, &[0.2; 5]);
}

/// Draws `n` answers of `k` members from a random pool of `members` equal
/// members, with a fixed seed, and hands each answer to `each`.
fn random_answers(members: u8, k: usize, n: usize, seed: u64, mut each: impl FnMut(&[u16])) {
    let pools = compile(&[pool("p", PolicyKind::Random, k, equal_members(members))]);
    let live = Live::all_up(&pools);
    let mut picker = Picker::with_seed(seed);
    let mut sel = Selection::default();
    for _ in 0..n {
        select(&pools, &live, 0, false, &client("10.0.0.1"), &mut picker, &mut sel);
        assert_eq!(sel.count, k);
        each(&sel.members[..k]);
    }
}

/// With as many answers as members, every member is sent and every
/// order comes out equally often, as for a shuffled RRset.
#[test]
fn random_with_all_members_shuffles_uniformly() {
    let orders: [[u16; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let mut counts = [0u64; 6];
    random_answers(3, 3, 12_000, 6, |members| {
        let at = orders.iter().position(|o| o[..] == *members);
        counts[at.unwrap_or_else(|| panic!("not an order of the 3: {members:?}"))] += 1;
    });
    assert_fits(&counts, &[1.0 / 6.0; 6]);
}

#[test]
fn weighted_follows_weights_and_zero_is_a_spare() {
    let members = vec![
        member("192.0.2.1", 1, 1),
        member("192.0.2.2", 3, 1),
        member("192.0.2.3", 6, 1),
        member("192.0.2.4", 0, 1),
    ];
    let pools = compile(&[pool("p", PolicyKind::Weighted, 1, members)]);
    let counts = draw(&pools, &Live::all_up(&pools), 20_000, 2);
    assert_fits(&counts, &[0.1, 0.3, 0.6, 0.0]);
    // Only the weight-0 member up: it serves.
    let live = Live::compute(&pools, &[vec![false, false, false, true]]);
    let counts = draw(&pools, &live, 100, 3);
    assert_eq!(counts, vec![0, 0, 0, 100]);
}

#[test]
fn round_robin_rotates() {
    let pools = compile(&[pool("p", PolicyKind::RoundRobin, 1, equal_members(3))]);
    let live = Live::all_up(&pools);
    let mut picker = Picker::with_seed(4);
    let mut sel = Selection::default();
    let mut seen = Vec::new();
    for _ in 0..6 {
        select(&pools, &live, 0, false, &client("10.0.0.1"), &mut picker, &mut sel);
        seen.push(sel.members[0]);
    }
    assert_eq!(seen[..3], seen[3..], "a cycle of 3");
    let mut first: Vec<u16> = seen[..3].to_vec();
    first.sort();
    assert_eq!(first, vec![0, 1, 2]);
    let counts = draw(&pools, &live, 30_000, 5);
    assert_eq!(counts, vec![10_000; 3]);
}

#[test]
fn answers_k_are_distinct() {
    for policy in [
        PolicyKind::Random,
        PolicyKind::RoundRobin,
        PolicyKind::Weighted,
        PolicyKind::Sticky,
        PolicyKind::Failover,
    ] {
        let members = (1..=8).map(|i| member(&format!("192.0.2.{i}"), i, 1)).collect();
        let pools = compile(&[pool("p", policy, 3, members)]);
        let live = Live::all_up(&pools);
        let mut picker = Picker::with_seed(6);
        let mut sel = Selection::default();
        for i in 0..2_000u32 {
            let c = ClientNet {
                addr: IpAddr::from(i.to_be_bytes()),
                ecs_prefix: None,
            };
            select(&pools, &live, 0, false, &c, &mut picker, &mut sel);
            assert_eq!(sel.count, 3, "{policy:?}");
            let mut m = sel.members[..3].to_vec();
            m.sort();
            m.dedup();
            assert_eq!(m.len(), 3, "{policy:?}: {:?}", &sel.members[..3]);
        }
    }
}

#[test]
fn sticky_moves_only_the_clients_of_a_member_that_goes_down() {
    let members = equal_members(10);
    let pools = compile(&[pool("p", PolicyKind::Sticky, 1, members)]);
    let all_up = Live::all_up(&pools);
    let mut down = vec![vec![true; 10]];
    down[0][3] = false;
    let one_down = Live::compute(&pools, &down);
    let mut picker = Picker::with_seed(7);
    let mut sel = Selection::default();
    let mut pick = |live: &Live, net: u32| {
        let c = ClientNet {
            addr: IpAddr::from((net << 8 | 77).to_be_bytes()),
            ecs_prefix: None,
        };
        select(&pools, live, 0, false, &c, &mut picker, &mut sel);
        (sel.members[0], sel.scope)
    };
    let (mut had_it, mut moved_others, mut counts) = (0, 0, [0u32; 10]);
    for net in 0..10_000u32 {
        let (before, scope) = pick(&all_up, net);
        assert_eq!(scope, 24);
        counts[usize::from(before)] += 1;
        let (during, _) = pick(&one_down, net);
        let (after, _) = pick(&all_up, net);
        assert_eq!(after, before, "coming back returns the client");
        if before == 3 {
            had_it += 1;
            assert_ne!(during, 3);
        } else if during != before {
            moved_others += 1;
        }
    }
    assert_eq!(moved_others, 0, "clients of other members stay put");
    assert!((800..1200).contains(&had_it), "about a tenth had member 3: {had_it}");
    let shares: Vec<u64> = counts.iter().map(|&c| u64::from(c)).collect();
    assert_fits(&shares, &[0.1; 10]);
}

#[test]
fn sticky_weights_and_ecs() {
    let members = vec![member("192.0.2.1", 1, 1), member("192.0.2.2", 3, 1)];
    let pools = compile(&[pool("p", PolicyKind::Sticky, 1, members)]);
    let counts = draw(&pools, &Live::all_up(&pools), 20_000, 8);
    assert_fits(&counts, &[0.25, 0.75]);
    // The ECS subnet decides: two hosts of one /24 get the same member.
    let live = Live::all_up(&pools);
    let mut picker = Picker::with_seed(9);
    let mut sel = Selection::default();
    let mut pick = |addr: &str, prefix: Option<u8>| {
        let c = ClientNet {
            addr: addr.parse().unwrap(),
            ecs_prefix: prefix,
        };
        select(&pools, &live, 0, false, &c, &mut picker, &mut sel);
        (sel.members[0], sel.scope)
    };
    for net in 0..200u32 {
        let a = format!("10.{}.{}.1", net >> 8, net & 255);
        let b = format!("10.{}.{}.200", net >> 8, net & 255);
        assert_eq!(pick(&a, Some(24)), pick(&b, Some(24)));
    }
    assert_eq!(pick("2001:db8::1", None).1, 56);
}

#[test]
fn failover_serves_the_lowest_tier_up() {
    let members = vec![
        member("192.0.2.1", 1, 1),
        member("192.0.2.2", 1, 1),
        member("192.0.2.3", 1, 2),
        member("192.0.2.4", 1, 3),
    ];
    let pools = compile(&[pool("p", PolicyKind::Failover, 1, members)]);
    let counts = draw(&pools, &Live::all_up(&pools), 10_000, 10);
    assert_fits(&counts, &[0.5, 0.5, 0.0, 0.0]);
    let live = Live::compute(&pools, &[vec![false, false, true, true]]);
    assert_eq!(draw(&pools, &live, 100, 11), vec![0, 0, 100, 0]);
    let live = Live::compute(&pools, &[vec![false, false, false, true]]);
    assert_eq!(draw(&pools, &live, 100, 12), vec![0, 0, 0, 100]);
}

#[test]
fn topology_by_longest_prefix_with_scope() {
    let eu = pool(
        "eu",
        PolicyKind::Random,
        1,
        vec![member("192.0.2.1", 1, 1), member("2001:db8::1", 1, 1)],
    );
    let us = pool("us", PolicyKind::Random, 1, vec![member("192.0.2.2", 1, 1)]);
    let other = pool("other", PolicyKind::Random, 1, vec![member("192.0.2.3", 1, 1)]);
    let mut geo = pool("geo", PolicyKind::Topology, 1, vec![]);
    geo.map = vec![
        MapConfig {
            networks: vec![("10.0.0.0".parse().unwrap(), 8), ("2001:db8::".parse().unwrap(), 32)],
            pool: "eu".into(),
        },
        MapConfig {
            networks: vec![("10.1.0.0".parse().unwrap(), 16)],
            pool: "us".into(),
        },
    ];
    geo.default = Some("other".into());
    let pools = compile(&[geo, eu, us, other]);
    let live = Live::all_up(&pools);
    let mut picker = Picker::with_seed(13);
    let mut sel = Selection::default();
    let mut pick = |addr: &str, v6: bool| {
        select(&pools, &live, 0, v6, &client(addr), &mut picker, &mut sel);
        (pools.pools[sel.pool as usize].name.clone(), sel.scope, sel.count)
    };
    assert_eq!(pick("10.1.2.3", false), ("us".into(), 16, 1));
    assert_eq!(
        pick("10.2.2.3", false),
        ("eu".into(), 16, 1),
        "the /8 answer depends on /16 bits"
    );
    assert_eq!(pick("192.168.1.1", false), ("other".into(), 16, 1));
    assert_eq!(
        pick("2001:db8:5::1", false),
        ("eu".into(), 32, 1),
        "IPv6 client, A record"
    );
    assert_eq!(pick("2001:db8:5::1", true), ("eu".into(), 32, 1));
}

#[test]
fn all_down_behaviours() {
    let mut none = pool("none", PolicyKind::Random, 1, vec![member("192.0.2.1", 1, 1)]);
    none.all_down = AllDownConfig::None;
    let mut other = pool("other", PolicyKind::Random, 1, vec![member("192.0.2.2", 1, 1)]);
    other.all_down = AllDownConfig::Pool("spare".into());
    let all = pool(
        "all",
        PolicyKind::Random,
        2,
        vec![member("192.0.2.3", 1, 1), member("192.0.2.4", 1, 1)],
    );
    let spare = pool("spare", PolicyKind::Random, 1, vec![member("192.0.2.9", 1, 1)]);
    let pools = compile(&[none, other, all, spare]);
    let live = Live::compute(&pools, &[vec![false], vec![false], vec![false, false], vec![true]]);
    let mut picker = Picker::with_seed(14);
    let mut sel = Selection::default();
    select(&pools, &live, 0, false, &client("10.0.0.1"), &mut picker, &mut sel);
    assert_eq!(sel.count, 0, "none: no address");
    select(&pools, &live, 1, false, &client("10.0.0.1"), &mut picker, &mut sel);
    assert_eq!((sel.count, sel.pool), (1, 3), "another pool");
    select(&pools, &live, 2, false, &client("10.0.0.1"), &mut picker, &mut sel);
    assert_eq!(sel.count, 2, "all: fail open");
    select(&pools, &live, 3, true, &client("10.0.0.1"), &mut picker, &mut sel);
    assert_eq!(sel.count, 0, "no IPv6 member: no AAAA");
}

/// A pool whose members are all down may fall back to a topology pool,
/// which chooses again by the client network; when that choice leads back
/// to the pool that is down, the answer is NODATA (it used to recurse
/// until the stack overflowed).
#[test]
fn fallback_to_a_topology_pool_and_back() {
    let mut eu = pool("eu", PolicyKind::Random, 1, vec![member("192.0.2.1", 1, 1)]);
    eu.all_down = AllDownConfig::Pool("geo".into());
    let us = pool("us", PolicyKind::Random, 1, vec![member("192.0.2.2", 1, 1)]);
    let mut geo = pool("geo", PolicyKind::Topology, 1, vec![]);
    geo.map = vec![
        MapConfig {
            networks: vec![("10.0.0.0".parse().unwrap(), 8)],
            pool: "eu".into(),
        },
        MapConfig {
            networks: vec![("10.1.0.0".parse().unwrap(), 16)],
            pool: "us".into(),
        },
    ];
    let pools_cfg = [geo, eu, us];
    let mut diags = Diagnostics::default();
    let pools = Pools::build(&pools_cfg, &mut diags);
    assert!(!diags.has_errors(), "{diags}");
    let warnings = diags.to_string();
    assert!(
        warnings.contains("pool eu: all_down names topology pool geo, which sends some clients back to eu"),
        "{warnings}"
    );
    // No warning where the topology pool cannot send them back.
    let mut geo_us = pools_cfg[0].clone();
    geo_us.map.remove(0);
    let mut quiet = Diagnostics::default();
    Pools::build(&[geo_us, pools_cfg[1].clone(), pools_cfg[2].clone()], &mut quiet);
    assert!(quiet.items.is_empty(), "{quiet}");
    let mut picker = Picker::with_seed(15);
    let mut sel = Selection::default();
    let live = Live::compute(&pools, &[vec![], vec![false], vec![true]]);
    // eu is down and falls back to geo, which sends 10.1/16 to us.
    select(&pools, &live, 1, false, &client("10.1.2.3"), &mut picker, &mut sel);
    assert_eq!((sel.count, sel.pool, sel.members[0], sel.scope), (1, 2, 0, 16));
    // Through geo itself, the same.
    select(&pools, &live, 0, false, &client("10.1.2.3"), &mut picker, &mut sel);
    assert_eq!((sel.count, sel.pool), (1, 2));
    // geo sends 10.2/16 to eu, which is down and falls back to geo: a loop.
    for p in [0, 1] {
        select(&pools, &live, p, false, &client("10.2.0.1"), &mut picker, &mut sel);
        assert_eq!(sel.count, 0, "pool {p}: NODATA");
    }
    // With eu up, 10.2/16 gets eu.
    let live = Live::all_up(&pools);
    select(&pools, &live, 0, false, &client("10.2.0.1"), &mut picker, &mut sel);
    assert_eq!((sel.count, sel.pool, sel.scope), (1, 1, 16));
}

#[test]
fn degraded_ttl() {
    let mut p = pool(
        "p",
        PolicyKind::Random,
        1,
        vec![member("192.0.2.1", 1, 1), member("192.0.2.2", 1, 1)],
    );
    p.ttl_when_degraded = Some(5);
    let pools = compile(&[p]);
    let mut picker = Picker::with_seed(15);
    let mut sel = Selection::default();
    select(
        &pools,
        &Live::all_up(&pools),
        0,
        false,
        &client("10.0.0.1"),
        &mut picker,
        &mut sel,
    );
    assert_eq!(sel.ttl, 30);
    select(
        &pools,
        &Live::compute(&pools, &[vec![true, false]]),
        0,
        false,
        &client("10.0.0.1"),
        &mut picker,
        &mut sel,
    );
    assert_eq!((sel.ttl, sel.members[0]), (5, 0));
}

/// Which member a client network sticks to is part of the behaviour
/// operators see: it must not change between releases (an upgrade would
/// move every client at once), so a speed-up of the hash must keep it.
/// The digest is of the choices for 4,096 networks of each family, with
/// equal and with unequal weights, one and two answers; it was taken from
/// the code of commit 80704c5.
#[test]
fn sticky_choices_stay_the_same_across_releases() {
    let mut digest = 0u64;
    for weights in [[1, 1, 1, 1, 1], [1, 2, 3, 4, 5]] {
        for answers in [1, 2] {
            let mut members: Vec<_> = (0..5)
                .map(|i| member(&format!("192.0.2.{}", i + 1), weights[i], 1))
                .collect();
            members.extend((0..5).map(|i| member(&format!("2001:db8::{}", i + 1), weights[i], 1)));
            let pools = compile(&[pool("p", PolicyKind::Sticky, answers, members)]);
            let live = Live::all_up(&pools);
            let mut picker = Picker::with_seed(1);
            let mut sel = Selection::default();
            for net in 0..4096u32 {
                let v4 = IpAddr::from((net.wrapping_mul(2_654_435_761)).to_be_bytes());
                let v6 = IpAddr::from((u128::from(net) << 72 | 0x2001_0db8 << 96).to_be_bytes());
                for (addr, v6) in [(v4, false), (v6, true)] {
                    let c = ClientNet { addr, ecs_prefix: None };
                    select(&pools, &live, 0, v6, &c, &mut picker, &mut sel);
                    for &m in &sel.members[..sel.count] {
                        digest = mix64(digest ^ u64::from(m));
                    }
                }
            }
        }
    }
    assert_eq!(digest, 0xfe92_350c_bdba_6147, "sticky choices changed: {digest:#x}");
}

/// Weighted sticky's answers as they were chosen until 7f691ba, by the
/// weight times `1 / -ln u` of the bucket as an f32 product; between
/// equal products, one answer went to bits 16 to 31 of the hash, then to
/// the last index, and several to the hash's low 32 bits, then to the
/// earlier index.
fn f32_product_choices(key: u64, seeds: &[u64], weights: &[u32], k: usize) -> Vec<usize> {
    let scores: Vec<u64> = (seeds.iter().zip(weights))
        .map(|(&seed, &weight)| {
            let x = (key ^ seed).wrapping_mul(0x94D0_49BB_1331_11EB);
            let h = x ^ (x >> 29);
            let u = ((h >> 52) as f64 + 0.5) / 4096.0;
            let product = weight.max(1) as f32 * (1.0 / -u.ln()) as f32;
            u64::from(product.to_bits()) << 32 | (h & 0xFFFF_FFFF)
        })
        .collect();
    if k == 1 {
        let best = (scores.iter().enumerate())
            .map(|(i, &s)| (s & !0xFFFF | i as u64) as i64)
            .max();
        return vec![(best.unwrap() & 0xFFFF) as usize];
    }
    let mut order: Vec<usize> = (0..seeds.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(scores[i]));
    order.truncate(k);
    order
}

/// The fixed-point logarithms that replaced the f32 products (to make
/// weighted sticky a third faster) order members the same: the same
/// ratios, with the same ties broken the same way. An upgrade must not
/// move clients, so this compares the two for one and two answers over
/// 100,000 networks of each family and several weight sets, some with
/// repeated weights (ties) and one with a weight near the u32 limit.
#[test]
fn sticky_log_scores_choose_as_the_f32_products_did() {
    let sets: [&[u32]; 7] = [
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &[1, 1, 2, 2, 3],
        &[1, 1, 1, 1, 2],
        &[10, 20, 30, 40],
        &[1, 1_000_000],
        &[7, 7, 7, 7, 7, 7, 7, 9],
        &[1, 4_000_000_000, 4_000_000_000],
    ];
    for weights in sets {
        for answers in [1, 2] {
            let mut members: Vec<_> = (0..weights.len())
                .map(|i| member(&format!("192.0.2.{}", i + 1), weights[i], 1))
                .collect();
            members.extend((0..weights.len()).map(|i| member(&format!("2001:db8::{}", i + 1), weights[i], 1)));
            let pools = compile(&[pool("p", PolicyKind::Sticky, answers, members)]);
            let live = Live::all_up(&pools);
            let mut picker = Picker::with_seed(1);
            let mut sel = Selection::default();
            for net in 0..100_000u32 {
                let v4 = IpAddr::from((net.wrapping_mul(2_654_435_761) << 8).to_be_bytes());
                let v6 = IpAddr::from((u128::from(net) << 72 | 0x2001_0db8 << 96).to_be_bytes());
                for (addr, v6) in [(v4, false), (v6, true)] {
                    let c = ClientNet { addr, ecs_prefix: None };
                    select(&pools, &live, 0, v6, &c, &mut picker, &mut sel);
                    let family = &live.pools[0].families[usize::from(v6)];
                    let key = premix(sticky_key(&c, family.sticky_prefix).0);
                    let before: Vec<u16> = f32_product_choices(key, &family.seeds, weights, answers)
                        .into_iter()
                        .map(|i| family.candidates[i])
                        .collect();
                    assert_eq!(
                        &sel.members[..sel.count],
                        &before[..],
                        "weights {weights:?}, {answers} answers, client {addr}"
                    );
                }
            }
        }
    }
}
