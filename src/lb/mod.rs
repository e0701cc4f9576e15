//! Load-balancing selection: pure functions over a pool's live members,
//! the client's network and the worker's [`Picker`] (its xorshift RNG and
//! round-robin positions). No I/O, no clocks, no locks.
//!
//! Policies:
//! - `random`: uniform over the members up.
//! - `round-robin`: each worker rotates through them.
//! - `weighted`: weighted random (an alias table); weight 0 serves only
//!   when no weighted member is up.
//! - `sticky`: weighted rendezvous hashing (HRW) of the client network
//!   (the ECS subnet when given): a member going down or coming back moves
//!   only the clients it loses or gains.
//! - `failover`: the lowest tier with a member up, uniformly.
//! - `topology`: the client network picks another pool by longest prefix.
//!
//! `answers = k` picks up to k distinct members.

mod alias;
pub mod live;
pub mod lpm;
pub mod pool;
mod rng;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

pub use alias::Alias;
pub use live::{FamilyState, Live};
pub use pool::{Pool, Pools, mix64};
pub use rng::{Draws, Rng};

use crate::config::PolicyKind;
use crate::config::pool::MAX_ANSWERS;

/// A worker's selection state: its random generator and its round-robin
/// position per pool.
#[derive(Clone, Debug)]
pub struct Picker {
    pub rng: Rng,
    rotation: Vec<u32>,
    /// The row of selection counters this picker writes (`usize::MAX`:
    /// none).
    pub row: usize,
}

impl Picker {
    pub fn with_seed(seed: u64) -> Picker {
        Picker {
            rng: Rng::with_seed(seed),
            rotation: Vec::new(),
            row: usize::MAX,
        }
    }

    pub fn from_entropy() -> Picker {
        Picker {
            rng: Rng::from_entropy(),
            rotation: Vec::new(),
            row: usize::MAX,
        }
    }

    /// A picker counting its selections in `row`.
    pub fn for_row(row: usize) -> Picker {
        Picker {
            row,
            ..Picker::from_entropy()
        }
    }

    /// The next round-robin position for `pool`.
    fn rotate(&mut self, pool: usize) -> u32 {
        if pool >= self.rotation.len() {
            // Once per pool per worker; the rotation starts at random so
            // that workers do not move in step.
            let start = self.rng.next_u64() as u32;
            self.rotation.resize(pool + 1, start);
        }
        let at = self.rotation[pool];
        self.rotation[pool] = at.wrapping_add(1);
        at
    }
}

/// The network a query comes from: the source address, or the ECS
/// subnet when the query carries one (RFC 7871).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientNet {
    pub addr: IpAddr,
    /// The ECS source prefix length; `None` for the packet's source.
    pub ecs_prefix: Option<u8>,
}

/// The members chosen for one answer.
#[derive(Clone, Copy, Debug)]
pub struct Selection {
    /// The pool whose members were chosen (a topology or fallback target).
    pub pool: u32,
    pub members: [u16; MAX_ANSWERS],
    pub count: usize,
    /// The ECS scope prefix length that decided the answer.
    pub scope: u8,
    pub ttl: u32,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            pool: 0,
            members: [0; MAX_ANSWERS],
            count: 0,
            scope: 0,
            ttl: 0,
        }
    }
}

/// The client network as a sticky key: the address masked to the sticky
/// prefix (or the ECS source prefix, if shorter). Returns (key, prefix).
fn sticky_key(client: &ClientNet, prefix: [u8; 2]) -> (u64, u8) {
    match client.addr {
        IpAddr::V4(a) => {
            let len = prefix[0].min(client.ecs_prefix.unwrap_or(32));
            // Shifted as u64, by 0 to 32, so that /0 needs no test.
            let masked = u32::from(a) & (u64::from(u32::MAX) << (32 - len)) as u32;
            (mix64(u64::from(masked) ^ u64::from(len) << 40 ^ 4 << 56), prefix[0])
        }
        IpAddr::V6(a) => {
            let len = prefix[1].min(client.ecs_prefix.unwrap_or(128));
            let masked = u128::from(a) & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            (
                mix64(mix64(masked as u64) ^ (masked >> 64) as u64 ^ u64::from(len) << 40 ^ 6 << 56),
                prefix[1],
            )
        }
    }
}

/// The first step of sticky's per-member hash, done ahead to the client
/// key and to each member's seed.
pub(crate) fn premix(v: u64) -> u64 {
    v ^ (v >> 31)
}

