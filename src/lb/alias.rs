//! Weighted random choice in O(1): Vose's alias method.

use super::Rng;

/// An alias table over `n` weights.
#[derive(Clone, Debug, Default)]
pub struct Alias {
    /// Per slot: the probability (scaled to u32) of keeping the slot.
    keep: Vec<u32>,
    alias: Vec<u32>,
}

impl Alias {
    /// A table for `weights` (not all zero).
    pub fn new(weights: &[u32]) -> Alias {
        let n = weights.len();
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        if n == 0 || total == 0 {
            return Alias {
                keep: vec![u32::MAX; n],
                alias: (0..n as u32).collect(),
            };
        }
        // Scaled so that the average weight is 2^32.
        let mut scaled: Vec<u128> = weights.iter().map(|&w| (u128::from(w) * n as u128) << 32).collect();
        let unit = u128::from(total) << 32;
        let mut keep = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < unit);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            keep[s] = ((scaled[s] << 32) / unit).min(u128::from(u32::MAX)) as u32;
            alias[s] = l as u32;
            scaled[l] -= unit - scaled[s];
            if scaled[l] < unit {
                large.pop();
                small.push(l);
            }
        }
        Alias { keep, alias }
    }

    /// Draws a slot with probability proportional to its weight.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let r = rng.next_u64();
        let slot = (((r >> 32) * self.keep.len() as u64) >> 32) as usize;
        if (r as u32) < self.keep[slot] || self.keep[slot] == u32::MAX {
            slot
        } else {
            self.alias[slot] as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_follow_weights() {
        let weights = [1, 3, 0, 6];
        let table = Alias::new(&weights);
        let mut rng = Rng::with_seed(3);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[2], 0, "weight 0 is never drawn");
        for (i, &w) in weights.iter().enumerate() {
            let expected = 100_000.0 * f64::from(w) / 10.0;
            assert!((f64::from(counts[i]) - expected).abs() < 1_000.0, "{counts:?}");
        }
    }
}
