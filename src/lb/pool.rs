//! Pools as compiled from the configuration: members with their
//! pre-rendered address records, the policy, the topology map.

use std::net::IpAddr;

use std::sync::atomic::{AtomicU64, Ordering};

use ahash::AHashMap;

use super::lpm::Lpm;
use crate::config::{AllDownConfig, CheckConfig, PolicyKind, PoolConfig};
use crate::diag::Diagnostics;

/// What a pool answers when every member of a family is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllDown {
    All,
    None,
    Pool(u32),
}

/// One backend.
#[derive(Clone, Debug)]
pub struct Member {
    pub addr: IpAddr,
    pub weight: u32,
    pub tier: u32,
    /// The member's rendezvous-hashing identity (from its address, so it
    /// survives reloads and reordering).
    pub seed: u64,
    /// TYPE, CLASS, TTL, RDLENGTH and RDATA of its record; the owner is
    /// written per answer and the TTL patched.
    pub rendered: Box<[u8]>,
}

/// A topology pool's map.
#[derive(Clone, Debug)]
pub struct Topology {
    pub lpm: Lpm,
    pub default: Option<u32>,
}

/// A compiled pool.
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: String,
    pub names: Vec<String>,
    pub policy: PolicyKind,
    pub answers: usize,
    pub ttl: u32,
    pub ttl_when_degraded: Option<u32>,
    pub all_down: AllDown,
    pub sticky_prefix_v4: u8,
    pub sticky_prefix_v6: u8,
    pub members: Vec<Member>,
    pub check: Option<CheckConfig>,
    pub topology: Option<Topology>,
    /// Where the pool is configured.
    pub loc: Option<crate::diag::Loc>,
}

/// Every pool, indexed by position, with the selection counters.
#[derive(Debug, Default)]
pub struct Pools {
    pub pools: Vec<Pool>,
    /// Where each pool's members start in a counter row.
    bases: Vec<usize>,
    /// One row of per-member selection counters per worker (and one for
    /// TCP), each row padded to whole cache lines, written only by its
    /// owner. A reload makes new pools, so they count from zero again.
    selected: Box<[AtomicU64]>,
    stride: usize,
}

/// SplitMix64's finalizer: a strong 64-bit mix.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn address_seed(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => mix64(u64::from(u32::from(a)) | 4 << 56),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            mix64(mix64(v as u64) ^ (v >> 64) as u64 ^ 6 << 56)
        }
    }
}

fn render(addr: IpAddr) -> Box<[u8]> {
    let mut out = Vec::with_capacity(26);
    let (rtype, data): (u16, Vec<u8>) = match addr {
        IpAddr::V4(a) => (1, a.octets().to_vec()),
        IpAddr::V6(a) => (28, a.octets().to_vec()),
    };
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(&data);
    out.into()
}

impl Pools {
    /// Compiles the configured pools, checking their references to each
    /// other.
    pub fn build(configs: &[PoolConfig], diags: &mut Diagnostics) -> Pools {
        let index: AHashMap<&str, u32> = configs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i as u32))
            .collect();
        let mut pools = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let mut find = |name: &str, what: &str| -> Option<u32> {
                match index.get(name) {
                    Some(&j) if j as usize == i => {
                        diags.error(c.loc.clone(), format!("pool {}: {what} names the pool itself", c.name));
                        None
                    }
                    Some(&j)
                        if configs[j as usize].policy == crate::config::PolicyKind::Topology && what != "all_down" =>
                    {
                        diags.error(
                            c.loc.clone(),
                            format!("pool {}: {what} {name} is itself a topology pool", c.name),
                        );
                        None
                    }
                    Some(&j) => Some(j),
                    None => {
                        diags.error(c.loc.clone(), format!("pool {}: {what} names no pool {name:?}", c.name));
                        None
                    }
                }
            };
            let all_down = match &c.all_down {
                AllDownConfig::All => AllDown::All,
                AllDownConfig::None => AllDown::None,
                AllDownConfig::Pool(name) => find(name, "all_down").map_or(AllDown::All, AllDown::Pool),
            };
            let topology = (c.policy == PolicyKind::Topology).then(|| {
                let mut networks = Vec::new();
                for entry in &c.map {
                    if let Some(target) = find(&entry.pool, "map pool") {
                        networks.extend(entry.networks.iter().map(|&(a, l)| (a, l, target)));
                    }
                }
                Topology {
                    lpm: Lpm::new(&networks),
                    default: c.default.as_deref().and_then(|d| find(d, "default")),
                }
            });
            pools.push(Pool {
                name: c.name.clone(),
                names: c.names.clone(),
                policy: c.policy,
                answers: c.answers,
                ttl: c.ttl,
                ttl_when_degraded: c.ttl_when_degraded,
                all_down,
                sticky_prefix_v4: c.sticky_prefix_v4,
                sticky_prefix_v6: c.sticky_prefix_v6,
                members: c
                    .members
                    .iter()
                    .map(|m| Member {
                        addr: m.address,
                        weight: m.weight,
                        tier: m.tier,
                        seed: address_seed(m.address),
                        rendered: render(m.address),
                    })
                    .collect(),
                check: c.check.clone(),
                topology,
                loc: c.loc.clone(),
            });
        }
        // A fallback to a topology pool that maps clients back to the pool
        // that is down: those clients get NODATA (selection stops the loop).
        for (i, pool) in pools.iter().enumerate() {
            let AllDown::Pool(t) = pool.all_down else { continue };
            let Some(topology) = &pools[t as usize].topology else {
                continue;
            };
            if topology.lpm.values().chain(topology.default).any(|v| v as usize == i) {
                diags.warning(
                    pool.loc.clone(),
                    format!(
                        "pool {}: all_down names topology pool {}, which sends some clients back to {}: \
                         they get no address while every member is down",
                        pool.name, pools[t as usize].name, pool.name
                    ),
                );
            }
        }
        let mut bases = Vec::with_capacity(pools.len());
        let mut total = 0;
        for pool in &pools {
            bases.push(total);
            total += pool.members.len();
        }
        Pools {
            pools,
            bases,
            selected: Box::new([]),
            stride: total.div_ceil(16) * 16,
        }
    }

    /// Makes room for `rows` writers of selection counters.
    pub fn prepare_counters(&mut self, rows: usize) {
        self.selected = (0..rows * self.stride).map(|_| AtomicU64::new(0)).collect();
    }

    /// Counts the members `picked` from pool `pool` in row `row`.
    #[inline]
    pub fn count_selected(&self, row: usize, pool: u32, picked: &[u16]) {
        let Some(&base) = self.bases.get(pool as usize) else {
            return;
        };
        let start = row.wrapping_mul(self.stride).wrapping_add(base);
        for &m in picked {
            if let Some(counter) = self.selected.get(start.wrapping_add(usize::from(m))) {
                counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
        }
    }

    /// How often member `m` of pool `p` was picked, over all rows.
    pub fn selected(&self, p: usize, m: usize) -> u64 {
        let rows = self.selected.len().checked_div(self.stride).unwrap_or(0);
        (0..rows)
            .filter_map(|r| self.selected.get(r * self.stride + self.bases[p] + m))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The pool of this name.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.name == name)
    }
}
