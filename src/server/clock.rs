//! The workers' clock: the kernel's coarse clocks, read through the vDSO
//! (about 3 ns, no system call) and as fine as the kernel's tick. Rate
//! limiting counts in its milliseconds; DNS Cookies stamp its seconds.
//!
//! It replaced a thread that stored the time every 10 ms: on a VM, where
//! each wake-up from idle is dear, its 100 wake-ups a second cost more
//! CPU than the reads do. A worker reads it only for a query with a DNS
//! Cookie, or when rate limiting is on.

use nix::time::{ClockId, clock_gettime};

/// Milliseconds on the coarse monotonic clock (counted from boot).
#[inline]
pub fn now_ms() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE).map_or(0, |t| {
        (t.tv_sec() as u64).wrapping_mul(1000) + (t.tv_nsec() as u64) / 1_000_000
    })
}

/// Seconds since 1970, on the coarse real-time clock.
#[inline]
pub fn now_secs() -> u32 {
    clock_gettime(ClockId::CLOCK_REALTIME_COARSE).map_or(0, |t| t.tv_sec() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn coarse_clocks_follow_the_real_ones() {
        let system = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as u32;
        let coarse = now_secs();
        assert!(coarse.abs_diff(system) <= 1, "coarse {coarse}, system {system}");
        let before = now_ms();
        std::thread::sleep(Duration::from_millis(50));
        let elapsed = now_ms() - before;
        // Coarse clocks step by the kernel's tick (at most 10 ms).
        assert!((40..60_000).contains(&elapsed), "{elapsed} ms for a 50 ms sleep");
    }
}
