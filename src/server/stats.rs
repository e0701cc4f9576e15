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
pub const RCODES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (6, "YXDOMAIN"),
    (16, "BADVERS"),
];

/// Where `qtype` counts in [`QTYPES`]: a jump table, not a search, on
/// the path of every query.
#[inline]
fn qtype_slot(qtype: u16) -> usize {
    match qtype {
        1 => 0,
        2 => 1,
        5 => 2,
        6 => 3,
        12 => 4,
        15 => 5,
        16 => 6,
        28 => 7,
        33 => 8,
        43 => 9,
        64 => 10,
        65 => 11,
        255 => 12,
        257 => 13,
        _ => QTYPES.len() - 1,
    }
}

/// Where `rcode` counts in [`RCODES`], if it does.
#[inline]
fn rcode_slot(rcode: u16) -> Option<usize> {
    match rcode {
        0..=6 => Some(usize::from(rcode)),
        16 => Some(7),
        _ => None,
    }
}

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
            bump(&self.qtypes[qtype_slot(qtype)]);
        }
    }

    #[inline]
    pub fn count_reply(&self, rcode: u16, truncated: bool) {
        bump(&self.replies);
        if truncated {
            bump(&self.truncated);
        }
        if let Some(slot) = rcode_slot(rcode) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_tables() {
        for (slot, &(qtype, _)) in QTYPES.iter().enumerate().take(QTYPES.len() - 1) {
            assert_eq!(qtype_slot(qtype), slot, "qtype {qtype}");
        }
        for other in [0, 3, 99, 254, 258, 65535] {
            assert_eq!(qtype_slot(other), QTYPES.len() - 1, "qtype {other}");
        }
        for (slot, &(rcode, _)) in RCODES.iter().enumerate() {
            assert_eq!(rcode_slot(rcode), Some(slot), "rcode {rcode}");
        }
        for other in [7, 9, 15, 17, 4095] {
            assert_eq!(rcode_slot(other), None, "rcode {other}");
        }
    }
}
