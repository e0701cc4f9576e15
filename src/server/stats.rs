//! Per-worker counters: written only by their worker (a plain load and
//! store, no locked read-modify-write), read by anyone; each worker's on
//! its own cache lines so that workers never share one. Scrapes sum them.

use std::sync::atomic::{AtomicU64, Ordering};

/// The query types counted one by one; the rest count as "other".
pub const QTYPES: [(u16, &str); 15] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (43, "DS"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (255, "ANY"),
    (257, "CAA"),
    (0, "other"),
];

/// Response codes counted (BADVERS is 16).
pub const RCODES: [(u16, &str); 7] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
];

/// One worker's counters.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerStats {
    queries: AtomicU64,
    replies: AtomicU64,
    dropped: AtomicU64,
    truncated: AtomicU64,
    qtypes: [AtomicU64; QTYPES.len()],
    rcodes: [AtomicU64; RCODES.len()],
    rrl_dropped: AtomicU64,
    rrl_slipped: AtomicU64,
}

/// Adds one; only the owning worker writes, so load + store is exact.
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl WorkerStats {
    /// Counts a received query and its type (when readable).
    #[inline]
    pub fn count_query(&self, qtype: Option<u16>) {
        bump(&self.queries);
        if let Some(qtype) = qtype {
            let slot = QTYPES.iter().position(|&(t, _)| t == qtype).unwrap_or(QTYPES.len() - 1);
            bump(&self.qtypes[slot]);
        }
    }

    #[inline]
    pub fn count_reply(&self, rcode: u16, truncated: bool) {
        bump(&self.replies);
        if truncated {
            bump(&self.truncated);
        }
        if let Some(slot) = RCODES.iter().position(|&(r, _)| r == rcode) {
            bump(&self.rcodes[slot]);
        }
    }

    /// Counts a response rate limiting dropped or slipped.
    #[inline]
    pub fn count_rrl(&self, slipped: bool) {
        bump(if slipped { &self.rrl_slipped } else { &self.rrl_dropped });
    }

    /// Responses dropped and slipped by rate limiting.
    pub fn rrl(&self) -> (u64, u64) {
        (
            self.rrl_dropped.load(Ordering::Relaxed),
            self.rrl_slipped.load(Ordering::Relaxed),
        )
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

    /// Queries per type, in [`QTYPES`] order.
    pub fn by_qtype(&self) -> Vec<u64> {
        self.qtypes.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    /// Replies per RCODE, in [`RCODES`] order.
    pub fn by_rcode(&self) -> Vec<u64> {
        self.rcodes.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}
