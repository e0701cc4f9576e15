//! The live view of every pool: which members may be handed out now,
//! computed from member health whenever it changes (off the hot path), so
//! that selection only reads precomputed tables.

use super::alias::Alias;
use super::pool::{AllDown, Pools};
use crate::config::PolicyKind;
use crate::config::pool::MAX_ANSWERS;

/// What a pool does for one address family right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyState {
    /// Pick among `candidates`.
    Serving,
    /// No address to give: NODATA (no member of the family, or every
    /// member down with `all_down = "none"`).
    Empty,
    /// Every member down: answer from that pool.
    Fallback(u32),
    /// A topology pool: the client network picks the pool that answers.
    Topology,
}

/// One family of one pool: everything selection reads for it, so that
/// the usual answer touches this and nothing else of the pool.
#[derive(Clone, Debug)]
pub struct FamilyLive {
    pub state: FamilyState,
    /// The pool's policy.
    pub policy: PolicyKind,
    /// How many members an answer gets: the pool's `answers`, at most the
    /// candidates and `MAX_ANSWERS`.
    pub k: usize,
    /// The answer TTL now (`ttl_when_degraded` while degraded).
    pub ttl: u32,
    /// The sticky prefix lengths for IPv4 and IPv6 clients.
    pub sticky_prefix: [u8; 2],
    /// Member indices that may be chosen.
    pub candidates: Vec<u16>,
    /// Whether their weights are all equal (sticky then compares the
    /// rendezvous hashes alone).
    pub equal_weights: bool,
    /// Whether some weight is that of two of them or more (their sticky
    /// scores can tie).
    pub repeated_weights: bool,
    /// Their rendezvous seeds (for sticky), premixed (`lb::premix`).
    pub seeds: Vec<u64>,
    /// Their parts of weighted sticky scores (`lb::rendezvous_bias`).
    pub biases: Vec<i64>,
    /// Weighted choice over `candidates`.
    pub alias: Alias,
}

/// One pool.
#[derive(Clone, Debug)]
pub struct PoolLive {
    /// Some member with a health check is down.
    pub degraded: bool,
    /// Each member: up (checks and the operator agree it may serve).
    pub up: Vec<bool>,
    /// IPv4, IPv6.
    pub families: [FamilyLive; 2],
}

/// Every pool's live view.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub pools: Vec<PoolLive>,
}

impl Live {
    /// The view with every member up.
    pub fn all_up(pools: &Pools) -> Live {
        let up: Vec<Vec<bool>> = pools.pools.iter().map(|p| vec![true; p.members.len()]).collect();
        Live::compute(pools, &up)
    }

    /// The view for `up[pool][member]`.
    pub fn compute(pools: &Pools, up: &[Vec<bool>]) -> Live {
        let mut out = Vec::with_capacity(pools.pools.len());
        for (p, pool) in pools.pools.iter().enumerate() {
            let is_up = |m: usize| up.get(p).and_then(|u| u.get(m)).copied().unwrap_or(true);
            let degraded = (0..pool.members.len()).any(|m| !is_up(m));
            let family = |v6: bool| -> FamilyLive {
                let all: Vec<u16> = (0..pool.members.len())
                    .filter(|&m| pool.members[m].addr.is_ipv6() == v6)
                    .map(|m| m as u16)
                    .collect();
                let alive: Vec<u16> = all.iter().copied().filter(|&m| is_up(usize::from(m))).collect();
                let (state, base) = if pool.topology.is_some() {
                    (FamilyState::Topology, Vec::new())
                } else if all.is_empty() {
                    (FamilyState::Empty, Vec::new())
                } else if !alive.is_empty() {
                    (FamilyState::Serving, alive)
                } else {
                    match pool.all_down {
                        AllDown::All => (FamilyState::Serving, all),
                        AllDown::None => (FamilyState::Empty, Vec::new()),
                        AllDown::Pool(q) => (FamilyState::Fallback(q), Vec::new()),
                    }
                };
                let weight = |m: u16| pool.members[usize::from(m)].weight;
                let candidates: Vec<u16> = match pool.policy {
                    // Weight 0: only when no weighted member is up.
                    PolicyKind::Weighted | PolicyKind::Sticky => {
                        let weighted: Vec<u16> = base.iter().copied().filter(|&m| weight(m) > 0).collect();
                        if weighted.is_empty() { base } else { weighted }
                    }
                    // The lowest tier with a member up.
                    PolicyKind::Failover => match base.iter().map(|&m| pool.members[usize::from(m)].tier).min() {
                        Some(tier) => base
                            .iter()
                            .copied()
                            .filter(|&m| pool.members[usize::from(m)].tier == tier)
                            .collect(),
                        None => base,
                    },
                    _ => base,
                };
                let weights: Vec<u32> = candidates.iter().map(|&m| weight(m).max(1)).collect();
                let equal_weights = weights.windows(2).all(|w| w[0] == w[1]);
                let mut sorted = weights.clone();
                sorted.sort_unstable();
                let repeated_weights = sorted.windows(2).any(|w| w[0] == w[1]);
                FamilyLive {
                    state,
                    policy: pool.policy,
                    k: pool.answers.min(candidates.len()).min(MAX_ANSWERS),
                    ttl: match (degraded, pool.ttl_when_degraded) {
                        (true, Some(ttl)) => ttl,
                        _ => pool.ttl,
                    },
                    sticky_prefix: [pool.sticky_prefix_v4, pool.sticky_prefix_v6],
                    alias: Alias::new(&weights),
                    seeds: candidates
                        .iter()
                        .map(|&m| super::premix(pool.members[usize::from(m)].seed))
                        .collect(),
                    biases: (weights.iter().enumerate())
                        .map(|(i, &w)| super::rendezvous_bias(w, i))
                        .collect(),
                    candidates,
                    equal_weights,
                    repeated_weights,
                }
            };
            out.push(PoolLive {
                degraded,
                up: (0..pool.members.len()).map(is_up).collect(),
                families: [family(false), family(true)],
            });
        }
        Live { pools: out }
    }
}
