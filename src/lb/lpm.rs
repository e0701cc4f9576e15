//! Longest-prefix match for topology maps: the networks are flattened
//! into sorted, disjoint address ranges, each carrying its most specific
//! network. A lookup takes the address's top bits to an index of where
//! each such bucket's ranges lie, then binary-searches that bucket: a few
//! probes instead of one per halving of the whole table (15 for 20,000
//! ranges), most of which missed the cache.

use std::net::IpAddr;

/// What a range maps to: a value, the matched prefix length, and the ECS
/// scope to answer with (RFC 7871 §7.2.1): the longest prefix length that
/// can change the answer within the matched network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub value: u32,
    pub len: u8,
    pub scope: u8,
}

#[derive(Clone, Debug)]
struct Ranges<K> {
    /// Range starts, ascending; a range ends where the next starts.
    starts: Vec<K>,
    entries: Vec<Option<Match>>,
    /// `index[b]`: how many starts lie below bucket `b`, the addresses
    /// whose top bits (those above `shift`) are `b`; one more entry holds
    /// the number of starts.
    index: Vec<u32>,
    shift: u32,
    /// The scope to answer with when nothing matches: the longest prefix
    /// in the table.
    default_scope: u8,
}

/// A longest-prefix-match table for IPv4 and IPv6.
#[derive(Clone, Debug)]
pub struct Lpm {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

/// At most 2^12 buckets (a 16 KiB index); about one per range below that.
const MAX_BUCKET_BITS: u32 = 12;

/// An address of one family as a number.
trait Key: Copy + Ord {
    const BITS: u32;
    fn from_u128(v: u128) -> Self;
    /// The bits above `shift`.
    fn bucket(self, shift: u32) -> usize;
}

impl Key for u32 {
    const BITS: u32 = 32;
    fn from_u128(v: u128) -> u32 {
        v as u32
    }
    fn bucket(self, shift: u32) -> usize {
        self.checked_shr(shift).unwrap_or(0) as usize
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    fn from_u128(v: u128) -> u128 {
        v
    }
    fn bucket(self, shift: u32) -> usize {
        self.checked_shr(shift).unwrap_or(0) as usize
    }
}

/// An address as a number, and its family's width.
fn bits(addr: IpAddr) -> (u128, u32) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

impl Lpm {
    /// Builds the table from (network, prefix length, value); a later
    /// duplicate of the same network wins.
    pub fn new(networks: &[(IpAddr, u8, u32)]) -> Lpm {
        let pick = |v6: bool| -> Vec<(u128, u128, u8, u32)> {
            networks
                .iter()
                .filter(|(a, _, _)| a.is_ipv6() == v6)
                .map(|&(a, len, value)| {
                    let (start, width) = bits(a);
                    let host = match width - u32::from(len).min(width) {
                        0 => 0,
                        128 => u128::MAX,
                        bits => (1u128 << bits) - 1,
                    };
                    (start, start | host, len, value)
                })
                .collect()
        };
        Lpm {
            v4: Ranges::build(pick(false)),
            v6: Ranges::build(pick(true)),
        }
    }

    /// Every value that some address maps to.
    pub fn values(&self) -> impl Iterator<Item = u32> + '_ {
        let v4 = self.v4.entries.iter();
        v4.chain(&self.v6.entries).flatten().map(|m| m.value)
    }

    /// The most specific network holding `addr`, if any, or the scope to
    /// use when none does.
    pub fn lookup(&self, addr: IpAddr) -> Result<Match, u8> {
        match addr {
            IpAddr::V4(a) => self.v4.find(u32::from(a)),
            IpAddr::V6(a) => self.v6.find(u128::from(a)),
        }
    }
}

impl<K: Key> Ranges<K> {
    fn find(&self, value: K) -> Result<Match, u8> {
        let b = value.bucket(self.shift);
        let (lo, hi) = (self.index[b] as usize, self.index[b + 1] as usize);
        // Starts below the bucket are all <= value; those above, > value.
        let i = lo + self.starts[lo..hi].partition_point(|&s| s <= value);
        match i.checked_sub(1).and_then(|i| self.entries[i]) {
            Some(m) => Ok(m),
            None => Err(self.default_scope),
        }
    }