/// Bits of the hash that pick a rendezvous bucket.
const SCORE_BITS: u32 = 12;

/// Fixed-point units per natural-log unit in weighted sticky scores.
const LOG_SCALE: f64 = (1u64 << 24) as f64;

/// `-ln(-ln u)` for u at the middle of each of 2^12 buckets of (0, 1), in
/// fixed point (`LOG_SCALE`; 16 KiB, computed once).
///
/// Weighted rendezvous scores are `w / -ln(u)` (Resch). Their logarithm,
/// `ln w - ln(-ln u)`, orders members the same, and in fixed point it is
/// a table entry plus a per-member constant (`rendezvous_bias`): an
/// integer add where the product was a float multiply and a move back to
/// an integer register. The range fits in 32 bits: `ln w` is at most 22.2
/// (u32 weights) and `-ln(-ln u)` is within (-2.2, 9.1), so a score is
/// within ±2^31 units. Entries already shifted into the high half, as
/// i64, were 5 to 9 % faster than shifting each (`sticky` and
/// `sticky-repeated` in `scripts/bench-ab.sh`, Intel Xeon), but take 32
/// KiB, all of an AMD core's L1 data cache.
fn neg_ln_neg_ln() -> &'static [i32; 1 << SCORE_BITS] {
    static TABLE: std::sync::OnceLock<Box<[i32; 1 << SCORE_BITS]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Box::new([0i32; 1 << SCORE_BITS]);
        for (i, slot) in table.iter_mut().enumerate() {
            let u = (i as f64 + 0.5) / f64::from(1u32 << SCORE_BITS);
            *slot = (-(-u.ln()).ln() * LOG_SCALE).round() as i32;
        }
        table
    })
}

/// A weighted sticky member's part of its score: `ln w` in fixed point in
/// the high 32 bits, and its index in the low 16, so that one maximum
/// finds both the best score and who has it.
pub(crate) fn rendezvous_bias(weight: u32, index: usize) -> i64 {
    let log = (f64::from(weight.max(1)).ln() * LOG_SCALE).round() as i64;
    log << 32 | (index as i64 & 0xFFFF)
}

/// A weighted sticky score: the bucket's entry, from the top bits of the
/// member's product `x`, over the member's bias.
#[inline(always)]
fn log_score(table: &[i32; 1 << SCORE_BITS], x: u64, bias: i64) -> i64 {
    (i64::from(table[(x >> (64 - SCORE_BITS)) as usize]) << 32) + bias
}

/// Sticky's per-member hash from its product `x`: the second half of
/// SplitMix64's finalizer, which mixes the high bits into the low ones
/// (the top bits stay as they are).
#[inline(always)]
fn sticky_hash(x: u64) -> u64 {
    x ^ (x >> 29)
}

/// The index of the highest of `score(i)` for i in 0..n, compared without
/// their lowest 16 bits, and the last of equals (as sticky has always
/// chosen its one answer: a test pins the choices).
///
/// The best score and its index are kept apart, each a conditional move.
/// Packed into one u64 maximum, the equal-weights loop was vectorized with
/// SSE2's emulated 64-bit multiplies: `sticky-equal/8-members` took 24.8
/// ns a draw that way and takes 17.4 ns this way (`scripts/bench-ab.sh`,
/// Intel Xeon).
#[inline(always)]
fn last_max(n: usize, score: impl Fn(usize) -> u64) -> usize {
    let (mut best, mut at) = (0, 0);
    for i in 0..n {
        let s = score(i) & !0xFFFF;
        let higher = s >= best;
        best = if higher { s } else { best };
        at = if higher { i } else { at };
    }
    at
}

/// The one weighted sticky member among several of the best score (of
/// one weight, in one bucket: two such members share a bucket for one
/// client in 4,096): bits 16 to 31 of the hash decide, then the last
/// index, as they did when scores were f32 products.
#[cold]
#[inline(never)]
fn sticky_tie(table: &[i32; 1 << SCORE_BITS], seeds: &[u64], biases: &[i64], product: impl Fn(u64) -> u64) -> usize {
    let mut best = i64::MIN;
    for (&seed, &bias) in seeds.iter().zip(biases) {
        let x = product(seed);
        best = best.max(log_score(table, x, bias) + (sticky_hash(x) & 0xFFFF_0000) as i64);
    }
    (best & 0xFFFF) as usize
}

