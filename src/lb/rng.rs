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

/// Several numbers below small bounds from one random word (Brackett-
/// Rozinsky and Lemire, "Batched Ranged Random Integer Generation", 2024):
/// a number below `n` is the high half of the word times `n`, and the low
/// half is the word for the next. A new word is taken once the product of
/// the bounds would pass 2^32, which keeps each number's bias below 2^-32,
/// as [`Rng::below`]'s is. Shuffling an RRset of up to 12 records takes
/// one word instead of one a record.
pub struct Draws {
    word: u64,
    spent: u64,
}

impl Draws {
    /// Starts a batch with a word from `rng`.
    #[inline(always)]
    pub fn new(rng: &mut Rng) -> Self {
        Draws {
            word: rng.next_u64(),
            spent: 1,
        }
    }

    /// A number uniformly in `0..n`, `n` from 1 to 2^32; `rng` gives the
    /// next word when this one is spent.
    #[inline(always)]
    pub fn below(&mut self, n: usize, rng: &mut Rng) -> usize {
        let n = n as u64;
        self.spent = self.spent.saturating_mul(n);
        if self.spent > 1 << 32 {
            self.word = rng.next_u64();
            self.spent = n;
        }
        let product = u128::from(self.word) * u128::from(n);
        self.word = product as u64;
        (product >> 64) as usize
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

    /// Fisher–Yates over 4 items with batched draws: each of the 24 orders
    /// comes out about equally often, also across the word changes that a
    /// longer shuffle forces.
    #[test]
    fn batched_draws_shuffle_uniformly() {
        let mut rng = Rng::with_seed(7);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..48_000 {
            let mut items = [0u8, 1, 2, 3];
            let mut draws = Draws::new(&mut rng);
            for i in (1..items.len()).rev() {
                items.swap(i, draws.below(i + 1, &mut rng));
            }
            *seen.entry(items).or_insert(0u32) += 1;
        }
        assert_eq!(seen.len(), 24);
        // 2000 expected each; a fair shuffle stays well inside ±15 %.
        assert!(seen.values().all(|&n| (1700..2300).contains(&n)), "{seen:?}");

        // 14 items need two words (14! > 2^32): every item still lands in
        // every place about equally often.
        let mut places = [[0u32; 14]; 14];
        for _ in 0..28_000 {
            let mut items: [usize; 14] = std::array::from_fn(|i| i);
            let mut draws = Draws::new(&mut rng);
            for i in (1..items.len()).rev() {
                items.swap(i, draws.below(i + 1, &mut rng));
            }
            for (place, &item) in items.iter().enumerate() {
                places[item][place] += 1;
            }
        }
        // 2000 expected each.
        assert!(
            places.iter().flatten().all(|&n| (1700..2300).contains(&n)),
            "{places:?}"
        );
    }
}
