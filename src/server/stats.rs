//! Per-worker counters: written only by their worker (a plain load and
//! store, no locked read-modify-write), read by anyone; each worker's on
//! its own cache line so that workers never share one.

use std::sync::atomic::{AtomicU64, Ordering};

/// One worker's counters.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerStats {
    queries: AtomicU64,
    replies: AtomicU64,
    dropped: AtomicU64,
    truncated: AtomicU64,
}

/// Adds one; only the owning worker writes, so load + store is exact.
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl WorkerStats {
    #[inline]
    pub fn count_query(&self) {
        bump(&self.queries);
    }

    #[inline]
    pub fn count_reply(&self, truncated: bool) {
        bump(&self.replies);
        if truncated {
            bump(&self.truncated);
        }
    }

    #[inline]
    pub fn count_dropped(&self) {
        bump(&self.dropped);
    }

    /// Datagrams received.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Replies sent.
    pub fn replies(&self) -> u64 {
        self.replies.load(Ordering::Relaxed)
    }

    /// Datagrams not answered (not queries, too short, too long).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Replies sent with TC set.
    pub fn truncated(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }
}
