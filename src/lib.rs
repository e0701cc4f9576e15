//! lbdns: a load-balancing authoritative DNS server.
//!
//! The data path, from packet to packet:
//!
//! ```text
//! packet ─► server (UDP/TCP) ─► proto::handle(query, client, &Snapshot, rng, out) ─► packet
//!                                  ├─ parse with `domain` (zero-copy)
//!                                  ├─ look up (name, qtype) in the frozen index
//!                                  └─ copy the pre-rendered answer, EDNS, TC
//! ```
//!
//! - [`config`]: the TOML file and command line, validated before start.
//! - [`zone`]: RFC 1035 zone files read with `domain`, checked.
//! - [`read`]: the configured zones read, a large one on two threads.
//! - [`snapshot`]: zones compiled into an immutable index of pre-rendered
//!   answers, shared by all workers without locks.
//! - [`proto`]: the sans-I/O answer engine.
//! - [`lb`]: pools and selection policies.
//! - [`health`]: health checks publishing the pools' live view.
//! - [`server`]: pinned UDP workers, TCP, signals, privileges.
//! - [`io`]: UDP back ends (mmsg, io_uring, portable); all `unsafe` is in
//!   `io::sys`.
//!
//! `../shared/DESIGN.md` in the project explains why it is shaped so.

#![deny(unsafe_code)]

pub mod config;
pub mod diag;
pub mod explain;
pub mod fuzzing;
pub mod health;
pub mod io;
pub mod lb;
pub mod name;
pub mod proto;
pub mod read;
pub mod rrl;
pub mod server;
pub mod snapshot;
pub mod zone;

use config::Config;
use diag::Diagnostics;
use snapshot::Snapshot;

/// Loads every configured zone and compiles the snapshot. Returns `None`
/// with the problems when any zone has errors; warnings come back either
/// way.
pub fn load_snapshot(config: &Config) -> (Option<Snapshot>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut zones = Vec::with_capacity(config.zones.len());
    for zc in &config.zones {
        let started = std::time::Instant::now();
        if let Some(zone) = read::zone(zc, &config.limits.zone, &mut diags) {
            tracing::debug!(
                zone = %name::to_text(&zone.origin),
                records = zone.record_count,
                ms = started.elapsed().as_millis() as u64,
                "zone read"
            );
            zones.push(zone);
        }
    }
    // Give back what reading took (file buffers, the loader's lists)
    // before the snapshot is compiled, so that the two do not add up.
    io::sys::release_free_memory();
    let started = std::time::Instant::now();
    if diags.has_errors() {
        return (None, diags);
    }
    let mut pools = lb::Pools::build(&config.pools, &mut diags);
    // A row of selection counters per UDP worker, and one for TCP.
    pools.prepare_counters(server::worker_count(&config.server) + 1);
    if diags.has_errors() {
        return (None, diags);
    }
    let index = snapshot::build(&zones, &pools, &mut diags);
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        names = index.node_count(),
        bytes = index.memory_bytes(),
        "snapshot compiled"
    );
    // The records are not needed any more: free them and give the memory
    // back, so that a large zone costs only its snapshot.
    drop(zones);
    io::sys::release_free_memory();
    if diags.has_errors() {
        return (None, diags);
    }
    let live = lb::Live::compute(&pools, &health::initial_states(&pools));
    let settings = snapshot::Settings {
        ecs: config.server.ecs,
        rrl: config.server.rrl.is_some(),
        cookie_secret: config.server.cookie_secret.unwrap_or_else(process_cookie_secret),
        nsid: config.server.nsid.as_deref().map(std::sync::Arc::from),
        identity: config.server.identity.as_deref().map(std::sync::Arc::from),
        version: config.server.version.as_deref().map(std::sync::Arc::from),
    };
    (Some(Snapshot::new(index, pools, live, settings)), diags)
}

/// A random cookie secret for this process, when none is configured
/// (the same across reloads, so cookies stay valid).
fn process_cookie_secret() -> [u8; 16] {
    static SECRET: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    *SECRET.get_or_init(rand::random)
}
