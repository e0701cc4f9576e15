//! A coarse clock for the workers: a background thread stores the time
//! every 10 ms, and workers read it with one relaxed load instead of a
//! system call per query. Rate limiting counts in its milliseconds; DNS
//! Cookies stamp its seconds.

use std::sync::Once;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static MILLIS: AtomicU64 = AtomicU64::new(0);
static SECONDS: AtomicU32 = AtomicU32::new(0);
static START: Once = Once::new();

fn unix_seconds() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Starts the ticking thread (once).
pub fn start() {
    START.call_once(|| {
        SECONDS.store(unix_seconds(), Ordering::Relaxed);
        let origin = Instant::now();
        let _ = std::thread::Builder::new().name("clock".into()).spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(10));
                MILLIS.store(origin.elapsed().as_millis() as u64, Ordering::Relaxed);
                SECONDS.store(unix_seconds(), Ordering::Relaxed);
            }
        });
    });
}

/// Milliseconds since the clock started (10 ms steps).
#[inline]
pub fn now_ms() -> u64 {
    MILLIS.load(Ordering::Relaxed)
}

/// Seconds since 1970.
#[inline]
pub fn now_secs() -> u32 {
    match SECONDS.load(Ordering::Relaxed) {
        0 => unix_seconds(),
        s => s,
    }
}