/// The `k` candidates of highest `score(i)`, best first, into `out`
/// (kept sorted by insertion: k is small); of equals, the earlier first.
#[inline(always)]
fn top_k(candidates: &[u16], k: usize, score: impl Fn(usize) -> u64, out: &mut Selection) {
    let mut scores = [0u64; MAX_ANSWERS];
    let mut count = 0;
    for (i, &m) in candidates.iter().enumerate() {
        let score = score(i);
        if count == k && (score <= scores[k - 1]) {
            continue;
        }
        let mut at = count.min(k - 1);
        while at > 0 && scores[at - 1] < score {
            scores[at] = scores[at - 1];
            out.members[at] = out.members[at - 1];
            at -= 1;
        }
        scores[at] = score;
        out.members[at] = m;
        count = (count + 1).min(k);
    }
    out.count = count;
}

/// Picks up to `k` distinct entries of `candidates` uniformly.
fn pick_uniform(candidates: &[u16], k: usize, rng: &mut Rng, out: &mut Selection) {
    let n = candidates.len();
    if k >= n {
        out.members[..n].copy_from_slice(candidates);
        out.count = n;
        // Random order, like a shuffled RRset, with its batched draws.
        let mut draws = Draws::new(rng);
        for i in (1..n).rev() {
            let j = draws.below(i + 1, rng);
            out.members.swap(i, j);
        }
        return;
    }
    if k == 1 {
        out.members[0] = candidates[rng.below(n as u32) as usize];
        out.count = 1;
        return;
    }
    // Draws with rejection of repeats, several from one random word.
    let mut draws = Draws::new(rng);
    let mut count = 0;
    while count < k {
        let m = candidates[draws.below(n, rng)];
        if !chosen(&out.members[..count], m) {
            out.members[count] = m;
            count += 1;
        }
    }
    out.count = count;
}

/// Whether `m` is among the members chosen so far (at most
/// `MAX_ANSWERS`). Written out: `contains` went through an out-of-line
/// call for every draw.
#[inline(always)]
#[allow(clippy::manual_contains)]
fn chosen(so_far: &[u16], m: u16) -> bool {
    so_far.iter().any(|&x| x == m)
}

/// The pool a topology pool sends `client` to (`None`: none, NODATA),
/// setting the scope that decided it.
#[inline(always)]
fn topology_target(topology: &pool::Topology, client: &ClientNet, out: &mut Selection) -> Option<usize> {
    match topology.lpm.lookup(client.addr) {
        Ok(m) => {
            out.scope = m.scope;
            Some(m.value as usize)
        }
        Err(scope) => {
            out.scope = scope;
            topology.default.map(|d| d as usize)
        }
    }
}

/// The pool that answers for `pool` when its family does not serve from
/// its own members: a topology pool's target, an all-down fallback, or a
/// fallback that is itself a topology pool (which chooses again). `None`:
/// NODATA. Fallbacks to topology pools are followed for at most as many
/// hops as there are pools, so a loop of them ends in NODATA instead of
/// recursing for ever. Out of line, so that the usual draw (a family that
/// serves) does not carry its code.
#[inline(never)]
fn route(pools: &Pools, live: &Live, pool: usize, v6: bool, client: &ClientNet, out: &mut Selection) -> Option<usize> {
    let state = |p: usize| live.pools[p].families[usize::from(v6)].state;
    let mut p = pool;
    let mut hops = 0;
    loop {
        if state(p) == FamilyState::Topology {
            let topology = pools.pools[p].topology.as_ref()?;
            p = topology_target(topology, client, out)?;
        }
        match state(p) {
            FamilyState::Serving => return Some(p),
            FamilyState::Fallback(q) if state(q as usize) == FamilyState::Topology && hops < live.pools.len() => {
                // A topology pool as the fallback: its own choice.
                p = q as usize;
                hops += 1;
            }
            FamilyState::Fallback(q) => return (state(q as usize) == FamilyState::Serving).then_some(q as usize),
            _ => return None,
        }
    }
}