    /// The ranges of networks (start, end, prefix length, value), all of
    /// this family, as u128.
    fn build(nets: Vec<(u128, u128, u8, u32)>) -> Ranges<K> {
        let flat = Flat::new(nets, u128::MAX >> (128 - K::BITS));
        // Every start is an address of the family: no range starts past
        // its last address.
        let starts: Vec<K> = flat.starts.into_iter().map(K::from_u128).collect();
        let bits = (usize::BITS - starts.len().leading_zeros()).min(MAX_BUCKET_BITS);
        let shift = K::BITS - bits;
        let index = (0..=1usize << bits)
            .map(|b| starts.partition_point(|&s| s.bucket(shift) < b) as u32)
            .collect();
        Ranges {
            starts,
            entries: flat.entries,
            index,
            shift,
            default_scope: flat.default_scope,
        }
    }
}

/// A flattened table, before its starts take the family's width: range
/// starts, ascending; what each range maps to; the scope to answer with
/// when nothing matches (the longest prefix in the table).
struct Flat {
    starts: Vec<u128>,
    entries: Vec<Option<Match>>,
    default_scope: u8,
}

impl Flat {
    /// Flattens networks (start, end, prefix length, value) of a family
    /// whose last address is `max`.
    fn new(mut nets: Vec<(u128, u128, u8, u32)>, max: u128) -> Flat {
        // Containing networks before the networks they contain.
        nets.sort_by_key(|&(start, _, len, _)| (start, len));
        // The longest prefix nested in each network (its ECS scope).
        let mut scope: Vec<u8> = nets.iter().map(|n| n.2).collect();
        let mut stack: Vec<usize> = Vec::new();
        for i in 0..nets.len() {
            while stack.last().is_some_and(|&t| nets[t].1 < nets[i].0) {
                stack.pop();
            }
            for &t in &stack {
                scope[t] = scope[t].max(nets[i].2);
            }
            stack.push(i);
        }
        let mut out = Flat {
            starts: Vec::new(),
            entries: Vec::new(),
            default_scope: nets.iter().map(|n| n.2).max().unwrap_or(0),
        };
        let entry = |i: usize| {
            Some(Match {
                value: nets[i].3,
                len: nets[i].2,
                scope: scope[i],
            })
        };
        out.emit(0, None);
        stack.clear();
        for i in 0..nets.len() {
            while let Some(&top) = stack.last() {
                if nets[top].1 >= nets[i].0 {
                    break;
                }
                stack.pop();
                out.emit(nets[top].1 + 1, stack.last().and_then(|&t| entry(t)));
            }
            out.emit(nets[i].0, entry(i));
            stack.push(i);
        }
        while let Some(top) = stack.pop() {
            if nets[top].1 >= max {
                break;
            }
            out.emit(nets[top].1 + 1, stack.last().and_then(|&t| entry(t)));
        }
        out
    }

