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
            let masked = u32::from(a) & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
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

/// `1 / -ln(u)` for u at the middle of each of 2^12 buckets of (0, 1):
/// weighted rendezvous scores are `w / -ln(u)` (Resch), so a member's
/// score is its weight times an entry (16 KiB, computed once).
fn inverse_neg_ln() -> &'static [f32; 1 << SCORE_BITS] {
    static TABLE: std::sync::OnceLock<Box<[f32; 1 << SCORE_BITS]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Box::new([0f32; 1 << SCORE_BITS]);
        for (i, slot) in table.iter_mut().enumerate() {
            let u = (i as f64 + 0.5) / f64::from(1u32 << SCORE_BITS);
            *slot = (1.0 / -u.ln()) as f32;
        }
        table
    })
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
            // Top k by rendezvous score, kept sorted (k is small). Equal
            // weights compare the hashes themselves; otherwise the weight
            // scales the bucket's 1/-ln(u), and the hash breaks ties.
            let table = inverse_neg_ln();
            // key and seeds are already well mixed: one multiply and
            // xor-shift (half of SplitMix64's finalizer) suffices. Its
            // first step, v ^ v >> 31 with v = key ^ seed, is done to the
            // key here and to the seeds when the live view is built (the
            // shift distributes over the xor), which leaves one xor per
            // member.
            let key = premix(key);
            let hash = |seed: u64| -> u64 {
                let x = (key ^ seed).wrapping_mul(0x94D0_49BB_1331_11EB);
                x ^ (x >> 29)
            };
            // One u64 per score: positive f32 bits order like the floats,
            // and the low half of the hash breaks ties.
            let weighted = |h: u64, weight: f32| -> u64 {
                let w = weight * table[(h >> (64 - SCORE_BITS)) as usize];
                u64::from(w.to_bits()) << 32 | (h & 0xFFFF_FFFF)
            };
            let score_of = |i: usize| -> u64 {
                let h = hash(family.seeds[i]);
                if family.equal_weights {
                    h
                } else {
                    weighted(h, family.weights[i])
                }
            };
            if k == 1 {
                // The usual case: the single best member. The loops are
                // written out, on slices of one length, so that they have no
                // bounds check and no test of the weights per member (seen
                // in the assembly).
                let seeds = &family.seeds[..n];
                let best = if family.equal_weights {
                    last_max(n, |i| hash(seeds[i]))
                } else {
                    // Here the index replaces the score's lowest 16 bits, so
                    // that one maximum finds both: a little faster than
                    // `last_max` (the float product keeps this loop scalar).
                    // The scores are below 2^63 (a positive f32's bits are
                    // below 2^31), so they compare the same as i64, whose
                    // conditional move is one micro-op on Intel where the
                    // unsigned one (CF and ZF) is two.
                    let mut best = 0i64;
                    for (i, (&seed, &weight)) in seeds.iter().zip(&family.weights[..n]).enumerate() {
                        best = best.max((weighted(hash(seed), weight) & !0xFFFF | i as u64) as i64);
                    }
                    (best & 0xFFFF) as usize
                };
                out.members[0] = candidates[best];
                out.count = 1;
                return;
            }
            let mut scores = [0u64; MAX_ANSWERS];
            let mut count = 0;
            for (i, &m) in candidates.iter().enumerate() {
                let score = score_of(i);
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
    }
}