/// Chooses the members to answer with for pool `pool` and the family
/// (`v6`), writing them to `out`. `out.count == 0` means NODATA.
pub fn select(
    pools: &Pools,
    live: &Live,
    pool: usize,
    v6: bool,
    client: &ClientNet,
    picker: &mut Picker,
    out: &mut Selection,
) {
    out.count = 0;
    out.scope = 0;
    let mut p = pool;
    // The usual case reads this family and nothing else of the pool.
    let mut family = &live.pools[p].families[usize::from(v6)];
    if family.state != FamilyState::Serving {
        match route(pools, live, p, v6, client, out) {
            Some(q) => {
                p = q;
                family = &live.pools[p].families[usize::from(v6)];
            }
            None => return,
        }
    }
    let k = family.k;
    if k == 0 {
        return;
    }
    out.pool = p as u32;
    out.ttl = family.ttl;
    let candidates = &family.candidates[..];
    let n = candidates.len();
    let rng = &mut picker.rng;
    match family.policy {
        PolicyKind::Random | PolicyKind::Failover | PolicyKind::Topology => pick_uniform(candidates, k, rng, out),
        PolicyKind::RoundRobin => {
            let start = picker.rotate(p) as usize;
            for i in 0..k {
                out.members[i] = candidates[(start + i) % n];
            }
            out.count = k;
        }
        PolicyKind::Weighted => {
            let mut count = 0;
            let mut tries = 0;
            while count < k && tries < 8 * k {
                let m = candidates[family.alias.sample(rng)];
                tries += 1;
                if !chosen(&out.members[..count], m) {
                    out.members[count] = m;
                    count += 1;
                }
            }
            // Unlucky draws: fill in member order.
            for &m in candidates {
                if count == k {
                    break;
                }
                if !chosen(&out.members[..count], m) {
                    out.members[count] = m;
                    count += 1;
                }
            }
            out.count = count;
        }
        PolicyKind::Sticky => {
            let (key, scope) = sticky_key(client, family.sticky_prefix);
            out.scope = out.scope.max(scope);
            // key and seeds are already well mixed: one multiply and
            // xor-shift (half of SplitMix64's finalizer) suffices. Its
            // first step, v ^ v >> 31 with v = key ^ seed, is done to the
            // key here and to the seeds when the live view is built (the
            // shift distributes over the xor), which leaves one xor per
            // member.
            let key = premix(key);
            let seeds = &family.seeds[..n];
            let product = |seed: u64| (key ^ seed).wrapping_mul(0x94D0_49BB_1331_11EB);
            // The usual case is one answer, the single best member. Its
            // loops are written out, on slices of one length, so that they
            // have no bounds check and no test of the weights per member
            // (seen in the assembly).
            if family.equal_weights {
                // Equal weights compare the hashes themselves.
                let hash = |i: usize| sticky_hash(product(seeds[i]));
                if k == 1 {
                    out.members[0] = candidates[last_max(n, hash)];
                    out.count = 1;
                } else {
                    top_k(candidates, k, hash, out);
                }
                return;
            }
            // Otherwise a score is the bucket's -ln(-ln u) plus the
            // member's ln w, in fixed point over its index (see
            // `rendezvous_bias`). The bucket is the product's top bits,
            // which are also the hash's (the xor-shift leaves them be).
            let table = neg_ln_neg_ln();
            let biases = &family.biases[..n];
            let score = |seed: u64, bias: i64| log_score(table, product(seed), bias);
            if k == 1 {
                let index = if family.repeated_weights {
                    // The highest score, of equals the last and (with the
                    // index's bits turned over) the first: they differ
                    // only where members of one weight share the best
                    // bucket.
                    let (mut last, mut first) = (i64::MIN, i64::MIN);
                    for (&seed, &bias) in seeds.iter().zip(biases) {
                        let score = score(seed, bias);
                        last = last.max(score);
                        first = first.max(score ^ 0xFFFF);
                    }
                    let index = (last & 0xFFFF) as usize;
                    if index == (!first & 0xFFFF) as usize {
                        index
                    } else {
                        sticky_tie(table, seeds, biases, product)
                    }
                } else {
                    // Members of different weights tie only by rounding,
                    // as rarely as the f32 products did.
                    let mut best = i64::MIN;
                    for (&seed, &bias) in seeds.iter().zip(biases) {
                        best = best.max(score(seed, bias));
                    }
                    (best & 0xFFFF) as usize
                };
                out.members[0] = candidates[index];
                out.count = 1;
            } else {
                // Ties between equal scores go to the hash's low 32 bits,
                // then to the earlier member.
                top_k(
                    candidates,
                    k,
                    |i| {
                        let x = product(seeds[i]);
                        let high = (log_score(table, x, biases[i]) as u64 ^ 1 << 63) & !0xFFFF_FFFF;
                        high | (sticky_hash(x) & 0xFFFF_FFFF)
                    },
                    out,
                );
            }
        }
    }
}
