//! Longest-prefix match for topology maps: the networks are flattened
//! into sorted, disjoint address ranges, each carrying its most specific
//! network, so a lookup is one binary search.

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

#[derive(Clone, Debug, Default)]
struct Ranges {
    /// Range starts, ascending; a range ends where the next starts.
    starts: Vec<u128>,
    entries: Vec<Option<Match>>,
    /// The scope to answer with when nothing matches: the longest prefix
    /// in the table.
    default_scope: u8,
}

/// A longest-prefix-match table for IPv4 and IPv6.
#[derive(Clone, Debug, Default)]
pub struct Lpm {
    v4: Ranges,
    v6: Ranges,
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
            v4: Ranges::build(pick(false), u128::from(u32::MAX)),
            v6: Ranges::build(pick(true), u128::MAX),
        }
    }

    /// The most specific network holding `addr`, if any, or the scope to
    /// use when none does.
    pub fn lookup(&self, addr: IpAddr) -> Result<Match, u8> {
        let (value, table) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), &self.v4),
            IpAddr::V6(a) => (u128::from(a), &self.v6),
        };
        let i = table.starts.partition_point(|&s| s <= value);
        match i.checked_sub(1).and_then(|i| table.entries[i]) {
            Some(m) => Ok(m),
            None => Err(table.default_scope),
        }
    }
}

impl Ranges {
    fn build(mut nets: Vec<(u128, u128, u8, u32)>, max: u128) -> Ranges {
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
        let mut out = Ranges {
            default_scope: nets.iter().map(|n| n.2).max().unwrap_or(0),
            ..Ranges::default()
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

    #[test]
    fn matches_a_linear_scan_on_random_tables() {
        let mut rng = crate::lb::Rng::with_seed(11);
        let mut nets = Vec::new();
        for v in 0..300 {
            let len = 4 + rng.below(25) as u8;
            let addr = (rng.next_u64() as u32) & (u32::MAX << (32 - u32::from(len)));
            nets.push((IpAddr::from(std::net::Ipv4Addr::from(addr)), len, v));
        }
        let lpm = Lpm::new(&nets);
        for _ in 0..20_000 {
            let probe = rng.next_u64() as u32;
            let probe = if rng.below(2) == 0 {
                probe
            } else {
                u32::from(match nets[rng.below(300) as usize].0 {
                    IpAddr::V4(a) => a,
                    _ => unreachable!(),
                }) | (probe & 0xFF)
            };
            let best = nets
                .iter()
                .filter(|(a, len, _)| {
                    let a = match a {
                        IpAddr::V4(a) => u32::from(*a),
                        _ => unreachable!(),
                    };
                    let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                    probe & mask == a
                })
                .max_by_key(|(_, len, v)| (*len, *v));
            let got = lpm.lookup(IpAddr::from(std::net::Ipv4Addr::from(probe)));
            match best {
                Some(&(_, len, _)) => assert_eq!(got.map(|m| m.len), Ok(len), "{probe:x}"),
                None => assert!(got.is_err(), "{probe:x}"),
            }
        }
    }
}