    fn emit(&mut self, start: u128, entry: Option<Match>) {
        if self.starts.last() == Some(&start) {
            *self.entries.last_mut().expect("paired") = entry;
        } else {
            self.starts.push(start);
            self.entries.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str, value: u32) -> (IpAddr, u8, u32) {
        let (a, l) = text.split_once('/').unwrap();
        (a.parse().unwrap(), l.parse().unwrap(), value)
    }

    fn find(lpm: &Lpm, addr: &str) -> Result<Match, u8> {
        lpm.lookup(addr.parse().unwrap())
    }

    #[test]
    fn longest_prefix_wins_and_scope_covers_nested_networks() {
        let lpm = Lpm::new(&[
            net("10.0.0.0/8", 1),
            net("10.1.0.0/16", 2),
            net("10.1.2.0/24", 3),
            net("192.0.2.0/24", 4),
            net("2001:db8::/32", 5),
            net("2001:db8:1::/48", 6),
        ]);
        assert_eq!(
            find(&lpm, "10.1.2.3"),
            Ok(Match {
                value: 3,
                len: 24,
                scope: 24
            })
        );
        assert_eq!(
            find(&lpm, "10.1.9.9"),
            Ok(Match {
                value: 2,
                len: 16,
                scope: 24
            })
        );
        assert_eq!(
            find(&lpm, "10.200.0.1"),
            Ok(Match {
                value: 1,
                len: 8,
                scope: 24
            })
        );
        assert_eq!(
            find(&lpm, "10.255.255.255"),
            Ok(Match {
                value: 1,
                len: 8,
                scope: 24
            })
        );
        assert_eq!(find(&lpm, "11.0.0.0"), Err(24));
        assert_eq!(find(&lpm, "9.255.255.255"), Err(24));
        assert_eq!(
            find(&lpm, "192.0.2.200"),
            Ok(Match {
                value: 4,
                len: 24,
                scope: 24
            })
        );
        assert_eq!(
            find(&lpm, "2001:db8:1::5"),
            Ok(Match {
                value: 6,
                len: 48,
                scope: 48
            })
        );
        assert_eq!(
            find(&lpm, "2001:db8:2::5"),
            Ok(Match {
                value: 5,
                len: 32,
                scope: 48
            })
        );
        assert_eq!(find(&lpm, "2001:db9::"), Err(48));
    }

    #[test]
    fn edges_of_the_address_space() {
        let lpm = Lpm::new(&[net("0.0.0.0/0", 1), net("255.255.255.0/24", 2), net("::/0", 3)]);
        assert_eq!(find(&lpm, "255.255.255.255").unwrap().value, 2);
        assert_eq!(find(&lpm, "0.0.0.0").unwrap().value, 1);
        assert_eq!(find(&lpm, "ffff::").unwrap().value, 3);
    }

    /// Random networks of one family (`width` bits), most of them under
    /// `base` (so that some buckets hold many ranges and most none), and
    /// probes inside them or anywhere: the table agrees with a scan.
    fn agrees_with_a_scan(width: u32, base: u128, to_addr: fn(u128) -> IpAddr, count: usize) {
        let mut rng = crate::lb::Rng::with_seed(11 + u64::from(width));
        let random =
            |rng: &mut crate::lb::Rng| (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) >> (128 - width);
        let mask = |len: u8| u128::MAX.checked_shl(width - u32::from(len)).unwrap_or(0) & (u128::MAX >> (128 - width));
        let mut nets = Vec::new();
        for v in 0..count as u32 {
            let len = 4 + rng.below(width / 2 + 8) as u8;
            let addr = if rng.below(4) == 0 {
                random(&mut rng)
            } else {
                base | random(&mut rng) >> 16
            };
            nets.push((addr & mask(len), len, v));
        }
        let table: Vec<_> = nets.iter().map(|&(a, len, v)| (to_addr(a), len, v)).collect();
        let lpm = Lpm::new(&table);
        for _ in 0..20_000 {
            let probe = match rng.below(3) {
                0 => random(&mut rng),
                _ => nets[rng.below(count as u32) as usize].0 | (random(&mut rng) >> (width / 2 + 4)),
            };
            let best = nets
                .iter()
                .filter(|&&(a, len, _)| probe & mask(len) == a)
                .max_by_key(|&&(_, len, v)| (len, v));
            let got = lpm.lookup(to_addr(probe));
            match best {
                Some(&(_, len, _)) => assert_eq!(got.map(|m| m.len), Ok(len), "{probe:x}"),
                None => assert!(got.is_err(), "{probe:x}"),
            }
        }
    }

    #[test]
    fn matches_a_linear_scan_on_random_tables() {
        let v4 = |a: u128| IpAddr::from(std::net::Ipv4Addr::from(a as u32));
        let v6 = |a: u128| IpAddr::from(std::net::Ipv6Addr::from(a));
        for count in [1, 2, 3, 300, 1000] {
            agrees_with_a_scan(32, 10 << 24, v4, count);
            agrees_with_a_scan(128, 0x2001_0db8 << 96, v6, count);
        }
    }
}
