//! Response Rate Limiting (the BIND/Knot/NSD design), sans I/O.
//!
//! Responses are counted per (client network, response class): the
//! network is the client's /24 (IPv4) or /56 (IPv6); the class is the
//! answer (qname and qtype), NXDOMAIN per zone, or the error code. Each
//! pair has a token bucket of `rate` responses per second. Over the limit
//! a response is dropped, except every `slip`-th, which is sent truncated
//! (TC set, no records) so that a real client retries over TCP, while a
//! spoofed victim gets no amplification.
//!
//! Each worker has its own table of fixed size: a flood from a million
//! sources overwrites slots instead of growing memory, and nothing is
//! shared or locked. TCP is never limited (the server applies this to
//! UDP only).

use std::net::IpAddr;

use crate::lb::lpm::Lpm;
use crate::lb::mix64;

/// Rate-limiting settings (`[server.rrl]`).
#[derive(Clone, Debug)]
pub struct RrlConfig {
    /// Responses per second per (network, class).
    pub rate: u32,
    /// Every `slip`-th limited response is sent truncated; 0: none.
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Networks never limited.
    pub exempt: Vec<(IpAddr, u8)>,
    /// Buckets per worker (a power of two).
    pub table_size: usize,
}

impl Default for RrlConfig {
    fn default() -> Self {
        RrlConfig {
            rate: 20,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: Vec::new(),
            table_size: 1 << 16,
        }
    }
}

/// What to do with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send it truncated: TC set, no records.
    Slip,
    Drop,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    key: u64,
    /// Milli-tokens: 1000 per response.
    tokens: u64,
    last_ms: u64,
    limited: u32,
}

/// One worker's limiter.
pub struct Limiter {
    rate: u64,
    slip: u32,
    v4: u8,
    v6: u8,
    exempt: Option<Lpm>,
    buckets: Box<[Bucket]>,
}

impl Limiter {
    pub fn new(config: &RrlConfig) -> Limiter {
        let size = config.table_size.next_power_of_two().max(16);
        let exempt = (!config.exempt.is_empty())
            .then(|| Lpm::new(&config.exempt.iter().map(|&(a, l)| (a, l, 0)).collect::<Vec<_>>()));
        Limiter {
            rate: u64::from(config.rate.max(1)),
            slip: config.slip,
            v4: config.ipv4_prefix,
            v6: config.ipv6_prefix,
            exempt,
            buckets: vec![Bucket::default(); size].into(),
        }
    }

    /// The client's network as a number (masked to the prefix).
    fn network(&self, addr: IpAddr) -> u64 {
        match addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a) & u32::MAX.checked_shl(32 - u32::from(self.v4)).unwrap_or(0);
                u64::from(bits) | 4 << 56
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a) & u128::MAX.checked_shl(128 - u32::from(self.v6)).unwrap_or(0);
                mix64((bits >> 64) as u64 ^ mix64(bits as u64)) ^ 6 << 56
            }
        }
    }

    /// Decides for one response of `class` to `client` at `now_ms`.
    pub fn check(&mut self, now_ms: u64, client: IpAddr, class: u64) -> Verdict {
        if let Some(exempt) = &self.exempt
            && exempt.lookup(client).is_ok()
        {
            return Verdict::Send;
        }
        let key = mix64(self.network(client) ^ mix64(class)) | 1;
        let slot = (key as usize) & (self.buckets.len() - 1);
        let full = self.rate * 1000;
        let b = &mut self.buckets[slot];
        if b.key != key {
            // A new pair, or one that lost its slot: a full bucket.
            *b = Bucket {
                key,
                tokens: full,
                last_ms: now_ms,
                limited: 0,
            };
        }
        let elapsed = now_ms.saturating_sub(b.last_ms);
        b.tokens = (b.tokens + elapsed * self.rate).min(full);
        b.last_ms = now_ms;
        if b.tokens >= 1000 {
            b.tokens -= 1000;
            return Verdict::Send;
        }
        b.limited += 1;
        if self.slip > 0 && b.limited.is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// Bytes held (constant: the table never grows).
    pub fn memory_bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_flood_gets_the_rate_plus_slips_and_others_are_untouched() {
        let mut rrl = Limiter::new(&RrlConfig {
            rate: 10,
            slip: 2,
            ..RrlConfig::default()
        });
        // 10 seconds of 1000 queries per second from one /24, same class.
        let (mut sent, mut slipped, mut dropped) = (0, 0, 0);
        for ms in 0..10_000u64 {
            let client = addr(&format!("198.51.100.{}", ms % 200));
            match rrl.check(ms, client, 42) {
                Verdict::Send => sent += 1,
                Verdict::Slip => slipped += 1,
                Verdict::Drop => dropped += 1,
            }
            // A second network asking the same is never limited at 1 q/s.
            if ms % 1000 == 0 {
                assert_eq!(rrl.check(ms, addr("203.0.113.9"), 42), Verdict::Send);
            }
        }
        // The initial burst (10) plus 10 per second.
        assert!((105..=112).contains(&sent), "sent {sent}");
        assert!(
            (slipped as i64 - dropped as i64).abs() <= 1,
            "slip = 2: half of the rest: {slipped} / {dropped}"
        );
        // Another class for the same network has its own bucket.
        assert_eq!(rrl.check(10_000, addr("198.51.100.1"), 43), Verdict::Send);
    }

    #[test]
    fn exempt_networks_and_slip_zero() {
        let mut rrl = Limiter::new(&RrlConfig {
            rate: 1,
            slip: 0,
            exempt: vec![(addr("192.0.2.0"), 24)],
            ..RrlConfig::default()
        });
        for ms in 0..100 {
            assert_eq!(rrl.check(ms, addr("192.0.2.7"), 1), Verdict::Send);
        }
        assert_eq!(rrl.check(0, addr("10.0.0.1"), 1), Verdict::Send);
        for ms in 1..100 {
            assert_eq!(rrl.check(ms, addr("10.0.0.1"), 1), Verdict::Drop, "slip 0 never slips");
        }
    }

    #[test]
    fn memory_stays_bounded_under_a_million_networks() {
        let mut rrl = Limiter::new(&RrlConfig::default());
        let before = rrl.memory_bytes();
        for i in 0..1_000_000u32 {
            rrl.check(u64::from(i / 1000), IpAddr::from((i << 8).to_be_bytes()), 7);
        }
        assert_eq!(rrl.memory_bytes(), before);
        assert!(before <= 4 << 20, "{before} bytes");
        // A network seen once is still answered.
        assert_eq!(rrl.check(1000, addr("203.0.113.1"), 7), Verdict::Send);
    }
}
