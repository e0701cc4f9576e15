//! The per-worker random number generator: xorshift64* (Vigna, 2016).
//!
//! Not cryptographic — it only spreads load. Each worker seeds its own from
//! the operating system's entropy through `rand`, so nothing is shared.

/// A xorshift64* generator: one `u64` of state, a few cycles a number.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator with the given seed (a zero seed is replaced: xorshift
    /// would stay at zero forever).
    pub fn with_seed(seed: u64) -> Self {
        Rng {
            state: if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed },
        }
    }

    /// A generator seeded from the operating system's entropy.
    pub fn from_entropy() -> Self {
        Self::with_seed(rand::random())
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number uniformly in `0..n` (Lemire's multiply-shift; the bias is
    /// below 2^-32 for the small `n` used here). `n` must not be zero.
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::with_seed(1);
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            let v = rng.below(5) as usize;
            seen[v] += 1;
        }
        // Each of 5 values expected 2000 times; a fair generator stays well
        // inside ±20 %.
        for count in seen {
            assert!((1600..2400).contains(&count), "{seen:?}");
        }
    }

    #[test]
    fn zero_seed_is_not_stuck() {
        let mut rng = Rng::with_seed(0);
        let a = rng.next_u64();
        let b = rng.next_u64();
        assert_ne!(a, 0);
        assert_ne!(a, b);
    }
}
